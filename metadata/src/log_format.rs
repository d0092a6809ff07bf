//! How Raft's own records are stored: log entries in [`CF_LOG`], the vote,
//! last purged and committed log ids in [`CF_RAFT`].
//!
//! Format 2 (this build's): every value starts with the format byte
//! [`LOG_V2`], then the record in postcard, and [`CF_RAFT`] holds the
//! marker [`FORMAT_KEY`] = `[LOG_V2]`. Log entries hold [`Command`]s, whose
//! namespace changes embed the client's `NsWrite`.
//!
//! Format 1 is the same records with the byte 1, their entries holding
//! [`CommandV1`](crate::command::v1::CommandV1) (one variant per operation). Format 0, written by builds
//! before formats were explicit, is format 1 with neither the byte nor the
//! marker. Opening a database of format 0 or 1 rewrites it as format 2 in
//! one synced batch ([`upgrade`]). A log entry's first bytes are its term,
//! any number, so the format of a database is told by the marker, not by
//! its values.

use rocksdb::{IteratorMode, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::command::Command;
use crate::db::{cf, kv_err, write, CF_LOG, CF_RAFT};
use crate::kv::KvError;
use crate::raft_types::{TypeConfig, TypeConfigV1};

/// The format this build writes.
pub const LOG_V2: u8 = 2;
/// The previous format, which [`upgrade`] migrates.
pub const LOG_V1: u8 = 1;
/// Key of the format marker in [`CF_RAFT`].
pub const FORMAT_KEY: &[u8] = b"format";

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_extend(v, vec![LOG_V2]).expect("in-memory postcard encoding cannot fail")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, KvError> {
    match bytes.split_first() {
        Some((&LOG_V2, rest)) => {
            postcard::from_bytes(rest).map_err(|e| KvError(format!("corrupt Raft record: {e}")))
        }
        Some((v, _)) => Err(KvError(format!(
            "Raft record format {v} is not one this build reads ({LOG_V2})"
        ))),
        None => Err(KvError("empty Raft record".into())),
    }
}

/// Brings the database's Raft records to [`LOG_V2`]: nothing to do when
/// it is already there; from format 0 (no marker) or 1, every log entry is
/// decoded as its format held it (a value that does not decode is refused,
/// not relabelled: a corrupt entry stays visibly corrupt), its command
/// converted (`From<CommandV1> for Command`) and rewritten with the
/// format byte, as is each Raft-state value, atomically with the marker. A
/// database of a newer format is refused: this build would misread it.
pub fn upgrade(db: &DB) -> Result<(), KvError> {
    let raft = cf(db, CF_RAFT)?;
    let from = match db.get_cf(raft, FORMAT_KEY).map_err(kv_err)? {
        Some(v) if v.as_slice() == [LOG_V2] => return Ok(()),
        Some(v) if v.as_slice() == [LOG_V1] => LOG_V1,
        Some(v) => {
            return Err(KvError(format!(
                "the Raft log is in format {v:?}, newer than this build reads ({LOG_V2}): \
                 run the release that wrote it"
            )))
        }
        None => 0,
    };
    // Format 1's records are format 0's behind one byte.
    let body = |v: &[u8]| -> Result<Vec<u8>, String> {
        if from == 0 {
            return Ok(v.to_vec());
        }
        match v.split_first() {
            Some((&LOG_V1, rest)) => Ok(rest.to_vec()),
            _ => Err(format!("not a format-{from} record")),
        }
    };
    let log = cf(db, CF_LOG)?;
    let mut batch = WriteBatch::default();
    let mut entries = 0u64;
    for item in db.iterator_cf(log, IteratorMode::Start) {
        let (k, v) = item.map_err(kv_err)?;
        let old = body(&v)
            .and_then(|b| {
                postcard::from_bytes::<openraft::Entry<TypeConfigV1>>(&b).map_err(|e| e.to_string())
            })
            .map_err(|e| {
                let index = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes);
                KvError(format!(
                    "log entry {index:?} of format {from} does not decode: {e}"
                ))
            })?;
        batch.put_cf(log, &k, encode(&upgrade_entry(old)));
        entries += 1;
    }
    for item in db.iterator_cf(raft, IteratorMode::Start) {
        let (k, v) = item.map_err(kv_err)?;
        if k.as_ref() == FORMAT_KEY {
            continue;
        }
        let b = body(&v).map_err(|e| KvError(format!("Raft state {k:?}: {e}")))?;
        batch.put_cf(raft, &k, prefixed(&b));
    }
    batch.put_cf(raft, FORMAT_KEY, [LOG_V2]);
    write(db, batch, true)?;
    tracing::info!(
        entries,
        "upgraded the Raft log from format {from} to {LOG_V2}"
    );
    Ok(())
}

/// A format-1 entry as format 2 holds it: the same log id and membership,
/// the command converted.
fn upgrade_entry(e: openraft::Entry<TypeConfigV1>) -> openraft::Entry<TypeConfig> {
    use openraft::EntryPayload as P;
    openraft::Entry {
        log_id: e.log_id,
        payload: match e.payload {
            P::Blank => P::Blank,
            P::Normal(c) => P::Normal(Command::from(c)),
            P::Membership(m) => P::Membership(m),
        },
    }
}

