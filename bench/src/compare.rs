//! `cairn-bench compare`: Cairn's mount, MooseFS's mount and local disk
//! side by side, in one run on the same machine and disk. Each workload
//! runs on all three back to back (so machine noise hits all alike), with
//! the page cache dropped and the network filesystems remounted before
//! every cold step. Both clusters keep 3 copies of every chunk (MooseFS
//! goal 3; Cairn's default 3 copies, 2 synchronous). With
//! `--moosefs-fsync` a second MooseFS runs beside the first, its
//! chunkservers fsyncing every chunk before closing it as Cairn's do: the
//! cost of that durability, in its own column.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::DevCluster;
use serde::Serialize;

use crate::moosefs::{Durability, MooseFs};
use crate::trees::TreeSources;
use crate::{drop_caches, mbps, scratch_dir, source_file, timed, MountWorkload};

/// One of the three filesystems under test.
enum Fs<'a> {
    Cairn {
        cluster: &'a DevCluster,
        mount: Option<FuseMount>,
    },
    Moose(&'a MooseFs),
    Local(PathBuf),
}

impl Fs<'_> {
    fn root(&self) -> PathBuf {
        match self {
            Fs::Cairn { mount, .. } => mount
                .as_ref()
                .map(|m| m.path().to_path_buf())
                .unwrap_or_default(),
            Fs::Moose(m) => m.path().to_path_buf(),
            Fs::Local(p) => p.clone(),
        }
    }

    /// Empties every cache between the reader and the disks.
    fn cold(&mut self) -> anyhow::Result<()> {
        match self {
            Fs::Cairn { cluster, mount } => {
                drop(mount.take());
                drop_caches();
                *mount = Some(FuseMount::start(cluster, &[])?);
            }
            Fs::Moose(m) => {
                m.remount()?;
                drop_caches();
            }
            Fs::Local(_) => {
                drop_caches();
            }
        }
        Ok(())
    }

    /// fio reads with O_DIRECT everywhere, so that no run is served from
    /// the kernel's page cache (random reads over a file that fits in
    /// memory would otherwise measure the cache after a few seconds).
    fn direct(&self) -> bool {
        true
    }
}

/// One line of the table: Cairn, MooseFS (and MooseFS with fsync, when
/// run), local disk, and Cairn's ratios.
#[derive(Serialize)]
struct Line {
    workload: String,
    unit: &'static str,
    cairn: f64,
    moosefs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    moosefs_fsync: Option<f64>,
    local: f64,
    cairn_vs_moosefs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cairn_vs_moosefs_fsync: Option<f64>,
    cairn_vs_local: f64,
}

/// The line of `v`, measured on the filesystems in the order `run`
/// lists them: Cairn, MooseFS, then MooseFS with fsync if it ran, then
/// local disk.
fn line(workload: String, unit: &'static str, v: Vec<f64>) -> Line {
    let (cairn, moosefs, local) = (v[0], v[1], v[v.len() - 1]);
    let moosefs_fsync = (v.len() == 4).then(|| v[2]);
    Line {
        workload,
        unit,
        cairn,
        moosefs,
        moosefs_fsync,
        local,
        cairn_vs_moosefs: cairn / moosefs,
        cairn_vs_moosefs_fsync: moosefs_fsync.map(|m| cairn / m),
        cairn_vs_local: cairn / local,
    }
}

/// `fio` for `secs` on `file`: (IOPS, MB/s) of its reads or writes.
pub fn fio(
    file: &Path,
    rw: &str,
    secs: u64,
    direct: bool,
    jobs: u32,
    extra: &[&str],
) -> anyhow::Result<(f64, f64)> {
    let out = Command::new("fio")
        .arg(format!("--name={rw}"))
        .arg(format!("--filename={}", file.display()))
        .arg(format!("--rw={rw}"))
        .args(["--bs=4k", "--iodepth=1", "--ioengine=psync"])
        .arg(format!("--direct={}", u8::from(direct)))
        .arg(format!("--numjobs={jobs}"))
        .arg(format!("--runtime={secs}"))
        .args(["--time_based", "--group_reporting", "--output-format=json"])
        .args(extra)
        .output()
        .context("running fio")?;
    if !out.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("fio's JSON")?;
    let side = if rw.contains("write") {
        "write"
    } else {
        "read"
    };
    let r = &v["jobs"][0][side];
    let iops = r["iops"].as_f64().context("fio iops")?;
    let bw = r["bw_bytes"].as_f64().context("fio bw")? / 1e6;
    Ok((iops, bw))
}

