//! The transport itself, on loopback: a bulk transfer travels in the
//! large datagrams the path carries, not in 1,200-byte packets; every
//! connection is sealed with AES-128-GCM.

use cairn::ca::{CertificateAuthority, Validity};
use std::sync::Arc;

use cairn_net::live_cert::LiveCert;
use cairn_net::tls::{rustls_client_config, rustls_server_config, SERVER_NAME};
use cairn_net::{client_endpoint, server_endpoint};
use cairn_proto::identity::Role;
use cairn_tests::identities::identity;
use cairn_tests::random_bytes;

/// Bytes sent in the transfer.
const TRANSFER: usize = 64 << 20;

/// The loopback interface's MTU, if the kernel says.
fn loopback_mtu() -> Option<usize> {
    std::fs::read_to_string("/sys/class/net/lo/mtu")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_transfer_on_loopback_keeps_large_datagrams() {
    match loopback_mtu() {
        Some(mtu) if mtu >= 32_768 => {}
        other => {
            eprintln!("skipped: loopback MTU {other:?} carries no large datagrams");
            return;
        }
    }
    let ca = CertificateAuthority::generate(Validity::days(1)).expect("CA");
    let server = server_endpoint(
        "127.0.0.1:0".parse().expect("address"),
        &identity(&ca, Role::Meta, "meta-1"),
    )
    .expect("server");
    let addr = server.local_addr().expect("server address");
    let sink = tokio::spawn(async move {
        let conn = server
            .accept()
            .await
            .expect("incoming")
            .await
            .expect("handshake");
        let (mut send, mut recv) = conn.accept_bi().await.expect("stream");
        let got = recv.read_to_end(TRANSFER + 1).await.expect("read");
        send.write_all(blake3::hash(&got).as_bytes())
            .await
            .expect("answer");
        send.finish().expect("finish");
        // Until the client has read the answer and closes.
        conn.closed().await;
    });
    let client = client_endpoint(&identity(&ca, Role::Client, "c")).expect("client");
    let conn = client
        .connect(addr, SERVER_NAME)
        .expect("connect")
        .await
        .expect("handshake");
    let data = random_bytes(TRANSFER, 7);
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    for piece in data.chunks(1 << 20) {
        send.write_all(piece).await.expect("write");
    }
    send.finish().expect("finish");
    let answer = recv.read_to_end(64).await.expect("answer");
    assert_eq!(
        answer,
        blake3::hash(&data).as_bytes(),
        "the bytes arrived intact"
    );
    let stats = conn.stats();
    conn.close(0u32.into(), b"done");
    sink.await.expect("server task");

    // Path-MTU discovery rose past Ethernet sizes and stayed there ...
    assert!(
        stats.path.current_mtu >= 16_384,
        "the path MTU ended at {} bytes (stats: {:?})",
        stats.path.current_mtu,
        stats.path
    );
    // ... and the transfer went in large datagrams, not 1,200-byte ones.
    let per_datagram = stats.udp_tx.bytes / stats.udp_tx.datagrams.max(1);
    assert!(
        per_datagram >= 8_192,
        "{} bytes per datagram on average (stats: {:?})",
        per_datagram,
        stats.udp_tx
    );
}

/// Both ends offer AES-128-GCM first (ten AES rounds a block where
/// AES-256 takes fourteen), so that is what a handshake of the cluster's
/// own configurations settles on. Run as TLS over memory: QUIC takes the
/// suite from the same rustls configurations.
#[test]
fn a_handshake_settles_on_aes_128_gcm() {
    let ca = CertificateAuthority::generate(Validity::days(1)).expect("CA");
    let (server_id, client_id) = (
        identity(&ca, Role::Meta, "meta-1"),
        identity(&ca, Role::Client, "c"),
    );
    let server_cfg = rustls_server_config(&server_id, LiveCert::new(&server_id).expect("cert"))
        .expect("server config");
    let client_cfg = rustls_client_config(&client_id, LiveCert::new(&client_id).expect("cert"))
        .expect("client config");
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME.to_string()).expect("name");
    let mut client = rustls::ClientConnection::new(Arc::new(client_cfg), name).expect("client");
    let mut server = rustls::ServerConnection::new(Arc::new(server_cfg)).expect("server");
    for _ in 0..16 {
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
        let mut wire = Vec::new();
        client.write_tls(&mut wire).expect("client writes");
        server.read_tls(&mut wire.as_slice()).expect("server reads");
        server.process_new_packets().expect("server handshake");
        wire.clear();
        server.write_tls(&mut wire).expect("server writes");
        client.read_tls(&mut wire.as_slice()).expect("client reads");
        client.process_new_packets().expect("client handshake");
    }
    assert!(!client.is_handshaking(), "the handshake completed");
    for (side, suite) in [
        ("client", client.negotiated_cipher_suite()),
        ("server", server.negotiated_cipher_suite()),
    ] {
        assert_eq!(
            suite.map(|s| s.suite()),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "the {side}'s suite"
        );
    }
}
