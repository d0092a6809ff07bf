//! `cairn-bench`: cluster macro benchmarks, as commands (not tests).
//!
//! `cairn-bench foundation` starts a `cairn dev` cluster in a temporary
//! directory and, in one run on the same disk, measures:
//!
//! * 1 GiB of random data: `cairn put` and `cairn get` (the CLI, as a user
//!   runs it) against `dd bs=4M conv=fsync` to a local file and a cold `dd`
//!   read back. Page caches are dropped before every cold read (needs root;
//!   said so in the output when not possible).
//! * 10,000 files of 4 KiB through the library, 16 at a time, against
//!   writing the same files locally with `fsync` each, 16 at a time; then
//!   reading them all back.
//!
//! It prints MB/s, files/s and the Cairn/local ratio, and `--json FILE`
//! writes the same numbers for scripts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cairn_tests::{cairn_bin, random_bytes, DevCluster};
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
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
}

#[derive(Serialize)]
struct Row {
    workload: String,
    unit: &'static str,
    cairn: f64,
    local: f64,
    ratio: f64,
}

fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn timed(mut cmd: Command) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed())
}

fn dd(input: &Path, output: &Path, fsync: bool) -> Command {
    let mut c = Command::new("dd");
    c.arg(format!("if={}", input.display()))
        .arg(format!("of={}", output.display()))
        .arg("bs=4M");
    if fsync {
        c.arg("conv=fsync");
    }
    c
}

fn cairn(cluster: &DevCluster, args: &[&str]) -> Command {
    let mut c = Command::new(cairn_bin());
    c.args(args).arg("--config").arg(cluster.client_config());
    c
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cmd::Foundation {
        big_mib,
        small_files,
        small_size,
        concurrency,
        work_dir,
        json,
    } = Args::parse().cmd;
    let base = match work_dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let cold = drop_caches();
    if !cold {
        eprintln!("note: cannot drop page caches (not root?): reads are warm, not cold");
    }
    eprintln!("starting a cairn dev cluster ...");
    std::env::set_var("TMPDIR", base.path());
    let cluster = DevCluster::start()?;
    let mut rows = Vec::new();

    // ---- one large file ------------------------------------------------
    let big = big_mib << 20;
    let src = base.path().join("big.src");
    {
        eprintln!("writing a {big_mib} MiB random source file ...");
        let block = random_bytes(16 << 20, 1);
        let mut f = std::fs::File::create(&src)?;
        let mut left = big;
        let mut n = 0u8;
        while left > 0 {
            let k = left.min(block.len() as u64) as usize;
            let mut b = block[..k].to_vec();
            b[0] = n; // no two 16 MiB blocks alike: no dedup across them
            n = n.wrapping_add(1);
            std::io::Write::write_all(&mut f, &b)?;
            left -= k as u64;
        }
        f.sync_all()?;
    }
    let local_copy = base.path().join("big.local");
    let back = base.path().join("big.back");

    drop_caches();
    let local_w = timed(dd(&src, &local_copy, true))?;
    drop_caches();
    let cairn_w = timed(cairn(
        &cluster,
        &["put", src.to_str().unwrap_or_default(), "/big"],
    ))?;
    drop_caches();
    let local_r = timed(dd(&local_copy, Path::new("/dev/null"), false))?;
    drop_caches();
    // Timed to /dev/null, as the dd read is; then fetched again to compare.
    let cairn_r = timed({
        let mut c = cairn(&cluster, &["get", "/big", "-"]);
        c.stdout(std::process::Stdio::null());
        c
    })?;
    timed(cairn(
        &cluster,
        &["get", "/big", back.to_str().unwrap_or_default()],
    ))?;
    let same = timed({
        let mut c = Command::new("cmp");
        c.arg(&src).arg(&back);
        c
    });
    if same.is_err() {
        bail!("the 1 GiB file read back differs from what was put");
    }
    let _ = std::fs::remove_file(&back);
    rows.push(row(
        format!("put {big_mib} MiB (cairn put vs dd conv=fsync)"),
        "MB/s",
        mbps(big, cairn_w),
        mbps(big, local_w),
    ));
    rows.push(row(
        format!(
            "get {big_mib} MiB to /dev/null (cairn get vs dd{})",
            if cold { ", cold" } else { "" }
        ),
        "MB/s",
        mbps(big, cairn_r),
        mbps(big, local_r),
    ));

    // ---- many small files ----------------------------------------------
    let client = cluster.client().await?;
    client.mkdir("/small", false).await?;
    let payloads: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..small_files)
            .map(|i| random_bytes(small_size, 1000 + i as u64))
            .collect(),
    );
    let local_dir = base.path().join("small");
    std::fs::create_dir_all(&local_dir)?;

    drop_caches();
    let t = Instant::now();
    futures::stream::iter(0..small_files)
        .map(|i| {
            let p = local_dir.join(format!("f{i}"));
            let data = payloads.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&p)?;
                std::io::Write::write_all(&mut f, &data[i])?;
                f.sync_all()
            })
        })
        .buffer_unordered(concurrency)
        .map(|r| {
            r.map_err(anyhow::Error::from)
                .and_then(|r| r.map_err(anyhow::Error::from))
        })
        .try_collect::<()>()
        .await?;
    let local_sw = t.elapsed();

    let t = Instant::now();
    futures::stream::iter(0..small_files)
        .map(|i| {
            let client = client.clone();
            let data = payloads.clone();
            async move {
                client
                    .put(&format!("/small/f{i}"), &data[i][..])
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    let cairn_sw = t.elapsed();

    drop_caches();
    let t = Instant::now();
    futures::stream::iter(0..small_files)
        .map(|i| {
            let p = local_dir.join(format!("f{i}"));
            tokio::task::spawn_blocking(move || std::fs::read(p))
        })
        .buffer_unordered(concurrency)
        .map(|r| {
            r.map_err(anyhow::Error::from)
                .and_then(|r| r.map(|_| ()).map_err(anyhow::Error::from))
        })
        .try_collect::<()>()
        .await?;
    let local_sr = t.elapsed();

    drop_caches();
    let t = Instant::now();
    futures::stream::iter(0..small_files)
        .map(|i| {
            let client = client.clone();
            let data = payloads.clone();
            async move {
                let mut out = Vec::with_capacity(small_size);
                client.get(&format!("/small/f{i}"), &mut out).await?;
                anyhow::ensure!(out == data[i], "small file {i} read back differently");
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    let cairn_sr = t.elapsed();
    let per_s = |d: Duration| small_files as f64 / d.as_secs_f64();
    rows.push(row(
        format!("put {small_files} x {small_size} B files, {concurrency} at a time"),
        "files/s",
        per_s(cairn_sw),
        per_s(local_sw),
    ));
    rows.push(row(
        format!("get {small_files} x {small_size} B files, {concurrency} at a time"),
        "files/s",
        per_s(cairn_sr),
        per_s(local_sr),
    ));

    println!(
        "{:<58} {:>8} {:>10} {:>10} {:>8}",
        "workload", "unit", "cairn", "local", "ratio"
    );
    for r in &rows {
        println!(
            "{:<58} {:>8} {:>10.1} {:>10.1} {:>7.2}x",
            r.workload, r.unit, r.cairn, r.local, r.ratio
        );
    }
    if let Some(p) = json {
        std::fs::write(&p, serde_json::to_string_pretty(&rows)?)?;
    }
    drop(cluster);
    Ok(())
}

fn row(workload: String, unit: &'static str, cairn: f64, local: f64) -> Row {
    Row {
        workload,
        unit,
        cairn,
        local,
        ratio: cairn / local,
    }
}
