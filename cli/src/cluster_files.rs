//! The files of a local (dev) cluster: CA and certificates, one config per
//! server, the client config, and the layout that ties them together.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn::ca::{CertificateAuthority, Validity};
use cairn_chunkserver::ChunkServerConfig;
use cairn_client::ClientConfig;
use cairn_metadata::MetaConfig;
use cairn_net::tls::TlsPaths;
use cairn_proto::identity::Role;
use serde::{Deserialize, Serialize};

/// One server of the dev cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DevServer {
    /// `meta-1`, `chunk-2`, ...: names its config, log and pid files.
    pub name: String,
    pub id: u64,
    pub addr: SocketAddr,
    /// Its Prometheus endpoint (HTTP), if the cluster was made with one.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
}

/// What `cairn dev` created, saved as `DIR/dev.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DevLayout {
    pub meta: Vec<DevServer>,
    pub chunkservers: Vec<DevServer>,
}

impl DevLayout {
    pub fn servers(&self) -> impl Iterator<Item = (&DevServer, bool)> {
        self.meta
            .iter()
            .map(|s| (s, true))
            .chain(self.chunkservers.iter().map(|s| (s, false)))
    }
}

pub fn layout_path(dir: &Path) -> PathBuf {
    dir.join("dev.toml")
}

pub fn config_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

/// Writes `contents` to `path`, readable by the owner only when `secret`.
fn write_file(path: &Path, contents: &str, secret: bool) -> anyhow::Result<()> {
    write_with(path, contents, secret, false)
}

/// Creates `path` with `contents`, readable by the owner only when
/// `secret`, and syncs it; refuses to replace an existing file.
pub fn write_new_file(path: &Path, contents: &str, secret: bool) -> anyhow::Result<()> {
    write_with(path, contents, secret, true)
}

fn write_with(path: &Path, contents: &str, secret: bool, new: bool) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(!new)
        .create_new(new)
        .truncate(!new)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    if new {
        f.sync_all()
            .with_context(|| format!("syncing {}", path.display()))?;
    }
    Ok(())
}

/// Dev certificates do not expire in practice: a dev cluster kept for
/// years must still start.
const DEV_CERT_DAYS: u32 = 36_500;

/// A port on 127.0.0.1 free now for both UDP (QUIC) and TCP (metrics),
/// and not in `taken`; the server binds it shortly.
fn free_port(taken: &[u16]) -> anyhow::Result<u16> {
    for _ in 0..64 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .context("finding a free port")?
            .local_addr()?
            .port();
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("could not find a free port on 127.0.0.1")
}

/// Creates a new dev cluster in `dir` (which must not hold one yet): `meta`
/// metadata nodes forming one Raft group, and `chunkservers` chunkservers.
pub fn create(dir: &Path, meta: u16, chunkservers: u16) -> anyhow::Result<DevLayout> {
    for sub in ["tls", "data", "logs", "pids"] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let tls_dir = dir.join("tls");
    let ca = CertificateAuthority::generate(Validity::days(DEV_CERT_DAYS))
        .context("creating the cluster CA")?;
    write_file(&tls_dir.join("ca.pem"), &ca.cert_pem, false)?;
    write_file(&tls_dir.join("ca.key"), &ca.key_pem, true)?;
    let issue = |role: Role, name: &str| issue_cert(dir, &ca, role, name);

    let mut ports = Vec::new();
    let mut server = |name: String, id: u64| -> anyhow::Result<DevServer> {
        let port = free_port(&ports)?;
        ports.push(port);
        let metrics_port = free_port(&ports)?;
        ports.push(metrics_port);
        Ok(DevServer {
            name,
            id,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], metrics_port))),
        })
    };
    let layout = DevLayout {
        meta: (1..=u64::from(meta))
            .map(|i| server(format!("meta-{i}"), i))
            .collect::<anyhow::Result<_>>()?,
        chunkservers: (1..=u64::from(chunkservers))
            .map(|i| server(format!("chunk-{i}"), i))
            .collect::<anyhow::Result<_>>()?,
    };
    let meta_addrs: Vec<String> = layout.meta.iter().map(|m| m.addr.to_string()).collect();

    // One node alone needs no peer list; a group lists every voter, and
    // the lowest id bootstraps it.
    let peers: std::collections::BTreeMap<u64, String> = if layout.meta.len() > 1 {
        layout
            .meta
            .iter()
            .map(|m| (m.id, m.addr.to_string()))
            .collect()
    } else {
        Default::default()
    };
    for m in &layout.meta {
        let tls = issue(Role::Meta, &m.name)?;
        let mut cfg = MetaConfig::single(m.id, m.addr, dir.join("data").join(&m.name), tls);
        cfg.peers = peers.clone();
        cfg.metrics_listen = m.metrics;
        write_file(
            &config_path(dir, &m.name),
            &toml::to_string_pretty(&cfg)?,
            false,
        )?;
    }
    for c in &layout.chunkservers {
        let tls = issue(Role::ChunkServer, &c.name)?;
        let mut cfg = ChunkServerConfig::new(
            c.id,
            c.addr,
            dir.join("data").join(&c.name),
            tls,
            meta_addrs.clone(),
        );
        cfg.metrics_listen = c.metrics;
        write_file(
            &config_path(dir, &c.name),
            &toml::to_string_pretty(&cfg)?,
            false,
        )?;
    }
    let client_tls = issue(Role::Client, "client")?;
    write_client_config(dir, CLIENT_CONFIG, &meta_addrs, &client_tls)?;
    let admin_tls = issue(Role::Admin, "admin")?;
    write_client_config(dir, ADMIN_CONFIG, &meta_addrs, &admin_tls)?;
    write_file(&layout_path(dir), &toml::to_string_pretty(&layout)?, false)?;
    Ok(layout)
}

