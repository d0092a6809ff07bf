//! One page of a ListObjects answer, built from keys offered in byte
//! order: the prefix filter, the start point (`marker`, `start-after` or a
//! continuation token), delimiter roll-up into common prefixes, and
//! `max-keys`. Pure: [`crate::walk`] offers the keys, and asks
//! [`PageBuilder::plan_dir`] whether a directory's keys can matter at all.

/// What ListObjects asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) after this one.
    pub after: Option<String>,
    pub max: usize,
}

/// One line of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed<T> {
    Key(String, T),
    CommonPrefix(String),
}

/// Whether the walk goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The page is full and something follows it.
    Stop,
}

/// What to do with a directory whose keys all begin with `dir_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirPlan {
    /// None of its keys belongs on this page.
    Skip,
    /// Its keys must be looked at one by one.
    Descend,
    /// All of its keys roll up into this common prefix; offer it (with
    /// [`PageBuilder::offer_prefix`]) if the directory holds any key.
    RollUp(String),
}

pub struct PageBuilder<T> {
    params: ListParams,
    entries: Vec<Listed<T>>,
    truncated: bool,
}

impl<T> PageBuilder<T> {
    pub fn new(params: ListParams) -> Self {
        PageBuilder {
            params,
            entries: Vec::new(),
            truncated: false,
        }
    }

    pub fn params(&self) -> &ListParams {
        &self.params
    }

    /// The common prefix `key` rolls up into, if any.
    fn roll_up(&self, key: &str) -> Option<String> {
        let d = self.params.delimiter.as_deref().filter(|d| !d.is_empty())?;
        let rest = key.strip_prefix(self.params.prefix.as_str())?;
        let i = rest.find(d)?;
        Some(key[..self.params.prefix.len() + i + d.len()].to_string())
    }

    fn is_after_start(&self, key: &str) -> bool {
        self.params.after.as_deref().is_none_or(|a| key > a)
    }

    pub fn plan_dir(&self, dir_key: &str) -> DirPlan {
        let prefix = self.params.prefix.as_str();
        if !(dir_key.starts_with(prefix) || prefix.starts_with(dir_key)) {
            return DirPlan::Skip;
        }
        // Every key below begins with dir_key; if the start point is past
        // dir_key without beginning with it, all of them are before it.
        if let Some(a) = self.params.after.as_deref() {
            if a > dir_key && !a.starts_with(dir_key) {
                return DirPlan::Skip;
            }
        }
        if dir_key.starts_with(prefix) {
            if let Some(cp) = self.roll_up(dir_key) {
                return if self.is_after_start(&cp) {
                    DirPlan::RollUp(cp)
                } else {
                    DirPlan::Skip
                };
            }
        }
        DirPlan::Descend
    }

    /// Offers the next key in byte order.
    pub fn offer_key(&mut self, key: String, item: T) -> Flow {
        if !key.starts_with(self.params.prefix.as_str()) || !self.is_after_start(&key) {
            return Flow::Continue;
        }
        if let Some(cp) = self.roll_up(&key) {
            if !self.is_after_start(&cp) {
                return Flow::Continue;
            }
            return self.offer_prefix(cp);
        }
        self.push(Listed::Key(key, item))
    }

    /// Offers a common prefix (from [`Self::offer_key`] or a directory's
    /// [`DirPlan::RollUp`]).
    pub fn offer_prefix(&mut self, cp: String) -> Flow {
        if matches!(self.entries.last(), Some(Listed::CommonPrefix(p)) if *p == cp) {
            return Flow::Continue;
        }
        self.push(Listed::CommonPrefix(cp))
    }

    fn push(&mut self, e: Listed<T>) -> Flow {
        if self.entries.len() >= self.params.max {
            self.truncated = true;
            return Flow::Stop;
        }
        self.entries.push(e);
        Flow::Continue
    }

