//! Partial writes, links, extended attributes and rename modes.

use super::*;
use cairn_proto::meta_rpc::{RenameMode, XattrMode};
use proptest::prelude::*;

impl Ns {
    pub(super) fn create(&mut self, parent: InodeId, name: &str) -> crate::command::CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::CreateFile {
                parent,
                name: name.into(),
                owner: OWNER,
            },
            now_ns,
        })
    }

    /// Writes `len` bytes at `offset` from a chunk named by `tag`.
    pub(super) fn write_extent(
        &mut self,
        ino: InodeId,
        offset: u64,
        len: u64,
        tag: u8,
    ) -> crate::command::CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::WriteExtents {
                ino,
                extents: vec![Extent {
                    offset,
                    len,
                    chunk: ChunkId::of(&[tag]),
                    chunk_offset: 0,
                }],
            },
            now_ns,
        })
    }

    /// As [`Ns::write_extent`], which must succeed.
    fn write(&mut self, ino: InodeId, offset: u64, len: u64, tag: u8) -> InodeAttr {
        self.write_extent(ino, offset, len, tag).unwrap().unwrap()
    }

    /// The file's bytes as tags: each byte is the tag of the chunk it comes
    /// from (0 in holes); checks that every extent slice lies in chunk
    /// offsets consistent with its position.
    fn tags(&self, ino: InodeId) -> Vec<u8> {
        let size = get_attr(&self.kv, ino).unwrap().size as usize;
        let (ext, more, _) = extents(&self.kv, ino, 0, 8192).unwrap();
        assert!(!more);
        let mut out = vec![0u8; size];
        for e in ext {
            let tag = (1..=255u8)
                .find(|t| ChunkId::of(&[*t]) == e.chunk)
                .expect("known chunk");
            for b in &mut out[e.offset as usize..(e.offset + e.len) as usize] {
                *b = tag;
            }
        }
        out
    }

    fn rename(
        &mut self,
        from: (InodeId, &str),
        to: (InodeId, &str),
        mode: RenameMode,
    ) -> crate::command::CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::Rename {
                parent: from.0,
                name: from.1.into(),
                new_parent: to.0,
                new_name: to.1.into(),
                mode,
            },
            now_ns,
        })
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, len: u64, tag: u8 },
    Truncate(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..300, 1u64..80, 1u8..=20).prop_map(|(offset, len, tag)| Op::Write { offset, len, tag }),
        1 => (0u64..300).prop_map(Op::Truncate),
    ]
}

proptest! {
    /// Random writes and truncates keep the extent map equal to a plain
    /// byte array, and every chunk's refcount equal to the extents naming it.
    #[test]
    fn partial_writes_match_a_byte_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut ns = Ns::new();
        let ino = ns.create(InodeId::ROOT, "f").unwrap().unwrap().ino;
        let mut model: Vec<u8> = Vec::new();
        for op in ops {
            match op {
                Op::Write { offset, len, tag } => {
                    let a = ns.write(ino, offset, len, tag);
                    let end = (offset + len) as usize;
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[offset as usize..end].fill(tag);
                    prop_assert_eq!(a.size as usize, model.len());
                }
                Op::Truncate(size) => {
                    ns.set_attr(ino, AttrChange { size: Some(size), ..Default::default() }).unwrap();
                    model.resize(size as usize, 0);
                }
            }
            prop_assert_eq!(ns.tags(ino), model.clone());
        }
        let (ext, _, _) = extents(&ns.kv, ino, 0, 8192).unwrap();
        for tag in 1..=20u8 {
            let uses = ext.iter().filter(|e| e.chunk == ChunkId::of(&[tag])).count() as u64;
            prop_assert_eq!(ns.refs(&[tag]), uses, "refcount of chunk {}", tag);
        }
    }
}

