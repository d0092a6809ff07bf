//! Set-attributes ordering: an open file's buffered writes land first, so
//! a truncate or a time set afterwards applies after them; a size change
//! of an open file also cuts its buffer.

use cairn_client::ClientError;
use cairn_proto::meta_rpc::{AttrChange, InodeAttr};
use cairn_proto::InodeId;

use super::Shared;

impl Shared {
    pub(super) async fn set_attr(
        &self,
        ino: InodeId,
        change: AttrChange,
        size: Option<u64>,
    ) -> Result<InodeAttr, ClientError> {
        let open = self.open_file(ino);
        if let Some(f) = &open {
            // Buffered writes land first, so a later mtime or cut applies
            // after them.
            if let Err(e) = self.flush(f).await {
                return Err(ClientError::Io(std::io::Error::from_raw_os_error(e.code())));
            }
        }
        let mut attr = None;
        if let Some(size) = size {
            attr = Some(match &open {
                Some(f) => f
                    .set_size(&self.io, size)
                    .await
                    .map_err(|e| ClientError::Io(std::io::Error::from_raw_os_error(e.code())))?,
                None => {
                    self.io
                        .client
                        .set_attr_ino(
                            ino,
                            AttrChange {
                                size: Some(size),
                                ..Default::default()
                            },
                        )
                        .await?
                }
            });
        }
        if change != AttrChange::default() || attr.is_none() {
            attr = Some(self.io.client.set_attr_ino(ino, change).await?);
        }
        Ok(attr.expect("set above"))
    }
}
