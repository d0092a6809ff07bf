//! The write path: chunk and hash the stream, store each new chunk on its
//! write targets (retrying with a failed server moved back), then commit
//! the file's extents in one metadata command.

use std::sync::Arc;

use bytes::Bytes;
use std::time::{Duration, Instant};

use cairn_proto::gc_rule::commit_in_time;
use cairn_proto::meta_rpc::{
    ClusterQuery, ClusterReply, Extent, FileKind, InodeAttr, NsRead, NsWrite, Owner,
};
use cairn_proto::trace;
use cairn_proto::{ChunkId, ErrorCode};
use futures::stream::{StreamExt, TryStreamExt};
use tokio::io::AsyncRead;

use super::{parent_and_name, refused, Client, Inner};

use crate::chunk_io::upload;
use crate::chunker::chunker;
use crate::error::ClientError;

/// Chunks at least this big are first checked for existence (dedup): below
/// it, uploading costs about what asking does, and the server stores a
/// chunk it already has at no extra cost.
const DEDUP_QUERY_MIN: usize = 64 << 10;
/// How long `put` waits for chunkservers to appear in a new cluster.
const RING_WAIT: Duration = Duration::from_secs(5);
/// Tries to store one chunk before the put fails: each try after a failure
/// re-plans with the server that failed moved to the back.
const UPLOAD_ATTEMPTS: usize = 3;

impl Client {
    /// Stores everything `reader` yields as the file at `path` (created or
    /// replaced). Returns the file's attributes once it is committed.
    pub async fn put<R: AsyncRead + Unpin>(
        &self,
        path: &str,
        reader: R,
    ) -> Result<InodeAttr, ClientError> {
        // One request id for every call the put makes (see cairn_proto::trace).
        trace::operation(self.put_traced(path, reader, None::<fn() -> _>)).await
    }

    /// [`Client::put`] whose commit also makes the file's extended
    /// attributes exactly what `describe` returns, in the same metadata
    /// command (`NsWrite::CommitObject`): readers see the old file with its
    /// old attributes or the new one with the new. `describe` runs once
    /// `reader` is exhausted and every chunk is stored, before the commit;
    /// an error from it (say, a checksum that does not match what was
    /// read) commits nothing.
    pub async fn put_object<R, D>(
        &self,
        path: &str,
        reader: R,
        describe: D,
    ) -> Result<InodeAttr, ClientError>
    where
        R: AsyncRead + Unpin,
        D: FnOnce() -> Result<Vec<(String, Vec<u8>)>, ClientError>,
    {
        trace::operation(self.put_traced(path, reader, Some(describe))).await
    }

    async fn put_traced<R, D>(
        &self,
        path: &str,
        reader: R,
        describe: Option<D>,
    ) -> Result<InodeAttr, ClientError>
    where
        R: AsyncRead + Unpin,
        D: FnOnce() -> Result<Vec<(String, Vec<u8>)>, ClientError>,
    {
        let (parent, name) = parent_and_name(path)?;
        // Fail before uploading anything if the target cannot be committed.
        let p = self.dir(&parent).await?;
        if let Ok(existing) = self
            .attr_of(NsRead::Lookup {
                parent: p.ino,
                name: name.clone(),
            })
            .await
        {
            if existing.kind == FileKind::Dir {
                return Err(refused(
                    ErrorCode::IsADirectory,
                    format!("{path}: is a directory"),
                ));
            }
        }
        self.wait_for_ring().await?;
        let started = Instant::now();
        let mut cdc = chunker(reader);
        let extents: Vec<Extent> = cdc
            .as_stream()
            .map(|chunk| {
                let inner = self.inner.clone();
                async move {
                    let chunk = chunk.map_err(|e| match e {
                        fastcdc::v2020::Error::IoError(io) => ClientError::Io(io),
                        other => ClientError::Io(std::io::Error::other(other.to_string())),
                    })?;
                    let (offset, len) = (chunk.offset, chunk.length as u64);
                    let store = inner.store_chunk(Bytes::from(chunk.data));
                    let id = tokio::spawn(trace::scope(trace::current(), store))
                        .await
                        .map_err(ClientError::Task)??;
                    Ok::<_, ClientError>(Extent {
                        offset,
                        len,
                        chunk: id,
                        chunk_offset: 0,
                    })
                }
            })
            .buffered(self.inner.config.upload_concurrency)
            .try_collect()
            .await?;
        let size = extents.last().map_or(0, |e| e.offset + e.len);
        let owner = Owner {
            mode: 0o644,
            uid: self.inner.uid,
            gid: self.inner.gid,
        };
        let commit = match describe {
            None => NsWrite::CommitFile {
                parent: p.ino,
                name,
                extents,
                size,
                owner,
            },
            Some(describe) => NsWrite::CommitObject {
                parent: p.ino,
                name,
                extents,
                size,
                owner,
                xattrs: describe()?,
            },
        };
        self.commit_in_time(started, commit).await
    }

    /// Commits the file at `path` (created or replaced) as `extents` of
    /// chunks already stored — another file's, as [`super::Inodes::content`]
    /// listed them, begun at `listed` — with exactly `xattrs` as its
    /// extended attributes: a copy that moves no bytes. The commit
    /// references the chunks anew; it must land within half the garbage
    /// grace period of `listed`, as a put's must of its first upload, since
    /// the source may lose them meanwhile.
    pub async fn commit_extents(
        &self,
        path: &str,
        extents: Vec<Extent>,
        size: u64,
        xattrs: Vec<(String, Vec<u8>)>,
        listed: Instant,
    ) -> Result<InodeAttr, ClientError> {
        let (parent, name) = parent_and_name(path)?;
        let p = self.dir(&parent).await?;
        let owner = Owner {
            mode: 0o644,
            uid: self.inner.uid,
            gid: self.inner.gid,
        };
        let commit = NsWrite::CommitObject {
            parent: p.ino,
            name,
            extents,
            size,
            owner,
            xattrs,
        };
        trace::operation(self.commit_in_time(listed, commit)).await
    }

