//! `POST /write/insert|update|delete|ddl` (WolfScale's write endpoints): one statement run
//! through this node's own proxy port as the service account, so it takes the path every
//! client write takes (a follower forwards it, the leader captures it and commits once a
//! quorum holds it), and the answer carries the LSN to read it back with elsewhere.
//!
//! Request: `{"sql": "...", "database": "optional schema"}`, `Authorization: Bearer TOKEN`
//! (writes need `[api] token_file`: without one they are refused).
//!
//! | endpoint | accepted statements ([`endpoint_accepts`]) |
//! |---|---|
//! | `/write/insert` | `INSERT`, `REPLACE` |
//! | `/write/update` | `UPDATE` |
//! | `/write/delete` | `DELETE` |
//! | `/write/ddl` | DDL (`CREATE`, `ALTER`, `DROP`, `RENAME`, `TRUNCATE`, …) |
//!
//! | outcome | status | body |
//! |---|---|---|
//! | ran | 200 | [`WriteBody`]: `affected_rows`, `last_insert_id`, `lsn` |
//! | no token configured, or a wrong one | 403 / 401 | `{"error": …}` |
//! | statement does not match the endpoint, or is not one statement | 400 | `{"error": …}` |
//! | the server refused it | 409 | [`SqlErrorBody`]: MariaDB's (or shoal's) code and message |
//! | the proxy could not be reached | 503 | `{"error": …}` |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use super::api::ErrorBody;
use super::state::Shared;
use crate::classify::{classify, Flags, Kind};

/// Longest statement the endpoints take, bytes.
pub const WRITE_SQL_BYTES_MAX: usize = 1 << 20;

/// The request body.
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteRequest {
    /// One statement.
    pub sql: String,
    /// Schema to run it in.
    #[serde(default)]
    pub database: Option<String>,
}

/// A statement that ran.
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteBody {
    /// Rows the statement changed.
    pub affected_rows: u64,
    /// `LAST_INSERT_ID()` after it, if it set one.
    pub last_insert_id: Option<u64>,
    /// Cluster LSN of the write (null outside a cluster or for a write that changed
    /// nothing durable); a read with `/*shoal:lsn=N*/` on any node sees it.
    pub lsn: Option<u64>,
}

/// A statement the server refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct SqlErrorBody {
    /// MariaDB error code (shoal's own codes for its refusals, e.g. 1180, 1290).
    pub code: u16,
    /// The server's message.
    pub error: String,
}

/// Whether `endpoint` takes `sql` (module table). Pure.
pub fn endpoint_accepts(endpoint: &str, sql: &str) -> Result<(), String> {
    let c = classify(sql.as_bytes());
    if c.flags.contains(Flags::MULTI_STATEMENT) {
        return Err("one statement per request".into());
    }
    let first =
        sql.trim_start().split(|ch: char| !ch.is_ascii_alphabetic()).next().unwrap_or_default().to_ascii_uppercase();
    let ok = match endpoint {
        "insert" => c.kind == Kind::Write && (first == "INSERT" || first == "REPLACE"),
        "update" => c.kind == Kind::Write && first == "UPDATE",
        "delete" => c.kind == Kind::Write && first == "DELETE",
        "ddl" => c.kind == Kind::Ddl,
        other => return Err(format!("no endpoint /write/{other}; use insert, update, delete or ddl")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("/write/{endpoint} does not take this statement (a {first} statement); see docs/api.md"))
    }
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(ErrorBody { error: msg.into() })).into_response()
}

/// `POST /write/{endpoint}`.
pub async fn write(
    State(s): State<Arc<Shared>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    Json(req): Json<WriteRequest>,
) -> Response {
    if s.token.load().is_none() {
        return error(StatusCode::FORBIDDEN, "writes through the API need a token: set [api] token_file");
    }
    if let Some(r) = super::api::unauthorized(&s, &headers) {
        return r;
    }
    if req.sql.len() > WRITE_SQL_BYTES_MAX {
        return error(StatusCode::BAD_REQUEST, format!("statement longer than {WRITE_SQL_BYTES_MAX} bytes"));
    }
    if let Err(e) = endpoint_accepts(&endpoint, &req.sql) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let config = s.config.load_full();
    let password = super::health::service_password(&config);
    let addr = s.proxy_addr;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(addr.port())
        .user(Some(config.backends.user.clone()))
        .pass(Some(password))
        .db_name(req.database.clone())
        .prefer_socket(false);
    let mut conn = match mysql_async::Conn::new(opts).await {
        Ok(c) => c,
        Err(mysql_async::Error::Server(e)) => {
            return (StatusCode::CONFLICT, Json(SqlErrorBody { code: e.code, error: e.message })).into_response()
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("this node's proxy {addr}: {e}")),
    };
    let ran = conn.query_drop(&req.sql).await;
    let body = match ran {
        Ok(()) => {
            let affected_rows = conn.affected_rows();
            let last_insert_id = conn.last_insert_id();
            let lsn =
                conn.query_first::<Option<u64>, _>(crate::frontend::lease::LAST_LSN_SQL).await.ok().flatten().flatten();
            Ok(WriteBody { affected_rows, last_insert_id, lsn })
        }
        Err(e) => Err(e),
    };
    let _ = conn.disconnect().await;
    match body {
        Ok(b) => Json(b).into_response(),
        Err(mysql_async::Error::Server(e)) => {
            (StatusCode::CONFLICT, Json(SqlErrorBody { code: e.code, error: e.message })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("this node's proxy {addr}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_accepts;

    #[test]
    fn endpoint_rows() {
        assert!(endpoint_accepts("insert", "INSERT INTO t VALUES (1)").is_ok());
        assert!(endpoint_accepts("insert", "replace into t values (1)").is_ok());
        assert!(endpoint_accepts("update", "UPDATE t SET a = 1").is_ok());
        assert!(endpoint_accepts("delete", "DELETE FROM t").is_ok());
        assert!(endpoint_accepts("ddl", "CREATE TABLE t (a INT)").is_ok());
        assert!(endpoint_accepts("insert", "DELETE FROM t").is_err());
        assert!(endpoint_accepts("ddl", "INSERT INTO t VALUES (1)").is_err());
        assert!(endpoint_accepts("insert", "SELECT 1").is_err());
        assert!(endpoint_accepts("insert", "INSERT INTO t VALUES (1); DROP TABLE t").is_err());
        assert!(endpoint_accepts("upsert", "INSERT INTO t VALUES (1)").is_err());
    }
}
