//! QUIC endpoints and the request/response exchange on a stream.
//!
//! One request per bidirectional stream: the caller writes a request frame
//! (plus raw bytes for chunk data) and finishes its side; the server answers
//! with one frame holding `Result<Response, RpcError>` (plus raw bytes).
//!
//! A server keeps any one peer from exhausting it: at most
//! [`MAX_CONNECTIONS`] connections, [`MAX_STREAMS_PER_CONNECTION`] open
//! streams and [`CONNECTION_INFLIGHT_BYTES`] of requests being handled per
//! connection ([`Peer::reserve`]); a request must arrive within
//! [`REQUEST_TIMEOUT`] and its answer be taken within [`REPLY_TIMEOUT`], or
//! the stream is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::frame::{read_body, read_frame, read_header, write_frame, FrameError, HEADER_LEN};
use crate::live_cert::LiveCert;
use crate::tls::{
    rustls_client_config, rustls_server_config, PeerIdentity, TlsError, TlsIdentity, SERVER_NAME,
};
use crate::RpcError;

/// How long a connection attempt may take before the peer counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A connection with no traffic for this long is closed: how long a killed
/// peer can hold up a request in flight to it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Keep-alive period: a silent dead peer is noticed within [`IDLE_TIMEOUT`]
/// while a live but busy one keeps its connections.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long a peer may take to send a request frame (and, for chunk data,
/// between two pieces of the body); a stream stalled longer is dropped and
/// its slot freed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer may take to accept an answer (8 MiB at ~280 KB/s).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections a server serves at once; more are refused until some close.
pub const MAX_CONNECTIONS: usize = 1024;
/// Streams one peer may have open to us at once (QUIC flow control: the
/// peer waits for a slot, it does not fail).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// Request bytes (frames and chunk bodies) one connection may have in
/// memory on a server at once; further requests wait for room.
pub const CONNECTION_INFLIGHT_BYTES: usize = 64 << 20;

/// Why an exchange with a peer failed below the application level.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} timed out after {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("sending: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("bad address {0:?}")]
    BadAddress(String),
    #[error("endpoint: {0}")]
    Endpoint(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

impl NetError {
    /// Whether the error says the peer could not be reached at all (as
    /// opposed to failing mid-exchange).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            NetError::Connect { .. } | NetError::ConnectTimeout { .. } | NetError::Connection(_)
        )
    }
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .expect("8 s fits a QUIC idle timeout"),
    ));
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // Windows large enough for several 4 MiB chunks in flight on loopback.
    t.stream_receive_window((16u32 << 20).into());
    t.receive_window((128u32 << 20).into());
    t.send_window(128 << 20);
    t.max_concurrent_bidi_streams(MAX_STREAMS_PER_CONNECTION.into());
    t.max_concurrent_uni_streams(0u32.into());
    // Probe past Ethernet's 1,500 bytes: where the path carries larger
    // datagrams (loopback, jumbo frames) each packet then holds up to
    // 64 KiB, which cuts the per-packet crypto and system-call work of a
    // chunk transfer by an order of magnitude. Where it does not, the
    // probes are lost and packets stay at the size that got through.
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MAX_UDP_PAYLOAD);
    t.mtu_discovery_config(Some(mtu));
    t
}

/// Largest UDP payload an endpoint sends or accepts (what a 64 KiB
/// loopback MTU carries; QUIC's own limit is 65,527).
const MAX_UDP_PAYLOAD: u16 = 65_507;

/// Socket buffer wanted for each endpoint's UDP socket: several large
/// datagrams of a chunk transfer may arrive while the endpoint's task is
/// busy, and the kernel drops what does not fit (QUIC then slows down as
/// for congestion). Linux caps it at `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER: usize = 8 << 20;

/// Binds the UDP socket for an endpoint, with [`SOCKET_BUFFER`] asked for.
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let s = socket2::SockRef::from(&socket);
    let set = s
        .set_recv_buffer_size(SOCKET_BUFFER)
        .and_then(|()| s.set_send_buffer_size(SOCKET_BUFFER));
    match (set, s.recv_buffer_size()) {
        (Err(e), _) => tracing::warn!(error = %e, "could not size the UDP socket buffers"),
        // Linux reports twice what it grants (it counts its bookkeeping).
        (Ok(()), Ok(got)) if got < SOCKET_BUFFER => tracing::debug!(
            got,
            wanted = SOCKET_BUFFER,
            "UDP receive buffer capped by net.core.rmem_max; raise it for faster transfers"
        ),
        _ => {}
    }
    Ok(socket)
}

