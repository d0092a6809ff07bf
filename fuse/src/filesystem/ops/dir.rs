//! The operations on open directories: a listing is fetched a page at a
//! time as the kernel reads it (see `dir_listing`), the first page at
//! `opendir`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cairn_proto::meta_rpc::{MAX_DIR_PAGE, MAX_DIR_PLUS_PAGE};
use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyOpen,
};

use super::super::{lock, CairnFs, Shared};
use crate::attr::{dot_attr, file_type};
use crate::dir_listing::{DirListing, Fetch, Trust};
use crate::errno::errno;

/// Pages one `readdirplus` fetches at most when pages come back holding
/// only entries that vanished as they were read.
const MAX_FETCHES: usize = 8;
/// Entries one `readdirplus` answer takes from the listing at most (the
/// kernel's buffer holds fewer; it asks again for the rest).
const MAX_PLUS_ANSWER: usize = 512;

type Listing = Arc<Mutex<DirListing>>;

pub(crate) fn opendir(fs: &CairnFs, i: INodeNo, reply: ReplyOpen) {
    fs.run(|s| async move {
        let listing = Arc::new(Mutex::new(DirListing::new(s.file_ino(i))));
        // The first page now: it says the directory is there, and the
        // kernel's first read (with attributes) is answered from it.
        let first = Fetch { at: 2, after: None };
        match fetch_plus(&s, &listing, &first).await {
            Ok(()) => {
                let fh = s.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&s.dirs).insert(fh, listing);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    });
}

fn listing(fs: &CairnFs, fh: FileHandle) -> Option<Listing> {
    lock(&fs.shared.dirs).get(&fh.0).cloned()
}

/// Fetches the page `f` with attributes into `listing`.
async fn fetch_plus(s: &Shared, listing: &Listing, f: &Fetch) -> Result<(), Errno> {
    let dir = lock(listing).dir();
    let epoch = s.io.client.mutation_epoch();
    let asked_at = Instant::now();
    let page =
        s.io.client
            .inodes()
            .dir_plus_page(dir, f.after.clone(), MAX_DIR_PLUS_PAGE)
            .await
            .map_err(|e| errno(&e))?;
    lock(listing).install_plus(f, page.entries, page.next, asked_at, epoch);
    Ok(())
}

pub(crate) fn readdir(fs: &CairnFs, fh: FileHandle, offset: u64, reply: ReplyDirectory) {
    let Some(listing) = listing(fs, fh) else {
        return reply.error(Errno::EBADF);
    };
    let Some(f) = lock(&listing).names_fetch(offset) else {
        return answer_names(&mut lock(&listing), offset, reply);
    };
    fs.run(|s| async move {
        let dir = lock(&listing).dir();
        match s
            .io
            .client
            .inodes()
            .dir_page(dir, f.after.clone(), MAX_DIR_PAGE)
            .await
        {
            Ok((entries, more)) => {
                let mut l = lock(&listing);
                l.install_names(&f, entries, more);
                answer_names(&mut l, offset, reply)
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

fn answer_names(l: &mut DirListing, offset: u64, mut reply: ReplyDirectory) {
    l.answered(offset);
    for (next, item) in l.names(offset) {
        if reply.add(INodeNo(item.ino.0), next, file_type(item.kind), &item.name) {
            break;
        }
    }
    reply.ok();
}

pub(crate) fn readdirplus(
    fs: &CairnFs,
    fh: FileHandle,
    offset: u64,
    mut reply: ReplyDirectoryPlus,
) {
    let Some(listing) = listing(fs, fh) else {
        return reply.error(Errno::EBADF);
    };
    // On the runtime, after this mount's deferred changes have landed:
    // the kernel holds the directory against changes through it while
    // it reads, so a page fetched now holds every one of them.
    fs.run(|s| async move {
        let ttl = s.entry_ttl.min(s.attr_ttl);
        let epoch = s.io.client.mutation_epoch();
        let mut trust = Trust::Epoch(epoch);
        let mut next = lock(&listing).plus_fetch(offset, Instant::now(), epoch, ttl);
        for _ in 0..MAX_FETCHES {
            let Some(f) = next else { break };
            if let Err(e) = fetch_plus(&s, &listing, &f).await {
                return reply.error(e);
            }
            trust = Trust::ThisRequest;
            // Only if that page held nothing from `offset` on.
            next = lock(&listing).next_page(offset);
        }
        let entries: Vec<_> = {
            let mut l = lock(&listing);
            l.answered(offset);
            l.plus_entries(offset, Instant::now(), trust, ttl)
                .take(MAX_PLUS_ANSWER)
                .map(|e| {
                    (
                        e.next,
                        e.item.ino,
                        e.item.name.clone(),
                        e.attr.cloned(),
                        e.ttl,
                    )
                })
                .collect()
        };
        for (next, ino, name, attr, ttl) in entries {
            let fa = match attr {
                Some(a) => s.file_attr(&a).await,
                None => dot_attr(ino),
            };
            if reply.add(INodeNo(fa.ino.0), next, &name, &ttl, &fa, Generation(0)) {
                break;
            }
        }
        reply.ok();
    });
}

pub(crate) fn releasedir(fs: &CairnFs, fh: FileHandle, reply: ReplyEmpty) {
    lock(&fs.shared.dirs).remove(&fh.0);
    reply.ok();
}

pub(crate) fn fsyncdir(fs: &CairnFs, reply: ReplyEmpty) {
    // Namespace changes are committed through Raft before they are
    // answered, except deferred creates and unlinks, which `run` sends
    // and waits for (and so makes durable) before the answer; an unlink
    // that failed meanwhile is an I/O error here.
    fs.run(|s| async move {
        if s.unlinks.settle_failures().await > 0 {
            return reply.error(Errno::EIO);
        }
        reply.ok()
    });
}
