//! One file open in this mount (shared by every handle on it): the write
//! buffer, the size as this mount sees it, and the committed content
//! (inline bytes or extents) that reads fill from. Close-to-open: writes
//! stay here until `flush` (close) or `fsync`, which store the dirty ranges
//! (inline in metadata for a tiny file, else as new chunks committed as
//! extents keyed by offset — a random write replaces only what it covers).
//!
//! The state behind one lock, and the reads, writes and flushes that must
//! see it consistently. The pure parts are tested types of their own:
//! `write_buffer`, `dirty_budget`, `read_pattern`; fetching committed
//! bytes is `extent_read`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cairn_client::{Client, ClientError, FileContent};
use cairn_proto::meta_rpc::{AttrChange, Extent, FileKind, InodeAttr, Owner, MAX_INLINE};
use cairn_proto::{ErrorCode, InodeId};
use fuser::Errno;

use crate::chunk_cache::ChunkCache;
use crate::dirty_budget::{DirtyBudget, DirtyCharge};
use crate::errno::errno;
use crate::extent_read;
use crate::inode_aliases::InodeAliases;
use crate::read_pattern::ReadPattern;
use crate::write_buffer::WriteBuffer;

/// What every open file of one mount shares.
pub struct FileIo {
    pub client: Client,
    pub cache: Arc<ChunkCache>,
    /// Dirty bytes over all open files, and when a file must flush.
    pub dirty: Arc<DirtyBudget>,
    /// Bytes of chunks fetched ahead of a sequential reader.
    pub readahead_bytes: u64,
    /// Kernel inodes standing for other files (see `inode_aliases`).
    pub aliases: InodeAliases,
}

pub struct OpenFile {
    /// The inode number the kernel knows the file by.
    pub ino: InodeId,
    /// The file's inode number in metadata: `ino`, unless its deferred
    /// create found the name taken and opened the existing file instead.
    target: AtomicU64,
    state: tokio::sync::Mutex<FileState>,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
    /// Where the file lives on after an unlink while open (see
    /// [`OpenFile::set_hidden`]).
    hidden: std::sync::Mutex<Option<(InodeId, String)>>,
    /// Created here and not yet in metadata (see `deferred_create`).
    pending: std::sync::Mutex<Option<PendingCreate>>,
}

/// A create told to the kernel and not yet sent to metadata: the file
/// is created with its bytes when it is flushed, or empty before anything
/// else looks at it.
#[derive(Clone, Debug)]
pub struct PendingCreate {
    pub parent: InodeId,
    pub name: String,
    pub owner: Owner,
    /// The times the kernel was told; metadata records them.
    pub created_ns: i64,
    /// `O_TRUNC`: if the name turns out taken, the existing file is cut to
    /// zero before this open's bytes go in.
    pub truncate: bool,
}

/// What sending a deferred create did.
enum Sent {
    /// The file was created (with the bytes given).
    Created(InodeAttr),
    /// Another client had taken the name: this open now stands for that
    /// existing file (truncated under `O_TRUNC`), bytes not yet written.
    Opened(InodeAttr),
}

/// Dirty ranges taken out of the buffer for one flush: (offset, bytes).
type Parts = Arc<Vec<(u64, Bytes)>>;

struct FileState {
    dirty: WriteBuffer,
    /// `dirty`'s bytes, counted in the mount's budget (taken on the first
    /// write, given back when the file is dropped).
    charge: Option<DirtyCharge>,
    /// Ranges being stored and committed by a flush: still what reads
    /// must see until the commit lands.
    inflight: Option<Parts>,
    /// Size as this mount sees it (committed size, grown by buffered
    /// writes, cut by truncates).
    size: u64,
    /// The inode version `size` and `content` reflect.
    version: u64,
    /// Committed content: inline bytes or extents (`None`: fetch before
    /// the next read).
    content: Option<Arc<FileContent>>,
    /// Bumped when a commit changes what `content` should be.
    generation: u64,
    /// Whether reads are a scan (read-ahead, whole chunks).
    pattern: ReadPattern,
}

impl FileState {
    /// Brings the budget up to date with `dirty`; answers whether the
    /// file should flush.
    fn recount(&mut self, io: &FileIo) -> bool {
        let bytes = self.dirty.bytes();
        if bytes == 0 && self.charge.is_none() {
            return false;
        }
        self.charge
            .get_or_insert_with(|| io.dirty.charge())
            .set(bytes)
    }
}

