//! [`RaftApplier`]: the cluster's state machine boundary ([`crate::cluster::Applier`])
//! over the MariaDB [`Applier`]: each committed normal entry's command is an encoded
//! [`Entry`], applied at LSN = Raft index + 1; a run of them (what openraft hands the
//! state machine at once) in one [`Applier::apply`] call, so many per MariaDB transaction.
//!
//! After a restart openraft applies the log above the saved snapshot again and the
//! applier skips what `shoal_meta.applied` already covers (exactly-once makes that
//! correct; it costs a read of the log).
//!
//! # Snapshots
//!
//! A snapshot's data is only its point ([`Ticket`]): the rows are in this node's MariaDB.
//!
//! | call | what it does |
//! |---|---|
//! | `dump(upto)` | the point: `upto`, or on the leader the last own entry before one whose transaction `XA RECOVER` still lists as prepared (its session has not committed it yet); `shoal_meta.applied` is raised to it, so a dump of this MariaDB (`shoal migrate`) starts from there |
//! | `restore(point)` | nothing to do when `shoal_meta.applied` is at or past the point; else the node needs migration: the flag file is written and the install refused (fatal to Raft on this node) |

use crate::capture::Entry;
use crate::cluster::log_store::{index_of, lsn_of};
use crate::cluster::types::Applied;
use crate::cluster::{ApplyError as RaftApplyError, LogId};

use super::{Applier, ApplyError, Committed};

/// The MariaDB applier as Raft's state machine applier.
pub struct RaftApplier {
    /// The session on the local MariaDB.
    applier: Applier,
    /// How to reach the local MariaDB for `XA COMMIT` of orphaned prepared transactions
    /// ([`crate::capture::setup::orphan`]); `None`: none are looked for.
    service: Option<mysql_async::Opts>,
    /// Entries this node's own MariaDB already holds (it proposed them as the leader):
    /// only their LSN advances here.
    own: Option<OwnEntries>,
    /// The own captured entries applied since the last snapshot and their xids: a
    /// snapshot stops before the first whose transaction is still prepared.
    own_since: Vec<(LogId, Vec<String>)>,
    /// Written when a snapshot install finds this MariaDB behind it (`cluster::retention::NEEDS_MIGRATION_FILE`).
    migration_flag: Option<std::path::PathBuf>,
}

/// What a snapshot of the MariaDB applier holds: its point, as `shoal_meta.applied` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ticket {
    /// LSN (Raft index + 1).
    pub lsn: u64,
    /// Term of that entry.
    pub term: u64,
}

/// The snapshot point `dump` may vouch for (table in the module doc): `upto`, or the own
/// entry before the first of `own_since` (oldest first) holding a still-`prepared` xid;
/// `None` when that is the very first.
pub fn settled_point(
    upto: LogId,
    own_since: &[(LogId, Vec<String>)],
    prepared: &std::collections::HashSet<String>,
) -> Option<LogId> {
    match own_since.iter().position(|(_, xids)| xids.iter().any(|x| prepared.contains(x))) {
        None => Some(upto),
        Some(0) => None,
        Some(i) => Some(own_since[i - 1].0),
    }
}

/// Tells entries the local MariaDB already holds (the leader's capture proposed them:
/// [`crate::capture::Capture::is_own`]).
pub type OwnEntries = std::sync::Arc<dyn Fn(&Entry) -> bool + Send + Sync>;

/// What [`RaftApplier::apply_deciding`] could not do.
enum Deciding {
    Orphans(String),
    Apply(ApplyError),
}

/// The captured xids `entries` hold.
fn captured_xids<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<String> {
    entries.flat_map(|e| e.rows().iter()).filter_map(super::plan::xid).map(str::to_string).collect()
}

impl RaftApplier {
    /// Wraps a connected, prepared applier.
    pub fn new(applier: Applier) -> Self {
        RaftApplier { applier, own: None, service: None, own_since: Vec::new(), migration_flag: None }
    }

    /// Commits orphaned prepared transactions (a session lost the leadership before its
    /// entry committed, or the node restarted with them prepared) when their entry shows
    /// up committed: through a plain session of `service` (binlogging as the one that
    /// prepared them), before the entry is applied or skipped.
    pub fn committing_orphans(mut self, service: mysql_async::Opts) -> Self {
        self.service = Some(service);
        self
    }

