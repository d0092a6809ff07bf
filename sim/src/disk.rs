//! A simulated chunk store: what a chunkserver's disk holds, with the
//! faults a real one has. A put is whole or absent (the real store writes
//! aside, fsyncs and renames), so a crash loses nothing acknowledged; rot
//! and unreadable sectors are injected per copy; a full disk refuses puts.

use std::collections::BTreeMap;

use cairn_proto::ChunkId;

/// One stored copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// When it was last stored (the holder's clock, ns).
    pub stored_ns: i64,
    /// Its bytes no longer hash to its id.
    pub rotten: bool,
    /// Reading it fails (EIO).
    pub unreadable: bool,
}

impl Copy {
    pub fn intact(&self) -> bool {
        !self.rotten && !self.unreadable
    }
}

/// A disk full of chunk copies.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    pub copies: BTreeMap<ChunkId, Copy>,
    /// Puts fail with "no space" while set.
    pub full: bool,
    /// Copies moved out of service (kept for inspection, never served).
    pub quarantined: u64,
}

/// Why a put failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSpace;

impl SimDisk {
    /// Stores a verified copy (as the real `FileStore::put`: an intact
    /// copy already there is renewed, a bad one replaced).
    pub fn put(&mut self, id: ChunkId, now_ns: i64) -> Result<(), NoSpace> {
        if let Some(c) = self.copies.get_mut(&id) {
            if c.intact() {
                c.stored_ns = now_ns;
                return Ok(());
            }
        }
        if self.full {
            return Err(NoSpace);
        }
        self.copies.insert(
            id,
            Copy {
                stored_ns: now_ns,
                rotten: false,
                unreadable: false,
            },
        );
        Ok(())
    }

    pub fn has(&self, id: &ChunkId) -> bool {
        self.copies.contains_key(id)
    }

    /// Re-hashes a copy (as `FileStore::verify`): a bad one is quarantined
    /// and answered false.
    pub fn verify(&mut self, id: &ChunkId) -> bool {
        match self.copies.get(id) {
            Some(c) if c.intact() => true,
            Some(_) => {
                self.copies.remove(id);
                self.quarantined += 1;
                false
            }
            None => false,
        }
    }

    /// An intact copy's bytes can be read (for a push); a bad one is
    /// quarantined, as the repair loop does.
    pub fn read(&mut self, id: &ChunkId) -> bool {
        self.verify(id)
    }

    pub fn delete(&mut self, id: &ChunkId) {
        self.copies.remove(id);
    }
}