impl OpenFile {
    pub fn new(attr: &InodeAttr) -> Self {
        OpenFile {
            ino: attr.ino,
            target: AtomicU64::new(attr.ino.0),
            state: tokio::sync::Mutex::new(FileState {
                dirty: WriteBuffer::default(),
                charge: None,
                inflight: None,
                size: attr.size,
                version: attr.version,
                content: None,
                generation: 0,
                pattern: ReadPattern::default(),
            }),
            flushing: tokio::sync::Mutex::new(()),
            hidden: std::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(None),
        }
    }

    /// A file created here under reserved inode number `attr.ino`, which
    /// metadata does not know of yet.
    pub fn new_pending(attr: &InodeAttr, create: PendingCreate) -> Self {
        let f = OpenFile::new(attr);
        *f.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(create);
        f
    }

    fn pending(&self) -> Option<PendingCreate> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The file's inode number in metadata (see `target`).
    pub fn target(&self) -> InodeId {
        InodeId(self.target.load(Ordering::Relaxed))
    }

    /// True while the file's create has not been sent to metadata.
    pub fn is_pending(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Sends the file's deferred create (empty: buffered writes stay
    /// buffered), if it has one.
    pub async fn create_now(&self, io: &FileIo) -> Result<(), Errno> {
        let _one = self.flushing.lock().await;
        if let Some(p) = self.pending() {
            self.send_create(io, &p, Vec::new())
                .await
                .map_err(|e| errno(&e))?;
        }
        Ok(())
    }

    /// Creates the file in metadata holding `bytes` — or, if another
    /// client took the name meanwhile, opens that file as `open(O_CREAT)`
    /// without `O_EXCL` would have (`bytes` then not written). Call with
    /// `flushing` held.
    async fn send_create(
        &self,
        io: &FileIo,
        p: &PendingCreate,
        bytes: Vec<u8>,
    ) -> Result<Sent, ClientError> {
        let created = io
            .client
            .inodes()
            .create_with(
                (p.parent, &p.name),
                (p.owner, self.ino),
                bytes,
                p.created_ns,
            )
            .await;
        let sent = match created {
            Ok(attr) => Sent::Created(attr),
            Err(e) if e.code() == Some(ErrorCode::AlreadyExists) => {
                Sent::Opened(self.open_existing(io, p).await.map_err(|_| e)?)
            }
            Err(e) => {
                tracing::warn!(ino = %self.ino, name = p.name, error = %e, "creating a file failed");
                return Err(e);
            }
        };
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let mut st = self.state.lock().await;
        st.content = None;
        st.generation += 1;
        match &sent {
            Sent::Created(attr) => st.version = st.version.max(attr.version),
            Sent::Opened(attr) => {
                st.version = attr.version;
                st.size = st.size.max(attr.size);
            }
        }
        Ok(sent)
    }

    /// The deferred create's name was taken: this open becomes an open of
    /// the file there (cut to zero under `O_TRUNC`), and the kernel's
    /// number for it an alias of that file's. Refused if the name is not a
    /// regular file (the caller then reports the create's own error).
    async fn open_existing(
        &self,
        io: &FileIo,
        p: &PendingCreate,
    ) -> Result<InodeAttr, ClientError> {
        let existing = io.client.inodes().lookup(p.parent, &p.name).await?;
        if existing.kind != FileKind::File {
            return Err(ClientError::Protocol(format!(
                "{:?} is not a regular file",
                p.name
            )));
        }
        let attr = if p.truncate && existing.size > 0 {
            io.client
                .inodes()
                .set_attr(
                    existing.ino,
                    AttrChange {
                        size: Some(0),
                        ..Default::default()
                    },
                )
                .await?
        } else {
            existing
        };
        self.target.store(attr.ino.0, Ordering::Relaxed);
        io.aliases.add(self.ino, attr.ino);
        tracing::info!(
            ino = %self.ino, file = %attr.ino, name = p.name, truncate = p.truncate,
            "another client created the name first: this open writes to that file, as O_CREAT without O_EXCL does"
        );
        Ok(attr)
    }

    /// The size as this mount sees it.
    pub async fn size(&self) -> u64 {
        self.state.lock().await.size
    }

    /// Picks up attributes fetched from the cluster (another client may
    /// have changed the file): without buffered writes, their size wins.
    pub async fn refresh(&self, attr: &InodeAttr) {
        let mut st = self.state.lock().await;
        // Newer than what this mount knows (another client committed):
        // its size and extents win, unless writes here are pending.
        if st.dirty.is_empty() && st.inflight.is_none() && attr.version > st.version {
            st.content = None;
            st.generation += 1;
            st.size = attr.size;
            st.version = attr.version;
        }
    }

    /// Takes `content` fetched along with the attributes at open, if it is
    /// of the version this mount now sees and nothing is buffered: the
    /// first read then needs no round trip.
    pub async fn offer_content(&self, content: FileContent, version: u64) {
        let mut st = self.state.lock().await;
        if st.content.is_none()
            && st.version == version
            && st.dirty.is_empty()
            && st.inflight.is_none()
        {
            st.content = Some(Arc::new(content));
        }
    }

    /// Buffers a write. Answers whether the buffers grew past their bound
    /// (the caller then starts a flush).
    pub async fn write(&self, io: &FileIo, offset: u64, data: &[u8]) -> Result<bool, Errno> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let over = {
            let mut st = self.state.lock().await;
            st.dirty.write(offset, data);
            st.size = st.size.max(end);
            st.recount(io)
        };
        Ok(over)
    }

