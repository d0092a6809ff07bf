//! Set-attributes ordering: an open file's buffered writes land first, so
//! a truncate or a time set afterwards applies after them; a size change
//! of an open file also cuts its buffer.

use cairn_proto::meta_rpc::{AttrChange, InodeAttr};
use cairn_proto::InodeId;
use fuser::Errno;

use super::Shared;
use crate::errno::OrErrno;

impl Shared {
    pub(super) async fn set_attr(
        &self,
        ino: InodeId,
        change: AttrChange,
        size: Option<u64>,
    ) -> Result<InodeAttr, Errno> {
        let open = self.open_file(ino);
        if let Some(f) = &open {
            // Buffered writes land first, so a later mtime or cut applies
            // after them.
            self.flush(f).await?;
        }
        let mut attr = None;
        if let Some(size) = size {
            attr = Some(match &open {
                Some(f) => f.set_size(&self.io, size).await?,
                None => self
                    .io
                    .client
                    .inodes()
                    .set_attr(
                        ino,
                        AttrChange {
                            size: Some(size),
                            ..Default::default()
                        },
                    )
                    .await
                    .or_errno()?,
            });
        }
        if change != AttrChange::default() || attr.is_none() {
            attr = Some(
                self.io
                    .client
                    .inodes()
                    .set_attr(ino, change)
                    .await
                    .or_errno()?,
            );
        }
        Ok(attr.expect("set above"))
    }
}
