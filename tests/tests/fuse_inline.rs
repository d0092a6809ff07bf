//! Tiny files keep their bytes inline in metadata: written through the
//! mount without a chunk, read back exactly (here, from another mount and
//! with `cairn get`), and moved into chunks when they outgrow the limit.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use cairn_proto::meta_rpc::MAX_INLINE;
use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::metrics::served;
use cairn_tests::{random_bytes, DevCluster};

#[test]
fn tiny_files_store_no_chunk_and_read_back_everywhere() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let other = FuseMount::start(&cluster, &[]).expect("second mount");
    let dir = mount.path();

    let small = random_bytes(4096, 1);
    fs::write(dir.join("small"), &small).unwrap();
    let edge = random_bytes(MAX_INLINE as usize, 2);
    fs::write(dir.join("edge"), &edge).unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    assert_eq!(
        cluster.stored_bytes(),
        0,
        "files within {MAX_INLINE} bytes should store no chunk"
    );

    assert_eq!(fs::read(other.path().join("small")).unwrap(), small);
    assert_eq!(fs::read(other.path().join("edge")).unwrap(), edge);
    assert_eq!(fs::read(other.path().join("empty")).unwrap(), b"");
    let got = cluster.cairn(&["get", "/small", "-"]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(got.stdout, small);

    // A write into the middle stays inline.
    let f = OpenOptions::new()
        .write(true)
        .open(dir.join("small"))
        .unwrap();
    f.write_all_at(b"MIDDLE", 100).unwrap();
    drop(f);
    let mut want = small.clone();
    want[100..106].copy_from_slice(b"MIDDLE");
    assert_eq!(fs::read(other.path().join("small")).unwrap(), want);
    assert_eq!(cluster.stored_bytes(), 0);
}

#[test]
fn a_tiny_file_that_grows_moves_into_chunks_intact() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let other = FuseMount::start(&cluster, &[]).expect("second mount");
    let path = mount.path().join("grows");

    let head = random_bytes(3000, 3);
    fs::write(&path, &head).unwrap();
    // Append past the limit, in another open: the inline bytes must come
    // along into the chunk.
    let tail = random_bytes(3 * MAX_INLINE as usize, 4);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&tail).unwrap();
    drop(f);
    let mut want = head.clone();
    want.extend_from_slice(&tail);
    assert_eq!(fs::read(other.path().join("grows")).unwrap(), want);
    assert!(cluster.stored_bytes() > 0);

    // A tiny file written far past its end: its start stays, a hole
    // between reads as zeros.
    let sparse = mount.path().join("sparse");
    fs::write(&sparse, b"start").unwrap();
    let mut f = OpenOptions::new().write(true).open(&sparse).unwrap();
    f.seek(SeekFrom::Start(1 << 20)).unwrap();
    f.write_all(b"end").unwrap();
    drop(f);
    let got = fs::read(other.path().join("sparse")).unwrap();
    assert_eq!(got.len(), (1 << 20) + 3);
    assert_eq!(&got[..5], b"start");
    assert!(got[5..1 << 20].iter().all(|b| *b == 0));
    assert_eq!(&got[1 << 20..], b"end");

    // Truncated back under the limit and rewritten: inline again.
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    fs::write(&path, b"tiny again").unwrap();
    assert_eq!(fs::read(other.path().join("grows")).unwrap(), b"tiny again");
    let got = cluster.cairn(&["get", "/grows", "-"]);
    assert_eq!(got.stdout, b"tiny again");
}

#[test]
fn opening_a_tiny_file_to_read_fetches_its_bytes_once() {
    let cluster = DevCluster::start().expect("cluster starts");
    let mount = FuseMount::start(&cluster, &[]).expect("mounted");
    let files: Vec<Vec<u8>> = (0..10)
        .map(|i| random_bytes(300 * i + 1, i as u64))
        .collect();
    for (i, data) in files.iter().enumerate() {
        fs::write(mount.join(&format!("f{i}")), data).unwrap();
    }
    // A fresh mount: nothing cached. The bytes come with the open (one
    // read answers the attributes and the content), and the read needs
    // nothing more: not even the attributes again (the open found the
    // version the kernel was told at the lookup, so they stay cached for
    // `read_to_end`'s `fstat` and its read past the end; long TTLs so
    // that a slow box does not see them expire). (An `fstat` after the
    // read would ask: a read makes the kernel drop the access time.)
    let ttls = ["--attr-ttl", "30", "--entry-ttl", "30"];
    let reader = FuseMount::start(&cluster, &ttls).expect("second mount");
    let asked = || {
        [
            served(&cluster, "Open"),
            served(&cluster, "GetContent"),
            served(&cluster, "GetAttr"),
        ]
    };
    for (i, data) in files.iter().enumerate() {
        let path = reader.join(&format!("f{i}"));
        fs::symlink_metadata(&path).unwrap();
        let [opens, contents, attrs] = asked();
        let mut f = fs::File::open(&path).unwrap();
        assert_eq!(asked(), [opens + 1, contents, attrs], "at open");
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(&got, data);
        assert_eq!(asked(), [opens + 1, contents, attrs], "after the read");
    }
}
