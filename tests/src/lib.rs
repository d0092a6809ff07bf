//! cairn-tests: the cluster fixture for end-to-end tests against real
//! processes. The tests themselves live in `tests/`, named by area.
//!
//! [`DevCluster`] runs `cairn dev` on free 127.0.0.1 ports in a temporary
//! directory and tears everything down when dropped, even if the test
//! panics: it stops `cairn dev` (which stops its servers), then kills by PID
//! any server process of this cluster still alive, including ones the test
//! restarted by hand.
//!
//! Long (about 850 lines) because it is one fixture: starting, stopping,
//! killing and restarting servers, their configs and certificates, log and
//! heartbeat waits, and disk inspection all work on the same cluster
//! directory; `copies.rs`, `failpoints.rs` and `fuse_mount.rs` hold what
//! stands apart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub mod chaos;
pub mod copies;
pub mod failpoints;
pub mod fuse_mount;
pub mod identities;
pub mod linearizability;
pub mod links;
pub mod metrics;
pub mod nemesis;
pub mod s3_clients;
pub mod shared_files;
pub mod udp_proxy;

/// The `cairn` binary under test: `$CAIRN_BIN`, else the one built beside
/// this executable (`target/<profile>/cairn`).
pub fn cairn_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // Tests run from target/<profile>/deps/, tools from target/<profile>/.
    let dir = exe.parent().expect("executable has a directory");
    let candidates = [
        Some(dir.join("cairn")),
        dir.parent().map(|p| p.join("cairn")),
    ];
    let bin = candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "no cairn binary beside {}: build it first (cargo build --release --bin cairn) or set CAIRN_BIN",
                exe.display()
            )
        });
    bin
}

/// A `cairn dev` cluster in a temporary directory.
pub struct DevCluster {
    dir: tempfile::TempDir,
    /// Extra `cairn dev` arguments (used on the first start only).
    args: Vec<String>,
    /// Environment for `cairn dev` and so its servers (`RUST_LOG`).
    env: Vec<(String, String)>,
    dev: Option<Child>,
    /// Servers this test started by hand (restarts).
    extra: Vec<Child>,
}

/// How long `cairn dev` may take to report the cluster up.
const START_TIMEOUT: Duration = Duration::from_secs(90);

impl DevCluster {
    /// Starts a new cluster and waits until it is healthy.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a new cluster with extra `cairn dev` arguments (such as
    /// `--meta 3`) and waits until it is healthy.
    pub fn start_with(args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_env(args, &[])
    }

