//! `cairn-bench`: cluster macro benchmarks, as commands (not tests).
//!
//! `cairn-bench foundation` ([`foundation`]) starts a `cairn dev` cluster
//! in a temporary directory and, in one run on the same disk, measures:
//!
//! * 1 GiB of random data: `cairn put` and `cairn get` (the CLI, as a user
//!   runs it) against `dd bs=4M conv=fsync` to a local file and a cold `dd`
//!   read back. Page caches are dropped before every cold read (needs root;
//!   said so in the output when not possible).
//! * 10,000 files of 4 KiB through the library, 16 at a time, against
//!   writing the same files locally with `fsync` each, 16 at a time; then
//!   reading them all back.
//!
//! `cairn-bench replication` ([`replication`]) measures what replication
//! costs and how fast the cluster heals: the share of chunk copies that
//! move when a fourth server joins, and the time to restore N copies of a
//! 1 GiB file after a server is killed and removed.
//!
//! `cairn-bench metadata` ([`metadata`]) measures file creates/s and
//! stats/s from 16 clients against a 1-node and a 3-node metadata group,
//! and the 3-node group's failover time over 20 leader kills.
//!
//! `cairn-bench fuse` ([`fuse`]) measures the FUSE mount against local
//! disk: dd write and cold read, small files, stat, fio random reads.
//!
//! Each prints its numbers as a table, and `--json FILE` writes them for
//! scripts.

mod chaos;
mod compare;
mod foundation;
mod fuse;
mod metadata;
mod moosefs;
mod packages;
mod replication;
mod scale;
mod trees;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cairn_tests::{cairn_bin, random_bytes, DevCluster};
use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "cairn-bench",
    about = "Cairn cluster benchmarks against local disk"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

/// What the mount benchmarks (`fuse`, `compare`) run.
#[derive(clap::Args)]
pub struct MountWorkload {
    /// Size of the dd / fio file, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub big_mib: u64,
    /// Number of small files.
    #[arg(long, default_value_t = 2_000)]
    pub small_files: usize,
    /// Size of each small file, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub small_size: usize,
    /// Seconds each fio run lasts.
    #[arg(long, default_value_t = 20)]
    pub fio_secs: u64,
    /// Where to put the local-disk files and the clusters (same disk).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// put/get of one large file and of many small files, Cairn vs local disk.
    Foundation {
        /// Size of the large file, in MiB.
        #[arg(long, default_value_t = 1024)]
        big_mib: u64,
        /// Number of small files.
        #[arg(long, default_value_t = 10_000)]
        small_files: usize,
        /// Size of each small file, in bytes.
        #[arg(long, default_value_t = 4096)]
        small_size: usize,
        /// Small-file operations in flight at once (both sides).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Where to put the local-disk copies and the cluster (same disk).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Also write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The FUSE mount vs local disk: dd write/read, small files, stat,
    /// fio random reads.
    Fuse {
        #[command(flatten)]
        w: MountWorkload,
    },
    /// Cairn's mount, MooseFS's mount (Debian packages: 1 master, 3
    /// chunkservers, goal 3) and local disk side by side: dd, fio random
    /// reads and writes, small files. Needs root.
    Compare {
        #[command(flatten)]
        w: MountWorkload,
        /// Also run a second MooseFS whose chunkservers fsync every chunk
        /// before closing it (`HDD_FSYNC_BEFORE_CLOSE = 1`), as Cairn's
        /// do: the cost of that durability, in a column of its own.
        #[arg(long)]
        moosefs_fsync: bool,
    },
    /// Metadata throughput (1 and 3 nodes) and failover time (3 nodes).
    Metadata {
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Creates (and then stats) in all, per group size.
        #[arg(long, default_value_t = 4_000)]
        ops: usize,
        /// Leader kills to time.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Also write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Rebalance when a server joins, and repair after one is removed.
    Replication {
        /// Size of the file whose chunks are moved and restored, in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Give up on a rebalance or repair after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
        /// Where to put the cluster.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Also write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// How cost grows with the namespace (3 metadata nodes): creates/s
    /// over the first and last 10% of a million files, metadata bytes and
    /// memory per inode, `ls -l` and `find` of a 100,000-entry directory
    /// through the mount against local disk, a metadata node's restart
    /// and a joining node's snapshot install at that size, and put/get of
    /// a 10 GiB file.
    Scale {
        #[command(flatten)]
        w: scale::ScaleWorkload,
    },
    /// The nemesis on a real cluster (3 metadata nodes, 4 chunkservers):
    /// kill -9, crash-restarts and SIGSTOP/SIGCONT of any server while
    /// writers put, overwrite and remove and a mount writes and fsyncs;
    /// then checks that every acknowledged write reads back exactly and
    /// that the cluster converges to 3 copies and no garbage. Exits 1 on a
    /// violation.
    Chaos {
        /// How long to inject faults, in minutes.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// The fault plan's seed (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Foundation {
            big_mib,
            small_files,
            small_size,
            concurrency,
            work_dir,
            json,
        } => {
            foundation::run(
                big_mib,
                small_files,
                small_size,
                concurrency,
                work_dir,
                json,
            )
            .await
        }
        Cmd::Fuse { w } => fuse::run(w).await,
        Cmd::Compare { w, moosefs_fsync } => compare::run(w, moosefs_fsync).await,
        Cmd::Metadata {
            clients,
            ops,
            runs,
            json,
        } => metadata::run(clients, ops, runs.max(1), json).await,
        Cmd::Replication {
            mib,
            timeout_secs,
            work_dir,
            json,
        } => replication::run(mib, Duration::from_secs(timeout_secs), work_dir, json).await,
        Cmd::Scale { w } => scale::run(w).await,
        Cmd::Chaos {
            minutes,
            seed,
            json,
        } => chaos::run(minutes, seed, json).await,
    }
}

/// One line of a result table: Cairn's figure and, where there is one, the
/// local-disk figure it is compared with.
#[derive(Serialize)]
pub struct Row {
    workload: String,
    unit: &'static str,
    cairn: f64,
    local: Option<f64>,
    ratio: Option<f64>,
}

pub fn row(workload: String, unit: &'static str, cairn: f64, local: f64) -> Row {
    Row {
        workload,
        unit,
        cairn,
        local: Some(local),
        ratio: Some(cairn / local),
    }
}

/// A figure with nothing local to compare it with.
pub fn figure(workload: String, unit: &'static str, cairn: f64) -> Row {
    Row {
        workload,
        unit,
        cairn,
        local: None,
        ratio: None,
    }
}

pub fn print_rows(rows: &[Row], json: Option<&Path>) -> anyhow::Result<()> {
    println!(
        "{:<62} {:>8} {:>10} {:>10} {:>8}",
        "workload", "unit", "cairn", "local", "ratio"
    );
    for r in rows {
        let local = r.local.map_or("-".to_string(), |l| format!("{l:.1}"));
        let ratio = r.ratio.map_or("-".to_string(), |x| format!("{x:.2}x"));
        println!(
            "{:<62} {:>8} {:>10.3} {:>10} {:>8}",
            r.workload, r.unit, r.cairn, local, ratio
        );
    }
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_string_pretty(rows)?)?;
    }
    Ok(())
}

