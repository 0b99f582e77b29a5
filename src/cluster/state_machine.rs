//! The state machine side of Raft: [`StateMachine`] implements openraft's
//! `RaftStateMachine` over an [`Applier`], the trait boundary to what committed entries
//! change (the local MariaDB: `crate::apply::RaftApplier`; a [`Recorder`] in tests).
//! [`Applier::apply`] is async, so the state lock is tokio's, held across it: openraft
//! calls the state machine one request at a time anyway.
//!
//! Blank and membership entries are handled here; only normal entries reach the applier.
//!
//! # Snapshots
//!
//! Automatic snapshots are off (`SnapshotPolicy::Never` in `node.rs`): the node's
//! retention task asks for one before it purges the log. A snapshot is what the applier
//! vouches for ([`Applier::dump`]): a point at or below the last applied entry whose
//! effects are durable in the applier's own store, and its data. For the MariaDB applier
//! the data is only that point (the rows are in MariaDB; a node that lacks them is
//! migrated with `shoal migrate`), for the [`Recorder`] it is the whole record.
//!
//! | step | what happens |
//! |---|---|
//! | build | `dump(last applied)` → point P ≤ last applied; membership = the last one at or below P; not newer than the current snapshot: the current one is returned (openraft keeps it) |
//! | keep | the snapshot (meta and data) is saved in the WAL's metadata ([`SavedSnapshot`]), so a restart resumes from it after the log below it is purged |
//! | install | `restore(P, data)`; a refusal is fatal to this Raft node (the MariaDB applier refuses when its MariaDB is behind P: the node needs migration) |
//! | restart | the saved snapshot is the applied state; openraft applies the log above it |
//!
//! Durability: this wrapper keeps the last applied log id and membership in memory and
//! starts from the saved snapshot. Entries above it are applied again after a restart; a
//! durable applier skips what it holds (MariaDB: `shoal_meta.applied`, written in the
//! same transaction as the data, so apply is exactly-once).

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
    /// after a restart entries above the saved snapshot are applied again. Async:
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

    /// A snapshot of what is applied up to `upto` (the last applied entry): the point it
    /// vouches for (at most `upto`: the MariaDB applier stops before a transaction that
    /// is still prepared) and its data. Runs with applies held.
    fn dump(&mut self, upto: Option<LogId>) -> impl Future<Output = Result<Dump, ApplyError>> + Send;

    /// Makes the applier hold what a snapshot up to `last` holds (a snapshot install),
    /// or refuses with what to do.
    fn restore(
        &mut self,
        last: Option<LogId>,
        data: &SnapshotData,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// What [`Applier::dump`] vouches for.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    /// Everything up to here is in the applier's store (`None`: nothing yet).
    pub last: Option<LogId>,
    /// The snapshot's data.
    pub data: SnapshotData,
}

/// A snapshot as kept in the WAL's metadata (`Wal::set_snapshot`), JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSnapshot {
    /// What it covers.
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    /// Its data.
    pub data: SnapshotData,
}

impl SavedSnapshot {
    /// Encodes for `Wal::set_snapshot`.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes what `Wal::meta().snapshot` holds; an empty blob is none.
    pub fn decode(blob: &[u8]) -> Result<Option<SavedSnapshot>, String> {
        if blob.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(blob).map(Some).map_err(|e| {
            format!("the snapshot kept in meta.redb does not decode ({e}); restore the WAL directory or re-seed the node with `shoal migrate`")
        })
    }
}

/// Saves a snapshot durably (the WAL's metadata) before openraft may purge below it.
pub type SaveSnapshot = Arc<dyn Fn(&SavedSnapshot) -> Result<(), String> + Send + Sync>;

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

    async fn dump(&mut self, upto: Option<LogId>) -> Result<Dump, ApplyError> {
        let data = serde_json::to_vec(&*self.lock())
            .map_err(|e| ApplyError { index: 0, reason: format!("encoding dump: {e}") })?;
        Ok(Dump { last: upto, data })
    }

    async fn restore(&mut self, _last: Option<LogId>, dump: &SnapshotData) -> Result<(), ApplyError> {
        let log: Vec<Recorded> = serde_json::from_slice(dump).map_err(|e| ApplyError {
            index: 0,
            reason: format!("the snapshot does not decode as a Recorder dump: {e}"),
        })?;
        *self.lock() = log;
        Ok(())
    }
}

