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
//!   listing (see `Client::watch_changes`), so a listing still says which
//!   names are absent: a program creating files one after another has
//!   its "is the name free?" lookups answered here;
//! * the attributes a change alters (the inode it names, the directories
//!   whose entries it changes, the inodes behind the names it removes or
//!   replaces, see [`crate::stale_inodes`]) are no longer vouched for:
//!   those names are looked up again. A change whose inodes cannot be
//!   told (a rename of a name no listing holds) stales every attribute
//!   listed before it;
//! * a listing fetched while a change was in flight (see
//!   `Client::mutation_epoch`) is not kept, and a change that failed (its
//!   outcome unknown) drops its directories' listings.
//!
//! Pure bookkeeping: the caller fetches and passes the time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_client::{Client, ClientError};
use cairn_proto::dir_changes::{NameChange, Stales};
use cairn_proto::meta_rpc::{DirEntryPlus, InodeAttr, NsWrite};
use cairn_proto::{ErrorCode, InodeId, RpcError};

use crate::stale_inodes::StaleInodes;

/// Lookups sent to metadata in one directory within one TTL before the
/// directory is fetched whole.
pub const FETCH_AFTER: u32 = 4;
/// Largest listing kept; a bigger directory is listed this far only, and
/// names past it are looked up one by one.
pub const MAX_ENTRIES: usize = 131_072;
/// Listings kept at once (the oldest goes first).
const MAX_DIRS: usize = 8;
/// Entries kept over all listings (about 200 bytes each): the oldest
/// listings go first to make room.
const MAX_TOTAL_ENTRIES: usize = 2 * MAX_ENTRIES;
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

/// One name in a listing.
enum Entry {
    /// As listed (vouched for unless a change since altered the inode).
    Listed(InodeAttr),
    /// Added by this mount since: exists, attributes not known.
    Added,
}

struct Listing {
    asked_at: Instant,
    /// [`StaleInodes::now`] when it was stored.
    seq: u64,
    complete: bool,
    entries: HashMap<String, Entry>,
}

/// What a listing says of a name that a change removes or replaces.
enum Behind {
    Inode(InodeId),
    Nothing,
    Unknown,
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
    stale: StaleInodes,
}

impl State {
    /// The inode a fresh listing holds under `name` in `dir`.
    fn behind(&self, dir: InodeId, name: &str, now: Instant, ttl: Duration) -> Behind {
        let Some(l) = self.dirs.get(&dir) else {
            return Behind::Unknown;
        };
        if now.saturating_duration_since(l.asked_at) >= ttl {
            return Behind::Unknown;
        }
        match l.entries.get(name) {
            Some(Entry::Listed(a)) => Behind::Inode(a.ino),
            Some(Entry::Added) => Behind::Unknown,
            None if l.complete => Behind::Nothing,
            None => Behind::Unknown,
        }
    }
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

    /// What is known of `name` in `dir`.
    pub fn get(&self, dir: InodeId, name: &str, now: Instant) -> Cached {
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
            Some(Entry::Listed(a)) if !st.stale.changed_since(a.ino, l.seq) => {
                Cached::Found(a.clone(), self.ttl - age)
            }
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
        st.dirs.remove(&dir);
        while st.dirs.len() >= MAX_DIRS
            || st.dirs.values().map(|l| l.entries.len()).sum::<usize>() + entries.len()
                > MAX_TOTAL_ENTRIES
        {
            let Some(oldest) = st
                .dirs
                .iter()
                .min_by_key(|(_, l)| l.asked_at)
                .map(|(d, _)| *d)
            else {
                break;
            };
            st.dirs.remove(&oldest);
        }
        let entries = entries
            .into_iter()
            .map(|e| (e.name, Entry::Listed(e.attr)))
            .collect();
        let seq = st.stale.now();
        st.dirs.insert(
            dir,
            Listing {
                asked_at,
                seq,
                complete,
                entries,
            },
        );
    }

