//! The nemesis: process faults on a real cluster, planned from a seed.
//!
//! [`Planner`] is pure: from a seed and which servers are faulted now, it
//! picks the next step — fault a healthy server (`kill -9` and keep it
//! down, `kill -9` and restart at once, or `SIGSTOP`), or heal a faulted
//! one (restart, `SIGCONT`). At most one metadata node and one chunkserver
//! are faulted at a time, so a three-node group keeps its majority and
//! puts keep their synchronous copies; everything else is left to chance.
//! [`apply`] carries a step out on a [`DevCluster`].

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::DevCluster;

/// What a faulted server suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// `kill -9`, restarted by a later heal.
    Kill,
    /// `kill -9` and restarted at once (a crash-restart).
    CrashRestart,
    /// `SIGSTOP`, continued by a later heal: to its peers, a server cut
    /// off in both directions whose connections then come back.
    Pause,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill -9",
            FaultKind::CrashRestart => "kill -9 + restart",
            FaultKind::Pause => "SIGSTOP/SIGCONT",
        }
    }
}

/// One step of the nemesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Fault { server: String, kind: FaultKind },
    Heal { server: String, kind: FaultKind },
}

/// Picks the nemesis' steps from a seed.
pub struct Planner {
    rng: StdRng,
    meta: Vec<String>,
    chunkservers: Vec<String>,
    /// Servers faulted now, with how.
    faulted: BTreeMap<String, FaultKind>,
}

impl Planner {
    pub fn new(seed: u64, meta: Vec<String>, chunkservers: Vec<String>) -> Self {
        Planner {
            rng: StdRng::seed_from_u64(seed),
            meta,
            chunkservers,
            faulted: BTreeMap::new(),
        }
    }

    /// How long to wait before the next step: 0.5 to 3 s.
    pub fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(500..3_000))
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let heal = !self.faulted.is_empty() && self.rng.random_bool(0.45);
        let meta_free = !self.faulted.keys().any(|s| self.meta.contains(s));
        let chunk_free = !self.faulted.keys().any(|s| self.chunkservers.contains(s));
        let mut pool: Vec<&String> = Vec::new();
        if meta_free && self.meta.len() >= 3 {
            pool.extend(&self.meta);
        }
        if chunk_free {
            pool.extend(&self.chunkservers);
        }
        if heal || pool.is_empty() {
            return self.heal_one();
        }
        let server = pool[self.rng.random_range(0..pool.len())].clone();
        let kind = match self.rng.random_range(0..3) {
            0 => FaultKind::Kill,
            1 => FaultKind::CrashRestart,
            _ => FaultKind::Pause,
        };
        if kind != FaultKind::CrashRestart {
            self.faulted.insert(server.clone(), kind);
        }
        Step::Fault { server, kind }
    }

    /// Heals one faulted server (if none is, faults nothing: a heal of no
    /// server is never planned, the caller only asks with one faulted).
    fn heal_one(&mut self) -> Step {
        let names: Vec<String> = self.faulted.keys().cloned().collect();
        let server = names[self.rng.random_range(0..names.len())].clone();
        let kind = self.faulted.remove(&server).expect("listed above");
        Step::Heal { server, kind }
    }

    /// Steps that heal every faulted server.
    pub fn heal_all(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.faulted)
            .into_iter()
            .map(|(server, kind)| Step::Heal { server, kind })
            .collect()
    }
}

/// Carries out `step` on `cluster`.
pub fn apply(cluster: &mut DevCluster, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Fault { server, kind } => match kind {
            FaultKind::Kill => cluster.kill9(server),
            FaultKind::CrashRestart => {
                cluster.kill9(server)?;
                cluster.restart_server(server)
            }
            FaultKind::Pause => cluster.pause(server),
        },
        Step::Heal { server, kind } => match kind {
            FaultKind::Kill | FaultKind::CrashRestart => cluster.restart_server(server),
            FaultKind::Pause => cluster.resume(server),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planner(seed: u64) -> Planner {
        let names = |p: &str, n: usize| (1..=n).map(|i| format!("{p}-{i}")).collect();
        Planner::new(seed, names("meta", 3), names("chunk", 4))
    }

    #[test]
    fn a_seed_replays_the_same_steps() {
        let (mut a, mut b) = (planner(7), planner(7));
        for _ in 0..200 {
            assert_eq!(a.next_step(), b.next_step());
        }
    }

    #[test]
    fn never_more_than_one_server_of_a_kind_is_down() {
        for seed in 0..50 {
            let mut p = planner(seed);
            let mut down: BTreeMap<String, FaultKind> = BTreeMap::new();
            for _ in 0..300 {
                match p.next_step() {
                    Step::Fault { server, kind } => {
                        if kind != FaultKind::CrashRestart {
                            assert!(down.insert(server, kind).is_none(), "faulted twice");
                        }
                    }
                    Step::Heal { server, kind } => {
                        assert_eq!(down.remove(&server), Some(kind), "healed what was not down")
                    }
                }
                let metas = down.keys().filter(|s| s.starts_with("meta")).count();
                let chunks = down.keys().filter(|s| s.starts_with("chunk")).count();
                assert!(metas <= 1 && chunks <= 1, "{down:?}");
            }
            for step in p.heal_all() {
                let Step::Heal { server, .. } = step else {
                    panic!("heal_all faulted")
                };
                down.remove(&server);
            }
            assert!(down.is_empty());
        }
    }

    #[test]
    fn a_single_metadata_node_is_never_faulted() {
        let mut p = Planner::new(3, vec!["meta-1".into()], vec!["chunk-1".into()]);
        for _ in 0..100 {
            if let Step::Fault { server, .. } = p.next_step() {
                assert_eq!(server, "chunk-1");
            }
        }
    }
}
