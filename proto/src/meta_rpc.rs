//! The metadata service's request and response types.

use serde::{Deserialize, Serialize};

use crate::{ChunkId, InodeId, NodeId};

// What `MetaRequest::Status` and heartbeats carry; see [`crate::status`].
pub use crate::status::*;
// Inodes, extents and directory entries; see [`crate::inode`].
pub use crate::inode::*;

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
/// Longest extended attribute name, in bytes (Linux `XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest extended attribute value, in bytes (Linux `XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 << 10;
/// Most extended attributes one inode may carry.
pub const MAX_XATTRS_PER_INODE: usize = 1024;

/// What a rename does when the target name exists (Linux `renameat2`
/// flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum RenameMode {
    /// Replace the target (a file, or an empty directory when the source
    /// is one).
    #[default]
    Replace,
    /// Refuse with `AlreadyExists` (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap the two entries atomically; both must exist
    /// (`RENAME_EXCHANGE`).
    Exchange,
}

/// How setting an extended attribute treats an existing one (`setxattr`
/// flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Upsert,
    /// Refuse with `AlreadyExists` if it exists (`XATTR_CREATE`).
    Create,
    /// Refuse with `NoData` if it does not exist (`XATTR_REPLACE`).
    Replace,
}

/// A chunkserver as the placement ring sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RingMember {
    pub id: NodeId,
    /// `host:port` of its QUIC endpoint.
    pub addr: String,
    pub zone: String,
    /// Virtual nodes on the ring (proportional to capacity).
    pub weight: u32,
    /// Missed heartbeats: still an owner (a short outage moves no data),
    /// but new writes go to the next server and reads try it last.
    pub down: bool,
    /// Being emptied by an operator: owns nothing (repair moves its chunks
    /// to the owners), still serves reads until it is removed.
    pub draining: bool,
    /// Its disk is (nearly) full, as its heartbeats say: still an owner
    /// and read as usual, but new writes and repair copies go elsewhere.
    pub full: bool,
}

impl RingMember {
    /// Up and with room: new copies may be written to it.
    pub fn takes_writes(&self) -> bool {
        !self.down && !self.full
    }
}

/// How many copies of each chunk the cluster keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReplicationPolicy {
    /// N: copies in all (owners 1..=N of a chunk).
    pub copies: u8,
    /// S: copies written synchronously (primary + S-1 backups) before a
    /// put is acknowledged; the other N-S are pushed in the background.
    pub sync_copies: u8,
}

impl Default for ReplicationPolicy {
    fn default() -> Self {
        ReplicationPolicy {
            copies: 3,
            sync_copies: 2,
        }
    }
}

impl ReplicationPolicy {
    /// Most copies a cluster may ask for.
    pub const MAX_COPIES: u8 = 8;

    pub fn validate(&self) -> Result<(), String> {
        if self.copies == 0 || self.copies > Self::MAX_COPIES {
            return Err(format!(
                "copies must be 1..={}, not {}",
                Self::MAX_COPIES,
                self.copies
            ));
        }
        if self.sync_copies == 0 || self.sync_copies > self.copies {
            return Err(format!(
                "sync copies must be 1..={} (the number of copies), not {}",
                self.copies, self.sync_copies
            ));
        }
        Ok(())
    }
}

/// The placement ring at one epoch.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RingState {
    pub epoch: u64,
    pub members: Vec<RingMember>,
    pub policy: ReplicationPolicy,
    /// The garbage-collection grace period: an unreferenced chunk is
    /// deleted once it has been unreferenced (or stored unreferenced) this
    /// long. A client commits the chunks it stored within half of it, or
    /// gives up (0: not announced).
    pub gc_grace_ms: u64,
}

/// What metadata knows of a chunk, for garbage collection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChunkState {
    /// A committed file references it.
    Referenced,
    /// Its last reference went away at this time (ns since the epoch, by
    /// the metadata leader's clock).
    Unreferenced { since_ns: i64 },
    /// No file has ever referenced it, or its garbage record is gone: an
    /// upload never committed (or not yet).
    Unknown,
}

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

