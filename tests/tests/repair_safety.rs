//! Repair never lowers safety: it does not bring garbage back (a removed
//! file's chunks are gone within the grace period plus two collector
//! intervals, with repair running), and a server that is no longer an owner
//! drops its copy only once every owner holds a copy that hashes to the
//! chunk id — a rotten owner copy is found and replaced, never trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cairn_proto::ChunkId;
use cairn_tests::{random_bytes, DevCluster};

const GRACE_MS: i64 = 4_000;
/// Collector intervals per chunkserver, unequal so that the servers'
/// passes fall apart: one owner's copy is gone while another's is still
/// there, which is when repair used to push the garbage back.
const GC_INTERVALS_MS: [i64; 3] = [2_000, 3_000, 7_000];

/// Sets integer `settings` in every chunkserver's config.
fn set_on_chunkservers(cluster: &DevCluster, settings: &[(&str, i64)]) {
    for name in cluster.chunkserver_names() {
        cluster
            .edit_config(&name, |cfg| {
                for (key, value) in settings {
                    cfg.insert((*key).to_string(), toml::Value::Integer(*value));
                }
            })
            .expect("edit chunkserver config");
    }
}

/// Per stored chunk (file name): (copies, copies whose bytes hash to it).
fn copies(cluster: &DevCluster) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (file, _, intact) in stored(cluster) {
        let e = out.entry(file).or_default();
        e.0 += 1;
        e.1 += usize::from(intact);
    }
    out
}

/// Every stored copy: its chunk (file name), its server, whether its bytes
/// hash to the chunk id.
fn stored(cluster: &DevCluster) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for name in cluster.chunkserver_names() {
        for (path, _) in cluster.chunk_files(&name) {
            let file = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let intact = file
                .parse::<ChunkId>()
                .ok()
                .is_some_and(|id| std::fs::read(&path).is_ok_and(|bytes| id.matches(&bytes)));
            out.push((file, name.clone(), intact));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_does_not_bring_a_removed_files_chunks_back() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster.stop_dev().expect("stop");
    // Repair stays at its default interval.
    for (name, interval) in cluster.chunkserver_names().iter().zip(GC_INTERVALS_MS) {
        cluster
            .edit_config(name, |cfg| {
                cfg.insert("gc_interval_ms".into(), toml::Value::Integer(interval));
            })
            .expect("edit chunkserver config");
    }
    cluster
        .reconfigure_meta(&[("gc_grace_ms", GRACE_MS)])
        .expect("restart with a short grace period");
    let client = cluster.client().await.expect("client");
    for i in 0..10u64 {
        let data = random_bytes((1 << 20) + (i as usize) * 300_000, 700 + i);
        client.put(&format!("/f{i}"), &data[..]).await.expect("put");
    }
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");
    let before = copies(&cluster).len();
    assert!(before >= 10, "only {before} chunks stored");
    for i in 0..10u64 {
        client.remove(&format!("/f{i}"), false).await.expect("rm");
    }
    let removed = Instant::now();
    // Grace period, plus two collector intervals, plus time for the passes
    // themselves and the first interval's phase.
    let slowest = GC_INTERVALS_MS.into_iter().max().unwrap_or_default();
    let bound = Duration::from_millis((GRACE_MS + 2 * slowest) as u64) + Duration::from_secs(4);
    let mut left = copies(&cluster);
    while !left.is_empty() && removed.elapsed() < bound {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = copies(&cluster);
    }
    let held: usize = left.values().map(|(n, _)| n).sum();
    assert!(
        left.is_empty(),
        "{held} copies of {} removed chunks still stored {:?} after the removal \
         (bound {bound:?}); repair pushed garbage back",
        left.len(),
        removed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotten_owner_copy_never_lets_a_good_copy_go() {
    let mut cluster = DevCluster::start().expect("cluster starts");
    cluster.stop_dev().expect("stop");
    set_on_chunkservers(&cluster, &[("repair_interval_ms", 1_000)]);
    cluster.start_dev().expect("restart");
    let client = cluster.client().await.expect("client");
    let data = random_bytes(24 << 20, 77);
    client.put("/big", &data[..]).await.expect("put");
    cluster
        .wait_replicated(3, Duration::from_secs(30))
        .expect("3 copies");

    // Every copy on chunk-1 rots (one byte flipped); nobody reads or
    // scrubs them.
    let rotten = cluster.chunk_files("chunk-1");
    assert!(rotten.len() >= 10, "only {} chunks", rotten.len());
    for (path, _) in &rotten {
        let mut bytes = std::fs::read(path).expect("read");
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        std::fs::write(path, &bytes).expect("rot");
    }
    let held_before: BTreeMap<String, BTreeSet<String>> = holders(&cluster);

    // A fourth server joins: about three quarters of the chunks gain it as
    // an owner, and the server they leave drops its copy once the owners
    // confirm theirs.
    cluster.add_chunkserver("chunk-4", 4).expect("add chunk-4");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut moved_short: Vec<(String, (usize, usize))>;
    loop {
        let now = copies(&cluster);
        let after = holders(&cluster);
        // Chunks a server no longer holds (dropped, or quarantined).
        let moved: Vec<&String> = held_before
            .iter()
            .filter(|(id, was)| after.get(*id).is_none_or(|is| !was.is_subset(is)))
            .map(|(id, _)| id)
            .collect();
        moved_short = moved
            .iter()
            .map(|id| ((*id).clone(), now.get(*id).copied().unwrap_or_default()))
            .filter(|(_, (n, intact))| *intact < 3 || *n != 3)
            .collect();
        let settled = !moved.is_empty()
            && moved_short.is_empty()
            && cluster.chunk_files("chunk-4").len() >= held_before.len() / 2;
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s, chunks that moved are not on 3 intact copies \
             (id: (copies, intact)): {moved_short:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Nothing that moved ever went below three good copies for long enough
    // to lose one: and the file reads back exactly.
    let mut back = Vec::new();
    client.get("/big", &mut back).await.expect("get");
    assert!(back == data, "file differs after the rebalance");
}

/// Per chunk, the servers holding a copy.
fn holders(cluster: &DevCluster) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, server, _) in stored(cluster) {
        out.entry(file).or_default().insert(server);
    }
    out
}
