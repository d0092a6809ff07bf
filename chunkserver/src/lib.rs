//! cairn-chunkserver: stores chunks and serves them over QUIC.
//!
//! Owns the durable chunk store ([`store`]), the chunk request handler
//! ([`service`]), replication — pipelined synchronous copies ([`forward`]),
//! the durable async-copy queue ([`replication_queue`]), the repair and
//! rebalance loop ([`repair`], pure rules in [`repair_plan`], paced by
//! [`pacer`]), the [`scrubber`] that re-hashes stored chunks, the garbage
//! collector ([`gc`], its rule in `cairn_proto::gc_rule`) — and cluster membership (registration, heartbeats and the
//! known ring epoch, [`membership`]). Depends on
//! cairn-proto only; never on the metadata code, the client, or fuser.

pub mod config;
pub mod disk_room;
pub mod forward;
pub mod gc;
pub mod known_epoch;
pub mod membership;
pub mod metrics;
pub mod outboards;
pub mod pacer;
pub mod peer;
pub mod queue_plan;
pub mod repair;
pub mod repair_plan;
pub mod replication_queue;
pub mod scrubber;
pub mod service;
pub mod store;
pub mod store_fs;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use cairn_net::meta_caller::MetaCaller;
use cairn_net::{serve, server_endpoint, ConnPool, NetError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use config::ChunkServerConfig;

use crate::gc::Collector;
use crate::known_epoch::KnownEpoch;
use crate::membership::Membership;
use crate::outboards::Outboards;
use crate::pacer::Pacer;
use crate::repair::{RepairCounters, Repairer};
use crate::replication_queue::{AsyncReplicator, ReplicationQueue};
use crate::scrubber::{ScrubCounters, Scrubber};
use crate::service::ChunkService;
use crate::store::FileStore;

/// Memory for the trees of range-read chunks (1/16 of the chunk bytes:
/// 64 MiB covers random reads over about 1 GiB of chunks).
const OUTBOARD_CACHE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid config: {0}")]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("TLS: {0}")]
    Tls(#[from] cairn_net::tls::TlsError),
    #[error(transparent)]
    Metrics(#[from] cairn_net::metrics::BindError),
}

/// A running chunkserver.
pub struct ChunkServerHandle {
    pub local_addr: SocketAddr,
    pub store: FileStore,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ChunkServerHandle {
    /// Waits until the server has stopped (after its shutdown token fires).
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts a chunkserver; it serves until `shutdown` is cancelled.
pub async fn start(
    config: ChunkServerConfig,
    shutdown: CancellationToken,
) -> Result<ChunkServerHandle, StartError> {
    config.validate()?;
    let store = FileStore::open(&config.data_dir)?;
    let tls = config.tls.load()?;
    let endpoint = server_endpoint(config.listen, &tls)?;
    let local_addr = endpoint.local_addr().map_err(NetError::from)?;
    let queue = ReplicationQueue::open(&config.data_dir)?;
    let pool = ConnPool::new(endpoint.clone());
    let ring_epoch = Arc::new(KnownEpoch::default());
    let under_replicated = Arc::new(AtomicU64::new(0));
    let repair_counters = Arc::new(RepairCounters::default());
    let scrub_counters = Arc::new(ScrubCounters::default());
    let (exposition, service_metrics) = metrics::exposition(metrics::Sources {
        store: store.clone(),
        queue: queue.clone(),
        under_replicated: under_replicated.clone(),
        repair: repair_counters.clone(),
        scrub: scrub_counters.clone(),
    });
    let metrics_task = cairn_net::metrics::spawn(
        config.metrics_listen,
        exposition,
        shutdown.clone().cancelled_owned(),
    )
    .await?;
    let meta = Arc::new(MetaCaller::new(
        ConnPool::new(endpoint.clone()),
        config.meta.clone(),
    ));
    let collector = Arc::new(Collector::new(
        store.clone(),
        meta.clone(),
        std::time::Duration::from_millis(config.gc_interval_ms),
    ));
    let space_alarm = Arc::new(disk_room::SpaceAlarm::default());
    let service = Arc::new(ChunkService {
        space_alarm: space_alarm.clone(),
        metrics: service_metrics,
        gc: collector.clone(),
        store: store.clone(),
        queue: queue.clone(),
        pool: pool.clone(),
        put_slots: Semaphore::new(config.max_concurrent_puts),
        ring_epoch: ring_epoch.clone(),
        outboards: Arc::new(Outboards::new(OUTBOARD_CACHE_BYTES)),
    });
    let replicator = Arc::new(AsyncReplicator {
        queue,
        store: store.clone(),
        pool,
        meta: meta.clone(),
    });
    let repairer = Arc::new(Repairer {
        id: config.id,
        store: store.clone(),
        pool: replicator.pool.clone(),
        meta: meta.clone(),
        interval: std::time::Duration::from_millis(config.repair_interval_ms),
        ring_epoch: ring_epoch.clone(),
        under_replicated: under_replicated.clone(),
        pacer: Mutex::new(Pacer::new(
            config.repair_max_bytes_per_sec,
            std::time::Instant::now(),
        )),
        counters: repair_counters.clone(),
    });
    let scrubber = Arc::new(Scrubber {
        store: store.clone(),
        interval: std::time::Duration::from_millis(config.scrub_interval_ms),
        pacer: Mutex::new(Pacer::new(
            config.scrub_max_bytes_per_sec,
            std::time::Instant::now(),
        )),
        counters: scrub_counters.clone(),
    });
    let membership = Arc::new(Membership {
        meta,
        config: config.clone(),
        store: store.clone(),
        ring_epoch,
        under_replicated,
        scrub: scrub_counters,
        repair: repair_counters,
        gc: collector.clone(),
        full: Default::default(),
        space_alarm: space_alarm.clone(),
    });
    let serve_task = tokio::spawn(serve(
        endpoint,
        shutdown.clone().cancelled_owned(),
        move |peer, send, recv| service.clone().serve_stream(peer, send, recv),
    ));
    let replicate_task = tokio::spawn(replicator.run(shutdown.clone()));
    let repair_task = tokio::spawn(repairer.run(shutdown.clone()));
    let gc_task = tokio::spawn(collector.run(shutdown.clone()));
    let mut tasks = vec![serve_task, replicate_task, repair_task, gc_task];
    if config.scrub_interval_ms > 0 {
        tasks.push(tokio::spawn(scrubber.run(shutdown.clone())));
    }
    tasks.extend(metrics_task);
    tasks.push(tokio::spawn(membership.run(shutdown)));
    tracing::info!(id = config.id, addr = %local_addr, "chunkserver serving");
    Ok(ChunkServerHandle {
        local_addr,
        store,
        tasks,
    })
}
