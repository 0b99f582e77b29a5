//! Backend connections: raw MariaDB connections ([`conn`]), a bb8 pool of them
//! ([`pool`]), pipes that carry many sessions' plain reads on a shared connection
//! ([`pipeline`]), the pools of a proxy per (backend, user, session capabilities,
//! collation) with their pipes ([`pools`]), and the account directory shoal
//! authenticates clients against ([`users`]); TLS to the servers is [`tls`].
//!
//! Within the folder: `conn` ← `pool` ← `pipeline` ← `pools` (each uses only those to its
//! left).

pub mod conn;
pub mod health;
pub mod pipeline;
pub mod pool;
pub mod pools;
pub mod tls;
pub mod users;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One unit of a counter, given back on drop.
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Counted {
    /// Takes a unit, unconditionally.
    pub(crate) fn add(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(counter.clone())
    }

    /// Takes a unit if fewer than `max` are taken.
    pub(crate) fn try_add(counter: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Counted(counter.clone()))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
