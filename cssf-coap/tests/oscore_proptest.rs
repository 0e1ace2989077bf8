//! Property tests of OSCORE: protect then unprotect gives back the plain
//! message for generated requests and responses, and verification never
//! panics on arbitrary or mutated bytes.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
use cssf_coap::{Code, MessageBuilder, MessageType, OptionNumber};
use proptest::prelude::*;

fn pair() -> (SecurityContext, SecurityContext) {
    let p = |s: &'static [u8], r: &'static [u8]| Params {
        master_secret: b"0123456789abcdef",
        master_salt: b"salt",
        id_context: Some(b"ctx"),
        sender_id: s,
        recipient_id: r,
    };
    (
        SecurityContext::new(&p(b"c", b"s"), SenderSequence::Volatile).unwrap(),
        SecurityContext::new(&p(b"s", b"c"), SenderSequence::Volatile).unwrap(),
    )
}

/// Every option number but OSCORE (9) and Proxy-Uri (35), which the
/// caller may not hand over; unknown elective and critical ones included.
const NUMBERS: &[u16] = &[
    1, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 20, 23, 27, 28, 39, 60, 252, 258, 292, 2049, 65000,
];

#[derive(Debug, Clone)]
struct Desc {
    ty: MessageType,
    code: u8,
    mid: u16,
    token: Vec<u8>,
    options: Vec<(u16, Vec<u8>)>,
    payload: Vec<u8>,
}

fn desc(codes: impl Strategy<Value = u8>) -> impl Strategy<Value = Desc> {
    (
        prop_oneof![
            Just(MessageType::Con),
            Just(MessageType::Non),
            Just(MessageType::Ack)
        ],
        codes,
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..=8),
        proptest::collection::vec(
            (
                proptest::sample::select(NUMBERS),
                proptest::collection::vec(any::<u8>(), 0..=20),
            ),
            0..=12,
        ),
        proptest::collection::vec(any::<u8>(), 0..=64),
    )
        .prop_map(|(ty, code, mid, token, options, payload)| Desc {
            ty,
            code,
            mid,
            token,
            options,
            payload,
        })
}

fn emit(d: &Desc) -> Vec<u8> {
    let mut b = MessageBuilder::<16>::new(d.ty, Code(d.code), d.mid);
    b.token(&d.token).unwrap();
    for (n, v) in &d.options {
        b.add_option(OptionNumber(*n), v).unwrap();
    }
    b.payload(&d.payload);
    let mut buf = vec![0u8; 2048];
    let n = b.emit(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn request_code() -> impl Strategy<Value = u8> {
    1u8..=31
}

fn response_code() -> impl Strategy<Value = u8> {
    (2u8..=5, 0u8..=31).prop_map(|(c, d)| (c << 5) | d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn protect_unprotect_round_trip(req in desc(request_code()), rsp in desc(response_code()), own_piv: bool) {
        let (mut c, mut s) = pair();
        let plain = emit(&req);
        let mut wire = vec![0u8; 2048];
        let (n, mut binding) = c.protect_request(&plain, &mut wire).unwrap();
        let mut msg = wire[..n].to_vec();
        let mut out = vec![0u8; 2048];
        let (m, mut sb) = s.unprotect_request(&mut msg, &mut out).unwrap();
        prop_assert_eq!(&out[..m], &plain[..]);
        prop_assert_eq!(&sb, &binding);

        let plain = emit(&rsp);
        let n = s.protect_response(&mut sb, &plain, own_piv, &mut wire).unwrap();
        let mut msg = wire[..n].to_vec();
        let m = c.unprotect_response(&mut binding, &mut msg, &mut out).unwrap();
        prop_assert_eq!(&out[..m], &plain[..]);
    }

    #[test]
    fn unprotect_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (mut c, mut s) = pair();
        let mut out = vec![0u8; 512];
        let mut msg = data.clone();
        let _ = s.unprotect_request(&mut msg, &mut out);
        let (_, mut binding) = c.protect_request(&[0x40, 0x01, 0, 0], &mut out).unwrap();
        let mut msg = data;
        let _ = c.unprotect_response(&mut binding, &mut msg, &mut out);
    }

    #[test]
    fn unprotect_never_panics_on_mutated_messages(
        req in desc(request_code()),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        small_out in 0usize..64,
    ) {
        let (mut c, mut s) = pair();
        let plain = emit(&req);
        let mut wire = vec![0u8; 2048];
        let (n, mut binding) = c.protect_request(&plain, &mut wire).unwrap();
        let mut msg = wire[..n].to_vec();
        for (i, x) in &flips {
            let i = i.index(msg.len());
            msg[i] ^= x;
        }
        let keep = cut.index(msg.len() + 1);
        msg.truncate(keep.max(msg.len() / 2));
        let mut out = vec![0u8; small_out];
        let _ = s.unprotect_request(&mut msg.clone(), &mut out);
        let mut out = vec![0u8; 2048];
        let _ = s.unprotect_request(&mut msg.clone(), &mut out);
        let _ = c.unprotect_response(&mut binding, &mut msg, &mut out);
    }
}
