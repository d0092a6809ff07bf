//! N=3, S=2 replication: every chunk reaches three servers, and losing any
//! one chunkserver loses nothing that was acknowledged.

use std::time::{Duration, Instant};

use cairn_proto::meta_rpc::ReplicationPolicy;
use cairn_tests::copies::{referenced_chunks, stored_chunks};
use cairn_tests::{random_bytes, wait_heartbeat_since, DevCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chunk_gets_three_copies_and_survives_a_kill9() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let status = client.status().await.expect("status");
    assert_eq!(
        status.policy,
        ReplicationPolicy {
            copies: 3,
            sync_copies: 2
        }
    );

    let mut files = Vec::new();
    for i in 0..40u64 {
        // A mix of one-chunk and multi-chunk files.
        let size = if i % 5 == 0 {
            3 << 20
        } else {
            20_000 + i as usize * 3_000
        };
        let data = random_bytes(size, 500 + i);
        let path = format!("/r{i}");
        client.put(&path, &data[..]).await.expect("put");
        files.push((path, data));
    }
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("async copies reach every owner");
    let counts = cluster.copies_per_chunk();
    assert!(
        counts.values().all(|&n| n == 3),
        "a chunk has more than 3 copies"
    );

    let mut cluster = cluster;
    cluster.kill9("chunk-1").expect("kill -9 chunk-1");
    // Both the long-lived client (holding a connection to the dead server)
    // and a fresh one read everything back, with no failed read.
    let fresh = cluster.client().await.expect("fresh client");
    for c in [&client, &fresh] {
        read_all(c, &files, "chunk-1").await;
    }
    // Bring it back, then lose both others: every read is served by the
    // restarted chunk-1 alone, so its copies survived the kill -9.
    let restarted = Instant::now();
    cluster.restart_server("chunk-1").expect("restart chunk-1");
    wait_heartbeat_since(&fresh, 1, restarted, Duration::from_secs(20)).await;
    cluster.kill9("chunk-2").expect("kill -9 chunk-2");
    cluster.kill9("chunk-3").expect("kill -9 chunk-3");
    let fresh = cluster.client().await.expect("fresh client");
    read_all(&fresh, &files, "chunk-2 and chunk-3").await;
}

