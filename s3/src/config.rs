//! The gateway's configuration file (`cairn s3 --config s3.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// Where the S3 endpoint listens (HTTP).
    pub listen: SocketAddr,
    /// The gateway's client config (its own client certificate); relative
    /// paths are from this file's directory.
    pub cluster: PathBuf,
    /// The namespace directory whose subdirectories are the buckets.
    #[serde(default = "default_root")]
    pub root: String,
    /// Where `/metrics` listens (plain HTTP, for Prometheus); none if unset.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The access keys requests may be signed with (SigV4).
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// Multipart uploads neither completed nor aborted this long after
    /// they began are removed, parts and all.
    #[serde(default = "default_upload_expiry")]
    pub upload_expiry_secs: u64,
    /// How often the gateway looks for such uploads.
    #[serde(default = "default_upload_sweep")]
    pub upload_sweep_secs: u64,
}

fn default_root() -> String {
    "/".into()
}

fn default_upload_expiry() -> u64 {
    7 * 24 * 3600
}

fn default_upload_sweep() -> u64 {
    3600
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

impl GatewayConfig {
    /// Reads and checks `path`; `cluster` comes back resolved.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: GatewayConfig =
            toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let invalid = |why: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        if !cfg.root.starts_with('/') {
            return Err(invalid(format!(
                "root {:?} must be an absolute path",
                cfg.root
            )));
        }
        if cfg.access_keys.is_empty() {
            return Err(invalid(
                "no access_keys: every request must be signed with one".into(),
            ));
        }
        for k in &cfg.access_keys {
            if k.id.len() < 3 || k.id.len() > 128 || k.secret.len() < 8 {
                return Err(invalid(format!(
                    "access key {:?}: ids are 3-128 characters, secrets at least 8",
                    k.id
                )));
            }
        }
        if cfg.upload_sweep_secs == 0 {
            return Err(invalid("upload_sweep_secs must be at least 1".into()));
        }
        if cfg.cluster.is_relative() {
            if let Some(dir) = path.parent() {
                cfg.cluster = dir.join(&cfg.cluster);
            }
        }
        Ok(cfg)
    }
}
