//! How Raft's own records are stored: log entries in [`CF_LOG`], the vote,
//! last purged and committed log ids in [`CF_RAFT`].
//!
//! Format 1: every value starts with the format byte [`LOG_V1`], then the
//! record in postcard, and [`CF_RAFT`] holds the marker [`FORMAT_KEY`] =
//! `[LOG_V1]`. Format 0, written by builds before formats were explicit,
//! is the same records with neither the byte nor the marker; opening a
//! database of format 0 rewrites it as format 1 in one synced batch
//! ([`upgrade`]). A log entry's first bytes are its term, any number, so
//! the format of a database is told by the marker, not by its values.

use rocksdb::{IteratorMode, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{cf, kv_err, write, CF_LOG, CF_RAFT};
use crate::kv::KvError;
use crate::raft_types::TypeConfig;

/// The format this build writes.
pub const LOG_V1: u8 = 1;
/// Key of the format marker in [`CF_RAFT`].
pub const FORMAT_KEY: &[u8] = b"format";

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_extend(v, vec![LOG_V1]).expect("in-memory postcard encoding cannot fail")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, KvError> {
    match bytes.split_first() {
        Some((&LOG_V1, rest)) => {
            postcard::from_bytes(rest).map_err(|e| KvError(format!("corrupt Raft record: {e}")))
        }
        Some((v, _)) => Err(KvError(format!(
            "Raft record format {v} is not one this build reads ({LOG_V1})"
        ))),
        None => Err(KvError("empty Raft record".into())),
    }
}

/// Brings the database's Raft records to [`LOG_V1`]: nothing to do when
/// it is already there; from format 0 (no marker), every log entry is
/// checked to decode and then rewritten with its format byte, as is each
/// Raft-state value, atomically with the marker. A database of a newer
/// format is refused: this build would misread it.
pub fn upgrade(db: &DB) -> Result<(), KvError> {
    let raft = cf(db, CF_RAFT)?;
    match db.get_cf(raft, FORMAT_KEY).map_err(kv_err)? {
        Some(v) if v.as_slice() == [LOG_V1] => return Ok(()),
        Some(v) => {
            return Err(KvError(format!(
                "the Raft log is in format {v:?}, newer than this build reads ({LOG_V1}): \
                 run the release that wrote it"
            )))
        }
        None => {}
    }
    let log = cf(db, CF_LOG)?;
    let mut batch = WriteBatch::default();
    let mut entries = 0u64;
    for item in db.iterator_cf(log, IteratorMode::Start) {
        let (k, v) = item.map_err(kv_err)?;
        // Format 0 held bare postcard: refuse to relabel bytes that are not
        // an entry (a corrupt value stays visibly corrupt).
        postcard::from_bytes::<openraft::Entry<TypeConfig>>(&v).map_err(|e| {
            let index = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes);
            KvError(format!(
                "log entry {index:?} of the old format does not decode: {e}"
            ))
        })?;
        batch.put_cf(log, &k, prefixed(&v));
        entries += 1;
    }
    for item in db.iterator_cf(raft, IteratorMode::Start) {
        let (k, v) = item.map_err(kv_err)?;
        batch.put_cf(raft, &k, prefixed(&v));
    }
    batch.put_cf(raft, FORMAT_KEY, [LOG_V1]);
    write(db, batch, true)?;
    tracing::info!(entries, "upgraded the Raft log to format {LOG_V1}");
    Ok(())
}

fn prefixed(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push(LOG_V1);
    out.extend_from_slice(v);
    out
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    use super::*;
    use crate::command::Command;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
            payload: EntryPayload::Normal(Command::SetChunkServerDown { id: 4, down: true }),
        }
    }

    /// A log entry as format 0 wrote it: term 2, leader 1, index 5,
    /// `SetChunkServerDown { id: 4, down: true }` (bytes pinned, so a
    /// change in how entries or commands encode fails here).
    const ENTRY_V0: [u8; 7] = [2, 1, 5, 1, 8, 4, 1];
    /// `Vote::new_committed(2, 1)` as format 0 wrote it.
    const VOTE_V0: [u8; 3] = [2, 1, 1];

    #[test]
    fn a_database_of_format_0_is_upgraded_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = crate::db::open(dir.path()).unwrap();
            assert_eq!(postcard::to_allocvec(&entry(5)).unwrap(), ENTRY_V0);
            let vote = Vote::<u64>::new_committed(2, 1);
            assert_eq!(postcard::to_allocvec(&vote).unwrap(), VOTE_V0);
            let mut b = WriteBatch::default();
            b.put_cf(cf(&db, CF_LOG).unwrap(), 5u64.to_be_bytes(), ENTRY_V0);
            b.put_cf(cf(&db, CF_RAFT).unwrap(), b"vote", VOTE_V0);
            write(&db, b, true).unwrap();
        }
        let db = crate::db::open(dir.path()).unwrap();
        upgrade(&db).unwrap();
        let log = cf(&db, CF_LOG).unwrap();
        let raw = db.get_cf(log, 5u64.to_be_bytes()).unwrap().unwrap();
        assert_eq!(raw[0], LOG_V1);
        assert_eq!(decode::<Entry<TypeConfig>>(&raw).unwrap(), entry(5));
        let raft = cf(&db, CF_RAFT).unwrap();
        let vote = db.get_cf(raft, b"vote").unwrap().unwrap();
        assert_eq!(
            decode::<Vote<u64>>(&vote).unwrap(),
            Vote::<u64>::new_committed(2, 1)
        );
        // A second open changes nothing.
        upgrade(&db).unwrap();
        let again = db.get_cf(log, 5u64.to_be_bytes()).unwrap().unwrap();
        assert_eq!(again, raw);
    }

    #[test]
    fn a_newer_format_or_a_corrupt_old_entry_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path()).unwrap();
        let raft = cf(&db, CF_RAFT).unwrap();
        db.put_cf(raft, FORMAT_KEY, [9u8]).unwrap();
        let err = upgrade(&db).unwrap_err();
        assert!(err.to_string().contains("newer than this build"), "{err}");

        db.delete_cf(raft, FORMAT_KEY).unwrap();
        let log = cf(&db, CF_LOG).unwrap();
        db.put_cf(log, 3u64.to_be_bytes(), [0xff, 0xff]).unwrap();
        let err = upgrade(&db).unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
        assert_eq!(db.get_cf(raft, FORMAT_KEY).unwrap(), None);
        assert_eq!(
            db.get_cf(log, 3u64.to_be_bytes()).unwrap().unwrap(),
            vec![0xff, 0xff]
        );
    }

    #[test]
    fn records_carry_the_format_byte() {
        let bytes = encode(&entry(7));
        assert_eq!(bytes[0], LOG_V1);
        assert_eq!(decode::<Entry<TypeConfig>>(&bytes).unwrap(), entry(7));
        assert!(decode::<Entry<TypeConfig>>(&[2, 0]).is_err());
        assert!(decode::<Entry<TypeConfig>>(&[]).is_err());
    }
}
