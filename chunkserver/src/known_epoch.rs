//! The newest placement-ring epoch this server has heard of: raised by
//! heartbeat answers and by peers' requests, read by the service (passed
//! on in every reply, so clients holding an older ring refresh it) and by
//! repair (a pass planned under an older epoch drops nothing).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct KnownEpoch(AtomicU64);

impl KnownEpoch {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Records `epoch` if it is newer than what is known.
    pub fn observe(&self, epoch: u64) {
        self.0.fetch_max(epoch, Ordering::Relaxed);
    }
}
