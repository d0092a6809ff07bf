//! The FUSE mount against real tools: tar + diff + git, sqlite, two mounts
//! (close-to-open), random writes checked against local disk, POSIX errnos.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::{random_bytes, DevCluster};
use rand::{Rng, SeedableRng};

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sh(dir: &Path, script: &str) -> Output {
    run(Command::new("sh").arg("-c").arg(script).current_dir(dir))
}

/// The project's own sources plus generated binary files, links and an
/// empty file, in `dest`.
fn make_source_tree(dest: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    fs::create_dir_all(dest).unwrap();
    run(Command::new("sh").arg("-c").arg(format!(
        "tar -C '{}' -cf - proto metadata chunkserver client fuse cli tests bench scripts README.md Cargo.toml Cargo.lock | tar -C '{}' -xf -",
        repo.display(),
        dest.display()
    )));
    let bin = dest.join("generated");
    fs::create_dir(&bin).unwrap();
    fs::write(bin.join("random-3m.bin"), random_bytes(3 << 20, 1)).unwrap();
    fs::write(bin.join("random-100k.bin"), random_bytes(100 << 10, 2)).unwrap();
    fs::write(bin.join("zeros-2m.bin"), vec![0u8; 2 << 20]).unwrap();
    fs::write(bin.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("random-3m.bin", bin.join("link-to-3m")).unwrap();
    fs::hard_link(bin.join("random-100k.bin"), bin.join("hard-100k.bin")).unwrap();
    fs::set_permissions(bin.join("random-3m.bin"), fs::Permissions::from_mode(0o751)).unwrap();
}

#[test]
fn source_tarball_unpacks_identically_and_git_commits_on_the_mount() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_source_tree(&src);
    let tarball = work.path().join("src.tgz");
    run(Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-czf")
        .arg(&tarball)
        .arg("."));

    let tree = mount.join("tree");
    fs::create_dir(&tree).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .arg("-xpzf")
        .arg(&tarball));
    run(Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(&src)
        .arg(&tree));
    let gen = tree.join("generated");
    assert_eq!(
        fs::read_link(gen.join("link-to-3m")).unwrap(),
        Path::new("random-3m.bin")
    );
    assert_eq!(fs::metadata(gen.join("hard-100k.bin")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(gen.join("random-3m.bin")).unwrap().mode() & 0o7777,
        0o751
    );

    sh(
        &tree,
        "git init -q . && git add -A && \
         git -c user.name=cairn -c user.email=cairn@localhost commit -q -m 'source tree' && \
         git fsck --strict 2>&1 && test -z \"$(git status --porcelain)\"",
    );
    let log = sh(&tree, "git log --oneline | wc -l");
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "1");
    drop(mount);
}

