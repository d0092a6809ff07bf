//! Lookups answered from a directory listing the mount fetches ahead
//! (after a few lookups in one directory): the mount's own changes show at
//! once, another mount's within the entry TTL, as with the kernel's cache.
//! Creating files one after another asks metadata neither whether each
//! name is free nor for the directory's attributes after each create;
//! removing them asks no lookups either.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::metrics::served;
use cairn_tests::DevCluster;

const FILES: usize = 40;

fn len_of(p: &Path) -> Option<u64> {
    match fs::metadata(p) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("stat {}: {e}", p.display()),
    }
}

/// Longer than the mount's entry TTL: the kernel has forgotten the
/// names and asks the mount again.
const PAST_KERNEL_TTL: Duration = Duration::from_millis(1_200);

/// `FILES` files in `dir`, file `i` holding `i` bytes; then every one
/// stat'ed twice, which lists the directory ahead.
fn fill_and_stat(dir: &Path) {
    fs::create_dir(dir).unwrap();
    for i in 0..FILES {
        fs::write(dir.join(format!("f{i}")), vec![7u8; i]).unwrap();
    }
    std::thread::sleep(PAST_KERNEL_TTL);
    for _ in 0..2 {
        for i in 0..FILES {
            assert_eq!(len_of(&dir.join(format!("f{i}"))), Some(i as u64));
        }
    }
    assert_eq!(len_of(&dir.join("never-made")), None);
}

/// How many directory listings with attributes metadata has served.
fn listings(cluster: &DevCluster) -> u64 {
    served(cluster, "ReadDirPlus")
}

