//! The small key-value interface the namespace logic is written against.
//!
//! [`KvRead`] is what a query needs; [`Txn`] overlays uncommitted writes on
//! a reader so that one Raft command (or a batch of them) reads its own
//! writes and is then committed as one atomic batch. [`MemKv`] is the
//! in-memory implementation the namespace tests run on; `RocksKv`
//! (in `db.rs`) is the durable one. Both pass the same tests.

use std::collections::BTreeMap;
use std::ops::Bound;

/// The column families of the state machine.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Cf {
    /// `ino` → inode record.
    Inodes,
    /// `(parent ino, name)` → dentry record.
    Dentries,
    /// `(ino, file offset)` → extent record.
    Extents,
    /// `ChunkId` → reference count.
    Chunks,
    /// `ChunkId` → when its count reached zero (for GC).
    Garbage,
    /// chunkserver id → registry record.
    Servers,
    /// Singletons: counters, last applied log id, membership, ring epoch.
    SmMeta,
    /// directory ino → its parent's ino (for rename cycle checks).
    Parents,
    /// Results of writes applied under a session, and their expiry index
    /// (see [`crate::sessions`]).
    Sessions,
    /// symbolic link ino → its target.
    Symlinks,
    /// `(ino, attribute name)` → extended attribute value.
    Xattrs,
    /// file ino → its bytes, for a file small enough to keep them here
    /// (then it has no extents).
    Inline,
}

impl Cf {
    pub const ALL: [Cf; 12] = [
        Cf::Inodes,
        Cf::Dentries,
        Cf::Extents,
        Cf::Chunks,
        Cf::Garbage,
        Cf::Servers,
        Cf::SmMeta,
        Cf::Parents,
        Cf::Sessions,
        Cf::Symlinks,
        Cf::Xattrs,
        Cf::Inline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Inodes => "inodes",
            Cf::Dentries => "dentries",
            Cf::Extents => "extents",
            Cf::Chunks => "chunks",
            Cf::Garbage => "garbage",
            Cf::Servers => "servers",
            Cf::SmMeta => "sm_meta",
            Cf::Parents => "parents",
            Cf::Sessions => "sessions",
            Cf::Symlinks => "symlinks",
            Cf::Xattrs => "xattrs",
            Cf::Inline => "inline",
        }
    }

    pub fn from_name(name: &str) -> Option<Cf> {
        Cf::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A storage engine failure (the disk, RocksDB).
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct KvError(pub String);

pub type KvPair = (Vec<u8>, Vec<u8>);

/// Reading the state machine.
pub trait KvRead {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    /// Up to `limit` entries with `start <= key < end`, ascending.
    fn scan(&self, cf: Cf, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, KvError>;
    /// The entry with the greatest key in `floor..=key`, if any.
    fn last_at_or_before(
        &self,
        cf: Cf,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<KvPair>, KvError>;
}

type Key = (Cf, Vec<u8>);

/// Uncommitted writes over a reader.
pub struct Txn<'a, R: KvRead> {
    base: &'a R,
    writes: BTreeMap<Key, Option<Vec<u8>>>,
    /// What each write replaced in `writes` (outer `None`: the key had no
    /// overlay entry), newest last; rolling back replays it in reverse, so a
    /// savepoint costs nothing however large the transaction has grown.
    undo: Vec<(Key, Option<Option<Vec<u8>>>)>,
}

/// A point in a [`Txn`] to roll back to.
#[derive(Clone, Copy, Debug)]
pub struct Savepoint(usize);

impl<'a, R: KvRead> Txn<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Txn {
            base,
            writes: BTreeMap::new(),
            undo: Vec::new(),
        }
    }

    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.write((cf, key), Some(value));
    }

    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.write((cf, key), None);
    }

    fn write(&mut self, key: Key, value: Option<Vec<u8>>) {
        let previous = self.writes.insert(key.clone(), value);
        self.undo.push((key, previous));
    }

    /// The writes, in key order, for committing as one batch.
    pub fn into_writes(self) -> BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>> {
        self.writes
    }

    /// Marks the current state, to return to after a failed command.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.undo.len())
    }

    /// Undoes every write made since `to`.
    pub fn rollback(&mut self, to: Savepoint) {
        while self.undo.len() > to.0 {
            let Some((key, previous)) = self.undo.pop() else {
                break;
            };
            match previous {
                Some(v) => self.writes.insert(key, v),
                None => self.writes.remove(&key),
            };
        }
    }

    fn overlay_range(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
    ) -> impl DoubleEndedIterator<Item = (&Vec<u8>, &Option<Vec<u8>>)> {
        // An empty or inverted range selects nothing (BTreeMap would panic).
        let end = if end < start { start } else { end };
        self.writes
            .range((
                Bound::Included((cf, start.to_vec())),
                Bound::Excluded((cf, end.to_vec())),
            ))
            .map(|((_, k), v)| (k, v))
    }
}

