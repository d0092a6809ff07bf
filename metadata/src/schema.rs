//! How namespace records are laid out as keys and values.
//!
//! Keys are big-endian so that RocksDB's byte order is numeric order: a
//! directory's entries are one prefix, a file's extents are one prefix in
//! offset order. Every value starts with a format byte ([`RECORD_V1`]) so a
//! later release can read what an older one wrote.

use cairn_proto::meta_rpc::{Extent, FileKind, InodeAttr};
use cairn_proto::{ChunkId, InodeId, NodeId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::kv::KvError;

/// Format byte of every record written by this version.
pub const RECORD_V1: u8 = 1;

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_extend(v, vec![RECORD_V1]).expect("in-memory postcard encoding cannot fail")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, KvError> {
    match bytes.split_first() {
        Some((&RECORD_V1, rest)) => {
            postcard::from_bytes(rest).map_err(|e| KvError(format!("corrupt record: {e}")))
        }
        Some((v, _)) => Err(KvError(format!(
            "record format {v} is newer than this build"
        ))),
        None => Err(KvError("empty record".into())),
    }
}

/// Format byte of inode records (and of session results holding inode
/// attributes) since access times were added; records of format
/// [`RECORD_V1`] are read as [`InodeAttrV1`].
pub const INODE_V2: u8 = 2;

/// An inode record as the first release wrote it (no access time).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InodeAttrV1 {
    pub ino: InodeId,
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub version: u64,
}

impl From<InodeAttrV1> for InodeAttr {
    fn from(a: InodeAttrV1) -> Self {
        InodeAttr {
            ino: a.ino,
            kind: a.kind,
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            size: a.size,
            nlink: a.nlink,
            mtime_ns: a.mtime_ns,
            ctime_ns: a.ctime_ns,
            version: a.version,
            // Never recorded: the modification time is the best guess.
            atime_ns: a.mtime_ns,
        }
    }
}

pub fn encode_inode(a: &InodeAttr) -> Vec<u8> {
    postcard::to_extend(a, vec![INODE_V2]).expect("in-memory postcard encoding cannot fail")
}

pub fn decode_inode(bytes: &[u8]) -> Result<InodeAttr, KvError> {
    let corrupt = |e: postcard::Error| KvError(format!("corrupt inode record: {e}"));
    match bytes.split_first() {
        Some((&RECORD_V1, rest)) => Ok(postcard::from_bytes::<InodeAttrV1>(rest)
            .map_err(corrupt)?
            .into()),
        Some((&INODE_V2, rest)) => postcard::from_bytes(rest).map_err(corrupt),
        Some((v, _)) => Err(KvError(format!(
            "inode record format {v} is newer than this build"
        ))),
        None => Err(KvError("empty inode record".into())),
    }
}

pub fn inode_key(ino: InodeId) -> Vec<u8> {
    ino.0.to_be_bytes().to_vec()
}

pub fn dentry_key(parent: InodeId, name: &str) -> Vec<u8> {
    let mut k = parent.0.to_be_bytes().to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// `[start, end)` covering every entry of directory `parent`.
pub fn dentry_range(parent: InodeId) -> (Vec<u8>, Vec<u8>) {
    (
        parent.0.to_be_bytes().to_vec(),
        (parent.0 + 1).to_be_bytes().to_vec(),
    )
}

pub fn dentry_name(key: &[u8]) -> Result<String, KvError> {
    String::from_utf8(key.get(8..).unwrap_or_default().to_vec())
        .map_err(|_| KvError("dentry name is not UTF-8".into()))
}

pub fn extent_key(ino: InodeId, offset: u64) -> Vec<u8> {
    let mut k = ino.0.to_be_bytes().to_vec();
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// `[start, end)` covering every extent of file `ino`.
pub fn extent_range(ino: InodeId) -> (Vec<u8>, Vec<u8>) {
    (extent_key(ino, 0), (ino.0 + 1).to_be_bytes().to_vec())
}

pub fn chunk_key(id: &ChunkId) -> Vec<u8> {
    id.0.to_vec()
}

pub fn server_key(id: NodeId) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Keys of the [`crate::kv::Cf::SmMeta`] singletons.
pub mod meta_keys {
    pub const NEXT_INO: &[u8] = b"next_ino";
    pub const COUNTERS: &[u8] = b"counters";
    pub const LAST_APPLIED: &[u8] = b"last_applied";
    pub const MEMBERSHIP: &[u8] = b"membership";
    pub const RING_EPOCH: &[u8] = b"ring_epoch";
    pub const REPLICATION: &[u8] = b"replication";
    pub const SERVER_FLAGS: &[u8] = b"server_flags";
}

/// A directory entry as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DentryRecord {
    pub ino: InodeId,
    pub kind: FileKind,
}

/// An extent as stored (its offset is in the key).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExtentRecord {
    pub len: u64,
    pub chunk: ChunkId,
    pub chunk_offset: u64,
}

