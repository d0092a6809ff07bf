//! The FUSE operations. Each request is answered from a task on the tokio
//! runtime, so slow ones (a flush uploading chunks) do not hold up the
//! others. Permission checks are the kernel's (`default_permissions`),
//! against the mode, owner and group this filesystem reports.
//!
//! The policies the operations share live beside this file, one concept
//! each: the handle tables (`handles.rs`), page-cache coherence
//! (`page_cache.rs`), creating (`create.rs`), unlink of an open file
//! (`unlink_open.rs`), set-attributes ordering (`set_attr.rs`), statfs
//! (`statfs.rs`) and which extended attributes are kept
//! (`xattr_policy.rs`). This file is the `Filesystem` implementation
//! itself (about 30 operations, which is why it is long).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use cairn_client::ClientError;
use cairn_proto::meta_rpc::{AttrChange, FileKind, InodeAttr, Owner, RenameMode, XattrMode};
use cairn_proto::path::MAX_NAME_LEN;
use cairn_proto::InodeId;
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    IoctlFlags, KernelConfig, LockOwner, Notifier, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::attr::{file_type, ns_of, to_file_attr};
use crate::deferred_create::PendingCreates;
use crate::errno::errno;
use crate::lookup_cache::{self, Cached, LookupCache};
use crate::open_file::{FileIo, OpenFile};

mod create;
mod handles;
mod page_cache;
mod set_attr;
mod statfs;
mod unlink_open;
mod xattr_policy;

use handles::OpenFiles;
use statfs::STATFS_BLOCK;
use xattr_policy::{reply_xattr, stored_xattr};

/// Largest single read or write the kernel sends us.
const MAX_IO: u32 = 1 << 20;

pub struct CairnFs {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub io: FileIo,
    rt: tokio::runtime::Handle,
    attr_ttl: Duration,
    entry_ttl: Duration,
    /// Directory listings fetched ahead of lookups.
    lookups: Arc<LookupCache>,
    files: Mutex<OpenFiles>,
    dirs: Mutex<HashMap<u64, Arc<Vec<DirItem>>>>,
    next_fh: AtomicU64,
    /// The inode version whose bytes the kernel's page cache holds.
    cached_versions: Mutex<HashMap<InodeId, u64>>,
    statfs: Mutex<Option<(Instant, [u64; 4])>>,
    /// Tells the kernel to drop what it cached (set once mounted).
    pub notifier: OnceLock<Notifier>,
    /// Creates answered here and not yet sent (see `deferred_create`).
    pending: PendingCreates,
    defer_creates: bool,
}

