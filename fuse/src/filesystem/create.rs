//! Creating a file: deferred (answered here under a reserved inode number
//! and sent with the file's bytes, see `deferred_create`) when it may be,
//! else at once; a non-`O_EXCL` create that finds the name taken opens
//! the existing file (cut to zero under `O_TRUNC`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_proto::meta_rpc::{AttrChange, FileKind, InodeAttr, Owner};
use cairn_proto::ErrorCode;
use cairn_proto::InodeId;
use fuser::Errno;

use super::{lock, now_ns, Shared};
use crate::deferred_create;
use crate::errno::{errno, OrErrno};
use crate::open_file::{OpenFile, PendingCreate};

impl Shared {
    pub(super) async fn create(
        self: &Arc<Self>,
        parent: InodeId,
        name: &str,
        owner: Owner,
        flags: i32,
    ) -> Result<(InodeAttr, u64), Errno> {
        let dir = self.io.client.changed_dir_attr(parent, self.attr_ttl);
        if self.defer_creates && deferred_create::may_defer(flags, dir.as_ref().map(|(d, _)| d)) {
            let ino = self.io.client.inodes().reserved_inode().await.or_errno()?;
            let created_ns = now_ns();
            let attr = deferred_create::pending_attr(ino, owner, created_ns);
            let create = PendingCreate {
                parent,
                name: name.to_string(),
                owner,
                created_ns,
                truncate: flags & libc::O_TRUNC != 0,
            };
            let file = Arc::new(OpenFile::new_pending(&attr, create));
            self.pending.add(file.clone());
            let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
            {
                let mut files = lock(&self.files);
                files.by_ino.insert(ino, (file, 1));
                files.handles.insert(fh, ino);
            }
            self.keep_cache(&attr);
            let s = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(deferred_create::MAX_PENDING).await;
                s.pending.settle_one(&s.io, ino).await;
            });
            return Ok((attr, fh));
        }
        let attr = match self.io.client.inodes().create(parent, name, owner).await {
            Ok(a) => a,
            // Created by someone else since the kernel looked: open theirs
            // unless the caller asked for a new file.
            Err(e) if e.code() == Some(ErrorCode::AlreadyExists) && flags & libc::O_EXCL == 0 => {
                let a = self
                    .io
                    .client
                    .inodes()
                    .lookup(parent, name)
                    .await
                    .or_errno()?;
                if a.kind == FileKind::Dir {
                    return Err(errno(&e));
                }
                if flags & libc::O_TRUNC != 0 && a.size > 0 {
                    self.set_attr(a.ino, AttrChange::default(), Some(0)).await?
                } else {
                    a
                }
            }
            Err(e) => return Err(errno(&e)),
        };
        self.keep_cache(&attr);
        let (fh, _) = self.register(&attr);
        Ok((attr, fh))
    }
}
