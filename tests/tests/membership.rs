//! Chunkserver membership: a server that dies is marked down (writes skip
//! it, reads lose nothing) and, after the removal timeout, leaves the ring
//! so repair restores N copies; a server being retired is drained first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cairn_proto::meta_rpc::ClusterStatus;
use cairn_tests::{random_bytes, DevCluster};

/// Short timeouts so the test sees both verdicts quickly (chunkservers
/// heartbeat every 2 s).
const DOWN_AFTER_MS: i64 = 4_000;
const REMOVE_AFTER_MS: i64 = 9_000;

async fn status(client: &cairn_client::Client) -> ClusterStatus {
    client.status().await.expect("status")
}

/// Polls `check` every 250 ms until it holds; fails after `timeout`.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Adds chunk-4 and waits until every client placing from now on sees 4.
async fn four_servers(cluster: &mut DevCluster) -> cairn_client::Client {
    cluster.add_chunkserver("chunk-4", 4).expect("add chunk-4");
    let client = cluster.client().await.expect("client");
    wait_for("chunk-4 registers", Duration::from_secs(20), || async {
        status(&client).await.chunkservers.len() == 4
    })
    .await;
    cluster
        .client()
        .await
        .expect("client with the 4-server ring")
}

/// Copies of each chunk on the servers `names`.
fn copies_on(cluster: &DevCluster, names: &[&str]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for name in names {
        for (p, _) in cluster.chunk_files(name) {
            let f = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            *counts.entry(f).or_insert(0) += 1;
        }
    }
    counts
}

async fn put_files(
    client: &cairn_client::Client,
    prefix: &str,
    n: u64,
    seed: u64,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for i in 0..n {
        // Mostly small files, every 25th spanning a few chunks.
        let size = if i % 25 == 0 {
            (2 << 20) + i as usize * 1_000
        } else {
            4_000 + (i as usize * 7_919) % 120_000
        };
        let data = random_bytes(size, seed + i);
        let path = format!("/{prefix}{i}");
        client.put(&path, &data[..]).await.expect("put");
        files.push((path, data));
    }
    files
}

/// Reads every file; returns how many reads failed or differed.
async fn failed_reads(client: &cairn_client::Client, files: &[(String, Vec<u8>)]) -> usize {
    let mut failed = 0;
    for (path, data) in files {
        let mut out = Vec::new();
        match client.get(path, &mut out).await {
            Ok(_) if out == *data => {}
            Ok(_) => {
                eprintln!("{path}: wrong bytes");
                failed += 1;
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                failed += 1;
            }
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_marked_down_then_removed_and_repair_restores_three_copies() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster
        .reconfigure_meta(&[
            ("chunkserver_down_after_ms", DOWN_AFTER_MS),
            ("chunkserver_remove_after_ms", REMOVE_AFTER_MS),
        ])
        .expect("short membership timeouts");
    let client = four_servers(&mut cluster).await;
    let mut files = put_files(&client, "f", 200, 10_000).await;
    cluster
        .wait_replicated(3, Duration::from_secs(60))
        .expect("3 copies of every chunk");

    cluster.kill9("chunk-2").expect("kill -9 chunk-2");
    // Zero failed reads right after the kill, from the client that was
    // connected to it all along.
    assert_eq!(
        failed_reads(&client, &files).await,
        0,
        "reads failed after kill -9"
    );

    // Marked down: new writes go around it and are acknowledged.
    wait_for("chunk-2 marked down", Duration::from_secs(20), || async {
        let s = status(&client).await;
        s.chunkservers.iter().any(|c| c.id == 2 && c.down)
    })
    .await;
    let written_while_down = put_files(&client, "w", 20, 20_000).await;
    files.extend(written_while_down);
    assert_eq!(
        failed_reads(&client, &files).await,
        0,
        "reads failed while down"
    );

    // Removed from the ring without anyone asking.
    wait_for(
        "chunk-2 removed from the ring",
        Duration::from_secs(30),
        || async { status(&client).await.chunkservers.iter().all(|c| c.id != 2) },
    )
    .await;

    // Repair restores 3 copies of every chunk on the live servers.
    let live = ["chunk-1", "chunk-3", "chunk-4"];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let counts = copies_on(&cluster, &live);
        let short = counts.values().filter(|&&n| n < 3).count();
        if short == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{short} of {} chunks still short of 3 copies 90 s after removal",
            counts.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Status agrees once the servers have reported a pass.
    wait_for(
        "status shows no under-replicated chunks",
        Duration::from_secs(30),
        || async { status(&client).await.under_replicated == 0 },
    )
    .await;
    let fresh = cluster.client().await.expect("fresh client");
    assert_eq!(
        failed_reads(&fresh, &files).await,
        0,
        "reads failed after repair"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_server_hands_over_every_chunk_before_removal() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster
        .reconfigure_meta(&[("chunkserver_down_after_ms", DOWN_AFTER_MS)])
        .expect("short down timeout");
    let client = four_servers(&mut cluster).await;
    let files = put_files(&client, "d", 40, 30_000).await;
    cluster
        .wait_replicated(3, Duration::from_secs(60))
        .expect("3 copies of every chunk");
    assert!(
        !cluster.chunk_files("chunk-4").is_empty(),
        "chunk-4 got no chunks"
    );

    // A live server cannot be removed outright.
    let o = cluster.cairn(&["chunkserver", "remove", "4"]);
    assert!(
        !o.status.success(),
        "removing a live server was accepted: {}; status {:?}",
        String::from_utf8_lossy(&o.stdout),
        status(&client).await
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("drain"),
        "the refusal should point to drain: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let o = cluster.cairn(&["chunkserver", "drain", "4", "--wait", "--timeout", "120"]);
    assert!(
        o.status.success(),
        "drain: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        cluster.chunk_files("chunk-4").is_empty(),
        "chunk-4 still holds chunks"
    );
    let rest = copies_on(&cluster, &["chunk-1", "chunk-2", "chunk-3"]);
    assert!(
        rest.values().all(|&n| n == 3),
        "a chunk lacks 3 copies after the drain"
    );
    assert_eq!(
        failed_reads(&client, &files).await,
        0,
        "reads failed after the drain"
    );

    // Stopped, it can be removed; nothing is lost.
    cluster.kill9("chunk-4").expect("stop chunk-4");
    wait_for(
        "chunk-4 seen as not up",
        Duration::from_secs(20),
        || async {
            status(&client)
                .await
                .chunkservers
                .iter()
                .any(|c| c.id == 4 && !c.up)
        },
    )
    .await;
    let o = cluster.cairn(&["chunkserver", "remove", "4"]);
    assert!(
        o.status.success(),
        "remove: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fresh = cluster.client().await.expect("fresh client");
    assert_eq!(
        failed_reads(&fresh, &files).await,
        0,
        "reads failed after removal"
    );
}
