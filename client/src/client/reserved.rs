//! Files created under inode numbers set aside ahead (see
//! [`NsWrite::ReserveInodes`]), so a mount can tell the kernel a new
//! file's number before metadata has it, and create the file together
//! with its bytes in one commit when it is closed
//! ([`NsWrite::CreateWith`]).

use std::ops::Range;
use std::sync::Mutex;

use cairn_proto::meta_rpc::{InodeAttr, NsWrite, NsWriteReply, Owner};
use cairn_proto::InodeId;

use super::inodes::Inodes;
use super::unexpected;
use crate::error::ClientError;

/// Inode numbers set aside per reservation: one commit per this many
/// deferred creates.
const RESERVE: u32 = 1024;

/// Numbers set aside and not handed out yet.
#[derive(Default)]
pub(super) struct InodePool(Mutex<Range<u64>>);

impl InodePool {
    fn take(&self) -> Option<InodeId> {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.next().map(InodeId)
    }

    fn refill(&self, fresh: Range<u64>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
    }
}

impl Inodes<'_> {
    /// An inode number no other file has or will be given, for
    /// [`Inodes::create_with`]; sets more aside when none are left.
    pub async fn reserved_inode(self) -> Result<InodeId, ClientError> {
        if let Some(ino) = self.client.inner.inodes.take() {
            return Ok(ino);
        }
        let (first, count) = match self
            .client
            .write(NsWrite::ReserveInodes { count: RESERVE })
            .await?
        {
            NsWriteReply::Inodes { first, count } => (first, count),
            r => return Err(unexpected(r)),
        };
        // The first for this caller, the rest for the next (a concurrent
        // refill only leaves numbers unused).
        self.client
            .inner
            .inodes
            .refill(first.0 + 1..first.0 + u64::from(count));
        Ok(first)
    }

    /// Creates file `name` in `parent` as inode `ino` (from
    /// [`Inodes::reserved_inode`]) holding `inline` (at most `MAX_INLINE`
    /// bytes) in one commit, with `created_ns` as its times (see
    /// [`NsWrite::CreateWith`]); `AlreadyExists` if the name is taken.
    pub async fn create_with(
        self,
        (parent, name): (InodeId, &str),
        (owner, ino): (Owner, InodeId),
        inline: Vec<u8>,
        created_ns: i64,
    ) -> Result<InodeAttr, ClientError> {
        self.client
            .write_attr(NsWrite::CreateWith {
                parent,
                name: name.to_string(),
                owner,
                ino,
                inline,
                created_ns,
            })
            .await
    }
}
