//! Which peers to ask last, and how long to wait between attempts: pure
//! bookkeeping with the clock passed in, shared by the metadata caller
//! (nodes that failed at the network level) and the client's chunk reads
//! (chunkservers that failed), and tested here without a network or a
//! real clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Addresses that failed lately, each until a moment: callers ask them
/// last (and the metadata caller does not follow redirects to them) until
/// then, or until one answers again.
#[derive(Debug, Default)]
pub struct AvoidList {
    until: HashMap<String, Instant>,
}

impl AvoidList {
    /// `addr` failed at `now`: avoid it for `period`.
    pub fn mark(&mut self, addr: &str, now: Instant, period: Duration) {
        self.until.insert(addr.to_string(), now + period);
    }

    /// `addr` answered: stop avoiding it.
    pub fn clear(&mut self, addr: &str) {
        self.until.remove(addr);
    }

    /// Whether `addr` is avoided at `now`.
    pub fn avoids(&self, addr: &str, now: Instant) -> bool {
        self.until.get(addr).is_some_and(|t| *t > now)
    }

    /// The addresses avoided at `now`; forgets the ones whose period ended.
    pub fn current(&mut self, now: Instant) -> Vec<String> {
        self.until.retain(|_, t| *t > now);
        self.until.keys().cloned().collect()
    }

    /// `items` with the avoided ones (by `addr`) moved to the end, order
    /// otherwise kept.
    pub fn order<T>(&self, items: Vec<T>, addr: impl Fn(&T) -> &str, now: Instant) -> Vec<T> {
        let (bad, mut good): (Vec<T>, Vec<T>) =
            items.into_iter().partition(|i| self.avoids(addr(i), now));
        good.extend(bad);
        good
    }
}

/// Exponential back-off between attempts: `first`, doubling, at most
/// `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff { next: first, max }
    }

    /// How long to wait now; the wait after it doubles (up to the most).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avoided_address_goes_last_until_its_period_ends_or_it_answers() {
        let t0 = Instant::now();
        let mut list = AvoidList::default();
        list.mark("b", t0, Duration::from_secs(2));
        let addrs = vec!["a", "b", "c"];
        let at = |t| list.order(addrs.clone(), |a| a, t);
        assert_eq!(at(t0), ["a", "c", "b"]);
        assert_eq!(at(t0 + Duration::from_secs(1)), ["a", "c", "b"]);
        assert_eq!(at(t0 + Duration::from_secs(2)), ["a", "b", "c"]);
        assert_eq!(list.current(t0 + Duration::from_secs(1)), ["b"]);
        assert!(list.current(t0 + Duration::from_secs(3)).is_empty());
        list.mark("c", t0, Duration::from_secs(2));
        list.clear("c");
        assert!(!list.avoids("c", t0));
    }

    #[test]
    fn backoff_doubles_up_to_its_most() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(300));
        let waits: Vec<u128> = (0..5).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 300, 300]);
    }
}
