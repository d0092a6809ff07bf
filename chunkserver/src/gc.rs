//! The garbage collector: every `gc_interval_ms`, finds the chunks stored
//! here longer than the grace period, asks metadata about them in
//! batches, and deletes those [`decide`] condemns — each under
//! its lock, only if nobody stored it again meanwhile. `cairn gc` runs a
//! pass on demand, or a dry one that only reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_net::meta_caller::MetaCaller;
use cairn_proto::chunk_rpc::{GcItem, GcReport, MAX_GC_REPORT_ITEMS};
use cairn_proto::meta_rpc::{ClusterQuery, ClusterReply, GcTotals, MAX_EXIST_QUERY};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::store::FileStore;
use cairn_proto::gc_rule::{decide, Verdict};

pub struct Collector {
    pub store: FileStore,
    pub meta: Arc<MetaCaller>,
    /// Time between passes.
    pub interval: Duration,
    /// One pass at a time (the loop's, or one asked for by `cairn gc`).
    pub running: Mutex<()>,
    /// What deleting passes have deleted since start.
    pub passes: AtomicU64,
    pub deleted_chunks: AtomicU64,
    pub deleted_bytes: AtomicU64,
}

/// Why a pass could not finish.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("listing chunks: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("asking metadata: {0}")]
    Meta(String),
    #[error("metadata answered {0}")]
    Unexpected(String),
}

impl Collector {
    pub fn new(store: FileStore, meta: Arc<MetaCaller>, interval: Duration) -> Self {
        Collector {
            store,
            meta,
            interval,
            running: Mutex::new(()),
            passes: AtomicU64::new(0),
            deleted_chunks: AtomicU64::new(0),
            deleted_bytes: AtomicU64::new(0),
        }
    }

    pub fn totals(&self) -> GcTotals {
        GcTotals {
            passes: self.passes.load(Ordering::Relaxed),
            chunks: self.deleted_chunks.load(Ordering::Relaxed),
            bytes: self.deleted_bytes.load(Ordering::Relaxed),
        }
    }

    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
            match self.pass(false).await {
                Ok(r) if r.chunks > 0 => tracing::info!(
                    examined = r.examined,
                    deleted = r.chunks,
                    bytes = r.bytes,
                    "garbage collected"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "garbage collection pass failed"),
            }
        }
    }

    /// One pass: deletes what the rule condemns, or (`dry_run`) only
    /// reports it.
    pub async fn pass(&self, dry_run: bool) -> Result<GcReport, GcError> {
        let _one = self.running.lock().await;
        let mut report = GcReport {
            dry_run,
            ..Default::default()
        };
        // Ask first: the answer carries the grace period and metadata's
        // clock. An empty question is cheap.
        let (_, _, grace) = self.states(&[]).await?;
        if grace.is_zero() {
            return Ok(report);
        }
        let cutoff = SystemTime::now().checked_sub(grace).unwrap_or(UNIX_EPOCH);
        let store = self.store.clone();
        let old = tokio::task::spawn_blocking(move || store.stored_before(cutoff))
            .await
            .map_err(|e| GcError::Unexpected(e.to_string()))??;
        report.examined = old.len() as u64;
        for batch in old.chunks(MAX_EXIST_QUERY) {
            let ids: Vec<_> = batch.iter().map(|(id, _, _)| *id).collect();
            let (states, meta_now, grace) = self.states(&ids).await?;
            let now = SystemTime::now();
            for ((id, stored, len), state) in batch.iter().zip(states) {
                let stored_for = now.duration_since(*stored).unwrap_or_default();
                let Verdict::Delete(reason) = decide(state, stored_for, meta_now, grace) else {
                    continue;
                };
                let freed = if dry_run {
                    Some(*len)
                } else {
                    let (store, id) = (self.store.clone(), *id);
                    let cutoff = now.checked_sub(grace).unwrap_or(UNIX_EPOCH);
                    tokio::task::spawn_blocking(move || {
                        pause_before_delete();
                        store.delete_if_idle(&id, cutoff)
                    })
                    .await
                    .map_err(|e| GcError::Unexpected(e.to_string()))??
                };
                if let Some(len) = freed {
                    report.chunks += 1;
                    report.bytes += len;
                    if report.items.len() < MAX_GC_REPORT_ITEMS {
                        report.items.push(GcItem {
                            id: *id,
                            len,
                            reason,
                        });
                    }
                }
            }
        }
        if !dry_run {
            self.passes.fetch_add(1, Ordering::Relaxed);
            self.deleted_chunks
                .fetch_add(report.chunks, Ordering::Relaxed);
            self.deleted_bytes
                .fetch_add(report.bytes, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// Metadata's view of `ids`: their states, its clock (ns) and the
    /// grace period.
    async fn states(
        &self,
        ids: &[cairn_proto::ChunkId],
    ) -> Result<(Vec<cairn_proto::meta_rpc::ChunkState>, i64, Duration), GcError> {
        let answer = self
            .meta
            .ask(ClusterQuery::ChunkStates { ids: ids.to_vec() })
            .await
            .map_err(|e| GcError::Meta(e.to_string()))?;
        match answer {
            ClusterReply::ChunkStates {
                states,
                now_ns,
                gc_grace_ms,
            } if states.len() == ids.len() => {
                Ok((states, now_ns, Duration::from_millis(gc_grace_ms)))
            }
            other => Err(GcError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// Race tests (`--features failpoints`): `gc-before-delete=return(MS)`
/// pauses MS milliseconds between metadata's verdict on a chunk and its
/// delete, a window in which an upload of the same chunk may renew it.
fn pause_before_delete() {
    fail::fail_point!("gc-before-delete", |ms: Option<String>| {
        let ms = ms.and_then(|m| m.parse().ok()).unwrap_or(1_000);
        tracing::warn!(ms, "failpoint gc-before-delete: pausing before a delete");
        std::thread::sleep(Duration::from_millis(ms));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::ChunkId;

    /// Backdates chunk `id`'s stored time to `when`.
    fn age(store: &FileStore, id: &ChunkId, when: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(store.path_of(id))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    fn nanos(t: SystemTime) -> i64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    }

    #[test]
    fn a_store_renews_a_chunk_the_collector_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let data = vec![7u8; 4096];
        let id = ChunkId::of(&data);
        store.put(&id, &data).unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        age(&store, &id, old);
        // The collector lists it as old...
        let cutoff = SystemTime::now() - Duration::from_secs(3600);
        let listed = store.stored_before(cutoff).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(nanos(listed[0].1), nanos(old));
        // ...an upload of the same chunk renews it before the delete...
        store.put(&id, &data).unwrap();
        // ...so the delete leaves it.
        assert_eq!(store.delete_if_idle(&id, cutoff).unwrap(), None);
        assert!(store.has(&id));
        // Without the renewal it goes.
        age(&store, &id, old);
        assert_eq!(store.delete_if_idle(&id, cutoff).unwrap(), Some(4096));
        assert!(!store.has(&id));
        assert_eq!(store.usage(), (0, 0));
    }
}
