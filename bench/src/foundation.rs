//! `cairn-bench foundation`: one large file and many small files, Cairn
//! against local disk on the same machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use cairn_tests::{random_bytes, DevCluster};
use futures::{StreamExt, TryStreamExt};

use crate::{cairn, dd, drop_caches, mbps, print_rows, row, scratch_dir, timed, write_random_file};

/// Runs the foundation benchmark (see the crate docs).
pub async fn run(
    big_mib: u64,
    small_files: usize,
    small_size: usize,
    concurrency: usize,
    work_dir: Option<PathBuf>,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    let base = scratch_dir(work_dir)?;
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
    eprintln!("writing a {big_mib} MiB random source file ...");
    write_random_file(&src, big, 1)?;
    let local_copy = base.path().join("big.local");
    let back = base.path().join("big.back");

    drop_caches();
    let local_w = timed(dd(&src, &local_copy, "4M", true))?;
    drop_caches();
    let cairn_w = timed(cairn(
        &cluster,
        &["put", src.to_str().unwrap_or_default(), "/big"],
    ))?;
    drop_caches();
    let local_r = timed(dd(&local_copy, Path::new("/dev/null"), "4M", false))?;
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

    print_rows(&rows, json.as_deref())?;
    drop(cluster);
    Ok(())
}
