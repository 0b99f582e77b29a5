//! Follower side of replication: committed log entries applied to the local MariaDB in
//! log order, exactly once (`../docs/replication.md`).
