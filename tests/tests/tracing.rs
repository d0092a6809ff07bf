//! One request id follows an operation across every hop: the client's
//! put, the metadata node's lookups and commit, the primary's store and
//! its synchronous copy on a backup.

use std::time::{Duration, Instant};

use cairn_proto::trace;
use cairn_tests::{random_bytes, DevCluster};

fn lines_with(cluster: &DevCluster, server: &str, needles: &[&str]) -> usize {
    let path = cluster.dir().join("logs").join(format!("{server}.log"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_id_is_logged_on_every_hop() {
    let cluster = DevCluster::start_with_env(
        &[],
        &[(
            "RUST_LOG",
            "info,cairn_metadata=debug,cairn_chunkserver::service=debug",
        )],
    )
    .expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let id: u64 = 0x5eed_cafe_f00d_0001;
    let data = random_bytes(200_000, 51);
    trace::scope(id, client.put("/traced", &data[..]))
        .await
        .expect("put");
    let needle = format!("id={}", trace::show(id));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let commit = lines_with(
            &cluster,
            "meta-1",
            &[&needle, "CommitFile", "request handled"],
        );
        let puts: usize = cluster
            .chunkserver_names()
            .iter()
            .map(|c| lines_with(&cluster, c, &[&needle, "Put", "request handled"]))
            .sum();
        let copies: usize = cluster
            .chunkserver_names()
            .iter()
            .map(|c| lines_with(&cluster, c, &[&needle, "Replicate", "request handled"]))
            .sum();
        if commit >= 1 && puts >= 1 && copies >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "request {needle}: {commit} commits on meta-1, {puts} puts and {copies} copies \
             on chunkservers:\n{}",
            cluster.log_tails(8)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another operation has another id.
    client.put("/other", &data[..1000]).await.expect("put");
    assert_eq!(
        lines_with(&cluster, "meta-1", &[&needle, "CommitFile"]),
        1,
        "the second put reused the first one's id"
    );
}
