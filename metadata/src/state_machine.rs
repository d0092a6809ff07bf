//! The replicated state machine in RocksDB (openraft `RaftStateMachine`).
//!
//! Each `apply` call turns its entries into one [`Txn`] and commits it as one
//! RocksDB batch together with the last applied log id and membership, so
//! a crash leaves the state machine at an entry boundary. Refused commands
//! write nothing (see [`crate::apply::apply_one`]).
//!
//! Snapshots stream from a consistent RocksDB view to a file and back
//! ([`crate::snapshot_format`], [`crate::snapshot_store`]): neither building
//! nor installing holds the whole state in memory, and an install is
//! verified end to end before it replaces anything.

// openraft's storage traits return its (large) StorageError; the helpers
// here return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use cairn_proto::meta_rpc::NsWrite;
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use rocksdb::{IteratorMode, WriteBatch, DB};

use crate::command::{Command, CommandOutput};
use crate::db::{cf, kv_err, write, RocksKv};
use crate::kv::{Cf, KvError, KvRead, Txn};
use crate::namespace::{self, NsError};
use crate::raft_types::{NodeId, TypeConfig};
use crate::schema::{decode, encode, meta_keys};
use crate::snapshot_format::{self, SnapshotReader, SnapshotWriter};
use crate::snapshot_store::{SnapshotDir, SnapshotFile, SnapshotRecord};

type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// Installing writes the state machine in batches of about this size.
const INSTALL_BATCH_BYTES: usize = 4 << 20;

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

fn io_kv(e: impl std::fmt::Display) -> KvError {
    KvError(format!("snapshot: {e}"))
}

pub struct StateMachine {
    kv: RocksKv,
    snapshots: SnapshotDir,
}