#[test]
fn sizes_past_the_largest_file_are_refused() {
    let mut ns = Ns::new();
    let f = ns.create(InodeId::ROOT, "f").unwrap().unwrap().ino;
    let cut = ns.set_attr(
        f,
        AttrChange {
            size: Some(u64::MAX),
            ..Default::default()
        },
    );
    assert_eq!(Ns::code(cut), ErrorCode::FileTooLarge);
    assert_eq!(get_attr(&ns.kv, f).unwrap().size, 0);
}

#[test]
fn write_into_the_middle_of_an_extent_splits_it() {
    let mut ns = Ns::new();
    let ino = ns.create(InodeId::ROOT, "f").unwrap().unwrap().ino;
    ns.write(ino, 0, 100, 1);
    ns.write(ino, 40, 10, 2);
    let (ext, _, _) = extents(&ns.kv, ino, 0, 100).unwrap();
    let shape: Vec<_> = ext
        .iter()
        .map(|e| (e.offset, e.len, e.chunk_offset))
        .collect();
    assert_eq!(shape, vec![(0, 40, 0), (40, 10, 0), (50, 50, 50)]);
    assert_eq!(ns.refs(&[1]), 2);
    // Overwriting both pieces of chunk 1 releases it.
    ns.write(ino, 0, 40, 3);
    ns.write(ino, 50, 60, 3);
    assert_eq!(ns.refs(&[1]), 0);
    assert_eq!(get_attr(&ns.kv, ino).unwrap().size, 110);
}

#[test]
fn create_refuses_a_taken_name_and_writes_refuse_directories() {
    let mut ns = Ns::new();
    ns.create(InodeId::ROOT, "f").unwrap();
    assert_eq!(
        Ns::code(ns.create(InodeId::ROOT, "f")),
        ErrorCode::AlreadyExists
    );
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap().ino;
    let now_ns = ns.now;
    let r = ns.run(Command::Ns {
        write: NsWrite::WriteExtents {
            ino: d,
            extents: vec![],
        },
        now_ns,
    });
    assert_eq!(Ns::code(r), ErrorCode::IsADirectory);
    assert_eq!(counters(&ns.kv).unwrap().files, 1);
}

#[test]
fn hard_links_share_an_inode_until_the_last_goes() {
    let mut ns = Ns::new();
    let f = ns.create(InodeId::ROOT, "a").unwrap().unwrap().ino;
    ns.write(f, 0, 10, 1);
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap().ino;
    let now_ns = ns.now;
    let a = ns
        .run(Command::Ns {
            write: NsWrite::Link {
                ino: f,
                new_parent: d,
                new_name: "b".into(),
            },
            now_ns,
        })
        .unwrap()
        .unwrap();
    assert_eq!(a.nlink, 2);
    assert_eq!(lookup(&ns.kv, d, "b").unwrap().ino, f);
    let now_ns = ns.now;
    let to_dir = ns.run(Command::Ns {
        write: NsWrite::Link {
            ino: d,
            new_parent: InodeId::ROOT,
            new_name: "x".into(),
        },
        now_ns,
    });
    assert_eq!(Ns::code(to_dir), ErrorCode::NotPermitted);
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: InodeId::ROOT,
            name: "a".into(),
        },
        now_ns,
    })
    .unwrap();
    assert_eq!(get_attr(&ns.kv, f).unwrap().nlink, 1);
    assert_eq!(ns.refs(&[1]), 1);
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: d,
            name: "b".into(),
        },
        now_ns,
    })
    .unwrap();
    assert!(get_attr(&ns.kv, f).is_err());
    assert_eq!(ns.refs(&[1]), 0);
}

