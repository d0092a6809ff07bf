//! Directories read through the mount a page at a time, with attributes
//! (`readdirplus`) while the reader stats the names: every name once, the
//! stats answered by the kernel from the listing with no lookup each, and
//! no attributes older than this mount's own changes.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cairn_proto::meta_rpc::Owner;
use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::metrics::served;
use cairn_tests::DevCluster;

/// Long caches, so the tests' steps fall well inside them on a slow box.
const TTLS: [&str; 4] = ["--attr-ttl", "10", "--entry-ttl", "10"];
/// More than a page of names (4,096) and five pages with attributes
/// (1,024 each).
const NAMES: usize = 5_200;
/// Of which this many hold bytes (file `i`: `i` bytes).
const WITH_DATA: usize = 12;

const FILE: Owner = Owner {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

/// `/many` with [`NAMES`] files, made through the library.
async fn many(cluster: &DevCluster) -> BTreeMap<String, u64> {
    let client = cluster.client().await.expect("client");
    let dir = client.mkdir("/many", false).await.expect("mkdir").ino;
    // 16 writers at a time.
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..16 {
        let c = client.clone();
        writers.spawn(async move {
            for i in (WITH_DATA..NAMES).filter(|i| i % 16 == w) {
                c.inodes()
                    .create(dir, &format!("n{i:05}"), FILE)
                    .await
                    .expect("create");
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        r.expect("a writer");
    }
    for i in 0..WITH_DATA {
        client
            .put(&format!("/many/n{i:05}"), &vec![3u8; i][..])
            .await
            .expect("put");
    }
    (0..NAMES)
        .map(|i| (format!("n{i:05}"), if i < WITH_DATA { i as u64 } else { 0 }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_many_pages_lists_each_name_once_and_stats_without_lookups() {
    let cluster = DevCluster::start().expect("cluster starts");
    let want = many(&cluster).await;

    // As `ls -l` reads: a stat of each name as it comes.
    let mount = FuseMount::start(&cluster, &TTLS).expect("mounted");
    let dir = mount.join("many");
    fs::metadata(&dir).expect("the directory");
    let lookups = served(&cluster, "Lookup");
    let mut seen = BTreeMap::new();
    for e in fs::read_dir(&dir).expect("opendir") {
        let e = e.expect("readdir");
        let len = fs::symlink_metadata(e.path()).expect("stat").len();
        let name = e.file_name().into_string().expect("UTF-8");
        assert!(seen.insert(name.clone(), len).is_none(), "{name} twice");
    }
    assert_eq!(seen, want);
    let asked = served(&cluster, "Lookup") - lookups;
    // (Without attributes in the listing, the mount's own read-ahead of
    // lookups asks three before it lists the directory.)
    assert!(
        asked <= 1,
        "{asked} lookups for {NAMES} stats: the listing did not carry the attributes"
    );

    // Names only (as `find` reads), on a mount that has seen none of them.
    let other = FuseMount::start(&cluster, &TTLS).expect("second mount");
    let names: Vec<String> = fs::read_dir(other.join("many"))
        .expect("opendir")
        .map(|e| {
            e.expect("readdir")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .collect();
    assert_eq!(names.len(), NAMES, "every name once");
    assert!(names.iter().zip(want.keys()).all(|(a, b)| a == b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_read_on_after_this_mounts_change_gives_the_new_attributes() {
    let cluster = DevCluster::start().expect("cluster starts");
    many(&cluster).await;
    let mount = FuseMount::start(&cluster, &TTLS).expect("mounted");
    let dir = mount.join("many");
    let changed = dir.join("n00900");

    // The first read holds a page of attributes from before the change.
    let mut stream = DirStream::open(&dir);
    assert_eq!(stream.next().as_deref(), Some("."));
    let mut f = OpenOptions::new().append(true).open(&changed).unwrap();
    f.write_all(b"345678").unwrap();
    drop(f);
    assert_eq!(fs::metadata(&changed).unwrap().len(), 6);
    // Read on as `ls -l` does, a stat of each name as it comes (which
    // keeps the kernel asking for attributes).
    let mut sizes = BTreeMap::new();
    while let Some(n) = stream.next() {
        let len = fs::symlink_metadata(dir.join(&n)).expect("stat").len();
        sizes.insert(n, len);
    }
    assert_eq!(sizes.len(), NAMES + 1, "every name once");
    assert_eq!(
        sizes.get("n00900"),
        Some(&6),
        "the listing gave the kernel attributes from before this mount's change"
    );
    assert_eq!(fs::metadata(&changed).unwrap().len(), 6);

    // A rewind sees the directory as it is now.
    fs::remove_file(dir.join("n00007")).unwrap();
    let again = stream.rewound();
    assert_eq!(
        again.len(),
        NAMES + 1,
        "{} names after the unlink",
        again.len()
    );
    assert!(!again.iter().any(|n| n == "n00007"));
    assert!(fs::metadata(dir.join("n00007")).is_err(), "n00007 is gone");
}

/// A directory stream kept open across reads, as libc gives it.
struct DirStream(*mut libc::DIR);

impl DirStream {
    fn open(path: &Path) -> DirStream {
        let p = CString::new(path.as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        let d = unsafe { libc::opendir(p.as_ptr()) };
        assert!(!d.is_null(), "opendir {}", path.display());
        DirStream(d)
    }

    /// The next name, if any.
    fn next(&mut self) -> Option<String> {
        // SAFETY: `self.0` is an open stream; the entry is copied before
        // the next call.
        unsafe {
            let e = libc::readdir(self.0);
            if e.is_null() {
                return None;
            }
            let name = CStr::from_ptr((*e).d_name.as_ptr());
            Some(name.to_string_lossy().into_owned())
        }
    }

    /// Every name, from the start again (`rewinddir`).
    fn rewound(&mut self) -> Vec<String> {
        // SAFETY: `self.0` is an open stream.
        unsafe { libc::rewinddir(self.0) };
        let mut out = Vec::new();
        while let Some(n) = self.next() {
            out.push(n);
        }
        out
    }
}

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once.
        unsafe { libc::closedir(self.0) };
    }
}
