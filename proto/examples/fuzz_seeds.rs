//! Writes the fuzz targets' seed corpus: one valid example of each kind of
//! message, so libFuzzer starts from real encodings.
//!
//! `cargo run -p cairn-proto --example fuzz_seeds -- fuzz/corpus`

use std::path::Path;

use cairn_proto::chunk_rpc::{ChunkCall, ChunkReply, ChunkRequest, ChunkResponse};
use cairn_proto::chunk_slice::{extract, outboard};
use cairn_proto::frame::encode_frame;
use cairn_proto::meta_rpc::{
    ClusterQuery, MetaCall, MetaRequest, MetaResponse, NsRead, NsWrite, Owner, RaftRpcKind, Session,
};
use cairn_proto::{ChunkId, ErrorCode, InodeId, RpcError};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(name), bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    let dir = Path::new(&dir);
    let id = ChunkId::of(b"seed");
    let owner = Owner {
        mode: 0o644,
        uid: 1000,
        gid: 1000,
    };
    let metas: [(&str, MetaRequest); 10] = [
        (
            "lookup",
            NsRead::Lookup {
                parent: InodeId::ROOT,
                name: "hello.txt".into(),
            }
            .into(),
        ),
        (
            "mkdir",
            NsWrite::Mkdir {
                parent: InodeId::ROOT,
                name: "dir".into(),
                owner,
            }
            .into(),
        ),
        (
            "rename",
            NsWrite::Rename {
                parent: InodeId::ROOT,
                name: "a".into(),
                new_parent: InodeId::ROOT,
                new_name: "b".into(),
                mode: Default::default(),
            }
            .into(),
        ),
        (
            "exist",
            ClusterQuery::ChunksExist { ids: vec![id, id] }.into(),
        ),
        (
            "raft",
            MetaRequest::Raft {
                kind: RaftRpcKind::AppendEntries,
                payload: vec![1, 2, 3, 4],
            },
        ),
        ("ring", ClusterQuery::GetRing.into()),
        (
            "write_inline",
            NsWrite::WriteInline {
                ino: InodeId(9),
                parts: vec![(0, b"tiny".to_vec()), (100, vec![7; 16])],
            }
            .into(),
        ),
        (
            "read_dir_plus",
            NsRead::ReadDirPlus {
                ino: InodeId::ROOT,
                after: Some("f00010".into()),
                limit: 1024,
            }
            .into(),
        ),
        (
            "reserve_inodes",
            NsWrite::ReserveInodes { count: 1024 }.into(),
        ),
        (
            "create_with",
            NsWrite::CreateWith {
                parent: InodeId::ROOT,
                name: "tiny".into(),
                owner,
                ino: InodeId(4096),
                inline: b"hello".to_vec(),
                created_ns: 1_764_000_000_000_000_000,
            }
            .into(),
        ),
    ];
    for (name, req) in metas {
        let call = MetaCall {
            session: Some(Session { client: 7, seq: 9 }),
            req,
            follower_read: false,
            request_id: 0x1234_5678,
        };
        write(dir, "meta_request", name, &postcard::to_stdvec(&call)?)?;
        write(dir, "frame", &format!("meta_{name}"), &encode_frame(&call)?)?;
    }
    let answer: Result<MetaResponse, RpcError> =
        Err(RpcError::not_leader(Some((2, "127.0.0.1:7000".into()))));
    write(dir, "frame", "meta_answer", &encode_frame(&answer)?)?;
    let chunks = [
        (
            "put",
            ChunkRequest::Put {
                id,
                len: 4096,
                backups: vec!["127.0.0.1:7001".into()],
                async_copies: vec!["127.0.0.1:7002".into()],
            },
        ),
        ("replicate", ChunkRequest::Replicate { id, len: 4096 }),
        (
            "range",
            ChunkRequest::GetRange {
                id,
                start: 1024,
                len: 4096,
            },
        ),
        ("have", ChunkRequest::Have { ids: vec![id] }),
        (
            "confirm",
            ChunkRequest::Confirm {
                ids: vec![id],
                ring_epoch: 7,
            },
        ),
    ];
    for (name, req) in chunks {
        let call = ChunkCall {
            request_id: 0x1234_5678,
            req,
        };
        write(dir, "chunk_request", name, &postcard::to_stdvec(&call)?)?;
        write(
            dir,
            "frame",
            &format!("chunk_{name}"),
            &encode_frame(&call)?,
        )?;
    }
    let reply = ChunkReply {
        ring_epoch: 3,
        result: Err(RpcError::new(ErrorCode::HashMismatch, "bad")),
    };
    write(dir, "chunk_request", "reply", &postcard::to_stdvec(&reply)?)?;
    let reply = ChunkReply {
        ring_epoch: 3,
        result: Ok(ChunkResponse::Data { len: 10 }),
    };
    write(dir, "frame", "chunk_reply", &encode_frame(&reply)?)?;
    for (name, text) in [
        ("plain", "/a/b/c.txt"),
        ("dots", "./a//b/./c"),
        ("dotdot", "/a/../b"),
        ("nul", "a\0b"),
        ("long", &"x".repeat(300)),
    ] {
        write(dir, "path", name, text.as_bytes())?;
    }
    // The chunk_slice target's chunk (same as in the target) and a genuine
    // slice of it: start = 2 * u16, len = u16, mode 1 = flip bytes.
    let data: Vec<u8> = (0..40_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let (tree, _) = outboard(&data);
    let (start, len) = (2 * 5000u16, 4096u16);
    let mut genuine = Vec::new();
    genuine.extend_from_slice(&5000u16.to_le_bytes());
    genuine.extend_from_slice(&len.to_le_bytes());
    genuine.push(0);
    genuine.extend(extract(&data, &tree, u64::from(start), u64::from(len))?);
    write(dir, "chunk_slice", "genuine", &genuine)?;
    let mut flip = genuine[..4].to_vec();
    flip.extend_from_slice(&[1, 10, 0, 0x40]);
    write(dir, "chunk_slice", "flip", &flip)?;
    println!("seeds written under {}", dir.display());
    Ok(())
}
