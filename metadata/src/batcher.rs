//! Group commit: namespace commands that arrive while a Raft write is in
//! flight are proposed together as one [`Command::Batch`] entry, so that
//! concurrent small-file commits share one log fsync instead of queueing
//! for one each.

use cairn_proto::{ErrorCode, RpcError};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};

use crate::command::{Command, CommandOutput, CommandResult};
use crate::raft_types::Raft;

/// Most commands in one log entry.
pub const MAX_BATCH: usize = 256;
/// Commands waiting for the batcher at most; submitters wait beyond that.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<CommandResult, RpcError>>;

/// Hands commands to the batching task.
#[derive(Clone)]
pub struct WriteBatcher {
    tx: mpsc::Sender<(Command, Reply)>,
}

impl WriteBatcher {
    /// Starts the batching task; it ends when every `WriteBatcher` is dropped.
    pub fn spawn(raft: Raft) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(raft, rx));
        WriteBatcher { tx }
    }

    /// Replicates `cmd` and returns what applying it produced. The outer
    /// error means it was not replicated here (not the leader, shutting down).
    pub async fn submit(&self, cmd: Command) -> Result<CommandResult, RpcError> {
        let (tx, rx) = oneshot::channel();
        let gone = || RpcError::new(ErrorCode::Unavailable, "metadata node shutting down");
        self.tx.send((cmd, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<(Command, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut cmds = vec![first.0];
        let mut replies = vec![first.1];
        while cmds.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((c, r)) => {
                    cmds.push(c);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let entry = if cmds.len() == 1 {
            cmds.pop().expect("one command")
        } else {
            Command::Batch(cmds)
        };
        match raft.client_write(entry).await {
            Ok(resp) => match resp.data {
                CommandOutput::One(r) if replies.len() == 1 => {
                    let _ = replies.pop().expect("one reply").send(Ok(r));
                }
                CommandOutput::Many(rs) if rs.len() == replies.len() => {
                    for (reply, r) in replies.into_iter().zip(rs) {
                        let _ = reply.send(Ok(r));
                    }
                }
                other => {
                    let e = RpcError::new(
                        ErrorCode::Internal,
                        format!(
                            "state machine answered {} commands with {other:?}",
                            replies.len()
                        ),
                    );
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            },
            Err(e) => {
                let e = write_error(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

pub(crate) fn write_error(
    e: RaftError<u64, ClientWriteError<u64, openraft::BasicNode>>,
) -> RpcError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            RpcError::not_leader(f.leader_id.zip(f.leader_node.map(|n| n.addr)))
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RpcError::new(ErrorCode::Internal, e.to_string())
        }
        RaftError::Fatal(f) => RpcError::new(ErrorCode::Unavailable, f.to_string()),
    }
}