impl<R: KvRead> KvRead for Txn<'_, R> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self.writes.get(&(cf, key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(cf, key),
        }
    }

    fn scan(&self, cf: Cf, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, KvError> {
        // Base entries hidden by overlay deletes must not eat into the limit.
        let hidden = self.overlay_range(cf, start, end).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .base
            .scan(cf, start, end, limit.saturating_add(hidden))?
            .into_iter()
            .collect();
        for (k, v) in self.overlay_range(cf, start, end) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    fn last_at_or_before(
        &self,
        cf: Cf,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<KvPair>, KvError> {
        // Walk back from `key` through the base, skipping overlay deletes,
        // and compare with the overlay's own candidate.
        let mut upper = key.to_vec();
        let base = loop {
            match self.base.last_at_or_before(cf, floor, &upper)? {
                Some((k, v)) => match self.writes.get(&(cf, k.clone())) {
                    Some(None) => {
                        if k.as_slice() <= floor {
                            break None;
                        }
                        upper = predecessor(&k);
                    }
                    Some(Some(nv)) => break Some((k, nv.clone())),
                    None => break Some((k, v)),
                },
                None => break None,
            }
        };
        let mut end = key.to_vec();
        end.push(0);
        let over = self
            .overlay_range(cf, floor, &end)
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .next_back();
        Ok(match (base, over) {
            (Some(b), Some(o)) => Some(if o.0 >= b.0 { o } else { b }),
            (b, o) => b.or(o),
        })
    }
}

/// The greatest key strictly less than `k` in the sense needed for a
/// reverse seek: `k` with its last byte decremented (or dropped) and the
/// rest maxed out is not representable, so we step to the key prefix that
/// sorts immediately before and rely on `last_at_or_before` to find the real
/// entry at or below it.
fn predecessor(k: &[u8]) -> Vec<u8> {
    let mut p = k.to_vec();
    match p.last_mut() {
        Some(0) => {
            p.pop();
        }
        Some(b) => {
            *b -= 1;
            p.extend_from_slice(&[0xff; 16]);
        }
        None => {}
    }
    p
}

/// An in-memory state machine store, for tests of the namespace logic.
#[derive(Default, Clone, Debug)]
pub struct MemKv {
    pub maps: BTreeMap<Cf, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemKv {
    pub fn commit(&mut self, writes: BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>) {
        for ((cf, k), v) in writes {
            let map = self.maps.entry(cf).or_default();
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
    }
}

impl KvRead for MemKv {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.maps.get(&cf).and_then(|m| m.get(key).cloned()))
    }

    fn scan(&self, cf: Cf, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, KvError> {
        let Some(m) = self.maps.get(&cf) else {
            return Ok(Vec::new());
        };
        if end <= start {
            return Ok(Vec::new());
        }
        Ok(
            m.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn last_at_or_before(
        &self,
        cf: Cf,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<KvPair>, KvError> {
        let Some(m) = self.maps.get(&cf) else {
            return Ok(None);
        };
        if key < floor {
            return Ok(None);
        }
        Ok(
            m.range::<[u8], _>((Bound::Included(floor), Bound::Included(key)))
                .next_back()
                .map(|(k, v)| (k.clone(), v.clone())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_reads_its_own_writes_and_hides_deletes() {
        let mut base = MemKv::default();
        let mut w = BTreeMap::new();
        for k in [1u8, 2, 3, 4] {
            w.insert((Cf::Extents, vec![k]), Some(vec![k]));
        }
        base.commit(w);
        let mut t = Txn::new(&base);
        t.delete(Cf::Extents, vec![2]);
        t.put(Cf::Extents, vec![5], vec![5]);
        let keys: Vec<u8> = t
            .scan(Cf::Extents, &[0], &[9], 3)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k[0])
            .collect();
        assert_eq!(keys, vec![1, 3, 4]);
        assert_eq!(t.get(Cf::Extents, &[2]).unwrap(), None);
        t.delete(Cf::Extents, vec![4]);
        t.delete(Cf::Extents, vec![3]);
        let last = t.last_at_or_before(Cf::Extents, &[0], &[4]).unwrap();
        assert_eq!(last.map(|(k, _)| k), Some(vec![1]));
        let last = t.last_at_or_before(Cf::Extents, &[0], &[7]).unwrap();
        assert_eq!(last.map(|(k, _)| k), Some(vec![5]));
    }

    #[test]
    fn rollback_restores_the_overlay_exactly() {
        let base = MemKv::default();
        let mut t = Txn::new(&base);
        t.put(Cf::Inodes, vec![1], vec![1]);
        t.delete(Cf::Inodes, vec![2]);
        let before = t.writes.clone();
        let sp = t.savepoint();
        t.put(Cf::Inodes, vec![1], vec![9]);
        t.put(Cf::Inodes, vec![2], vec![2]);
        t.put(Cf::Inodes, vec![3], vec![3]);
        t.delete(Cf::Inodes, vec![1]);
        t.rollback(sp);
        assert_eq!(t.writes, before);
    }
}
