//! Reads a MariaDB binlog file raw and groups its row events the way the capture tail
//! does (`capture::RowsEntry`): per transaction, per SQL statement (Table_map events then
//! row events up to the one flagged STMT_END_F). For tests and the apply bench, which
//! build log entries from a real leader's binlog while the tail is written elsewhere.
//!
//! File layout: 4-byte magic `\xfebin`, then events; each starts with a 19-byte header
//! (timestamp 4, type 1, server id 4, event length 4, next position 4, flags 2). Rows
//! events have a 6-byte table id then 2 bytes of flags after the header.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"\xfebin";
const HEADER_BYTES: usize = 19;
const FORMAT_DESCRIPTION: u8 = 15;
const XID: u8 = 16;
const TABLE_MAP: u8 = 19;
const GTID: u8 = 162;
/// Write/Update/Delete rows v1, v2, and MariaDB's compressed variants.
const ROWS: [u8; 12] = [23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171];
const STMT_END_F: u16 = 0x0001;

/// One transaction with row events.
#[derive(Debug, Clone)]
pub struct Txn {
    /// The Format_description event of its file.
    pub format: Vec<u8>,
    /// One entry per SQL statement: Table_map events and row events, raw.
    pub statements: Vec<Vec<u8>>,
}

/// The binlog files `<datadir>/<base>.NNNNNN`, oldest first.
pub fn files(datadir: &Path, base: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(datadir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.strip_prefix(&format!("{base}."))
                .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    out.sort();
    out
}

/// Every transaction with row events in the binlog files of `datadir`, in binlog order.
pub fn transactions(datadir: &Path, base: &str) -> Vec<Txn> {
    let mut out = Vec::new();
    for f in files(datadir, base) {
        read_file(&std::fs::read(&f).unwrap(), &mut out);
    }
    out
}

fn read_file(bytes: &[u8], out: &mut Vec<Txn>) {
    assert_eq!(&bytes[..4], MAGIC, "not a binlog file");
    let mut at = 4;
    let mut format = Vec::new();
    let mut statements: Vec<Vec<u8>> = Vec::new();
    let mut stmt: Vec<u8> = Vec::new();
    let flush = |format: &Vec<u8>, statements: &mut Vec<Vec<u8>>, out: &mut Vec<Txn>| {
        if !statements.is_empty() {
            out.push(Txn { format: format.clone(), statements: std::mem::take(statements) });
        }
    };
    while at + HEADER_BYTES <= bytes.len() {
        let kind = bytes[at + 4];
        let len = u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap()) as usize;
        if len < HEADER_BYTES || at + len > bytes.len() {
            break; // still being written
        }
        let ev = &bytes[at..at + len];
        match kind {
            FORMAT_DESCRIPTION => format = ev.to_vec(),
            GTID | XID => flush(&format, &mut statements, out),
            TABLE_MAP => stmt.extend_from_slice(ev),
            k if ROWS.contains(&k) => {
                stmt.extend_from_slice(ev);
                let flags = u16::from_le_bytes([ev[HEADER_BYTES + 6], ev[HEADER_BYTES + 7]]);
                if flags & STMT_END_F != 0 {
                    statements.push(std::mem::take(&mut stmt));
                }
            }
            _ => {}
        }
        at += len;
    }
    flush(&format, &mut statements, out);
}
