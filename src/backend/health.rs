//! The health checker: one task per server, every `health_interval_ms`, with the service
//! account. It reads reachability, `read_only`, `gtid_current_pos` and, on replicas,
//! `SHOW SLAVE STATUS`, then publishes a new [`RoutingTable`] when anything changed.
//!
//! | observation | effect |
//! |---|---|
//! | check failed `failures_before_down` times in a row | `Down` (no statements routed) |
//! | check passed `successes_before_up` times in a row | `Up` |
//! | replica: IO or SQL thread not running, or `Seconds_Behind_Master` NULL | lag unknown: no reads |
//! | replica: `Seconds_Behind_Master` = s | `lag_ms = 1000·s` |
//! | any: `@@gtid_current_pos` | position used for read-your-writes |
//! | a cluster node's own MariaDB (`follows_log`) | health only: its lag and position come from the cluster |

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mysql_async::prelude::Queryable;

use crate::backend::users::ServiceAccount;
use crate::config::RoutingSection;
use crate::route::{GtidPos, Health, Role, RoutingTable, Server};

/// What one check saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@gtid_current_pos`.
    pub gtid: GtidPos,
    /// Replication lag; `None` when unknown (replication stopped or not a replica).
    pub lag_ms: Option<u64>,
}

/// Counters behind the up/down decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct Streak {
    failures: u32,
    successes: u32,
}

/// The up/down rule: a pure step function over check results.
pub fn next_health(current: Health, streak: &mut Streak, ok: bool, s: &RoutingSection) -> Health {
    if ok {
        streak.successes += 1;
        streak.failures = 0;
        if current == Health::Down && streak.successes >= s.successes_before_up {
            return Health::Up;
        }
    } else {
        streak.failures += 1;
        streak.successes = 0;
        if current == Health::Up && streak.failures >= s.failures_before_down {
            return Health::Down;
        }
    }
    current
}

async fn observe(conn: &mut mysql_async::Conn, role: Role) -> Result<Observation, mysql_async::Error> {
    let (read_only, gtid): (i64, String) =
        conn.query_first("SELECT @@read_only, @@gtid_current_pos").await?.unwrap_or((0, String::new()));
    let mut lag_ms = if role == Role::Leader { Some(0) } else { None };
    if role.serves_reads() {
        let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await?;
        if let Some(row) = row {
            let io: Option<String> = row.get("Slave_IO_Running");
            let sql: Option<String> = row.get("Slave_SQL_Running");
            let behind: Option<Option<u64>> = row.get("Seconds_Behind_Master");
            if io.as_deref() == Some("Yes") && sql.as_deref() == Some("Yes") {
                lag_ms = behind.flatten().map(|s| s * 1000);
            }
        }
    }
    Ok(Observation { read_only: read_only != 0, gtid: GtidPos::parse(&gtid), lag_ms })
}

fn opts(addr: &str, svc: &ServiceAccount, timeout: Duration) -> mysql_async::Opts {
    crate::backend::users::client_opts(addr, &svc.user, &svc.password, &svc.tls)
        .conn_ttl(None)
        .wait_timeout(Some(timeout.as_secs().max(60) as usize))
        .into()
}

/// One server's checker state.
struct Checker {
    id: usize,
    addr: String,
    /// The server's role at the last look at the table: whoever owns the topology may
    /// change it at any time, and it decides what is checked (lag only on followers).
    role: Role,
    conn: Option<mysql_async::Conn>,
    streak: Streak,
}

impl Checker {
    async fn check(&mut self, svc: &ServiceAccount, timeout: Duration) -> Result<Observation, String> {
        let work = async {
            if self.conn.is_none() {
                self.conn = Some(mysql_async::Conn::new(opts(&self.addr, svc, timeout)).await?);
            }
            observe(self.conn.as_mut().expect("connected above"), self.role).await
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => {
                self.conn = None;
                let e = e.to_string();
                Err(match svc.tls.service_hint(&e) {
                    Some(hint) => format!("{e}; {hint}"),
                    None => e,
                })
            }
            Err(_) => {
                self.conn = None;
                Err(format!("no answer within {} ms", timeout.as_millis()))
            }
        }
    }
}

/// Applies one check's result to a server entry; returns whether routing changed.
pub fn apply(server: &mut Server, health: Health, result: &Result<Observation, String>) -> bool {
    let before = (server.health, server.lag_ms, server.gtid.clone(), server.last_error.clone());
    server.health = health;
    match result {
        Ok(o) => {
            if !server.follows_log {
                server.lag_ms = o.lag_ms;
            }
            server.gtid = o.gtid.clone();
            server.last_error = None;
        }
        Err(e) => {
            if !server.follows_log {
                server.lag_ms = None;
            }
            server.last_error = Some(e.clone());
        }
    }
    before != (server.health, server.lag_ms, server.gtid.clone(), server.last_error.clone())
}

/// Checks every server once now (so the first table reflects reality), then keeps checking
/// in the background.
pub async fn start(table: Arc<ArcSwap<RoutingTable>>, svc: Option<ServiceAccount>, settings: RoutingSection) {
    let Some(svc) = svc else {
        // No service account: nothing can be checked; every server stays Up and errors
        // surface on use.
        return;
    };
    let timeout = Duration::from_millis(settings.health_timeout_ms);
    let mut checkers: Vec<Checker> = table
        .load()
        .servers
        .iter()
        .map(|s| Checker { id: s.id, addr: s.addr.to_string(), role: s.role, conn: None, streak: Streak::default() })
        .collect();
    // First round: the result decides health directly.
    let mut t = (**table.load()).clone();
    for c in &mut checkers {
        let r = c.check(&svc, timeout).await;
        let health = if r.is_ok() { Health::Up } else { Health::Down };
        apply(&mut t.servers[c.id], health, &r);
    }
    t.version += 1;
    table.store(Arc::new(t));
    for mut c in checkers {
        // Weak: the checkers stop when the proxy generation owning the table is gone (reload).
        let weak = Arc::downgrade(&table);
        let svc = svc.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(settings.health_interval_ms));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(table) = weak.upgrade() else { return };
                c.role = table.load().servers[c.id].role;
                let r = c.check(&svc, timeout).await;
                let current = table.load().servers[c.id].health;
                let health = next_health(current, &mut c.streak, r.is_ok(), &settings);
                if health != current {
                    tracing::warn!(server = %c.addr, from = ?current, to = ?health, error = ?r.as_ref().err(), "server health changed");
                }
                // Read-modify-write of the whole table; checkers of different servers
                // only touch their own entry, so a lost update is retried by rcu.
                table.rcu(|old| {
                    let mut t = (**old).clone();
                    if apply(&mut t.servers[c.id], health, &r) {
                        t.version += 1;
                    }
                    t
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_down_needs_streaks() {
        let s = RoutingSection { failures_before_down: 2, successes_before_up: 3, ..Default::default() };
        let mut st = Streak::default();
        let mut h = Health::Up;
        h = next_health(h, &mut st, false, &s);
        assert_eq!(h, Health::Up, "one failure is not enough");
        h = next_health(h, &mut st, true, &s);
        h = next_health(h, &mut st, false, &s);
        assert_eq!(h, Health::Up, "a success in between resets the streak");
        h = next_health(h, &mut st, false, &s);
        assert_eq!(h, Health::Down);
        for _ in 0..2 {
            h = next_health(h, &mut st, true, &s);
            assert_eq!(h, Health::Down);
        }
        h = next_health(h, &mut st, true, &s);
        assert_eq!(h, Health::Up);
    }
}
