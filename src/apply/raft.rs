//! [`RaftApplier`]: the cluster's state machine boundary ([`crate::cluster::Applier`])
//! over the MariaDB [`Applier`]: each committed normal entry's command is an encoded
//! [`Entry`], applied at LSN = Raft index + 1; a run of them (what openraft hands the
//! state machine at once) in one [`Applier::apply`] call, so many per MariaDB transaction.
//!
//! Not yet: snapshots (a MariaDB dump, `shoal migrate`), and [`crate::cluster::Applier::recovered`]
//! stays `None`, so after a restart openraft re-applies the committed log from its start
//! and the applier skips what `shoal_meta.applied` already covers (exactly-once makes
//! that correct; it costs a read of the log).

use crate::capture::Entry;
use crate::cluster::log_store::{index_of, lsn_of};
use crate::cluster::types::Applied;
use crate::cluster::{ApplyError as RaftApplyError, LogId};

use super::follow::apply_retrying;
use super::{Applier, ApplyError, Committed};

/// The MariaDB applier as Raft's state machine applier.
pub struct RaftApplier {
    /// The session on the local MariaDB.
    applier: Applier,
    /// Entries this node's own MariaDB already holds (it proposed them as the leader):
    /// only their LSN advances here.
    own: Option<OwnEntries>,
}

/// Tells entries the local MariaDB already holds (the leader's capture proposed them:
/// [`crate::capture::Capture::is_own`]).
pub type OwnEntries = std::sync::Arc<dyn Fn(&Entry) -> bool + Send + Sync>;

impl RaftApplier {
    /// Wraps a connected, prepared applier.
    pub fn new(applier: Applier) -> Self {
        RaftApplier { applier, own: None }
    }

    /// Entries for which `own` is true are not applied (their LSN still advances): on the
    /// leader, what its capture proposed is in its MariaDB already, committed or
    /// prepared and committing once durable. Applying it again would duplicate unmanaged
    /// rows and re-run DDL, and the marker check would wait on the prepared transaction
    /// whose commit waits on this apply.
    pub fn skipping_own(mut self, own: OwnEntries) -> Self {
        self.own = Some(own);
        self
    }

    /// What to apply for `entry` when the local MariaDB may already hold it (it proposed it
    /// as the leader):
    ///
    /// | entry | own | applied as |
    /// |---|---|---|
    /// | any | no | itself |
    /// | captured rows, batch | yes | nothing (`None`): not even the applied LSN, which the next recorded entry moves past; after a restart their markers make the applier skip them |
    /// | unmanaged rows | yes | a rows entry without rows (no markers: the applied LSN must record them) |
    /// | statement | yes | `DO 0` (the applied LSN must record it: DDL has no marker) |
    ///
    /// Skipping captured entries outright keeps the leader's state machine off its MariaDB
    /// for the common case: a round trip and a commit per entry, in series, was the
    /// largest part of the leader's commit latency.
    fn unless_own(&self, entry: Entry) -> Option<Entry> {
        let own = self.own.as_ref().is_some_and(|own| own(&entry));
        let captured = match &entry {
            Entry::Rows(r) => matches!(r.origin, crate::capture::Origin::Captured { .. }),
            Entry::Batch(_) => true,
            Entry::Statement(_) => false,
        };
        if own && captured {
            return None;
        }
        Some(self.no_op_if_own(entry))
    }

    /// `entry`, or a no-op in its place (nothing applied, the LSN still recorded) when the
    /// local MariaDB already holds it: a rows entry without rows, a statement `DO 0`.
    fn no_op_if_own(&self, entry: Entry) -> Entry {
        match (&self.own, entry) {
            (Some(own), entry) if own(&entry) => match entry {
                // Not `Captured` any more: the marker check would wait for the prepared
                // transaction this very apply holds up.
                Entry::Rows(r) => Entry::Rows(crate::capture::RowsEntry {
                    origin: crate::capture::Origin::Unmanaged { gtid: "own".into() },
                    statements: Vec::new(),
                    format: r.format,
                }),
                Entry::Statement(s) => Entry::Statement(crate::capture::StatementEntry {
                    id: s.id,
                    schema: None,
                    session: Vec::new(),
                    sql: "DO 0".into(),
                }),
                Entry::Batch(b) => Entry::Rows(crate::capture::RowsEntry {
                    origin: crate::capture::Origin::Unmanaged { gtid: "own".into() },
                    statements: Vec::new(),
                    format: b.first().map(|r| r.format.clone()).unwrap_or_default(),
                }),
            },
            (_, entry) => entry,
        }
    }
}

impl crate::cluster::Applier for RaftApplier {
    async fn apply(&mut self, log_id: LogId, command: &[u8]) -> Result<Applied, RaftApplyError> {
        let index = log_id.index;
        let entry = Entry::decode(command).map_err(|e| RaftApplyError { index, reason: e.to_string() })?;
        if let Some(entry) = self.unless_own(entry) {
            let c = Committed { lsn: lsn_of(index), term: log_id.leader_id.term, entry };
            apply_retrying(&mut self.applier, std::slice::from_ref(&c))
                .await
                .map_err(|e| RaftApplyError { index, reason: e.to_string() })?;
        }
        Ok(Applied(index.to_le_bytes().to_vec()))
    }

    async fn apply_many(&mut self, commands: &[(LogId, &[u8])]) -> Result<Vec<Applied>, RaftApplyError> {
        let mut batch = Vec::with_capacity(commands.len());
        for (id, command) in commands {
            let entry =
                Entry::decode(command).map_err(|e| RaftApplyError { index: id.index, reason: e.to_string() })?;
            if let Some(entry) = self.unless_own(entry) {
                batch.push(Committed { lsn: lsn_of(id.index), term: id.leader_id.term, entry });
            }
        }
        let first = commands.first().map_or(0, |(id, _)| id.index);
        if batch.is_empty() {
            return Ok(commands.iter().map(|(id, _)| Applied(id.index.to_le_bytes().to_vec())).collect());
        }
        apply_retrying(&mut self.applier, &batch).await.map_err(|e| RaftApplyError {
            index: match &e {
                ApplyError::Entry { lsn, .. } => index_of(*lsn),
                _ => first,
            },
            reason: e.to_string(),
        })?;
        Ok(commands.iter().map(|(id, _)| Applied(id.index.to_le_bytes().to_vec())).collect())
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
