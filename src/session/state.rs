//! Replayable session state and what it takes to move it onto a backend connection.
//!
//! A session's schema, its `SET` variables and its last insert id can be re-created on
//! any pooled connection; [`sync_plan`] computes the commands that do it, and the
//! connection remembers what it has so repeated checkouts by the same session cost
//! nothing.

use super::prepared::BackendStmts;

/// Session variables set with replayable `SET`s, in the order they were set; a later
/// assignment to the same name replaces the earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    items: Vec<(String, String)>,
}

impl Vars {
    /// Records `SET <text>` for variable `name`.
    pub fn set(&mut self, name: &str, text: &str) {
        self.items.retain(|(n, _)| n != name);
        self.items.push((name.to_string(), text.to_string()));
    }

    /// The assignments, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// The text last set for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str())
    }

    /// Forgets `name` (the connection no longer has it, or the session no longer wants it).
    pub fn remove(&mut self, name: &str) {
        self.items.retain(|(n, _)| n != name);
    }

    /// True when nothing was set.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What a client session expects every backend connection it uses to have.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    /// Unique id of the session (shoal's connection id): with `version`, lets a backend
    /// connection tell cheaply whether it is already in sync.
    pub id: u64,
    /// Bumped on every change to the fields below.
    pub version: u64,
    /// Current schema (`USE`, `COM_INIT_DB`, connect-with-db).
    pub schema: Option<String>,
    /// Replayable `SET`s.
    pub vars: Vars,
    /// Last auto-increment id the session generated (what `LAST_INSERT_ID()` returns).
    pub last_insert_id: u64,
    /// The previous statement's `ROW_COUNT()` (affected rows, -1 after a result set or an
    /// error), answered by shoal (`classify::rewrite`): the connection that ran it may
    /// belong to another session by now.
    pub row_count: i64,
    /// Rows of the last result set (`FOUND_ROWS()` after a plain SELECT), likewise.
    pub found_rows: u64,
}

impl SessionState {
    /// Records what a client statement's response tells `ROW_COUNT()`/`FOUND_ROWS()`.
    pub fn statement_done(&mut self, framer: &crate::protocol::framer::Framer) {
        self.row_count = framer.row_count();
        if framer.had_rows {
            self.found_rows = framer.rows;
        }
    }

    /// Changes the schema.
    pub fn set_schema(&mut self, schema: Option<String>) {
        if self.schema != schema {
            self.schema = schema;
            self.version += 1;
        }
    }

    /// Records a replayable assignment.
    pub fn set_var(&mut self, name: &str, text: &str) {
        if self.vars.get(name) != Some(text) {
            self.vars.set(name, text);
            self.version += 1;
        }
    }

    /// Forgets one replayable assignment (the next sync sets `name` back to its default).
    pub fn unset_var(&mut self, name: &str) {
        if self.vars.get(name).is_some() {
            self.vars.remove(name);
            self.version += 1;
        }
    }

    /// Forgets every variable (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub fn reset_vars(&mut self) {
        self.vars = Vars::default();
        self.last_insert_id = 0;
        self.row_count = 0;
        self.found_rows = 0;
        self.version += 1;
    }
}

/// What one backend connection currently has.
#[derive(Debug, Default)]
pub struct BackendState {
    /// Its current schema.
    pub schema: Option<String>,
    /// The variables set on it.
    pub vars: Vars,
    /// Its `LAST_INSERT_ID()`.
    pub last_insert_id: u64,
    /// (session id, session version) it was last synced to.
    pub synced: Option<(u64, u64)>,
    /// Statements prepared on it.
    pub stmts: BackendStmts,
    /// Its diagnostics area may hold warnings or an error (a statement reported some; no
    /// statement known to clear them ran since): cleared before a session that did not
    /// cause them reads diagnostics there.
    pub da_dirty: bool,
}

/// Commands that bring a connection in line with a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// The connection has a schema and the session none: `COM_CHANGE_USER` without one
    /// first (which resets the connection; the plan is then made again).
    pub forget_schema: bool,
    /// `COM_INIT_DB` to send.
    pub init_db: Option<String>,
    /// One `SET a, b, c` statement with every assignment that differs.
    pub set: Option<String>,
}

impl SyncPlan {
    /// True when the connection is already in sync.
    pub fn is_empty(&self) -> bool {
        !self.forget_schema && self.init_db.is_none() && self.set.is_none()
    }
}

