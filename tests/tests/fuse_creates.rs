//! Creates answered by the mount and sent to metadata with the file's
//! bytes at close (one commit for a small file): nothing on this mount
//! can tell the difference, other mounts see the file within a second,
//! and exclusive creates still learn at once whether the name was free.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::metrics::served;
use cairn_tests::{random_bytes, DevCluster};

/// Waits (bounded) until `p` exists; its metadata.
fn eventually(p: &Path) -> fs::Metadata {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::metadata(p) {
            Ok(m) => return m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                assert!(Instant::now() < deadline, "{} not seen in 5 s", p.display());
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("stat {}: {e}", p.display()),
        }
    }
}

/// A cluster, a mount (with `opts`) and a second mount, and directory
/// `d` holding `first`. (Fields drop in order: the mounts before the
/// cluster.)
struct SetUp {
    other: FuseMount,
    /// Mounted while the test runs; reached through `dir`.
    mount: FuseMount,
    dir: PathBuf,
    cluster: DevCluster,
}

fn set_up(opts: &[&str]) -> SetUp {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, opts).expect("mounted");
    let other = FuseMount::start(&cluster, &[]).expect("second mount");
    let dir = mount.path().join("d");
    fs::create_dir(&dir).unwrap();
    // The first create in a directory goes at once (the mount learns
    // the directory's attributes from it).
    fs::write(dir.join("first"), b"1").unwrap();
    SetUp {
        other,
        mount,
        dir,
        cluster,
    }
}

#[test]
fn a_small_file_is_created_with_its_bytes_in_one_commit() {
    let SetUp {
        other,
        dir,
        cluster,
        ..
    } = &set_up(&[]);
    let before = (
        served(cluster, "CreateFile"),
        served(cluster, "CreateWith"),
        served(cluster, "WriteInline"),
    );
    let mut want = Vec::new();
    for i in 0..20 {
        let data = random_bytes(100 * i + 1, i as u64);
        fs::write(dir.join(format!("f{i}")), &data).unwrap();
        want.push(data);
    }
    let after = (
        served(cluster, "CreateFile"),
        served(cluster, "CreateWith"),
        served(cluster, "WriteInline"),
    );
    assert_eq!(after.0, before.0, "no separate create");
    assert_eq!(after.1 - before.1, 20, "one create-with-bytes per file");
    assert_eq!(after.2, before.2, "no separate write");
    for (i, data) in want.iter().enumerate() {
        let name = format!("f{i}");
        assert_eq!(&fs::read(dir.join(&name)).unwrap(), data, "{name} here");
        let there = other.path().join("d").join(&name);
        assert_eq!(&fs::read(there).unwrap(), data, "{name} on the other mount");
    }
    let got = cluster.cairn(&["get", "/d/f3", "-"]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(got.stdout, want[3]);
}

#[test]
fn an_open_new_file_is_what_it_would_have_been() {
    let SetUp { other, dir, .. } = &set_up(&[]);

    // Seen here at once, with its buffered size, mode and owner.
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(dir.join("open"))
        .unwrap();
    f.write_all(b"hello").unwrap();
    let m = fs::metadata(dir.join("open")).unwrap();
    assert_eq!((m.len(), m.mode() & 0o777, m.nlink()), (5, 0o640, 1));
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"open".to_string()), "{names:?}");
    // Elsewhere within a second, empty until closed.
    let there = eventually(&other.path().join("d").join("open"));
    assert_eq!(there.len(), 0);
    drop(f);
    assert_eq!(fs::read(other.path().join("d/open")).unwrap(), b"hello");

    // Renamed, chmod'ed, linked and read back while still open.
    let mut g = File::create(dir.join("g")).unwrap();
    g.write_all(b"gee").unwrap();
    fs::rename(dir.join("g"), dir.join("g2")).unwrap();
    fs::set_permissions(dir.join("g2"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::hard_link(dir.join("g2"), dir.join("g3")).unwrap();
    g.write_all(b"!").unwrap();
    drop(g);
    assert_eq!(fs::read(dir.join("g3")).unwrap(), b"gee!");
    let m = fs::metadata(other.path().join("d/g2")).unwrap();
    assert_eq!((m.len(), m.mode() & 0o777, m.nlink()), (4, 0o600, 2));
    assert!(fs::metadata(dir.join("g")).is_err());

    // Read through another handle before the first is closed.
    let mut h = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("h"))
        .unwrap();
    h.write_all(b"abc").unwrap();
    let mut back = String::new();
    File::open(dir.join("h"))
        .unwrap()
        .read_to_string(&mut back)
        .unwrap();
    assert_eq!(back, "abc");
    drop(h);

    // Unlinked while open: gone at once, still usable, nothing left.
    let mut u = File::create(dir.join("u")).unwrap();
    fs::remove_file(dir.join("u")).unwrap();
    u.write_all(b"bytes").unwrap();
    drop(u);
    assert!(fs::metadata(dir.join("u")).is_err());

    // A file that outgrows one commit is created first, then stored.
    let big = random_bytes(3 << 20, 9);
    fs::write(dir.join("big"), &big).unwrap();
    assert_eq!(fs::read(other.path().join("d/big")).unwrap(), big);

    let mut names: Vec<String> = fs::read_dir(other.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".cairn-unlinked"))
        .collect();
    names.sort();
    assert_eq!(names, ["big", "first", "g2", "g3", "h", "open"]);
}

