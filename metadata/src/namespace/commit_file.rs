//! Committing a whole file at once (`cairn put`): a new file, or new
//! content for an existing one, with its extents and their chunk
//! references, in one command.

use cairn_proto::meta_rpc::{Extent, FileKind, InodeAttr, Owner};
use cairn_proto::path::validate_name;
use cairn_proto::{ErrorCode, InodeId};

use super::{
    clear_content, get_attr, get_dentry, get_dir, incref, new_inode, put_inode, refuse,
    validate_extents, NsError,
};
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{encode, extent_key, ExtentRecord};

pub(super) fn commit_file<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    extents: &[Extent],
    size: u64,
    owner: Owner,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    validate_name(name)?;
    validate_extents(extents, size)?;
    get_dir(t, parent)?;
    let attr = match get_dentry(t, parent, name)? {
        Some(d) if d.kind == FileKind::Dir => {
            return refuse(ErrorCode::IsADirectory, format!("{name:?} is a directory"))
        }
        Some(d) if d.kind != FileKind::File => {
            return refuse(
                ErrorCode::InvalidRequest,
                format!("{name:?} is not a regular file"),
            )
        }
        Some(d) => {
            // Replace the contents in place: same inode, new extents.
            let mut attr = get_attr(t, d.ino)?;
            clear_content(t, d.ino, now_ns)?;
            super::xattrs::drop_content_bound(t, d.ino)?;
            attr.size = size;
            attr.mtime_ns = now_ns;
            attr.ctime_ns = now_ns;
            attr.version += 1;
            attr
        }
        None => {
            let mut attr = new_inode(t, parent, name, owner, FileKind::File, now_ns)?;
            attr.size = size;
            attr
        }
    };
    for e in extents {
        incref(t, &e.chunk)?;
        t.put(
            Cf::Extents,
            extent_key(attr.ino, e.offset),
            encode(&ExtentRecord {
                len: e.len,
                chunk: e.chunk,
                chunk_offset: e.chunk_offset,
            }),
        );
    }
    put_inode(t, &attr);
    Ok(attr)
}
