//! The durable queue of asynchronous copies, and the worker that pushes them.
//!
//! When a put names async copies, the primary records one entry per
//! (chunk, target) — a small file under `queue/`, fsynced with its
//! directory, while it stores the chunk — *before* acknowledging the put,
//! so an acknowledged chunk reaches every async owner even if this server
//! restarts meanwhile. The
//! worker pushes entries in the background with bounded concurrency, fairly
//! across targets, with per-target exponential back-off, and deletes each
//! once the target holds the chunk durably — or drops it once the target
//! left the ring or no file will reference the chunk
//! ([`crate::queue_plan`]).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cairn_net::meta_caller::MetaCaller;
use cairn_net::ConnPool;
use cairn_proto::meta_rpc::{ChunkState, ClusterQuery, ClusterReply, MAX_EXIST_QUERY};
use cairn_proto::ChunkId;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::peer::push_chunk;
use crate::queue_plan::{fate, pick, Fate};
use crate::store::{FileStore, StoreError};

/// Entries pushed at once.
const PUSH_CONCURRENCY: usize = 4;
/// Entries looked at per pass.
const PASS_LIMIT: usize = 1024;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Suffix of an entry still being written.
const TMP_SUFFIX: &str = ".tmp";
/// How often the replicator re-reads the ring (sooner when an entry names
/// a target it does not know).
const RING_REFRESH: Duration = Duration::from_secs(10);

/// The tag of a target in entry names: the same for every entry to it.
fn tag_of(target: &str) -> String {
    blake3::hash(target.as_bytes()).to_hex()[..16].to_string()
}

/// One pending copy, as listed: its chunk and a tag of its target (the
/// same for every entry to one target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    path: PathBuf,
    pub chunk: ChunkId,
    pub tag: String,
}

/// One pending copy, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    path: PathBuf,
    pub chunk: ChunkId,
    pub target: String,
    /// When it was queued (the entry file's time).
    pub queued_at: SystemTime,
}

/// Pending async copies as files under one directory.
#[derive(Clone)]
pub struct ReplicationQueue {
    dir: PathBuf,
    seq: Arc<AtomicU64>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::new(op, path, source)
}

impl ReplicationQueue {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let dir = root.join("queue");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        // Half-written entries of a crash were never promised to anyone.
        for e in fs::read_dir(&dir).map_err(io("list", &dir))?.flatten() {
            if e.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(ReplicationQueue {
            dir,
            seq: Arc::default(),
        })
    }

    /// Durably records that `chunk` must be copied to each of `targets`.
    pub fn enqueue(&self, chunk: &ChunkId, targets: &[String]) -> Result<(), StoreError> {
        if targets.is_empty() {
            return Ok(());
        }
        for target in targets {
            let tag = tag_of(target);
            let path = self.dir.join(format!("{}.{tag}", chunk.to_hex()));
            // Written aside and renamed into place: the worker never sees a
            // half-written entry.
            // Unique per call: the same chunk may be queued by concurrent puts.
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let tmp = path.with_file_name(format!("{}.{tag}.{seq}{TMP_SUFFIX}", chunk.to_hex()));
            let written = fs::File::create(&tmp)
                .map_err(io("create", &tmp))
                .and_then(|mut f| {
                    f.write_all(target.as_bytes()).map_err(io("write", &tmp))?;
                    f.sync_data().map_err(io("fsync", &tmp))
                })
                .and_then(|()| fs::rename(&tmp, &path).map_err(io("rename", &path)));
            if let Err(e) = written {
                // Out of space, most likely: leave nothing half-written.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync dir", &self.dir))
    }

    /// Every pending entry, by name only (nothing is read): cheap enough
    /// to list in full each pass, so that no entry waits behind others.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("list", &self.dir))? {
            let path = e.map_err(io("list", &self.dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(TMP_SUFFIX) {
                continue; // being written
            }
            let mut parts = name.split('.');
            let chunk = parts.next().and_then(|h| h.parse::<ChunkId>().ok());
            let tag = parts.next().filter(|t| !t.is_empty());
            let (Some(chunk), Some(tag)) = (chunk, tag) else {
                tracing::warn!(path = %path.display(), "ignoring a malformed queue entry");
                continue;
            };
            let tag = tag.to_string();
            out.push(Pending { path, chunk, tag });
        }
        Ok(out)
    }

    /// Reads a pending entry's target and when it was queued; None if it
    /// is gone or unreadable (left in place and logged).
    pub fn load(&self, p: &Pending) -> Option<QueueEntry> {
        let queued_at = fs::metadata(&p.path).and_then(|m| m.modified()).ok()?;
        match fs::read_to_string(&p.path) {
            Ok(target) if !target.is_empty() => Some(QueueEntry {
                path: p.path.clone(),
                chunk: p.chunk,
                target,
                queued_at,
            }),
            Ok(_) | Err(_) => {
                tracing::warn!(path = %p.path.display(), "unreadable queue entry left in place");
                None
            }
        }
    }

    /// Up to `limit` pending entries, read (unordered; for tests and tools).
    pub fn entries(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        Ok(self
            .pending()?
            .iter()
            .filter_map(|p| self.load(p))
            .take(limit)
            .collect())
    }

    /// Removes a delivered entry.
    pub fn done(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        match fs::remove_file(&entry.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &entry.path)(e)),
        }
    }

