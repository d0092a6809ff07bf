//! A chunkserver that crashes at any step of a chunk put — failpoints in a
//! real process (the test build has `--features failpoints`) — leaves no
//! chunk or a whole verified one: restarted, it holds only chunks whose
//! bytes hash to their names and no temporary file, and every file the
//! cluster acknowledged reads back exactly. A crash just before or after
//! it queues the asynchronous copy still ends with every chunk at three
//! copies and no garbage.

use std::time::{Duration, Instant};

use cairn_tests::copies::{referenced_chunks, wait_converged};
use cairn_tests::failpoints::{crash_at, require_failpoint_build};
use cairn_tests::{chunkserver_status, random_bytes, DevCluster};

/// The failpoints in `FileStore::put`, in the order a put passes them.
const STEPS: [&str; 5] = [
    "chunk-put-created",
    "chunk-put-half-written",
    "chunk-put-written",
    "chunk-put-synced",
    "chunk-put-renamed",
];

/// Whether chunkserver `id` is up, as `client`'s cluster says.
async fn is_up(client: &cairn_client::Client, id: u64) -> bool {
    chunkserver_status(client, id)
        .await
        .is_some_and(|c| c.up && !c.down)
}

async fn wait_up(client: &cairn_client::Client, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_up(client, id).await {
        assert!(Instant::now() < deadline, "chunk-{id} not up after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Restarts chunk-1 to crash at failpoint `step`, and waits until it is up.
async fn restart_crashing_at(cluster: &mut DevCluster, client: &cairn_client::Client, step: &str) {
    cluster.kill9("chunk-1").expect("kill chunk-1");
    cluster
        .restart_server_with("chunk-1", &[("FAILPOINTS", &crash_at(step))])
        .expect("restart chunk-1 with a failpoint");
    wait_up(client, 1).await;
}

/// Every acknowledged (path, bytes) reads back exactly.
async fn reads_back(client: &cairn_client::Client, acked: &[(String, Vec<u8>)]) {
    assert!(
        !acked.is_empty(),
        "no put was acknowledged around the crashes"
    );
    for (path, data) in acked {
        let mut back = Vec::new();
        client.get(path, &mut back).await.expect("get");
        assert!(&back == data, "{path} differs after the crashes");
    }
}

/// Files in chunk-1's `tmp/`.
fn temporary_files(cluster: &DevCluster) -> Vec<std::path::PathBuf> {
    let tmp = cluster.dir().join("data").join("chunk-1").join("tmp");
    std::fs::read_dir(tmp)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_put_leaves_no_chunk_or_a_whole_one() {
    require_failpoint_build();
    // Three servers and three copies: chunk-1 gets a copy of every chunk.
    let mut cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let mut acked = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        restart_crashing_at(&mut cluster, &client, step).await;

        let data = random_bytes(600_000, 40 + i as u64);
        let path = format!("/crash-{step}");
        if client.put(&path, &data[..]).await.is_ok() {
            acked.push((path, data));
        }
        assert!(
            cluster
                .wait_exit("chunk-1", Duration::from_secs(30))
                .expect("wait"),
            "chunk-1 did not crash at {step}"
        );
        if *step != "chunk-put-renamed" {
            assert!(
                !temporary_files(&cluster).is_empty(),
                "a crash at {step} left no temporary file: did the put pass the failpoint?"
            );
        }

        cluster.restart_server("chunk-1").expect("restart chunk-1");
        wait_up(&client, 1).await;
        for (file, _) in cluster.chunk_files("chunk-1") {
            let bytes = std::fs::read(&file).expect("read a chunk file");
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            assert_eq!(
                blake3::hash(&bytes).to_hex().as_str(),
                name,
                "after a crash at {step}, {} holds bytes that are not its chunk",
                file.display()
            );
        }
        // Puts that arrive after the restart pass through tmp/ too: what
        // the crash left must be gone, and nothing may stay.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = temporary_files(&cluster);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "after a crash at {step}: {left:?} still there 10 s after the restart"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    reads_back(&client, &acked).await;
}

/// The failpoints around queueing a put's asynchronous copy: stored on
/// the primary and its backup, the third copy not yet queued; or queued
/// and not yet answered.
const QUEUE_STEPS: [&str; 2] = ["replication-before-enqueue", "replication-enqueued"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_around_queueing_the_asynchronous_copy_still_ends_with_every_copy() {
    require_failpoint_build();
    // Three servers and three copies, two of them synchronous: the third
    // copy of a chunk chunk-1 takes as primary goes through its queue. A
    // short GC grace, so uploads never committed go within the test.
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster
        .reconfigure(&[("gc_interval_ms", 1_000)], &[("gc_grace_ms", 5_000)])
        .expect("restart with a short grace period");
    let client = cluster.client().await.expect("client");
    let mut acked = Vec::new();
    for (i, step) in QUEUE_STEPS.iter().enumerate() {
        restart_crashing_at(&mut cluster, &client, step).await;
        // Puts until chunk-1 is the primary of one and crashes.
        let started = Instant::now();
        let mut n = 0u64;
        while !cluster
            .wait_exit("chunk-1", Duration::from_millis(100))
            .expect("wait")
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "chunk-1 did not crash at {step} within 60 s"
            );
            n += 1;
            let data = random_bytes(300_000, 1_000 * (i as u64 + 1) + n);
            let path = format!("/{step}-{n}");
            let put = tokio::time::timeout(Duration::from_secs(30), client.put(&path, &data[..]));
            if let Ok(Ok(_)) = put.await {
                acked.push((path, data));
            }
        }
        cluster.restart_server("chunk-1").expect("restart chunk-1");
        wait_up(&client, 1).await;
    }
    reads_back(&client, &acked).await;
    // Every file's chunks reach three copies, and nothing else stays.
    let files: Vec<String> = client
        .list("/")
        .await
        .expect("list")
        .into_iter()
        .map(|e| format!("/{}", e.name))
        .collect();
    let referenced = referenced_chunks(&client, &files).await.expect("layouts");
    let converged = wait_converged(&cluster, &referenced, 3, Duration::from_secs(90)).await;
    assert!(
        converged.is_ok(),
        "not converged after the crashes: {converged:?}"
    );
}
