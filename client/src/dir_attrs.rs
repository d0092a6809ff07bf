//! Directory attributes as metadata answered them with this client's own
//! changes to their entries (see `cairn_proto::dir_changes`), so a mount
//! can answer the kernel's "what are the parent's attributes now?" after a
//! create or unlink without a round trip.
//!
//! Each copy is as of the moment metadata applied the change (or later),
//! so it is exactly what a `GetAttr` sent then would have answered; the
//! reader decides how old a copy it accepts. A change this client sends
//! that may alter a copy in a way the answer does not show
//! ([`Stales`]) drops it, and an answer that was in flight meanwhile is
//! not kept, as it may predate that change. Pure bookkeeping: the caller
//! passes the time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_proto::dir_changes::Stales;
use cairn_proto::meta_rpc::InodeAttr;
use cairn_proto::InodeId;

/// Directories remembered at once; past this the oldest copies go.
const MAX_DIRS: usize = 1024;

#[derive(Default)]
struct State {
    dirs: HashMap<InodeId, (InodeAttr, Instant)>,
    /// Moves when a change that stales copies is sent and again when it
    /// is answered.
    stalings: u64,
}

impl State {
    fn stale(&mut self, stales: Stales) {
        match stales {
            Stales::Nothing => return,
            Stales::Inode(ino) => {
                self.dirs.remove(&ino);
            }
            Stales::All => self.dirs.clear(),
        }
        self.stalings += 1;
    }
}

#[derive(Default)]
pub struct DirAttrs {
    state: Mutex<State>,
}

impl DirAttrs {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called before a change is sent: drops what it may stale. Returns
    /// the count to hand to [`DirAttrs::answered`].
    pub fn sending(&self, stales: Stales) -> u64 {
        let mut st = self.lock();
        st.stale(stales);
        st.stalings
    }

    /// Called when the change is answered (or failed, with no `dirs`):
    /// drops what it staled again, then keeps the directory attributes it
    /// was answered with, unless another staling change was sent or
    /// answered since `since`. A copy never replaces a newer one.
    pub fn answered(&self, stales: Stales, since: u64, dirs: Vec<InodeAttr>, now: Instant) {
        let mut st = self.lock();
        let undisturbed = st.stalings == since;
        st.stale(stales);
        if !undisturbed {
            return;
        }
        for a in dirs {
            if st
                .dirs
                .get(&a.ino)
                .is_some_and(|(b, _)| b.version > a.version)
            {
                continue;
            }
            if st.dirs.len() >= MAX_DIRS && !st.dirs.contains_key(&a.ino) {
                let oldest = st.dirs.iter().min_by_key(|(_, (_, t))| *t).map(|(d, _)| *d);
                if let Some(d) = oldest {
                    st.dirs.remove(&d);
                }
            }
            st.dirs.insert(a.ino, (a, now));
        }
    }

    /// Directory `ino`'s attributes as answered with this client's last
    /// change to its entries, if that was less than `max_age` ago; with
    /// what is left of `max_age`.
    pub fn get(
        &self,
        ino: InodeId,
        max_age: Duration,
        now: Instant,
    ) -> Option<(InodeAttr, Duration)> {
        let st = self.lock();
        let (a, at) = st.dirs.get(&ino)?;
        let left = max_age.checked_sub(now.saturating_duration_since(*at))?;
        (!left.is_zero()).then(|| (a.clone(), left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::meta_rpc::FileKind;

    fn dir(ino: u64, version: u64) -> InodeAttr {
        InodeAttr {
            ino: InodeId(ino),
            kind: FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            nlink: 2,
            mtime_ns: version as i64,
            ctime_ns: version as i64,
            version,
            atime_ns: 0,
        }
    }

    const AGE: Duration = Duration::from_secs(1);

    fn change(c: &DirAttrs, stales: Stales, dirs: Vec<InodeAttr>, t: Instant) {
        let s = c.sending(stales);
        c.answered(stales, s, dirs, t);
    }

    #[test]
    fn an_answer_serves_until_it_is_too_old() {
        let c = DirAttrs::default();
        let t = Instant::now();
        change(&c, Stales::Nothing, vec![dir(2, 5)], t);
        assert_eq!(c.get(InodeId(2), AGE, t).map(|(a, _)| a.version), Some(5));
        assert_eq!(c.get(InodeId(2), AGE, t + AGE), None);
        assert_eq!(c.get(InodeId(3), AGE, t), None);
    }

    #[test]
    fn an_older_answer_never_replaces_a_newer_one() {
        let c = DirAttrs::default();
        let t = Instant::now();
        change(&c, Stales::Nothing, vec![dir(2, 7)], t);
        change(&c, Stales::Nothing, vec![dir(2, 6)], t);
        assert_eq!(c.get(InodeId(2), AGE, t).map(|(a, _)| a.version), Some(7));
    }

    #[test]
    fn a_staling_change_drops_copies_and_answers_in_flight() {
        let c = DirAttrs::default();
        let t = Instant::now();
        change(&c, Stales::Nothing, vec![dir(2, 1), dir(3, 1)], t);
        // A create in 3 is in flight while a chmod of 2 is sent.
        let create = c.sending(Stales::Nothing);
        let chmod = c.sending(Stales::Inode(InodeId(2)));
        assert_eq!(c.get(InodeId(2), AGE, t), None);
        assert!(c.get(InodeId(3), AGE, t).is_some());
        c.answered(Stales::Nothing, create, vec![dir(2, 2)], t);
        assert_eq!(c.get(InodeId(2), AGE, t), None);
        c.answered(Stales::Inode(InodeId(2)), chmod, vec![], t);
        assert_eq!(c.get(InodeId(2), AGE, t), None);
    }

    #[test]
    fn a_rename_keeps_only_the_parents_it_was_answered_with() {
        let c = DirAttrs::default();
        let t = Instant::now();
        change(&c, Stales::Nothing, vec![dir(2, 1), dir(3, 1)], t);
        change(&c, Stales::All, vec![dir(4, 1)], t);
        assert_eq!(c.get(InodeId(2), AGE, t), None);
        assert_eq!(c.get(InodeId(3), AGE, t), None);
        assert!(c.get(InodeId(4), AGE, t).is_some());
    }
}
