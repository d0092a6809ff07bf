//! `cairn meta` and `cairn chunkserver`: run one server until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cairn_chunkserver::ChunkServerConfig;
use cairn_metadata::MetaConfig;
use tokio_util::sync::CancellationToken;

use crate::cluster_files::read_config;
use crate::signals::Termination;

/// How long a server may take to stop before the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

pub async fn meta(
    config: &Path,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cfg: MetaConfig = read_config(config)?;
    if let Some(l) = listen {
        cfg.listen = l;
    }
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    // Failpoints named in FAILPOINTS, for crash tests (a test build only).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let termination = Termination::install()?;
    let cancel = CancellationToken::new();
    let handle = cairn_metadata::start(cfg, cancel.clone())
        .await
        .context("starting the metadata node")?;
    run_until_terminated(termination, cancel, handle.join()).await
}

pub async fn chunkserver(
    config: &Path,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cfg: ChunkServerConfig = read_config(config)?;
    if let Some(l) = listen {
        cfg.listen = l;
    }
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    // Failpoints named in FAILPOINTS, for crash tests (a test build only).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let termination = Termination::install()?;
    let cancel = CancellationToken::new();
    let handle = cairn_chunkserver::start(cfg, cancel.clone())
        .await
        .context("starting the chunkserver")?;
    run_until_terminated(termination, cancel, handle.join()).await
}

/// Serves until SIGINT/SIGTERM, then cancels and waits (bounded) for `join`.
async fn run_until_terminated(
    mut termination: Termination,
    cancel: CancellationToken,
    join: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    termination.wait().await;
    tracing::info!("stopping");
    cancel.cancel();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, join).await.is_err() {
        tracing::warn!("shutdown deadline passed; exiting anyway");
    }
    Ok(())
}
