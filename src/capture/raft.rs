//! [`RaftDurable`]: durability = committed by the cluster's Raft log (a quorum has the
//! entry fsynced). Proposals are submitted from one task, in call order, so the log
//! holds them in binlog order; their commits are awaited concurrently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::coordinator::{Durable, Proposal};
use crate::cluster::log_store::lsn_of;
use crate::cluster::node::{Node, Submitted};
use crate::cluster::ClusterError;

/// Pause between submissions while the leader holds no quorum's lease.
pub const NO_QUORUM_RETRY: Duration = Duration::from_millis(50);

/// Proposals queued for submission, at most (the coordinator proposes in binlog order;
/// sessions wait behind it).
pub const SUBMIT_QUEUE_MAX: usize = 4096;

type Submission = (Vec<u8>, oneshot::Sender<Result<Submitted, String>>);

/// [`Durable`] over a Raft node (the leader's).
pub struct RaftDurable {
    submit: mpsc::Sender<Submission>,
}

impl RaftDurable {
    /// Proposals go to `node`'s log; the submitting task ends with the last clone (and
    /// keeps no hold on the node: shutdown can take it). While the leader holds no
    /// quorum's lease an entry is not submitted (so it can never commit later) and the
    /// submission is retried for up to `write_timeout` (`[cluster] write_timeout_ms`),
    /// then refused: the transaction is rolled back.
    pub fn new(node: &Arc<Node>, write_timeout: Duration) -> Self {
        let (tx, mut rx) = mpsc::channel::<Submission>(SUBMIT_QUEUE_MAX);
        let node = Arc::downgrade(node);
        tokio::spawn(async move {
            while let Some((entry, reply)) = rx.recv().await {
                let deadline = Instant::now() + write_timeout;
                let r = loop {
                    let Some(n) = node.upgrade() else { break Err("the Raft node stopped".to_string()) };
                    match n.submit(entry.clone()).await {
                        Err(ClusterError::NoQuorum { .. }) if Instant::now() + NO_QUORUM_RETRY < deadline => {
                            drop(n);
                            tokio::time::sleep(NO_QUORUM_RETRY).await;
                        }
                        Err(e @ ClusterError::NoQuorum { .. }) => {
                            break Err(format!(
                                "{e} (waited [cluster] write_timeout_ms = {} ms)",
                                write_timeout.as_millis()
                            ))
                        }
                        r => break r.map_err(|e| e.to_string()),
                    }
                };
                let _ = reply.send(r);
            }
        });
        RaftDurable { submit: tx }
    }
}

impl Durable for RaftDurable {
    fn propose(&self, entry: Vec<u8>) -> Proposal {
        let (tx, rx) = oneshot::channel();
        // Queued now, in call order (`try_send`: the order is fixed at this call).
        let queued = self.submit.try_send((entry, tx));
        Box::pin(async move {
            queued.map_err(|e| format!("the Raft submission queue refused the entry: {e}"))?;
            let submitted = rx.await.map_err(|_| "the Raft submitter stopped".to_string())??;
            submitted.await.map(|(id, _)| lsn_of(id.index)).map_err(|e| e.to_string())
        })
    }
}
