//! Directory listings fetched ahead for lookups. A program that walks a
//! directory (`ls -l`, `find`, `stat` of every file, a build reading its
//! sources) asks the kernel for one name at a time, and each is a round
//! trip to metadata. After a few such lookups in one directory the mount
//! fetches the whole directory with attributes in a few pages and answers
//! the following lookups from it.
//!
//! The answers are exactly as fresh as the kernel's own entry cache would
//! make them: a listing serves lookups for the entry TTL after it was
//! asked for, and the kernel is told to keep each answer only for what is
//! left of that. The mount always sees its own changes:
//!
//! * the names each of its changes adds and removes are applied to the
//!   listing (see `Client::watch_names`), so a listing still says which
//!   names are absent: a program creating files one after another has
//!   its "is the name free?" lookups answered here;
//! * after any change it sends (see `Client::mutation_epoch`) the
//!   attributes in the listings are no longer trusted: those names are
//!   looked up again;
//! * a listing fetched while a change was in flight is not kept, and a
//!   change that failed (its outcome unknown) drops its directories'
//!   listings.
//!
//! Pure bookkeeping: the caller fetches and passes the time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_client::{Client, ClientError};
use cairn_proto::dir_changes::NameChange;
use cairn_proto::meta_rpc::{DirEntryPlus, InodeAttr};
use cairn_proto::{ErrorCode, InodeId, RpcError};

/// Lookups sent to metadata in one directory within one TTL before the
/// directory is fetched whole.
pub const FETCH_AFTER: u32 = 4;
/// Largest listing kept; a bigger directory is listed this far only, and
/// names past it are looked up one by one.
pub const MAX_ENTRIES: usize = 8192;
/// Listings kept at once (the oldest goes first).
const MAX_DIRS: usize = 8;
/// After a listing came back incomplete, how long to leave that directory
/// to lookups before fetching it again.
const INCOMPLETE_BACKOFF: Duration = Duration::from_secs(30);

/// What the cache knows of one name.
#[derive(Debug, PartialEq)]
pub enum Cached {
    /// It exists with these attributes; the kernel may keep the answer for
    /// the duration.
    Found(InodeAttr, Duration),
    /// The directory held no such name when listed.
    Absent,
    /// Ask metadata.
    Unknown,
}

struct Listing {
    asked_at: Instant,
    /// The mutation epoch the attributes are good for.
    epoch: u64,
    complete: bool,
    /// `None`: added by this mount since; its attributes are not known.
    entries: HashMap<String, Option<InodeAttr>>,
}

#[derive(Default)]
struct Misses {
    count: u32,
    since: Option<Instant>,
    fetching: bool,
    /// No fetch before this (the last listing was incomplete).
    not_before: Option<Instant>,
}

#[derive(Default)]
struct State {
    dirs: HashMap<InodeId, Listing>,
    misses: HashMap<InodeId, Misses>,
}

pub struct LookupCache {
    ttl: Duration,
    state: Mutex<State>,
}

