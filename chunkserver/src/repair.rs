//! The repair and rebalance loop: one pass every `repair_interval_ms` over
//! the local chunks. For each, compute its owners under the current ring,
//! ask the owners (batched "have?") whether they hold it, and carry out
//! [`repair_plan::decide`]: push missing copies of chunks a file
//! references, drop copies this server no longer owns once every owner
//! confirmed — re-hashed, on the same ring epoch, re-checked just before
//! the delete ([`repair_plan::may_drop`]). Passes go chunk batch by chunk
//! batch with a pause between batches so client traffic comes first, and
//! pushes are paced to `repair_max_bytes_per_sec`. Owners marked down are
//! not asked (their answer is unknown until they return or are removed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_net::call_chunk;
use cairn_net::meta_caller::MetaCaller;
use cairn_net::ConnPool;
use cairn_proto::chunk_rpc::{ChunkRequest, ChunkResponse, MAX_CONFIRM_QUERY, MAX_HAVE_QUERY};
use cairn_proto::gc_rule::repair_may_copy;
use cairn_proto::meta_rpc::{ClusterQuery, ClusterReply, MAX_EXIST_QUERY};
use cairn_proto::ring::Ring;
use cairn_proto::{ChunkId, NodeId};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::known_epoch::KnownEpoch;
use crate::pacer::Pacer;
use crate::peer::push_chunk;
use crate::repair_plan::{decide, may_drop};
use crate::store::FileStore;

/// Chunks looked at per batch (also the size of each "have?" query).
const BATCH: usize = 1024;
/// Pause between batches: background work yields to clients.
const BATCH_PAUSE: Duration = Duration::from_millis(20);
/// Copies pushed at once.
const PUSH_CONCURRENCY: usize = 4;
/// How long a "have?" or confirm question may take (a confirm re-hashes
/// up to [`MAX_CONFIRM_QUERY`] chunks).
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    pub examined: u64,
    pub pushed: u64,
    pub dropped: u64,
    pub failed: u64,
    pub under_replicated: u64,
}

