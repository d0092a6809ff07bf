//! Answers [`ChunkRequest`]s: store (hash verified, durable before the
//! answer), read, "have?" and stat — each only for the roles
//! [`cairn_proto::access`] allows.

use std::sync::Arc;

use cairn_net::metrics::outcome;
use cairn_net::{answer, read_request, ConnPool, Peer};
use cairn_proto::access::check_chunk;
use cairn_proto::chunk_rpc::{
    ChunkCall, ChunkReply, ChunkRequest, ChunkResponse, MAX_CHUNK_FRAME, MAX_CHUNK_LEN,
    MAX_CONFIRM_QUERY, MAX_COPY_TARGETS, MAX_HAVE_QUERY,
};
use cairn_proto::{trace, ChunkId, ErrorCode, RpcError};
use tokio::sync::Semaphore;

use crate::forward;
use crate::gc::Collector;
use crate::known_epoch::KnownEpoch;
use crate::metrics::ServiceMetrics;
use crate::outboards::Outboards;
use crate::replication_queue::ReplicationQueue;
use crate::store::FileStore;

pub struct ChunkService {
    pub store: FileStore,
    pub queue: ReplicationQueue,
    /// Connections to other chunkservers (forwarding, async copies).
    pub pool: ConnPool,
    /// Bounds concurrent uploads, and so the chunk bytes held in memory.
    pub put_slots: Semaphore,
    /// The newest ring epoch this server has heard of; sent in every reply.
    pub ring_epoch: Arc<KnownEpoch>,
    /// Trees for verifiable range reads.
    pub outboards: Arc<Outboards>,
    pub metrics: ServiceMetrics,
    pub gc: Arc<Collector>,
    /// Raised when a store finds the disk full (see [`crate::disk_room`]).
    pub space_alarm: Arc<crate::disk_room::SpaceAlarm>,
}

/// A store failure as the caller sees it: a full disk says so.
fn store_failed(e: crate::store::StoreError) -> RpcError {
    if e.is_no_space() {
        tracing::warn!(error = %e, "out of disk space; refusing a store");
        return RpcError::new(
            ErrorCode::NoSpace,
            format!("no space left on this chunkserver: {e}"),
        );
    }
    internal(e)
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    tracing::error!(error = %e, "chunk store failure");
    RpcError::new(ErrorCode::Internal, e.to_string())
}

/// Longest copy-target address accepted (`host:port`).
const MAX_TARGET_ADDR: usize = 261;

/// Checks the copy targets a client names in a put: few enough, and each
/// a plausible `host:port` (the primary then dials only peers that prove a
/// chunkserver certificate, see [`forward`]).
fn check_copy_targets(backups: &[String], async_copies: &[String]) -> Result<(), RpcError> {
    if backups.len() + async_copies.len() > MAX_COPY_TARGETS {
        return Err(RpcError::new(
            ErrorCode::InvalidRequest,
            format!("more than {MAX_COPY_TARGETS} copy targets"),
        ));
    }
    for addr in backups.iter().chain(async_copies) {
        let plausible = addr.len() <= MAX_TARGET_ADDR
            && addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !plausible {
            return Err(RpcError::new(
                ErrorCode::InvalidRequest,
                format!("copy target {addr:.64?} is not host:port"),
            ));
        }
    }
    Ok(())
}

