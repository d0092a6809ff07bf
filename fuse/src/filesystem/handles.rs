//! The mount's handle tables: which files are open (one [`OpenFile`] per
//! file, shared by all its handles, with a count), which handle names
//! which, and the last release of a file (its final flush, and removing
//! the hidden name of a file unlinked while open).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_proto::meta_rpc::InodeAttr;
use cairn_proto::InodeId;
use fuser::Errno;

use super::{lock, Shared};
use crate::open_file::OpenFile;

#[derive(Default)]
pub(super) struct OpenFiles {
    /// Open files and how many handles each has.
    pub(super) by_ino: HashMap<InodeId, (Arc<OpenFile>, usize)>,
    pub(super) handles: HashMap<u64, InodeId>,
}

impl Shared {
    /// Every file open in this mount (at unmount, to flush them).
    pub(super) fn all_open_files(&self) -> Vec<Arc<OpenFile>> {
        lock(&self.files)
            .by_ino
            .values()
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// The open file `ino` names: by the kernel's number or by metadata's.
    pub(super) fn open_file(&self, ino: InodeId) -> Option<Arc<OpenFile>> {
        let files = lock(&self.files);
        let found = |i: InodeId| files.by_ino.get(&i).map(|(f, _)| f.clone());
        found(ino)
            .or_else(|| self.io.aliases.kernel(ino).and_then(found))
            .or_else(|| found(self.io.aliases.file(ino)))
    }

    pub(super) fn register(&self, attr: &InodeAttr) -> (u64, Arc<OpenFile>) {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let mut files = lock(&self.files);
        // A file open here under an alias shares that open file's buffers.
        let key = self
            .io
            .aliases
            .kernel(attr.ino)
            .filter(|k| files.by_ino.contains_key(k))
            .unwrap_or(attr.ino);
        let entry = files
            .by_ino
            .entry(key)
            .or_insert_with(|| (Arc::new(OpenFile::new(attr)), 0));
        entry.1 += 1;
        let file = entry.0.clone();
        files.handles.insert(fh, key);
        (fh, file)
    }

    pub(super) async fn release(&self, fh: u64) -> Result<(), Errno> {
        let last = {
            let mut files = lock(&self.files);
            let Some(ino) = files.handles.remove(&fh) else {
                return Ok(());
            };
            match files.by_ino.get_mut(&ino) {
                Some((f, n)) if *n > 1 => {
                    *n -= 1;
                    let _ = f;
                    None
                }
                Some(_) => files.by_ino.remove(&ino).map(|(f, _)| f),
                None => None,
            }
        };
        let Some(f) = last else {
            return Ok(());
        };
        let flushed = self.flush(&f).await;
        if let Some((dir, name)) = f.take_hidden() {
            if let Err(e) = self.io.client.inodes().unlink(dir, &name).await {
                tracing::warn!(ino = %f.ino, name, error = %e, "removing an unlinked file at its last close failed");
            }
        }
        flushed
    }
}
