//! Where the cluster is and how to talk to it: one TOML file.

use std::path::{Path, PathBuf};

use cairn_net::tls::TlsPaths;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Every metadata node's `host:port`.
    pub meta: Vec<String>,
    pub tls: TlsPaths,
    /// Chunks uploaded at once per put (each holds up to 4 MiB in memory).
    #[serde(default = "defaults::upload_concurrency")]
    pub upload_concurrency: usize,
    /// Chunks fetched at once per get (each holds up to 4 MiB in memory).
    #[serde(default = "defaults::download_concurrency")]
    pub download_concurrency: usize,
    /// Let any metadata node answer lookups, listings and file layouts
    /// from its own applied state instead of the leader confirming each
    /// read. Spreads read load; a read may then miss a write made in the
    /// last moments (even this client's own). Off: every read is
    /// linearizable.
    #[serde(default)]
    pub follower_reads: bool,
}

mod defaults {
    pub fn upload_concurrency() -> usize {
        8
    }
    pub fn download_concurrency() -> usize {
        8
    }
}

impl ClientConfig {
    pub fn new(meta: Vec<String>, tls: TlsPaths) -> Self {
        ClientConfig {
            meta,
            tls,
            upload_concurrency: defaults::upload_concurrency(),
            download_concurrency: defaults::download_concurrency(),
            follower_reads: false,
        }
    }

    /// Reads a config file. Relative TLS paths are taken relative to the
    /// file's directory, so a cluster directory can be moved whole.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("reading {}: {e}", path.display())))?;
        let mut cfg: ClientConfig = toml::from_str(&text)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: &PathBuf| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.clone()
            }
        };
        cfg.tls = TlsPaths {
            ca: abs(&cfg.tls.ca),
            cert: abs(&cfg.tls.cert),
            key: abs(&cfg.tls.key),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ClientError> {
        if self.meta.is_empty() {
            return Err(ClientError::Config(
                "no metadata address (`meta`) given".into(),
            ));
        }
        for (name, v) in [
            ("upload_concurrency", self.upload_concurrency),
            ("download_concurrency", self.download_concurrency),
        ] {
            if !(1..=256).contains(&v) {
                return Err(ClientError::Config(format!(
                    "{name} must be between 1 and 256, not {v}"
                )));
            }
        }
        Ok(())
    }
}
