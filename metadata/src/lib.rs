//! cairn-metadata: the metadata service.
//!
//! Owns the openraft group ([`raft_types`], [`log_store`], [`state_machine`],
//! [`network`]), its RocksDB ([`db`]), the replicated state's logic, pure
//! over [`kv`] ([`command`] applied by [`apply`]: the [`namespace`], the
//! chunkserver [`registry`], exactly-once writes in [`sessions`]), the
//! leader's in-memory chunkserver [`liveness`] and its
//! [`failure_detector`], and the request handler ([`service`]). Depends on cairn-proto only; never on the
//! client or on fuser.

pub mod apply;
pub mod batcher;
pub mod command;
pub mod config;
pub mod db;
pub mod failure_detector;
pub mod garbage_purger;
pub mod group_membership;
pub mod kv;
pub mod liveness;
pub mod log_format;
pub mod log_store;
pub mod metrics;
pub mod namespace;
pub mod network;
pub mod peer_space;
pub mod raft_types;
pub mod registry;
pub mod schema;
pub mod service;
pub mod sessions;
pub mod snapshot_format;
pub mod snapshot_store;
pub mod space_guard;
pub mod state_machine;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_net::metrics::outcome;
use cairn_net::{read_request, reply, serve, server_endpoint, ConnPool, NetError};
use cairn_proto::access::check_meta;
use cairn_proto::frame::MAX_FRAME_LEN;
use cairn_proto::identity::Role;
use cairn_proto::meta_rpc::{MetaCall, MetaResponse};
use cairn_proto::trace;
use cairn_proto::{ErrorCode, RpcError};
use openraft::BasicNode;
use tokio_util::sync::CancellationToken;

pub use config::MetaConfig;

use crate::db::RocksKv;
use crate::liveness::Liveness;
use crate::log_store::LogStore;
use crate::network::{QuicNetwork, MAX_RAFT_FRAME};
use crate::raft_types::Raft;
use crate::service::MetaService;
use crate::state_machine::StateMachine;

