//! Files created in this mount before metadata knows of them.
//!
//! A program writing a small file (open with `O_CREAT`, write, close)
//! would cost two Raft commits: the create, then the bytes at close. The
//! mount instead answers the create itself, under an inode number set
//! aside for it ahead (`Client::reserved_inode`), and creates the file
//! together with its bytes in one commit when it is flushed
//! (`NsWrite::CreateWith`). Until then nothing else may see the
//! difference:
//!
//! * any other request to this mount first sends every pending create
//!   ([`PendingCreates::settle`]), so a lookup, listing, stat, rename,
//!   chmod or read here sees the file as it would have been;
//! * a pending create is sent on its own after [`MAX_PENDING`], so other
//!   clients see a new file within about the entry TTL (their own lookup
//!   caches may hide it that long anyway);
//! * `O_EXCL` creates, and creates in a directory whose attributes this
//!   mount does not know fresh or that hands its group down (set-group-ID),
//!   are sent at once as before.
//!
//! If another client took the name meanwhile, the create turns into what
//! `open(O_CREAT)` without `O_EXCL` does with an existing file: it opens
//! that file (truncated under `O_TRUNC`) and the bytes written here go
//! there. The kernel still knows the file by the reserved number, so the
//! mount keeps an alias from it to the existing file's
//! (`inode_aliases`);
//! nothing is lost and `close` does not fail. Any other failure is
//! reported by the writer's `close`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_proto::meta_rpc::{FileKind, InodeAttr, Owner};
use cairn_proto::InodeId;

use crate::open_file::{FileIo, OpenFile};

/// Longest a create stays unsent while its file is open.
pub const MAX_PENDING: Duration = Duration::from_millis(500);

/// Whether a create may be deferred: not `O_EXCL` (whose caller must
/// learn at once whether the name was free), and in a directory whose
/// fresh attributes (`parent`) show it does not hand its group down.
pub fn may_defer(flags: i32, parent: Option<&InodeAttr>) -> bool {
    flags & libc::O_EXCL == 0
        && parent.is_some_and(|d| d.kind == FileKind::Dir && d.mode & libc::S_ISGID == 0)
}

/// The attributes a deferred create tells the kernel: what metadata will
/// record when the create is sent (`now_ns`, this machine's clock, goes
/// with it as the file's times).
pub fn pending_attr(ino: InodeId, owner: Owner, now_ns: i64) -> InodeAttr {
    InodeAttr {
        ino,
        kind: FileKind::File,
        mode: owner.mode & 0o7777,
        uid: owner.uid,
        gid: owner.gid,
        size: 0,
        nlink: 1,
        mtime_ns: now_ns,
        ctime_ns: now_ns,
        version: 0,
        atime_ns: now_ns,
    }
}

/// The open files whose create has not been sent yet.
#[derive(Default)]
pub struct PendingCreates {
    files: Mutex<HashMap<InodeId, Arc<OpenFile>>>,
}

impl PendingCreates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InodeId, Arc<OpenFile>>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, file: Arc<OpenFile>) {
        self.lock().insert(file.ino, file);
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Sends every pending create (the files empty; their bytes stay
    /// buffered). One that fails stays pending for its file's own flush,
    /// which reports the error to the writer.
    pub async fn settle(&self, io: &FileIo) {
        let files: Vec<Arc<OpenFile>> = self.lock().drain().map(|(_, f)| f).collect();
        for f in files {
            // A failure was logged with its cause.
            let _ = f.create_now(io).await;
        }
    }

    /// Sends `ino`'s create if it is still pending.
    pub async fn settle_one(&self, io: &FileIo, ino: InodeId) {
        let Some(f) = self.lock().remove(&ino) else {
            return;
        };
        let _ = f.create_now(io).await;
    }

    /// Forgets `ino` (its create was sent by its flush).
    pub fn sent(&self, ino: InodeId) {
        self.lock().remove(&ino);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(mode: u32) -> InodeAttr {
        InodeAttr {
            kind: FileKind::Dir,
            mode,
            ..pending_attr(
                InodeId(5),
                Owner {
                    mode: 0,
                    uid: 0,
                    gid: 0,
                },
                0,
            )
        }
    }

    #[test]
    fn only_plain_creates_in_known_plain_directories_wait() {
        let plain = dir(0o755);
        assert!(may_defer(
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            Some(&plain)
        ));
        assert!(!may_defer(libc::O_CREAT | libc::O_EXCL, Some(&plain)));
        assert!(!may_defer(libc::O_CREAT, None));
        assert!(!may_defer(libc::O_CREAT, Some(&dir(0o2775))));
        let file = InodeAttr {
            kind: FileKind::File,
            ..plain
        };
        assert!(!may_defer(libc::O_CREAT, Some(&file)));
    }

    #[test]
    fn the_kernel_is_told_what_metadata_will_record() {
        let owner = Owner {
            mode: 0o100644,
            uid: 7,
            gid: 8,
        };
        let a = pending_attr(InodeId(42), owner, 1_000);
        assert_eq!(
            (a.ino, a.kind, a.mode),
            (InodeId(42), FileKind::File, 0o644)
        );
        assert_eq!((a.uid, a.gid, a.size, a.nlink), (7, 8, 0, 1));
        assert_eq!((a.mtime_ns, a.ctime_ns, a.atime_ns), (1_000, 1_000, 1_000));
    }
}
