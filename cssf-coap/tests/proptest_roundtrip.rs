//! Property tests: `parse(emit(m)) == m` for generated message descriptions,
//! `emit(parse(x)) == x` for valid wire bytes, and parsing arbitrary or
//! mutated bytes never panics (and re-emits exactly whatever it accepts).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Val {
    Bytes(Vec<u8>),
    Uint(u32),
}

impl Val {
    fn wire(&self) -> Vec<u8> {
        match self {
            Val::Bytes(b) => b.clone(),
            Val::Uint(v) => {
                let b = v.to_be_bytes();
                let skip = b.iter().take_while(|&&x| x == 0).count();
                b[skip..].to_vec()
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Desc {
    ty: MessageType,
    code: Code,
    mid: u16,
    token: Vec<u8>,
    options: Vec<(u16, Val)>,
    payload: Vec<u8>,
}

fn number() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => 0u16..=64,
        2 => 0u16..=400,
        1 => any::<u16>(),
        1 => Just(u16::MAX),
    ]
}

fn value() -> impl Strategy<Value = Val> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Val::Bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..600).prop_map(Val::Bytes),
        3 => any::<u32>().prop_map(Val::Uint),
        1 => (0u32..300).prop_map(Val::Uint),
    ]
}

fn desc() -> impl Strategy<Value = Desc> {
    (
        0u8..4,
        1u8..=255,
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..=8),
        proptest::collection::vec((number(), value()), 0..12),
        prop_oneof![Just(vec![]), proptest::collection::vec(any::<u8>(), 1..200)],
        prop::bool::weighted(0.1),
    )
        .prop_map(|(ty, code, mid, token, options, payload, empty)| {
            if empty {
                // An Empty message: code 0.00 and nothing after the header.
                Desc {
                    ty: MessageType::from_bits(ty),
                    code: Code::EMPTY,
                    mid,
                    token: vec![],
                    options: vec![],
                    payload: vec![],
                }
            } else {
                Desc {
                    ty: MessageType::from_bits(ty),
                    code: Code(code),
                    mid,
                    token,
                    options,
                    payload,
                }
            }
        })
}

