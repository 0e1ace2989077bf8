//! Message-level tests: round trips, failure paths, the context table and
//! sequence-number persistence across a reboot.

use super::*;
use crate::wire::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use std::vec::Vec;

const SECRET: [u8; 16] = [7; 16];

fn params<'a>(sender: &'a [u8], recipient: &'a [u8], ctx: Option<&'a [u8]>) -> Params<'a> {
    Params {
        master_secret: &SECRET,
        master_salt: b"salt",
        id_context: ctx,
        sender_id: sender,
        recipient_id: recipient,
    }
}

/// A client (Sender ID "C") and a server (Sender ID "S").
fn pair() -> (SecurityContext, SecurityContext) {
    let c = SecurityContext::new(&params(b"C", b"S", None), SenderSequence::Volatile).unwrap();
    let s = SecurityContext::new(&params(b"S", b"C", None), SenderSequence::Volatile).unwrap();
    (c, s)
}

fn emit<const N: usize>(b: &MessageBuilder<'_, N>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// CON PUT coap://sensor.example/actuators/led?x=1, Content-Format 0, payload.
fn put_request() -> Vec<u8> {
    let mut b = MessageBuilder::<8>::new(MessageType::Con, Code::PUT, 0x1234);
    b.token(&[1, 2, 3]).unwrap();
    b.add_str(OptionNumber::URI_HOST, "sensor.example").unwrap();
    b.uri_path("actuators/led").unwrap();
    b.add_str(OptionNumber::URI_QUERY, "x=1").unwrap();
    b.content_format(crate::ContentFormat::TEXT_PLAIN).unwrap();
    b.payload(b"on");
    emit(&b)
}

fn response(req: &[u8], code: Code, payload: &'static [u8]) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let token: Vec<u8> = m.token().to_vec();
    let mut b = MessageBuilder::<4>::new(MessageType::Ack, code, m.message_id());
    b.token(&token).unwrap();
    b.payload(payload);
    emit(&b)
}

fn protect_req(c: &mut SecurityContext, plain: &[u8]) -> (Vec<u8>, RequestBinding) {
    let mut out = [0u8; 512];
    let (n, b) = c.protect_request(plain, &mut out).unwrap();
    (out[..n].to_vec(), b)
}

fn unprotect_req(s: &mut SecurityContext, wire: &[u8]) -> Result<(Vec<u8>, RequestBinding), Error> {
    let mut msg = wire.to_vec();
    let mut out = [0u8; 512];
    let (n, b) = s.unprotect_request(&mut msg, &mut out)?;
    Ok((out[..n].to_vec(), b))
}

fn unprotect_rsp(
    c: &mut SecurityContext,
    binding: &mut RequestBinding,
    wire: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut msg = wire.to_vec();
    let mut out = [0u8; 512];
    let n = c.unprotect_response(binding, &mut msg, &mut out)?;
    Ok(out[..n].to_vec())
}

/// Replaces the OSCORE option value of a protected message.
fn with_option(wire: &[u8], value: &[u8]) -> Vec<u8> {
    let m = Message::parse(wire).unwrap();
    let mut b = MessageBuilder::<16>::from_message(&m).unwrap();
    b.remove_option(OptionNumber::OSCORE);
    b.add_option(OptionNumber::OSCORE, value).unwrap();
    emit(&b)
}

#[test]
fn round_trip_client_server_client() {
    let (mut c, mut s) = pair();
    let plain = put_request();
    let (wire, mut binding) = protect_req(&mut c, &plain);

    // Outside: POST, Uri-Host only, no path, query or payload in clear.
    let outer = Message::parse(&wire).unwrap();
    assert_eq!(outer.code(), Code::POST);
    assert_eq!(outer.message_id(), 0x1234);
    assert_eq!(outer.token(), [1, 2, 3]);
    let numbers: Vec<_> = outer.options().map(|o| o.number).collect();
    assert_eq!(numbers, [OptionNumber::URI_HOST, OptionNumber::OSCORE]);
    assert!(!wire.windows(3).any(|w| w == b"led"));
    assert!(!wire.windows(2).any(|w| w == b"on"));

    let (inner, mut sb) = unprotect_req(&mut s, &wire).unwrap();
    assert_eq!(inner, plain);
    assert_eq!(sb, binding);

    let rsp = response(&inner, Code::CHANGED, b"done");
    let mut out = [0u8; 512];
    let n = s.protect_response(&mut sb, &rsp, false, &mut out).unwrap();
    let outer = Message::parse(&out[..n]).unwrap();
    assert_eq!(outer.code(), Code::CHANGED);
    assert_eq!(outer.option(OptionNumber::OSCORE), Some(&[][..]));
    let back = unprotect_rsp(&mut c, &mut binding, &out[..n]).unwrap();
    assert_eq!(back, rsp);
}

#[test]
fn many_requests_and_responses_with_partial_iv() {
    let (mut c, mut s) = pair();
    let plain = put_request();
    for i in 0..300u64 {
        let (wire, mut binding) = protect_req(&mut c, &plain);
        assert_eq!(binding.partial_iv.sequence(), i);
        let (inner, mut sb) = unprotect_req(&mut s, &wire).unwrap();
        assert_eq!(inner, plain);
        let rsp = response(&inner, Code::CONTENT, b"22.5");
        let mut out = [0u8; 512];
        let n = s.protect_response(&mut sb, &rsp, true, &mut out).unwrap();
        assert_eq!(unprotect_rsp(&mut c, &mut binding, &out[..n]).unwrap(), rsp);
    }
    assert_eq!(c.sender_sequence_number(), 300);
    assert_eq!(s.sender_sequence_number(), 300);
}

#[test]
fn observe_uses_fetch_and_content() {
    let (mut c, mut s) = pair();
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
    b.token(&[9])
        .unwrap()
        .uri_path("temp")
        .unwrap()
        .observe(0)
        .unwrap();
    let plain = emit(&b);
    let (wire, mut binding) = protect_req(&mut c, &plain);
    let outer = Message::parse(&wire).unwrap();
    assert_eq!(outer.code(), Code::FETCH);
    assert_eq!(outer.observe(), Ok(Some(0)));
    let (inner, mut sb) = unprotect_req(&mut s, &wire).unwrap();
    assert_eq!(inner, plain);

    let m = Message::parse(&inner).unwrap();
    let mut r = MessageBuilder::<2>::new(MessageType::Ack, Code::CONTENT, m.message_id());
    r.token(&[9]).unwrap().observe(7).unwrap().payload(b"21");
    let rsp = emit(&r);
    for _ in 0..3 {
        let mut out = [0u8; 512];
        let n = s.protect_response(&mut sb, &rsp, true, &mut out).unwrap();
        let outer = Message::parse(&out[..n]).unwrap();
        assert_eq!(outer.code(), Code::CONTENT);
        assert_eq!(unprotect_rsp(&mut c, &mut binding, &out[..n]).unwrap(), rsp);
    }
}

#[test]
fn tampered_ciphertext_is_refused_and_does_not_move_the_window() {
    let (mut c, mut s) = pair();
    let (wire, _) = protect_req(&mut c, &put_request());
    for i in [wire.len() - 1, wire.len() - 9, wire.len() - 12] {
        let mut bad = wire.clone();
        bad[i] ^= 0x01;
        assert_eq!(unprotect_req(&mut s, &bad), Err(Error::DecryptionFailed));
    }
    assert_eq!(s.replay_window().highest(), None);
    assert!(unprotect_req(&mut s, &wire).is_ok());
    assert_eq!(unprotect_req(&mut s, &wire), Err(Error::Replay));
}

#[test]
fn tampered_partial_iv_or_response_is_refused() {
    let (mut c, mut s) = pair();
    let (wire, mut binding) = protect_req(&mut c, &put_request());
    // Partial IV 0 -> 1 (kid "C" stays).
    let bad = with_option(&wire, &[0x09, 0x01, b'C']);
    assert_eq!(unprotect_req(&mut s, &bad), Err(Error::DecryptionFailed));
    let (inner, mut sb) = unprotect_req(&mut s, &wire).unwrap();
    let rsp = response(&inner, Code::CONTENT, b"x");
    let mut out = [0u8; 512];
    let n = s.protect_response(&mut sb, &rsp, false, &mut out).unwrap();
    let mut bad = out[..n].to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &bad),
        Err(Error::DecryptionFailed)
    );
    // Another context's response does not verify either.
    let (mut c2, _) = pair();
    let (_, other) = protect_req(&mut c2, &put_request());
    assert_eq!(other, binding); // same kid and Partial IV, same keys
    let mut other_keys =
        SecurityContext::new(&params(b"C", b"T", None), SenderSequence::Volatile).unwrap();
    assert_eq!(
        unprotect_rsp(&mut other_keys, &mut binding, &out[..n]),
        Err(Error::DecryptionFailed)
    );
}

