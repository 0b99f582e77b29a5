//! Writers for the packets shoal answers by itself (OK, ERR, EOF) and the reader of the
//! status flags that end a response.

use bytes::{BufMut, BytesMut};

use super::packet::{begin_packet, finish_packet, lenenc_int, put_lenenc_int};
use super::StatusFlags;

/// What an OK packet (or an EOF that replaces one) tells about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OkInfo {
    /// Rows changed by the statement.
    pub affected_rows: u64,
    /// First auto-increment value the statement generated, 0 when none.
    pub last_insert_id: u64,
    /// Server status flags (in transaction, autocommit, more results, …).
    pub status: u16,
    /// Warnings the statement raised.
    pub warnings: u16,
}

impl OkInfo {
    /// True when the server says another result follows this one.
    pub fn more_results(&self) -> bool {
        self.status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0
    }
}

/// Reads an OK packet (header 0x00, or 0xFE when it replaces EOF). Returns `None` for a
/// payload too short to be one.
pub fn parse_ok(payload: &[u8]) -> Option<OkInfo> {
    let mut at = 1;
    let (affected_rows, n) = lenenc_int(payload.get(at..)?)?;
    at += n;
    let (last_insert_id, n) = lenenc_int(payload.get(at..)?)?;
    at += n;
    let s = payload.get(at..at + 4)?;
    Some(OkInfo {
        affected_rows,
        last_insert_id,
        status: u16::from_le_bytes([s[0], s[1]]),
        warnings: u16::from_le_bytes([s[2], s[3]]),
    })
}

/// Reads an old-style EOF packet: `0xFE | warnings u16 | status u16`.
pub fn parse_eof(payload: &[u8]) -> Option<OkInfo> {
    let s = payload.get(1..5)?;
    Some(OkInfo {
        warnings: u16::from_le_bytes([s[0], s[1]]),
        status: u16::from_le_bytes([s[2], s[3]]),
        ..OkInfo::default()
    })
}

/// Rewrites the status flags of the packet that ends `frames` (whole frames with headers,
/// as relayed): an OK (`0x00`, or `0xFE` of 7+ bytes) or an old-style EOF (`0xFE`, under
/// 9 bytes); `status` maps the old flags to the new. False when the last packet is
/// neither (an ERR keeps its bytes).
pub fn patch_final_status(frames: &mut [u8], status: impl FnOnce(u16) -> u16) -> bool {
    let mut at = 0;
    let mut last = None;
    while frames.len() >= at + 4 {
        let len = frames[at] as usize | (frames[at + 1] as usize) << 8 | (frames[at + 2] as usize) << 16;
        if frames.len() < at + 4 + len {
            return false;
        }
        last = Some((at + 4, len));
        at += 4 + len;
    }
    let Some((start, len)) = last else { return false };
    let payload = &mut frames[start..start + len];
    let offset = match payload.first() {
        Some(0xFE) if len < 9 => Some(3),
        Some(0x00) | Some(0xFE) => {
            let skip = |at: usize, p: &[u8]| lenenc_int(p.get(at..)?).map(|(_, n)| at + n);
            skip(1, payload).and_then(|a| skip(a, payload))
        }
        _ => None,
    };
    let Some(o) = offset.filter(|o| o + 2 <= len) else { return false };
    let new = status(u16::from_le_bytes([payload[o], payload[o + 1]]));
    payload[o..o + 2].copy_from_slice(&new.to_le_bytes());
    true
}

