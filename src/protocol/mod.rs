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
/// Command bytes (first payload byte).
pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0C;
    pub const PING: u8 = 0x0E;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1A;
    pub const SET_OPTION: u8 = 0x1B;
    pub const STMT_FETCH: u8 = 0x1C;
    pub const RESET_CONNECTION: u8 = 0x1F;
}
pub mod framer;
pub mod handshake;
pub mod packet;
pub mod proxy_header;
pub mod reply;
pub mod stmt;

#[cfg(test)]
mod fuzz;

pub use mysql_common::constants::{CapabilityFlags, Command, StatusFlags};
