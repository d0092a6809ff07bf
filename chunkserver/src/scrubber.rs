//! The scrubber: re-hashes every stored chunk at a bounded byte rate, so
//! that a copy rotting on a disk nobody reads is found. A copy that no
//! longer hashes to its id is quarantined ([`FileStore::check`]); the
//! repair loop of a server holding a good copy then pushes one back here,
//! since this server still owns the chunk but no longer has it.
//!
//! One pass starts every `scrub_interval_ms` (the first shortly after
//! start); reads are paced to `scrub_max_bytes_per_sec` by [`Pacer`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::pacer::Pacer;
use crate::store::FileStore;

/// The first pass waits at most this long after start, so that a server
/// restarted more often than the interval still gets scrubbed.
const FIRST_PASS_DELAY: Duration = Duration::from_secs(600);

/// What the scrubber has done since the server started (reported in
/// heartbeats and `cairn status`).
#[derive(Debug, Default)]
pub struct ScrubCounters {
    /// Passes finished.
    pub passes: AtomicU64,
    /// Chunks and bytes re-hashed.
    pub chunks: AtomicU64,
    pub bytes: AtomicU64,
    /// Copies found corrupt and quarantined.
    pub corrupt: AtomicU64,
}

impl ScrubCounters {
    pub fn report(&self) -> cairn_proto::meta_rpc::ScrubReport {
        cairn_proto::meta_rpc::ScrubReport {
            passes: self.passes.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
        }
    }
}

/// One pass's numbers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubPass {
    pub chunks: u64,
    pub bytes: u64,
    pub corrupt: u64,
}

pub struct Scrubber {
    pub store: FileStore,
    /// Time between the starts of two passes.
    pub interval: Duration,
    pub pacer: Mutex<Pacer>,
    pub counters: Arc<ScrubCounters>,
}

impl Scrubber {
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut wait = self.interval.min(FIRST_PASS_DELAY);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let started = Instant::now();
            match self.pass(&cancel).await {
                Ok(p) => {
                    self.counters.passes.fetch_add(1, Ordering::Relaxed);
                    if p.corrupt > 0 {
                        tracing::warn!(
                            chunks = p.chunks,
                            bytes = p.bytes,
                            corrupt = p.corrupt,
                            "scrub pass quarantined corrupt copies"
                        );
                    } else {
                        tracing::debug!(chunks = p.chunks, bytes = p.bytes, "scrub pass");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scrub pass failed"),
            }
            wait = self.interval.saturating_sub(started.elapsed());
        }
    }

    /// Re-hashes every chunk stored now, once.
    pub async fn pass(&self, cancel: &CancellationToken) -> Result<ScrubPass, String> {
        let store = self.store.clone();
        let ids = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut pass = ScrubPass::default();
        for id in ids {
            if cancel.is_cancelled() {
                break;
            }
            let store = self.store.clone();
            let checked = tokio::task::spawn_blocking(move || store.check_sized(&id))
                .await
                .map_err(|e| e.to_string())?;
            let (corrupt, len) = match checked {
                Ok(Some(found)) => found,
                // Deleted or moved since the listing.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(chunk = %id, error = %e, "scrub could not read a chunk");
                    continue;
                }
            };
            pass.chunks += 1;
            pass.bytes += len;
            self.counters.chunks.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes.fetch_add(len, Ordering::Relaxed);
            if corrupt {
                pass.corrupt += 1;
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            }
            let pause = self
                .pacer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(len, Instant::now());
            if !pause.is_zero() {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::ChunkId;

    fn scrubber(store: FileStore) -> Scrubber {
        Scrubber {
            store,
            interval: Duration::from_secs(3600),
            pacer: Mutex::new(Pacer::new(0, Instant::now())),
            counters: Arc::default(),
        }
    }

    #[tokio::test]
    async fn a_pass_quarantines_exactly_the_rotten_copies() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10_000]).collect();
        for c in &chunks {
            store.put(&ChunkId::of(c), c).unwrap();
        }
        let rotten = ChunkId::of(&chunks[2]);
        let path = store.path_of(&rotten);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[5_000] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();

        let s = scrubber(store.clone());
        let pass = s.pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(
            pass,
            ScrubPass {
                chunks: 5,
                bytes: 50_000,
                corrupt: 1
            }
        );
        assert!(!store.has(&rotten), "the rotten copy is still served");
        for c in chunks.iter().filter(|c| ChunkId::of(c) != rotten) {
            assert_eq!(store.get(&ChunkId::of(c)).unwrap().as_deref(), Some(&c[..]));
        }
        assert_eq!(s.counters.corrupt.load(Ordering::Relaxed), 1);
        // A second pass finds nothing more.
        let again = s.pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(again.chunks, 4);
        assert_eq!(again.corrupt, 0);
    }

    #[tokio::test]
    async fn a_pass_is_paced() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        for i in 0..4u8 {
            let c = vec![i; 64 << 10];
            store.put(&ChunkId::of(&c), &c).unwrap();
        }
        let mut s = scrubber(store);
        // 256 KiB at 128 KiB/s: the pass sleeps until about 2 s are due.
        s.pacer = Mutex::new(Pacer::new(128 << 10, Instant::now()));
        let started = Instant::now();
        let pass = s.pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(pass.bytes, 256 << 10);
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "256 KiB at 128 KiB/s took only {:?}",
            started.elapsed()
        );
    }
}
