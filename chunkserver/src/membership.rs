//! Joining the cluster: register with the metadata group, then heartbeat
//! with capacity, load and the repair backlog. Re-registers if the
//! metadata group has forgotten this server. Each heartbeat's answer
//! carries the ring epoch, which this server passes on in every reply so
//! that clients holding an older ring refresh it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_net::meta_caller::{MetaCallError, MetaCaller};
use cairn_proto::meta_rpc::{ChunkServerReply, ChunkServerReport};
use cairn_proto::ErrorCode;
use tokio_util::sync::CancellationToken;

use crate::config::ChunkServerConfig;
use crate::disk_room;
use crate::gc::Collector;
use crate::known_epoch::KnownEpoch;
use crate::repair::RepairCounters;
use crate::scrubber::ScrubCounters;
use crate::store::FileStore;
use cairn_proto::disk_space::disk_space;

pub struct Membership {
    pub meta: Arc<MetaCaller>,
    pub config: ChunkServerConfig,
    pub store: FileStore,
    pub ring_epoch: Arc<KnownEpoch>,
    /// Written by the repair loop after each pass.
    pub under_replicated: Arc<AtomicU64>,
    /// The background loops' progress.
    pub scrub: Arc<ScrubCounters>,
    pub repair: Arc<RepairCounters>,
    pub gc: Arc<Collector>,
    /// Whether the last heartbeat said this server is full.
    pub full: AtomicBool,
    /// Raised by a store that ran out of space.
    pub space_alarm: Arc<disk_room::SpaceAlarm>,
}

impl Membership {
    fn capacity(&self) -> u64 {
        self.config
            .capacity_bytes
            .or_else(|| disk_space(self.store.root()).map(|(total, _)| total))
            .unwrap_or(0)
    }

    pub async fn register(&self) -> Result<(), MetaCallError> {
        self.meta
            .ask(ChunkServerReport::Register {
                id: self.config.id,
                addr: self.config.advertise_addr(),
                zone: self.config.zone.clone(),
                capacity_bytes: self.capacity(),
            })
            .await?;
        tracing::info!(id = self.config.id, "registered with metadata");
        Ok(())
    }

    /// Bytes this server may still store, and whether that is below its
    /// reserve (see [`disk_room`]).
    fn room(&self, used: u64) -> (u64, bool) {
        let capacity = self.capacity();
        let available = disk_room::available(
            disk_space(self.store.root()).map(|(_, free)| free),
            self.config.capacity_bytes,
            used,
        );
        let reserve = self
            .config
            .min_free_bytes
            .unwrap_or_else(|| disk_room::default_reserve(capacity));
        let was = self.full.load(Ordering::Relaxed);
        let ran_out = self.space_alarm.take();
        let full = ran_out || disk_room::is_full(available, reserve, was);
        if full != was {
            self.full.store(full, Ordering::Relaxed);
            if full {
                tracing::warn!(available, reserve, "disk below its reserve: reporting full");
            } else {
                tracing::info!(available, reserve, "disk has room again");
            }
        }
        (available, full)
    }

    async fn heartbeat(&self) -> Result<(), MetaCallError> {
        let (chunks, used) = self.store.usage();
        let (available_bytes, full) = self.room(used);
        let answer = self
            .meta
            .ask(ChunkServerReport::Heartbeat {
                id: self.config.id,
                capacity_bytes: self.capacity(),
                used_bytes: used,
                available_bytes,
                full,
                chunks,
                under_replicated: self.under_replicated.load(Ordering::Relaxed),
                scrub: self.scrub.report(),
                repair: self.repair.report(),
                gc: self.gc.totals(),
            })
            .await?;
        if let ChunkServerReply::Beat { ring_epoch } = answer {
            self.ring_epoch.observe(ring_epoch);
        }
        Ok(())
    }

    /// Registers (retrying until it succeeds) and heartbeats until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let period = Duration::from_millis(self.config.heartbeat_ms);
        let mut registered = false;
        loop {
            let result = if registered {
                self.heartbeat().await
            } else {
                self.register().await
            };
            match result {
                Ok(()) => registered = true,
                Err(MetaCallError::Rpc(e)) if e.code == ErrorCode::NotFound => {
                    tracing::warn!("metadata does not know this server; registering again");
                    registered = false;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, registered, "heartbeat to metadata failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
                // A store ran out of space: say so now, not a period later.
                _ = self.space_alarm.raised() => {}
            }
        }
    }
}