    /// Takes in a change this mount sent, once it was answered (`applied`)
    /// or failed (it may or may not have been applied: its directories'
    /// listings are dropped). See the module comment.
    pub fn observe(&self, req: &NsWrite, applied: bool, now: Instant) {
        let mut st = self.lock();
        let mut inos = req.changed_dirs();
        if let Stales::Inode(ino) = req.stales() {
            inos.push(ino);
        }
        let mut all = false;
        for (dir, name) in req.removed_or_replaced() {
            match st.behind(dir, name, now, self.ttl) {
                Behind::Inode(ino) => inos.push(ino),
                Behind::Nothing => {}
                Behind::Unknown => all = true,
            }
        }
        let oldest = st.dirs.values().map(|l| l.seq).min();
        let oldest = oldest.unwrap_or_else(|| st.stale.now());
        st.stale.mark(&inos, all, oldest);
        for c in req.name_changes() {
            let (NameChange::Added { dir, .. } | NameChange::Removed { dir, .. }) = &c;
            if !applied {
                st.dirs.remove(dir);
                continue;
            }
            let Some(l) = st.dirs.get_mut(dir) else {
                continue;
            };
            match c {
                NameChange::Added { name, .. } => {
                    l.entries.insert(name, Entry::Added);
                }
                NameChange::Removed { name, .. } => {
                    l.entries.remove(&name);
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
///
/// `settled` is awaited before a fetch: it lets this mount's changes that
/// are on their way land (deferred unlinks), as a listing fetched while
/// one is in flight is not kept.
pub async fn lookup(
    cache: &LookupCache,
    client: &Client,
    dir: InodeId,
    name: &str,
    settled: impl std::future::Future<Output = ()>,
) -> Result<(InodeAttr, Duration), ClientError> {
    let absent = || {
        ClientError::Rpc(RpcError::new(
            ErrorCode::NotFound,
            format!("no entry {name:?} in directory {dir}"),
        ))
    };
    let asked_at = Instant::now();
    match cache.get(dir, name, asked_at) {
        Cached::Found(a, ttl) => return Ok((a, ttl)),
        Cached::Absent => return Err(absent()),
        Cached::Unknown => {}
    }
    if cache.should_fetch(dir, asked_at) {
        settled.await;
        let epoch = client.mutation_epoch();
        let asked_at = Instant::now();
        match client.inodes().list_plus(dir, MAX_ENTRIES).await {
            Ok((entries, complete)) => {
                let now = client.mutation_epoch();
                cache.fill(dir, entries, complete, asked_at, epoch, now);
                match cache.get(dir, name, Instant::now()) {
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
    Ok((client.inodes().lookup(dir, name).await?, cache.ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::test_file as attr;
    use cairn_proto::meta_rpc::{Owner, RenameMode};

    const TTL: Duration = Duration::from_secs(1);
    const DIR: InodeId = InodeId(7);

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
        assert_eq!(c.get(DIR, "a", t0), Cached::Unknown);
        assert_eq!(misses_until_fetch(&c, t0), FETCH_AFTER);
        // A second fetch is not asked for while one is out.
        assert!(!c.should_fetch(DIR, t0));
        c.fill(DIR, vec![entry("a", 10), entry("b", 11)], true, t0, 0, 0);
        let later = t0 + Duration::from_millis(300);
        assert_eq!(
            c.get(DIR, "b", later),
            Cached::Found(attr(11), Duration::from_millis(700))
        );
        assert_eq!(c.get(DIR, "zz", later), Cached::Absent);
        assert_eq!(c.get(InodeId(8), "a", later), Cached::Unknown);
    }

    #[test]
    fn expires_after_the_ttl_counted_from_the_request() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("a", 10)], true, t0, 0, 0);
        assert_eq!(c.get(DIR, "a", t0 + TTL), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", t0 + TTL), Cached::Unknown);
    }

    fn owner() -> Owner {
        Owner {
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn create(name: &str) -> NsWrite {
        NsWrite::CreateFile {
            parent: DIR,
            name: name.into(),
            owner: owner(),
        }
    }

    fn unlink(dir: InodeId, name: &str) -> NsWrite {
        NsWrite::Unlink {
            parent: dir,
            name: name.into(),
        }
    }

    /// A listing of DIR with a (10), b (11) and c (12), fetched at `t`.
    fn listed(t: Instant) -> LookupCache {
        let c = LookupCache::new(TTL);
        misses_until_fetch(&c, t);
        let entries = vec![entry("a", 10), entry("b", 11), entry("c", 12)];
        c.fill(DIR, entries, true, t, 0, 0);
        c
    }

    fn found(c: &LookupCache, name: &str, t: Instant) -> bool {
        matches!(c.get(DIR, name, t), Cached::Found(..))
    }

    #[test]
    fn a_change_stales_only_the_attributes_it_alters() {
        let t0 = Instant::now();
        let c = listed(t0);
        // Writing to b stales b only.
        let write = NsWrite::WriteInline {
            ino: InodeId(11),
            parts: vec![(0, vec![1])],
        };
        c.observe(&write, true, t0);
        assert!(found(&c, "a", t0));
        assert_eq!(c.get(DIR, "b", t0), Cached::Unknown);
        // Unlinking a stales a (another name may link it) and removes it.
        c.observe(&unlink(DIR, "a"), true, t0);
        assert_eq!(c.get(DIR, "a", t0), Cached::Absent);
        assert!(found(&c, "c", t0));
        // A create adds a name whose attributes are asked for.
        c.observe(&create("new"), true, t0);
        assert_eq!(c.get(DIR, "new", t0), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", t0), Cached::Absent);
        assert!(found(&c, "c", t0));
        // The listing is not fetched again within its TTL.
        for _ in 0..3 * FETCH_AFTER {
            assert!(!c.should_fetch(DIR, t0));
        }
    }

    #[test]
    fn the_directory_itself_is_stale_after_a_change_to_its_entries() {
        let t0 = Instant::now();
        let c = LookupCache::new(TTL);
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("sub", 40), entry("f", 41)], true, t0, 0, 0);
        c.observe(
            &NsWrite::CreateFile {
                parent: InodeId(40),
                name: "x".into(),
                owner: owner(),
            },
            true,
            t0,
        );
        assert_eq!(c.get(DIR, "sub", t0), Cached::Unknown);
        assert!(found(&c, "f", t0));
    }

    #[test]
    fn a_change_to_a_name_no_listing_holds_stales_everything() {
        let t0 = Instant::now();
        let c = listed(t0);
        // The unlinked file in another directory may be a link to a.
        c.observe(&unlink(InodeId(99), "x"), true, t0);
        assert_eq!(c.get(DIR, "a", t0), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", t0), Cached::Absent);
        // A rename within the listing names what it moves and replaces.
        let t1 = t0 + TTL;
        let c = listed(t1);
        let rename = NsWrite::Rename {
            parent: DIR,
            name: "a".into(),
            new_parent: DIR,
            new_name: "b".into(),
            mode: RenameMode::Replace,
        };
        c.observe(&rename, true, t1);
        assert_eq!(c.get(DIR, "a", t1), Cached::Absent);
        assert_eq!(c.get(DIR, "b", t1), Cached::Unknown);
        assert!(found(&c, "c", t1));
    }

    #[test]
    fn failures_drop_the_listing_and_fetches_race_with_changes() {
        let t0 = Instant::now();
        let c = listed(t0);
        // A change that failed may have happened: nothing is known.
        c.observe(&create("maybe"), false, t0);
        assert_eq!(c.get(DIR, "maybe", t0), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", t0), Cached::Unknown);
        // A listing fetched while a change was in flight is not kept.
        let t1 = t0 + TTL;
        misses_until_fetch(&c, t1);
        c.fill(DIR, vec![entry("a", 10)], true, t1, 2, 3);
        assert_eq!(c.get(DIR, "a", t1), Cached::Unknown);
        assert_eq!(c.get(DIR, "zz", t1), Cached::Unknown);
    }

    #[test]
    fn incomplete_listings_answer_only_what_they_hold() {
        let c = LookupCache::new(TTL);
        let t0 = Instant::now();
        misses_until_fetch(&c, t0);
        c.fill(DIR, vec![entry("a", 10)], false, t0, 0, 0);
        assert!(matches!(c.get(DIR, "a", t0), Cached::Found(..)));
        assert_eq!(c.get(DIR, "b", t0), Cached::Unknown);
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
        // Two big listings fill the entry budget: a third pushes out the
        // oldest.
        let big = |n: usize| -> Vec<DirEntryPlus> {
            (0..n).map(|i| entry(&format!("f{i}"), i as u64)).collect()
        };
        c.fill(InodeId(1), big(MAX_ENTRIES), true, t0, 0, 0);
        c.fill(InodeId(2), big(MAX_ENTRIES), true, t0 + TTL / 4, 0, 0);
        c.fill(InodeId(3), big(10), true, t0 + TTL / 2, 0, 0);
        let st = c.lock();
        let total: usize = st.dirs.values().map(|l| l.entries.len()).sum();
        assert!(total <= MAX_TOTAL_ENTRIES, "{total}");
        assert!(!st.dirs.contains_key(&InodeId(1)) && st.dirs.contains_key(&InodeId(3)));
        drop(st);
        // After a failed fetch the directory may be fetched again.
        misses_until_fetch(&c, t0);
        c.fetch_failed(DIR);
        assert_eq!(misses_until_fetch(&c, t0), FETCH_AFTER);
    }
}
