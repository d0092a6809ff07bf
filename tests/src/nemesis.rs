//! The nemesis: process faults on a real cluster, planned from a seed.
//!
//! [`Planner`] is pure: from a seed and which servers are faulted now, it
//! picks the next step — fault a healthy server (`kill -9` and keep it
//! down, `kill -9` and restart at once, or `SIGSTOP`), cut a link
//! (client↔chunkserver, chunkserver↔chunkserver or chunkserver↔meta, one
//! way or both), or heal a fault (restart, `SIGCONT`, mend the link). At
//! most one metadata node and one chunkserver are faulted at a time, so a
//! three-node group keeps its majority and puts keep their synchronous
//! copies, and at most one link is cut; everything else is left to chance.
//! [`apply`] carries a step out on a [`DevCluster`] whose servers are
//! behind relays ([`crate::links`]).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::links::{Links, Peer};
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

/// A link cut: what `from` sends `to` is dropped (with `both_ways`, the
/// reverse too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkCut {
    pub from: Peer,
    pub to: Peer,
    pub both_ways: bool,
}

impl LinkCut {
    /// The kind of link and direction, such as `cut client→chunkserver`
    /// or `cut chunkserver↔meta`.
    pub fn kind(&self) -> String {
        let class = |p: &Peer| match p {
            Peer::Clients => (0, "client"),
            Peer::Server(n) if n.starts_with("meta") => (2, "meta"),
            Peer::Server(_) => (1, "chunkserver"),
        };
        let (mut a, mut b) = (class(&self.from), class(&self.to));
        if self.both_ways && a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let arrow = if self.both_ways { "↔" } else { "→" };
        format!("cut {}{arrow}{}", a.1, b.1)
    }
}

/// One step of the nemesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Fault { server: String, kind: FaultKind },
    Heal { server: String, kind: FaultKind },
    Cut(LinkCut),
    Mend(LinkCut),
}

/// Picks the nemesis' steps from a seed.
pub struct Planner {
    rng: StdRng,
    meta: Vec<String>,
    chunkservers: Vec<String>,
    /// Servers faulted now, with how.
    faulted: BTreeMap<String, FaultKind>,
    /// Whether links are cut too (the servers are behind relays).
    cuts_links: bool,
    /// The link cut now.
    cut: Option<LinkCut>,
}

impl Planner {
    pub fn new(seed: u64, meta: Vec<String>, chunkservers: Vec<String>) -> Self {
        Planner {
            rng: StdRng::seed_from_u64(seed),
            meta,
            chunkservers,
            faulted: BTreeMap::new(),
            cuts_links: false,
            cut: None,
        }
    }

    /// Plans link cuts as well as process faults.
    pub fn cutting_links(mut self) -> Self {
        self.cuts_links = true;
        self
    }