impl ExtentRecord {
    pub fn into_extent(self, offset: u64) -> Extent {
        Extent {
            offset,
            len: self.len,
            chunk: self.chunk,
            chunk_offset: self.chunk_offset,
        }
    }
}

/// A chunk's reference count.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkRecord {
    pub refs: u64,
}

/// A chunkserver in the registry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerRecord {
    pub id: NodeId,
    pub addr: String,
    pub zone: String,
    pub capacity_bytes: u64,
}

/// A chunkserver's placement flags, kept apart from [`ServerRecord`] (in
/// one map under [`meta_keys::SERVER_FLAGS`]; a server without an entry has
/// them all false).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerFlags {
    /// Missed heartbeats past the down timeout (set by the leader).
    pub down: bool,
    /// Being emptied by an operator (`cairn chunkserver drain`).
    pub draining: bool,
    /// Its heartbeats say its disk is below its reserve (set by the leader).
    pub full: bool,
}

pub type ServerFlagsMap = std::collections::BTreeMap<NodeId, ServerFlags>;

/// Format byte of the server-flags map since `full` was added; maps of
/// format [`RECORD_V1`] hold [`ServerFlagsV1`].
pub const SERVER_FLAGS_V2: u8 = 2;

/// A server's flags as the first release wrote them (no `full`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerFlagsV1 {
    pub down: bool,
    pub draining: bool,
}

pub fn encode_server_flags(m: &ServerFlagsMap) -> Vec<u8> {
    postcard::to_extend(m, vec![SERVER_FLAGS_V2]).expect("in-memory postcard encoding cannot fail")
}

pub fn decode_server_flags(bytes: &[u8]) -> Result<ServerFlagsMap, KvError> {
    let corrupt = |e: postcard::Error| KvError(format!("corrupt server flags: {e}"));
    match bytes.split_first() {
        Some((&RECORD_V1, rest)) => Ok(postcard::from_bytes::<
            std::collections::BTreeMap<NodeId, ServerFlagsV1>,
        >(rest)
        .map_err(corrupt)?
        .into_iter()
        .map(|(id, f)| {
            let flags = ServerFlags {
                down: f.down,
                draining: f.draining,
                full: false,
            };
            (id, flags)
        })
        .collect()),
        Some((&SERVER_FLAGS_V2, rest)) => postcard::from_bytes(rest).map_err(corrupt),
        Some((v, _)) => Err(KvError(format!(
            "server flags format {v} is newer than this build"
        ))),
        None => Err(KvError("empty server flags".into())),
    }
}

