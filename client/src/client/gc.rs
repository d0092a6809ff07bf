//! `cairn gc`: a garbage-collection pass on every chunkserver, now.

use cairn_net::call_chunk;
use cairn_proto::chunk_rpc::{ChunkRequest, ChunkResponse, GcReport};
use cairn_proto::NodeId;

use super::Client;
use crate::error::ClientError;

/// One chunkserver's answer to a GC request.
#[derive(Debug)]
pub struct ServerGc {
    pub id: NodeId,
    pub addr: String,
    pub result: Result<GcReport, ClientError>,
}

impl Client {
    /// Asks every chunkserver in the ring (up ones; down ones are listed
    /// with an error) to run a garbage-collection pass now, or with
    /// `dry_run` to report what it would delete.
    pub async fn collect_garbage(&self, dry_run: bool) -> Result<Vec<ServerGc>, ClientError> {
        self.refresh_ring().await?;
        let status = self.status().await?;
        let mut out = Vec::new();
        for server in status.chunkservers {
            let result = if server.up {
                self.gc_on(&server.addr, dry_run).await
            } else {
                Err(ClientError::Unreachable(format!(
                    "chunkserver {} is down",
                    server.id
                )))
            };
            out.push(ServerGc {
                id: server.id,
                addr: server.addr,
                result,
            });
        }
        Ok(out)
    }

    async fn gc_on(&self, addr: &str, dry_run: bool) -> Result<GcReport, ClientError> {
        let conn = self.inner.pool.get(addr).await?;
        let (reply, _) = call_chunk(&conn, &ChunkRequest::Gc { dry_run }, &[]).await?;
        match reply.result? {
            ChunkResponse::Gc(report) => Ok(report),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }
}