/// A request to a metadata node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MetaRequest {
    /// The attributes of `name` in directory `parent`.
    Lookup {
        parent: InodeId,
        name: String,
    },
    /// The attributes of the inode at `path` (from the root).
    ResolvePath {
        path: String,
    },
    GetAttr {
        ino: InodeId,
    },
    /// Up to `limit` entries of directory `ino` whose names sort after `after`.
    ReadDir {
        ino: InodeId,
        after: Option<String>,
        limit: u32,
    },
    Mkdir {
        parent: InodeId,
        name: String,
        owner: Owner,
    },
    /// Removes a non-directory entry.
    Unlink {
        parent: InodeId,
        name: String,
    },
    /// Removes an empty directory.
    Rmdir {
        parent: InodeId,
        name: String,
    },
    /// Moves an entry; by default atomically replaces a target file (or
    /// empty directory when the source is a directory), see [`RenameMode`].
    Rename {
        parent: InodeId,
        name: String,
        new_parent: InodeId,
        new_name: String,
        mode: RenameMode,
    },
    /// Creates or replaces a regular file with these extents, atomically:
    /// extents, dentry and chunk refcounts change in one Raft command.
    CommitFile {
        parent: InodeId,
        name: String,
        extents: Vec<Extent>,
        size: u64,
        owner: Owner,
    },
    /// Up to `limit` extents of file `ino` that end after `from`.
    GetExtents {
        ino: InodeId,
        from: u64,
        limit: u32,
    },
    /// Which of these chunks are referenced by a committed file.
    ChunksExist {
        ids: Vec<ChunkId>,
    },
    GetRing,
    /// A chunkserver joins (or re-joins with a new address or capacity).
    RegisterChunkServer {
        id: NodeId,
        addr: String,
        zone: String,
        capacity_bytes: u64,
    },
    /// A chunkserver reports it is alive (answered with
    /// [`MetaResponse::Beat`]).
    Heartbeat {
        id: NodeId,
        capacity_bytes: u64,
        used_bytes: u64,
        /// Bytes it may still store (free space on its disk, within its
        /// configured capacity).
        available_bytes: u64,
        /// Below its free-space reserve: writes should go elsewhere.
        full: bool,
        chunks: u64,
        /// Chunks its last repair pass found short of N copies.
        under_replicated: u64,
        scrub: ScrubReport,
        repair: RepairReport,
        gc: GcTotals,
    },
    Status,
    /// Takes chunkserver `id` out of the ring. Refused while it is up:
    /// drain it, stop it, then remove it.
    RemoveChunkServer {
        id: NodeId,
    },
    /// Starts (`drain: true`) or cancels emptying chunkserver `id`.
    DrainChunkServer {
        id: NodeId,
        drain: bool,
    },
    /// Sets the cluster's replication policy.
    SetReplication {
        policy: ReplicationPolicy,
    },
    /// Changes inode `ino`'s attributes; answers the new attributes.
    SetAttr {
        ino: InodeId,
        change: AttrChange,
    },
    /// Creates an empty regular file; refused with `AlreadyExists` if the
    /// name is taken. Answers its attributes.
    CreateFile {
        parent: InodeId,
        name: String,
        owner: Owner,
    },
    /// Writes part of file `ino`: each extent replaces whatever the file
    /// held at its byte range (older extents are cut around it); the size
    /// grows to the last extent's end if that lies past it. Answers the new
    /// attributes.
    WriteExtents {
        ino: InodeId,
        extents: Vec<Extent>,
    },
    /// Creates a named pipe or socket node (`kind` is `Fifo` or `Socket`).
    Mknod {
        parent: InodeId,
        name: String,
        kind: FileKind,
        owner: Owner,
    },
    /// Creates a symbolic link `name` in `parent` pointing at `target`.
    Symlink {
        parent: InodeId,
        name: String,
        target: String,
        owner: Owner,
    },
    /// The target of symbolic link `ino` (answered with
    /// [`MetaResponse::SymlinkTarget`]).
    ReadLink {
        ino: InodeId,
    },
    /// Adds a hard link `new_name` in `new_parent` to non-directory `ino`.
    Link {
        ino: InodeId,
        new_parent: InodeId,
        new_name: String,
    },
    SetXattr {
        ino: InodeId,
        name: String,
        value: Vec<u8>,
        mode: XattrMode,
    },
    /// Answered with [`MetaResponse::Xattr`], or `NoData`.
    GetXattr {
        ino: InodeId,
        name: String,
    },
    /// Answered with [`MetaResponse::XattrNames`].
    ListXattr {
        ino: InodeId,
    },
    RemoveXattr {
        ino: InodeId,
        name: String,
    },
    /// Adds metadata node `id` (reachable at `addr`, running with
    /// `join = true`) to the group as a learner: it receives the log (or a
    /// snapshot) but does not vote yet.
    AddMetaNode {
        id: NodeId,
        addr: String,
    },
    /// Makes learner `id` a voter; refused while it is more than
    /// [`MAX_PROMOTE_LAG`] entries behind.
    PromoteMetaNode {
        id: NodeId,
    },
    /// Takes metadata node `id` out of the group (voter or learner).
    RemoveMetaNode {
        id: NodeId,
    },
    /// A Raft RPC between metadata nodes.
    Raft {
        kind: RaftRpcKind,
        payload: Vec<u8>,
    },
    /// What metadata knows of each of these chunks (at most
    /// [`MAX_EXIST_QUERY`]), for garbage collection; answered with
    /// [`MetaResponse::ChunkStates`].
    ChunkStates {
        ids: Vec<ChunkId>,
    },
    /// As [`MetaRequest::ReadDir`], each entry with its attributes (at most
    /// [`MAX_DIR_PLUS_PAGE`] a page); answered with
    /// [`MetaResponse::DirPlusPage`].
    ReadDirPlus {
        ino: InodeId,
        after: Option<String>,
        limit: u32,
    },
    /// Writes each `(offset, bytes)` part into file `ino`'s inline bytes
    /// (zeros fill any gap). Refused with [`crate::ErrorCode::NotInline`]
    /// when the file has chunks or would grow past [`MAX_INLINE`].
    WriteInline {
        ino: InodeId,
        parts: Vec<(u64, Vec<u8>)>,
    },
    /// A file's content: its inline bytes, or (paged as `GetExtents`) its
    /// extents; answered with [`MetaResponse::Content`].
    GetContent {
        ino: InodeId,
        from: u64,
        limit: u32,
    },
    /// Sets aside `count` (at most [`MAX_INODE_RESERVATION`]) inode numbers
    /// for this client to create files under ([`MetaRequest::CreateWith`]);
    /// answered with [`MetaResponse::Inodes`]. Numbers never used are
    /// simply never used.
    ReserveInodes {
        count: u32,
    },
    /// Creates regular file `name` in `parent` as inode `ino` (one this
    /// client reserved) holding `inline` (at most [`MAX_INLINE`] bytes):
    /// a file created and written in one commit. Refused with
    /// `AlreadyExists` if the name is taken, `InvalidRequest` if `ino`
    /// was never reserved or is in use. Answers its attributes.
    /// `created_ns`: when the client created it (and told its kernel so),
    /// recorded as the file's times if it is within
    /// [`MAX_CREATE_SKEW_NS`] of metadata's clock.
    CreateWith {
        parent: InodeId,
        name: String,
        owner: Owner,
        ino: InodeId,
        inline: Vec<u8>,
        created_ns: i64,
    },
}

