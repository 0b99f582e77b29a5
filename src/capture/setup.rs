//! What capture needs from the leader's MariaDB before the first client transaction:
//! the requirements checked ([`check_requirements`]), the marker table created
//! ([`prepare_leader`]), and prepared transactions left by a crash decided against the
//! log ([`recover`]); decisions a session could not deliver kept for later
//! ([`settle_later`], [`settle_pending`]).

use mysql_async::prelude::Queryable;

use super::XID_PREFIX;

/// The server settings capture depends on: variable, the value it needs, the `my.cnf`
/// line that sets it.
///
/// | variable | needs | why |
/// |---|---|---|
/// | `log_bin` | `ON` (1) | the row images come from the binlog |
/// | `binlog_format` | `ROW` | row images, not statements |
/// | `binlog_row_image` | `FULL` | every column of before and after images (apply finds rows by them) |
/// | `server_id` | not 0 | binlog events carry it; each node needs its own |
pub const REQUIREMENTS: [(&str, &str, &str); 4] = [
    ("log_bin", "1", "log_bin = mariadb-bin"),
    ("binlog_format", "ROW", "binlog_format = ROW"),
    ("binlog_row_image", "FULL", "binlog_row_image = FULL"),
    ("server_id", "not 0", "server_id = <a number unique to this node>"),
];

/// The `my.cnf` snippet `shoal init` prints.
pub fn my_cnf_snippet(server_id: u32) -> String {
    format!(
        "[mariadb]\nlog_bin = mariadb-bin\nbinlog_format = ROW\nbinlog_row_image = FULL\nserver_id = {server_id}\ndefault_storage_engine = InnoDB\n"
    )
}

/// Why capture cannot start on a server.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A requirement is not met.
    #[error("the leader's MariaDB is not set up for capture: {0}")]
    Requirement(String),
    /// The server could not be reached or refused a statement.
    #[error("setting up capture on the leader's MariaDB: {0}")]
    Server(#[from] mysql_async::Error),
}

/// Checks [`REQUIREMENTS`]; the error names every unmet variable and the line to add.
pub async fn check_requirements(conn: &mut mysql_async::Conn) -> Result<(), SetupError> {
    let row: (u64, String, String, u64) = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id")
        .await?
        .unwrap_or_default();
    let mut missing = Vec::new();
    if row.0 != 1 {
        missing.push(format!("log_bin is OFF (add `{}` to my.cnf)", REQUIREMENTS[0].2));
    }
    if !row.1.eq_ignore_ascii_case("ROW") {
        missing.push(format!("binlog_format is {} (add `{}`)", row.1, REQUIREMENTS[1].2));
    }
    if !row.2.eq_ignore_ascii_case("FULL") {
        missing.push(format!("binlog_row_image is {} (add `{}`)", row.2, REQUIREMENTS[2].2));
    }
    if row.3 == 0 {
        missing.push(format!("server_id is 0 (add `{}`)", REQUIREMENTS[3].2));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SetupError::Requirement(format!("{}; then restart MariaDB", missing.join("; "))))
    }
}

/// `shoal_meta` as every node creates it (`apply::Applier::prepare` on followers, [`prepare_leader`] on the leader). The leader's captured
/// transactions insert into `txn`, and followers apply those rows events by column
/// position and type, so the definitions must be byte-for-byte the same everywhere:
/// character set and collation are spelled out rather than taken from server defaults.
pub const META_TABLES: [&str; 3] = [
    "CREATE DATABASE IF NOT EXISTS shoal_meta CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS shoal_meta.txn (xid VARCHAR(200) NOT NULL PRIMARY KEY) \
     ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS shoal_meta.applied (id TINYINT NOT NULL PRIMARY KEY, \
     lsn BIGINT UNSIGNED NOT NULL, term BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB",
];

/// Creates the marker table and lets every account insert into it (`GRANT … TO
/// PUBLIC`: client transactions run as their own accounts and write their marker).
pub async fn prepare_leader(conn: &mut mysql_async::Conn) -> Result<(), SetupError> {
    check_requirements(conn).await?;
    conn.query_drop("SET SESSION sql_log_bin = 0").await?;
    for ddl in META_TABLES {
        conn.query_drop(ddl).await?;
    }
    conn.query_drop("GRANT INSERT ON shoal_meta.txn TO PUBLIC").await?;
    conn.query_drop("SET SESSION sql_log_bin = 1").await?;
    Ok(())
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Prepared xids found durable in the log: committed.
    pub committed: Vec<String>,
    /// Prepared xids not in the log: rolled back.
    pub rolled_back: Vec<String>,
}

