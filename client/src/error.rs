//! What can go wrong for a client, classified so callers can act on it.

use cairn_net::meta_caller::MetaCallError;
use cairn_net::NetError;
use cairn_proto::{ChunkId, ErrorCode, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster refused the request (no such path, not empty, ...).
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// No metadata node could be reached.
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// No owner of a chunk returned bytes matching its hash.
    #[error("chunk {chunk} unavailable: {detail}")]
    ChunkUnavailable { chunk: ChunkId, detail: String },
    /// Storing a chunk failed on its primary.
    #[error("storing chunk {chunk} on {server}: {detail}")]
    Upload {
        chunk: ChunkId,
        server: String,
        detail: String,
    },
    /// The file was replaced while it was being read; what was written so
    /// far mixes nothing, but is incomplete. Read it again.
    #[error("file {ino} changed while it was being read; read it again")]
    Changed { ino: u64 },
    /// Too few chunkservers are up to write the synchronous copies the
    /// replication policy asks for; nothing was acknowledged.
    #[error("only {up} chunkservers are up; a write needs {needed} synchronous copies")]
    TooFewServers { up: usize, needed: usize },
    /// Too few chunkservers have room: `full` of them are below their
    /// free-space reserve, or a server refused for want of space. Nothing
    /// was acknowledged; free space (remove files, add servers) and retry.
    #[error("no space: {detail}")]
    NoSpace { detail: String },
    /// The cluster has no chunkserver registered yet.
    #[error("no chunkservers are registered with the cluster")]
    NoChunkservers,
    #[error("configuration: {0}")]
    Config(String),
    /// Reading the input or writing the output failed.
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("connecting: {0}")]
    Net(#[from] NetError),
    /// The write stored its chunks too long before it could commit them:
    /// the garbage collector may take chunks that long unreferenced, so it
    /// was not committed. Write it again (faster, or in smaller pieces).
    #[error(
        "the write took {elapsed:?} from its first chunk to its commit, more than half the \
         cluster's garbage-collection grace period ({grace:?}); nothing was committed: write it again"
    )]
    CommitTooLate {
        elapsed: std::time::Duration,
        grace: std::time::Duration,
    },
    /// A task of this client's own (hashing a chunk on the blocking pool)
    /// panicked or was cancelled as the runtime shut down: nothing of it
    /// was committed.
    #[error("an internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A reply of the wrong kind: a bug or a version mismatch.
    #[error("unexpected reply from the cluster: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The cluster's error code, when the cluster refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            ClientError::NoSpace { .. } => Some(ErrorCode::NoSpace),
            _ => None,
        }
    }
}

impl From<MetaCallError> for ClientError {
    fn from(e: MetaCallError) -> Self {
        match e {
            MetaCallError::Rpc(r) => ClientError::Rpc(r),
            u @ MetaCallError::Unreachable { .. } => ClientError::Unreachable(u.to_string()),
        }
    }
}
