//! Which queued async copies the replicator works on next, and what becomes
//! of each. Pure logic; [`crate::replication_queue`] carries it out.
//!
//! * Fair: each pass takes entries round-robin across targets, skipping
//!   targets backing off after a failure, so one dead target cannot starve
//!   the others however many entries it has ([`pick`]).
//! * Bounded: an entry whose target is no longer in the ring, or whose
//!   chunk no file will reference, is dropped rather than retried for ever
//!   ([`fate`]); one whose chunk is not stored here waits (its put queues
//!   it while storing the chunk) and is dropped after [`NOT_STORED_WAIT`]. Dropping an entry never loses a needed copy: repair
//!   restores every copy a referenced chunk lacks on its owners.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_proto::gc_rule::commit_in_time;
use cairn_proto::meta_rpc::ChunkState;

/// Up to `limit` indices into `targets` (the target of each pending entry,
/// in listing order), taken one per target in turn, leaving out targets
/// for which `blocked` holds.
pub fn pick<K: Ord + Clone>(
    targets: &[K],
    blocked: impl Fn(&K) -> bool,
    limit: usize,
) -> Vec<usize> {
    let mut by_target: BTreeMap<K, std::collections::VecDeque<usize>> = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        if !blocked(t) {
            by_target.entry(t.clone()).or_default().push_back(i);
        }
    }
    let mut out = Vec::new();
    while out.len() < limit && !by_target.is_empty() {
        by_target.retain(|_, queue| {
            if out.len() >= limit {
                return true;
            }
            match queue.pop_front() {
                Some(i) => {
                    out.push(i);
                    !queue.is_empty()
                }
                None => false,
            }
        });
    }
    out
}

/// What to do with one queued copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Push it now.
    Push,
    /// Wait: not enough is known to decide (metadata or the ring could not
    /// be asked).
    Wait,
    /// Remove it without pushing; why, for the log.
    Drop(&'static str),
}

/// How long an entry waits for its chunk to be stored here: a put
/// queues its copies while it stores the chunk, and answers once both
/// are durable; an entry older than this whose chunk is not here belongs
/// to a put that failed (or a copy lost since, which repair restores).
pub const NOT_STORED_WAIT: Duration = Duration::from_secs(600);

/// The fate of a copy of a chunk in `state` (None: unknown) queued `age`
/// ago, for a target that is (`Some(true)`) or is not (`Some(false)`) in a
/// ring read after the entry was queued (None: no such ring read yet),
/// under GC grace period `grace`; `stored_here`: whether this server holds
/// the chunk.
pub fn fate(
    state: Option<ChunkState>,
    age: Duration,
    grace: Duration,
    target_in_ring: Option<bool>,
    stored_here: bool,
) -> Fate {
    if target_in_ring == Some(false) {
        return Fate::Drop("the target left the ring");
    }
    let Some(state) = state else {
        return Fate::Wait;
    };
    match state {
        ChunkState::Referenced => {}
        // Still inside its writer's commit window: the commit may come.
        ChunkState::Unknown if commit_in_time(age, grace) => {}
        ChunkState::Unknown => return Fate::Drop("the upload was never committed"),
        // A copy landing now would restart the grace period of garbage.
        ChunkState::Unreferenced { .. } => return Fate::Drop("no file references the chunk"),
    }
    if !stored_here {
        // Its put may still be storing it (never dropped as moot then).
        return if age < NOT_STORED_WAIT {
            Fate::Wait
        } else {
            Fate::Drop("the chunk is not stored here")
        };
    }
    match target_in_ring {
        Some(_) => Fate::Push,
        None => Fate::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_target_with_many_entries_does_not_starve_the_others() {
        // 1,000 entries for a dead target "a" listed first, two for "b",
        // one for "c".
        let mut targets = vec!["a"; 1000];
        targets.extend(["b", "b", "c"]);
        let picked = pick(&targets, |_| false, 4);
        let names: Vec<&str> = picked.iter().map(|&i| targets[i]).collect();
        assert_eq!(names, ["a", "b", "c", "a"]);
        // A target backing off is skipped altogether.
        let picked = pick(&targets, |t| *t == "a", 10);
        let names: Vec<&str> = picked.iter().map(|&i| targets[i]).collect();
        assert_eq!(names, ["b", "c", "b"]);
        assert!(pick::<&str>(&[], |_| false, 4).is_empty());
    }

    #[test]
    fn only_copies_a_file_may_need_are_pushed() {
        let grace = Duration::from_secs(600);
        let young = Duration::from_secs(10);
        let old = Duration::from_secs(400);
        let push = |state, age| fate(Some(state), age, grace, Some(true), true);
        assert_eq!(push(ChunkState::Referenced, old), Fate::Push);
        assert_eq!(push(ChunkState::Unknown, young), Fate::Push);
        assert!(matches!(push(ChunkState::Unknown, old), Fate::Drop(_)));
        assert!(matches!(
            push(ChunkState::Unreferenced { since_ns: 0 }, young),
            Fate::Drop(_)
        ));
        // GC off: an uncommitted upload is never given up on.
        assert_eq!(
            fate(
                Some(ChunkState::Unknown),
                old,
                Duration::ZERO,
                Some(true),
                true
            ),
            Fate::Push
        );
    }

    #[test]
    fn entries_for_servers_that_left_are_dropped_and_unknowns_wait() {
        let grace = Duration::from_secs(600);
        let age = Duration::from_secs(1);
        assert!(matches!(
            fate(Some(ChunkState::Referenced), age, grace, Some(false), true),
            Fate::Drop(_)
        ));
        assert!(matches!(
            fate(None, age, grace, Some(false), true),
            Fate::Drop(_)
        ));
        assert_eq!(fate(None, age, grace, Some(true), true), Fate::Wait);
        assert_eq!(
            fate(Some(ChunkState::Referenced), age, grace, None, true),
            Fate::Wait
        );
    }

    #[test]
    fn an_entry_waits_for_its_chunk_while_its_put_may_be_storing_it() {
        let grace = Duration::from_secs(600);
        let young = Duration::from_millis(5);
        let not_here = |state, age| fate(Some(state), age, grace, Some(true), false);
        // Queued alongside the store: never dropped as moot meanwhile.
        assert_eq!(not_here(ChunkState::Unknown, young), Fate::Wait);
        assert_eq!(not_here(ChunkState::Referenced, young), Fate::Wait);
        assert!(matches!(
            not_here(ChunkState::Referenced, NOT_STORED_WAIT),
            Fate::Drop(_)
        ));
        // Garbage is dropped whether or not it is here.
        assert!(matches!(
            not_here(ChunkState::Unreferenced { since_ns: 0 }, young),
            Fate::Drop(_)
        ));
    }
}
