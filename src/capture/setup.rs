//! What capture needs from the leader's MariaDB before the first client transaction:
//! the requirements checked ([`check_requirements`]), the marker table created
//! ([`prepare_leader`]), and prepared transactions left by a crash decided against the
//! log ([`recover`]).

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
