//! openraft's storage conformance suite against our RocksDB log and state
//! machine (each case on a fresh database).

use cairn_metadata::db::{self, RocksKv};
use cairn_metadata::log_store::LogStore;
use cairn_metadata::raft_types::{NodeId, TypeConfig};
use cairn_metadata::state_machine::StateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = db::open(&dir.path().join("db")).expect("open rocksdb");
        let sm = StateMachine::open(RocksKv { db: db.clone() }, &dir.path().join("snapshots"))
            .expect("open state machine");
        let log = LogStore::open(db).expect("open the log");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("storage suite passes");
}
