//! Unlinking a name: answered at once and applied in the background when
//! it may be (`deferred_unlink`), else applied before the answer. POSIX
//! keeps a file that is open in this mount readable and writable through
//! its open handles, so its last name is renamed to a hidden one
//! (`.cairn-unlinked-N`) instead, removed at the last close
//! (`handles.rs`).

use std::sync::Arc;

use cairn_proto::meta_rpc::{FileKind, RenameMode};
use cairn_proto::{ErrorCode, InodeId};
use fuser::Errno;

use super::{lock, now_ns, Shared};
use crate::deferred_unlink::InFlight;
use crate::errno::OrErrno;
use crate::lookup_cache::Cached;

impl Shared {
    /// Unlinks `name` in `parent`: deferred when it may be, else at once.
    pub(super) async fn unlink(self: &Arc<Self>, parent: InodeId, name: &str) -> Result<(), Errno> {
        let Some(unlink) = self.defer_unlink(parent, name).await else {
            return self.unlink_now(parent, name).await;
        };
        let s = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let failed = match s.io.client.inodes().unlink(parent, &name).await {
                Ok(()) => false,
                // Gone already (another client removed it): as asked.
                Err(e) if e.code() == Some(ErrorCode::NotFound) => false,
                Err(e) => {
                    tracing::error!(%parent, name, error = %e, "deferred unlink failed: the name remains");
                    true
                }
            };
            s.unlinks.end(unlink, failed);
        });
        Ok(())
    }

    /// Records `name`'s unlink as pending if it may be deferred: deferral
    /// is on, the directory's attributes are known (to answer while it is
    /// pending) and the name is not a file open here.
    async fn defer_unlink(&self, parent: InodeId, name: &str) -> Option<InFlight> {
        if !self.defer_unlinks {
            return None;
        }
        let dir = self.unlinks.dir_attr(parent).or_else(|| {
            self.io
                .client
                .changed_dir_attr(parent, self.attr_ttl)
                .map(|(a, _)| a)
        })?;
        let none_open = lock(&self.files).by_ino.is_empty();
        if !none_open {
            match self.lookups.get(parent, name, std::time::Instant::now()) {
                Cached::Found(a, _) if self.open_file(a.ino).is_none() => {}
                _ => return None,
            }
        }
        self.unlinks.begin(parent, name, &dir, now_ns()).await
    }

    /// Unlinks `name` before answering; a file open in this mount and
    /// losing its last name is renamed to a hidden name instead and
    /// removed at its last close.
    async fn unlink_now(&self, parent: InodeId, name: &str) -> Result<(), Errno> {
        if !lock(&self.files).by_ino.is_empty() {
            let a = self
                .io
                .client
                .inodes()
                .lookup(parent, name)
                .await
                .or_errno()?;
            if let (FileKind::File, 1, Some(f)) = (a.kind, a.nlink, self.open_file(a.ino)) {
                let hidden = format!(".cairn-unlinked-{}", a.ino.0);
                self.io
                    .client
                    .inodes()
                    .rename((parent, name), (parent, &hidden), RenameMode::Replace)
                    .await
                    .or_errno()?;
                f.set_hidden(parent, hidden);
                return Ok(());
            }
        }
        self.io
            .client
            .inodes()
            .unlink(parent, name)
            .await
            .or_errno()
    }
}
