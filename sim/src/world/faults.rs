//! The faults the scheduler injects: crashes (a kill, a power cut, or a
//! death inside a disk call), restarts, link cuts, rot and EIO, full
//! disks, clock skew, joins, drains, removals and policy changes.

use cairn_metadata::command::{Command, RegistryChange};
use cairn_proto::meta_rpc::ReplicationPolicy;
use cairn_proto::{ChunkId, NodeId};
use rand::Rng;

use super::{Server, Violation, World, CLIENT, META, MS};
use crate::disk::CrashDamage;

impl World {
    pub(super) fn random_server(&mut self, filter: impl Fn(&Server) -> bool) -> Option<NodeId> {
        let ids: Vec<NodeId> = self
            .servers
            .iter()
            .filter(|(_, s)| filter(s))
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[self.rng.random_range(0..ids.len())])
    }

    /// Intact copies of `id` in the whole cluster.
    pub(super) fn intact_copies(&self, id: &ChunkId) -> usize {
        self.servers.values().filter(|s| s.disk.intact(id)).count()
    }

    pub(super) fn inject_fault(&mut self) {
        match self.rng.random_range(0..14) {
            0 | 1 => {
                if let Some(id) = self.random_server(|s| s.up) {
                    match self.rng.random_range(0..3) {
                        0 => {
                            self.crash(id, false);
                            self.fault("crash", format!("{id}"));
                        }
                        1 => {
                            self.crash(id, true);
                            self.fault("power_loss", format!("{id}"));
                        }
                        _ => {
                            // Dies inside whatever it does next on disk.
                            let calls = self.rng.random_range(0..12);
                            self.servers[&id].disk.die_after(calls);
                            self.fault("crash_mid_call", format!("{id} after {calls}"));
                        }
                    }
                }
            }
            2 | 3 => {
                if let Some(id) = self.random_server(|s| !s.up) {
                    if let Some(s) = self.servers.get_mut(&id) {
                        s.up = true;
                    }
                    self.fault("restart", format!("{id}"));
                }
            }
            4 => {
                let mut nodes: Vec<NodeId> = self.servers.keys().copied().collect();
                nodes.extend([CLIENT, META]);
                let a = nodes[self.rng.random_range(0..nodes.len())];
                let b = nodes[self.rng.random_range(0..nodes.len())];
                if a != b {
                    self.cut.insert((a, b));
                    let both = self.rng.random_bool(0.3);
                    if both {
                        self.cut.insert((b, a));
                    }
                    self.fault("cut", format!("{a}->{b} both={both}"));
                }
            }
            5 | 6 => {
                let cuts: Vec<(NodeId, NodeId)> = self.cut.iter().copied().collect();
                if !cuts.is_empty() {
                    let c = cuts[self.rng.random_range(0..cuts.len())];
                    self.cut.remove(&c);
                    self.fault("heal", format!("{}->{}", c.0, c.1));
                }
            }
            7 | 8 => {
                // A copy rots or turns unreadable — only where another
                // intact copy exists, so that a correct cluster can always
                // recover.
                let Some(id) = self.random_server(|s| !s.disk.stored().is_empty()) else {
                    return;
                };
                let ids = self.servers[&id].disk.stored();
                let chunk = ids[self.rng.random_range(0..ids.len())];
                if self.intact_copies(&chunk) < 2 {
                    return;
                }
                let eio = self.rng.random_bool(0.3);
                if let Some(s) = self.servers.get_mut(&id) {
                    if eio {
                        s.disk.break_sector(&chunk);
                    } else {
                        s.disk.rot(&chunk);
                    }
                }
                self.fault(if eio { "eio" } else { "rot" }, format!("{chunk} on {id}"));
            }
            9 => {
                if let Some(id) = self.random_server(|_| true) {
                    let full = self.rng.random_bool(0.5);
                    if let Some(s) = self.servers.get(&id) {
                        s.disk.set_full(full);
                    }
                    self.fault("disk_full", format!("{id} {full}"));
                }
            }
            10 => {
                if let Some(id) = self.random_server(|_| true) {
                    let max = self.cfg.grace_ms / 8;
                    let skew = self.rng.random_range(-max..=max) * MS;
                    if let Some(s) = self.servers.get_mut(&id) {
                        s.skew_ns = skew;
                    }
                    self.fault("clock_skew", format!("{id} {skew}"));
                }
            }
            11 => {
                if self.servers.len() < 9 {
                    let id = self.add_server();
                    self.fault("join", format!("{id}"));
                }
            }
            12 => {
                let ring = self.ring();
                let placed = ring.members().iter().filter(|m| !m.draining).count();
                let copies = usize::from(ring.policy().copies);
                let draining: Vec<NodeId> = ring
                    .members()
                    .iter()
                    .filter(|m| m.draining)
                    .map(|m| m.id)
                    .collect();
                // Drain one (keeping N + 1 placed), or retire a drained one.
                if let Some(&done) = draining.iter().find(|id| {
                    self.servers
                        .get(id)
                        .is_some_and(|s| s.disk.stored().is_empty())
                }) {
                    if self
                        .apply(Command::Registry(RegistryChange::Remove { id: done }))
                        .is_ok()
                    {
                        self.servers.remove(&done);
                        self.fault("remove", format!("{done}"));
                    }
                } else if placed > copies + 1 {
                    if let Some(id) = self.random_server(|s| s.up) {
                        if ring.member(id).is_some_and(|m| !m.draining) {
                            let _ = self.apply(Command::Registry(RegistryChange::Drain {
                                id,
                                drain: true,
                            }));
                            self.fault("drain", format!("{id}"));
                        }
                    }
                }
            }
            _ => {
                let policies = [(3, 2), (3, 3), (2, 2), (3, 1)];
                let (copies, sync_copies) = policies[self.rng.random_range(0..policies.len())];
                let placed = self.ring().members().iter().filter(|m| !m.draining).count();
                if placed >= usize::from(copies) {
                    let _ = self.apply(Command::Registry(RegistryChange::SetReplication {
                        policy: ReplicationPolicy {
                            copies,
                            sync_copies,
                        },
                    }));
                    self.fault("set_replication", format!("{copies}/{sync_copies}"));
                }
            }
        }
    }

    /// Server `id` goes down: its process state goes; the queue (durable
    /// on the real server) stays; the disk keeps what it synced, and with
    /// `power_lost` loses or tears the rest. The crash must not take what
    /// the store acknowledged.
    pub(super) fn crash(&mut self, id: NodeId, power_lost: bool) {
        let Some(s) = self.servers.get_mut(&id) else {
            return;
        };
        s.up = false;
        s.planned = None;
        s.scrub_pass.clear();
        s.backoff.clear();
        s.known_epoch = 0;
        let damage = s.disk.crash(power_lost, &mut self.rng);
        for d in damage {
            self.violations.push(match d {
                CrashDamage::Lost(chunk) => Violation::CrashLost {
                    step: self.step,
                    server: id,
                    chunk,
                },
                CrashDamage::Torn(chunk) => Violation::Torn {
                    step: self.step,
                    server: id,
                    chunk,
                },
            });
        }
    }

    /// Servers whose process died inside a disk call go down, half of them
    /// losing power too.
    pub(super) fn reap_the_dead(&mut self) {
        let dead: Vec<NodeId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.disk.has_died())
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            let power_lost = self.rng.random_bool(0.5);
            self.crash(id, power_lost);
            self.event(&format!("{id} died mid-call, power lost: {power_lost}"));
        }
    }
}
