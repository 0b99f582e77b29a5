//! The records of one group commit as they go to disk: a header per record, built here,
//! and the payload it describes, left where the caller put it.
//!
//! The writer hands headers and payloads, interleaved, to one vectored write (`writev`),
//! so the payload bytes are copied once — by the kernel, into the page cache — instead of
//! first into a batch buffer and then into the page cache. The checksum of each record is
//! computed in the same pass that builds its header ([`record::encode_header`]).
//!
//! Pure: building, the pre-write check and the I/O slices; `writer.rs` does the write.
//!
//! # The pre-write check
//!
//! [`Batch::check`] is the first half of the paired check (every read is the second half):
//! each header announces exactly the length of the payload written beside it and only known
//! flags, the LSNs run densely over the range the writer assigned, and terms do not go down.
//! It does not recompute the checksums: they were computed moments earlier, by the same
//! code, from the very header and payload slices that are written (the payload is an
//! immutable `Bytes`), so a second crc32c pass over every byte (9 % of the writer's time at
//! 4 MiB batches) could only disagree if memory changed under us — which the read-side
//! check reports as corruption anyway. That the encoder's checksum matches what the decoder
//! computes is proven by the `record` tests, and debug builds (all tests, the kill -9 test
//! included) also decode the whole batch, checksums and all, before writing it.

use std::io::IoSlice;

use bytes::Bytes;

use super::record::{self, Prepared, RECORD_HEADER_BYTES};
use super::{Lsn, Term};

/// One group commit's records, in LSN order.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The framed header of each record, checksum filled in.
    heads: Vec<[u8; RECORD_HEADER_BYTES]>,
    /// The stored payload of each record, not copied (`heads[i]` describes `payloads[i]`).
    payloads: Vec<Bytes>,
    /// Header plus payload bytes of all records: how far the write extends the segment.
    bytes: u64,
}

impl Batch {
    /// Frames `rec` as record `lsn` at the end of the batch.
    pub fn push(&mut self, lsn: Lsn, rec: Prepared) {
        self.bytes += rec.encoded_bytes() as u64;
        self.heads.push(record::encode_header(lsn, &rec));
        self.payloads.push(rec.stored);
    }

    /// Bytes the batch adds to the segment.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Empties the batch, releasing the payloads, keeping the capacity.
    pub fn clear(&mut self) {
        self.heads.clear();
        self.payloads.clear();
        self.bytes = 0;
    }

    /// The batch in disk order: header, payload, header, payload, ...
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        let mut slices = Vec::with_capacity(2 * self.heads.len());
        for (head, stored) in self.heads.iter().zip(&self.payloads) {
            slices.push(IoSlice::new(head));
            slices.push(IoSlice::new(stored));
        }
        slices
    }

    /// The pre-write check (see the module doc): headers match their payloads and flags are
    /// known, LSNs run `first..end` densely, terms never fall below `min_term`.
    pub fn check(&self, first: Lsn, end: Lsn, min_term: Term) -> Result<(), String> {
        if self.heads.len() != self.payloads.len() {
            return Err(format!("{} headers for {} payloads", self.heads.len(), self.payloads.len()));
        }
        let mut expected = first;
        let mut term = min_term;
        let mut bytes = 0u64;
        for (head, stored) in self.heads.iter().zip(&self.payloads) {
            let h = record::parse_header(head);
            if h.stored_bytes() != Some(stored.len()) {
                return Err(format!("record {} announces length {} for {} payload bytes", h.lsn, h.len, stored.len()));
            }
            if !h.flags_known() {
                return Err(format!("record {} has unknown flag bits {:#04x}", h.lsn, h.flags));
            }
            if h.lsn != expected {
                return Err(format!("LSN {} where {expected} was expected", h.lsn));
            }
            if h.term < term {
                return Err(format!("term {} after term {term}", h.term));
            }
            term = h.term;
            expected += 1;
            bytes += (RECORD_HEADER_BYTES + stored.len()) as u64;
        }
        if expected != end {
            return Err(format!("batch ends at LSN {expected} but {end} was assigned"));
        }
        if bytes != self.bytes {
            return Err(format!("records add up to {bytes} bytes but the batch counted {}", self.bytes));
        }
        #[cfg(debug_assertions)]
        self.decode_all(first, end, min_term)?;
        Ok(())
    }

    /// Debug builds: decodes the batch exactly as a reader will, checksums included.
    #[cfg(debug_assertions)]
    fn decode_all(&self, first: Lsn, end: Lsn, min_term: Term) -> Result<(), String> {
        use super::record::Decode;
        let mut buf = Vec::with_capacity(self.bytes as usize);
        for slice in self.io_slices() {
            buf.extend_from_slice(&slice);
        }
        let (mut pos, mut expected, mut term) = (0, first, min_term);
        while pos < buf.len() {
            match record::decode(&buf[pos..]) {
                Decode::Record(r) if r.lsn == expected && r.term >= term => {
                    term = r.term;
                    expected += 1;
                    pos += r.total;
                }
                other => return Err(format!("frame at {pos} (LSN {expected} expected): {other:?}")),
            }
        }
        if expected != end {
            return Err(format!("batch decodes to LSNs {first}..{expected} but {first}..{end} was assigned"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::record::{prepare, Decode, NewRecord};

    fn batch(first: Lsn, n: u64) -> Batch {
        let mut b = Batch::default();
        for lsn in first..first + n {
            let payload = crate::wal::testkit::incompressible((lsn * 37 % 300) as usize, lsn);
            b.push(lsn, prepare(NewRecord::new(2, 1, payload), 1024, 64).unwrap());
        }
        b
    }

    #[test]
    fn written_slices_decode_to_the_records() {
        let b = batch(10, 20);
        assert_eq!(b.check(10, 30, 1), Ok(()));
        let bytes: Vec<u8> = b.io_slices().iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(bytes.len() as u64, b.bytes());
        let mut pos = 0;
        for lsn in 10..30 {
            match record::decode(&bytes[pos..]) {
                Decode::Record(r) => {
                    assert_eq!((r.lsn, r.term, r.kind), (lsn, 2, 1));
                    assert_eq!(
                        r.payload().unwrap(),
                        crate::wal::testkit::incompressible((lsn * 37 % 300) as usize, lsn)
                    );
                    pos += r.total;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(pos, bytes.len());
    }

    #[test]
    fn check_refuses_gaps_term_regressions_and_length_mismatches() {
        let b = batch(10, 5);
        assert!(b.check(11, 15, 1).unwrap_err().contains("LSN 10 where 11"));
        assert!(b.check(10, 16, 1).unwrap_err().contains("assigned"));
        assert!(b.check(10, 15, 3).unwrap_err().contains("term 2 after term 3"));
        let mut wrong_len = batch(10, 5);
        wrong_len.payloads[2] = Bytes::from_static(b"not the payload the header describes");
        assert!(wrong_len.check(10, 15, 1).unwrap_err().contains("announces length"));
        let mut bad_flags = batch(10, 5);
        bad_flags.heads[4][25] |= 0x80;
        assert!(bad_flags.check(10, 15, 1).unwrap_err().contains("flag"));
    }
}