/// Decides every prepared XA transaction shoal left on the server (after a crash of
/// shoal or of MariaDB): `XA COMMIT` when `durable(xid)` (its entry is in the committed
/// log), else `XA ROLLBACK`. Other xids are left alone.
pub async fn recover(conn: &mut mysql_async::Conn, durable: impl Fn(&str) -> bool) -> Result<Recovered, SetupError> {
    let rows: Vec<(i64, i64, i64, Vec<u8>)> = conn.query("XA RECOVER").await?;
    let mut out = Recovered::default();
    for (_format, gtrid_len, _bqual_len, data) in rows {
        let gtrid = String::from_utf8_lossy(&data[..(gtrid_len as usize).min(data.len())]).into_owned();
        if !gtrid.starts_with(XID_PREFIX) {
            continue;
        }
        if durable(&gtrid) {
            conn.query_drop(format!("XA COMMIT '{gtrid}'")).await?;
            tracing::info!(xid = %gtrid, "recovery: prepared transaction is in the log, committed");
            out.committed.push(gtrid);
        } else {
            conn.query_drop(format!("XA ROLLBACK '{gtrid}'")).await?;
            tracing::info!(xid = %gtrid, "recovery: prepared transaction is not in the log, rolled back");
            out.rolled_back.push(gtrid);
        }
    }
    Ok(out)
}

/// The xids of shoal's prepared XA transactions on the server (`XA RECOVER`).
pub async fn prepared_xids(conn: &mut mysql_async::Conn) -> Result<Vec<String>, SetupError> {
    let rows: Vec<(i64, i64, i64, Vec<u8>)> = conn.query("XA RECOVER").await?;
    Ok(rows
        .into_iter()
        .map(|(_, gtrid_len, _, data)| {
            String::from_utf8_lossy(&data[..(gtrid_len as usize).min(data.len())]).into_owned()
        })
        .filter(|x| x.starts_with(XID_PREFIX))
        .collect())
}

/// MariaDB's answer to `XA COMMIT`/`XA ROLLBACK` of an xid it does not know
/// (`XAER_NOTA`): decided already.
const ER_XAER_NOTA: u16 = 1397;

