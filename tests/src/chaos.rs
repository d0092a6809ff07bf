//! Chaos on real processes: the [`nemesis`](crate::nemesis) faults servers
//! and cuts links (every server is behind a relay, [`crate::links`]) while
//! writers put, overwrite and remove files through the library and a
//! mount writes and fsyncs files; then the checker proves that every
//! acknowledged write reads back exactly and that the cluster converges to
//! N copies of every referenced chunk and no garbage.
//!
//! The model: each writer owns its keys, so each key's history is
//! sequential. An acknowledged put or remove fixes the key's state; one
//! that failed or timed out leaves it uncertain (the old state or the new
//! one) until the next acknowledged operation. At the end every key must
//! read as one of its possible states; anything else is a lost write.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_client::Client;
use cairn_proto::ErrorCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::copies::{referenced_chunks, wait_converged};
use crate::fuse_mount::FuseMount;
use crate::links::{relay_every_server, Relays};
use crate::nemesis::{apply, Planner, Step};
use crate::shared_files;
use crate::{random_bytes, DevCluster};

/// Copies of every chunk (the dev cluster's policy).
const COPIES: usize = 3;
/// Keys each writer owns.
const KEYS_PER_WRITER: usize = 6;
/// Longest one operation may take before it counts as failed.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one read of the final check may take (tried three times).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the cluster may take to converge once faults stop.
const CONVERGE_WITHIN: Duration = Duration::from_secs(180);
/// GC grace on the chaos cluster (short, so garbage drains within the
/// run; a write slower than half of it is refused, not lost).
const GC_GRACE_MS: i64 = 20_000;

/// What one chaos run did and found.
#[derive(Debug, Default, serde::Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    /// How long faults were injected.
    pub fault_seconds: f64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Faults injected, by server.
    pub faults_by_server: BTreeMap<String, u64>,
    /// Library operations acknowledged and failed (or timed out).
    pub ops_acked: u64,
    pub ops_failed: u64,
    /// Why library operations failed: the error's first words, counted.
    pub failures: BTreeMap<String, u64>,
    /// Keys read back at the end, and those holding no possible state.
    pub keys_checked: u64,
    /// Files the mount wrote and fsynced (acknowledged), and read back.
    pub mount_files_acked: u64,
    pub mount_writes_failed: u64,
    /// Every acknowledged write found wrong or missing (empty: none).
    pub lost: Vec<String>,
    /// Operations on the shared files whose history was checked, and why
    /// it is not linearizable (`None`: it is).
    pub shared_ops_checked: usize,
    pub shared_history_violation: Option<String>,
    /// Seconds after the faults stopped until every referenced chunk had
    /// N copies and no garbage was left (`None`: not within the bound).
    pub converged_after: Option<f64>,
    /// At the end: referenced chunks short of N copies, and garbage chunks.
    pub short_chunks: usize,
    pub garbage_chunks: usize,
}

impl ChaosReport {
    /// True if nothing acknowledged was lost, the shared files' history is
    /// linearizable and the cluster converged.
    pub fn ok(&self) -> bool {
        self.lost.is_empty()
            && self.shared_history_violation.is_none()
            && self.converged_after.is_some()
    }
}

/// A cluster set up for chaos: three metadata nodes, four chunkservers,
/// GC grace [`GC_GRACE_MS`] and a GC pass every 2 s, every server behind
/// a relay.
pub fn cluster() -> anyhow::Result<(DevCluster, Relays)> {
    let mut cluster = DevCluster::start_with(&["--meta", "3", "--chunkservers", "4"])?;
    for name in cluster.chunkserver_names() {
        cluster.edit_config(&name, |cfg| {
            cfg.insert("gc_interval_ms".into(), toml::Value::Integer(2_000));
        })?;
    }
    for name in cluster.meta_names() {
        cluster.edit_config(&name, |cfg| {
            cfg.insert("gc_grace_ms".into(), toml::Value::Integer(GC_GRACE_MS));
        })?;
    }
    let relays = relay_every_server(&mut cluster)?;
    Ok((cluster, relays))
}

type Hash = [u8; 32];

/// One writer's keys and what each may hold (`None`: absent).
#[derive(Default)]
struct WriterLog {
    possible: BTreeMap<String, Vec<Option<Hash>>>,
    acked: u64,
    failed: u64,
    failures: BTreeMap<String, u64>,
    anomalies: Vec<String>,
}

