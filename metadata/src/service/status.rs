//! The cluster's status as this node sees it (`cairn status`): the Raft
//! group from openraft's metrics, the registry from the state machine, and
//! each chunkserver's last heartbeat from the leader's liveness.

use std::time::Instant;

use cairn_proto::meta_rpc::{ChunkServerStatus, ClusterStatus, MetaNodeStatus};
use cairn_proto::{NodeId, RpcError};

use super::{ns_err, MetaService};
use crate::kv::{Cf, KvRead};
use crate::liveness::Liveness;
use crate::namespace;
use crate::schema::{decode, ServerRecord};

impl MetaService {
    pub(super) fn status(&self) -> Result<ClusterStatus, RpcError> {
        let m = self.raft.metrics().borrow().clone();
        // One applied state for the ring, counters, servers and flags.
        let kv = self.kv.view();
        let ring = namespace::ring(&kv).map_err(ns_err)?;
        let counters = namespace::counters(&kv).map_err(ns_err)?;
        let now = Instant::now();
        let servers = kv
            .scan(Cf::Servers, &[], &[0xff; 9], usize::MAX)
            .map_err(|e| ns_err(e.into()))?;
        let flags = namespace::server_flags(&kv).map_err(ns_err)?;
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
