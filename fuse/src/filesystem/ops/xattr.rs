//! The extended-attribute operations, within the namespaces
//! `xattr_policy` keeps.

use std::ffi::OsStr;

use cairn_proto::meta_rpc::XattrMode;
use fuser::{Errno, INodeNo, ReplyEmpty, ReplyXattr};

use super::super::xattr_policy::{reply_xattr, stored_xattr};
use super::super::{reply_empty, CairnFs};
use crate::errno::errno;

pub(crate) fn setxattr(
    fs: &CairnFs,
    i: INodeNo,
    name: &OsStr,
    value: &[u8],
    flags: i32,
    reply: ReplyEmpty,
) {
    let Some(name) = name.to_str().map(str::to_string) else {
        return reply.error(Errno::EINVAL);
    };
    if !stored_xattr(&name) {
        return reply.error(Errno::EOPNOTSUPP);
    }
    if name.len() > cairn_proto::meta_rpc::MAX_XATTR_NAME {
        return reply.error(Errno::ERANGE);
    }
    if value.len() > cairn_proto::meta_rpc::MAX_XATTR_VALUE {
        return reply.error(Errno::E2BIG);
    }
    let mode = match flags {
        0 => XattrMode::Upsert,
        libc::XATTR_CREATE => XattrMode::Create,
        libc::XATTR_REPLACE => XattrMode::Replace,
        _ => return reply.error(Errno::EINVAL),
    };
    let value = value.to_vec();
    fs.run(|s| async move {
        let r =
            s.io.client
                .inodes()
                .set_xattr(s.file_ino(i), &name, &value, mode)
                .await;
        reply_empty(r, reply)
    });
}

pub(crate) fn getxattr(fs: &CairnFs, i: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
    let Some(name) = name.to_str().map(str::to_string) else {
        return reply.error(Errno::NO_XATTR);
    };
    if !stored_xattr(&name) {
        // Not supported, said without a round trip. Asked by the kernel
        // on every write (security.capability) and by `ls -l` for every
        // name (security.selinux, system.posix_acl_*), which stops asking
        // a filesystem that says it does not support them.
        return reply.error(Errno::EOPNOTSUPP);
    }
    fs.run(|s| async move {
        match s.io.client.inodes().get_xattr(s.file_ino(i), &name).await {
            Ok(v) => reply_xattr(&v, size, reply),
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(crate) fn listxattr(fs: &CairnFs, i: INodeNo, size: u32, reply: ReplyXattr) {
    fs.run(|s| async move {
        match s.io.client.inodes().list_xattrs(s.file_ino(i)).await {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(n.as_bytes());
                    buf.push(0);
                }
                reply_xattr(&buf, size, reply);
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(crate) fn removexattr(fs: &CairnFs, i: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    let Some(name) = name.to_str().map(str::to_string) else {
        return reply.error(Errno::NO_XATTR);
    };
    if !stored_xattr(&name) {
        return reply.error(Errno::EOPNOTSUPP);
    }
    fs.run(|s| async move {
        reply_empty(
            s.io.client
                .inodes()
                .remove_xattr(s.file_ino(i), &name)
                .await,
            reply,
        )
    });
}
