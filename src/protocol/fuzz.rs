//! Property tests: every decoder in this module survives arbitrary bytes — no panic, no
//! read past the input, and the framer always terminates.

use bytes::BytesMut;
use proptest::prelude::*;

use super::framer::{Expect, Framer, Step};
use super::handshake::{is_ssl_request, parse_client_hello, parse_server_hello};
use super::packet::{lenenc_int, put_packet, take_packet};
use super::reply::{parse_eof, parse_err, parse_ok};
use super::stmt::{execute_layout, param_types, stmt_id};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn packet_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), limit in 0usize..1024) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some((_, p))) = take_packet(&mut buf, limit) {
            prop_assert!(p.len() <= limit);
        }
    }

    #[test]
    fn packets_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..4096), seq in any::<u8>()) {
        let mut buf = BytesMut::new();
        put_packet(&mut buf, seq, &payload);
        let (s, p) = take_packet(&mut buf, usize::MAX).unwrap().unwrap();
        prop_assert_eq!(s, seq);
        prop_assert_eq!(&p[..], &payload[..]);
    }

    #[test]
    fn handshake_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_client_hello(&bytes);
        let _ = parse_server_hello(&bytes);
        let _ = is_ssl_request(&bytes);
        let _ = parse_ok(&bytes);
        let _ = parse_eof(&bytes);
        let _ = parse_err(&bytes);
        let _ = lenenc_int(&bytes);
        let _ = stmt_id(&bytes);
        for params in [0u16, 1, 2, 9, 300] {
            if let Some(layout) = execute_layout(&bytes, params) {
                let _ = param_types(&bytes, layout, params);
            }
        }
    }

    #[test]
    fn framer_always_terminates_within_its_input(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..60), eof in any::<bool>()) {
        for expect in [Expect::Results, Expect::Cursor, Expect::Prepare, Expect::FieldList, Expect::Rows, Expect::Single] {
            let mut f = Framer::new(expect, eof);
            for frame in &frames {
                if f.on_frame(frame) == Step::Done {
                    break;
                }
            }
            // A finished framer refuses more input instead of misreading it.
            if f.is_done() {
                prop_assert_eq!(f.on_frame(&[0]), Step::Done);
            }
        }
    }
}
