//! [`RaftApplier`]: the cluster's state machine boundary ([`crate::cluster::Applier`])
//! over the MariaDB [`Applier`]: each committed normal entry's command is an encoded
//! [`Entry`], applied at LSN = Raft index + 1.
//!
//! Not yet: snapshots (a MariaDB dump, `shoal migrate`), and [`crate::cluster::Applier::recovered`]
//! stays `None`, so after a restart openraft re-applies the committed log from its start
//! and the applier skips what `shoal_meta.applied` already covers (exactly-once makes
//! that correct; it costs a read of the log).

use crate::capture::Entry;
use crate::cluster::log_store::lsn_of;
use crate::cluster::types::Applied;
use crate::cluster::{ApplyError as RaftApplyError, LogId};

use super::follow::apply_retrying;
use super::{Applier, Committed};

/// The MariaDB applier as Raft's state machine applier.
pub struct RaftApplier {
    /// The session on the local MariaDB.
    applier: Applier,
}

impl RaftApplier {
    /// Wraps a connected, prepared applier.
    pub fn new(applier: Applier) -> Self {
        RaftApplier { applier }
    }
}

impl crate::cluster::Applier for RaftApplier {
    async fn apply(&mut self, log_id: LogId, command: &[u8]) -> Result<Applied, RaftApplyError> {
        let index = log_id.index;
        let entry = Entry::decode(command).map_err(|e| RaftApplyError { index, reason: e.to_string() })?;
        let c = Committed { lsn: lsn_of(index), term: log_id.leader_id.term, entry };
        apply_retrying(&mut self.applier, std::slice::from_ref(&c))
            .await
            .map_err(|e| RaftApplyError { index, reason: e.to_string() })?;
        Ok(Applied(index.to_le_bytes().to_vec()))
    }

    fn dump(&self) -> Result<crate::cluster::types::SnapshotData, RaftApplyError> {
        Err(RaftApplyError {
            index: 0,
            reason: "snapshots of the local MariaDB are not implemented yet; seed a node with `shoal migrate`".into(),
        })
    }

    fn restore(&mut self, _dump: &crate::cluster::types::SnapshotData) -> Result<(), RaftApplyError> {
        Err(RaftApplyError {
            index: 0,
            reason: "installing a snapshot into the local MariaDB is not implemented yet; seed the node with `shoal migrate`".into(),
        })
    }
}
