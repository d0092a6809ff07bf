//! Garbage collection: chunks no file references are deleted once the
//! grace period has passed, never before, and never while a file still
//! references them (dedup); uploads never committed go too; a write too
//! slow to commit within half the grace period is refused. Failpoints
//! widen the races: a collector paused between its verdict and the delete
//! while the same bytes are written again, and a write held or abandoned
//! between its upload and its commit.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cairn_client::ClientError;
use cairn_net::call_chunk;
use cairn_net::{client_endpoint, connect};
use cairn_proto::chunk_rpc::{ChunkRequest, ChunkResponse};
use cairn_proto::ChunkId;
use cairn_tests::copies::{referenced_chunks, stored_chunks, wait_converged};
use cairn_tests::failpoints::require_failpoint_build;
use cairn_tests::{random_bytes, DevCluster};

const GRACE_MS: i64 = 2_000;

/// A cluster whose metadata collects after `GRACE_MS`, with chunkservers
/// collecting every `interval_ms`.
fn cluster(interval_ms: i64) -> DevCluster {
    let mut c = DevCluster::start().expect("cluster starts");
    c.reconfigure(
        &[("gc_interval_ms", interval_ms)],
        &[("gc_grace_ms", GRACE_MS)],
    )
    .expect("restart with a short grace period");
    c
}

