//! The server's side: accepting connections from verified peers and
//! handing each stream to a handler, within limits that keep any one peer
//! from exhausting the server — at most [`MAX_CONNECTIONS`] connections,
//! `MAX_STREAMS_PER_CONNECTION` open streams and
//! [`CONNECTION_INFLIGHT_BYTES`] of requests being handled per connection
//! ([`Peer::reserve`]); a request must arrive within [`REQUEST_TIMEOUT`]
//! and its answer be taken within [`REPLY_TIMEOUT`], or the stream is
//! dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::frame::{read_body, read_header, write_frame, FrameError, HEADER_LEN};
use cairn_proto::identity::PeerIdentity;
use cairn_proto::RpcError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::endpoint::close_at_expiry;
use crate::error::NetError;
use crate::tls::peer_identity;

/// How long a peer may take to send a request frame (and, for chunk data,
/// between two pieces of the body); a stream stalled longer is dropped and
/// its slot freed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer may take to accept an answer (8 MiB at ~280 KB/s).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections a server serves at once; more are refused until some close.
pub const MAX_CONNECTIONS: usize = 1024;
/// Request bytes (frames and chunk bodies) one connection may have in
/// memory on a server at once; further requests wait for room.
pub const CONNECTION_INFLIGHT_BYTES: usize = 64 << 20;

/// The verified peer of a served connection, and its share of the
/// server's memory.
pub struct Peer {
    pub addr: SocketAddr,
    pub identity: PeerIdentity,
    inflight: Arc<Semaphore>,
}

/// Room reserved in a connection's in-flight budget; freed on drop.
pub struct InFlight(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Peer {
    pub fn new(addr: SocketAddr, identity: PeerIdentity) -> Self {
        Peer {
            addr,
            identity,
            inflight: Arc::new(Semaphore::new(CONNECTION_INFLIGHT_BYTES)),
        }
    }

    /// Reserves `bytes` of this connection's in-flight budget, waiting
    /// while its other requests hold it. A request larger than the whole
    /// budget takes all of it.
    pub async fn reserve(&self, bytes: usize) -> InFlight {
        let n = bytes.clamp(1, CONNECTION_INFLIGHT_BYTES) as u32;
        InFlight(self.inflight.clone().acquire_many_owned(n).await.ok())
    }
}

/// Reads one request frame from a served stream: the header within
/// [`REQUEST_TIMEOUT`], room for the body reserved from the peer's budget,
/// then the body within [`REQUEST_TIMEOUT`]. The returned reservation is
/// held while the request is handled.
pub async fn read_request<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limit: usize,
    peer: &Peer,
) -> Result<(T, InFlight), FrameError> {
    let timed_out = |_| FrameError::TimedOut(REQUEST_TIMEOUT);
    let len = tokio::time::timeout(REQUEST_TIMEOUT, read_header(recv, limit))
        .await
        .map_err(timed_out)??;
    let held = peer.reserve(HEADER_LEN + len).await;
    let msg = tokio::time::timeout(REQUEST_TIMEOUT, read_body(recv, len))
        .await
        .map_err(timed_out)??;
    Ok((msg, held))
}

/// Accepts connections on `ep` until `shutdown` resolves, handing each
/// bidirectional stream to `handle` on its own task with the connection's
/// verified [`Peer`]. A handshake that fails (no certificate, one from
/// another CA, an expired one) or a certificate naming no role is refused
/// and logged.
pub async fn serve<H, Fut>(
    ep: quinn::Endpoint,
    shutdown: impl std::future::Future<Output = ()>,
    handle: H,
) where
    H: Fn(Arc<Peer>, quinn::SendStream, quinn::RecvStream) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let incoming = tokio::select! {
            _ = &mut shutdown => break,
            inc = ep.accept() => match inc {
                Some(inc) => inc,
                None => break,
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                peer = %incoming.remote_address(),
                limit = MAX_CONNECTIONS,
                "refused connection: too many connections"
            );
            incoming.refuse();
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let addr = incoming.remote_address();
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(peer = %addr, error = %e, "refused connection");
                    return;
                }
            };
            let identity = match peer_identity(&conn) {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(peer = %addr, error = %e, "refused connection");
                    conn.close(1u32.into(), b"certificate names no role");
                    return;
                }
            };
            tracing::debug!(peer = %addr, identity = %identity, "connection accepted");
            close_at_expiry(&conn);
            let peer = Arc::new(Peer::new(addr, identity));
            loop {
                match conn.accept_bi().await {
                    Ok((send, recv)) => {
                        tokio::spawn(handle.clone()(peer.clone(), send, recv));
                    }
                    Err(e) => {
                        tracing::debug!(peer = %addr, error = %e, "connection ended");
                        break;
                    }
                }
            }
        });
    }
    ep.close(0u32.into(), b"shutting down");
}

/// Writes one answer frame on `send`, then `body` raw, and finishes.
pub async fn reply<R: Serialize>(
    send: &mut quinn::SendStream,
    resp: &Result<R, RpcError>,
    body: &[u8],
) -> Result<(), NetError> {
    answer(send, resp, body).await
}

/// [`reply`] with any answer frame (see [`exchange`]). A peer that does
/// not take the answer within [`REPLY_TIMEOUT`] gets its stream reset.
pub async fn answer<A: Serialize>(
    send: &mut quinn::SendStream,
    frame: &A,
    body: &[u8],
) -> Result<(), NetError> {
    let write = async {
        write_frame(send, frame).await?;
        if !body.is_empty() {
            send.write_all(body).await?;
        }
        Ok::<_, NetError>(())
    };
    match tokio::time::timeout(REPLY_TIMEOUT, write).await {
        Ok(r) => r?,
        Err(_) => {
            let _ = send.reset(1u32.into());
            return Err(NetError::Timeout(REPLY_TIMEOUT));
        }
    }
    send.finish()?;
    Ok(())
}
