//! Answering the cluster's own calls: queries of the registry any role
//! may make ([`ClusterQuery`]), chunkserver registrations and heartbeats
//! ([`ChunkServerReport`]), and administration ([`AdminRequest`]).

use std::time::Instant;

use cairn_proto::meta_rpc::{
    AdminRequest, ChunkServerReply, ChunkServerReport, ClusterQuery, ClusterReply, Session,
    MAX_EXIST_QUERY,
};
use cairn_proto::{ChunkId, ErrorCode, NodeId, RpcError};

use super::{now_ns, ns_err, MetaService};
use crate::command::{Command, RegistryChange};
use crate::kv::{Cf, KvRead};
use crate::liveness::{Beat, Liveness};
use crate::namespace;

/// A chunk query carries at most [`MAX_EXIST_QUERY`] ids.
fn bounded(ids: &[ChunkId]) -> Result<(), RpcError> {
    if ids.len() > MAX_EXIST_QUERY {
        return Err(RpcError::new(
            ErrorCode::InvalidRequest,
            format!("{} ids exceed the limit of {MAX_EXIST_QUERY}", ids.len()),
        ));
    }
    Ok(())
}

impl MetaService {
    pub(super) async fn cluster(
        &self,
        q: ClusterQuery,
        stale_ok: bool,
    ) -> Result<ClusterReply, RpcError> {
        match q {
            ClusterQuery::GetRing => {
                self.read_barrier(stale_ok).await?;
                let mut ring = namespace::ring(&self.kv.view()).map_err(ns_err)?;
                ring.gc_grace_ms = self.gc_grace.as_millis() as u64;
                Ok(ClusterReply::Ring(ring))
            }
            ClusterQuery::Status => {
                // Chunkserver liveness lives on the leader: ask it when there
                // is one; answer here when there is none, so that status
                // still says so.
                if let Err(e) = self.ensure_leader() {
                    if e.leader.is_some() {
                        return Err(e);
                    }
                }
                self.status().map(ClusterReply::Status)
            }
            ClusterQuery::ChunksExist { ids } => {
                bounded(&ids)?;
                self.read_barrier(false).await?;
                namespace::chunks_exist(&self.kv.view(), &ids)
                    .map(ClusterReply::Exist)
                    .map_err(ns_err)
            }
            ClusterQuery::ChunkStates { ids } => {
                bounded(&ids)?;
                // Linearizable, whatever the caller asked: a collector must
                // see every commit that happened before it asks.
                self.read_barrier(false).await?;
                let states = namespace::chunk_states(&self.kv.view(), &ids).map_err(ns_err)?;
                Ok(ClusterReply::ChunkStates {
                    states,
                    now_ns: now_ns(),
                    gc_grace_ms: self.gc_grace.as_millis() as u64,
                })
            }
        }
    }

    pub(super) async fn chunkserver_report(
        &self,
        r: ChunkServerReport,
        session: Option<Session>,
    ) -> Result<ChunkServerReply, RpcError> {
        match r {
            ChunkServerReport::Register {
                id,
                addr,
                zone,
                capacity_bytes,
            } => {
                let change = RegistryChange::Register {
                    id,
                    addr,
                    zone,
                    capacity_bytes,
                };
                self.write(session, Command::Registry(change)).await??;
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
                Ok(ChunkServerReply::Registered)
            }
            ChunkServerReport::Heartbeat {
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
                let ring_epoch = namespace::ring_epoch(&self.kv.view()).map_err(ns_err)?;
                Ok(ChunkServerReply::Beat { ring_epoch })
            }
        }
    }

    pub(super) async fn admin(
        &self,
        a: AdminRequest,
        session: Option<Session>,
    ) -> Result<(), RpcError> {
        let change = match a {
            AdminRequest::AddMetaNode { id, addr } => return self.add_meta_node(id, addr).await,
            AdminRequest::PromoteMetaNode { id } => return self.promote_meta_node(id).await,
            AdminRequest::RemoveMetaNode { id } => return self.remove_meta_node(id).await,
            AdminRequest::SetReplication { policy } => RegistryChange::SetReplication { policy },
            AdminRequest::DrainChunkServer { id, drain } => RegistryChange::Drain { id, drain },
            AdminRequest::RemoveChunkServer { id } => {
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
                RegistryChange::Remove { id }
            }
        };
        self.write(session, Command::Registry(change))
            .await?
            .map(|_| ())
    }

    /// Flags chunkserver `id` full in the ring, or not, as its heartbeat
    /// just `reported` (see [`crate::liveness::full_flag_change`]); a
    /// failure is retried at its next heartbeat.
    async fn follow_fullness(&self, id: NodeId, reported: bool) {
        let flagged = match namespace::server_flags(&self.kv.view()) {
            Ok(flags) => flags.get(&id).is_some_and(|f| f.full),
            Err(e) => {
                tracing::warn!(chunkserver = id, error = %e, "server flags unreadable");
                return;
            }
        };
        let Some(full) = crate::liveness::full_flag_change(flagged, reported) else {
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
        if let Err(e) = self
            .propose(Command::Registry(RegistryChange::SetFull { id, full }))
            .await
        {
            tracing::warn!(chunkserver = id, error = %e, "full flag not applied");
        }
    }
}
