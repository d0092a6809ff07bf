use super::*;
use crate::apply::apply_one;
use crate::command::{Command, RegistryChange};
use crate::kv::MemKv;
use crate::schema::{chunk_key, ChunkRecord};
use cairn_proto::meta_rpc::{AttrChange, RenameMode};
use cairn_proto::ChunkId;

const OWNER: Owner = Owner {
    mode: 0o644,
    uid: 1000,
    gid: 1000,
};

struct Ns {
    kv: MemKv,
    now: i64,
}

impl Ns {
    fn new() -> Self {
        Ns {
            kv: MemKv::default(),
            now: 1_000,
        }
    }

    fn run(&mut self, cmd: Command) -> crate::command::CommandResult {
        let mut t = Txn::new(&self.kv);
        let r = apply_one(&mut t, &cmd).expect("memory store does not fail");
        let w = t.into_writes();
        self.kv.commit(w);
        self.now += 1;
        r
    }

    fn mkdir(&mut self, parent: InodeId, name: &str) -> crate::command::CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::Mkdir {
                parent,
                name: name.into(),
                owner: Owner {
                    mode: 0o755,
                    ..OWNER
                },
            },
            now_ns,
        })
    }

    fn commit(
        &mut self,
        parent: InodeId,
        name: &str,
        chunks: &[(&[u8], u64)],
    ) -> crate::command::CommandResult {
        let mut off = 0;
        let extents = chunks
            .iter()
            .map(|(data, len)| {
                let e = Extent {
                    offset: off,
                    len: *len,
                    chunk: ChunkId::of(data),
                    chunk_offset: 0,
                };
                off += len;
                e
            })
            .collect();
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::CommitFile {
                parent,
                name: name.into(),
                extents,
                size: off,
                owner: OWNER,
            },
            now_ns,
        })
    }

    fn refs(&self, data: &[u8]) -> u64 {
        self.kv
            .get(Cf::Chunks, &chunk_key(&ChunkId::of(data)))
            .unwrap()
            .map(|b| decode::<ChunkRecord>(&b).unwrap().refs)
            .unwrap_or(0)
    }

    fn code(r: crate::command::CommandResult) -> ErrorCode {
        r.expect_err("expected a refusal").code
    }
}

#[test]
fn mkdir_lookup_readdir_paginated() {
    let mut ns = Ns::new();
    let a = ns.mkdir(InodeId::ROOT, "a").unwrap().unwrap();
    for i in 0..10 {
        ns.mkdir(a.ino, &format!("d{i:02}")).unwrap();
    }
    assert_eq!(lookup(&ns.kv, InodeId::ROOT, "a").unwrap().ino, a.ino);
    assert_eq!(resolve_path(&ns.kv, "/a/d03").unwrap().kind, FileKind::Dir);
    let (page, more) = read_dir(&ns.kv, a.ino, None, 4).unwrap();
    assert!(more);
    assert_eq!(page.len(), 4);
    let (page2, _) = read_dir(&ns.kv, a.ino, Some(&page[3].name), 100).unwrap();
    assert_eq!(page2.len(), 6);
    assert_eq!(page2[0].name, "d04");
    assert_eq!(get_attr(&ns.kv, a.ino).unwrap().nlink, 12);
    assert_eq!(
        Ns::code(ns.mkdir(InodeId::ROOT, "a")),
        ErrorCode::AlreadyExists
    );
}

#[test]
fn commit_counts_references_and_replacement_releases_them() {
    let mut ns = Ns::new();
    let f = ns
        .commit(InodeId::ROOT, "f", &[(b"one", 3), (b"two", 3), (b"one", 3)])
        .unwrap()
        .unwrap();
    assert_eq!(f.size, 9);
    assert_eq!(ns.refs(b"one"), 2);
    assert_eq!(ns.refs(b"two"), 1);
    let (ext, more, version) = extents(&ns.kv, f.ino, 4, 10).unwrap();
    assert_eq!(version, f.version);
    assert!(!more);
    assert_eq!(ext.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![3, 6]);
    // Replace: same inode, old references released, new ones taken.
    let g = ns
        .commit(InodeId::ROOT, "f", &[(b"three", 5)])
        .unwrap()
        .unwrap();
    assert_eq!(g.ino, f.ino);
    assert!(g.version > f.version);
    assert_eq!(ns.refs(b"one"), 0);
    assert_eq!(ns.refs(b"two"), 0);
    assert_eq!(ns.refs(b"three"), 1);
    assert!(ns
        .kv
        .get(Cf::Garbage, &chunk_key(&ChunkId::of(b"one")))
        .unwrap()
        .is_some());
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: InodeId::ROOT,
            name: "f".into(),
        },
        now_ns: 9,
    })
    .unwrap();
    assert_eq!(ns.refs(b"three"), 0);
    assert_eq!(counters(&ns.kv).unwrap().files, 0);
    assert_eq!(counters(&ns.kv).unwrap().chunks_referenced, 0);
}

