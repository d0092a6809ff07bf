//! What a client knows of its own changes to the namespace, so caches of
//! what it read (the mount's lookups and attributes) can tell when they
//! may be out of date and keep up with the changes it made:
//!
//! * a count of changes sent and answered ([`Client::mutation_epoch`]);
//! * the directory attributes metadata answered each change with
//!   ([`Client::changed_dir_attr`], see [`crate::dir_attrs`]);
//! * each change, told to watchers when it is answered
//!   ([`Client::watch_changes`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use cairn_net::meta_caller::MetaCallError;
use cairn_proto::meta_rpc::{InodeAttr, NsWrite, NsWriteReply};
use cairn_proto::InodeId;

use super::Client;
use crate::dir_attrs::DirAttrs;

/// Told of each namespace change once it is answered, and whether it was
/// applied; see [`Client::watch_changes`].
pub type ChangeWatch = Box<dyn Fn(&NsWrite, bool) + Send + Sync>;

#[derive(Default)]
pub(super) struct OwnChanges {
    /// Changes sent, counted before and after each.
    mutations: AtomicU64,
    dir_attrs: DirAttrs,
    watchers: RwLock<Vec<ChangeWatch>>,
}

/// A change on its way; see [`OwnChanges::sending`].
pub(super) struct Sent(u64);

impl OwnChanges {
    /// Called before change `req` is sent.
    pub(super) fn sending(&self, req: &NsWrite) -> Sent {
        // Counted on both sides: a read that overlaps the change in any
        // way sees the count move.
        self.mutations.fetch_add(1, Ordering::SeqCst);
        Sent(self.dir_attrs.sending(req.stales()))
    }

    /// Called with change `req`'s answer; returns it.
    pub(super) fn answered(
        &self,
        req: &NsWrite,
        sent: Sent,
        r: Result<NsWriteReply, MetaCallError>,
    ) -> Result<NsWriteReply, MetaCallError> {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        for watch in self
            .watchers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            watch(req, r.is_ok());
        }
        let dirs = match &r {
            Ok(NsWriteReply::Done { dirs, .. }) => dirs.clone(),
            _ => Vec::new(),
        };
        self.dir_attrs
            .answered(req.stales(), sent.0, dirs, Instant::now());
        r
    }
}

impl Client {
    /// A count that moves whenever this client sends a change to the
    /// namespace (and again when it is answered). Anything read while the
    /// count stayed put reflects every change this client made.
    pub fn mutation_epoch(&self) -> u64 {
        self.inner.changes.mutations.load(Ordering::SeqCst)
    }

    /// Calls `watch` with each change this client sends to the namespace,
    /// once it is answered: with `true` when it was applied, `false` when
    /// it failed (refused, or its outcome is unknown).
    pub fn watch_changes(&self, watch: ChangeWatch) {
        self.inner
            .changes
            .watchers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(watch);
    }

    /// Directory `ino`'s attributes as metadata answered them with this
    /// client's last change to its entries, if that was less than
    /// `max_age` ago (see [`crate::dir_attrs`]); with what is left of
    /// `max_age`.
    pub fn changed_dir_attr(
        &self,
        ino: InodeId,
        max_age: Duration,
    ) -> Option<(InodeAttr, Duration)> {
        self.inner
            .changes
            .dir_attrs
            .get(ino, max_age, Instant::now())
    }
}
