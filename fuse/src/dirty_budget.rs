//! How many buffered (dirty) bytes a mount holds, and when a file must
//! flush: once it alone holds `file_limit` bytes, or all open files
//! together `total_limit` (`cairn mount --write-buffer-mib` and four
//! times that).
//!
//! Each open file holds a [`DirtyCharge`]: it says how many dirty bytes
//! the file has now, and the budget moves by the difference. The charge
//! gives its bytes back when it is dropped, so a file closed after a
//! failed last flush (its bytes still buffered, then discarded) leaves
//! nothing counted behind, and no sequence of writes, flushes, failed
//! flushes and truncates can make the total drift from the sum of what
//! the files hold.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct DirtyBudget {
    total: AtomicUsize,
    file_limit: usize,
    total_limit: usize,
}

impl DirtyBudget {
    pub fn new(file_limit: usize, total_limit: usize) -> Arc<Self> {
        Arc::new(DirtyBudget {
            total: AtomicUsize::new(0),
            file_limit,
            total_limit,
        })
    }

    /// Dirty bytes over every open file.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// A charge of nothing yet, for one file.
    pub fn charge(self: &Arc<Self>) -> DirtyCharge {
        DirtyCharge {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// One file's share of the budget.
pub struct DirtyCharge {
    budget: Arc<DirtyBudget>,
    held: usize,
}

impl DirtyCharge {
    /// Records that the file now holds `bytes` dirty bytes; answers
    /// whether it should flush (it, or all files together, reached the
    /// limit).
    pub fn set(&mut self, bytes: usize) -> bool {
        let total = if bytes >= self.held {
            let more = bytes - self.held;
            self.budget.total.fetch_add(more, Ordering::Relaxed) + more
        } else {
            let less = self.held - bytes;
            self.budget.total.fetch_sub(less, Ordering::Relaxed) - less
        };
        self.held = bytes;
        bytes >= self.budget.file_limit || total >= self.budget.total_limit
    }
}

impl Drop for DirtyCharge {
    fn drop(&mut self) {
        self.budget.total.fetch_sub(self.held, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_file_or_all_files_together_reach_the_limit() {
        let budget = DirtyBudget::new(10, 25);
        let (mut a, mut b, mut c) = (budget.charge(), budget.charge(), budget.charge());
        assert!(!a.set(9));
        assert!(a.set(10), "one file at its own limit");
        assert!(!a.set(9));
        assert!(!b.set(9));
        assert!(c.set(7), "together at the total limit");
        assert_eq!(budget.total(), 25);
        assert!(!c.set(0));
        assert_eq!(budget.total(), 18);
    }

    #[test]
    fn a_dropped_charge_gives_its_bytes_back() {
        let budget = DirtyBudget::new(1 << 20, 4 << 20);
        {
            // A file whose last flush failed: its bytes are still charged
            // when it is closed and forgotten.
            let mut lost = budget.charge();
            lost.set(3 << 20);
            assert_eq!(budget.total(), 3 << 20);
        }
        assert_eq!(budget.total(), 0);
        let mut next = budget.charge();
        assert!(
            !next.set(1000),
            "a small write flushes at once after a leak"
        );
    }

    proptest! {
        /// Whatever files do, the total is what they hold together, and
        /// nothing once they are gone.
        #[test]
        fn the_total_is_the_sum_of_the_charges(
            steps in proptest::collection::vec((0usize..4, 0usize..5_000), 0..200)
        ) {
            let budget = DirtyBudget::new(1_000, 4_000);
            let mut files: Vec<Option<DirtyCharge>> = (0..4).map(|_| None).collect();
            let mut held = [0usize; 4];
            for (f, bytes) in steps {
                if bytes % 7 == 0 {
                    files[f] = None; // closed
                    held[f] = 0;
                    continue;
                }
                let charge = files[f].get_or_insert_with(|| budget.charge());
                let due = charge.set(bytes);
                held[f] = bytes;
                let sum: usize = held.iter().sum();
                prop_assert_eq!(budget.total(), sum);
                prop_assert_eq!(due, bytes >= 1_000 || sum >= 4_000);
            }
            drop(files);
            prop_assert_eq!(budget.total(), 0);
        }
    }
}
