//! One chunkserver's disk: the real chunk store
//! (`cairn_chunkserver::store::FileStore`) over a simulated filesystem
//! ([`SimFs`]) that loses unsynced writes and tears them on a power cut,
//! fills up, rots and fails reads. The disk also remembers which copies
//! the store acknowledged, so that after every crash it can check the
//! store's promise: each acknowledged copy is still there, whole, and no
//! torn copy sits under a chunk's name.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_chunkserver::store::{FileStore, StoreError};
use cairn_proto::ChunkId;
use rand::Rng;

use crate::sim_fs::SimFs;

/// Where the store lives on the simulated filesystem.
const ROOT: &str = "/srv/cairn";

/// What a crash did that the store promised it would not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashDamage {
    /// An acknowledged copy is gone.
    Lost(ChunkId),
    /// A copy under the chunk's name does not hash to it (and no fault
    /// rotted it).
    Torn(ChunkId),
}

/// A chunkserver's disk and the store on it.
pub struct SimDisk {
    fs: SimFs,
    store: FileStore,
    /// Copies the store acknowledged and has not deleted or quarantined.
    acked: BTreeSet<ChunkId>,
    /// Copies a fault rotted or made unreadable (not the store's doing),
    /// until the store durably replaces them.
    damaged: BTreeSet<ChunkId>,
}

fn time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl SimDisk {
    pub fn new() -> Self {
        let fs = SimFs::default();
        let store = open(&fs);
        SimDisk {
            fs,
            store,
            acked: BTreeSet::new(),
            damaged: BTreeSet::new(),
        }
    }

    /// Stores `data` (its id is its hash) as a chunkserver does after
    /// verifying it, at the holder's time `now_ns`.
    pub fn put(&mut self, data: &[u8], now_ns: i64) -> Result<(), StoreError> {
        let id = ChunkId::of(data);
        self.fs.set_now(now_ns);
        self.store.put(&id, data)?;
        self.acked.insert(id);
        self.damaged.remove(&id);
        Ok(())
    }

    pub fn has(&self, id: &ChunkId) -> bool {
        self.store.has(id)
    }

    /// Every chunk stored, as the store lists them (the server's own
    /// listing: a disk call).
    pub fn ids(&self) -> Vec<ChunkId> {
        self.store.list().unwrap_or_default()
    }

    /// Every chunk file under the store's tree (the checker's look,
    /// changing nothing and not a call of the server).
    pub fn stored(&self) -> Vec<ChunkId> {
        self.fs
            .files_under(&Path::new(ROOT).join("chunks"))
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
            .collect()
    }

    /// Whether a copy is stored here, readable and whole (the checker's
    /// look, changing nothing).
    pub fn intact(&self, id: &ChunkId) -> bool {
        let path = self.store.path_of(id);
        !self.fs.is_unreadable(&path) && self.fs.peek(&path).is_some_and(|d| id.matches(&d))
    }

    /// Re-hashes a copy (`FileStore::verify`): a bad one is quarantined.
    pub fn verify(&mut self, id: &ChunkId) -> bool {
        let ok = self.store.verify(id).unwrap_or(false);
        if !ok {
            self.forget(id);
        }
        ok
    }

    /// A verified copy's bytes, for a push; a bad copy is quarantined, as
    /// the repair loop does.
    pub fn read(&mut self, id: &ChunkId) -> Option<Vec<u8>> {
        match self.store.get(id) {
            Ok(Some(data)) if id.matches(&data) => Some(data),
            Ok(None) => None,
            _ => {
                let _ = self.store.check(id);
                self.forget(id);
                None
            }
        }
    }

    pub fn delete(&mut self, id: &ChunkId) {
        if self.store.delete(id).is_ok() {
            self.forget(id);
        }
    }

    /// The collector's listing: chunks last stored before `cutoff_ns`,
    /// with that time.
    pub fn stored_before(&self, cutoff_ns: i64) -> Vec<(ChunkId, i64)> {
        self.store
            .stored_before(time(cutoff_ns))
            .unwrap_or_default()
            .into_iter()
            .map(|(id, stored, _)| (id, ns(stored)))
            .collect()
    }

    /// The collector's delete: only if not stored since `cutoff_ns`.
    pub fn delete_if_idle(&mut self, id: &ChunkId, cutoff_ns: i64) -> bool {
        let deleted = matches!(self.store.delete_if_idle(id, time(cutoff_ns)), Ok(Some(_)));
        if deleted {
            self.forget(id);
        }
        deleted
    }

    /// The store deleted or quarantined the copy. A fault's damage is
    /// still remembered: a power cut may undo the unsynced quarantine and
    /// bring the bad copy back under its name.
    fn forget(&mut self, id: &ChunkId) {
        self.acked.remove(id);
    }

    pub fn set_full(&self, full: bool) {
        self.fs.set_full(full);
    }

    /// A fault: the copy's bytes rot.
    pub fn rot(&mut self, id: &ChunkId) {
        self.fs.rot(&self.store.path_of(id));
        self.damaged.insert(*id);
    }

    /// A fault: reading the copy fails with EIO.
    pub fn break_sector(&mut self, id: &ChunkId) {
        self.fs.break_sector(&self.store.path_of(id));
        self.damaged.insert(*id);
    }

    /// The process will die on its `calls`-th next disk call, mid-work.
    pub fn die_after(&self, calls: u32) {
        self.fs.die_after(calls);
    }

    pub fn has_died(&self) -> bool {
        self.fs.has_died()
    }

    /// Faults stop: a process set to die mid-call will not.
    pub fn disarm(&self) {
        self.fs.restart();
    }

    /// The server goes down: with `power_lost`, what was not synced is lost
    /// or torn at random; either way the store is opened again as a restart
    /// does. Returns what the crash did that the store promised it would
    /// not.
    pub fn crash(&mut self, power_lost: bool, rng: &mut impl Rng) -> Vec<CrashDamage> {
        if power_lost {
            self.fs.crash(rng);
        } else {
            self.fs.restart();
        }
        self.store = open(&self.fs);
        let mut damage = Vec::new();
        for id in &self.acked {
            if !self.store.has(id) {
                damage.push(CrashDamage::Lost(*id));
            }
        }
        let stored = self.stored();
        for id in &stored {
            if !self.damaged.contains(id) && !self.intact(id) {
                damage.push(CrashDamage::Torn(*id));
            }
        }
        // Whatever is on the disk now is durable. A damaged copy stays
        // remembered even when gone: its delete or quarantine may not be
        // durable yet, and a later power cut may bring it back.
        self.acked = stored.into_iter().collect();
        damage
    }
}

impl Default for SimDisk {
    fn default() -> Self {
        Self::new()
    }
}

fn open(fs: &SimFs) -> FileStore {
    // The simulated filesystem fails only on a dead process, which a
    // crash has just revived, or when full — and opening creates nothing
    // but directories, which take no room there.
    FileStore::open_on(Arc::new(fs.clone()), Path::new(ROOT))
        .expect("opening the store on a revived simulated disk")
}
