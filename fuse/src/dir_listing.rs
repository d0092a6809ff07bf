//! An open directory's listing, fetched a page at a time as the kernel
//! reads it, so a directory of any size starts answering at once and
//! costs memory only for what was read.
//!
//! The kernel reads a directory with `readdir` (names) or `readdirplus`
//! (names with attributes, which it keeps as if each name had been looked
//! up: `ls -l` then stats from its own cache). Offsets are positions in
//! the listing, `.` and `..` first; a page starts after the name before
//! it, so the listing moves on in name order whatever changed meanwhile.
//!
//! Names may be served from pages fetched earlier in the handle's life
//! (POSIX leaves unspecified whether names added or removed after
//! `opendir` show), except after a rewind (`rewinddir`: a second read
//! from offset 0), which must see the directory as it is now. Attributes may not be older than what the kernel
//! would keep from a lookup: a `readdirplus` answer is served from a
//! page fetched for that request, or from one fetched within half the
//! entry TTL with no change sent by this mount since (the client's
//! mutation epoch); otherwise the page is fetched again from that offset.
//! Each answer's TTL is what is left of the entry TTL since its page was
//! asked for.
//!
//! Pure bookkeeping: the caller fetches and passes the time.

use std::time::{Duration, Instant};

use cairn_proto::meta_rpc::{DirEntry, DirEntryPlus, FileKind, InodeAttr};
use cairn_proto::InodeId;

/// One name of the listing.
pub struct Item {
    pub ino: InodeId,
    pub kind: FileKind,
    pub name: String,
    /// The attributes its page carried, and when that page was asked for.
    listed: Option<Listed>,
}

struct Listed {
    attr: InodeAttr,
    asked_at: Instant,
    /// The client's mutation epoch before the page was asked for.
    epoch: u64,
}

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq)]
enum Cursor {
    /// After this name (`None`: at the first name).
    After(Option<String>),
    /// The directory has been read to its end.
    End,
}

/// A page to fetch before a request can be answered: its entries replace
/// the listing from position `at` on.
#[derive(Debug, PartialEq)]
pub struct Fetch {
    pub at: usize,
    pub after: Option<String>,
}

/// One entry of a `readdirplus` answer.
pub struct PlusEntry<'a> {
    /// The offset the kernel asks for next.
    pub next: u64,
    pub item: &'a Item,
    /// `None` for `.` and `..`, which the kernel does not keep.
    pub attr: Option<&'a InodeAttr>,
    /// How long the kernel may keep the entry and its attributes.
    pub ttl: Duration,
}

/// What is trusted of a page's attributes when serving them.
#[derive(Clone, Copy)]
pub enum Trust {
    /// Fetched for this very request: any epoch.
    ThisRequest,
    /// Fetched earlier: only while the mutation epoch is still this one.
    Epoch(u64),
}

pub struct DirListing {
    dir: InodeId,
    items: Vec<Item>,
    cursor: Cursor,
    /// A read from offset 0 was answered: another is a rewind.
    read_from_start: bool,
}

impl DirListing {
    /// A listing of directory `dir` with nothing fetched yet: `.` and `..`
    /// (which the kernel fills in with its own numbers).
    pub fn new(dir: InodeId) -> DirListing {
        let dot = |name: &str| Item {
            ino: dir,
            kind: FileKind::Dir,
            name: name.to_string(),
            listed: None,
        };
        DirListing {
            dir,
            items: vec![dot("."), dot("..")],
            cursor: Cursor::After(None),
            read_from_start: false,
        }
    }

    /// The directory listed.
    pub fn dir(&self) -> InodeId {
        self.dir
    }

    /// What to fetch before a `readdir` at `offset` can be answered.
    pub fn names_fetch(&self, offset: u64) -> Option<Fetch> {
        if offset == 0 && self.read_from_start {
            return Some(Fetch { at: 2, after: None });
        }
        self.next_page(offset)
    }

    /// The page that holds `offset` when the listing stops before it and
    /// the directory goes on.
    pub fn next_page(&self, offset: u64) -> Option<Fetch> {
        let at = usize::try_from(offset).ok()?;
        match &self.cursor {
            Cursor::After(after) if at >= self.items.len() => Some(Fetch {
                at: self.items.len(),
                after: after.clone(),
            }),
            _ => None,
        }
    }

    /// What to fetch before a `readdirplus` at `offset` can be answered
    /// with attributes a lookup now could give (see the module docs), the
    /// entry TTL being `ttl`.
    pub fn plus_fetch(
        &self,
        offset: u64,
        now: Instant,
        epoch: u64,
        ttl: Duration,
    ) -> Option<Fetch> {
        if offset == 0 && self.read_from_start {
            return Some(Fetch { at: 2, after: None });
        }
        let at = usize::try_from(offset).ok()?;
        let Some(item) = self.items.get(at) else {
            return self.next_page(offset);
        };
        if at < 2 || fresh(item, now, Trust::Epoch(epoch), ttl / 2) {
            return None;
        }
        let after = (at > 2).then(|| self.items[at - 1].name.clone());
        Some(Fetch { at, after })
    }

