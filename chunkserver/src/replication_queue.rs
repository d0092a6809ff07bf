//! The durable queue of asynchronous copies, and the worker that pushes them.
//!
//! When a put names async copies, the primary records one entry per
//! (chunk, target) — a small file under `queue/`, fsynced with its
//! directory — *before* acknowledging the put, so an acknowledged chunk
//! reaches every async owner even if this server restarts meanwhile. The
//! worker pushes entries in the background with bounded concurrency and
//! per-entry exponential back-off, and deletes each once the target holds
//! the chunk durably.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_proto::net::ConnPool;
use cairn_proto::ChunkId;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::peer::push_chunk;
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

/// One pending copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    path: PathBuf,
    pub chunk: ChunkId,
    pub target: String,
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
            let tag = blake3::hash(target.as_bytes()).to_hex();
            let path = self.dir.join(format!("{}.{}", chunk.to_hex(), &tag[..16]));
            // Written aside and renamed into place: the worker never sees a
            // half-written entry.
            // Unique per call: the same chunk may be queued by concurrent puts.
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let tmp = path.with_file_name(format!(
                "{}.{}.{seq}{TMP_SUFFIX}",
                chunk.to_hex(),
                &tag[..16]
            ));
            let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(target.as_bytes()).map_err(io("write", &tmp))?;
            f.sync_data().map_err(io("fsync", &tmp))?;
            fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync dir", &self.dir))
    }

    /// Up to `limit` pending entries (unordered).
    pub fn entries(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("list", &self.dir))? {
            if out.len() >= limit {
                break;
            }
            let path = e.map_err(io("list", &self.dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(TMP_SUFFIX) {
                continue; // being written
            }
            let Some(chunk) = name
                .split('.')
                .next()
                .and_then(|h| h.parse::<ChunkId>().ok())
            else {
                tracing::warn!(path = %path.display(), "ignoring a malformed queue entry");
                continue;
            };
            let target = match fs::read_to_string(&path) {
                Ok(t) if !t.is_empty() => t,
                Ok(_) | Err(_) => {
                    tracing::warn!(path = %path.display(), "unreadable queue entry left in place");
                    continue;
                }
            };
            out.push(QueueEntry {
                path,
                chunk,
                target,
            });
        }
        Ok(out)
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
}

impl AsyncReplicator {
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        // path -> (not before, current delay)
        let mut backoff: HashMap<PathBuf, (Instant, Duration)> = HashMap::new();
        loop {
            let now = Instant::now();
            let entries = match self.queue.entries(PASS_LIMIT) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "reading the replication queue");
                    Vec::new()
                }
            };
            backoff.retain(|p, _| entries.iter().any(|e| &e.path == p));
            let due: Vec<QueueEntry> = entries
                .into_iter()
                .filter(|e| backoff.get(&e.path).is_none_or(|(at, _)| *at <= now))
                .collect();
            let results: Vec<(QueueEntry, Result<(), String>)> = futures::stream::iter(due)
                .map(|e| {
                    let this = self.clone();
                    async move {
                        let r = this.push(&e).await;
                        (e, r)
                    }
                })
                .buffer_unordered(PUSH_CONCURRENCY)
                .collect()
                .await;
            let pushed = results.len();
            for (entry, result) in results {
                match result {
                    Ok(()) => {
                        backoff.remove(&entry.path);
                        if let Err(e) = self.queue.done(&entry) {
                            tracing::error!(error = %e, "removing a delivered queue entry");
                        }
                    }
                    Err(e) => {
                        let delay = backoff
                            .get(&entry.path)
                            .map_or(FIRST_RETRY, |(_, d)| (*d * 2).min(MAX_RETRY));
                        tracing::debug!(chunk = %entry.chunk, target = %entry.target, error = %e, ?delay, "async copy failed; will retry");
                        backoff.insert(entry.path.clone(), (Instant::now() + delay, delay));
                    }
                }
            }
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
        push_chunk(&self.pool, &entry.target, entry.chunk, &data).await
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