async fn read_all(client: &cairn_client::Client, files: &[(String, Vec<u8>)], dead: &str) {
    for (path, data) in files {
        let mut out = Vec::new();
        client
            .get(path, &mut out)
            .await
            .unwrap_or_else(|e| panic!("get {path} with {dead} dead: {e}"));
        assert!(out == *data, "{path} differs with {dead} dead");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_needs_its_synchronous_copy() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    // With two of three servers dead, the primary of some chunk cannot
    // reach its backup: such a put fails rather than claiming S=2 copies.
    cluster.kill9("chunk-2").expect("kill");
    cluster.kill9("chunk-3").expect("kill");
    let mut failures = 0;
    for i in 0..4u64 {
        let data = random_bytes(100_000, 900 + i);
        if client.put(&format!("/s{i}"), &data[..]).await.is_err() {
            failures += 1;
        } else {
            // Whatever succeeded reads back.
            let mut out = Vec::new();
            client
                .get(&format!("/s{i}"), &mut out)
                .await
                .expect("get of an acknowledged put");
            assert!(out == data);
        }
    }
    assert_eq!(
        failures, 4,
        "a put was acknowledged without its synchronous copy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_server_takes_its_share_and_nothing_becomes_unreadable() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let mut files = Vec::new();
    for i in 0..60u64 {
        let data = random_bytes(50_000 + i as usize * 1_000, 700 + i);
        let path = format!("/m{i}");
        client.put(&path, &data[..]).await.expect("put");
        files.push((path, data));
    }
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    let chunks = cluster.copies_per_chunk().len();

    cluster.add_chunkserver("chunk-4", 4).expect("add chunk-4");
    // Reads keep working while the rebalance runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        read_all(&client, &files, "nobody").await;
        let counts = cluster.copies_per_chunk();
        let on_new = cluster.chunk_files("chunk-4").len();
        if counts.len() == chunks && counts.values().all(|&n| n == 3) && on_new > 0 {
            // Each of 4 servers owns 3/4 of the chunks: chunk-4 took about
            // a quarter of all copies.
            let frac = on_new as f64 / (3 * chunks) as f64;
            assert!(
                (0.12..0.40).contains(&frac),
                "chunk-4 holds {frac:.2} of all copies"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rebalance did not settle: {} chunks, {on_new} on chunk-4, copies {:?}",
            counts.len(),
            counts.values().fold([0usize; 5], |mut a, &n| {
                a[n.min(4)] += 1;
                a
            })
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fresh = cluster.client().await.expect("fresh client");
    read_all(&fresh, &files, "nobody").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_replica_is_read_around_and_repaired() {
    let cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let data = random_bytes(3 << 20, 77);
    client.put("/c", &data[..]).await.expect("put");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    // Corrupt each chunk's copy on its primary: the copy readers try first.
    let mut corrupted = Vec::new();
    for name in cluster.chunkserver_names() {
        for (path, len) in cluster.chunk_files(&name) {
            let id: cairn_proto::ChunkId =
                path.file_name().unwrap().to_string_lossy().parse().unwrap();
            let primary = client.owners(&id)[0].addr.clone();
            if cluster.server_at(&primary).as_deref() == Some(name.as_str()) {
                let mut b = std::fs::read(&path).unwrap();
                b[(len / 3) as usize] ^= 1;
                std::fs::write(&path, b).unwrap();
                corrupted.push(path);
            }
        }
    }
    assert!(!corrupted.is_empty(), "no chunk to corrupt");
    // Reads return the right bytes from the other owners.
    let mut out = Vec::new();
    client
        .get("/c", &mut out)
        .await
        .expect("read around the bad replicas");
    assert!(out == data, "wrong bytes returned");
    // The readers reported them: each is quarantined, and repair puts a good
    // copy back in its place.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let good = corrupted.iter().all(|p| {
            let b = std::fs::read(p).unwrap_or_default();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            blake3::hash(&b).to_hex().as_str() == name
        });
        if good && cluster.copies_per_chunk().values().all(|&n| n == 3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bad replicas not repaired within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut out = Vec::new();
    client.get("/c", &mut out).await.expect("read after repair");
    assert!(out == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_server_during_a_put_never_yields_a_wrong_file() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let data = random_bytes(96 << 20, 4242);
    let put = {
        let client = client.clone();
        let data = data.clone();
        tokio::spawn(async move { client.put("/inflight", &data[..]).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    cluster.kill9("chunk-1").expect("kill -9 mid-put");
    let result = put.await.expect("put task");
    let check = |what: &'static str| {
        let client = client.clone();
        let data = data.clone();
        async move {
            let mut out = Vec::new();
            client
                .get("/inflight", &mut out)
                .await
                .unwrap_or_else(|e| panic!("acknowledged put unreadable {what}: {e}"));
            assert!(out == data, "acknowledged put reads back wrong {what}");
        }
    };
    match result {
        // Failing cleanly is allowed: nothing was committed.
        Err(_) => {
            let mut sink = Vec::new();
            assert!(client.get("/inflight", &mut sink).await.is_err());
        }
        Ok(attr) => {
            assert_eq!(attr.size, data.len() as u64);
            check("right after the kill").await;
            let restarted = Instant::now();
            cluster.restart_server("chunk-1").expect("restart");
            wait_heartbeat_since(&client, 1, restarted, Duration::from_secs(20)).await;
            // Repair (or the queued asynchronous copy) brings every chunk
            // back to three copies, and the file still reads back exactly.
            let chunks = referenced_chunks(&client, &["/inflight".to_string()])
                .await
                .expect("the file's chunks");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let counts = stored_chunks(&cluster);
                let copies: Vec<usize> = chunks
                    .iter()
                    .map(|id| counts.get(id).copied().unwrap_or(0))
                    .collect();
                assert!(
                    copies.iter().all(|&n| n <= 3),
                    "a chunk has more than three copies: {copies:?}"
                );
                if copies.iter().all(|&n| n == 3) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "chunks still short of three copies 60 s after the restart: {copies:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            check("after repair").await;
        }
    }
}
