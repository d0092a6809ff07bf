//! Nothing acknowledged is lost when servers stop, or are killed, and come back.

use std::time::{Duration, Instant};

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