/// What the repair loop has done since the server started (for metrics).
#[derive(Debug, Default)]
pub struct RepairCounters {
    pub passes: AtomicU64,
    pub pushed: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

impl RepairCounters {
    pub fn report(&self) -> cairn_proto::meta_rpc::RepairReport {
        cairn_proto::meta_rpc::RepairReport {
            passes: self.passes.load(Ordering::Relaxed),
            pushed: self.pushed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

pub struct Repairer {
    pub id: NodeId,
    pub store: FileStore,
    pub pool: ConnPool,
    pub meta: Arc<MetaCaller>,
    pub interval: Duration,
    pub ring_epoch: Arc<KnownEpoch>,
    /// Chunks the last pass found short of N copies and responsible here.
    pub under_replicated: Arc<AtomicU64>,
    /// Paces repair pushes to the configured byte rate.
    pub pacer: Mutex<Pacer>,
    pub counters: Arc<RepairCounters>,
}

impl Repairer {
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
            match self.pass(&cancel).await {
                Ok(s) => {
                    self.under_replicated
                        .store(s.under_replicated, Ordering::Relaxed);
                    let c = &self.counters;
                    c.passes.fetch_add(1, Ordering::Relaxed);
                    c.pushed.fetch_add(s.pushed, Ordering::Relaxed);
                    c.dropped.fetch_add(s.dropped, Ordering::Relaxed);
                    c.failed.fetch_add(s.failed, Ordering::Relaxed);
                    if s.pushed + s.dropped + s.failed > 0 {
                        tracing::info!(
                            examined = s.examined,
                            pushed = s.pushed,
                            dropped = s.dropped,
                            failed = s.failed,
                            under_replicated = s.under_replicated,
                            "repair pass"
                        )
                    }
                }
                Err(e) => tracing::warn!(error = %e, "repair pass failed"),
            }
        }
    }

    /// One pass over every local chunk.
    pub async fn pass(&self, cancel: &CancellationToken) -> Result<PassStats, String> {
        let ring = self.fetch_ring().await?;
        if ring.members().is_empty() {
            return Ok(PassStats::default());
        }
        let copies = usize::from(ring.policy().copies);
        let store = self.store.clone();
        let local = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut stats = PassStats::default();
        for batch in local.chunks(BATCH) {
            if cancel.is_cancelled() {
                break;
            }
            self.batch(&ring, copies, batch, &mut stats).await;
            tokio::time::sleep(BATCH_PAUSE).await;
        }
        Ok(stats)
    }

    async fn batch(&self, ring: &Ring, copies: usize, ids: &[ChunkId], stats: &mut PassStats) {
        // Owners of each chunk, and per owner the chunks to ask it about.
        let owners: Vec<Vec<(NodeId, String)>> = ids
            .iter()
            .map(|id| {
                ring.owners(id, copies)
                    .into_iter()
                    .map(|m| (m.id, m.addr.clone()))
                    .collect()
            })
            .collect();
        let is_down = |n: NodeId| ring.member(n).is_some_and(|m| m.down);
        let is_full = |n: NodeId| ring.member(n).is_some_and(|m| m.full);
        let mut ask: HashMap<(NodeId, String), Vec<ChunkId>> = HashMap::new();
        for (id, os) in ids.iter().zip(&owners) {
            for o in os.iter().filter(|(n, _)| *n != self.id && !is_down(*n)) {
                ask.entry(o.clone()).or_default().push(*id);
            }
        }
        let mut answers: HashMap<(NodeId, ChunkId), bool> = HashMap::new();
        for ((node, addr), query) in ask {
            for part in query.chunks(MAX_HAVE_QUERY) {
                if let Ok(have) = self.have(&addr, node, part.to_vec()).await {
                    for (id, h) in part.iter().zip(have) {
                        answers.insert((node, *id), h);
                    }
                }
            }
        }
        let mut pushes: Vec<(ChunkId, NodeId, String)> = Vec::new();
        let mut drops: Vec<(ChunkId, &[(NodeId, String)])> = Vec::new();
        for (id, os) in ids.iter().zip(&owners) {
            stats.examined += 1;
            let nodes: Vec<NodeId> = os.iter().map(|(n, _)| *n).collect();
            let have: Vec<Option<bool>> = nodes
                .iter()
                .map(|n| answers.get(&(*n, *id)).copied())
                .collect();
            let d = decide(self.id, &nodes, &have);
            // A full owner gets no copy until it has room again; without
            // one it does not confirm, so nothing is dropped meanwhile.
            for target in d.push_to.into_iter().filter(|n| !is_full(*n)) {
                if let Some((_, addr)) = os.iter().find(|(n, _)| *n == target) {
                    pushes.push((*id, target, addr.clone()));
                }
            }
            if d.drop_local {
                drops.push((*id, os));
            }
            if d.under_replicated {
                stats.under_replicated += 1;
            }
        }
        let pushes = self.referenced_only(pushes).await;
        let results: Vec<bool> = futures::stream::iter(pushes)
            .map(|(id, node, addr)| async move { self.push(id, node, &addr).await })
            .buffer_unordered(PUSH_CONCURRENCY)
            .collect()
            .await;
        for ok in results {
            if ok {
                stats.pushed += 1;
            } else {
                stats.failed += 1;
            }
        }
        self.drop_confirmed(ring.epoch(), &drops, stats).await;
    }

    /// The current ring, from metadata (linearizable); its epoch is
    /// remembered as known.
    async fn fetch_ring(&self) -> Result<Ring, String> {
        match self
            .meta
            .ask(ClusterQuery::GetRing)
            .await
            .map_err(|e| e.to_string())?
        {
            ClusterReply::Ring(r) => {
                let ring = Ring::new(r);
                self.ring_epoch.observe(ring.epoch());
                Ok(ring)
            }
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// The planned pushes of chunks a file references (see
    /// [`repair_may_copy`]); none if metadata cannot be asked.
    async fn referenced_only(
        &self,
        pushes: Vec<(ChunkId, NodeId, String)>,
    ) -> Vec<(ChunkId, NodeId, String)> {
        let mut ids: Vec<ChunkId> = pushes.iter().map(|(id, _, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut referenced = std::collections::HashSet::new();
        for part in ids.chunks(MAX_EXIST_QUERY) {
            let answer = self
                .meta
                .ask(ClusterQuery::ChunkStates { ids: part.to_vec() })
                .await;
            match answer {
                Ok(ClusterReply::ChunkStates { states, .. }) if states.len() == part.len() => {
                    for (id, state) in part.iter().zip(states) {
                        if repair_may_copy(state) {
                            referenced.insert(*id);
                        }
                    }
                }
                other => {
                    tracing::debug!(answer = ?other.err(), "chunk states unknown; pushing nothing");
                    return Vec::new();
                }
            }
        }
        pushes
            .into_iter()
            .filter(|(id, _, _)| referenced.contains(id))
            .collect()
    }

    /// Deletes the local copies in `drops` (each with its owners) that
    /// [`may_drop`] allows: every owner re-hashed its copy on the epoch the
    /// plan was made with, and the ring is still there after they answered.
    async fn drop_confirmed(
        &self,
        planned_epoch: u64,
        drops: &[(ChunkId, &[(NodeId, String)])],
        stats: &mut PassStats,
    ) {
        if drops.is_empty() {
            return;
        }
        let mut ask: HashMap<(NodeId, String), Vec<ChunkId>> = HashMap::new();
        for (id, owners) in drops {
            for o in owners.iter() {
                ask.entry(o.clone()).or_default().push(*id);
            }
        }
        let mut confirmed: HashMap<(NodeId, ChunkId), bool> = HashMap::new();
        for ((node, addr), query) in ask {
            for part in query.chunks(MAX_CONFIRM_QUERY) {
                match self
                    .confirm(&addr, node, part.to_vec(), planned_epoch)
                    .await
                {
                    Ok(v) => {
                        for (id, ok) in part.iter().zip(v) {
                            confirmed.insert((node, *id), ok);
                        }
                    }
                    Err(e) => tracing::debug!(peer = %addr, error = %e, "copies not confirmed"),
                }
            }
        }
        let epoch_now = match self.fetch_ring().await {
            Ok(ring) => ring.epoch(),
            Err(e) => {
                tracing::debug!(error = %e, "ring not re-read; dropping nothing");
                return;
            }
        };
        for (id, owners) in drops {
            let nodes: Vec<NodeId> = owners.iter().map(|(n, _)| *n).collect();
            let answers: Vec<Option<bool>> = nodes
                .iter()
                .map(|n| confirmed.get(&(*n, *id)).copied())
                .collect();
            if !may_drop(self.id, &nodes, &answers, planned_epoch, epoch_now) {
                continue;
            }
            let (store, id) = (self.store.clone(), *id);
            match tokio::task::spawn_blocking(move || store.delete(&id)).await {
                Ok(Ok(())) => stats.dropped += 1,
                _ => stats.failed += 1,
            }
        }
    }

    /// Which of `ids` the chunkserver at `addr` holds verified copies of,
    /// on ring epoch `epoch`.
    async fn confirm(
        &self,
        addr: &str,
        node: NodeId,
        ids: Vec<ChunkId>,
        epoch: u64,
    ) -> Result<Vec<bool>, String> {
        let n = ids.len();
        let req = ChunkRequest::Confirm {
            ids,
            ring_epoch: epoch,
        };
        match self.ask(addr, node, &req).await? {
            Ok(ChunkResponse::Confirmed(v)) if v.len() == n => Ok(v),
            other => Err(format!("unexpected confirm answer {other:?}")),
        }
    }

    /// Sends `req` to chunkserver `node` at `addr`: its result, or why
    /// there was none.
    async fn ask(
        &self,
        addr: &str,
        node: NodeId,
        req: &ChunkRequest,
    ) -> Result<Result<ChunkResponse, cairn_proto::RpcError>, String> {
        let conn = crate::peer::connect_chunkserver(&self.pool, addr, Some(node)).await?;
        let answer = tokio::time::timeout(ASK_TIMEOUT, call_chunk(&conn, req, &[])).await;
        match answer {
            Ok(Ok((reply, _))) => Ok(reply.result),
            Ok(Err(e)) => {
                self.pool.forget(addr);
                Err(e.to_string())
            }
            Err(_) => {
                self.pool.forget(addr);
                Err(format!("no answer within {ASK_TIMEOUT:?}"))
            }
        }
    }

    async fn have(&self, addr: &str, node: NodeId, ids: Vec<ChunkId>) -> Result<Vec<bool>, String> {
        let n = ids.len();
        match self.ask(addr, node, &ChunkRequest::Have { ids }).await? {
            Ok(ChunkResponse::Have(v)) if v.len() == n => Ok(v),
            other => Err(format!("unexpected have answer {other:?}")),
        }
    }

    /// Sends the local copy of `id` to owner `node` at `addr`; false if it
    /// could not. A local copy found corrupt is quarantined, so that the
    /// next pass leaves the pushing to a server with a good one.
    async fn push(&self, id: ChunkId, node: NodeId, addr: &str) -> bool {
        let store = self.store.clone();
        let data = match tokio::task::spawn_blocking(move || store.get(&id)).await {
            Ok(Ok(Some(d))) => d,
            _ => return false,
        };
        if !id.matches(&data) {
            tracing::warn!(chunk = %id, "local copy is corrupt; not pushing it");
            let store = self.store.clone();
            let _ = tokio::task::spawn_blocking(move || store.check(&id)).await;
            return false;
        }
        let pushed = push_chunk(&self.pool, addr, Some(node), id, &data).await;
        let pause = self
            .pacer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(data.len() as u64, Instant::now());
        tokio::time::sleep(pause).await;
        match pushed {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(chunk = %id, error = %e, "repair push failed");
                false
            }
        }
    }
}