/// The endpoint settings every endpoint shares: datagrams up to
/// [`MAX_UDP_PAYLOAD`] accepted.
fn base_endpoint_config(mut cfg: quinn::EndpointConfig) -> quinn::EndpointConfig {
    if let Err(e) = cfg.max_udp_payload_size(MAX_UDP_PAYLOAD) {
        tracing::warn!(error = %e, "QUIC refused the larger datagram size; keeping its default");
    }
    cfg
}

/// The certificate an endpoint made from `id` presents, reloaded from
/// `id`'s files when they change (if it was read from files).
fn live_cert(id: &TlsIdentity) -> Result<Arc<LiveCert>, NetError> {
    let cert = LiveCert::new(id)?;
    if let Some(files) = &id.source {
        cert.watch(files.clone());
    }
    Ok(cert)
}

fn client_config(id: &TlsIdentity, cert: Arc<LiveCert>) -> Result<quinn::ClientConfig, NetError> {
    let tls = rustls_client_config(id, cert)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(Arc::new(transport_config()));
    Ok(cfg)
}

/// The endpoint's stateless-reset key, derived from the server's private
/// key so that it survives a restart: a peer still holding a connection
/// to this server's previous run gets a valid reset on its first packet
/// and reconnects at once, instead of waiting out the idle timeout.
/// Connection ids carry a keyed check (packets naming a forged id are
/// dropped unanswered); that key is derived the same way, or the restarted
/// server would drop the old connection's packets instead of resetting.
fn endpoint_config(id: &TlsIdentity) -> quinn::EndpointConfig {
    let key = blake3::derive_key(
        "cairn 2026-11 QUIC stateless reset key",
        id.key_pem.as_bytes(),
    );
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let cid_key = blake3::derive_key(
        "cairn 2026-11 QUIC connection id key",
        id.key_pem.as_bytes(),
    );
    let mut k = [0u8; 8];
    k.copy_from_slice(&cid_key[..8]);
    let cid_key = u64::from_le_bytes(k);
    let mut cfg = base_endpoint_config(quinn::EndpointConfig::new(Arc::new(hmac)));
    cfg.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    cfg
}

/// A server endpoint bound to `addr`; it also dials out (Raft, registration)
/// with the same identity.
pub fn server_endpoint(addr: SocketAddr, id: &TlsIdentity) -> Result<quinn::Endpoint, NetError> {
    let cert = live_cert(id)?;
    let tls = rustls_server_config(id, cert.clone())?;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(Arc::new(transport_config()));
    let socket = bind_udp(addr)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    let mut ep = quinn::Endpoint::new(endpoint_config(id), Some(cfg), socket, runtime)?;
    ep.set_default_client_config(client_config(id, cert)?);
    Ok(ep)
}

/// A client-only endpoint on an ephemeral local port.
pub fn client_endpoint(id: &TlsIdentity) -> Result<quinn::Endpoint, NetError> {
    let bind: SocketAddr = "0.0.0.0:0".parse().expect("literal address parses");
    let socket = bind_udp(bind)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    let config = base_endpoint_config(quinn::EndpointConfig::default());
    let mut ep = quinn::Endpoint::new(config, None, socket, runtime)?;
    ep.set_default_client_config(client_config(id, live_cert(id)?)?);
    Ok(ep)
}

/// Resolves `host:port` (an IP address or a name) to one socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, NetError> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| NetError::BadAddress(addr.to_string()))
}

/// Opens a connection to `addr`, bounded by [`CONNECT_TIMEOUT`].
pub async fn connect(ep: &quinn::Endpoint, addr: &str) -> Result<quinn::Connection, NetError> {
    let sock = resolve(addr)?;
    let connecting = ep
        .connect(sock, SERVER_NAME)
        .map_err(|e| NetError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => {
            close_at_expiry(&conn);
            Ok(conn)
        }
        Ok(Err(e)) => Err(NetError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        }),
        Err(_) => Err(NetError::ConnectTimeout {
            addr: addr.to_string(),
            timeout: CONNECT_TIMEOUT,
        }),
    }
}

/// The longest a [`close_at_expiry`] timer sleeps before looking again
/// (tokio timers do not take centuries).
const EXPIRY_CHECK_MAX: Duration = Duration::from_secs(86_400);

/// Closes `conn` when its peer's certificate expires: a certificate
/// checked once at the handshake must not let a connection outlive it.
/// The peer reconnects, presenting its current certificate.
pub fn close_at_expiry(conn: &quinn::Connection) {
    let Ok(expiry) = crate::tls::peer_not_after(conn) else {
        return;
    };
    let conn = conn.clone();
    tokio::spawn(async move {
        loop {
            let left = expiry
                .duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO);
            if left.is_zero() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(left.min(EXPIRY_CHECK_MAX)) => {}
                _ = conn.closed() => return,
            }
        }
        tracing::info!(peer = %conn.remote_address(), "closing a connection: the peer's certificate expired");
        conn.close(CLOSE_CERT_EXPIRED.into(), b"peer certificate expired");
    });
}

