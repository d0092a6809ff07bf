//! QUIC endpoints: the transport settings every endpoint shares, server
//! and client endpoints with the cluster's mutual TLS, dialling a peer,
//! and closing a connection when its peer's certificate expires.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::NetError;
use crate::live_cert::LiveCert;
use crate::tls::{rustls_client_config, rustls_server_config, TlsError, TlsIdentity, SERVER_NAME};
use crate::udp_socket::BoundedSends;

/// How long a connection attempt may take before the peer counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A connection with no traffic for this long is closed: how long a killed
/// peer can hold up a request in flight to it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Keep-alive period: a silent dead peer is noticed within [`IDLE_TIMEOUT`]
/// while a live but busy one keeps its connections.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Streams one peer may have open to us at once (QUIC flow control: the
/// peer waits for a slot, it does not fail).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;
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
    // Batches of such datagrams need `udp_socket::BoundedSends`.
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

/// An endpoint on `socket`, its sends bounded by [`BoundedSends`].
fn endpoint_on(
    socket: std::net::UdpSocket,
    config: quinn::EndpointConfig,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, NetError> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    let socket = BoundedSends::new(runtime.wrap_udp_socket(socket)?);
    Ok(quinn::Endpoint::new_with_abstract_socket(
        config, server, socket, runtime,
    )?)
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
    let mut ep = endpoint_on(bind_udp(addr)?, endpoint_config(id), Some(cfg))?;
    ep.set_default_client_config(client_config(id, cert)?);
    Ok(ep)
}

/// A client-only endpoint on an ephemeral local port.
pub fn client_endpoint(id: &TlsIdentity) -> Result<quinn::Endpoint, NetError> {
    let bind: SocketAddr = "0.0.0.0:0".parse().expect("literal address parses");
    let config = base_endpoint_config(quinn::EndpointConfig::default());
    let mut ep = endpoint_on(bind_udp(bind)?, config, None)?;
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