fn prefixed(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push(LOG_V2);
    out.extend_from_slice(v);
    out
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    use super::*;
    use crate::command::v1::CommandV1;
    use crate::command::RegistryChange;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
            payload: EntryPayload::Normal(Command::Registry(RegistryChange::SetDown {
                id: 4,
                down: true,
            })),
        }
    }

    /// A log entry as formats 0 and 1 wrote it: term 2, leader 1, index 5,
    /// `SetChunkServerDown { id: 4, down: true }` (bytes pinned, so a
    /// change in how entries or commands encode fails here).
    const ENTRY_V0: [u8; 7] = [2, 1, 5, 1, 8, 4, 1];
    /// The same entry as format 2 holds it (after its format byte).
    const ENTRY_V2: [u8; 8] = [2, 1, 5, 1, 1, 2, 4, 1];
    /// `Vote::new_committed(2, 1)` as format 0 wrote it.
    const VOTE_V0: [u8; 3] = [2, 1, 1];

    fn with_byte(b: u8, v: &[u8]) -> Vec<u8> {
        let mut out = vec![b];
        out.extend_from_slice(v);
        out
    }

    /// Writes `entry` and `vote` as format `from` holds them, upgrades, and
    /// checks what the upgrade left.
    fn upgrades_from(from: u8, entry_bytes: Vec<u8>, vote_bytes: Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = crate::db::open(dir.path()).unwrap();
            let mut b = WriteBatch::default();
            b.put_cf(cf(&db, CF_LOG).unwrap(), 5u64.to_be_bytes(), entry_bytes);
            b.put_cf(cf(&db, CF_RAFT).unwrap(), b"vote", vote_bytes);
            if from > 0 {
                b.put_cf(cf(&db, CF_RAFT).unwrap(), FORMAT_KEY, [from]);
            }
            write(&db, b, true).unwrap();
        }
        let db = crate::db::open(dir.path()).unwrap();
        upgrade(&db).unwrap();
        let log = cf(&db, CF_LOG).unwrap();
        let raw = db.get_cf(log, 5u64.to_be_bytes()).unwrap().unwrap();
        assert_eq!(raw, with_byte(LOG_V2, &ENTRY_V2), "from format {from}");
        assert_eq!(decode::<Entry<TypeConfig>>(&raw).unwrap(), entry(5));
        let raft = cf(&db, CF_RAFT).unwrap();
        let vote = db.get_cf(raft, b"vote").unwrap().unwrap();
        assert_eq!(
            decode::<Vote<u64>>(&vote).unwrap(),
            Vote::<u64>::new_committed(2, 1)
        );
        assert_eq!(
            db.get_cf(raft, FORMAT_KEY).unwrap().as_deref(),
            Some(&[LOG_V2][..])
        );
        // A second open changes nothing.
        upgrade(&db).unwrap();
        let again = db.get_cf(log, 5u64.to_be_bytes()).unwrap().unwrap();
        assert_eq!(again, raw);
    }

    #[test]
    fn the_old_bytes_are_what_earlier_builds_wrote() {
        let old = Entry::<TypeConfigV1> {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), 5),
            payload: EntryPayload::Normal(CommandV1::SetChunkServerDown { id: 4, down: true }),
        };
        assert_eq!(postcard::to_allocvec(&old).unwrap(), ENTRY_V0);
        let vote = Vote::<u64>::new_committed(2, 1);
        assert_eq!(postcard::to_allocvec(&vote).unwrap(), VOTE_V0);
        assert_eq!(postcard::to_allocvec(&entry(5)).unwrap(), ENTRY_V2);
    }

    #[test]
    fn a_database_of_format_0_is_upgraded_and_reads_the_same() {
        upgrades_from(0, ENTRY_V0.to_vec(), VOTE_V0.to_vec());
    }

    #[test]
    fn a_database_of_format_1_is_upgraded_and_reads_the_same() {
        upgrades_from(1, with_byte(LOG_V1, &ENTRY_V0), with_byte(LOG_V1, &VOTE_V0));
    }

    #[test]
    fn a_newer_format_or_a_corrupt_old_entry_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path()).unwrap();
        let raft = cf(&db, CF_RAFT).unwrap();
        db.put_cf(raft, FORMAT_KEY, [9u8]).unwrap();
        let err = upgrade(&db).unwrap_err();
        assert!(err.to_string().contains("newer than this build"), "{err}");

        let log = cf(&db, CF_LOG).unwrap();
        db.put_cf(log, 3u64.to_be_bytes(), [0xff, 0xff]).unwrap();
        for marker in [None, Some(LOG_V1)] {
            match marker {
                None => db.delete_cf(raft, FORMAT_KEY).unwrap(),
                Some(m) => db.put_cf(raft, FORMAT_KEY, [m]).unwrap(),
            }
            let err = upgrade(&db).unwrap_err();
            assert!(err.to_string().contains("does not decode"), "{err}");
            assert_eq!(
                db.get_cf(raft, FORMAT_KEY).unwrap(),
                marker.map(|m| vec![m])
            );
            assert_eq!(
                db.get_cf(log, 3u64.to_be_bytes()).unwrap().unwrap(),
                vec![0xff, 0xff]
            );
        }
    }

    #[test]
    fn records_carry_the_format_byte() {
        let bytes = encode(&entry(7));
        assert_eq!(bytes[0], LOG_V2);
        assert_eq!(decode::<Entry<TypeConfig>>(&bytes).unwrap(), entry(7));
        assert!(decode::<Entry<TypeConfig>>(&with_byte(LOG_V1, &ENTRY_V0)).is_err());
        assert!(decode::<Entry<TypeConfig>>(&[2, 0]).is_err());
        assert!(decode::<Entry<TypeConfig>>(&[]).is_err());
    }
}
