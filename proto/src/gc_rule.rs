//! The garbage-collection rule: when a chunkserver may delete a chunk.
//! Pure, so that the races it must win are tested here.
//!
//! A chunk may go when it has been stored here (last written, or written
//! again by an upload that found it present) for at least the grace period
//! by this server's clock, and metadata says either that no file has
//! referenced it for at least the grace period (by the metadata leader's
//! clock), or that no file references it and it has no record of one ever
//! having done so (an upload never committed).
//!
//! Why a commit can never reference a deleted chunk: every write's client
//! stores (or finds by dedup) its chunks and then commits within half the
//! grace period, or gives up ([`commit_in_time`]). For a chunk to be
//! deleted after metadata said "unreferenced since T" at time R, R − T ≥
//! grace; the writer had looked at it before T (it was referenced then),
//! so a commit after R comes more than the grace period after that look —
//! refused. For an upload metadata does not know, the delete re-checks
//! under the chunk's lock that it was not stored again within the grace
//! period (the chunkserver store's `delete_if_idle`); a writer's own
//! upload renews that time, so its commit, if any, comes more than the
//! grace period after it — refused too. Clock differences between
//! metadata nodes must stay below half the grace period.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What metadata knows of a chunk, for garbage collection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChunkState {
    /// A committed file references it.
    Referenced,
    /// Its last reference went away at this time (ns since the epoch, by
    /// the metadata leader's clock).
    Unreferenced { since_ns: i64 },
    /// No file has ever referenced it, or its garbage record is gone: an
    /// upload never committed (or not yet).
    Unknown,
}

/// What to do with one chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Delete it; why, for the report.
    Delete(String),
}

/// The rule, for a chunk stored here `stored_for` ago, in `state` as
/// metadata answered at `meta_now_ns` (its clock), under `grace` (zero:
/// no collection).
pub fn decide(
    state: ChunkState,
    stored_for: Duration,
    meta_now_ns: i64,
    grace: Duration,
) -> Verdict {
    if grace.is_zero() || stored_for < grace {
        return Verdict::Keep;
    }
    match state {
        ChunkState::Referenced => Verdict::Keep,
        ChunkState::Unreferenced { since_ns } => {
            let unreferenced_for =
                Duration::from_nanos(meta_now_ns.saturating_sub(since_ns).max(0) as u64);
            if unreferenced_for >= grace {
                Verdict::Delete(format!(
                    "unreferenced for {}",
                    human_duration(unreferenced_for)
                ))
            } else {
                Verdict::Keep
            }
        }
        ChunkState::Unknown => Verdict::Delete(format!(
            "never committed, stored {} ago",
            human_duration(stored_for)
        )),
    }
}

/// Whether repair may copy a chunk in `state` to an owner missing it.
/// Only chunks a file references are copied: a copy of garbage, written
/// with a fresh stored time, would restart its grace period on the owner
/// it lands on while another owner's collector deletes its own, so garbage
/// could circulate for ever. An upload not yet committed needs no repair
/// copy either: its writer made the synchronous copies, and once it
/// commits, the next repair pass sees it referenced.
pub fn repair_may_copy(state: ChunkState) -> bool {
    matches!(state, ChunkState::Referenced)
}

