//! The metadata service's requests and replies, grouped by service:
//!
//! | group | requests | who may send | answered |
//! |---|---|---|---|
//! | [`NsRead`] | lookups, attributes, listings, content, links, xattrs | every role | after a read barrier, or by any node for a follower read |
//! | [`NsWrite`] | every change to the namespace | clients, admins | one Raft command each, at most once per session |
//! | [`ClusterQuery`] | the ring, the status, chunk states | every role | by the leader (the ring by any node for a follower read) |
//! | [`ChunkServerReport`] | registration, heartbeats | that chunkserver | by the leader |
//! | [`AdminRequest`] | policy, draining, membership | admins | by the leader |
//! | `Raft` | Raft RPCs between metadata nodes | metadata nodes | by the addressed node |
//!
//! Each group has its own reply type ([`NsReadReply`], [`NsWriteReply`],
//! ...), and [`MetaGroup`] ties a group to its reply, so a caller gets the
//! reply its request asked for or an error, never a catch-all.

use serde::{Deserialize, Serialize};

mod admin;
mod cluster;
mod ns_read;
mod ns_write;

pub use admin::AdminRequest;
pub use cluster::{ChunkServerReply, ChunkServerReport, ClusterQuery, ClusterReply};
pub use ns_read::{NsRead, NsReadReply};
pub use ns_write::{NsWrite, NsWriteReply, RenameMode, XattrMode};

// What the messages carry, re-exported so that one import names them:
// inodes, extents and directory entries; the placement state; status and
// heartbeat reports; what metadata knows of a chunk.
pub use crate::cluster_map::*;
pub use crate::gc_rule::ChunkState;
pub use crate::inode::*;
pub use crate::status::*;

/// Most entries one `ReadDir` page returns.
pub const MAX_DIR_PAGE: u32 = 4096;
/// Most entries one `ReadDirPlus` page returns (each carries its
/// attributes, so pages are smaller than [`MAX_DIR_PAGE`]).
pub const MAX_DIR_PLUS_PAGE: u32 = 1024;
/// Largest file whose bytes metadata keeps inline (in the namespace, Raft
/// replicated), instead of in chunks: a tiny file then costs no chunk
/// upload to write and no chunkserver round trip to read.
pub const MAX_INLINE: u64 = 8 << 10;
/// Farthest a `CreateWith`'s creation time may be from metadata's clock
/// and still be recorded (else metadata's own time is).
pub const MAX_CREATE_SKEW_NS: i64 = 60_000_000_000;
/// Most inode numbers one `ReserveInodes` sets aside.
pub const MAX_INODE_RESERVATION: u32 = 4096;
/// Most extents one `GetExtents` page returns.
pub const MAX_EXTENT_PAGE: u32 = 8192;
/// Most ids one `ChunksExist` query may carry.
pub const MAX_EXIST_QUERY: usize = 4096;
/// Longest symbolic link target, in bytes (Linux `PATH_MAX` less the NUL).
pub const MAX_SYMLINK_TARGET: usize = 4095;
/// Extended attributes whose names begin so describe a file's bytes (the
/// S3 gateway's ETag and checksums): metadata drops them whenever the
/// bytes change other than by the `CommitObject` that sets them, as Linux
/// drops `security.capability` on a write, so they are never stale.
pub const CONTENT_BOUND_XATTR_PREFIX: &str = "user.cairn.content.";
/// Longest extended attribute name, in bytes (Linux `XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest extended attribute value, in bytes (Linux `XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 << 10;
/// Most extended attributes one inode may carry.
pub const MAX_XATTRS_PER_INODE: usize = 1024;

/// Which Raft RPC a [`MetaRequest::Raft`] carries (payload: postcard of
/// openraft's own request type).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RaftRpcKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
    /// Not openraft's: the leader asks a member whether its disk is below
    /// its free-space reserve (an empty payload; the answer is postcard of
    /// `Option<u64>`, the free bytes when low).
    DiskSpace,
}

/// Names one write so that sending it again changes nothing: the metadata
/// group remembers each (client, seq) it applied, with its result, for
/// [`SESSION_RETENTION_SECS`], and answers a repeat with that result.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Random per client process.
    pub client: u64,
    /// Unique per write of that client.
    pub seq: u64,
}

/// How long the metadata group remembers a session's result; a client
/// must stop resending a write well before this.
pub const SESSION_RETENTION_SECS: u64 = 600;

/// What travels to a metadata node: a request, and for writes that may be
/// resent, the session naming it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MetaCall {
    pub session: Option<Session>,
    pub req: MetaRequest,
    /// For a read ([`MetaRequest::serves_follower_reads`]): any node may
    /// answer from what it has applied, without confirming leadership. The
    /// answer may miss the latest writes (by the node's replication lag) but
    /// never shows an uncommitted one.
    pub follower_read: bool,
    /// The operation this call belongs to (see [`crate::trace`]).
    pub request_id: u64,
}

