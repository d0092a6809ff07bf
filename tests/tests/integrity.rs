//! A corrupt chunk on disk is detected on read; an unreachable cluster is
//! reported quickly.

use std::time::{Duration, Instant};

use cairn_tests::{cairn_bin, random_bytes, DevCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_chunk_is_an_error_not_wrong_bytes() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let data = random_bytes(2 << 20, 5);
    let before: Vec<_> = cluster
        .chunkserver_names()
        .iter()
        .flat_map(|n| cluster.chunk_files(n))
        .collect();
    client.put("/victim", &data[..]).await.unwrap();
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    let after: Vec<_> = cluster
        .chunkserver_names()
        .iter()
        .flat_map(|n| cluster.chunk_files(n))
        .collect();
    let new: Vec<_> = after.iter().filter(|f| !before.contains(f)).collect();
    assert!(!new.is_empty(), "put stored no chunk file");
    // Flip one byte in the middle of every copy of every new chunk.
    for (path, len) in &new {
        let mut bytes = std::fs::read(path).unwrap();
        let i = (*len / 2) as usize;
        bytes[i] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    }
    let mut out = Vec::new();
    let err = client
        .get("/victim", &mut out)
        .await
        .expect_err("corrupt data must not read back");
    assert!(
        err.to_string().contains("hash mismatch"),
        "unexpected error: {err}"
    );
    assert!(out.len() < data.len(), "a full (wrong) file was returned");
    // The CLI reports it and leaves no file behind.
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("v");
    let o = cluster.cairn(&["get", "/victim", dst.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(!dst.exists());
}

#[test]
fn unreachable_cluster_fails_within_seconds() {
    // A config naming a port nobody listens on (bound, then released).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = DevCluster::start().expect("cluster starts");
    let mut cfg_data = cairn_client::ClientConfig::load(&cluster.client_config()).unwrap();
    cfg_data.meta = vec![format!("127.0.0.1:{port}")];
    let cfg = cluster.dir().join("dead.toml");
    std::fs::write(&cfg, toml::to_string(&cfg_data).unwrap()).unwrap();
    let t0 = Instant::now();
    let o = std::process::Command::new(cairn_bin())
        .args(["ls", "/", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unreachable"), "message: {err}");
    assert!(took < Duration::from_secs(10), "took {took:?} to give up");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
}
