//! The operations on names and inodes: lookup, attributes, links and
//! symlinks, creating nodes and directories, unlink, rmdir and rename.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_proto::meta_rpc::{AttrChange, FileKind, RenameMode};
use fuser::{
    Errno, Generation, INodeNo, RenameFlags, ReplyAttr, ReplyData, ReplyEmpty, ReplyEntry, Request,
    TimeOrNow,
};

use super::super::{entry_name, ino, now_ns, owner, reply_empty, reply_entry, CairnFs};
use crate::attr::{ns_of, to_file_attr};
use crate::errno::errno;
use crate::lookup_cache::{self, Cached};

pub(crate) fn lookup(fs: &CairnFs, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
    let name = match entry_name(name) {
        Ok(n) => n,
        Err(e) if e == Errno::EINVAL => return reply.error(Errno::ENOENT),
        Err(e) => return reply.error(e),
    };
    // A name whose unlink is on its way is gone; a fresh listing answers
    // here, without a hop to the runtime (unless the file is open here:
    // its size may be buffered).
    let s = &fs.shared;
    if s.unlinks.is_pending(ino(parent), &name) {
        return reply.error(Errno::ENOENT);
    }
    match s.lookups.get(ino(parent), &name, Instant::now()) {
        _ if !s.pending.is_empty() => {}
        Cached::Found(a, ttl) if s.open_file(a.ino).is_none() => {
            return reply.entry(&ttl, &s.kernel_attr(&a, a.size), Generation(0));
        }
        Cached::Absent => return reply.error(Errno::ENOENT),
        _ => {}
    }
    fs.run_beside_unlinks(|s| async move {
        match lookup_cache::lookup(
            &s.lookups,
            &s.io.client,
            ino(parent),
            &name,
            s.unlinks.settle(),
        )
        .await
        {
            Ok((a, ttl)) => {
                let fa = s.file_attr(&a).await;
                reply.entry(&ttl, &fa, Generation(0));
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(crate) fn getattr(fs: &CairnFs, i: INodeNo, reply: ReplyAttr) {
    // After this mount adds or removes a name, the kernel asks for the
    // directory's attributes again; metadata answered them with the
    // change, or the mount predicts them while its unlinks there are on
    // their way (the kernel asks again each time: the answer is not
    // kept).
    let s = &fs.shared;
    if s.pending.is_empty() {
        if let Some(a) = s.unlinks.dir_attr(s.file_ino(i)) {
            return reply.attr(&Duration::ZERO, &to_file_attr(&a, a.size));
        }
        if let Some((a, ttl)) = s.io.client.changed_dir_attr(s.file_ino(i), s.attr_ttl) {
            return reply.attr(&ttl, &s.kernel_attr(&a, a.size));
        }
    }
    fs.run_beside_unlinks(|s| async move {
        let mut r = s.io.client.inodes().get_attr(s.file_ino(i)).await;
        // One of a linked file's names may be an unlink on its way: its
        // link count is right once they land. (A file with one link is
        // not open here if its name's unlink is pending.)
        if matches!(&r, Ok(a) if a.kind != FileKind::Dir && a.nlink > 1) && !s.unlinks.is_empty() {
            s.unlinks.settle().await;
            r = s.io.client.inodes().get_attr(s.file_ino(i)).await;
        }
        match r {
            Ok(a) => {
                let fa = s.file_attr(&a).await;
                reply.attr(&s.attr_ttl, &fa);
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

// The kernel's setattr arguments, as fuser passes them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn setattr(
    fs: &CairnFs,
    i: INodeNo,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
    reply: ReplyAttr,
) {
    let time = |t: TimeOrNow| match t {
        TimeOrNow::Now => now_ns(),
        TimeOrNow::SpecificTime(t) => ns_of(t),
    };
    let change = AttrChange {
        mode: mode.map(|m| m & 0o7777),
        uid,
        gid,
        size: None,
        mtime_ns: mtime.map(time),
        atime_ns: atime.map(time),
    };
    fs.run(|s| async move {
        match s.set_attr(s.file_ino(i), change, size).await {
            Ok(a) => {
                let fa = s.file_attr(&a).await;
                reply.attr(&s.attr_ttl, &fa);
            }
            Err(e) => reply.error(e),
        }
    });
}

pub(crate) fn readlink(fs: &CairnFs, i: INodeNo, reply: ReplyData) {
    fs.run(|s| async move {
        match s.io.client.inodes().read_link(s.file_ino(i)).await {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(crate) fn mknod(
    fs: &CairnFs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    reply: ReplyEntry,
) {
    let kind = match mode & libc::S_IFMT {
        0 | libc::S_IFREG => FileKind::File,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFSOCK => FileKind::Socket,
        // Device nodes are not stored.
        _ => return reply.error(Errno::EOPNOTSUPP),
    };
    let name = match entry_name(name) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    let owner = owner(req, mode, umask);
    fs.run(|s| async move {
        let c = s.io.client.inodes();
        let r = match kind {
            FileKind::File => c.create(ino(parent), &name, owner).await,
            _ => c.mknod(ino(parent), &name, kind, owner).await,
        };
        reply_entry(&s, r, reply).await
    });
}

pub(crate) fn mkdir(
    fs: &CairnFs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    reply: ReplyEntry,
) {
    let name = match entry_name(name) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    let owner = owner(req, mode, umask);
    fs.run(|s| async move {
        let r = s.io.client.inodes().mkdir(ino(parent), &name, owner).await;
        reply_entry(&s, r, reply).await
    });
}

pub(crate) fn unlink(fs: &CairnFs, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    let name = match entry_name(name) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    fs.run_beside_unlinks(
        |s| async move { reply_empty(s.unlink(ino(parent), &name).await, reply) },
    );
}

pub(crate) fn rmdir(fs: &CairnFs, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
    let name = match entry_name(name) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    fs.run(
        |s| async move { reply_empty(s.io.client.inodes().rmdir(ino(parent), &name).await, reply) },
    );
}

pub(crate) fn symlink(
    fs: &CairnFs,
    req: &Request,
    parent: INodeNo,
    link_name: &OsStr,
    target: &Path,
    reply: ReplyEntry,
) {
    let name = match entry_name(link_name) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    let Some(target) = target.to_str().map(str::to_string) else {
        return reply.error(Errno::EINVAL);
    };
    if target.len() > cairn_proto::meta_rpc::MAX_SYMLINK_TARGET {
        return reply.error(Errno::ENAMETOOLONG);
    }
    let owner = owner(req, 0o777, 0);
    fs.run(|s| async move {
        let r =
            s.io.client
                .inodes()
                .symlink(ino(parent), &name, &target, owner)
                .await;
        reply_entry(&s, r, reply).await
    });
}

pub(crate) fn rename(
    fs: &CairnFs,
    parent: INodeNo,
    name: &OsStr,
    newparent: INodeNo,
    newname: &OsStr,
    flags: RenameFlags,
    reply: ReplyEmpty,
) {
    let (name, newname) = match (entry_name(name), entry_name(newname)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return reply.error(e),
    };
    let mode = if flags.contains(RenameFlags::RENAME_EXCHANGE) {
        RenameMode::Exchange
    } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
        RenameMode::NoReplace
    } else if flags.is_empty() {
        RenameMode::Replace
    } else {
        return reply.error(Errno::EINVAL);
    };
    fs.run(|s| async move {
        let r =
            s.io.client
                .inodes()
                .rename((ino(parent), &name), (ino(newparent), &newname), mode)
                .await;
        reply_empty(r, reply)
    });
}

pub(crate) fn link(
    fs: &CairnFs,
    i: INodeNo,
    newparent: INodeNo,
    newname: &OsStr,
    reply: ReplyEntry,
) {
    let name = match entry_name(newname) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    fs.run(|s| async move {
        let r =
            s.io.client
                .inodes()
                .link(s.file_ino(i), ino(newparent), &name)
                .await;
        reply_entry(&s, r, reply).await
    });
}
