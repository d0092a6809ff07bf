//! The scrubber finds a copy that rotted on disk without anyone reading
//! it, quarantines it, and repair puts a good copy back.

use std::time::{Duration, Instant};

use cairn_tests::copies::wait_queues_drained;
use cairn_tests::{random_bytes, DevCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrub_finds_and_repairs_a_flipped_bit() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    // Scrub and repair every second (defaults: a day and 5 s).
    cluster
        .reconfigure(
            &[("scrub_interval_ms", 1000), ("repair_interval_ms", 1000)],
            &[],
        )
        .expect("restart");
    let client = cluster.client().await.expect("client");
    let data = random_bytes(3 << 20, 21);
    client.put("/scrubbed", &data[..]).await.expect("put");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    // The third copy may have come by repair while the asynchronous one is
    // still queued: once pushed, it would replace the rotten copy before
    // the scrubber finds it.
    wait_queues_drained(&cluster, Duration::from_secs(30)).expect("queues drained");

    // Flip one bit of one copy on chunk-1; nobody reads it.
    let (path, len) = cluster
        .chunk_files("chunk-1")
        .into_iter()
        .max_by_key(|(_, len)| *len)
        .expect("chunk-1 holds a chunk");
    let name = path.file_name().unwrap().to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(len / 2) as usize] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    let quarantined = cluster
        .dir()
        .join("data")
        .join("chunk-1")
        .join("quarantine")
        .join(&name);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let restored = std::fs::read(&path)
            .ok()
            .is_some_and(|b| blake3::hash(&b).to_hex().as_str() == name.to_string_lossy());
        if quarantined.exists() && restored {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s: quarantined {}, good copy back {restored}:\n{}",
            quarantined.exists(),
            cluster.log_tails(10)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        std::fs::read(&quarantined).unwrap(),
        bytes,
        "the quarantined file is not the rotten copy"
    );

    // Status counts it, once the next heartbeat carried it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client.status().await.expect("status");
        let corrupt: u64 = status.chunkservers.iter().map(|c| c.scrub.corrupt).sum();
        let scrubbed: u64 = status.chunkservers.iter().map(|c| c.scrub.chunks).sum();
        if corrupt == 1 && scrubbed > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status shows {corrupt} corrupt copies, {scrubbed} scrubbed chunks"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = cluster.cairn(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(", 1 corrupt copies quarantined"),
        "cairn status says:\n{text}"
    );
    let mut out = Vec::new();
    client.get("/scrubbed", &mut out).await.expect("get");
    assert!(out == data, "the file reads back different bytes");
}
