//! openraft's type configuration for the metadata group.

use crate::command::{Command, CommandOutput};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Types of Cairn's metadata Raft group.
    pub TypeConfig:
        D = Command,
        R = CommandOutput,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::snapshot_store::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;

openraft::declare_raft_types!(
    /// The type configuration as log formats 0 and 1 held entries (their
    /// commands were [`crate::command::v1::CommandV1`]); used only to read
    /// those logs while upgrading them ([`crate::log_format::upgrade`]).
    pub TypeConfigV1:
        D = crate::command::v1::CommandV1,
        R = CommandOutput,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfigV1>,
        SnapshotData = crate::snapshot_store::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);
