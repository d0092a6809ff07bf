//! Verified chunks kept in memory for reads, bounded in bytes. Concurrent
//! readers of one chunk share a single fetch; the oldest chunks are dropped
//! first once the bound is passed. Chunks are immutable (named by their
//! hash), so a cached chunk never goes stale.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_proto::ChunkId;
use tokio::sync::OnceCell;

type Slot = Arc<OnceCell<Bytes>>;

pub struct ChunkCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    slots: HashMap<ChunkId, Slot>,
    /// Filled slots, oldest first, with their sizes.
    order: VecDeque<(ChunkId, usize)>,
    bytes: usize,
}

impl ChunkCache {
    pub fn new(capacity: usize) -> Self {
        ChunkCache {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only bookkeeping behind.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True if `id` is cached or being fetched.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.state().slots.contains_key(id)
    }

    /// Chunk `id` from the cache, or from `fetch` (once, however many
    /// callers ask at the same time). Readers share its memory: slices of
    /// it answer reads without a copy.
    pub async fn get<F, Fut, E>(&self, id: ChunkId, fetch: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let slot = self.state().slots.entry(id).or_default().clone();
        let mut filled_here = false;
        let got = slot
            .get_or_try_init(|| async {
                filled_here = true;
                fetch().await.map(Bytes::from)
            })
            .await;
        match got {
            Ok(data) => {
                if filled_here {
                    self.account(id, data.len());
                }
                Ok(data.clone())
            }
            Err(e) => {
                let mut st = self.state();
                if st.slots.get(&id).is_some_and(|s| s.get().is_none()) {
                    st.slots.remove(&id);
                }
                Err(e)
            }
        }
    }

    fn account(&self, id: ChunkId, len: usize) {
        let mut st = self.state();
        st.order.push_back((id, len));
        st.bytes += len;
        while st.bytes > self.capacity && st.order.len() > 1 {
            let Some((old, n)) = st.order.pop_front() else {
                break;
            };
            st.bytes -= n;
            st.slots.remove(&old);
        }
    }

    /// Bytes of chunk data held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn id(n: u8) -> ChunkId {
        ChunkId::of(&[n])
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_fetch_and_the_bound_holds() {
        let cache = Arc::new(ChunkCache::new(250));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(id(1), || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok::<_, ()>(vec![1u8; 100])
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().len(), 100);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        for n in 2..=4u8 {
            cache
                .get(id(n), || async move { Ok::<_, ()>(vec![n; 100]) })
                .await
                .unwrap();
        }
        assert!(cache.bytes() <= 250);
        assert!(!cache.contains(&id(1)), "oldest chunk evicted first");
        assert!(cache.contains(&id(4)));
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let cache = ChunkCache::new(1000);
        let r = cache
            .get(id(1), || async { Err::<Vec<u8>, _>("down") })
            .await;
        assert!(r.is_err());
        assert!(!cache.contains(&id(1)));
        let ok = cache
            .get(id(1), || async { Ok::<_, &str>(vec![7]) })
            .await
            .unwrap();
        assert_eq!(ok, vec![7]);
    }
}
