//! What a chunkserver does with one chunk it stores, given the current
//! owners and which of them confirmed holding it. Pure logic; the repair
//! loop ([`crate::repair`]) gathers the inputs and carries out the result.
//!
//! Rules:
//! * Missing copies on owners are pushed by one server only: the first
//!   owner (in owner order) that holds the chunk — or, when no owner holds
//!   it, every non-owner that does (better twice than never).
//! * A server that is no longer an owner drops its copy only once *every*
//!   owner has confirmed holding it — first by a plain "have?", then, just
//!   before the delete, by re-hashing its copy under the same ring epoch
//!   the dropper planned with ([`may_drop`]); a ring that moved meanwhile
//!   drops nothing.
//! * Only chunks a file references are pushed
//!   ([`cairn_proto::gc_rule::repair_may_copy`]).
//! * An owner whose answer is unknown (unreachable) is neither pushed to nor
//!   counted as holding; the next pass tries again.
//! * The server that would push also counts the chunk as under-replicated
//!   while fewer than all owners are known to hold it, so each short chunk
//!   is counted once across the cluster (more than once only when no owner
//!   holds it and several non-owners do).

use cairn_proto::NodeId;

/// The decision for one local chunk.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Decision {
    /// Owners to send a copy to.
    pub push_to: Vec<NodeId>,
    /// Delete the local copy (this server is not an owner and every owner
    /// holds the chunk).
    pub drop_local: bool,
    /// Fewer than all owners are known to hold the chunk, and this server
    /// is the one repairing it.
    pub under_replicated: bool,
}

/// Decides for a chunk stored on `me`. `have[i]` is whether `owners[i]`
/// holds it (`None` if it could not be asked; ignored for `me`).
pub fn decide(me: NodeId, owners: &[NodeId], have: &[Option<bool>]) -> Decision {
    debug_assert_eq!(owners.len(), have.len());
    if owners.is_empty() {
        return Decision::default();
    }
    let holds = |i: usize| owners[i] == me || have[i] == Some(true);
    let i_am_owner = owners.contains(&me);
    let first_holder = (0..owners.len()).find(|&i| holds(i)).map(|i| owners[i]);
    let i_push = match first_holder {
        Some(h) => h == me,
        None => !i_am_owner,
    };
    let push_to = if i_push {
        (0..owners.len())
            .filter(|&i| owners[i] != me && have[i] == Some(false))
            .map(|i| owners[i])
            .collect()
    } else {
        Vec::new()
    };
    let all_confirmed = (0..owners.len()).all(|i| owners[i] != me && have[i] == Some(true));
    let held_by_all = (0..owners.len()).all(holds);
    Decision {
        push_to,
        drop_local: !i_am_owner && all_confirmed,
        under_replicated: i_push && !held_by_all,
    }
}

/// Whether a planned drop may go ahead: every owner confirmed holding a
/// copy it has just verified against the chunk id (`confirmed[i]` for
/// `owners[i]`; `None`: no answer or refused) on the epoch the plan was
/// made with (`planned_epoch`), and the ring is still on that epoch
/// (`epoch_now`, read after the confirmations).
pub fn may_drop(
    me: NodeId,
    owners: &[NodeId],
    confirmed: &[Option<bool>],
    planned_epoch: u64,
    epoch_now: u64,
) -> bool {
    debug_assert_eq!(owners.len(), confirmed.len());
    planned_epoch == epoch_now
        && !owners.is_empty()
        && !owners.contains(&me)
        && confirmed.iter().all(|c| *c == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_needs_every_owner_verified_on_an_unmoved_ring() {
        let owners = [1, 2, 3];
        let all = [Some(true); 3];
        assert!(may_drop(9, &owners, &all, 4, 4));
        // The ring moved between plan and delete.
        assert!(!may_drop(9, &owners, &all, 4, 5));
        // One owner's copy failed its hash (or it is on another epoch).
        assert!(!may_drop(
            9,
            &owners,
            &[Some(true), Some(false), Some(true)],
            4,
            4
        ));
        assert!(!may_drop(9, &owners, &[Some(true), None, Some(true)], 4, 4));
        // An owner never drops; nor does anyone with no owners.
        assert!(!may_drop(2, &owners, &all, 4, 4));
        assert!(!may_drop(9, &[], &[], 4, 4));
    }

    #[test]
    fn first_holding_owner_pushes_to_the_missing() {
        let d = decide(1, &[1, 2, 3], &[None, Some(false), Some(true)]);
        assert_eq!(
            d,
            Decision {
                push_to: vec![2],
                drop_local: false,
                under_replicated: true,
            }
        );
        // Owner 3 holds it too, but 1 comes first: 3 does nothing.
        let d = decide(3, &[1, 2, 3], &[Some(true), Some(false), None]);
        assert_eq!(d, Decision::default());
    }

    #[test]
    fn a_non_owner_keeps_its_copy_until_every_owner_confirms() {
        assert_eq!(
            decide(9, &[1, 2, 3], &[Some(true), Some(true), None]),
            Decision::default()
        );
        assert_eq!(
            decide(9, &[1, 2, 3], &[Some(true), Some(true), Some(true)]),
            Decision {
                push_to: vec![],
                drop_local: true,
                under_replicated: false,
            }
        );
    }

    #[test]
    fn the_last_copy_is_pushed_by_whoever_has_it() {
        // No owner holds it: the non-owner pushes to all that answered.
        let d = decide(9, &[1, 2, 3], &[Some(false), None, Some(false)]);
        assert_eq!(
            d,
            Decision {
                push_to: vec![1, 3],
                drop_local: false,
                under_replicated: true,
            }
        );
    }

    #[test]
    fn an_owner_never_drops() {
        let d = decide(2, &[1, 2, 3], &[Some(true), None, Some(true)]);
        assert!(!d.drop_local);
        assert!(d.push_to.is_empty());
    }

    #[test]
    fn only_the_repairing_server_counts_a_short_chunk() {
        // Owner 2 is down (unknown); 1 and 3 hold it: 1 counts it, 3 not.
        let have = [Some(true), None, Some(true)];
        assert!(decide(1, &[1, 2, 3], &have).under_replicated);
        assert!(!decide(3, &[1, 2, 3], &have).under_replicated);
        // Fully replicated: nobody counts it.
        let have = [Some(true), Some(true), Some(true)];
        assert!(!decide(1, &[1, 2, 3], &have).under_replicated);
    }

    #[test]
    fn unknown_answers_are_neither_pushed_nor_trusted() {
        let d = decide(1, &[1, 2], &[None, None]);
        assert_eq!(
            d,
            Decision {
                under_replicated: true,
                ..Decision::default()
            }
        );
        assert_eq!(decide(5, &[], &[]), Decision::default());
    }
}
