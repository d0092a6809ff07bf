//! The Raft command: every namespace or registry change is one of these,
//! applied atomically by the state machine (see [`crate::apply`]).
//!
//! A namespace change is the client's [`NsWrite`] itself, stamped with the
//! proposer's clock: adding an operation adds it to `NsWrite` and to the
//! namespace's apply, nothing here.
//!
//! **Stored format** (log format 2, [`crate::log_format`]): postcard, which
//! encodes a variant by its index and a struct by its fields' order. New
//! variants and fields go last; `golden.rs` pins every variant's bytes, and
//! the commands of formats 0 and 1 are [`v1::CommandV1`].

use cairn_proto::meta_rpc::{InodeAttr, NsWrite, ReplicationPolicy, Session};
use cairn_proto::{ChunkId, InodeId, NodeId, RpcError};
use serde::{Deserialize, Serialize};

pub mod v1;

/// One replicated change. Times are stamped by the node that proposes it, so
/// every replica applies the same values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A namespace change as the client sent it. `ReserveInodes` is
    /// answered with [`CommandOutput::Reserved`] and never batched.
    Ns { write: NsWrite, now_ns: i64 },
    /// A change to the chunkserver registry or the replication policy.
    Registry(RegistryChange),
    /// Drops the garbage records of `ids` still older than `older_than_ns`
    /// (proposed by the leader's [`crate::garbage_purger`]).
    PurgeGarbage {
        ids: Vec<ChunkId>,
        older_than_ns: i64,
    },
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
}

/// A change to what the placement ring is made of (see
/// [`crate::registry`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryChange {
    /// A chunkserver joins (or re-joins with a new address or capacity).
    Register {
        id: NodeId,
        addr: String,
        zone: String,
        capacity_bytes: u64,
    },
    /// Takes a chunkserver out of the ring (planned removal, or one silent
    /// past the removal timeout); its chunks are re-replicated by repair.
    Remove { id: NodeId },
    /// The leader saw a chunkserver miss heartbeats past the down timeout
    /// (`down: true`), or heard from it again (`down: false`).
    SetDown { id: NodeId, down: bool },
    /// A chunkserver's heartbeats say its disk is below its free-space
    /// reserve (`full: true`), or has room again (`full: false`).
    SetFull { id: NodeId, full: bool },
    /// Starts (`drain: true`) or cancels emptying a chunkserver.
    Drain { id: NodeId, drain: bool },
    /// Changes how many copies of each chunk the cluster keeps.
    SetReplication { policy: ReplicationPolicy },
}

/// What applying a command produced: the affected inode's new attributes
/// where there is one, or why the command changed nothing.
pub type CommandResult = Result<Option<InodeAttr>, RpcError>;

/// What applying a log entry produced: one result per command in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    One(CommandResult),
    Many(Vec<CommandResult>),
    /// An inode reservation: the first number set aside.
    Reserved(InodeId),
}

#[cfg(test)]
mod golden;

#[cfg(test)]
impl Command {
    /// `mkdir /name` (mode 0755, root-owned, at time 1): tests' stock command.
    pub(crate) fn mkdir_in_root(name: &str) -> Command {
        Command::Ns {
            write: NsWrite::Mkdir {
                parent: InodeId::ROOT,
                name: name.into(),
                owner: cairn_proto::meta_rpc::Owner {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            },
            now_ns: 1,
        }
    }
}
