//! Keeping a metadata node whose disk is nearly full useful. Below its
//! free-space reserve the leader refuses the writes that add to the
//! namespace with a clear "no space" (`ENOSPC` on a mount), before they
//! reach the Raft log; reads, removals (which free space on the chunkservers
//! and, once compacted, here) and the cluster's own bookkeeping go on, out
//! of the reserve. Refusing early is what keeps the node serving: a log
//! append that hit a full disk would stop its Raft group member.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::disk_space::disk_space;

use crate::command::Command;

/// How long one look at the disk's free space is trusted.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// The default reserve: 64 MiB, or an eighth of a smaller disk.
pub fn default_reserve(disk_total: u64) -> u64 {
    (64u64 << 20).min(disk_total / 8)
}

/// Whether `cmd` is refused while the disk is below its reserve: what a
/// client adds to the namespace is; removals and the cluster's own records
/// (chunkserver registry, garbage purges, sessions of those) are not.
pub fn refused_when_low(cmd: &Command) -> bool {
    use Command as C;
    match cmd {
        C::Unlink { .. }
        | C::Rmdir { .. }
        | C::RemoveXattr { .. }
        | C::RegisterChunkServer { .. }
        | C::RemoveChunkServer { .. }
        | C::SetChunkServerDown { .. }
        | C::SetChunkServerFull { .. }
        | C::DrainChunkServer { .. }
        | C::SetReplication { .. }
        | C::PurgeGarbage { .. } => false,
        C::Once { cmd, .. } => refused_when_low(cmd),
        C::Batch(cmds) => cmds.iter().any(refused_when_low),
        _ => true,
    }
}

/// Watches the free space under a metadata node's data directory.
pub struct SpaceGuard {
    dir: PathBuf,
    /// Configured reserve; `None`: [`default_reserve`] of the disk.
    min_free: Option<u64>,
    /// The last look: when, and the free bytes if below the reserve.
    last: Mutex<Option<(Instant, Option<u64>)>>,
}

impl SpaceGuard {
    pub fn new(dir: PathBuf, min_free: Option<u64>) -> Self {
        SpaceGuard {
            dir,
            min_free,
            last: Mutex::new(None),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::InodeId;

    #[test]
    fn growth_is_refused_and_removal_is_not() {
        let mkdir = Command::Mkdir {
            parent: InodeId(1),
            name: "d".into(),
            owner: cairn_proto::inode::Owner {
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            now_ns: 0,
        };
        let rmdir = Command::Rmdir {
            parent: InodeId(1),
            name: "d".into(),
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
