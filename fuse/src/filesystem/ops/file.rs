//! The operations on open files: open and create, read and write
//! (buffered, see `open_file`), flush, fsync and release.

use std::ffi::OsStr;

use cairn_proto::meta_rpc::FileKind;
use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, OpenFlags, ReplyCreate, ReplyData,
    ReplyEmpty, ReplyOpen, ReplyWrite, Request,
};

use super::super::{entry_name, ino, owner, CairnFs};
use crate::errno::errno;

pub(crate) fn open(fs: &CairnFs, i: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
    let read_only = flags.0 & libc::O_ACCMODE == libc::O_RDONLY;
    fs.run(|s| async move {
        // Close-to-open: every open sees the cluster's latest version.
        // A reader will want the content too: asked for in the same read.
        let opened = if read_only {
            s.io.client.inodes().open(s.file_ino(i)).await
        } else {
            let attr = s.io.client.inodes().get_attr(s.file_ino(i)).await;
            attr.map(|a| (a, None))
        };
        match opened {
            Ok((a, _)) if a.kind == FileKind::Dir => reply.error(Errno::EISDIR),
            Ok((a, content)) => {
                let keep = s.keep_cache(&a);
                let (fh, file) = s.register(&a);
                file.refresh(&a).await;
                if let Some(c) = content {
                    file.offer_content(c, a.version).await;
                }
                let flags = if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(fh), flags);
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(crate) fn read(fs: &CairnFs, i: INodeNo, offset: u64, size: u32, reply: ReplyData) {
    fs.run(|s| async move {
        let Some(f) = s.open_file(s.file_ino(i)) else {
            return reply.error(Errno::EBADF);
        };
        match f.read(&s.io, offset, size).await {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    });
}

pub(crate) fn write(fs: &CairnFs, i: INodeNo, offset: u64, data: &[u8], reply: ReplyWrite) {
    let data = data.to_vec();
    fs.run_unsettled(|s| async move {
        let Some(f) = s.open_file(s.file_ino(i)) else {
            return reply.error(Errno::EBADF);
        };
        match s.write(f, offset, &data).await {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    });
}

pub(crate) fn flush(fs: &CairnFs, i: INodeNo, reply: ReplyEmpty) {
    fs.run_unsettled(|s| async move {
        match s.open_file(s.file_ino(i)) {
            Some(f) => match s.flush(&f).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
            None => reply.ok(),
        }
    });
}

pub(crate) fn release(fs: &CairnFs, fh: FileHandle, reply: ReplyEmpty) {
    fs.run_unsettled(|s| async move {
        match s.release(fh.0).await {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    });
}

pub(crate) fn fsync(fs: &CairnFs, i: INodeNo, reply: ReplyEmpty) {
    // A flush returns once the chunks hold their synchronous copies and
    // the extents are committed through Raft: both durable.
    flush(fs, i, reply);
}

// The kernel's create arguments, as fuser passes them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
    fs: &CairnFs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    flags: i32,
    reply: ReplyCreate,
) {
    let name = match entry_name(name) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    let owner = owner(req, mode, umask);
    fs.run_unsettled(|s| async move {
        // The name may be one whose unlink is on its way.
        s.unlinks.settle().await;
        match s.create(ino(parent), &name, owner, flags).await {
            Ok((a, fh)) => {
                let fa = s.file_attr(&a).await;
                reply.created(
                    &s.entry_ttl,
                    &fa,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::FOPEN_KEEP_CACHE,
                );
            }
            Err(e) => reply.error(e),
        }
    });
}
