//! Whether this chunkserver has room for new chunks: the rule behind the
//! `full` flag its heartbeats carry. Below its free-space reserve a server
//! says it is full, and the metadata group flags it in the ring so that new
//! writes and repair copies go elsewhere; it says it has room again only
//! once twice the reserve is free, so that a server near the line does not
//! flip at every heartbeat. What it stores stays readable either way.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Raised when a store fails for want of space: the next heartbeat, sent
/// at once, reports this server full whatever the free space looks like.
#[derive(Default)]
pub struct SpaceAlarm {
    raised: AtomicBool,
    wake: Notify,
}

impl SpaceAlarm {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Whether it was raised since the last call.
    pub fn take(&self) -> bool {
        self.raised.swap(false, Ordering::Relaxed)
    }

    /// Returns once it is raised.
    pub async fn raised(&self) {
        self.wake.notified().await
    }
}

/// Smallest default reserve on a disk large enough to keep it.
const MIN_RESERVE: u64 = 64 << 20;
/// Largest default reserve.
const MAX_RESERVE: u64 = 10 << 30;

/// The default free-space reserve on a disk of `capacity` bytes: 1%, at
/// least 64 MiB and at most 10 GiB, and never more than an eighth of a
/// small disk.
pub fn default_reserve(capacity: u64) -> u64 {
    (capacity / 100)
        .clamp(MIN_RESERVE, MAX_RESERVE)
        .min(capacity / 8)
}

/// Bytes this server may still store: what its disk has free and, when an
/// operator set a `capacity`, what is left of it after `used`.
pub fn available(disk_free: Option<u64>, capacity: Option<u64>, used: u64) -> u64 {
    let quota = capacity.map(|c| c.saturating_sub(used));
    match (disk_free, quota) {
        (Some(d), Some(q)) => d.min(q),
        (Some(d), None) => d,
        (None, Some(q)) => q,
        // Neither known: nothing to go by, so do not claim to be full.
        (None, None) => u64::MAX,
    }
}

/// Whether a server with `available` bytes and `reserve` is full, given
/// whether it `was_full` at its last judgement.
pub fn is_full(available: u64, reserve: u64, was_full: bool) -> bool {
    if was_full {
        available < reserve.saturating_mul(2)
    } else {
        available < reserve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn the_default_reserve_is_a_percent_within_bounds() {
        assert_eq!(default_reserve(100 * GIB), GIB);
        assert_eq!(default_reserve(2 * GIB), 64 * MIB);
        assert_eq!(default_reserve(100 * 1024 * GIB), 10 * GIB);
        // A small test disk keeps an eighth.
        assert_eq!(default_reserve(48 * MIB), 6 * MIB);
        assert_eq!(default_reserve(0), 0);
    }

    #[test]
    fn available_is_the_tighter_of_disk_and_quota() {
        assert_eq!(available(Some(10), Some(100), 95), 5);
        assert_eq!(available(Some(10), Some(100), 0), 10);
        assert_eq!(available(Some(10), None, 500), 10);
        assert_eq!(available(None, Some(100), 130), 0);
        assert_eq!(available(None, None, 7), u64::MAX);
    }

    #[test]
    fn full_below_the_reserve_and_roomy_again_at_twice_it() {
        let r = 100;
        assert!(!is_full(150, r, false));
        assert!(is_full(99, r, false));
        // Once full, freeing a little is not enough.
        assert!(is_full(150, r, true));
        assert!(!is_full(200, r, true));
    }
}
