//! Errors that cross the wire, with stable numeric codes.
//!
//! Codes never change meaning once released; new ones are appended. The
//! caller decides what to do from [`ErrorCode::retry`]: retry now, go to the
//! leader, or give up.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A stable error code. The numeric value is what goes on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[repr(u16)]
pub enum ErrorCode {
    /// A path or inode does not exist.
    NotFound = 1,
    /// The name is already taken.
    AlreadyExists = 2,
    /// A path component that must be a directory is not one.
    NotADirectory = 3,
    /// A directory was given where a file is needed.
    IsADirectory = 4,
    /// rmdir of a directory that still has entries.
    NotEmpty = 5,
    /// A path component is empty, too long, or holds `/` or NUL.
    InvalidName = 6,
    /// The request is malformed or out of bounds.
    InvalidRequest = 7,
    /// This metadata node is not the leader; see [`RpcError::leader`].
    NotLeader = 8,
    /// The chunk is not stored on this server.
    ChunkMissing = 9,
    /// Uploaded bytes do not hash to the chunk id.
    HashMismatch = 10,
    /// The server cannot serve now (starting, shutting down, no quorum).
    Unavailable = 11,
    /// An error inside the server (disk, storage engine).
    Internal = 12,
    /// A rename would move a directory into itself.
    InvalidMove = 13,
    /// The request does not fit the cluster's current state (for example,
    /// removing a chunkserver that is still up).
    FailedPrecondition = 14,
    /// The operation is not allowed on this kind of inode (a hard link to
    /// a directory).
    NotPermitted = 15,
    /// No such extended attribute.
    NoData = 16,
    /// A file would grow past the largest size the cluster keeps.
    FileTooLarge = 17,
    /// The caller's certificate role may not make this request (a client
    /// sending Raft RPCs, a chunkserver changing the namespace).
    PermissionDenied = 18,
    /// A write of bytes inline in metadata does not fit: the file has
    /// chunks, or would grow past [`crate::meta_rpc::MAX_INLINE`]. The
    /// caller stores chunks instead.
    NotInline = 19,
    /// The file's bytes are kept inline in metadata: reading them needs
    /// `GetContent`, and a chunk write must cover them.
    InlineData = 20,
    /// The server's disk is full: nothing was stored (a writer tries other
    /// servers; the mount answers `ENOSPC`).
    NoSpace = 21,
}

impl ErrorCode {
    /// Whether a caller may usefully retry the same request (after finding
    /// the leader or backing off).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::NotLeader | ErrorCode::Unavailable)
    }
}

/// An error returned by a server in place of a response.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    /// With [`ErrorCode::NotLeader`]: the leader's id and address, if known.
    pub leader: Option<(NodeId, String)>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            leader: None,
        }
    }

    pub fn not_leader(leader: Option<(NodeId, String)>) -> Self {
        RpcError {
            code: ErrorCode::NotLeader,
            message: "not the metadata leader".into(),
            leader,
        }
    }
}
