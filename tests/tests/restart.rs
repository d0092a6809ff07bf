//! Nothing acknowledged is lost when servers stop, or are killed, and come
//! back; and peers of a restarted server find out at once.

use std::time::{Duration, Instant};

use cairn::ca::{CertificateAuthority, Validity};
use cairn_net::endpoint::IDLE_TIMEOUT;
use cairn_net::tls::{TlsIdentity, SERVER_NAME};
use cairn_net::{client_endpoint, server_endpoint};
use cairn_proto::identity::Role;
use cairn_tests::identities::identity;
use cairn_tests::{random_bytes, DevCluster};

async fn read(client: &cairn_client::Client, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .get(path, &mut out)
        .await
        .unwrap_or_else(|e| panic!("get {path}: {e}"));
    out
}

/// Retries `f` until it succeeds or `timeout` passes.
async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("still failing after {timeout:?}: {e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_restart_keeps_every_file() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            (
                format!("/dir{}/f{i}", i % 3),
                random_bytes(i * 150_000 + 1, i as u64),
            )
        })
        .collect();
    {
        let client = cluster.client().await.expect("client");
        for d in 0..3 {
            client
                .mkdir(&format!("/dir{d}"), false)
                .await
                .expect("mkdir");
        }
        for (p, d) in &files {
            client.put(p, &d[..]).await.expect("put");
        }
    }
    cluster.stop_dev().expect("dev stops");
    cluster
        .start_dev()
        .expect("dev restarts on the same directory");
    let client = cluster.client().await.expect("client after restart");
    for (p, d) in &files {
        assert!(read(&client, p).await == *d, "{p} differs after restart");
    }
    assert_eq!(client.list("/").await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_each_server_loses_nothing_acknowledged() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let mut files = Vec::new();
    for i in 0..10u64 {
        let d = random_bytes(300_000 + i as usize * 70_000, 100 + i);
        let p = format!("/k{i}");
        client.put(&p, &d[..]).await.expect("put");
        files.push((p, d));
    }
    // The metadata node: acknowledged commits survive kill -9.
    cluster.kill9("meta-1").expect("kill meta-1");
    cluster.restart_server("meta-1").expect("restart meta-1");
    let client = eventually(Duration::from_secs(30), || async { cluster.client().await }).await;
    for (p, d) in &files {
        let got = eventually(Duration::from_secs(30), || async {
            let mut out = Vec::new();
            client.get(p, &mut out).await?;
            Ok(out)
        })
        .await;
        assert!(got == *d, "{p} differs after kill -9 of meta-1");
    }
    // Each chunkserver in turn.
    for name in cluster.chunkserver_names() {
        cluster.kill9(&name).expect("kill chunkserver");
        cluster.restart_server(&name).expect("restart chunkserver");
        for (p, d) in &files {
            let got = eventually(Duration::from_secs(30), || async {
                let mut out = Vec::new();
                client.get(p, &mut out).await?;
                Ok(out)
            })
            .await;
            assert!(got == *d, "{p} differs after kill -9 of {name}");
        }
    }
}

/// Transport, not cluster: a server restarted on the same address and key
/// answers its previous run's connections with a stateless reset.
#[tokio::test]
async fn a_restarted_server_resets_its_previous_runs_connections() {
    let ca = CertificateAuthority::generate(Validity::days(1)).expect("CA");
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
            let ep = server_endpoint("127.0.0.1:0".parse().unwrap(), &first_id).expect("server");
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
