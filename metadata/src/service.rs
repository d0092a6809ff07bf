//! The metadata service: answers [`MetaRequest`]s, each group in its own
//! part — namespace reads ([`ns_read`]), namespace writes ([`ns_write`]),
//! the cluster's queries, chunkserver reports and administration
//! ([`cluster`]), and the status ([`status`]).
//!
//! Reads are linearizable: each first confirms leadership through openraft
//! (read index) and waits until the state machine has applied that far, then
//! reads RocksDB. Writes become one Raft command each. A follower answers
//! `NotLeader` with the leader's address; callers retry there.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_proto::meta_rpc::{MetaRequest, MetaResponse, Session};
use cairn_proto::{ErrorCode, NodeId, RpcError};
use openraft::error::{CheckIsLeaderError, ForwardToLeader, RaftError};
use openraft::BasicNode;

use crate::batcher::WriteBatcher;
use crate::command::{Command, CommandResult};
use crate::db::RocksKv;
use crate::liveness::Liveness;
use crate::namespace::NsError;
use crate::network::handle_raft;
use crate::raft_types::Raft;
use crate::space_guard::SpaceGuard;

mod cluster;
mod ns_read;
mod ns_write;
mod status;

/// How long a write may wait to commit before the caller is told the
/// group is unavailable (a leader cut off from its majority cannot commit).
/// Below the callers' per-attempt timeout, so they hear this answer; a
/// resend under the same session is applied at most once.
const COMMIT_WAIT: Duration = Duration::from_millis(2_500);

pub struct MetaService {
    pub id: NodeId,
    pub raft: Raft,
    pub kv: RocksKv,
    pub liveness: Liveness,
    pub batcher: WriteBatcher,
    /// Silence after which a chunkserver is marked down.
    pub down_after: Duration,
    /// Silence after which a chunkserver is removed from the ring.
    pub remove_after: Duration,
    /// The garbage-collection grace period (zero: no collection).
    pub gc_grace: Duration,
    /// Refuses namespace growth while this node's disk is nearly full.
    pub space: SpaceGuard,
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn ns_err(e: NsError) -> RpcError {
    match e {
        NsError::Refused(r) => r,
        NsError::Storage(s) => {
            tracing::error!(error = %s, "metadata storage failure");
            RpcError::new(ErrorCode::Internal, s.to_string())
        }
    }
}

pub(crate) fn forward(f: ForwardToLeader<NodeId, BasicNode>) -> RpcError {
    RpcError::not_leader(f.leader_id.zip(f.leader_node.map(|n| n.addr)))
}

impl MetaService {
    /// Answers `req` by its group; a write with a `session` is applied at
    /// most once; a read with `follower_read` may be answered from this
    /// node's state without confirming leadership.
    pub async fn handle(
        self: &Arc<Self>,
        req: MetaRequest,
        session: Option<Session>,
        follower_read: bool,
    ) -> Result<MetaResponse, RpcError> {
        let stale_ok = follower_read && req.serves_follower_reads();
        match req {
            MetaRequest::NsRead(r) => self.ns_read(r, stale_ok).await.map(MetaResponse::NsRead),
            MetaRequest::NsWrite(w) => self.ns_write(w, session).await.map(MetaResponse::NsWrite),
            MetaRequest::Cluster(q) => self.cluster(q, stale_ok).await.map(MetaResponse::Cluster),
            MetaRequest::ChunkServer(r) => self
                .chunkserver_report(r, session)
                .await
                .map(MetaResponse::ChunkServer),
            MetaRequest::Admin(a) => self.admin(a, session).await.map(|()| MetaResponse::Admin),
            MetaRequest::Raft { kind, payload } => {
                handle_raft(&self.raft, &self.space, kind, &payload)
                    .await
                    .map(MetaResponse::Raft)
                    .map_err(|m| RpcError::new(ErrorCode::InvalidRequest, m))
            }
        }
    }

    /// Waits until a read here sees every write acknowledged before it
    /// (unless the caller accepts a follower's possibly stale state).
    async fn read_barrier(&self, stale_ok: bool) -> Result<(), RpcError> {
        if stale_ok {
            return Ok(());
        }
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(forward(f)),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q))) => Err(RpcError::new(
                ErrorCode::Unavailable,
                format!("no quorum: {q}"),
            )),
            Err(RaftError::Fatal(f)) => Err(RpcError::new(ErrorCode::Unavailable, f.to_string())),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// Proposes `cmd` through Raft; returns once it is applied.
    pub async fn propose(&self, cmd: Command) -> Result<(), RpcError> {
        self.write(None, cmd).await.map(|_| ())
    }

    pub(crate) fn ensure_leader(&self) -> Result<(), RpcError> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader == Some(self.id) {
            return Ok(());
        }
        let leader = m.current_leader.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| (l, n.addr.clone()))
        });
        Err(RpcError::not_leader(leader))
    }

    /// Commits `cmd` (once only under `session`) through the write
    /// batcher; answers its result once applied.
    async fn write(
        &self,
        session: Option<Session>,
        cmd: Command,
    ) -> Result<CommandResult, RpcError> {
        let cmd = match session {
            Some(session) => Command::Once {
                session,
                now_ns: now_ns(),
                cmd: Box::new(cmd),
            },
            None => cmd,
        };
        tokio::time::timeout(COMMIT_WAIT, self.batcher.submit(cmd))
            .await
            .map_err(|_| {
                RpcError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "not committed within {COMMIT_WAIT:?}: this node cannot reach a \
                         majority of the metadata group (the write may still be applied)"
                    ),
                )
            })?
    }
}
