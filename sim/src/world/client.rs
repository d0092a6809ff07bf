//! The simulated client: puts (uploading each chunk to its primary and
//! sync backups, queueing the async copies), commits within its window,
//! deduplicates against referenced chunks, and removes files.

use std::time::Duration;

use cairn_metadata::command::Command;
use cairn_proto::gc_rule::commit_in_time;
use cairn_proto::meta_rpc::{ChunkState, Extent, NsWrite, Owner};
use cairn_proto::{ChunkId, InodeId, NodeId};
use rand::Rng;

use super::{chunk_bytes, InFlight, InFlightFate, PendingCommit, Queued, World, CLIENT, META, MS};

impl World {
    /// Stores a new chunk as the client does: primary and sync backups
    /// durably, async copies queued on the primary (alongside its store).
    pub(super) fn upload(&mut self, data: &[u8]) -> bool {
        let id = ChunkId::of(data);
        let ring = self.ring();
        let policy = ring.policy();
        let (n, s) = (usize::from(policy.copies), usize::from(policy.sync_copies));
        let targets: Vec<NodeId> = ring.write_targets(&id, n).iter().map(|m| m.id).collect();
        if targets.len() < s || !self.reach(CLIENT, targets[0]) {
            return false;
        }
        let primary = targets[0];
        // The primary queues the async copies while it stores the chunk:
        // the entries stay even when the put then fails.
        let queued_ns = self.clock(primary);
        if let Some(p) = self.servers.get_mut(&primary) {
            for &t in &targets[s..] {
                p.queue.push(Queued {
                    chunk: id,
                    target: t,
                    queued_ns,
                });
            }
        }
        let mut stored = 0;
        for &t in &targets[..s] {
            if t != primary && !self.reach(primary, t) {
                continue;
            }
            let now = self.clock(t);
            if let Some(server) = self.servers.get_mut(&t) {
                if server.disk.put(data, now).is_ok() {
                    stored += 1;
                }
            }
        }
        if stored < s {
            return false;
        }
        true
    }

    pub(super) fn put(&mut self) {
        let name = format!("f{}", self.rng.random_range(0..12));
        let parts = self.rng.random_range(1..=3);
        let mut chunks = Vec::new();
        for _ in 0..parts {
            // Deduplication: a chunk some file references already.
            if self.rng.random_bool(0.2) {
                let known: Vec<ChunkId> = self.live.values().flatten().copied().collect();
                if !known.is_empty() {
                    let c = known[self.rng.random_range(0..known.len())];
                    if self.reach(CLIENT, META) && self.states(&[c])[0] == ChunkState::Referenced {
                        chunks.push(c);
                        continue;
                    }
                }
            }
            self.chunk_seq += 1;
            let data = chunk_bytes(self.chunk_seq);
            let id = ChunkId::of(&data);
            if !self.upload(&data) {
                self.event(&format!("put {name} failed"));
                return;
            }
            chunks.push(id);
        }
        // Commits mostly in time, sometimes past the window (refused).
        let delay = self.rng.random_range(0..=self.cfg.grace_ms * 7 / 10) * MS;
        self.event(&format!("put {name} {} chunks", chunks.len()));
        self.pending.push(PendingCommit {
            name,
            chunks,
            started_ns: self.now_ns,
            at_ns: self.now_ns + delay,
        });
    }

    pub(super) fn commit(&mut self, p: PendingCommit) {
        let elapsed = Duration::from_nanos((self.now_ns - p.started_ns).max(0) as u64);
        if !commit_in_time(elapsed, self.grace()) || !self.reach(CLIENT, META) {
            self.event(&format!("commit {} given up", p.name));
            return;
        }
        if self.rng.random_range(0..100) < 4 {
            self.caught_in_an_election(p);
            return;
        }
        if self.apply_commit(&p, self.now_ns) {
            self.acked += 1;
            self.event(&format!("commit {} acked", p.name));
            self.live.insert(p.name, p.chunks);
        }
    }

    /// The leader loses its office as `p` reaches it: metadata answers
    /// nobody for a while, and `p` applies when the election ends, or not.
    /// Unless it is told, the client no longer knows which version of the
    /// file is there, so it stops counting on either.
    fn caught_in_an_election(&mut self, p: PendingCommit) {
        let lasts = self
            .rng
            .random_range(100..=self.cfg.election_ms_max.max(100))
            * MS;
        self.election_until_ns = self.now_ns + lasts;
        let fate = match self.rng.random_range(0..3) {
            0 => InFlightFate::Dropped,
            1 => InFlightFate::AppliedUnanswered,
            _ => InFlightFate::Applied,
        };
        self.fault(
            "leader_change",
            format!("{} ms, {} {fate:?}", lasts / MS, p.name),
        );
        if fate != InFlightFate::Applied {
            self.live.remove(&p.name);
        }
        self.in_flight.push(InFlight {
            commit: p,
            proposed_ns: self.now_ns,
            fate,
        });
    }

    /// A new leader serves: the commits caught in the election that it
    /// found in its log apply, in order, before anything else.
    pub(super) fn election_ends(&mut self) {
        for f in std::mem::take(&mut self.in_flight) {
            if f.fate == InFlightFate::Dropped {
                self.event(&format!("commit {} dropped by the election", f.commit.name));
                continue;
            }
            let applied = self.apply_commit(&f.commit, f.proposed_ns);
            if applied && f.fate == InFlightFate::Applied {
                self.acked += 1;
                self.event(&format!(
                    "commit {} acked after the election",
                    f.commit.name
                ));
                self.live.insert(f.commit.name, f.commit.chunks);
            } else {
                self.event(&format!("commit {} applied unanswered", f.commit.name));
            }
        }
    }

    /// Applies `p`'s CommitFile as proposed at `proposed_ns`.
    fn apply_commit(&mut self, p: &PendingCommit, proposed_ns: i64) -> bool {
        let extents = p
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| Extent {
                offset: i as u64 * 64,
                len: 64,
                chunk: *c,
                chunk_offset: 0,
            })
            .collect();
        self.apply(Command::Ns {
            write: NsWrite::CommitFile {
                parent: InodeId::ROOT,
                name: p.name.clone(),
                extents,
                size: p.chunks.len() as u64 * 64,
                owner: Owner {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            },
            now_ns: proposed_ns,
        })
        .is_ok()
    }

    pub(super) fn remove(&mut self) {
        let names: Vec<String> = self.live.keys().cloned().collect();
        if names.is_empty() || !self.reach(CLIENT, META) {
            return;
        }
        let name = names[self.rng.random_range(0..names.len())].clone();
        let r = self.apply(Command::Ns {
            write: NsWrite::Unlink {
                parent: InodeId::ROOT,
                name: name.clone(),
            },
            now_ns: self.now_ns,
        });
        if r.is_ok() {
            self.event(&format!("remove {name}"));
            self.live.remove(&name);
        }
    }
}
