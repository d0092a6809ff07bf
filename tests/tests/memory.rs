//! The client streams: its memory does not grow with the file size.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_tests::{cairn_bin, peak_rss, DevCluster};

const LIMIT: u64 = 256 << 20;
const SIZE: u64 = 1 << 30;

#[test]
fn put_and_get_of_1gib_stay_under_256mib_rss() {
    let cluster = DevCluster::start().expect("cluster starts");
    let config = cluster.client_config();

    // put: feed 1 GiB of non-repeating data through stdin.
    let mut put = Command::new(cairn_bin())
        .args(["put", "-", "/big", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn put");
    let pid = put.id();
    let mut stdin = put.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let mut block = vec![0u8; 1 << 20];
        for i in 0..(SIZE >> 20) {
            // Cheap, distinct blocks: a counter pattern, no two alike.
            for (j, b) in block.iter_mut().enumerate() {
                *b = (j as u64 ^ i.wrapping_mul(0x9e37_79b9)).wrapping_mul(31) as u8 ^ (i as u8);
            }
            block[..8].copy_from_slice(&i.to_le_bytes());
            if stdin.write_all(&block).is_err() {
                break;
            }
        }
    });
    let mut put_peak = 0;
    while put.try_wait().expect("wait put").is_none() {
        put_peak = put_peak.max(peak_rss(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    feeder.join().expect("feeder");
    let out = put.wait_with_output().expect("put output");
    assert!(
        out.status.success(),
        "put failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(put_peak > 0, "could not sample put's memory");
    assert!(put_peak < LIMIT, "put peaked at {} MiB RSS", put_peak >> 20);

    // get: stream it back to stdout and count the bytes.
    let mut get = Command::new(cairn_bin())
        .args(["get", "/big", "-", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn get");
    let pid = get.id();
    let mut stdout = get.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        while let Ok(k) = stdout.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    let mut get_peak = 0;
    while get.try_wait().expect("wait get").is_none() {
        get_peak = get_peak.max(peak_rss(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = reader.join().expect("reader");
    let out = get.wait_with_output().expect("get output");
    assert!(
        out.status.success(),
        "get failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(got, SIZE, "get returned {got} bytes");
    assert!(get_peak > 0, "could not sample get's memory");
    assert!(get_peak < LIMIT, "get peaked at {} MiB RSS", get_peak >> 20);
    eprintln!(
        "peak RSS: put {} MiB, get {} MiB",
        put_peak >> 20,
        get_peak >> 20
    );
}

#[test]
fn writing_2gib_through_the_mount_stays_under_512mib_rss() {
    use cairn_tests::fuse_mount::FuseMount;
    use std::os::unix::fs::FileExt;

    const MOUNT_LIMIT: u64 = 512 << 20;
    const MOUNT_SIZE: u64 = 2 << 30;
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let pid = mount.pid().expect("mount pid");
    let path = mount.join("big");
    let block_of = |i: u64| -> Vec<u8> {
        let mut block = vec![0u8; 1 << 20];
        for (j, b) in block.iter_mut().enumerate() {
            *b = (j as u64 ^ i.wrapping_mul(0x9e37_79b9)).wrapping_mul(31) as u8 ^ (i as u8);
        }
        block[..8].copy_from_slice(&i.to_le_bytes());
        block
    };
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(&path).expect("create on the mount");
            for i in 0..(MOUNT_SIZE >> 20) {
                f.write_all(&block_of(i)).expect("write");
            }
            f.sync_all().expect("fsync");
        })
    };
    let mut peak = 0;
    while !writer.is_finished() {
        peak = peak.max(peak_rss(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.join().expect("writer");
    peak = peak.max(peak_rss(pid).unwrap_or(0));
    assert!(peak > 0, "could not sample the mount's memory");
    assert!(
        peak < MOUNT_LIMIT,
        "mount peak RSS {} MiB writing 2 GiB",
        peak >> 20
    );
    // Spot-check what landed: size, and blocks at both ends and the middle.
    let f = std::fs::File::open(&path).expect("open");
    assert_eq!(f.metadata().expect("stat").len(), MOUNT_SIZE);
    for i in [0, (MOUNT_SIZE >> 21), (MOUNT_SIZE >> 20) - 1] {
        let mut got = vec![0u8; 1 << 20];
        f.read_exact_at(&mut got, i << 20).expect("read");
        assert!(got == block_of(i), "block {i} differs");
    }
}
