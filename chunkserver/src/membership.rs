//! Joining the cluster: register with the metadata group, then heartbeat
//! with capacity and load. Re-registers if the metadata group has forgotten
//! this server.

use std::sync::Arc;
use std::time::Duration;

use cairn_proto::leader::{MetaCallError, MetaCaller};
use cairn_proto::meta_rpc::MetaRequest;
use cairn_proto::ErrorCode;
use tokio_util::sync::CancellationToken;

use crate::config::ChunkServerConfig;
use crate::store::{disk_space, FileStore};

pub struct Membership {
    pub meta: Arc<MetaCaller>,
    pub config: ChunkServerConfig,
    pub store: FileStore,
}

impl Membership {
    fn capacity(&self) -> u64 {
        self.config
            .capacity_bytes
            .or_else(|| disk_space(self.store.root()).map(|(total, _)| total))
            .unwrap_or(0)
    }

    pub async fn register(&self) -> Result<(), MetaCallError> {
        self.meta
            .call(&MetaRequest::RegisterChunkServer {
                id: self.config.id,
                addr: self.config.advertise_addr(),
                zone: self.config.zone.clone(),
                capacity_bytes: self.capacity(),
            })
            .await?;
        tracing::info!(id = self.config.id, "registered with metadata");
        Ok(())
    }

    async fn heartbeat(&self) -> Result<(), MetaCallError> {
        let (chunks, used) = self.store.usage();
        self.meta
            .call(&MetaRequest::Heartbeat {
                id: self.config.id,
                capacity_bytes: self.capacity(),
                used_bytes: used,
                chunks,
            })
            .await
            .map(|_| ())
    }

    /// Registers (retrying until it succeeds) and heartbeats until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let period = Duration::from_millis(self.config.heartbeat_ms);
        let mut registered = false;
        loop {
            let result = if registered {
                self.heartbeat().await
            } else {
                self.register().await
            };
            match result {
                Ok(()) => registered = true,
                Err(MetaCallError::Rpc(e)) if e.code == ErrorCode::NotFound => {
                    tracing::warn!("metadata does not know this server; registering again");
                    registered = false;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, registered, "heartbeat to metadata failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}
