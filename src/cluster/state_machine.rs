//! The state machine side of Raft: [`StateMachine`] implements openraft's
//! `RaftStateMachine` over an [`Applier`], the trait boundary to what committed entries
//! change (the local MariaDB: `crate::apply::RaftApplier`; a [`Recorder`] in tests).
//! [`Applier::apply`] is async, so the state lock is tokio's, held across it: openraft
//! calls the state machine one request at a time anyway.
//!
//! Blank and membership entries are handled here; only normal entries reach the applier.
//! Automatic snapshots are off (`SnapshotPolicy::Never` in `node.rs`): a snapshot
//! will be a MariaDB dump, built only when shoal asks for one.
//!
//! Durability: this wrapper keeps the last applied log id and membership in memory and
//! starts from [`Applier::recovered`]. The [`Recorder`] recovers nothing, so after a
//! restart openraft re-applies the committed log from the start; a durable applier
//! returns what it holds (MariaDB: `shoal_meta.applied`, written in the same transaction
//! as the data, so apply is exactly-once).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::types::{Applied, Entry, LogId, NodeId, SnapshotData, StorageError, TypeConfig};
use openraft::BasicNode;

/// Why an applier failed. Apply failures are fatal to the Raft node: the log says the
/// entry is committed, so skipping it would make this node diverge.
#[derive(Debug, Clone, thiserror::Error)]
#[error("applying entry {index}: {reason}")]
pub struct ApplyError {
    /// Raft index of the entry.
    pub index: u64,
    /// What went wrong, and what to do.
    pub reason: String,
}

/// What the state machine applies committed commands to.
pub trait Applier: Send + Sync + 'static {
    /// Applies one committed command, in log order. Called once per entry per run;
    /// after a restart entries above [`Applier::recovered`] are applied again. Async:
    /// the MariaDB applier (`crate::apply::RaftApplier`) waits for its server.
    fn apply(&mut self, log_id: LogId, command: &[u8]) -> impl Future<Output = Result<Applied, ApplyError>> + Send;

    /// Applies consecutive committed commands, in log order, one reply each; by default
    /// one [`Applier::apply`] at a time. The MariaDB applier commits many per transaction.
    fn apply_many(
        &mut self,
        commands: &[(LogId, &[u8])],
    ) -> impl Future<Output = Result<Vec<Applied>, ApplyError>> + Send {
        async move {
            let mut out = Vec::with_capacity(commands.len());
            for (id, command) in commands {
                out.push(self.apply(*id, command).await?);
            }
            Ok(out)
        }
    }

    /// The state to resume from: last applied log id and membership as durable in the
    /// applier's own store. `None`: nothing (openraft re-applies the committed log).
    fn recovered(&self) -> Option<(LogId, StoredMembership<NodeId, BasicNode>)> {
        None
    }

    /// A dump of everything applied so far (a snapshot's data).
    fn dump(&self) -> Result<SnapshotData, ApplyError>;

    /// Replaces everything with `dump` (a snapshot install).
    fn restore(&mut self, dump: &SnapshotData) -> Result<(), ApplyError>;
}

/// One applied command, as a [`Recorder`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Raft index.
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
    /// The command bytes.
    pub command: Vec<u8>,
}

/// An [`Applier`] that records every applied command in memory; clones share the record,
/// so a test keeps one clone and reads what the node applied.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Applied commands in apply order.
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of what was applied, in order.
    pub fn applied(&self) -> Vec<Recorded> {
        self.lock().clone()
    }
}

impl Applier for Recorder {
    async fn apply(&mut self, log_id: LogId, command: &[u8]) -> Result<Applied, ApplyError> {
        self.lock().push(Recorded { index: log_id.index, term: log_id.leader_id.term, command: command.to_vec() });
        Ok(Applied(log_id.index.to_le_bytes().to_vec()))
    }

    fn dump(&self) -> Result<SnapshotData, ApplyError> {
        serde_json::to_vec(&*self.lock()).map_err(|e| ApplyError { index: 0, reason: format!("encoding dump: {e}") })
    }

    fn restore(&mut self, dump: &SnapshotData) -> Result<(), ApplyError> {
        let log: Vec<Recorded> = serde_json::from_slice(dump).map_err(|e| ApplyError {
            index: 0,
            reason: format!("the snapshot does not decode as a Recorder dump: {e}"),
        })?;
        *self.lock() = log;
        Ok(())
    }
}

