//! `CommitObject`: a file and its attributes committed together, and
//! content-bound attributes dropped when the bytes change another way.

use super::*;
use cairn_proto::meta_rpc::CONTENT_BOUND_XATTR_PREFIX;

fn bound(name: &str) -> String {
    format!("{CONTENT_BOUND_XATTR_PREFIX}{name}")
}

impl Ns {
    fn commit_object(
        &mut self,
        name: &str,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> crate::command::CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::CommitObject {
                parent: InodeId::ROOT,
                name: name.into(),
                extents: vec![Extent {
                    offset: 0,
                    len: data.len() as u64,
                    chunk: ChunkId::of(data),
                    chunk_offset: 0,
                }],
                size: data.len() as u64,
                owner: OWNER,
                xattrs: xattrs
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_vec()))
                    .collect(),
            },
            now_ns,
        })
    }

    fn set_user_xattr(&mut self, ino: InodeId, name: &str, value: &[u8]) {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::SetXattr {
                ino,
                name: name.into(),
                value: value.to_vec(),
                mode: cairn_proto::meta_rpc::XattrMode::Upsert,
            },
            now_ns,
        })
        .unwrap();
    }
}

#[test]
fn an_object_commit_sets_exactly_its_attributes_with_its_bytes() {
    let mut ns = Ns::new();
    let etag = bound("etag");
    let a = ns
        .commit_object("o", b"one", &[(&etag, b"1"), ("user.type", b"text")])
        .unwrap()
        .unwrap();
    assert_eq!(a.size, 3);
    assert_eq!(ns.refs(b"one"), 1);
    assert_eq!(get_xattr(&ns.kv, a.ino, &etag).unwrap(), b"1");
    assert_eq!(get_xattr(&ns.kv, a.ino, "user.type").unwrap(), b"text");
    // A replacement keeps the inode but none of the old attributes.
    let b = ns
        .commit_object("o", b"two!", &[(&etag, b"2")])
        .unwrap()
        .unwrap();
    assert_eq!(b.ino, a.ino);
    assert_eq!(b.size, 4);
    assert_eq!(ns.refs(b"one"), 0);
    assert_eq!(get_xattr(&ns.kv, a.ino, &etag).unwrap(), b"2");
    assert!(get_xattr(&ns.kv, a.ino, "user.type").is_err());
}

#[test]
fn a_refused_object_commit_changes_nothing() {
    let mut ns = Ns::new();
    let too_big = vec![0u8; cairn_proto::meta_rpc::MAX_XATTR_VALUE + 1];
    let r = ns.commit_object("o", b"one", &[("user.big", &too_big)]);
    assert_eq!(Ns::code(r), ErrorCode::InvalidRequest);
    assert!(lookup(&ns.kv, InodeId::ROOT, "o").is_err());
    assert_eq!(ns.refs(b"one"), 0);
}

#[test]
fn content_bound_attributes_go_when_the_bytes_change_another_way() {
    let mut ns = Ns::new();
    let etag = bound("etag");
    let ino = ns
        .commit_object("o", b"one", &[(&etag, b"1")])
        .unwrap()
        .unwrap()
        .ino;
    ns.set_user_xattr(ino, "user.keep", b"k");
    // Attribute changes that leave the bytes alone keep it.
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::SetAttr {
            ino,
            change: AttrChange {
                mode: Some(0o600),
                ..Default::default()
            },
        },
        now_ns,
    })
    .unwrap();
    assert_eq!(get_xattr(&ns.kv, ino, &etag).unwrap(), b"1");
    // A write through the file API drops it, and only it.
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::WriteExtents {
            ino,
            extents: vec![Extent {
                offset: 0,
                len: 3,
                chunk: ChunkId::of(b"new"),
                chunk_offset: 0,
            }],
        },
        now_ns,
    })
    .unwrap();
    assert!(get_xattr(&ns.kv, ino, &etag).is_err());
    assert_eq!(get_xattr(&ns.kv, ino, "user.keep").unwrap(), b"k");

    // So do a truncate and a whole-file commit.
    for step in 0..2 {
        ns.set_user_xattr(ino, &etag, b"x");
        let now_ns = ns.now;
        if step == 0 {
            ns.run(Command::Ns {
                write: NsWrite::SetAttr {
                    ino,
                    change: AttrChange {
                        size: Some(1),
                        ..Default::default()
                    },
                },
                now_ns,
            })
            .unwrap();
        } else {
            ns.commit(InodeId::ROOT, "o", &[(b"again", 5)]).unwrap();
        }
        assert!(get_xattr(&ns.kv, ino, &etag).is_err(), "step {step}");
    }
}
