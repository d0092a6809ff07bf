//! Kernel inode numbers that stand for another file in metadata.
//!
//! A deferred create answers the kernel under a reserved inode number
//! (see `deferred_create`); when its name turns out to have been taken by
//! another client, the open becomes an open of that existing file, and the
//! kernel's number must lead there from then on. Every request from the
//! kernel maps its inode number through [`InodeAliases::file`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use cairn_proto::InodeId;

/// Most aliases a mount keeps; past it the oldest goes (its kernel inode
/// then reads as gone, and the kernel looks the name up again).
pub const MAX_ALIASES: usize = 4096;

/// Kernel inode numbers that stand for another file in metadata: a
/// deferred create's reserved number whose name turned out to be taken
/// (see the module docs).
#[derive(Default)]
pub struct InodeAliases {
    inner: Mutex<Aliases>,
}

#[derive(Default)]
struct Aliases {
    /// Reserved number the kernel knows → the file's number in metadata.
    to_file: HashMap<InodeId, InodeId>,
    /// The reverse, for answers about the file the kernel knows otherwise.
    to_kernel: HashMap<InodeId, InodeId>,
    order: VecDeque<InodeId>,
}

impl InodeAliases {
    fn lock(&self) -> std::sync::MutexGuard<'_, Aliases> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that kernel inode `kernel` is metadata's `file`.
    pub fn add(&self, kernel: InodeId, file: InodeId) {
        let mut a = self.lock();
        if a.order.len() >= MAX_ALIASES {
            if let Some(old) = a.order.pop_front() {
                if let Some(f) = a.to_file.remove(&old) {
                    a.to_kernel.remove(&f);
                }
            }
        }
        a.to_file.insert(kernel, file);
        a.to_kernel.insert(file, kernel);
        a.order.push_back(kernel);
    }

    /// The file in metadata that kernel inode `ino` stands for.
    pub fn file(&self, ino: InodeId) -> InodeId {
        self.lock().to_file.get(&ino).copied().unwrap_or(ino)
    }

    /// The kernel inode standing for metadata's `file`, if an alias does.
    pub fn kernel(&self, file: InodeId) -> Option<InodeId> {
        self.lock().to_kernel.get(&file).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_both_ways_and_stay_bounded() {
        let a = InodeAliases::default();
        assert_eq!(a.file(InodeId(9)), InodeId(9));
        a.add(InodeId(9), InodeId(4));
        assert_eq!(a.file(InodeId(9)), InodeId(4));
        assert_eq!(a.kernel(InodeId(4)), Some(InodeId(9)));
        assert_eq!(a.kernel(InodeId(9)), None);
        for i in 0..MAX_ALIASES as u64 {
            a.add(InodeId(1_000 + i), InodeId(100_000 + i));
        }
        assert_eq!(a.file(InodeId(9)), InodeId(9), "the oldest went");
        assert_eq!(a.kernel(InodeId(4)), None);
        assert_eq!(a.file(InodeId(1_000)), InodeId(100_000));
    }
}
