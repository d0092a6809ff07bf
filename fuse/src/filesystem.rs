//! The FUSE operations. Each request is answered from a task on the tokio
//! runtime, so slow ones (a flush uploading chunks) do not hold up the
//! others. Permission checks are the kernel's (`default_permissions`),
//! against the mode, owner and group this filesystem reports.
//!
//! This file holds the state the operations share ([`Shared`]), how a
//! request is run, and the `Filesystem` implementation, which hands each
//! operation to `ops/`: names and inodes (`ops/entry.rs`), open files
//! (`ops/file.rs`), directories (`ops/dir.rs`) and extended attributes
//! (`ops/xattr.rs`). The policies the operations share live beside it, one
//! concept each: the handle tables (`handles.rs`), page-cache coherence
//! (`page_cache.rs`), creating (`create.rs`), unlinking (`unlink.rs`:
//! deferred, or of a file open here), set-attributes ordering
//! (`set_attr.rs`), statfs (`statfs.rs`) and which extended attributes
//! are kept (`xattr_policy.rs`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use cairn_proto::meta_rpc::{InodeAttr, Owner};
use cairn_proto::path::MAX_NAME_LEN;
use cairn_proto::InodeId;
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, Filesystem, Generation, INodeNo, InitFlags,
    IoctlFlags, KernelConfig, LockOwner, Notifier, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::attr::{ns_of, to_file_attr};
use crate::deferred_create::PendingCreates;
use crate::deferred_unlink::PendingUnlinks;
use crate::dir_listing::DirListing;
use crate::errno::AsErrno;
use crate::kernel_attrs::KernelAttrs;
use crate::lookup_cache::LookupCache;
use crate::open_file::{FileIo, OpenFile};

mod create;
mod handles;
mod ops;
mod page_cache;
mod set_attr;
mod statfs;
mod unlink;
mod xattr_policy;

use handles::OpenFiles;
use statfs::STATFS_BLOCK;

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
    /// Open directories' listings (see `dir_listing`).
    dirs: Mutex<HashMap<u64, Arc<Mutex<DirListing>>>>,
    next_fh: AtomicU64,
    /// The inode version whose bytes the kernel's page cache holds.
    cached_versions: Mutex<HashMap<InodeId, u64>>,
    /// The attribute versions the kernel was told.
    kernel_attrs: KernelAttrs,
    statfs: Mutex<Option<(Instant, [u64; 4])>>,
    /// Tells the kernel to drop what it cached (set once mounted).
    pub notifier: OnceLock<Notifier>,
    /// Creates answered here and not yet sent (see `deferred_create`).
    pending: PendingCreates,
    defer_creates: bool,
    /// Unlinks answered here and not yet applied (see `deferred_unlink`).
    unlinks: PendingUnlinks,
    defer_unlinks: bool,
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
        self.kernel_attr(a, size)
    }

    /// `a` (with `size`) for a reply to the kernel, remembered as told.
    fn kernel_attr(&self, a: &InodeAttr, size: u64) -> fuser::FileAttr {
        self.kernel_attrs.tell(a.ino, a.version);
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
        defer_unlinks: bool,
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
                unlinks: PendingUnlinks::default(),
                defer_unlinks,
                files: Mutex::default(),
                dirs: Mutex::default(),
                next_fh: AtomicU64::new(1),
                cached_versions: Mutex::default(),
                kernel_attrs: KernelAttrs::default(),
                statfs: Mutex::new(None),
                notifier: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs a request's handler on the runtime, after every deferred
    /// unlink is applied and every deferred create sent (see
    /// `deferred_unlink`, `deferred_create`).
    fn run<F, Fut>(&self, f: F)
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let s = self.shared.clone();
        if s.unlinks.is_empty() {
            return self.run_beside_unlinks(f);
        }
        let fut = f(s.clone());
        self.shared.rt.spawn(async move {
            s.unlinks.settle().await;
            s.pending.settle(&s.io).await;
            fut.await
        });
    }

    /// [`CairnFs::run`] for the requests that take pending unlinks into
    /// account themselves: lookup, getattr and unlink. Deferred creates
    /// are sent first.
    fn run_beside_unlinks<F, Fut>(&self, f: F)
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
async fn reply_entry(s: &Shared, r: Result<InodeAttr, impl AsErrno>, reply: ReplyEntry) {
    match r {
        Ok(a) => {
            let fa = s.file_attr(&a).await;
            reply.entry(&s.entry_ttl, &fa, Generation(0));
        }
        Err(e) => reply.error(e.as_errno()),
    }
}