    /// The page, whether more follow, and (if so) where the next starts.
    pub fn finish(self) -> Page<T> {
        let next = self
            .truncated
            .then(|| match self.entries.last() {
                Some(Listed::Key(k, _)) | Some(Listed::CommonPrefix(k)) => Some(k.clone()),
                None => None,
            })
            .flatten();
        Page {
            entries: self.entries,
            truncated: self.truncated,
            next,
        }
    }
}

pub struct Page<T> {
    pub entries: Vec<Listed<T>>,
    pub truncated: bool,
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The walk's job, done on a sorted list: offer every key.
    fn page(keys: &[String], params: ListParams) -> Page<()> {
        let mut b = PageBuilder::new(params);
        for k in keys {
            if b.offer_key(k.clone(), ()) == Flow::Stop {
                break;
            }
        }
        b.finish()
    }

    fn names(p: &Page<()>) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| match e {
                Listed::Key(k, _) => k.clone(),
                Listed::CommonPrefix(c) => format!("[{c}]"),
            })
            .collect()
    }

    fn keys(ks: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ks.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn delimiter_rolls_up_and_pages_resume_after_a_prefix() {
        let ks = keys(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        let p = |after: Option<&str>, max| {
            page(
                &ks,
                ListParams {
                    prefix: String::new(),
                    delimiter: Some("/".into()),
                    after: after.map(String::from),
                    max,
                },
            )
        };
        let first = p(None, 2);
        assert_eq!(names(&first), vec!["[a/]", "b"]);
        assert!(first.truncated);
        assert_eq!(first.next.as_deref(), Some("b"));
        let second = p(Some("b"), 2);
        assert_eq!(names(&second), vec!["[c/]", "d"]);
        assert!(!second.truncated);
        assert_eq!(names(&p(Some("a/"), 10)), vec!["b", "[c/]", "d"]);
    }

    #[test]
    fn prefix_and_other_delimiters() {
        let ks = keys(&["photos/2024-01/a", "photos/2024-02/b", "photos/x", "zz"]);
        let p = page(
            &ks,
            ListParams {
                prefix: "photos/".into(),
                delimiter: Some("-".into()),
                after: None,
                max: 10,
            },
        );
        assert_eq!(names(&p), vec!["[photos/2024-]", "photos/x"]);
    }

    #[test]
    fn directories_are_skipped_descended_or_rolled_up() {
        let b = PageBuilder::<()>::new(ListParams {
            prefix: "a/".into(),
            delimiter: Some("/".into()),
            after: Some("a/m".into()),
            max: 10,
        });
        assert_eq!(b.plan_dir("b/"), DirPlan::Skip);
        assert_eq!(b.plan_dir("a/"), DirPlan::Descend);
        assert_eq!(b.plan_dir("a/c/"), DirPlan::Skip);
        assert_eq!(b.plan_dir("a/z/"), DirPlan::RollUp("a/z/".into()));
    }

    proptest! {
        /// Paging through with any page size yields exactly what one big
        /// page does, each entry once.
        #[test]
        fn pages_stitch_to_the_whole(
            raw in proptest::collection::btree_set("[ab/]{1,5}", 0..30),
            max in 1usize..5,
            slash in any::<bool>(),
            prefix in "[ab/]{0,2}",
        ) {
            let ks: Vec<String> = raw.into_iter().collect();
            let delimiter = slash.then(|| "/".to_string());
            let whole = page(&ks, ListParams {
                prefix: prefix.clone(), delimiter: delimiter.clone(), after: None, max: usize::MAX,
            });
            let mut got = Vec::new();
            let mut after = None;
            for _ in 0..100 {
                let p = page(&ks, ListParams {
                    prefix: prefix.clone(), delimiter: delimiter.clone(), after: after.clone(), max,
                });
                got.extend(names(&p));
                if !p.truncated { break; }
                after = p.next;
            }
            prop_assert_eq!(got, names(&whole));
        }
    }
}