/// The commands that make `conn` match `session`. `needs_insert_id` asks for
/// `LAST_INSERT_ID()` too (only statements that read it pay for it); `default_charset`
/// is what `SET NAMES` returns to when a session never changed it.
///
/// | session vs connection | command |
/// |---|---|
/// | same (session id, version) and no insert id needed | nothing |
/// | schema differs, session has one | `COM_INIT_DB schema` |
/// | connection has a schema, session has none | `COM_CHANGE_USER` without one (MariaDB cannot otherwise unselect), then the rest |
/// | variable set in session, absent or different on conn | `SET <session's text>` |
/// | variable set on conn, absent in session | `SET name = DEFAULT` (`SET NAMES <charset>` for names) |
/// | insert id needed and differs | `SET last_insert_id = n` |
pub fn sync_plan(
    session: &SessionState,
    conn: &BackendState,
    needs_insert_id: bool,
    default_charset: &str,
) -> SyncPlan {
    let insert_id_differs = needs_insert_id && session.last_insert_id != conn.last_insert_id;
    if conn.synced == Some((session.id, session.version)) && !insert_id_differs {
        return SyncPlan::default();
    }
    let mut plan = SyncPlan::default();
    if session.schema.is_none() && conn.schema.is_some() {
        plan.forget_schema = true;
        return plan;
    }
    if session.schema.is_some() && session.schema != conn.schema {
        plan.init_db = session.schema.clone();
    }
    let mut parts: Vec<String> = Vec::new();
    for (name, _) in conn.vars.iter() {
        if session.vars.get(name).is_none() {
            parts.push(match name {
                "names" | "character set" => format!("NAMES {default_charset}"),
                other => format!("@@session.{other} = DEFAULT"),
            });
        }
    }
    for (name, text) in session.vars.iter() {
        if conn.vars.get(name) != Some(text) {
            parts.push(text.to_string());
        }
    }
    if insert_id_differs {
        parts.push(format!("last_insert_id = {}", session.last_insert_id));
    }
    if !parts.is_empty() {
        plan.set = Some(format!("SET {}", parts.join(", ")));
    }
    plan
}

/// Records on `conn` that the plan for `session` was applied successfully.
pub fn mark_synced(session: &SessionState, conn: &mut BackendState, needs_insert_id: bool) {
    if session.schema.is_some() {
        conn.schema = session.schema.clone();
    }
    conn.vars = session.vars.clone();
    if needs_insert_id {
        conn.last_insert_id = session.last_insert_id;
    }
    conn.synced = Some((session.id, session.version));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SessionState {
        SessionState { id: 7, ..Default::default() }
    }

    #[test]
    fn in_sync_is_free() {
        let s = session();
        let mut c = BackendState::default();
        mark_synced(&s, &mut c, false);
        assert!(sync_plan(&s, &c, false, "utf8mb4").is_empty());
    }

    #[test]
    fn schema_and_vars_are_replayed_and_extra_vars_reset() {
        let mut s = session();
        s.set_schema(Some("app".into()));
        s.set_var("sql_mode", "sql_mode = 'ANSI'");
        let mut c = BackendState::default();
        c.vars.set("time_zone", "time_zone = '+01:00'");
        c.vars.set("names", "NAMES latin1");
        let p = sync_plan(&s, &c, false, "utf8mb4");
        assert_eq!(p.init_db.as_deref(), Some("app"));
        assert_eq!(p.set.as_deref(), Some("SET @@session.time_zone = DEFAULT, NAMES utf8mb4, sql_mode = 'ANSI'"));
        mark_synced(&s, &mut c, false);
        assert!(sync_plan(&s, &c, false, "utf8mb4").is_empty());
        // Another session with the same state still compares by value.
        let mut other = s.clone();
        other.id = 8;
        assert!(sync_plan(&other, &c, false, "utf8mb4").is_empty());
    }

    #[test]
    fn insert_id_only_when_needed() {
        let mut s = session();
        s.last_insert_id = 42;
        let mut c = BackendState::default();
        mark_synced(&s, &mut c, false);
        assert!(sync_plan(&s, &c, false, "x").is_empty());
        assert_eq!(sync_plan(&s, &c, true, "x").set.as_deref(), Some("SET last_insert_id = 42"));
    }

    #[test]
    fn a_session_without_schema_makes_the_connection_forget_its_own() {
        let s = session();
        let c = BackendState { schema: Some("x".into()), ..Default::default() };
        let p = sync_plan(&s, &c, false, "x");
        assert!(p.forget_schema && p.init_db.is_none() && !p.is_empty());
        // Another session's schema is simply replaced.
        let mut s = session();
        s.set_schema(Some("y".into()));
        assert_eq!(sync_plan(&s, &c, false, "x").init_db.as_deref(), Some("y"));
    }
}
