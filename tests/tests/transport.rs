//! The transport itself, on loopback: a bulk transfer travels in the
//! large datagrams the path carries, not in 1,200-byte packets.

use cairn::ca::{CertificateAuthority, Validity};
use cairn_net::tls::SERVER_NAME;
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