impl ChunkService {
    /// Receives chunk `id` (`len` bytes following on `recv`), forwarding it
    /// to `backups` as it arrives; answers once it is durable here and on
    /// every backup and `async_copies` are durably queued.
    async fn store_chunk(
        &self,
        id: ChunkId,
        len: u32,
        backups: &[String],
        async_copies: &[String],
        peer: &Peer,
        recv: &mut quinn::RecvStream,
    ) -> Result<(ChunkResponse, Vec<u8>), RpcError> {
        if len > MAX_CHUNK_LEN {
            return Err(RpcError::new(
                ErrorCode::InvalidRequest,
                format!("chunk of {len} bytes exceeds the limit of {MAX_CHUNK_LEN}"),
            ));
        }
        // The body's memory counts against the sender's connection first,
        // then against the server's upload slots.
        let _held = peer.reserve(len as usize).await;
        let _slot = self
            .put_slots
            .acquire()
            .await
            .map_err(|_| RpcError::new(ErrorCode::Unavailable, "shutting down"))?;
        let (data, forwarding) =
            forward::receive_and_forward(&self.pool, id, len, backups, recv).await?;
        let data = tokio::task::spawn_blocking(move || id.matches(&data).then_some(data))
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                RpcError::new(
                    ErrorCode::HashMismatch,
                    format!("uploaded bytes do not hash to {id}"),
                )
            })?;
        // Crash tests: forwarded, neither stored here nor queued yet.
        if !async_copies.is_empty() {
            cairn_proto::crash_point!("replication-before-enqueue");
        }
        // Stored and queued at once (their fsyncs overlap): an entry whose
        // chunk is not stored here yet waits in the queue (`queue_plan`).
        let store = self.store.clone();
        let local =
            tokio::task::spawn_blocking(move || store.put(&id, &data).map_err(store_failed));
        let queue = self.queue.clone();
        let targets = async_copies.to_vec();
        let queued = async move {
            if targets.is_empty() {
                return Ok(Ok(()));
            }
            tokio::task::spawn_blocking(move || queue.enqueue(&id, &targets)).await
        };
        let (local, queued, remote) = tokio::join!(local, queued, forwarding.acknowledged());
        let (local, queued) = (local.map_err(internal)?, queued.map_err(internal)?);
        if local.as_ref().is_err_and(|e| e.code == ErrorCode::NoSpace)
            || queued.as_ref().is_err_and(|e| e.is_no_space())
        {
            self.space_alarm.raise();
        }
        local?;
        remote?;
        queued.map_err(store_failed)?;
        self.metrics.bytes_in.inc_by(u64::from(len));
        if !async_copies.is_empty() {
            // Crash tests: stored here and on the backups and queued, not
            // yet answered.
            cairn_proto::crash_point!("replication-enqueued");
        }
        Ok((ChunkResponse::Stored, Vec::new()))
    }

    /// Serves one stream: one request, one answer.
    pub async fn serve_stream(
        self: Arc<Self>,
        peer: Arc<Peer>,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        let started = std::time::Instant::now();
        let request = read_request::<ChunkCall>(&mut recv, MAX_CHUNK_FRAME, &peer).await;
        let (call, _held) = match request {
            Ok(read) => read,
            Err(e) => {
                let reply = ChunkReply {
                    ring_epoch: self.ring_epoch.get(),
                    result: Err(RpcError::new(ErrorCode::InvalidRequest, e.to_string())),
                };
                self.metrics
                    .requests
                    .observe("Unreadable", outcome::ERROR, started.elapsed());
                if let Err(e) = answer(&mut send, &reply, &[]).await {
                    tracing::debug!(peer = %peer.addr, error = %e, "reply not delivered");
                }
                return;
            }
        };
        let op = call.req.op_name();
        let work = async {
            let handled = match check_chunk(&peer.identity, &call.req) {
                Ok(()) => self.handle(call.req, &peer, &mut recv).await,
                Err(refused) => Err(refused),
            };
            let (result, body) = match handled {
                Ok((r, body)) => (Ok(r), body),
                Err(e) => (Err(e), Vec::new()),
            };
            let reply = ChunkReply {
                ring_epoch: self.ring_epoch.get(),
                result,
            };
            let outcome = outcome::of(&reply.result);
            self.metrics
                .requests
                .observe(op, outcome, started.elapsed());
            tracing::debug!(
                outcome,
                took_us = started.elapsed().as_micros() as u64,
                "request handled"
            );
            match answer(&mut send, &reply, &body).await {
                Ok(()) => {
                    self.metrics.bytes_out.inc_by(body.len() as u64);
                }
                Err(e) => tracing::debug!(error = %e, "reply not delivered"),
            }
        };
        trace::handle(call.request_id, op, &peer.identity.name, work).await
    }

    async fn handle(
        &self,
        req: ChunkRequest,
        peer: &Peer,
        recv: &mut quinn::RecvStream,
    ) -> Result<(ChunkResponse, Vec<u8>), RpcError> {
        match req {
            ChunkRequest::Put {
                id,
                len,
                backups,
                async_copies,
            } => {
                check_copy_targets(&backups, &async_copies)?;
                self.store_chunk(id, len, &backups, &async_copies, peer, recv)
                    .await
            }
            ChunkRequest::Replicate { id, len } => {
                self.store_chunk(id, len, &[], &[], peer, recv).await
            }
            ChunkRequest::Gc { dry_run } => {
                let report = self.gc.pass(dry_run).await.map_err(|e| {
                    RpcError::new(ErrorCode::Unavailable, format!("garbage collection: {e}"))
                })?;
                Ok((ChunkResponse::Gc(report), Vec::new()))
            }
            ChunkRequest::Get { id } => {
                let store = self.store.clone();
                let data = tokio::task::spawn_blocking(move || {
                    store.get(&id).inspect_err(|_| {
                        // Unreadable (EIO): out of service, for repair.
                        let _ = store.check(&id);
                    })
                })
                .await
                .map_err(internal)?
                .map_err(internal)?;
                match data {
                    Some(d) => Ok((
                        ChunkResponse::Data {
                            len: d.len() as u32,
                        },
                        d,
                    )),
                    None => Err(RpcError::new(
                        ErrorCode::ChunkMissing,
                        format!("chunk {id} not stored here"),
                    )),
                }
            }
            ChunkRequest::GetRange { id, start, len } => {
                if len > MAX_CHUNK_LEN || start > MAX_CHUNK_LEN {
                    return Err(RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("range {start}+{len} is beyond any chunk ({MAX_CHUNK_LEN} bytes)"),
                    ));
                }
                let store = self.store.clone();
                let outboards = self.outboards.clone();
                let slice = tokio::task::spawn_blocking(move || {
                    let path = store.path_of(&id);
                    let slicing = |e| crate::store::StoreError::new("slicing", &path, e);
                    // With the tree at hand, only the touched leaves are read.
                    if let Some(tree) = outboards.cached(&id) {
                        match crate::store::open_for_random_reads(&path) {
                            Ok(f) => {
                                let slice = cairn_proto::chunk_slice::extract_from(
                                    std::io::BufReader::new(f),
                                    &tree,
                                    u64::from(start),
                                    u64::from(len),
                                )
                                .map_err(slicing)?;
                                return Ok(Ok(slice));
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(slicing(e)),
                        }
                    }
                    let held = store.get(&id).inspect_err(|_| {
                        let _ = store.check(&id);
                    })?;
                    let Some(data) = held else {
                        return Ok(Err(RpcError::new(
                            ErrorCode::ChunkMissing,
                            format!("chunk {id} not stored here"),
                        )));
                    };
                    let Some(tree) = outboards.tree(&id, &data) else {
                        tracing::warn!(chunk = %id, "stored chunk fails its hash; quarantining");
                        let _ = store.check(&id);
                        return Ok(Err(RpcError::new(
                            ErrorCode::HashMismatch,
                            format!("stored copy of chunk {id} is corrupt"),
                        )));
                    };
                    let slice = cairn_proto::chunk_slice::extract(
                        &data,
                        &tree,
                        u64::from(start),
                        u64::from(len),
                    )
                    .map_err(slicing)?;
                    Ok::<_, crate::store::StoreError>(Ok(slice))
                })
                .await
                .map_err(internal)?
                .map_err(internal)??;
                Ok((
                    ChunkResponse::Slice {
                        len: slice.len() as u32,
                    },
                    slice,
                ))
            }
            ChunkRequest::Have { ids } => {
                if ids.len() > MAX_HAVE_QUERY {
                    return Err(RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("{} ids exceed the limit of {MAX_HAVE_QUERY}", ids.len()),
                    ));
                }
                let store = self.store.clone();
                let have = tokio::task::spawn_blocking(move || {
                    ids.iter().map(|id| store.has(id)).collect()
                })
                .await
                .map_err(internal)?;
                Ok((ChunkResponse::Have(have), Vec::new()))
            }
            ChunkRequest::Confirm { ids, ring_epoch } => {
                if ids.len() > MAX_CONFIRM_QUERY {
                    return Err(RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("{} ids exceed the limit of {MAX_CONFIRM_QUERY}", ids.len()),
                    ));
                }
                let known = self.ring_epoch.get();
                if ring_epoch != known {
                    return Err(RpcError::new(
                        ErrorCode::FailedPrecondition,
                        format!("asked under ring epoch {ring_epoch}, this server is on {known}"),
                    ));
                }
                let store = self.store.clone();
                let verified = tokio::task::spawn_blocking(move || {
                    ids.iter()
                        .map(|id| store.verify(id))
                        .collect::<Result<Vec<bool>, _>>()
                })
                .await
                .map_err(internal)?
                .map_err(internal)?;
                Ok((ChunkResponse::Confirmed(verified), Vec::new()))
            }
            ChunkRequest::ReportCorrupt { id } => {
                let store = self.store.clone();
                let corrupt = tokio::task::spawn_blocking(move || store.check(&id))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                Ok((ChunkResponse::Checked { corrupt }, Vec::new()))
            }
            ChunkRequest::Stat => {
                let (chunks, bytes) = self.store.usage();
                Ok((ChunkResponse::Stat { chunks, bytes }, Vec::new()))
            }
        }
    }
}
