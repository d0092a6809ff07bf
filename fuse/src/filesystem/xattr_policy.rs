//! Which extended attributes the mount stores, and the size-probe
//! protocol of getxattr and listxattr.

use fuser::{Errno, ReplyXattr};

/// User and trusted attributes are stored; `security.*` and `system.*`
/// (capabilities, ACLs, SELinux labels) are not supported.
pub(super) fn stored_xattr(name: &str) -> bool {
    name.starts_with("user.") || name.starts_with("trusted.")
}

pub(super) fn reply_xattr(value: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(value);
    }
}
