//! Moving one chunk between the client and chunkservers.
//!
//! Downloads verify BLAKE3 before returning a byte: a replica whose bytes do
//! not match is skipped (and logged) and the next owner is tried. Every
//! chunkserver reply carries the ring epoch it knows; it is passed to the
//! [`RingCache`] so a stale ring is noticed.

use cairn_net::avoid::AvoidList;
use cairn_net::call_chunk;
use cairn_net::ConnPool;
use cairn_proto::chunk_rpc::{ChunkRequest, ChunkResponse, MAX_CHUNK_LEN};
use cairn_proto::chunk_slice;
use cairn_proto::meta_rpc::RingMember;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::ChunkId;
use cairn_proto::ErrorCode;

use crate::error::ClientError;
use crate::placement::RingCache;

/// How long one chunk transfer to or from one server may take (up to 8 MiB;
/// a dead server that has not yet timed out at the QUIC level is skipped).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an upload failed, and whose fault it likely was.
pub struct UploadFailure {
    pub error: ClientError,
    /// The primary answered with a refusal: the fault is more likely a
    /// backup's (or the data's) than the primary's.
    pub primary_answered: bool,
}

/// Stores `data` (whose id is `id`) on `targets`: streams it to `targets[0]`
/// (the primary), which forwards it to the next `sync_copies - 1` targets
/// and queues durable background copies to the rest. Returns once
/// `sync_copies` copies are durable.
pub async fn upload(
    pool: &ConnPool,
    ring: &RingCache,
    targets: &[RingMember],
    sync_copies: usize,
    id: ChunkId,
    data: &[u8],
) -> Result<(), UploadFailure> {
    let Some(server) = targets.first() else {
        return Err(UploadFailure {
            error: ClientError::NoChunkservers,
            primary_answered: false,
        });
    };
    let fail = |detail: String| UploadFailure {
        error: ClientError::Upload {
            chunk: id,
            server: server.addr.clone(),
            detail,
        },
        primary_answered: false,
    };
    let len = u32::try_from(data.len()).map_err(|_| fail("chunk larger than 4 GiB".into()))?;
    let sync = sync_copies.clamp(1, targets.len());
    let addrs = |ms: &[RingMember]| ms.iter().map(|m| m.addr.clone()).collect::<Vec<_>>();
    let req = ChunkRequest::Put {
        id,
        len,
        backups: addrs(&targets[1..sync]),
        async_copies: addrs(&targets[sync..]),
    };
    let conn = pool.get(&server.addr).await.map_err(|e| {
        pool.forget(&server.addr);
        fail(e.to_string())
    })?;
    let put = call_chunk(&conn, &req, data);
    let (reply, _) = match tokio::time::timeout(TRANSFER_TIMEOUT, put).await {
        Ok(r) => r.map_err(|e| {
            pool.forget(&server.addr);
            fail(e.to_string())
        })?,
        Err(_) => {
            pool.forget(&server.addr);
            return Err(fail(format!("no answer within {TRANSFER_TIMEOUT:?}")));
        }
    };
    ring.observe(reply.ring_epoch);
    let refused = |detail: String| UploadFailure {
        primary_answered: true,
        ..fail(detail)
    };
    match reply.result {
        Ok(ChunkResponse::Stored) => Ok(()),
        Ok(other) => Err(refused(format!("unexpected reply {other:?}"))),
        Err(e) if e.code == ErrorCode::NoSpace => Err(UploadFailure {
            error: ClientError::NoSpace {
                detail: format!("storing chunk {id} on {}: {e}", server.addr),
            },
            primary_answered: true,
        }),
        Err(e) => Err(refused(e.to_string())),
    }
}

/// Servers that failed recently: tried last, so one dead server does not
/// cost every read a connect timeout.
#[derive(Default)]
pub struct Suspects {
    list: Mutex<AvoidList>,
}

/// How long a server that failed stays at the back of the line.
const SUSPECT_FOR: Duration = Duration::from_secs(10);

impl Suspects {
    pub fn mark(&self, addr: &str) {
        self.lock().mark(addr, Instant::now(), SUSPECT_FOR);
    }

    pub fn clear(&self, addr: &str) {
        self.lock().clear(addr);
    }