/// Counts a failed operation under the start of its error (chunk ids and
/// other long hex words read `…`, so one kind of failure counts once).
fn count_failure(failed: &mut u64, failures: &mut BTreeMap<String, u64>, why: String) {
    *failed += 1;
    let words: Vec<&str> = why
        .split(' ')
        .map(|w| {
            let hex = w.len() >= 16 && w.bytes().all(|b| b.is_ascii_hexdigit());
            if hex {
                "…"
            } else {
                w
            }
        })
        .collect();
    let kind: String = words.join(" ").chars().take(60).collect();
    *failures.entry(kind).or_default() += 1;
}

async fn writer(client: Client, w: usize, seed: u64, stop: Arc<AtomicBool>) -> WriterLog {
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9));
    let mut log = WriterLog::default();
    for k in 0..KEYS_PER_WRITER {
        log.possible.insert(format!("/chaos/w{w}-k{k}"), vec![None]);
    }
    let keys: Vec<String> = log.possible.keys().cloned().collect();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = keys[rng.random_range(0..keys.len())].clone();
        let states = log.possible.get_mut(&key).expect("own key");
        if rng.random_bool(0.2) {
            match tokio::time::timeout(OP_TIMEOUT, client.remove(&key, false)).await {
                Ok(Ok(())) => {
                    log.acked += 1;
                    *states = vec![None];
                }
                Ok(Err(e)) if e.code() == Some(ErrorCode::NotFound) => {
                    if states.contains(&None) {
                        log.acked += 1;
                        *states = vec![None];
                    } else {
                        log.anomalies.push(format!(
                            "{key}: remove found no file, but a put of it was acknowledged"
                        ));
                    }
                }
                Ok(Err(e)) => {
                    count_failure(&mut log.failed, &mut log.failures, e.to_string());
                    states.push(None);
                }
                Err(_) => {
                    count_failure(&mut log.failed, &mut log.failures, "timed out".into());
                    states.push(None);
                }
            }
        } else {
            // Up to two chunks: enough to span servers, light enough that
            // the shared disk of a small test machine keeps up.
            let len = [1_000, 70_000, 600_000, 2_500_000][rng.random_range(0..4)];
            let data = random_bytes(len, seed.wrapping_add(n * 1_000 + w as u64));
            let hash = *blake3::hash(&data).as_bytes();
            match tokio::time::timeout(OP_TIMEOUT, client.put(&key, &data[..])).await {
                Ok(Ok(_)) => {
                    log.acked += 1;
                    *states = vec![Some(hash)];
                }
                Ok(Err(e)) => {
                    count_failure(&mut log.failed, &mut log.failures, e.to_string());
                    states.push(Some(hash));
                }
                Err(_) => {
                    count_failure(&mut log.failed, &mut log.failures, "timed out".into());
                    states.push(Some(hash));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))).await;
    }
    log
}

/// Files the mount wrote, fsynced and closed: (name, hash).
fn mount_writer(dir: PathBuf, seed: u64, stop: Arc<AtomicBool>) -> (Vec<(String, Hash)>, u64) {
    use std::io::Write;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x006d_6f75_6e74);
    let (mut acked, mut failed) = (Vec::new(), 0u64);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let name = format!("m{i}");
        let data = random_bytes(rng.random_range(1..1_000_000), seed.wrapping_add(i));
        let written = std::fs::File::create(dir.join(&name)).and_then(|mut f| {
            f.write_all(&data)?;
            f.sync_all()
        });
        match written {
            Ok(()) => acked.push((name, *blake3::hash(&data).as_bytes())),
            Err(_) => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (acked, failed)
}

