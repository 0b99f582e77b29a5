//! Binary-protocol packets shoal rewrites: statement ids (client ids map to backend ids)
//! and parameter types (sent on every execute, so any backend connection can run it).
//!
//! `COM_STMT_EXECUTE` payload: `0x17 | stmt_id u32 | flags u8 | iterations u32 |
//! null_bitmap[(n+7)/8] | new_params_bound u8 | types[2n] if bound | values`.

use bytes::{BufMut, BytesMut};

/// Offset of the statement id in every `COM_STMT_*` payload.
const ID_AT: usize = 1;
/// Offset of the null bitmap in `COM_STMT_EXECUTE`.
const BITMAP_AT: usize = 10;

/// The statement id of a `COM_STMT_*` payload.
pub fn stmt_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(ID_AT..ID_AT + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Overwrites the statement id of a `COM_STMT_*` payload in place.
pub fn set_stmt_id(payload: &mut [u8], id: u32) {
    if let Some(b) = payload.get_mut(ID_AT..ID_AT + 4) {
        b.copy_from_slice(&id.to_le_bytes());
    }
}

/// The cursor flags byte of `COM_STMT_EXECUTE` (0 = no cursor).
pub fn execute_flags(payload: &[u8]) -> u8 {
    payload.get(5).copied().unwrap_or(0)
}

/// Where an execute's parts are, for a statement with `params` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteLayout {
    /// Offset of the `new_params_bound` byte.
    pub bound_at: usize,
    /// Whether the client sent parameter types in this packet.
    pub has_types: bool,
}

/// Checks an execute payload's layout. `None` means it is too short for `params`.
pub fn execute_layout(payload: &[u8], params: u16) -> Option<ExecuteLayout> {
    if params == 0 {
        return (payload.len() >= BITMAP_AT).then_some(ExecuteLayout { bound_at: BITMAP_AT, has_types: false });
    }
    let bound_at = BITMAP_AT + (params as usize).div_ceil(8);
    let has_types = *payload.get(bound_at)? == 1;
    if has_types && payload.len() < bound_at + 1 + 2 * params as usize {
        return None;
    }
    Some(ExecuteLayout { bound_at, has_types })
}

/// The parameter types sent with an execute, if any.
pub fn param_types(payload: &[u8], layout: ExecuteLayout, params: u16) -> Option<&[u8]> {
    let start = layout.bound_at + 1;
    layout.has_types.then(|| &payload[start..start + 2 * params as usize])
}

/// Writes `payload` for the backend: its statement id replaced and, when the client relied
/// on types sent earlier (`new_params_bound = 0`), those types inserted.
pub fn execute_for_backend(payload: &[u8], layout: ExecuteLayout, backend_id: u32, types: &[u8], out: &mut BytesMut) {
    out.reserve(payload.len() + types.len());
    out.put_u8(payload[0]);
    out.put_u32_le(backend_id);
    if layout.has_types || types.is_empty() {
        out.put_slice(&payload[ID_AT + 4..]);
    } else {
        out.put_slice(&payload[ID_AT + 4..layout.bound_at]);
        out.put_u8(1);
        out.put_slice(types);
        out.put_slice(&payload[layout.bound_at + 1..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(id: u32, bound: bool) -> Vec<u8> {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0); // null bitmap for 2 params
        p.push(bound as u8);
        if bound {
            p.extend_from_slice(&[3, 0, 253, 0]);
        }
        p.extend_from_slice(&[7, 0, 0, 0, 1, b'x']);
        p
    }

    #[test]
    fn types_are_read_and_reinserted() {
        let with = exec(5, true);
        let layout = execute_layout(&with, 2).unwrap();
        assert_eq!(param_types(&with, layout, 2), Some(&[3, 0, 253, 0][..]));
        let without = exec(5, false);
        let layout = execute_layout(&without, 2).unwrap();
        assert!(!layout.has_types);
        let mut out = BytesMut::new();
        execute_for_backend(&without, layout, 9, &[3, 0, 253, 0], &mut out);
        assert_eq!(&out[..], &exec(9, true)[..]);
    }

    #[test]
    fn short_payloads_are_rejected() {
        assert_eq!(execute_layout(&[0x17, 1, 0, 0, 0], 2), None);
        let mut p = exec(1, true);
        p.truncate(13);
        assert_eq!(execute_layout(&p, 2), None);
        assert_eq!(stmt_id(&[0x19, 1]), None);
    }
}