    /// How many copies are pending.
    pub fn depth(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|rd| rd.count() as u64)
            .unwrap_or(0)
    }
}

/// Pushes queued copies until cancelled.
pub struct AsyncReplicator {
    pub queue: ReplicationQueue,
    pub store: FileStore,
    pub pool: ConnPool,
    /// For the ring (which targets are still members) and chunk states.
    pub meta: Arc<MetaCaller>,
}

/// The replicator's view of the ring: member addresses, when read, and
/// the GC grace period that came with it.
struct RingView {
    addrs: HashSet<String>,
    read_at: SystemTime,
    grace: Duration,
}

impl AsyncReplicator {
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        // target tag -> (not before, current delay)
        let mut backoff: HashMap<String, (Instant, Duration)> = HashMap::new();
        let mut ring: Option<RingView> = None;
        let mut ring_wanted = true;
        loop {
            let stale = ring
                .as_ref()
                .is_none_or(|r| r.read_at.elapsed().unwrap_or_default() >= RING_REFRESH);
            if ring_wanted || stale {
                if let Some(fresh) = self.read_ring().await {
                    ring = Some(fresh);
                }
            }
            let pushed = self
                .pass(ring.as_ref(), &mut backoff, &mut ring_wanted)
                .await;
            let pause = if pushed == 0 {
                IDLE_POLL
            } else {
                Duration::ZERO
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over a fair share of the queue ([`pick`]); returns how
    /// many pushes it tried. Sets `ring_wanted` if some entry's target was
    /// not in a ring read after it was queued.
    async fn pass(
        &self,
        ring: Option<&RingView>,
        backoff: &mut HashMap<String, (Instant, Duration)>,
        ring_wanted: &mut bool,
    ) -> usize {
        let pending = match self.queue.pending() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading the replication queue");
                return 0;
            }
        };
        let now = Instant::now();
        let tags: Vec<&str> = pending.iter().map(|p| p.tag.as_str()).collect();
        let picked = pick(
            &tags,
            |t| backoff.get(*t).is_some_and(|(at, _)| *at > now),
            PASS_LIMIT,
        );
        let entries: Vec<QueueEntry> = picked
            .iter()
            .filter_map(|&i| self.queue.load(&pending[i]))
            .collect();
        if entries.is_empty() {
            return 0;
        }
        let states = self.states(&entries).await;
        *ring_wanted = false;
        let mut due = Vec::new();
        for entry in entries {
            let in_ring = ring.and_then(|r| {
                if r.addrs.contains(&entry.target) {
                    Some(true)
                } else if r.read_at > entry.queued_at {
                    Some(false)
                } else {
                    None
                }
            });
            if in_ring.is_none() {
                *ring_wanted = true;
            }
            let age = entry.queued_at.elapsed().unwrap_or_default();
            let grace = ring.map_or(Duration::ZERO, |r| r.grace);
            let state = states.as_ref().and_then(|s| s.get(&entry.chunk).copied());
            let stored_here = self.store.has(&entry.chunk);
            match fate(state, age, grace, in_ring, stored_here) {
                Fate::Push => due.push(entry),
                Fate::Wait => {}
                Fate::Drop(why) => {
                    tracing::debug!(chunk = %entry.chunk, target = %entry.target, why, "async copy dropped");
                    if let Err(e) = self.queue.done(&entry) {
                        tracing::error!(error = %e, "removing a queue entry");
                    }
                }
            }
        }
        let results: Vec<(QueueEntry, Result<(), String>)> = futures::stream::iter(due)
            .map(|e| async move {
                let r = self.push(&e).await;
                (e, r)
            })
            .buffer_unordered(PUSH_CONCURRENCY)
            .collect()
            .await;
        let tried = results.len();
        for (entry, result) in results {
            let tag = tag_of(&entry.target);
            match result {
                Ok(()) => {
                    backoff.remove(&tag);
                    if let Err(e) = self.queue.done(&entry) {
                        tracing::error!(error = %e, "removing a delivered queue entry");
                    }
                }
                Err(e) => {
                    // The target backs off as a whole: its other entries
                    // would fail the same way.
                    let delay = backoff
                        .get(&tag)
                        .map_or(FIRST_RETRY, |(_, d)| (*d * 2).min(MAX_RETRY));
                    tracing::debug!(chunk = %entry.chunk, target = %entry.target, error = %e, ?delay, "async copy failed; will retry");
                    backoff.insert(tag, (Instant::now() + delay, delay));
                }
            }
        }
        tried
    }