#[test]
fn sqlite_inserts_10k_rows_and_the_database_checks_out_from_another_mount() {
    let cluster = DevCluster::start().expect("cluster starts");
    let a = FuseMount::start(&cluster, &[]).expect("first mount");
    let db = a.join("test.db");
    let mut sql = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n");
    for _ in 0..100 {
        sql.push_str(
            "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) \
             INSERT INTO t(v) SELECT hex(randomblob(40)) FROM c; COMMIT;\n",
        );
    }
    let mut child = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 installed (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "sqlite3 inserts failed");
    let check = |db: &Path| {
        let out = run(Command::new("sqlite3")
            .arg(db)
            .arg("PRAGMA integrity_check; SELECT count(*), count(DISTINCT v) FROM t;"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(check(&db), "ok\n10000|10000");
    // Another client sees the closed database whole.
    let b = FuseMount::start(&cluster, &[]).expect("second mount");
    assert_eq!(check(&b.join("test.db")), "ok\n10000|10000");
}

#[test]
fn a_file_closed_in_one_mount_reads_back_exactly_in_another() {
    let cluster = DevCluster::start().expect("cluster starts");
    let a = FuseMount::start(&cluster, &[]).expect("mount a");
    let b = FuseMount::start(&cluster, &[]).expect("mount b");
    let data = random_bytes(5 << 20, 7);
    fs::write(a.join("f"), &data).unwrap();
    assert_eq!(fs::read(b.join("f")).unwrap(), data, "first version");

    // Rewrite the middle and grow the file in a; b, which has the old
    // version cached, must see the new one on its next open.
    let f = OpenOptions::new().write(true).open(a.join("f")).unwrap();
    let patch = random_bytes(64 << 10, 8);
    f.write_all_at(&patch, 2 << 20).unwrap();
    f.write_all_at(b"tail", data.len() as u64).unwrap();
    drop(f);
    let mut want = data.clone();
    want[2 << 20..(2 << 20) + patch.len()].copy_from_slice(&patch);
    want.extend_from_slice(b"tail");
    assert_eq!(fs::read(b.join("f")).unwrap(), want, "second version");

    // Same again with the file held open in b meanwhile and the size
    // unchanged: b's next open still sees the new bytes.
    let held = File::open(b.join("f")).unwrap();
    let f = OpenOptions::new().write(true).open(a.join("f")).unwrap();
    f.write_all_at(b"ABCD", 0).unwrap();
    drop(f);
    want[..4].copy_from_slice(b"ABCD");
    assert_eq!(fs::read(b.join("f")).unwrap(), want, "third version");
    drop(held);

    // Writes not yet closed are not visible elsewhere (the new file shows
    // there, empty, within a second); fsync publishes.
    let mut g = File::create(a.join("g")).unwrap();
    g.write_all(b"pending").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let seen = loop {
        match fs::metadata(b.join("g")) {
            Ok(m) => break m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                assert!(std::time::Instant::now() < deadline, "g not seen in 5 s");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("stat g: {e}"),
        }
    };
    assert_eq!(seen.len(), 0);
    g.sync_all().unwrap();
    assert_eq!(fs::read(b.join("g")).unwrap(), b"pending");
}

#[test]
fn random_writes_truncates_and_reads_match_local_disk() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let local_dir = tempfile::tempdir().unwrap();
    let size: u64 = 64 << 20;
    let initial = random_bytes(size as usize, 11);
    let paths = [local_dir.path().join("f"), mount.join("f")];
    for p in &paths {
        fs::write(p, &initial).unwrap();
    }
    let open = |p: &Path| OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut files = [open(&paths[0]), open(&paths[1])];

    // A small write rewrites only what it touches: the chunkservers store
    // about that much more, not another copy of the chunk around it.
    // (Counted once the background copies have landed.)
    let settled = std::time::Duration::from_secs(60);
    files[1].sync_all().unwrap();
    cluster.wait_replicated(3, settled).expect("3 copies");
    let before = cluster.stored_bytes();
    files[1].write_all_at(&[0xAB; 4096], 33 << 20).unwrap();
    files[0].write_all_at(&[0xAB; 4096], 33 << 20).unwrap();
    files[1].sync_all().unwrap();
    cluster.wait_replicated(3, settled).expect("3 copies");
    let grown = cluster.stored_bytes().saturating_sub(before);
    assert!(
        grown < 1 << 20,
        "a 4 KiB write stored {grown} new bytes (all copies)"
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(0xCA1F);
    for step in 0..300 {
        match rng.random_range(0..100) {
            0..=59 => {
                let off = rng.random_range(0..size + (1 << 20));
                let len = rng.random_range(1..=256 << 10);
                let mut buf = vec![0u8; len];
                rng.fill(&mut buf[..]);
                for f in &files {
                    f.write_all_at(&buf, off).unwrap();
                }
            }
            60..=64 => {
                let to = rng.random_range(0..size + (2 << 20));
                for f in &files {
                    f.set_len(to).unwrap();
                }
            }
            65..=94 => {
                let off = rng.random_range(0..size + (1 << 20));
                let len = rng.random_range(1..=512 << 10);
                let mut got = [vec![0u8; len], vec![0u8; len]];
                for (f, buf) in files.iter().zip(got.iter_mut()) {
                    let n = read_at_most(f, buf, off);
                    buf.truncate(n);
                }
                assert_eq!(got[0], got[1], "step {step}: read of {len} at {off}");
            }
            95..=97 => files[1].sync_all().unwrap(),
            _ => {
                // Close and reopen: the buffered writes go out and come back.
                files = [open(&paths[0]), open(&paths[1])];
            }
        }
    }
    drop(files);
    assert_eq!(
        fs::metadata(&paths[0]).unwrap().len(),
        fs::metadata(&paths[1]).unwrap().len()
    );
    assert!(fs::read(&paths[0]).unwrap() == fs::read(&paths[1]).unwrap());
    // And a fresh client (the CLI) reads the same bytes.
    let got = cluster.cairn(&["get", "/f", "-"]);
    assert!(got.status.success());
    assert!(got.stdout == fs::read(&paths[0]).unwrap());
}

/// The kernel reads a sequential file ahead by several of the mount's
/// 1 MiB requests, not by the 128 KiB FUSE leaves it at: the mount raises
/// its device's window once the kernel's INIT is over (root only).
#[test]
fn the_kernel_reads_ahead_by_more_than_its_fuse_default() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root may raise a mount's readahead");
        return;
    }
    let cluster = DevCluster::start().expect("cluster starts");
    let a = FuseMount::start(&cluster, &[]).expect("mount a");
    let dev = fs::metadata(a.path()).unwrap().dev();
    let file = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let kib: u64 = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {file}: {e}"))
            .trim()
            .parse()
            .expect("a number of KiB");
        if kib >= 1024 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{file} still {kib} KiB 10 s after mounting"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // And reads are still right through the larger window.
    let data = random_bytes(9 << 20, 41);
    fs::write(a.join("f"), &data).unwrap();
    let b = FuseMount::start(&cluster, &[]).expect("mount b");
    assert!(
        fs::read(b.join("f")).unwrap() == data,
        "read back through b"
    );
}

#[test]
fn large_direct_reads_at_scattered_offsets_read_back_exactly() {
    use std::os::unix::fs::OpenOptionsExt;
    let cluster = DevCluster::start().expect("cluster starts");
    let a = FuseMount::start(&cluster, &[]).expect("mount a");
    let data = random_bytes(6 << 20, 31);
    fs::write(a.join("f"), &data).unwrap();
    // A fresh mount (nothing cached) and O_DIRECT (no kernel read-ahead
    // to retry a failed read in smaller pieces): reads that jump around
    // are served as verified ranges of chunks, as large as they come.
    let b = FuseMount::start(&cluster, &[]).expect("mount b");
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(b.join("f"))
        .unwrap();
    const ALIGN: usize = 4096;
    for (off, len) in [
        (3u64 << 20, 256usize << 10),
        (100 << 12, 128 << 10),
        ((5 << 20) + 4096, 1 << 20),
        (4096, 4096),
        (2 << 20, 128 << 10),
    ] {
        let mut space = vec![0u8; len + ALIGN];
        let skip = space.as_ptr().align_offset(ALIGN);
        let buf = &mut space[skip..skip + len];
        let n = read_at_most(&f, buf, off);
        let end = (off as usize + len).min(data.len());
        assert_eq!(n, end - off as usize, "read of {len} at {off}");
        assert!(
            buf[..n] == data[off as usize..end],
            "bytes of {len} at {off}"
        );
    }
}

fn read_at_most(f: &File, buf: &mut [u8], off: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("read at {}: {e}", off + n as u64),
        }
    }
    n
}