    /// [`Self::start_with`], with extra environment variables for the
    /// servers (such as `RUST_LOG`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("cairn-test-").tempdir()?;
        let mut c = DevCluster {
            dir,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dev: None,
            extra: Vec::new(),
        };
        c.start_dev()?;
        Ok(c)
    }

    /// Runs `cairn dev` on this cluster's directory until it reports up.
    pub fn start_dev(&mut self) -> anyhow::Result<()> {
        assert!(self.dev.is_none(), "cairn dev already running");
        let mut child = Command::new(cairn_bin())
            .arg("dev")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning cairn dev")?;
        let stdout = child.stdout.take().context("dev stdout")?;
        let stderr = child.stderr.take().context("dev stderr")?;
        self.dev = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Cairn dev cluster is up") {
                    let _ = tx.send(());
                }
            }
        });
        // Keep stderr drained (and visible in test output on failure).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[cairn dev] {line}");
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(()),
            Err(_) => bail!(
                "cairn dev did not report the cluster up within {START_TIMEOUT:?}; the servers' \
                 last log lines (the directory goes when the test ends):\n{}",
                self.log_tails(12)
            ),
        }
    }

    /// The last `n` lines of every server's log, each under its name.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        let mut logs: Vec<_> = std::fs::read_dir(self.dir.path().join("logs"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.sort();
        for path in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("== {}\n", path.display()));
            for line in &lines[lines.len().saturating_sub(n)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Stops `cairn dev` with SIGTERM and waits for it (and its servers).
    pub fn stop_dev(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.dev.take() {
            signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("cairn dev did not stop within 30 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Sets integer `settings` in every metadata node's config
    /// (`meta-N.toml`) and restarts the cluster so they apply.
    pub fn reconfigure_meta(&mut self, settings: &[(&str, i64)]) -> anyhow::Result<()> {
        self.reconfigure(&[], settings)
    }

    /// Sets integer settings in every chunkserver's and every metadata
    /// node's config and restarts the cluster so they apply.
    pub fn reconfigure(
        &mut self,
        chunkservers: &[(&str, i64)],
        meta: &[(&str, i64)],
    ) -> anyhow::Result<()> {
        self.stop_dev()?;
        let servers = self
            .chunkserver_names()
            .into_iter()
            .map(|n| (n, chunkservers))
            .chain(self.meta_names().into_iter().map(|n| (n, meta)));
        for (name, settings) in servers {
            self.edit_config(&name, |cfg| {
                for (key, value) in settings {
                    cfg.insert((*key).to_string(), toml::Value::Integer(*value));
                }
            })?;
        }
        self.start_dev()
    }

    /// Edits server NAME's config file (`NAME.toml`) in place.
    pub fn edit_config(
        &self,
        name: &str,
        edit: impl FnOnce(&mut toml::Table),
    ) -> anyhow::Result<()> {
        let path = self.dir.path().join(format!("{name}.toml"));
        let mut cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        edit(&mut cfg);
        std::fs::write(&path, toml::to_string(&cfg)?)?;
        Ok(())
    }

    /// The address server NAME listens on (`listen` in its config).
    pub fn listen_addr(&self, name: &str) -> anyhow::Result<std::net::SocketAddr> {
        let path = self.dir.path().join(format!("{name}.toml"));
        let cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&path)?)?;
        let listen = cfg
            .get("listen")
            .and_then(|v| v.as_str())
            .with_context(|| format!("{} has no listen address", path.display()))?;
        Ok(listen.parse()?)
    }

    /// Rebuilds the cluster empty, its metadata group bootstrapped with
    /// `peers` (node id → the address the other nodes use for it, such as
    /// a [`udp_proxy::UdpProxy`]); clients keep the real addresses.
    pub fn rebuild_meta_group(
        &mut self,
        peers: &std::collections::BTreeMap<u64, String>,
    ) -> anyhow::Result<()> {
        self.stop_dev()?;
        let table: toml::Table = peers
            .iter()
            .map(|(id, a)| (id.to_string(), toml::Value::String(a.clone())))
            .collect();
        for name in self.meta_names() {
            self.edit_config(&name, |cfg| {
                cfg.insert("peers".into(), toml::Value::Table(table.clone()));
            })?;
        }
        std::fs::remove_dir_all(self.dir.path().join("data"))?;
        std::fs::create_dir_all(self.dir.path().join("data"))?;
        self.start_dev()
    }

    /// Writes `meta-ID.toml` for a new metadata node that joins the group
    /// (`join = true`) on a free port, and starts it; returns its address.
    pub fn start_joining_meta(&mut self, id: u64) -> anyhow::Result<std::net::SocketAddr> {
        let name = format!("meta-{id}");
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let base = self.dir.path().join("meta-1.toml");
        std::fs::copy(&base, self.dir.path().join(format!("{name}.toml")))?;
        let data = self.dir.path().join("data").join(&name);
        self.edit_config(&name, |cfg| {
            cfg.insert("id".into(), toml::Value::Integer(id as i64));
            cfg.insert("listen".into(), toml::Value::String(addr.to_string()));
            cfg.insert(
                "data_dir".into(),
                toml::Value::String(data.to_string_lossy().into_owned()),
            );
            cfg.remove("peers");
            cfg.remove("advertise");
            // meta-1's metrics port is taken.
            cfg.remove("metrics_listen");
            cfg.insert("join".into(), toml::Value::Boolean(true));
        })?;
        self.restart_server(&name)?;
        Ok(addr)
    }

    /// Writes a client config that reaches only the metadata nodes at
    /// `meta` (same TLS), optionally with follower reads; returns its path.
    pub fn client_config_for(
        &self,
        file: &str,
        meta: &[String],
        follower_reads: bool,
    ) -> anyhow::Result<PathBuf> {
        let mut cfg: toml::Table = toml::from_str(&std::fs::read_to_string(self.client_config())?)?;
        cfg.insert(
            "meta".into(),
            toml::Value::Array(meta.iter().cloned().map(toml::Value::String).collect()),
        );
        cfg.insert(
            "follower_reads".into(),
            toml::Value::Boolean(follower_reads),
        );
        let path = self.dir.path().join(file);
        std::fs::write(&path, toml::to_string(&cfg)?)?;
        Ok(path)
    }

    /// A library client using the config file at `path`.
    pub async fn client_from(&self, path: &Path) -> anyhow::Result<cairn_client::Client> {
        let cfg = cairn_client::ClientConfig::load(path)?;
        Ok(cairn_client::Client::connect(cfg).await?)
    }

    /// Names of the metadata nodes (`meta-1`, ...), sorted.
    pub fn meta_names(&self) -> Vec<String> {
        self.names_with_prefix("meta-")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config of a `client` certificate (the mount's): the namespace
    /// and the data only.
    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("client.toml")
    }

    /// The operator's config, an `admin` certificate: also changes the
    /// cluster. [`Self::cairn`] runs with it, as the CLI does on a dev
    /// cluster.
    pub fn admin_config(&self) -> PathBuf {
        self.dir.path().join("admin.toml")
    }

    /// The library client connected to this cluster. Connecting is tried
    /// again for up to 15 s: right after a (re)start the metadata group may
    /// still be electing its leader.
    pub async fn client(&self) -> anyhow::Result<cairn_client::Client> {
        let cfg = cairn_client::ClientConfig::load(&self.client_config())?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match cairn_client::Client::connect(cfg.clone()).await {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connecting to the cluster ({e}); trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `cairn ARGS --config <this cluster's admin config>` and returns
    /// its output.
    pub fn cairn(&self, args: &[&str]) -> Output {
        self.cairn_stdin(args, None)
    }

    /// As [`Self::cairn`], feeding `stdin`.
    pub fn cairn_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.cairn_as(&self.admin_config(), args, stdin)
    }

    /// Runs `cairn ARGS --config CONFIG`, feeding `stdin`.
    pub fn cairn_as(&self, config: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut child = Command::new(cairn_bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning cairn");
        if let Some(data) = stdin {
            let mut s = child.stdin.take().expect("piped stdin");
            s.write_all(data).expect("writing cairn's stdin");
        }
        child.wait_with_output().expect("waiting for cairn")
    }

    /// The PID recorded in `pids/NAME.pid`.
    pub fn pid(&self, name: &str) -> anyhow::Result<u32> {
        let p = self.dir.path().join("pids").join(format!("{name}.pid"));
        let s = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(s.trim().parse()?)
    }

    /// `kill -9` the server NAME (as recorded in its pid file) and waits
    /// until it is gone.
    pub fn kill9(&self, name: &str) -> anyhow::Result<()> {
        let pid = self.pid(name)?;
        anyhow::ensure!(
            self.owns(pid),
            "pid {pid} of {name} is not a server of this cluster ({})",
            process_state(pid)
        );
        signal(pid, libc::SIGKILL);
        if self.extra.iter().any(|c| c.id() == pid) {
            // Started by this fixture: its exit is ours to collect.
            reap(pid, KILL_WAIT)
        } else {
            wait_gone(pid, KILL_WAIT)
        }
    }

    /// Waits up to `timeout` for server NAME, started by this fixture, to
    /// exit by itself (a failpoint's crash); reaps it. False if it lives.
    pub fn wait_exit(&mut self, name: &str, timeout: Duration) -> anyhow::Result<bool> {
        let pid = self.pid(name)?;
        let child = self
            .extra
            .iter_mut()
            .find(|c| c.id() == pid)
            .with_context(|| format!("{name} (pid {pid}) was not started by this fixture"))?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(false)
    }

    /// `SIGSTOP`s server NAME: alive, silent to every peer.
    pub fn pause(&self, name: &str) -> anyhow::Result<()> {
        self.signal_server(name, libc::SIGSTOP)
    }

    /// `SIGCONT`s server NAME after [`Self::pause`].
    pub fn resume(&self, name: &str) -> anyhow::Result<()> {
        self.signal_server(name, libc::SIGCONT)
    }

    /// Sends `sig` to server NAME, if its pid is one of this cluster's.
    fn signal_server(&self, name: &str, sig: libc::c_int) -> anyhow::Result<()> {
        let pid = self.pid(name)?;
        anyhow::ensure!(
            self.owns(pid),
            "pid {pid} of {name} is not a server of this cluster"
        );
        signal(pid, sig);
        Ok(())
    }

    /// Starts server NAME again by hand (`cairn meta|chunkserver --config`),
    /// recording its new pid.
    pub fn restart_server(&mut self, name: &str) -> anyhow::Result<()> {
        self.restart_server_with(name, &[])
    }

    /// [`Self::restart_server`] with extra environment (`FAILPOINTS`).
    pub fn restart_server_with(&mut self, name: &str, env: &[(&str, &str)]) -> anyhow::Result<()> {
        let kind = if name.starts_with("meta") {
            "meta"
        } else {
            "chunkserver"
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("logs").join(format!("{name}.log")))?;
        let child = Command::new(cairn_bin())
            .arg(kind)
            .arg("--config")
            .arg(self.dir.path().join(format!("{name}.toml")))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        std::fs::write(
            self.dir.path().join("pids").join(format!("{name}.pid")),
            format!("{}\n", child.id()),
        )?;
        self.extra.push(child);
        Ok(())
    }

    /// Adds a chunkserver NAME with id `id` on a free port (a certificate
    /// for `chunk-<id>` from the cluster's CA, otherwise chunk-1's config)
    /// and starts it.
    pub fn add_chunkserver(&mut self, name: &str, id: u64) -> anyhow::Result<()> {
        let base = self.dir.path().join("chunk-1.toml");
        let mut cfg: cairn_chunkserver::ChunkServerConfig =
            toml::from_str(&std::fs::read_to_string(&base)?).context("parsing chunk-1.toml")?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        cfg.id = id;
        cfg.tls = self.issue_cert(
            cairn_proto::identity::Role::ChunkServer,
            &cairn_proto::identity::chunkserver_cert_name(id),
        )?;
        cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        cfg.data_dir = self.dir.path().join("data").join(name);
        // chunk-1's metrics port is taken.
        cfg.metrics_listen = None;
        std::fs::write(
            self.dir.path().join(format!("{name}.toml")),
            toml::to_string(&cfg)?,
        )?;
        self.restart_server(name)
    }

    /// Issues a certificate for `role` named `name` from the cluster's CA
    /// (files in the cluster's `tls/`), valid for a day.
    pub fn issue_cert(
        &self,
        role: cairn_proto::identity::Role,
        name: &str,
    ) -> anyhow::Result<cairn_net::tls::TlsPaths> {
        let tls = self.dir.path().join("tls");
        let ca = cairn::ca::CertificateAuthority {
            cert_pem: std::fs::read_to_string(tls.join("ca.pem"))?,
            key_pem: std::fs::read_to_string(tls.join("ca.key"))?,
        };
        let (cert, key) = ca.issue(role, name, cairn::ca::Validity::days(1))?;
        let paths = cairn_net::tls::TlsPaths {
            ca: tls.join("ca.pem"),
            cert: tls.join(format!("{name}.pem")),
            key: tls.join(format!("{name}.key")),
        };
        std::fs::write(&paths.cert, cert)?;
        std::fs::write(&paths.key, key)?;
        Ok(paths)
    }

    /// The chunkserver (by name) listening on `addr`.
    pub fn server_at(&self, addr: &str) -> Option<String> {
        self.chunkserver_names().into_iter().find(|name| {
            std::fs::read_to_string(self.dir.path().join(format!("{name}.toml")))
                .ok()
                .and_then(|t| toml::from_str::<cairn_chunkserver::ChunkServerConfig>(&t).ok())
                .is_some_and(|c| c.listen.to_string() == addr)
        })
    }

    /// Chunk files (path, size) stored by chunkserver NAME.
    pub fn chunk_files(&self, name: &str) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let root = self.dir.path().join("data").join(name).join("chunks");
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(p),
                    Ok(m) => out.push((p, m.len())),
                    Err(_) => {}
                }
            }
        }
        out
    }

    /// Bytes of chunk data across every chunkserver.
    pub fn stored_bytes(&self) -> u64 {
        self.chunkserver_names()
            .iter()
            .flat_map(|n| self.chunk_files(n))
            .map(|(_, len)| len)
            .sum()
    }

    /// How many chunkservers hold each chunk (by chunk file name).
    pub fn copies_per_chunk(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for name in self.chunkserver_names() {
            for (path, _) in self.chunk_files(&name) {
                if let Some(f) = path.file_name() {
                    *counts.entry(f.to_string_lossy().into_owned()).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// Waits until every stored chunk is on at least `copies` chunkservers
    /// (async copies land in the background).
    pub fn wait_replicated(&self, copies: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let counts = self.copies_per_chunk();
            let short = counts.values().filter(|&&n| n < copies).count();
            if short == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{short} of {} chunks still have fewer than {copies} copies after {timeout:?}",
                    counts.len()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn chunkserver_names(&self) -> Vec<String> {
        self.names_with_prefix("chunk-")
    }

    /// Servers with a config file `PREFIX*.toml` in the cluster directory.
    fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(prefix))
                    .filter_map(|n| n.strip_suffix(".toml").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// True if `pid` is a server this fixture started by hand, or alive
    /// and running a config from this cluster's dir.
    fn owns(&self, pid: u32) -> bool {
        if self.extra.iter().any(|c| c.id() == pid) {
            return true;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let dir = self.dir.path().to_string_lossy().into_owned();
        String::from_utf8_lossy(&cmdline).contains(&dir)
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // A failing test shows what its servers last said (the directory
        // goes with it).
        if std::thread::panicking() {
            eprintln!("the servers' last log lines:\n{}", self.log_tails(40));
            if let Ok(rd) = std::fs::read_dir(self.dir.path().join("pids")) {
                for e in rd.flatten() {
                    let pid = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let state = pid.trim().parse().map(process_state).unwrap_or_default();
                    eprintln!(
                        "{}: pid {} {state}",
                        e.file_name().to_string_lossy(),
                        pid.trim()
                    );
                }
            }
        }
        // A paused server could not stop cleanly.
        for name in self
            .meta_names()
            .into_iter()
            .chain(self.chunkserver_names())
        {
            let _ = self.resume(&name);
        }
        let _ = self.stop_dev();
        for mut c in self.extra.drain(..) {
            signal(c.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything of ours still alive (dev killed uncleanly): kill by PID.
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("pids")) {
            for e in rd.flatten() {
                if let Some(pid) = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                {
                    if self.owns(pid) {
                        signal(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

/// The `State:` line of `pid`'s /proc status ("gone" if it has none).
fn process_state(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("State:"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "gone".into())
}

/// What each thread of `pid` waits on in the kernel (`wchan`, and the
/// top of the stack where readable): why a killed process is not gone.
fn kernel_waits(pid: u32) -> String {
    let mut out = String::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for t in tasks.flatten().take(64) {
        let p = t.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
        let state = read("stat")
            .split_whitespace()
            .nth(2)
            .unwrap_or("?")
            .to_string();
        if state != "D" {
            continue;
        }
        let stack: Vec<String> = read("stack").lines().take(6).map(str::to_string).collect();
        out.push_str(&format!(
            "\n  thread {} in D, wchan {}: {}",
            t.file_name().to_string_lossy(),
            read("wchan"),
            stack.join(" < ")
        ));
    }
    out
}

pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: a plain kill(2) on a pid this fixture started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// How long a `kill -9`ed server may take to be gone: one whose threads
/// wait on a busy disk (fsync, page faults) stays in uninterruptible
/// sleep until the disk answers (once seen past 120 s on a CI machine;
/// the error then says what each thread waits on).
const KILL_WAIT: Duration = Duration::from_secs(300);

/// Waits (bounded) for child `pid` of this process to exit, and reaps it.
fn reap(pid: u32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on a child this fixture spawned, without blocking.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r != 0 {
            return Ok(()); // reaped, or not ours to wait for any more
        }
        if Instant::now() > deadline {
            bail!(
                "process {pid} still alive {timeout:?} after SIGKILL ({}){}",
                process_state(pid),
                kernel_waits(pid)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` has exited: gone, or a zombie (not yet reaped
/// by cairn dev) whose last thread is gone too: until then its files (a
/// RocksDB lock) may still be open.
pub fn has_exited(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    stat.split_whitespace().nth(2) == Some("Z") && threads_left(pid) <= 1
}

fn wait_gone(pid: u32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !has_exited(pid) {
        if Instant::now() > deadline {
            bail!(
                "process {pid} still alive after {timeout:?} ({}){}",
                process_state(pid),
                kernel_waits(pid)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Threads of process `pid` still listed (the leader's included).
fn threads_left(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Chunkserver `id` as `client`'s cluster reports it, if it can.
pub async fn chunkserver_status(
    client: &cairn_client::Client,
    id: u64,
) -> Option<cairn_proto::meta_rpc::ChunkServerStatus> {
    let status = client.status().await.ok()?;
    status.chunkservers.into_iter().find(|c| c.id == id)
}

/// Waits (up to `timeout`) until chunkserver `id` has heartbeated since
/// `since` — a restarted server is serving again, rather than guessed to
/// be after a sleep; panics if it never does.
pub async fn wait_heartbeat_since(
    client: &cairn_client::Client,
    id: u64,
    since: Instant,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let heard = chunkserver_status(client, id).await.and_then(|c| {
            c.last_heartbeat_ms
                .filter(|&ms| c.up && u128::from(ms) < since.elapsed().as_millis())
        });
        if heard.is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "chunkserver {id} sent no heartbeat within {timeout:?} of its restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The metadata leader's id as `client`'s cluster reports it, if any.
pub async fn current_leader(client: &cairn_client::Client) -> Option<u64> {
    client.status().await.ok().and_then(|s| s.leader)
}

/// Waits (30 s at most) until `client` lists `want` entries in `/`;
/// panics, naming `what`, if it lists more or never gets there.
pub async fn wait_listing(client: &cairn_client::Client, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = client.list("/").await.map(|l| l.len()).unwrap_or(0);
        if n >= want {
            assert_eq!(n, want, "{what}: more entries than were created");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: lists {n} of {want} entries after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Peak resident set (VmHWM) of a running process, in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

/// Resident set (VmRSS) of a running process, in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// A size field of `/proc/PID/status` (given in kB), in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `n` bytes of seeded random data.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill(&mut v[..]);
    v
}
