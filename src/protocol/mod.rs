//! The MySQL client/server protocol as shoal needs it: packet framing, the handshake,
//! authentication math, error/OK packet writers and the response framer that tells the
//! relay where a backend response ends.
//!
//! # Layout
//!
//! * [`packet`] — 4-byte-header framing over byte buffers, split packets (≥ 16 MiB).
//! * [`handshake`] — server greeting, client handshake response, capability choice.
//! * [`auth`] — `mysql_native_password` verification and re-scrambling for backends.
//! * [`reply`] — OK / ERR / EOF packet writers and the OK/EOF status reader.
//! * [`framer`] — pure state machine over response packets: where a response ends.
//! * [`stmt`] — binary-protocol packet rewrites (statement ids, parameter types).
//!
//! Everything here works on byte slices and buffers; nothing touches a socket.

pub mod auth;
pub mod framer;
pub mod handshake;
pub mod packet;
pub mod reply;
pub mod stmt;

#[cfg(test)]
mod fuzz;

pub use mysql_common::constants::{CapabilityFlags, Command, StatusFlags};