    /// Decides orphans before entries (committed, the latest of Raft term `term`, holding
    /// the captured `xids`) are applied: `XA COMMIT` of those among `xids` (see
    /// [`RaftApplier::committing_orphans`]), and `XA ROLLBACK` of those of an earlier term
    /// than `term` that none of them holds — a committed entry of a later term means no
    /// entry of theirs will ever commit ([`crate::capture::setup::orphans_decided_by`]).
    /// Before, not after: a ruled-out orphan holds its row locks, and the entries may need
    /// them (the chaos harness saw an applier wait `innodb_lock_wait_timeout` on one).
    /// Retried while the MariaDB is unreachable.
    async fn decide_orphans(&self, xids: &[&str], term: u64) -> Result<(), String> {
        use crate::capture::setup;
        let Some(opts) = self.service.as_ref().filter(|_| setup::has_orphans()) else { return Ok(()) };
        let commit = setup::claim_orphans(xids.iter().copied());
        let rollback = setup::orphans_decided_by(term);
        if commit.is_empty() && rollback.is_empty() {
            return Ok(());
        }
        let decisions = || commit.iter().map(|x| (x, true)).chain(rollback.iter().map(|x| (x, false)));
        let started = std::time::Instant::now();
        loop {
            let r = async {
                let mut conn = mysql_async::Conn::new(opts.clone()).await?;
                for ((xid, _), commit) in decisions() {
                    setup::settle(&mut conn, xid, commit).await?;
                }
                let _ = conn.disconnect().await;
                Ok::<(), mysql_async::Error>(())
            }
            .await;
            match r {
                Ok(()) => {
                    if !rollback.is_empty() {
                        tracing::info!(xids = ?rollback, "rolled back orphaned prepared transactions the log ruled out");
                    }
                    return Ok(());
                }
                Err(e) if started.elapsed() < super::CONNECTION_RETRY_FOR => {
                    tracing::warn!(error = %e, "deciding orphaned prepared transactions waits for the local MariaDB");
                    tokio::time::sleep(super::CONNECTION_RETRY_DELAY).await;
                }
                Err(e) => {
                    setup::unclaim_orphans(&commit);
                    setup::unclaim_orphans(&rollback);
                    return Err(format!(
                        "deciding orphaned prepared transactions (commit {commit:?}, roll back {rollback:?}): {e}"
                    ));
                }
            }
        }
    }

    /// Decides orphans ([`RaftApplier::decide_orphans`]), then applies `batch` (may be
    /// empty); while applying fails in a retry-safe way (the MariaDB unreachable, or a
    /// lock wait that timed out) both again after [`super::CONNECTION_RETRY_DELAY`], for at
    /// most [`super::CONNECTION_RETRY_FOR`]. Deciding again matters: a session of this node
    /// may register its xid as an orphan just after the decision, and its prepared
    /// transaction then holds row locks this batch waits for (the chaos harness saw a
    /// follower's applier wait on one for minutes, [`super::applier::APPLY_LOCK_WAIT_S`] at a time).
    async fn apply_deciding(&mut self, batch: &[Committed], xids: &[String], term: u64) -> Result<(), Deciding> {
        let xids: Vec<&str> = xids.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let mut attempts = 0u32;
        loop {
            self.decide_orphans(&xids, term).await.map_err(Deciding::Orphans)?;
            if batch.is_empty() {
                return Ok(());
            }
            match self.applier.apply(batch).await {
                Ok(_) => return Ok(()),
                Err(e) if e.retry_safe() && started.elapsed() < super::CONNECTION_RETRY_FOR => {
                    attempts += 1;
                    if attempts == 1 || attempts % 50 == 0 {
                        tracing::warn!(error = %e, attempts, "applying waits for the local MariaDB");
                    }
                    tokio::time::sleep(super::CONNECTION_RETRY_DELAY).await;
                }
                Err(e) => return Err(Deciding::Apply(e)),
            }
        }
    }

    /// Writes `path` (the reason inside) when a snapshot install finds the local MariaDB
    /// behind it: the node needs `shoal migrate`.
    pub fn flagging_migration(mut self, path: std::path::PathBuf) -> Self {
        self.migration_flag = Some(path);
        self
    }