#[test]
fn a_listed_directory_shows_this_mounts_changes_at_once() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let dir = mount.path().join("d");
    fill_and_stat(&dir);
    let listed = listings(&cluster);
    assert!(listed >= 1, "the stats did not list the directory ahead");

    fs::remove_file(dir.join("f0")).unwrap();
    assert_eq!(len_of(&dir.join("f0")), None);
    fs::write(dir.join("new"), b"hello").unwrap();
    assert_eq!(len_of(&dir.join("new")), Some(5));
    fs::rename(dir.join("f1"), dir.join("f1-moved")).unwrap();
    assert_eq!(len_of(&dir.join("f1")), None);
    assert_eq!(len_of(&dir.join("f1-moved")), Some(1));
    OpenOptions::new()
        .write(true)
        .open(dir.join("f2"))
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_eq!(len_of(&dir.join("f2")), Some(0));
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.join("f3"))
        .unwrap();
    f.write_all(b"more").unwrap();
    drop(f);
    assert_eq!(len_of(&dir.join("f3")), Some(3 + 4));
    fs::set_permissions(dir.join("f4"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::metadata(dir.join("f4")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    fs::create_dir(dir.join("sub")).unwrap();
    assert!(fs::metadata(dir.join("sub")).unwrap().is_dir());

    // Lookups keep coming: the directory is listed again, and the new
    // listing agrees with everything above.
    std::thread::sleep(PAST_KERNEL_TTL);
    for _ in 0..2 {
        for i in 5..FILES {
            assert_eq!(len_of(&dir.join(format!("f{i}"))), Some(i as u64));
        }
        assert_eq!(len_of(&dir.join("f0")), None);
        assert_eq!(len_of(&dir.join("f1-moved")), Some(1));
        assert_eq!(len_of(&dir.join("f3")), Some(7));
        assert_eq!(len_of(&dir.join("new")), Some(5));
    }
    assert!(
        listings(&cluster) > listed,
        "no new listing after the changes"
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), FILES + 1, "{names:?}");
    assert!(names.contains(&"sub".to_string()));
}

#[test]
fn another_mounts_changes_show_within_the_entry_ttl() {
    let cluster = DevCluster::start().expect("cluster starts");
    let writer = FuseMount::start(&cluster, &[]).expect("first mount");
    let reader = FuseMount::start(&cluster, &[]).expect("second mount");
    fill_and_stat(&writer.path().join("d"));
    let seen = reader.path().join("d");
    for i in 0..FILES {
        assert_eq!(len_of(&seen.join(format!("f{i}"))), Some(i as u64));
    }

    let d = writer.path().join("d");
    fs::remove_file(d.join("f0")).unwrap();
    fs::write(d.join("f1"), b"rewritten, longer").unwrap();
    fs::write(d.join("late"), b"x").unwrap();

    // The entry TTL is 1 s; allow for a slow machine, but bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = (
            len_of(&seen.join("f0")),
            len_of(&seen.join("f1")),
            len_of(&seen.join("late")),
        );
        if now == (None, Some(17), Some(1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second mount still sees {now:?} 5 s after the change"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn creating_and_removing_files_in_a_row_asks_no_lookups_and_no_parent_stats() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("first mount");
    let other = FuseMount::start(&cluster, &[]).expect("second mount");
    let dir = mount.path().join("d");
    fs::create_dir(&dir).unwrap();
    // The first few names are looked up in metadata, then the directory
    // is listed.
    for i in 0..8 {
        fs::write(dir.join(format!("warm{i}")), b"w").unwrap();
    }
    let creates = |c| served(c, "CreateFile") + served(c, "CreateWith");
    let (lookups, stats, created, inline_writes) = (
        served(&cluster, "Lookup"),
        served(&cluster, "GetAttr"),
        creates(&cluster),
        served(&cluster, "WriteInline"),
    );
    let mut mtime = fs::metadata(&dir).unwrap().modified().unwrap();
    for i in 0..FILES {
        fs::write(dir.join(format!("f{i}")), vec![1u8; i]).unwrap();
        // The directory's attributes still change with every create.
        let now = fs::metadata(&dir).unwrap().modified().unwrap();
        assert!(
            now > mtime,
            "create {i} left the directory's mtime at {now:?}"
        );
        mtime = now;
    }
    assert_eq!(creates(&cluster) - created, FILES as u64);
    // Each file was created with its bytes in one commit.
    assert_eq!(served(&cluster, "WriteInline"), inline_writes);
    let asked = served(&cluster, "Lookup") - lookups;
    let statted = served(&cluster, "GetAttr") - stats;
    // One listing may expire and its lookups start over once or twice
    // on a slow machine; one per file would be FILES.
    assert!(asked <= 2 * 4, "{asked} lookups for {FILES} creates");
    assert!(
        statted <= 4,
        "{statted} attribute reads for {FILES} creates"
    );

    // What this mount answered is what metadata holds: another mount
    // sees the same directory attributes and names.
    let mine = fs::metadata(&dir).unwrap();
    std::thread::sleep(PAST_KERNEL_TTL);
    let theirs = fs::metadata(other.path().join("d")).unwrap();
    assert_eq!(mine.modified().unwrap(), theirs.modified().unwrap());
    assert_eq!(
        fs::read_dir(other.path().join("d")).unwrap().count(),
        FILES + 8
    );
    // Names removed and added again are seen right away.
    fs::remove_file(dir.join("f3")).unwrap();
    assert_eq!(len_of(&dir.join("f3")), None);
    fs::write(dir.join("f3"), b"again").unwrap();
    assert_eq!(len_of(&dir.join("f3")), Some(5));
    assert_eq!(len_of(&dir.join("f4")), Some(4));

    // Removing files one after another: each unlink stales only the file
    // it removes, so the names after it are still answered from the
    // listing (fetched after a few lookups).
    std::thread::sleep(PAST_KERNEL_TTL);
    let lookups = served(&cluster, "Lookup");
    for i in 0..FILES {
        fs::remove_file(dir.join(format!("f{i}"))).unwrap();
    }
    let asked = served(&cluster, "Lookup") - lookups;
    assert!(asked <= 2 * 4, "{asked} lookups for {FILES} unlinks");
    for i in 0..FILES {
        assert_eq!(len_of(&dir.join(format!("f{i}"))), None);
    }
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 8);
}
