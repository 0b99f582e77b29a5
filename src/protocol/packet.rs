//! Packet framing: `len: u24 LE | seq: u8 | payload`.
//!
//! A payload of `PAYLOAD_MAX` bytes or more is sent as several frames; the last frame is
//! shorter than `PAYLOAD_MAX` (possibly empty). Readers here return single frames
//! ([`complete_frame_len`]) or whole logical packets ([`take_packet`]), never allocating for a
//! packet that is not complete yet: "need more bytes" is `Ok(None)`.

use bytes::{Buf, BufMut, BytesMut};

/// Largest payload one frame carries; a frame of exactly this size is continued.
pub const PAYLOAD_MAX: usize = 0xFF_FFFF;
/// Bytes in a frame header.
pub const HEADER_BYTES: usize = 4;

/// A logical packet's payload was larger than the configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("packet of at least {len} bytes exceeds the limit of {limit} bytes")]
pub struct TooLarge {
    /// Bytes seen so far (a lower bound on the packet's size).
    pub len: usize,
    /// The limit in force (`packet_bytes_max`).
    pub limit: usize,
}

/// Length and sequence id of the frame at the start of `buf`, if its header is there.
#[inline]
pub fn peek_header(buf: &[u8]) -> Option<(usize, u8)> {
    if buf.len() < HEADER_BYTES {
        return None;
    }
    let len = buf[0] as usize | (buf[1] as usize) << 8 | (buf[2] as usize) << 16;
    Some((len, buf[3]))
}

/// Total bytes (header + payload) of the first frame in `buf` if it is complete.
#[inline]
pub fn complete_frame_len(buf: &[u8]) -> Option<usize> {
    let (len, _) = peek_header(buf)?;
    (buf.len() >= HEADER_BYTES + len).then_some(HEADER_BYTES + len)
}

/// Removes one logical packet (all its frames joined) from the front of `buf`.
///
/// Returns the sequence id of its last frame and the payload. Frames of a packet that is
/// not complete yet stay in `buf`. `limit` bounds the joined payload.
pub fn take_packet(buf: &mut BytesMut, limit: usize) -> Result<Option<(u8, BytesMut)>, TooLarge> {
    // Fast path: one frame.
    let Some((len, seq)) = peek_header(buf) else { return Ok(None) };
    if len > limit {
        return Err(TooLarge { len, limit });
    }
    if len < PAYLOAD_MAX {
        if buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        buf.advance(HEADER_BYTES);
        return Ok(Some((seq, buf.split_to(len))));
    }
    // Split packet: find the end first so nothing is consumed until all frames are here.
    let mut at = 0;
    let mut total = 0;
    let mut last_seq;
    loop {
        let Some((len, seq)) = peek_header(&buf[at..]) else { return Ok(None) };
        total += len;
        last_seq = seq;
        if total > limit {
            return Err(TooLarge { len: total, limit });
        }
        if buf.len() < at + HEADER_BYTES + len {
            return Ok(None);
        }
        at += HEADER_BYTES + len;
        if len < PAYLOAD_MAX {
            break;
        }
    }
    let mut payload = BytesMut::with_capacity(total);
    let mut frames = buf.split_to(at);
    while !frames.is_empty() {
        let (len, _) = peek_header(&frames).expect("frames were checked above");
        frames.advance(HEADER_BYTES);
        payload.extend_from_slice(&frames.split_to(len));
    }
    Ok(Some((last_seq, payload)))
}

/// Appends `payload` to `out` as one logical packet starting at sequence id `seq`,
/// splitting it into frames as needed. Returns the next sequence id.
pub fn put_packet(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(PAYLOAD_MAX);
        out.reserve(HEADER_BYTES + n);
        out.put_uint_le(n as u64, 3);
        out.put_u8(seq);
        out.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < PAYLOAD_MAX {
            return seq;
        }
    }
}

