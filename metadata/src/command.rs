//! The Raft command: every namespace or registry change is one of these,
//! applied atomically by the state machine.

use cairn_proto::meta_rpc::{
    AttrChange, Extent, FileKind, InodeAttr, MetaRequest, Owner, RenameMode, ReplicationPolicy,
    Session, XattrMode,
};
use cairn_proto::{InodeId, NodeId, RpcError};
use serde::{Deserialize, Serialize};

/// One replicated change. Times are stamped by the node that proposes it, so
/// every replica applies the same values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Mkdir {
        parent: InodeId,
        name: String,
        owner: Owner,
        now_ns: i64,
    },
    Unlink {
        parent: InodeId,
        name: String,
        now_ns: i64,
    },
    Rmdir {
        parent: InodeId,
        name: String,
        now_ns: i64,
    },
    /// A rename that replaces the target (as written by earlier builds;
    /// new proposals use [`Command::RenameWith`]).
    Rename {
        parent: InodeId,
        name: String,
        new_parent: InodeId,
        new_name: String,
        now_ns: i64,
    },
    CommitFile {
        parent: InodeId,
        name: String,
        extents: Vec<Extent>,
        size: u64,
        owner: Owner,
        now_ns: i64,
    },
    /// As written by earlier builds (no access time); new proposals use
    /// [`Command::SetAttrs`].
    SetAttr {
        ino: InodeId,
        change: AttrChangeV1,
        now_ns: i64,
    },
    RegisterChunkServer {
        id: NodeId,
        addr: String,
        zone: String,
        capacity_bytes: u64,
    },
    /// Takes a chunkserver out of the ring (planned removal, or one silent
    /// past the removal timeout); its chunks are re-replicated by repair.
    RemoveChunkServer { id: NodeId },
    /// The leader saw a chunkserver miss heartbeats past the down timeout
    /// (`down: true`), or heard from it again (`down: false`).
    SetChunkServerDown { id: NodeId, down: bool },
    /// Starts (`drain: true`) or cancels emptying a chunkserver.
    DrainChunkServer { id: NodeId, drain: bool },
    /// Changes how many copies of each chunk the cluster keeps.
    SetReplication { policy: ReplicationPolicy },
    /// `cmd`, applied at most once per session: a repeat answers with the
    /// first result (see [`crate::sessions`]). `now_ns` also expires old
    /// session records.
    Once {
        session: Session,
        now_ns: i64,
        cmd: Box<Command>,
    },
    /// Several independent commands in one log entry, so that they share
    /// one fsync (group commit). Each is applied atomically on its own; one
    /// refused command does not affect the others.
    Batch(Vec<Command>),
    // New variants go last: the log holds commands by variant index
    // (`golden.rs` pins every variant's bytes).
    CreateFile {
        parent: InodeId,
        name: String,
        owner: Owner,
        now_ns: i64,
    },
    WriteExtents {
        ino: InodeId,
        extents: Vec<Extent>,
        now_ns: i64,
    },
    Symlink {
        parent: InodeId,
        name: String,
        target: String,
        owner: Owner,
        now_ns: i64,
    },
    Link {
        ino: InodeId,
        new_parent: InodeId,
        new_name: String,
        now_ns: i64,
    },
    SetXattr {
        ino: InodeId,
        name: String,
        value: Vec<u8>,
        mode: XattrMode,
        now_ns: i64,
    },
    RemoveXattr {
        ino: InodeId,
        name: String,
        now_ns: i64,
    },
    RenameWith {
        parent: InodeId,
        name: String,
        new_parent: InodeId,
        new_name: String,
        mode: RenameMode,
        now_ns: i64,
    },
    Mknod {
        parent: InodeId,
        name: String,
        kind: FileKind,
        owner: Owner,
        now_ns: i64,
    },
    SetAttrs {
        ino: InodeId,
        change: AttrChange,
        now_ns: i64,
    },
    /// Bytes written into a tiny file's inline content.
    WriteInline {
        ino: InodeId,
        parts: Vec<(u64, Vec<u8>)>,
        now_ns: i64,
    },
    /// Sets inode numbers aside for a client (answered with
    /// [`CommandOutput::Reserved`]; never batched).
    ReserveInodes { count: u32 },
    /// A file created under a reserved inode number with its bytes.
    CreateWith {
        parent: InodeId,
        name: String,
        owner: Owner,
        ino: InodeId,
        inline: Vec<u8>,
        created_ns: i64,
        now_ns: i64,
    },
    /// Drops the garbage records of `ids` still older than `older_than_ns`
    /// (proposed by the leader's [`crate::garbage_purger`]).
    PurgeGarbage {
        ids: Vec<cairn_proto::ChunkId>,
        older_than_ns: i64,
    },
    /// A chunkserver's heartbeats say its disk is below its free-space
    /// reserve (`full: true`), or has room again (`full: false`).
    SetChunkServerFull { id: NodeId, full: bool },
}