fn reply_empty(r: Result<(), impl AsErrno>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e.as_errno()),
    }
}

impl Filesystem for CairnFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        // Listings with attributes (`readdirplus`): `ls -l` then stats
        // from the kernel's cache instead of asking one lookup per name.
        // "Auto": the kernel asks for attributes on a directory's first
        // read and then only while the reader looks the names up (as `ls
        // -l` does between reads), so `find`, which only wants the names,
        // does not make the kernel build an inode for each.
        let plus = InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO;
        if let Err(missing) = config.add_capabilities(plus) {
            tracing::info!(?missing, "the kernel lists directories without attributes");
        }
        Ok(())
    }

    fn destroy(&mut self) {
        // The kernel is done with us: whatever is still buffered goes out.
        let files = self.shared.all_open_files();
        let s = self.shared.clone();
        self.shared.rt.block_on(async move {
            let failed = s.unlinks.settle_failures().await;
            if failed > 0 {
                tracing::error!(failed, "deferred unlinks failed: those names remain");
            }
            for f in files {
                if let Err(e) = s.flush(&f).await {
                    tracing::error!(ino = %f.ino, error = ?e, "buffered writes lost at unmount");
                }
            }
        });
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        ops::entry::lookup(self, parent, name, reply)
    }

    fn getattr(&self, _req: &Request, i: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        ops::entry::getattr(self, i, reply)
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
        ops::entry::setattr(self, i, mode, uid, gid, size, atime, mtime, reply)
    }

    fn readlink(&self, _req: &Request, i: INodeNo, reply: ReplyData) {
        ops::entry::readlink(self, i, reply)
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
        ops::entry::mknod(self, req, parent, name, mode, umask, reply)
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
        ops::entry::mkdir(self, req, parent, name, mode, umask, reply)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        ops::entry::unlink(self, parent, name, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        ops::entry::rmdir(self, parent, name, reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        ops::entry::symlink(self, req, parent, link_name, target, reply)
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
        ops::entry::rename(self, parent, name, newparent, newname, flags, reply)
    }

    fn link(
        &self,
        _req: &Request,
        i: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        ops::entry::link(self, i, newparent, newname, reply)
    }

    fn open(&self, _req: &Request, i: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        ops::file::open(self, i, flags, reply)
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
        ops::file::read(self, i, offset, size, reply)
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
        ops::file::write(self, i, offset, data, reply)
    }

    fn flush(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        ops::file::flush(self, i, reply)
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
        ops::file::release(self, fh, reply)
    }

    fn fsync(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        ops::file::fsync(self, i, reply)
    }

    fn opendir(&self, _req: &Request, i: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        ops::dir::opendir(self, i, reply)
    }

    fn readdir(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        ops::dir::readdir(self, fh, offset, reply)
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        ops::dir::readdirplus(self, fh, offset, reply)
    }

    fn releasedir(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        ops::dir::releasedir(self, fh, reply)
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        ops::dir::fsyncdir(self, reply)
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
                Err(e) => reply.error(e),
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
        ops::xattr::setxattr(self, i, name, value, flags, reply)
    }

    fn getxattr(&self, _req: &Request, i: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        ops::xattr::getxattr(self, i, name, size, reply)
    }

    fn listxattr(&self, _req: &Request, i: INodeNo, size: u32, reply: ReplyXattr) {
        ops::xattr::listxattr(self, i, size, reply)
    }

    fn removexattr(&self, _req: &Request, i: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        ops::xattr::removexattr(self, i, name, reply)
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
            reply_empty(
                s.io.client
                    .inodes()
                    .get_attr(s.file_ino(i))
                    .await
                    .map(|_| ()),
                reply,
            )
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
        ops::file::create(self, req, parent, name, mode, umask, flags, reply)
    }
}
