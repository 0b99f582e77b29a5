//! Statements shoal answers itself instead of a backend, because the backend's answer
//! would speak of its own connections, not of the client's session: `KILL` and
//! `SHOW [FULL] PROCESSLIST` take and show shoal's connection ids (the ids clients get in
//! the greeting and from `CONNECTION_ID()`); `SELECT @@shoal_last_lsn` tells the cluster
//! LSN of the session's last write.
//!
//! `SHOW PROCESSLIST` lists the sessions of this proxy: all of them for an account with
//! the `PROCESS` (or `SUPER`) privilege, else the account's own, as MariaDB does. `Info`
//! and `State` of a running statement come from the backend's process list (a statement
//! on a pipe's shared connection shows none); `information_schema.PROCESSLIST` still
//! describes the backend's own connections.

use bytes::BytesMut;
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::packets::Column;
use mysql_common::proto::MySerialize;

use super::session::Session;
use crate::classify::{Classification, Flags, Kind};
use crate::error::{ProxyError, ER_NO_SUCH_THREAD};
use crate::protocol::com;
use crate::protocol::framer::Expect;
use crate::protocol::packet::{put_lenenc_int, put_lenenc_str, put_packet};
use crate::protocol::reply::{first_value, put_eof, put_ok, rows_of, OkInfo};
use crate::protocol::CapabilityFlags;

