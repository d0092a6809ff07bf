//! The path-based file API: `put`, `get`, `get_range`, `list`, `stat`,
//! `mkdir`, `remove`, `rename`. The write path is in `client/write.rs`,
//! the read path in `client/read.rs`.
//!
//! Data never passes through the metadata service: `put` chunks and hashes
//! the stream, uploads new chunks to their owners with bounded concurrency,
//! then commits the file's extents in one metadata command, so readers see
//! the old file or the new one, never a mix. `get` fetches extents, then
//! chunks in parallel (bounded), verifies each, and writes them in order.
//! Memory stays bounded by the concurrency settings, whatever the file size.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_net::meta_caller::{wrong_reply, MetaCallError, MetaCaller};
use cairn_net::{client_endpoint, ConnPool};
use cairn_proto::meta_rpc::{
    AdminRequest, AttrChange, ClusterQuery, ClusterReply, DirEntry, DirEntryPlus, FileKind,
    InodeAttr, MetaGroup, MetaRequest, NsRead, NsReadReply, NsWrite, NsWriteReply, Owner,
    RenameMode,
};
use cairn_proto::path::split_path;
use cairn_proto::{ChunkId, ErrorCode, InodeId, RpcError};
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::AsyncWrite;

use crate::chunk_io::Suspects;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::placement::RingCache;

mod admin;
mod gc;
mod inodes;
mod own_changes;
mod reserved;
pub use gc::ServerGc;
pub use inodes::{DirPlusPage, FileContent, Inodes};
pub use own_changes::ChangeWatch;
use own_changes::OwnChanges;
mod read;
mod write;

/// Extents fetched per metadata round trip while reading.
const EXTENT_PAGE: u32 = 1024;
/// After a failed ring refresh, how long the stale ring is used as is.
const RING_RETRY: Duration = Duration::from_secs(2);
/// Shortest time between two fetches of the ring that no newer epoch
/// asked for ([`Inner::refresh_ring_anyway`]).
const FORCED_REFRESH_EVERY: Duration = Duration::from_millis(500);

/// A connection to one Cairn cluster. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    meta: MetaCaller,
    pool: ConnPool,
    ring: RingCache,
    /// Held while fetching a newer ring, so concurrent chunks fetch it
    /// once; holds when the last fetch failed, so a metadata outage does
    /// not cost every chunk a fetch.
    ring_refresh: tokio::sync::Mutex<Option<Instant>>,
    /// When the ring was last fetched without a newer epoch reported
    /// ([`Inner::refresh_ring_anyway`]).
    forced_refresh: std::sync::Mutex<Option<Instant>>,
    suspects: Suspects,
    /// What this client knows of its own changes to the namespace.
    changes: OwnChanges,
    /// Inode numbers set aside for files created ahead of metadata.
    inodes: reserved::InodePool,
    config: ClientConfig,
    uid: u32,
    gid: u32,
}

/// A reply of the right group but not the kind the request asks for.
fn unexpected(r: impl std::fmt::Debug) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {r:?}"))
}

fn refused(code: ErrorCode, msg: impl Into<String>) -> ClientError {
    ClientError::Rpc(RpcError::new(code, msg))
}

/// Splits `path` into its parent's components and its last name.
fn parent_and_name(path: &str) -> Result<(String, String), ClientError> {
    let mut parts = split_path(path)?;
    let Some(name) = parts.pop() else {
        return Err(refused(
            ErrorCode::InvalidRequest,
            "the root directory has no parent",
        ));
    };
    Ok((parts.join("/"), name.to_string()))
}

