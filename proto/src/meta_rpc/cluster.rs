//! The cluster's own calls: what any role may ask of the registry (the
//! ring, the status, what metadata knows of chunks), and what a
//! chunkserver reports of itself (registration, heartbeats).

use serde::{Deserialize, Serialize};

use crate::cluster_map::RingState;
use crate::gc_rule::ChunkState;
use crate::status::{ClusterStatus, GcTotals, RepairReport, ScrubReport};
use crate::{ChunkId, NodeId};

/// A read of the cluster's state. Open to every role.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClusterQuery {
    /// The placement ring; may be answered by a follower.
    GetRing,
    /// The cluster's health as the leader sees it (answered by any node
    /// when there is no leader, so that status still says so).
    Status,
    /// Which of these chunks (at most `MAX_EXIST_QUERY`) are referenced by
    /// a committed file.
    ChunksExist { ids: Vec<ChunkId> },
    /// What metadata knows of each of these chunks (at most
    /// `MAX_EXIST_QUERY`), for garbage collection; always linearizable.
    ChunkStates { ids: Vec<ChunkId> },
}

impl ClusterQuery {
    pub fn op_name(&self) -> &'static str {
        match self {
            ClusterQuery::GetRing => "GetRing",
            ClusterQuery::Status => "Status",
            ClusterQuery::ChunksExist { .. } => "ChunksExist",
            ClusterQuery::ChunkStates { .. } => "ChunkStates",
        }
    }
}

/// What a [`ClusterQuery`] answers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClusterReply {
    Ring(RingState),
    Status(ClusterStatus),
    /// `ChunksExist`: one flag per id asked.
    Exist(Vec<bool>),
    /// `ChunkStates`: one state per id asked, the leader's clock when it
    /// read them, and the cluster's grace period.
    ChunkStates {
        states: Vec<ChunkState>,
        now_ns: i64,
        gc_grace_ms: u64,
    },
}

/// What a chunkserver reports of itself. Only from a chunkserver, and
/// only as the one its certificate names.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChunkServerReport {
    /// A chunkserver joins (or re-joins with a new address or capacity).
    Register {
        id: NodeId,
        addr: String,
        zone: String,
        capacity_bytes: u64,
    },
    /// A chunkserver reports it is alive.
    Heartbeat {
        id: NodeId,
        capacity_bytes: u64,
        used_bytes: u64,
        /// Bytes it may still store (free space on its disk, within its
        /// configured capacity).
        available_bytes: u64,
        /// Below its free-space reserve: writes should go elsewhere.
        full: bool,
        chunks: u64,
        /// Chunks its last repair pass found short of N copies.
        under_replicated: u64,
        scrub: ScrubReport,
        repair: RepairReport,
        gc: GcTotals,
    },
}

impl ChunkServerReport {
    pub fn op_name(&self) -> &'static str {
        match self {
            ChunkServerReport::Register { .. } => "RegisterChunkServer",
            ChunkServerReport::Heartbeat { .. } => "Heartbeat",
        }
    }

    /// The chunkserver the report speaks for.
    pub fn id(&self) -> NodeId {
        match self {
            ChunkServerReport::Register { id, .. } | ChunkServerReport::Heartbeat { id, .. } => *id,
        }
    }
}

/// What a [`ChunkServerReport`] answers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChunkServerReply {
    Registered,
    /// A heartbeat was recorded; the ring's current epoch.
    Beat {
        ring_epoch: u64,
    },
}
