//! Namespace logic: applying [`NsWrite`]s to, and answering queries from,
//! the state machine's key-value view. No IO of its own, no Raft: the state
//! machine feeds it a [`Txn`] and commits what it wrote; the tests feed it a
//! [`MemKv`](crate::kv::MemKv).
//!
//! A command that is refused (bad name, missing parent, ...) writes nothing:
//! the caller rolls its transaction back to the savepoint taken before it.

use cairn_proto::meta_rpc::{Extent, FileKind, InodeAttr, NsWrite, Owner};
use cairn_proto::path::validate_name;
use cairn_proto::{ErrorCode, InodeId, RpcError};

use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::schema::{
    decode, dentry_key, dentry_range, encode, encode_inode, extent_range, inode_key, meta_keys,
    Counters, DentryRecord, ExtentRecord,
};

/// Most extents one file may have in one commit.
pub const MAX_EXTENTS_PER_COMMIT: usize = 250_000;

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// Refused; nothing changed. Goes back to the caller as is.
    #[error(transparent)]
    Refused(#[from] RpcError),
    /// The storage engine failed; the state machine cannot go on.
    #[error(transparent)]
    Storage(#[from] KvError),
}

pub(crate) fn refuse<T>(code: ErrorCode, msg: impl Into<String>) -> Result<T, NsError> {
    Err(NsError::Refused(RpcError::new(code, msg)))
}

/// Applies namespace change `w`, stamped `now_ns`. On `Err(Refused)` the
/// caller must discard the writes this call made (see
/// [`crate::apply::apply_one`]).
pub fn apply<R: KvRead>(
    t: &mut Txn<'_, R>,
    w: &NsWrite,
    now_ns: i64,
) -> Result<Option<InodeAttr>, NsError> {
    ensure_root(t)?;
    match w {
        NsWrite::SetAttr { ino, change } => attrs::set_attr(t, *ino, change, now_ns).map(Some),
        NsWrite::Mkdir {
            parent,
            name,
            owner,
        } => mkdir(t, *parent, name, *owner, now_ns).map(Some),
        NsWrite::Unlink { parent, name } => unlink(t, *parent, name, now_ns).map(|()| None),
        NsWrite::Rmdir { parent, name } => rmdir(t, *parent, name, now_ns).map(|()| None),
        NsWrite::Rename {
            parent,
            name,
            new_parent,
            new_name,
            mode,
        } => rename::rename(t, (*parent, name), (*new_parent, new_name), *mode, now_ns)
            .map(|()| None),
        NsWrite::CreateFile {
            parent,
            name,
            owner,
        } => create_node(t, *parent, name, FileKind::File, *owner, now_ns).map(Some),
        NsWrite::Mknod {
            parent,
            name,
            kind,
            owner,
        } => {
            if !matches!(kind, FileKind::Fifo | FileKind::Socket) {
                return refuse(
                    ErrorCode::InvalidRequest,
                    format!("mknod makes fifos and sockets, not {kind:?}"),
                );
            }
            create_node(t, *parent, name, *kind, *owner, now_ns).map(Some)
        }
        NsWrite::WriteExtents { ino, extents } => {
            partial_write::write_extents(t, *ino, extents, now_ns).map(Some)
        }
        NsWrite::WriteInline { ino, parts } => {
            inline::write_inline(t, *ino, parts, now_ns).map(Some)
        }
        NsWrite::CreateWith {
            parent,
            name,
            owner,
            ino,
            inline,
            created_ns,
        } => inline::create_with(
            t,
            (*parent, name),
            (*owner, *ino),
            inline,
            (*created_ns, now_ns),
        )
        .map(Some),
        // Answered with the numbers it set aside, which a batch cannot
        // carry: the state machine applies it on its own.
        NsWrite::ReserveInodes { .. } => refuse(
            ErrorCode::InvalidRequest,
            "an inode reservation is its own log entry",
        ),
        NsWrite::Symlink {
            parent,
            name,
            target,
            owner,
        } => links::symlink(t, *parent, name, target, *owner, now_ns).map(Some),
        NsWrite::Link {
            ino,
            new_parent,
            new_name,
        } => links::link(t, *ino, *new_parent, new_name, now_ns).map(Some),
        NsWrite::SetXattr {
            ino,
            name,
            value,
            mode,
        } => xattrs::set(t, *ino, name, value, *mode, now_ns).map(|()| None),
        NsWrite::RemoveXattr { ino, name } => xattrs::remove(t, *ino, name, now_ns).map(|()| None),
        NsWrite::CommitFile {
            parent,
            name,
            extents,
            size,
            owner,
        } => commit_file::commit_file(t, *parent, name, extents, *size, *owner, now_ns).map(Some),
        NsWrite::CommitObject {
            parent,
            name,
            extents,
            size,
            owner,
            xattrs,
        } => {
            let attr = commit_file::commit_file(t, *parent, name, extents, *size, *owner, now_ns)?;
            xattrs::replace_all(t, attr.ino, xattrs)?;
            Ok(Some(attr))
        }
    }
}

/// Creates the root directory if the namespace is empty.
pub fn ensure_root<R: KvRead>(t: &mut Txn<'_, R>) -> Result<(), NsError> {
    if t.get(Cf::Inodes, &inode_key(InodeId::ROOT))?.is_none() {
        put_inode(t, &query::root_attr(1));
        t.put(Cf::SmMeta, meta_keys::NEXT_INO.to_vec(), encode(&2u64));
    }
    Ok(())
}

// ---- commands ------------------------------------------------------------

fn put_inode<R: KvRead>(t: &mut Txn<'_, R>, attr: &InodeAttr) {
    t.put(Cf::Inodes, inode_key(attr.ino), encode_inode(attr));
}

fn update_counters<R: KvRead>(
    t: &mut Txn<'_, R>,
    f: impl FnOnce(&mut Counters),
) -> Result<(), NsError> {
    let mut c = counters(t)?;
    f(&mut c);
    t.put(Cf::SmMeta, meta_keys::COUNTERS.to_vec(), encode(&c));
    Ok(())
}

/// What a new inode in `parent` gets: in a set-group-id directory, the
/// directory's group (and a new directory keeps the set-group-id bit), as
/// POSIX filesystems do.
fn inherit_group(parent: &InodeAttr, mut owner: Owner, kind: FileKind) -> Owner {
    if parent.mode & 0o2000 != 0 {
        owner.gid = parent.gid;
        if kind == FileKind::Dir {
            owner.mode |= 0o2000;
        }
    }
    owner
}

/// Deletes inode `ino`'s record and what hangs off it besides extents (a
/// symlink's target, extended attributes).
fn free_inode<R: KvRead>(t: &mut Txn<'_, R>, ino: InodeId) -> Result<(), NsError> {
    t.delete(Cf::Inodes, inode_key(ino));
    t.delete(Cf::Symlinks, inode_key(ino));
    t.delete(Cf::Inline, inode_key(ino));
    xattrs::remove_all(t, ino)
}

/// Marks directory `dir` changed; `nlink_delta` for subdirectories added or
/// removed.
fn touch_dir<R: KvRead>(
    t: &mut Txn<'_, R>,
    dir: InodeId,
    nlink_delta: i32,
    now_ns: i64,
) -> Result<(), NsError> {
    let mut attr = get_attr(t, dir)?;
    attr.nlink = attr.nlink.saturating_add_signed(nlink_delta);
    attr.mtime_ns = now_ns;
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    Ok(())
}

fn mkdir<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    owner: Owner,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    validate_name(name)?;
    let owner = inherit_group(&get_dir(t, parent)?, owner, FileKind::Dir);
    if get_dentry(t, parent, name)?.is_some() {
        return refuse(ErrorCode::AlreadyExists, format!("{name:?} already exists"));
    }
    let ino = alloc_ino(t)?;
    let attr = fresh_attr(ino, FileKind::Dir, owner, now_ns);
    put_inode(t, &attr);
    t.put(
        Cf::Dentries,
        dentry_key(parent, name),
        encode(&DentryRecord {
            ino,
            kind: FileKind::Dir,
        }),
    );
    t.put(Cf::Parents, inode_key(ino), encode(&parent));
    touch_dir(t, parent, 1, now_ns)?;
    update_counters(t, |c| c.directories += 1)?;
    Ok(attr)
}