/// An [`Applier`] that applies nothing: what `shoal start` runs until capture/apply
/// (issue 12) writes committed entries to MariaDB. Unlike [`Recorder`] it keeps nothing,
/// so a long-running node does not grow; its dump is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Applier for Discard {
    async fn apply(&mut self, log_id: LogId, _command: &[u8]) -> Result<Applied, ApplyError> {
        Ok(Applied(log_id.index.to_le_bytes().to_vec()))
    }

    fn dump(&self) -> Result<SnapshotData, ApplyError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, _dump: &SnapshotData) -> Result<(), ApplyError> {
        Ok(())
    }
}

/// What the state machine holds besides the applier.
struct Inner<A> {
    /// Where committed commands go.
    applier: A,
    /// Last applied log id (any kind of entry).
    last_applied: Option<LogId>,
    /// Last applied membership.
    membership: StoredMembership<NodeId, BasicNode>,
    /// The last snapshot built or installed, kept so a lagging follower can be sent it.
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, SnapshotData)>,
    /// Counts snapshots built, for unique snapshot ids.
    snapshots_built: u64,
}

/// openraft's state machine over an [`Applier`]. Clones share one state (the clone
/// handed to openraft and the snapshot builder see the same data). The lock is tokio's:
/// it is held across the applier's `await`.
pub struct StateMachine<A> {
    inner: Arc<tokio::sync::Mutex<Inner<A>>>,
}

impl<A> Clone for StateMachine<A> {
    fn clone(&self) -> Self {
        StateMachine { inner: self.inner.clone() }
    }
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::error(e.to_string())).into()
}

impl<A: Applier> StateMachine<A> {
    /// A state machine resuming from `applier.recovered()`.
    pub fn new(applier: A) -> Self {
        let (last_applied, membership) = match applier.recovered() {
            Some((id, m)) => (Some(id), m),
            None => (None, StoredMembership::default()),
        };
        let inner = Inner { applier, last_applied, membership, snapshot: None, snapshots_built: 0 };
        StateMachine { inner: Arc::new(tokio::sync::Mutex::new(inner)) }
    }

    async fn lock(&self) -> tokio::sync::MutexGuard<'_, Inner<A>> {
        self.inner.lock().await
    }
}

impl<A: Applier> RaftSnapshotBuilder<TypeConfig> for StateMachine<A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut g = self.lock().await;
        let data = g.applier.dump().map_err(|e| sm_err(ErrorVerb::Read, e))?;
        g.snapshots_built += 1;
        let snapshot_id = match g.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, g.snapshots_built),
            None => format!("none-{}", g.snapshots_built),
        };
        let meta = SnapshotMeta { last_log_id: g.last_applied, last_membership: g.membership.clone(), snapshot_id };
        g.snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(data) })
    }
}

impl<A: Applier> RaftStateMachine<TypeConfig> for StateMachine<A> {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let g = self.lock().await;
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut g = self.lock().await;
        let mut out = Vec::with_capacity(entries.len());
        let mut i = 0;
        while i < entries.len() {
            let e = &entries[i];
            match &e.payload {
                EntryPayload::Normal(_) => {
                    // A run of normal entries reaches the applier in one call.
                    let end = entries[i..]
                        .iter()
                        .position(|x| !matches!(x.payload, EntryPayload::Normal(_)))
                        .map_or(entries.len(), |n| i + n);
                    let run: Vec<(LogId, &[u8])> = entries[i..end]
                        .iter()
                        .filter_map(|x| match &x.payload {
                            EntryPayload::Normal(cmd) => Some((x.log_id, cmd.0.as_slice())),
                            _ => None,
                        })
                        .collect();
                    let replies = g.applier.apply_many(&run).await.map_err(|x| sm_err(ErrorVerb::Write, x))?;
                    out.extend(replies);
                    g.last_applied = Some(entries[end - 1].log_id);
                    i = end;
                    continue;
                }
                EntryPayload::Blank => out.push(Applied::default()),
                EntryPayload::Membership(m) => {
                    g.membership = StoredMembership::new(Some(e.log_id), m.clone());
                    out.push(Applied::default());
                }
            }
            g.last_applied = Some(e.log_id);
            i += 1;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let mut g = self.lock().await;
        g.applier.restore(&snapshot).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.snapshot = Some((meta.clone(), *snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let g = self.lock().await;
        Ok(g.snapshot.as_ref().map(|(meta, data)| Snapshot { meta: meta.clone(), snapshot: Box::new(data.clone()) }))
    }
}