#[test]
fn wrong_kid_or_kid_context() {
    let (mut c, mut s) = pair();
    let (wire, _) = protect_req(&mut c, &put_request());
    // Unknown kid.
    let bad = with_option(&wire, &[0x09, 0x00, b'X']);
    assert_eq!(unprotect_req(&mut s, &bad), Err(Error::ContextNotFound));
    // Longer than any ID.
    let bad = with_option(&wire, &[0x09, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(unprotect_req(&mut s, &bad), Err(Error::ContextNotFound));
    // A kid context the server's context does not have.
    let bad = with_option(&wire, &[0x19, 0x00, 0x01, 0xaa, b'C']);
    assert_eq!(unprotect_req(&mut s, &bad), Err(Error::ContextNotFound));
    assert_eq!(
        Error::ContextNotFound.response(),
        Some((Code::UNAUTHORIZED, "Security context not found"))
    );
}

#[test]
fn kid_context_must_match() {
    let ctx = [0x37, 0xcb];
    let mut c =
        SecurityContext::new(&params(b"C", b"S", Some(&ctx)), SenderSequence::Volatile).unwrap();
    let mut s =
        SecurityContext::new(&params(b"S", b"C", Some(&ctx)), SenderSequence::Volatile).unwrap();
    let (wire, _) = protect_req(&mut c, &put_request());
    let opt = Message::parse(&wire)
        .unwrap()
        .option(OptionNumber::OSCORE)
        .unwrap()
        .to_vec();
    assert_eq!(opt, [0x19, 0x00, 0x02, 0x37, 0xcb, b'C']);
    let bad = with_option(&wire, &[0x19, 0x00, 0x02, 0x37, 0xcc, b'C']);
    assert_eq!(unprotect_req(&mut s, &bad), Err(Error::ContextNotFound));
    // Without the kid context the kid alone selects the context.
    let without = with_option(&wire, &[0x09, 0x00, b'C']);
    assert!(unprotect_req(&mut s, &without).is_ok());
}

#[test]
fn malformed_option_or_cose() {
    let (mut c, mut s) = pair();
    let (wire, _) = protect_req(&mut c, &put_request());
    for bad in [
        &[0x0a, 0x00][..],               // Partial IV length 2, one byte: truncated
        &[0x1a, 0x00, 0x00],             // kid context flag, truncated
        &[0x0e, 1, 2, 3, 4, 5, 6, b'C'], // Partial IV length 6
        &[0x29, 0x00, b'C'],             // reserved bit
        &[0x08, b'C'],                   // request without Partial IV
        &[0x01, 0x00],                   // request without kid
        &[],                             // empty option in a request
    ] {
        let m = with_option(&wire, bad);
        assert_eq!(
            unprotect_req(&mut s, &m),
            Err(Error::BadOption),
            "{bad:02x?}"
        );
    }
    // Ciphertext shorter than a tag and a code byte.
    let m = Message::parse(&wire).unwrap();
    let mut b = MessageBuilder::<4>::from_message(&m).unwrap();
    b.payload(&[0; 8]);
    assert_eq!(unprotect_req(&mut s, &emit(&b)), Err(Error::BadOption));
    b.payload(&[]);
    assert_eq!(unprotect_req(&mut s, &emit(&b)), Err(Error::BadOption));
    assert_eq!(
        Error::BadOption.response(),
        Some((Code::BAD_OPTION, "Failed to decode COSE"))
    );
    assert_eq!(
        Error::DecryptionFailed.response(),
        Some((Code::BAD_REQUEST, "Decryption failed"))
    );
    assert_eq!(
        Error::Replay.response(),
        Some((Code::UNAUTHORIZED, "Replay detected"))
    );
    assert_eq!(Error::NotProtected.response(), None);
    // Truncated outer message: a format error, not answered.
    let e = unprotect_req(&mut s, &wire[..6]).unwrap_err();
    assert!(matches!(e, Error::Coap(_)));
    assert_eq!(e.response(), None);
}

#[test]
fn plain_messages_and_wrong_directions() {
    let (mut c, mut s) = pair();
    let plain = put_request();
    assert_eq!(unprotect_req(&mut s, &plain), Err(Error::NotProtected));
    let rsp = response(&plain, Code::CONTENT, b"x");
    let mut out = [0u8; 512];
    assert_eq!(c.protect_request(&rsp, &mut out), Err(Error::NotARequest));
    let (wire, mut binding) = protect_req(&mut c, &plain);
    assert_eq!(
        s.protect_response(&mut binding, &plain, false, &mut out),
        Err(Error::NotAResponse)
    );
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &wire),
        Err(Error::NotAResponse)
    );
    // An unprotected error response from the server.
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &rsp),
        Err(Error::NotProtected)
    );
}

