//! Cairn as a POSIX filesystem, through FUSE (the `fuser` crate) on top of
//! cairn-client.
//!
//! Semantics (DESIGN.md "FUSE semantics"): close-to-open consistency —
//! writes are buffered per open file and become visible to other clients
//! at `close` or `fsync`, and `fsync` returns once data and metadata are
//! durable under the replication policy; each open sees the cluster's
//! latest version. A random write stores only the bytes it covers.
//! Sequential reads fetch chunks ahead in parallel. The kernel caches
//! attributes and names for the mount's short TTLs and checks permissions
//! itself (`default_permissions`).

mod attr;
mod chunk_cache;
mod deferred_create;
mod deferred_unlink;
mod dir_listing;
mod dirty_budget;
mod errno;
mod extent_read;
mod filesystem;
mod inode_aliases;
mod kernel_attrs;
mod kernel_readahead;
mod lookup_cache;
mod mount;
mod open_file;
mod read_pattern;
mod stale_inodes;
mod write_buffer;

pub use mount::{mount, MountOptions, Mounted};
