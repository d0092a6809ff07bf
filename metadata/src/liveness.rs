//! Chunkserver liveness: the last heartbeat of each, kept in memory on the
//! node that receives them (the leader). Registration itself — id,
//! address, zone, capacity — is replicated through Raft; liveness is not,
//! since a new leader learns it again within one heartbeat period.
//! [`verdict`] is the rule the leader's failure detector applies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::meta_rpc::{GcTotals, RepairReport, ScrubReport};
use cairn_proto::NodeId;

#[derive(Clone, Copy, Debug)]
pub struct Beat {
    pub at: Instant,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// Below its free-space reserve, as it judges.
    pub full: bool,
    pub chunks: u64,
    pub under_replicated: u64,
    pub scrub: ScrubReport,
    pub repair: RepairReport,
    pub gc: GcTotals,
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

/// What the failure detector does about one chunkserver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Silent past the down timeout: writes skip it, reads try it last.
    MarkDown,
    /// Heard from again after being marked down.
    MarkUp,
    /// Silent past the removal timeout: out of the ring; repair re-creates
    /// its copies elsewhere.
    Remove,
}

/// The new `full` flag of a server flagged `flagged` whose heartbeat just
/// said `reported`, if it changes: the flag follows what the server says
/// of its own disk (a silent server keeps its flag).
pub fn full_flag_change(flagged: bool, reported: bool) -> Option<bool> {
    (reported != flagged).then_some(reported)
}

/// The rule for a server that has been silent for `silent_for` and is
/// (`down`) or is not marked down. `None`: nothing to change.
pub fn verdict(
    down: bool,
    silent_for: Duration,
    down_after: Duration,
    remove_after: Duration,
) -> Option<Verdict> {
    if silent_for >= remove_after {
        Some(Verdict::Remove)
    } else if silent_for >= down_after {
        (!down).then_some(Verdict::MarkDown)
    } else {
        down.then_some(Verdict::MarkUp)
    }
}

/// Whether the failure detector may remove silent servers while `up` of
/// `total` registered servers are heard from. Only while more than half
/// are: when most of the cluster goes silent at once, the likelier cause
/// is the network or the metadata node itself, and emptying the ring
/// would help nobody.
pub fn may_remove(up: usize, total: usize) -> bool {
    up * 2 > total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_timeouts() {
        let s = Duration::from_secs;
        let (d, r) = (s(10), s(60));
        assert_eq!(verdict(false, s(1), d, r), None);
        assert_eq!(verdict(false, s(10), d, r), Some(Verdict::MarkDown));
        assert_eq!(verdict(true, s(30), d, r), None);
        assert_eq!(verdict(true, s(2), d, r), Some(Verdict::MarkUp));
        assert_eq!(verdict(true, s(60), d, r), Some(Verdict::Remove));
        assert_eq!(verdict(false, s(61), d, r), Some(Verdict::Remove));
    }

    #[test]
    fn the_full_flag_follows_the_heartbeats() {
        assert_eq!(full_flag_change(false, true), Some(true));
        assert_eq!(full_flag_change(true, false), Some(false));
        assert_eq!(full_flag_change(true, true), None);
        assert_eq!(full_flag_change(false, false), None);
    }

    #[test]
    fn removal_needs_most_servers_up() {
        assert!(may_remove(3, 4));
        assert!(!may_remove(2, 4));
        assert!(may_remove(2, 3));
        assert!(!may_remove(0, 1));
    }

    #[test]
    fn up_only_within_the_window() {
        let t0 = Instant::now();
        let beat = Beat {
            at: t0,
            capacity_bytes: 1,
            used_bytes: 0,
            available_bytes: 1,
            full: false,
            chunks: 0,
            under_replicated: 0,
            scrub: ScrubReport::default(),
            repair: RepairReport::default(),
            gc: GcTotals::default(),
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
