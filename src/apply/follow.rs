//! Drivers that feed an [`Applier`]: [`catch_up`] applies what a WAL holds (startup,
//! tests, the bench); [`follow`] applies what arrives on a channel (the coordinator sends
//! each committed entry, in LSN order). Both batch what is at hand and retry a lost
//! connection for [`CONNECTION_RETRY_FOR`].

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::wal::{Lsn, Wal};

use super::{Applier, ApplyError, Committed};

/// Entries handed to one [`Applier::apply`] call, at most.
pub const READ_ENTRIES_MAX: usize = 4 * super::TXN_ENTRIES_MAX;
/// Encoded entry bytes handed to one [`Applier::apply`] call, at most (one larger entry
/// still goes alone).
pub const READ_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Wait between attempts while the local MariaDB is unreachable.
pub const CONNECTION_RETRY_DELAY: Duration = Duration::from_millis(200);
/// How long a batch is retried while the local MariaDB is unreachable before the
/// connection error is returned.
pub const CONNECTION_RETRY_FOR: Duration = Duration::from_secs(300);

/// Applies the entries `wal` holds above the applier's applied LSN, through `through`
/// (e.g. the commit point, `wal.meta().commit`). Stops early where the WAL ends. Returns
/// the applied LSN. WAL reads are local file reads of at most [`READ_BYTES_MAX`] between
/// two applies.
pub async fn catch_up(applier: &mut Applier, wal: &Wal, through: Lsn) -> Result<Lsn, ApplyError> {
    let from = applier.applied_lsn().await? + 1;
    if from > through {
        return applier.applied_lsn().await;
    }
    // From exactly the next entry: a purged gap is an error (`WalError::Purged`), never
    // skipped; such a node needs a snapshot.
    let mut reader = wal.reader(from)?;
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while reader.next_lsn() <= through && batch.len() < READ_ENTRIES_MAX && bytes < READ_BYTES_MAX {
            let Some(rec) = reader.try_next()? else { break };
            bytes += rec.payload.len();
            if let Some(c) = Committed::from_record(&rec)? {
                batch.push(c);
            }
        }
        if batch.is_empty() {
            break;
        }
        apply_retrying(applier, &batch).await?;
    }
    applier.applied_lsn().await
}

/// Applies every entry received on `rx` until the channel closes; returns the applied LSN.
/// Entries queued together are applied together (up to [`READ_ENTRIES_MAX`] /
/// [`READ_BYTES_MAX`]). The sender must send in strictly increasing LSN order; entries at
/// or below the applied LSN are skipped, so re-sending after a restart is harmless.
pub async fn follow(applier: &mut Applier, mut rx: mpsc::Receiver<Committed>) -> Result<Lsn, ApplyError> {
    while let Some(first) = rx.recv().await {
        let mut bytes = first.entry.encoded_len();
        let mut batch = vec![first];
        while batch.len() < READ_ENTRIES_MAX && bytes < READ_BYTES_MAX {
            match rx.try_recv() {
                Ok(c) => {
                    bytes += c.entry.encoded_len();
                    batch.push(c);
                }
                Err(_) => break,
            }
        }
        apply_retrying(applier, &batch).await?;
    }
    applier.applied_lsn().await
}

/// [`Applier::apply`], again after [`CONNECTION_RETRY_DELAY`] while the error is
/// retry-safe, for at most [`CONNECTION_RETRY_FOR`].
pub(crate) async fn apply_retrying(applier: &mut Applier, batch: &[Committed]) -> Result<Lsn, ApplyError> {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        match applier.apply(batch).await {
            Err(e) if e.retry_safe() && started.elapsed() < CONNECTION_RETRY_FOR => {
                attempts += 1;
                if attempts == 1 || attempts % 50 == 0 {
                    tracing::warn!(error = %e, attempts, "applying waits for the local MariaDB");
                }
                tokio::time::sleep(CONNECTION_RETRY_DELAY).await;
            }
            other => return other,
        }
    }
}
