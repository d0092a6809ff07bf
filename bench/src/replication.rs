//! `cairn-bench replication`: how much data moves when a server joins, and
//! how long the cluster takes to heal when one is removed.
//!
//! On a 3-chunkserver `cairn dev` cluster (N=3, S=2) it puts one file of
//! random data, then:
//!
//! 1. starts a fourth chunkserver and waits until every chunk is stored on
//!    exactly its owners under the new ring: the share of chunk copies now
//!    on the new server is the fraction moved (ideal: 1/4);
//! 2. kills one of the original servers with SIGKILL, waits until the
//!    leader no longer counts it as up, runs `cairn chunkserver remove`,
//!    and times how long repair takes to bring every chunk back to three
//!    copies on the live servers.
//!
//! Finally it reads the file back and compares it with the source.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use cairn_client::Client;
use cairn_proto::ChunkId;
use cairn_tests::DevCluster;

use crate::{cairn, figure, mbps, print_rows, scratch_dir, timed, write_random_file};

/// Down timeout for the run (the default is 10 s): detection is not what
/// is measured, so the bench does not wait longer than it must.
const DOWN_AFTER_MS: i64 = 3_000;

/// Where each chunk is stored: chunk → ids of the servers holding it, and
/// chunk → size.
struct Placement {
    holders: HashMap<ChunkId, HashSet<u64>>,
    sizes: HashMap<ChunkId, u64>,
}

impl Placement {
    fn scan(cluster: &DevCluster, servers: &[u64]) -> Placement {
        let mut holders: HashMap<ChunkId, HashSet<u64>> = HashMap::new();
        let mut sizes = HashMap::new();
        for &id in servers {
            for (path, len) in cluster.chunk_files(&format!("chunk-{id}")) {
                let Some(chunk) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<ChunkId>().ok())
                else {
                    continue;
                };
                holders.entry(chunk).or_default().insert(id);
                sizes.insert(chunk, len);
            }
        }
        Placement { holders, sizes }
    }

    fn copies(&self) -> usize {
        self.holders.values().map(HashSet::len).sum()
    }

    fn bytes_on(&self, server: u64) -> u64 {
        self.holders
            .iter()
            .filter(|(_, h)| h.contains(&server))
            .map(|(c, _)| self.sizes.get(c).copied().unwrap_or(0))
            .sum()
    }

    /// Every chunk is held by exactly its owners under `client`'s ring.
    fn matches_ring(&self, client: &Client) -> bool {
        self.holders.iter().all(|(chunk, h)| {
            let owners: HashSet<u64> = client.owners(chunk).iter().map(|m| m.id).collect();
            *h == owners
        })
    }

    fn all_have(&self, copies: usize) -> bool {
        self.holders.values().all(|h| h.len() >= copies)
    }
}

/// Polls `done` every 200 ms; fails after `timeout`. Returns the time taken.
fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    while !done() {
        if t.elapsed() > timeout {
            bail!("{what}: not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(t.elapsed())
}

pub async fn run(
    mib: u64,
    timeout: Duration,
    work_dir: Option<PathBuf>,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    let base = scratch_dir(work_dir)?;
    eprintln!("starting a cairn dev cluster ...");
    std::env::set_var("TMPDIR", base.path());
    let mut cluster = DevCluster::start()?;
    cluster.reconfigure_meta(&[("chunkserver_down_after_ms", DOWN_AFTER_MS)])?;
    let bytes = mib << 20;
    let src = base.path().join("data.src");
    eprintln!("writing {mib} MiB of random data ...");
    write_random_file(&src, bytes, 7)?;
    let put = timed(cairn(&cluster, &["put", path_str(&src)?, "/data"]))?;
    eprintln!("put: {:.1} MB/s", mbps(bytes, put));
    let original = [1, 2, 3];
    wait_until("3 copies after the put", timeout, || {
        Placement::scan(&cluster, &original).all_have(3)
    })?;
    let before = Placement::scan(&cluster, &original);
    let mut rows = Vec::new();

    // ---- a fourth server joins ---------------------------------------------
    eprintln!("adding a fourth chunkserver ...");
    let started = Instant::now();
    cluster.add_chunkserver("chunk-4", 4)?;
    let client = ring_with(&cluster, 4, timeout).await?;
    let all = [1, 2, 3, 4];
    wait_until("rebalance onto the fourth server", timeout, || {
        Placement::scan(&cluster, &all).matches_ring(&client)
    })?;
    let rebalance = started.elapsed();
    let after = Placement::scan(&cluster, &all);
    ensure!(
        after.holders.len() == before.holders.len(),
        "chunks appeared or vanished during the rebalance"
    );
    let moved = after.holders.values().filter(|h| h.contains(&4)).count();
    let moved_bytes = after.bytes_on(4);
    rows.push(figure(
        format!(
            "chunk copies moved when a 4th server joins ({moved} of {}; ideal 0.25)",
            before.copies()
        ),
        "fraction",
        moved as f64 / before.copies() as f64,
    ));
    rows.push(figure(
        format!("rebalance: {} MiB onto the new server", moved_bytes >> 20),
        "seconds",
        rebalance.as_secs_f64(),
    ));

    // ---- a server dies and is removed ----------------------------------------
    let victim = 2;
    let lost = after.bytes_on(victim);
    eprintln!("killing chunk-{victim} and removing it ...");
    cluster.kill9(&format!("chunk-{victim}"))?;
    let waited = Instant::now();
    loop {
        let s = client.status().await?;
        if s.chunkservers.iter().any(|c| c.id == victim && !c.up) {
            break;
        }
        ensure!(
            waited.elapsed() < timeout,
            "chunk-{victim} never counted as down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    timed(cairn(
        &cluster,
        &["chunkserver", "remove", &victim.to_string()],
    ))?;
    let live = [1, 3, 4];
    wait_until("repair back to 3 copies", timeout, || {
        Placement::scan(&cluster, &live).all_have(3)
    })?;
    let restore = started.elapsed();
    rows.push(figure(
        format!(
            "restore 3 copies after removal ({} MiB re-replicated)",
            lost >> 20
        ),
        "seconds",
        restore.as_secs_f64(),
    ));
    rows.push(figure(
        "restore rate".to_string(),
        "MB/s",
        mbps(lost, restore),
    ));

    // ---- nothing was lost --------------------------------------------------
    let back = base.path().join("data.back");
    timed(cairn(&cluster, &["get", "/data", path_str(&back)?]))?;
    let same = Command::new("cmp")
        .arg(&src)
        .arg(&back)
        .status()
        .context("running cmp")?;
    ensure!(
        same.success(),
        "the file read back differs from what was put"
    );
    print_rows(&rows, json.as_deref())?;
    drop(cluster);
    Ok(())
}

/// A client whose ring holds `servers` chunkservers.
async fn ring_with(
    cluster: &DevCluster,
    servers: usize,
    timeout: Duration,
) -> anyhow::Result<Client> {
    let t = Instant::now();
    loop {
        let client = cluster.client().await?;
        if client.status().await?.chunkservers.len() == servers {
            return cluster.client().await;
        }
        ensure!(
            t.elapsed() < timeout,
            "the new chunkserver never registered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 temporary path")
}