/// A request to a metadata node: one of the service groups (see the
/// module's table).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MetaRequest {
    NsRead(NsRead),
    NsWrite(NsWrite),
    Cluster(ClusterQuery),
    ChunkServer(ChunkServerReport),
    Admin(AdminRequest),
    /// A Raft RPC between metadata nodes.
    Raft {
        kind: RaftRpcKind,
        payload: Vec<u8>,
    },
}

impl MetaRequest {
    /// The request's name, for logs and refusals (never its payload).
    pub fn op_name(&self) -> &'static str {
        match self {
            MetaRequest::NsRead(r) => r.op_name(),
            MetaRequest::NsWrite(w) => w.op_name(),
            MetaRequest::Cluster(q) => q.op_name(),
            MetaRequest::ChunkServer(r) => r.op_name(),
            MetaRequest::Admin(a) => a.op_name(),
            MetaRequest::Raft { .. } => "Raft",
        }
    }

    /// True for requests that change nothing, which are safe to send again
    /// when an answer was lost (and so carry no session).
    pub fn is_read_only(&self) -> bool {
        match self {
            MetaRequest::NsRead(_) | MetaRequest::Cluster(_) => true,
            // A heartbeat changes only the leader's memory of the sender.
            MetaRequest::ChunkServer(r) => matches!(r, ChunkServerReport::Heartbeat { .. }),
            MetaRequest::NsWrite(_) | MetaRequest::Admin(_) | MetaRequest::Raft { .. } => false,
        }
    }

    /// True for reads a follower may answer from its own state when the
    /// caller opted into follower reads.
    pub fn serves_follower_reads(&self) -> bool {
        match self {
            MetaRequest::NsRead(_) => true,
            MetaRequest::Cluster(q) => matches!(q, ClusterQuery::GetRing),
            _ => false,
        }
    }
}

/// A learner at most this many entries behind the leader may become a
/// voter (it then catches up within a heartbeat or two, so the group's
/// commits do not stall on it).
pub const MAX_PROMOTE_LAG: u64 = 100;

/// A successful answer from a metadata node, of the request's group
/// (errors travel as [`crate::RpcError`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MetaResponse {
    NsRead(NsReadReply),
    NsWrite(NsWriteReply),
    Cluster(ClusterReply),
    ChunkServer(ChunkServerReply),
    /// An [`AdminRequest`] was carried out.
    Admin,
    Raft(Vec<u8>),
}

impl MetaResponse {
    /// The reply's group, for errors about a reply of the wrong one.
    pub fn group_name(&self) -> &'static str {
        match self {
            MetaResponse::NsRead(_) => "NsRead",
            MetaResponse::NsWrite(_) => "NsWrite",
            MetaResponse::Cluster(_) => "Cluster",
            MetaResponse::ChunkServer(_) => "ChunkServer",
            MetaResponse::Admin => "Admin",
            MetaResponse::Raft(_) => "Raft",
        }
    }
}

/// A request group and the reply it is answered with: callers send a
/// group's request and get its reply (see `MetaCaller::ask`).
pub trait MetaGroup: Into<MetaRequest> {
    type Reply;
    /// The group's reply out of `r`; `None` if it is another group's.
    fn reply(r: MetaResponse) -> Option<Self::Reply>;
}

macro_rules! group {
    ($req:ident, $variant:ident, $reply:ty, |$r:ident| $unwrap:expr) => {
        impl From<$req> for MetaRequest {
            fn from(r: $req) -> MetaRequest {
                MetaRequest::$variant(r)
            }
        }
        impl MetaGroup for $req {
            type Reply = $reply;
            fn reply($r: MetaResponse) -> Option<$reply> {
                $unwrap
            }
        }
    };
}

group!(NsRead, NsRead, NsReadReply, |r| match r {
    MetaResponse::NsRead(x) => Some(x),
    _ => None,
});
group!(NsWrite, NsWrite, NsWriteReply, |r| match r {
    MetaResponse::NsWrite(x) => Some(x),
    _ => None,
});
group!(ClusterQuery, Cluster, ClusterReply, |r| match r {
    MetaResponse::Cluster(x) => Some(x),
    _ => None,
});
group!(
    ChunkServerReport,
    ChunkServer,
    ChunkServerReply,
    |r| match r {
        MetaResponse::ChunkServer(x) => Some(x),
        _ => None,
    }
);
group!(AdminRequest, Admin, (), |r| match r {
    MetaResponse::Admin => Some(()),
    _ => None,
});
