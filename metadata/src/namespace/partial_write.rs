//! Partial writes into a file: each new extent replaces the bytes it
//! covers. Older extents overlapping it are cut around it — the piece
//! before keeps its key, a piece after is re-keyed at the new extent's end
//! (still pointing into the same chunk, so that chunk gains a reference
//! when one extent becomes two) — so a random write into a large file
//! rewrites only the extents it touches.

use cairn_proto::meta_rpc::{Extent, InodeAttr};
use cairn_proto::{ErrorCode, InodeId};

use super::{
    decref, extent_offset, get_attr, incref, put_inode, refuse, require_file, validate_extents,
    NsError, MAX_EXTENTS_PER_COMMIT,
};
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{decode, encode, extent_key, extent_range, ExtentRecord};

/// Largest file size (2^62 bytes): offsets stay far from overflow.
pub const MAX_FILE_SIZE: u64 = 1 << 62;

pub(super) fn write_extents<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    extents: &[Extent],
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    if extents.len() > MAX_EXTENTS_PER_COMMIT {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("more than {MAX_EXTENTS_PER_COMMIT} extents in one write"),
        );
    }
    validate_extents(extents, MAX_FILE_SIZE)?;
    let mut attr = get_attr(t, ino)?;
    require_file(&attr)?;
    super::inline::replace_by_extents(t, ino, extents)?;
    for e in extents {
        punch(t, ino, e.offset, e.offset + e.len, now_ns)?;
        incref(t, &e.chunk)?;
        t.put(
            Cf::Extents,
            extent_key(ino, e.offset),
            encode(&ExtentRecord {
                len: e.len,
                chunk: e.chunk,
                chunk_offset: e.chunk_offset,
            }),
        );
    }
    if let Some(last) = extents.last() {
        attr.size = attr.size.max(last.offset + last.len);
    }
    attr.mtime_ns = now_ns;
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    super::xattrs::drop_content_bound(t, ino)?;
    Ok(attr)
}

/// Removes bytes `start..end` from `ino`'s extents, leaving a hole.
fn punch<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    start: u64,
    end: u64,
    now_ns: i64,
) -> Result<(), NsError> {
    let (floor, ceiling) = extent_range(ino);
    // An extent starting before `start` may reach into the range.
    if start > 0 {
        if let Some((k, v)) =
            t.last_at_or_before(Cf::Extents, &floor, &extent_key(ino, start - 1))?
        {
            let off = extent_offset(&k)?;
            let mut rec: ExtentRecord = decode(&v)?;
            let rec_end = off + rec.len;
            if rec_end > start {
                if rec_end > end {
                    // The new bytes land inside it: keep its tail too.
                    incref(t, &rec.chunk)?;
                    let tail = ExtentRecord {
                        len: rec_end - end,
                        chunk: rec.chunk,
                        chunk_offset: rec.chunk_offset + (end - off),
                    };
                    t.put(Cf::Extents, extent_key(ino, end), encode(&tail));
                }
                rec.len = start - off;
                t.put(Cf::Extents, k, encode(&rec));
            }
        }
    }
    let inside = t.scan(
        Cf::Extents,
        &extent_key(ino, start),
        &extent_key(ino, end).min(ceiling),
        usize::MAX,
    )?;
    for (k, v) in inside {
        let off = extent_offset(&k)?;
        let rec: ExtentRecord = decode(&v)?;
        t.delete(Cf::Extents, k);
        let rec_end = off + rec.len;
        if rec_end > end {
            let tail = ExtentRecord {
                len: rec_end - end,
                chunk: rec.chunk,
                chunk_offset: rec.chunk_offset + (end - off),
            };
            t.put(Cf::Extents, extent_key(ino, end), encode(&tail));
        } else {
            decref(t, &rec.chunk, now_ns)?;
        }
    }
    Ok(())
}