    /// Waits for a flush in progress, if any, to finish.
    pub async fn wait_flushing(&self) {
        drop(self.flushing.lock().await);
    }

    /// True while a flush is storing or committing.
    pub fn is_flushing(&self) -> bool {
        self.flushing.try_lock().is_err()
    }

    /// Remembers that the file's last name was replaced by `hidden` in
    /// `dir` (it was unlinked while open here): removed at the last close.
    pub fn set_hidden(&self, dir: InodeId, hidden: String) {
        *self.hidden.lock().unwrap_or_else(|p| p.into_inner()) = Some((dir, hidden));
    }

    pub fn take_hidden(&self) -> Option<(InodeId, String)> {
        self.hidden.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Stores and commits every buffered write. On failure the writes stay
    /// buffered (under any newer ones) for the next flush.
    /// Answers the attributes the commit produced, if there was anything
    /// to commit.
    pub async fn flush(&self, io: &FileIo) -> Result<Option<InodeAttr>, Errno> {
        let _one = self.flushing.lock().await;
        let mut pending = self.pending();
        let (parts, size) = loop {
            if let Some(p) = &pending {
                // Too big to create with its bytes in one commit: create
                // it empty, then store its bytes as any file's.
                if self.size().await > MAX_INLINE {
                    self.send_create(io, p, Vec::new())
                        .await
                        .map_err(|e| errno(&e))?;
                    pending = None;
                }
            }
            let mut st = self.state.lock().await;
            if st.dirty.is_empty() && pending.is_none() {
                return Ok(None);
            }
            if pending.is_some() && st.size > MAX_INLINE {
                continue; // grew meanwhile
            }
            let taken = st.dirty.take();
            st.recount(io);
            let parts: Parts = Arc::new(
                taken
                    .into_iter()
                    .map(|(o, d)| (o, Bytes::from(d)))
                    .collect(),
            );
            st.inflight = Some(parts.clone());
            break (parts, st.size);
        };
        let written = match &pending {
            Some(p) => {
                let mut bytes = vec![0u8; size as usize];
                overlay_parts(&parts, 0, &mut bytes);
                match self.send_create(io, p, bytes).await {
                    Ok(Sent::Created(attr)) => Ok(attr),
                    // The name was taken: the bytes go into that file.
                    Ok(Sent::Opened(_)) => {
                        let size = self.size().await;
                        io.client
                            .inodes()
                            .write_parts(self.target(), &parts, size)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            None => {
                io.client
                    .inodes()
                    .write_parts(self.target(), &parts, size)
                    .await
            }
        };
        let mut st = self.state.lock().await;
        st.inflight = None;
        match written {
            Ok(attr) => {
                st.content = None;
                st.generation += 1;
                st.size = st.size.max(attr.size);
                st.version = st.version.max(attr.version);
                Ok(Some(attr))
            }
            Err(e) => {
                tracing::warn!(ino = %self.target(), error = %e, "flushing buffered writes failed");
                let newer = st.dirty.take();
                for (o, d) in parts.iter() {
                    st.dirty.write(*o, d);
                }
                for (o, d) in &newer {
                    st.dirty.write(*o, d);
                }
                st.recount(io);
                Err(errno(&e))
            }
        }
    }

    /// Truncates (or extends with a hole) to `size`: buffered writes are
    /// committed first, so the cut applies to them too.
    pub async fn set_size(&self, io: &FileIo, size: u64) -> Result<InodeAttr, Errno> {
        self.flush(io).await?;
        let attr = io
            .client
            .inodes()
            .set_attr(
                self.target(),
                AttrChange {
                    size: Some(size),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| errno(&e))?;
        let mut st = self.state.lock().await;
        st.dirty.truncate(size);
        st.recount(io);
        st.size = size;
        st.version = st.version.max(attr.version);
        st.content = None;
        st.generation += 1;
        Ok(attr)
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file): the
    /// committed bytes, under what a flush is committing, under what is
    /// buffered. Holes read as zeros.
    pub async fn read(&self, io: &FileIo, offset: u64, len: u32) -> Result<Bytes, Errno> {
        let mut scan = None;
        for _ in 0..READ_TRIES {
            let (n, content, generation, sequential) = {
                let mut st = self.state.lock().await;
                if offset >= st.size {
                    return Ok(Bytes::new());
                }
                let n = u64::from(len).min(st.size - offset);
                // Counted once per read, however many tries it takes.
                let sequential = *scan.get_or_insert_with(|| st.pattern.observe(offset, n));
                if st.dirty.covers(offset, n) {
                    let mut out = vec![0u8; n as usize];
                    st.dirty.overlay(offset, &mut out);
                    return Ok(out.into());
                }
                let Some(content) = st.content.clone() else {
                    // Fetched without holding the file's state: writes,
                    // flushes and other reads of this file go on
                    // meanwhile. Kept only if no commit landed since.
                    let generation = st.generation;
                    drop(st);
                    let (content, _) = io
                        .client
                        .inodes()
                        .content(self.target())
                        .await
                        .map_err(|e| errno(&e))?;
                    let mut st = self.state.lock().await;
                    if st.generation == generation && st.content.is_none() {
                        st.content = Some(Arc::new(content));
                    }
                    continue;
                };
                if let Some(inline) = &content.inline {
                    // A tiny file: its bytes came with the content (zeros
                    // past them).
                    let mut out = vec![0u8; n as usize];
                    let lo = (offset as usize).min(inline.len());
                    let hi = ((offset + n) as usize).min(inline.len());
                    out[..hi - lo].copy_from_slice(&inline[lo..hi]);
                    if let Some(parts) = &st.inflight {
                        overlay_parts(parts, offset, &mut out);
                    }
                    st.dirty.overlay(offset, &mut out);
                    return Ok(out.into());
                }
                if sequential {
                    self.read_ahead(io, &content.extents, offset + n);
                }
                (n, content, st.generation, sequential)
            };
            let pieces = extent_read::pieces(io, &content.extents, offset, n, sequential).await?;
            let st = self.state.lock().await;
            if st.generation != generation {
                continue; // a commit landed meanwhile: read again
            }
            if st.inflight.is_none() && st.dirty.is_empty() {
                if let Some(whole) = extent_read::exactly(&pieces, offset, n) {
                    return Ok(whole); // nothing over it: the chunk's own bytes
                }
            }
            let mut out = vec![0u8; n as usize];
            extent_read::copy_into(&pieces, offset, &mut out);
            if let Some(parts) = &st.inflight {
                overlay_parts(parts, offset, &mut out);
            }
            st.dirty.overlay(offset, &mut out);
            return Ok(out.into());
        }
        Err(Errno::EAGAIN)
    }

    /// Starts fetching the chunks after `from` into the cache.
    fn read_ahead(&self, io: &FileIo, extents: &[Extent], from: u64) {
        let first = extents.partition_point(|e| e.offset + e.len <= from);
        let limit = from.saturating_add(io.readahead_bytes);
        for e in extents[first..].iter().take_while(|e| e.offset < limit) {
            if io.cache.contains(&e.chunk) {
                continue;
            }
            let (client, id, cache) = (io.client.clone(), e.chunk, io.cache.clone());
            tokio::spawn(async move {
                let fetched = cache
                    .get(id, || async { client.inodes().fetch_chunk(id).await })
                    .await;
                if let Err(e) = fetched {
                    tracing::debug!(chunk = %id, error = %e, "read-ahead failed");
                }
            });
        }
    }
}

/// Copies the bytes of `parts` that fall in `offset..offset + out.len()`
/// over `out` (parts neither overlap nor touch: they came out of a
/// [`WriteBuffer`]).
fn overlay_parts(parts: &[(u64, Bytes)], offset: u64, out: &mut [u8]) {
    let end = offset + out.len() as u64;
    for (s, d) in parts {
        let e = s + d.len() as u64;
        let (lo, hi) = ((*s).max(offset), e.min(end));
        if lo < hi {
            out[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&d[(lo - s) as usize..(hi - s) as usize]);
        }
    }
}

/// Largest file this mount writes (as the metadata service allows).
const MAX_FILE_SIZE: u64 = 1 << 62;
/// Tries of one read when commits keep landing underneath it (fetching
/// the committed content takes one).
const READ_TRIES: usize = 6;
