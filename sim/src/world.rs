//! One simulated cluster and its run: the metadata state machine, the
//! chunkservers with their disks, queues and background passes, a client,
//! and a directed network that can drop or cut messages — all stepped by
//! one seeded scheduler, so a seed replays exactly.
//!
//! The decisions are the real ones: placement and write targets from
//! [`Ring`], repair from [`decide`] / [`may_drop`] / [`repair_may_copy`],
//! collection from [`gc_rule::decide`], the client's commit window from
//! [`commit_in_time`], the async queue from [`pick`] / [`fate`], and every
//! metadata change applied by [`namespace::apply_one`]. What is simulated
//! is only what lies between them: disks, clocks and messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use cairn_chunkserver::queue_plan::{fate, pick, Fate};
use cairn_chunkserver::repair_plan::{decide, may_drop};
use cairn_metadata::command::{Command, CommandResult};
use cairn_metadata::kv::{MemKv, Txn};
use cairn_metadata::namespace;
use cairn_proto::gc_rule::{self, commit_in_time, repair_may_copy, Verdict};
use cairn_proto::meta_rpc::{ChunkState, Extent, Owner, ReplicationPolicy};
use cairn_proto::ring::Ring;
use cairn_proto::{ChunkId, InodeId, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::disk::{CrashDamage, SimDisk};

/// The client and metadata as network endpoints (chunkservers are 1..).
const CLIENT: NodeId = 0;
const META: NodeId = u64::MAX;
const MS: i64 = 1_000_000;

/// How a run is shaped. Times are simulated.
#[derive(Clone, Debug)]
pub struct Config {
    /// Steps with clients and faults.
    pub fault_steps: u32,
    /// Simulated time, after the faults stop, for the cluster to converge.
    pub quiet_ms: i64,
    pub grace_ms: i64,
    pub gc_interval_ms: i64,
    pub repair_interval_ms: i64,
    /// Chunkservers at the start.
    pub servers: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fault_steps: 1_500,
            quiet_ms: 90_000,
            grace_ms: 4_000,
            gc_interval_ms: 3_000,
            repair_interval_ms: 5_000,
            servers: 5,
        }
    }
}

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

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub steps: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Files acknowledged (committed) by the client.
    pub acked: u64,
    pub violations: Vec<Violation>,
    /// A hash of every event in order: the same seed gives the same hash.
    pub trace: String,
}

/// A queued async copy.
#[derive(Clone, Debug)]
struct Queued {
    chunk: ChunkId,
    target: NodeId,
    queued_ns: i64,
}

/// Drops planned by a repair pass, carried out later (a pass takes time,
/// and the ring may move meanwhile).
#[derive(Clone, Debug)]
struct PlannedDrops {
    epoch: u64,
    at_ns: i64,
    drops: Vec<(ChunkId, Vec<NodeId>)>,
}

struct Server {
    disk: SimDisk,
    up: bool,
    skew_ns: i64,
    known_epoch: u64,
    queue: Vec<Queued>,
    /// target -> (not before, current delay), by this server's clock.
    backoff: HashMap<NodeId, (i64, i64)>,
    next_repair_ns: i64,
    next_gc_ns: i64,
    planned: Option<PlannedDrops>,
    /// What the scrubber's pass has still to re-hash.
    scrub_pass: Vec<ChunkId>,
    next_scrub_pass_ns: i64,
}

#[derive(Clone, Debug)]
struct PendingCommit {
    name: String,
    chunks: Vec<ChunkId>,
    started_ns: i64,
    at_ns: i64,
}

struct World {
    rng: StdRng,
    cfg: Config,
    now_ns: i64,
    step: u64,
    kv: MemKv,
    servers: BTreeMap<NodeId, Server>,
    next_id: NodeId,
    /// Directed links that deliver nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages lost at random (per mille), while faults run.
    drop_per_mille: u32,
    live: BTreeMap<String, Vec<ChunkId>>,
    pending: Vec<PendingCommit>,
    chunk_seq: u64,
    faults: BTreeMap<&'static str, u64>,
    acked: u64,
    violations: Vec<Violation>,
    trace: blake3::Hasher,
    /// The ring as of the last registry change (rebuilt after each).
    ring: Option<Ring>,
}

/// Runs one seed.
pub fn run(seed: u64, cfg: &Config) -> Outcome {
    let mut w = World::new(seed, cfg.clone());
    for _ in 0..cfg.fault_steps {
        w.fault_step();
        if w.violations.len() > 20 {
            break;
        }
    }
    w.quiet();
    w.final_checks();
    Outcome {
        seed,
        steps: w.step,
        faults: w.faults,
        acked: w.acked,
        violations: w.violations,
        trace: w.trace.finalize().to_hex().to_string(),
    }
}

