//! Keeping a metadata node whose disk is nearly full useful. Below its
//! free-space reserve the leader refuses the writes that add to the
//! namespace with a clear "no space" (`ENOSPC` on a mount), before they
//! reach the Raft log; reads, removals (which free space on the chunkservers
//! and, once compacted, here) and the cluster's own bookkeeping go on, out
//! of the reserve. Refusing early is what keeps the node serving: a log
//! append that hit a full disk would stop its Raft group member.
//!
//! Every member's disk counts, not only the leader's: the leader asks the
//! others every second (`peer_space.rs`) and refuses growth while any of
//! them is low, as etcd's NOSPACE alarm does — a follower whose append
//! failed for want of space would stop too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::disk_space::disk_space;
use cairn_proto::meta_rpc::NsWrite;
use cairn_proto::NodeId;

use crate::command::Command;

/// How long one look at the disk's free space is trusted.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// How long a member's "low" answer counts without being renewed (a member
/// that stops answering is not held against the group for ever).
pub const PEER_LOW_TRUSTED_FOR: Duration = Duration::from_secs(5);

/// The default reserve: 64 MiB, or an eighth of a smaller disk.
pub fn default_reserve(disk_total: u64) -> u64 {
    (64u64 << 20).min(disk_total / 8)
}

/// Whether `cmd` is refused while the disk is below its reserve: what a
/// client adds to the namespace is; removals and the cluster's own records
/// (chunkserver registry, garbage purges, sessions of those) are not.
pub fn refused_when_low(cmd: &Command) -> bool {
    match cmd {
        Command::Ns { write, .. } => !matches!(
            write,
            NsWrite::Unlink { .. } | NsWrite::Rmdir { .. } | NsWrite::RemoveXattr { .. }
        ),
        Command::Registry(_) | Command::PurgeGarbage { .. } => false,
        Command::Once { cmd, .. } => refused_when_low(cmd),
        Command::Batch(cmds) => cmds.iter().any(refused_when_low),
    }
}

/// Watches the free space under a metadata node's data directory.
pub struct SpaceGuard {
    dir: PathBuf,
    /// Configured reserve; `None`: [`default_reserve`] of the disk.
    min_free: Option<u64>,
    /// The last look: when, and the free bytes if below the reserve.
    last: Mutex<Option<(Instant, Option<u64>)>>,
    /// Other members that last said they were below their reserve: when,
    /// and their free bytes.
    peers_low: Mutex<BTreeMap<NodeId, (Instant, u64)>>,
}

impl SpaceGuard {
    pub fn new(dir: PathBuf, min_free: Option<u64>) -> Self {
        SpaceGuard {
            dir,
            min_free,
            last: Mutex::new(None),
            peers_low: Mutex::new(BTreeMap::new()),
        }
    }

    /// The free bytes, if they are below the reserve (looked up at most
    /// every [`RECHECK_EVERY`]).
    pub fn low(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, low)) = *last {
            if at.elapsed() < RECHECK_EVERY {
                return low;
            }
        }
        let low = disk_space(&self.dir).and_then(|(total, free)| {
            let reserve = self.min_free.unwrap_or_else(|| default_reserve(total));
            (free < reserve).then_some(free)
        });
        *last = Some((Instant::now(), low));
        low
    }

    /// Records member `id`'s answer: its free bytes if below its reserve.
    pub fn record_peer(&self, id: NodeId, low: Option<u64>, now: Instant) {
        let mut peers = self.peers_low.lock().unwrap_or_else(|p| p.into_inner());
        match low {
            Some(free) => {
                peers.insert(id, (now, free));
            }
            None => {
                peers.remove(&id);
            }
        }
    }

    /// Forgets every member's answer (this node is no longer the leader).
    pub fn clear_peers(&self) {
        self.peers_low
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// A member that said, within [`PEER_LOW_TRUSTED_FOR`], that it was
    /// below its reserve: its id and free bytes.
    pub fn low_peer(&self, now: Instant) -> Option<(NodeId, u64)> {
        let peers = self.peers_low.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .iter()
            .find(|(_, (at, _))| now.saturating_duration_since(*at) < PEER_LOW_TRUSTED_FOR)
            .map(|(id, (_, free))| (*id, *free))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::InodeId;

    #[test]
    fn a_low_member_counts_until_it_says_otherwise_or_falls_silent() {
        let guard = SpaceGuard::new(PathBuf::from("/nonexistent"), None);
        let t0 = Instant::now();
        assert_eq!(guard.low_peer(t0), None);
        guard.record_peer(2, Some(1_000), t0);
        guard.record_peer(3, None, t0);
        assert_eq!(
            guard.low_peer(t0 + Duration::from_secs(1)),
            Some((2, 1_000))
        );
        // Silent for longer than it is trusted: no longer held against us.
        assert_eq!(guard.low_peer(t0 + PEER_LOW_TRUSTED_FOR), None);
        guard.record_peer(2, Some(500), t0);
        guard.record_peer(2, None, t0);
        assert_eq!(guard.low_peer(t0), None);
        guard.record_peer(3, Some(7), t0);
        guard.clear_peers();
        assert_eq!(guard.low_peer(t0), None);
    }

    #[test]
    fn growth_is_refused_and_removal_is_not() {
        let mkdir = Command::mkdir_in_root("d");
        let rmdir = Command::Ns {
            write: NsWrite::Rmdir {
                parent: InodeId(1),
                name: "d".into(),
            },
            now_ns: 0,
        };
        assert!(refused_when_low(&mkdir));
        assert!(!refused_when_low(&rmdir));
        assert!(!refused_when_low(&Command::PurgeGarbage {
            ids: vec![],
            older_than_ns: 0
        }));
        assert!(refused_when_low(&Command::Batch(vec![
            rmdir.clone(),
            mkdir.clone()
        ])));
        assert!(!refused_when_low(&Command::Batch(vec![rmdir])));
    }

    #[test]
    fn a_reserve_larger_than_the_free_space_is_low() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SpaceGuard::new(dir.path().into(), Some(0)).low(), None);
        let low = SpaceGuard::new(dir.path().into(), Some(u64::MAX)).low();
        assert!(low.is_some(), "no disk has u64::MAX bytes free");
    }

    #[test]
    fn the_default_reserve_is_small_on_small_disks() {
        assert_eq!(default_reserve(100 << 30), 64 << 20);
        assert_eq!(default_reserve(64 << 20), 8 << 20);
    }
}