#[test]
fn symlinks_keep_their_target_and_free_it() {
    let mut ns = Ns::new();
    let now_ns = ns.now;
    let a = ns
        .run(Command::Ns {
            write: NsWrite::Symlink {
                parent: InodeId::ROOT,
                name: "l".into(),
                target: "../some/where".into(),
                owner: OWNER,
            },
            now_ns,
        })
        .unwrap()
        .unwrap();
    assert_eq!(a.kind, FileKind::Symlink);
    assert_eq!(a.size, 13);
    assert_eq!(read_link(&ns.kv, a.ino).unwrap(), "../some/where");
    let f = ns.create(InodeId::ROOT, "f").unwrap().unwrap().ino;
    assert!(read_link(&ns.kv, f).is_err());
    let now_ns = ns.now;
    let empty = ns.run(Command::Ns {
        write: NsWrite::Symlink {
            parent: InodeId::ROOT,
            name: "e".into(),
            target: String::new(),
            owner: OWNER,
        },
        now_ns,
    });
    assert_eq!(Ns::code(empty), ErrorCode::InvalidRequest);
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: InodeId::ROOT,
            name: "l".into(),
        },
        now_ns,
    })
    .unwrap();
    assert!(ns
        .kv
        .get(Cf::Symlinks, &inode_key(a.ino))
        .unwrap()
        .is_none());
}

#[test]
fn xattrs_create_replace_list_remove_and_go_with_the_inode() {
    let mut ns = Ns::new();
    let f = ns.create(InodeId::ROOT, "f").unwrap().unwrap().ino;
    let set = |ns: &mut Ns, name: &str, value: &[u8], mode| {
        let now_ns = ns.now;
        ns.run(Command::Ns {
            write: NsWrite::SetXattr {
                ino: f,
                name: name.into(),
                value: value.to_vec(),
                mode,
            },
            now_ns,
        })
    };
    set(&mut ns, "user.a", b"1", XattrMode::Create).unwrap();
    assert_eq!(
        Ns::code(set(&mut ns, "user.a", b"2", XattrMode::Create)),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        Ns::code(set(&mut ns, "user.b", b"2", XattrMode::Replace)),
        ErrorCode::NoData
    );
    set(&mut ns, "user.a", b"3", XattrMode::Replace).unwrap();
    set(&mut ns, "user.b", b"", XattrMode::Upsert).unwrap();
    assert_eq!(
        Ns::code(set(&mut ns, "user.c", &vec![0; 65_537], XattrMode::Upsert)),
        ErrorCode::InvalidRequest
    );
    assert_eq!(get_xattr(&ns.kv, f, "user.a").unwrap(), b"3");
    assert_eq!(list_xattrs(&ns.kv, f).unwrap(), vec!["user.a", "user.b"]);
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::RemoveXattr {
            ino: f,
            name: "user.b".into(),
        },
        now_ns,
    })
    .unwrap();
    assert!(get_xattr(&ns.kv, f, "user.b").is_err());
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: InodeId::ROOT,
            name: "f".into(),
        },
        now_ns,
    })
    .unwrap();
    assert!(ns
        .kv
        .scan(Cf::Xattrs, &[], &[0xff; 9], 10)
        .unwrap()
        .is_empty());
}

#[test]
fn rename_noreplace_and_exchange() {
    let mut ns = Ns::new();
    let a = ns.create(InodeId::ROOT, "a").unwrap().unwrap().ino;
    let b = ns.create(InodeId::ROOT, "b").unwrap().unwrap().ino;
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap().ino;
    let root = InodeId::ROOT;
    assert_eq!(
        Ns::code(ns.rename((root, "a"), (root, "b"), RenameMode::NoReplace)),
        ErrorCode::AlreadyExists
    );
    ns.rename((root, "a"), (root, "b"), RenameMode::Exchange)
        .unwrap();
    assert_eq!(lookup(&ns.kv, root, "a").unwrap().ino, b);
    assert_eq!(lookup(&ns.kv, root, "b").unwrap().ino, a);
    // Exchange a directory with a file in another directory: link counts
    // follow the directory.
    let sub = ns.mkdir(d, "sub").unwrap().unwrap().ino;
    let root_links = get_attr(&ns.kv, root).unwrap().nlink;
    ns.rename((root, "a"), (d, "sub"), RenameMode::Exchange)
        .unwrap();
    assert_eq!(lookup(&ns.kv, root, "a").unwrap().ino, sub);
    assert_eq!(lookup(&ns.kv, d, "sub").unwrap().ino, b);
    assert_eq!(get_attr(&ns.kv, root).unwrap().nlink, root_links + 1);
    assert_eq!(get_attr(&ns.kv, d).unwrap().nlink, 2);
    // A directory cannot be swapped into its own subtree.
    assert_eq!(
        Ns::code(ns.rename((root, "d"), (d, "sub"), RenameMode::Exchange)),
        ErrorCode::InvalidMove
    );
    assert_eq!(
        Ns::code(ns.rename((root, "a"), (root, "zz"), RenameMode::Exchange)),
        ErrorCode::NotFound
    );
    ns.rename((root, "b"), (root, "c"), RenameMode::NoReplace)
        .unwrap();
}

