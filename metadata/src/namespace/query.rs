//! Read-only namespace queries over any [`KvRead`]: the service answers
//! linearizable reads with these, and commands use them to look before they
//! write.

use cairn_proto::meta_rpc::{
    ChunkState, DirEntry, DirEntryPlus, Extent, FileKind, InodeAttr, ReplicationPolicy, RingMember,
    RingState, MAX_DIR_PAGE, MAX_DIR_PLUS_PAGE, MAX_EXTENT_PAGE,
};
use cairn_proto::path::{split_path, validate_name};
use cairn_proto::ring::weight_for_capacity;
use cairn_proto::{ChunkId, ErrorCode, InodeId};

use super::{refuse, NsError};
use crate::kv::{Cf, KvError, KvRead};
use crate::schema::{
    chunk_key, decode, decode_inode, dentry_key, dentry_name, dentry_range, extent_key,
    extent_range, inode_key, meta_keys, Counters, DentryRecord, ExtentRecord, ServerFlagsMap,
    ServerRecord,
};

/// The root directory as first created (at `version`).
pub(crate) fn root_attr(version: u64) -> InodeAttr {
    InodeAttr {
        ino: InodeId::ROOT,
        kind: FileKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        nlink: 2,
        mtime_ns: 0,
        ctime_ns: 0,
        version,
        atime_ns: 0,
    }
}

pub fn get_attr(kv: &impl KvRead, ino: InodeId) -> Result<InodeAttr, NsError> {
    match kv.get(Cf::Inodes, &inode_key(ino))? {
        Some(b) => Ok(decode_inode(&b)?),
        // Before the first command creates it, the root reads as new.
        None if ino == InodeId::ROOT => Ok(root_attr(0)),
        None => refuse(ErrorCode::NotFound, format!("no inode {ino}")),
    }
}

pub(crate) fn get_dentry(
    kv: &impl KvRead,
    parent: InodeId,
    name: &str,
) -> Result<Option<DentryRecord>, NsError> {
    Ok(match kv.get(Cf::Dentries, &dentry_key(parent, name))? {
        Some(b) => Some(decode(&b)?),
        None => None,
    })
}

/// The directory `ino`, or NotFound / NotADirectory.
pub(crate) fn get_dir(kv: &impl KvRead, ino: InodeId) -> Result<InodeAttr, NsError> {
    let attr = get_attr(kv, ino)?;
    if attr.kind != FileKind::Dir {
        return refuse(
            ErrorCode::NotADirectory,
            format!("inode {ino} is not a directory"),
        );
    }
    Ok(attr)
}

pub fn lookup(kv: &impl KvRead, parent: InodeId, name: &str) -> Result<InodeAttr, NsError> {
    validate_name(name)?;
    get_dir(kv, parent)?;
    match get_dentry(kv, parent, name)? {
        Some(d) => get_attr(kv, d.ino),
        None => refuse(
            ErrorCode::NotFound,
            format!("{name:?}: no such file or directory"),
        ),
    }
}

/// Walks `path` from the root.
pub fn resolve_path(kv: &impl KvRead, path: &str) -> Result<InodeAttr, NsError> {
    let parts = split_path(path)?;
    let mut attr = get_attr(kv, InodeId::ROOT)?;
    for (i, part) in parts.iter().enumerate() {
        if attr.kind != FileKind::Dir {
            let so_far = parts[..i].join("/");
            return refuse(
                ErrorCode::NotADirectory,
                format!("/{so_far}: not a directory"),
            );
        }
        attr = match get_dentry(kv, attr.ino, part)? {
            Some(d) => get_attr(kv, d.ino)?,
            None => {
                let so_far = parts[..=i].join("/");
                return refuse(
                    ErrorCode::NotFound,
                    format!("/{so_far}: no such file or directory"),
                );
            }
        };
    }
    Ok(attr)
}

