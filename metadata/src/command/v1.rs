//! [`Command`] as log formats 0 and 1 held it, kept to read those logs:
//! [`crate::log_format::upgrade`] rewrites each entry as today's command
//! ([`From<CommandV1> for Command`]). Frozen: never change a variant or a
//! field here (`golden.rs` pins their bytes).

use cairn_proto::meta_rpc::{
    AttrChange, Extent, FileKind, NsWrite, Owner, RenameMode, ReplicationPolicy, Session, XattrMode,
};
use cairn_proto::{InodeId, NodeId};
use serde::{Deserialize, Serialize};

use super::{Command, RegistryChange};

/// A replicated change as log format 1 (and 0) held it: one variant per
/// operation, fields copied from the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandV1 {
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
        cmd: Box<CommandV1>,
    },
    /// Several independent commands in one log entry, so that they share
    /// one fsync (group commit). Each is applied atomically on its own; one
    /// refused command does not affect the others.
    Batch(Vec<CommandV1>),
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

impl From<CommandV1> for Command {
    fn from(c: CommandV1) -> Command {
        use CommandV1 as V;
        let ns = |write, now_ns| Command::Ns { write, now_ns };
        match c {
            V::Mkdir {
                parent,
                name,
                owner,
                now_ns,
            } => ns(
                NsWrite::Mkdir {
                    parent,
                    name,
                    owner,
                },
                now_ns,
            ),
            V::Unlink {
                parent,
                name,
                now_ns,
            } => ns(NsWrite::Unlink { parent, name }, now_ns),
            V::Rmdir {
                parent,
                name,
                now_ns,
            } => ns(NsWrite::Rmdir { parent, name }, now_ns),
            V::Rename {
                parent,
                name,
                new_parent,
                new_name,
                now_ns,
            } => ns(
                NsWrite::Rename {
                    parent,
                    name,
                    new_parent,
                    new_name,
                    mode: RenameMode::Replace,
                },
                now_ns,
            ),
            V::RenameWith {
                parent,
                name,
                new_parent,
                new_name,
                mode,
                now_ns,
            } => ns(
                NsWrite::Rename {
                    parent,
                    name,
                    new_parent,
                    new_name,
                    mode,
                },
                now_ns,
            ),
            V::CommitFile {
                parent,
                name,
                extents,
                size,
                owner,
                now_ns,
            } => ns(
                NsWrite::CommitFile {
                    parent,
                    name,
                    extents,
                    size,
                    owner,
                },
                now_ns,
            ),
            V::SetAttr {
                ino,
                change,
                now_ns,
            } => ns(
                NsWrite::SetAttr {
                    ino,
                    change: change.into(),
                },
                now_ns,
            ),
            V::SetAttrs {
                ino,
                change,
                now_ns,
            } => ns(NsWrite::SetAttr { ino, change }, now_ns),
            V::CreateFile {
                parent,
                name,
                owner,
                now_ns,
            } => ns(
                NsWrite::CreateFile {
                    parent,
                    name,
                    owner,
                },
                now_ns,
            ),
            V::WriteExtents {
                ino,
                extents,
                now_ns,
            } => ns(NsWrite::WriteExtents { ino, extents }, now_ns),
            V::Symlink {
                parent,
                name,
                target,
                owner,
                now_ns,
            } => ns(
                NsWrite::Symlink {
                    parent,
                    name,
                    target,
                    owner,
                },
                now_ns,
            ),
            V::Link {
                ino,
                new_parent,
                new_name,
                now_ns,
            } => ns(
                NsWrite::Link {
                    ino,
                    new_parent,
                    new_name,
                },
                now_ns,
            ),
            V::SetXattr {
                ino,
                name,
                value,
                mode,
                now_ns,
            } => ns(
                NsWrite::SetXattr {
                    ino,
                    name,
                    value,
                    mode,
                },
                now_ns,
            ),
            V::RemoveXattr { ino, name, now_ns } => ns(NsWrite::RemoveXattr { ino, name }, now_ns),
            V::Mknod {
                parent,
                name,
                kind,
                owner,
                now_ns,
            } => ns(
                NsWrite::Mknod {
                    parent,
                    name,
                    kind,
                    owner,
                },
                now_ns,
            ),
            V::WriteInline { ino, parts, now_ns } => {
                ns(NsWrite::WriteInline { ino, parts }, now_ns)
            }
            // Format 1 stamped no time on a reservation; none is used.
            V::ReserveInodes { count } => ns(NsWrite::ReserveInodes { count }, 0),
            V::CreateWith {
                parent,
                name,
                owner,
                ino,
                inline,
                created_ns,
                now_ns,
            } => ns(
                NsWrite::CreateWith {
                    parent,
                    name,
                    owner,
                    ino,
                    inline,
                    created_ns,
                },
                now_ns,
            ),
            V::RegisterChunkServer {
                id,
                addr,
                zone,
                capacity_bytes,
            } => Command::Registry(RegistryChange::Register {
                id,
                addr,
                zone,
                capacity_bytes,
            }),
            V::RemoveChunkServer { id } => Command::Registry(RegistryChange::Remove { id }),
            V::SetChunkServerDown { id, down } => {
                Command::Registry(RegistryChange::SetDown { id, down })
            }
            V::SetChunkServerFull { id, full } => {
                Command::Registry(RegistryChange::SetFull { id, full })
            }
            V::DrainChunkServer { id, drain } => {
                Command::Registry(RegistryChange::Drain { id, drain })
            }
            V::SetReplication { policy } => {
                Command::Registry(RegistryChange::SetReplication { policy })
            }
            V::PurgeGarbage { ids, older_than_ns } => Command::PurgeGarbage { ids, older_than_ns },
            V::Once {
                session,
                now_ns,
                cmd,
            } => Command::Once {
                session,
                now_ns,
                cmd: Box::new((*cmd).into()),
            },
            V::Batch(cmds) => Command::Batch(cmds.into_iter().map(Command::from).collect()),
        }
    }
}