/// Why a metadata node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid config: {0}")]
    Config(#[from] config::ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] kv::KvError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("TLS: {0}")]
    Tls(#[from] cairn_net::tls::TlsError),
    #[error("raft: {0}")]
    Raft(String),
    #[error(transparent)]
    Metrics(#[from] cairn_net::metrics::BindError),
}

/// Snapshots travel to followers in pieces of this size (one RPC each).
const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;

/// A running metadata node.
pub struct MetaHandle {
    pub raft: Raft,
    pub local_addr: SocketAddr,
    serve_task: tokio::task::JoinHandle<()>,
    detector_task: tokio::task::JoinHandle<()>,
    purger_task: tokio::task::JoinHandle<()>,
    peer_space_task: tokio::task::JoinHandle<()>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
}

impl MetaHandle {
    /// Waits for the server to stop (after its shutdown token fires) and
    /// shuts Raft down.
    pub async fn join(self) {
        let _ = self.serve_task.await;
        let _ = self.detector_task.await;
        let _ = self.purger_task.await;
        let _ = self.peer_space_task.await;
        if let Some(t) = self.metrics_task {
            let _ = t.await;
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Starts a metadata node; it serves until `shutdown` is cancelled.
pub async fn start(
    config: MetaConfig,
    shutdown: CancellationToken,
) -> Result<MetaHandle, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let db = db::open(&config.data_dir.join("db"))?;
    let kv = RocksKv { db: db.clone() };
    let tls = config.tls.load()?;
    let endpoint = server_endpoint(config.listen, &tls)?;
    let local_addr = endpoint.local_addr().map_err(NetError::from)?;

    let raft_config = openraft::Config {
        cluster_name: "cairn".into(),
        heartbeat_interval: config.raft_heartbeat_ms,
        election_timeout_min: config.election_timeout_min_ms,
        election_timeout_max: config.election_timeout_max_ms,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries),
        max_in_snapshot_log_to_keep: config.log_kept_behind_snapshot,
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        max_payload_entries: 64,
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::Raft(e.to_string()))?;
    let pool = ConnPool::new(endpoint.clone());
    let network = QuicNetwork { pool: pool.clone() };
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        network,
        LogStore::open(db.clone())?,
        StateMachine::open(kv.clone(), &config.data_dir.join("snapshots"))?,
    )
    .await
    .map_err(|e| StartError::Raft(e.to_string()))?;

    let members = config.initial_members();
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if !initialized && !config.join && members.keys().next() == Some(&config.id) {
        let nodes: std::collections::BTreeMap<_, _> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        raft.initialize(nodes)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        tracing::info!(id = config.id, "bootstrapped the metadata group");
    }

    let service = Arc::new(MetaService {
        id: config.id,
        raft: raft.clone(),
        kv,
        liveness: Liveness::default(),
        batcher: batcher::WriteBatcher::spawn(raft.clone()),
        down_after: Duration::from_millis(config.chunkserver_down_after_ms),
        remove_after: Duration::from_millis(config.chunkserver_remove_after_ms),
        gc_grace: Duration::from_millis(config.gc_grace_ms),
        space: space_guard::SpaceGuard::new(config.data_dir.clone(), config.min_free_bytes),
    });
    let (exposition, requests) = metrics::exposition(config.id, raft.clone(), service.kv.clone());
    let metrics_task = cairn_net::metrics::spawn(
        config.metrics_listen,
        exposition,
        shutdown.clone().cancelled_owned(),
    )
    .await?;
    let detector_task = tokio::spawn(failure_detector::run(service.clone(), shutdown.clone()));
    let purger_task = tokio::spawn(garbage_purger::run(service.clone(), shutdown.clone()));
    let peer_space_task = tokio::spawn(peer_space::run(service.clone(), pool, shutdown.clone()));
    let serve_task = tokio::spawn(serve(
        endpoint,
        shutdown.cancelled_owned(),
        move |peer, mut send, mut recv| {
            let service = service.clone();
            let requests = requests.clone();
            async move {
                let started = std::time::Instant::now();
                // Only Raft traffic carries large batches of entries.
                let limit = if peer.identity.role == Role::Meta {
                    MAX_RAFT_FRAME
                } else {
                    MAX_FRAME_LEN
                };
                let (op, resp) = match read_request::<MetaCall>(&mut recv, limit, &peer).await {
                    Ok((call, _held)) => {
                        let op = call.req.op_name();
                        let work = async {
                            let resp = match check_meta(&peer.identity, &call.req) {
                                Ok(()) => {
                                    service
                                        .handle(call.req, call.session, call.follower_read)
                                        .await
                                }
                                Err(refused) => Err(refused),
                            };
                            // Raft's own traffic is too chatty for this.
                            if op != "Raft" {
                                tracing::debug!(
                                    outcome = outcome::of(&resp),
                                    took_us = started.elapsed().as_micros() as u64,
                                    "request handled"
                                );
                            }
                            resp
                        };
                        let resp =
                            trace::handle(call.request_id, op, &peer.identity.name, work).await;
                        (op, resp)
                    }
                    Err(e) => (
                        "Unreadable",
                        Err(RpcError::new(ErrorCode::InvalidRequest, e.to_string())),
                    ),
                };
                requests.observe(op, outcome::of(&resp), started.elapsed());
                if let Err(e) = reply::<MetaResponse>(&mut send, &resp, &[]).await {
                    tracing::debug!(error = %e, "reply not delivered");
                }
            }
        },
    ));
    tracing::info!(id = config.id, addr = %local_addr, "metadata node serving");
    Ok(MetaHandle {
        raft,
        local_addr,
        serve_task,
        detector_task,
        purger_task,
        peer_space_task,
        metrics_task,
    })
}
