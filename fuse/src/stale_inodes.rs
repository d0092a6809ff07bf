//! Which inodes' attributes this mount's own changes altered, and when,
//! so that a listing fetched before a change stops vouching for the
//! attributes that change touched and keeps vouching for the rest.
//!
//! Time is a count of changes seen ([`StaleInodes::now`]); a listing
//! remembers the count it was fetched at. Pure bookkeeping.

use std::collections::HashMap;

use cairn_proto::InodeId;

/// Inodes remembered before the oldest marks are forgotten (and every
/// older listing is treated as wholly stale).
const MAX_MARKED: usize = 4096;

#[derive(Default)]
pub struct StaleInodes {
    /// Changes seen.
    seq: u64,
    /// The change after which each inode's attributes were last altered.
    at: HashMap<InodeId, u64>,
    /// Every attribute known before this change is stale (a change whose
    /// inodes could not be named, or forgotten marks).
    all_at: u64,
}

impl StaleInodes {
    /// The count a listing fetched now remembers.
    pub fn now(&self) -> u64 {
        self.seq
    }

    /// Records one change that altered `inos` (or, with `all`, possibly
    /// any inode). `oldest` is the count of the oldest listing still
    /// kept: marks older than it no longer matter.
    pub fn mark(&mut self, inos: &[InodeId], all: bool, oldest: u64) {
        self.seq += 1;
        if all {
            self.all_at = self.seq;
            self.at.clear();
            return;
        }
        for ino in inos {
            self.at.insert(*ino, self.seq);
        }
        if self.at.len() > MAX_MARKED {
            self.at.retain(|_, s| *s > oldest);
            if self.at.len() > MAX_MARKED {
                self.all_at = self.seq;
                self.at.clear();
            }
        }
    }

    /// True when `ino`'s attributes as known at count `since` may have
    /// been altered by a change since.
    pub fn changed_since(&self, ino: InodeId, since: u64) -> bool {
        self.all_at > since || self.at.get(&ino).is_some_and(|s| *s > since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_after_the_listing_is_stale() {
        let mut s = StaleInodes::default();
        s.mark(&[InodeId(1)], false, 0);
        let listed = s.now();
        assert!(!s.changed_since(InodeId(1), listed));
        s.mark(&[InodeId(2), InodeId(3)], false, listed);
        assert!(s.changed_since(InodeId(2), listed));
        assert!(s.changed_since(InodeId(3), listed));
        assert!(!s.changed_since(InodeId(1), listed));
        assert!(!s.changed_since(InodeId(4), listed));
        // A listing fetched after the change vouches for all again.
        assert!(!s.changed_since(InodeId(2), s.now()));
    }

    #[test]
    fn an_unnamed_change_stales_everything_before_it() {
        let mut s = StaleInodes::default();
        let listed = s.now();
        s.mark(&[], true, listed);
        assert!(s.changed_since(InodeId(9), listed));
        assert!(!s.changed_since(InodeId(9), s.now()));
    }

    #[test]
    fn marks_are_bounded_and_forgetting_errs_on_stale() {
        let mut s = StaleInodes::default();
        let listed = s.now();
        for i in 0..(MAX_MARKED as u64 + 10) {
            s.mark(&[InodeId(1000 + i)], false, listed);
        }
        assert!(s.at.len() <= MAX_MARKED);
        // The listing from before all those changes trusts nothing.
        assert!(s.changed_since(InodeId(1), listed));
        // Marks older than every kept listing are dropped first.
        let mut s = StaleInodes::default();
        for i in 0..(MAX_MARKED as u64 + 10) {
            let oldest = s.now();
            s.mark(&[InodeId(1000 + i)], false, oldest);
        }
        assert!(s.at.len() <= MAX_MARKED);
        assert!(!s.changed_since(InodeId(1), s.now() - 1));
    }
}
