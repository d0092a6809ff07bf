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
