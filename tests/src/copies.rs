//! Counting chunk copies on the chunkservers' disks, to check that a
//! cluster converged: every referenced chunk at N copies, no garbage.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cairn_client::Client;

use crate::DevCluster;

/// Longest reading one file's layout may take.
const LAYOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every chunk the files at `paths` reference (hex ids).
pub async fn referenced_chunks(
    client: &Client,
    paths: &[String],
) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for path in paths {
        let layout = async {
            let attr = client.stat(path).await?;
            client.inodes().content(attr.ino).await
        };
        let (content, _) = tokio::time::timeout(LAYOUT_TIMEOUT, layout)
            .await
            .map_err(|_| anyhow::anyhow!("reading the layout of {path} timed out"))??;
        out.extend(content.extents.iter().map(|e| e.chunk.to_hex()));
    }
    Ok(out)
}

/// Copies of every chunk stored (hex id → chunkservers holding a file
/// named for it); temporary and quarantined files are not chunks.
pub fn stored_chunks(cluster: &DevCluster) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in cluster.chunkserver_names() {
        for (path, _) in cluster.chunk_files(&name) {
            let Some(f) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else {
                continue;
            };
            if f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit()) {
                *counts.entry(f).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// How far the stored copies are from converged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Referenced chunks with fewer than N copies.
    pub short: usize,
    /// Stored chunks no file references.
    pub garbage: usize,
}

/// Counts `referenced` chunks short of `copies`, and garbage.
pub fn census(cluster: &DevCluster, referenced: &BTreeSet<String>, copies: usize) -> Census {
    let counts = stored_chunks(cluster);
    Census {
        short: referenced
            .iter()
            .filter(|id| counts.get(*id).copied().unwrap_or(0) < copies)
            .count(),
        garbage: counts.keys().filter(|id| !referenced.contains(*id)).count(),
    }
}

/// Waits until the `referenced` chunks have `copies` copies each and no
/// garbage is left: `Ok` with how long that took, or `Err` with the last
/// census once `within` has passed.
pub async fn wait_converged(
    cluster: &DevCluster,
    referenced: &BTreeSet<String>,
    copies: usize,
    within: Duration,
) -> Result<Duration, Census> {
    let started = Instant::now();
    loop {
        let now = census(cluster, referenced, copies);
        if now == Census::default() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until no chunkserver has an asynchronous copy queued (every
/// `queue/` directory empty), so that no push is still on its way to a
/// server whose copies a test is about to tamper with.
pub fn wait_queues_drained(cluster: &DevCluster, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let queued: usize = cluster
            .chunkserver_names()
            .iter()
            .map(|name| {
                let dir = cluster.dir().join("data").join(name).join("queue");
                std::fs::read_dir(dir).map_or(0, |d| d.count())
            })
            .sum();
        if queued == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{queued} asynchronous copies still queued after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