struct DirItem {
    ino: u64,
    kind: FileKind,
    name: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A name from the kernel: at most 255 bytes of UTF-8.
fn entry_name(name: &OsStr) -> Result<String, Errno> {
    if name.len() > MAX_NAME_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    name.to_str().map(str::to_string).ok_or(Errno::EINVAL)
}

fn owner(req: &Request, mode: u32, umask: u32) -> Owner {
    Owner {
        mode: mode & !umask & 0o7777,
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn ino(i: INodeNo) -> InodeId {
    InodeId(i.0)
}

fn now_ns() -> i64 {
    ns_of(SystemTime::now())
}

impl Shared {
    /// The file in metadata that kernel inode `i` is (see `inode_aliases`).
    fn file_ino(&self, i: INodeNo) -> InodeId {
        self.io.aliases.file(ino(i))
    }

    /// Attributes as the kernel should see them: an open file's size
    /// includes its buffered writes.
    async fn file_attr(&self, a: &InodeAttr) -> fuser::FileAttr {
        let size = match self.open_file(a.ino) {
            Some(f) => {
                f.refresh(a).await;
                f.size().await
            }
            None => a.size,
        };
        to_file_attr(a, size)
    }

    async fn flush(&self, file: &OpenFile) -> Result<(), Errno> {
        let flushed = file.flush(&self.io).await;
        if !file.is_pending() {
            self.pending.sent(file.ino);
        }
        if let Some(attr) = flushed? {
            // The page cache already holds what this mount wrote.
            lock(&self.cached_versions).insert(attr.ino, attr.version);
        }
        Ok(())
    }

    /// Buffers a write; past the buffer bound, stores the buffered bytes in
    /// the background while the writer goes on filling a new buffer (one
    /// flush in flight per file: a second waits for the first).
    async fn write(
        self: &Arc<Self>,
        file: Arc<OpenFile>,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        if !file.write(&self.io, offset, data).await? {
            return Ok(());
        }
        if file.is_flushing() {
            file.wait_flushing().await;
        }
        let s = self.clone();
        tokio::spawn(async move {
            // A failure leaves the bytes buffered; close or fsync retries
            // them and reports the error.
            let _ = s.flush(&file).await;
        });
        Ok(())
    }
}

impl CairnFs {
    pub(crate) fn new(
        io: FileIo,
        rt: tokio::runtime::Handle,
        attr_ttl: Duration,
        entry_ttl: Duration,
        defer_creates: bool,
    ) -> Self {
        let lookups = Arc::new(LookupCache::new(entry_ttl));
        let watcher = lookups.clone();
        io.client.watch_changes(Box::new(move |req, applied| {
            watcher.observe(req, applied, Instant::now())
        }));
        CairnFs {
            shared: Arc::new(Shared {
                io,
                rt,
                attr_ttl,
                entry_ttl,
                lookups,
                pending: PendingCreates::default(),
                defer_creates,
                files: Mutex::default(),
                dirs: Mutex::default(),
                next_fh: AtomicU64::new(1),
                cached_versions: Mutex::default(),
                statfs: Mutex::new(None),
                notifier: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs a request's handler on the runtime, after sending any
    /// deferred creates (see `deferred_create`).
    fn run<F, Fut>(&self, f: F)
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let s = self.shared.clone();
        if s.pending.is_empty() {
            self.shared.rt.spawn(f(s));
            return;
        }
        let fut = f(s.clone());
        self.shared.rt.spawn(async move {
            s.pending.settle(&s.io).await;
            fut.await
        });
    }

    /// [`CairnFs::run`] for the requests a deferred create lets pass:
    /// writes to it, its flush and release, other creates, statfs.
    fn run_unsettled<F, Fut>(&self, f: F)
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.rt.spawn(f(self.shared.clone()));
    }
}

/// Replies to an entry-creating request.
async fn reply_entry(s: &Shared, r: Result<InodeAttr, ClientError>, reply: ReplyEntry) {
    match r {
        Ok(a) => {
            let fa = s.file_attr(&a).await;
            reply.entry(&s.entry_ttl, &fa, Generation(0));
        }
        Err(e) => reply.error(errno(&e)),
    }
}

fn reply_empty(r: Result<(), ClientError>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

impl Filesystem for CairnFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn destroy(&mut self) {
        // The kernel is done with us: whatever is still buffered goes out.
        let files = self.shared.all_open_files();
        let s = self.shared.clone();
        self.shared.rt.block_on(async move {
            for f in files {
                if let Err(e) = s.flush(&f).await {
                    tracing::error!(ino = %f.ino, error = ?e, "buffered writes lost at unmount");
                }
            }
        });
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(e) if e == Errno::EINVAL => return reply.error(Errno::ENOENT),
            Err(e) => return reply.error(e),
        };
        // A fresh listing answers here, without a hop to the runtime
        // (unless the file is open here: its size may be buffered).
        let s = &self.shared;
        match s.lookups.get(ino(parent), &name, Instant::now()) {
            _ if !s.pending.is_empty() => {}
            Cached::Found(a, ttl) if s.open_file(a.ino).is_none() => {
                return reply.entry(&ttl, &to_file_attr(&a, a.size), Generation(0));
            }
            Cached::Absent => return reply.error(Errno::ENOENT),
            _ => {}
        }
        self.run(|s| async move {
            match lookup_cache::lookup(&s.lookups, &s.io.client, ino(parent), &name).await {
                Ok((a, ttl)) => {
                    let fa = s.file_attr(&a).await;
                    reply.entry(&ttl, &fa, Generation(0));
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn getattr(&self, _req: &Request, i: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        // After this mount adds or removes a name, the kernel asks for the
        // directory's attributes again; metadata answered them with the
        // change.
        let s = &self.shared;
        if let Some((a, ttl)) = s.io.client.changed_dir_attr(s.file_ino(i), s.attr_ttl) {
            if s.pending.is_empty() {
                return reply.attr(&ttl, &to_file_attr(&a, a.size));
            }
        }
        self.run(|s| async move {
            match s.io.client.get_attr(s.file_ino(i)).await {
                Ok(a) => {
                    let fa = s.file_attr(&a).await;
                    reply.attr(&s.attr_ttl, &fa);
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        i: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let time = |t: TimeOrNow| match t {
            TimeOrNow::Now => now_ns(),
            TimeOrNow::SpecificTime(t) => ns_of(t),
        };
        let change = AttrChange {
            mode: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size: None,
            mtime_ns: mtime.map(time),
            atime_ns: atime.map(time),
        };
        self.run(|s| async move {
            match s.set_attr(s.file_ino(i), change, size).await {
                Ok(a) => {
                    let fa = s.file_attr(&a).await;
                    reply.attr(&s.attr_ttl, &fa);
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, i: INodeNo, reply: ReplyData) {
        self.run(|s| async move {
            match s.io.client.read_link(s.file_ino(i)).await {
                Ok(t) => reply.data(t.as_bytes()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let kind = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => FileKind::File,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            // Device nodes are not stored.
            _ => return reply.error(Errno::EOPNOTSUPP),
        };
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let owner = owner(req, mode, umask);
        self.run(|s| async move {
            let c = &s.io.client;
            let r = match kind {
                FileKind::File => c.create_in(ino(parent), &name, owner).await,
                _ => c.mknod_in(ino(parent), &name, kind, owner).await,
            };
            reply_entry(&s, r, reply).await
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let owner = owner(req, mode, umask);
        self.run(|s| async move {
            let r = s.io.client.mkdir_in(ino(parent), &name, owner).await;
            reply_entry(&s, r, reply).await
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.run(|s| async move { reply_empty(s.unlink(ino(parent), &name).await, reply) });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.run(
            |s| async move { reply_empty(s.io.client.rmdir_in(ino(parent), &name).await, reply) },
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let name = match entry_name(link_name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let Some(target) = target.to_str().map(str::to_string) else {
            return reply.error(Errno::EINVAL);
        };
        if target.len() > cairn_proto::meta_rpc::MAX_SYMLINK_TARGET {
            return reply.error(Errno::ENAMETOOLONG);
        }
        let owner = owner(req, 0o777, 0);
        self.run(|s| async move {
            let r =
                s.io.client
                    .symlink_in(ino(parent), &name, &target, owner)
                    .await;
            reply_entry(&s, r, reply).await
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname) = match (entry_name(name), entry_name(newname)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        let mode = if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            RenameMode::Exchange
        } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            RenameMode::NoReplace
        } else if flags.is_empty() {
            RenameMode::Replace
        } else {
            return reply.error(Errno::EINVAL);
        };
        self.run(|s| async move {
            let r =
                s.io.client
                    .rename_in((ino(parent), &name), (ino(newparent), &newname), mode)
                    .await;
            reply_empty(r, reply)
        });
    }

    fn link(
        &self,
        _req: &Request,
        i: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let name = match entry_name(newname) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.run(|s| async move {
            let r = s.io.client.link(s.file_ino(i), ino(newparent), &name).await;
            reply_entry(&s, r, reply).await
        });
    }

    fn open(&self, _req: &Request, i: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let read_only = flags.0 & libc::O_ACCMODE == libc::O_RDONLY;
        self.run(|s| async move {
            // Close-to-open: every open sees the cluster's latest version.
            // A reader will want the content too: asked for alongside.
            let (attr, content) = if read_only {
                tokio::join!(
                    s.io.client.get_attr(s.file_ino(i)),
                    s.io.client.content_if_small(s.file_ino(i))
                )
            } else {
                (s.io.client.get_attr(s.file_ino(i)).await, Ok(None))
            };
            match attr {
                Ok(a) if a.kind == FileKind::Dir => reply.error(Errno::EISDIR),
                Ok(a) => {
                    let keep = s.keep_cache(&a);
                    let (fh, file) = s.register(&a);
                    file.refresh(&a).await;
                    if let Ok(Some((c, version))) = content {
                        file.offer_content(c, version).await;
                    }
                    let flags = if keep {
                        FopenFlags::FOPEN_KEEP_CACHE
                    } else {
                        FopenFlags::empty()
                    };
                    reply.opened(FileHandle(fh), flags);
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.run(|s| async move {
            let Some(f) = s.open_file(s.file_ino(i)) else {
                return reply.error(Errno::EBADF);
            };
            match f.read(&s.io, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.run_unsettled(|s| async move {
            let Some(f) = s.open_file(s.file_ino(i)) else {
                return reply.error(Errno::EBADF);
            };
            match s.write(f, offset, &data).await {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => reply.error(e),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.run_unsettled(|s| async move {
            match s.open_file(s.file_ino(i)) {
                Some(f) => match s.flush(&f).await {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(e),
                },
                None => reply.ok(),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.run_unsettled(|s| async move {
            match s.release(fh.0).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // A flush returns once the chunks hold their synchronous copies and
        // the extents are committed through Raft: both durable.
        self.flush(_req, i, _fh, LockOwner(0), reply);
    }

    fn opendir(&self, _req: &Request, i: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.run(|s| async move {
            match s.io.client.list_ino(s.file_ino(i)).await {
                Ok(entries) => {
                    let mut items = vec![
                        DirItem {
                            ino: i.0,
                            kind: FileKind::Dir,
                            name: ".".into(),
                        },
                        DirItem {
                            ino: i.0,
                            kind: FileKind::Dir,
                            name: "..".into(),
                        },
                    ];
                    items.extend(entries.into_iter().map(|e| DirItem {
                        ino: e.ino.0,
                        kind: e.kind,
                        name: e.name,
                    }));
                    let fh = s.next_fh.fetch_add(1, Ordering::Relaxed);
                    lock(&s.dirs).insert(fh, Arc::new(items));
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(items) = lock(&self.shared.dirs).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (n, item) in items.iter().enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(item.ino),
                n as u64 + 1,
                file_type(item.kind),
                &item.name,
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.shared.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Namespace changes are committed through Raft before they are
        // answered; what is still pending is a deferred create, which `run`
        // sends (and so makes durable) before the answer.
        self.run(|_| async move { reply.ok() });
    }

    fn statfs(&self, _req: &Request, _i: INodeNo, reply: ReplyStatfs) {
        self.run_unsettled(|s| async move {
            match s.statfs().await {
                Ok([blocks, free, files, ffree]) => reply.statfs(
                    blocks,
                    free,
                    free,
                    files,
                    ffree,
                    STATFS_BLOCK as u32,
                    MAX_NAME_LEN as u32,
                    STATFS_BLOCK as u32,
                ),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn setxattr(
        &self,
        _req: &Request,
        i: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let Some(name) = name.to_str().map(str::to_string) else {
            return reply.error(Errno::EINVAL);
        };
        if !stored_xattr(&name) {
            return reply.error(Errno::EOPNOTSUPP);
        }
        if name.len() > cairn_proto::meta_rpc::MAX_XATTR_NAME {
            return reply.error(Errno::ERANGE);
        }
        if value.len() > cairn_proto::meta_rpc::MAX_XATTR_VALUE {
            return reply.error(Errno::E2BIG);
        }
        let mode = match flags {
            0 => XattrMode::Upsert,
            libc::XATTR_CREATE => XattrMode::Create,
            libc::XATTR_REPLACE => XattrMode::Replace,
            _ => return reply.error(Errno::EINVAL),
        };
        let value = value.to_vec();
        self.run(|s| async move {
            let r =
                s.io.client
                    .set_xattr(s.file_ino(i), &name, &value, mode)
                    .await;
            reply_empty(r, reply)
        });
    }

    fn getxattr(&self, _req: &Request, i: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(name) = name.to_str().map(str::to_string) else {
            return reply.error(Errno::NO_XATTR);
        };
        if !stored_xattr(&name) {
            // Asked by the kernel on every write (security.capability):
            // answered here, without a round trip.
            return reply.error(Errno::NO_XATTR);
        }
        self.run(|s| async move {
            match s.io.client.get_xattr(s.file_ino(i), &name).await {
                Ok(v) => reply_xattr(&v, size, reply),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, i: INodeNo, size: u32, reply: ReplyXattr) {
        self.run(|s| async move {
            match s.io.client.list_xattrs(s.file_ino(i)).await {
                Ok(names) => {
                    let mut buf = Vec::new();
                    for n in names {
                        buf.extend_from_slice(n.as_bytes());
                        buf.push(0);
                    }
                    reply_xattr(&buf, size, reply);
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn removexattr(&self, _req: &Request, i: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = name.to_str().map(str::to_string) else {
            return reply.error(Errno::NO_XATTR);
        };
        if !stored_xattr(&name) {
            return reply.error(Errno::NO_XATTR);
        }
        self.run(|s| async move {
            reply_empty(s.io.client.remove_xattr(s.file_ino(i), &name).await, reply)
        });
    }

    fn ioctl(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        // Terminal and filesystem-specific ioctls: none apply.
        reply.error(Errno::ENOTTY);
    }

    fn access(&self, _req: &Request, i: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Permission bits are checked by the kernel (default_permissions);
        // this only confirms the inode exists.
        self.run(|s| async move {
            reply_empty(s.io.client.get_attr(s.file_ino(i)).await.map(|_| ()), reply)
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name = match entry_name(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let owner = owner(req, mode, umask);
        self.run_unsettled(|s| async move {
            match s.create(ino(parent), &name, owner, flags).await {
                Ok((a, fh)) => {
                    let fa = s.file_attr(&a).await;
                    reply.created(
                        &s.entry_ttl,
                        &fa,
                        Generation(0),
                        FileHandle(fh),
                        FopenFlags::FOPEN_KEEP_CACHE,
                    );
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }
}