/// Up to `limit` entries of directory `ino` after name `after`.
pub fn read_dir(
    kv: &impl KvRead,
    ino: InodeId,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<DirEntry>, bool), NsError> {
    get_dir(kv, ino)?;
    let limit = limit.clamp(1, MAX_DIR_PAGE) as usize;
    let (mut start, end) = dentry_range(ino);
    if let Some(after) = after {
        start = dentry_key(ino, after);
        start.push(0); // strictly after
    }
    let rows = kv.scan(Cf::Dentries, &start, &end, limit + 1)?;
    let more = rows.len() > limit;
    let entries = rows
        .into_iter()
        .take(limit)
        .map(|(k, v)| {
            let d: DentryRecord = decode(&v)?;
            Ok(DirEntry {
                name: dentry_name(&k)?,
                ino: d.ino,
                kind: d.kind,
            })
        })
        .collect::<Result<Vec<_>, KvError>>()?;
    Ok((entries, more))
}

/// As [`read_dir`], each entry with its inode's attributes (at most
/// [`MAX_DIR_PLUS_PAGE`] a page), whether more follow, and the last name
/// read. An entry whose inode is gone by the time it is read (removed
/// meanwhile) is left out.
pub fn read_dir_plus(
    kv: &impl KvRead,
    ino: InodeId,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<DirEntryPlus>, bool, Option<String>), NsError> {
    let (entries, more) = read_dir(kv, ino, after, limit.clamp(1, MAX_DIR_PLUS_PAGE))?;
    let last = entries.last().map(|e| e.name.clone());
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        match get_attr(kv, e.ino) {
            Ok(attr) => out.push(DirEntryPlus { name: e.name, attr }),
            Err(NsError::Refused(r)) if r.code == ErrorCode::NotFound => {}
            Err(other) => return Err(other),
        }
    }
    Ok((out, more, last))
}

/// Up to `limit` extents of file `ino` that end after byte `from`, whether
/// more follow, and the inode version they were read at.
pub fn extents(
    kv: &impl KvRead,
    ino: InodeId,
    from: u64,
    limit: u32,
) -> Result<(Vec<Extent>, bool, u64), NsError> {
    let (inline, extents, more, version) = content(kv, ino, from, limit)?;
    if inline.is_some() {
        return refuse(
            ErrorCode::InlineData,
            format!("file {ino} keeps its bytes inline: read them with GetContent"),
        );
    }
    Ok((extents, more, version))
}

/// File `ino`'s content: its inline bytes, or up to `limit` extents that
/// end after byte `from` and whether more follow; with the inode version
/// it was read at.
#[allow(clippy::type_complexity)]
pub fn content(
    kv: &impl KvRead,
    ino: InodeId,
    from: u64,
    limit: u32,
) -> Result<(Option<Vec<u8>>, Vec<Extent>, bool, u64), NsError> {
    content_of(kv, &get_attr(kv, ino)?, from, limit)
}

/// As [`content`], for the inode whose attributes `attr` were just read
/// (from the same view).
#[allow(clippy::type_complexity)]
pub fn content_of(
    kv: &impl KvRead,
    attr: &InodeAttr,
    from: u64,
    limit: u32,
) -> Result<(Option<Vec<u8>>, Vec<Extent>, bool, u64), NsError> {
    let ino = attr.ino;
    if attr.kind == FileKind::Dir {
        return refuse(
            ErrorCode::IsADirectory,
            format!("inode {ino} is a directory"),
        );
    }
    if let Some(bytes) = super::inline_bytes(kv, ino)? {
        return Ok((Some(bytes), Vec::new(), false, attr.version));
    }
    let limit = limit.clamp(1, MAX_EXTENT_PAGE) as usize;
    let (floor, end) = extent_range(ino);
    // The extent covering `from` may start before it.
    let start = match kv.last_at_or_before(Cf::Extents, &floor, &extent_key(ino, from))? {
        Some((k, v)) => {
            let rec: ExtentRecord = decode(&v)?;
            let off = extent_offset(&k)?;
            if off + rec.len > from {
                k
            } else {
                extent_key(ino, from)
            }
        }
        None => floor,
    };
    let rows = kv.scan(Cf::Extents, &start, &end, limit + 1)?;
    let more = rows.len() > limit;
    let out = rows
        .into_iter()
        .take(limit)
        .map(|(k, v)| Ok(decode::<ExtentRecord>(&v)?.into_extent(extent_offset(&k)?)))
        .collect::<Result<Vec<_>, KvError>>()?;
    Ok((None, out, more, attr.version))
}