fn unlink<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    now_ns: i64,
) -> Result<(), NsError> {
    validate_name(name)?;
    get_dir(t, parent)?;
    let Some(d) = get_dentry(t, parent, name)? else {
        return refuse(
            ErrorCode::NotFound,
            format!("{name:?}: no such file or directory"),
        );
    };
    if d.kind == FileKind::Dir {
        return refuse(ErrorCode::IsADirectory, format!("{name:?} is a directory"));
    }
    t.delete(Cf::Dentries, dentry_key(parent, name));
    drop_link(t, d.ino, now_ns)?;
    touch_dir(t, parent, 0, now_ns)
}

/// Removes one link to a non-directory; frees it (and its chunk
/// references) when none is left.
fn drop_link<R: KvRead>(t: &mut Txn<'_, R>, ino: InodeId, now_ns: i64) -> Result<(), NsError> {
    let mut attr = get_attr(t, ino)?;
    attr.nlink = attr.nlink.saturating_sub(1);
    if attr.nlink > 0 {
        attr.ctime_ns = now_ns;
        attr.version += 1;
        put_inode(t, &attr);
        return Ok(());
    }
    clear_content(t, ino, now_ns)?;
    free_inode(t, ino)?;
    update_counters(t, |c| c.files = c.files.saturating_sub(1))
}

