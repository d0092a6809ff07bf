//! Which version of an inode's attributes the kernel was told: an open
//! that finds the version the kernel already holds need not make it drop
//! them (and ask again at the next read past the cached size or `stat`).
//!
//! Replies to the kernel may race (two tasks answer with two versions and
//! the kernel keeps whichever it took last), so an inode told two
//! different versions is not trusted again.

use std::collections::HashMap;
use std::sync::Mutex;

use cairn_proto::InodeId;

/// Inodes remembered, at most; past it all are forgotten (forgetting only
/// costs the kernel a question).
const MAX_INODES: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Told {
    One(u64),
    Several,
}

#[derive(Default)]
pub struct KernelAttrs {
    told: Mutex<HashMap<InodeId, Told>>,
}

impl KernelAttrs {
    fn told(&self) -> std::sync::MutexGuard<'_, HashMap<InodeId, Told>> {
        self.told.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kernel is being told `ino`'s attributes at `version`.
    pub fn tell(&self, ino: InodeId, version: u64) {
        let mut told = self.told();
        if told.len() >= MAX_INODES && !told.contains_key(&ino) {
            told.clear();
        }
        let t = told.entry(ino).or_insert(Told::One(version));
        if *t != Told::One(version) {
            *t = Told::Several;
        }
    }

    /// Whether the kernel can only hold `ino`'s attributes at `version`.
    pub fn holds(&self, ino: InodeId, version: u64) -> bool {
        self.told().get(&ino) == Some(&Told::One(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_version_told_is_held_and_two_are_not() {
        let k = KernelAttrs::default();
        let (a, b) = (InodeId(2), InodeId(3));
        assert!(!k.holds(a, 1), "nothing told");
        k.tell(a, 1);
        k.tell(a, 1);
        assert!(k.holds(a, 1));
        assert!(!k.holds(a, 2), "another version");
        k.tell(b, 1);
        k.tell(b, 2);
        assert!(!k.holds(b, 1) && !k.holds(b, 2), "told two versions");
        k.tell(b, 2);
        assert!(!k.holds(b, 2), "still two");
    }
}
