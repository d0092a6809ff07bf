//! Chunkserver-to-chunkserver transfers.

use std::time::Duration;

use cairn_proto::chunk_rpc::{call_chunk, ChunkRequest, ChunkResponse};
use cairn_proto::net::ConnPool;
use cairn_proto::ChunkId;

/// How long one push of one chunk may take.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// Stores `data` as chunk `id` on the chunkserver at `addr` (no further
/// copies); returns once it is durable there.
pub async fn push_chunk(
    pool: &ConnPool,
    addr: &str,
    id: ChunkId,
    data: &[u8],
) -> Result<(), String> {
    let req = ChunkRequest::Put {
        id,
        len: data.len() as u32,
        backups: Vec::new(),
        async_copies: Vec::new(),
    };
    let attempt = async {
        let conn = pool.get(addr).await.map_err(|e| e.to_string())?;
        let (reply, _) = call_chunk(&conn, &req, data)
            .await
            .map_err(|e| e.to_string())?;
        match reply.result {
            Ok(ChunkResponse::Stored) => Ok(()),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    };
    match tokio::time::timeout(PUSH_TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            pool.forget(addr);
            Err(format!("{addr}: {e}"))
        }
        Err(_) => {
            pool.forget(addr);
            Err(format!("{addr}: no answer within {PUSH_TIMEOUT:?}"))
        }
    }
}
