//! Cluster administration through the client: the status, draining and
//! removing chunkservers, metadata membership, the replication policy.
//! Each but the status needs an admin certificate (the metadata group
//! refuses it otherwise).

use cairn_proto::meta_rpc::{
    AdminRequest, ClusterQuery, ClusterReply, ClusterStatus, ReplicationPolicy,
};
use cairn_proto::ErrorCode;

use super::{refused, unexpected, Client};
use crate::error::ClientError;

impl Client {
    /// The cluster's health as the metadata leader sees it (`cairn status`).
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        match self.cluster(ClusterQuery::Status).await? {
            ClusterReply::Status(s) => Ok(s),
            r => Err(unexpected(r)),
        }
    }

    /// Takes chunkserver `id` out of the placement ring; repair re-creates
    /// its copies on the remaining servers.
    pub async fn remove_chunkserver(&self, id: u64) -> Result<(), ClientError> {
        self.admin(AdminRequest::RemoveChunkServer { id }).await?;
        self.refresh_ring().await
    }

    /// Starts (`drain: true`) or cancels emptying chunkserver `id`: while
    /// draining it owns no chunks and repair moves its copies away.
    pub async fn drain_chunkserver(&self, id: u64, drain: bool) -> Result<(), ClientError> {
        self.admin(AdminRequest::DrainChunkServer { id, drain })
            .await?;
        self.refresh_ring().await
    }

    /// Adds metadata node `id` (started with `join = true`, reachable at
    /// `addr`) to the Raft group as a learner.
    pub async fn add_meta_node(&self, id: u64, addr: &str) -> Result<(), ClientError> {
        self.admin(AdminRequest::AddMetaNode {
            id,
            addr: addr.to_string(),
        })
        .await
    }

    /// Makes learner `id` a voter; refused (FailedPrecondition) while it
    /// is still catching up.
    pub async fn promote_meta_node(&self, id: u64) -> Result<(), ClientError> {
        self.admin(AdminRequest::PromoteMetaNode { id }).await
    }

    /// Takes metadata node `id` out of the Raft group.
    pub async fn remove_meta_node(&self, id: u64) -> Result<(), ClientError> {
        self.admin(AdminRequest::RemoveMetaNode { id }).await
    }

    /// Sets the cluster's replication policy (chunks written from now on).
    pub async fn set_replication(&self, policy: ReplicationPolicy) -> Result<(), ClientError> {
        policy
            .validate()
            .map_err(|m| refused(ErrorCode::InvalidRequest, m))?;
        self.admin(AdminRequest::SetReplication { policy }).await?;
        self.refresh_ring().await
    }
}
