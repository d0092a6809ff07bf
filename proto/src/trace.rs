//! Request ids: one id per client operation (a put, a read, a mkdir),
//! carried in every frame the operation causes ([`crate::meta_rpc::MetaCall`],
//! [`crate::chunk_rpc::ChunkCall`]) and made current again on the server
//! while it handles the request, so that the server's own onward calls (a
//! primary's copies to its backups) carry it too. Every server opens a
//! `request` span with it: `RUST_LOG` filters as usual, and searching the
//! logs for one id finds the operation on every hop.
//!
//! The current id lives in a tokio task-local: [`scope`] sets it for a
//! future; [`current`] reads it, or makes a fresh one outside any scope.
//! Work spawned onto another task takes it along with [`scope`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

tokio::task_local! {
    static CURRENT: u64;
}

/// An id unlikely to collide with any other process's or call's.
pub fn random_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(&nanos.to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// The id of the operation this task is working for, or a fresh one.
pub fn current() -> u64 {
    CURRENT.try_with(|id| *id).unwrap_or_else(|_| random_id())
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: u64, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// Runs `f` as one operation: under the caller's id if it has one, else
/// under a fresh one.
pub async fn operation<F: Future>(f: F) -> F::Output {
    scope(current(), f).await
}

/// Runs a server's handling of one request: inside a
/// `request{id, op, peer}` span, with `id` current (so onward calls carry
/// it).
pub async fn handle<F: Future>(id: u64, op: &'static str, peer: &str, f: F) -> F::Output {
    use tracing::Instrument;
    let span = tracing::info_span!("request", id = %show(id), op, peer = %peer);
    scope(id, f.instrument(span)).await
}

/// How ids are written in logs: 16 hex digits.
pub fn show(id: u64) -> String {
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_follows_the_operation_and_not_beyond() {
        let outside = current();
        assert_ne!(outside, current(), "outside a scope every call is fresh");
        scope(42, async {
            assert_eq!(current(), 42);
            operation(async { assert_eq!(current(), 42) }).await;
            let spawned = tokio::spawn(scope(current(), async { current() }));
            assert_eq!(spawned.await.unwrap(), 42);
        })
        .await;
        assert_ne!(current(), 42);
        assert_eq!(show(0xabc), "0000000000000abc");
    }
}
