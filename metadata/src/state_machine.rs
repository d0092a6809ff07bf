//! The replicated state machine in RocksDB (openraft `RaftStateMachine`).
//!
//! Each `apply` call turns its entries into one [`Txn`] and commits it as one
//! RocksDB batch together with the last applied log id and membership, so
//! a crash leaves the state machine at an entry boundary. Refused commands
//! write nothing (see [`namespace::apply_one`]).

// openraft's storage traits return its (large) StorageError; the helpers
// here return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use rocksdb::{IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandOutput};
use crate::db::{cf, kv_err, write, RocksKv};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::namespace;
use crate::raft_types::{NodeId, TypeConfig};
use crate::schema::{decode, encode, meta_keys};

type Membership = StoredMembership<NodeId, openraft::BasicNode>;

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

/// A snapshot: every state-machine record, in one buffer.
#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    /// (column family name, key, value)
    records: Vec<(String, Vec<u8>, Vec<u8>)>,
}

#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    data: Vec<u8>,
}

/// The last snapshot built or installed, served to followers that need it.
type CurrentSnapshot = Arc<Mutex<Option<StoredSnapshot>>>;

pub struct StateMachine {
    kv: RocksKv,
    current: CurrentSnapshot,
}

impl StateMachine {
    pub fn new(kv: RocksKv) -> Self {
        StateMachine {
            kv,
            current: Arc::default(),
        }
    }

    fn applied(&self) -> Result<(Option<LogId<NodeId>>, Membership), KvError> {
        let last = match self.kv.get(Cf::SmMeta, meta_keys::LAST_APPLIED)? {
            Some(b) => decode(&b)?,
            None => None,
        };
        let membership = match self.kv.get(Cf::SmMeta, meta_keys::MEMBERSHIP)? {
            Some(b) => decode(&b)?,
            None => Membership::default(),
        };
        Ok((last, membership))
    }
}

/// Builds snapshots from a consistent RocksDB view.
pub struct SnapshotBuilder {
    kv: RocksKv,
    current: CurrentSnapshot,
}

fn lock(c: &CurrentSnapshot) -> std::sync::MutexGuard<'_, Option<StoredSnapshot>> {
    // The guarded value is replaced whole, never left half-written.
    c.lock().unwrap_or_else(|p| p.into_inner())
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let err = |e: KvError| sm_err(ErrorVerb::Read, e);
        let db = &self.kv.db;
        let view = db.snapshot();
        let mut records = Vec::new();
        let mut last: Option<LogId<NodeId>> = None;
        let mut membership = Membership::default();
        for c in Cf::ALL {
            let h = cf(db, c.name()).map_err(err)?;
            for item in view.iterator_cf(h, IteratorMode::Start) {
                let (k, v) = item.map_err(|e| err(kv_err(e)))?;
                if c == Cf::SmMeta && k.as_ref() == meta_keys::LAST_APPLIED {
                    last = decode(&v).map_err(err)?;
                }
                if c == Cf::SmMeta && k.as_ref() == meta_keys::MEMBERSHIP {
                    membership = decode(&v).map_err(err)?;
                }
                records.push((c.name().to_string(), k.to_vec(), v.to_vec()));
            }
        }
        let data = encode(&SnapshotPayload { records });
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, data.len()),
            None => format!("empty-{}", data.len()),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: membership,
            snapshot_id,
        };
        *lock(&self.current) = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        self.applied().map_err(|e| sm_err(ErrorVerb::Read, e))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutput>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let kv = self.kv.clone();
        let mut t = Txn::new(&kv);
        let mut results = Vec::new();
        let mut last = None;
        let mut membership = None;
        for entry in entries {
            last = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => results.push(CommandOutput::One(Ok(None))),
                EntryPayload::Normal(Command::Batch(cmds)) => {
                    let mut out = Vec::with_capacity(cmds.len());
                    for cmd in &cmds {
                        out.push(
                            namespace::apply_one(&mut t, cmd)
                                .map_err(|e| sm_err(ErrorVerb::Write, e))?,
                        );
                    }
                    results.push(CommandOutput::Many(out));
                }
                EntryPayload::Normal(cmd) => {
                    let r = namespace::apply_one(&mut t, &cmd)
                        .map_err(|e| sm_err(ErrorVerb::Write, e))?;
                    results.push(CommandOutput::One(r));
                }
                EntryPayload::Membership(m) => {
                    membership = Some(Membership::new(Some(entry.log_id), m));
                    results.push(CommandOutput::One(Ok(None)));
                }
            }
        }
        if last.is_none() {
            return Ok(results);
        }
        t.put(Cf::SmMeta, meta_keys::LAST_APPLIED.to_vec(), encode(&last));
        if let Some(m) = membership {
            t.put(Cf::SmMeta, meta_keys::MEMBERSHIP.to_vec(), encode(&m));
        }
        kv.commit(t.into_writes(), |_| Ok(()))
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            kv: self.kv.clone(),
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let err = |e: KvError| sm_err(ErrorVerb::Write, e);
        let data = snapshot.into_inner();
        let payload: SnapshotPayload = decode(&data).map_err(err)?;
        let db = &self.kv.db;
        let mut batch = WriteBatch::default();
        for c in Cf::ALL {
            let h = cf(db, c.name()).map_err(err)?;
            for item in db.iterator_cf(h, IteratorMode::Start) {
                let (k, _) = item.map_err(|e| err(kv_err(e)))?;
                batch.delete_cf(h, k);
            }
        }
        for (name, k, v) in payload.records {
            let c = Cf::from_name(&name).ok_or_else(|| {
                err(KvError(format!(
                    "snapshot names unknown column family {name:?}"
                )))
            })?;
            batch.put_cf(cf(db, c.name()).map_err(err)?, k, v);
        }
        let smeta = cf(db, Cf::SmMeta.name()).map_err(err)?;
        batch.put_cf(smeta, meta_keys::LAST_APPLIED, encode(&meta.last_log_id));
        batch.put_cf(smeta, meta_keys::MEMBERSHIP, encode(&meta.last_membership));
        write(db, batch, true).map_err(err)?;
        *lock(&self.current) = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(lock(&self.current).clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::{ErrorCode, InodeId};
    use openraft::{CommittedLeaderId, Entry};

    fn entry(index: u64, cmd: Command) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn mkdir(name: &str) -> Command {
        Command::mkdir_in_root(name)
    }

    #[tokio::test]
    async fn a_batch_applies_each_command_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let kv = RocksKv {
            db: crate::db::open(dir.path()).unwrap(),
        };
        let mut sm = StateMachine::new(kv.clone());
        let out = sm
            .apply(vec![entry(
                1,
                Command::Batch(vec![mkdir("a"), mkdir("a"), mkdir("b")]),
            )])
            .await
            .unwrap();
        let CommandOutput::Many(rs) = &out[0] else {
            panic!("expected one result per command, got {out:?}");
        };
        assert_eq!(rs.len(), 3);
        assert!(rs[0].is_ok() && rs[2].is_ok());
        assert_eq!(rs[1].as_ref().unwrap_err().code, ErrorCode::AlreadyExists);
        let (entries, _) = namespace::read_dir(&kv, InodeId::ROOT, None, 10).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(1));
    }
}
