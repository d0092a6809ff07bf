//! The placement ring: consistent hashing with virtual nodes. Pure logic.
//!
//! Each chunkserver owns `weight` points on a 64-bit ring, at
//! `blake3(id, i)`. A chunk sits at its id's first 8 bytes; its owners are
//! the first distinct servers found walking clockwise from there, taking
//! servers in zones not yet used before servers in zones already used.
//! Owner 0 is the primary. Client, chunkservers and metadata all compute
//! this, so it must be deterministic and identical everywhere.

use crate::cluster_map::{RingMember, RingState};
use crate::{ChunkId, NodeId};

/// Virtual nodes for a server of `capacity_bytes`: one per GiB, between 32
/// and 1024, so small test disks still spread evenly.
pub fn weight_for_capacity(capacity_bytes: u64) -> u32 {
    (capacity_bytes >> 30).clamp(32, 1024) as u32
}

/// A ring ready for lookups.
#[derive(Clone, Debug)]
pub struct Ring {
    state: RingState,
    /// (point, index into `state.members`), sorted by point. Draining
    /// members have no points.
    points: Vec<(u64, usize)>,
    /// Members with points.
    placed: usize,
}

impl Ring {
    pub fn new(state: RingState) -> Self {
        let mut points = Vec::new();
        let mut placed = 0;
        for (idx, m) in state.members.iter().enumerate() {
            if m.draining {
                continue;
            }
            placed += 1;
            for i in 0..m.weight {
                points.push((vnode_point(m.id, i), idx));
            }
        }
        // Ties (astronomically rare) break by member index: still deterministic.
        points.sort_unstable();
        Ring {
            state,
            points,
            placed,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    pub fn state(&self) -> &RingState {
        &self.state
    }

    /// Every registered server, draining ones included.
    pub fn members(&self) -> &[RingMember] {
        &self.state.members
    }

    pub fn policy(&self) -> crate::cluster_map::ReplicationPolicy {
        self.state.policy
    }

    pub fn member(&self, id: NodeId) -> Option<&RingMember> {
        self.state.members.iter().find(|m| m.id == id)
    }

    /// The first `n` owners of `chunk` (fewer if the ring has fewer servers),
    /// primary first. Down servers stay owners; draining ones never are.
    pub fn owners(&self, chunk: &ChunkId, n: usize) -> Vec<&RingMember> {
        self.pick(chunk, n, |_| true)
    }

    /// Where a new copy of `chunk` is written: the first `n` owners that are
    /// neither down nor full, chosen by the same rule as [`Ring::owners`]
    /// among the servers that take writes. Equal to `owners` while every
    /// server is up and has room.
    pub fn write_targets(&self, chunk: &ChunkId, n: usize) -> Vec<&RingMember> {
        self.pick(chunk, n, RingMember::takes_writes)
    }

    /// Every placed server in `chunk`'s owner order, then the draining ones:
    /// where a reader looks once the owners have failed it.
    pub fn all_in_order(&self, chunk: &ChunkId) -> Vec<&RingMember> {
        let mut all = self.owners(chunk, self.placed);
        all.extend(self.state.members.iter().filter(|m| m.draining));
        all
    }

    /// The first `n` distinct servers accepted by `usable`, walking clockwise
    /// from the chunk's point: servers in zones not yet used first, then the
    /// rest, each group in clockwise order.
    fn pick(
        &self,
        chunk: &ChunkId,
        n: usize,
        usable: impl Fn(&RingMember) -> bool,
    ) -> Vec<&RingMember> {
        let members = &self.state.members;
        if n == 0 || self.points.is_empty() {
            return Vec::new();
        }
        let start = self
            .points
            .partition_point(|&(p, _)| p < chunk.ring_point());
        // Distinct usable servers in clockwise order.
        let mut order: Vec<usize> = Vec::with_capacity(self.placed);
        let mut seen: Vec<usize> = Vec::with_capacity(self.placed);
        for k in 0..self.points.len() {
            let (_, idx) = self.points[(start + k) % self.points.len()];
            if !seen.contains(&idx) {
                seen.push(idx);
                if usable(&members[idx]) {
                    order.push(idx);
                }
                if seen.len() == self.placed {
                    break;
                }
            }
        }
        let n = n.min(order.len());
        let mut picked: Vec<usize> = Vec::with_capacity(n);
        let mut zones: Vec<&str> = Vec::new();
        for &idx in &order {
            if picked.len() == n {
                break;
            }
            let zone = members[idx].zone.as_str();
            if !zones.contains(&zone) {
                zones.push(zone);
                picked.push(idx);
            }
        }
        for &idx in &order {
            if picked.len() == n {
                break;
            }
            if !picked.contains(&idx) {
                picked.push(idx);
            }
        }
        picked.into_iter().map(|i| &members[i]).collect()
    }
}

fn vnode_point(id: NodeId, i: u32) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&id.to_le_bytes());
    h.update(&i.to_le_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn member(id: NodeId, zone: &str) -> RingMember {
        RingMember {
            id,
            addr: format!("127.0.0.1:{}", 7000 + id),
            zone: zone.into(),
            weight: 128,
            down: false,
            draining: false,
            full: false,
        }
    }

    fn ring(ids: &[NodeId]) -> Ring {
        Ring::new(RingState {
            policy: Default::default(),
            gc_grace_ms: 0,
            epoch: 1,
            members: ids.iter().map(|&i| member(i, &format!("z{i}"))).collect(),
        })
    }

    fn random_ids(n: usize, seed: u64) -> Vec<ChunkId> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| ChunkId(rng.random())).collect()
    }

    #[test]
    fn empty_ring_has_no_owners() {
        assert!(ring(&[]).owners(&ChunkId::of(b"x"), 3).is_empty());
    }

    #[test]
    fn owners_are_distinct_and_bounded() {
        let r = ring(&[1, 2, 3, 4, 5]);
        for id in random_ids(1000, 1) {
            let o = r.owners(&id, 3);
            assert_eq!(o.len(), 3);
            assert!(o[0].id != o[1].id && o[1].id != o[2].id && o[0].id != o[2].id);
        }
        assert_eq!(r.owners(&ChunkId::of(b"x"), 9).len(), 5);
    }

    #[test]
    fn zones_are_spread_when_possible() {
        let r = Ring::new(RingState {
            policy: Default::default(),
            gc_grace_ms: 0,
            epoch: 1,
            members: vec![
                member(1, "a"),
                member(2, "a"),
                member(3, "b"),
                member(4, "b"),
            ],
        });
        for id in random_ids(500, 2) {
            let o = r.owners(&id, 2);
            assert_ne!(o[0].zone, o[1].zone, "two owners in one zone");
        }
    }

    #[test]
    fn adding_a_server_moves_about_its_share() {
        let ids = random_ids(100_000, 3);
        let before = ring(&[1, 2, 3, 4]);
        let after = ring(&[1, 2, 3, 4, 5]);
        let moved = ids
            .iter()
            .filter(|c| before.owners(c, 1)[0].id != after.owners(c, 1)[0].id)
            .count();
        let frac = moved as f64 / ids.len() as f64;
        // Ideal is 1/5 = 0.2; virtual nodes keep it close.
        assert!((0.14..0.26).contains(&frac), "moved fraction {frac}");
        // Every moved chunk moved to the new server.
        for c in &ids {
            let (b, a) = (before.owners(c, 1)[0].id, after.owners(c, 1)[0].id);
            assert!(a == b || a == 5, "chunk moved between old servers {b}->{a}");
        }
    }

    #[test]
    fn removing_a_server_moves_only_its_chunks() {
        let ids = random_ids(100_000, 4);
        let before = ring(&[1, 2, 3, 4, 5]);
        let after = ring(&[1, 2, 3, 4]);
        for c in &ids {
            let b = before.owners(c, 1)[0].id;
            if b != 5 {
                assert_eq!(after.owners(c, 1)[0].id, b);
            }
        }
    }

    #[test]
    fn load_is_roughly_even() {
        let r = ring(&[1, 2, 3]);
        let mut counts = [0usize; 3];
        for c in random_ids(30_000, 5) {
            counts[(r.owners(&c, 1)[0].id - 1) as usize] += 1;
        }
        for n in counts {
            assert!((7_000..13_000).contains(&n), "uneven: {counts:?}");
        }
    }

    #[test]
    fn down_servers_stay_owners_but_are_not_written() {
        let mut r = ring(&[1, 2, 3, 4, 5]);
        let ids = random_ids(2000, 6);
        let before: Vec<Vec<NodeId>> = ids
            .iter()
            .map(|c| r.owners(c, 3).iter().map(|m| m.id).collect())
            .collect();
        let mut state = r.state().clone();
        state.members[2].down = true; // server 3
        r = Ring::new(state);
        for (c, b) in ids.iter().zip(&before) {
            let owners: Vec<NodeId> = r.owners(c, 3).iter().map(|m| m.id).collect();
            assert_eq!(&owners, b, "a down server changed ownership");
            let targets: Vec<NodeId> = r.write_targets(c, 3).iter().map(|m| m.id).collect();
            assert_eq!(targets.len(), 3);
            assert!(!targets.contains(&3));
            // Every owner that is up is still a target.
            for o in b.iter().filter(|&&o| o != 3) {
                assert!(targets.contains(o));
            }
        }
    }

    #[test]
    fn full_servers_stay_owners_but_are_not_written() {
        let r = ring(&[1, 2, 3, 4, 5]);
        let ids = random_ids(2000, 7);
        let mut state = r.state().clone();
        state.members[0].full = true; // server 1
        let full = Ring::new(state);
        for c in &ids {
            let owners = |r: &Ring| r.owners(c, 3).iter().map(|m| m.id).collect::<Vec<_>>();
            assert_eq!(owners(&full), owners(&r), "a full server changed ownership");
            let targets: Vec<NodeId> = full.write_targets(c, 3).iter().map(|m| m.id).collect();
            assert_eq!(targets.len(), 3);
            assert!(!targets.contains(&1), "a full server was written to");
        }
    }

    #[test]
    fn draining_servers_own_nothing_but_are_read_last() {
        let mut state = ring(&[1, 2, 3, 4]).state().clone();
        state.members[0].draining = true; // server 1
        let r = Ring::new(state);
        for c in random_ids(2000, 7) {
            let o = r.owners(&c, 3);
            assert_eq!(o.len(), 3);
            assert!(o.iter().all(|m| m.id != 1));
            let all = r.all_in_order(&c);
            assert_eq!(all.len(), 4);
            assert_eq!(all[3].id, 1);
        }
        // Only draining servers: nobody owns anything.
        let mut state = ring(&[1]).state().clone();
        state.members[0].draining = true;
        assert!(Ring::new(state).owners(&ChunkId::of(b"x"), 3).is_empty());
    }

    proptest! {
        #[test]
        fn owners_distinct_for_any_membership(
            ids in proptest::collection::btree_set(1u64..50, 1..8),
            chunk in any::<[u8; 32]>(),
            n in 1usize..6,
        ) {
            let ids: Vec<_> = ids.into_iter().collect();
            let r = ring(&ids);
            let o = r.owners(&ChunkId(chunk), n);
            prop_assert_eq!(o.len(), n.min(ids.len()));
            let mut seen: Vec<_> = o.iter().map(|m| m.id).collect();
            seen.sort_unstable();
            seen.dedup();
            prop_assert_eq!(seen.len(), o.len());
        }
    }
}
