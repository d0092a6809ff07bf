//! The operations on open directories: a listing is read once at
//! `opendir` and served from the handle.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_proto::meta_rpc::FileKind;
use fuser::{Errno, FileHandle, FopenFlags, INodeNo, ReplyDirectory, ReplyEmpty, ReplyOpen};

use super::super::{lock, CairnFs, DirItem};
use crate::attr::file_type;
use crate::errno::errno;

pub(crate) fn opendir(fs: &CairnFs, i: INodeNo, reply: ReplyOpen) {
    fs.run(|s| async move {
        match s.io.client.inodes().list(s.file_ino(i)).await {
            Ok(entries) => {
                let mut items = vec![
                    DirItem {
                        ino: i.0,
                        kind: FileKind::Dir,
                        name: ".".into(),
                    },
                    DirItem {
                        ino: i.0,
                        kind: FileKind::Dir,
                        name: "..".into(),
                    },
                ];
                items.extend(entries.into_iter().map(|e| DirItem {
                    ino: e.ino.0,
                    kind: e.kind,
                    name: e.name,
                }));
                let fh = s.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&s.dirs).insert(fh, Arc::new(items));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(crate) fn readdir(fs: &CairnFs, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
    let Some(items) = lock(&fs.shared.dirs).get(&fh.0).cloned() else {
        return reply.error(Errno::EBADF);
    };
    for (n, item) in items.iter().enumerate().skip(offset as usize) {
        if reply.add(
            INodeNo(item.ino),
            n as u64 + 1,
            file_type(item.kind),
            &item.name,
        ) {
            break;
        }
    }
    reply.ok();
}

pub(crate) fn releasedir(fs: &CairnFs, fh: FileHandle, reply: ReplyEmpty) {
    lock(&fs.shared.dirs).remove(&fh.0);
    reply.ok();
}

pub(crate) fn fsyncdir(fs: &CairnFs, reply: ReplyEmpty) {
    // Namespace changes are committed through Raft before they are
    // answered, except deferred creates and unlinks, which `run` sends
    // and waits for (and so makes durable) before the answer; an unlink
    // that failed meanwhile is an I/O error here.
    fs.run(|s| async move {
        if s.unlinks.settle_failures().await > 0 {
            return reply.error(Errno::EIO);
        }
        reply.ok()
    });
}
