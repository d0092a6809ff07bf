//! What a metadata node shows on `/metrics`: the shared request metrics,
//! its Raft state (term, leadership, log and applied indexes) and what its
//! state machine counts (files, directories, referenced chunks).

use std::sync::Arc;

use cairn_net::metrics::{Exposition, RequestMetrics};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::db::RocksKv;
use crate::namespace;
use crate::raft_types::Raft;

/// Builds the node's metrics; returns the exposition to serve and the
/// request metrics its handler records into.
pub fn exposition(id: u64, raft: Raft, kv: RocksKv) -> (Arc<Exposition>, RequestMetrics) {
    let mut registry = Registry::default();
    let requests = RequestMetrics::register(&mut registry);
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let g = Gauge::<i64>::default();
        registry.register(name, help, g.clone());
        g
    };
    let term = gauge(&mut registry, "cairn_raft_term", "Current Raft term");
    let leader = gauge(
        &mut registry,
        "cairn_raft_is_leader",
        "1 if this node is the metadata leader",
    );
    let last_log = gauge(
        &mut registry,
        "cairn_raft_last_log_index",
        "Index of the last entry in this node's log",
    );
    let applied = gauge(
        &mut registry,
        "cairn_raft_applied_index",
        "Index of the last committed entry applied to the state machine",
    );
    let files = gauge(&mut registry, "cairn_files", "Files in the namespace");
    let dirs = gauge(
        &mut registry,
        "cairn_directories",
        "Directories in the namespace",
    );
    let chunks = gauge(
        &mut registry,
        "cairn_chunks_referenced",
        "Distinct chunks referenced by files",
    );
    let refresh = move || {
        let m = raft.metrics().borrow().clone();
        term.set(m.current_term as i64);
        leader.set(i64::from(m.current_leader == Some(id)));
        last_log.set(m.last_log_index.map_or(0, |i| i as i64));
        applied.set(m.last_applied.map_or(0, |l| l.index as i64));
        match namespace::counters(&kv) {
            Ok(c) => {
                files.set(c.files as i64);
                dirs.set(c.directories as i64);
                chunks.set(c.chunks_referenced as i64);
            }
            Err(e) => tracing::warn!(error = %e, "reading counters for metrics"),
        }
    };
    (
        Arc::new(Exposition {
            registry,
            refresh: Box::new(refresh),
        }),
        requests,
    )
}