    /// Commits `commit`, naming chunks whose storing began `started`
    /// (before the first upload or dedup check), only while that is less
    /// than half the cluster's GC grace period ago: later, the collector
    /// may already have taken them (`cairn_proto::gc_rule`). Checked just
    /// before the commit is sent, and the commit's retries (elections,
    /// unreachable nodes) stop when that time is up.
    pub(super) async fn commit_in_time(
        &self,
        started: Instant,
        commit: NsWrite,
    ) -> Result<InodeAttr, ClientError> {
        before_commit().await?;
        let grace = self.inner.ring.gc_grace();
        let elapsed = started.elapsed();
        if !commit_in_time(elapsed, grace) {
            return Err(ClientError::CommitTooLate { elapsed, grace });
        }
        if grace.is_zero() {
            return self.write_attr(commit).await;
        }
        let left = (grace / 2).saturating_sub(elapsed);
        match tokio::time::timeout(left, self.write_attr(commit)).await {
            Ok(committed) => committed,
            Err(_) => Err(ClientError::Unreachable(format!(
                "the commit did not finish within half the garbage-collection grace period \
                 ({grace:?}) of the write's first chunk; it may or may not have been applied"
            ))),
        }
    }

    pub(super) async fn wait_for_ring(&self) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + RING_WAIT;
        while self.inner.ring.is_empty() {
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::NoChunkservers);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.refresh_ring().await?;
        }
        Ok(())
    }
}

impl Inner {
    /// Under the cached ring: how many synchronous copies chunk `id` needs
    /// — S, or every server when the ring holds fewer (a small cluster is a
    /// configuration, a down server is not) — and the up servers to write
    /// it to, likely culprits of recent failures last.
    fn write_plan(&self, id: &ChunkId) -> (usize, Vec<cairn_proto::meta_rpc::RingMember>) {
        let policy = self.ring.policy();
        let copies = usize::from(policy.copies);
        let sync = usize::from(policy.sync_copies)
            .min(self.ring.owners(id, copies).len())
            .max(1);
        (
            sync,
            self.suspects.order(self.ring.write_targets(id, copies)),
        )
    }

    /// Why only `writable` servers take a write that needs `needed`: full
    /// disks (a "no space" error) or servers down.
    fn too_few_writable(&self, writable: usize, needed: usize) -> ClientError {
        let (up, full) = self.ring.fullness();
        if full > 0 {
            ClientError::NoSpace {
                detail: format!(
                    "{full} of {up} chunkservers up are full and {writable} have room; a write \
                     needs {needed} synchronous copies (remove files or add servers)"
                ),
            }
        } else {
            ClientError::TooFewServers {
                up: writable,
                needed,
            }
        }
    }

    /// Hashes a chunk and makes sure its primary owner stores it.
    pub(super) async fn store_chunk(self: Arc<Self>, data: Bytes) -> Result<ChunkId, ClientError> {
        let (id, data) = tokio::task::spawn_blocking(move || (ChunkId::of(&data), data)).await?;
        if data.len() >= DEDUP_QUERY_MIN {
            if let ClusterReply::Exist(v) = self
                .meta
                .ask(ClusterQuery::ChunksExist { ids: vec![id] })
                .await?
            {
                if v.first() == Some(&true) {
                    return Ok(id);
                }
            }
        }
        let mut last = None;
        for _ in 0..UPLOAD_ATTEMPTS {
            self.refresh_ring_if_stale().await;
            let mut plan = self.write_plan(&id);
            if plan.1.len() < plan.0 && self.refresh_ring_anyway().await {
                // The servers this ring shows down may be back.
                plan = self.write_plan(&id);
            }
            let (sync, targets) = plan;
            if targets.len() < sync {
                return Err(self.too_few_writable(targets.len(), sync));
            }
            match upload(&self.pool, &self.ring, &targets, sync, id, &data).await {
                Ok(()) => return Ok(id),
                Err(f) => {
                    tracing::debug!(chunk = %id, error = %f.error, "upload attempt failed");
                    // Try again with the likely culprits moved to the back:
                    // the primary if it could not be reached, else its backups;
                    // after "no space", any of them (the ring may say which
                    // is full by now).
                    if matches!(f.error, ClientError::NoSpace { .. }) {
                        for t in targets.iter().take(sync) {
                            self.suspects.mark(&t.addr);
                        }
                        self.refresh_ring_anyway().await;
                    } else if f.primary_answered {
                        for b in targets.iter().take(sync).skip(1) {
                            self.suspects.mark(&b.addr);
                        }
                    } else if let Some(p) = targets.first() {
                        self.suspects.mark(&p.addr);
                    }
                    last = Some(f.error);
                }
            }
        }
        Err(last.unwrap_or(ClientError::NoChunkservers))
    }
}

/// Race tests (`--features failpoints`): `client-put-before-commit` stops
/// a write between its last chunk and its commit — `return(MS)` holds it
/// MS milliseconds, `return` abandons it there (as a client that crashed
/// would).
async fn before_commit() -> Result<(), ClientError> {
    #[cfg(feature = "failpoints")]
    if let Some(arg) = fail::eval("client-put-before-commit", |arg| arg) {
        match arg.and_then(|ms| ms.parse::<u64>().ok()) {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => {
                return Err(ClientError::Io(std::io::Error::other(
                    "failpoint client-put-before-commit: the write was abandoned before its commit",
                )))
            }
        }
    }
    Ok(())
}
