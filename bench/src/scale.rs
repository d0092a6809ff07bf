//! `cairn-bench scale`: how cost grows with the size of the namespace, on
//! a 3-node metadata group.
//!
//! 1. Creates `dirs × files_per_dir` empty files (1,000 × 1,000 by
//!    default) through the library, `in_flight` at a time, and reports
//!    creates/s over the first and the last 10% of them: a namespace whose
//!    cost per create grows with its size shows as a lower last figure.
//! 2. Creates one directory of `big_dir` entries (100,000), and reports
//!    the metadata leader's disk bytes (its whole data directory: RocksDB
//!    state and Raft log, as they stand) and resident memory, per inode
//!    created.
//! 3. Lists that directory cold through the mount with `ls -l` and `find`,
//!    against the same number of empty files in one local directory.
//! 4. Every server stopped and started again: the time until the cluster
//!    is up. From here on the group snapshots every 100 log entries.
//! 5. kill -9 of a follower and its restart: the time until it answers a
//!    read of the last file created from its own state.
//! 6. A few hundred more changes, so the leader builds a snapshot and
//!    purges its log; then a fourth node joins (`cairn meta add-node`):
//!    the time until it is a voter, which means the snapshot sent and
//!    installed.
//! 7. `cairn put` and `cairn get` of one `big_gib` GiB file (10), read
//!    back to the bench and checked against the source's BLAKE3 hash.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use cairn_client::Client;
use cairn_proto::meta_rpc::Owner;
use cairn_proto::InodeId;
use cairn_tests::fuse_mount::FuseMount;
use cairn_tests::DevCluster;
use futures::{StreamExt, TryStreamExt};

use crate::metadata::caught_up;
use crate::{cairn, drop_caches, figure, mbps, print_rows, row, scratch_dir, timed, Row};