/// A temporary directory for a run's files and cluster, under `work_dir`
/// when given (to measure a particular disk); removed when dropped.
pub fn scratch_dir(work_dir: Option<PathBuf>) -> anyhow::Result<tempfile::TempDir> {
    Ok(match work_dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    })
}

pub fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

pub fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

pub fn timed(mut cmd: Command) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed())
}

/// `dd` from `input` to `output` in blocks of `bs` (as dd spells it: 4M).
pub fn dd(input: &Path, output: &Path, bs: &str, fsync: bool) -> Command {
    let mut c = Command::new("dd");
    c.arg(format!("if={}", input.display()))
        .arg(format!("of={}", output.display()))
        .arg(format!("bs={bs}"));
    if fsync {
        c.arg("conv=fsync");
    }
    c
}

pub fn cairn(cluster: &DevCluster, args: &[&str]) -> Command {
    let mut c = Command::new(cairn_bin());
    c.args(args).arg("--config").arg(cluster.admin_config());
    c
}

/// A `bytes`-long random source file for dd, in memory (/dev/shm) when
/// there is one, so reading it costs no side any disk time; it goes with
/// the returned directory.
pub fn source_file(base: &Path, bytes: u64) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir_in(base)?
    };
    let src = dir.path().join("big.src");
    write_random_file(&src, bytes, 1)?;
    Ok((dir, src))
}

/// Writes `bytes` of random data to `path` and syncs it; returns the
/// data's BLAKE3 hash. Every 16 MiB block has its own seed, so no two
/// chunks of the file are alike and nothing is deduplicated.
pub fn write_random_file(path: &Path, bytes: u64, seed: u64) -> anyhow::Result<blake3::Hash> {
    const BLOCK: u64 = 16 << 20;
    let mut f = std::fs::File::create(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut left = bytes;
    let mut n = 0;
    while left > 0 {
        let k = left.min(BLOCK);
        let block = random_bytes(k as usize, seed.wrapping_mul(1_000_003) + n);
        hasher.update(&block);
        f.write_all(&block)?;
        n += 1;
        left -= k;
    }
    f.sync_all()?;
    Ok(hasher.finalize())
}