/// The QUIC close code of a connection whose peer certificate expired.
pub const CLOSE_CERT_EXPIRED: u32 = 3;

/// Connections kept open per peer address, reopened when they die.
#[derive(Clone)]
pub struct ConnPool {
    endpoint: quinn::Endpoint,
    conns: Arc<Mutex<HashMap<String, quinn::Connection>>>,
}

impl ConnPool {
    pub fn new(endpoint: quinn::Endpoint) -> Self {
        ConnPool {
            endpoint,
            conns: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// A live connection to `addr`, reusing an open one.
    ///
    /// A new connection is set up by a task of its own and kept even if
    /// the caller stops waiting: callers with short deadlines (Raft's vote
    /// and heartbeat RPCs) then find it ready on their next try, rather
    /// than abandoning every handshake on a slow, loaded machine.
    pub async fn get(&self, addr: &str) -> Result<quinn::Connection, NetError> {
        if let Some(c) = self.lock().get(addr) {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let pool = self.clone();
        let (addr, self_addr) = (addr.to_string(), addr.to_string());
        let setup = tokio::spawn(async move {
            let conn = connect(&pool.endpoint, &addr).await?;
            pool.lock().insert(addr, conn.clone());
            Ok(conn)
        });
        match setup.await {
            Ok(r) => r,
            Err(e) => Err(NetError::Connect {
                addr: self_addr,
                reason: format!("connection set-up task failed: {e}"),
            }),
        }
    }

    /// Forgets the connection to `addr` (after an error on it).
    pub fn forget(&self, addr: &str) {
        self.lock().remove(addr);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, quinn::Connection>> {
        // A panic while holding this lock leaves only a map of handles behind;
        // it is still consistent, so recover it.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
            let identity = match PeerIdentity::of_connection(&conn) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{CertificateAuthority, Role};

    fn identity(ca: &CertificateAuthority, role: Role, name: &str) -> TlsIdentity {
        let (cert_pem, key_pem) = ca
            .issue(role, name, crate::tls::Validity::days(1))
            .expect("issue");
        TlsIdentity {
            ca_pem: ca.cert_pem.clone(),
            cert_pem,
            key_pem,
            source: None,
        }
    }

    #[tokio::test]
    async fn a_restarted_server_resets_its_previous_runs_connections() {
        let ca = CertificateAuthority::generate(crate::tls::Validity::days(1)).expect("CA");
        let server_id = identity(&ca, Role::Meta, "meta-1");
        let client = client_endpoint(&identity(&ca, Role::Client, "c")).expect("client");
        // The first run of the server lives on its own runtime, so that it
        // can "crash": its socket closes without a word to the client.
        let (tx, rx) = std::sync::mpsc::channel();
        let first_id = TlsIdentity {
            ca_pem: server_id.ca_pem.clone(),
            cert_pem: server_id.cert_pem.clone(),
            key_pem: server_id.key_pem.clone(),
            source: None,
        };
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let first = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (ep, conn) = rt.block_on(async {
                let ep =
                    server_endpoint("127.0.0.1:0".parse().unwrap(), &first_id).expect("server");
                tx.send(ep.local_addr().expect("addr")).expect("send addr");
                let conn = ep
                    .accept()
                    .await
                    .expect("incoming")
                    .await
                    .expect("handshake");
                (ep, conn)
            });
            let _ = wait.recv();
            drop(rt);
            drop(conn);
            drop(ep);
        });
        let addr = rx.recv().expect("server address");
        let conn = client
            .connect(addr, SERVER_NAME)
            .expect("connect")
            .await
            .expect("handshake");
        go.send(()).expect("crash the server");
        first.join().expect("server thread");
        let _second = server_endpoint(addr, &server_id).expect("restarted server");
        // The client's next packet draws a stateless reset: the old
        // connection ends long before the idle timeout.
        let started = std::time::Instant::now();
        if let Ok((mut s, _r)) = conn.open_bi().await {
            let _ = s.write_all(b"hello").await;
        }
        let closed = tokio::time::timeout(IDLE_TIMEOUT / 2, conn.closed()).await;
        assert!(
            closed.is_ok(),
            "the old connection lingered past {:?}",
            IDLE_TIMEOUT / 2
        );
        assert!(started.elapsed() < IDLE_TIMEOUT / 2);
    }
}