#[test]
fn rename_replaces_a_file_atomically() {
    let mut ns = Ns::new();
    let a = ns
        .commit(InodeId::ROOT, "a", &[(b"A", 1)])
        .unwrap()
        .unwrap();
    ns.commit(InodeId::ROOT, "b", &[(b"B", 1)]).unwrap();
    ns.run(Command::Ns {
        write: NsWrite::Rename {
            parent: InodeId::ROOT,
            name: "a".into(),
            new_parent: InodeId::ROOT,
            new_name: "b".into(),
            mode: RenameMode::Replace,
        },
        now_ns: 5,
    })
    .unwrap();
    assert_eq!(lookup(&ns.kv, InodeId::ROOT, "b").unwrap().ino, a.ino);
    assert!(matches!(
        lookup(&ns.kv, InodeId::ROOT, "a"),
        Err(NsError::Refused(e)) if e.code == ErrorCode::NotFound
    ));
    assert_eq!(ns.refs(b"B"), 0);
    assert_eq!(ns.refs(b"A"), 1);
    assert_eq!(counters(&ns.kv).unwrap().files, 1);
}

#[test]
fn refused_commands_change_nothing() {
    let mut ns = Ns::new();
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap();
    ns.commit(d.ino, "f", &[(b"x", 1)]).unwrap();
    let sub = ns.mkdir(d.ino, "sub").unwrap().unwrap();
    let before = ns.kv.clone();
    let now_ns = 77;
    let bad = vec![
        Command::Ns {
            write: NsWrite::Rmdir {
                parent: InodeId::ROOT,
                name: "d".into(),
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Unlink {
                parent: InodeId::ROOT,
                name: "d".into(),
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Unlink {
                parent: InodeId::ROOT,
                name: "missing".into(),
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Mkdir {
                parent: InodeId::ROOT,
                name: "a/b".into(),
                owner: OWNER,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Mkdir {
                parent: InodeId::ROOT,
                name: "".into(),
                owner: OWNER,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Mkdir {
                parent: InodeId::ROOT,
                name: "x".repeat(256),
                owner: OWNER,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Mkdir {
                parent: InodeId(999),
                name: "x".into(),
                owner: OWNER,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Rename {
                parent: InodeId::ROOT,
                name: "d".into(),
                new_parent: sub.ino,
                new_name: "d".into(),
                mode: RenameMode::Replace,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::Rename {
                parent: d.ino,
                name: "f".into(),
                new_parent: d.ino,
                new_name: "sub".into(),
                mode: RenameMode::Replace,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::CommitFile {
                parent: InodeId::ROOT,
                name: "d".into(),
                extents: vec![],
                size: 0,
                owner: OWNER,
            },
            now_ns,
        },
        Command::Ns {
            write: NsWrite::CommitFile {
                parent: InodeId::ROOT,
                name: "overlap".into(),
                extents: vec![
                    Extent {
                        offset: 0,
                        len: 4,
                        chunk: ChunkId::of(b"a"),
                        chunk_offset: 0,
                    },
                    Extent {
                        offset: 2,
                        len: 4,
                        chunk: ChunkId::of(b"b"),
                        chunk_offset: 0,
                    },
                ],
                size: 6,
                owner: OWNER,
            },
            now_ns,
        },
    ];
    let expected = [
        ErrorCode::NotEmpty,
        ErrorCode::IsADirectory,
        ErrorCode::NotFound,
        ErrorCode::InvalidName,
        ErrorCode::InvalidName,
        ErrorCode::InvalidName,
        ErrorCode::NotFound,
        ErrorCode::InvalidMove,
        ErrorCode::IsADirectory,
        ErrorCode::IsADirectory,
        ErrorCode::InvalidRequest,
    ];
    for (cmd, code) in bad.into_iter().zip(expected) {
        let desc = format!("{cmd:?}");
        assert_eq!(Ns::code(ns.run(cmd)), code, "{desc}");
        assert_eq!(ns.kv.maps, before.maps, "{desc} changed the store");
    }
}

#[test]
fn rmdir_only_empty_and_counts() {
    let mut ns = Ns::new();
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap();
    ns.mkdir(d.ino, "e").unwrap();
    assert_eq!(
        Ns::code(ns.run(Command::Ns {
            write: NsWrite::Rmdir {
                parent: InodeId::ROOT,
                name: "d".into()
            },
            now_ns: 1
        })),
        ErrorCode::NotEmpty
    );
    ns.run(Command::Ns {
        write: NsWrite::Rmdir {
            parent: d.ino,
            name: "e".into(),
        },
        now_ns: 1,
    })
    .unwrap();
    ns.run(Command::Ns {
        write: NsWrite::Rmdir {
            parent: InodeId::ROOT,
            name: "d".into(),
        },
        now_ns: 1,
    })
    .unwrap();
    assert_eq!(counters(&ns.kv).unwrap().directories, 0);
    assert_eq!(get_attr(&ns.kv, InodeId::ROOT).unwrap().nlink, 2);
}

#[test]
fn registering_servers_bumps_the_ring_epoch_only_on_change() {
    let mut ns = Ns::new();
    let reg = |id, addr: &str| {
        Command::Registry(RegistryChange::Register {
            id,
            addr: addr.into(),
            zone: "z".into(),
            capacity_bytes: 100 << 30,
        })
    };
    ns.run(reg(1, "127.0.0.1:1")).unwrap();
    ns.run(reg(2, "127.0.0.1:2")).unwrap();
    assert_eq!(ring(&ns.kv).unwrap().epoch, 2);
    ns.run(reg(2, "127.0.0.1:2")).unwrap();
    assert_eq!(ring(&ns.kv).unwrap().epoch, 2);
    ns.run(reg(2, "127.0.0.1:3")).unwrap();
    let r = ring(&ns.kv).unwrap();
    assert_eq!(r.epoch, 3);
    assert_eq!(r.members.len(), 2);
    assert_eq!(r.members[1].addr, "127.0.0.1:3");
    ns.run(Command::Registry(RegistryChange::Remove { id: 1 }))
        .unwrap();
    let r = ring(&ns.kv).unwrap();
    assert_eq!((r.epoch, r.members.len()), (4, 1));
    assert_eq!(
        Ns::code(ns.run(Command::Registry(RegistryChange::Remove { id: 1 }))),
        ErrorCode::NotFound
    );
}

#[test]
fn down_and_draining_flags_travel_with_the_ring() {
    let mut ns = Ns::new();
    for id in [1, 2] {
        ns.run(Command::Registry(RegistryChange::Register {
            id,
            addr: format!("127.0.0.1:{id}"),
            zone: "z".into(),
            capacity_bytes: 100 << 30,
        }))
        .unwrap();
    }
    let epoch = ring(&ns.kv).unwrap().epoch;
    ns.run(Command::Registry(RegistryChange::SetDown {
        id: 1,
        down: true,
    }))
    .unwrap();
    ns.run(Command::Registry(RegistryChange::Drain {
        id: 2,
        drain: true,
    }))
    .unwrap();
    let r = ring(&ns.kv).unwrap();
    assert_eq!(r.epoch, epoch + 2);
    assert!(r.members[0].down && !r.members[0].draining);
    assert!(!r.members[1].down && r.members[1].draining);
    // Setting a flag to what it already is changes nothing.
    ns.run(Command::Registry(RegistryChange::SetDown {
        id: 1,
        down: true,
    }))
    .unwrap();
    assert_eq!(ring(&ns.kv).unwrap().epoch, epoch + 2);
    // Re-registering keeps the flags; removal forgets them.
    ns.run(Command::Registry(RegistryChange::Register {
        id: 2,
        addr: "127.0.0.1:2".into(),
        zone: "z".into(),
        capacity_bytes: 100 << 30,
    }))
    .unwrap();
    assert!(ring(&ns.kv).unwrap().members[1].draining);
    ns.run(Command::Registry(RegistryChange::Remove { id: 1 }))
        .unwrap();
    assert!(!server_flags(&ns.kv).unwrap().contains_key(&1));
    ns.run(Command::Registry(RegistryChange::Drain {
        id: 2,
        drain: false,
    }))
    .unwrap();
    assert!(server_flags(&ns.kv).unwrap().is_empty());
    assert_eq!(
        Ns::code(ns.run(Command::Registry(RegistryChange::SetDown {
            id: 9,
            down: true
        }))),
        ErrorCode::NotFound
    );
}

impl Ns {
    fn set_attr(&mut self, ino: InodeId, change: AttrChange) -> crate::command::CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::SetAttr { ino, change },
            now_ns,
        })
    }

    fn extent_list(&self, ino: InodeId) -> Vec<(u64, u64)> {
        let (ext, _, _) = extents(&self.kv, ino, 0, 100).unwrap();
        ext.iter().map(|e| (e.offset, e.len)).collect()
    }
}

#[test]
fn truncate_cuts_and_releases_extents_and_growing_leaves_a_hole() {
    let mut ns = Ns::new();
    let f = ns
        .commit(
            InodeId::ROOT,
            "f",
            &[(b"aaaa", 4), (b"bbbb", 4), (b"cccc", 4)],
        )
        .unwrap()
        .unwrap();
    // Cut inside the second extent: it is shortened, the third released.
    let size = |n| AttrChange {
        size: Some(n),
        ..AttrChange::default()
    };
    let a = ns.set_attr(f.ino, size(6)).unwrap().unwrap();
    assert_eq!(a.size, 6);
    assert!(a.version > f.version && a.mtime_ns > f.mtime_ns);
    assert_eq!(ns.extent_list(f.ino), vec![(0, 4), (4, 2)]);
    assert_eq!((ns.refs(b"bbbb"), ns.refs(b"cccc")), (1, 0));
    // Cut exactly at an extent boundary.
    ns.set_attr(f.ino, size(4)).unwrap().unwrap();
    assert_eq!(ns.extent_list(f.ino), vec![(0, 4)]);
    assert_eq!(ns.refs(b"bbbb"), 0);
    // Grow: a hole, no new extents.
    let g = ns.set_attr(f.ino, size(1 << 20)).unwrap().unwrap();
    assert_eq!(g.size, 1 << 20);
    assert_eq!(ns.extent_list(f.ino), vec![(0, 4)]);
    // To zero: nothing left, nothing referenced.
    ns.set_attr(f.ino, size(0)).unwrap().unwrap();
    assert!(ns.extent_list(f.ino).is_empty());
    assert_eq!(ns.refs(b"aaaa"), 0);
}

#[test]
fn chmod_chown_utimens_and_bad_changes() {
    let mut ns = Ns::new();
    let d = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap();
    let a = ns
        .set_attr(
            d.ino,
            AttrChange {
                mode: Some(0o1750),
                uid: Some(7),
                gid: Some(8),
                mtime_ns: Some(42),
                ..AttrChange::default()
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!((a.mode, a.uid, a.gid, a.mtime_ns), (0o1750, 7, 8, 42));
    assert!(a.ctime_ns > d.ctime_ns);
    assert_eq!(get_attr(&ns.kv, d.ino).unwrap(), a);
    let before = get_attr(&ns.kv, d.ino).unwrap();
    let bad_mode = AttrChange {
        mode: Some(0o170000),
        ..AttrChange::default()
    };
    assert_eq!(
        Ns::code(ns.set_attr(d.ino, bad_mode)),
        ErrorCode::InvalidRequest
    );
    let dir_size = AttrChange {
        size: Some(0),
        ..AttrChange::default()
    };
    assert_eq!(
        Ns::code(ns.set_attr(d.ino, dir_size)),
        ErrorCode::IsADirectory
    );
    assert_eq!(
        get_attr(&ns.kv, d.ino).unwrap(),
        before,
        "refusals change nothing"
    );
    assert_eq!(
        Ns::code(ns.set_attr(InodeId(999), AttrChange::default())),
        ErrorCode::NotFound
    );
}

mod garbage;
mod inline;
mod objects;
mod posix;
