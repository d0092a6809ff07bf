//! Rename: move an entry, replacing the target (the default), refusing to
//! (`RENAME_NOREPLACE`), or swapping the two (`RENAME_EXCHANGE`). Always
//! one atomic command.

use cairn_proto::meta_rpc::{FileKind, RenameMode};
use cairn_proto::path::validate_name;
use cairn_proto::{ErrorCode, InodeId};

use super::{
    dir_is_empty, drop_link, free_inode, get_attr, get_dentry, get_dir, put_inode, refuse,
    touch_dir, update_counters, NsError,
};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::schema::{decode, dentry_key, encode, inode_key, DentryRecord};

/// `from` and `to` are (directory, name).
pub(super) fn rename<R: KvRead>(
    t: &mut Txn<'_, R>,
    from: (InodeId, &str),
    to: (InodeId, &str),
    mode: RenameMode,
    now_ns: i64,
) -> Result<(), NsError> {
    let ((parent, name), (new_parent, new_name)) = (from, to);
    validate_name(name)?;
    validate_name(new_name)?;
    get_dir(t, parent)?;
    get_dir(t, new_parent)?;
    let Some(src) = get_dentry(t, parent, name)? else {
        return refuse(
            ErrorCode::NotFound,
            format!("{name:?}: no such file or directory"),
        );
    };
    if src.kind == FileKind::Dir && is_within(t, new_parent, src.ino)? {
        return refuse(
            ErrorCode::InvalidMove,
            format!("cannot move directory {name:?} into itself"),
        );
    }
    let dst = get_dentry(t, new_parent, new_name)?;
    if mode == RenameMode::Exchange {
        let Some(dst) = dst else {
            return refuse(
                ErrorCode::NotFound,
                format!("{new_name:?}: no such file or directory"),
            );
        };
        return exchange(t, (parent, name, src), (new_parent, new_name, dst), now_ns);
    }
    if let Some(dst) = dst {
        if mode == RenameMode::NoReplace {
            return refuse(
                ErrorCode::AlreadyExists,
                format!("{new_name:?} already exists"),
            );
        }
        if dst.ino == src.ino {
            return Ok(()); // same file: POSIX says do nothing
        }
        replace_target(t, &src, &dst, new_parent, new_name, now_ns)?;
    }
    t.delete(Cf::Dentries, dentry_key(parent, name));
    t.put(Cf::Dentries, dentry_key(new_parent, new_name), encode(&src));
    let moved_dir = src.kind == FileKind::Dir;
    if moved_dir {
        t.put(Cf::Parents, inode_key(src.ino), encode(&new_parent));
    }
    if parent == new_parent {
        touch_dir(t, parent, 0, now_ns)?;
    } else {
        let d = i32::from(moved_dir);
        touch_dir(t, parent, -d, now_ns)?;
        touch_dir(t, new_parent, d, now_ns)?;
    }
    touch_inode(t, src.ino, now_ns)
}

/// Removes the existing target `dst` that `src` is about to replace.
fn replace_target<R: KvRead>(
    t: &mut Txn<'_, R>,
    src: &DentryRecord,
    dst: &DentryRecord,
    new_parent: InodeId,
    new_name: &str,
    now_ns: i64,
) -> Result<(), NsError> {
    match (src.kind == FileKind::Dir, dst.kind == FileKind::Dir) {
        (false, true) => refuse(
            ErrorCode::IsADirectory,
            format!("{new_name:?} is a directory"),
        ),
        (true, false) => refuse(
            ErrorCode::NotADirectory,
            format!("{new_name:?} is not a directory"),
        ),
        (true, true) => {
            if !dir_is_empty(t, dst.ino)? {
                return refuse(ErrorCode::NotEmpty, format!("{new_name:?} is not empty"));
            }
            free_inode(t, dst.ino)?;
            t.delete(Cf::Parents, inode_key(dst.ino));
            touch_dir(t, new_parent, -1, now_ns)?;
            update_counters(t, |c| c.directories = c.directories.saturating_sub(1))
        }
        (false, false) => drop_link(t, dst.ino, now_ns),
    }
}

/// Swaps two existing entries.
fn exchange<R: KvRead>(
    t: &mut Txn<'_, R>,
    (parent, name, src): (InodeId, &str, DentryRecord),
    (new_parent, new_name, dst): (InodeId, &str, DentryRecord),
    now_ns: i64,
) -> Result<(), NsError> {
    if src.ino == dst.ino {
        return Ok(());
    }
    if dst.kind == FileKind::Dir && is_within(t, parent, dst.ino)? {
        return refuse(
            ErrorCode::InvalidMove,
            format!("cannot move directory {new_name:?} into itself"),
        );
    }
    t.put(Cf::Dentries, dentry_key(parent, name), encode(&dst));
    t.put(Cf::Dentries, dentry_key(new_parent, new_name), encode(&src));
    let (src_dir, dst_dir) = (src.kind == FileKind::Dir, dst.kind == FileKind::Dir);
    if src_dir {
        t.put(Cf::Parents, inode_key(src.ino), encode(&new_parent));
    }
    if dst_dir {
        t.put(Cf::Parents, inode_key(dst.ino), encode(&parent));
    }
    if parent == new_parent {
        touch_dir(t, parent, 0, now_ns)?;
    } else {
        let d = i32::from(src_dir) - i32::from(dst_dir);
        touch_dir(t, parent, -d, now_ns)?;
        touch_dir(t, new_parent, d, now_ns)?;
    }
    touch_inode(t, src.ino, now_ns)?;
    touch_inode(t, dst.ino, now_ns)
}

fn touch_inode<R: KvRead>(t: &mut Txn<'_, R>, ino: InodeId, now_ns: i64) -> Result<(), NsError> {
    let mut attr = get_attr(t, ino)?;
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    Ok(())
}

/// True if `dir` is `ancestor` or lies below it.
fn is_within<R: KvRead>(
    t: &Txn<'_, R>,
    mut dir: InodeId,
    ancestor: InodeId,
) -> Result<bool, NsError> {
    // Depth is bounded by the number of directories; the cap guards against
    // a corrupt parent chain looping forever.
    for _ in 0..100_000 {
        if dir == ancestor {
            return Ok(true);
        }
        if dir == InodeId::ROOT {
            return Ok(false);
        }
        dir = match t.get(Cf::Parents, &inode_key(dir))? {
            Some(b) => decode(&b)?,
            None => return Ok(false),
        };
    }
    Err(KvError("directory parent chain does not reach the root".into()).into())
}
