//! shoal: a MySQL/MariaDB wire-protocol proxy with built-in replication.
//!
//! # Layout
//!
//! * [`protocol`] — packets, handshake, auth, command decode, response framing (codec only).
//! * [`frontend`] — listener, per-client loop, limits, TLS.
//! * [`session`] — session state, pinning rules, prepared-statement map (pure).
//! * [`classify`] — tokenizer, digest, statement kind (pure).
//! * [`backend`] — pooled raw backend connections and the relay.
//! * [`wal`] — segments, records, writer, reader, recovery.
//! * [`config`] — the TOML configuration and its validation.
//! * [`cli`] — the clap command line.
//! * [`error`] — error types and their translation to MySQL error packets.

pub mod classify;
pub mod wal;
