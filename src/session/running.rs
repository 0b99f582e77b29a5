//! Statements in progress, counted by guards: shutdown waits for the count to reach zero
//! (drain), and `/status` and `shoal_statements_running` report it.
//!
//! A statement counts from the moment shoal starts on it until its whole response is
//! written to the client — by the session, or by the pipe that writes a pipelined read's
//! response itself — because the guard travels with the statement's timer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The statements of one proxy generation.
#[derive(Debug, Default)]
pub struct Statements {
    /// Guards alive.
    count: AtomicUsize,
    /// Woken when the count drops to zero.
    idle: tokio::sync::Notify,
}

impl Statements {
    /// Counts a statement until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> Running {
        self.count.fetch_add(1, Ordering::Relaxed);
        Running(self.clone())
    }

    /// Statements running now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until no statement runs or `deadline` passes; true when none runs.
    pub async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            // Registered before the check, so a drop to zero in between still wakes us.
            let woken = self.idle.notified();
            if self.count() == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, woken).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

/// One statement in progress (see [`Statements`]).
#[derive(Debug)]
#[must_use = "the statement counts as running until this guard is dropped"]
pub struct Running(Arc<Statements>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn drain_waits_for_the_last_guard() {
        let s = Arc::new(Statements::default());
        let a = s.start();
        let b = s.start();
        assert_eq!(s.count(), 2);
        assert!(!s.wait_idle(Instant::now() + Duration::from_millis(20)).await, "two still run");
        drop(a);
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.wait_idle(Instant::now() + Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one still runs");
        drop(b);
        assert!(waiter.await.unwrap(), "woken when the last one ended");
        assert_eq!(s.count(), 0);
    }
}