impl World {
    fn new(seed: u64, cfg: Config) -> Self {
        let mut w = World {
            rng: StdRng::seed_from_u64(seed),
            now_ns: 1_000_000 * MS,
            step: 0,
            kv: MemKv::default(),
            servers: BTreeMap::new(),
            next_id: 1,
            cut: BTreeSet::new(),
            drop_per_mille: 0,
            live: BTreeMap::new(),
            pending: Vec::new(),
            chunk_seq: 0,
            faults: BTreeMap::new(),
            acked: 0,
            violations: Vec::new(),
            trace: blake3::Hasher::new(),
            ring: None,
            cfg,
        };
        for _ in 0..w.cfg.servers {
            w.add_server();
        }
        w
    }

    fn event(&mut self, what: &str) {
        self.trace
            .update(format!("{} {} {what}\n", self.step, self.now_ns).as_bytes());
    }

    fn fault(&mut self, kind: &'static str, detail: String) {
        *self.faults.entry(kind).or_default() += 1;
        self.event(&format!("fault {kind} {detail}"));
    }

    fn apply(&mut self, cmd: Command) -> CommandResult {
        if matches!(
            cmd,
            Command::RegisterChunkServer { .. }
                | Command::RemoveChunkServer { .. }
                | Command::DrainChunkServer { .. }
                | Command::SetChunkServerDown { .. }
                | Command::SetReplication { .. }
        ) {
            self.ring = None;
        }
        let mut t = Txn::new(&self.kv);
        let r = namespace::apply_one(&mut t, &cmd).expect("the memory store does not fail");
        let writes = t.into_writes();
        self.kv.commit(writes);
        r
    }

    fn ring(&mut self) -> Ring {
        self.ring
            .get_or_insert_with(|| {
                Ring::new(namespace::ring(&self.kv).expect("the memory store does not fail"))
            })
            .clone()
    }

    fn states(&self, ids: &[ChunkId]) -> Vec<ChunkState> {
        namespace::chunk_states(&self.kv, ids).expect("the memory store does not fail")
    }

    fn grace(&self) -> Duration {
        Duration::from_millis(self.cfg.grace_ms as u64)
    }

    fn clock(&self, id: NodeId) -> i64 {
        self.now_ns + self.servers.get(&id).map_or(0, |s| s.skew_ns)
    }

    fn is_up(&self, id: NodeId) -> bool {
        id == CLIENT || id == META || self.servers.get(&id).is_some_and(|s| s.up)
    }

    /// Whether a message from `a` to `b` (and its answer) gets through.
    fn reach(&mut self, a: NodeId, b: NodeId) -> bool {
        if !self.is_up(a)
            || !self.is_up(b)
            || self.cut.contains(&(a, b))
            || self.cut.contains(&(b, a))
        {
            // A cut either way loses the request or its answer.
            return false;
        }
        self.drop_per_mille == 0 || self.rng.random_range(0..1000) >= self.drop_per_mille
    }

    fn add_server(&mut self) -> NodeId {
        let id = self.next_id;
        self.next_id += 1;
        let r = self.apply(Command::RegisterChunkServer {
            id,
            addr: format!("s{id}"),
            zone: String::new(),
            capacity_bytes: 1 << 40,
        });
        debug_assert!(r.is_ok());
        let phase = self.rng.random_range(0..self.cfg.repair_interval_ms) * MS;
        let gc_phase = self.rng.random_range(0..self.cfg.gc_interval_ms) * MS;
        self.servers.insert(
            id,
            Server {
                disk: SimDisk::default(),
                up: true,
                skew_ns: 0,
                known_epoch: 0,
                queue: Vec::new(),
                backoff: HashMap::new(),
                next_repair_ns: self.now_ns + phase,
                next_gc_ns: self.now_ns + gc_phase,
                planned: None,
                scrub_pass: Vec::new(),
                next_scrub_pass_ns: 0,
            },
        );
        id
    }

    // ---- the client ----------------------------------------------------

    /// Stores a new chunk as the client does: primary and sync backups
    /// durably, async copies queued on the primary.
    fn upload(&mut self, data: &[u8]) -> bool {
        let id = ChunkId::of(data);
        let ring = self.ring();
        let policy = ring.policy();
        let (n, s) = (usize::from(policy.copies), usize::from(policy.sync_copies));
        let targets: Vec<NodeId> = ring.write_targets(&id, n).iter().map(|m| m.id).collect();
        if targets.len() < s || !self.reach(CLIENT, targets[0]) {
            return false;
        }
        let primary = targets[0];
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
        true
    }

