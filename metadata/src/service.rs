//! The metadata service: answers [`MetaRequest`]s.
//!
//! Reads are linearizable: each first confirms leadership through openraft
//! (read index) and waits until the state machine has applied that far, then
//! reads RocksDB. Writes become one Raft command each. A follower answers
//! `NotLeader` with the leader's address; callers retry there.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_proto::meta_rpc::{
    ChunkServerStatus, ClusterStatus, MetaNodeStatus, MetaRequest, MetaResponse, Session,
    MAX_EXIST_QUERY, MAX_INODE_RESERVATION,
};
use cairn_proto::{ErrorCode, InodeId, NodeId, RpcError};
use openraft::error::{CheckIsLeaderError, ForwardToLeader, RaftError};
use openraft::BasicNode;

use crate::batcher::WriteBatcher;
use crate::command::{Command, CommandOutput};
use crate::db::RocksKv;
use crate::kv::{Cf, KvRead};
use crate::namespace::{self, NsError};
use crate::network::handle_raft;
use crate::raft_types::Raft;
use crate::registry::{Beat, Liveness};
use crate::schema::{decode, ServerRecord};
use crate::space_guard::{refused_when_low, SpaceGuard};

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
    /// Answers `req`; a write with a `session` is applied at most once;
    /// a read with `follower_read` may be answered from this node's state
    /// without confirming leadership.
    pub async fn handle(
        self: &Arc<Self>,
        req: MetaRequest,
        session: Option<Session>,
        follower_read: bool,
    ) -> Result<MetaResponse, RpcError> {
        use MetaRequest as Q;
        let stale_ok = follower_read && req.serves_follower_reads();
        let dirs = req.changed_dirs();
        let req = match Command::from_namespace_request(req, now_ns()) {
            Ok(cmd) => {
                self.refuse_if_disk_low(&cmd)?;
                let r = self.write(session, cmd).await?;
                return Ok(self.with_dir_attrs(r, &dirs));
            }
            Err(other) => other,
        };
        match req {
            Q::Raft { kind, payload } => handle_raft(&self.raft, &self.space, kind, &payload)
                .await
                .map(MetaResponse::Raft)
                .map_err(|m| RpcError::new(ErrorCode::InvalidRequest, m)),
            Q::Lookup { parent, name } => {
                self.read_barrier(stale_ok).await?;
                namespace::lookup(&self.kv, parent, &name)
                    .map(MetaResponse::Attr)
                    .map_err(ns_err)
            }
            Q::ResolvePath { path } => {
                self.read_barrier(stale_ok).await?;
                namespace::resolve_path(&self.kv, &path)
                    .map(MetaResponse::Attr)
                    .map_err(ns_err)
            }
            Q::GetAttr { ino } => {
                self.read_barrier(stale_ok).await?;
                namespace::get_attr(&self.kv, ino)
                    .map(MetaResponse::Attr)
                    .map_err(ns_err)
            }
            Q::ReadDir { ino, after, limit } => {
                self.read_barrier(stale_ok).await?;
                let (entries, more) =
                    namespace::read_dir(&self.kv, ino, after.as_deref(), limit).map_err(ns_err)?;
                Ok(MetaResponse::DirPage { entries, more })
            }
            Q::ReadDirPlus { ino, after, limit } => {
                self.read_barrier(stale_ok).await?;
                let (entries, more, last) =
                    namespace::read_dir_plus(&self.kv, ino, after.as_deref(), limit)
                        .map_err(ns_err)?;
                Ok(MetaResponse::DirPlusPage {
                    entries,
                    more,
                    last,
                })
            }
            Q::GetExtents { ino, from, limit } => {
                self.read_barrier(stale_ok).await?;
                let (extents, more, version) =
                    namespace::extents(&self.kv, ino, from, limit).map_err(ns_err)?;
                Ok(MetaResponse::Extents {
                    extents,
                    more,
                    version,
                })
            }
            Q::ReserveInodes { count } => self.reserve_inodes(count).await,
            Q::GetContent { ino, from, limit } => {
                self.read_barrier(stale_ok).await?;
                let (inline, extents, more, version) =
                    namespace::content(&self.kv, ino, from, limit).map_err(ns_err)?;
                Ok(MetaResponse::Content {
                    inline,
                    extents,
                    more,
                    version,
                })
            }
            Q::ChunksExist { ids } => {
                if ids.len() > MAX_EXIST_QUERY {
                    return Err(RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("{} ids exceed the limit of {MAX_EXIST_QUERY}", ids.len()),
                    ));
                }
                self.read_barrier(stale_ok).await?;
                namespace::chunks_exist(&self.kv, &ids)
                    .map(MetaResponse::Exist)
                    .map_err(ns_err)
            }
            Q::GetRing => {
                self.read_barrier(stale_ok).await?;
                let mut ring = namespace::ring(&self.kv).map_err(ns_err)?;
                ring.gc_grace_ms = self.gc_grace.as_millis() as u64;
                Ok(MetaResponse::Ring(ring))
            }
            Q::ChunkStates { ids } => {
                if ids.len() > MAX_EXIST_QUERY {
                    return Err(RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("{} ids exceed the limit of {MAX_EXIST_QUERY}", ids.len()),
                    ));
                }
                // Linearizable, whatever the caller asked: a collector must
                // see every commit that happened before it asks.
                self.read_barrier(false).await?;
                let states = namespace::chunk_states(&self.kv, &ids).map_err(ns_err)?;
                Ok(MetaResponse::ChunkStates {
                    states,
                    now_ns: now_ns(),
                    gc_grace_ms: self.gc_grace.as_millis() as u64,
                })
            }
            Q::ReadLink { ino } => {
                self.read_barrier(stale_ok).await?;
                namespace::read_link(&self.kv, ino)
                    .map(MetaResponse::SymlinkTarget)
                    .map_err(ns_err)
            }
            Q::GetXattr { ino, name } => {
                self.read_barrier(stale_ok).await?;
                namespace::get_xattr(&self.kv, ino, &name)
                    .map(MetaResponse::Xattr)
                    .map_err(ns_err)
            }
            Q::ListXattr { ino } => {
                self.read_barrier(stale_ok).await?;
                namespace::list_xattrs(&self.kv, ino)
                    .map(MetaResponse::XattrNames)
                    .map_err(ns_err)
            }
            Q::RegisterChunkServer {
                id,
                addr,
                zone,
                capacity_bytes,
            } => {
                let done = self
                    .write(
                        session,
                        Command::RegisterChunkServer {
                            id,
                            addr,
                            zone,
                            capacity_bytes,
                        },
                    )
                    .await?;
                // Registering is a sign of life: the first heartbeat follows
                // one period later.
                let last = self.liveness.last(id);
                self.liveness.record(
                    id,
                    Beat {
                        at: Instant::now(),
                        capacity_bytes,
                        used_bytes: last.map_or(0, |b| b.used_bytes),
                        available_bytes: last.map_or(capacity_bytes, |b| b.available_bytes),
                        full: last.is_some_and(|b| b.full),
                        chunks: last.map_or(0, |b| b.chunks),
                        under_replicated: last.map_or(0, |b| b.under_replicated),
                        scrub: last.map_or_else(Default::default, |b| b.scrub),
                        repair: last.map_or_else(Default::default, |b| b.repair),
                        gc: last.map_or_else(Default::default, |b| b.gc),
                    },
                );
                Ok(done)
            }
            Q::Heartbeat {
                id,
                capacity_bytes,
                used_bytes,
                available_bytes,
                full,
                chunks,
                under_replicated,
                scrub,
                repair,
                gc,
            } => {
                self.ensure_leader()?;
                if self
                    .kv
                    .get(Cf::Servers, &crate::schema::server_key(id))
                    .map_err(|e| ns_err(e.into()))?
                    .is_none()
                {
                    return Err(RpcError::new(
                        ErrorCode::NotFound,
                        format!("chunkserver {id} is not registered"),
                    ));
                }
                self.liveness.record(
                    id,
                    Beat {
                        at: Instant::now(),
                        capacity_bytes,
                        used_bytes,
                        available_bytes,
                        full,
                        chunks,
                        under_replicated,
                        scrub,
                        repair,
                        gc,
                    },
                );
                self.follow_fullness(id, full).await;
                let ring_epoch = namespace::ring_epoch(&self.kv).map_err(ns_err)?;
                Ok(MetaResponse::Beat { ring_epoch })
            }
            Q::Status => {
                // Chunkserver liveness lives on the leader: ask it when there
                // is one; answer here when there is none, so that status
                // still says so.
                if let Err(e) = self.ensure_leader() {
                    if e.leader.is_some() {
                        return Err(e);
                    }
                }
                self.status().map(MetaResponse::Status)
            }
            Q::SetReplication { policy } => {
                self.write(session, Command::SetReplication { policy })
                    .await
            }
            Q::RemoveChunkServer { id } => {
                self.ensure_leader()?;
                if Liveness::is_up(self.liveness.last(id), Instant::now(), self.down_after) {
                    return Err(RpcError::new(
                        ErrorCode::FailedPrecondition,
                        format!(
                            "chunkserver {id} is up; drain it first (`cairn chunkserver drain {id} --wait`), \
                             stop it, then remove it"
                        ),
                    ));
                }
                self.write(session, Command::RemoveChunkServer { id }).await
            }
            Q::DrainChunkServer { id, drain } => {
                self.write(session, Command::DrainChunkServer { id, drain })
                    .await
            }
            Q::AddMetaNode { id, addr } => self.add_meta_node(id, addr).await,
            Q::PromoteMetaNode { id } => self.promote_meta_node(id).await,
            Q::RemoveMetaNode { id } => self.remove_meta_node(id).await,
            Q::Mkdir { .. }
            | Q::Unlink { .. }
            | Q::Rmdir { .. }
            | Q::Rename { .. }
            | Q::CreateFile { .. }
            | Q::Mknod { .. }
            | Q::WriteExtents { .. }
            | Q::WriteInline { .. }
            | Q::CreateWith { .. }
            | Q::Symlink { .. }
            | Q::Link { .. }
            | Q::SetXattr { .. }
            | Q::RemoveXattr { .. }
            | Q::CommitFile { .. }
            | Q::SetAttr { .. } => Err(RpcError::new(
                ErrorCode::Internal,
                "a namespace request was not turned into a command",
            )),
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
    /// Flags chunkserver `id` full in the ring, or not, as its heartbeat
    /// just `reported` (see [`crate::registry::full_flag_change`]); a
    /// failure is retried at its next heartbeat.
    async fn follow_fullness(&self, id: NodeId, reported: bool) {
        let flagged = match namespace::server_flags(&self.kv) {
            Ok(flags) => flags.get(&id).is_some_and(|f| f.full),
            Err(e) => {
                tracing::warn!(chunkserver = id, error = %e, "server flags unreadable");
                return;
            }
        };
        let Some(full) = crate::registry::full_flag_change(flagged, reported) else {
            return;
        };
        if full {
            tracing::warn!(
                chunkserver = id,
                "its disk is full: new writes go elsewhere"
            );
        } else {
            tracing::info!(chunkserver = id, "its disk has room again: it takes writes");
        }
        if let Err(e) = self.propose(Command::SetChunkServerFull { id, full }).await {
            tracing::warn!(chunkserver = id, error = %e, "full flag not applied");
        }
    }

    /// Refuses `cmd` with "no space" if it adds to the namespace while this
    /// node's disk, or another member's, is below its reserve (see
    /// [`crate::space_guard`]).
    fn refuse_if_disk_low(&self, cmd: &Command) -> Result<(), RpcError> {
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

    async fn write(
        &self,
        session: Option<Session>,
        cmd: Command,
    ) -> Result<MetaResponse, RpcError> {
        let cmd = match session {
            Some(session) => Command::Once {
                session,
                now_ns: now_ns(),
                cmd: Box::new(cmd),
            },
            None => cmd,
        };
        let committed = tokio::time::timeout(COMMIT_WAIT, self.batcher.submit(cmd))
            .await
            .map_err(|_| {
                RpcError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "not committed within {COMMIT_WAIT:?}: this node cannot reach a \
                         majority of the metadata group (the write may still be applied)"
                    ),
                )
            })?;
        match committed? {
            Ok(Some(attr)) => Ok(MetaResponse::Attr(attr)),
            Ok(None) => Ok(MetaResponse::Ok),
            Err(e) => Err(e),
        }
    }

    /// Sets `count` inode numbers aside in a log entry of its own (the
    /// batcher's results cannot carry the numbers). Not once-only: a
    /// repeat sets more aside, which only leaves numbers unused.
    async fn reserve_inodes(&self, count: u32) -> Result<MetaResponse, RpcError> {
        if count == 0 || count > MAX_INODE_RESERVATION {
            return Err(RpcError::new(
                ErrorCode::InvalidRequest,
                format!("inode reservations are 1..={MAX_INODE_RESERVATION}, not {count}"),
            ));
        }
        let written = tokio::time::timeout(
            COMMIT_WAIT,
            self.raft.client_write(Command::ReserveInodes { count }),
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
            CommandOutput::Reserved(first) => Ok(MetaResponse::Inodes { first, count }),
            CommandOutput::One(Err(e)) => Err(e),
            other => Err(RpcError::new(
                ErrorCode::Internal,
                format!("state machine answered an inode reservation with {other:?}"),
            )),
        }
    }

    /// Answers a change to the entries of `dirs` with their attributes
    /// now (on the leader, after the change was applied; a directory that
    /// is gone meanwhile is left out).
    fn with_dir_attrs(&self, r: MetaResponse, dirs: &[InodeId]) -> MetaResponse {
        if dirs.is_empty() {
            return r;
        }
        let attr = match r {
            MetaResponse::Attr(a) => Some(a),
            MetaResponse::Ok => None,
            other => return other,
        };
        let dirs = dirs
            .iter()
            .filter_map(|d| namespace::get_attr(&self.kv, *d).ok())
            .collect();
        MetaResponse::Changed { attr, dirs }
    }

    fn status(&self) -> Result<ClusterStatus, RpcError> {
        let m = self.raft.metrics().borrow().clone();
        let ring = namespace::ring(&self.kv).map_err(ns_err)?;
        let counters = namespace::counters(&self.kv).map_err(ns_err)?;
        let now = Instant::now();
        let servers = self
            .kv
            .scan(Cf::Servers, &[], &[0xff; 9], usize::MAX)
            .map_err(|e| ns_err(e.into()))?;
        let flags = namespace::server_flags(&self.kv).map_err(ns_err)?;
        let mut chunkservers = Vec::new();
        for (_, v) in servers {
            let s: ServerRecord = decode(&v).map_err(|e| ns_err(e.into()))?;
            let f = flags.get(&s.id).copied().unwrap_or_default();
            let beat = self.liveness.last(s.id);
            chunkservers.push(ChunkServerStatus {
                id: s.id,
                addr: s.addr,
                zone: s.zone,
                capacity_bytes: beat.map_or(s.capacity_bytes, |b| b.capacity_bytes),
                used_bytes: beat.map_or(0, |b| b.used_bytes),
                available_bytes: beat.map_or(0, |b| b.available_bytes),
                chunks: beat.map_or(0, |b| b.chunks),
                last_heartbeat_ms: beat
                    .map(|b| now.saturating_duration_since(b.at).as_millis() as u64),
                up: Liveness::is_up(beat, now, self.down_after),
                down: f.down,
                draining: f.draining,
                full: f.full,
                under_replicated: beat.map_or(0, |b| b.under_replicated),
                scrub: beat.map_or_else(Default::default, |b| b.scrub),
                repair: beat.map_or_else(Default::default, |b| b.repair),
                gc: beat.map_or_else(Default::default, |b| b.gc),
            });
        }
        let under_replicated = chunkservers.iter().map(|c| c.under_replicated).sum();
        let voters: std::collections::BTreeSet<NodeId> =
            m.membership_config.membership().voter_ids().collect();
        Ok(ClusterStatus {
            leader: m.current_leader,
            term: m.current_term,
            last_applied: m.last_applied.map_or(0, |l| l.index),
            meta_nodes: m
                .membership_config
                .membership()
                .nodes()
                .map(|(id, n)| {
                    let matched_index = if *id == self.id {
                        m.replication.as_ref().and(m.last_log_index)
                    } else {
                        m.replication
                            .as_ref()
                            .and_then(|r| r.get(id).copied().flatten())
                            .map(|l| l.index)
                    };
                    MetaNodeStatus {
                        id: *id,
                        addr: n.addr.clone(),
                        voter: voters.contains(id),
                        matched_index,
                        lag: matched_index
                            .zip(m.last_log_index)
                            .map(|(have, last)| last.saturating_sub(have)),
                    }
                })
                .collect(),
            ring_epoch: ring.epoch,
            policy: ring.policy,
            chunkservers,
            files: counters.files,
            directories: counters.directories,
            chunks_referenced: counters.chunks_referenced,
            under_replicated,
        })
    }
}