/// Reads `path` (retrying a few times: right after the faults a server
/// may still be coming back); `None` if it does not exist.
async fn read_back(client: &Client, path: &str) -> Result<Option<Hash>, String> {
    let mut last = String::new();
    for _ in 0..3 {
        let mut buf = Vec::new();
        match tokio::time::timeout(READ_TIMEOUT, client.get(path, &mut buf)).await {
            Ok(Ok(_)) => return Ok(Some(*blake3::hash(&buf).as_bytes())),
            Ok(Err(e)) if e.code() == Some(ErrorCode::NotFound) => return Ok(None),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last)
}

/// Runs faults for `duration` under the workload, then checks. Call from a
/// multi-threaded tokio runtime.
pub async fn run(
    cluster: &mut DevCluster,
    relays: &Relays,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<ChaosReport> {
    let mut report = ChaosReport {
        seed,
        ..Default::default()
    };
    let client = cluster.client().await?;
    client.mkdir("/chaos", true).await?;
    client.mkdir("/chaos-mount", true).await?;
    client.mkdir(shared_files::DIR, true).await?;
    let mount = FuseMount::start(cluster, &[])?;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(writer(client.clone(), w, seed, stop.clone())))
        .collect();
    let contents = shared_files::Contents::default();
    let sharers: Vec<_> = (0..shared_files::SHARERS)
        .map(|s| {
            let (client, contents, stop) = (client.clone(), contents.clone(), stop.clone());
            tokio::spawn(shared_files::sharer(client, s, seed, contents, stop))
        })
        .collect();
    let mount_dir = mount.path().join("chaos-mount");
    let mount_stop = stop.clone();
    let mount_writer = std::thread::spawn(move || mount_writer(mount_dir, seed, mount_stop));

    let mut planner =
        Planner::new(seed, cluster.meta_names(), cluster.chunkserver_names()).cutting_links();
    let started = Instant::now();
    let mut steps = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep(planner.pause()).await;
        steps.push(planner.next_step());
        let step = steps.last().expect("pushed").clone();
        match &step {
            Step::Fault { server, kind } => {
                *report.faults.entry(kind.as_str().into()).or_default() += 1;
                *report.faults_by_server.entry(server.clone()).or_default() += 1;
            }
            Step::Cut(cut) => {
                *report.faults.entry(cut.kind()).or_default() += 1;
                for end in [&cut.from, &cut.to] {
                    *report.faults_by_server.entry(end.to_string()).or_default() += 1;
                }
            }
            Step::Heal { .. } | Step::Mend(_) => {}
        }
        eprintln!("nemesis +{:.1}s: {step:?}", started.elapsed().as_secs_f64());
        tokio::task::block_in_place(|| apply(cluster, &relays.links, &step))?;
    }
    for step in planner.heal_all() {
        tokio::task::block_in_place(|| apply(cluster, &relays.links, &step))?;
    }
    report.fault_seconds = started.elapsed().as_secs_f64();
    let healed = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for w in writers {
        logs.push(w.await?);
    }
    let mut shared = Vec::new();
    for s in sharers {
        shared.push(s.await?);
    }
    match shared_files::check_history(&shared) {
        Ok(n) => report.shared_ops_checked = n,
        Err(why) => report.shared_history_violation = Some(why),
    }
    let (mount_files, mount_failed) = tokio::task::block_in_place(|| mount_writer.join())
        .map_err(|_| anyhow::anyhow!("the mount writer panicked"))?;
    drop(mount);

    // Every acknowledged write reads back exactly.
    let client = cluster.client().await?;
    let mut live = Vec::new();
    for log in &logs {
        report.ops_acked += log.acked;
        report.ops_failed += log.failed;
        for (why, n) in &log.failures {
            *report.failures.entry(why.clone()).or_default() += n;
        }
        report.lost.extend(log.anomalies.iter().cloned());
        for (key, states) in &log.possible {
            report.keys_checked += 1;
            match read_back(&client, key).await {
                Ok(found) if states.contains(&found) => {
                    if found.is_some() {
                        live.push(key.clone());
                    }
                }
                Ok(found) => report.lost.push(format!(
                    "{key}: read {} but {} possible state(s) were {}",
                    if found.is_some() {
                        "other bytes"
                    } else {
                        "nothing"
                    },
                    states.len(),
                    if states.contains(&None) {
                        "including absent"
                    } else {
                        "all present"
                    }
                )),
                Err(e) => report
                    .lost
                    .push(format!("{key}: unreadable after the faults: {e}")),
            }
        }
    }
    report.mount_files_acked = mount_files.len() as u64;
    report.mount_writes_failed = mount_failed;
    for (name, hash) in &mount_files {
        let path = format!("/chaos-mount/{name}");
        match read_back(&client, &path).await {
            Ok(Some(h)) if h == *hash => live.push(path),
            Ok(_) => report.lost.push(format!(
                "{path}: fsynced by the mount, read back wrong or missing"
            )),
            Err(e) => report
                .lost
                .push(format!("{path}: unreadable after the faults: {e}")),
        }
    }
    // Files the mount did not get to fsync may exist too, and the shared
    // files: they hold chunks.
    for dir in ["/chaos-mount", shared_files::DIR] {
        for entry in client.list(dir).await? {
            let path = format!("{dir}/{}", entry.name);
            if !live.contains(&path) {
                live.push(path);
            }
        }
    }

    // The cluster converges: N copies of what files reference, no garbage.
    let referenced = referenced_chunks(&client, &live).await?;
    let left = CONVERGE_WITHIN.saturating_sub(healed.elapsed());
    match wait_converged(cluster, &referenced, COPIES, left).await {
        Ok(_) => report.converged_after = Some(healed.elapsed().as_secs_f64()),
        Err(last) => {
            report.short_chunks = last.short;
            report.garbage_chunks = last.garbage;
        }
    }
    Ok(report)
}
