//! What `cairn status` shows and chunkservers report in heartbeats: the
//! cluster's health as the metadata leader sees it, and the progress of
//! each chunkserver's background loops (repair, garbage collection,
//! scrubbing). Re-exported from [`crate::meta_rpc`], whose messages carry
//! them.

use serde::{Deserialize, Serialize};

use crate::cluster_map::ReplicationPolicy;
use crate::NodeId;

/// One chunkserver as `cairn status` shows it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChunkServerStatus {
    pub id: NodeId,
    pub addr: String,
    pub zone: String,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    /// Bytes it may still store, as of its last heartbeat.
    pub available_bytes: u64,
    pub chunks: u64,
    /// Milliseconds since its last heartbeat reached the leader, if any did.
    pub last_heartbeat_ms: Option<u64>,
    /// Heard from within the down timeout.
    pub up: bool,
    /// Marked down in the ring (writes skip it, reads try it last).
    pub down: bool,
    pub draining: bool,
    /// Below its free-space reserve: new writes go elsewhere.
    pub full: bool,
    /// Chunks with fewer than N confirmed copies that this server is
    /// responsible for repairing, as of its last repair pass.
    pub under_replicated: u64,
    /// Its scrubber's progress, as of its last heartbeat.
    pub scrub: ScrubReport,
    /// Its repair loop's and garbage collector's, likewise.
    pub repair: RepairReport,
    pub gc: GcTotals,
}

/// What a chunkserver's scrubber has done since it started.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ScrubReport {
    /// Full passes over the store finished.
    pub passes: u64,
    /// Chunks and bytes re-hashed.
    pub chunks: u64,
    pub bytes: u64,
    /// Copies found corrupt and quarantined (repair replaces them).
    pub corrupt: u64,
}

/// What a chunkserver's repair loop has done since it started.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RepairReport {
    pub passes: u64,
    /// Copies pushed to owners that lacked them.
    pub pushed: u64,
    /// Local copies dropped once every owner held the chunk.
    pub dropped: u64,
    pub failed: u64,
}

/// What a chunkserver's garbage collector has deleted since it started.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct GcTotals {
    pub passes: u64,
    pub chunks: u64,
    pub bytes: u64,
}

/// One metadata node as `cairn status` shows it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MetaNodeStatus {
    pub id: NodeId,
    pub addr: String,
    /// Votes (a learner only receives the log).
    pub voter: bool,
    /// The last log index known to be on this node (the leader's own last
    /// log index for the leader); `None` when the answering node is not the
    /// leader or has not heard from it.
    pub matched_index: Option<u64>,
    /// Entries it is behind the leader's log.
    pub lag: Option<u64>,
}

/// Cluster health, as the answering metadata node sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_applied: u64,
    pub meta_nodes: Vec<MetaNodeStatus>,
    pub ring_epoch: u64,
    pub policy: ReplicationPolicy,
    pub chunkservers: Vec<ChunkServerStatus>,
    pub files: u64,
    pub directories: u64,
    pub chunks_referenced: u64,
    /// Sum of the chunkservers' under-replicated counts (a chunk no owner
    /// holds may be counted by each server holding it).
    pub under_replicated: u64,
}
