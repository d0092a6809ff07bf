//! The bytes of every [`Command`] variant, pinned, for each log format a
//! build reads. The Raft log keeps commands as postcard, which encodes a
//! variant by its place in the enum and a struct by its fields' order:
//! reordering variants or fields, or changing a field's type, would make
//! logged entries mean something else. Such a change must come as a new
//! log format with a migration ([`crate::log_format`]); these tests fail
//! until it does.
//!
//! Format 1's samples ([`CommandV1`], one per variant) are each paired with
//! the bytes format 2 holds for the same change after the upgrade; format
//! 2's own samples cover every variant of [`Command`], [`NsWrite`] and
//! [`RegistryChange`].

use cairn_proto::meta_rpc::{
    AttrChange, Extent, FileKind, Owner, RenameMode, ReplicationPolicy, Session, XattrMode,
};
use cairn_proto::{ChunkId, InodeId};

use super::v1::{AttrChangeV1, CommandV1};
use super::{Command, RegistryChange};
use cairn_proto::meta_rpc::NsWrite;

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

/// One of each format-1 variant, in declaration order, with the bytes
/// format 1 (and 0, which differs only in the record's format byte) holds
/// for it.
fn pinned_v1() -> Vec<(CommandV1, &'static str)> {
    let p = InodeId(5);
    let n = || "a".to_string();
    vec![
        (
            CommandV1::Mkdir {
                parent: p,
                name: n(),
                owner: owner(),
                now_ns: 9,
            },
            "00050161a403010212",
        ),
        (
            CommandV1::Unlink {
                parent: p,
                name: n(),
                now_ns: 9,
            },
            "0105016112",
        ),
        (
            CommandV1::Rmdir {
                parent: p,
                name: n(),
                now_ns: 9,
            },
            "0205016112",
        ),
        (
            CommandV1::Rename {
                parent: p,
                name: n(),
                new_parent: InodeId(6),
                new_name: "b".into(),
                now_ns: 9,
            },
            "0305016106016212",
        ),
        (
            CommandV1::CommitFile {
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
            CommandV1::SetAttr {
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
            CommandV1::RegisterChunkServer {
                id: 2,
                addr: "h:1".into(),
                zone: "z".into(),
                capacity_bytes: 300,
            },
            "060203683a31017aac02",
        ),
        (CommandV1::RemoveChunkServer { id: 2 }, "0702"),
        (CommandV1::SetChunkServerDown { id: 2, down: true }, "080201"),
        (
            CommandV1::DrainChunkServer {
                id: 2,
                drain: false,
            },
            "090200",
        ),
        (
            CommandV1::SetReplication {
                policy: ReplicationPolicy {
                    copies: 3,
                    sync_copies: 2,
                },
            },
            "0a0302",
        ),
        (
            CommandV1::Once {
                session: Session {
                    client: 11,
                    seq: 12,
                },
                now_ns: 9,
                cmd: Box::new(CommandV1::RemoveChunkServer { id: 2 }),
            },
            "0b0b0c120702",
        ),
        (
            CommandV1::Batch(vec![
                CommandV1::RemoveChunkServer { id: 2 },
                CommandV1::SetChunkServerFull { id: 3, full: true },
            ]),
            "0c0207021a0301",
        ),
        (
            CommandV1::CreateFile {
                parent: p,
                name: n(),
                owner: owner(),
                now_ns: 9,
            },
            "0d050161a403010212",
        ),
        (
            CommandV1::WriteExtents {
                ino: p,
                extents: vec![extent()],
                now_ns: 9,
            },
            "0e0501000307070707070707070707070707070707070707070707070707070707070707070112",
        ),
        (
            CommandV1::Symlink {
                parent: p,
                name: n(),
                target: "t".into(),
                owner: owner(),
                now_ns: 9,
            },
            "0f0501610174a403010212",
        ),
        (
            CommandV1::Link {
                ino: p,
                new_parent: InodeId(6),
                new_name: "b".into(),
                now_ns: 9,
            },
            "100506016212",
        ),
        (
            CommandV1::SetXattr {
                ino: p,
                name: "user.x".into(),
                value: vec![1, 2],
                mode: XattrMode::Create,
                now_ns: 9,
            },
            "110506757365722e780201020112",
        ),
        (
            CommandV1::RemoveXattr {
                ino: p,
                name: "user.x".into(),
                now_ns: 9,
            },
            "120506757365722e7812",
        ),
        (
            CommandV1::RenameWith {
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
            CommandV1::Mknod {
                parent: p,
                name: n(),
                kind: FileKind::Fifo,
                owner: owner(),
                now_ns: 9,
            },
            "1405016103a403010212",
        ),
        (
            CommandV1::SetAttrs {
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
            CommandV1::WriteInline {
                ino: p,
                parts: vec![(2, vec![0xab])],
                now_ns: 9,
            },
            "1605010201ab12",
        ),
        (CommandV1::ReserveInodes { count: 300 }, "17ac02"),
        (
            CommandV1::CreateWith {
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
            CommandV1::PurgeGarbage {
                ids: vec![ChunkId([1; 32])],
                older_than_ns: 9,
            },
            "1901010101010101010101010101010101010101010101010101010101010101010112",
        ),
        (CommandV1::SetChunkServerFull { id: 3, full: true }, "1a0301"),
    ]
}

#[test]
fn every_format_1_command_decodes_as_pinned() {
    let pinned = pinned_v1();
    for (i, (cmd, hex)) in pinned.iter().enumerate() {
        let bytes = postcard::to_allocvec(cmd).unwrap();
        // Each sample is of the variant at its place in the enum.
        assert_eq!(bytes[0] as usize, i, "sample {i} is out of order: {cmd:?}");
        assert_eq!(
            hex_of(&bytes),
            *hex,
            "{cmd:?} no longer encodes as format-1 entries hold it"
        );
        let back: CommandV1 = postcard::from_bytes(&unhex(hex)).unwrap();
        assert_eq!(back, *cmd);
    }
    // Zeros decode as any variant's fields (0, empty, None, the first
    // variant), so this fails only if there is a variant with no sample.
    let mut next = vec![0u8; 128];
    next[0] = pinned.len() as u8;
    assert!(
        postcard::from_bytes::<CommandV1>(&next).is_err(),
        "CommandV1 has a variant with no pinned sample"
    );
}

/// What format 2 holds for each of [`pinned_v1`]'s changes once upgraded,
/// in the same order.
const V2_OF_V1: [&str; 27] = [
    "0000050161a403010212",
    "000105016112",
    "000205016112",
    "00030501610601620012",
    "000405016101000307070707070707070707070707070707070707070707070707070707070707070103a403010212",
    "000505018003000103010a01010012",
    "01000203683a31017aac02",
    "010102",
    "01020201",
    "01040200",
    "01050302",
    "030b0c12010102",
    "040201010201030301",
    "0006050161a403010212",
    "00070501000307070707070707070707070707070707070707070707070707070707070707070112",
    "00090501610174a403010212",
    "000a0506016212",
    "000b0506757365722e780201020112",
    "000c0506757365722e7812",
    "00030501610601620212",
    "000805016103a403010212",
    "0005050001040000010a010c12",
    "000d05010201ab12",
    "000eac0200",
    "000f050161a40301024d01cd1012",
    "0201010101010101010101010101010101010101010101010101010101010101010112",
    "01030301",
];

#[test]
fn every_format_1_command_upgrades_to_the_pinned_format_2_bytes() {
    let pinned = pinned_v1();
    assert_eq!(pinned.len(), V2_OF_V1.len());
    let mut wrong = Vec::new();
    for ((v1, _), hex) in pinned.into_iter().zip(V2_OF_V1) {
        let v2 = Command::from(v1.clone());
        let bytes = postcard::to_allocvec(&v2).unwrap();
        if hex_of(&bytes) != hex {
            wrong.push(format!("{v1:?} -> {}", hex_of(&bytes)));
            continue;
        }
        let back: Command = postcard::from_bytes(&unhex(hex)).unwrap();
        assert_eq!(back, v2);
    }
    assert!(wrong.is_empty(), "not as pinned:\n{}", wrong.join("\n"));
}

/// Format 2's changes that have no format-1 form, with their bytes.
fn pinned_v2_only() -> Vec<(Command, &'static str)> {
    vec![(
        Command::Ns {
            write: NsWrite::CommitObject {
                parent: InodeId(5),
                name: "a".into(),
                extents: vec![extent()],
                size: 3,
                owner: owner(),
                xattrs: vec![("user.x".into(), vec![1, 2])],
            },
            now_ns: 9,
        },
        "001005016101000307070707070707070707070707070707070707070707070707070707070707070103a40301020106757365722e7802010212",
    )]
}

#[test]
fn every_format_2_only_command_decodes_as_pinned() {
    for (cmd, hex) in pinned_v2_only() {
        let bytes = postcard::to_allocvec(&cmd).unwrap();
        assert_eq!(hex_of(&bytes), hex, "{cmd:?} no longer encodes as pinned");
        let back: Command = postcard::from_bytes(&unhex(hex)).unwrap();
        assert_eq!(back, cmd);
    }
}

#[test]
fn format_2_samples_cover_every_variant() {
    let mut commands = std::collections::BTreeSet::new();
    let mut writes = std::collections::BTreeSet::new();
    let mut registry = std::collections::BTreeSet::new();
    let v2_only = pinned_v2_only();
    for hex in V2_OF_V1.into_iter().chain(v2_only.iter().map(|(_, h)| *h)) {
        let bytes = unhex(hex);
        commands.insert(bytes[0]);
        match bytes[0] {
            0 => writes.insert(bytes[1]),
            1 => registry.insert(bytes[1]),
            _ => false,
        };
    }
    let count = |decodes: &dyn Fn(u8) -> bool| (0u8..).take_while(|i| decodes(*i)).count();
    // Zeros decode as any variant's fields: a variant index decodes iff
    // the variant exists.
    let zeros = |prefix: &[u8], i: u8| {
        let mut b = prefix.to_vec();
        b.push(i);
        b.resize(128, 0);
        b
    };
    let n_commands = count(&|i| postcard::from_bytes::<Command>(&zeros(&[], i)).is_ok());
    let n_writes = count(&|i| postcard::from_bytes::<NsWrite>(&zeros(&[], i)).is_ok());
    let n_registry = count(&|i| postcard::from_bytes::<RegistryChange>(&zeros(&[], i)).is_ok());
    assert_eq!(
        commands.len(),
        n_commands,
        "a Command variant has no sample"
    );
    assert_eq!(writes.len(), n_writes, "an NsWrite variant has no sample");
    assert_eq!(
        registry.len(),
        n_registry,
        "a RegistryChange variant has no sample"
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
