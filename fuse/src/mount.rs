//! Mounting and unmounting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_client::Client;
use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::chunk_cache::ChunkCache;
use crate::dirty_budget::DirtyBudget;
use crate::filesystem::CairnFs;
use crate::kernel_readahead;
use crate::open_file::FileIo;

/// How a mount caches and buffers.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// How long the kernel trusts attributes it was given.
    pub attr_ttl: Duration,
    /// How long the kernel trusts a name → inode lookup.
    pub entry_ttl: Duration,
    /// Verified chunks kept in memory for reads.
    pub cache_bytes: usize,
    /// A file's buffered writes are stored once they reach this size...
    pub flush_file_bytes: usize,
    /// ...or once all files' buffered writes together reach this.
    pub flush_total_bytes: usize,
    /// Chunks fetched ahead of a sequential reader.
    pub readahead_bytes: u64,
    /// Let every user use the mount (not only the one who mounted it).
    pub allow_other: bool,
    /// Answer a file's create here and send it with the file's bytes
    /// when it is closed (one commit for a small file instead of two);
    /// see `deferred_create`.
    pub defer_creates: bool,
    /// Answer an unlink at once and send it in the background (durable at
    /// `fsync` of its directory); see `deferred_unlink`.
    pub defer_unlinks: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            cache_bytes: 128 << 20,
            flush_file_bytes: 32 << 20,
            flush_total_bytes: 128 << 20,
            readahead_bytes: 16 << 20,
            allow_other: true,
            defer_creates: true,
            defer_unlinks: true,
        }
    }
}

/// The kernel's readahead window for a mount that prefetches
/// `readahead_bytes` itself: enough for several of the kernel's 1 MiB
/// read requests in flight, the mount's own prefetch covering the rest.
fn kernel_readahead_kib(readahead_bytes: u64) -> u64 {
    (readahead_bytes >> 10).clamp(128, KERNEL_READAHEAD_MAX_KIB)
}

const KERNEL_READAHEAD_MAX_KIB: u64 = 4 << 10;

/// A mounted filesystem; dropping it unmounts.
pub struct Mounted {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
}

/// Mounts the cluster `client` talks to at `mountpoint`. Must be called
/// inside a tokio runtime, which then serves the filesystem's requests.
pub fn mount(client: Client, mountpoint: &Path, opts: &MountOptions) -> std::io::Result<Mounted> {
    let io = FileIo {
        client,
        cache: Arc::new(ChunkCache::new(opts.cache_bytes)),
        dirty: DirtyBudget::new(opts.flush_file_bytes, opts.flush_total_bytes),
        readahead_bytes: opts.readahead_bytes,
        aliases: Default::default(),
    };
    let fs = CairnFs::new(
        io,
        tokio::runtime::Handle::current(),
        opts.attr_ttl,
        opts.entry_ttl,
        opts.defer_creates,
        opts.defer_unlinks,
    );
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("cairn".into()),
        MountOption::Subtype("cairn".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if opts.allow_other {
        config.acl = SessionACL::All;
    }
    let shared = fs.shared();
    let session = fuser::spawn_mount(fs, mountpoint, &config)?;
    let _ = shared.notifier.set(session.notifier());
    kernel_readahead::raise_in_background(mountpoint, kernel_readahead_kib(opts.readahead_bytes));
    Ok(Mounted {
        session: Some(session),
        mountpoint: mountpoint.to_path_buf(),
    })
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// True once the filesystem was unmounted from outside (`cairn umount`,
    /// `fusermount3 -u`).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Unmounts (flushing what open files still buffer) and waits for the
    /// session to end. Blocks: call from a blocking context.
    pub fn unmount(mut self) -> std::io::Result<()> {
        match self.session.take() {
            Some(s) if s.guard.is_finished() => s.join(),
            Some(s) => s.umount_and_join(),
            None => Ok(()),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if let Err(e) = s.umount_and_join() {
                tracing::warn!(mountpoint = %self.mountpoint.display(), error = %e, "unmount failed");
            }
        }
    }
}
