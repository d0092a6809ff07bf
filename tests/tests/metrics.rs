//! Every server serves Prometheus metrics that parse as the text format,
//! and the counters move with the work done.

use std::net::SocketAddr;

use cairn_tests::metrics::{get, metrics_addr};
use cairn_tests::{random_bytes, DevCluster};
use prometheus_parse::{Scrape, Value};

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics");
    assert!(status.contains("200"), "GET /metrics: {status}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// The sum of samples named `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => 0.0,
        })
        .sum()
}

fn chunk_total(cluster: &DevCluster, name: &str, labels: &[(&str, &str)]) -> f64 {
    cluster
        .chunkserver_names()
        .iter()
        .map(|c| value(&scrape(metrics_addr(cluster, c)), name, labels))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_counters_move() {
    let cluster = DevCluster::start().expect("cluster starts");
    let meta = metrics_addr(&cluster, "meta-1");

    let before = scrape(meta);
    assert!(value(&before, "cairn_raft_term", &[]) >= 1.0);
    assert_eq!(value(&before, "cairn_raft_is_leader", &[]), 1.0);
    assert_eq!(value(&before, "cairn_files", &[]), 0.0);
    let commits_before = value(&before, "cairn_requests_total", &[("op", "CommitFile")]);
    let applied_before = value(&before, "cairn_raft_applied_index", &[]);
    let in_before = chunk_total(&cluster, "cairn_chunk_bytes_in_total", &[]);
    let out_before = chunk_total(&cluster, "cairn_chunk_bytes_out_total", &[]);
    let puts_before = chunk_total(&cluster, "cairn_requests_total", &[("op", "Put")]);

    let client = cluster.client().await.expect("client");
    let data = random_bytes(2 << 20, 31);
    client.put("/measured", &data[..]).await.expect("put");
    let mut out = Vec::new();
    client.get("/measured", &mut out).await.expect("get");
    assert!(out == data);

    let after = scrape(meta);
    assert_eq!(value(&after, "cairn_files", &[]), 1.0);
    assert!(
        value(
            &after,
            "cairn_requests_total",
            &[("op", "CommitFile"), ("outcome", "ok")]
        ) > commits_before,
        "the commit was not counted"
    );
    assert!(value(&after, "cairn_raft_applied_index", &[]) > applied_before);
    let commit_latency = after
        .samples
        .iter()
        .find(|x| x.metric == "cairn_request_seconds" && x.labels.get("op") == Some("CommitFile"))
        .expect("a CommitFile latency histogram");
    assert!(matches!(&commit_latency.value, Value::Histogram(b) if !b.is_empty()));

    // Two synchronous copies of 2 MiB at least came in; 2 MiB went out.
    let came_in = chunk_total(&cluster, "cairn_chunk_bytes_in_total", &[]) - in_before;
    let went_out = chunk_total(&cluster, "cairn_chunk_bytes_out_total", &[]) - out_before;
    assert!(
        came_in >= 2.0 * data.len() as f64,
        "bytes in grew by {came_in}"
    );
    assert!(
        went_out >= data.len() as f64,
        "bytes out grew by {went_out}"
    );
    assert!(chunk_total(&cluster, "cairn_requests_total", &[("op", "Put")]) > puts_before);
    assert!(chunk_total(&cluster, "cairn_chunks_stored", &[]) >= 1.0);

    let (status, _) = get(meta, "/elsewhere");
    assert!(status.contains("404"), "GET /elsewhere: {status}");
}
