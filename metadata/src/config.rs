//! A metadata node's configuration: one TOML file, defaults in one place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use cairn_net::tls::TlsPaths;
use cairn_proto::NodeId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// This node's Raft id (unique in the group, non-zero).
    pub id: NodeId,
    /// UDP address to listen on for QUIC.
    pub listen: SocketAddr,
    /// `host:port` others use to reach this node; defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Where RocksDB keeps the log and state machine.
    pub data_dir: PathBuf,
    pub tls: TlsPaths,
    /// The initial voters (id → address), this node included. Empty means a
    /// single-node group of this node alone. The lowest id bootstraps.
    #[serde(default)]
    pub peers: BTreeMap<NodeId, String>,
    /// Start without a group and wait to be added to an existing one
    /// (`cairn meta add-node ID ADDR`, sent to the group). `peers` must
    /// then be empty.
    #[serde(default)]
    pub join: bool,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`);
    /// none when unset. Use a private address.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Leader heartbeat period.
    #[serde(default = "defaults::heartbeat_ms")]
    pub raft_heartbeat_ms: u64,
    /// Followers start an election after a random timeout in this range.
    #[serde(default = "defaults::election_min_ms")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "defaults::election_max_ms")]
    pub election_timeout_max_ms: u64,
    /// A chunkserver silent this long is marked down: new writes skip it
    /// and reads try it last, but it keeps its place in the ring.
    #[serde(default = "defaults::chunkserver_down_ms")]
    pub chunkserver_down_after_ms: u64,
    /// A chunkserver silent this long is removed from the ring, and repair
    /// re-creates its copies on the others. Must exceed the down timeout.
    #[serde(default = "defaults::chunkserver_remove_ms")]
    pub chunkserver_remove_after_ms: u64,
    /// Free space kept in reserve on the data disk: with less, writes that
    /// add to the namespace are refused ("no space") while reads and
    /// removals go on. Defaults to 64 MiB (an eighth of a smaller disk).
    #[serde(default)]
    pub min_free_bytes: Option<u64>,
    /// Build a snapshot after this many log entries since the last one;
    /// the log behind it is then purged.
    #[serde(default = "defaults::snapshot_every_entries")]
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot, so a briefly lagging follower
    /// catches up from the log rather than by a whole snapshot.
    #[serde(default = "defaults::log_kept_behind_snapshot")]
    pub log_kept_behind_snapshot: u64,
    /// Garbage-collection grace period: chunkservers delete a chunk once
    /// no file has referenced it for this long (or, never referenced, once
    /// it has been stored this long), and clients give up on a write whose
    /// chunks they stored more than half of it ago. 0 turns collection
    /// off. Must be the same on every metadata node, and exceed twice the
    /// clock difference between any two of them.
    #[serde(default = "defaults::gc_grace_ms")]
    pub gc_grace_ms: u64,
}

mod defaults {
    // openraft waits the leader lease (= election_timeout_max) plus the
    // node's election timeout after the last heartbeat before it campaigns,
    // and a node that saw a longer log than its own adds twice the maximum.
    // So a dead leader is replaced 450-600 ms after its last heartbeat, or
    // 600-900 ms in the longer-log case (goal: median failover under 1 s,
    // max under 3 s). Heartbeats are empty AppendEntries, cheap at 20/s.
    pub fn heartbeat_ms() -> u64 {
        50
    }
    pub fn election_min_ms() -> u64 {
        150
    }
    pub fn election_max_ms() -> u64 {
        300
    }
    pub fn chunkserver_down_ms() -> u64 {
        10_000
    }
    pub fn chunkserver_remove_ms() -> u64 {
        600_000
    }
    pub fn snapshot_every_entries() -> u64 {
        20_000
    }
    pub fn log_kept_behind_snapshot() -> u64 {
        1_000
    }
    pub fn gc_grace_ms() -> u64 {
        24 * 3600 * 1000
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("node id must be non-zero")]
    ZeroId,
    #[error("peers must include this node ({0})")]
    SelfNotInPeers(NodeId),
    #[error("election timeout range {min}..{max} ms must be above the heartbeat ({heartbeat} ms) and non-empty")]
    Timeouts { min: u64, max: u64, heartbeat: u64 },
    #[error("chunkserver timeouts: down after {down} ms must be at least 1000, and remove after {remove} ms must exceed it")]
    ChunkServerTimeouts { down: u64, remove: u64 },
    #[error("a node that joins an existing group (join = true) must not list peers")]
    JoinWithPeers,
    #[error("snapshot_every_entries must be at least 1")]
    SnapshotEvery,
}

impl MetaConfig {
    /// A single-node config with defaults.
    pub fn single(id: NodeId, listen: SocketAddr, data_dir: PathBuf, tls: TlsPaths) -> Self {
        MetaConfig {
            id,
            listen,
            advertise: None,
            data_dir,
            tls,
            peers: BTreeMap::new(),
            join: false,
            metrics_listen: None,
            raft_heartbeat_ms: defaults::heartbeat_ms(),
            election_timeout_min_ms: defaults::election_min_ms(),
            election_timeout_max_ms: defaults::election_max_ms(),
            chunkserver_down_after_ms: defaults::chunkserver_down_ms(),
            chunkserver_remove_after_ms: defaults::chunkserver_remove_ms(),
            min_free_bytes: None,
            snapshot_every_entries: defaults::snapshot_every_entries(),
            log_kept_behind_snapshot: defaults::log_kept_behind_snapshot(),
            gc_grace_ms: defaults::gc_grace_ms(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        if !self.peers.is_empty() && !self.peers.contains_key(&self.id) {
            return Err(ConfigError::SelfNotInPeers(self.id));
        }
        if self.join && !self.peers.is_empty() {
            return Err(ConfigError::JoinWithPeers);
        }
        let (min, max, heartbeat) = (
            self.election_timeout_min_ms,
            self.election_timeout_max_ms,
            self.raft_heartbeat_ms,
        );
        if min <= heartbeat || max <= min {
            return Err(ConfigError::Timeouts {
                min,
                max,
                heartbeat,
            });
        }
        let (down, remove) = (
            self.chunkserver_down_after_ms,
            self.chunkserver_remove_after_ms,
        );
        if down < 1000 || remove <= down {
            return Err(ConfigError::ChunkServerTimeouts { down, remove });
        }
        if self.snapshot_every_entries == 0 {
            return Err(ConfigError::SnapshotEvery);
        }
        Ok(())
    }

    pub fn advertise_addr(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    /// The voters to bootstrap with.
    pub fn initial_members(&self) -> BTreeMap<NodeId, String> {
        if self.peers.is_empty() {
            BTreeMap::from([(self.id, self.advertise_addr())])
        } else {
            self.peers.clone()
        }
    }
}
