//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Cairn: a distributed file and object store.
///
/// Start a local cluster with `cairn dev`, then use `put`, `get`, `ls` and
/// friends from another terminal: they find the dev cluster by themselves.
/// The version `--version` shows; a build with failpoints says so.
const VERSION: &str = if cfg!(feature = "failpoints") {
    concat!(env!("CARGO_PKG_VERSION"), " (with failpoints)")
} else {
    env!("CARGO_PKG_VERSION")
};

#[derive(Parser, Debug)]
#[command(name = "cairn", version = VERSION, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads of this process's async runtime (default: one per
    /// core). `cairn dev` gives each server and its mount an even share of
    /// the cores, as processes sharing a small machine run faster with
    /// fewer threads each.
    #[arg(long, global = true, env = "CAIRN_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// How a client command finds its cluster.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Client config file. Default: $CAIRN_CONFIG, else the dev cluster's
    /// admin.toml (see `cairn dev --help`). Changing the cluster
    /// (replication, drain, remove, metadata membership, gc) needs a config
    /// with an `admin` certificate.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Let any metadata node answer reads (lookups, listings, file
    /// layouts) from its own state: less load on the leader, but a read may
    /// miss a write from the last moments. Same as `follower_reads = true`
    /// in the client config.
    #[arg(long, global = true)]
    pub follower_reads: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a metadata node (`--config FILE`), or change the metadata
    /// group's membership (`add-node`, `remove-node`).
    #[command(args_conflicts_with_subcommands = true)]
    Meta {
        #[command(subcommand)]
        action: Option<MetaAction>,
        /// The node's TOML config (to run it).
        #[arg(long, value_name = "FILE", required = false)]
        config: Option<PathBuf>,
        /// Override `listen` from the config.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Override `data_dir` from the config.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run a chunkserver (`--config FILE`), or manage one (`remove ID`).
    #[command(args_conflicts_with_subcommands = true)]
    Chunkserver {
        #[command(subcommand)]
        action: Option<ChunkserverAction>,
        /// The server's TOML config (to run it).
        #[arg(long, value_name = "FILE", required = false)]
        config: Option<PathBuf>,
        /// Override `listen` from the config.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Override `data_dir` from the config.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run the S3 gateway: the S3 REST API over HTTP, on the cluster's
    /// namespace. Bucket B is the directory ROOT/B, object key a/b the
    /// file ROOT/B/a/b, so the mount and S3 see the same files. Every
    /// request must be signed (SigV4) with one of the config's access
    /// keys; any region name is accepted.
    ///
    /// The config (TOML): `listen = "127.0.0.1:9000"`, `cluster =
    /// "s3-client.toml"` (the gateway's own client config), `root = "/"`,
    /// and `[[access_keys]]` tables with `id` and `secret`. `cairn dev`
    /// writes one and starts the gateway.
    S3 {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Listen here instead of the config's address.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run a local cluster: 1 metadata node and 3 chunkservers on free
    /// 127.0.0.1 ports, each its own process, in the foreground.
    ///
    /// The first run creates DIR with a cluster CA, certificates, one config
    /// per server, `admin.toml` for its operator (an `admin` certificate, the
    /// CLI's default), `client.toml` for clients and the mount (a `client`
    /// certificate: namespace and data only), `s3.toml` for the S3 gateway
    /// it also starts (with `s3-client.toml`, its own client certificate,
    /// and a generated access key), `logs/` and `pids/NAME.pid`.
    /// Running it again on the same DIR brings the same cluster back with its
    /// data. Ctrl-C (or SIGTERM) stops every server cleanly.
    Dev {
        /// Where the cluster lives. Default: $CAIRN_DEV_DIR, else
        /// $XDG_DATA_HOME/cairn/dev, else ~/.local/share/cairn/dev.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Chunkservers to run (first run only; later runs keep the layout).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
        chunkservers: u16,
        /// Metadata nodes: 1, or 3 or 5 for a replicated Raft group that
        /// survives losing a minority (first run only).
        #[arg(long, default_value_t = 1, value_parser = parse_meta_nodes)]
        meta: u16,
        /// Also mount the cluster as a filesystem at this directory
        /// (created if missing), unmounted when the cluster stops.
        #[arg(long, value_name = "DIR")]
        mount: Option<PathBuf>,
    },
    /// Collect garbage now: every chunkserver deletes the chunks no file
    /// has referenced for the grace period (`gc_grace_ms` in the metadata
    /// config, a day by default) and uploads never committed that old.
    ///
    /// Chunkservers also do this by themselves every `gc_interval_ms`.
    /// With --dry-run nothing is deleted: the chunks that would be are
    /// listed.
    Gc {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Create a cluster CA in DIR: `ca.pem` (the certificate every server
    /// and client trusts) and `ca.key` (its private key, 0600; keep it
    /// offline once the certificates are issued).
    ///
    /// Then issue one certificate per server and client with `cairn cert
    /// issue`. `cairn dev` does all of this by itself.
    Init {
        /// Directory for the CA (created 0700 if missing; must not hold a
        /// CA already).
        dir: PathBuf,
        /// How long the CA certificate is valid, in days.
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
        /// Print what was written as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue and inspect certificates signed by the cluster CA.
    Cert {
        #[command(subcommand)]
        action: CertAction,
    },
    /// Upload a local file (or `-` for stdin) to REMOTE.
    ///
    /// If REMOTE is an existing directory or ends in `/`, the file keeps its
    /// name inside it. An existing file at REMOTE is replaced atomically.
    Put {
        local: PathBuf,
        remote: String,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Download REMOTE to a local file (or `-` for stdout).
    ///
    /// Every chunk is verified against its hash; the local file appears only
    /// once the whole download succeeded.
    Get {
        remote: String,
        local: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// List a directory.
    Ls {
        #[arg(default_value = "/")]
        path: String,
        /// Long format: type, mode, links, owner, size, time.
        #[arg(short = 'l')]
        long: bool,
        /// JSON output (always with attributes).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Create directories.
    Mkdir {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Create missing parents; an existing directory is not an error.
        #[arg(short = 'p', long)]
        parents: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Remove files, or empty directories.
    Rm {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Remove directories and everything in them.
        #[arg(short = 'r', long)]
        recursive: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Rename or move SRC to DST (into DST if it is a directory).
    Mv {
        src: String,
        dst: String,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Show a file's or directory's attributes.
    Stat {
        path: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Show or set how many copies of each chunk the cluster keeps.
    ///
    /// N copies in all; S of them are written before a put is acknowledged
    /// (the primary and S-1 backups), the other N-S in the background.
    /// Applies to chunks written from now on.
    Replication {
        /// N: copies in all (1..=8).
        #[arg(long, requires = "sync_copies")]
        copies: Option<u8>,
        /// S: synchronous copies (1..=N).
        #[arg(long, requires = "copies")]
        sync_copies: Option<u8>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Mount the cluster as a POSIX filesystem at MOUNTPOINT (FUSE).
    ///
    /// Runs in the foreground until Ctrl-C or SIGTERM (or `cairn umount
    /// MOUNTPOINT`), then unmounts cleanly. Writes are buffered per open
    /// file and reach the cluster at close or fsync (close-to-open, as
    /// NFS); fsync returns once they are durable. Needs fusermount3 (the
    /// fuse3 package).
    Mount {
        /// The cluster: a client config file, or a directory holding
        /// `client.toml` (such as the dev cluster's directory).
        cluster: PathBuf,
        /// An existing directory to mount on.
        mountpoint: PathBuf,
        /// Detach once mounted; logs go to --log-file.
        #[arg(long)]
        daemon: bool,
        /// With --daemon: where the mount logs. Default: a file named after
        /// the mountpoint in the temp directory.
        #[arg(long, value_name = "FILE", requires = "daemon")]
        log_file: Option<PathBuf>,
        /// Seconds the kernel caches attributes (size, mode, times).
        #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_ttl)]
        attr_ttl: f64,
        /// Seconds the kernel caches name lookups.
        #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_ttl)]
        entry_ttl: f64,
        /// MiB of verified chunks cached in memory for reads.
        #[arg(long, value_name = "MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65536))]
        cache_mib: u64,
        /// MiB of buffered writes per file before they are stored (all files
        /// together may hold 4 times this).
        #[arg(long, value_name = "MIB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
        write_buffer_mib: u64,
        /// MiB fetched ahead of a sequential reader.
        #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=4096))]
        readahead_mib: u64,
        /// Send each file create to metadata at once. By default a create
        /// is sent with the file's bytes when it is closed (one commit
        /// for a small file instead of two) or within half a second,
        /// whichever comes first; until then other clients do not see
        /// the new file (this mount always does).
        #[arg(long)]
        sync_creates: bool,
        /// Apply each unlink before answering it. By default an unlink is
        /// answered at once and applied in the background, many at a time
        /// (so `rm` of many files does not wait for one commit per file);
        /// like on a local disk it is durable once `fsync` of its
        /// directory returns, and other clients see the name gone a few
        /// milliseconds later (this mount at once).
        #[arg(long)]
        sync_unlinks: bool,
    },
    /// Unmount a Cairn filesystem mounted with `cairn mount`.
    Umount {
        mountpoint: PathBuf,
        /// Detach now even if files are open (they keep working until
        /// closed).
        #[arg(short = 'z', long)]
        lazy: bool,
    },
    /// Show cluster health: metadata leader and term, chunkservers, usage.
    Status {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

fn parse_ttl(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s}: a number of seconds from 0 to 3600")),
    }
}

fn parse_meta_nodes(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n @ (1 | 3 | 5)) => Ok(n),
        _ => Err(format!(
            "{s}: a metadata group has 1, 3 or 5 nodes (an odd number, so a majority survives)"
        )),
    }
}

#[derive(Subcommand, Debug)]
pub enum MetaAction {
    /// Add a metadata node to the running group, online.
    ///
    /// Start the new node first, with `join = true` and no `peers` in its
    /// config. It joins as a learner, catches up from the log (or a
    /// snapshot), and becomes a voter once it is close behind; this command
    /// waits for that, showing how far behind it is. Then add ADDR to the
    /// clients' `meta` lists.
    AddNode {
        /// The new node's id (its config's `id`; unique, non-zero).
        id: u64,
        /// host:port where the other metadata nodes reach it.
        addr: String,
        /// Give up (exit non-zero; the node stays a learner) after this
        /// many seconds of catching up.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        timeout: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Remove a metadata node from the group, online.
    ///
    /// Stop it afterwards and drop its address from the clients' and
    /// chunkservers' `meta` lists. Removing the leader is allowed: the
    /// others elect a new one. The last voter cannot be removed.
    RemoveNode {
        /// The node's id (see `cairn status`).
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertAction {
    /// Issue a certificate: writes NAME.pem and NAME.key (0600) to --out.
    ///
    /// The role decides what its holder may do: `meta` runs Raft between
    /// metadata nodes, `chunkserver` registers and copies chunks between
    /// servers, `client` uses the namespace and the data (mounts, gateways,
    /// applications), `admin` may also change the cluster (replication,
    /// drain and remove, metadata membership, gc).
    /// Servers refuse every request a role may not make. Point the
    /// component's config (`tls.ca`, `tls.cert`, `tls.key`) at the files.
    Issue {
        /// meta, chunkserver, client or admin.
        #[arg(long)]
        role: cairn_proto::identity::Role,
        /// The holder's name (letters, digits, '.', '_', '-'; at most 64):
        /// names the files and shows in the servers' logs.
        #[arg(long)]
        name: String,
        /// The directory `cairn init` made (ca.pem and ca.key).
        #[arg(long, value_name = "DIR", default_value = ".", env = "CAIRN_CA_DIR")]
        ca_dir: PathBuf,
        /// Where to write the certificate and key. Default: the CA directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// How long the certificate is valid, in days.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
        /// Print what was written as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a certificate's role, name, validity and whether the CA in
    /// --ca-dir signed it.
    Show {
        /// The certificate (PEM).
        file: PathBuf,
        /// The directory `cairn init` made, to check the signature against.
        #[arg(long, value_name = "DIR", env = "CAIRN_CA_DIR")]
        ca_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChunkserverAction {
    /// Take a chunkserver out of the placement ring for good (it died, or
    /// was drained and stopped). Repair re-creates its copies on the
    /// others. Refused while the server is up: drain it, stop it, then
    /// remove it. (A server silent for `chunkserver_remove_after_ms` is
    /// removed automatically.)
    Remove {
        /// The chunkserver's id (see `cairn status`).
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Empty a chunkserver before retiring it: it stops owning chunks, and
    /// its repair loop copies every chunk it holds to the new owners,
    /// deleting each local copy once all owners confirm. It keeps serving
    /// reads meanwhile.
    Drain {
        /// The chunkserver's id (see `cairn status`).
        id: u64,
        /// Wait, with progress, until it holds no chunks.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (exit non-zero, the drain goes on) after
        /// this many seconds.
        #[arg(long, value_name = "SECS", requires = "wait")]
        timeout: Option<u64>,
        /// Cancel a drain: the server owns chunks again.
        #[arg(long, conflicts_with = "wait")]
        cancel: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

impl Command {
    /// Servers log at info by default; client commands only warn.
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            Command::Meta { action: None, .. }
                | Command::Chunkserver { action: None, .. }
                | Command::Dev { .. }
                | Command::S3 { .. }
                | Command::Mount { .. }
        )
    }
}
