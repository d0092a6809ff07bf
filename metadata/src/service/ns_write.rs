//! Answering namespace writes ([`NsWrite`]): one rule for the group —
//! refused while a metadata disk is low if it adds to the namespace, then
//! one Raft command embedding the write (at most once per session), then
//! the attributes of the directories it changed.

use std::time::Instant;

use cairn_proto::meta_rpc::{NsWrite, NsWriteReply, MAX_INODE_RESERVATION};
use cairn_proto::{ErrorCode, InodeId, RpcError};

use super::{now_ns, MetaService, COMMIT_WAIT};
use crate::command::{Command, CommandOutput};
use crate::namespace;
use crate::space_guard::refused_when_low;

impl MetaService {
    pub(super) async fn ns_write(
        &self,
        w: NsWrite,
        session: Option<cairn_proto::meta_rpc::Session>,
    ) -> Result<NsWriteReply, RpcError> {
        if let NsWrite::ReserveInodes { count } = w {
            let first = self.reserve_inodes(count).await?;
            return Ok(NsWriteReply::Inodes { first, count });
        }
        let dirs = w.changed_dirs();
        let cmd = Command::Ns {
            write: w,
            now_ns: now_ns(),
        };
        self.refuse_if_disk_low(&cmd)?;
        let attr = self.write(session, cmd).await??;
        Ok(NsWriteReply::Done {
            attr,
            dirs: self.dir_attrs(&dirs),
        })
    }

    /// Refuses `cmd` with "no space" if it adds to the namespace while this
    /// node's disk, or another member's, is below its reserve (see
    /// [`crate::space_guard`]).
    pub(super) fn refuse_if_disk_low(&self, cmd: &Command) -> Result<(), RpcError> {
        if !refused_when_low(cmd) {
            return Ok(());
        }
        let low = match self.space.low() {
            Some(free) => Some((self.id, free)),
            None => self.space.low_peer(Instant::now()),
        };
        match low {
            None => Ok(()),
            Some((node, free)) => {
                tracing::warn!(
                    node,
                    free,
                    "a metadata disk is below its reserve: refusing a write"
                );
                Err(RpcError::new(
                    ErrorCode::NoSpace,
                    format!(
                        "no space left on metadata node {node}'s disk ({free} bytes free, below \
                         its reserve): writes are refused until space is freed; reads and \
                         removals still work"
                    ),
                ))
            }
        }
    }

    /// Sets `count` inode numbers aside in a log entry of its own (the
    /// batcher's results cannot carry the numbers). Not once-only: a
    /// repeat sets more aside, which only leaves numbers unused.
    async fn reserve_inodes(&self, count: u32) -> Result<InodeId, RpcError> {
        if count == 0 || count > MAX_INODE_RESERVATION {
            return Err(RpcError::new(
                ErrorCode::InvalidRequest,
                format!("inode reservations are 1..={MAX_INODE_RESERVATION}, not {count}"),
            ));
        }
        let written = tokio::time::timeout(
            COMMIT_WAIT,
            self.raft.client_write(Command::Ns {
                write: NsWrite::ReserveInodes { count },
                now_ns: now_ns(),
            }),
        )
        .await
        .map_err(|_| {
            RpcError::new(
                ErrorCode::Unavailable,
                format!("inode reservation not committed within {COMMIT_WAIT:?}"),
            )
        })?
        .map_err(crate::batcher::write_error)?;
        match written.data {
            CommandOutput::Reserved(first) => Ok(first),
            CommandOutput::One(Err(e)) => Err(e),
            other => Err(RpcError::new(
                ErrorCode::Internal,
                format!("state machine answered an inode reservation with {other:?}"),
            )),
        }
    }

    /// The attributes now of `dirs`, whose entries a write just changed (on
    /// the leader, after the change was applied; a directory that is gone
    /// meanwhile is left out).
    fn dir_attrs(&self, dirs: &[InodeId]) -> Vec<cairn_proto::meta_rpc::InodeAttr> {
        dirs.iter()
            .filter_map(|d| namespace::get_attr(&self.kv, *d).ok())
            .collect()
    }
}
