//! Unlinks answered by the mount and applied in the background, many at
//! a time: nothing on this mount can tell the difference, `fsync` of the
//! directory makes them durable (and reports one that failed), and other
//! mounts see the names gone once it returns.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::DevCluster;

/// Long caches, so the tests' steps fall well inside them on a slow box.
const TTLS: [&str; 4] = ["--attr-ttl", "10", "--entry-ttl", "10"];

/// A cluster, a mount (with `opts`) and a second mount, and directory
/// `d`. (Fields drop in order: the mounts before the cluster.)
struct SetUp {
    other: FuseMount,
    // Mounted while the test runs; reached through `dir`.
    _mount: FuseMount,
    dir: PathBuf,
    cluster: DevCluster,
}

fn set_up(opts: &[&str]) -> SetUp {
    let cluster = DevCluster::start().expect("cluster starts");
    let opts: Vec<&str> = TTLS.iter().copied().chain(opts.iter().copied()).collect();
    let mount = FuseMount::start(&cluster, &opts).expect("mounted");
    let other = FuseMount::start(&cluster, &[]).expect("second mount");
    let dir = mount.path().join("d");
    fs::create_dir(&dir).unwrap();
    SetUp {
        other,
        _mount: mount,
        dir,
        cluster,
    }
}

fn gone(p: &Path) -> bool {
    matches!(fs::symlink_metadata(p), Err(e) if e.kind() == ErrorKind::NotFound)
}

/// Every metadata node paused until dropped (even when the test fails).
struct Paused<'a>(&'a DevCluster);

impl<'a> Paused<'a> {
    fn all(cluster: &'a DevCluster) -> Self {
        for m in cluster.meta_names() {
            cluster.pause(&m).expect("pause");
        }
        Paused(cluster)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        for m in self.0.meta_names() {
            let _ = self.0.resume(&m);
        }
    }
}

/// Runs `f` on a thread; its result if it finishes within `wait`.
fn within<T: Send + 'static>(
    wait: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (Option<T>, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    (rx.recv_timeout(wait).ok(), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlink_is_answered_before_metadata_applies_it_and_durable_at_fsyncdir() {
    let SetUp {
        other,
        dir,
        cluster,
        ..
    } = &set_up(&[]);
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    for n in &names {
        fs::write(dir.join(n), n.as_bytes()).unwrap();
    }
    fs::write(dir.join("kept"), b"k").unwrap();
    let dirfd = File::open(dir).expect("open dir");
    let client = cluster.client().await.expect("client");
    let before = fs::metadata(dir).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));

    {
        // With metadata silent, the unlinks are still answered at once,
        // and this mount already sees the names gone.
        let paused = Paused::all(cluster);
        let d = dir.clone();
        let rm = names.clone();
        let (done, _rx) = within(Duration::from_secs(5), move || {
            rm.iter()
                .map(|n| fs::remove_file(d.join(n)))
                .collect::<Vec<_>>()
        });
        let done = done.expect("the unlinks were answered while metadata was paused");
        assert!(done.iter().all(|r| r.is_ok()), "{done:?}");
        for n in &names {
            assert!(gone(&dir.join(n)), "{n} still seen here");
        }
        // The directory's times moved, as the unlinks will leave them.
        let after = fs::metadata(dir).unwrap().modified().unwrap();
        assert!(after > before, "{after:?} not after {before:?}");
        drop(paused);
    }

    // fsync(dir) returns once every one is applied: metadata has none.
    dirfd.sync_all().expect("fsync(dir)");
    for n in &names {
        let path = format!("/d/{n}");
        let found = client.stat(&path).await;
        assert!(found.is_err(), "{path} still in metadata after fsync(dir)");
        assert!(
            gone(&other.path().join("d").join(n)),
            "{n} on the other mount"
        );
    }
    let mut listed: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ["kept"]);
    assert_eq!(fs::read(dir.join("kept")).unwrap(), b"k");
}

#[test]
fn nothing_on_the_mount_sees_a_pending_unlink() {
    let SetUp { dir, .. } = &set_up(&[]);
    // Removed and made again at once: the new file, not the old one.
    fs::write(dir.join("a"), b"old").unwrap();
    fs::remove_file(dir.join("a")).unwrap();
    fs::write(dir.join("a"), b"new").unwrap();
    assert_eq!(fs::read(dir.join("a")).unwrap(), b"new");
    fs::remove_file(dir.join("a")).unwrap();
    File::create_new(dir.join("a")).expect("the name is free");

    // A link count is right at once.
    fs::write(dir.join("l1"), b"linked").unwrap();
    fs::hard_link(dir.join("l1"), dir.join("l2")).unwrap();
    assert_eq!(fs::metadata(dir.join("l2")).unwrap().nlink(), 2);
    fs::remove_file(dir.join("l1")).unwrap();
    assert_eq!(fs::metadata(dir.join("l2")).unwrap().nlink(), 1);
    assert_eq!(fs::read(dir.join("l2")).unwrap(), b"linked");

    // rm -r: every file, then the directory that held them.
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    for i in 0..50 {
        fs::write(sub.join(format!("s{i}")), b"s").unwrap();
    }
    for i in 0..50 {
        fs::remove_file(sub.join(format!("s{i}"))).unwrap();
    }
    fs::remove_dir(&sub).expect("empty once its unlinks landed");
    assert!(gone(&sub));

    // Renamed onto a name whose unlink is pending.
    fs::write(dir.join("r1"), b"r1").unwrap();
    fs::write(dir.join("r2"), b"r2").unwrap();
    fs::remove_file(dir.join("r2")).unwrap();
    fs::rename(dir.join("r1"), dir.join("r2")).unwrap();
    assert_eq!(fs::read(dir.join("r2")).unwrap(), b"r1");
    assert!(gone(&dir.join("r1")));
}

#[test]
fn fsync_of_the_directory_reports_an_unlink_that_failed() {
    let SetUp { other, dir, .. } = &set_up(&[]);
    // This mount knows "x" as a file (for the 10 s entry TTL)...
    fs::write(dir.join("x"), b"x").unwrap();
    assert!(fs::metadata(dir.join("x")).unwrap().is_file());
    // ...while another mount makes it a directory.
    let there = other.path().join("d/x");
    fs::remove_file(&there).unwrap();
    fs::create_dir(&there).unwrap();
    let dirfd = File::open(dir).expect("open dir");
    // The unlink is answered, then refused by metadata: fsync(dir) says so
    // once, and the directory is still there.
    fs::remove_file(dir.join("x")).expect("answered by the mount");
    let err = dirfd
        .sync_all()
        .expect_err("fsync(dir) reports the failure");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    dirfd.sync_all().expect("reported once");
    assert!(fs::metadata(&there).unwrap().is_dir());
    assert!(
        fs::metadata(dir.join("x")).unwrap().is_dir(),
        "seen here too"
    );
}

#[test]
fn with_sync_unlinks_an_unlink_waits_for_metadata() {
    let SetUp { dir, cluster, .. } = &set_up(&["--sync-unlinks"]);
    fs::write(dir.join("f"), b"f").unwrap();
    let paused = Paused::all(cluster);
    let d = dir.clone();
    let (early, rx) = within(Duration::from_secs(1), move || fs::remove_file(d.join("f")));
    assert!(early.is_none(), "answered while metadata was paused");
    drop(paused);
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("answered once metadata is back");
    r.expect("unlinked");
    assert!(gone(&dir.join("f")));
}