impl MetaRequest {
    /// The request's name, for logs and refusals (never its payload).
    pub fn op_name(&self) -> &'static str {
        match self {
            MetaRequest::Lookup { .. } => "Lookup",
            MetaRequest::ResolvePath { .. } => "ResolvePath",
            MetaRequest::GetAttr { .. } => "GetAttr",
            MetaRequest::ReadDir { .. } => "ReadDir",
            MetaRequest::ReadDirPlus { .. } => "ReadDirPlus",
            MetaRequest::WriteInline { .. } => "WriteInline",
            MetaRequest::GetContent { .. } => "GetContent",
            MetaRequest::ReserveInodes { .. } => "ReserveInodes",
            MetaRequest::CreateWith { .. } => "CreateWith",
            MetaRequest::Mkdir { .. } => "Mkdir",
            MetaRequest::Unlink { .. } => "Unlink",
            MetaRequest::Rmdir { .. } => "Rmdir",
            MetaRequest::Rename { .. } => "Rename",
            MetaRequest::CommitFile { .. } => "CommitFile",
            MetaRequest::GetExtents { .. } => "GetExtents",
            MetaRequest::ChunksExist { .. } => "ChunksExist",
            MetaRequest::ChunkStates { .. } => "ChunkStates",
            MetaRequest::GetRing => "GetRing",
            MetaRequest::RegisterChunkServer { .. } => "RegisterChunkServer",
            MetaRequest::Heartbeat { .. } => "Heartbeat",
            MetaRequest::Status => "Status",
            MetaRequest::RemoveChunkServer { .. } => "RemoveChunkServer",
            MetaRequest::DrainChunkServer { .. } => "DrainChunkServer",
            MetaRequest::SetReplication { .. } => "SetReplication",
            MetaRequest::SetAttr { .. } => "SetAttr",
            MetaRequest::CreateFile { .. } => "CreateFile",
            MetaRequest::WriteExtents { .. } => "WriteExtents",
            MetaRequest::Mknod { .. } => "Mknod",
            MetaRequest::Symlink { .. } => "Symlink",
            MetaRequest::ReadLink { .. } => "ReadLink",
            MetaRequest::Link { .. } => "Link",
            MetaRequest::SetXattr { .. } => "SetXattr",
            MetaRequest::GetXattr { .. } => "GetXattr",
            MetaRequest::ListXattr { .. } => "ListXattr",
            MetaRequest::RemoveXattr { .. } => "RemoveXattr",
            MetaRequest::AddMetaNode { .. } => "AddMetaNode",
            MetaRequest::PromoteMetaNode { .. } => "PromoteMetaNode",
            MetaRequest::RemoveMetaNode { .. } => "RemoveMetaNode",
            MetaRequest::Raft { .. } => "Raft",
        }
    }

    /// True for requests that change nothing, which are safe to send again
    /// when an answer was lost.
    pub fn is_read_only(&self) -> bool {
        self.serves_follower_reads()
            || matches!(
                self,
                MetaRequest::ChunksExist { .. }
                    | MetaRequest::ChunkStates { .. }
                    | MetaRequest::Status
                    | MetaRequest::Heartbeat { .. }
            )
    }

    /// True for reads a follower may answer from its own state when the
    /// caller opted into follower reads.
    pub fn serves_follower_reads(&self) -> bool {
        matches!(
            self,
            MetaRequest::Lookup { .. }
                | MetaRequest::ResolvePath { .. }
                | MetaRequest::GetAttr { .. }
                | MetaRequest::ReadDir { .. }
                | MetaRequest::ReadDirPlus { .. }
                | MetaRequest::GetExtents { .. }
                | MetaRequest::GetContent { .. }
                | MetaRequest::GetRing
                | MetaRequest::ReadLink { .. }
                | MetaRequest::GetXattr { .. }
                | MetaRequest::ListXattr { .. }
        )
    }
}