/// Chunk ids (file names) stored on any chunkserver, with copies.
fn stored(cluster: &DevCluster) -> Vec<String> {
    let mut out = Vec::new();
    for name in cluster.chunkserver_names() {
        for (path, _) in cluster.chunk_files(&name) {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn distinct(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

fn gc_json(cluster: &DevCluster, dry_run: bool) -> serde_json::Value {
    let mut args = vec!["gc", "--json"];
    if dry_run {
        args.push("--dry-run");
    }
    let o = cluster.cairn(&args);
    assert!(
        o.status.success(),
        "cairn gc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON")
}

/// The chunk ids a `cairn gc --json` report names, with copies.
fn named(report: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = report["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .flat_map(|s| s["items"].as_array().cloned().unwrap_or_default())
        .map(|i| i["chunk"].as_str().expect("chunk id").to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_chunks_go_after_the_grace_period_and_shared_ones_stay() {
    let cluster = cluster(600_000);
    let client = cluster.client().await.expect("client");
    let shared = random_bytes(3 << 20, 41);
    client.put("/a", &shared[..]).await.expect("put a");
    let after_a = distinct(&stored(&cluster));
    client.put("/b", &shared[..]).await.expect("put b (dedup)");
    let only_c = random_bytes(2 << 20, 42);
    client.put("/c", &only_c[..]).await.expect("put c");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    let c_chunks: BTreeSet<String> = distinct(&stored(&cluster))
        .difference(&after_a)
        .cloned()
        .collect();
    assert!(!c_chunks.is_empty() && !after_a.is_empty());

    // An upload nobody commits.
    let orphan = random_bytes(100_000, 43);
    let orphan_id = ChunkId::of(&orphan);
    let cfg = cairn_client::ClientConfig::load(&cluster.client_config()).expect("config");
    let ep = client_endpoint(&cfg.tls.load().expect("tls")).expect("endpoint");
    let chunk1 = cluster.listen_addr("chunk-1").unwrap().to_string();
    let conn = connect(&ep, &chunk1).await.expect("connect");
    let put = ChunkRequest::Put {
        id: orphan_id,
        len: orphan.len() as u32,
        backups: vec![],
        async_copies: vec![],
    };
    let (reply, _) = call_chunk(&conn, &put, &orphan).await.expect("put");
    assert_eq!(reply.result, Ok(ChunkResponse::Stored));

    client.remove("/a", false).await.expect("rm a");
    client.remove("/c", false).await.expect("rm c");
    let rm_done = Instant::now();

    // Within the grace period nothing goes.
    let report = gc_json(&cluster, false);
    assert!(named(&report).is_empty(), "deleted early: {report}");
    assert!(c_chunks.is_subset(&distinct(&stored(&cluster))));

    tokio::time::sleep(Duration::from_millis(GRACE_MS as u64 + 500)).await;
    assert!(rm_done.elapsed() > Duration::from_millis(GRACE_MS as u64));
    // A dry run lists exactly c's chunks (every copy) and the orphan.
    let dry = gc_json(&cluster, true);
    let listed = named(&dry);
    let mut want: Vec<String> = stored(&cluster)
        .into_iter()
        .filter(|id| c_chunks.contains(id) || *id == orphan_id.to_hex())
        .collect();
    want.sort();
    assert_eq!(listed, want, "dry run: {dry}");
    assert!(listed.contains(&orphan_id.to_hex()));
    assert!(
        c_chunks.is_subset(&distinct(&stored(&cluster))),
        "a dry run deleted something"
    );

    // The real pass deletes them, and only them.
    let report = gc_json(&cluster, false);
    assert_eq!(named(&report), want, "gc: {report}");
    let left = distinct(&stored(&cluster));
    assert!(left.is_disjoint(&c_chunks), "c's chunks survived");
    assert!(!left.contains(&orphan_id.to_hex()), "the orphan survived");
    assert!(
        after_a.is_subset(&left),
        "a chunk /b references was deleted"
    );
    let mut out = Vec::new();
    client.get("/b", &mut out).await.expect("get b");
    assert!(out == shared, "/b reads back different bytes");
    ep.close(0u32.into(), b"done");

    // cairn status counts the deletions once heartbeats carry them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client.status().await.expect("status");
        let deleted: u64 = status.chunkservers.iter().map(|c| c.gc.chunks).sum();
        if deleted == want.len() as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status counts {deleted} deleted copies, expected {}",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = cluster.cairn(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("{} chunk copies deleted", want.len())),
        "cairn status says:\n{text}"
    );
}

/// The collectors' interval in [`the_collector_runs_by_itself`].
const INTERVAL_MS: i64 = 300;

/// With the default repair interval, a removed file's chunks are gone from
/// every server within the grace period plus two collector intervals
/// (plus a few seconds for the passes themselves and the heartbeats).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_runs_by_itself() {
    let cluster = cluster(INTERVAL_MS);
    let client = cluster.client().await.expect("client");
    let data = random_bytes(1 << 20, 44);
    client.put("/gone", &data[..]).await.expect("put");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    assert!(!stored(&cluster).is_empty());
    client.remove("/gone", false).await.expect("rm");
    let removed = Instant::now();
    let bound = Duration::from_millis((GRACE_MS + 2 * INTERVAL_MS) as u64) + Duration::from_secs(5);
    while !stored(&cluster).is_empty() {
        assert!(
            removed.elapsed() < bound,
            "chunks still stored {bound:?} after the delete (grace {GRACE_MS} ms, \
             interval {INTERVAL_MS} ms): {:?}",
            stored(&cluster)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "a removed file's chunks were gone from every server {:?} after the delete \
         (grace {GRACE_MS} ms, collector interval {INTERVAL_MS} ms)",
        removed.elapsed()
    );
}

/// Yields `first`, then nothing for `pause`, then `rest`.
struct SlowReader {
    first: Vec<u8>,
    rest: Vec<u8>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    pause_for: Duration,
}

impl tokio::io::AsyncRead for SlowReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.first.is_empty() {
            let n = self.first.len().min(buf.remaining());
            let chunk: Vec<u8> = self.first.drain(..n).collect();
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        let pause_for = self.pause_for;
        let sleep = self
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause_for)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let n = self.rest.len().min(buf.remaining());
        let chunk: Vec<u8> = self.rest.drain(..n).collect();
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_slower_than_half_the_grace_period_is_not_committed() {
    let cluster = cluster(600_000);
    let client = cluster.client().await.expect("client");
    let data = random_bytes(6 << 20, 45);
    let reader = SlowReader {
        first: data[..5 << 20].to_vec(),
        rest: data[5 << 20..].to_vec(),
        pause: None,
        pause_for: Duration::from_millis(GRACE_MS as u64 / 2 + 200),
    };
    let err = client
        .put("/slow", reader)
        .await
        .expect_err("a write past half the grace period must not commit");
    assert!(
        matches!(err, ClientError::CommitTooLate { .. }),
        "unexpected error: {err}"
    );
    assert!(client.stat("/slow").await.is_err(), "/slow was committed");
    // A prompt write of the same bytes commits.
    client.put("/slow", &data[..]).await.expect("prompt put");
}

/// Chunks (hex ids) of the file at `path`.
async fn chunks_of(client: &cairn_client::Client, path: &str) -> BTreeSet<String> {
    referenced_chunks(client, &[path.to_string()])
        .await
        .expect("layout")
}

/// Whether any chunkserver's log says its collector paused before a
/// delete (the `gc-before-delete` failpoint).
fn collector_paused(cluster: &DevCluster) -> bool {
    cluster.chunkserver_names().iter().any(|name| {
        let log = cluster.dir().join("logs").join(format!("{name}.log"));
        std::fs::read_to_string(log)
            .is_ok_and(|text| text.contains("failpoint gc-before-delete: pausing"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_while_the_collector_pauses_before_its_delete_keeps_the_chunk() {
    require_failpoint_build();
    let mut cluster = cluster(500);
    // Every collector pauses 4 s between metadata's verdict and a delete.
    for name in cluster.chunkserver_names() {
        cluster.kill9(&name).expect("kill");
        cluster
            .restart_server_with(&name, &[("FAILPOINTS", "gc-before-delete=return(4000)")])
            .expect("restart with the pause");
    }
    let client = cluster.client().await.expect("client");
    let data = random_bytes(600_000, 46);
    client.put("/a", &data[..]).await.expect("put a");
    let chunks = chunks_of(&client, "/a").await;
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    client.remove("/a", false).await.expect("remove a");
    // Once a collector has condemned the chunk and is pausing before the
    // delete, the same bytes are written again (an upload, or a dedup hit).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !collector_paused(&cluster) {
        assert!(
            Instant::now() < deadline,
            "no collector condemned /a's chunk"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.put("/b", &data[..]).await.expect("put b");
    assert_eq!(
        chunks_of(&client, "/b").await,
        chunks,
        "/b is not /a's bytes"
    );
    // The paused deletes run, and later passes see /b's reference.
    tokio::time::sleep(Duration::from_millis(4_000 + 3 * GRACE_MS as u64)).await;
    let mut back = Vec::new();
    client.get("/b", &mut back).await.expect("get b");
    assert!(back == data, "/b reads back other bytes");
    let copies = stored_chunks(&cluster);
    for id in &chunks {
        assert_eq!(
            copies.get(id).copied().unwrap_or(0),
            3,
            "{id} of /b lost copies to a delete condemned before /b was written"
        );
    }
}

/// Puts `data` at `path` with the write-path failpoint set to `action`
/// (in this process); the put must fail.
async fn put_stopped_before_commit(
    client: &cairn_client::Client,
    path: &str,
    data: &[u8],
    action: &str,
) -> ClientError {
    fail::cfg("client-put-before-commit", action).expect("failpoint");
    let put = client.put(path, data).await;
    fail::remove("client-put-before-commit");
    match put {
        Ok(_) => panic!("{path} was committed past the failpoint ({action})"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_between_upload_and_commit_past_half_the_grace_is_refused() {
    let cluster = cluster(500);
    let client = cluster.client().await.expect("client");
    let data = random_bytes(600_000, 47);
    // The write stores its chunk, then waits longer than the grace period
    // before its commit: collectors may take the chunk meanwhile.
    let held = format!("return({})", GRACE_MS + 1_000);
    let err = put_stopped_before_commit(&client, "/held", &data, &held).await;
    assert!(
        matches!(err, ClientError::CommitTooLate { .. }),
        "unexpected error: {err}"
    );
    assert!(client.stat("/held").await.is_err(), "/held was committed");
    client.put("/held", &data[..]).await.expect("prompt put");
    tokio::time::sleep(Duration::from_millis(3 * GRACE_MS as u64)).await;
    let mut back = Vec::new();
    client.get("/held", &mut back).await.expect("get");
    assert!(back == data, "/held reads back other bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_abandoned_between_upload_and_commit_leaves_no_garbage() {
    let cluster = cluster(500);
    let client = cluster.client().await.expect("client");
    let data = random_bytes(3 << 20, 48);
    let err = put_stopped_before_commit(&client, "/abandoned", &data, "return").await;
    assert!(
        err.to_string().contains("failpoint"),
        "unexpected error: {err}"
    );
    assert!(
        client.stat("/abandoned").await.is_err(),
        "/abandoned was committed"
    );
    let uploaded = distinct(&stored(&cluster));
    assert!(
        !uploaded.is_empty(),
        "the write stored no chunk before its commit"
    );
    // Never committed, the chunks go once the grace period has passed.
    let waited = wait_converged(&cluster, &BTreeSet::new(), 3, Duration::from_secs(30)).await;
    assert!(
        waited.is_ok(),
        "the abandoned write's chunks are still stored: {waited:?}"
    );
}
