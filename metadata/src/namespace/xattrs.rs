//! Extended attributes: `(ino, name) → value` in [`Cf::Xattrs`], bounded
//! in name length, value size and count per inode.

use cairn_proto::meta_rpc::{
    XattrMode, CONTENT_BOUND_XATTR_PREFIX, MAX_XATTRS_PER_INODE, MAX_XATTR_NAME, MAX_XATTR_VALUE,
};
use cairn_proto::{ErrorCode, InodeId};

use super::{get_attr, put_inode, refuse, NsError};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::schema::inode_key;

fn key(ino: InodeId, name: &str) -> Vec<u8> {
    let mut k = inode_key(ino);
    k.extend_from_slice(name.as_bytes());
    k
}

fn range(ino: InodeId) -> (Vec<u8>, Vec<u8>) {
    (inode_key(ino), (ino.0 + 1).to_be_bytes().to_vec())
}

fn validate_name(name: &str) -> Result<(), NsError> {
    if name.is_empty() || name.len() > MAX_XATTR_NAME || name.contains('\0') {
        return refuse(
            ErrorCode::InvalidName,
            format!("an attribute name must be 1..={MAX_XATTR_NAME} bytes without NUL"),
        );
    }
    Ok(())
}

pub(super) fn set<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    name: &str,
    value: &[u8],
    mode: XattrMode,
    now_ns: i64,
) -> Result<(), NsError> {
    validate_name(name)?;
    if value.len() > MAX_XATTR_VALUE {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("attribute values are at most {MAX_XATTR_VALUE} bytes"),
        );
    }
    let mut attr = get_attr(t, ino)?;
    let exists = t.get(Cf::Xattrs, &key(ino, name))?.is_some();
    match (mode, exists) {
        (XattrMode::Create, true) => {
            return refuse(
                ErrorCode::AlreadyExists,
                format!("attribute {name:?} exists"),
            )
        }
        (XattrMode::Replace, false) => {
            return refuse(ErrorCode::NoData, format!("no attribute {name:?}"))
        }
        _ => {}
    }
    if !exists {
        let (start, end) = range(ino);
        if t.scan(Cf::Xattrs, &start, &end, MAX_XATTRS_PER_INODE)?
            .len()
            >= MAX_XATTRS_PER_INODE
        {
            return refuse(
                ErrorCode::InvalidRequest,
                format!("an inode carries at most {MAX_XATTRS_PER_INODE} attributes"),
            );
        }
    }
    t.put(Cf::Xattrs, key(ino, name), value.to_vec());
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    Ok(())
}

pub(super) fn remove<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    name: &str,
    now_ns: i64,
) -> Result<(), NsError> {
    validate_name(name)?;
    let mut attr = get_attr(t, ino)?;
    if t.get(Cf::Xattrs, &key(ino, name))?.is_none() {
        return refuse(ErrorCode::NoData, format!("no attribute {name:?}"));
    }
    t.delete(Cf::Xattrs, key(ino, name));
    attr.ctime_ns = now_ns;
    attr.version += 1;
    put_inode(t, &attr);
    Ok(())
}

/// Deletes every attribute of `ino` (the inode is going away).
pub(super) fn remove_all<R: KvRead>(t: &mut Txn<'_, R>, ino: InodeId) -> Result<(), NsError> {
    let (start, end) = range(ino);
    for (k, _) in t.scan(Cf::Xattrs, &start, &end, MAX_XATTRS_PER_INODE)? {
        t.delete(Cf::Xattrs, k);
    }
    Ok(())
}

/// Drops `ino`'s content-bound attributes ([`CONTENT_BOUND_XATTR_PREFIX`]):
/// its bytes are changing.
pub(super) fn drop_content_bound<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
) -> Result<(), NsError> {
    let start = key(ino, CONTENT_BOUND_XATTR_PREFIX);
    let mut end = start.clone();
    // The prefix ends in '.', so '/' bounds every name that begins with it.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    for (k, _) in t.scan(Cf::Xattrs, &start, &end, MAX_XATTRS_PER_INODE)? {
        t.delete(Cf::Xattrs, k);
    }
    Ok(())
}

/// Makes `xattrs` exactly `ino`'s attributes (as part of a larger
/// change that stamps the inode's times itself).
pub(super) fn replace_all<R: KvRead>(
    t: &mut Txn<'_, R>,
    ino: InodeId,
    xattrs: &[(String, Vec<u8>)],
) -> Result<(), NsError> {
    if xattrs.len() > MAX_XATTRS_PER_INODE {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("an inode carries at most {MAX_XATTRS_PER_INODE} attributes"),
        );
    }
    for (name, value) in xattrs {
        validate_name(name)?;
        if value.len() > MAX_XATTR_VALUE {
            return refuse(
                ErrorCode::InvalidRequest,
                format!("attribute values are at most {MAX_XATTR_VALUE} bytes"),
            );
        }
    }
    remove_all(t, ino)?;
    for (name, value) in xattrs {
        t.put(Cf::Xattrs, key(ino, name), value.clone());
    }
    Ok(())
}

pub fn get_xattr(kv: &impl KvRead, ino: InodeId, name: &str) -> Result<Vec<u8>, NsError> {
    validate_name(name)?;
    get_attr(kv, ino)?;
    match kv.get(Cf::Xattrs, &key(ino, name))? {
        Some(v) => Ok(v),
        None => refuse(ErrorCode::NoData, format!("no attribute {name:?}")),
    }
}

pub fn list_xattrs(kv: &impl KvRead, ino: InodeId) -> Result<Vec<String>, NsError> {
    get_attr(kv, ino)?;
    let (start, end) = range(ino);
    kv.scan(Cf::Xattrs, &start, &end, MAX_XATTRS_PER_INODE)?
        .into_iter()
        .map(|(k, _)| {
            String::from_utf8(k.get(8..).unwrap_or_default().to_vec())
                .map_err(|_| KvError("attribute name is not UTF-8".into()).into())
        })
        .collect()
}
