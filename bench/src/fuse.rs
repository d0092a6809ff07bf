//! `cairn-bench fuse`: the FUSE mount against local disk, in one run on
//! the same machine and disk: `dd` 1 GiB write (conv=fsync) and cold read,
//! 2,000 × 4 KiB files created, written and closed, a cold stat of each,
//! and `fio` 4 KiB random reads at queue depth 1. Before every cold step
//! the page cache is dropped and the Cairn mount is remounted (emptying
//! its chunk cache and the kernel's caches for it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::{peak_rss, DevCluster};

use crate::{
    drop_caches, figure, mbps, print_rows, row, scratch_dir, source_file, timed, MountWorkload,
};

/// dd in 1 MiB blocks, as the workload.
fn dd(input: &Path, output: &Path, fsync: bool) -> Command {
    crate::dd(input, output, "1M", fsync)
}

/// `fio` 4 KiB random reads, one at a time, for `secs`: (IOPS, MB/s).
fn fio_randread(file: &Path, secs: u64, direct: bool) -> anyhow::Result<(f64, f64)> {
    crate::compare::fio(file, "randread", secs, direct, 1, &[])
}

fn remount(cluster: &DevCluster, m: FuseMount) -> anyhow::Result<FuseMount> {
    drop(m);
    drop_caches();
    FuseMount::start(cluster, &[])
}

pub async fn run(p: MountWorkload) -> anyhow::Result<()> {
    let base = scratch_dir(p.work_dir.clone())?;
    let cold = drop_caches();
    if !cold {
        eprintln!("note: cannot drop page caches (not root?): local reads are warm, not cold");
    }
    crate::packages::ensure_fio()?;
    std::env::set_var("TMPDIR", base.path());
    eprintln!("starting a cairn dev cluster and mounting it ...");
    let cluster = DevCluster::start()?;
    let mut mount = FuseMount::start(&cluster, &[])?;
    let local = base.path().join("local");
    std::fs::create_dir(&local)?;
    let mut rows = Vec::new();

    // ---- dd: 1 GiB sequential ------------------------------------------
    let big = p.big_mib << 20;
    eprintln!("writing a {} MiB random source file ...", p.big_mib);
    let (src_dir, src) = source_file(base.path(), big)?;
    // (Each remount has a new mountpoint: paths into it are made afresh.)
    let local_big = local.join("big");
    drop_caches();
    let local_w = timed(dd(&src, &local_big, true))?;
    drop_caches();
    let cairn_w = timed(dd(&src, &mount.join("big"), true))?;
    let write_rss = mount.pid().and_then(peak_rss).unwrap_or(0);
    drop(src_dir);
    mount = remount(&cluster, mount)?;
    let cairn_r = timed(dd(&mount.join("big"), Path::new("/dev/null"), false))?;
    drop_caches();
    let local_r = timed(dd(&local_big, Path::new("/dev/null"), false))?;
    rows.push(row(
        format!("dd write {} MiB, bs=1M conv=fsync", p.big_mib),
        "MB/s",
        mbps(big, cairn_w),
        mbps(big, local_w),
    ));
    rows.push(row(
        format!(
            "dd read {} MiB, bs=1M{}",
            p.big_mib,
            if cold { ", cold" } else { "" }
        ),
        "MB/s",
        mbps(big, cairn_r),
        mbps(big, local_r),
    ));
    rows.push(figure(
        format!("mount process peak RSS while writing {} MiB", p.big_mib),
        "MiB",
        write_rss as f64 / f64::from(1 << 20),
    ));

    // ---- fio: 4 KiB random reads, queue depth 1 -------------------------
    eprintln!("fio 4 KiB random reads ...");
    mount = remount(&cluster, mount)?;
    let (c_iops, c_bw) = fio_randread(&mount.join("big"), p.fio_secs, false)?;
    drop_caches();
    let (l_iops, l_bw) = fio_randread(&local_big, p.fio_secs, true)?;
    rows.push(row(
        format!(
            "fio randread 4k qd1 over {} MiB, {} s (local: O_DIRECT)",
            p.big_mib, p.fio_secs
        ),
        "IOPS",
        c_iops,
        l_iops,
    ));
    rows.push(row("  same, bandwidth".into(), "MB/s", c_bw, l_bw));
    let _ = std::fs::remove_file(mount.join("big"));
    let _ = std::fs::remove_file(&local_big);

    // ---- small files ----------------------------------------------------
    eprintln!("{} small files ...", p.small_files);
    let data = cairn_tests::random_bytes(p.small_size, 9);
    let small = |dir: &Path| -> anyhow::Result<Duration> {
        std::fs::create_dir(dir)?;
        let t = Instant::now();
        for i in 0..p.small_files {
            std::fs::write(dir.join(format!("f{i:05}")), &data)?;
        }
        Ok(t.elapsed())
    };
    let cairn_c = small(&mount.join("small"))?;
    let local_c = small(&local.join("small"))?;
    let n = p.small_files as f64;
    rows.push(row(
        format!(
            "create+write+close {} x {} B files",
            p.small_files, p.small_size
        ),
        "files/s",
        n / cairn_c.as_secs_f64(),
        n / local_c.as_secs_f64(),
    ));
    let stat_all = |dir: &Path| -> anyhow::Result<Duration> {
        let t = Instant::now();
        for i in 0..p.small_files {
            std::fs::metadata(dir.join(format!("f{i:05}")))?;
        }
        Ok(t.elapsed())
    };
    mount = remount(&cluster, mount)?;
    let cairn_s = stat_all(&mount.join("small"))?;
    drop_caches();
    let local_s = stat_all(&local.join("small"))?;
    rows.push(row(
        format!(
            "stat {} files{}",
            p.small_files,
            if cold { ", cold" } else { "" }
        ),
        "ops/s",
        n / cairn_s.as_secs_f64(),
        n / local_s.as_secs_f64(),
    ));
    drop(mount);
    print_rows(&rows, p.json.as_deref())
}
