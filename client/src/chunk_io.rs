//! Moving one chunk between the client and chunkservers.
//!
//! Downloads verify BLAKE3 before returning a byte: a replica whose bytes do
//! not match is skipped (and logged) and the next owner is tried.

use cairn_proto::chunk_rpc::{ChunkRequest, ChunkResponse, MAX_CHUNK_FRAME, MAX_CHUNK_LEN};
use cairn_proto::meta_rpc::RingMember;
use cairn_proto::net::{call, ConnPool};
use cairn_proto::ChunkId;

use crate::error::ClientError;

/// How long one chunk transfer to or from one server may take (up to 8 MiB;
/// a dead server that has not yet timed out at the QUIC level is skipped).
const TRANSFER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Stores `data` (whose id is `id`) on `server`; returns once it is durable there.
pub async fn upload(
    pool: &ConnPool,
    server: &RingMember,
    id: ChunkId,
    data: &[u8],
) -> Result<(), ClientError> {
    let fail = |detail: String| ClientError::Upload {
        chunk: id,
        server: server.addr.clone(),
        detail,
    };
    let len = u32::try_from(data.len()).map_err(|_| fail("chunk larger than 4 GiB".into()))?;
    let conn = pool.get(&server.addr).await.map_err(|e| {
        pool.forget(&server.addr);
        fail(e.to_string())
    })?;
    let (resp, _) =
        call::<_, ChunkResponse>(&conn, &ChunkRequest::Put { id, len }, data, MAX_CHUNK_FRAME)
            .await
            .map_err(|e| fail(e.to_string()))?;
    match resp {
        Ok(ChunkResponse::Stored) => Ok(()),
        Ok(other) => Err(fail(format!("unexpected reply {other:?}"))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Reads chunk `id` from the first of `servers` that returns bytes hashing
/// to `id`.
pub async fn download(
    pool: &ConnPool,
    servers: &[RingMember],
    id: ChunkId,
) -> Result<Vec<u8>, ClientError> {
    let mut errors = Vec::new();
    for server in servers {
        let fetched =
            match tokio::time::timeout(TRANSFER_TIMEOUT, fetch_from(pool, server, id)).await {
                Ok(r) => r,
                Err(_) => {
                    pool.forget(&server.addr);
                    Err(format!("no answer within {TRANSFER_TIMEOUT:?}"))
                }
            };
        match fetched {
            Ok(data) if id.matches(&data) => return Ok(data),
            Ok(_) => {
                tracing::warn!(chunk = %id, server = %server.addr, "replica failed hash verification");
                errors.push(format!("{}: corrupt replica (hash mismatch)", server.addr));
            }
            Err(e) => errors.push(format!("{}: {e}", server.addr)),
        }
    }
    if errors.is_empty() {
        errors.push("no chunkserver to ask".into());
    }
    Err(ClientError::ChunkUnavailable {
        chunk: id,
        detail: errors.join("; "),
    })
}

async fn fetch_from(pool: &ConnPool, server: &RingMember, id: ChunkId) -> Result<Vec<u8>, String> {
    let conn = pool.get(&server.addr).await.map_err(|e| {
        pool.forget(&server.addr);
        e.to_string()
    })?;
    let (resp, mut recv) =
        call::<_, ChunkResponse>(&conn, &ChunkRequest::Get { id }, &[], MAX_CHUNK_FRAME)
            .await
            .map_err(|e| e.to_string())?;
    match resp {
        Ok(ChunkResponse::Data { len }) if len <= MAX_CHUNK_LEN => {
            let mut data = vec![0u8; len as usize];
            recv.read_exact(&mut data)
                .await
                .map_err(|e| e.to_string())?;
            Ok(data)
        }
        Ok(other) => Err(format!("unexpected reply {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}
