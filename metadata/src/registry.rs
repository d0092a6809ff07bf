//! Chunkserver liveness: the last heartbeat of each, kept in memory on the
//! node that receives them (the leader). Registration itself — id,
//! address, zone, capacity — is replicated through Raft; liveness is not,
//! since a new leader learns it again within one heartbeat period.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::NodeId;

#[derive(Clone, Copy, Debug)]
pub struct Beat {
    pub at: Instant,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub chunks: u64,
}

#[derive(Default)]
pub struct Liveness {
    beats: Mutex<HashMap<NodeId, Beat>>,
}

impl Liveness {
    pub fn record(&self, id: NodeId, beat: Beat) {
        self.lock().insert(id, beat);
    }

    pub fn last(&self, id: NodeId) -> Option<Beat> {
        self.lock().get(&id).copied()
    }

    /// Up means a heartbeat arrived within `down_after` of `now`.
    pub fn is_up(beat: Option<Beat>, now: Instant, down_after: Duration) -> bool {
        beat.is_some_and(|b| now.saturating_duration_since(b.at) < down_after)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Beat>> {
        // Entries are plain values replaced whole; a poisoned map is still valid.
        self.beats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_only_within_the_window() {
        let t0 = Instant::now();
        let beat = Beat {
            at: t0,
            capacity_bytes: 1,
            used_bytes: 0,
            chunks: 0,
        };
        let w = Duration::from_secs(10);
        assert!(Liveness::is_up(Some(beat), t0 + Duration::from_secs(9), w));
        assert!(!Liveness::is_up(
            Some(beat),
            t0 + Duration::from_secs(10),
            w
        ));
        assert!(!Liveness::is_up(None, t0, w));
    }
}
