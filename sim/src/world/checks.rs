//! The invariants, checked as the run goes and at its end.

use std::collections::{BTreeMap, BTreeSet};

use cairn_proto::meta_rpc::ChunkState;
use cairn_proto::{ChunkId, NodeId};

use super::{chunk_bytes, World};

/// A broken invariant, with the step it broke at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged file's chunk has no intact copy anywhere.
    Lost {
        step: u64,
        file: String,
        chunk: ChunkId,
    },
    /// A repair drop left a current owner without an intact copy.
    UnsafeDrop {
        step: u64,
        chunk: ChunkId,
        dropper: NodeId,
        owner: NodeId,
    },
    /// After the quiet phase, a referenced chunk is not on N intact copies
    /// on its owners.
    Short {
        chunk: ChunkId,
        intact_on_owners: usize,
        want: usize,
    },
    /// After the quiet phase, a chunk no file references is still stored.
    Garbage { chunk: ChunkId, copies: usize },
    /// A crash took a copy the store had acknowledged.
    CrashLost {
        step: u64,
        server: NodeId,
        chunk: ChunkId,
    },
    /// After a crash, a copy under a chunk's name does not hash to it.
    Torn {
        step: u64,
        server: NodeId,
        chunk: ChunkId,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Lost { step, file, chunk } => {
                write!(f, "step {step}: {file} lost its last intact copy of {chunk}")
            }
            Violation::UnsafeDrop {
                step,
                chunk,
                dropper,
                owner,
            } => write!(
                f,
                "step {step}: server {dropper} dropped {chunk} while owner {owner} held no intact copy"
            ),
            Violation::Short {
                chunk,
                intact_on_owners,
                want,
            } => write!(
                f,
                "after the faults: {chunk} on {intact_on_owners} intact owner copies, not {want}"
            ),
            Violation::Garbage { chunk, copies } => {
                write!(f, "after the faults: unreferenced {chunk} still has {copies} copies")
            }
            Violation::CrashLost { step, server, chunk } => write!(
                f,
                "step {step}: a crash of server {server} lost its acknowledged copy of {chunk}"
            ),
            Violation::Torn { step, server, chunk } => write!(
                f,
                "step {step}: after a crash, server {server} holds a torn copy under {chunk}'s name"
            ),
        }
    }
}

impl World {
    /// Invariant: a repair drop leaves every current owner with an intact
    /// copy.
    pub(super) fn check_drop(&mut self, me: NodeId, id: ChunkId) {
        let ring = self.ring();
        let n = usize::from(ring.policy().copies);
        for owner in ring.owners(&id, n).iter().map(|m| m.id) {
            let intact =
                owner != me && self.servers.get(&owner).is_some_and(|s| s.disk.intact(&id));
            if !intact {
                self.violations.push(Violation::UnsafeDrop {
                    step: self.step,
                    chunk: id,
                    dropper: me,
                    owner,
                });
            }
        }
    }

    /// Invariant: every acknowledged file's chunks have an intact copy.
    pub(super) fn check_durability(&mut self) {
        let mut lost = Vec::new();
        for (file, chunks) in &self.live {
            for c in chunks {
                if !self.servers.values().any(|s| s.disk.intact(c)) {
                    lost.push((file.clone(), *c));
                }
            }
        }
        for (file, chunk) in lost {
            let v = Violation::Lost {
                step: self.step,
                file,
                chunk,
            };
            if !self.violations.contains(&v) {
                self.violations.push(v);
            }
        }
    }

    /// After the quiet phase: N intact copies of every referenced chunk
    /// on its owners, and no garbage.
    pub(super) fn final_checks(&mut self) {
        let ring = self.ring();
        let n = usize::from(ring.policy().copies);
        // What the namespace references — files the client knows of and
        // files committed without its knowing (an answer lost to an
        // election) alike: each must be readable.
        let every_chunk: Vec<ChunkId> = (1..=self.chunk_seq)
            .map(|seq| ChunkId::of(&chunk_bytes(seq)))
            .collect();
        let referenced: BTreeSet<ChunkId> = every_chunk
            .iter()
            .zip(self.states(&every_chunk))
            .filter(|(_, state)| *state == ChunkState::Referenced)
            .map(|(id, _)| *id)
            .collect();
        for id in &referenced {
            let intact_on_owners = ring
                .owners(id, n)
                .iter()
                .filter(|m| self.servers.get(&m.id).is_some_and(|s| s.disk.intact(id)))
                .count();
            if intact_on_owners < n {
                self.violations.push(Violation::Short {
                    chunk: *id,
                    intact_on_owners,
                    want: n,
                });
            }
        }
        let mut stored: BTreeMap<ChunkId, usize> = BTreeMap::new();
        for s in self.servers.values() {
            for id in s.disk.stored() {
                *stored.entry(id).or_default() += 1;
            }
        }
        for (chunk, copies) in stored {
            if !referenced.contains(&chunk) {
                self.violations.push(Violation::Garbage { chunk, copies });
            }
        }
    }
}
