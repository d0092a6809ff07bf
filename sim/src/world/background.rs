//! The chunkservers' background work, as the real loops do it: heartbeats,
//! repair passes (plan, then drops after re-hashed confirmations),
//! collector passes, the async-copy queue and the scrubber.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use cairn_chunkserver::queue_plan::{fate, pick, Fate};
use cairn_chunkserver::repair_plan::{decide, may_drop};
use cairn_proto::gc_rule::{self, repair_may_copy, Verdict};
use cairn_proto::{ChunkId, NodeId};
use rand::Rng;

use super::{PlannedDrops, World, META, MS};

impl World {
    pub(super) fn background(&mut self) {
        let ids: Vec<NodeId> = self.servers.keys().copied().collect();
        for id in ids {
            if !self.is_up(id) {
                continue;
            }
            // Heartbeats (every 2 s) tell a server the ring epoch.
            if self.rng.random_range(0..20) == 0 && self.reach(id, META) {
                let epoch = self.ring().epoch();
                if let Some(s) = self.servers.get_mut(&id) {
                    s.known_epoch = epoch;
                }
            }
            let now = self.clock(id);
            let (repair_due, gc_due, drops_due) = match self.servers.get(&id) {
                Some(s) => (
                    now >= s.next_repair_ns,
                    now >= s.next_gc_ns,
                    s.planned.as_ref().is_some_and(|p| now >= p.at_ns),
                ),
                None => continue,
            };
            if drops_due {
                self.repair_drops(id);
            }
            if repair_due {
                self.repair_plan(id);
                if let Some(s) = self.servers.get_mut(&id) {
                    s.next_repair_ns = now + self.cfg.repair_interval_ms * MS;
                }
            }
            if gc_due {
                self.gc(id);
                if let Some(s) = self.servers.get_mut(&id) {
                    s.next_gc_ns = now + self.cfg.gc_interval_ms * MS;
                }
            }
            self.replicate(id);
        }
    }

    /// The first half of a repair pass: read the ring, ask owners, push
    /// missing copies of referenced chunks, and plan the drops.
    pub(super) fn repair_plan(&mut self, me: NodeId) {
        if !self.reach(me, META) {
            return;
        }
        let ring = self.ring();
        let n = usize::from(ring.policy().copies);
        let ids: Vec<ChunkId> = match self.servers.get_mut(&me) {
            Some(s) => {
                s.known_epoch = s.known_epoch.max(ring.epoch());
                s.disk.ids()
            }
            None => return,
        };
        let mut pushes = Vec::new();
        let mut drops = Vec::new();
        for id in ids {
            let owners: Vec<NodeId> = ring.owners(&id, n).iter().map(|m| m.id).collect();
            let have: Vec<Option<bool>> = owners
                .iter()
                .map(|&o| {
                    if o != me && self.reach(me, o) {
                        Some(self.servers.get(&o).is_some_and(|s| s.disk.has(&id)))
                    } else {
                        None
                    }
                })
                .collect();
            let d = decide(me, &owners, &have);
            pushes.extend(d.push_to.into_iter().map(|t| (id, t)));
            if d.drop_local {
                drops.push((id, owners));
            }
        }
        if !pushes.is_empty() {
            let ids: Vec<ChunkId> = pushes.iter().map(|(id, _)| *id).collect();
            let states = if self.reach(me, META) {
                self.states(&ids)
            } else {
                Vec::new()
            };
            let referenced: BTreeSet<ChunkId> = ids
                .iter()
                .zip(states)
                .filter(|(_, s)| repair_may_copy(*s))
                .map(|(id, _)| *id)
                .collect();
            pushes.retain(|(id, _)| referenced.contains(id));
        }
        for (id, target) in pushes {
            self.push(me, id, target, "repair");
        }
        if !drops.is_empty() {
            let at_ns =
                self.clock(me) + self.rng.random_range(0..2 * self.cfg.repair_interval_ms) * MS;
            if let Some(s) = self.servers.get_mut(&me) {
                s.planned = Some(PlannedDrops {
                    epoch: ring.epoch(),
                    at_ns,
                    drops,
                });
            }
        }
    }

    /// Copies `me`'s copy of `id` to `target`; false if it could not.
    pub(super) fn push(&mut self, me: NodeId, id: ChunkId, target: NodeId, why: &str) -> bool {
        let Some(data) = self.servers.get_mut(&me).and_then(|s| s.disk.read(&id)) else {
            return false;
        };
        if !self.reach(me, target) {
            return false;
        }
        let now = self.clock(target);
        let stored = self
            .servers
            .get_mut(&target)
            .is_some_and(|t| t.disk.put(&data, now).is_ok());
        if stored {
            self.event(&format!("{why} push {id} {me}->{target}"));
        }
        stored
    }