    /// Remembers an own captured entry's xids for the next snapshot ([`settled_point`]).
    fn note_own(&mut self, id: LogId, entry: &Entry) {
        let xids = captured_xids(std::iter::once(entry));
        crate::capture::setup::applied_own(xids.iter().map(String::as_str));
        if !xids.is_empty() {
            self.own_since.push((id, xids));
        }
    }

    /// Shoal's prepared xids on the local MariaDB, and those whose decision it does not
    /// reflect yet (`setup::undelivered`); `None` when it cannot be asked.
    async fn prepared(&self) -> Option<std::collections::HashSet<String>> {
        let Some(opts) = &self.service else { return Some(Default::default()) };
        let mut conn = mysql_async::Conn::new(opts.clone()).await.ok()?;
        let xids = crate::capture::setup::prepared_xids(&mut conn).await.ok();
        let _ = conn.disconnect().await;
        let mut all: std::collections::HashSet<String> = xids?.into_iter().collect();
        all.extend(crate::capture::setup::undelivered());
        Some(all)
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
    /// | statement | yes | itself: the leader's session does not run a statement it proposed, this applier does, and the session relays the outcome (`Capture::runs_statements_here`) |
    ///
    /// Skipping captured entries outright keeps the leader's state machine off its MariaDB
    /// for the common case: a round trip and a commit per entry, in series, was the
    /// largest part of the leader's commit latency.
    fn unless_own(&self, entry: Entry) -> Option<Entry> {
        let own = self.is_own(&entry);
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

    fn is_own(&self, entry: &Entry) -> bool {
        self.own.as_ref().is_some_and(|own| own(entry))
    }

    /// `entry`, or a no-op in its place (nothing applied, the LSN still recorded) when the
    /// local MariaDB already holds it: a rows entry without rows. A statement is itself.
    fn no_op_if_own(&self, entry: Entry) -> Entry {
        if !self.is_own(&entry) {
            return entry;
        }
        let format = match &entry {
            Entry::Rows(r) => r.format.clone(),
            Entry::Batch(b) => b.first().map(|r| r.format.clone()).unwrap_or_default(),
            // Run here like everywhere: the proposing session waits for its outcome.
            Entry::Statement(_) => return entry,
        };
        // Not `Captured` any more: the marker check would wait for the prepared
        // transaction this very apply holds up.
        Entry::Rows(crate::capture::RowsEntry {
            origin: crate::capture::Origin::Unmanaged { gtid: "own".into() },
            statements: Vec::new(),
            format,
        })
    }
}

impl crate::cluster::Applier for RaftApplier {
    async fn apply(&mut self, log_id: LogId, command: &[u8]) -> Result<Applied, RaftApplyError> {
        let index = log_id.index;
        let entry = Entry::decode(command).map_err(|e| RaftApplyError { index, reason: e.to_string() })?;
        // Own xids first, orphans second: a session that registers its xid as an orphan
        // in between is then claimed, one after is told the entry passed (`setup::orphan`).
        if self.is_own(&entry) {
            self.note_own(log_id, &entry);
        }
        let xids: Vec<String> = captured_xids(std::iter::once(&entry));
        let term = log_id.leader_id.term;
        let batch: Vec<Committed> =
            self.unless_own(entry).map(|entry| Committed { lsn: lsn_of(index), term, entry }).into_iter().collect();
        self.apply_deciding(&batch, &xids, term).await.map_err(|e| RaftApplyError {
            index,
            reason: match e {
                Deciding::Orphans(reason) => reason,
                Deciding::Apply(e) => e.to_string(),
            },
        })?;
        Ok(Applied(index.to_le_bytes().to_vec()))
    }

    async fn apply_many(&mut self, commands: &[(LogId, &[u8])]) -> Result<Vec<Applied>, RaftApplyError> {
        let mut decoded = Vec::with_capacity(commands.len());
        for (id, command) in commands {
            let entry =
                Entry::decode(command).map_err(|e| RaftApplyError { index: id.index, reason: e.to_string() })?;
            decoded.push((id, entry));
        }
        let first = commands.first().map_or(0, |(id, _)| id.index);
        // Own xids first, orphans second (see `apply`).
        for (id, entry) in &decoded {
            if self.is_own(entry) {
                self.note_own(**id, entry);
            }
        }
        let term = commands.iter().map(|(id, _)| id.leader_id.term).max().unwrap_or(0);
        let xids = captured_xids(decoded.iter().map(|(_, e)| e));
        let mut batch = Vec::with_capacity(commands.len());
        for (id, entry) in decoded {
            if let Some(entry) = self.unless_own(entry) {
                batch.push(Committed { lsn: lsn_of(id.index), term: id.leader_id.term, entry });
            }
        }
        self.apply_deciding(&batch, &xids, term).await.map_err(|e| match e {
            Deciding::Orphans(reason) => RaftApplyError { index: first, reason },
            Deciding::Apply(e) => RaftApplyError {
                index: match &e {
                    ApplyError::Entry { lsn, .. } => index_of(*lsn),
                    _ => first,
                },
                reason: e.to_string(),
            },
        })?;
        Ok(commands.iter().map(|(id, _)| Applied(id.index.to_le_bytes().to_vec())).collect())
    }

    async fn dump(&mut self, upto: Option<LogId>) -> Result<crate::cluster::Dump, RaftApplyError> {
        let nothing = crate::cluster::Dump::default();
        let Some(upto) = upto else { return Ok(nothing) };
        // The MariaDB unreachable: no new snapshot this time (an error would be fatal).
        let Some(prepared) = self.prepared().await else { return Ok(nothing) };
        let Some(point) = settled_point(upto, &self.own_since, &prepared) else { return Ok(nothing) };
        let ticket = Ticket { lsn: lsn_of(point.index), term: point.leader_id.term };
        if let Err(e) = self.applier.record_applied(ticket.lsn, ticket.term).await {
            tracing::warn!(error = %e, "no snapshot this time: the applied LSN could not be recorded");
            return Ok(nothing);
        }
        self.own_since.retain(|(id, _)| id.index > point.index);
        let data = serde_json::to_vec(&ticket).unwrap_or_default();
        Ok(crate::cluster::Dump { last: Some(point), data })
    }

    async fn restore(
        &mut self,
        last: Option<LogId>,
        _data: &crate::cluster::types::SnapshotData,
    ) -> Result<(), RaftApplyError> {
        let Some(last) = last else { return Ok(()) };
        let index = last.index;
        let (lsn, _) = self.applier.applied().await.map_err(|e| RaftApplyError { index, reason: e.to_string() })?;
        self.own_since.clear();
        if lsn >= lsn_of(index) {
            return Ok(());
        }
        let reason = format!(
            "the entries this node needs were purged from the leader's log (it starts after LSN {}) and this \
             node's MariaDB holds only up to LSN {lsn}: the node needs migration. Stop it, run \
             `shoal migrate --from <the API address of an up-to-date member> -c <this node's config>`, then start it",
            lsn_of(index)
        );
        if let Some(path) = &self.migration_flag {
            if let Err(e) = std::fs::write(path, format!("{reason}\n")) {
                tracing::error!(path = %path.display(), error = %e, "cannot write the needs-migration flag");
            }
        }
        tracing::error!("{reason}");
        Err(RaftApplyError { index, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        crate::cluster::log_store::log_id(lsn_of(index), term)
    }

    /// The rows of `settled_point`: the snapshot stops before the first own entry whose
    /// transaction is still prepared.
    #[test]
    fn settled_point_rows() {
        let own =
            vec![(id(2, 5), vec!["a".into()]), (id(2, 7), vec!["b".into(), "c".into()]), (id(3, 9), vec!["d".into()])];
        let prepared = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<std::collections::HashSet<_>>();
        assert_eq!(settled_point(id(3, 12), &own, &prepared(&[])), Some(id(3, 12)), "nothing prepared");
        assert_eq!(settled_point(id(3, 12), &own, &prepared(&["x"])), Some(id(3, 12)), "not ours");
        assert_eq!(settled_point(id(3, 12), &own, &prepared(&["c"])), Some(id(2, 5)), "before entry 7");
        assert_eq!(settled_point(id(3, 12), &own, &prepared(&["d", "c"])), Some(id(2, 5)), "the first one counts");
        assert_eq!(settled_point(id(3, 12), &own, &prepared(&["a"])), None, "the very first");
        assert_eq!(settled_point(id(3, 12), &[], &prepared(&["a"])), Some(id(3, 12)), "a follower");
    }
}
