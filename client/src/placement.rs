//! The client's cached copy of the placement ring, and the newest epoch
//! any server has mentioned: when that is newer than the copy, the copy is
//! stale and the client fetches the ring again before its next placement.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use cairn_proto::meta_rpc::{ReplicationPolicy, RingMember, RingState};
use cairn_proto::ring::Ring;
use cairn_proto::ChunkId;

/// The ring as last fetched; replaced whole when a newer epoch arrives.
pub struct RingCache {
    ring: RwLock<Ring>,
    /// The newest epoch a chunkserver has reported.
    seen: AtomicU64,
}

impl Default for RingCache {
    fn default() -> Self {
        RingCache {
            ring: RwLock::new(Ring::new(RingState::default())),
            seen: AtomicU64::new(0),
        }
    }
}

impl RingCache {
    /// Installs `state` if it is at least as new as what is cached.
    pub fn update(&self, state: RingState) {
        let mut r = self.ring.write().unwrap_or_else(|p| p.into_inner());
        if state.epoch >= r.epoch() {
            *r = Ring::new(state);
        }
    }

    pub fn epoch(&self) -> u64 {
        self.read().epoch()
    }

    /// Records an epoch a server reported.
    pub fn observe(&self, epoch: u64) {
        self.seen.fetch_max(epoch, Ordering::Relaxed);
    }

    /// Whether a server has reported a newer epoch than the cached ring's.
    pub fn is_stale(&self) -> bool {
        self.seen.load(Ordering::Relaxed) > self.epoch()
    }

    pub fn policy(&self) -> ReplicationPolicy {
        self.read().policy()
    }

    /// The cluster's garbage-collection grace period (zero: none, or not
    /// announced).
    pub fn gc_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.read().state().gc_grace_ms)
    }

    pub fn is_empty(&self) -> bool {
        self.read().members().is_empty()
    }

    /// How many placed servers (not being drained) are up, and how many
    /// of those are full.
    pub fn fullness(&self) -> (usize, usize) {
        let ring = self.read();
        let up = ring.members().iter().filter(|m| !m.draining && !m.down);
        let full = up.clone().filter(|m| m.full).count();
        (up.count(), full)
    }

    /// Addresses of the first `n` owners of `chunk`, primary first.
    pub fn owners(&self, chunk: &ChunkId, n: usize) -> Vec<RingMember> {
        self.read().owners(chunk, n).into_iter().cloned().collect()
    }

    /// Where a new copy of `chunk` goes: its first `n` owners that are
    /// neither down nor full (see [`Ring::write_targets`]).
    pub fn write_targets(&self, chunk: &ChunkId, n: usize) -> Vec<RingMember> {
        self.read()
            .write_targets(chunk, n)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Every server in the order to read `chunk` from: its owners first,
    /// then the rest (the ring changed since it was written, or it was
    /// written while an owner was down), then draining servers, with the
    /// servers marked down last of all.
    pub fn read_order(&self, chunk: &ChunkId) -> Vec<RingMember> {
        let ring = self.read();
        let (down, mut up): (Vec<RingMember>, Vec<RingMember>) = ring
            .all_in_order(chunk)
            .into_iter()
            .cloned()
            .partition(|m| m.down);
        up.extend(down);
        up
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // The ring is replaced whole under the lock; a poisoned one is intact.
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }
}