/// Whether a writer that began storing (or dedup-checking) its chunks
/// `elapsed` ago may still commit them. Clients check this before every
/// commit of new chunks.
pub fn commit_in_time(elapsed: Duration, grace: Duration) -> bool {
    grace.is_zero() || elapsed < grace / 2
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{:.1} s", d.as_secs_f64()),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GRACE: Duration = Duration::from_secs(3600);
    const S: i64 = 1_000_000_000;

    fn deletes(v: &Verdict) -> bool {
        matches!(v, Verdict::Delete(_))
    }

    #[test]
    fn referenced_chunks_are_never_deleted() {
        let v = decide(ChunkState::Referenced, GRACE * 100, 0, GRACE);
        assert_eq!(v, Verdict::Keep);
    }

    #[test]
    fn recently_stored_chunks_are_kept_whatever_metadata_says() {
        for state in [
            ChunkState::Unknown,
            ChunkState::Unreferenced { since_ns: 0 },
        ] {
            let v = decide(state, GRACE - Duration::from_secs(1), 1_000_000 * S, GRACE);
            assert_eq!(v, Verdict::Keep, "{state:?}");
        }
    }

    #[test]
    fn unreferenced_chunks_go_after_the_grace_period() {
        let state = ChunkState::Unreferenced { since_ns: 100 * S };
        let now = 100 * S + GRACE.as_nanos() as i64;
        assert!(deletes(&decide(state, GRACE, now, GRACE)));
        assert_eq!(decide(state, GRACE, now - S, GRACE), Verdict::Keep);
        // A clock that went backwards never makes anything older.
        assert_eq!(decide(state, GRACE, 0, GRACE), Verdict::Keep);
    }

    #[test]
    fn uploads_never_committed_go_after_the_grace_period() {
        assert!(deletes(&decide(ChunkState::Unknown, GRACE, 0, GRACE)));
    }

    #[test]
    fn zero_grace_turns_collection_off() {
        let v = decide(ChunkState::Unknown, GRACE, 0, Duration::ZERO);
        assert_eq!(v, Verdict::Keep);
        assert!(commit_in_time(GRACE * 10, Duration::ZERO));
    }

    #[test]
    fn repair_copies_only_referenced_chunks() {
        assert!(repair_may_copy(ChunkState::Referenced));
        assert!(!repair_may_copy(ChunkState::Unknown));
        assert!(!repair_may_copy(ChunkState::Unreferenced { since_ns: 0 }));
    }

    #[test]
    fn a_writer_commits_within_half_the_grace_period() {
        assert!(commit_in_time(GRACE / 2 - Duration::from_millis(1), GRACE));
        assert!(!commit_in_time(GRACE / 2, GRACE));
    }

    proptest! {
        /// Dedup race: a writer sees chunk referenced at `look`, its last
        /// reference goes at `since` (after the look), a collector asks
        /// metadata at `ask` (before the commit is applied, so it sees
        /// the chunk unreferenced), and the writer commits at `commit`.
        /// Whenever the collector would delete, the writer must not be
        /// allowed to commit.
        #[test]
        fn a_deleted_chunk_is_never_committed_after_a_dedup_look(
            look in 0i64..10_000,
            gap in 0i64..10_000,
            ask_after in 0i64..10_000,
            commit_after in 1i64..10_000,
            grace_s in 1u64..5_000,
        ) {
            let grace = Duration::from_secs(grace_s);
            let since = look + gap;
            let ask = since + ask_after;
            let commit = ask + commit_after;
            let v = decide(
                ChunkState::Unreferenced { since_ns: since * S },
                grace * 2,
                ask * S,
                grace,
            );
            let elapsed = Duration::from_secs((commit - look) as u64);
            prop_assert!(!(deletes(&v) && commit_in_time(elapsed, grace)));
        }

        /// Upload race: a writer stores a chunk at `upload` (renewing its
        /// time), a collector lists it, asks metadata (not yet committed:
        /// unknown) and re-checks the stored time under the chunk's lock
        /// at `delete`, and the writer commits at `commit` after that.
        #[test]
        fn an_upload_is_never_committed_after_its_chunk_was_deleted(
            upload in 0i64..10_000,
            delete_after in 0i64..20_000,
            commit_after in 1i64..10_000,
            grace_s in 1u64..5_000,
        ) {
            let grace = Duration::from_secs(grace_s);
            let delete = upload + delete_after;
            let commit = delete + commit_after;
            let stored_for = Duration::from_secs((delete - upload) as u64);
            let v = decide(ChunkState::Unknown, stored_for, delete * S, grace);
            let elapsed = Duration::from_secs((commit - upload) as u64);
            prop_assert!(!(deletes(&v) && commit_in_time(elapsed, grace)));
        }
    }
}
