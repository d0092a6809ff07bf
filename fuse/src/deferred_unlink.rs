//! Unlinks answered before metadata has applied them.
//!
//! The kernel sends one unlink of a directory at a time (it holds the
//! directory's lock across the request), so `rm` of many files through
//! a mount that waits for each Raft commit runs at one commit per file.
//! The mount instead answers an unlink at once and sends it in the
//! background, up to [`MAX_IN_FLIGHT`] at a time, so the commits of a
//! whole `rm` overlap (the leader commits them in groups). Like a local
//! filesystem, an unlink answered is durable once `fsync` of its
//! directory returns (`fsyncdir` waits for every pending unlink and
//! reports one that failed). Until then nothing on this mount may see the
//! difference:
//!
//! * a lookup of a pending name answers "no such file" ([`is_pending`]);
//! * the directory's attributes are answered as the unlink will leave
//!   them (modified now; [`PendingUnlinks::dir_attr`]);
//! * any other request first waits for every pending unlink
//!   ([`PendingUnlinks::settle`]), so a listing, create, rename or rmdir
//!   sees the names gone, and a file's link count is right.
//!
//! Only unlinks of files not open in this mount are deferred (an open
//! file's last name is renamed to a hidden one instead, see
//! `filesystem/unlink.rs`), and only in a directory whose fresh
//! attributes the mount holds (else its predicted attributes could not be
//! answered). Other clients see the
//! name gone once its commit lands, a few milliseconds later.
//!
//! [`is_pending`]: PendingUnlinks::is_pending

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cairn_proto::meta_rpc::InodeAttr;
use cairn_proto::InodeId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Unlinks sent and not yet answered, at most; one more waits for a slot
/// before it is answered.
pub const MAX_IN_FLIGHT: u32 = 64;

/// What the mount knows of its pending unlinks: pure bookkeeping.
#[derive(Default)]
struct State {
    names: HashSet<(InodeId, String)>,
    /// Each directory with pending unlinks: its attributes as they will
    /// be, and how many are pending.
    dirs: HashMap<InodeId, (InodeAttr, usize)>,
    /// Unlinks that failed since the last [`State::take_failures`].
    failures: u64,
}

impl State {
    /// Records the unlink of `name` in `parent`, whose attributes are
    /// `dir` unless unlinks already pending there say more; `false` if the
    /// same name is already pending.
    fn begin(&mut self, parent: InodeId, name: &str, dir: &InodeAttr, now_ns: i64) -> bool {
        if !self.names.insert((parent, name.to_string())) {
            return false;
        }
        let (attr, count) = self.dirs.entry(parent).or_insert((dir.clone(), 0));
        *count += 1;
        attr.mtime_ns = attr.mtime_ns.max(now_ns);
        attr.ctime_ns = attr.ctime_ns.max(now_ns);
        true
    }

    /// Records that the unlink of `name` in `parent` was answered.
    fn end(&mut self, parent: InodeId, name: &str, failed: bool) {
        if !self.names.remove(&(parent, name.to_string())) {
            return;
        }
        if let Some((_, count)) = self.dirs.get_mut(&parent) {
            *count -= 1;
            if *count == 0 {
                self.dirs.remove(&parent);
            }
        }
        if failed {
            self.failures += 1;
        }
    }

    fn take_failures(&mut self) -> u64 {
        std::mem::take(&mut self.failures)
    }
}

/// The unlinks this mount answered and has not heard back on.
pub struct PendingUnlinks {
    state: Mutex<State>,
    /// One permit per unlink in flight.
    slots: Arc<Semaphore>,
}

impl Default for PendingUnlinks {
    fn default() -> Self {
        PendingUnlinks {
            state: Mutex::default(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
        }
    }
}

/// An unlink on its way; hand it back to [`PendingUnlinks::end`].
pub struct InFlight {
    parent: InodeId,
    name: String,
    _slot: OwnedSemaphorePermit,
}

impl PendingUnlinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot and records the unlink of `name` in `parent`
    /// (attributes `dir`, as last answered); `None` if that name is
    /// already pending.
    pub async fn begin(
        &self,
        parent: InodeId,
        name: &str,
        dir: &InodeAttr,
        now_ns: i64,
    ) -> Option<InFlight> {
        // The semaphore is never closed.
        let slot = self.slots.clone().acquire_owned().await.ok()?;
        self.lock()
            .begin(parent, name, dir, now_ns)
            .then(|| InFlight {
                parent,
                name: name.to_string(),
                _slot: slot,
            })
    }