    /// The ring's member addresses, from metadata; None if it cannot be
    /// asked.
    async fn read_ring(&self) -> Option<RingView> {
        let read_at = SystemTime::now();
        match self.meta.ask(ClusterQuery::GetRing).await {
            Ok(ClusterReply::Ring(r)) => Some(RingView {
                addrs: r.members.iter().map(|m| m.addr.clone()).collect(),
                read_at,
                grace: Duration::from_millis(r.gc_grace_ms),
            }),
            other => {
                tracing::debug!(answer = ?other.err(), "ring unknown to the replicator");
                None
            }
        }
    }

    /// Metadata's state of each entry's chunk; None if it cannot be asked.
    async fn states(&self, entries: &[QueueEntry]) -> Option<HashMap<ChunkId, ChunkState>> {
        let mut ids: Vec<ChunkId> = entries.iter().map(|e| e.chunk).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = HashMap::new();
        for part in ids.chunks(MAX_EXIST_QUERY) {
            match self
                .meta
                .ask(ClusterQuery::ChunkStates { ids: part.to_vec() })
                .await
            {
                Ok(ClusterReply::ChunkStates { states, .. }) if states.len() == part.len() => {
                    out.extend(part.iter().copied().zip(states));
                }
                other => {
                    tracing::debug!(answer = ?other.err(), "chunk states unknown to the replicator");
                    return None;
                }
            }
        }
        Some(out)
    }

    async fn push(&self, entry: &QueueEntry) -> Result<(), String> {
        let store = self.store.clone();
        let id = entry.chunk;
        let data = tokio::task::spawn_blocking(move || store.get(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(data) = data else {
            // Nothing to copy (dropped or quarantined since): the entry is moot.
            return Ok(());
        };
        if !entry.chunk.matches(&data) {
            return Err(format!("local copy of {} is corrupt", entry.chunk));
        }
        push_chunk(&self.pool, &entry.target, None, entry.chunk, &data).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopen_and_are_removed_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let q = ReplicationQueue::open(dir.path()).unwrap();
        let id = ChunkId::of(b"x");
        q.enqueue(&id, &["127.0.0.1:1".into(), "127.0.0.1:2".into()])
            .unwrap();
        let q = ReplicationQueue::open(dir.path()).unwrap();
        let mut e = q.entries(10).unwrap();
        e.sort_by(|a, b| a.target.cmp(&b.target));
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].chunk, e[0].target.as_str()), (id, "127.0.0.1:1"));
        q.done(&e[0]).unwrap();
        assert_eq!(q.depth(), 1);
        assert_eq!(q.entries(10).unwrap()[0].target, "127.0.0.1:2");
    }

    #[test]
    fn entries_being_written_are_invisible_and_cleaned_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let q = ReplicationQueue::open(dir.path()).unwrap();
        let half = dir
            .path()
            .join("queue")
            .join(format!("{}.abcd{TMP_SUFFIX}", ChunkId::of(b"y").to_hex()));
        std::fs::write(&half, b"").unwrap();
        assert!(q.entries(10).unwrap().is_empty());
        ReplicationQueue::open(dir.path()).unwrap();
        assert!(!half.exists());
    }
}