impl Client {
    /// Connects to the cluster and fetches its placement ring. Fails within
    /// a few seconds if no metadata node answers.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let tls = config
            .tls
            .load()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let pool = ConnPool::new(client_endpoint(&tls)?);
        let (uid, gid) = std::fs::metadata("/proc/self")
            .map(|m| (m.uid(), m.gid()))
            .unwrap_or((0, 0));
        let client = Client {
            inner: Arc::new(Inner {
                meta: MetaCaller::new(pool.clone(), config.meta.clone())
                    .with_follower_reads(config.follower_reads),
                pool,
                ring: RingCache::default(),
                ring_refresh: tokio::sync::Mutex::new(None),
                forced_refresh: std::sync::Mutex::new(None),
                suspects: Suspects::default(),
                changes: OwnChanges::default(),
                inodes: reserved::InodePool::default(),
                config,
                uid,
                gid,
            }),
        };
        client.refresh_ring().await?;
        Ok(client)
    }

    /// Reads the namespace.
    async fn read(&self, r: NsRead) -> Result<NsReadReply, ClientError> {
        Ok(self.inner.meta.ask(r).await?)
    }

    /// The attributes a lookup, `GetAttr` or `ResolvePath` answers.
    async fn attr_of(&self, r: NsRead) -> Result<InodeAttr, ClientError> {
        match self.read(r).await? {
            NsReadReply::Attr(a) => Ok(a),
            r => Err(unexpected(r)),
        }
    }

    /// Changes the namespace, keeping what this client knows of its own
    /// changes up to date (see `own_changes`).
    async fn write(&self, w: NsWrite) -> Result<NsWriteReply, ClientError> {
        let sent = self.inner.changes.sending(&w);
        let req = MetaRequest::NsWrite(w);
        let r = self.inner.meta.call(&req).await;
        let MetaRequest::NsWrite(w) = &req else {
            return Err(ClientError::Protocol(
                "a write became another request".into(),
            ));
        };
        let r = r.and_then(|answer| {
            let got = answer.group_name();
            NsWrite::reply(answer).ok_or_else(|| MetaCallError::Rpc(wrong_reply(&req, got)))
        });
        Ok(self.inner.changes.answered(w, sent, r)?)
    }

    /// A write that answers the attributes of the inode it made or changed.
    async fn write_attr(&self, w: NsWrite) -> Result<InodeAttr, ClientError> {
        match self.write(w).await? {
            NsWriteReply::Done { attr: Some(a), .. } => Ok(a),
            r => Err(unexpected(r)),
        }
    }

    /// A write whose answer is only that it was applied.
    async fn write_ok(&self, w: NsWrite) -> Result<(), ClientError> {
        match self.write(w).await? {
            NsWriteReply::Done { .. } => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    async fn cluster(&self, q: ClusterQuery) -> Result<ClusterReply, ClientError> {
        Ok(self.inner.meta.ask(q).await?)
    }

    async fn admin(&self, a: AdminRequest) -> Result<(), ClientError> {
        Ok(self.inner.meta.ask(a).await?)
    }

    async fn refresh_ring(&self) -> Result<(), ClientError> {
        self.inner.load_ring().await
    }

    /// The owners of chunk `id` under the cached ring, primary first.
    pub fn owners(&self, id: &ChunkId) -> Vec<cairn_proto::meta_rpc::RingMember> {
        let copies = usize::from(self.inner.ring.policy().copies);
        self.inner.ring.owners(id, copies)
    }

    /// The placement ring's current epoch as this client knows it.
    pub fn ring_epoch(&self) -> u64 {
        self.inner.ring.epoch()
    }

    /// Changes the attributes of the file or directory at `path` (chmod,
    /// chown, truncate, mtime); returns the new attributes.
    pub async fn set_attr(&self, path: &str, change: AttrChange) -> Result<InodeAttr, ClientError> {
        let ino = self.stat(path).await?.ino;
        self.write_attr(NsWrite::SetAttr { ino, change }).await
    }

    /// Attributes of the file or directory at `path`.
    pub async fn stat(&self, path: &str) -> Result<InodeAttr, ClientError> {
        self.attr_of(NsRead::ResolvePath {
            path: path.to_string(),
        })
        .await
    }

    async fn dir(&self, path: &str) -> Result<InodeAttr, ClientError> {
        let a = self.stat(path).await?;
        if a.kind != FileKind::Dir {
            return Err(refused(
                ErrorCode::NotADirectory,
                format!("{path}: not a directory"),
            ));
        }
        Ok(a)
    }

    /// Every entry of the directory at `path`, in name order.
    pub async fn list(&self, path: &str) -> Result<Vec<DirEntry>, ClientError> {
        let dir = self.dir(path).await?;
        self.inodes().list(dir.ino).await
    }

    /// Entries of `path` with attributes; a file path lists itself.
    pub async fn list_long(&self, path: &str) -> Result<Vec<DirEntryPlus>, ClientError> {
        let attr = self.stat(path).await?;
        if attr.kind != FileKind::Dir {
            let name = split_path(path)?
                .last()
                .map(|s| s.to_string())
                .unwrap_or_default();
            return Ok(vec![DirEntryPlus { name, attr }]);
        }
        let entries = self.inodes().list(attr.ino).await?;
        stream::iter(entries)
            .map(|e| async move {
                let attr = self.attr_of(NsRead::GetAttr { ino: e.ino }).await?;
                Ok::<_, ClientError>(DirEntryPlus { name: e.name, attr })
            })
            .buffered(32)
            .try_collect()
            .await
    }

    /// Creates a directory; with `parents`, creates missing ancestors and
    /// accepts an existing directory (as `mkdir -p`).
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<InodeAttr, ClientError> {
        let owner = Owner {
            mode: 0o755,
            uid: self.inner.uid,
            gid: self.inner.gid,
        };
        if !parents {
            let (parent, name) = parent_and_name(path)?;
            let p = self.dir(&parent).await?;
            return self
                .write_attr(NsWrite::Mkdir {
                    parent: p.ino,
                    name,
                    owner,
                })
                .await;
        }
        let mut cur = self.stat("/").await?;
        for part in split_path(path)? {
            let found = self
                .attr_of(NsRead::Lookup {
                    parent: cur.ino,
                    name: part.to_string(),
                })
                .await;
            cur = match found {
                Ok(a) if a.kind == FileKind::Dir => a,
                Ok(_) => {
                    return Err(refused(
                        ErrorCode::NotADirectory,
                        format!("{part:?} exists and is not a directory"),
                    ))
                }
                Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                    match self
                        .write_attr(NsWrite::Mkdir {
                            parent: cur.ino,
                            name: part.to_string(),
                            owner,
                        })
                        .await
                    {
                        Ok(a) => a,
                        // Created meanwhile by someone else: use theirs.
                        Err(e) if e.code() == Some(ErrorCode::AlreadyExists) => {
                            self.attr_of(NsRead::Lookup {
                                parent: cur.ino,
                                name: part.to_string(),
                            })
                            .await?
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    /// Removes a file, or an empty directory; with `recursive`, a directory
    /// and everything below it.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), ClientError> {
        let (parent, name) = parent_and_name(path)?;
        let p = self.dir(&parent).await?;
        let target = self
            .attr_of(NsRead::Lookup {
                parent: p.ino,
                name: name.clone(),
            })
            .await?;
        if target.kind != FileKind::Dir {
            return self
                .write_ok(NsWrite::Unlink {
                    parent: p.ino,
                    name,
                })
                .await;
        }
        if recursive {
            self.remove_children(target.ino).await?;
        }
        self.write_ok(NsWrite::Rmdir {
            parent: p.ino,
            name,
        })
        .await
    }

    fn remove_children(
        &self,
        dir: InodeId,
    ) -> futures::future::BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async move {
            for e in self.inodes().list(dir).await? {
                if e.kind == FileKind::Dir {
                    self.remove_children(e.ino).await?;
                    self.write_ok(NsWrite::Rmdir {
                        parent: dir,
                        name: e.name,
                    })
                    .await?;
                } else {
                    self.write_ok(NsWrite::Unlink {
                        parent: dir,
                        name: e.name,
                    })
                    .await?;
                }
            }
            Ok(())
        })
    }

    /// Renames `from` to `to` atomically, replacing a file at `to`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), ClientError> {
        let (fp, fname) = parent_and_name(from)?;
        let (tp, tname) = parent_and_name(to)?;
        let fp = self.dir(&fp).await?;
        let tp = self.dir(&tp).await?;
        self.write_ok(NsWrite::Rename {
            parent: fp.ino,
            name: fname,
            new_parent: tp.ino,
            new_name: tname,
            mode: RenameMode::Replace,
        })
        .await
    }

    /// Writes the whole file at `path` to `writer`; returns its size.
    pub async fn get<W: AsyncWrite + Unpin>(
        &self,
        path: &str,
        writer: &mut W,
    ) -> Result<u64, ClientError> {
        let attr = self.file(path).await?;
        self.read_range(&attr, 0, attr.size, writer).await
    }

    /// Writes bytes `offset..offset+len` of the file at `path` (clipped to
    /// its size) to `writer`; returns how many were written.
    pub async fn get_range<W: AsyncWrite + Unpin>(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        writer: &mut W,
    ) -> Result<u64, ClientError> {
        let attr = self.file(path).await?;
        let start = offset.min(attr.size);
        let end = offset.saturating_add(len).min(attr.size);
        self.read_range(&attr, start, end, writer).await
    }

    /// Writes bytes `start..end` of the file `attr` describes (clipped to
    /// its size) to `writer`; returns how many were written. Fails with
    /// [`ClientError::Changed`] if the file no longer is the version
    /// `attr` names, rather than mix two versions' bytes.
    pub async fn read_file<W: AsyncWrite + Unpin>(
        &self,
        attr: &InodeAttr,
        start: u64,
        end: u64,
        writer: &mut W,
    ) -> Result<u64, ClientError> {
        let end = end.min(attr.size);
        let start = start.min(end);
        self.read_range(attr, start, end, writer).await
    }

    async fn file(&self, path: &str) -> Result<InodeAttr, ClientError> {
        let attr = self.stat(path).await?;
        if attr.kind == FileKind::Dir {
            return Err(refused(
                ErrorCode::IsADirectory,
                format!("{path}: is a directory"),
            ));
        }
        Ok(attr)
    }
}

impl Inner {
    /// Fetches the ring again if a server reported a newer epoch than the
    /// cached one. One fetch at a time; failures leave the old ring (reads
    /// and writes still work from it, only less well placed).
    pub(super) async fn refresh_ring_if_stale(&self) {
        if !self.ring.is_stale() {
            return;
        }
        let mut failed_at = self.ring_refresh.lock().await;
        if !self.ring.is_stale() || failed_at.is_some_and(|t| t.elapsed() < RING_RETRY) {
            return;
        }
        self.fetch_ring(&mut failed_at).await;
    }

    /// Fetches the ring although no server reported a newer epoch, at most
    /// once per [`FORCED_REFRESH_EVERY`]; whether it did. For a write whose
    /// cached ring shows too few servers up: such a client contacts no
    /// server, so no reply would ever tell it that they came back.
    pub(super) async fn refresh_ring_anyway(&self) -> bool {
        {
            let mut last = self
                .forced_refresh
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < FORCED_REFRESH_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let mut failed_at = self.ring_refresh.lock().await;
        self.fetch_ring(&mut failed_at).await;
        true
    }

    /// Fetches the ring and caches it: the one path every refresh takes.
    async fn load_ring(&self) -> Result<(), ClientError> {
        match self.meta.ask(ClusterQuery::GetRing).await? {
            ClusterReply::Ring(r) => {
                self.ring.update(r);
                Ok(())
            }
            r => Err(unexpected(r)),
        }
    }

    /// [`Inner::load_ring`] in the background of reads and writes: a
    /// failure is logged and remembered in `failed_at`, and the cached ring
    /// goes on serving.
    async fn fetch_ring(&self, failed_at: &mut Option<Instant>) {
        match self.load_ring().await {
            Ok(()) => *failed_at = None,
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the placement ring");
                *failed_at = Some(Instant::now());
            }
        }
    }
}