    /// Records that `unlink` was answered (`failed`: not applied, for a
    /// reason other than the name being gone already). The bookkeeping
    /// changes before the slot is given back, so [`PendingUnlinks::settle`]
    /// returning means it is done.
    pub fn end(&self, unlink: InFlight, failed: bool) {
        self.lock().end(unlink.parent, &unlink.name, failed);
        drop(unlink);
    }

    pub fn is_empty(&self) -> bool {
        self.lock().names.is_empty()
    }

    pub fn is_pending(&self, parent: InodeId, name: &str) -> bool {
        self.lock().names.contains(&(parent, name.to_string()))
    }

    /// Directory `ino`'s attributes as its pending unlinks will leave
    /// them, if it has any.
    pub fn dir_attr(&self, ino: InodeId) -> Option<InodeAttr> {
        self.lock().dirs.get(&ino).map(|(a, _)| a.clone())
    }

    /// Waits until every unlink sent so far is answered (later ones queue
    /// behind: the semaphore is fair).
    pub async fn settle(&self) {
        if self.is_empty() {
            return;
        }
        // The semaphore is never closed.
        let _all = self.slots.acquire_many(MAX_IN_FLIGHT).await;
    }

    /// [`PendingUnlinks::settle`], then how many unlinks failed since the
    /// last call.
    pub async fn settle_failures(&self) -> u64 {
        self.settle().await;
        self.lock().take_failures()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deferred_create::pending_attr;
    use cairn_proto::meta_rpc::{FileKind, Owner};

    fn dir(mtime_ns: i64) -> InodeAttr {
        let owner = Owner {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        InodeAttr {
            kind: FileKind::Dir,
            nlink: 2,
            ..pending_attr(InodeId(7), owner, mtime_ns)
        }
    }

    #[test]
    fn a_directory_is_predicted_modified_until_its_last_unlink_lands() {
        let mut st = State::default();
        let d = InodeId(7);
        assert!(st.begin(d, "a", &dir(100), 200));
        assert!(st.begin(d, "b", &dir(100), 150));
        assert!(!st.begin(d, "a", &dir(100), 300), "a is already pending");
        let (a, n) = st.dirs[&d].clone();
        assert_eq!((a.mtime_ns, a.ctime_ns, a.nlink, n), (200, 200, 2, 2));
        st.end(d, "a", false);
        assert!(st.names.contains(&(d, "b".to_string())));
        assert!(st.dirs.contains_key(&d));
        st.end(d, "b", true);
        assert!(st.names.is_empty() && st.dirs.is_empty());
        assert_eq!(st.take_failures(), 1);
        assert_eq!(st.take_failures(), 0);
        // An end for a name not pending changes nothing.
        st.end(d, "zz", true);
        assert_eq!(st.failures, 0);
    }

    #[tokio::test]
    async fn settle_waits_for_every_unlink_in_flight() {
        let p = Arc::new(PendingUnlinks::default());
        let d = InodeId(7);
        let a = p.begin(d, "a", &dir(1), 2).await.expect("slot");
        let b = p.begin(d, "b", &dir(1), 2).await.expect("slot");
        assert!(p.begin(d, "a", &dir(1), 2).await.is_none());
        assert!(p.is_pending(d, "a") && !p.is_pending(d, "c"));
        assert!(p.dir_attr(d).is_some());
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.settle_failures().await }
        });
        p.end(a, false);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "b is still in flight");
        p.end(b, true);
        assert_eq!(waiter.await.expect("settled"), 1);
        assert!(p.is_empty() && p.dir_attr(d).is_none());
    }

    #[tokio::test]
    async fn more_than_the_bound_waits_for_a_slot() {
        let p = Arc::new(PendingUnlinks::default());
        let d = InodeId(7);
        let mut held = Vec::new();
        for i in 0..MAX_IN_FLIGHT {
            held.push(
                p.begin(d, &format!("f{i}"), &dir(1), 2)
                    .await
                    .expect("slot"),
            );
        }
        let next = tokio::spawn({
            let p = p.clone();
            async move { p.begin(d, "last", &dir(1), 2).await.is_some() }
        });
        tokio::task::yield_now().await;
        assert!(!next.is_finished(), "no slot is free");
        p.end(held.pop().expect("held"), false);
        assert!(next.await.expect("got a slot"));
    }
}