/// `XA COMMIT` (`commit`) or `XA ROLLBACK` of a prepared xid no session holds. `Ok(true)`:
/// done now; `Ok(false)`: MariaDB does not know it (decided already).
pub async fn settle(conn: &mut mysql_async::Conn, xid: &str, commit: bool) -> Result<bool, mysql_async::Error> {
    let verb = if commit { "COMMIT" } else { "ROLLBACK" };
    match conn.query_drop(format!("XA {verb} '{xid}'")).await {
        Ok(()) => {
            tracing::info!(xid, decision = verb, "prepared transaction decided");
            remember_decision(xid, commit);
            Ok(true)
        }
        Err(mysql_async::Error::Server(e)) if e.code == ER_XAER_NOTA => {
            if commit && !has_marker(conn, xid).await? {
                // Neither prepared nor committed here: MariaDB died before its `XA PREPARE`
                // was durable. The log holds the transaction; this node must apply it.
                tracing::warn!(xid, "a transaction the log holds was lost from this node's MariaDB (it died before the prepare was durable); it is applied again from the log");
                LOST.lock().unwrap_or_else(|e| e.into_inner()).insert(xid.to_string());
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Whether the local MariaDB holds `xid`'s `shoal_meta.txn` marker (it committed here).
async fn has_marker(conn: &mut mysql_async::Conn, xid: &str) -> Result<bool, mysql_async::Error> {
    let n: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM shoal_meta.txn WHERE xid = '{}'", xid.replace('\'', "''")))
        .await?;
    Ok(n.unwrap_or(0) > 0)
}

/// Transactions the log holds (decided: commit) that the local MariaDB lost before they
/// were prepared durably ([`settle`] finds neither the prepared xid nor its marker). The
/// node applies their rows again from its log (`server::cluster`, `reapply_lost`).
static LOST: std::sync::LazyLock<std::sync::Mutex<std::collections::BTreeSet<String>>> =
    std::sync::LazyLock::new(Default::default);

/// Xids whose decision this MariaDB does not reflect yet: undelivered ([`settle_later`])
/// or lost (`LOST`). A snapshot must not vouch for them.
pub fn undelivered() -> std::collections::HashSet<String> {
    let mut out: std::collections::HashSet<String> =
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
    out.extend(LOST.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
    out
}

/// Takes the lost xids (`LOST`) to apply them again.
pub fn take_lost() -> std::collections::BTreeSet<String> {
    std::mem::take(&mut *LOST.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Puts back lost xids that could not be applied yet.
pub fn lost_again(xids: impl IntoIterator<Item = String>) {
    LOST.lock().unwrap_or_else(|e| e.into_inner()).extend(xids);
}

/// How long a decision waits in [`settle_later`]'s list before [`settle_pending`] delivers
/// it: a live session delivers its own within milliseconds.
pub const SETTLE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Decisions known to this process and not yet delivered to the local MariaDB: xid →
/// (commit?, since). A session registers its xid once durable (commit) or refused
/// (rollback) and clears it once its own `XA COMMIT`/`XA ROLLBACK` ran; when the
/// connection broke in between (the MariaDB died), the decision stays here until
/// [`settle_pending`] delivers it — process-wide because sessions, captures and the
/// node's probe of its MariaDB live and die separately.
static PENDING: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>> =
    std::sync::LazyLock::new(Default::default);

/// Remembers that `xid` must be committed (`commit`) or rolled back.
pub fn settle_later(xid: &str, commit: bool) {
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).insert(xid.to_string(), (commit, std::time::Instant::now()));
}

/// The session delivered the decision on `xid` itself.
pub fn settled(xid: &str) {
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).remove(xid);
    BEHIND.lock().unwrap_or_else(|e| e.into_inner()).remove(xid);
}

/// Durable transactions whose `XA COMMIT` on the local MariaDB did not happen because the
/// connection broke (the MariaDB died): the cluster committed them and this MariaDB shows
/// them only once [`settle_pending`] delivers the commit. Until then the node's applied
/// LSN overstates what its MariaDB shows, and reads that must see an LSN do not run here
/// ([`local_commits_behind`]; the chaos harness saw a session miss its own write).
static BEHIND: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

/// `xid` is durable and its local `XA COMMIT` is left to [`settle_pending`].
pub fn commit_undelivered(xid: &str) {
    BEHIND.lock().unwrap_or_else(|e| e.into_inner()).insert(xid.to_string());
}

/// Whether the local MariaDB lacks a commit the cluster made ([`commit_undelivered`]), or
/// a transaction whose decision was found lost (`LOST`, applied again by the node's probe).
pub fn local_commits_behind() -> bool {
    !BEHIND.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
        || !LOST.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
}

/// Delivers the decisions older than [`SETTLE_AFTER`] on `conn`; returns how many are
/// still waiting. Stops at the first connection error (retry later).
pub async fn settle_pending(conn: &mut mysql_async::Conn) -> usize {
    let due: Vec<(String, bool)> = {
        let p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        p.iter().filter(|(_, (_, at))| at.elapsed() >= SETTLE_AFTER).map(|(x, (c, _))| (x.clone(), *c)).collect()
    };
    for (xid, commit) in due {
        match settle(conn, &xid, commit).await {
            Ok(_) => settled(&xid),
            Err(e) => {
                tracing::warn!(xid, error = %e, "could not decide a prepared transaction yet; retrying");
                break;
            }
        }
    }
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Prepared transactions whose outcome only the log can tell: xid → the Raft term it was
/// proposed in. Two ways in: a session whose proposal the log took before the leadership
/// was lost ([`super::NotDurable::Unknown`]), and a shoal xid left prepared on the local
/// MariaDB when a cluster node starts whose entry is in the node's log (one that is not
/// is rolled back at once). Two ways out: the applier meets the xid in a committed entry
/// (`XA COMMIT`, `apply::RaftApplier`), or the node applies an entry of a later term —
/// a later leader's log holds every entry of that term or before that will ever commit
/// ahead of its own, so the xid is in none: `XA ROLLBACK` ([`orphans_decided_by`]).
static ORPHANS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
    std::sync::LazyLock::new(Default::default);

/// How many xids [`ORPHANS`] holds (the applier's fast path when there are none).
static ORPHAN_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn orphans() -> std::sync::MutexGuard<'static, std::collections::HashMap<String, u64>> {
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner())
}

fn count_orphans(o: &std::collections::HashMap<String, u64>) {
    ORPHAN_COUNT.store(o.len(), std::sync::atomic::Ordering::SeqCst);
}

/// Own xids whose committed entry this node applied already (skipped: its MariaDB holds
/// them), the last [`APPLIED_OWN_KEPT`]: a session that learns only afterwards that the
/// outcome of its proposal is unknown must not wait for an entry that has passed (the
/// chaos harness saw such xids stay prepared on the proposer while committed everywhere
/// else). Written under the [`ORPHANS`] lock, so an xid is either claimed as an orphan or
/// found here.
static APPLIED_OWN: std::sync::LazyLock<std::sync::Mutex<Decisions>> = std::sync::LazyLock::new(Default::default);

/// How many applied own xids `APPLIED_OWN` remembers.
pub const APPLIED_OWN_KEPT: usize = 65_536;

/// The applier met these own xids in committed entries (see `APPLIED_OWN`).
pub fn applied_own<'a>(xids: impl Iterator<Item = &'a str>) {
    let _o = orphans();
    let mut a = APPLIED_OWN.lock().unwrap_or_else(|e| e.into_inner());
    for x in xids {
        if a.0.insert(x.to_string(), true).is_none() {
            a.1.push_back(x.to_string());
        }
        while a.1.len() > APPLIED_OWN_KEPT {
            if let Some(old) = a.1.pop_front() {
                a.0.remove(&old);
            }
        }
    }
}

/// `xid`, proposed in Raft term `term`, stays prepared until the log decides it (see
/// `ORPHANS`) — unless the applier already met it committed (`APPLIED_OWN`): then it
/// commits as soon as the MariaDB answers ([`settle_later`]).
pub fn orphan(xid: &str, term: u64) {
    let mut o = orphans();
    if APPLIED_OWN.lock().unwrap_or_else(|e| e.into_inner()).0.contains_key(xid) {
        drop(o);
        tracing::info!(xid, "the outcome was unknown to its session, but its entry is applied: it commits");
        settle_later(xid, true);
        return;
    }
    o.insert(xid.to_string(), term);
    count_orphans(&o);
}

/// Whether any xid waits for the log.
pub fn has_orphans() -> bool {
    ORPHAN_COUNT.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// Takes the xids among `xids` that wait for the log, with their terms (the caller
/// commits them).
pub fn claim_orphans<'a>(xids: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut o = orphans();
    let out: Vec<(String, u64)> = xids.filter_map(|x| o.remove(x).map(|t| (x.to_string(), t))).collect();
    count_orphans(&o);
    out
}

/// Puts back xids [`claim_orphans`] or [`orphans_decided_by`] took whose decision did not
/// reach MariaDB.
pub fn unclaim_orphans(xids: &[(String, u64)]) {
    let mut o = orphans();
    for (x, t) in xids {
        o.insert(x.clone(), *t);
    }
    count_orphans(&o);
}

/// Takes the orphans the log has ruled out, given the term of the node's last applied
/// entry (the caller rolls them back):
///
/// | orphan's term | vs. the last applied entry's term | → |
/// |---|---|---|
/// | `t` | `t` ≥ applied term | kept: an entry of term `t` may still commit |
/// | `t` | `t` < applied term | taken: no committed entry holds it, roll back |
pub fn orphans_decided_by(applied_term: u64) -> Vec<(String, u64)> {
    let mut o = orphans();
    let mut out = Vec::new();
    o.retain(|xid, t| {
        let ruled_out = *t < applied_term;
        if ruled_out {
            out.push((xid.clone(), *t));
        }
        !ruled_out
    });
    count_orphans(&o);
    out
}

/// Decisions [`settle`] delivered, kept at most this many (the oldest go first).
pub const DECISIONS_KEPT: usize = 65_536;

/// What [`settle`] delivered lately, in order: a MariaDB that crashes right after an `XA
/// ROLLBACK` or `XA COMMIT` of a transaction no session holds can bring it back prepared
/// (the failover test saw it), and then no one else would decide it again.
static DECIDED: std::sync::LazyLock<std::sync::Mutex<Decisions>> = std::sync::LazyLock::new(Default::default);

/// xid → commit?, and the xids in the order they were decided.
type Decisions = (std::collections::HashMap<String, bool>, std::collections::VecDeque<String>);

fn remember_decision(xid: &str, commit: bool) {
    let mut d = DECIDED.lock().unwrap_or_else(|e| e.into_inner());
    let (map, order) = &mut *d;
    if map.insert(xid.to_string(), commit).is_none() {
        order.push_back(xid.to_string());
    }
    while order.len() > DECISIONS_KEPT {
        if let Some(old) = order.pop_front() {
            map.remove(&old);
        }
    }
}

/// After the local MariaDB came back: delivers again every decision [`settle`] made on a
/// transaction that is prepared there once more. Returns how many.
pub async fn redo_decisions(conn: &mut mysql_async::Conn) -> Result<usize, SetupError> {
    let prepared = prepared_xids(conn).await?;
    let again: Vec<(String, bool)> = {
        let d = DECIDED.lock().unwrap_or_else(|e| e.into_inner());
        prepared.into_iter().filter_map(|x| d.0.get(&x).map(|&c| (x, c))).collect()
    };
    for (xid, commit) in &again {
        tracing::warn!(%xid, commit, "a decided transaction is prepared again after the MariaDB restarted: deciding it again");
        settle(conn, xid, *commit).await?;
    }
    Ok(again.len())
}

/// Outcomes of statement entries the leader's applier ran for a session waiting on
/// them: xid-like statement id → `Ok` or the server's (code, message). Only ids a
/// session registered ([`expect_statement_outcome`]) are kept.
type Outcomes = std::collections::HashMap<String, Option<Result<(), (u16, String)>>>;
static STATEMENT_OUTCOMES: std::sync::Mutex<Option<Outcomes>> = std::sync::Mutex::new(None);

fn outcomes() -> std::sync::MutexGuard<'static, Option<Outcomes>> {
    STATEMENT_OUTCOMES.lock().unwrap_or_else(|p| p.into_inner())
}

/// A session is about to propose statement `id` and will ask for its outcome.
pub fn expect_statement_outcome(id: &str) {
    outcomes().get_or_insert_with(Default::default).insert(id.to_string(), None);
}

/// The applier ran statement `id` here: recorded if a session waits for it.
pub fn statement_ran(id: &str, outcome: Result<(), (u16, String)>) {
    if let Some(slot) = outcomes().as_mut().and_then(|o| o.get_mut(id)) {
        *slot = Some(outcome);
    }
}

/// What running statement `id` here gave (`None`: it was not run here), and forgets it.
pub fn take_statement_outcome(id: &str) -> Option<Result<(), (u16, String)>> {
    outcomes().as_mut().and_then(|o| o.remove(id)).flatten()
}

#[cfg(test)]
mod orphan_tests {
    use super::*;

    /// Every row of `orphans_decided_by`'s table, and a claim. One test: the registry is
    /// process-wide.
    #[test]
    fn orphans_wait_for_the_log() {
        orphan("shoal-t-1-1", 3);
        orphan("shoal-t-1-2", 4);
        orphan("shoal-t-1-3", 4);
        assert!(has_orphans());
        assert_eq!(claim_orphans(["shoal-t-1-3", "other"].into_iter()), vec![("shoal-t-1-3".to_string(), 4)]);
        assert!(orphans_decided_by(3).is_empty(), "term 3 applied: an entry of term 3 may still commit");
        assert_eq!(orphans_decided_by(4), vec![("shoal-t-1-1".to_string(), 3)]);
        assert_eq!(orphans_decided_by(9), vec![("shoal-t-1-2".to_string(), 4)]);
        assert!(!has_orphans());
    }
}
