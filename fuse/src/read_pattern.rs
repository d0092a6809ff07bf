//! Whether a file is being read sequentially: a sequential reader gets
//! whole chunks through the cache and read-ahead, a random one only the
//! verified slices it asks for.
//!
//! Kernel read-ahead sends several reads at once, not always in order, so
//! "sequential" means near where the last read ended, not exactly there.
//! One such read is chance (a random reader lands near its last read now
//! and then); a run of [`SEQUENTIAL_RUN`] is a scan.

/// How far from the previous read's end a read may start and still count
/// as part of a sequential scan.
pub const SEQUENTIAL_SLACK: u64 = 2 << 20;
/// Near reads in a row that make a reader sequential.
pub const SEQUENTIAL_RUN: u32 = 3;

#[derive(Clone, Copy, Debug, Default)]
pub struct ReadPattern {
    /// Where the last read ended.
    last_end: u64,
    /// Reads in a row that each started near where the one before ended.
    run: u32,
}

impl ReadPattern {
    /// Records a read of `len` bytes at `offset`; answers whether the
    /// reader is now sequential.
    pub fn observe(&mut self, offset: u64, len: u64) -> bool {
        if offset.abs_diff(self.last_end) <= SEQUENTIAL_SLACK {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 0;
        }
        self.last_end = offset.saturating_add(len);
        self.run >= SEQUENTIAL_RUN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_near_reads_is_a_scan_and_a_jump_ends_it() {
        let mut p = ReadPattern::default();
        let mib = 1 << 20;
        assert!(!p.observe(0, mib));
        assert!(!p.observe(mib, mib));
        assert!(p.observe(2 * mib, mib), "third near read in a row");
        // Out of order within the slack (kernel read-ahead) still counts.
        assert!(p.observe(3 * mib + 64 * 1024, mib));
        assert!(p.observe(3 * mib, mib));
        // A jump far away is random again, and it takes a new run of
        // near reads after it.
        assert!(!p.observe(900 * mib, 4096));
        assert!(!p.observe(900 * mib + 4096, 4096));
        assert!(!p.observe(900 * mib + 8192, 4096));
        assert!(p.observe(900 * mib + 12288, 4096));
    }

    #[test]
    fn random_reads_that_land_near_once_stay_random() {
        let mut p = ReadPattern::default();
        let at = [40u64 << 20, 7 << 20, (7 << 20) + 100, 300 << 20, 12 << 20];
        for &offset in &at {
            assert!(!p.observe(offset, 4096), "read at {offset}");
        }
    }
}
