//! Chunkserver-to-chunkserver transfers.

use std::time::Duration;

use cairn_net::call_chunk;
use cairn_net::ConnPool;
use cairn_proto::access::acts_as;
use cairn_proto::chunk_rpc::{ChunkRequest, ChunkResponse};
use cairn_proto::identity::Role;
use cairn_proto::{ChunkId, NodeId};

/// A connection to the chunkserver at `addr`, refused unless the peer's
/// certificate says it is a chunkserver: chunk copies go only to
/// chunkservers, whatever address a client named. With `owner`, the
/// certificate must also be bound to that chunkserver id (repair asks and
/// trusts owners by id: an impostor at an owner's address is refused).
pub async fn connect_chunkserver(
    pool: &ConnPool,
    addr: &str,
    owner: Option<NodeId>,
) -> Result<quinn::Connection, String> {
    let conn = pool.get(addr).await.map_err(|e| {
        pool.forget(addr);
        e.to_string()
    })?;
    match cairn_net::tls::peer_identity(&conn) {
        Ok(id) if owner.is_some_and(|o| !acts_as(&id, o)) => {
            pool.forget(addr);
            tracing::warn!(peer = %addr, certificate = %id, expected = owner, "refused a chunkserver answering for another");
            Err(format!(
                "{addr} is not chunkserver {} (its certificate: {id})",
                owner.unwrap_or_default()
            ))
        }
        Ok(id) if id.role == Role::ChunkServer => Ok(conn),
        Ok(id) => {
            pool.forget(addr);
            Err(format!(
                "{addr} is not a chunkserver (its certificate: {id})"
            ))
        }
        Err(e) => {
            pool.forget(addr);
            Err(format!("{addr}: {e}"))
        }
    }
}

/// How long one push of one chunk may take.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// Stores `data` as chunk `id` on the chunkserver at `addr` (no further
/// copies; `owner`: the chunkserver id it must be, see
/// [`connect_chunkserver`]); returns once it is durable there.
pub async fn push_chunk(
    pool: &ConnPool,
    addr: &str,
    owner: Option<NodeId>,
    id: ChunkId,
    data: &[u8],
) -> Result<(), String> {
    let req = ChunkRequest::Replicate {
        id,
        len: data.len() as u32,
    };
    let attempt = async {
        let conn = connect_chunkserver(pool, addr, owner).await?;
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