/// Counts kept for `cairn status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    pub files: u64,
    pub directories: u64,
    pub chunks_referenced: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_a_version_and_reject_unknown_ones() {
        let rec = ChunkRecord { refs: 3 };
        let bytes = encode(&rec);
        assert_eq!(bytes[0], RECORD_V1);
        assert_eq!(decode::<ChunkRecord>(&bytes).unwrap(), rec);
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert!(decode::<ChunkRecord>(&newer).is_err());
        assert!(decode::<ChunkRecord>(&[]).is_err());
    }

    #[test]
    fn decodes_bytes_written_by_v1() {
        // A v1 DentryRecord { ino: 7, kind: Dir } as written to disk by the
        // first release; must keep decoding.
        let v1 = [1u8, 7, 1];
        assert_eq!(
            decode::<DentryRecord>(&v1).unwrap(),
            DentryRecord {
                ino: InodeId(7),
                kind: FileKind::Dir
            }
        );
    }

    #[test]
    fn records_of_format_1_decode_from_pinned_bytes() {
        // As the first release wrote each record kind (format byte 1, then
        // postcard); these bytes must keep decoding to the same values.
        // len 3, chunk 07 × 32, chunk_offset 1.
        let mut extent = vec![1u8, 3];
        extent.extend_from_slice(&[7; 32]);
        extent.push(1);
        let want = ExtentRecord {
            len: 3,
            chunk: ChunkId([7; 32]),
            chunk_offset: 1,
        };
        assert_eq!(encode(&want), extent);
        assert_eq!(decode::<ExtentRecord>(&extent).unwrap(), want);
        assert_eq!(
            decode::<ChunkRecord>(&[1, 0xac, 0x02]).unwrap(),
            ChunkRecord { refs: 300 }
        );
        let server = [1u8, 2, 3, b'h', b':', b'1', 1, b'z', 0xac, 0x02];
        let want = ServerRecord {
            id: 2,
            addr: "h:1".into(),
            zone: "z".into(),
            capacity_bytes: 300,
        };
        assert_eq!(encode(&want), server);
        assert_eq!(decode::<ServerRecord>(&server).unwrap(), want);
        let counters = Counters {
            files: 1,
            directories: 2,
            chunks_referenced: 3,
        };
        assert_eq!(encode(&counters), [1, 1, 2, 3]);
        assert_eq!(decode::<Counters>(&[1, 1, 2, 3]).unwrap(), counters);
        // A garbage record's time (zigzag i64), a parent, the next inode.
        assert_eq!(decode::<i64>(&[1, 3]).unwrap(), -2);
        assert_eq!(decode::<InodeId>(&[1, 9]).unwrap(), InodeId(9));
        assert_eq!(decode::<u64>(&[1, 2]).unwrap(), 2);
    }

    #[test]
    fn server_flags_of_both_formats_decode() {
        // Server 4 down, server 9 draining, as the first release wrote them.
        let v1 = [1u8, 2, 4, 1, 0, 9, 0, 1];
        let m = decode_server_flags(&v1).unwrap();
        assert_eq!(
            m.get(&4),
            Some(&ServerFlags {
                down: true,
                draining: false,
                full: false
            })
        );
        assert!(m[&9].draining && !m[&9].down && !m[&9].full);
        let mut new = m.clone();
        new.insert(
            5,
            ServerFlags {
                full: true,
                ..Default::default()
            },
        );
        let bytes = encode_server_flags(&new);
        assert_eq!(bytes[0], SERVER_FLAGS_V2);
        assert_eq!(decode_server_flags(&bytes).unwrap(), new);
        assert!(decode_server_flags(&[3, 0]).is_err());
    }

    #[test]
    fn inode_records_of_both_formats_decode() {
        let v1 = InodeAttrV1 {
            ino: InodeId(9),
            kind: FileKind::File,
            mode: 0o644,
            uid: 1,
            gid: 2,
            size: 3,
            nlink: 1,
            mtime_ns: 44,
            ctime_ns: 55,
            version: 6,
        };
        let old = encode(&v1); // format byte 1, as the first release wrote
        let a = decode_inode(&old).unwrap();
        assert_eq!(
            (a.ino, a.size, a.mtime_ns, a.atime_ns),
            (InodeId(9), 3, 44, 44)
        );
        let new = InodeAttr { atime_ns: 7, ..a };
        assert_eq!(decode_inode(&encode_inode(&new)).unwrap(), new);
        assert!(decode_inode(&[3, 0]).is_err());
    }

    #[test]
    fn keys_sort_numerically() {
        assert!(extent_key(InodeId(1), 255) < extent_key(InodeId(1), 256));
        assert!(extent_key(InodeId(1), u64::MAX) < extent_key(InodeId(2), 0));
        let (s, e) = dentry_range(InodeId(5));
        let k = dentry_key(InodeId(5), "zzz");
        assert!(s <= k && k < e);
    }
}
