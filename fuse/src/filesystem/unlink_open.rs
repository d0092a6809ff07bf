//! Unlink of a file open in this mount: POSIX keeps such a file readable
//! and writable through its open handles, so its last name is renamed to
//! a hidden one (`.cairn-unlinked-N`), removed at the last close
//! (`handles.rs`).

use cairn_proto::meta_rpc::{FileKind, RenameMode};
use cairn_proto::InodeId;
use fuser::Errno;

use super::{lock, Shared};
use crate::errno::OrErrno;

impl Shared {
    /// Unlinks `name`; a file open in this mount and losing its last name
    /// is renamed to a hidden name instead and removed at its last close,
    /// so that it stays readable and writable through the open handles (as
    /// POSIX asks).
    pub(super) async fn unlink(&self, parent: InodeId, name: &str) -> Result<(), Errno> {
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