fn errno_of(e: std::io::Error) -> i32 {
    e.raw_os_error().expect("an OS error")
}

fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(from.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(to.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated paths; plain syscall.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

#[test]
fn error_paths_return_the_posix_errno() {
    let cluster = DevCluster::start().expect("cluster starts");
    let m = FuseMount::start(&cluster, &[]).expect("mounted");
    fs::create_dir(m.join("d")).unwrap();
    fs::write(m.join("d/f"), b"x").unwrap();
    fs::write(m.join("g"), b"y").unwrap();

    let e = |r: std::io::Result<()>| errno_of(r.expect_err("should fail"));
    assert_eq!(e(fs::remove_dir(m.join("d"))), libc::ENOTEMPTY);
    assert_eq!(
        e(OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(m.join("g"))
            .map(drop)),
        libc::EEXIST
    );
    let long = "n".repeat(256);
    assert_eq!(e(fs::write(m.join(&long), b"")), libc::ENAMETOOLONG);
    assert_eq!(e(fs::create_dir(m.join(&long))), libc::ENAMETOOLONG);
    fs::write(m.join(&"n".repeat(255)), b"ok").unwrap();
    assert_eq!(e(File::open(m.join("missing")).map(drop)), libc::ENOENT);
    assert_eq!(e(fs::create_dir(m.join("g/sub"))), libc::ENOTDIR);
    assert_eq!(e(fs::remove_file(m.join("d"))), libc::EISDIR);
    assert_eq!(e(fs::remove_dir(m.join("g"))), libc::ENOTDIR);
    assert_eq!(e(fs::create_dir(m.join("d"))), libc::EEXIST);
    assert_eq!(e(fs::rename(m.join("d"), m.join("d/inside"))), libc::EINVAL);
    assert_eq!(e(fs::hard_link(m.join("d"), m.join("dlink"))), libc::EPERM);
    assert_eq!(e(fs::rename(m.join("g"), m.join("d"))), libc::EISDIR);
    assert_eq!(
        e(OpenOptions::new().write(true).open(m.join("d")).map(drop)),
        libc::EISDIR
    );

    // renameat2: NOREPLACE refuses, EXCHANGE swaps.
    assert_eq!(
        rename2(&m.join("g"), &m.join("d/f"), libc::RENAME_NOREPLACE),
        Err(libc::EEXIST)
    );
    rename2(&m.join("g"), &m.join("d/f"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(m.join("g")).unwrap(), b"x");
    assert_eq!(fs::read(m.join("d/f")).unwrap(), b"y");

    // Extended attributes.
    let path = std::ffi::CString::new(m.join("g").to_str().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    // SAFETY: valid path, name and buffer.
    let r = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"user.none".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(r, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENODATA)
    );
    // Namespaces the mount does not keep (SELinux labels, ACLs) are not
    // supported, which `ls -l` takes as a reason to stop asking.
    for name in [c"security.selinux", c"system.posix_acl_access"] {
        // SAFETY: valid path, name and buffer.
        let r = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(r, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP),
            "{name:?}"
        );
    }

    // Permissions, checked the POSIX way for a non-root user.
    fs::write(m.join("secret"), b"s").unwrap();
    fs::set_permissions(m.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(m.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |cmd: &str| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                cmd,
            ])
            .current_dir("/")
            .output()
            .expect("setpriv (util-linux)")
    };
    let denied = as_nobody(&format!("cat '{}'", m.join("secret").display()));
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let denied = as_nobody(&format!("touch '{}'", m.join("new").display()));
    assert!(
        !denied.status.success(),
        "nobody created a file in a 0755 root dir"
    );
    let chmod = as_nobody(&format!("chmod 777 '{}'", m.join("g").display()));
    assert!(String::from_utf8_lossy(&chmod.stderr).contains("Operation not permitted"));
    assert!(matches!(fs::metadata(m.join("new")), Err(e) if e.kind() == ErrorKind::NotFound));
    let readable = as_nobody(&format!("cat '{}'", m.join("g").display()));
    assert!(readable.status.success());
}

#[test]
fn an_unlinked_open_file_stays_usable_until_its_last_close() {
    let cluster = DevCluster::start().expect("cluster starts");
    let m = FuseMount::start(&cluster, &[]).expect("mounted");
    let data = random_bytes(3 << 20, 21);
    fs::write(m.join("tmp"), &data).unwrap();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.join("tmp"))
        .unwrap();
    fs::remove_file(m.join("tmp")).unwrap();
    assert!(matches!(fs::metadata(m.join("tmp")), Err(e) if e.kind() == ErrorKind::NotFound));
    // Committed bytes still read; new ones still write and read back.
    let mut buf = vec![0u8; 4096];
    f.read_exact_at(&mut buf, 1 << 20).unwrap();
    assert_eq!(buf, data[1 << 20..(1 << 20) + 4096]);
    f.write_all_at(b"more", 3 << 20).unwrap();
    f.sync_all().unwrap();
    let mut tail = [0u8; 4];
    f.read_exact_at(&mut tail, 3 << 20).unwrap();
    assert_eq!(&tail, b"more");
    drop(f);
    // Gone for good after the last close (the kernel sends the release
    // that removes the hidden name just after close returns).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left: Vec<_> = fs::read_dir(m.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn named_pipes_and_sockets_live_on_the_mount() {
    use std::os::unix::fs::FileTypeExt;

    let cluster = DevCluster::start().expect("cluster starts");
    let m = FuseMount::start(&cluster, &[]).expect("mounted");
    run(Command::new("mkfifo").arg(m.join("fifo")));
    assert!(fs::symlink_metadata(m.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // The pipe itself is the kernel's: bytes pass through it.
    let path = m.join("fifo");
    let writer = std::thread::spawn(move || fs::write(path, b"through the pipe"));
    assert_eq!(fs::read(m.join("fifo")).unwrap(), b"through the pipe");
    writer.join().unwrap().unwrap();

    let listener = std::os::unix::net::UnixListener::bind(m.join("sock")).unwrap();
    assert!(fs::symlink_metadata(m.join("sock"))
        .unwrap()
        .file_type()
        .is_socket());
    drop(listener);
    fs::remove_file(m.join("sock")).unwrap();
    fs::remove_file(m.join("fifo")).unwrap();
    assert_eq!(fs::read_dir(m.path()).unwrap().count(), 0);
}

#[test]
fn access_and_modification_times_are_set_and_kept() {
    let cluster = DevCluster::start().expect("cluster starts");
    let m = FuseMount::start(&cluster, &[]).expect("mounted");
    fs::write(m.join("t"), b"x").unwrap();
    run(Command::new("touch")
        .args(["-a", "-d", "2001-02-03 04:05:06.7 UTC"])
        .arg(m.join("t")));
    run(Command::new("touch")
        .args(["-m", "-d", "2010-01-01 00:00:00 UTC"])
        .arg(m.join("t")));
    let md = fs::metadata(m.join("t")).unwrap();
    assert_eq!((md.atime(), md.atime_nsec()), (981_173_106, 700_000_000));
    assert_eq!(md.mtime(), 1_262_304_000);
    // Reading does not move the access time (a noatime mount).
    fs::read(m.join("t")).unwrap();
    drop(m);
    let again = FuseMount::start(&cluster, &[]).expect("mounted again");
    let md = fs::metadata(again.join("t")).unwrap();
    assert_eq!((md.atime(), md.mtime()), (981_173_106, 1_262_304_000));
}