pub(crate) fn extent_offset(key: &[u8]) -> Result<u64, KvError> {
    key.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| KvError("extent key too short".into()))
}

/// Whether each chunk is referenced by a committed file.
pub fn chunks_exist(kv: &impl KvRead, ids: &[ChunkId]) -> Result<Vec<bool>, NsError> {
    ids.iter()
        .map(|id| Ok(kv.get(Cf::Chunks, &chunk_key(id))?.is_some()))
        .collect()
}

/// What the state machine knows of each chunk, for garbage collection.
pub fn chunk_states(kv: &impl KvRead, ids: &[ChunkId]) -> Result<Vec<ChunkState>, NsError> {
    ids.iter()
        .map(|id| {
            let key = chunk_key(id);
            if kv.get(Cf::Chunks, &key)?.is_some() {
                return Ok(ChunkState::Referenced);
            }
            Ok(match kv.get(Cf::Garbage, &key)? {
                Some(b) => ChunkState::Unreferenced {
                    since_ns: decode::<i64>(&b)?,
                },
                None => ChunkState::Unknown,
            })
        })
        .collect()
}

/// The placement ring: every registered chunkserver, at the current epoch.
pub fn ring(kv: &impl KvRead) -> Result<RingState, NsError> {
    let epoch = ring_epoch(kv)?;
    let flags = server_flags(kv)?;
    let members = kv
        .scan(Cf::Servers, &[], &[0xff; 9], usize::MAX)?
        .into_iter()
        .map(|(_, v)| {
            let s: ServerRecord = decode(&v)?;
            let f = flags.get(&s.id).copied().unwrap_or_default();
            Ok(RingMember {
                id: s.id,
                addr: s.addr,
                zone: s.zone,
                weight: weight_for_capacity(s.capacity_bytes),
                down: f.down,
                draining: f.draining,
                full: f.full,
            })
        })
        .collect::<Result<Vec<_>, KvError>>()?;
    Ok(RingState {
        epoch,
        members,
        policy: replication(kv)?,
        // Configuration, not state: the service fills it in.
        gc_grace_ms: 0,
    })
}

/// The placement ring's epoch (bumped by every change to it).
pub fn ring_epoch(kv: &impl KvRead) -> Result<u64, NsError> {
    Ok(match kv.get(Cf::SmMeta, meta_keys::RING_EPOCH)? {
        Some(b) => decode(&b)?,
        None => 0,
    })
}

/// Every chunkserver's down/draining/full flags (servers without an entry
/// have none).
pub fn server_flags(kv: &impl KvRead) -> Result<ServerFlagsMap, NsError> {
    Ok(match kv.get(Cf::SmMeta, meta_keys::SERVER_FLAGS)? {
        Some(b) => crate::schema::decode_server_flags(&b)?,
        None => ServerFlagsMap::new(),
    })
}

/// The cluster's replication policy (N copies, S synchronous).
pub fn replication(kv: &impl KvRead) -> Result<ReplicationPolicy, NsError> {
    Ok(match kv.get(Cf::SmMeta, meta_keys::REPLICATION)? {
        Some(b) => decode(&b)?,
        None => ReplicationPolicy::default(),
    })
}

pub fn counters(kv: &impl KvRead) -> Result<Counters, NsError> {
    Ok(match kv.get(Cf::SmMeta, meta_keys::COUNTERS)? {
        Some(b) => decode(&b)?,
        None => Counters::default(),
    })
}