/// [`AttrChange`] as earlier builds logged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChangeV1 {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime_ns: Option<i64>,
}

impl From<AttrChangeV1> for AttrChange {
    fn from(c: AttrChangeV1) -> Self {
        AttrChange {
            mode: c.mode,
            uid: c.uid,
            gid: c.gid,
            size: c.size,
            mtime_ns: c.mtime_ns,
            atime_ns: None,
        }
    }
}

impl Command {
    /// The command a namespace-changing request becomes, stamped with
    /// `now_ns`; any other request comes back as it was.
    // The "error" is the request handed back by value, not an error to
    // propagate: boxing it would only add an allocation per request.
    #[allow(clippy::result_large_err)]
    pub fn from_namespace_request(req: MetaRequest, now_ns: i64) -> Result<Command, MetaRequest> {
        use MetaRequest as Q;
        Ok(match req {
            Q::Mkdir {
                parent,
                name,
                owner,
            } => Command::Mkdir {
                parent,
                name,
                owner,
                now_ns,
            },
            Q::Unlink { parent, name } => Command::Unlink {
                parent,
                name,
                now_ns,
            },
            Q::Rmdir { parent, name } => Command::Rmdir {
                parent,
                name,
                now_ns,
            },
            Q::Rename {
                parent,
                name,
                new_parent,
                new_name,
                mode,
            } => Command::RenameWith {
                parent,
                name,
                new_parent,
                new_name,
                mode,
                now_ns,
            },
            Q::CreateFile {
                parent,
                name,
                owner,
            } => Command::CreateFile {
                parent,
                name,
                owner,
                now_ns,
            },
            Q::Mknod {
                parent,
                name,
                kind,
                owner,
            } => Command::Mknod {
                parent,
                name,
                kind,
                owner,
                now_ns,
            },
            Q::WriteExtents { ino, extents } => Command::WriteExtents {
                ino,
                extents,
                now_ns,
            },
            Q::Symlink {
                parent,
                name,
                target,
                owner,
            } => Command::Symlink {
                parent,
                name,
                target,
                owner,
                now_ns,
            },
            Q::Link {
                ino,
                new_parent,
                new_name,
            } => Command::Link {
                ino,
                new_parent,
                new_name,
                now_ns,
            },
            Q::SetXattr {
                ino,
                name,
                value,
                mode,
            } => Command::SetXattr {
                ino,
                name,
                value,
                mode,
                now_ns,
            },
            Q::RemoveXattr { ino, name } => Command::RemoveXattr { ino, name, now_ns },
            Q::CommitFile {
                parent,
                name,
                extents,
                size,
                owner,
            } => Command::CommitFile {
                parent,
                name,
                extents,
                size,
                owner,
                now_ns,
            },
            Q::SetAttr { ino, change } => Command::SetAttrs {
                ino,
                change,
                now_ns,
            },
            Q::WriteInline { ino, parts } => Command::WriteInline { ino, parts, now_ns },
            Q::CreateWith {
                parent,
                name,
                owner,
                ino,
                inline,
                created_ns,
            } => Command::CreateWith {
                parent,
                name,
                owner,
                ino,
                inline,
                created_ns,
                now_ns,
            },
            other => return Err(other),
        })
    }
}

/// What applying a command produced: the affected inode's new attributes
/// where there is one, or why the command changed nothing.
pub type CommandResult = Result<Option<InodeAttr>, RpcError>;

/// What applying a log entry produced: one result per command in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    One(CommandResult),
    Many(Vec<CommandResult>),
    /// [`Command::ReserveInodes`]: the first number set aside.
    Reserved(InodeId),
}

#[cfg(test)]
mod golden;

#[cfg(test)]
impl Command {
    /// `mkdir /name` (mode 0755, root-owned, at time 1): tests' stock command.
    pub(crate) fn mkdir_in_root(name: &str) -> Command {
        Command::Mkdir {
            parent: InodeId::ROOT,
            name: name.into(),
            owner: Owner {
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            now_ns: 1,
        }
    }
}
