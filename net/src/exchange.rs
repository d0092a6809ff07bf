//! The caller's side of one request per bidirectional stream: the caller
//! writes a request frame (plus raw bytes for chunk data) and finishes its
//! side; the server answers with one frame holding
//! `Result<Response, RpcError>` (plus raw bytes).

use serde::de::DeserializeOwned;
use serde::Serialize;

use cairn_proto::chunk_rpc::{ChunkCallRef, ChunkReply, ChunkRequest, MAX_CHUNK_FRAME};
use cairn_proto::frame::{read_frame, write_frame};
use cairn_proto::RpcError;

use crate::error::NetError;

/// Sends `req` (and `body`, raw) on a new stream of `conn` and reads the
/// answer frame. The returned stream holds any raw bytes that follow it.
pub async fn call<Q, R>(
    conn: &quinn::Connection,
    req: &Q,
    body: &[u8],
    limit: usize,
) -> Result<(Result<R, RpcError>, quinn::RecvStream), NetError>
where
    Q: Serialize,
    R: DeserializeOwned,
{
    exchange(conn, req, body, limit).await
}

/// [`call`] for protocols whose answer frame is not a bare `Result`: the
/// answer is read as `A`.
pub async fn exchange<Q, A>(
    conn: &quinn::Connection,
    req: &Q,
    body: &[u8],
    limit: usize,
) -> Result<(A, quinn::RecvStream), NetError>
where
    Q: Serialize,
    A: DeserializeOwned,
{
    let (mut send, mut recv) = conn.open_bi().await?;
    write_frame(&mut send, req).await?;
    if !body.is_empty() {
        send.write_all(body).await?;
    }
    send.finish()?;
    let answer: A = read_frame(&mut recv, limit).await?;
    Ok((answer, recv))
}

/// Sends `req` (and `body`) to a chunkserver under the current request id
/// and reads its [`ChunkReply`]; the returned stream holds any chunk bytes
/// that follow.
pub async fn call_chunk(
    conn: &quinn::Connection,
    req: &ChunkRequest,
    body: &[u8],
) -> Result<(ChunkReply, quinn::RecvStream), NetError> {
    exchange(conn, &ChunkCallRef::current(req), body, MAX_CHUNK_FRAME).await
}