#[test]
fn proxy_uri_and_oscore_options_are_refused() {
    let (mut c, _) = pair();
    let mut out = [0u8; 512];
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
    b.add_str(OptionNumber::PROXY_URI, "coap://x/y").unwrap();
    assert_eq!(
        c.protect_request(&emit(&b), &mut out),
        Err(Error::UnsupportedOption(OptionNumber::PROXY_URI))
    );
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
    b.add_option(OptionNumber::OSCORE, &[]).unwrap();
    assert_eq!(
        c.protect_request(&emit(&b), &mut out),
        Err(Error::UnsupportedOption(OptionNumber::OSCORE))
    );
}

#[test]
fn buffer_too_small_says_how_much() {
    let (mut c, mut s) = pair();
    let plain = put_request();
    let mut out = [0u8; 8];
    let needed = match c.protect_request(&plain, &mut out) {
        Err(Error::Coap(crate::Error::BufferTooSmall { needed })) => needed,
        other => panic!("{other:?}"),
    };
    let mut out = std::vec![0u8; needed];
    let (n, _) = c.protect_request(&plain, &mut out).unwrap();
    assert_eq!(n, needed);
    let mut msg = out.clone();
    let mut small = [0u8; 10];
    assert!(matches!(
        s.unprotect_request(&mut msg, &mut small),
        Err(Error::Coap(crate::Error::BufferTooSmall { .. }))
    ));
}

