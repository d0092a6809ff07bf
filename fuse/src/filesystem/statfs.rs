//! statfs as a user sees it: the cluster's capacity and use divided by the
//! number of copies (every byte is stored N times), cached for
//! [`STATFS_TTL`] as `df` and shells ask often.

use std::time::{Duration, Instant};

use fuser::Errno;

use super::{lock, Shared};
use crate::errno::OrErrno;

/// How long cached statfs numbers are reused.
const STATFS_TTL: Duration = Duration::from_secs(2);
/// Block size statfs reports in.
pub(super) const STATFS_BLOCK: u64 = 4096;

impl Shared {
    pub(super) async fn statfs(&self) -> Result<[u64; 4], Errno> {
        if let Some((at, v)) = *lock(&self.statfs) {
            if at.elapsed() < STATFS_TTL {
                return Ok(v);
            }
        }
        let s = self.io.client.status().await.or_errno()?;
        let capacity: u64 = s.chunkservers.iter().map(|c| c.capacity_bytes).sum();
        let used: u64 = s.chunkservers.iter().map(|c| c.used_bytes).sum();
        let copies = u64::from(s.policy.copies.max(1));
        // Space as a user sees it: every byte is stored N times.
        let blocks = capacity / copies / STATFS_BLOCK;
        let free = capacity.saturating_sub(used) / copies / STATFS_BLOCK;
        let files = s.files + s.directories;
        let v = [
            blocks,
            free,
            files,
            u64::from(u32::MAX).saturating_sub(files),
        ];
        *lock(&self.statfs) = Some((Instant::now(), v));
        Ok(v)
    }
}