    /// The second half of a repair pass: confirm with every owner (a
    /// re-hash, on the planned epoch), re-read the epoch, drop.
    pub(super) fn repair_drops(&mut self, me: NodeId) {
        let Some(plan) = self.servers.get_mut(&me).and_then(|s| s.planned.take()) else {
            return;
        };
        let mut confirmed: HashMap<(NodeId, ChunkId), bool> = HashMap::new();
        for (id, owners) in &plan.drops {
            for &o in owners {
                if !self.reach(me, o) {
                    continue;
                }
                if let Some(s) = self.servers.get_mut(&o) {
                    if s.known_epoch == plan.epoch {
                        confirmed.insert((o, *id), s.disk.verify(id));
                    }
                }
            }
        }
        if !self.reach(me, META) {
            return;
        }
        let epoch_now = self.ring().epoch();
        for (id, owners) in plan.drops {
            let answers: Vec<Option<bool>> = owners
                .iter()
                .map(|o| confirmed.get(&(*o, id)).copied())
                .collect();
            if !may_drop(me, &owners, &answers, plan.epoch, epoch_now) {
                continue;
            }
            self.check_drop(me, id);
            self.event(&format!("repair drop {id} on {me}"));
            if let Some(s) = self.servers.get_mut(&me) {
                s.disk.delete(&id);
            }
        }
    }

    /// One collector pass on `me`.
    pub(super) fn gc(&mut self, me: NodeId) {
        if !self.reach(me, META) {
            return;
        }
        let grace = self.grace();
        let now = self.clock(me);
        let cutoff = now - self.cfg.grace_ms * MS;
        let old: Vec<(ChunkId, i64)> = match self.servers.get(&me) {
            Some(s) => s.disk.stored_before(cutoff),
            None => return,
        };
        let ids: Vec<ChunkId> = old.iter().map(|(id, _)| *id).collect();
        let states = self.states(&ids);
        for ((id, stored_ns), state) in old.into_iter().zip(states) {
            let stored_for = Duration::from_nanos((now - stored_ns).max(0) as u64);
            if let Verdict::Delete(_) = gc_rule::decide(state, stored_for, self.now_ns, grace) {
                let deleted = self
                    .servers
                    .get_mut(&me)
                    .is_some_and(|s| s.disk.delete_if_idle(&id, cutoff));
                if deleted {
                    self.event(&format!("gc {id} on {me}"));
                }
            }
        }
    }

    /// A few queued async copies from `me`, as the replicator does.
    pub(super) fn replicate(&mut self, me: NodeId) {
        let now = self.clock(me);
        let (targets, blocked): (Vec<NodeId>, BTreeSet<NodeId>) = match self.servers.get(&me) {
            Some(s) if !s.queue.is_empty() => (
                s.queue.iter().map(|q| q.target).collect(),
                s.backoff
                    .iter()
                    .filter(|(_, (until, _))| *until > now)
                    .map(|(t, _)| *t)
                    .collect(),
            ),
            _ => return,
        };
        let picked = pick(&targets, |t| blocked.contains(t), 4);
        let meta = self.reach(me, META);
        let ring = self.ring();
        let mut done = BTreeSet::new();
        for i in picked {
            let Some(q) = self.servers.get(&me).map(|s| s.queue[i].clone()) else {
                return;
            };
            let state = meta.then(|| self.states(&[q.chunk])[0]);
            let in_ring = meta.then(|| ring.member(q.target).is_some());
            let age = Duration::from_nanos((now - q.queued_ns).max(0) as u64);
            let held = self.servers.get(&me).is_some_and(|s| s.disk.has(&q.chunk));
            match fate(state, age, self.grace(), in_ring, held) {
                Fate::Wait => {}
                Fate::Drop(_) => {
                    done.insert(i);
                }
                Fate::Push => {
                    if self.push(me, q.chunk, q.target, "async") {
                        done.insert(i);
                    } else if let Some(s) = self.servers.get_mut(&me) {
                        let delay = s
                            .backoff
                            .get(&q.target)
                            .map_or(500 * MS, |(_, d)| (d * 2).min(30_000 * MS));
                        s.backoff.insert(q.target, (now + delay, delay));
                    }
                }
            }
        }
        if let Some(s) = self.servers.get_mut(&me) {
            let mut i = 0;
            s.queue.retain(|_| {
                let keep = !done.contains(&i);
                i += 1;
                keep
            });
        }
    }

    /// The scrubber: re-hashes the next copy of its pass on `me` (a pass
    /// lists the store, then goes through the list; passes start at most
    /// every 10 s).
    pub(super) fn scrub_one(&mut self, me: NodeId) {
        let now = self.clock(me);
        let Some(s) = self.servers.get_mut(&me) else {
            return;
        };
        if s.scrub_pass.is_empty() && now >= s.next_scrub_pass_ns {
            s.scrub_pass = s.disk.ids();
            s.next_scrub_pass_ns = now + 10_000 * MS;
        }
        if let Some(id) = s.scrub_pass.pop() {
            s.disk.verify(&id);
        }
    }
}
