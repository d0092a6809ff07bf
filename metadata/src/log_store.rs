//! The Raft log in RocksDB (openraft `RaftLogStorage`).
//!
//! Entries live in [`CF_LOG`] under their big-endian index; the vote, the
//! last purged log id and the committed log id in [`CF_RAFT`], each in the
//! format of [`crate::log_format`]. Appends and votes are synced before
//! openraft is told they are durable.

// openraft's storage traits return its (large) StorageError; the helpers
// here return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogReader,
    StorageError, StorageIOError, Vote,
};
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};

use crate::db::{cf, write, CF_LOG, CF_RAFT};
use crate::kv::KvError;
use crate::log_format;
use crate::raft_types::{NodeId, TypeConfig};

const KEY_VOTE: &[u8] = b"vote";
const KEY_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::error(e.to_string())).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    /// The log in `db`, upgraded to this build's format first.
    pub fn open(db: Arc<DB>) -> Result<Self, KvError> {
        log_format::upgrade(&db)?;
        Ok(LogStore { db })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError<NodeId>> {
        let h = cf(&self.db, CF_RAFT).map_err(read_err)?;
        match self.db.get_cf(h, key).map_err(read_err)? {
            Some(b) => Ok(Some(log_format::decode(&b).map_err(read_err)?)),
            None => Ok(None),
        }
    }

    /// Stores `v` under `key`, synced to disk when `sync`.
    fn put_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        v: &T,
        sync: bool,
    ) -> Result<(), StorageError<NodeId>> {
        let h = cf(&self.db, CF_RAFT).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(h, key, log_format::encode(v));
        write(&self.db, batch, sync).map_err(write_err)
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, StorageError<NodeId>> {
        let h = cf(&self.db, CF_LOG).map_err(read_err)?;
        match self.db.iterator_cf(h, IteratorMode::End).next() {
            Some(item) => {
                let (_, v) = item.map_err(read_err)?;
                Ok(Some(log_format::decode(&v).map_err(read_err)?))
            }
            None => Ok(None),
        }
    }
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let h = cf(&self.db, CF_LOG).map_err(read_err)?;
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(h, IteratorMode::From(&index_key(start), Direction::Forward))
        {
            let (k, v) = item.map_err(read_err)?;
            let idx = u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| read_err(KvError("log key is not 8 bytes".into())))?,
            );
            if !range.contains(&idx) {
                break;
            }
            out.push(log_format::decode(&v).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(KEY_PURGED)?;
        let last = self.last_entry()?.map(|e| e.log_id).or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_meta(KEY_VOTE, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_meta(KEY_VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not synced: it shares the WAL with the log, so the next synced
        // append makes it durable, and a value lost in a crash is at most
        // one entry behind. A restarted node re-applies from its log what
        // it committed; linearizable reads wait for its own term's first
        // commit, which re-commits everything before it.
        self.put_meta(KEY_COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let h = cf(&self.db, CF_LOG).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        for e in entries {
            batch.put_cf(h, index_key(e.log_id.index), log_format::encode(&e));
        }
        // Crash tests: entries received but not yet durable, or durable
        // but not yet reported so.
        cairn_proto::crash_point!("raft-append-before-write");
        let res = write(&self.db, batch, true);
        cairn_proto::crash_point!("raft-append-written");
        let io = res
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io);
        res.map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let h = cf(&self.db, CF_LOG).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(h, index_key(log_id.index), index_key(u64::MAX));
        // delete_range excludes its end; u64::MAX itself is never a real index.
        write(&self.db, batch, true).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_meta(KEY_PURGED, &log_id, true)?;
        let h = cf(&self.db, CF_LOG).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(h, index_key(0), index_key(log_id.index + 1));
        write(&self.db, batch, false).map_err(write_err)
    }
}
