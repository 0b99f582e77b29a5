//! The operations face: the HTTP API ([`api`]), the server table behind `/health` and
//! `shoal servers` ([`health`]), what the API and the process wiring share ([`state`]),
//! the WolfScale write endpoints ([`mod@write`]), the MariaDB dump behind `shoal migrate`
//! ([`dump`]), and the small HTTP client the CLI uses ([`client`]).

pub mod api;
pub mod client;
pub mod dump;
pub mod health;
pub mod state;
pub mod write;
