//! `cairn dev`: a whole cluster on this machine, one process per server.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use cairn_client::{Client, ClientConfig};
use cairn_proto::runtime::{available_cores, threads_per_process};
use tokio::process::{Child, Command};

use crate::cluster_files::{self, config_path, DevLayout};
use crate::locate::default_dev_dir;
use crate::signals::Termination;

/// How long the cluster may take to become healthy.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long each server may take to stop after SIGTERM before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long the mount (`--mount`) and the S3 gateway may take to come up.
const CLIENT_WAIT: Duration = Duration::from_secs(30);

struct Running {
    name: String,
    child: Child,
}

pub async fn run(
    data_dir: Option<PathBuf>,
    meta: u16,
    chunkservers: u16,
    mount: Option<PathBuf>,
    threads: Option<u16>,
) -> anyhow::Result<()> {
    // First, so that a signal during start-up stops the servers cleanly.
    let mut termination = Termination::install()?;
    let dir = data_dir.unwrap_or_else(default_dev_dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let layout = match cluster_files::load(&dir)? {
        Some(l) => {
            eprintln!("cairn dev: restarting the cluster in {}", dir.display());
            cluster_files::ensure_admin_config(&dir)?;
            l
        }
        None => {
            eprintln!("cairn dev: creating a new cluster in {}", dir.display());
            cluster_files::create(&dir, meta, chunkservers)?
        }
    };
    refuse_if_running(&dir)?;
    let pids = dir.join("pids");
    fs::create_dir_all(&pids)?;
    fs::create_dir_all(dir.join("logs"))?;
    write_pid(&pids.join("dev.pid"), std::process::id())?;

    // Every server and a mount share this machine's cores.
    let threads = threads.map_or_else(
        || threads_per_process(available_cores(), layout.servers().count() + 1),
        usize::from,
    );
    let mut running = Vec::new();
    let healthy = tokio::select! {
        r = async {
            start_all(&dir, &layout, threads, &mut running).await?;
            wait_healthy(&dir, &layout, &mut running).await
        } => r,
        _ = termination.wait() => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    if let Err(e) = healthy {
        stop_all(&dir, &mut running).await;
        return Err(e.context(format!(
            "the dev cluster did not start; see the logs in {}",
            dir.join("logs").display()
        )));
    }
    // The cluster's clients: the S3 gateway, and the mount if asked for.
    let mut mounted = Vec::new();
    let s3 = tokio::select! {
        r = start_s3(&dir, threads) => r,
        _ = termination.wait() => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    let s3 = match s3 {
        Ok((running, cfg)) => {
            mounted.push(running);
            cfg
        }
        Err(e) => {
            stop_all(&dir, &mut running).await;
            return Err(e);
        }
    };
    if let Some(mp) = &mount {
        let started = tokio::select! {
            r = start_mount(&dir, mp, threads) => r,
            _ = termination.wait() => Err(anyhow::anyhow!("interrupted during start-up")),
        };
        match started {
            Ok(m) => mounted.push(m),
            Err(e) => {
                stop_all(&dir, &mut mounted).await;
                stop_all(&dir, &mut running).await;
                return Err(e);
            }
        }
    }
    print_summary(&dir, &layout, mount.as_deref(), threads, &s3);

    let outcome = supervise(&mut running, &mut termination).await;
    eprintln!("cairn dev: stopping");
    // The mount and the gateway first: they flush to the servers.
    stop_all(&dir, &mut mounted).await;
    stop_all(&dir, &mut running).await;
    outcome
}

/// Starts `cairn ARGS` as `name` (logging to `logs/NAME.log`, its PID in
/// `pids/NAME.pid`); returns it with its log's path.
fn spawn_logged(
    dir: &Path,
    name: &str,
    args: &[&std::ffi::OsStr],
) -> anyhow::Result<(Child, PathBuf)> {
    let exe = std::env::current_exe().context("locating the cairn binary")?;
    let log_path = dir.join("logs").join(format!("{name}.log"));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let child = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    if let Some(pid) = child.id() {
        write_pid(&dir.join("pids").join(format!("{name}.pid")), pid)?;
    }
    Ok((child, log_path))
}

/// Waits (at most [`CLIENT_WAIT`]) until `ready` says `child` is up;
/// fails at once if it exits, with its log's last lines.
async fn wait_ready<F, R>(
    mut child: Child,
    name: &str,
    log_path: &Path,
    what: &str,
    mut ready: F,
) -> anyhow::Result<Running>
where
    F: FnMut() -> R,
    R: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + CLIENT_WAIT;
    while tokio::time::Instant::now() < deadline {
        if ready().await {
            return Ok(Running {
                name: name.into(),
                child,
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status}):\n{}", last_lines(log_path, 10));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill().await;
    bail!("{what} was not up within {CLIENT_WAIT:?}")
}

/// Mounts the cluster at `mp` with a `cairn mount` child process and waits
/// until the mount is there.
async fn start_mount(dir: &Path, mp: &Path, threads: usize) -> anyhow::Result<Running> {
    fs::create_dir_all(mp).with_context(|| format!("creating {}", mp.display()))?;
    let mp = mp
        .canonicalize()
        .with_context(|| format!("resolving {}", mp.display()))?;
    let threads = threads.to_string();
    let args = [
        "mount".as_ref(),
        "--threads".as_ref(),
        threads.as_ref(),
        dir.as_os_str(),
        mp.as_os_str(),
    ];
    let (child, log) = spawn_logged(dir, "mount", &args)?;
    let what = format!("the mount on {}", mp.display());
    wait_ready(child, "mount", &log, &what, || {
        let mounted = super::mount::is_mounted(&mp);
        async move { mounted }
    })
    .await
}

/// Starts the S3 gateway (`cairn s3`, its config made on first use) and
/// waits until it accepts connections.
async fn start_s3(
    dir: &Path,
    threads: usize,
) -> anyhow::Result<(Running, cairn_s3::GatewayConfig)> {
    let path = cluster_files::ensure_s3_config(dir)?;
    let cfg = cairn_s3::GatewayConfig::load(&path)?;
    let threads = threads.to_string();
    let args = [
        "s3".as_ref(),
        "--threads".as_ref(),
        threads.as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ];
    let (child, log) = spawn_logged(dir, "s3", &args)?;
    let listen = cfg.listen;
    let running = wait_ready(child, "s3", &log, "the S3 gateway", || async move {
        tokio::net::TcpStream::connect(listen).await.is_ok()
    })
    .await?;
    Ok((running, cfg))
}

async fn start_all(
    dir: &Path,
    layout: &DevLayout,
    threads: usize,
    running: &mut Vec<Running>,
) -> anyhow::Result<()> {
    let threads = threads.to_string();
    for (server, is_meta) in layout.servers() {
        let config = config_path(dir, &server.name);
        let role = if is_meta { "meta" } else { "chunkserver" };
        let args = [
            role.as_ref(),
            "--threads".as_ref(),
            threads.as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ];
        let (child, _) = spawn_logged(dir, &server.name, &args)?;
        running.push(Running {
            name: server.name.clone(),
            child,
        });
    }
    Ok(())
}

/// Waits until the metadata node answers and every chunkserver is up;
/// fails at once if a server exits meanwhile.
async fn wait_healthy(
    dir: &Path,
    layout: &DevLayout,
    running: &mut [Running],
) -> anyhow::Result<()> {
    let cfg = ClientConfig::load(&dir.join(cluster_files::CLIENT_CONFIG))?;
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    let mut last = String::from("not yet asked");
    while tokio::time::Instant::now() < deadline {
        for r in running.iter_mut() {
            if let Ok(Some(status)) = r.child.try_wait() {
                let log = dir.join("logs").join(format!("{}.log", r.name));
                let tail = last_lines(&log, 5);
                bail!(
                    "{} exited during start-up ({status}); last lines of {}:\n{tail}",
                    r.name,
                    log.display()
                );
            }
        }
        match Client::connect(cfg.clone()).await {
            Ok(client) => match client.status().await {
                Ok(s) => {
                    let up = s.chunkservers.iter().filter(|c| c.up).count();
                    if s.leader.is_some() && up >= layout.chunkservers.len() {
                        return Ok(());
                    }
                    last = format!(
                        "leader {:?}, {up} of {} chunkservers up",
                        s.leader,
                        layout.chunkservers.len()
                    );
                }
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("cluster not healthy after {START_DEADLINE:?}: {last}")
}

/// Runs until SIGINT/SIGTERM, reporting servers that exit on their own
/// (a test or an operator may kill one and start it again by hand).
async fn supervise(running: &mut [Running], termination: &mut Termination) -> anyhow::Result<()> {
    let mut reported = vec![false; running.len()];
    loop {
        tokio::select! {
            _ = termination.wait() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for (i, r) in running.iter_mut().enumerate() {
            if reported[i] {
                continue;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                eprintln!("cairn dev: {} exited ({status})", r.name);
                reported[i] = true;
            }
        }
    }
}

/// SIGTERM every server still running, wait, then SIGKILL stragglers.
async fn stop_all(dir: &Path, running: &mut [Running]) {
    for r in running.iter() {
        // `id()` is None once the child has been reaped, so the pid cannot
        // belong to another process here.
        if let Some(pid) = r.child.id() {
            // SAFETY: plain syscall on a pid we spawned and have not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    for r in running.iter_mut() {
        match tokio::time::timeout(STOP_DEADLINE, r.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "cairn dev: {} did not stop in {STOP_DEADLINE:?}; killing it",
                    r.name
                );
                let _ = r.child.kill().await;
            }
        }
        let _ = fs::remove_file(dir.join("pids").join(format!("{}.pid", r.name)));
    }
    let _ = fs::remove_file(dir.join("pids").join("dev.pid"));
}

fn last_lines(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn write_pid(path: &Path, pid: u32) -> anyhow::Result<()> {
    fs::write(path, format!("{pid}\n")).with_context(|| format!("writing {}", path.display()))
}

/// Refuses to start a second copy of a cluster whose servers still run.
fn refuse_if_running(dir: &Path) -> anyhow::Result<()> {
    let pids = dir.join("pids");
    let Ok(entries) = fs::read_dir(&pids) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let Some(pid) = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("cairn") {
            bail!(
                "a cluster from {} is already running ({} has pid {pid}); stop it first (Ctrl-C in its terminal, or kill {pid})",
                dir.display(),
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            );
        }
        let _ = fs::remove_file(&path); // stale
    }
    Ok(())
}

fn print_summary(
    dir: &Path,
    layout: &DevLayout,
    mount: Option<&Path>,
    threads: usize,
    s3: &cairn_s3::GatewayConfig,
) {
    println!(
        "Cairn dev cluster is up ({}); {threads} runtime thread(s) per process (--threads).",
        dir.display()
    );
    let metrics = |s: &crate::cluster_files::DevServer| {
        s.metrics
            .map(|a| format!(", metrics http://{a}/metrics"))
            .unwrap_or_default()
    };
    for m in &layout.meta {
        println!("  {:<8} {}  (metadata{})", m.name, m.addr, metrics(m));
    }
    for c in &layout.chunkservers {
        println!("  {:<8} {}  (chunkserver{})", c.name, c.addr, metrics(c));
    }
    let admin = dir.join(cluster_files::ADMIN_CONFIG);
    println!(
        "Admin config: {} (the CLI's default here; may change the cluster)",
        admin.display()
    );
    println!(
        "Client config: {} (the mount's; namespace and data only)",
        dir.join(cluster_files::CLIENT_CONFIG).display()
    );
    if dir != default_dev_dir().canonicalize().unwrap_or_default() {
        println!("  export CAIRN_CONFIG={}", admin.display());
    }
    if let Some(mp) = mount {
        println!("Mounted at {} (a POSIX filesystem).", mp.display());
    }
    if let Some(key) = s3.access_keys.first() {
        println!(
            "S3 endpoint: http://{} (buckets are the top-level directories; config {})",
            s3.listen,
            dir.join(cluster_files::S3_CONFIG).display()
        );
        println!(
            "  export AWS_ENDPOINT_URL=http://{} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
            s3.listen, key.id, key.secret
        );
    }
    println!("Try: cairn put FILE /FILE && cairn ls -l / && cairn status");
    println!("Press Ctrl-C to stop.");
}