/// `ER_KILL_DENIED_ERROR`.
const ER_KILL_DENIED: u16 = 1095;
/// `Info` shown by plain `SHOW PROCESSLIST` is cut to this many characters (MariaDB's 100).
const PROCESSLIST_INFO_CHARS: usize = 100;
/// Whether the account may see every session (`PROCESS` or `SUPER`).
const PRIVILEGE_SQL: &[u8] = b"SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
    WHERE PRIVILEGE_TYPE IN ('PROCESS', 'SUPER') \
    AND GRANTEE = CONCAT('''', REPLACE(CURRENT_USER(), '@', '''@'''), '''')";
/// Whether the account may kill other accounts' connections (MariaDB: `SUPER` or
/// `CONNECTION ADMIN`).
const KILL_PRIVILEGE_SQL: &[u8] = b"SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
    WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN') \
    AND GRANTEE = CONCAT('''', REPLACE(CURRENT_USER(), '@', '''@'''), '''')";
/// The backend's threads the account may see.
const THREADS_SQL: &[u8] = b"SELECT ID, STATE, INFO FROM information_schema.PROCESSLIST";

/// One row of `SHOW PROCESSLIST`.
struct ProcessRow {
    id: u32,
    user: String,
    host: String,
    db: Option<String>,
    command: &'static str,
    time: u64,
    state: Option<String>,
    info: Option<String>,
}

impl Session {
    /// `KILL [QUERY|CONNECTION] id` and COM_PROCESS_KILL, where `id` is a shoal
    /// connection id: the backend thread running that session's statement is killed with
    /// this session's own account, so the backend checks the privilege.
    pub(super) async fn kill(&mut self, query_only: bool, target: u64) -> Result<(), ProxyError> {
        let Some(handle) = u32::try_from(target).ok().and_then(|t| self.proxy.registry.get(t)) else {
            return self.reply_err(1, ER_NO_SUCH_THREAD, "HY000", &format!("Unknown thread id: {target}")).await;
        };
        match handle.running() {
            Some((server, thread)) => {
                // A statement on a pipe shares its connection with other sessions: killing
                // the connection would end their reads too, so only the query is killed
                // (and the session closes before its next command).
                let kill_query = query_only || handle.running_shared();
                if kill_query {
                    handle.ask_kill_query();
                }
                if !query_only {
                    handle.kill();
                }
                let verb = if kill_query { "QUERY" } else { "CONNECTION" };
                let sql = format!("KILL {verb} {thread}");
                if self.backend.own.is_some() {
                    return self.kill_as_service(&handle.user, &sql, target).await;
                }
                let pool = self.backend.pool(&self.proxy, &self.account, server);
                let mut side = pool.checkout().await?;
                side.send(com::QUERY, sql.as_bytes()).await?;
                side.relay(Expect::Results, &mut self.io).await?;
                Ok(())
            }
            None if handle.user != self.account.user && !self.holds_privilege(KILL_PRIVILEGE_SQL).await? => {
                self.reply_err(1, ER_KILL_DENIED, "HY000", &format!("You are not owner of thread {target}")).await
            }
            None => {
                if !query_only {
                    handle.kill();
                }
                self.reply_ok(1).await
            }
        }
    }

    /// `KILL` for a session whose login was relayed (it has no second connection to send
    /// it on): sent with the service account, for the account's own sessions only (what
    /// MariaDB allows an account without the `CONNECTION ADMIN` privilege).
    async fn kill_as_service(&mut self, owner: &str, sql: &str, target: u64) -> Result<(), ProxyError> {
        if owner != self.account.user {
            return self.reply_err(1, ER_KILL_DENIED, "HY000", &format!("You are not owner of thread {target}")).await;
        }
        let Some(svc) = self.proxy.users.service().cloned() else {
            let msg = "KILL from an account whose login shoal relays needs a service account ([backends] user)";
            return Err(ProxyError::Unavailable(msg.into()));
        };
        let addr = self.proxy.leader_addr();
        let opts = crate::backend::users::client_opts(&addr, &svc.user, &svc.password, &svc.tls);
        let run = async {
            let mut c = mysql_async::Conn::new(opts).await?;
            mysql_async::prelude::Queryable::query_drop(&mut c, sql).await?;
            c.disconnect().await
        };
        match run.await {
            Ok(()) => self.reply_ok(1).await,
            Err(e) => Err(ProxyError::Unavailable(format!("KILL through the service account failed: {e}"))),
        }
    }

    /// Whether this account holds a privilege `sql` counts, asked with its own login (so
    /// the backend decides).
    async fn holds_privilege(&mut self, sql: &[u8]) -> Result<bool, ProxyError> {
        let class = Classification { kind: Kind::Show, flags: Flags::HINT_LEADER };
        self.lease_for(&class).await?;
        let conn = self.backend.conn();
        let deprecate_eof = conn.deprecate_eof();
        let (_, raw) = conn.ask(com::QUERY, sql, Expect::Results).await?;
        self.backend.release_if_free();
        Ok(first_value(&raw, deprecate_eof).flatten().is_some_and(|v| v != b"0"))
    }

    /// `SHOW [FULL] PROCESSLIST` over shoal's sessions.
    pub(super) async fn show_processlist(&mut self, sql: &[u8]) -> Result<(), ProxyError> {
        let full = String::from_utf8_lossy(sql).to_ascii_uppercase().contains("FULL");
        // The account's privilege and the backend's view of its threads, asked with the
        // account's own login (so the backend decides what it may see).
        let privileged = self.holds_privilege(PRIVILEGE_SQL).await?;
        let class = Classification { kind: Kind::Show, flags: Flags::HINT_LEADER };
        self.lease_for(&class).await?;
        let conn = self.backend.conn();
        let server = conn.server;
        let deprecate_eof = conn.deprecate_eof();
        let (_, threads) = conn.ask(com::QUERY, THREADS_SQL, Expect::Results).await?;
        let threads = rows_of(&threads, deprecate_eof);
        self.backend.release_if_free();
        let backend_thread = |thread: u32| {
            let id = thread.to_string();
            threads.iter().find(|r| r[0].as_deref() == Some(id.as_bytes())).map(|r| {
                let text = |i: usize| r[i].as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
                (text(1), text(2))
            })
        };
        let mut rows = Vec::new();
        for (id, h) in self.proxy.registry.all() {
            if !privileged && h.user != self.account.user {
                continue;
            }
            let mine = id == self.id;
            let (command, state, info) = match h.running() {
                _ if mine => ("Query", Some("starting".to_string()), Some(String::from_utf8_lossy(sql).into_owned())),
                Some((on, thread)) if on == server && !h.running_shared() => {
                    let (state, info) = backend_thread(thread).unwrap_or((None, None));
                    ("Query", state, info)
                }
                Some(_) => ("Query", None, None),
                None => ("Sleep", None, None),
            };
            let info = info.map(|i| if full { i } else { i.chars().take(PROCESSLIST_INFO_CHARS).collect() });
            rows.push(ProcessRow {
                id,
                user: h.user.clone(),
                host: h.host.clone(),
                db: h.schema(),
                command,
                time: if mine { 0 } else { h.idle_secs() },
                state,
                info,
            });
        }
        self.reply_processlist(&rows).await
    }

    async fn reply_processlist(&mut self, rows: &[ProcessRow]) -> Result<(), ProxyError> {
        // utf8_general_ci for text, binary for numbers, as MariaDB describes these columns.
        let (utf8, binary) = (33u16, 63u16);
        let col = |name: &str, ty: ColumnType, len: u32, flags: ColumnFlags, cs: u16| {
            Column::new(ty)
                .with_schema(b"information_schema")
                .with_table(b"PROCESSLIST")
                .with_org_table(b"PROCESSLIST")
                .with_name(name.as_bytes())
                .with_org_name(name.to_ascii_uppercase().as_bytes())
                .with_column_length(len)
                .with_flags(flags)
                .with_character_set(cs)
        };
        let nn = ColumnFlags::NOT_NULL_FLAG;
        let columns = [
            col("Id", ColumnType::MYSQL_TYPE_LONGLONG, 21, nn | ColumnFlags::UNSIGNED_FLAG, binary),
            col("User", ColumnType::MYSQL_TYPE_VAR_STRING, 384, nn, utf8),
            col("Host", ColumnType::MYSQL_TYPE_VAR_STRING, 192, nn, utf8),
            col("db", ColumnType::MYSQL_TYPE_VAR_STRING, 192, ColumnFlags::empty(), utf8),
            col("Command", ColumnType::MYSQL_TYPE_VAR_STRING, 48, nn, utf8),
            col("Time", ColumnType::MYSQL_TYPE_LONG, 7, nn, binary),
            col("State", ColumnType::MYSQL_TYPE_VAR_STRING, 192, ColumnFlags::empty(), utf8),
            col("Info", ColumnType::MYSQL_TYPE_VAR_STRING, 300, ColumnFlags::empty(), utf8),
            col("Progress", ColumnType::MYSQL_TYPE_NEWDECIMAL, 7, nn, binary).with_decimals(3),
        ];
        let cells: Vec<Vec<Option<Vec<u8>>>> = rows
            .iter()
            .map(|r| {
                vec![
                    Some(r.id.to_string().into_bytes()),
                    Some(r.user.clone().into_bytes()),
                    Some(r.host.clone().into_bytes()),
                    r.db.clone().map(String::into_bytes),
                    Some(r.command.as_bytes().to_vec()),
                    Some(r.time.to_string().into_bytes()),
                    r.state.clone().map(String::into_bytes),
                    r.info.clone().map(String::into_bytes),
                    Some(b"0.000".to_vec()),
                ]
            })
            .collect();
        self.reply_result(&columns, &cells).await
    }

    /// `SELECT @@shoal_last_lsn`: the LSN of the session's last durable write in the
    /// cluster (NULL before the first), for a client that wants to read it elsewhere
    /// (`/*shoal:lsn=N*/`, docs/cluster.md).
    pub(super) async fn reply_last_lsn(&mut self) -> Result<(), ProxyError> {
        let column = Column::new(ColumnType::MYSQL_TYPE_LONGLONG)
            .with_name(b"@@shoal_last_lsn")
            .with_column_length(20)
            .with_flags(ColumnFlags::UNSIGNED_FLAG | ColumnFlags::BINARY_FLAG)
            .with_character_set(63);
        let value = self.backend.last_lsn.map(|l| l.to_string().into_bytes());
        self.reply_result(&[column], &[vec![value]]).await
    }

    /// Sends a text-protocol result set shoal made itself.
    async fn reply_result(&mut self, columns: &[Column], rows: &[Vec<Option<Vec<u8>>>]) -> Result<(), ProxyError> {
        let deprecate_eof = self.account.capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
        let status = self.backend.status;
        let out = &mut self.io.wbuf;
        let mut payload = BytesMut::new();
        put_lenenc_int(&mut payload, columns.len() as u64);
        let mut seq = put_packet(out, 1, &payload);
        for c in columns {
            let mut def = Vec::with_capacity(96);
            c.serialize(&mut def);
            seq = put_packet(out, seq, &def);
        }
        if !deprecate_eof {
            put_eof(out, seq, status);
            seq = seq.wrapping_add(1);
        }
        for r in rows {
            payload.clear();
            for cell in r {
                match cell {
                    Some(v) => put_lenenc_str(&mut payload, v),
                    None => payload.extend_from_slice(&[0xFB]),
                }
            }
            seq = put_packet(out, seq, &payload);
        }
        if deprecate_eof {
            put_ok(out, seq, &OkInfo { status, ..OkInfo::default() }, true);
        } else {
            put_eof(out, seq, status);
        }
        self.io.flush().await
    }
}
