//! Setting an inode's attributes: chmod, chown, truncate, utimens.
//!
//! Truncating a file shrinks or grows its extent list in place: extents
//! wholly past the new size are dropped (releasing their chunks), the one
//! straddling it is shortened (it keeps its chunk), and growing adds
//! nothing — the hole reads as zeros.

use cairn_proto::meta_rpc::{AttrChange, InodeAttr};
use cairn_proto::{ErrorCode, InodeId};

use super::partial_write::MAX_FILE_SIZE;
use super::{decref, extent_offset, get_attr, put_inode, refuse, require_file, NsError};
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{decode, encode, extent_key, extent_range, ExtentRecord};

/// Permission bits a mode may carry (setuid, setgid, sticky, rwx).
const MODE_BITS: u32 = 0o7777;

pub(super) fn set_attr<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    change: &AttrChange,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    let mut attr = get_attr(t, ino)?;
    if let Some(mode) = change.mode {
        if mode & !MODE_BITS != 0 {
            return refuse(
                ErrorCode::InvalidRequest,
                format!("mode {mode:o} has bits beyond {MODE_BITS:o}"),
            );
        }
        attr.mode = mode;
    }
    if let Some(uid) = change.uid {
        attr.uid = uid;
    }
    if let Some(gid) = change.gid {
        attr.gid = gid;
    }
    if let Some(size) = change.size {
        require_file(&attr)?;
        if size > MAX_FILE_SIZE {
            return refuse(
                ErrorCode::FileTooLarge,
                format!("{size} bytes is past the largest file size ({MAX_FILE_SIZE})"),
            );
        }
        if size < attr.size {
            cut_extents(t, ino, size, now_ns)?;
            super::inline::cut(t, ino, size)?;
        }
        if size != attr.size {
            attr.size = size;
            attr.mtime_ns = now_ns;
            super::xattrs::drop_content_bound(t, ino)?;
        }
    }
    if let Some(mtime) = change.mtime_ns {
        attr.mtime_ns = mtime;
    }
    if let Some(atime) = change.atime_ns {
        attr.atime_ns = atime;
    }
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    Ok(attr)
}

/// Drops every byte of `ino` at or past `size`.
fn cut_extents<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    size: u64,
    now_ns: i64,
) -> Result<(), NsError> {
    let (start, end) = extent_range(ino);
    // The extent starting below `size` may reach past it: shorten it.
    let below = extent_key(ino, size.saturating_sub(1));
    if let Some((k, v)) = t.last_at_or_before(Cf::Extents, &start, &below)? {
        let mut rec: ExtentRecord = decode(&v)?;
        let offset = extent_offset(&k)?;
        if offset < size && offset + rec.len > size {
            rec.len = size - offset;
            t.put(Cf::Extents, k, encode(&rec));
        }
    }
    let rows = t.scan(Cf::Extents, &extent_key(ino, size), &end, usize::MAX)?;
    for (k, v) in rows {
        let rec: ExtentRecord = decode(&v)?;
        decref(t, &rec.chunk, now_ns)?;
        t.delete(Cf::Extents, k);
    }
    Ok(())
}
