//! Errors that cross the wire, with stable numeric codes.
//!
//! Codes never change meaning once released; new ones get the next
//! number. The caller decides what to do from [`ErrorCode::is_retryable`]:
//! retry now, go to the leader, or give up.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NodeId;

/// A stable error code. Its numeric value ([`ErrorCode::wire`]) is what
/// goes on the wire and into stored session results — not its place in
/// this list — and `wire_values_are_pinned` holds every value fixed. (The
/// values are the variant indexes serde sent before they were explicit,
/// so bytes written then decode the same.) Text formats (JSON) carry the
/// name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u16)]
pub enum ErrorCode {
    /// A path or inode does not exist.
    NotFound = 0,
    /// The name is already taken.
    AlreadyExists = 1,
    /// A path component that must be a directory is not one.
    NotADirectory = 2,
    /// A directory was given where a file is needed.
    IsADirectory = 3,
    /// rmdir of a directory that still has entries.
    NotEmpty = 4,
    /// A path component is empty, too long, or holds `/` or NUL.
    InvalidName = 5,
    /// The request is malformed or out of bounds.
    InvalidRequest = 6,
    /// This metadata node is not the leader; see [`RpcError::leader`].
    NotLeader = 7,
    /// The chunk is not stored on this server.
    ChunkMissing = 8,
    /// Uploaded bytes do not hash to the chunk id.
    HashMismatch = 9,
    /// The server cannot serve now (starting, shutting down, no quorum).
    Unavailable = 10,
    /// An error inside the server (disk, storage engine).
    Internal = 11,
    /// A rename would move a directory into itself.
    InvalidMove = 12,
    /// The request does not fit the cluster's current state (for example,
    /// removing a chunkserver that is still up).
    FailedPrecondition = 13,
    /// The operation is not allowed on this kind of inode (a hard link to
    /// a directory).
    NotPermitted = 14,
    /// No such extended attribute.
    NoData = 15,
    /// A file would grow past the largest size the cluster keeps.
    FileTooLarge = 16,
    /// The caller's certificate role may not make this request (a client
    /// sending Raft RPCs, a chunkserver changing the namespace).
    PermissionDenied = 17,
    /// A write of bytes inline in metadata does not fit: the file has
    /// chunks, or would grow past [`crate::meta_rpc::MAX_INLINE`]. The
    /// caller stores chunks instead.
    NotInline = 18,
    /// The file's bytes are kept inline in metadata: reading them needs
    /// `GetContent`, and a chunk write must cover them.
    InlineData = 19,
    /// The server's disk is full: nothing was stored (a writer tries other
    /// servers; the mount answers `ENOSPC`).
    NoSpace = 20,
}