impl LookupCache {
    /// A cache whose answers live `ttl` (the mount's entry TTL); a zero
    /// TTL caches nothing.
    pub fn new(ttl: Duration) -> Self {
        LookupCache {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is known of `name` in `dir`, given the client's mutation
    /// epoch now.
    pub fn get(&self, dir: InodeId, name: &str, epoch: u64, now: Instant) -> Cached {
        let mut st = self.lock();
        let Some(l) = st.dirs.get(&dir) else {
            return Cached::Unknown;
        };
        let age = now.saturating_duration_since(l.asked_at);
        if age >= self.ttl {
            st.dirs.remove(&dir);
            return Cached::Unknown;
        }
        match l.entries.get(name) {
            Some(Some(a)) if l.epoch == epoch => Cached::Found(a.clone(), self.ttl - age),
            Some(_) => Cached::Unknown,
            None if l.complete => Cached::Absent,
            None => Cached::Unknown,
        }
    }

    /// Records a lookup in `dir` that went to metadata; true when the
    /// caller should now fetch the whole directory (and then call
    /// [`LookupCache::fill`] or [`LookupCache::fetch_failed`]). A
    /// directory is fetched at most once per TTL: while this mount keeps
    /// changing things, its listing still answers for absent names, and
    /// fetching it again would not make its attributes trusted for long.
    pub fn should_fetch(&self, dir: InodeId, now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let ttl = self.ttl;
        let mut st = self.lock();
        if st
            .dirs
            .get(&dir)
            .is_some_and(|l| now.saturating_duration_since(l.asked_at) < ttl)
        {
            return false;
        }
        if st.misses.len() > 4 * MAX_DIRS && !st.misses.contains_key(&dir) {
            // Forget directories that saw a lookup or two and no more.
            st.misses
                .retain(|_, m| m.fetching || m.not_before.is_some_and(|t| now < t));
        }
        let m = st.misses.entry(dir).or_default();
        if m.fetching || m.not_before.is_some_and(|t| now < t) {
            return false;
        }
        let stale = m
            .since
            .is_none_or(|s| now.saturating_duration_since(s) >= ttl);
        if stale {
            m.count = 0;
            m.since = Some(now);
        }
        m.count += 1;
        if m.count < FETCH_AFTER {
            return false;
        }
        m.fetching = true;
        m.count = 0;
        true
    }

    /// Stores the listing of `dir` asked for at `asked_at` while the epoch
    /// was `epoch_before`; dropped if a change was sent since (`epoch_now`
    /// differs), as the listing may predate it.
    pub fn fill(
        &self,
        dir: InodeId,
        entries: Vec<DirEntryPlus>,
        complete: bool,
        asked_at: Instant,
        epoch_before: u64,
        epoch_now: u64,
    ) {
        let mut st = self.lock();
        if let Some(m) = st.misses.get_mut(&dir) {
            m.fetching = false;
            if !complete {
                m.not_before = Some(asked_at + INCOMPLETE_BACKOFF);
            }
        }
        if epoch_before != epoch_now {
            return;
        }
        if st.dirs.len() >= MAX_DIRS && !st.dirs.contains_key(&dir) {
            if let Some(oldest) = st
                .dirs
                .iter()
                .min_by_key(|(_, l)| l.asked_at)
                .map(|(d, _)| *d)
            {
                st.dirs.remove(&oldest);
            }
        }
        let entries = entries
            .into_iter()
            .map(|e| (e.name, Some(e.attr)))
            .collect();
        st.dirs.insert(
            dir,
            Listing {
                asked_at,
                epoch: epoch_before,
                complete,
                entries,
            },
        );
    }

    /// Applies the names a change from this mount added and removed, once
    /// it was answered; a change that failed may or may not have been
    /// applied, so its directories' listings are dropped.
    pub fn names_changed(&self, changes: &[NameChange], applied: bool) {
        let mut st = self.lock();
        for c in changes {
            let (NameChange::Added { dir, name } | NameChange::Removed { dir, name }) = c;
            if !applied {
                st.dirs.remove(dir);
                continue;
            }
            let Some(l) = st.dirs.get_mut(dir) else {
                continue;
            };
            match c {
                NameChange::Added { .. } => {
                    l.entries.insert(name.clone(), None);
                }
                NameChange::Removed { .. } => {
                    l.entries.remove(name);
                }
            }
        }
    }

    /// The fetch [`LookupCache::should_fetch`] asked for failed; lookups
    /// in `dir` go to metadata and may ask again later.
    pub fn fetch_failed(&self, dir: InodeId) {
        if let Some(m) = self.lock().misses.get_mut(&dir) {
            m.fetching = false;
        }
    }
}

/// Looks `name` up in `dir`: from a fresh listing when there is one
/// (fetching the directory when lookups in it keep coming), else from
/// metadata. With the answer, how long the kernel may keep it.
pub async fn lookup(
    cache: &LookupCache,
    client: &Client,
    dir: InodeId,
    name: &str,
) -> Result<(InodeAttr, Duration), ClientError> {
    let absent = || {
        ClientError::Rpc(RpcError::new(
            ErrorCode::NotFound,
            format!("no entry {name:?} in directory {dir}"),
        ))
    };
    let epoch = client.mutation_epoch();
    let asked_at = Instant::now();
    match cache.get(dir, name, epoch, asked_at) {
        Cached::Found(a, ttl) => return Ok((a, ttl)),
        Cached::Absent => return Err(absent()),
        Cached::Unknown => {}
    }
    if cache.should_fetch(dir, asked_at) {
        match client.list_plus(dir, MAX_ENTRIES).await {
            Ok((entries, complete)) => {
                let now = client.mutation_epoch();
                cache.fill(dir, entries, complete, asked_at, epoch, now);
                match cache.get(dir, name, now, Instant::now()) {
                    Cached::Found(a, ttl) => return Ok((a, ttl)),
                    Cached::Absent => return Err(absent()),
                    Cached::Unknown => {}
                }
            }
            Err(e) => {
                tracing::debug!(%dir, error = %e, "listing a directory ahead of lookups failed");
                cache.fetch_failed(dir);
            }
        }
    }
    Ok((client.lookup(dir, name).await?, cache.ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::meta_rpc::FileKind;

    const TTL: Duration = Duration::from_secs(1);
    const DIR: InodeId = InodeId(7);

    fn attr(ino: u64) -> InodeAttr {
        InodeAttr {
            ino: InodeId(ino),
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: ino,
            nlink: 1,
            mtime_ns: 0,
            ctime_ns: 0,
            atime_ns: 0,
            version: 1,
        }
    }

    fn entry(name: &str, ino: u64) -> DirEntryPlus {
        DirEntryPlus {
            name: name.into(),
            attr: attr(ino),
        }
    }

    /// Misses `dir` until the cache asks for a fetch; how many it took.
    fn misses_until_fetch(c: &LookupCache, now: Instant) -> u32 {
        for i in 1..=FETCH_AFTER {
            if c.should_fetch(DIR, now) {
                return i;
            }
        }
        panic!("no fetch after {FETCH_AFTER} misses");
    }

    #[test]
    fn fetches_after_a_few_misses_then_answers() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        assert_eq!(c.get(DIR, "a", 0, t0), Cached::Unknown);
        assert_eq!(misses_until_fetch(&c, t0), FETCH_AFTER);
        // A second fetch is not asked for while one is out.
        assert!(!c.should_fetch(DIR, t0));
        c.fill(DIR, vec![entry("a", 10), entry("b", 11)], true, t0, 0, 0);
        let later = t0 + Duration::from_millis(300);
        assert_eq!(
            c.get(DIR, "b", 0, later),
            Cached::Found(attr(11), Duration::from_millis(700))
        );
        assert_eq!(c.get(DIR, "zz", 0, later), Cached::Absent);
        assert_eq!(c.get(InodeId(8), "a", 0, later), Cached::Unknown);
    }

    #[test]
    fn expires_after_the_ttl_counted_from_the_request() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("a", 10)], true, t0, 0, 0);
        assert_eq!(c.get(DIR, "a", 0, t0 + TTL), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", 0, t0 + TTL), Cached::Unknown);
    }

    fn added(name: &str) -> NameChange {
        NameChange::Added {
            dir: DIR,
            name: name.into(),
        }
    }

    #[test]
    fn a_change_untrusts_attributes_and_races_with_fetches() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("a", 10)], true, t0, 0, 0);
        // This mount changed something: attributes are looked up again,
        // names still known absent are.
        assert_eq!(c.get(DIR, "a", 2, t0), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", 2, t0), Cached::Absent);
        // The listing is not fetched again within its TTL.
        for _ in 0..3 * FETCH_AFTER {
            assert!(!c.should_fetch(DIR, t0));
        }
        // A listing fetched while a change was in flight is not kept.
        let t1 = t0 + TTL;
        assert_eq!(c.get(DIR, "zz", 2, t1), Cached::Unknown);
        misses_until_fetch(&c, t1);
        c.fill(DIR, vec![entry("a", 10)], true, t1, 2, 3);
        assert_eq!(c.get(DIR, "a", 3, t1), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", 3, t1), Cached::Unknown);
    }

    #[test]
    fn own_name_changes_are_applied_and_failures_drop_the_listing() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("a", 10), entry("b", 11)], true, t0, 0, 0);
        let removed = NameChange::Removed {
            dir: DIR,
            name: "a".into(),
        };
        c.names_changed(&[added("new"), removed], true);
        assert_eq!(c.get(DIR, "new", 2, t0), Cached::Unknown);
        assert_eq!(c.get(DIR, "a", 2, t0), Cached::Absent);
        assert_eq!(c.get(DIR, "other", 2, t0), Cached::Absent);
        // A change that failed may have happened: nothing is known.
        c.names_changed(&[added("maybe")], false);
        assert_eq!(c.get(DIR, "maybe", 4, t0), Cached::Unknown);
        assert_eq!(c.get(DIR, "other", 4, t0), Cached::Unknown);
    }

    #[test]
    fn incomplete_listings_answer_only_what_they_hold() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("a", 10)], false, t0, 0, 0);
        assert!(matches!(c.get(DIR, "a", 0, t0), Cached::Found(..)));
        assert_eq!(c.get(DIR, "b", 0, t0), Cached::Unknown);
        // And the directory is not fetched again right away.
        for _ in 0..3 * FETCH_AFTER {
            assert!(!c.should_fetch(DIR, t0 + TTL));
        }
        assert_eq!(misses_until_fetch(&c, t0 + INCOMPLETE_BACKOFF), FETCH_AFTER);
    }

    #[test]
    fn zero_ttl_never_fetches_and_listings_are_bounded() {
        let off = LookupCache::new(Duration::ZERO);
        for _ in 0..10 {
            assert!(!off.should_fetch(DIR, Instant::now()));
        }
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        for d in 0..(MAX_DIRS as u64 + 3) {
            c.fill(InodeId(100 + d), vec![entry("a", d)], true, t0, 0, 0);
        }
        assert!(c.lock().dirs.len() <= MAX_DIRS);
        // After a failed fetch the directory may be fetched again.
        misses_until_fetch(&c, t0);
        c.fetch_failed(DIR);
        assert_eq!(misses_until_fetch(&c, t0), FETCH_AFTER);
    }
}