#[test]
fn exclusive_creates_learn_at_once_whether_the_name_was_free() {
    let SetUp {
        other,
        dir,
        cluster,
        ..
    } = &set_up(&[]);
    let creates = served(cluster, "CreateFile");
    let lock = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join("lock"))
        .unwrap();
    assert_eq!(served(cluster, "CreateFile"), creates + 1);
    // The other mount sees it at once and cannot take it.
    std::thread::sleep(Duration::from_millis(1_200));
    let taken = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(other.path().join("d/lock"))
        .unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::AlreadyExists);
    drop(lock);
}

#[test]
fn with_sync_creates_a_create_is_sent_at_once() {
    let SetUp { dir, cluster, .. } = &set_up(&["--sync-creates"]);
    let with = served(cluster, "CreateWith");
    for i in 0..5 {
        fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    assert_eq!(served(cluster, "CreateWith"), with);
    assert_eq!(fs::read(dir.join("f4")).unwrap(), b"x");
}

#[test]
fn a_new_files_times_do_not_move_once_metadata_has_it() {
    let SetUp { other, dir, .. } = &set_up(&[]);
    drop(File::create(dir.join("t")).unwrap());
    // What the kernel was told at the create...
    let told = fs::metadata(dir.join("t")).unwrap();
    // ...is what metadata recorded (asked for again past the attribute
    // TTL, and from another mount).
    std::thread::sleep(Duration::from_millis(1_200));
    let later = fs::metadata(dir.join("t")).unwrap();
    let there = fs::metadata(other.path().join("d/t")).unwrap();
    for m in [&later, &there] {
        assert_eq!(
            (m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()),
            (
                told.mtime(),
                told.mtime_nsec(),
                told.ctime(),
                told.ctime_nsec()
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_of_the_directory_makes_held_creates_durable() {
    let SetUp { dir, cluster, .. } = &set_up(&[]);
    let client = cluster.client().await.expect("client");
    // The directory is opened first: opening it after the creates would
    // itself send them (any other request to the mount does).
    let dirfd = File::open(dir).expect("open dir");
    // Open, not closed: each create is held by the mount (up to 500 ms).
    let held: Vec<File> = (0..5)
        .map(|i| File::create(dir.join(format!("held{i}"))).expect("create"))
        .collect();
    let started = Instant::now();
    dirfd.sync_all().expect("fsync(dir)");
    // Straight from metadata, not through any mount's cache: the names
    // are committed once fsync of their directory returned.
    for i in 0..5 {
        let path = format!("/d/held{i}");
        let found = client.stat(&path).await;
        assert!(
            found.is_ok(),
            "{path} not in metadata {:?} after fsync(dir) returned: {found:?}",
            started.elapsed()
        );
    }
    drop(held);
}

/// How many times the mount logged that a held create found its name
/// taken.
fn taken_creates(mount: &FuseMount) -> usize {
    mount
        .log_text()
        .matches("another client created the name first")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_name_another_client_takes_meanwhile_opens_that_file() {
    use std::os::fd::IntoRawFd;
    let SetUp {
        mount,
        dir,
        cluster,
        ..
    } = &set_up(&[]);
    let client = cluster.client().await.expect("client");
    let theirs = b"THEIRS: the file another client made".to_vec();
    let ours = b"ours".to_vec();
    for truncate in [true, false] {
        // The race is another client's put landing inside this mount's
        // 500 ms hold; try a few names until it does.
        let mut raced = false;
        for attempt in 0..5 {
            let name = format!("raced-{truncate}-{attempt}");
            let before = taken_creates(mount);
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(truncate)
                .open(dir.join(&name))
                .expect("open(O_CREAT)");
            client
                .put(&format!("/d/{name}"), &theirs[..])
                .await
                .expect("the other client's put");
            f.write_all(&ours).expect("write");
            // close(2) itself must succeed: the bytes were accepted.
            let rc = unsafe { libc::close(f.into_raw_fd()) };
            assert_eq!(rc, 0, "close failed: {}", std::io::Error::last_os_error());
            if taken_creates(mount) == before {
                continue; // the hold ended before the put: no race
            }
            raced = true;
            let mut back = Vec::new();
            client
                .get(&format!("/d/{name}"), &mut back)
                .await
                .expect("get");
            let want = if truncate {
                ours.clone()
            } else {
                let mut w = theirs.clone();
                w[..ours.len()].copy_from_slice(&ours);
                w
            };
            assert_eq!(
                String::from_utf8_lossy(&back),
                String::from_utf8_lossy(&want),
                "truncate={truncate}: the open's bytes did not land in the file"
            );
            // Through the mount too, by name and after the kernel's own
            // entry for it has gone stale.
            assert_eq!(fs::read(dir.join(&name)).expect("read"), want);
            break;
        }
        assert!(
            raced,
            "truncate={truncate}: the put never landed inside the hold"
        );
    }
}