#[test]
fn outer_class_e_options_are_discarded() {
    let (mut c, mut s) = pair();
    let plain = put_request();
    let (wire, _) = protect_req(&mut c, &plain);
    let m = Message::parse(&wire).unwrap();
    let mut b = MessageBuilder::<8>::from_message(&m).unwrap();
    // An on-path attacker adds a Uri-Path (E only), and Max-Age, Observe,
    // Size1 and No-Response (E and U: outer copies are for proxies, not
    // protected).
    b.add_str(OptionNumber::URI_PATH, "admin").unwrap();
    b.add_uint(OptionNumber::MAX_AGE, 0).unwrap();
    b.add_uint(OptionNumber::OBSERVE, 0).unwrap();
    b.add_uint(OptionNumber::SIZE1, 9).unwrap();
    b.add_uint(OptionNumber::NO_RESPONSE, 26).unwrap();
    let (inner, _) = unprotect_req(&mut s, &emit(&b)).unwrap();
    let inner = Message::parse(&inner).unwrap();
    let path: Vec<_> = inner.uri_path().collect();
    assert_eq!(path, [&b"actuators"[..], b"led"]);
    // None of them reaches the verified request: only what was protected
    // (and Class U options) does.
    let numbers: Vec<u16> = inner.options().map(|o| o.number.0).collect();
    let sent: Vec<u16> = Message::parse(&plain)
        .unwrap()
        .options()
        .map(|o| o.number.0)
        .collect();
    assert_eq!(numbers, sent);
    assert_eq!(inner.max_age(), Ok(None));
}

#[test]
fn outer_block_options_are_refused() {
    // An outer Block option means a proxy split the message (§4.1.3.4.2):
    // not reassembled here, so refused rather than trusted.
    let (mut c, mut s) = pair();
    let (wire, _) = protect_req(&mut c, &put_request());
    let m = Message::parse(&wire).unwrap();
    let mut b = MessageBuilder::<8>::from_message(&m).unwrap();
    b.add_uint(OptionNumber::BLOCK2, 0x02).unwrap();
    assert_eq!(
        unprotect_req(&mut s, &emit(&b)).err(),
        Some(Error::UnsupportedOption(OptionNumber::BLOCK2))
    );
}