fn build(d: &Desc) -> Vec<u8> {
    let mut b = MessageBuilder::<12>::new(d.ty, d.code, d.mid);
    b.token(&d.token).unwrap();
    for (n, v) in &d.options {
        match v {
            Val::Bytes(bytes) => b.add_option(OptionNumber(*n), bytes).unwrap(),
            Val::Uint(u) => b.add_uint(OptionNumber(*n), *u).unwrap(),
        };
    }
    b.payload(&d.payload);
    let mut out = vec![0u8; b.buffer_len()];
    let n = b.emit(&mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_of_emit_is_identity(d in desc()) {
        let bytes = build(&d);
        let m = Message::parse(&bytes).unwrap();
        prop_assert_eq!(m.ty(), d.ty);
        prop_assert_eq!(m.code(), d.code);
        prop_assert_eq!(m.message_id(), d.mid);
        prop_assert_eq!(m.token(), &d.token[..]);
        prop_assert_eq!(m.payload(), &d.payload[..]);
        // options come back sorted by number, stable for repeats
        let mut want: Vec<(u16, Vec<u8>)> =
            d.options.iter().map(|(n, v)| (*n, v.wire())).collect();
        want.sort_by_key(|(n, _)| *n);
        let got: Vec<(u16, Vec<u8>)> =
            m.options().map(|o| (o.number.0, o.value.to_vec())).collect();
        prop_assert_eq!(&got, &want);
        // uint values decode to what was put in
        for (n, v) in &d.options {
            if let Val::Uint(u) = v {
                prop_assert!(m
                    .options_numbered(OptionNumber(*n))
                    .any(|o| o.as_uint() == Ok(*u)));
            }
        }
    }

    #[test]
    fn emit_of_parse_is_identity(d in desc()) {
        let bytes = build(&d);
        let m = Message::parse(&bytes).unwrap();
        let b = MessageBuilder::<12>::from_message(&m).unwrap();
        let mut out = vec![0u8; bytes.len()];
        prop_assert_eq!(b.emit(&mut out), Ok(bytes.len()));
        prop_assert_eq!(&out, &bytes);
        // short buffers report the exact size needed
        if !bytes.is_empty() {
            let mut short = vec![0u8; bytes.len() - 1];
            prop_assert_eq!(
                b.emit(&mut short),
                Err(cssf_coap::Error::BufferTooSmall { needed: bytes.len() })
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_any(&bytes)?;
    }

    #[test]
    fn mutated_messages_never_panic(
        d in desc(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = build(&d);
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        check_any(&bytes)?;
        let cut = cut.index(bytes.len() + 1);
        check_any(&bytes[..cut])?;
    }
}

/// Whatever parses must re-emit byte for byte: the option header encoding is
/// canonical (an extended delta/length can only express values the shorter
/// forms cannot), so the parser accepts exactly what the builder writes.
fn check_any(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(m) = Message::parse(bytes) else {
        return Ok(());
    };
    // every accessor is safe on whatever parsed
    let _ = (m.ty(), m.code(), m.message_id(), m.token(), m.payload());
    let _ = (
        m.observe(),
        m.block1(),
        m.block2(),
        m.content_format(),
        m.accept(),
    );
    let _ = (
        m.first_unknown_critical(),
        m.first_bad_length(),
        m.check_options(),
    );
    let n = m.options().count();
    let b = match MessageBuilder::<64>::from_message(&m) {
        Ok(b) => b,
        Err(_) => {
            prop_assert!(n > 64);
            return Ok(());
        }
    };
    let mut out = vec![0u8; b.buffer_len()];
    b.emit(&mut out).unwrap();
    let again = Message::parse(&out).unwrap();
    prop_assert_eq!(again.token(), m.token());
    prop_assert_eq!(again.payload(), m.payload());
    prop_assert!(again.options().eq(m.options()));
    prop_assert_eq!(&out[..], bytes);
    Ok(())
}

fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        "[a-zA-Z0-9 ._~%&=?/:@!$'()*+,;-]{0,12}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// RFC 7252 §6.5 then §6.4: composing the URI of a request and
    /// decomposing it again gives back the same Uri-Host/Path/Query options,
    /// whatever bytes the options hold (percent-encoding round trip).
    #[test]
    fn uri_compose_then_decompose(
        host in "[a-z][a-z0-9.-]{0,15}",
        port in 1u16..,
        secure in any::<bool>(),
        path in proptest::collection::vec(segment(), 0..5),
        query in proptest::collection::vec(segment(), 0..4),
    ) {
        use cssf_coap::wire::uri::{compose, decompose};
        // A lone empty segment / argument is the same URI as none, and dot
        // segments are removed by reference resolution: not representable.
        prop_assume!(path != [Vec::<u8>::new()] && query != [Vec::<u8>::new()]);
        prop_assume!(!path.iter().any(|s| s == b"." || s == b".."));
        let mut b = MessageBuilder::<16>::new(MessageType::Con, Code::GET, 1);
        b.add_option(OptionNumber::URI_HOST, host.as_bytes()).unwrap();
        for s in &path {
            b.add_option(OptionNumber::URI_PATH, s).unwrap();
        }
        for q in &query {
            b.add_option(OptionNumber::URI_QUERY, q).unwrap();
        }
        let mut buf = vec![0u8; b.buffer_len()];
        b.emit(&mut buf).unwrap();
        let m = Message::parse(&buf).unwrap();
        let dest = core::net::SocketAddr::from(([192, 0, 2, 1], port));
        let mut uri = String::new();
        compose(&m, secure, dest, &mut uri).unwrap();

        let mut scratch = [0u8; 512];
        let mut b2 = MessageBuilder::<16>::new(MessageType::Con, Code::GET, 1);
        let parts = decompose(&uri, &mut scratch, Some(port), &mut b2)
            .map_err(|e| TestCaseError::fail(format!("{uri}: {e}")))?;
        prop_assert_eq!(parts.port, port);
        prop_assert_eq!(parts.secure, secure);
        let want: Vec<_> = b.options().map(|(n, v)| (n, v.as_bytes().to_vec())).collect();
        let got: Vec<_> = b2.options().map(|(n, v)| (n, v.as_bytes().to_vec())).collect();
        prop_assert_eq!(got, want, "URI {}", uri);
    }
}
