//! Walks a bucket in key byte order, feeding a [`PageBuilder`] until its
//! page is full: the directory tree (each directory's entries sorted by
//! [`keys::sort_name`]) starting at the deepest directory the prefix
//! names, skipping or rolling up whole directories as
//! [`PageBuilder::plan_dir`] says, with the key store's keys (read whole
//! first; they are the rare keys with no path of their own) merged in
//! at their places.
//!
//! Cost: each directory on the way is listed whole (attributes included)
//! on every page, so a page out of a directory of N entries costs O(N).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use cairn_client::{Client, ClientError};
use cairn_proto::meta_rpc::{FileKind, InodeAttr};
use cairn_proto::{ErrorCode, InodeId};

use crate::keys;
use crate::listing::{DirPlan, Flow, PageBuilder};

/// Most entries one directory may have for the walk to list it.
const MAX_DIR_ENTRIES: usize = 10_000_000;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send + 'a>>;

/// A page being filled, and the store's keys not yet offered.
struct Merge<'p> {
    page: &'p mut PageBuilder<InodeAttr>,
    stored: VecDeque<(String, InodeAttr)>,
}

impl Merge<'_> {
    /// Offers the store's keys that sort before `key`.
    fn before(&mut self, key: &str) -> Flow {
        while self.stored.front().is_some_and(|(k, _)| k.as_str() < key) {
            let Some((k, a)) = self.stored.pop_front() else {
                break;
            };
            if self.page.offer_key(k, a) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn key(&mut self, key: String, attr: InodeAttr) -> Flow {
        if self.before(&key) == Flow::Stop {
            return Flow::Stop;
        }
        self.page.offer_key(key, attr)
    }

    fn prefix(&mut self, cp: String) -> Flow {
        if self.before(&cp) == Flow::Stop {
            return Flow::Stop;
        }
        self.page.offer_prefix(cp)
    }

    fn rest(&mut self) -> Flow {
        while let Some((k, a)) = self.stored.pop_front() {
            if self.page.offer_key(k, a) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

/// Fills `page` from the bucket directory at `bucket_path`, whose key
/// store is at `store_path`.
pub async fn fill(
    client: &Client,
    bucket_path: &str,
    store_path: &str,
    page: &mut PageBuilder<InodeAttr>,
) -> Result<(), ClientError> {
    let mut stored = Vec::new();
    if let Some(store) = dir_at(client, store_path).await? {
        stored_keys(client, store.ino, String::new(), &mut stored).await?;
    }
    let mut merge = Merge {
        page,
        stored: stored.into(),
    };
    // Start where the prefix's directories end: "a/b/c" starts in "a/b/".
    let prefix = merge.page.params().prefix.clone();
    let dir_key = match prefix.rfind('/') {
        Some(i) => prefix[..=i].to_string(),
        None => String::new(),
    };
    let start = format!("{bucket_path}/{}", dir_key.trim_end_matches('/'));
    if let Some(dir) = dir_at(client, start.trim_end_matches('/')).await? {
        if walk_dir(client, dir.ino, dir_key, &mut merge).await? == Flow::Stop {
            return Ok(());
        }
    }
    merge.rest();
    Ok(())
}

/// The directory at `path`, if there is one.
async fn dir_at(client: &Client, path: &str) -> Result<Option<InodeAttr>, ClientError> {
    match client.stat(path).await {
        Ok(a) if a.kind == FileKind::Dir => Ok(Some(a)),
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) || e.code() == Some(ErrorCode::NotADirectory) => Ok(None),
        Err(e) => Err(e),
    }
}

fn walk_dir<'a>(
    client: &'a Client,
    ino: InodeId,
    dir_key: String,
    merge: &'a mut Merge<'_>,
) -> Boxed<'a, Flow> {
    Box::pin(async move {
        let (mut entries, _) = client.inodes().list_plus(ino, MAX_DIR_ENTRIES).await?;
        entries.sort_by_cached_key(|e| keys::sort_name(&e.name, e.attr.kind == FileKind::Dir));
        for e in entries {
            let flow = match e.attr.kind {
                // The gateway's own state is not keys.
                FileKind::Dir if dir_key.is_empty() && e.name == keys::STORE => Flow::Continue,
                FileKind::Dir => {
                    let key = format!("{dir_key}{}/", e.name);
                    match merge.page.plan_dir(&key) {
                        DirPlan::Skip => Flow::Continue,
                        DirPlan::Descend => walk_dir(client, e.attr.ino, key, merge).await?,
                        DirPlan::RollUp(cp) => {
                            if holds_a_key(client, e.attr.ino).await? {
                                merge.prefix(cp)
                            } else {
                                Flow::Continue
                            }
                        }
                    }
                }
                FileKind::File => merge.key(format!("{dir_key}{}", e.name), e.attr),
                // Symlinks, pipes and sockets made through the mount are
                // not objects.
                _ => Flow::Continue,
            };
            if flow == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    })
}

/// Every key in the key-store directory `ino` (whose path spells `hex`),
/// in key order.
fn stored_keys<'a>(
    client: &'a Client,
    ino: InodeId,
    hex: String,
    out: &'a mut Vec<(String, InodeAttr)>,
) -> Boxed<'a, ()> {
    Box::pin(async move {
        let (mut entries, _) = client.inodes().list_plus(ino, MAX_DIR_ENTRIES).await?;
        entries
            .sort_by_cached_key(|e| keys::stored_sort_name(&e.name, e.attr.kind == FileKind::Dir));
        for e in entries {
            match e.attr.kind {
                FileKind::Dir => {
                    stored_keys(client, e.attr.ino, format!("{hex}{}", e.name), out).await?
                }
                FileKind::File => {
                    if let Some(key) = keys::stored_key(&hex, &e.name) {
                        out.push((key, e.attr));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    })
}

/// Whether directory `ino` holds a regular file at any depth (S3 lists a
/// common prefix only when some key has it).
pub fn holds_a_key(client: &Client, ino: InodeId) -> Boxed<'_, bool> {
    Box::pin(async move {
        let mut after = None;
        loop {
            let page = client.inodes().dir_plus_page(ino, after, 1024).await?;
            let mut dirs = Vec::new();
            for e in &page.entries {
                match e.attr.kind {
                    FileKind::File => return Ok(true),
                    FileKind::Dir => dirs.push(e.attr.ino),
                    _ => {}
                }
            }
            for d in dirs {
                if holds_a_key(client, d).await? {
                    return Ok(true);
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(false),
            }
        }
    })
}

pub fn is_not_found(e: &ClientError) -> bool {
    e.code() == Some(ErrorCode::NotFound)
}