#[test]
fn a_second_response_never_reuses_the_requests_nonce() {
    // Two responses to one request, both asked without a Partial IV of
    // their own: the second takes one anyway, so no nonce repeats.
    let (mut c, mut s) = pair();
    let plain = put_request();
    let (wire, mut binding) = protect_req(&mut c, &plain);
    let (_, mut sb) = unprotect_req(&mut s, &wire).unwrap();
    let rsp = response(&plain, Code::CHANGED, b"secret-1");
    let mut out1 = [0u8; 256];
    let n1 = s.protect_response(&mut sb, &rsp, false, &mut out1).unwrap();
    let rsp2 = response(&plain, Code::CHANGED, b"secret-2");
    let mut out2 = [0u8; 256];
    let n2 = s
        .protect_response(&mut sb, &rsp2, false, &mut out2)
        .unwrap();
    let opt = |w: &[u8]| {
        Message::parse(w)
            .unwrap()
            .options()
            .find(|o| o.number == OptionNumber::OSCORE)
            .map(|o| o.value.to_vec())
            .unwrap()
    };
    assert!(
        opt(&out1[..n1]).is_empty(),
        "the first uses the request's nonce"
    );
    assert!(
        !opt(&out2[..n2]).is_empty(),
        "the second has its own Partial IV"
    );
    // Both still verify for the client.
    for (w, n) in [(&mut out1, n1), (&mut out2, n2)] {
        let mut inner = [0u8; 256];
        assert!(c
            .unprotect_response(&mut binding, &mut w[..n], &mut inner)
            .is_ok());
    }
}

#[test]
fn context_table_selects_by_kid() {
    let mut table = ContextTable::<3>::new();
    for kid in [b"A", b"B"] {
        let ctx = SecurityContext::new(&params(b"S", kid, None), SenderSequence::Volatile).unwrap();
        table.insert(ctx).unwrap();
    }
    let mut client_b =
        SecurityContext::new(&params(b"B", b"S", None), SenderSequence::Volatile).unwrap();
    let plain = put_request();
    let (wire, mut binding) = protect_req(&mut client_b, &plain);
    let mut msg = wire.clone();
    let mut out = [0u8; 512];
    let (n, index, mut sb) = table.unprotect_request(&mut msg, &mut out).unwrap();
    assert_eq!(index, 1);
    assert_eq!(&out[..n], &plain[..]);
    let rsp = response(&plain, Code::CHANGED, b"ok");
    let mut rout = [0u8; 512];
    let m = table
        .get_mut(index)
        .unwrap()
        .protect_response(&mut sb, &rsp, false, &mut rout)
        .unwrap();
    assert_eq!(
        unprotect_rsp(&mut client_b, &mut binding, &rout[..m]).unwrap(),
        rsp
    );
    // Replayed through the table.
    let mut msg = wire.clone();
    assert_eq!(
        table.unprotect_request(&mut msg, &mut out),
        Err(Error::Replay)
    );
    // An unknown kid.
    let mut client_z =
        SecurityContext::new(&params(b"Z", b"S", None), SenderSequence::Volatile).unwrap();
    let (mut wire, _) = protect_req(&mut client_z, &plain);
    assert_eq!(
        table.unprotect_request(&mut wire, &mut out),
        Err(Error::ContextNotFound)
    );
    // Full.
    let ctx = SecurityContext::new(&params(b"S", b"C", None), SenderSequence::Volatile).unwrap();
    table.insert(ctx).unwrap();
    let ctx = SecurityContext::new(&params(b"S", b"C", None), SenderSequence::Volatile).unwrap();
    assert_eq!(
        table.insert(ctx).err(),
        Some(Error::Coap(crate::Error::Busy))
    );
}