/// The config file of the dev cluster's clients (the mount's): a `client`
/// certificate, which may use the namespace and the data only.
pub const CLIENT_CONFIG: &str = "client.toml";
/// The config file of the dev cluster's operator: an `admin` certificate,
/// which may also change the cluster (replication, drains, membership, GC).
pub const ADMIN_CONFIG: &str = "admin.toml";

/// Issues `name`'s certificate with `role` from `ca`, written to
/// `dir/tls/NAME.pem` and `NAME.key` (owner-only).
fn issue_cert(
    dir: &Path,
    ca: &CertificateAuthority,
    role: Role,
    name: &str,
) -> anyhow::Result<TlsPaths> {
    let tls_dir = dir.join("tls");
    let (cert, key) = ca
        .issue(role, name, Validity::days(DEV_CERT_DAYS))
        .with_context(|| format!("issuing a certificate for {name}"))?;
    let paths = TlsPaths {
        ca: tls_dir.join("ca.pem"),
        cert: tls_dir.join(format!("{name}.pem")),
        key: tls_dir.join(format!("{name}.key")),
    };
    write_file(&paths.cert, &cert, false)?;
    write_file(&paths.key, &key, true)?;
    Ok(paths)
}

/// Writes the client config `dir/file` reaching `meta` with `tls`, its
/// paths relative to `dir` so it stays valid if the directory moves.
fn write_client_config(
    dir: &Path,
    file: &str,
    meta: &[String],
    tls: &TlsPaths,
) -> anyhow::Result<()> {
    let rel = |p: &Path| {
        p.strip_prefix(dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let cfg = ClientConfig::new(
        meta.to_vec(),
        TlsPaths {
            ca: rel(&tls.ca),
            cert: rel(&tls.cert),
            key: rel(&tls.key),
        },
    );
    write_file(&dir.join(file), &toml::to_string_pretty(&cfg)?, false)
}

/// Gives a dev cluster made before the admin role its operator config:
/// issues an `admin` certificate from the cluster's CA and writes
/// `admin.toml` beside `client.toml`. Does nothing if it exists.
pub fn ensure_admin_config(dir: &Path) -> anyhow::Result<()> {
    if dir.join(ADMIN_CONFIG).exists() {
        return Ok(());
    }
    let client = ClientConfig::load(&dir.join(CLIENT_CONFIG))
        .with_context(|| format!("reading {}", dir.join(CLIENT_CONFIG).display()))?;
    let admin_tls = issue_cert(dir, &cluster_ca(dir)?, Role::Admin, "admin")?;
    write_client_config(dir, ADMIN_CONFIG, &client.meta, &admin_tls)
}

/// The dev cluster's CA, as `create` wrote it to `tls/`.
fn cluster_ca(dir: &Path) -> anyhow::Result<CertificateAuthority> {
    let tls_dir = dir.join("tls");
    let read = |name: &str| {
        fs::read_to_string(tls_dir.join(name))
            .with_context(|| format!("reading {}", tls_dir.join(name).display()))
    };
    Ok(CertificateAuthority {
        cert_pem: read("ca.pem")?,
        key_pem: read("ca.key")?,
    })
}

/// The dev cluster's S3 gateway config (`cairn s3 --config`).
pub const S3_CONFIG: &str = "s3.toml";
/// The gateway's client config: its own `client` certificate.
pub const S3_CLIENT_CONFIG: &str = "s3-client.toml";

/// Gives the dev cluster its S3 gateway config if it has none: a client
/// certificate of its own (`s3-client.toml`), a free port, the namespace
/// root as the bucket root, and one generated access key. Returns the
/// config's path.
pub fn ensure_s3_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(S3_CONFIG);
    if path.exists() {
        return Ok(path);
    }
    let client = ClientConfig::load(&dir.join(CLIENT_CONFIG))
        .with_context(|| format!("reading {}", dir.join(CLIENT_CONFIG).display()))?;
    let tls = issue_cert(dir, &cluster_ca(dir)?, Role::Client, "s3")?;
    write_client_config(dir, S3_CLIENT_CONFIG, &client.meta, &tls)?;
    let port = free_port(&[])?;
    let metrics_port = free_port(&[port])?;
    let cfg = cairn_s3::GatewayConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], metrics_port))),
        cluster: PathBuf::from(S3_CLIENT_CONFIG),
        root: "/".into(),
        access_keys: vec![cairn_s3::AccessKey {
            id: format!("CK{}", hex_upper(&random_bytes::<9>()?)),
            secret: hex_upper(&random_bytes::<20>()?).to_lowercase(),
        }],
        upload_expiry_secs: 7 * 24 * 3600,
        upload_sweep_secs: 3600,
    };
    write_file(&path, &toml::to_string_pretty(&cfg)?, true)?;
    Ok(path)
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom for an access key")?;
    Ok(b)
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Loads the layout of an existing dev cluster, if `dir` holds one.
pub fn load(dir: &Path) -> anyhow::Result<Option<DevLayout>> {
    let path = layout_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
    ))
}

/// Reads a server's TOML config.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