    /// `servers` with the suspects moved to the end (order otherwise kept).
    pub fn order(&self, servers: Vec<RingMember>) -> Vec<RingMember> {
        self.lock()
            .order(servers, |m| m.addr.as_str(), Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AvoidList> {
        // Plain values replaced whole; a poisoned list is still valid.
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads chunk `id` from the first of `servers` that returns bytes hashing
/// to `id`, trying recent failures last.
pub async fn download(
    pool: &ConnPool,
    ring: &RingCache,
    suspects: &Suspects,
    servers: Vec<RingMember>,
    id: ChunkId,
) -> Result<Vec<u8>, ClientError> {
    first_verified(pool, suspects, servers, id, |server| async move {
        let req = ChunkRequest::Get { id };
        let data = fetch_bytes(pool, ring, &server, &req, u64::from(MAX_CHUNK_LEN)).await?;
        if id.matches(&data) {
            Ok(data)
        } else {
            Err(Fetch::Corrupt("hash mismatch".into()))
        }
    })
    .await
}

/// Reads bytes `start..start + len` of chunk `id` from the first of
/// `servers` whose answer verifies against `id` (a BLAKE3 slice: the bytes
/// plus the tree nodes linking them to the id), trying recent failures
/// last. Fails unless exactly `len` verified bytes come back.
pub async fn download_range(
    pool: &ConnPool,
    ring: &RingCache,
    suspects: &Suspects,
    servers: Vec<RingMember>,
    id: ChunkId,
    start: u32,
    len: u32,
) -> Result<Vec<u8>, ClientError> {
    first_verified(pool, suspects, servers, id, |server| async move {
        let req = ChunkRequest::GetRange { id, start, len };
        let max = chunk_slice::max_slice_len(u64::from(len));
        let slice = fetch_bytes(pool, ring, &server, &req, max).await?;
        match chunk_slice::verify(&slice, &id, u64::from(start), u64::from(len)) {
            Ok(data) if data.len() == len as usize => Ok(data),
            Ok(_) => Err(Fetch::Corrupt("short slice".into())),
            Err(e) => Err(Fetch::Corrupt(format!("slice fails verification: {e}"))),
        }
    })
    .await
}

/// Asks each of `servers` in turn (recent failures last, each within the
/// transfer timeout) until `fetch` returns verified bytes. A server whose
/// bytes fail verification is told so, so that it quarantines its copy.
async fn first_verified<F, Fut>(
    pool: &ConnPool,
    suspects: &Suspects,
    servers: Vec<RingMember>,
    id: ChunkId,
    fetch: F,
) -> Result<Vec<u8>, ClientError>
where
    F: Fn(RingMember) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, Fetch>>,
{
    let mut errors = Vec::new();
    for server in suspects.order(servers) {
        let addr = server.addr.clone();
        let fetched = match tokio::time::timeout(TRANSFER_TIMEOUT, fetch(server)).await {
            Ok(r) => r,
            Err(_) => {
                pool.forget(&addr);
                Err(Fetch::Failed(format!(
                    "no answer within {TRANSFER_TIMEOUT:?}"
                )))
            }
        };
        match fetched {
            Ok(data) => {
                suspects.clear(&addr);
                return Ok(data);
            }
            Err(Fetch::Corrupt(e)) => {
                tracing::warn!(chunk = %id, server = %addr, error = %e, "replica failed verification");
                report_corrupt(pool, &addr, id);
                errors.push(format!("{addr}: corrupt replica ({e})"));
            }
            Err(Fetch::Missing(e)) => errors.push(format!("{addr}: {e}")),
            Err(Fetch::Failed(e)) => {
                suspects.mark(&addr);
                errors.push(format!("{addr}: {e}"));
            }
        }
    }
    if errors.is_empty() {
        errors.push("no chunkserver to ask".into());
    }
    Err(ClientError::ChunkUnavailable {
        chunk: id,
        detail: errors.join("; "),
    })
}

/// Why one server did not return a chunk.
enum Fetch {
    /// It answered: it does not have it.
    Missing(String),
    /// It could not be reached or failed mid-way.
    Failed(String),
    /// Its bytes did not verify against the chunk id.
    Corrupt(String),
}

/// Sends `req` (a `Get` or `GetRange`) to `server` and reads the bytes
/// its answer announces, at most `max`. Unverified: the caller checks them.
async fn fetch_bytes(
    pool: &ConnPool,
    ring: &RingCache,
    server: &RingMember,
    req: &ChunkRequest,
    max: u64,
) -> Result<Vec<u8>, Fetch> {
    let failed = |e: String| {
        pool.forget(&server.addr);
        Fetch::Failed(e)
    };
    let conn = pool
        .get(&server.addr)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (reply, mut recv) = call_chunk(&conn, req, &[])
        .await
        .map_err(|e| failed(e.to_string()))?;
    ring.observe(reply.ring_epoch);
    match reply.result {
        Ok(ChunkResponse::Data { len } | ChunkResponse::Slice { len }) if u64::from(len) <= max => {
            // Appended as the stream delivers it: one copy, no zeroing.
            let len = len as usize;
            let mut data = Vec::with_capacity(len);
            while data.len() < len {
                match recv.read_chunk(len - data.len(), true).await {
                    Ok(Some(c)) => data.extend_from_slice(&c.bytes),
                    Ok(None) => {
                        return Err(failed(format!(
                            "the answer ended after {} of {len} bytes",
                            data.len()
                        )))
                    }
                    Err(e) => return Err(failed(e.to_string())),
                }
            }
            Ok(data)
        }
        Ok(other) => Err(Fetch::Failed(format!("unexpected reply {other:?}"))),
        // A copy the server found corrupt is as good as missing here.
        Err(e) if matches!(e.code, ErrorCode::ChunkMissing | ErrorCode::HashMismatch) => {
            Err(Fetch::Missing(e.to_string()))
        }
        Err(e) => Err(Fetch::Failed(e.to_string())),
    }
}

/// Tells `addr` its copy of `id` failed verification, in the background, so
/// it quarantines the copy and repair replaces it. Best effort.
fn report_corrupt(pool: &ConnPool, addr: &str, id: ChunkId) {
    let pool = pool.clone();
    let addr = addr.to_string();
    tokio::spawn(async move {
        let Ok(conn) = pool.get(&addr).await else {
            return;
        };
        let req = ChunkRequest::ReportCorrupt { id };
        let r = tokio::time::timeout(TRANSFER_TIMEOUT, call_chunk(&conn, &req, &[])).await;
        if let Ok(Ok((reply, _))) = r {
            if let Ok(ChunkResponse::Checked { corrupt }) = reply.result {
                tracing::info!(chunk = %id, server = %addr, corrupt, "reported a bad replica");
            }
        }
    });
}