/// Error code and message of an ERR packet, for logs and tests.
pub fn parse_err(payload: &[u8]) -> Option<(u16, String)> {
    if payload.first() != Some(&0xFF) || payload.len() < 3 {
        return None;
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let msg = match payload.get(3) {
        Some(b'#') => payload.get(9..).unwrap_or_default(),
        _ => &payload[3..],
    };
    Some((code, String::from_utf8_lossy(msg).into_owned()))
}

/// Appends an OK packet with sequence id `seq`; `eof_header` writes 0xFE instead of 0x00
/// (the form that ends a result set or a `COM_FIELD_LIST` under `CLIENT_DEPRECATE_EOF`).
pub fn put_ok(out: &mut BytesMut, seq: u8, ok: &OkInfo, eof_header: bool) {
    let at = begin_packet(out, seq);
    out.put_u8(if eof_header { 0xFE } else { 0x00 });
    put_lenenc_int(out, ok.affected_rows);
    put_lenenc_int(out, ok.last_insert_id);
    out.put_u16_le(ok.status);
    out.put_u16_le(ok.warnings);
    finish_packet(out, at);
}

/// Appends an old-style EOF packet.
pub fn put_eof(out: &mut BytesMut, seq: u8, status: u16) {
    let at = begin_packet(out, seq);
    out.put_u8(0xFE);
    out.put_u16_le(0);
    out.put_u16_le(status);
    finish_packet(out, at);
}

/// Appends an ERR packet: `0xFF | code | '#' sqlstate | message`.
pub fn put_err(out: &mut BytesMut, seq: u8, code: u16, sqlstate: &str, msg: &str) {
    debug_assert_eq!(sqlstate.len(), 5);
    // Messages are bounded like MariaDB's (MYSQL_ERRMSG_SIZE) so a packet stays small.
    const MSG_BYTES_MAX: usize = 512;
    let msg = &msg.as_bytes()[..msg.len().min(MSG_BYTES_MAX)];
    let at = begin_packet(out, seq);
    out.put_u8(0xFF);
    out.put_u16_le(code);
    out.put_u8(b'#');
    out.put_slice(sqlstate.as_bytes());
    out.put_slice(msg);
    finish_packet(out, at);
}

/// The rows of a one-result-set text response (raw frames with headers), each a list of
/// cells (`None` for SQL NULL); empty when the response has no result set or is cut short.
pub fn rows_of(frames: &[u8], deprecate_eof: bool) -> Vec<Vec<Option<Vec<u8>>>> {
    use super::packet::complete_frame_len;
    let mut at = 0;
    let mut payloads = std::iter::from_fn(|| {
        let n = complete_frame_len(&frames[at..])?;
        let p = &frames[at + 4..at + n];
        at += n;
        Some(p)
    });
    let mut out = Vec::new();
    let Some((columns, _)) = payloads.next().and_then(lenenc_int) else { return out };
    for _ in 0..columns {
        if payloads.next().is_none() {
            return out;
        }
    }
    if !deprecate_eof && payloads.next().is_none() {
        return out;
    }
    for row in payloads {
        if matches!(row.first(), Some(0xFE | 0xFF)) && row.len() < 0xFF_FF_FF {
            break;
        }
        let mut cells = Vec::with_capacity(columns as usize);
        let mut rest = row;
        for _ in 0..columns {
            if rest.first() == Some(&0xFB) {
                cells.push(None);
                rest = &rest[1..];
                continue;
            }
            let Some((len, used)) = lenenc_int(rest) else { return out };
            let Some(end) = usize::try_from(len).ok().and_then(|l| used.checked_add(l)) else { return out };
            let Some(cell) = rest.get(used..end) else { return out };
            cells.push(Some(cell.to_vec()));
            rest = &rest[end..];
        }
        out.push(cells);
    }
    out
}

/// The first column of the first row of a one-result-set text response (raw frames with
/// headers): `Some(None)` for SQL NULL, `None` when the response has no row.
pub fn first_value(frames: &[u8], deprecate_eof: bool) -> Option<Option<Vec<u8>>> {
    rows_of(frames, deprecate_eof).into_iter().next()?.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packet::take_packet;

    #[test]
    fn ok_round_trip() {
        let ok = OkInfo { affected_rows: 300, last_insert_id: 70000, status: 0x4002, warnings: 3 };
        let mut b = BytesMut::new();
        put_ok(&mut b, 1, &ok, false);
        let (_, p) = take_packet(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!(parse_ok(&p), Some(ok));
    }

    #[test]
    fn err_round_trip() {
        let mut b = BytesMut::new();
        put_err(&mut b, 2, 1045, "28000", "Access denied");
        let (seq, p) = take_packet(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!(seq, 2);
        assert_eq!(parse_err(&p), Some((1045, "Access denied".to_string())));
    }

    #[test]
    fn first_value_reads_one_cell() {
        use crate::protocol::packet::{put_lenenc_str, put_packet};
        for deprecate_eof in [false, true] {
            let mut b = BytesMut::new();
            put_packet(&mut b, 1, &[1]);
            put_packet(&mut b, 2, b"\x03defcolumn");
            let mut seq = 3;
            if !deprecate_eof {
                put_eof(&mut b, seq, 2);
                seq += 1;
            }
            let mut row = BytesMut::new();
            put_lenenc_str(&mut row, b"0-1-42");
            put_packet(&mut b, seq, &row);
            put_eof(&mut b, seq + 1, 2);
            assert_eq!(first_value(&b, deprecate_eof), Some(Some(b"0-1-42".to_vec())));
        }
        let mut b = BytesMut::new();
        put_packet(&mut b, 1, &[1]);
        put_packet(&mut b, 2, b"\x03def");
        put_packet(&mut b, 3, &[0xFB]);
        assert_eq!(first_value(&b, true), Some(None));
        assert_eq!(first_value(&b[..5], true), None);
    }

    #[test]
    fn short_packets_are_not_ok() {
        assert_eq!(parse_ok(&[0x00, 0x00]), None);
        assert_eq!(parse_eof(&[0xFE, 0]), None);
    }

    #[test]
    fn the_final_status_is_patched_in_ok_and_eof() {
        let ok = OkInfo { affected_rows: 300, last_insert_id: 70000, status: 0x0003, warnings: 1 };
        let mut frames = BytesMut::new();
        put_eof(&mut frames, 1, 0x0001);
        put_ok(&mut frames, 2, &ok, false);
        assert!(patch_final_status(&mut frames, |s| s & !0x0001));
        let last = &frames[9 + 4..];
        assert_eq!(parse_ok(last), Some(OkInfo { status: 0x0002, ..ok }));
        let mut eof = BytesMut::new();
        put_eof(&mut eof, 1, 0x0003);
        assert!(patch_final_status(&mut eof, |s| s & !0x0001));
        assert_eq!(parse_eof(&eof[4..]).unwrap().status, 0x0002);
        let mut err = BytesMut::new();
        put_err(&mut err, 1, 1062, "23000", "dup");
        assert!(!patch_final_status(&mut err, |_| 0));
    }
}