/// What `scale` creates and moves (see the module docs).
#[derive(clap::Args)]
pub struct ScaleWorkload {
    /// Directories of the big namespace.
    #[arg(long, default_value_t = 1_000)]
    pub dirs: usize,
    /// Empty files in each of them.
    #[arg(long, default_value_t = 1_000)]
    pub files_per_dir: usize,
    /// Creates in flight at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Entries of the one directory listed through the mount.
    #[arg(long, default_value_t = 100_000)]
    pub big_dir: usize,
    /// Size of the file put and got, in GiB (0: skip).
    #[arg(long, default_value_t = 10)]
    pub big_gib: u64,
    /// Where to put the cluster and the local files (same disk).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Log entries between snapshots once the namespace is built.
const SNAPSHOT_EVERY: i64 = 100;

const FILE: Owner = Owner {
    mode: 0o644,
    uid: 0,
    gid: 0,
};
const DIR: Owner = Owner {
    mode: 0o755,
    uid: 0,
    gid: 0,
};

pub async fn run(w: ScaleWorkload) -> anyhow::Result<()> {
    ensure!(
        w.dirs > 0 && w.files_per_dir > 0 && w.big_dir > 0 && w.in_flight > 0,
        "--dirs, --files-per-dir, --big-dir and --in-flight must be at least 1"
    );
    let base = scratch_dir(w.work_dir.clone())?;
    std::env::set_var("TMPDIR", base.path());
    eprintln!("starting a cairn dev cluster with 3 metadata nodes ...");
    let mut cluster = DevCluster::start_with(&["--meta", "3"])?;
    let client = cluster.client().await?;
    let leader = client.status().await?.leader.context("no leader")?;
    let leader_name = format!("meta-{leader}");
    let before = Footprint::of(&cluster, &leader_name)?;
    let mut rows = Vec::new();

    // ---- 1. the big namespace -------------------------------------------
    let total = w.dirs * w.files_per_dir;
    let root = client.mkdir("/scale", false).await?.ino;
    let dirs: Vec<InodeId> = futures::stream::iter(0..w.dirs)
        .map(|d| {
            let c = &client;
            async move { c.inodes().mkdir(root, &format!("d{d:04}"), DIR).await }
        })
        .buffered(w.in_flight)
        .map_ok(|a| a.ino)
        .try_collect()
        .await?;
    eprintln!("creating {total} files in {} directories ...", w.dirs);
    let names = (0..total).map(|i| (dirs[i / w.files_per_dir], i % w.files_per_dir));
    let marks = create_all(&client, names, w.in_flight, "f").await?;
    let tenth = (total / 10).max(1) as f64;
    rows.push(figure(
        format!("creates, first 10% of {total} ({} in flight)", w.in_flight),
        "ops/s",
        tenth / marks.first_tenth.as_secs_f64(),
    ));
    rows.push(figure(
        format!("creates, last 10% of {total}"),
        "ops/s",
        tenth / marks.last_tenth.as_secs_f64(),
    ));
    rows.push(figure(
        format!("creates, all {total}"),
        "ops/s",
        total as f64 / marks.all.as_secs_f64(),
    ));

    // ---- 2. one big directory, and what the namespace costs -------------
    eprintln!("creating a directory of {} entries ...", w.big_dir);
    let big = client.mkdir("/big", false).await?.ino;
    create_all(&client, (0..w.big_dir).map(|i| (big, i)), w.in_flight, "e").await?;
    let after = Footprint::of(&cluster, &leader_name)?;
    let inodes = (total + w.dirs + w.big_dir + 2) as f64;
    rows.push(figure(
        format!("metadata disk bytes per inode ({leader_name}, whole data dir)"),
        "bytes",
        after.disk.saturating_sub(before.disk) as f64 / inodes,
    ));
    rows.push(figure(
        format!("metadata resident memory per inode ({leader_name})"),
        "bytes",
        after.rss.saturating_sub(before.rss) as f64 / inodes,
    ));

    // ---- 3. listing it through the mount ---------------------------------
    list_big_dir(&cluster, base.path(), w.big_dir, &mut rows)?;

    // ---- 4. every server restarted; compacting from here on -------------
    // Metadata batches its writes, so a million creates fill fewer log
    // entries than one snapshot interval. A long-lived group has
    // compacted its log, and a node that joins it needs the state itself:
    // the group snapshots every 100 entries from here on.
    eprintln!("restarting every server (snapshots every {SNAPSHOT_EVERY} entries from now) ...");
    drop(client);
    cluster.stop_dev()?;
    for name in cluster.meta_names() {
        cluster.edit_config(&name, |cfg| {
            cfg.insert("snapshot_every_entries".into(), SNAPSHOT_EVERY.into());
            cfg.insert("log_kept_behind_snapshot".into(), 10.into());
        })?;
    }
    let t = Instant::now();
    cluster.start_dev()?;
    rows.push(figure(
        format!("restart of every server (-> cluster up), {inodes} inodes"),
        "seconds",
        t.elapsed().as_secs_f64(),
    ));
    let client = cluster.client().await?;
    caught_up(&client, Duration::from_secs(300)).await?;

    // ---- 5. a follower's restart ------------------------------------------
    let leader = client.status().await?.leader.context("no leader")?;
    let last = format!("/big/e{}", w.big_dir - 1);
    let follower = (1..=3u64).find(|id| *id != leader).context("no follower")?;
    let name = format!("meta-{follower}");
    let addr = cluster.listen_addr(&name)?.to_string();
    eprintln!("kill -9 and restart of {name} ...");
    cluster.kill9(&name)?;
    let t = Instant::now();
    cluster.restart_server(&name)?;
    let cfg = cluster.client_config_for("scale-follower.toml", &[addr], true)?;
    reads_from(&cluster, &name, &cfg, &last, Duration::from_secs(900)).await?;
    rows.push(figure(
        format!("restart of a metadata node (kill -9 -> reads its own state), {inodes} inodes"),
        "seconds",
        t.elapsed().as_secs_f64(),
    ));
    caught_up(&client, Duration::from_secs(300)).await?;

    // ---- 6. a node joins: snapshot install --------------------------------
    eprintln!("compacting the log, then a fourth metadata node joins ...");
    let snap = client.mkdir("/snap", false).await?.ino;
    for i in 0..3 * SNAPSHOT_EVERY {
        client.inodes().mkdir(snap, &format!("s{i}"), DIR).await?;
    }
    let leader_log = cluster
        .dir()
        .join("logs")
        .join(format!("meta-{leader}.log"));
    let t = Instant::now();
    while !std::fs::read_to_string(&leader_log)?.contains("built a metadata snapshot") {
        ensure!(
            t.elapsed() < Duration::from_secs(900),
            "meta-{leader} built no snapshot within 900 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let addr = cluster.start_joining_meta(4)?.to_string();
    let took = timed(cairn(
        &cluster,
        &["meta", "add-node", "4", &addr, "--timeout", "1800"],
    ))?;
    let log = std::fs::read_to_string(cluster.dir().join("logs").join("meta-4.log"))?;
    let by = if log.contains("installed a metadata snapshot") {
        "by snapshot"
    } else {
        "by log replay, no snapshot"
    };
    rows.push(figure(
        format!("a node joins (add-node -> voter, {by}), {inodes} inodes"),
        "seconds",
        took.as_secs_f64(),
    ));

    // ---- 7. one big file --------------------------------------------------
    if w.big_gib > 0 {
        big_file(&cluster, base.path(), w.big_gib, &mut rows)?;
    }
    print_rows(&rows, w.json.as_deref())
}

/// When the creates reached 10% and 90% of all, and ended.
struct Marks {
    first_tenth: Duration,
    last_tenth: Duration,
    all: Duration,
}

/// Creates `{prefix}{i}` in `dir` for each `(dir, i)`, `in_flight` at a
/// time; prints progress every 10%.
async fn create_all(
    client: &Client,
    names: impl Iterator<Item = (InodeId, usize)>,
    in_flight: usize,
    prefix: &str,
) -> anyhow::Result<Marks> {
    let (lo, hi) = names.size_hint();
    let total = hi.unwrap_or(lo).max(1);
    let t = Instant::now();
    let (mut done, mut at_tenth, mut at_ninety) = (0usize, None, None);
    let mut creates = futures::stream::iter(names)
        .map(|(dir, i)| async move {
            client
                .inodes()
                .create(dir, &format!("{prefix}{i}"), FILE)
                .await
                .with_context(|| format!("creating {prefix}{i} in directory {dir}"))
        })
        .buffer_unordered(in_flight);
    while let Some(r) = creates.next().await {
        r?;
        done += 1;
        if done * 10 % total < 10 && done < total {
            eprintln!(
                "  {done} of {total} ({:.0} s, {:.0}/s)",
                t.elapsed().as_secs_f64(),
                done as f64 / t.elapsed().as_secs_f64()
            );
        }
        if at_tenth.is_none() && done * 10 >= total {
            at_tenth = Some(t.elapsed());
        }
        if at_ninety.is_none() && done * 10 >= total * 9 {
            at_ninety = Some(t.elapsed());
        }
    }
    let all = t.elapsed();
    Ok(Marks {
        first_tenth: at_tenth.unwrap_or(all),
        last_tenth: all.saturating_sub(at_ninety.unwrap_or_default()),
        all,
    })
}

/// A metadata node's data directory size and resident memory.
struct Footprint {
    disk: u64,
    rss: u64,
}

impl Footprint {
    fn of(cluster: &DevCluster, name: &str) -> anyhow::Result<Footprint> {
        let pid = cluster.pid(name)?;
        let rss =
            cairn_tests::rss(pid).with_context(|| format!("no VmRSS for {name} (pid {pid})"))?;
        Ok(Footprint {
            disk: dir_bytes(&cluster.dir().join("data").join(name))?,
            rss,
        })
    }
}

/// Bytes of all files under `dir`.
fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut sum = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let m = e.metadata()?;
        sum += if m.is_dir() {
            dir_bytes(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(sum)
}

/// `ls -l` and `find` of `/big` through a fresh mount, caches dropped,
/// against `n` empty files in one local directory.
fn list_big_dir(
    cluster: &DevCluster,
    base: &Path,
    n: usize,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let local = base.join("big-local");
    std::fs::create_dir(&local)?;
    for i in 0..n {
        std::fs::File::create(local.join(format!("e{i}")))?;
    }
    let mount = FuseMount::start(cluster, &[])?;
    let there = mount.join("big");
    for (what, args) in [("ls -l", &["-l"][..]), ("find", &[][..])] {
        let program = if what == "find" { "find" } else { "ls" };
        let listed = |dir: &Path| -> anyhow::Result<Duration> {
            drop_caches();
            let mut c = Command::new(program);
            c.args(args).arg(dir).stdout(Stdio::null());
            timed(c)
        };
        let l = listed(&local)?;
        let m = listed(&there)?;
        rows.push(row(
            format!("{what} of a {n}-entry directory, cold (mount vs local)"),
            "entries/s",
            n as f64 / m.as_secs_f64(),
            n as f64 / l.as_secs_f64(),
        ));
    }
    let seen = std::fs::read_dir(&there)?.count();
    ensure!(seen == n, "the mount lists {seen} of the {n} entries");
    drop(mount);
    std::fs::remove_dir_all(&local)?;
    Ok(())
}

/// Waits until a client of the config at `cfg` (node `name` only, follower
/// reads) can stat `path`; fails at once if the node exits.
async fn reads_from(
    cluster: &DevCluster,
    name: &str,
    cfg: &Path,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let pid = cluster.pid(name)?;
    loop {
        if cairn_tests::has_exited(pid) {
            bail!(
                "{name} exited after its restart; its log ends:\n{}",
                cluster.log_tails(20)
            );
        }
        if let Ok(c) = cluster.client_from(cfg).await {
            if c.stat(path).await.is_ok() {
                return Ok(());
            }
        }
        ensure!(
            t.elapsed() < timeout,
            "the restarted node did not answer a read of {path} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `cairn put` of a `gib` GiB random file, then `cairn get` of it read by
/// this process and checked against the source's hash.
fn big_file(
    cluster: &DevCluster,
    base: &Path,
    gib: u64,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let bytes = gib << 30;
    let src = base.join("big.src");
    eprintln!("writing a {gib} GiB random source file ...");
    let want = crate::write_random_file(&src, bytes, 7)?;
    drop_caches();
    let src_arg = src.to_str().context("a non-UTF-8 scratch path")?;
    let put = timed(cairn(cluster, &["put", src_arg, "/big-file"]))?;
    std::fs::remove_file(&src)?;
    drop_caches();
    let t = Instant::now();
    let mut get = cairn(cluster, &["get", "/big-file", "-"]);
    let mut child = get.stdout(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().context("cairn get's stdout")?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let k = out.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        got += k as u64;
    }
    let status = child.wait()?;
    let took = t.elapsed();
    if !status.success() {
        bail!("cairn get failed ({status}); its errors are above");
    }
    ensure!(
        got == bytes && hasher.finalize() == want,
        "the {gib} GiB file read back ({got} bytes) differs from what was put"
    );
    rows.push(figure(
        format!("cairn put of a {gib} GiB file"),
        "MB/s",
        mbps(bytes, put),
    ));
    rows.push(figure(
        format!("cairn get of a {gib} GiB file, cold, checked"),
        "MB/s",
        mbps(bytes, took),
    ));
    Ok(())
}
