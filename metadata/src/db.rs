//! The metadata node's RocksDB: one database, one column family per kind
//! of record. The Raft log and the state machine share its write-ahead log,
//! so a synced log append also makes every earlier state-machine write
//! durable, and one state-machine batch is atomic.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, SnapshotWithThreadMode,
    WriteBatch, WriteOptions, DB,
};

use crate::kv::{Cf, KvError, KvPair, KvRead};

/// Column family of Raft log entries, keyed by big-endian index.
pub const CF_LOG: &str = "raft_log";
/// Column family of Raft's own state: vote, last purged log id, committed.
pub const CF_RAFT: &str = "raft_state";

pub fn open(dir: &Path) -> Result<Arc<DB>, KvError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let mut names: Vec<&str> = vec![CF_LOG, CF_RAFT];
    names.extend(Cf::ALL.iter().map(|c| c.name()));
    let cfs = names
        .into_iter()
        .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
    let db = DB::open_cf_descriptors(&opts, dir, cfs)
        .map_err(|e| KvError(format!("opening {}: {e}", dir.display())))?;
    Ok(Arc::new(db))
}

pub fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, KvError> {
    db.cf_handle(name)
        .ok_or_else(|| KvError(format!("column family {name} missing")))
}

pub fn kv_err(e: rocksdb::Error) -> KvError {
    KvError(e.to_string())
}

/// Writes `batch`, synced to disk when `sync`.
pub fn write(db: &DB, batch: WriteBatch, sync: bool) -> Result<(), KvError> {
    let mut wo = WriteOptions::default();
    wo.set_sync(sync);
    db.write_opt(batch, &wo).map_err(kv_err)
}

/// The state machine's column families read straight from RocksDB.
#[derive(Clone)]
pub struct RocksKv {
    pub db: Arc<DB>,
}

impl RocksKv {
    /// Commits a transaction's writes as one atomic batch.
    pub fn commit(
        &self,
        writes: impl IntoIterator<Item = ((Cf, Vec<u8>), Option<Vec<u8>>)>,
        extra: impl FnOnce(&mut WriteBatch) -> Result<(), KvError>,
    ) -> Result<(), KvError> {
        let mut batch = WriteBatch::default();
        for ((c, k), v) in writes {
            let h = cf(&self.db, c.name())?;
            match v {
                Some(v) => batch.put_cf(h, k, v),
                None => batch.delete_cf(h, k),
            }
        }
        extra(&mut batch)?;
        // Not synced: the Raft log, synced on append, can replay it.
        write(&self.db, batch, false)
    }
}

impl RocksKv {
    /// The state machine as it is now, unchanged by later applies: a read
    /// of several records (an inode and its extents, a path's dentries)
    /// through it sees one applied state, never part of a later command.
    pub fn view(&self) -> RocksView<'_> {
        RocksView {
            db: &self.db,
            snap: Some(self.db.snapshot()),
        }
    }

    /// Reads of the live database, each seeing the latest apply.
    fn live(&self) -> RocksView<'_> {
        RocksView {
            db: &self.db,
            snap: None,
        }
    }
}

/// Reads of the state machine, from one snapshot ([`RocksKv::view`]) or
/// live.
pub struct RocksView<'a> {
    db: &'a DB,
    snap: Option<SnapshotWithThreadMode<'a, DB>>,
}

impl RocksView<'_> {
    fn opts(&self) -> ReadOptions {
        let mut o = ReadOptions::default();
        if let Some(s) = &self.snap {
            o.set_snapshot(s);
        }
        o
    }
}

