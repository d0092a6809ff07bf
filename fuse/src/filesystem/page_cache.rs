//! Page-cache coherence: the kernel may keep a file's cached pages only
//! if they hold the very version being opened; otherwise the open drops
//! them, and the kernel's cached attributes go too unless they are of the
//! version being opened (`kernel_attrs`).

use cairn_proto::meta_rpc::InodeAttr;
use fuser::INodeNo;

use super::{lock, Shared};

/// Inodes whose page-cache version is remembered, at most.
const MAX_KNOWN_VERSIONS: usize = 1 << 20;

impl Shared {
    /// Whether the page cache may be kept for `attr` (it holds this very
    /// version), remembering that it now will. If not, the kernel's cached
    /// attributes go too when they may be of another version, so the
    /// opener sees the new size at once.
    pub(super) fn keep_cache(&self, attr: &InodeAttr) -> bool {
        let keep = {
            let mut known = lock(&self.cached_versions);
            if known.len() >= MAX_KNOWN_VERSIONS {
                // Forgetting only costs re-reading pages the kernel had.
                known.clear();
            }
            known.insert(attr.ino, attr.version) == Some(attr.version)
        };
        if !keep && !self.kernel_attrs.holds(attr.ino, attr.version) {
            if let Some(n) = self.notifier.get() {
                // Offset -1: attributes only (the open reply drops pages).
                let kernel = self.io.aliases.kernel(attr.ino).unwrap_or(attr.ino);
                if let Err(e) = n.inval_inode(INodeNo(kernel.0), -1, 0) {
                    tracing::debug!(ino = %attr.ino, error = %e, "attribute invalidation failed");
                }
            }
        }
        keep
    }
}
