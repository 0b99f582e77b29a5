//! [`RaftDurable`]: durability = committed by the cluster's Raft log (a quorum has the
//! entry fsynced). Proposals are submitted from one task, in call order, so the log
//! holds them in binlog order; their commits are awaited concurrently.
//!
//! # Group commit
//!
//! openraft 0.9 appends and fsyncs each log entry on its own (the core awaits every
//! flush), so one entry per transaction caps the leader at one fsync per transaction.
//! Captured transactions are therefore proposed together: while
//! [`BATCHES_IN_FLIGHT_MAX`] proposals are still uncommitted, the transactions that arrive
//! queue up, and the next proposal takes all of them (up to [`BATCH_ENTRIES_MAX`] /
//! [`BATCH_BYTES_MAX`]) as one [`crate::capture::Entry::Batch`]; every one of them gets
//! that entry's LSN. Statements (DDL) and unmanaged rows are always proposed alone.
//!
//! | queued when a proposal is sent | proposed as |
//! |---|---|
//! | one entry, or a statement / unmanaged rows first | that entry alone |
//! | captured rows entries with one Format_description | one batch of them (the next one that is not batchable waits for the next proposal) |

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::coordinator::{Durable, NotDurable, Proposal};
use super::entry::{batchable, encode_batch, format_of};
use crate::cluster::log_store::lsn_of;
use crate::cluster::node::Node;
use crate::cluster::ClusterError;

/// Proposals queued for submission, at most (the coordinator proposes in binlog order;
/// sessions wait behind it).
pub const SUBMIT_QUEUE_MAX: usize = 4096;
/// Pause between submissions while the leader holds no quorum's lease.
pub const NO_QUORUM_RETRY: Duration = Duration::from_millis(50);
/// Uncommitted proposals at once; more transactions wait and go into the next batch. One:
/// openraft appends and replicates entries one after another anyway, so a second proposal
/// in flight only makes both batches smaller (write_only at 8 threads through the leader:
/// 471 TPS with 2, 620 with 1; docs/benchmarks.md).
pub const BATCHES_IN_FLIGHT_MAX: usize = 1;
/// Transactions per batch entry, at most (below the applier's 512 per transaction).
pub const BATCH_ENTRIES_MAX: usize = 256;
/// Bytes of a batch entry, at most (a replication read carries about 4 MiB).
pub const BATCH_BYTES_MAX: usize = 4 << 20;

type Submission = (Vec<u8>, oneshot::Sender<Result<u64, NotDurable>>);

/// [`Durable`] over a Raft node (the leader's).
pub struct RaftDurable {
    submit: mpsc::Sender<Submission>,
}

/// Takes the next proposal from `rx`: `first` and whatever batchable entries are queued
/// behind it (module table).
fn take_batch(
    first: Submission,
    rx: &mut mpsc::Receiver<Submission>,
    held: &mut Option<Submission>,
) -> Vec<Submission> {
    let mut batch = vec![first];
    if !batchable(&batch[0].0) {
        return batch;
    }
    let format = format_of(&batch[0].0).map(<[u8]>::to_vec);
    let mut bytes = batch[0].0.len();
    while batch.len() < BATCH_ENTRIES_MAX {
        let Ok(next) = rx.try_recv() else { break };
        if !batchable(&next.0) || format_of(&next.0) != format.as_deref() || bytes + next.0.len() > BATCH_BYTES_MAX {
            *held = Some(next);
            break;
        }
        bytes += next.0.len();
        batch.push(next);
    }
    batch
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
            let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
            let mut held: Option<Submission> = None;
            loop {
                let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
                let first = match held.take() {
                    Some(s) => s,
                    None => match rx.recv().await {
                        Some(s) => s,
                        None => return,
                    },
                };
                let (mut entries, replies): (Vec<_>, Vec<_>) =
                    take_batch(first, &mut rx, &mut held).into_iter().unzip();
                metrics::histogram!(crate::metrics::CAPTURE_BATCH_ENTRIES).record(entries.len() as f64);
                let command = match entries.len() {
                    1 => entries.pop().expect("one entry"),
                    _ => encode_batch(&entries),
                };
                let deadline = Instant::now() + write_timeout;
                let mut term = 0;
                let submitted = loop {
                    let Some(n) = node.upgrade() else { break Err("the Raft node stopped".to_string()) };
                    // Submitted only while this node leads, and the term it leads in is
                    // the entry's (if it is appended at all): an orphan of that term is
                    // ruled out by any later term's entry. A term read while following
                    // would be one this node never appended in, and an orphan of it would
                    // wait for the term after.
                    let (state, current) = {
                        let m = n.raft().metrics();
                        let m = m.borrow();
                        (m.state, m.current_term)
                    };
                    if state != openraft::ServerState::Leader {
                        break Err(format!(
                            "node {} is not the leader (it is {state:?}); send writes to the leader",
                            n.id()
                        ));
                    }
                    term = current;
                    match n.submit(command.clone()).await {
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
                tokio::spawn(async move {
                    // Taken by the log, then lost: only the log can tell (`NotDurable::Unknown`).
                    let r = match submitted {
                        Ok(done) => done
                            .await
                            .map(|(id, _)| lsn_of(id.index))
                            .map_err(|e| NotDurable::Unknown { why: e.to_string(), term }),
                        Err(e) => Err(NotDurable::Refused(e)),
                    };
                    drop(permit);
                    for reply in replies {
                        let _ = reply.send(r.clone());
                    }
                });
            }
        });
        RaftDurable { submit: tx }
    }
}

impl Durable for RaftDurable {
    fn runs_statements(&self) -> bool {
        true
    }

    fn propose(&self, entry: Vec<u8>) -> Proposal {
        let (tx, rx) = oneshot::channel();
        // Queued now, in call order (`try_send`: the order is fixed at this call).
        let queued = self.submit.try_send((entry, tx));
        Box::pin(async move {
            queued.map_err(|e| format!("the Raft submission queue refused the entry: {e}"))?;
            // The submitter drops a reply unsent only when it stops (the capture ended)
            // with the entry still queued: never submitted.
            rx.await.map_err(|_| "the Raft submitter stopped before submitting the entry".to_string())?
        })
    }
}
