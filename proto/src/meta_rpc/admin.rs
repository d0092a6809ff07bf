//! Cluster administration: only from an admin certificate. Each answers
//! nothing but success (`MetaResponse::Admin`) or an error.

use serde::{Deserialize, Serialize};

use crate::cluster_map::ReplicationPolicy;
use crate::NodeId;

/// A change to the cluster rather than the namespace.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Sets the cluster's replication policy.
    SetReplication { policy: ReplicationPolicy },
    /// Starts (`drain: true`) or cancels emptying chunkserver `id`.
    DrainChunkServer { id: NodeId, drain: bool },
    /// Takes chunkserver `id` out of the ring. Refused while it is up:
    /// drain it, stop it, then remove it.
    RemoveChunkServer { id: NodeId },
    /// Adds metadata node `id` (reachable at `addr`, running with
    /// `join = true`) to the group as a learner: it receives the log (or a
    /// snapshot) but does not vote yet.
    AddMetaNode { id: NodeId, addr: String },
    /// Makes learner `id` a voter; refused while it is more than
    /// `MAX_PROMOTE_LAG` entries behind.
    PromoteMetaNode { id: NodeId },
    /// Takes metadata node `id` out of the group (voter or learner).
    RemoveMetaNode { id: NodeId },
}

impl AdminRequest {
    pub fn op_name(&self) -> &'static str {
        match self {
            AdminRequest::SetReplication { .. } => "SetReplication",
            AdminRequest::DrainChunkServer { .. } => "DrainChunkServer",
            AdminRequest::RemoveChunkServer { .. } => "RemoveChunkServer",
            AdminRequest::AddMetaNode { .. } => "AddMetaNode",
            AdminRequest::PromoteMetaNode { .. } => "PromoteMetaNode",
            AdminRequest::RemoveMetaNode { .. } => "RemoveMetaNode",
        }
    }
}
