//! One simulated cluster and its run: the metadata state machine, the
//! chunkservers with their disks, queues and background passes, a client,
//! and a directed network that can drop or cut messages — all stepped by
//! one seeded scheduler, so a seed replays exactly.
//!
//! The decisions are the real ones: placement and write targets from
//! [`Ring`], repair from `repair_plan::{decide, may_drop}` and
//! `gc_rule::repair_may_copy`, collection from `gc_rule::decide`, the
//! client's commit window from `gc_rule::commit_in_time`, the async queue
//! from `queue_plan::{pick, fate}`, every metadata change applied by
//! [`apply_one`], and every disk call made by the real chunk
//! store. What is simulated is only what lies between them: disks, clocks
//! and messages.
//!
//! The parts of a run live beside this file: [`client`] (puts, commits,
//! removes), [`background`] (each server's loops), [`faults`] (what the
//! scheduler breaks) and [`checks`] (the invariants).

mod background;
mod checks;
mod client;
mod faults;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use cairn_metadata::apply::apply_one;
use cairn_metadata::command::{Command, CommandResult, RegistryChange};
use cairn_metadata::kv::{MemKv, Txn};
use cairn_metadata::namespace;
use cairn_proto::meta_rpc::ChunkState;
use cairn_proto::ring::Ring;
use cairn_proto::{ChunkId, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use self::checks::Violation;
use crate::disk::SimDisk;

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
    /// Longest metadata leader election: while one runs, metadata answers
    /// nobody, and the commits caught in it apply (in order, before
    /// anything else is answered, as a new Raft leader commits its
    /// predecessor's entries before it serves a read) or not when it ends.
    pub election_ms_max: i64,
    /// Print every event of the trace as it happens (`cairn-sim --seed S
    /// --events`), to follow a failing seed.
    pub print_events: bool,
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
            election_ms_max: 1_000,
            print_events: false,
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

/// What becomes of a commit caught in a leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlightFate {
    /// The old leader had not replicated it: it never applies.
    Dropped,
    /// It applies when the election ends, but the answer is lost.
    AppliedUnanswered,
    /// It applies when the election ends and the client hears so.
    Applied,
}

/// A commit sent to a leader that lost its office before answering.
#[derive(Clone, Debug)]
struct InFlight {
    commit: PendingCommit,
    /// When the old leader stamped it.
    proposed_ns: i64,
    fate: InFlightFate,
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
    /// Files the client knows it committed (and has not removed), with
    /// their chunks.
    live: BTreeMap<String, Vec<ChunkId>>,
    pending: Vec<PendingCommit>,
    /// Metadata is electing a leader until then.
    election_until_ns: i64,
    in_flight: Vec<InFlight>,
    chunk_seq: u64,
    faults: BTreeMap<&'static str, u64>,
    acked: u64,
    violations: Vec<Violation>,
    trace: blake3::Hasher,
    /// The ring as of the last registry change (rebuilt after each).
    ring: Option<Ring>,
}

/// The bytes of the client's `seq`-th new chunk (its id is their hash).
fn chunk_bytes(seq: u64) -> [u8; 8] {
    seq.to_le_bytes()
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
            election_until_ns: 0,
            in_flight: Vec::new(),
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
        if self.cfg.print_events {
            println!("{} {} {what}", self.step, self.now_ns);
        }
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
            Command::Registry(
                RegistryChange::Register { .. }
                    | RegistryChange::Remove { .. }
                    | RegistryChange::Drain { .. }
                    | RegistryChange::SetDown { .. }
                    | RegistryChange::SetReplication { .. }
            )
        ) {
            self.ring = None;
        }
        let mut t = Txn::new(&self.kv);
        let r = apply_one(&mut t, &cmd).expect("the memory store does not fail");
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
        match id {
            CLIENT => true,
            META => self.now_ns >= self.election_until_ns,
            _ => self.servers.get(&id).is_some_and(|s| s.up),
        }
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
        let r = self.apply(Command::Registry(RegistryChange::Register {
            id,
            addr: format!("s{id}"),
            zone: String::new(),
            capacity_bytes: 1 << 40,
        }));
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

    // ---- the schedule --------------------------------------------------

    fn advance(&mut self) {
        self.step += 1;
        self.now_ns += self.rng.random_range(10..200) * MS;
        // A new leader applies what it found in its log before it serves
        // anything: the commits caught in the election land before any
        // commit sent since (else a file's older version could overwrite
        // a newer one that was acknowledged).
        if self.is_up(META) && !self.in_flight.is_empty() {
            self.election_ends();
        }
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
}
