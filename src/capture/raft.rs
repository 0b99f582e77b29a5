//! [`RaftDurable`]: durability = committed by the cluster's Raft log (a quorum has the
//! entry fsynced). Proposals are submitted from one task, in call order, so the log
//! holds them in binlog order; their commits are awaited concurrently.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::coordinator::{Durable, Proposal};
use crate::cluster::log_store::lsn_of;
use crate::cluster::node::{Node, Submitted};

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
    /// keeps no hold on the node: shutdown can take it).
    pub fn new(node: &Arc<Node>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Submission>(SUBMIT_QUEUE_MAX);
        let node = Arc::downgrade(node);
        tokio::spawn(async move {
            while let Some((entry, reply)) = rx.recv().await {
                let r = match node.upgrade() {
                    Some(node) => node.submit(entry).await.map_err(|e| e.to_string()),
                    None => Err("the Raft node stopped".to_string()),
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