/// A learner at most this many entries behind the leader may become a
/// voter (it then catches up within a heartbeat or two, so the group's
/// commits do not stall on it).
pub const MAX_PROMOTE_LAG: u64 = 100;

/// A successful answer from a metadata node (errors travel as
/// [`crate::RpcError`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MetaResponse {
    Ok,
    Attr(InodeAttr),
    DirPage {
        entries: Vec<DirEntry>,
        more: bool,
    },
    /// `version`: the file's inode version the page was read at.
    Extents {
        extents: Vec<Extent>,
        more: bool,
        version: u64,
    },
    Exist(Vec<bool>),
    Ring(RingState),
    /// A heartbeat was recorded; the ring's current epoch.
    Beat {
        ring_epoch: u64,
    },
    Status(ClusterStatus),
    Raft(Vec<u8>),
    SymlinkTarget(String),
    Xattr(Vec<u8>),
    XattrNames(Vec<String>),
    /// One state per id asked, the leader's clock when it read them, and
    /// the cluster's grace period.
    ChunkStates {
        states: Vec<ChunkState>,
        now_ns: i64,
        gc_grace_ms: u64,
    },
    /// A page of [`MetaRequest::ReadDirPlus`]; `more` when entries follow,
    /// and then the next page starts after `last` (the last name read,
    /// which may be one left out because it was removed meanwhile).
    DirPlusPage {
        entries: Vec<DirEntryPlus>,
        more: bool,
        last: Option<String>,
    },
    /// A file's inline bytes (then no extents; bytes past them up to the
    /// size read as zeros), or a page of its extents as
    /// [`MetaResponse::Extents`]; `version` as there.
    Content {
        inline: Option<Vec<u8>>,
        extents: Vec<Extent>,
        more: bool,
        version: u64,
    },
    /// A change to directory entries was applied: what the request
    /// answers otherwise (`Attr` as `Some`, `Ok` as `None`), and the
    /// attributes after it of each of [`MetaRequest::changed_dirs`] (see
    /// [`crate::dir_changes`]).
    Changed {
        attr: Option<InodeAttr>,
        dirs: Vec<InodeAttr>,
    },
    /// Inode numbers `first..first + count` are this client's to create
    /// files under.
    Inodes {
        first: InodeId,
        count: u32,
    },
}