/// Starts a packet whose payload will be written in place: pushes a placeholder header and
/// returns the offset to pass to [`finish_packet`]. For payloads under `PAYLOAD_MAX`.
pub fn begin_packet(out: &mut BytesMut, seq: u8) -> usize {
    let at = out.len();
    out.put_slice(&[0, 0, 0, seq]);
    at
}

/// Fills in the length of a packet started with [`begin_packet`].
pub fn finish_packet(out: &mut BytesMut, at: usize) {
    let len = out.len() - at - HEADER_BYTES;
    debug_assert!(len < PAYLOAD_MAX, "begin_packet is for small payloads");
    out[at] = len as u8;
    out[at + 1] = (len >> 8) as u8;
    out[at + 2] = (len >> 16) as u8;
}

/// Reads a length-encoded integer at the start of `buf`: (value, bytes used).
pub fn lenenc_int(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let (n, used) = match first {
        0..=0xFA => return Some((first as u64, 1)),
        0xFC => (2, 3),
        0xFD => (3, 4),
        0xFE => (8, 9),
        _ => return None, // 0xFB is NULL, 0xFF is an error marker: not integers
    };
    let bytes = buf.get(1..=n)?;
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        v |= (*b as u64) << (8 * i);
    }
    Some((v, used))
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut BytesMut, v: u64) {
    match v {
        0..=0xFA => out.put_u8(v as u8),
        0xFB..=0xFFFF => {
            out.put_u8(0xFC);
            out.put_u16_le(v as u16)
        }
        0x1_0000..=0xFF_FFFF => {
            out.put_u8(0xFD);
            out.put_uint_le(v, 3)
        }
        _ => {
            out.put_u8(0xFE);
            out.put_u64_le(v)
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_str(out: &mut BytesMut, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.put_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_packet_round_trip() {
        let mut buf = BytesMut::new();
        assert_eq!(put_packet(&mut buf, 7, b"hello"), 8);
        let (seq, p) = take_packet(&mut buf, 100).unwrap().unwrap();
        assert_eq!((seq, &p[..]), (7, &b"hello"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_is_none_and_consumes_nothing() {
        let mut buf = BytesMut::new();
        put_packet(&mut buf, 0, b"abcdef");
        let mut part = BytesMut::from(&buf[..7]);
        assert_eq!(take_packet(&mut part, 100).unwrap(), None);
        assert_eq!(part.len(), 7);
    }

    #[test]
    fn split_packets_join_and_exact_multiple_ends_with_empty_frame() {
        for size in [PAYLOAD_MAX - 1, PAYLOAD_MAX, PAYLOAD_MAX + 5, 2 * PAYLOAD_MAX] {
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut buf = BytesMut::new();
            let next = put_packet(&mut buf, 0, &payload);
            let frames = size / PAYLOAD_MAX + 1;
            assert_eq!(next as usize, frames);
            assert_eq!(buf.len(), size + 4 * frames);
            // Every prefix is incomplete.
            let mut cut = BytesMut::from(&buf[..buf.len() - 1]);
            assert_eq!(take_packet(&mut cut, usize::MAX).unwrap(), None);
            let (seq, p) = take_packet(&mut buf, usize::MAX).unwrap().unwrap();
            assert_eq!(seq as usize, frames - 1);
            assert_eq!(&p[..], &payload[..]);
        }
    }

    #[test]
    fn limit_is_enforced() {
        let mut buf = BytesMut::new();
        put_packet(&mut buf, 0, &[0u8; 100]);
        assert_eq!(take_packet(&mut buf, 99), Err(TooLarge { len: 100, limit: 99 }));
    }

    #[test]
    fn lenenc_round_trip() {
        for v in [0, 250, 251, 0xFFFF, 0x10000, 0xFF_FFFF, 0x100_0000, u64::MAX] {
            let mut b = BytesMut::new();
            put_lenenc_int(&mut b, v);
            assert_eq!(lenenc_int(&b), Some((v, b.len())));
        }
        assert_eq!(lenenc_int(&[0xFC, 1]), None);
        assert_eq!(lenenc_int(&[]), None);
    }
}
