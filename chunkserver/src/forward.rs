//! The primary's side of a replicated put: receive the chunk from the
//! client and stream each piece on to the synchronous backups as it
//! arrives (pipelined, not store-then-forward), then wait for their
//! acknowledgements alongside the local fsync.

use std::time::Duration;

use cairn_net::serve::REQUEST_TIMEOUT;
use cairn_net::ConnPool;
use cairn_proto::chunk_rpc::{
    write_chunk_call, ChunkReply, ChunkRequest, ChunkResponse, MAX_CHUNK_FRAME,
};
use cairn_proto::frame::read_frame;
use cairn_proto::{ChunkId, ErrorCode, RpcError};

use crate::peer::connect_chunkserver;

/// Bytes read from the client (and forwarded) at a time.
const PIECE: usize = 256 << 10;
/// How long a backup may take to acknowledge after the last byte.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);

/// Streams to the backups, open until they acknowledge.
pub struct Forwarding {
    backups: Vec<(String, quinn::RecvStream)>,
}

fn backup_failed(addr: &str, e: impl std::fmt::Display) -> RpcError {
    RpcError::new(
        ErrorCode::Unavailable,
        format!("synchronous copy to {addr} failed: {e}"),
    )
}

/// Reads `len` bytes of chunk `id` from the client, forwarding every piece
/// to each of `backups` as it arrives. Fails if a backup cannot keep up,
/// the client sends too few or too many bytes, or it stalls for
/// [`REQUEST_TIMEOUT`] between two pieces.
pub async fn receive_and_forward(
    pool: &ConnPool,
    id: ChunkId,
    len: u32,
    backups: &[String],
    recv: &mut quinn::RecvStream,
) -> Result<(Vec<u8>, Forwarding), RpcError> {
    let mut sends = Vec::with_capacity(backups.len());
    let mut acks = Vec::with_capacity(backups.len());
    for addr in backups {
        let conn = connect_chunkserver(pool, addr, None)
            .await
            .map_err(|e| backup_failed(addr, e))?;
        let (mut send, recv) = conn.open_bi().await.map_err(|e| backup_failed(addr, e))?;
        let req = ChunkRequest::Replicate { id, len };
        write_chunk_call(&mut send, &req)
            .await
            .map_err(|e| backup_failed(addr, e))?;
        sends.push((addr.clone(), send));
        acks.push((addr.clone(), recv));
    }
    let len = len as usize;
    let mut data = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let end = (filled + PIECE).min(len);
        let n = tokio::time::timeout(REQUEST_TIMEOUT, recv.read(&mut data[filled..end]))
            .await
            .map_err(|_| {
                RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!("chunk body stalled after {filled} of {len} bytes"),
                )
            })?
            .map_err(|e| RpcError::new(ErrorCode::InvalidRequest, format!("chunk body: {e}")))?
            .ok_or_else(|| {
                RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!("chunk body ended after {filled} of {len} bytes"),
                )
            })?;
        for (addr, send) in sends.iter_mut() {
            send.write_all(&data[filled..filled + n])
                .await
                .map_err(|e| backup_failed(addr, e))?;
        }
        filled += n;
    }
    let mut extra = [0u8; 1];
    let trailing = tokio::time::timeout(REQUEST_TIMEOUT, recv.read(&mut extra))
        .await
        .map_err(|_| RpcError::new(ErrorCode::InvalidRequest, "chunk body not finished"))?
        .map_err(|e| RpcError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    if trailing.is_some_and(|n| n > 0) {
        return Err(RpcError::new(
            ErrorCode::InvalidRequest,
            "bytes after the chunk body",
        ));
    }
    for (addr, send) in sends.iter_mut() {
        send.finish().map_err(|e| backup_failed(addr, e))?;
    }
    Ok((data, Forwarding { backups: acks }))
}

impl Forwarding {
    /// Waits until every backup has stored the chunk durably.
    pub async fn acknowledged(self) -> Result<(), RpcError> {
        for (addr, mut recv) in self.backups {
            let answer = tokio::time::timeout(
                ACK_TIMEOUT,
                read_frame::<_, ChunkReply>(&mut recv, MAX_CHUNK_FRAME),
            )
            .await;
            match answer {
                Ok(Ok(reply)) => match reply.result {
                    Ok(ChunkResponse::Stored) => {}
                    Ok(other) => return Err(backup_failed(&addr, format!("{other:?}"))),
                    // A full backup: the client should hear "no space".
                    Err(e) if e.code == ErrorCode::NoSpace => {
                        return Err(RpcError::new(
                            ErrorCode::NoSpace,
                            format!("synchronous copy to {addr}: {e}"),
                        ))
                    }
                    Err(e) => return Err(backup_failed(&addr, e)),
                },
                Ok(Err(e)) => return Err(backup_failed(&addr, e)),
                Err(_) => {
                    return Err(backup_failed(
                        &addr,
                        format!("no answer within {ACK_TIMEOUT:?}"),
                    ))
                }
            }
        }
        Ok(())
    }
}