    /// Notes that a read at `offset` was answered.
    pub fn answered(&mut self, offset: u64) {
        self.read_from_start |= offset == 0;
    }

    /// Takes in a page of names fetched for `f`; `more` says whether the
    /// directory goes on past it.
    pub fn install_names(&mut self, f: &Fetch, entries: Vec<DirEntry>, more: bool) {
        self.items.truncate(f.at.max(2));
        let next = entries.last().map(|e| e.name.clone());
        self.items.extend(entries.into_iter().map(|e| Item {
            ino: e.ino,
            kind: e.kind,
            name: e.name,
            listed: None,
        }));
        self.cursor = match next {
            Some(last) if more => Cursor::After(Some(last)),
            // More to come and nothing in the page: the cursor could not
            // move, so the listing ends here rather than loop.
            _ => Cursor::End,
        };
    }

    /// Takes in a page with attributes fetched for `f`, asked for at
    /// `asked_at` while the mutation epoch was `epoch`; `next` is where
    /// the following page starts (`None`: the directory ends here).
    pub fn install_plus(
        &mut self,
        f: &Fetch,
        entries: Vec<DirEntryPlus>,
        next: Option<String>,
        asked_at: Instant,
        epoch: u64,
    ) {
        self.items.truncate(f.at.max(2));
        self.items.extend(entries.into_iter().map(|e| Item {
            ino: e.attr.ino,
            kind: e.attr.kind,
            name: e.name,
            listed: Some(Listed {
                attr: e.attr,
                asked_at,
                epoch,
            }),
        }));
        self.cursor = match next {
            Some(n) if Some(&n) > f.after.as_ref() => Cursor::After(Some(n)),
            // A cursor that does not move on would loop.
            _ => Cursor::End,
        };
    }

    /// The names from `offset` on, each with the offset that follows it.
    pub fn names(&self, offset: u64) -> impl Iterator<Item = (u64, &Item)> {
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        self.items
            .iter()
            .enumerate()
            .skip(from)
            .map(|(n, item)| (n as u64 + 1, item))
    }

    /// The entries from `offset` on whose attributes may be served (see
    /// [`Trust`]), up to the first that may not.
    pub fn plus_entries(
        &self,
        offset: u64,
        now: Instant,
        trust: Trust,
        ttl: Duration,
    ) -> impl Iterator<Item = PlusEntry<'_>> {
        self.names(offset)
            .map_while(move |(next, item)| match &item.listed {
                None if next <= 2 => Some(PlusEntry {
                    next,
                    item,
                    attr: None,
                    ttl: Duration::ZERO,
                }),
                Some(l) if fresh(item, now, trust, ttl) => Some(PlusEntry {
                    next,
                    item,
                    attr: Some(&l.attr),
                    ttl: ttl.saturating_sub(now.saturating_duration_since(l.asked_at)),
                }),
                _ => None,
            })
    }
}

