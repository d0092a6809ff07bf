//! The bytes of every [`Command`] variant, pinned. The Raft log keeps
//! commands as postcard, which encodes a variant by its place in the enum
//! and a struct by its fields' order: reordering variants or fields, or
//! changing a field's type, would make logged entries mean something else.
//! Such a change must come as a new log format with a migration
//! ([`crate::log_format`]); this test fails until it does.

use cairn_proto::meta_rpc::{
    AttrChange, Extent, FileKind, Owner, RenameMode, ReplicationPolicy, Session, XattrMode,
};
use cairn_proto::{ChunkId, InodeId};

use super::{AttrChangeV1, Command};

fn owner() -> Owner {
    Owner {
        mode: 0o644,
        uid: 1,
        gid: 2,
    }
}

fn extent() -> Extent {
    Extent {
        offset: 0,
        len: 3,
        chunk: ChunkId([7; 32]),
        chunk_offset: 1,
    }
}

/// One of each variant, in declaration order, with the bytes this build
/// (and every build since the variant was added) writes for it.
fn pinned() -> Vec<(Command, &'static str)> {
    let p = InodeId(5);
    let n = || "a".to_string();
    vec![
        (
            Command::Mkdir {
                parent: p,
                name: n(),
                owner: owner(),
                now_ns: 9,
            },
            "00050161a403010212",
        ),
        (
            Command::Unlink {
                parent: p,
                name: n(),
                now_ns: 9,
            },
            "0105016112",
        ),
        (
            Command::Rmdir {
                parent: p,
                name: n(),
                now_ns: 9,
            },
            "0205016112",
        ),
        (
            Command::Rename {
                parent: p,
                name: n(),
                new_parent: InodeId(6),
                new_name: "b".into(),
                now_ns: 9,
            },
            "0305016106016212",
        ),
        (
            Command::CommitFile {
                parent: p,
                name: n(),
                extents: vec![extent()],
                size: 3,
                owner: owner(),
                now_ns: 9,
            },
            "0405016101000307070707070707070707070707070707070707070707070707070707070707070103a403010212",
        ),
        (
            Command::SetAttr {
                ino: p,
                change: AttrChangeV1 {
                    mode: Some(0o600),
                    uid: None,
                    gid: Some(3),
                    size: Some(10),
                    mtime_ns: Some(-1),
                },
                now_ns: 9,
            },
            "0505018003000103010a010112",
        ),
        (
            Command::RegisterChunkServer {
                id: 2,
                addr: "h:1".into(),
                zone: "z".into(),
                capacity_bytes: 300,
            },
            "060203683a31017aac02",
        ),
        (Command::RemoveChunkServer { id: 2 }, "0702"),
        (Command::SetChunkServerDown { id: 2, down: true }, "080201"),
        (
            Command::DrainChunkServer {
                id: 2,
                drain: false,
            },
            "090200",
        ),
        (
            Command::SetReplication {
                policy: ReplicationPolicy {
                    copies: 3,
                    sync_copies: 2,
                },
            },
            "0a0302",
        ),
        (
            Command::Once {
                session: Session {
                    client: 11,
                    seq: 12,
                },
                now_ns: 9,
                cmd: Box::new(Command::RemoveChunkServer { id: 2 }),
            },
            "0b0b0c120702",
        ),
        (
            Command::Batch(vec![
                Command::RemoveChunkServer { id: 2 },
                Command::SetChunkServerFull { id: 3, full: true },
            ]),
            "0c0207021a0301",
        ),
        (
            Command::CreateFile {
                parent: p,
                name: n(),
                owner: owner(),
                now_ns: 9,
            },
            "0d050161a403010212",
        ),
        (
            Command::WriteExtents {
                ino: p,
                extents: vec![extent()],
                now_ns: 9,
            },
            "0e0501000307070707070707070707070707070707070707070707070707070707070707070112",
        ),
        (
            Command::Symlink {
                parent: p,
                name: n(),
                target: "t".into(),
                owner: owner(),
                now_ns: 9,
            },
            "0f0501610174a403010212",
        ),
        (
            Command::Link {
                ino: p,
                new_parent: InodeId(6),
                new_name: "b".into(),
                now_ns: 9,
            },
            "100506016212",
        ),
        (
            Command::SetXattr {
                ino: p,
                name: "user.x".into(),
                value: vec![1, 2],
                mode: XattrMode::Create,
                now_ns: 9,
            },
            "110506757365722e780201020112",
        ),
        (
            Command::RemoveXattr {
                ino: p,
                name: "user.x".into(),
                now_ns: 9,
            },
            "120506757365722e7812",
        ),
        (
            Command::RenameWith {
                parent: p,
                name: n(),
                new_parent: InodeId(6),
                new_name: "b".into(),
                mode: RenameMode::Exchange,
                now_ns: 9,
            },
            "130501610601620212",
        ),
        (
            Command::Mknod {
                parent: p,
                name: n(),
                kind: FileKind::Fifo,
                owner: owner(),
                now_ns: 9,
            },
            "1405016103a403010212",
        ),
        (
            Command::SetAttrs {
                ino: p,
                change: AttrChange {
                    mode: None,
                    uid: Some(4),
                    gid: None,
                    size: None,
                    mtime_ns: Some(5),
                    atime_ns: Some(6),
                },
                now_ns: 9,
            },
            "15050001040000010a010c12",
        ),
        (
            Command::WriteInline {
                ino: p,
                parts: vec![(2, vec![0xab])],
                now_ns: 9,
            },
            "1605010201ab12",
        ),
        (Command::ReserveInodes { count: 300 }, "17ac02"),
        (
            Command::CreateWith {
                parent: p,
                name: n(),
                owner: owner(),
                ino: InodeId(77),
                inline: vec![0xcd],
                created_ns: 8,
                now_ns: 9,
            },
            "18050161a40301024d01cd1012",
        ),
        (
            Command::PurgeGarbage {
                ids: vec![ChunkId([1; 32])],
                older_than_ns: 9,
            },
            "1901010101010101010101010101010101010101010101010101010101010101010112",
        ),
        (Command::SetChunkServerFull { id: 3, full: true }, "1a0301"),
    ]
}

#[test]
fn every_command_encodes_and_decodes_as_pinned() {
    let pinned = pinned();
    for (i, (cmd, hex)) in pinned.iter().enumerate() {
        let bytes = postcard::to_allocvec(cmd).unwrap();
        // Each sample is of the variant at its place in the enum.
        assert_eq!(bytes[0] as usize, i, "sample {i} is out of order: {cmd:?}");
        assert_eq!(
            hex_of(&bytes),
            *hex,
            "{cmd:?} no longer encodes as logged entries hold it"
        );
        let back: Command = postcard::from_bytes(&unhex(hex)).unwrap();
        assert_eq!(back, *cmd);
    }
    // A variant added after these gets a sample here too: zeros decode
    // as any variant's fields (0, empty, None, the first variant), so this
    // fails only if there is no such variant.
    let mut next = vec![0u8; 128];
    next[0] = pinned.len() as u8;
    assert!(
        postcard::from_bytes::<Command>(&next).is_err(),
        "Command has a variant with no pinned sample"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
