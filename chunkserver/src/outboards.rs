//! Outboard trees of recently range-read chunks, kept in memory (bounded in
//! bytes, oldest dropped first) so that random reads into a chunk derive
//! its tree once. A tree is computed from the chunk bytes and checked
//! against the chunk id on the way: a corrupt chunk yields no tree.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cairn_proto::ChunkId;

pub struct Outboards {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    trees: HashMap<ChunkId, Arc<Vec<u8>>>,
    order: VecDeque<ChunkId>,
    bytes: usize,
}

impl Outboards {
    pub fn new(capacity: usize) -> Self {
        Outboards {
            capacity,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached tree of chunk `id`, if any.
    pub fn cached(&self, id: &ChunkId) -> Option<Arc<Vec<u8>>> {
        self.state().trees.get(id).cloned()
    }

    /// The tree of chunk `id` whose bytes are `data`; `None` if the bytes
    /// do not hash to `id`.
    pub fn tree(&self, id: &ChunkId, data: &[u8]) -> Option<Arc<Vec<u8>>> {
        if let Some(t) = self.state().trees.get(id) {
            return Some(t.clone());
        }
        let (tree, got) = cairn_proto::chunk_slice::outboard(data);
        if got != *id {
            return None;
        }
        let tree = Arc::new(tree);
        let mut st = self.state();
        if st.trees.insert(*id, tree.clone()).is_none() {
            st.bytes += tree.len();
            st.order.push_back(*id);
        }
        while st.bytes > self.capacity {
            let Some(old) = st.order.pop_front() else {
                break;
            };
            if let Some(t) = st.trees.remove(&old) {
                st.bytes -= t.len();
            }
        }
        Some(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_are_checked_cached_and_bounded() {
        let cache = Outboards::new(100_000);
        let a = vec![1u8; 600_000];
        let id = ChunkId::of(&a);
        let t = cache.tree(&id, &a).expect("good chunk");
        assert!(Arc::ptr_eq(&t, &cache.tree(&id, &a).unwrap()), "cached");
        let mut bad = a.clone();
        bad[10] ^= 1;
        assert!(cache.tree(&ChunkId::of(b"x"), &bad).is_none());
        for n in 0..5u8 {
            let d = vec![n; 600_000];
            cache.tree(&ChunkId::of(&d), &d).unwrap();
        }
        assert!(cache.state().bytes <= 100_000);
    }
}
