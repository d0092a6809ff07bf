//! `cairn s3`: run the S3 gateway until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use cairn_client::{Client, ClientConfig};
use cairn_s3::{GatewayConfig, Server};

use crate::signals::Termination;

pub async fn serve(config: &Path, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut termination = Termination::install()?;
    let mut cfg = GatewayConfig::load(config)?;
    if let Some(l) = listen {
        cfg.listen = l;
    }
    let client_cfg = ClientConfig::load(&cfg.cluster).with_context(|| {
        format!(
            "loading the gateway's client config {}",
            cfg.cluster.display()
        )
    })?;
    let client = Client::connect(client_cfg)
        .await
        .context("connecting to the cluster")?;
    let server = Server::bind(&cfg, client)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, root = %cfg.root, "serving S3");
    eprintln!(
        "cairn s3: serving http://{addr} (buckets are the directories under {})",
        cfg.root
    );
    server
        .serve(async move { termination.wait().await })
        .await
        .context("serving S3")?;
    tracing::info!("stopping");
    Ok(())
}
