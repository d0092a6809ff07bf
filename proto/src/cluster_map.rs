//! The cluster's placement state as metadata replicates it: the
//! chunkservers on the ring, the replication policy and the ring's epoch.
//! Pure data; [`crate::ring`] computes placement from it.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A chunkserver as the placement ring sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RingMember {
    pub id: NodeId,
    /// `host:port` of its QUIC endpoint.
    pub addr: String,
    pub zone: String,
    /// Virtual nodes on the ring (proportional to capacity).
    pub weight: u32,
    /// Missed heartbeats: still an owner (a short outage moves no data),
    /// but new writes go to the next server and reads try it last.
    pub down: bool,
    /// Being emptied by an operator: owns nothing (repair moves its chunks
    /// to the owners), still serves reads until it is removed.
    pub draining: bool,
    /// Its disk is (nearly) full, as its heartbeats say: still an owner
    /// and read as usual, but new writes and repair copies go elsewhere.
    pub full: bool,
}

impl RingMember {
    /// Up and with room: new copies may be written to it.
    pub fn takes_writes(&self) -> bool {
        !self.down && !self.full
    }
}

/// How many copies of each chunk the cluster keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReplicationPolicy {
    /// N: copies in all (owners 1..=N of a chunk).
    pub copies: u8,
    /// S: copies written synchronously (primary + S-1 backups) before a
    /// put is acknowledged; the other N-S are pushed in the background.
    pub sync_copies: u8,
}

impl Default for ReplicationPolicy {
    fn default() -> Self {
        ReplicationPolicy {
            copies: 3,
            sync_copies: 2,
        }
    }
}

impl ReplicationPolicy {
    /// Most copies a cluster may ask for.
    pub const MAX_COPIES: u8 = 8;

    pub fn validate(&self) -> Result<(), String> {
        if self.copies == 0 || self.copies > Self::MAX_COPIES {
            return Err(format!(
                "copies must be 1..={}, not {}",
                Self::MAX_COPIES,
                self.copies
            ));
        }
        if self.sync_copies == 0 || self.sync_copies > self.copies {
            return Err(format!(
                "sync copies must be 1..={} (the number of copies), not {}",
                self.copies, self.sync_copies
            ));
        }
        Ok(())
    }
}

/// The placement ring at one epoch.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RingState {
    pub epoch: u64,
    pub members: Vec<RingMember>,
    pub policy: ReplicationPolicy,
    /// The garbage-collection grace period: an unreferenced chunk is
    /// deleted once it has been unreferenced (or stored unreferenced) this
    /// long. A client commits the chunks it stored within half of it, or
    /// gives up (0: not announced).
    pub gc_grace_ms: u64,
}