#[test]
fn new_entries_in_a_setgid_directory_take_its_group() {
    let mut ns = Ns::new();
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap().ino;
    ns.set_attr(
        d,
        AttrChange {
            mode: Some(0o2775),
            gid: Some(50),
            ..Default::default()
        },
    )
    .unwrap();
    let f = ns.create(d, "f").unwrap().unwrap();
    assert_eq!((f.gid, f.mode & 0o2000), (50, 0));
    let sub = ns.mkdir(d, "sub").unwrap().unwrap();
    assert_eq!((sub.gid, sub.mode & 0o2000), (50, 0o2000));
}

#[test]
fn mknod_makes_fifos_and_sockets_only() {
    let mut ns = Ns::new();
    for (name, kind) in [("p", FileKind::Fifo), ("s", FileKind::Socket)] {
        let now_ns = ns.now;
        let a = ns
            .run(Command::Ns {
                write: NsWrite::Mknod {
                    parent: InodeId::ROOT,
                    name: name.into(),
                    kind,
                    owner: OWNER,
                },
                now_ns,
            })
            .unwrap()
            .unwrap();
        assert_eq!(a.kind, kind);
        assert_eq!(lookup(&ns.kv, InodeId::ROOT, name).unwrap().kind, kind);
    }
    let now_ns = ns.now;
    let dir = ns.run(Command::Ns {
        write: NsWrite::Mknod {
            parent: InodeId::ROOT,
            name: "d".into(),
            kind: FileKind::Dir,
            owner: OWNER,
        },
        now_ns,
    });
    assert_eq!(Ns::code(dir), ErrorCode::InvalidRequest);
    let p = lookup(&ns.kv, InodeId::ROOT, "p").unwrap().ino;
    let cut = ns.set_attr(
        p,
        AttrChange {
            size: Some(0),
            ..Default::default()
        },
    );
    assert_eq!(Ns::code(cut), ErrorCode::InvalidRequest);
}

#[test]
fn access_times_are_set_at_creation_and_by_request_and_old_commands_still_apply() {
    let mut ns = Ns::new();
    let f = ns.create(InodeId::ROOT, "f").unwrap().unwrap();
    assert_eq!(f.atime_ns, f.mtime_ns);
    let a = ns
        .set_attr(
            f.ino,
            AttrChange {
                atime_ns: Some(-5),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!((a.atime_ns, a.mtime_ns), (-5, f.mtime_ns));
    // A SetAttr logged by an earlier build (no access time field), as the
    // log's upgrade converts it.
    let now_ns = ns.now;
    let old = ns
        .run(Command::from(crate::command::v1::CommandV1::SetAttr {
            ino: f.ino,
            change: crate::command::v1::AttrChangeV1 {
                mode: Some(0o600),
                uid: None,
                gid: None,
                size: None,
                mtime_ns: Some(9),
            },
            now_ns,
        }))
        .unwrap()
        .unwrap();
    assert_eq!((old.mode, old.mtime_ns, old.atime_ns), (0o600, 9, -5));
}