/// Runs `f` on each filesystem in turn; collects what it measured.
fn each(
    fss: &mut [Fs<'_>],
    f: impl FnMut(&mut Fs<'_>) -> anyhow::Result<f64>,
) -> anyhow::Result<Vec<f64>> {
    fss.iter_mut().map(f).collect()
}

pub async fn run(p: MountWorkload, moosefs_fsync: bool) -> anyhow::Result<()> {
    let base = scratch_dir(p.work_dir.clone())?;
    if !drop_caches() {
        bail!("compare needs root: it drops the page cache and mounts MooseFS");
    }
    crate::packages::ensure_fio()?;
    std::env::set_var("TMPDIR", base.path());
    eprintln!("starting MooseFS (1 master, 3 chunkservers, goal 3) ...");
    let moose = MooseFs::start(base.path(), Durability::Default, 0)?;
    let moose_fsync = if moosefs_fsync {
        eprintln!("starting MooseFS with HDD_FSYNC_BEFORE_CLOSE = 1 beside it ...");
        Some(MooseFs::start(base.path(), Durability::Fsync, 1)?)
    } else {
        None
    };
    eprintln!("starting a cairn dev cluster and mounting it ...");
    let cluster = DevCluster::start()?;
    let local = base.path().join("local");
    std::fs::create_dir(&local)?;
    let mut fss = vec![
        Fs::Cairn {
            cluster: &cluster,
            mount: Some(FuseMount::start(&cluster, &[])?),
        },
        Fs::Moose(&moose),
    ];
    fss.extend(moose_fsync.as_ref().map(Fs::Moose));
    fss.push(Fs::Local(local));
    let mut lines = Vec::new();

    // ---- dd: sequential, random data -----------------------------------
    let big = p.big_mib << 20;
    eprintln!("dd {} MiB ...", p.big_mib);
    let (src_dir, src) = source_file(base.path(), big)?;
    let w = each(&mut fss, |fs| {
        drop_caches();
        Ok(mbps(
            big,
            timed(crate::dd(&src, &fs.root().join("big"), "1M", true))?,
        ))
    })?;
    drop(src_dir);
    lines.push(line(
        format!("dd write {} MiB random, bs=1M conv=fsync", p.big_mib),
        "MB/s",
        w,
    ));
    let r = each(&mut fss, |fs| {
        fs.cold()?;
        let t = timed(crate::dd(
            &fs.root().join("big"),
            Path::new("/dev/null"),
            "1M",
            false,
        ))?;
        Ok(mbps(big, t))
    })?;
    lines.push(line(format!("dd read {} MiB, cold", p.big_mib), "MB/s", r));

    // ---- fio random reads over the big file -----------------------------
    for jobs in [1u32, 4] {
        eprintln!("fio 4 KiB random reads, {jobs} job(s) ...");
        let v = each(&mut fss, |fs| {
            fs.cold()?;
            Ok(fio(
                &fs.root().join("big"),
                "randread",
                p.fio_secs,
                fs.direct(),
                jobs,
                &[],
            )?
            .0)
        })?;
        lines.push(line(
            format!(
                "fio randread 4k O_DIRECT qd1 x {jobs} job{}, {} s",
                if jobs > 1 { "s" } else { "" },
                p.fio_secs
            ),
            "IOPS",
            v,
        ));
    }
    each(&mut fss, |fs| {
        std::fs::remove_file(fs.root().join("big"))?;
        Ok(0.0)
    })?;

    // ---- fio random writes with periodic fsync --------------------------
    eprintln!("fio 4 KiB random writes ...");
    let v = each(&mut fss, |fs| {
        let file = fs.root().join("rw");
        let (iops, _) = fio(
            &file,
            "randwrite",
            p.fio_secs,
            false,
            1,
            &["--size=256M", "--fsync=32"],
        )?;
        std::fs::remove_file(&file)?;
        Ok(iops)
    })?;
    lines.push(line(
        format!(
            "fio randwrite 4k, fsync every 32, 256 MiB, {} s",
            p.fio_secs
        ),
        "IOPS",
        v,
    ));

    // ---- small files ------------------------------------------------------
    eprintln!("{} small files ...", p.small_files);
    let data = cairn_tests::random_bytes(p.small_size, 9);
    let n = p.small_files as f64;
    let names: Vec<String> = (0..p.small_files).map(|i| format!("f{i:05}")).collect();
    let per_sec = |t: Duration| n / t.as_secs_f64();
    each(&mut fss, |fs| {
        std::fs::create_dir(fs.root().join("small"))?;
        Ok(0.0)
    })?;
    // Each pass does `op` on every small file of one filesystem, timed;
    // `cold` first empties the caches; `durable` ends the pass with an
    // fsync of the directory (where POSIX makes names durable), timed too.
    let mut pass = |cold: bool,
                    durable: bool,
                    op: &dyn Fn(&Path, &str) -> anyhow::Result<()>|
     -> anyhow::Result<Vec<f64>> {
        each(&mut fss, |fs| {
            if cold {
                fs.cold()?;
            }
            let dir = fs.root().join("small");
            let t = Instant::now();
            for name in &names {
                op(&dir, name)?;
            }
            if durable {
                std::fs::File::open(&dir)?.sync_all()?;
            }
            Ok(per_sec(t.elapsed()))
        })
    };
    let v = pass(false, true, &|dir, name| {
        Ok(std::fs::write(dir.join(name), &data)?)
    })?;
    lines.push(line(
        format!(
            "create+write+close {} x {} B, fsync(dir)",
            p.small_files, p.small_size
        ),
        "files/s",
        v,
    ));
    let v = pass(true, false, &|dir, name| {
        let got = std::fs::read(dir.join(name))?;
        if got.len() != data.len() {
            bail!("{name} read back {} bytes", got.len());
        }
        Ok(())
    })?;
    lines.push(line(
        format!("read {} small files, cold", p.small_files),
        "files/s",
        v,
    ));
    let v = pass(true, false, &|dir, name| {
        Ok(std::fs::metadata(dir.join(name)).map(|_| ())?)
    })?;
    lines.push(line(
        format!("stat {} files, cold", p.small_files),
        "ops/s",
        v,
    ));
    let v = pass(false, true, &|dir, name| {
        Ok(std::fs::remove_file(dir.join(name))?)
    })?;
    lines.push(line(
        format!("unlink {} files, fsync(dir)", p.small_files),
        "ops/s",
        v,
    ));

    // ---- trees: git clone, tar x, rm -rf, python3 -m venv ----------------
    eprintln!("git clone, tar x, rm -rf, venv ...");
    let sources = TreeSources::prepare(base.path())?;
    let v = each(&mut fss, |fs| {
        drop_caches();
        sources.git_clone(&fs.root())
    })?;
    lines.push(line(
        "git clone --no-local of this repo".into(),
        "files/s",
        v,
    ));
    let v = each(&mut fss, |fs| {
        drop_caches();
        sources.untar(&fs.root())
    })?;
    let files = sources.files();
    lines.push(line(
        format!("tar x of its source ({files} files)"),
        "files/s",
        v,
    ));
    let v = each(&mut fss, |fs| sources.remove_tree(&fs.root()))?;
    lines.push(line(
        format!("rm -rf of that tree ({files} files)"),
        "files/s",
        v,
    ));
    let v = each(&mut fss, |fs| {
        drop_caches();
        crate::trees::venv(&fs.root())
    })?;
    lines.push(line("python3 -m venv (pip included)".into(), "files/s", v));

    drop(fss);
    print_lines(&lines, p.json.as_deref())?;
    drop(moose_fsync);
    drop(moose);
    Ok(())
}

fn print_lines(lines: &[Line], json: Option<&Path>) -> anyhow::Result<()> {
    let fsync = lines.iter().any(|l| l.moosefs_fsync.is_some());
    let (head, vs) = if fsync {
        (
            format!(" {:>10}", "mfs+fsync"),
            format!(" {:>8}", "vs mfs+f"),
        )
    } else {
        (String::new(), String::new())
    };
    println!(
        "{:<54} {:>7} {:>10} {:>10}{head} {:>10} {:>8}{vs} {:>8}",
        "workload", "unit", "cairn", "moosefs", "local", "vs mfs", "vs local"
    );
    for l in lines {
        let (col, ratio) = match (l.moosefs_fsync, l.cairn_vs_moosefs_fsync) {
            (Some(m), Some(r)) => (format!(" {m:>10.1}"), format!(" {r:>7.2}x")),
            _ => (String::new(), String::new()),
        };
        println!(
            "{:<54} {:>7} {:>10.1} {:>10.1}{col} {:>10.1} {:>7.2}x{ratio} {:>7.2}x",
            l.workload, l.unit, l.cairn, l.moosefs, l.local, l.cairn_vs_moosefs, l.cairn_vs_local
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(lines)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
