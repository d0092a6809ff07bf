//! A byte-rate limit for background work: after each transfer, how long to
//! pause so the average stays at or below the configured rate. Pure logic;
//! the caller owns the clock and the sleeping.

use std::time::{Duration, Instant};

/// How far behind schedule the pacer may fall before it forgets the past:
/// an idle spell does not earn a burst larger than this much of the rate.
const MAX_CREDIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Pacer {
    /// Zero means unlimited.
    bytes_per_sec: u64,
    since: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new(bytes_per_sec: u64, now: Instant) -> Self {
        Pacer {
            bytes_per_sec,
            since: now,
            sent: 0,
        }
    }

    /// Records `bytes` sent at `now`; returns how long to wait before the
    /// next transfer.
    pub fn record(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.since);
        let due_before = Duration::from_secs_f64(self.sent as f64 / self.bytes_per_sec as f64);
        if elapsed > due_before + MAX_CREDIT {
            // Idle for a while: start a fresh window.
            self.since = now;
            self.sent = 0;
        }
        self.sent += bytes;
        let due = Duration::from_secs_f64(self.sent as f64 / self.bytes_per_sec as f64);
        due.saturating_sub(now.saturating_duration_since(self.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn unlimited_never_waits() {
        let t = Instant::now();
        let mut p = Pacer::new(0, t);
        assert_eq!(p.record(u64::MAX / 2, t), Duration::ZERO);
    }

    #[test]
    fn waits_so_the_average_stays_at_the_rate() {
        let t = Instant::now();
        let mut p = Pacer::new(10 * MIB, t);
        // 5 MiB at once: half a second of budget.
        assert_eq!(p.record(5 * MIB, t), Duration::from_millis(500));
        // Having waited, the next 5 MiB cost another half second.
        let t1 = t + Duration::from_millis(500);
        assert_eq!(p.record(5 * MIB, t1), Duration::from_millis(500));
        // Sending slower than the rate never waits.
        let t2 = t + Duration::from_millis(1500);
        assert_eq!(p.record(MIB, t2), Duration::ZERO);
    }

    #[test]
    fn idle_time_earns_at_most_a_second_of_burst() {
        let t = Instant::now();
        let mut p = Pacer::new(10 * MIB, t);
        p.record(MIB, t);
        // An hour later, 30 MiB at once must still wait ~3 s, not zero.
        let later = t + Duration::from_secs(3600);
        let wait = p.record(30 * MIB, later);
        assert_eq!(wait, Duration::from_secs(3));
    }
}