impl KvRead for RocksView<'_> {
    fn get(&self, c: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let h = cf(self.db, c.name())?;
        self.db.get_cf_opt(h, key, &self.opts()).map_err(kv_err)
    }

    fn scan(&self, c: Cf, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, KvError> {
        let h = cf(self.db, c.name())?;
        let it = self.db.iterator_cf_opt(
            h,
            self.opts(),
            IteratorMode::From(start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in it {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(kv_err)?;
            if k.as_ref() >= end {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn last_at_or_before(
        &self,
        c: Cf,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<KvPair>, KvError> {
        let h = cf(self.db, c.name())?;
        let mut it =
            self.db
                .iterator_cf_opt(h, self.opts(), IteratorMode::From(key, Direction::Reverse));
        match it.next() {
            Some(item) => {
                let (k, v) = item.map_err(kv_err)?;
                Ok((k.as_ref() >= floor).then(|| (k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }
}

impl KvRead for RocksKv {
    fn get(&self, c: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.live().get(c, key)
    }

    fn scan(&self, c: Cf, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, KvError> {
        self.live().scan(c, start, end, limit)
    }

    fn last_at_or_before(
        &self,
        c: Cf,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<KvPair>, KvError> {
        self.live().last_at_or_before(c, floor, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{MemKv, Txn};
    use std::collections::BTreeMap;

    /// A view answers every read as of when it was taken: gets, scans and
    /// reverse seeks all miss a batch committed after it.
    #[test]
    fn a_view_keeps_the_state_it_was_taken_at() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksKv {
            db: open(dir.path()).unwrap(),
        };
        let put = |k: u8, v: u8| {
            let w = BTreeMap::from([((Cf::Extents, vec![0, k]), Some(vec![v]))]);
            rocks.commit(w, |_| Ok(())).unwrap();
        };
        put(1, 1);
        let view = rocks.view();
        put(1, 2);
        put(3, 3);
        assert_eq!(view.get(Cf::Extents, &[0, 1]).unwrap(), Some(vec![1]));
        assert_eq!(
            view.scan(Cf::Extents, &[0], &[1], 10).unwrap(),
            vec![(vec![0, 1], vec![1])]
        );
        assert_eq!(
            view.last_at_or_before(Cf::Extents, &[0], &[0, 9]).unwrap(),
            Some((vec![0, 1], vec![1]))
        );
        assert_eq!(
            rocks
                .view()
                .scan(Cf::Extents, &[0], &[1], 10)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(rocks.get(Cf::Extents, &[0, 1]).unwrap(), Some(vec![2]));
    }

    /// The RocksDB store answers like the in-memory one.
    #[test]
    fn rocks_and_memory_agree() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksKv {
            db: open(dir.path()).unwrap(),
        };
        let mut mem = MemKv::default();
        let mut w = BTreeMap::new();
        for k in [1u8, 3, 5, 7, 9] {
            w.insert((Cf::Extents, vec![0, k]), Some(vec![k]));
        }
        w.insert((Cf::Inodes, vec![1]), Some(vec![1]));
        rocks.commit(w.clone(), |_| Ok(())).unwrap();
        mem.commit(w);
        for (s, e, l) in [
            (&[0u8][..], &[1u8][..], 10),
            (&[0, 4], &[0, 9], 2),
            (&[0, 9], &[1], 5),
        ] {
            assert_eq!(
                rocks.scan(Cf::Extents, s, e, l).unwrap(),
                mem.scan(Cf::Extents, s, e, l).unwrap()
            );
        }
        for key in [[0u8, 0], [0, 1], [0, 4], [0, 200]] {
            assert_eq!(
                rocks.last_at_or_before(Cf::Extents, &[0, 2], &key).unwrap(),
                mem.last_at_or_before(Cf::Extents, &[0, 2], &key).unwrap(),
                "{key:?}"
            );
        }
        let mut t = Txn::new(&rocks);
        t.delete(Cf::Extents, vec![0, 3]);
        assert_eq!(t.scan(Cf::Extents, &[0], &[1], 2).unwrap().len(), 2);
        assert_eq!(rocks.get(Cf::Inodes, &[1]).unwrap(), Some(vec![1]));
        assert_eq!(rocks.get(Cf::Inodes, &[2]).unwrap(), None);
    }
}
