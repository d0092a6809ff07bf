//! A chunkserver that crashes at any step of a chunk put — failpoints in a
//! real process (the test build has `--features failpoints`) — leaves no
//! chunk or a whole verified one: restarted, it holds only chunks whose
//! bytes hash to their names and no temporary file, and every file the
//! cluster acknowledged reads back exactly.

use std::process::Command;
use std::time::{Duration, Instant};

use cairn_tests::{cairn_bin, chunkserver_status, random_bytes, DevCluster};

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

/// Files in chunk-1's `tmp/`.
fn temporary_files(cluster: &DevCluster) -> Vec<std::path::PathBuf> {
    let tmp = cluster.dir().join("data").join("chunk-1").join("tmp");
    std::fs::read_dir(tmp)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_put_leaves_no_chunk_or_a_whole_one() {
    let version = Command::new(cairn_bin())
        .arg("--version")
        .output()
        .expect("cairn --version");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("failpoints"),
        "{} was built without failpoints: build it with \
         `cargo build --release -p cairn --features failpoints` (scripts/test does)",
        cairn_bin().display()
    );
    // Three servers and three copies: chunk-1 gets a copy of every chunk.
    let mut cluster = DevCluster::start().expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let mut acked = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        cluster.kill9("chunk-1").expect("kill chunk-1");
        let failpoints = format!("{step}=return");
        cluster
            .restart_server_with("chunk-1", &[("FAILPOINTS", failpoints.as_str())])
            .expect("restart chunk-1 with a failpoint");
        wait_up(&client, 1).await;

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
    assert!(
        !acked.is_empty(),
        "no put was acknowledged around the crashes"
    );
    for (path, data) in &acked {
        let mut back = Vec::new();
        client.get(path, &mut back).await.expect("get");
        assert!(&back == data, "{path} differs after the crashes");
    }
}
