//! The leader's garbage-record purger: every grace period (at least once a
//! minute, at most once a second), pages through the garbage records and
//! proposes [`Command::PurgeGarbage`] for those older than
//! [`namespace::PURGE_AFTER_GRACES`] grace periods (why that is safe:
//! `namespace/garbage.rs`). Bounded per round, so a huge backlog is worked
//! off over several rounds without one long scan.

use std::sync::Arc;
use std::time::Duration;

use cairn_proto::ChunkId;
use tokio_util::sync::CancellationToken;

use crate::command::Command;
use crate::namespace;
use crate::service::{now_ns, MetaService};

/// Records looked at per round, and per proposed command.
const ROUND: usize = 10_000;
const PER_COMMAND: usize = 1_000;

/// Runs until `cancel` fires; acts only while this node is the leader and
/// collection is on (a non-zero grace period).
pub async fn run(service: Arc<MetaService>, cancel: CancellationToken) {
    let grace = service.gc_grace;
    if grace.is_zero() {
        return;
    }
    let period = grace.clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut after: Option<ChunkId> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if !service.is_leader() {
            continue;
        }
        let age = grace.saturating_mul(namespace::PURGE_AFTER_GRACES);
        let older_than_ns = now_ns().saturating_sub(age.as_nanos() as i64);
        let (ids, next) = match namespace::purgeable(&service.kv, older_than_ns, after, ROUND) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "garbage purger could not read the records");
                continue;
            }
        };
        after = next;
        for part in ids.chunks(PER_COMMAND) {
            let cmd = Command::PurgeGarbage {
                ids: part.to_vec(),
                older_than_ns,
            };
            if let Err(e) = service.propose(cmd).await {
                tracing::warn!(error = %e, "garbage purge not applied");
                break;
            }
        }
        if !ids.is_empty() {
            tracing::debug!(records = ids.len(), "purged old garbage records");
        }
    }
}