/// Deletes every extent of `ino`, releasing its chunk references.
fn clear_content<R: KvRead>(t: &mut Txn<'_, R>, ino: InodeId, now_ns: i64) -> Result<(), NsError> {
    t.delete(Cf::Inline, inode_key(ino));
    let (start, end) = extent_range(ino);
    let rows = t.scan(Cf::Extents, &start, &end, usize::MAX)?;
    for (k, v) in rows {
        let rec: ExtentRecord = decode(&v)?;
        decref(t, &rec.chunk, now_ns)?;
        t.delete(Cf::Extents, k);
    }
    Ok(())
}

fn dir_is_empty(kv: &impl KvRead, ino: InodeId) -> Result<bool, NsError> {
    let (start, end) = dentry_range(ino);
    Ok(kv.scan(Cf::Dentries, &start, &end, 1)?.is_empty())
}

fn rmdir<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    now_ns: i64,
) -> Result<(), NsError> {
    validate_name(name)?;
    get_dir(t, parent)?;
    let Some(d) = get_dentry(t, parent, name)? else {
        return refuse(
            ErrorCode::NotFound,
            format!("{name:?}: no such file or directory"),
        );
    };
    if d.kind != FileKind::Dir {
        return refuse(
            ErrorCode::NotADirectory,
            format!("{name:?} is not a directory"),
        );
    }
    if !dir_is_empty(t, d.ino)? {
        return refuse(ErrorCode::NotEmpty, format!("{name:?} is not empty"));
    }
    t.delete(Cf::Dentries, dentry_key(parent, name));
    free_inode(t, d.ino)?;
    t.delete(Cf::Parents, inode_key(d.ino));
    touch_dir(t, parent, -1, now_ns)?;
    update_counters(t, |c| c.directories = c.directories.saturating_sub(1))
}

/// Refuses unless `attr` is a regular file (only those hold data).
fn require_file(attr: &InodeAttr) -> Result<(), NsError> {
    match attr.kind {
        FileKind::File => Ok(()),
        FileKind::Dir => refuse(
            ErrorCode::IsADirectory,
            format!("inode {} is a directory", attr.ino),
        ),
        FileKind::Symlink | FileKind::Fifo | FileKind::Socket => refuse(
            ErrorCode::InvalidRequest,
            format!("inode {} is not a regular file", attr.ino),
        ),
    }
}

