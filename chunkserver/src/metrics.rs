//! What a chunkserver shows on `/metrics`: the shared request metrics,
//! chunk bytes in and out, what it stores, its async-copy queue, and the
//! repair and scrub loops' progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_net::metrics::{Exposition, RequestMetrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::repair::RepairCounters;
use crate::replication_queue::ReplicationQueue;
use crate::scrubber::ScrubCounters;
use crate::store::FileStore;

/// The metrics the request handler records into.
#[derive(Clone)]
pub struct ServiceMetrics {
    pub requests: RequestMetrics,
    /// Chunk bytes received (client puts and copies from other servers).
    pub bytes_in: Counter,
    /// Chunk bytes sent to readers (whole chunks and range slices).
    pub bytes_out: Counter,
}

/// What the metrics mirror from the server's loops.
pub struct Sources {
    pub store: FileStore,
    pub queue: ReplicationQueue,
    pub under_replicated: Arc<AtomicU64>,
    pub repair: Arc<RepairCounters>,
    pub scrub: Arc<ScrubCounters>,
}

/// A counter that mirrors a monotonic atomic kept elsewhere.
fn mirror(counter: &Counter, source: &AtomicU64) {
    let now = source.load(Ordering::Relaxed);
    let shown = counter.get();
    if now > shown {
        counter.inc_by(now - shown);
    }
}

pub fn exposition(sources: Sources) -> (Arc<Exposition>, ServiceMetrics) {
    let mut registry = Registry::default();
    let requests = RequestMetrics::register(&mut registry);
    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let c = Counter::default();
        registry.register(name, help, c.clone());
        c
    };
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let g = Gauge::<i64>::default();
        registry.register(name, help, g.clone());
        g
    };
    let bytes_in = counter(
        &mut registry,
        "cairn_chunk_bytes_in",
        "Chunk bytes received",
    );
    let bytes_out = counter(
        &mut registry,
        "cairn_chunk_bytes_out",
        "Chunk bytes sent to readers",
    );
    let chunks = gauge(&mut registry, "cairn_chunks_stored", "Chunks stored here");
    let stored = gauge(
        &mut registry,
        "cairn_chunk_bytes_stored",
        "Bytes of chunks stored here",
    );
    let queue_depth = gauge(
        &mut registry,
        "cairn_replication_queue_depth",
        "Async copies waiting to be pushed",
    );
    let under = gauge(
        &mut registry,
        "cairn_under_replicated_chunks",
        "Chunks short of N copies that this server repairs, as of its last repair pass",
    );
    let repair_passes = counter(
        &mut registry,
        "cairn_repair_passes",
        "Repair passes finished",
    );
    let repair_pushed = counter(
        &mut registry,
        "cairn_repair_pushed_chunks",
        "Chunk copies pushed by repair and rebalance",
    );
    let repair_dropped = counter(
        &mut registry,
        "cairn_repair_dropped_chunks",
        "Local copies dropped because every owner holds the chunk",
    );
    let repair_failed = counter(
        &mut registry,
        "cairn_repair_failed_pushes",
        "Repair pushes that failed",
    );
    let scrub_passes = counter(&mut registry, "cairn_scrub_passes", "Scrub passes finished");
    let scrub_chunks = counter(
        &mut registry,
        "cairn_scrub_chunks",
        "Chunks re-hashed by the scrubber",
    );
    let scrub_bytes = counter(
        &mut registry,
        "cairn_scrub_bytes",
        "Bytes re-hashed by the scrubber",
    );
    let scrub_corrupt = counter(
        &mut registry,
        "cairn_scrub_corrupt_chunks",
        "Copies the scrubber found corrupt and quarantined",
    );
    let refresh = move || {
        let (n, bytes) = sources.store.usage();
        chunks.set(n as i64);
        stored.set(bytes as i64);
        queue_depth.set(sources.queue.depth() as i64);
        under.set(sources.under_replicated.load(Ordering::Relaxed) as i64);
        mirror(&repair_passes, &sources.repair.passes);
        mirror(&repair_pushed, &sources.repair.pushed);
        mirror(&repair_dropped, &sources.repair.dropped);
        mirror(&repair_failed, &sources.repair.failed);
        mirror(&scrub_passes, &sources.scrub.passes);
        mirror(&scrub_chunks, &sources.scrub.chunks);
        mirror(&scrub_bytes, &sources.scrub.bytes);
        mirror(&scrub_corrupt, &sources.scrub.corrupt);
    };
    (
        Arc::new(Exposition {
            registry,
            refresh: Box::new(refresh),
        }),
        ServiceMetrics {
            requests,
            bytes_in,
            bytes_out,
        },
    )
}
