//! A chunkserver's configuration: one TOML file, defaults in one place.

use std::net::SocketAddr;
use std::path::PathBuf;

use cairn_net::tls::TlsPaths;
use cairn_proto::NodeId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkServerConfig {
    /// This server's id (unique among chunkservers, non-zero).
    pub id: NodeId,
    /// UDP address to listen on for QUIC.
    pub listen: SocketAddr,
    /// `host:port` others use to reach this server; defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Where chunks are stored.
    pub data_dir: PathBuf,
    pub tls: TlsPaths,
    /// Every metadata node's `host:port`.
    pub meta: Vec<String>,
    /// Failure domain; owners of a chunk are spread across zones.
    #[serde(default = "defaults::zone")]
    pub zone: String,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`);
    /// none when unset. Use a private address.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Capacity to announce; defaults to the size of the data disk.
    #[serde(default)]
    pub capacity_bytes: Option<u64>,
    /// Free space kept in reserve: with less, this server reports itself
    /// full and new writes go to other servers; it takes writes again once
    /// twice this is free. Defaults to 1% of the capacity (at least 64 MiB,
    /// at most 10 GiB, at most an eighth of a small disk).
    #[serde(default)]
    pub min_free_bytes: Option<u64>,
    #[serde(default = "defaults::heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Pause between repair/rebalance passes over the local chunks.
    #[serde(default = "defaults::repair_interval_ms")]
    pub repair_interval_ms: u64,
    /// Byte rate repair and rebalance pushes may use (0: unlimited).
    #[serde(default = "defaults::repair_max_bytes_per_sec")]
    pub repair_max_bytes_per_sec: u64,
    /// Most chunk uploads handled at once (each holds up to 8 MiB).
    #[serde(default = "defaults::max_concurrent_puts")]
    pub max_concurrent_puts: usize,
    /// Time between the starts of two scrub passes, which re-hash every
    /// stored chunk (0: no scrubbing). The first pass starts within 10
    /// minutes of start.
    #[serde(default = "defaults::scrub_interval_ms")]
    pub scrub_interval_ms: u64,
    /// Time between garbage-collection passes (what is collected, and
    /// after how long, is the metadata group's `gc_grace_ms`).
    #[serde(default = "defaults::gc_interval_ms")]
    pub gc_interval_ms: u64,
    /// Byte rate the scrubber may read at (must be non-zero).
    #[serde(default = "defaults::scrub_max_bytes_per_sec")]
    pub scrub_max_bytes_per_sec: u64,
}

mod defaults {
    pub fn zone() -> String {
        "default".into()
    }
    pub fn heartbeat_ms() -> u64 {
        2_000
    }
    pub fn repair_interval_ms() -> u64 {
        5_000
    }
    pub fn repair_max_bytes_per_sec() -> u64 {
        128 << 20
    }
    pub fn max_concurrent_puts() -> usize {
        64
    }
    pub fn scrub_interval_ms() -> u64 {
        24 * 3600 * 1000
    }
    pub fn gc_interval_ms() -> u64 {
        600_000
    }
    pub fn scrub_max_bytes_per_sec() -> u64 {
        16 << 20
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("chunkserver id must be non-zero")]
    ZeroId,
    #[error("no metadata address given")]
    NoMeta,
    #[error("heartbeat_ms must be between 100 and 60000")]
    Heartbeat,
    #[error("max_concurrent_puts must be at least 1")]
    Puts,
    #[error(
        "scrub_max_bytes_per_sec must be non-zero (set scrub_interval_ms = 0 to stop scrubbing)"
    )]
    ScrubRate,
    #[error("gc_interval_ms must be at least 100")]
    GcInterval,
}

impl ChunkServerConfig {
    pub fn new(
        id: NodeId,
        listen: SocketAddr,
        data_dir: PathBuf,
        tls: TlsPaths,
        meta: Vec<String>,
    ) -> Self {
        ChunkServerConfig {
            id,
            listen,
            advertise: None,
            data_dir,
            tls,
            meta,
            zone: defaults::zone(),
            capacity_bytes: None,
            min_free_bytes: None,
            metrics_listen: None,
            heartbeat_ms: defaults::heartbeat_ms(),
            repair_interval_ms: defaults::repair_interval_ms(),
            repair_max_bytes_per_sec: defaults::repair_max_bytes_per_sec(),
            max_concurrent_puts: defaults::max_concurrent_puts(),
            scrub_interval_ms: defaults::scrub_interval_ms(),
            gc_interval_ms: defaults::gc_interval_ms(),
            scrub_max_bytes_per_sec: defaults::scrub_max_bytes_per_sec(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        if self.meta.is_empty() {
            return Err(ConfigError::NoMeta);
        }
        if !(100..=60_000).contains(&self.heartbeat_ms) {
            return Err(ConfigError::Heartbeat);
        }
        if self.max_concurrent_puts == 0 {
            return Err(ConfigError::Puts);
        }
        if self.gc_interval_ms < 100 {
            return Err(ConfigError::GcInterval);
        }
        if self.scrub_max_bytes_per_sec == 0 {
            return Err(ConfigError::ScrubRate);
        }
        Ok(())
    }

    pub fn advertise_addr(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}