/// Appendix B.1.1: a client that persists what `persist_due` asks for and
/// is restored from it after a reboot never repeats a Partial IV, and the
/// server (whose replay window survived) accepts every request.
#[test]
fn restored_context_does_not_repeat_a_partial_iv() {
    let server_params = params(b"S", b"C", None);
    let mut s = SecurityContext::new(&server_params, SenderSequence::Volatile).unwrap();
    let plain = put_request();
    let mut flash: u64 = 0; // what the caller keeps in nonvolatile memory
    let mut used = std::collections::BTreeSet::new();
    for boot in 0..5 {
        let mut c = SecurityContext::new(
            &params(b"C", b"S", None),
            SenderSequence::Persisted {
                stored: flash,
                step: 8,
            },
        )
        .unwrap();
        // Send a different number of requests per boot, "crashing"
        // anywhere, including right after a flash write.
        for _ in 0..(3 + boot * 5) {
            if let Some(v) = c.persist_due() {
                flash = v; // the durable write
                c.persisted(v);
            }
            let (wire, binding) = protect_req(&mut c, &plain);
            assert!(
                used.insert(binding.partial_iv.sequence()),
                "Partial IV {} repeated after a reboot",
                binding.partial_iv.sequence()
            );
            assert!(unprotect_req(&mut s, &wire).is_ok());
        }
    }
    // A caller that does not persist cannot send.
    let mut c = SecurityContext::new(
        &params(b"C", b"S", None),
        SenderSequence::Persisted {
            stored: flash,
            step: 8,
        },
    )
    .unwrap();
    let mut out = [0u8; 512];
    assert_eq!(
        c.protect_request(&plain, &mut out),
        Err(Error::PersistRequired)
    );
}

#[test]
fn error_responses_are_unprotected_with_max_age_zero() {
    let (mut c, mut s) = pair();
    let (wire, _) = protect_req(&mut c, &put_request());
    assert!(unprotect_req(&mut s, &wire).is_ok());
    let mut msg = wire.clone();
    let mut out = [0u8; 512];
    let e = s.unprotect_request(&mut msg, &mut out).unwrap_err();
    assert_eq!(e, Error::Replay);
    let n = e.emit_response(&msg, 7, &mut out).unwrap().unwrap();
    let rsp = Message::parse(&out[..n]).unwrap();
    assert_eq!(rsp.ty(), MessageType::Ack);
    assert_eq!(rsp.message_id(), 0x1234);
    assert_eq!(rsp.token(), [1, 2, 3]);
    assert_eq!(rsp.code(), Code::UNAUTHORIZED);
    assert_eq!(rsp.max_age(), Ok(Some(0)));
    assert_eq!(rsp.payload(), b"Replay detected");
    assert!(!rsp.has_option(OptionNumber::OSCORE));
    // After a failed decryption (payload garbled in place) too, as NON.
    let (next, _) = protect_req(&mut c, &put_request());
    let mut bad = next.clone();
    bad[1] = Code::POST.0;
    bad[0] = (bad[0] & 0xcf) | 0x10; // NON
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = s.unprotect_request(&mut bad, &mut out).unwrap_err();
    assert_eq!(e, Error::DecryptionFailed);
    let n = e.emit_response(&bad, 7, &mut out).unwrap().unwrap();
    let rsp = Message::parse(&out[..n]).unwrap();
    assert_eq!((rsp.ty(), rsp.message_id()), (MessageType::Non, 7));
    assert_eq!(rsp.code(), Code::BAD_REQUEST);
    assert_eq!(rsp.payload(), b"Decryption failed");
    // Errors that are not answered.
    assert_eq!(
        Error::NotProtected.emit_response(&wire, 7, &mut out),
        Ok(None)
    );
    assert_eq!(
        Error::Coap(crate::Error::Truncated).emit_response(&wire, 7, &mut out),
        Ok(None)
    );
}

#[test]
fn a_replayed_response_or_an_older_notification_is_refused() {
    // RFC 8613 §7.4.1: the client takes a response using the request's
    // nonce once, and notifications (own Partial IVs) only in increasing
    // order.
    let (mut c, mut s) = pair();
    let plain = put_request();
    let (wire, mut binding) = protect_req(&mut c, &plain);
    let (_, mut sb) = unprotect_req(&mut s, &wire).unwrap();
    let rsp = response(&plain, Code::CHANGED, b"first");
    let mut out = [0u8; 256];
    let n = s.protect_response(&mut sb, &rsp, false, &mut out).unwrap();
    let first = out[..n].to_vec();
    assert_eq!(unprotect_rsp(&mut c, &mut binding, &first).unwrap(), rsp);
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &first),
        Err(Error::Replay)
    );
    // Two responses with their own Partial IVs (as notifications have):
    // the newer is taken, then the older and a replay of the newer are not.
    let mut n1 = [0u8; 256];
    let l1 = s.protect_response(&mut sb, &rsp, true, &mut n1).unwrap();
    let mut n2 = [0u8; 256];
    let l2 = s.protect_response(&mut sb, &rsp, true, &mut n2).unwrap();
    assert!(unprotect_rsp(&mut c, &mut binding, &n2[..l2]).is_ok());
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &n1[..l1]),
        Err(Error::Replay)
    );
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &n2[..l2]),
        Err(Error::Replay)
    );
    // A forgery is refused before it can move what the binding recorded.
    let mut n3 = [0u8; 256];
    let l3 = s.protect_response(&mut sb, &rsp, true, &mut n3).unwrap();
    let mut forged = n3[..l3].to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        unprotect_rsp(&mut c, &mut binding, &forged),
        Err(Error::DecryptionFailed)
    );
    assert!(unprotect_rsp(&mut c, &mut binding, &n3[..l3]).is_ok());
}

