//! Cluster consensus: openraft 0.9 over shoal's WAL.
//!
//! # Layout
//!
//! * `types.rs` — [`TypeConfig`], node ids and the name → id mapping ([`node_id_from_name`]).
//! * `log_store.rs` — [`WalLogStore`]: openraft's log storage over [`crate::wal::Wal`].
//! * `state_machine.rs` — [`StateMachine`] over the [`Applier`] trait, snapshots kept in the WAL's
//!   metadata; [`Recorder`] for tests, [`Discard`] for a node without a MariaDB applier.
//! * `network.rs` — peer RPCs: authenticated TCP (TLS or plain), length-prefixed MessagePack frames.
//! * `tls.rs` — mutual TLS on the cluster port: both ends' rustls settings, the name a dialer checks.
//! * `node.rs` — [`Node`]: bootstrap, restart, join, leave, the preferred-leader switchback.
//! * `observe.rs` — Raft metrics to Prometheus (`shoal_cluster_*`).
//! * `retention.rs` — snapshots and log purges within the `[wal]` limits ([`retention::purge_upto`]).
//! * `status.rs` — per-member status rows and the `shoal servers` table (pure).
//! * `settings.rs` — `[node]`/`[cluster]`/`[wal]` → [`NodeConfig`], the secret file, bootstrap peers.
//! * `tests/` — openraft's storage conformance suite, a kill -9 test of the adapter, a
//!   seeded fault simulation, userspace link forwarders, in-process clusters on 127.0.0.1.

// openraft's traits fix the error types (`StorageError`, `RPCError`: 200+ bytes); boxing
// them here would only add a conversion at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod node;
pub mod observe;
pub mod retention;
pub mod settings;
pub mod state_machine;
pub mod status;
pub mod tls;
pub mod types;

#[cfg(test)]
mod tests;

pub use log_store::WalLogStore;
pub use node::{ClusterError, Node, NodeConfig, Start};
pub use state_machine::{
    Applier, ApplyError, Discard, Dump, Recorded, Recorder, SaveSnapshot, SavedSnapshot, StateMachine,
};
pub use types::{node_id_from_name, Command, Entry, LogId, NodeId, Raft, TypeConfig};