    fn put(&mut self) {
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
            let data = self.chunk_seq.to_le_bytes();
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

    fn commit(&mut self, p: PendingCommit) {
        let elapsed = Duration::from_nanos((self.now_ns - p.started_ns).max(0) as u64);
        if !commit_in_time(elapsed, self.grace()) || !self.reach(CLIENT, META) {
            self.event(&format!("commit {} given up", p.name));
            return;
        }
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
        let r = self.apply(Command::CommitFile {
            parent: InodeId::ROOT,
            name: p.name.clone(),
            extents,
            size: p.chunks.len() as u64 * 64,
            owner: Owner {
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            now_ns: self.now_ns,
        });
        if r.is_ok() {
            self.acked += 1;
            self.event(&format!("commit {} acked", p.name));
            self.live.insert(p.name, p.chunks);
        }
    }

    fn remove(&mut self) {
        let names: Vec<String> = self.live.keys().cloned().collect();
        if names.is_empty() || !self.reach(CLIENT, META) {
            return;
        }
        let name = names[self.rng.random_range(0..names.len())].clone();
        let r = self.apply(Command::Unlink {
            parent: InodeId::ROOT,
            name: name.clone(),
            now_ns: self.now_ns,
        });
        if r.is_ok() {
            self.event(&format!("remove {name}"));
            self.live.remove(&name);
        }
    }

    // ---- the servers' background work ----------------------------------

    fn background(&mut self) {
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
    fn repair_plan(&mut self, me: NodeId) {
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
    fn push(&mut self, me: NodeId, id: ChunkId, target: NodeId, why: &str) -> bool {
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
    fn repair_drops(&mut self, me: NodeId) {
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

    /// Invariant: a repair drop leaves every current owner with an intact
    /// copy.
    fn check_drop(&mut self, me: NodeId, id: ChunkId) {
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

    /// One collector pass on `me`.
    fn gc(&mut self, me: NodeId) {
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
    fn replicate(&mut self, me: NodeId) {
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
            match fate(state, age, self.grace(), in_ring) {
                Fate::Wait => {}
                Fate::Drop(_) => {
                    done.insert(i);
                }
                Fate::Push => {
                    let held = self.servers.get(&me).is_some_and(|s| s.disk.has(&q.chunk));
                    if !held || self.push(me, q.chunk, q.target, "async") {
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
    fn scrub_one(&mut self, me: NodeId) {
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

    // ---- faults --------------------------------------------------------

    fn random_server(&mut self, filter: impl Fn(&Server) -> bool) -> Option<NodeId> {
        let ids: Vec<NodeId> = self
            .servers
            .iter()
            .filter(|(_, s)| filter(s))
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[self.rng.random_range(0..ids.len())])
    }

    /// Intact copies of `id` in the whole cluster.
    fn intact_copies(&self, id: &ChunkId) -> usize {
        self.servers.values().filter(|s| s.disk.intact(id)).count()
    }

    fn inject_fault(&mut self) {
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
                    if self.apply(Command::RemoveChunkServer { id: done }).is_ok() {
                        self.servers.remove(&done);
                        self.fault("remove", format!("{done}"));
                    }
                } else if placed > copies + 1 {
                    if let Some(id) = self.random_server(|s| s.up) {
                        if ring.member(id).is_some_and(|m| !m.draining) {
                            let _ = self.apply(Command::DrainChunkServer { id, drain: true });
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
                    let _ = self.apply(Command::SetReplication {
                        policy: ReplicationPolicy {
                            copies,
                            sync_copies,
                        },
                    });
                    self.fault("set_replication", format!("{copies}/{sync_copies}"));
                }
            }
        }
    }

    /// Server `id` goes down: its process state goes; the queue (durable
    /// on the real server) stays; the disk keeps what it synced, and with
    /// `power_lost` loses or tears the rest. The crash must not take what
    /// the store acknowledged.
    fn crash(&mut self, id: NodeId, power_lost: bool) {
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
    fn reap_the_dead(&mut self) {
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

    // ---- the schedule --------------------------------------------------

    fn advance(&mut self) {
        self.step += 1;
        self.now_ns += self.rng.random_range(10..200) * MS;
        let due: Vec<PendingCommit>;
        (due, self.pending) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.at_ns <= self.now_ns);
        for p in due {
            self.commit(p);
        }
    }

    fn fault_step(&mut self) {
        self.advance();
        self.drop_per_mille = 20;
        match self.rng.random_range(0..10) {
            0..=3 => self.put(),
            4 => self.remove(),
            5 => self.inject_fault(),
            _ => {}
        }
        if self.rng.random_range(0..50) == 0 {
            if let Some(id) = self.random_server(|s| s.up) {
                self.scrub_one(id);
            }
        }
        self.background();
        self.reap_the_dead();
        self.check_durability();
    }

    /// Faults stop: every server back, links healed, disks with room,
    /// clocks agreeing; then the cluster runs with no clients.
    fn quiet(&mut self) {
        self.event("quiet");
        self.reap_the_dead();
        self.cut.clear();
        self.drop_per_mille = 0;
        for s in self.servers.values_mut() {
            s.disk.disarm();
            s.up = true;
            s.disk.set_full(false);
            s.skew_ns = 0;
        }
        let end = self.now_ns + self.cfg.quiet_ms * MS;
        while self.now_ns < end {
            self.advance();
            let ids: Vec<NodeId> = self.servers.keys().copied().collect();
            for id in ids {
                // The scrubber gets round to every copy in this time.
                for _ in 0..4 {
                    self.scrub_one(id);
                }
            }
            self.background();
            self.check_durability();
        }
    }

    /// Invariant: every acknowledged file's chunks have an intact copy.
    fn check_durability(&mut self) {
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
    fn final_checks(&mut self) {
        let ring = self.ring();
        let n = usize::from(ring.policy().copies);
        let referenced: BTreeSet<ChunkId> = self.live.values().flatten().copied().collect();
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
