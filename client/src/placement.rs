//! The client's cached copy of the placement ring.

use std::sync::RwLock;

use cairn_proto::meta_rpc::{ReplicationPolicy, RingMember, RingState};
use cairn_proto::ring::Ring;
use cairn_proto::ChunkId;

/// The ring as last fetched; replaced whole when a newer epoch arrives.
pub struct RingCache {
    ring: RwLock<Ring>,
}

impl Default for RingCache {
    fn default() -> Self {
        RingCache {
            ring: RwLock::new(Ring::new(RingState::default())),
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

    pub fn policy(&self) -> ReplicationPolicy {
        self.read().policy()
    }

    pub fn is_empty(&self) -> bool {
        self.read().members().is_empty()
    }

    /// Addresses of the first `n` owners of `chunk`, primary first.
    pub fn owners(&self, chunk: &ChunkId, n: usize) -> Vec<RingMember> {
        self.read().owners(chunk, n).into_iter().cloned().collect()
    }

    /// Every server, in `chunk`'s owner order: where to look when the owners
    /// do not have it (the ring changed since it was written).
    pub fn all_in_order(&self, chunk: &ChunkId) -> Vec<RingMember> {
        let r = self.read();
        r.owners(chunk, r.members().len())
            .into_iter()
            .cloned()
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // The ring is replaced whole under the lock; a poisoned one is intact.
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }
}
