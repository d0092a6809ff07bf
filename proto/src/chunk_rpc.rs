//! The chunk service's request and response types.

use serde::{Deserialize, Serialize};

use crate::{ChunkId, RpcError};

/// Largest chunk a server accepts (twice the chunker's 4 MiB maximum).
pub const MAX_CHUNK_LEN: u32 = 8 << 20;
/// Most ids one `Have` query may carry.
pub const MAX_HAVE_QUERY: usize = 4096;
/// Most ids one `Confirm` query may carry (each is re-hashed: up to a
/// chunk's size read per id).
pub const MAX_CONFIRM_QUERY: usize = 256;
/// Most backups plus async copies one put may name.
pub const MAX_COPY_TARGETS: usize = 8;
/// Limit on a chunk-service frame (everything but chunk data is small).
pub const MAX_CHUNK_FRAME: usize = 1 << 20;

/// A request to a chunkserver.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChunkRequest {
    /// Store a chunk; `len` raw bytes follow the frame. The server verifies
    /// the hash and makes the chunk durable before answering. As the
    /// primary it also forwards the bytes, as they arrive, to `backups`
    /// (answering only once they too hold the chunk durably), and queues
    /// durable background copies to `async_copies`. Addresses are
    /// `host:port` of other chunkservers.
    Put {
        id: ChunkId,
        len: u32,
        backups: Vec<String>,
        async_copies: Vec<String>,
    },
    /// Read a chunk; the answer [`ChunkResponse::Data`] is followed by the bytes.
    Get { id: ChunkId },
    /// Which of these chunks this server stores.
    Have { ids: Vec<ChunkId> },
    /// How much this server stores.
    Stat,
    /// A reader got bytes from this server that do not hash to `id`. The
    /// server re-checks its copy and quarantines it if it is corrupt, so
    /// that repair restores a good copy.
    ReportCorrupt { id: ChunkId },
    /// Read bytes `start..start + len` of a chunk as a verifiable slice
    /// (see [`crate::chunk_slice`]); answered with [`ChunkResponse::Slice`].
    GetRange { id: ChunkId, start: u32, len: u32 },
    /// Store a copy of a chunk for another chunkserver (a synchronous
    /// backup, an async copy, repair or rebalance); `len` raw bytes follow.
    /// Only chunkservers may send it (see [`crate::access`]).
    Replicate { id: ChunkId, len: u32 },
    /// Run a garbage-collection pass now (`dry_run`: only say what it
    /// would delete); answered with [`ChunkResponse::Gc`].
    Gc { dry_run: bool },
    // New variants go last: postcard sends the variant index.
    /// Which of these chunks this server holds a copy of that it has just
    /// re-hashed against the id (a corrupt or unreadable copy is
    /// quarantined and answered `false`), provided the server is on ring
    /// epoch `ring_epoch` too (else refused with
    /// [`crate::ErrorCode::FailedPrecondition`]). Repair drops a copy only
    /// on this answer from every owner; answered with
    /// [`ChunkResponse::Confirmed`]. Only chunkservers may send it.
    Confirm { ids: Vec<ChunkId>, ring_epoch: u64 },
}

impl ChunkRequest {
    /// The request's name, for logs and refusals.
    pub fn op_name(&self) -> &'static str {
        match self {
            ChunkRequest::Put { .. } => "Put",
            ChunkRequest::Get { .. } => "Get",
            ChunkRequest::Have { .. } => "Have",
            ChunkRequest::Stat => "Stat",
            ChunkRequest::ReportCorrupt { .. } => "ReportCorrupt",
            ChunkRequest::GetRange { .. } => "GetRange",
            ChunkRequest::Replicate { .. } => "Replicate",
            ChunkRequest::Gc { .. } => "Gc",
            ChunkRequest::Confirm { .. } => "Confirm",
        }
    }
}

/// A successful answer from a chunkserver.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChunkResponse {
    Stored,
    /// `len` raw bytes follow.
    Data {
        len: u32,
    },
    Have(Vec<bool>),
    Stat {
        chunks: u64,
        bytes: u64,
    },
    /// Whether the reported copy was corrupt (and is now quarantined).
    Checked {
        corrupt: bool,
    },
    /// `len` bytes of a verifiable slice follow.
    Slice {
        len: u32,
    },
    Gc(GcReport),
    /// Per id of a [`ChunkRequest::Confirm`]: a verified copy is held.
    Confirmed(Vec<bool>),
}

/// Most deleted (or deletable) chunks one [`GcReport`] names.
pub const MAX_GC_REPORT_ITEMS: usize = 1000;

/// What one garbage-collection pass on a chunkserver did (or, dry, would
/// do).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct GcReport {
    /// Chunks old enough to be looked at (stored longer than the grace
    /// period).
    pub examined: u64,
    /// Chunks deleted (or, dry, deletable) and their bytes.
    pub chunks: u64,
    pub bytes: u64,
    /// The first [`MAX_GC_REPORT_ITEMS`] of them.
    pub items: Vec<GcItem>,
    /// Whether the pass deleted nothing on purpose.
    pub dry_run: bool,
}

/// One chunk a GC pass deleted (or would delete).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GcItem {
    pub id: ChunkId,
    pub len: u64,
    /// Why: no file ever referenced it, or for how long none has.
    pub reason: String,
}

/// Every chunkserver answer frame: the ring epoch the server knows (a
/// caller holding an older ring refreshes its copy), then the result.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChunkReply {
    pub ring_epoch: u64,
    pub result: Result<ChunkResponse, RpcError>,
}

/// What travels to a chunkserver: the request, and the operation it
/// belongs to (see [`crate::trace`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChunkCall {
    pub request_id: u64,
    pub req: ChunkRequest,
}

/// [`ChunkCall`] as sent, borrowing the request (the same bytes).
#[derive(Serialize)]
pub struct ChunkCallRef<'a> {
    pub request_id: u64,
    pub req: &'a ChunkRequest,
}

impl<'a> ChunkCallRef<'a> {
    /// `req` under the current request id (see [`crate::trace`]).
    pub fn current(req: &'a ChunkRequest) -> Self {
        ChunkCallRef {
            request_id: crate::trace::current(),
            req,
        }
    }
}

/// Writes `req` as a [`ChunkCall`] frame under the current request id.
pub async fn write_chunk_call<W>(
    send: &mut W,
    req: &ChunkRequest,
) -> Result<(), crate::frame::FrameError>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    crate::frame::write_frame(send, &ChunkCallRef::current(req)).await
}
