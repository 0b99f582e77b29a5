//! `GET /cluster/dump`: a consistent dump of this node's MariaDB, streamed, for
//! `shoal migrate --from` on a node that needs one (its log was purged, or it is new).
//!
//! The dump is `mariadb-dump --single-transaction` of every database but MariaDB's own
//! schemas, `shoal_meta` included, plus the accounts (`--system=users`). It is not
//! mariabackup: a logical dump restores into any MariaDB version and any datadir layout,
//! streams through one HTTP response with no staging on either disk, and its consistent
//! snapshot holds `shoal_meta.applied` (the LSN the dump is at) and the `shoal_meta.txn`
//! markers, so catch-up from the log above that LSN applies every transaction exactly once.
//! mariabackup is faster for very large datadirs (a later option).
//!
//! | response header | what |
//! |---|---|
//! | [`BYTES_HEADER`] | estimate of the dump's size (data and index length of the tables) |
//! | [`ROWS_HEADER`] | estimate of the rows (`information_schema.TABLES.TABLE_ROWS`) |
//! | [`MEMBERSHIP_HEADER`] | this node's membership (openraft `StoredMembership`, JSON) |
//!
//! A dump that stopped early lacks mariadb-dump's closing `-- Dump completed` line; the
//! client checks for it ([`COMPLETED_MARK`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mysql_async::prelude::Queryable;

use super::api::{unauthorized, ErrorBody};
use super::state::Shared;

/// Header with the dump's estimated size in bytes.
pub const BYTES_HEADER: &str = "x-shoal-dump-bytes";
/// Header with the dump's estimated rows.
pub const ROWS_HEADER: &str = "x-shoal-dump-rows";
/// Header with the source's membership, JSON.
pub const MEMBERSHIP_HEADER: &str = "x-shoal-membership";
/// The last line of a complete dump starts with this.
pub const COMPLETED_MARK: &str = "-- Dump completed";
/// MariaDB's own schemas: never dumped (the target has its own).
pub const SYSTEM_SCHEMAS: [&str; 4] = ["information_schema", "performance_schema", "mysql", "sys"];
/// Largest packet either side of the dump accepts (rows of large BLOBs).
pub const DUMP_PACKET_MAX: &str = "1G";

/// `mariadb-dump`'s arguments for `databases` on the server at `host`:`port` as `user`
/// (the password goes in `MYSQL_PWD`, never on the command line).
pub fn dump_args(host: &str, port: u16, user: &str, databases: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        format!("--host={host}"),
        format!("--port={port}"),
        format!("--user={user}"),
        "--protocol=tcp".into(),
        "--single-transaction".into(),
        "--quick".into(),
        "--hex-blob".into(),
        "--routines".into(),
        "--triggers".into(),
        "--add-drop-database".into(),
        // Accounts as `CREATE USER IF NOT EXISTS` (what `--insert-ignore` makes them) and
        // their grants: a new node then knows the applications' users.
        "--system=users".into(),
        "--insert-ignore".into(),
        "--default-character-set=utf8mb4".into(),
        format!("--max-allowed-packet={DUMP_PACKET_MAX}"),
        "--databases".into(),
    ]
    .into();
    args.extend(databases.iter().cloned());
    args
}

/// Host and port of a `[database] host` address (`host:port`, port 3306 when absent).
pub fn host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.trim_matches(['[', ']']).to_string(), p.parse().unwrap_or(3306)),
        None => (addr.to_string(), 3306),
    }
}

fn refuse(code: StatusCode, error: String) -> Response {
    (code, Json(ErrorBody { error })).into_response()
}

/// The databases to dump and the (bytes, rows) estimate.
async fn plan(opts: mysql_async::Opts) -> Result<(Vec<String>, u64, u64), mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts).await?;
    let all: Vec<String> = conn.query("SHOW DATABASES").await?;
    let databases: Vec<String> = all.into_iter().filter(|d| !SYSTEM_SCHEMAS.contains(&d.as_str())).collect();
    let (bytes, rows): (u64, u64) = conn
        .query_first(
            "SELECT CAST(COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS UNSIGNED), \
             CAST(COALESCE(SUM(TABLE_ROWS), 0) AS UNSIGNED) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema', 'mysql', 'sys')",
        )
        .await?
        .unwrap_or((0, 0));
    let _ = conn.disconnect().await;
    Ok((databases, bytes, rows))
}

/// `GET /cluster/dump` (see the module doc). Needs a token, like every write to the
/// cluster's state: a dump holds all the data.
pub async fn dump(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if s.token.load().is_none() {
        return refuse(StatusCode::FORBIDDEN, "a dump through the API needs a token: set [api] token_file".into());
    }
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let Some(node) = s.node() else {
        return refuse(StatusCode::CONFLICT, "not a cluster node ([cluster] secret_file is not set)".into());
    };
    let config = s.config.load_full();
    if let Some(why) = crate::cluster::retention::needs_migration(&config.node.data_dir) {
        return refuse(StatusCode::CONFLICT, format!("this node needs migration itself ({why}); dump another member"));
    }
    if !node.is_ready() {
        return refuse(StatusCode::CONFLICT, "this node's MariaDB does not answer; dump another member".into());
    }
    let b = &config.backends;
    let password = match b.service_password() {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let tls = match crate::backend::tls::BackendTls::from_config(b) {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("backend TLS: {e}")),
    };
    let opts = crate::backend::users::client_opts(&b.primary, &b.user, &password, &tls);
    let (databases, bytes, rows) = match plan(opts.into()).await {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, format!("the local MariaDB {}: {e}", b.primary)),
    };
    let (host, port) = host_port(&b.primary);
    let mut child = match tokio::process::Command::new("mariadb-dump")
        .args(dump_args(&host, port, &b.user, &databases))
        .env("MYSQL_PWD", &password)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot run mariadb-dump ({e}); install mariadb-client on this node"),
            )
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "mariadb-dump has no stdout".into());
    };
    tracing::info!(databases = ?databases, bytes, rows, "streaming a dump for shoal migrate");
    let membership = serde_json::to_string(&node.raft().metrics().borrow().membership_config).unwrap_or_default();
    // The child lives as long as the stream: a client that goes away kills mariadb-dump.
    let stream = futures_util::StreamExt::map(tokio_util::io::ReaderStream::new(stdout), move |chunk| {
        let _alive = &child;
        chunk
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/sql"));
    h.insert(BYTES_HEADER, HeaderValue::from(bytes));
    h.insert(ROWS_HEADER, HeaderValue::from(rows));
    if let Ok(v) = HeaderValue::from_str(&membership) {
        h.insert(MEMBERSHIP_HEADER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_args_are_consistent_and_name_the_databases() {
        let a = dump_args("10.0.0.1", 3307, "shoal", &["app".into(), "shoal_meta".into()]);
        assert!(a.contains(&"--single-transaction".to_string()));
        assert!(a.contains(&"--port=3307".to_string()));
        assert!(!a.iter().any(|x| x.contains("password")), "{a:?}");
        assert_eq!(&a[a.len() - 3..], ["--databases", "app", "shoal_meta"]);
    }

    #[test]
    fn host_port_rows() {
        assert_eq!(host_port("127.0.0.1:3307"), ("127.0.0.1".into(), 3307));
        assert_eq!(host_port("db"), ("db".into(), 3306));
        assert_eq!(host_port("[::1]:3306"), ("::1".into(), 3306));
    }
}