/// Checks that extents are ordered, non-empty, non-overlapping and inside
/// the file.
fn validate_extents(extents: &[Extent], size: u64) -> Result<(), NsError> {
    if extents.len() > MAX_EXTENTS_PER_COMMIT {
        return refuse(
            ErrorCode::InvalidRequest,
            format!(
                "{} extents exceed the limit of {MAX_EXTENTS_PER_COMMIT}",
                extents.len()
            ),
        );
    }
    let mut end = 0u64;
    for e in extents {
        let Some(e_end) = e.offset.checked_add(e.len) else {
            return refuse(ErrorCode::InvalidRequest, "extent end overflows");
        };
        if e.len == 0 || e.offset < end || e_end > size {
            return refuse(
                ErrorCode::InvalidRequest,
                format!(
                    "extent at {} (+{}) is empty, overlaps the previous one, or lies past size {size}",
                    e.offset, e.len
                ),
            );
        }
        end = e_end;
    }
    Ok(())
}

/// A new inode's attributes: empty, one link (two for a directory: its
/// entry and its `.`), every time `now_ns`.
fn fresh_attr(ino: InodeId, kind: FileKind, owner: Owner, now_ns: i64) -> InodeAttr {
    InodeAttr {
        ino,
        kind,
        mode: owner.mode & 0o7777,
        uid: owner.uid,
        gid: owner.gid,
        size: 0,
        nlink: if kind == FileKind::Dir { 2 } else { 1 },
        mtime_ns: now_ns,
        ctime_ns: now_ns,
        version: 1,
        atime_ns: now_ns,
    }
}

/// Allocates a non-directory inode and links it as `name` in `parent`
/// (which the caller checked is a directory without that name); the
/// caller writes the returned record.
fn new_inode<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    owner: Owner,
    kind: FileKind,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    let ino = alloc_ino(t)?;
    new_inode_as(t, parent, name, owner, kind, ino, now_ns)
}

/// [`new_inode`] under inode number `ino`.
fn new_inode_as<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    owner: Owner,
    kind: FileKind,
    ino: InodeId,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    let owner = inherit_group(&get_dir(t, parent)?, owner, kind);
    t.put(
        Cf::Dentries,
        dentry_key(parent, name),
        encode(&DentryRecord { ino, kind }),
    );
    touch_dir(t, parent, 0, now_ns)?;
    update_counters(t, |c| c.files += 1)?;
    Ok(fresh_attr(ino, kind, owner, now_ns))
}

/// Refuses a bad name, a parent that is no directory, and a taken name.
fn create_node_checks<R: KvRead>(
    t: &Txn<'_, R>,
    parent: InodeId,
    name: &str,
) -> Result<(), NsError> {
    validate_name(name)?;
    get_dir(t, parent)?;
    if get_dentry(t, parent, name)?.is_some() {
        return refuse(ErrorCode::AlreadyExists, format!("{name:?} already exists"));
    }
    Ok(())
}

/// Creates an empty regular file, fifo or socket; refuses a taken name.
fn create_node<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    kind: FileKind,
    owner: Owner,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    create_node_checks(t, parent, name)?;
    let attr = new_inode(t, parent, name, owner, kind, now_ns)?;
    put_inode(t, &attr);
    Ok(attr)
}

mod attrs;
mod commit_file;
mod garbage;
mod inline;
mod inode_numbers;
mod links;
mod partial_write;
mod query;
mod refcounts;
mod rename;
mod xattrs;
pub use garbage::{purge, purgeable, PURGE_AFTER_GRACES};
pub use inline::inline_bytes;
use inode_numbers::alloc_ino;
pub use inode_numbers::reserve_inodes;
pub use links::read_link;
pub use query::*;
use refcounts::{decref, incref};
pub use xattrs::{get_xattr, list_xattrs};

#[cfg(test)]
mod tests;