/// An [`Applier`] that applies nothing, for nodes and tests without a MariaDB (`shoal
/// start` applies to MariaDB: `crate::apply::RaftApplier`). Unlike [`Recorder`] it keeps nothing,
/// so a long-running node does not grow; its dump is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Applier for Discard {
    async fn apply(&mut self, log_id: LogId, _command: &[u8]) -> Result<Applied, ApplyError> {
        Ok(Applied(log_id.index.to_le_bytes().to_vec()))
    }

    async fn dump(&mut self, upto: Option<LogId>) -> Result<Dump, ApplyError> {
        Ok(Dump { last: upto, data: Vec::new() })
    }

    async fn restore(&mut self, _last: Option<LogId>, _dump: &SnapshotData) -> Result<(), ApplyError> {
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
    /// Memberships applied since the snapshot's (a snapshot below the last applied entry
    /// takes the last one at or below its point), oldest first.
    memberships: Vec<StoredMembership<NodeId, BasicNode>>,
    /// The last snapshot built or installed, kept so a lagging follower can be sent it.
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, SnapshotData)>,
    /// Where snapshots are kept across restarts (`None`: in memory only).
    save: Option<SaveSnapshot>,
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
    /// A state machine starting from nothing, keeping snapshots in memory only.
    pub fn new(applier: A) -> Self {
        StateMachine::resuming(applier, None, None)
    }

    /// A state machine resuming from `saved` (the snapshot kept by `save`, see the module
    /// doc), saving new ones with `save`.
    pub fn resuming(applier: A, saved: Option<SavedSnapshot>, save: Option<SaveSnapshot>) -> Self {
        let (last_applied, membership, snapshot) = match saved {
            Some(s) => (s.meta.last_log_id, s.meta.last_membership.clone(), Some((s.meta, s.data))),
            None => (None, StoredMembership::default(), None),
        };
        let memberships = vec![membership.clone()];
        let inner = Inner { applier, last_applied, membership, memberships, snapshot, save, snapshots_built: 0 };
        StateMachine { inner: Arc::new(tokio::sync::Mutex::new(inner)) }
    }

    async fn lock(&self) -> tokio::sync::MutexGuard<'_, Inner<A>> {
        self.inner.lock().await
    }
}

/// The last of `memberships` (oldest first) whose log id is at or below `point`.
fn membership_at(
    memberships: &[StoredMembership<NodeId, BasicNode>],
    point: Option<LogId>,
) -> Option<StoredMembership<NodeId, BasicNode>> {
    memberships.iter().rev().find(|m| m.log_id() <= &point).cloned()
}

impl<A> Inner<A> {
    /// Makes `meta`/`data` the current snapshot, saved first where snapshots are kept,
    /// and forgets the memberships it makes useless.
    fn keep(&mut self, meta: SnapshotMeta<NodeId, BasicNode>, data: SnapshotData) -> Result<(), StorageError> {
        if let Some(save) = &self.save {
            save(&SavedSnapshot { meta: meta.clone(), data: data.clone() }).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        }
        let keep_from = self.memberships.iter().rposition(|m| m.log_id() <= &meta.last_log_id).unwrap_or(0);
        self.memberships.drain(..keep_from);
        self.snapshot = Some((meta, data));
        Ok(())
    }
}

impl<A: Applier> RaftSnapshotBuilder<TypeConfig> for StateMachine<A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut g = self.lock().await;
        let upto = g.last_applied;
        let dump = g.applier.dump(upto).await.map_err(|e| sm_err(ErrorVerb::Read, e))?;
        let current = g.snapshot.as_ref().and_then(|(m, _)| m.last_log_id);
        let newer = dump.last.filter(|l| Some(*l) > current && Some(*l) <= upto);
        let Some((last, membership)) = newer.and_then(|l| Some((l, membership_at(&g.memberships, Some(l))?))) else {
            // Nothing newer to vouch for: the current snapshot again (openraft keeps it).
            let (meta, data) = g.snapshot.clone().unwrap_or_default();
            return Ok(Snapshot { meta, snapshot: Box::new(data) });
        };
        g.snapshots_built += 1;
        let snapshot_id = format!("{}-{}-{}", last.leader_id.term, last.index, g.snapshots_built);
        let meta = SnapshotMeta { last_log_id: Some(last), last_membership: membership, snapshot_id };
        g.keep(meta.clone(), dump.data.clone())?;
        Ok(Snapshot { meta, snapshot: Box::new(dump.data) })
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
                    let m = g.membership.clone();
                    g.memberships.push(m);
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
        g.applier.restore(meta.last_log_id, &snapshot).await.map_err(|e| sm_err(ErrorVerb::Write, e))?;
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.memberships = vec![g.membership.clone()];
        g.keep(meta.clone(), *snapshot)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let g = self.lock().await;
        Ok(g.snapshot.as_ref().map(|(meta, data)| Snapshot { meta: meta.clone(), snapshot: Box::new(data.clone()) }))
    }
}
