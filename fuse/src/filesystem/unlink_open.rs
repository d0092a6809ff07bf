//! Unlink of a file open in this mount: POSIX keeps such a file readable
//! and writable through its open handles, so its last name is renamed to
//! a hidden one (`.cairn-unlinked-N`), removed at the last close
//! (`handles.rs`).

use cairn_client::ClientError;
use cairn_proto::meta_rpc::{FileKind, RenameMode};
use cairn_proto::InodeId;

use super::{lock, Shared};

impl Shared {
    /// Unlinks `name`; a file open in this mount and losing its last name
    /// is renamed to a hidden name instead and removed at its last close,
    /// so that it stays readable and writable through the open handles (as
    /// POSIX asks).
    pub(super) async fn unlink(&self, parent: InodeId, name: &str) -> Result<(), ClientError> {
        if !lock(&self.files).by_ino.is_empty() {
            let a = self.io.client.lookup(parent, name).await?;
            if let (FileKind::File, 1, Some(f)) = (a.kind, a.nlink, self.open_file(a.ino)) {
                let hidden = format!(".cairn-unlinked-{}", a.ino.0);
                self.io
                    .client
                    .rename_in((parent, name), (parent, &hidden), RenameMode::Replace)
                    .await?;
                f.set_hidden(parent, hidden);
                return Ok(());
            }
        }
        self.io.client.unlink_in(parent, name).await
    }
}
