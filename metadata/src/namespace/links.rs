//! Symbolic links (an inode of kind `Symlink` whose target lives in
//! [`Cf::Symlinks`]) and hard links (more dentries naming one inode;
//! `nlink` counts them and the inode is freed when the last goes).

use cairn_proto::meta_rpc::{FileKind, InodeAttr, Owner, MAX_SYMLINK_TARGET};
use cairn_proto::path::validate_name;
use cairn_proto::{ErrorCode, InodeId};

use super::{get_attr, get_dentry, get_dir, new_inode, put_inode, refuse, touch_dir, NsError};
use crate::kv::{Cf, KvRead, Txn};
use crate::schema::{dentry_key, encode, inode_key, DentryRecord};

pub(super) fn symlink<R: KvRead>(
    t: &mut Txn<'_, R>,
    parent: InodeId,
    name: &str,
    target: &str,
    owner: Owner,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    validate_name(name)?;
    if target.is_empty() || target.len() > MAX_SYMLINK_TARGET || target.contains('\0') {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("a symlink target must be 1..={MAX_SYMLINK_TARGET} bytes without NUL"),
        );
    }
    get_dir(t, parent)?;
    if get_dentry(t, parent, name)?.is_some() {
        return refuse(ErrorCode::AlreadyExists, format!("{name:?} already exists"));
    }
    let owner = Owner {
        mode: 0o777,
        ..owner
    };
    let mut attr = new_inode(t, parent, name, owner, FileKind::Symlink, now_ns)?;
    attr.size = target.len() as u64;
    put_inode(t, &attr);
    t.put(
        Cf::Symlinks,
        inode_key(attr.ino),
        target.as_bytes().to_vec(),
    );
    Ok(attr)
}

/// The target of symlink `ino`.
pub fn read_link(kv: &impl KvRead, ino: InodeId) -> Result<String, NsError> {
    let attr = get_attr(kv, ino)?;
    if attr.kind != FileKind::Symlink {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("inode {ino} is not a symbolic link"),
        );
    }
    let Some(bytes) = kv.get(Cf::Symlinks, &inode_key(ino))? else {
        return Err(crate::kv::KvError(format!("symlink {ino} has no target")).into());
    };
    String::from_utf8(bytes)
        .map_err(|_| crate::kv::KvError(format!("symlink {ino} target is not UTF-8")).into())
}

pub(super) fn link<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    new_parent: InodeId,
    new_name: &str,
    now_ns: i64,
) -> Result<InodeAttr, NsError> {
    validate_name(new_name)?;
    let mut attr = get_attr(t, ino)?;
    if attr.kind == FileKind::Dir {
        return refuse(
            ErrorCode::NotPermitted,
            "hard links to directories are not allowed",
        );
    }
    get_dir(t, new_parent)?;
    if get_dentry(t, new_parent, new_name)?.is_some() {
        return refuse(
            ErrorCode::AlreadyExists,
            format!("{new_name:?} already exists"),
        );
    }
    if attr.nlink >= MAX_LINKS {
        return refuse(
            ErrorCode::NotPermitted,
            format!("inode {ino} has the most links allowed ({MAX_LINKS})"),
        );
    }
    t.put(
        Cf::Dentries,
        dentry_key(new_parent, new_name),
        encode(&DentryRecord {
            ino,
            kind: attr.kind,
        }),
    );
    touch_dir(t, new_parent, 0, now_ns)?;
    attr.nlink += 1;
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    Ok(attr)
}

/// Most hard links to one inode (as ext4's `EXT4_LINK_MAX`).
const MAX_LINKS: u32 = 65_000;