/// Whether `item`'s attributes may be served: asked for less than
/// `within` ago, and trusted as to this mount's changes.
fn fresh(item: &Item, now: Instant, trust: Trust, within: Duration) -> bool {
    let Some(l) = &item.listed else {
        return false;
    };
    let trusted = match trust {
        Trust::ThisRequest => true,
        Trust::Epoch(e) => e == l.epoch,
    };
    trusted && now.saturating_duration_since(l.asked_at) < within
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::test_file as attr;

    const DIR: InodeId = InodeId(9);
    const TTL: Duration = Duration::from_secs(1);

    fn plus(names: &[(&str, u64)]) -> Vec<DirEntryPlus> {
        names
            .iter()
            .map(|(n, i)| DirEntryPlus {
                name: n.to_string(),
                attr: attr(*i),
            })
            .collect()
    }

    fn names(l: &DirListing, offset: u64) -> Vec<String> {
        l.names(offset).map(|(_, i)| i.name.clone()).collect()
    }

    #[test]
    fn pages_are_fetched_as_the_kernel_reads_on_and_end() {
        let mut l = DirListing::new(DIR);
        assert_eq!(l.names_fetch(0), None, ". and .. need nothing");
        let f = l.names_fetch(2).expect("nothing fetched yet");
        assert_eq!(f, Fetch { at: 2, after: None });
        let page = |n: &[&str]| {
            n.iter()
                .map(|n| DirEntry {
                    name: n.to_string(),
                    ino: InodeId(1),
                    kind: FileKind::File,
                })
                .collect()
        };
        l.install_names(&f, page(&["a", "b"]), true);
        // The kernel reads what is there without a fetch.
        assert_eq!(l.names_fetch(0), None);
        assert_eq!(names(&l, 0), [".", "..", "a", "b"]);
        assert_eq!(l.names(3).next().map(|(n, _)| n), Some(4));
        // Past it: the next page, after the last name.
        let f = l.names_fetch(4).expect("more to come");
        assert_eq!(
            f,
            Fetch {
                at: 4,
                after: Some("b".into())
            }
        );
        l.install_names(&f, page(&["c"]), false);
        assert_eq!(names(&l, 4), ["c"]);
        assert_eq!(l.names_fetch(5), None, "the end was read");
        assert_eq!(names(&l, 5), Vec::<String>::new());
        // A server saying "more" with an empty page cannot make it loop.
        let mut l = DirListing::new(DIR);
        let f = l.names_fetch(2).expect("fetch");
        l.install_names(&f, Vec::new(), true);
        assert_eq!(l.names_fetch(2), None);
    }

    #[test]
    fn attributes_are_served_only_while_fresh_and_untouched_by_own_changes() {
        let t0 = Instant::now();
        let mut l = DirListing::new(DIR);
        let f = l.plus_fetch(0, t0, 5, TTL);
        assert_eq!(f, None, ". and .. need nothing");
        let f = l.plus_fetch(2, t0, 5, TTL).expect("nothing fetched yet");
        l.install_plus(&f, plus(&[("a", 10), ("b", 11)]), None, t0, 5);
        let at = t0 + Duration::from_millis(100);
        let served: Vec<_> = l
            .plus_entries(0, at, Trust::Epoch(5), TTL)
            .map(|e| (e.item.name.clone(), e.attr.map(|a| a.ino.0), e.ttl))
            .collect();
        assert_eq!(served[0], (".".into(), None, Duration::ZERO));
        assert_eq!(
            served[2],
            ("a".into(), Some(10), Duration::from_millis(900))
        );
        assert_eq!(served.len(), 4);
        // This mount changed something since: fetched again from there.
        assert_eq!(l.plus_entries(2, at, Trust::Epoch(6), TTL).count(), 0);
        assert_eq!(
            l.plus_fetch(3, at, 6, TTL),
            Some(Fetch {
                at: 3,
                after: Some("a".into())
            })
        );
        // Past half the TTL: fetched again, though served if fetched for
        // this request.
        let late = t0 + Duration::from_millis(600);
        assert!(l.plus_fetch(2, late, 5, TTL).is_some());
        assert_eq!(l.plus_entries(2, late, Trust::ThisRequest, TTL).count(), 2);
        // A page fetched again replaces the listing from its position on.
        let f = l.plus_fetch(3, late, 6, TTL).expect("stale");
        l.install_plus(&f, plus(&[("c", 12)]), None, late, 6);
        assert_eq!(names(&l, 0), [".", "..", "a", "c"]);
        assert_eq!(l.plus_fetch(3, late, 6, TTL), None);
        // Names fetched without attributes are not served as attributes.
        let mut l = DirListing::new(DIR);
        let f = l.names_fetch(2).expect("fetch");
        l.install_names(
            &f,
            vec![DirEntry {
                name: "x".into(),
                ino: InodeId(3),
                kind: FileKind::File,
            }],
            false,
        );
        assert_eq!(l.plus_entries(2, t0, Trust::ThisRequest, TTL).count(), 0);
        assert_eq!(
            l.plus_fetch(2, t0, 5, TTL),
            Some(Fetch { at: 2, after: None })
        );
    }

    #[test]
    fn a_second_read_from_the_start_is_a_rewind_and_fetches_again() {
        let t0 = Instant::now();
        let mut l = DirListing::new(DIR);
        let f = l.plus_fetch(2, t0, 1, TTL).expect("fetch");
        l.install_plus(&f, plus(&[("a", 10)]), None, t0, 1);
        // opendir's page answers the first read.
        assert_eq!(l.plus_fetch(0, t0, 1, TTL), None);
        assert_eq!(l.names_fetch(0), None);
        l.answered(0);
        assert_eq!(l.names_fetch(3), None, "reading on is no rewind");
        let rewind = Fetch { at: 2, after: None };
        assert_eq!(l.plus_fetch(0, t0, 1, TTL).as_ref(), Some(&rewind));
        assert_eq!(l.names_fetch(0).as_ref(), Some(&rewind));
        // What the directory holds now replaces the old listing.
        l.install_plus(&rewind, plus(&[("b", 11)]), None, t0, 1);
        assert_eq!(names(&l, 0), [".", "..", "b"]);
        assert_eq!(l.next_page(3), None);
    }

    #[test]
    fn a_plus_cursor_that_does_not_move_on_ends_the_listing() {
        let t0 = Instant::now();
        let mut l = DirListing::new(DIR);
        let f = Fetch {
            at: 2,
            after: Some("m".into()),
        };
        l.install_plus(&f, Vec::new(), Some("m".into()), t0, 1);
        assert_eq!(l.names_fetch(2), None);
        // A page of vanished entries moves on past them.
        let mut l = DirListing::new(DIR);
        let f = l.plus_fetch(2, t0, 1, TTL).expect("fetch");
        l.install_plus(&f, Vec::new(), Some("k".into()), t0, 1);
        assert_eq!(
            l.names_fetch(2),
            Some(Fetch {
                at: 2,
                after: Some("k".into())
            })
        );
    }
}
