//! Backend connections: raw MariaDB connections ([`conn`]), pooled per
//! (backend, user, session capabilities, collation) with bb8 ([`pool`]), pipes that carry
//! many sessions' plain reads on a shared connection ([`pipeline`]), and the account
//! directory shoal authenticates clients against ([`users`]).

pub mod conn;
pub mod health;
pub mod pipeline;
pub mod pool;
pub mod users;
