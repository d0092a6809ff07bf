//! Tiny files' bytes kept in metadata ([`Cf::Inline`]) instead of chunks:
//! writing one costs a Raft commit and no chunk upload, reading one no
//! chunkserver round trip. A file holds inline bytes or extents, never
//! both: inline bytes cover its start, and bytes past them up to its size
//! read as zeros. A chunk write into such a file must cover the inline
//! bytes (the client stores them as a chunk with its own bytes), and then
//! replaces them.

use cairn_proto::meta_rpc::{FileKind, InodeAttr, Owner, MAX_CREATE_SKEW_NS, MAX_INLINE};
use cairn_proto::{ErrorCode, InodeId};

use super::{create_node_checks, get_attr, new_inode_as, put_inode, refuse, require_file, NsError};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::schema::{extent_range, inode_key};

/// Most parts one inline write may carry.
const MAX_INLINE_PARTS: usize = 1024;

/// The inline bytes of `ino`, if it keeps any.
pub fn inline_bytes(kv: &impl KvRead, ino: InodeId) -> Result<Option<Vec<u8>>, KvError> {
    kv.get(Cf::Inline, &inode_key(ino))
}

fn has_extents(kv: &impl KvRead, ino: InodeId) -> Result<bool, KvError> {
    let (start, end) = extent_range(ino);
    Ok(!kv.scan(Cf::Extents, &start, &end, 1)?.is_empty())
}

fn not_inline<T>(ino: InodeId, why: impl std::fmt::Display) -> Result<T, NsError> {
    refuse(
        ErrorCode::NotInline,
        format!("file {ino} cannot keep its bytes inline: {why}"),
    )
}

/// Writes each `(offset, bytes)` part into `ino`'s inline bytes.
pub(super) fn write_inline<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    parts: &[(u64, Vec<u8>)],
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    if parts.len() > MAX_INLINE_PARTS {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("more than {MAX_INLINE_PARTS} parts in one inline write"),
        );
    }
    let mut attr = get_attr(t, ino)?;
    require_file(&attr)?;
    let mut size = attr.size;
    for (offset, data) in parts {
        match offset.checked_add(data.len() as u64) {
            Some(end) if end <= MAX_INLINE => size = size.max(end),
            _ => return not_inline(ino, format!("a write reaches past {MAX_INLINE} bytes")),
        }
    }
    if size > MAX_INLINE {
        return not_inline(ino, format!("it is {size} bytes"));
    }
    if has_extents(t, ino)? {
        return not_inline(ino, "its bytes are in chunks");
    }
    let mut bytes = inline_bytes(t, ino)?.unwrap_or_default();
    bytes.resize(size as usize, 0);
    for (offset, data) in parts {
        let at = *offset as usize;
        bytes[at..at + data.len()].copy_from_slice(data);
    }
    if bytes.is_empty() {
        t.delete(Cf::Inline, inode_key(ino));
    } else {
        t.put(Cf::Inline, inode_key(ino), bytes);
    }
    attr.size = size;
    attr.mtime_ns = now_ns;
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    super::xattrs::drop_content_bound(t, ino)?;
    Ok(attr)
}

/// Creates regular file `name` in `parent` as reserved inode `ino`,
/// holding `bytes`: a tiny file created and written in one command. The
/// file's times are `created_ns` (what the client told its kernel) unless
/// that is far from `now_ns`; the parent's are `now_ns`.
pub(super) fn create_with<R: KvRead>(
    t: &mut Txn<'_, R>,
    (parent, name): (InodeId, &str),
    (owner, ino): (Owner, InodeId),
    bytes: &[u8],
    (created_ns, now_ns): (i64, i64),
) -> Result<InodeAttr, NsError> {
    if bytes.len() as u64 > MAX_INLINE {
        return not_inline(ino, format!("{} bytes", bytes.len()));
    }
    if !super::inode_numbers::was_handed_out(t, ino)? {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("inode number {ino} was never reserved"),
        );
    }
    if t.get(Cf::Inodes, &inode_key(ino))?.is_some() {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("inode number {ino} is in use"),
        );
    }
    create_node_checks(t, parent, name)?;
    let mut attr = new_inode_as(t, parent, name, owner, FileKind::File, ino, now_ns)?;
    if created_ns.abs_diff(now_ns) <= MAX_CREATE_SKEW_NS.unsigned_abs() {
        attr.mtime_ns = created_ns;
        attr.ctime_ns = created_ns;
        attr.atime_ns = created_ns;
    }
    if !bytes.is_empty() {
        t.put(Cf::Inline, inode_key(ino), bytes.to_vec());
        attr.size = bytes.len() as u64;
    }
    put_inode(t, &attr);
    Ok(attr)
}

/// Before a chunk write of `extents` (sorted, not overlapping) into
/// `ino`: its inline bytes, if any, must lie under the new extents, and
/// are dropped.
pub(super) fn replace_by_extents<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    extents: &[cairn_proto::meta_rpc::Extent],
) -> Result<(), NsError> {
    let Some(bytes) = inline_bytes(t, ino)? else {
        return Ok(());
    };
    let need = bytes.len() as u64;
    let mut covered = 0u64;
    for e in extents {
        if e.offset > covered || covered >= need {
            break;
        }
        covered = covered.max(e.offset + e.len);
    }
    if covered < need {
        return refuse(
            ErrorCode::InlineData,
            format!(
                "file {ino} keeps its first {need} bytes inline; a chunk write must cover them"
            ),
        );
    }
    t.delete(Cf::Inline, inode_key(ino));
    Ok(())
}

/// Truncation to `size`: inline bytes past it go.
pub(super) fn cut<R: KvRead>(t: &mut Txn<'_, R>, ino: InodeId, size: u64) -> Result<(), NsError> {
    if let Some(mut bytes) = inline_bytes(t, ino)? {
        if bytes.len() as u64 > size {
            bytes.truncate(size as usize);
            if bytes.is_empty() {
                t.delete(Cf::Inline, inode_key(ino));
            } else {
                t.put(Cf::Inline, inode_key(ino), bytes);
            }
        }
    }
    Ok(())
}
