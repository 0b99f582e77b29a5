//! The operations face: the HTTP API ([`api`]), the server table behind `/health` and
//! `shoal servers` ([`health`]), and the small HTTP client the CLI uses ([`client`]).

pub mod api;
pub mod client;
pub mod health;
