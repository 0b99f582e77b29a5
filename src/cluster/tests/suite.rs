//! openraft's storage conformance suite (`Suite::test_all`) against [`WalLogStore`] on a
//! fresh WAL directory per case, with the [`Recorder`] state machine.

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::cluster::types::StorageError;
use crate::cluster::{Recorder, StateMachine, TypeConfig, WalLogStore};
use crate::wal::{Wal, WalOptions};

struct Builder;

impl StoreBuilder<TypeConfig, WalLogStore, StateMachine<Recorder>, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, WalLogStore, StateMachine<Recorder>), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path(), WalOptions::default()).expect("open WAL");
        Ok((dir, WalLogStore::new(wal), StateMachine::new(Recorder::new())))
    }
}

#[test]
fn openraft_storage_suite_passes_on_the_wal() -> Result<(), StorageError> {
    Suite::test_all(Builder)
}