impl StateMachine {
    /// Opens the state machine over `kv`, keeping snapshots in
    /// `snapshot_dir`; an install a crash interrupted is finished first.
    pub fn open(kv: RocksKv, snapshot_dir: &Path) -> Result<Self, KvError> {
        let snapshots = SnapshotDir::open(snapshot_dir).map_err(io_kv)?;
        if let Some(rec) = snapshots.installing().map_err(io_kv)? {
            tracing::warn!(snapshot = %rec.meta.snapshot_id, "finishing an interrupted snapshot install");
            install_records(&kv.db, &snapshots.path(&rec.file), &rec.meta)?;
            snapshots.set_current(&rec).map_err(io_kv)?;
        }
        Ok(StateMachine { kv, snapshots })
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

/// Writes every state-machine record of a consistent RocksDB view to a new
/// snapshot file, streaming, and makes it the current snapshot.
/// Builds a snapshot file and makes it current; with it open for reading
/// (opened before it became current, so a newer snapshot replacing it
/// at once cannot delete it from under the caller).
fn build(kv: &RocksKv, dir: &SnapshotDir) -> Result<(SnapshotRecord, File), KvError> {
    let db = &kv.db;
    let view = db.snapshot();
    let smeta = cf(db, Cf::SmMeta.name())?;
    let last: Option<LogId<NodeId>> = match view.get_cf(smeta, meta_keys::LAST_APPLIED) {
        Ok(Some(b)) => decode(&b)?,
        Ok(None) => None,
        Err(e) => return Err(kv_err(e)),
    };
    let last_membership: Membership = match view.get_cf(smeta, meta_keys::MEMBERSHIP) {
        Ok(Some(b)) => decode(&b)?,
        Ok(None) => Membership::default(),
        Err(e) => return Err(kv_err(e)),
    };
    let part = dir.new_part("build");
    let written = (|| -> Result<(), KvError> {
        let out = BufWriter::new(File::create(&part).map_err(io_kv)?);
        let mut w = SnapshotWriter::new(out).map_err(io_kv)?;
        for c in Cf::ALL {
            let h = cf(db, c.name())?;
            for item in view.iterator_cf(h, IteratorMode::Start) {
                let (k, v) = item.map_err(kv_err)?;
                w.record(c, &k, &v).map_err(io_kv)?;
            }
        }
        w.finish().map_err(io_kv)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    let file = dir.promote(&part).map_err(io_kv)?;
    let snapshot_id = match last {
        Some(l) => format!(
            "{}-{}-{}-{file}",
            l.leader_id.term, l.leader_id.node_id, l.index
        ),
        None => format!("empty-{file}"),
    };
    let rec = SnapshotRecord {
        meta: Meta {
            last_log_id: last,
            last_membership,
            snapshot_id,
        },
        file,
    };
    let open = File::open(dir.path(&rec.file)).map_err(io_kv)?;
    dir.set_current(&rec).map_err(io_kv)?;
    Ok((rec, open))
}

/// Replaces the whole state machine with a verified snapshot file's
/// records. Batches before the last are not synced; the last one (applied
/// log id and membership) is, which makes all of them durable. Called
/// while the `INSTALLING` sidecar names the file, so it is redone after a
/// crash.
fn install_records(db: &DB, path: &Path, meta: &Meta) -> Result<(), KvError> {
    let mut batch = WriteBatch::default();
    for c in Cf::ALL {
        let h = cf(db, c.name())?;
        let edge = |mode| match db.iterator_cf(h, mode).next() {
            Some(Ok((k, _))) => Ok(Some(k)),
            Some(Err(e)) => Err(kv_err(e)),
            None => Ok(None),
        };
        if let (Some(first), Some(last)) = (edge(IteratorMode::Start)?, edge(IteratorMode::End)?) {
            batch.delete_range_cf(h, &first, &last);
            batch.delete_cf(h, &last);
        }
    }
    write(db, batch, false)?;
    let input = BufReader::new(File::open(path).map_err(io_kv)?);
    let mut records = SnapshotReader::new(input).map_err(io_kv)?;
    let mut batch = WriteBatch::default();
    while let Some((c, k, v)) = records.next_record().map_err(io_kv)? {
        batch.put_cf(cf(db, c.name())?, k, v);
        if batch.size_in_bytes() >= INSTALL_BATCH_BYTES {
            write(db, std::mem::take(&mut batch), false)?;
        }
    }
    let smeta = cf(db, Cf::SmMeta.name())?;
    batch.put_cf(smeta, meta_keys::LAST_APPLIED, encode(&meta.last_log_id));
    batch.put_cf(smeta, meta_keys::MEMBERSHIP, encode(&meta.last_membership));
    write(db, batch, true)
}

async fn blocking<T: Send + 'static>(
    verb: ErrorVerb,
    f: impl FnOnce() -> Result<T, KvError> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| sm_err(verb, e)),
        Err(e) => Err(sm_err(verb, e)),
    }
}

fn opened_snapshot(dir: &SnapshotDir, rec: SnapshotRecord, file: File) -> Snapshot<TypeConfig> {
    Snapshot {
        snapshot: Box::new(SnapshotFile::from_std(file, dir.path(&rec.file))),
        meta: rec.meta,
    }
}

/// Builds snapshots from a consistent RocksDB view.
pub struct SnapshotBuilder {
    kv: RocksKv,
    snapshots: SnapshotDir,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (kv, dir) = (self.kv.clone(), self.snapshots.clone());
        let (rec, file) = blocking(ErrorVerb::Write, move || build(&kv, &dir)).await?;
        tracing::info!(snapshot = %rec.meta.snapshot_id, "built a metadata snapshot");
        Ok(opened_snapshot(&self.snapshots, rec, file))
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
                            crate::apply::apply_one(&mut t, cmd)
                                .map_err(|e| sm_err(ErrorVerb::Write, e))?,
                        );
                    }
                    results.push(CommandOutput::Many(out));
                }
                EntryPayload::Normal(Command::Ns {
                    write: NsWrite::ReserveInodes { count },
                    ..
                }) => {
                    let save = t.savepoint();
                    results.push(match namespace::reserve_inodes(&mut t, count) {
                        Ok(first) => CommandOutput::Reserved(first),
                        Err(NsError::Refused(e)) => {
                            t.rollback(save);
                            CommandOutput::One(Err(e))
                        }
                        Err(NsError::Storage(e)) => return Err(sm_err(ErrorVerb::Write, e)),
                    });
                }
                EntryPayload::Normal(cmd) => {
                    let r = crate::apply::apply_one(&mut t, &cmd)
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
        // Crash tests: entries applied in memory but not stored, or stored
        // but not yet answered.
        cairn_proto::crash_point!("raft-apply-before-commit");
        kv.commit(t.into_writes(), |_| Ok(()))
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        cairn_proto::crash_point!("raft-apply-committed");
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            kv: self.kv.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<SnapshotFile>, StorageError<NodeId>> {
        let file = SnapshotFile::create(self.snapshots.new_part("incoming"))
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, io_kv(e)))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError<NodeId>> {
        let SnapshotFile { file, path } = *snapshot;
        file.sync_all()
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, io_kv(e)))?;
        drop(file);
        let (db, dir, meta) = (self.kv.db.clone(), self.snapshots.clone(), meta.clone());
        let rec = blocking(ErrorVerb::Write, move || {
            // Refuse a damaged stream before touching the state machine.
            let checked = File::open(&path)
                .map_err(io_kv)
                .and_then(|f| snapshot_format::verify(BufReader::new(f)).map_err(io_kv));
            if let Err(e) = checked {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            let file = dir.promote(&path).map_err(io_kv)?;
            let rec = SnapshotRecord { meta, file };
            dir.begin_install(&rec).map_err(io_kv)?;
            install_records(&db, &dir.path(&rec.file), &rec.meta)?;
            dir.set_current(&rec).map_err(io_kv)?;
            Ok(rec)
        })
        .await?;
        tracing::info!(snapshot = %rec.meta.snapshot_id, "installed a metadata snapshot");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        // Read and opened together, so a newer snapshot cannot delete the
        // file in between.
        let dir = self.snapshots.clone();
        let current = blocking(ErrorVerb::Read, move || dir.open_current().map_err(io_kv)).await?;
        Ok(current.map(|(rec, file)| opened_snapshot(&self.snapshots, rec, file)))
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
            db: crate::db::open(&dir.path().join("db")).unwrap(),
        };
        let mut sm = StateMachine::open(kv.clone(), &dir.path().join("snapshots")).unwrap();
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

    fn open_sm(dir: &Path) -> (RocksKv, StateMachine) {
        let kv = RocksKv {
            db: crate::db::open(&dir.join("db")).unwrap(),
        };
        let sm = StateMachine::open(kv.clone(), &dir.join("snapshots")).unwrap();
        (kv, sm)
    }

    async fn snapshot_of(sm: &mut StateMachine) -> Snapshot<TypeConfig> {
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap()
    }

    fn names(kv: &RocksKv) -> Vec<String> {
        let (entries, _) = namespace::read_dir(kv, InodeId::ROOT, None, 100).unwrap();
        entries.into_iter().map(|e| e.name).collect()
    }

    #[tokio::test]
    async fn a_snapshot_replaces_a_followers_whole_state_and_a_crashed_install_is_finished() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a_kv, mut a) = open_sm(a_dir.path());
        let cmds = (0..50).map(|i| entry(i + 1, mkdir(&format!("d{i:02}"))));
        a.apply(cmds.collect::<Vec<_>>()).await.unwrap();
        let snap = snapshot_of(&mut a).await;
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(50));

        // B has state of its own, which the snapshot must replace whole.
        let (b_kv, mut b) = open_sm(b_dir.path());
        b.apply(vec![entry(1, mkdir("stale"))]).await.unwrap();
        let mut incoming = b.begin_receiving_snapshot().await.unwrap();
        let mut sent = a.get_current_snapshot().await.unwrap().unwrap();
        tokio::io::copy(&mut sent.snapshot, &mut incoming)
            .await
            .unwrap();
        b.install_snapshot(&sent.meta, incoming).await.unwrap();
        assert_eq!(names(&b_kv), names(&a_kv));
        assert_eq!(b.applied_state().await.unwrap().0, sent.meta.last_log_id);
        let current = b.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, sent.meta.snapshot_id);

        // A crash after the install began: reopening finishes it.
        let rec = b.snapshots.current().unwrap().unwrap();
        b.snapshots.begin_install(&rec).unwrap();
        b_kv.commit(
            [((Cf::SmMeta, meta_keys::LAST_APPLIED.to_vec()), None)],
            |_| Ok(()),
        )
        .unwrap();
        drop((b, b_kv));
        let (b_kv, mut b) = open_sm(b_dir.path());
        assert_eq!(names(&b_kv), names(&a_kv));
        assert_eq!(b.applied_state().await.unwrap().0, sent.meta.last_log_id);
        assert!(b.snapshots.installing().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_a_kv, mut a) = open_sm(a_dir.path());
        a.apply(vec![entry(1, mkdir("fresh"))]).await.unwrap();
        let snap = snapshot_of(&mut a).await;
        let (b_kv, mut b) = open_sm(b_dir.path());
        b.apply(vec![entry(1, mkdir("mine"))]).await.unwrap();
        let mut bytes = std::fs::read(
            a.snapshots
                .path(&a.snapshots.current().unwrap().unwrap().file),
        )
        .unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        let mut incoming = b.begin_receiving_snapshot().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut incoming, &bytes)
            .await
            .unwrap();
        assert!(b.install_snapshot(&snap.meta, incoming).await.is_err());
        assert_eq!(names(&b_kv), ["mine"]);
        assert!(b.get_current_snapshot().await.unwrap().is_none());
    }
}