    /// How long to wait before the next step: 0.5 to 3 s.
    pub fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(500..3_000))
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let healable = !self.faulted.is_empty() || self.cut.is_some();
        let heal = healable && self.rng.random_bool(0.45);
        let meta_free = !self.faulted.keys().any(|s| self.meta.contains(s));
        let chunk_free = !self.faulted.keys().any(|s| self.chunkservers.contains(s));
        let mut pool: Vec<&String> = Vec::new();
        if meta_free && self.meta.len() >= 3 {
            pool.extend(&self.meta);
        }
        if chunk_free {
            pool.extend(&self.chunkservers);
        }
        let can_cut = self.cuts_links && self.cut.is_none() && !self.chunkservers.is_empty();
        if heal || (pool.is_empty() && !can_cut) {
            return self.heal_one();
        }
        if can_cut && (pool.is_empty() || self.rng.random_bool(0.35)) {
            let cut = self.pick_link();
            self.cut = Some(cut.clone());
            return Step::Cut(cut);
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

    /// A link to cut: client↔chunkserver, chunkserver↔chunkserver or
    /// chunkserver↔meta, either way round, one way or both.
    fn pick_link(&mut self) -> LinkCut {
        let chunk = |p: &mut Self| {
            let i = p.rng.random_range(0..p.chunkservers.len());
            Peer::Server(p.chunkservers[i].clone())
        };
        let mut classes = vec![0];
        if self.chunkservers.len() >= 2 {
            classes.push(1);
        }
        if !self.meta.is_empty() {
            classes.push(2);
        }
        let a = chunk(self);
        let b = match classes[self.rng.random_range(0..classes.len())] {
            0 => Peer::Clients,
            1 => loop {
                let b = chunk(self);
                if b != a {
                    break b;
                }
            },
            _ => Peer::Server(self.meta[self.rng.random_range(0..self.meta.len())].clone()),
        };
        let (from, to) = if self.rng.random_bool(0.5) {
            (a, b)
        } else {
            (b, a)
        };
        LinkCut {
            from,
            to,
            both_ways: self.rng.random_bool(0.5),
        }
    }

    /// Heals one fault: a faulted server or the cut link (the caller only
    /// asks with one in place).
    fn heal_one(&mut self) -> Step {
        let names: Vec<String> = self.faulted.keys().cloned().collect();
        let choices = names.len() + usize::from(self.cut.is_some());
        let i = self.rng.random_range(0..choices);
        if i == names.len() {
            return Step::Mend(self.cut.take().expect("counted above"));
        }
        let server = names[i].clone();
        let kind = self.faulted.remove(&server).expect("listed above");
        Step::Heal { server, kind }
    }

    /// Steps that heal every fault.
    pub fn heal_all(&mut self) -> Vec<Step> {
        let mut steps: Vec<Step> = std::mem::take(&mut self.faulted)
            .into_iter()
            .map(|(server, kind)| Step::Heal { server, kind })
            .collect();
        steps.extend(self.cut.take().map(Step::Mend));
        steps
    }
}

/// Carries out `step` on `cluster`, whose links `links` cuts.
pub fn apply(cluster: &mut DevCluster, links: &Links, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Cut(c) => {
            links.cut(&c.from, &c.to, c.both_ways);
            Ok(())
        }
        Step::Mend(c) => {
            links.mend(&c.from, &c.to);
            Ok(())
        }
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
        Planner::new(seed, names("meta", 3), names("chunk", 4)).cutting_links()
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
                    Step::Cut(_) | Step::Mend(_) => {}
                }
                let metas = down.keys().filter(|s| s.starts_with("meta")).count();
                let chunks = down.keys().filter(|s| s.starts_with("chunk")).count();
                assert!(metas <= 1 && chunks <= 1, "{down:?}");
            }
            for step in p.heal_all() {
                match step {
                    Step::Heal { server, .. } => {
                        down.remove(&server);
                    }
                    Step::Mend(_) => {}
                    other => panic!("heal_all faulted: {other:?}"),
                }
            }
            assert!(down.is_empty());
        }
    }

    #[test]
    fn one_link_at_a_time_is_cut_and_every_kind_of_link_is() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let mut p = planner(seed);
            let mut cut: Option<LinkCut> = None;
            for _ in 0..300 {
                match p.next_step() {
                    Step::Cut(c) => {
                        assert!(cut.is_none(), "a second link cut");
                        assert_ne!(c.from, c.to);
                        assert!(c.from != Peer::Clients || c.to != Peer::Clients, "{c:?}");
                        kinds.insert(c.kind());
                        cut = Some(c);
                    }
                    Step::Mend(c) => assert_eq!(cut.take(), Some(c), "mended what was not cut"),
                    _ => {}
                }
            }
            let mended: Vec<Step> = p
                .heal_all()
                .into_iter()
                .filter(|s| matches!(s, Step::Mend(_)))
                .collect();
            assert_eq!(mended.len(), usize::from(cut.is_some()));
        }
        for want in [
            "cut client→chunkserver",
            "cut chunkserver→client",
            "cut client↔chunkserver",
            "cut chunkserver→chunkserver",
            "cut chunkserver↔chunkserver",
            "cut chunkserver→meta",
            "cut meta→chunkserver",
            "cut chunkserver↔meta",
        ] {
            assert!(kinds.contains(want), "never planned {want}: {kinds:?}");
        }
    }

    #[test]
    fn without_relays_no_link_is_cut() {
        let names = |p: &str, n: usize| (1..=n).map(|i| format!("{p}-{i}")).collect();
        let mut p = Planner::new(5, names("meta", 3), names("chunk", 4));
        for _ in 0..300 {
            assert!(!matches!(p.next_step(), Step::Cut(_) | Step::Mend(_)));
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
