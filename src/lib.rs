//! shoal: a MySQL/MariaDB wire-protocol proxy with built-in replication.
//!
//! # Layout
//!
//! * [`protocol`] — packets, handshake, auth, response framing (codec only, no I/O).
//! * [`frontend`] — listener, connection phase, per-client command loop, TLS.
//! * [`session`] — session state, pinning rules, prepared-statement maps (pure).
//! * [`classify`] — tokenizer, digest, statement kind (pure).
//! * [`route`] — routing table and policy: read/write split, read-your-writes (pure).
//! * [`backend`] — raw backend connections, bb8 pools, health checks, account directory.
//! * [`capture`] — leader side of replication: XA framing, binlog tail, entry codec.
//! * [`apply`] — follower side: committed entries applied to the local MariaDB.
//! * [`wal`] — segments, records, writer, reader, recovery.
//! * [`cluster`] — consensus: openraft over the WAL, peers, membership, preferred leader.
//! * [`server`] — wiring: config → a running proxy; reload and drain.
//! * [`admin`] — HTTP API, server table, the CLI's HTTP client.
//! * [`metrics`] — Prometheus metric names and recording helpers.
//! * [`config`] — the TOML configuration and its validation.
//! * [`cli`] — the clap command line.
//! * [`error`] — error types and their translation to MySQL error packets.

pub mod admin;
pub mod apply;
pub mod backend;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod frontend;
pub mod metrics;
pub mod protocol;
pub mod route;
pub mod server;
pub mod session;
pub mod wal;

#[cfg(test)]
mod layering;