#[test]
fn a_restored_server_takes_no_request_until_its_window_is_restored() {
    // Appendix B.1.2: a server whose context (fixed keys) is rebuilt after
    // a reboot starts with an empty replay window; it must not take a
    // request recorded before the reboot.
    let persisted = SenderSequence::Persisted {
        stored: 0,
        step: 16,
    };
    let mut c = SecurityContext::new(&params(b"C", b"S", None), SenderSequence::Volatile).unwrap();
    let plain = put_request();
    let (old, _) = protect_req(&mut c, &plain); // Partial IV 0
    let (_, _) = protect_req(&mut c, &plain); // 1, never delivered
    let (newer, _) = protect_req(&mut c, &plain); // 2
                                                  // Before the reboot: the server took request 0 (and saved 0 as its
                                                  // highest).
    let mut s0 = SecurityContext::new(&params(b"S", b"C", None), persisted).unwrap();
    s0.replay_synchronised();
    assert!(unprotect_req(&mut s0, &old).is_ok());
    let saved = s0.replay_window().highest().unwrap();
    // After the reboot, nothing is taken until the window is restored...
    let mut s1 = SecurityContext::new(&params(b"S", b"C", None), persisted).unwrap();
    assert_eq!(
        unprotect_req(&mut s1, &old).err(),
        Some(Error::ReplayWindowNotSynchronised)
    );
    assert_eq!(
        unprotect_req(&mut s1, &newer).err(),
        Some(Error::ReplayWindowNotSynchronised)
    );
    // ...then the old request is a replay and a newer one is taken.
    s1.restore_replay_window(saved);
    assert_eq!(unprotect_req(&mut s1, &old).err(), Some(Error::Replay));
    assert!(unprotect_req(&mut s1, &newer).is_ok());
    // A volatile context (keys new on every boot) starts synchronised.
    let mut v = SecurityContext::new(&params(b"S", b"C", None), SenderSequence::Volatile).unwrap();
    assert!(unprotect_req(&mut v, &old).is_ok());
}

#[test]
fn context_table_remove_keeps_the_other_indices() {
    let mut table = ContextTable::<2>::new();
    for kid in [b"A", b"B"] {
        let ctx = SecurityContext::new(&params(b"S", kid, None), SenderSequence::Volatile).unwrap();
        table.insert(ctx).unwrap();
    }
    let mut client_a =
        SecurityContext::new(&params(b"A", b"S", None), SenderSequence::Volatile).unwrap();
    let removed = table.remove(0).unwrap();
    assert_eq!(removed.recipient_id(), b"A");
    assert!(table.remove(0).is_none());
    assert!(table.get(0).is_none());
    assert_eq!(table.get(1).unwrap().recipient_id(), b"B");
    // A's requests no longer find a context.
    let (wire, _) = protect_req(&mut client_a, &put_request());
    let mut msg = wire.clone();
    let mut out = [0u8; 512];
    assert!(matches!(
        table.unprotect_request(&mut msg, &mut out),
        Err(Error::ContextNotFound)
    ));
    // The freed slot is taken again; the table is full after it.
    assert_eq!(table.insert(removed).unwrap(), 0);
    let mut msg = wire.clone();
    assert_eq!(table.unprotect_request(&mut msg, &mut out).unwrap().1, 0);
    let c = SecurityContext::new(&params(b"S", b"C", None), SenderSequence::Volatile).unwrap();
    assert!(table.insert(c).is_err());
}
