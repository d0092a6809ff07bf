//! Finding the cluster a client command talks to.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_client::ClientConfig;

use crate::cluster_files::{ADMIN_CONFIG, CLIENT_CONFIG};

/// The dev cluster's default directory: $CAIRN_DEV_DIR, else
/// $XDG_DATA_HOME/cairn/dev, else ~/.local/share/cairn/dev.
pub fn default_dev_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CAIRN_DEV_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("cairn").join("dev");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local").join("share").join("cairn").join("dev")
}

/// The client config: `--config`, else $CAIRN_CONFIG, else the dev
/// cluster's operator config (`admin.toml`; `client.toml` in a cluster
/// that has none).
pub fn client_config(flag: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let (path, source) = match (flag, std::env::var_os("CAIRN_CONFIG")) {
        (Some(p), _) => (p.to_path_buf(), "--config"),
        (None, Some(p)) => (PathBuf::from(p), "$CAIRN_CONFIG"),
        (None, None) => (dev_config(&default_dev_dir()), "the dev cluster default"),
    };
    if !path.exists() {
        bail!(
            "no cluster config at {} (from {source}); pass --config FILE, set CAIRN_CONFIG, or start a local cluster with `cairn dev`",
            path.display()
        );
    }
    ClientConfig::load(&path).with_context(|| format!("loading {}", path.display()))
}

/// The config the CLI uses in dev cluster directory `dir`.
fn dev_config(dir: &Path) -> PathBuf {
    let admin = dir.join(ADMIN_CONFIG);
    if admin.exists() {
        admin
    } else {
        dir.join(CLIENT_CONFIG)
    }
}