impl ErrorCode {
    /// Every code, in wire-value order.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::NotADirectory,
        ErrorCode::IsADirectory,
        ErrorCode::NotEmpty,
        ErrorCode::InvalidName,
        ErrorCode::InvalidRequest,
        ErrorCode::NotLeader,
        ErrorCode::ChunkMissing,
        ErrorCode::HashMismatch,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::InvalidMove,
        ErrorCode::FailedPrecondition,
        ErrorCode::NotPermitted,
        ErrorCode::NoData,
        ErrorCode::FileTooLarge,
        ErrorCode::PermissionDenied,
        ErrorCode::NotInline,
        ErrorCode::InlineData,
        ErrorCode::NoSpace,
    ];

    /// The code's number on the wire.
    pub fn wire(self) -> u16 {
        self as u16
    }

    /// The code numbered `v`, if this build knows it.
    pub fn from_wire(v: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.wire() == v)
    }

    /// The code's name, as text formats carry it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NotFound",
            ErrorCode::AlreadyExists => "AlreadyExists",
            ErrorCode::NotADirectory => "NotADirectory",
            ErrorCode::IsADirectory => "IsADirectory",
            ErrorCode::NotEmpty => "NotEmpty",
            ErrorCode::InvalidName => "InvalidName",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::NotLeader => "NotLeader",
            ErrorCode::ChunkMissing => "ChunkMissing",
            ErrorCode::HashMismatch => "HashMismatch",
            ErrorCode::Unavailable => "Unavailable",
            ErrorCode::Internal => "Internal",
            ErrorCode::InvalidMove => "InvalidMove",
            ErrorCode::FailedPrecondition => "FailedPrecondition",
            ErrorCode::NotPermitted => "NotPermitted",
            ErrorCode::NoData => "NoData",
            ErrorCode::FileTooLarge => "FileTooLarge",
            ErrorCode::PermissionDenied => "PermissionDenied",
            ErrorCode::NotInline => "NotInline",
            ErrorCode::InlineData => "InlineData",
            ErrorCode::NoSpace => "NoSpace",
        }
    }

    /// Whether a caller may usefully retry the same request (after finding
    /// the leader or backing off).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::NotLeader | ErrorCode::Unavailable)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.name())
        } else {
            s.serialize_u16(self.wire())
        }
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let name = String::deserialize(d)?;
            Self::ALL
                .iter()
                .copied()
                .find(|c| c.name() == name)
                .ok_or_else(|| D::Error::custom(format!("unknown error code {name:?}")))
        } else {
            let v = u16::deserialize(d)?;
            Self::from_wire(v).ok_or_else(|| D::Error::custom(format!("unknown error code {v}")))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_are_pinned() {
        // Released values never change: bytes kept in session results and
        // sent by other builds mean the same code. Append new codes here.
        let pinned: [(ErrorCode, u16); 21] = [
            (ErrorCode::NotFound, 0),
            (ErrorCode::AlreadyExists, 1),
            (ErrorCode::NotADirectory, 2),
            (ErrorCode::IsADirectory, 3),
            (ErrorCode::NotEmpty, 4),
            (ErrorCode::InvalidName, 5),
            (ErrorCode::InvalidRequest, 6),
            (ErrorCode::NotLeader, 7),
            (ErrorCode::ChunkMissing, 8),
            (ErrorCode::HashMismatch, 9),
            (ErrorCode::Unavailable, 10),
            (ErrorCode::Internal, 11),
            (ErrorCode::InvalidMove, 12),
            (ErrorCode::FailedPrecondition, 13),
            (ErrorCode::NotPermitted, 14),
            (ErrorCode::NoData, 15),
            (ErrorCode::FileTooLarge, 16),
            (ErrorCode::PermissionDenied, 17),
            (ErrorCode::NotInline, 18),
            (ErrorCode::InlineData, 19),
            (ErrorCode::NoSpace, 20),
        ];
        assert_eq!(pinned.len(), ErrorCode::ALL.len(), "a code is not pinned");
        for (code, v) in pinned {
            assert_eq!(code.wire(), v, "{code:?}");
            assert_eq!(ErrorCode::from_wire(v), Some(code));
            assert_eq!(postcard::to_allocvec(&code).unwrap(), vec![v as u8]);
            assert_eq!(postcard::from_bytes::<ErrorCode>(&[v as u8]).unwrap(), code);
        }
        assert!(postcard::from_bytes::<ErrorCode>(&[200, 1]).is_err());
    }

    #[test]
    fn an_rpc_error_decodes_from_bytes_of_the_first_release() {
        // RpcError { NoSpace, "full", leader: Some((3, "a")) } as the first
        // release wrote it (serde's variant index for the code).
        let old = [20u8, 4, b'f', b'u', b'l', b'l', 1, 3, 1, b'a'];
        let e: RpcError = postcard::from_bytes(&old).unwrap();
        assert_eq!(e.code, ErrorCode::NoSpace);
        assert_eq!(e.message, "full");
        assert_eq!(e.leader, Some((3, "a".to_string())));
        assert_eq!(postcard::to_allocvec(&e).unwrap(), old);
    }

    #[test]
    fn text_formats_carry_the_name() {
        let json = serde_json::to_string(&ErrorCode::NotLeader).unwrap();
        assert_eq!(json, "\"NotLeader\"");
        assert_eq!(
            serde_json::from_str::<ErrorCode>(&json).unwrap(),
            ErrorCode::NotLeader
        );
        assert!(serde_json::from_str::<ErrorCode>("\"Nope\"").is_err());
    }
}
