//! OSCORE in the CoAP `Endpoint`, server side (RFC 8613 §8.2, §8.3): a
//! client context made with `SecurityContext` protects requests by hand,
//! the endpoint verifies them, routes the inner request, and protects its
//! answers; duplicates get the cached protected answer and are never
//! verified twice; failures are answered unprotected with the RFC's codes.
//! Then both roles of the endpoint: `request_protected`, Observe over
//! OSCORE (§4.1.3.5) and inner Block2 (§4.1.3.4.1).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use core::time::Duration;

use cssf_coap::endpoint::{Config, Endpoint, Event, Methods, RequestSecurity, Resource, Response};
use cssf_coap::oscore::{Params, RequestBinding, SecurityContext, SenderSequence};
use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use cssf_netsim::SimRng;

static RESOURCES: [Resource; 4] = [
    Resource::new("hello", Methods::GET),
    Resource::new("secret", Methods::GET.union(Methods::PUT)).requires_oscore(),
    Resource::new("obs", Methods::GET).observable(),
    Resource::new("big", Methods::GET),
];

const SECRET: [u8; 16] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
];
const SALT: [u8; 8] = [0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40];

fn params<'a>(secret: &'a [u8], sender: &'a [u8], recipient: &'a [u8]) -> Params<'a> {
    Params {
        master_secret: secret,
        master_salt: &SALT,
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    }
}

/// The client's context (Sender ID "C", Recipient ID "S").
fn client_ctx(secret: &[u8]) -> SecurityContext {
    SecurityContext::new(&params(secret, b"C", b"S"), SenderSequence::Volatile).unwrap()
}

type Server = Endpoint<u8, SimRng>;

/// A server holding the context for client "C" (index 0) and one for
/// client "D" (index 1).
fn server() -> Server {
    server_with(Config::default())
}

fn server_with(cfg: Config) -> Server {
    let mut ep: Server = Endpoint::new(cfg, SimRng::new(7), &RESOURCES);
    let c = SecurityContext::new(&params(&SECRET, b"S", b"C"), SenderSequence::Volatile).unwrap();
    let d = SecurityContext::new(&params(&[9; 16], b"S", b"D"), SenderSequence::Volatile).unwrap();
    assert_eq!(ep.add_oscore_context(c).unwrap(), 0);
    assert_eq!(ep.add_oscore_context(d).unwrap(), 1);
    ep
}

fn plain_request(ty: MessageType, code: Code, mid: u16, token: &[u8], path: &str) -> Vec<u8> {
    let mut b = MessageBuilder::<8>::new(ty, code, mid);
    b.token(token).unwrap().uri_path(path).unwrap();
    let mut buf = [0u8; 256];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn protect(ctx: &mut SecurityContext, plain: &[u8]) -> (Vec<u8>, RequestBinding) {
    let mut wire = [0u8; 512];
    let (n, binding) = ctx.protect_request(plain, &mut wire).unwrap();
    (wire[..n].to_vec(), binding)
}

/// Everything the server sends now.
fn drain(ep: &mut Server) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1280];
    while let Some(tx) = ep.poll_transmit(Duration::ZERO, &mut buf).unwrap() {
        assert_eq!(tx.to, 1);
        out.push(buf[..tx.len].to_vec());
    }
    out
}

fn send(ep: &mut Server, now: Duration, datagram: &[u8]) {
    let mut d = datagram.to_vec();
    ep.handle_datagram(now, 1, &mut d).unwrap();
}

/// Verifies a protected response and returns the inner message bytes.
fn open(ctx: &mut SecurityContext, binding: &mut RequestBinding, rsp: &[u8]) -> Vec<u8> {
    let mut msg = rsp.to_vec();
    let mut out = [0u8; 512];
    let n = ctx.unprotect_response(binding, &mut msg, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn protected_get_is_routed_with_its_context_and_answered_protected() {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let plain = plain_request(MessageType::Con, Code::GET, 0x1234, &[0xa1], "secret");
    let (wire, mut binding) = protect(&mut client, &plain);
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request {
        id, request, peer, ..
    }) = ep.poll_event()
    else {
        panic!("no request event")
    };
    assert_eq!(peer, 1);
    assert_eq!(request.code(), Code::GET);
    let m = request.message().unwrap();
    assert_eq!(m.uri_path().next(), Some(&b"secret"[..]));
    assert!(!m.has_option(OptionNumber::OSCORE));
    match request.security() {
        RequestSecurity::Oscore { context, kid } => {
            assert_eq!(context, 0);
            assert_eq!(kid.as_bytes(), b"C");
        }
        other => panic!("{other:?}"),
    }
    ep.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(b"42"),
    )
    .unwrap();
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    let outer = Message::parse(&sent[0]).unwrap();
    // Piggybacked in the ACK, protected: outer 2.04, no visible payload.
    assert_eq!(outer.ty(), MessageType::Ack);
    assert_eq!(outer.message_id(), 0x1234);
    assert_eq!(outer.token(), &[0xa1]);
    assert_eq!(outer.code(), Code::CHANGED);
    assert!(outer.has_option(OptionNumber::OSCORE));
    let inner = open(&mut client, &mut binding, &sent[0]);
    let inner = Message::parse(&inner).unwrap();
    assert_eq!(inner.code(), Code::CONTENT);
    assert_eq!(inner.payload(), b"42");
    assert_eq!(ep.stats().oscore_refused, 0);
}

#[test]
fn duplicate_gets_the_cached_protected_answer_not_a_second_verification() {
    duplicate_gets_the_cached_answer(Config::default());
}

/// Relaxed deduplication (`Config::relaxed_dedup`) never applies to an
/// OSCORE request: its duplicate would meet the replay window.
#[test]
fn relaxed_dedup_leaves_oscore_requests_deduplicated() {
    duplicate_gets_the_cached_answer(Config {
        relaxed_dedup: true,
        ..Config::default()
    });
}

fn duplicate_gets_the_cached_answer(cfg: Config) {
    let mut ep = server_with(cfg);
    let mut client = client_ctx(&SECRET);
    let plain = plain_request(MessageType::Con, Code::GET, 7, &[1, 2], "hello");
    let (wire, mut binding) = protect(&mut client, &plain);
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    // A retransmission before the answer: no second event, nothing sent,
    // not refused as a replay.
    send(&mut ep, Duration::from_millis(100), &wire);
    assert_eq!(ep.poll_event(), None);
    assert!(drain(&mut ep).is_empty());
    ep.respond(
        Duration::from_millis(200),
        id,
        &Response::new(Code::CONTENT).payload(b"hi"),
    )
    .unwrap();
    let first = drain(&mut ep);
    assert_eq!(first.len(), 1);
    // A retransmission after it: the same bytes (same nonce, same
    // ciphertext), never a new protection.
    send(&mut ep, Duration::from_secs(3), &wire);
    let again = drain(&mut ep);
    assert_eq!(again, first);
    assert_eq!(ep.poll_event(), None);
    let s = ep.stats();
    assert_eq!(s.duplicates, 2);
    assert_eq!(s.oscore_refused, 0);
    let inner = open(&mut client, &mut binding, &first[0]);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"hi");
}

#[test]
fn endpoint_own_answers_are_protected_and_cached_too() {
    // 4.04 is the endpoint's own answer (no handler runs): for an OSCORE
    // request it is protected, and its duplicate is answered from the
    // cache, not refused as a replay.
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let plain = plain_request(MessageType::Con, Code::GET, 9, &[3], "nothing-here");
    let (wire, mut binding) = protect(&mut client, &plain);
    send(&mut ep, Duration::ZERO, &wire);
    assert_eq!(ep.poll_event(), None);
    let first = drain(&mut ep);
    assert_eq!(first.len(), 1);
    assert_eq!(Message::parse(&first[0]).unwrap().code(), Code::CHANGED);
    send(&mut ep, Duration::from_secs(2), &wire);
    assert_eq!(drain(&mut ep), first);
    let inner = open(&mut client, &mut binding, &first[0]);
    assert_eq!(Message::parse(&inner).unwrap().code(), Code::NOT_FOUND);
    assert_eq!(ep.stats().oscore_refused, 0);
}

/// The unprotected error answer to `wire`: code and diagnostic.
fn refused(ep: &mut Server, wire: &[u8]) -> (Code, Vec<u8>) {
    send(ep, Duration::ZERO, wire);
    assert_eq!(
        ep.poll_event(),
        None,
        "a refused request reached the handler"
    );
    let sent = drain(ep);
    assert_eq!(sent.len(), 1);
    let m = Message::parse(&sent[0]).unwrap();
    assert!(
        !m.has_option(OptionNumber::OSCORE),
        "error answer protected"
    );
    assert_eq!(m.max_age().unwrap(), Some(0));
    (m.code(), m.payload().to_vec())
}

#[test]
fn replay_with_another_message_id_is_refused_401() {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let plain = plain_request(MessageType::Con, Code::GET, 100, &[5], "hello");
    let (wire, _) = protect(&mut client, &plain);
    send(&mut ep, Duration::ZERO, &wire);
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
    // The same protected request under a new message ID (not part of the
    // AAD): no duplicate, so the replay window decides.
    let mut replay = wire.clone();
    replay[2..4].copy_from_slice(&101u16.to_be_bytes());
    let (code, diag) = refused(&mut ep, &replay);
    assert_eq!(code, Code::UNAUTHORIZED);
    assert_eq!(diag, b"Replay detected");
    assert_eq!(ep.stats().oscore_refused, 1);
}

#[test]
fn wrong_key_unknown_kid_and_bad_option_get_the_rfc_codes() {
    let mut ep = server();
    // Right kid, wrong Master Secret: 4.00.
    let mut wrong = client_ctx(&[0x55; 16]);
    let (wire, _) = protect(
        &mut wrong,
        &plain_request(MessageType::Con, Code::GET, 1, &[1], "hello"),
    );
    assert_eq!(
        refused(&mut ep, &wire),
        (Code::BAD_REQUEST, b"Decryption failed".to_vec())
    );
    // A kid no context has: 4.01.
    let mut stranger =
        SecurityContext::new(&params(&SECRET, b"X", b"S"), SenderSequence::Volatile).unwrap();
    let (wire, _) = protect(
        &mut stranger,
        &plain_request(MessageType::Con, Code::GET, 2, &[1], "hello"),
    );
    assert_eq!(
        refused(&mut ep, &wire),
        (Code::UNAUTHORIZED, b"Security context not found".to_vec())
    );
    // An OSCORE option with reserved bits set: 4.02.
    let mut b = MessageBuilder::<2>::new(MessageType::Con, Code::POST, 3);
    b.token(&[1]).unwrap();
    b.add_option(OptionNumber::OSCORE, &[0xe0]).unwrap();
    b.payload(&[0; 12]);
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    assert_eq!(
        refused(&mut ep, &buf[..n]),
        (Code::BAD_OPTION, b"Failed to decode COSE".to_vec())
    );
    assert_eq!(ep.stats().oscore_refused, 3);
    // And the right client still gets through afterwards.
    let mut client = client_ctx(&SECRET);
    let (wire, _) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 4, &[1], "hello"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
}

#[test]
fn plain_request_to_an_oscore_resource_gets_401_and_plain_elsewhere_is_plain() {
    let mut ep = server();
    let plain = plain_request(MessageType::Con, Code::GET, 1, &[1], "secret");
    send(&mut ep, Duration::ZERO, &plain);
    assert_eq!(ep.poll_event(), None);
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    assert_eq!(Message::parse(&sent[0]).unwrap().code(), Code::UNAUTHORIZED);
    let plain = plain_request(MessageType::Con, Code::GET, 2, &[1], "hello");
    send(&mut ep, Duration::ZERO, &plain);
    let Some(Event::Request { request, .. }) = ep.poll_event() else {
        panic!()
    };
    assert_eq!(request.security(), RequestSecurity::Plain);
    // `/.well-known/core` marks it `osc` (RFC 8613 §9).
    let wk = plain_request(MessageType::Con, Code::GET, 3, &[2], ".well-known/core");
    send(&mut ep, Duration::ZERO, &wk);
    let sent = drain(&mut ep);
    let body = Message::parse(&sent[0]).unwrap().payload().to_vec();
    assert!(
        String::from_utf8(body).unwrap().contains("</secret>;osc"),
        "osc attribute missing"
    );
}

#[test]
fn second_client_context_is_told_apart() {
    let mut ep = server();
    let mut d =
        SecurityContext::new(&params(&[9; 16], b"D", b"S"), SenderSequence::Volatile).unwrap();
    let (wire, mut binding) = protect(
        &mut d,
        &plain_request(MessageType::Non, Code::PUT, 5, &[8], "secret"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, request, .. }) = ep.poll_event() else {
        panic!()
    };
    assert!(matches!(
        request.security(),
        RequestSecurity::Oscore { context: 1, .. }
    ));
    ep.respond(Duration::ZERO, id, &Response::new(Code::CHANGED))
        .unwrap();
    let sent = drain(&mut ep);
    let outer = Message::parse(&sent[0]).unwrap();
    assert_eq!(outer.ty(), MessageType::Non);
    let inner = open(&mut d, &mut binding, &sent[0]);
    assert_eq!(Message::parse(&inner).unwrap().code(), Code::CHANGED);
}

#[test]
fn separate_response_is_protected_once() {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let (wire, mut binding) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 40, &[4, 4], "hello"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    // The application is slow: an Empty ACK goes first.
    let t = ep.poll_timeout().unwrap();
    ep.handle_timeout(t);
    let ack = drain(&mut ep);
    assert_eq!(ack.len(), 1);
    assert_eq!(Message::parse(&ack[0]).unwrap().code(), Code::EMPTY);
    // A retransmission now gets the Empty ACK again, not a refusal.
    send(&mut ep, t, &wire);
    let again = drain(&mut ep);
    assert_eq!(again, ack);
    ep.respond(t, id, &Response::new(Code::CONTENT).payload(b"late"))
        .unwrap();
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    let outer = Message::parse(&sent[0]).unwrap();
    assert_eq!(outer.ty(), MessageType::Con);
    let inner = open(&mut client, &mut binding, &sent[0]);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"late");
    assert_eq!(ep.stats().oscore_refused, 0);
}

/// A protected registration request (GET "obs", Observe `obs`) with
/// `token` and `mid`, from `ctx`.
fn protected_observe(
    ctx: &mut SecurityContext,
    mid: u16,
    token: &[u8],
    obs: u32,
) -> (Vec<u8>, RequestBinding) {
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, mid);
    b.token(token)
        .unwrap()
        .observe(obs)
        .unwrap()
        .uri_path("obs")
        .unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    protect(ctx, &buf[..n])
}

/// The Partial IV of a protected message's OSCORE option, as a number.
fn partial_iv(datagram: &[u8]) -> Option<u64> {
    let m = Message::parse(datagram).unwrap();
    let opt = cssf_coap::oscore::OscoreOption::parse(m.option(OptionNumber::OSCORE)?).unwrap();
    opt.partial_iv
        .map(|p| p.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

/// Registers client "C" (token [6]) on "obs" with the hand-made client
/// context; returns the server, the client context and the registration's
/// binding, the registration answer verified.
fn registered() -> (Server, SecurityContext, RequestBinding) {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let (wire, mut binding) = protected_observe(&mut client, 50, &[6], 0);
    // The client sends both Observe options: outer FETCH, outer Observe 0.
    let outer = Message::parse(&wire).unwrap();
    assert_eq!(outer.code(), Code::FETCH);
    assert_eq!(outer.observe().unwrap(), Some(0));
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, request, .. }) = ep.poll_event() else {
        panic!()
    };
    assert!(request.security().is_oscore());
    ep.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(b"0"),
    )
    .unwrap();
    assert_eq!(ep.observer_count(), 1);
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    let outer = Message::parse(&sent[0]).unwrap();
    // A notification: outer 2.05 with an outer Observe (RFC 8613 §4.2,
    // §4.1.3.5), for proxies and for clients that tell notifications by it.
    assert_eq!(outer.code(), Code::CONTENT);
    assert!(outer.observe().unwrap().is_some());
    let inner = open(&mut client, &mut binding, &sent[0]);
    let inner = Message::parse(&inner).unwrap();
    assert_eq!(inner.code(), Code::CONTENT);
    assert!(inner.observe().unwrap().is_some());
    assert_eq!(inner.payload(), b"0");
    (ep, client, binding)
}

#[test]
fn protected_observation_notifications_each_take_their_own_partial_iv() {
    let (mut ep, mut client, mut binding) = registered();
    let mut pivs = Vec::new();
    let mut notes = Vec::new();
    for i in 1..=3u8 {
        let body = [b'0' + i];
        assert_eq!(
            ep.notify(
                Duration::ZERO,
                "obs",
                &Response::new(Code::CONTENT).payload(&body)
            )
            .unwrap(),
            1
        );
        let sent = drain(&mut ep);
        assert_eq!(sent.len(), 1);
        let outer = Message::parse(&sent[0]).unwrap();
        assert_eq!(outer.code(), Code::CONTENT);
        assert!(outer.observe().unwrap().is_some());
        assert!(outer.payload().len() > 8, "payload not protected");
        let piv = partial_iv(&sent[0]).expect("a notification without its own Partial IV");
        pivs.push(piv);
        let inner = open(&mut client, &mut binding, &sent[0]);
        let inner = Message::parse(&inner).unwrap();
        assert_eq!(inner.payload(), &body);
        assert!(inner.observe().unwrap().is_some());
        notes.push(sent[0].clone());
    }
    assert!(pivs.windows(2).all(|w| w[0] < w[1]), "{pivs:?}");
    // A replayed or older notification fails the client's §7.4.1 check,
    // and one verified against another request fails the AAD.
    for old in &notes {
        let mut d = old.clone();
        let mut out = [0u8; 512];
        assert_eq!(
            client.unprotect_response(&mut binding, &mut d, &mut out),
            Err(cssf_coap::oscore::Error::Replay)
        );
    }
    let (_, mut other) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 99, &[6], "hello"),
    );
    let mut d = notes[0].clone();
    let mut out = [0u8; 512];
    assert!(client
        .unprotect_response(&mut other, &mut d, &mut out)
        .is_err());
}

#[test]
fn plain_requests_neither_cancel_nor_take_over_a_protected_observation() {
    let (mut ep, mut client, mut binding) = registered();
    // A plain GET with the observation's token (which would cancel a plain
    // observation) cancels nothing.
    send(
        &mut ep,
        Duration::ZERO,
        &plain_request(MessageType::Con, Code::GET, 60, &[6], "obs"),
    );
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
    assert_eq!(ep.observer_count(), 1);
    // A plain Observe 1 on that token neither.
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 61);
    b.token(&[6])
        .unwrap()
        .observe(1)
        .unwrap()
        .uri_path("obs")
        .unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    send(&mut ep, Duration::ZERO, &buf[..n]);
    assert_eq!(ep.observer_count(), 1);
    // A plain registration on that token is answered without Observe and
    // does not replace the protected observation.
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 62);
    b.token(&[6])
        .unwrap()
        .observe(0)
        .unwrap()
        .uri_path("obs")
        .unwrap();
    let n = b.emit(&mut buf).unwrap();
    send(&mut ep, Duration::ZERO, &buf[..n]);
    let mut plain_answered = 0;
    while let Some(ev) = ep.poll_event() {
        if let Event::Request { id, request, .. } = ev {
            let answer = Response::new(Code::CONTENT).payload(b"p");
            ep.respond(Duration::ZERO, id, &answer).unwrap();
            if request.message().unwrap().observe().unwrap() == Some(0) {
                plain_answered += 1;
            }
        }
    }
    assert_eq!(plain_answered, 1);
    for d in drain(&mut ep) {
        let m = Message::parse(&d).unwrap();
        assert!(!m.has_option(OptionNumber::OSCORE));
        assert_eq!(m.observe().unwrap(), None, "a plain request got Observe");
    }
    assert_eq!(ep.observer_count(), 1);
    // The next notification is still the protected one, to the protected
    // registration.
    ep.notify(
        Duration::ZERO,
        "obs",
        &Response::new(Code::CONTENT).payload(b"9"),
    )
    .unwrap();
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    let inner = open(&mut client, &mut binding, &sent[0]);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"9");
    // A protected request of another context with that token cancels
    // nothing either.
    let mut d_ctx =
        SecurityContext::new(&params(&[9; 16], b"D", b"S"), SenderSequence::Volatile).unwrap();
    let (wire, _) = protect(
        &mut d_ctx,
        &plain_request(MessageType::Con, Code::GET, 63, &[6], "obs"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    assert_eq!(ep.observer_count(), 1);
    // Its own context's Observe 1 (protected) does.
    let (wire, _) = protected_observe(&mut client, 64, &[6], 1);
    send(&mut ep, Duration::ZERO, &wire);
    assert_eq!(ep.observer_count(), 0);
}

#[test]
fn protected_observation_ends_with_its_context() {
    let (mut ep, _client, _binding) = registered();
    // A request of that context still waiting for its answer goes too.
    let mut c2 = client_ctx(&SECRET);
    // (A fresh client context would reuse Partial IV 0; skip past it.)
    for _ in 0..5 {
        protect(
            &mut c2,
            &plain_request(MessageType::Con, Code::GET, 1, &[1], "hello"),
        );
    }
    let (wire, _) = protect(
        &mut c2,
        &plain_request(MessageType::Con, Code::GET, 70, &[7], "hello"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    let removed = ep.remove_oscore_context(0).unwrap();
    assert_eq!(removed.recipient_id(), b"C");
    assert_eq!(ep.observer_count(), 0);
    assert_eq!(ep.pending_requests(), 0);
    assert_eq!(
        ep.respond(Duration::ZERO, id, &Response::new(Code::CONTENT)),
        Err(cssf_coap::Error::UnknownId)
    );
    assert_eq!(
        ep.notify(Duration::ZERO, "obs", &Response::new(Code::CONTENT))
            .unwrap(),
        0
    );
    assert!(drain(&mut ep).is_empty());
    // Context "D" kept its index; "C" is not found any more.
    assert_eq!(ep.oscore_context(1).unwrap().recipient_id(), b"D");
    assert!(ep.oscore_context(0).is_none());
    let (wire, _) = protected_observe(&mut c2, 71, &[8], 0);
    send(&mut ep, Duration::ZERO, &wire);
    assert_eq!(ep.poll_event(), None);
    assert_eq!(ep.stats().oscore_refused, 1);
}

/// `len` bytes of a recognisable body.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn large_protected_get_is_answered_in_protected_inner_block2_blocks() {
    // (No amplification limit: this client never proves its address.)
    let cfg = Config {
        max_szx: 2,
        amplification_factor: 0,
        ..Config::default()
    };
    let mut ep = server_with(cfg);
    let mut client = client_ctx(&SECRET);
    let whole = body(200);
    let mut got = Vec::new();
    let mut num = 0u32;
    let mut pivs = Vec::new();
    loop {
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 200 + num as u16);
        b.token(&[9]).unwrap().uri_path("big").unwrap();
        if num > 0 {
            b.block2(cssf_coap::Block::new(num, false, 2).unwrap())
                .unwrap();
        }
        let mut buf = [0u8; 64];
        let n = b.emit(&mut buf).unwrap();
        let (wire, mut binding) = protect(&mut client, &buf[..n]);
        pivs.push(partial_iv(&wire).unwrap());
        // Block2 is Class E: nothing of it shows outside.
        assert!(!Message::parse(&wire)
            .unwrap()
            .has_option(OptionNumber::BLOCK2));
        send(&mut ep, Duration::ZERO, &wire);
        let Some(Event::Request { id, .. }) = ep.poll_event() else {
            panic!("block request {num} not routed")
        };
        ep.respond(
            Duration::ZERO,
            id,
            &Response::new(Code::CONTENT).payload(&whole),
        )
        .unwrap();
        let sent = drain(&mut ep);
        assert_eq!(sent.len(), 1);
        assert!(!Message::parse(&sent[0])
            .unwrap()
            .has_option(OptionNumber::BLOCK2));
        let inner = open(&mut client, &mut binding, &sent[0]);
        let inner = Message::parse(&inner).unwrap();
        assert_eq!(inner.code(), Code::CONTENT);
        let b2 = inner.block2().unwrap().unwrap();
        assert_eq!(b2.num(), num);
        assert_eq!(b2.size(), 64);
        got.extend_from_slice(inner.payload());
        if !b2.more() {
            break;
        }
        num += 1;
        assert!(num < 10);
    }
    assert_eq!(num, 3);
    assert_eq!(got, whole);
    assert!(pivs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ep.stats().oscore_refused, 0);
}

#[test]
fn oscore_context_table_is_bounded() {
    let mut ep: Endpoint<u8, SimRng, 2> = Endpoint::new(Config::default(), SimRng::new(1), &[]);
    for i in 0..2u8 {
        let ctx =
            SecurityContext::new(&params(&SECRET, b"S", &[i]), SenderSequence::Volatile).unwrap();
        assert_eq!(ep.add_oscore_context(ctx).unwrap(), usize::from(i));
    }
    let ctx = SecurityContext::new(&params(&SECRET, b"S", &[9]), SenderSequence::Volatile).unwrap();
    assert_eq!(ep.add_oscore_context(ctx), Err(cssf_coap::Error::Busy));
    assert_eq!(ep.oscore_context(1).unwrap().recipient_id(), &[1]);
}

// ----- client side: `Endpoint::request_protected` -----

/// A client endpoint holding the context for the server (index 0).
fn client_endpoint(secret: &[u8]) -> Server {
    let mut ep: Server = Endpoint::new(Config::default(), SimRng::new(3), &[]);
    assert_eq!(ep.add_oscore_context(client_ctx(secret)).unwrap(), 0);
    ep
}

/// Moves every datagram `from` sends into `to` (peer ids: the client is
/// 1 for the server, the server 2 for the client). Returns what moved.
fn carry(from: &mut Server, to: &mut Server, now: Duration, to_peer_id: u8) -> Vec<Vec<u8>> {
    let mut moved = Vec::new();
    let mut buf = [0u8; 1280];
    while let Some(tx) = from.poll_transmit(now, &mut buf).unwrap() {
        let mut d = buf[..tx.len].to_vec();
        moved.push(d.clone());
        to.handle_datagram(now, to_peer_id, &mut d).unwrap();
    }
    moved
}

#[test]
fn endpoint_client_and_server_speak_oscore_end_to_end_through_a_lost_answer() {
    let mut server = server();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::ZERO;
    let id = client
        .request_protected(
            t0,
            2,
            &cssf_coap::endpoint::Request::put("secret").payload(b"v=1"),
            0,
        )
        .unwrap();
    let sent = carry(&mut client, &mut server, t0, 1);
    assert_eq!(sent.len(), 1);
    let outer = Message::parse(&sent[0]).unwrap();
    assert_eq!(outer.code(), Code::POST);
    assert!(outer.uri_path().next().is_none(), "path not encrypted");
    let Some(Event::Request {
        id: rid, request, ..
    }) = server.poll_event()
    else {
        panic!()
    };
    assert_eq!(request.code(), Code::PUT);
    assert_eq!(request.payload(), b"v=1");
    server
        .respond(t0, rid, &Response::new(Code::CHANGED).payload(b"ok"))
        .unwrap();
    // The answer is lost.
    let lost = drain(&mut server);
    assert_eq!(lost.len(), 1);
    // The client retransmits the same protected bytes; the server answers
    // from its cache (no second verification, no second run), the client
    // verifies it.
    let t1 = client.poll_timeout().unwrap();
    client.handle_timeout(t1);
    let resent = carry(&mut client, &mut server, t1, 1);
    assert_eq!(resent, sent);
    assert_eq!(server.poll_event(), None);
    let answer = carry(&mut server, &mut client, t1, 2);
    assert_eq!(answer, lost);
    match client.poll_event() {
        Some(Event::Response {
            id: got, response, ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(response.code(), Code::CHANGED);
            assert_eq!(response.payload(), b"ok");
            assert!(response.security().is_oscore());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.exchange_count(), 0);
    assert_eq!(server.stats().oscore_refused, 0);
    assert_eq!(client.stats().oscore_refused, 0);
    // The same answer once more (a late copy): not a second response.
    let mut late = lost[0].clone();
    client.handle_datagram(t1, 2, &mut late).unwrap();
    assert_eq!(client.poll_event(), None);
}

#[test]
fn endpoint_client_drops_what_does_not_verify() {
    // The client's key is wrong: the server answers 4.00 unprotected,
    // which the client cannot verify and drops; the request stays
    // outstanding until it times out.
    let mut server = server();
    let mut client = client_endpoint(&[0x55; 16]);
    let t0 = Duration::ZERO;
    client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 0)
        .unwrap();
    carry(&mut client, &mut server, t0, 1);
    let back = carry(&mut server, &mut client, t0, 2);
    assert_eq!(back.len(), 1);
    assert_eq!(Message::parse(&back[0]).unwrap().code(), Code::BAD_REQUEST);
    assert_eq!(client.poll_event(), None);
    assert_eq!(client.stats().oscore_refused, 1);
    assert_eq!(client.exchange_count(), 1);

    // A tampered protected answer is dropped as well.
    let mut server = self::server();
    let mut client = client_endpoint(&SECRET);
    client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 0)
        .unwrap();
    carry(&mut client, &mut server, t0, 1);
    let Some(Event::Request { id: rid, .. }) = server.poll_event() else {
        panic!()
    };
    server
        .respond(t0, rid, &Response::new(Code::CONTENT).payload(b"x"))
        .unwrap();
    let mut answer = drain(&mut server).remove(0);
    let last = answer.len() - 1;
    answer[last] ^= 0x80;
    client.handle_datagram(t0, 2, &mut answer).unwrap();
    assert_eq!(client.poll_event(), None);
    assert_eq!(client.stats().oscore_refused, 1);
    assert!(client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 5)
        .is_err());
}

#[test]
fn reordered_and_duplicated_requests_each_run_once() {
    // Two protected requests (Partial IVs 0 and 1) arrive 1, 0, 1, 0: both
    // are taken (the window accepts the older one once), each runs once,
    // and each duplicate gets its own cached answer.
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let (a, mut ba) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 1, &[0xa], "hello"),
    );
    let (b, mut bb) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 2, &[0xb], "hello"),
    );
    let mut answers = Vec::new();
    for (i, d) in [&b, &a, &b, &a].into_iter().enumerate() {
        send(&mut ep, Duration::from_millis(i as u64), d);
        while let Some(ev) = ep.poll_event() {
            let Event::Request { id, request, .. } = ev else {
                panic!()
            };
            let body = format!("t{:x}", request.message().unwrap().token()[0]);
            ep.respond(
                Duration::ZERO,
                id,
                &Response::new(Code::CONTENT).payload(body.as_bytes()),
            )
            .unwrap();
        }
        answers.extend(drain(&mut ep));
    }
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[1], answers[3]);
    let s = ep.stats();
    assert_eq!((s.duplicates, s.oscore_refused), (2, 0));
    let inner = open(&mut client, &mut bb, &answers[0]);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"tb");
    let inner = open(&mut client, &mut ba, &answers[1]);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"ta");
}

// ----- review: state an unauthenticated sender can touch, responses lost -----

/// Everything `ep` sends now, with where it goes.
fn drain_to(ep: &mut Server) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1280];
    while let Some(tx) = ep.poll_transmit(Duration::ZERO, &mut buf).unwrap() {
        out.push((tx.to, buf[..tx.len].to_vec()));
    }
    out
}

/// A request carrying an OSCORE option that verifies with no context: it
/// must not change what the endpoint keeps for anybody else. Today
/// `on_oscore_request` makes room in a full message-ID cache
/// (`admit_request`, which evicts a victim) before verifying, so a sender
/// without any key evicts the cached protected answer of a verified
/// client; that client's retransmission (answer lost) then meets the
/// replay window and gets an unprotected 4.01 instead of its answer.
#[test]
fn unauthenticated_oscore_input_evicts_no_cached_answer() {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let t0 = Duration::ZERO;
    let (wire, mut binding) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 0x100, &[1], "hello"),
    );
    send(&mut ep, t0, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    ep.respond(t0, id, &Response::new(Code::CONTENT).payload(b"v1"))
        .unwrap();
    let first = drain_to(&mut ep);
    assert_eq!(first.len(), 1);
    // Other (plain, unverified) clients fill the message-ID cache (D = 32),
    // each request answered.
    for p in 2..=32u8 {
        let mut d = plain_request(MessageType::Con, Code::GET, u16::from(p), &[p], "hello");
        ep.handle_datagram(t0, p, &mut d).unwrap();
        let Some(Event::Request { id, .. }) = ep.poll_event() else {
            panic!("peer {p}")
        };
        ep.respond(t0, id, &Response::new(Code::CONTENT)).unwrap();
    }
    drain_to(&mut ep);
    // A stranger with no key: an OSCORE option naming kid "C", garbage
    // ciphertext. Refused 4.00, as it should be.
    let mut b = MessageBuilder::<2>::new(MessageType::Con, Code::POST, 9);
    b.token(&[9]).unwrap();
    b.add_option(OptionNumber::OSCORE, &[0x09, 0x07, b'C'])
        .unwrap();
    b.payload(&[0x55; 12]);
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    ep.handle_datagram(t0, 200, &mut buf[..n]).unwrap();
    let refusal = drain_to(&mut ep);
    assert_eq!(
        Message::parse(&refusal[0].1).unwrap().code(),
        Code::BAD_REQUEST
    );
    // The verified client's answer was lost; it retransmits well within
    // MAX_TRANSMIT_SPAN and must get the cached protected answer.
    send(&mut ep, Duration::from_secs(3), &wire);
    let again = drain_to(&mut ep);
    assert_eq!(
        again, first,
        "cached answer evicted by unauthenticated input"
    );
    let inner = open(&mut client, &mut binding, &again[0].1);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"v1");
    // Control: a request that verifies still makes room in the full cache
    // (the eviction happens, once verified) and reaches the application.
    let (wire, _) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 0x101, &[1, 1], "hello"),
    );
    send(&mut ep, Duration::from_secs(3), &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!("a verified request refused in a full cache")
    };
    ep.respond(Duration::from_secs(3), id, &Response::new(Code::CONTENT))
        .unwrap();
    let answer = drain_to(&mut ep);
    send(&mut ep, Duration::from_secs(4), &wire);
    assert_eq!(drain_to(&mut ep), answer, "its message ID was remembered");
}

/// The client side verifies a protected response (which spends the
/// request's nonce in its binding) before `on_response` decides whether it
/// has room for it; when it has not (here: the event queue is full, the
/// application polls events after a batch of datagrams), the response is
/// dropped "to let the peer repeat", but the repeat (the server's cached
/// bytes) then fails as a replay: the exchange can never complete. A
/// plain request recovers from the same drop.
#[test]
fn client_keeps_a_verified_response_it_had_no_room_for_retryable() {
    let mut server = server();
    let mut client: Server = Endpoint::new(Config::default(), SimRng::new(3), &RESOURCES);
    client.add_oscore_context(client_ctx(&SECRET)).unwrap();
    let t0 = Duration::ZERO;
    let id = client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 0)
        .unwrap();
    carry(&mut client, &mut server, t0, 1);
    let Some(Event::Request { id: rid, .. }) = server.poll_event() else {
        panic!()
    };
    server
        .respond(t0, rid, &Response::new(Code::CONTENT).payload(b"ok"))
        .unwrap();
    // In the same batch as the answer, eight plain requests reach the
    // client (its own server side) from four peers: its event queue is
    // full when the protected answer is handled.
    for p in 3..=6u8 {
        for k in 0..2u8 {
            let mut d = plain_request(
                MessageType::Con,
                Code::GET,
                u16::from(p * 10 + k),
                &[p, k],
                "hello",
            );
            client.handle_datagram(t0, p, &mut d).unwrap();
        }
    }
    let answer = carry(&mut server, &mut client, t0, 2);
    assert_eq!(answer.len(), 1);
    // The application drains its events now: the response is not among
    // them (there was no room for it), and it was not refused as forged.
    let dropped = client.stats().dropped;
    assert!(dropped >= 1);
    while let Some(ev) = client.poll_event() {
        assert!(!matches!(ev, Event::Response { .. }), "{ev:?}");
    }
    // The client retransmits (its other timers, the Empty ACKs to the
    // plain requests, come first); the server answers from its cache.
    let mut t1 = t0;
    let mut buf = [0u8; 1280];
    while client.stats().retransmissions == 0 {
        t1 = client.poll_timeout().unwrap();
        client.handle_timeout(t1);
        while let Some(tx) = client.poll_transmit(t1, &mut buf).unwrap() {
            if tx.to == 2 {
                let mut d = buf[..tx.len].to_vec();
                server.handle_datagram(t1, 1, &mut d).unwrap();
            }
        }
    }
    let again = carry(&mut server, &mut client, t1, 2);
    assert_eq!(again, answer, "the server repeats its cached answer");
    match client.poll_event() {
        Some(Event::Response {
            id: got, response, ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(response.payload(), b"ok");
            assert_eq!(client.stats().oscore_refused, 0);
            assert_eq!(client.stats().dropped, dropped);
        }
        other => panic!(
            "verified response lost for good: {other:?}, client oscore_refused = {}",
            client.stats().oscore_refused
        ),
    }
}

static UPLOAD: [Resource; 1] = [Resource::new("up", Methods::PUT)];

/// PUT /up with Block1 `num`/`more`/16-byte blocks.
fn put_block(mid: u16, num: u32, more: bool, payload: &[u8]) -> Vec<u8> {
    let token = [0x0b, mid as u8];
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::PUT, mid);
    b.token(&token).unwrap().uri_path("up").unwrap();
    b.block1(cssf_coap::Block::new(num, more, 0).unwrap())
        .unwrap();
    b.payload(payload);
    let mut buf = [0u8; 128];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// A Block1 upload begun OSCORE-protected is continued by a plain block
/// from the same address: the endpoint's upload bookkeeping (kept by
/// peer, resource and Request-Tag, not by how the blocks were protected)
/// takes it as the next block, so anyone who can send from the client's
/// address (plain UDP: anyone) completes, or resets, a protected upload;
/// an application assembling by peer and Request-Tag (as cssf-server's
/// `/echo` does) splices the plain block into the protected body. The
/// plain block should be 4.08 (no upload of its kind in progress).
#[test]
fn plain_block_does_not_continue_a_protected_upload() {
    let mut ep: Server = Endpoint::new(Config::default(), SimRng::new(7), &UPLOAD);
    let c = SecurityContext::new(&params(&SECRET, b"S", b"C"), SenderSequence::Volatile).unwrap();
    ep.add_oscore_context(c).unwrap();
    let mut client = client_ctx(&SECRET);
    let t0 = Duration::ZERO;
    let (wire, _) = protect(&mut client, &put_block(1, 0, true, &[b'a'; 16]));
    send(&mut ep, t0, &wire);
    let Some(Event::Request { id, request, .. }) = ep.poll_event() else {
        panic!()
    };
    assert!(request.security().is_oscore());
    ep.respond(t0, id, &Response::new(Code::CHANGED)).unwrap();
    drain(&mut ep);
    // Block 1, plain, from the same address.
    send(&mut ep, t0, &put_block(2, 1, false, b"evil"));
    let ev = ep.poll_event();
    let sent = drain(&mut ep);
    assert!(
        ev.is_none(),
        "plain block taken as the end of a protected upload: {ev:?}"
    );
    assert_eq!(
        Message::parse(&sent[0]).unwrap().code(),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    // Control: the protected upload is intact; its own block 1 ends it.
    let (wire, _) = protect(&mut client, &put_block(3, 1, false, b"tail"));
    send(&mut ep, t0, &wire);
    let Some(Event::Request { request, .. }) = ep.poll_event() else {
        panic!("protected continuation refused")
    };
    assert!(request.security().is_oscore());
    assert_eq!(request.payload(), b"tail");
}

/// RFC 9175 §2.4 bounds an answer toward an unverified address by what
/// that address sent: the OSCORE datagram. The endpoint measures the
/// decrypted inner request instead (`PendingRequest::req_len`, and
/// `reply_now`'s `msg`, are the inner message) and then takes the OSCORE
/// overhead off again, so a protected answer well under three times the
/// datagram received is replaced by an Echo challenge (which
/// `request_protected` and cssf-client do not retry: the client sees a
/// 4.01).
#[test]
fn amplification_limit_counts_the_datagram_received() {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let (wire, mut binding) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 0x77, &[1], "hello"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    // Protected, the answer is 17 bytes plus the payload (header 4, token
    // 1, empty OSCORE option 1, marker 1, code 1, tag 8, inner marker 1):
    // a few bytes under three times the request.
    let payload = vec![b'x'; 3 * wire.len() - 17 - 4];
    ep.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(&payload),
    )
    .unwrap();
    let sent = drain(&mut ep);
    assert!(sent[0].len() <= 3 * wire.len(), "{} bytes", sent[0].len());
    let inner = open(&mut client, &mut binding, &sent[0]);
    let inner = Message::parse(&inner).unwrap();
    assert_eq!(
        inner.code(),
        Code::CONTENT,
        "answer of {} bytes to a {}-byte request replaced by a challenge",
        17 + payload.len(),
        wire.len()
    );
    // Control: one byte over three times the datagram is still a challenge.
    let (wire, mut binding) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 0x78, &[2], "hello"),
    );
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    let payload = vec![b'x'; 3 * wire.len() - 17 + 1];
    ep.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(&payload),
    )
    .unwrap();
    let sent = drain(&mut ep);
    assert!(sent[0].len() <= 3 * wire.len(), "{} bytes", sent[0].len());
    let inner = open(&mut client, &mut binding, &sent[0]);
    let inner = Message::parse(&inner).unwrap();
    assert_eq!(inner.code(), Code::UNAUTHORIZED);
    assert!(inner.option(OptionNumber::ECHO).is_some());
}

/// Our client endpoint observes our server endpoint over OSCORE:
/// notifications arrive verified as `Event::Notification`s, a replayed
/// one (its outer message ID changed, which OSCORE does not protect) is
/// refused, a duplicate is not delivered twice, and `cancel_observe` ends
/// the observation with a protected Observe 1.
#[test]
fn endpoint_client_observes_over_oscore_and_cancels() {
    let mut server = server();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::ZERO;
    let id = client
        .request_protected(
            t0,
            2,
            &cssf_coap::endpoint::Request::get("obs").observe(),
            0,
        )
        .unwrap();
    let sent = carry(&mut client, &mut server, t0, 1);
    assert_eq!(Message::parse(&sent[0]).unwrap().code(), Code::FETCH);
    let Some(Event::Request { id: rid, .. }) = server.poll_event() else {
        panic!()
    };
    server
        .respond(t0, rid, &Response::new(Code::CONTENT).payload(b"n0"))
        .unwrap();
    carry(&mut server, &mut client, t0, 2);
    assert_eq!(server.observer_count(), 1);
    match client.poll_event() {
        Some(Event::Notification {
            id: got,
            notification,
            last: true,
            ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(notification.payload(), b"n0");
            assert!(notification.security().is_oscore());
        }
        other => panic!("{other:?}"),
    }
    let mut notes = Vec::new();
    for i in 1..=3u8 {
        let payload = [b'n', b'0' + i];
        server
            .notify(t0, "obs", &Response::new(Code::CONTENT).payload(&payload))
            .unwrap();
        let moved = carry(&mut server, &mut client, t0, 2);
        assert_eq!(moved.len(), 1);
        notes.push(moved[0].clone());
        match client.poll_event() {
            Some(Event::Notification {
                id: got,
                notification,
                ..
            }) => {
                assert_eq!(got, id);
                assert_eq!(notification.payload(), &payload);
                assert!(notification.security().is_oscore());
            }
            other => panic!("{other:?}"),
        }
        // Answer the client's ACK, if any, to keep the server's table clear.
        carry(&mut client, &mut server, t0, 1);
    }
    assert_eq!(client.stats().oscore_refused, 0);
    // A duplicate (same message ID) is acknowledged again, not delivered.
    let mut dup = notes[2].clone();
    client.handle_datagram(t0, 2, &mut dup).unwrap();
    assert_eq!(client.poll_event(), None);
    // A replay under another message ID verifies but is older than the
    // newest taken: refused (RFC 8613 §7.4.1).
    for (k, old) in notes.iter().enumerate() {
        let mut d = old.clone();
        d[2] ^= 0x55;
        d[3] = k as u8;
        client.handle_datagram(t0, 2, &mut d).unwrap();
        assert_eq!(client.poll_event(), None);
    }
    assert_eq!(client.stats().oscore_refused, 3);
    // Cancel: a protected GET with Observe 1 and the same token.
    client.cancel_observe(t0, id).unwrap();
    let sent = carry(&mut client, &mut server, t0, 1);
    let cancel = sent
        .iter()
        .map(|d| Message::parse(d).unwrap())
        .find(|m| m.code().is_request())
        .expect("no cancellation sent");
    assert!(cancel.has_option(OptionNumber::OSCORE));
    assert!(cancel.uri_path().next().is_none(), "path not protected");
    assert_eq!(server.observer_count(), 0);
    let Some(Event::Request {
        id: rid, request, ..
    }) = server.poll_event()
    else {
        panic!("cancellation not routed")
    };
    assert_eq!(request.message().unwrap().observe().unwrap(), Some(1));
    server
        .respond(t0, rid, &Response::new(Code::CONTENT).payload(b"bye"))
        .unwrap();
    carry(&mut server, &mut client, t0, 2);
    match client.poll_event() {
        Some(Event::Response {
            id: got, response, ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(response.payload(), b"bye");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.exchange_count(), 0);
    // A later notification (none is sent: the server forgot the observer).
    assert_eq!(
        server
            .notify(t0, "obs", &Response::new(Code::CONTENT))
            .unwrap(),
        0
    );
}

/// Our client fetches a large resource from our server over OSCORE: each
/// block is its own protected request (a new Partial IV), each block
/// response verifies, and the blocks make the whole body.
#[test]
fn endpoint_client_fetches_protected_block2_blocks() {
    let mut server = server_with(Config {
        max_szx: 2,
        ..Config::default()
    });
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::ZERO;
    let whole = body(300);
    let id = client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("big"), 0)
        .unwrap();
    let mut got = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..10 {
        let sent = carry(&mut client, &mut server, t0, 1);
        for d in &sent {
            let m = Message::parse(d).unwrap();
            if m.code().is_request() {
                assert_eq!(m.code(), Code::POST);
                assert!(!m.has_option(OptionNumber::BLOCK2));
                requests.push(partial_iv(d).unwrap());
            }
        }
        while let Some(ev) = server.poll_event() {
            let Event::Request {
                id: rid, request, ..
            } = ev
            else {
                continue;
            };
            assert!(request.security().is_oscore());
            server
                .respond(t0, rid, &Response::new(Code::CONTENT).payload(&whole))
                .unwrap();
        }
        carry(&mut server, &mut client, t0, 2);
        let mut done = false;
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Response {
                    id: got_id,
                    response,
                    last,
                    ..
                } => {
                    assert_eq!(got_id, id);
                    assert!(response.security().is_oscore());
                    got.extend_from_slice(response.payload());
                    done = last;
                }
                other => panic!("{other:?}"),
            }
        }
        if done {
            break;
        }
    }
    assert_eq!(got, whole);
    // Five blocks, and the Echo retry of the first: its answer was over
    // the amplification limit toward an address not verified yet (RFC
    // 9175 §2.4), so the server challenged it first.
    assert_eq!(server.stats().amplification_limited, 1);
    assert_eq!(requests.len(), 6);
    assert!(requests.windows(2).all(|w| w[0] < w[1]), "{requests:?}");
    assert_eq!(client.exchange_count(), 0);
    assert_eq!(client.stats().oscore_refused, 0);
    assert_eq!(server.stats().oscore_refused, 0);
}

/// An exchange protected with a context that is removed ends with
/// `Event::Aborted`, and its response is not taken any more.
#[test]
fn endpoint_client_exchange_ends_with_its_context() {
    let mut server = server();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::ZERO;
    let id = client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 0)
        .unwrap();
    carry(&mut client, &mut server, t0, 1);
    let Some(Event::Request { id: rid, .. }) = server.poll_event() else {
        panic!()
    };
    assert!(client.remove_oscore_context(0).is_some());
    assert_eq!(client.poll_event(), Some(Event::Aborted { id }));
    assert_eq!(client.exchange_count(), 0);
    server
        .respond(t0, rid, &Response::new(Code::CONTENT).payload(b"x"))
        .unwrap();
    carry(&mut server, &mut client, t0, 2);
    assert_eq!(client.poll_event(), None);
    assert!(client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 0)
        .is_err());
}

/// A protected GET with the token of a plain observation of the same
/// address cancels nothing (a plain GET with that token would).
#[test]
fn protected_get_cancels_no_plain_observation() {
    let mut ep = server();
    let mut client = client_ctx(&SECRET);
    let t0 = Duration::ZERO;
    let mut reg = MessageBuilder::<8>::new(MessageType::Con, Code::GET, 0x300);
    reg.token(&[0x0b])
        .unwrap()
        .observe(0)
        .unwrap()
        .uri_path("obs")
        .unwrap();
    let mut buf = [0u8; 64];
    let n = reg.emit(&mut buf).unwrap();
    send(&mut ep, t0, &buf[..n]);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    ep.respond(t0, id, &Response::new(Code::CONTENT)).unwrap();
    drain(&mut ep);
    assert_eq!(ep.observer_count(), 1);
    let (wire, _) = protect(
        &mut client,
        &plain_request(MessageType::Con, Code::GET, 0x301, &[0x0b], "hello"),
    );
    send(&mut ep, t0, &wire);
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
    assert_eq!(
        ep.observer_count(),
        1,
        "a protected GET cancelled a plain observation"
    );
    // Control: a plain GET with the token does cancel it.
    send(
        &mut ep,
        t0,
        &plain_request(MessageType::Con, Code::GET, 0x302, &[0x0b], "hello"),
    );
    assert_eq!(ep.observer_count(), 0);
}

// ----- replay-window resynchronisation with Echo (RFC 8613 B.1.2) -----

/// A server "after a reboot": the context for client "C" restored from
/// flash (`SenderSequence::Persisted`, a sequence bound persisted) with no
/// saved replay window, so the window is not synchronised.
fn restarted_server() -> Server {
    let mut ep: Server = Endpoint::new(Config::default(), SimRng::new(11), &RESOURCES);
    let mut c = SecurityContext::new(
        &params(&SECRET, b"S", b"C"),
        SenderSequence::Persisted {
            stored: 100,
            step: 100,
        },
    )
    .unwrap();
    c.persisted(200);
    assert!(!c.is_replay_synchronised());
    assert_eq!(ep.add_oscore_context(c).unwrap(), 0);
    ep
}

/// Sends `wire` from `peer` and returns the one answer, verified with the
/// client context and `binding`: the inner message bytes, after checking
/// that no request reached the handler and that the answer is protected
/// under a Partial IV of the server's own (never the request's nonce).
fn echo_challenge(
    ep: &mut Server,
    now: Duration,
    peer: u8,
    wire: &[u8],
    client: &mut SecurityContext,
    binding: &mut RequestBinding,
) -> Vec<u8> {
    let mut d = wire.to_vec();
    ep.handle_datagram(now, peer, &mut d).unwrap();
    assert_eq!(ep.poll_event(), None, "processed before synchronisation");
    let mut out = Vec::new();
    let mut buf = [0u8; 1280];
    while let Some(tx) = ep.poll_transmit(now, &mut buf).unwrap() {
        assert_eq!(tx.to, peer);
        out.push(buf[..tx.len].to_vec());
    }
    assert_eq!(out.len(), 1);
    let outer = Message::parse(&out[0]).unwrap();
    let opt = outer.option(OptionNumber::OSCORE).unwrap();
    assert!(!opt.is_empty(), "the 4.01 reuses the request's nonce");
    let inner = open(client, binding, &out[0]);
    let m = Message::parse(&inner).unwrap();
    assert_eq!(m.code(), Code::UNAUTHORIZED);
    assert!(m.option(OptionNumber::ECHO).is_some());
    inner
}

fn echo_of(inner: &[u8]) -> Vec<u8> {
    Message::parse(inner)
        .unwrap()
        .option(OptionNumber::ECHO)
        .unwrap()
        .to_vec()
}

fn request_with_echo(mid: u16, token: &[u8], path: &str, echo: &[u8]) -> Vec<u8> {
    let mut b = MessageBuilder::<8>::new(MessageType::Con, Code::GET, mid);
    b.token(token).unwrap().uri_path(path).unwrap();
    b.add_option(OptionNumber::ECHO, echo).unwrap();
    let mut buf = [0u8; 256];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn replayed_request_after_restart_is_challenged_until_an_echo_round_trip() {
    let mut client = client_ctx(&SECRET);
    // Before the reboot: a request an attacker records (the server took
    // and answered it then).
    let plain = plain_request(MessageType::Con, Code::GET, 0x0100, &[1], "secret");
    let (captured, mut cap_binding) = protect(&mut client, &plain);
    let mut ep = restarted_server();
    let t0 = Duration::from_secs(1000);
    // Replayed after the reboot: verified, but not processed; a 4.01 with
    // Echo, and the window does not move.
    echo_challenge(&mut ep, t0, 1, &captured, &mut client, &mut cap_binding);
    let ctx = ep.oscore_context(0).unwrap();
    assert!(!ctx.is_replay_synchronised());
    assert_eq!(ctx.replay_window().highest(), None);
    // Again under another message ID (no duplicate): challenged again.
    let mut replay = captured.clone();
    replay[2..4].copy_from_slice(&0x0101u16.to_be_bytes());
    let mut b2 = cap_binding;
    let inner = echo_challenge(&mut ep, t0, 1, &replay, &mut client, &mut b2);
    assert_eq!(ep.stats().oscore_refused, 2);
    // The genuine client repeats its request with the Echo value (a new
    // Partial IV): processed, and the window synchronised at it.
    let echo = echo_of(&inner);
    let plain = request_with_echo(0x0102, &[2], "secret", &echo);
    let (wire, mut binding) = protect(&mut client, &plain);
    send(&mut ep, t0, &wire);
    let Some(Event::Request { id, request, .. }) = ep.poll_event() else {
        panic!("the fresh request was not processed")
    };
    assert_eq!(request.code(), Code::GET);
    ep.respond(t0, id, &Response::new(Code::CONTENT).payload(b"7"))
        .unwrap();
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    let got = open(&mut client, &mut binding, &sent[0]);
    assert_eq!(Message::parse(&got).unwrap().payload(), b"7");
    let ctx = ep.oscore_context(0).unwrap();
    assert!(ctx.is_replay_synchronised());
    assert_eq!(
        ctx.replay_window().highest(),
        Some(binding.partial_iv.sequence())
    );
    // The recorded request, once more: now below the window, refused.
    replay[2..4].copy_from_slice(&0x0103u16.to_be_bytes());
    let (code, diag) = refused(&mut ep, &replay);
    assert_eq!(code, Code::UNAUTHORIZED);
    assert_eq!(diag, b"Replay detected");
    // So is the Echo request itself, replayed.
    let mut again = wire.clone();
    again[2..4].copy_from_slice(&0x0104u16.to_be_bytes());
    assert_eq!(refused(&mut ep, &again).0, Code::UNAUTHORIZED);
    // And the client's next request is taken as usual.
    let plain = plain_request(MessageType::Con, Code::GET, 0x0105, &[3], "hello");
    let (wire, _) = protect(&mut client, &plain);
    send(&mut ep, t0, &wire);
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
}

#[test]
fn echo_from_another_peer_or_stale_does_not_synchronise() {
    let mut client = client_ctx(&SECRET);
    let mut ep = restarted_server();
    let t0 = Duration::from_secs(1000);
    let plain = plain_request(MessageType::Con, Code::GET, 1, &[1], "hello");
    let (wire, mut binding) = protect(&mut client, &plain);
    let inner = echo_challenge(&mut ep, t0, 1, &wire, &mut client, &mut binding);
    let echo = echo_of(&inner);
    // The value issued to peer 1, used from peer 5: challenged.
    let plain = request_with_echo(2, &[2], "hello", &echo);
    let (wire, mut binding) = protect(&mut client, &plain);
    echo_challenge(&mut ep, t0, 5, &wire, &mut client, &mut binding);
    assert!(!ep.oscore_context(0).unwrap().is_replay_synchronised());
    // From peer 1, but once its lifetime ran out: challenged.
    let late = t0 + Config::default().echo_lifetime + Duration::from_secs(1);
    let plain = request_with_echo(3, &[3], "hello", &echo);
    let (wire, mut binding) = protect(&mut client, &plain);
    echo_challenge(&mut ep, late, 1, &wire, &mut client, &mut binding);
    assert!(!ep.oscore_context(0).unwrap().is_replay_synchronised());
    // A made-up value: challenged.
    let plain = request_with_echo(4, &[4], "hello", &[0x55; 12]);
    let (wire, mut binding) = protect(&mut client, &plain);
    echo_challenge(&mut ep, t0, 1, &wire, &mut client, &mut binding);
    assert!(!ep.oscore_context(0).unwrap().is_replay_synchronised());
    assert_eq!(
        ep.oscore_context(0).unwrap().replay_window().highest(),
        None
    );
    // The value from peer 1 in time: synchronised.
    let plain = request_with_echo(5, &[5], "hello", &echo);
    let (wire, _) = protect(&mut client, &plain);
    send(&mut ep, t0 + Duration::from_secs(1), &wire);
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
    assert!(ep.oscore_context(0).unwrap().is_replay_synchronised());
}

#[test]
fn endpoint_client_repeats_a_protected_request_with_the_servers_echo() {
    let mut server = restarted_server();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::from_secs(50);
    let id = client
        .request_protected(
            t0,
            2,
            &cssf_coap::endpoint::Request::put("secret").payload(b"v=2"),
            0,
        )
        .unwrap();
    let first = carry(&mut client, &mut server, t0, 1);
    assert_eq!(first.len(), 1);
    assert_eq!(server.poll_event(), None);
    // The protected 4.01 Echo goes back; the client repeats at once.
    let challenge = carry(&mut server, &mut client, t0, 2);
    assert_eq!(challenge.len(), 1);
    assert_eq!(client.poll_event(), None, "the 4.01 was delivered");
    let second = carry(&mut client, &mut server, t0, 1);
    assert_eq!(second.len(), 1);
    assert_ne!(second, first);
    let o1 = Message::parse(&first[0]).unwrap();
    let o2 = Message::parse(&second[0]).unwrap();
    assert_eq!(o1.token(), o2.token());
    assert_ne!(o1.message_id(), o2.message_id());
    assert_ne!(
        o1.option(OptionNumber::OSCORE),
        o2.option(OptionNumber::OSCORE),
        "same Partial IV"
    );
    let Some(Event::Request {
        id: rid, request, ..
    }) = server.poll_event()
    else {
        panic!("the repeated request was not processed")
    };
    assert_eq!(request.code(), Code::PUT);
    assert_eq!(request.payload(), b"v=2");
    assert!(request
        .message()
        .unwrap()
        .option(OptionNumber::ECHO)
        .is_some());
    server
        .respond(t0, rid, &Response::new(Code::CHANGED).payload(b"ok"))
        .unwrap();
    carry(&mut server, &mut client, t0, 2);
    match client.poll_event() {
        Some(Event::Response {
            id: got, response, ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(response.code(), Code::CHANGED);
            assert_eq!(response.payload(), b"ok");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.exchange_count(), 0);
    assert_eq!(client.stats().oscore_refused, 0);
    assert!(server.oscore_context(0).unwrap().is_replay_synchronised());
}

#[test]
fn endpoint_client_repeats_with_echo_only_once() {
    // A server that challenges every time (its Echo values go stale at
    // once): the client repeats once, then delivers the 4.01.
    let mut server: Server = Endpoint::new(
        Config {
            echo_lifetime: Duration::ZERO,
            ..Config::default()
        },
        SimRng::new(11),
        &RESOURCES,
    );
    let mut c = SecurityContext::new(
        &params(&SECRET, b"S", b"C"),
        SenderSequence::Persisted {
            stored: 0,
            step: 10,
        },
    )
    .unwrap();
    c.persisted(10);
    server.add_oscore_context(c).unwrap();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::from_secs(5);
    let id = client
        .request_protected(t0, 2, &cssf_coap::endpoint::Request::get("hello"), 0)
        .unwrap();
    for _ in 0..2 {
        assert_eq!(carry(&mut client, &mut server, t0, 1).len(), 1);
        assert_eq!(server.poll_event(), None);
        assert_eq!(carry(&mut server, &mut client, t0, 2).len(), 1);
    }
    match client.poll_event() {
        Some(Event::Response {
            id: got, response, ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(response.code(), Code::UNAUTHORIZED);
        }
        other => panic!("{other:?}"),
    }
    assert!(carry(&mut client, &mut server, t0, 1).is_empty());
}

/// Our client uploads a body larger than one block to our server over
/// OSCORE (inner Block1, RFC 8613 §4.1.3.4.1): every block is its own
/// protected request (a new Partial IV), the server's application gets
/// each block in order as a verified request, and the client reports one
/// final response.
#[test]
fn endpoint_client_uploads_protected_block1_blocks() {
    let cfg = Config {
        max_szx: 2,
        amplification_factor: 0,
        ..Config::default()
    };
    let mut server = server_with(cfg);
    let mut client: Server = Endpoint::new(cfg, SimRng::new(3), &[]);
    client.add_oscore_context(client_ctx(&SECRET)).unwrap();
    let t0 = Duration::ZERO;
    let whole = body(200);
    let id = client
        .upload_protected(
            t0,
            2,
            &cssf_coap::endpoint::Request::put("secret").payload(&whole),
            0,
        )
        .unwrap();
    let mut got = Vec::new();
    let mut pivs = Vec::new();
    let mut blocks = Vec::new();
    let mut done = false;
    for _ in 0..10 {
        for d in carry(&mut client, &mut server, t0, 1) {
            let m = Message::parse(&d).unwrap();
            if m.code().is_request() {
                assert_eq!(m.code(), Code::POST);
                assert!(!m.has_option(OptionNumber::BLOCK1), "Block1 outside");
                assert!(m.payload().len() > 8);
                pivs.push(partial_iv(&d).unwrap());
            }
        }
        while let Some(ev) = server.poll_event() {
            let Event::Request {
                id: rid, request, ..
            } = ev
            else {
                panic!("{ev:?}")
            };
            assert!(request.security().is_oscore());
            assert_eq!(request.code(), Code::PUT);
            let b1 = request.message().unwrap().block1().unwrap().unwrap();
            blocks.push(b1.num());
            got.extend_from_slice(request.payload());
            server
                .respond(t0, rid, &Response::new(Code::CHANGED))
                .unwrap();
        }
        carry(&mut server, &mut client, t0, 2);
        if let Some(ev) = client.poll_event() {
            match ev {
                Event::Response {
                    id: got_id,
                    response,
                    last: true,
                    ..
                } => {
                    assert_eq!(got_id, id);
                    assert_eq!(response.code(), Code::CHANGED);
                    assert!(response.security().is_oscore());
                    done = true;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(done, "no final response");
    assert_eq!(client.poll_event(), None, "more than one response event");
    assert_eq!(got, whole);
    assert_eq!(blocks, [0, 1, 2, 3]);
    assert_eq!(pivs.len(), 4);
    assert!(pivs.windows(2).all(|w| w[0] < w[1]), "{pivs:?}");
    assert_eq!(client.exchange_count(), 0);
    assert_eq!(server.stats().oscore_refused, 0);
    assert_eq!(client.stats().oscore_refused, 0);
}

/// A server context whose Sender Sequence Number must be persisted: a
/// notification it cannot number is not sent, and the observation stays;
/// once the number is persisted the next notification goes, protected.
#[test]
fn notification_waits_for_a_persisted_sequence_number_observation_stays() {
    let mut ep: Server = Endpoint::new(Config::default(), SimRng::new(7), &RESOURCES);
    let mut c = SecurityContext::new(
        &params(&SECRET, b"S", b"C"),
        SenderSequence::Persisted { stored: 0, step: 4 },
    )
    .unwrap();
    c.replay_synchronised();
    ep.add_oscore_context(c).unwrap();
    let mut client = client_ctx(&SECRET);
    let (wire, mut binding) = protected_observe(&mut client, 50, &[6], 0);
    send(&mut ep, Duration::ZERO, &wire);
    let Some(Event::Request { id, .. }) = ep.poll_event() else {
        panic!()
    };
    // The registration answer uses the request's nonce: no number needed.
    ep.respond(Duration::ZERO, id, &Response::new(Code::CONTENT))
        .unwrap();
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    open(&mut client, &mut binding, &sent[0]);
    // Nothing persisted yet: the notification is not sent, not lost for
    // the observer.
    let r = Response::new(Code::CONTENT).payload(b"1");
    assert_eq!(ep.notify(Duration::ZERO, "obs", &r).unwrap(), 0);
    assert!(drain(&mut ep).is_empty());
    assert_eq!(ep.observer_count(), 1);
    assert_eq!(ep.stats().dropped, 1);
    let due = ep.oscore_context(0).unwrap().persist_due().unwrap();
    ep.oscore_context_mut(0).unwrap().persisted(due);
    let r = Response::new(Code::CONTENT).payload(b"2");
    assert_eq!(ep.notify(Duration::ZERO, "obs", &r).unwrap(), 1);
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    let inner = open(&mut client, &mut binding, &sent[0]);
    assert_eq!(Message::parse(&inner).unwrap().payload(), b"2");
}

/// `reregister` on a protected observation: a protected GET with Observe
/// 0 on the same token, answered; from then on the notifications are bound
/// to the new request (they verify and arrive), and one bound to the old
/// registration, replayed, no longer verifies.
#[test]
fn endpoint_client_reregisters_a_protected_observation() {
    let mut server = server();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::ZERO;
    let id = client
        .request_protected(
            t0,
            2,
            &cssf_coap::endpoint::Request::get("obs").observe(),
            0,
        )
        .unwrap();
    let answer_all = |server: &mut Server, client: &mut Server, payload: &[u8]| {
        carry(client, server, t0, 1);
        while let Some(ev) = server.poll_event() {
            if let Event::Request { id: rid, .. } = ev {
                server
                    .respond(t0, rid, &Response::new(Code::CONTENT).payload(payload))
                    .unwrap();
            }
        }
        carry(server, client, t0, 2);
    };
    answer_all(&mut server, &mut client, b"r0");
    assert!(matches!(
        client.poll_event(),
        Some(Event::Notification { .. })
    ));
    server
        .notify(t0, "obs", &Response::new(Code::CONTENT).payload(b"old"))
        .unwrap();
    let old = carry(&mut server, &mut client, t0, 2).remove(0);
    assert!(matches!(
        client.poll_event(),
        Some(Event::Notification { .. })
    ));
    carry(&mut client, &mut server, t0, 1);

    client.reregister(t0, id).unwrap();
    answer_all(&mut server, &mut client, b"r1");
    match client.poll_event() {
        Some(Event::Notification {
            id: got,
            notification,
            ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(notification.payload(), b"r1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.observer_count(), 1);
    server
        .notify(t0, "obs", &Response::new(Code::CONTENT).payload(b"new"))
        .unwrap();
    carry(&mut server, &mut client, t0, 2);
    match client.poll_event() {
        Some(Event::Notification { notification, .. }) => {
            assert_eq!(notification.payload(), b"new");
        }
        other => panic!("{other:?}"),
    }
    let refused = client.stats().oscore_refused;
    let mut d = old.clone();
    d[2] ^= 0x33;
    client.handle_datagram(t0, 2, &mut d).unwrap();
    assert_eq!(client.poll_event(), None);
    assert_eq!(client.stats().oscore_refused, refused + 1);
}

// ---- from an attacker review of Observe over OSCORE (each test failed
// before its fix) ----

/// Every datagram `from` sends now.
fn take(from: &mut Server, now: Duration) -> Vec<Vec<u8>> {
    let mut moved = Vec::new();
    let mut buf = [0u8; 1280];
    while let Some(tx) = from.poll_transmit(now, &mut buf).unwrap() {
        moved.push(buf[..tx.len].to_vec());
    }
    moved
}

/// (A piggybacked answer held back is not delivered: the notification
/// ended the request's retransmission, so the late ACK is not verified.)
///
/// The answer to a protected registration is protected with the request's
/// nonce (no Partial IV), and the client takes such a response once,
/// whenever it comes (`RequestBinding::take_response(None)`), while the
/// Observe-number freshness check of RFC 7641 §3.4 is skipped for OSCORE
/// observations. So when the registration answer is delayed (or
/// replayed by an on-path attacker holding it back) past a notification,
/// the client delivers the older state after the newer one and the
/// application is left with the stale value. RFC 8613 §7.4.1 / §8.4:
/// notifications are ordered; a response that is older than one taken
/// must not be delivered as the current state.
fn held_back(non: bool, separate: bool) {
    let mut server = server();
    let mut client = client_endpoint(&SECRET);
    let t0 = Duration::ZERO;
    let id = client
        .request_protected(
            t0,
            2,
            &if non {
                cssf_coap::endpoint::Request::get("obs").observe().non()
            } else {
                cssf_coap::endpoint::Request::get("obs").observe()
            },
            0,
        )
        .unwrap();
    for mut d in take(&mut client, t0) {
        server.handle_datagram(t0, 1, &mut d).unwrap();
    }
    let Some(Event::Request { id: rid, .. }) = server.poll_event() else {
        panic!()
    };
    let mut now = t0;
    if separate {
        // The application is slow: an Empty ACK first, then a separate
        // (confirmable) response.
        now = server.poll_timeout().unwrap();
        server.handle_timeout(now);
        for mut d in take(&mut server, now) {
            client.handle_datagram(now, 2, &mut d).unwrap();
        }
    }
    server
        .respond(now, rid, &Response::new(Code::CONTENT).payload(b"old"))
        .unwrap();
    // The attacker holds the registration answer back.
    let held = take(&mut server, now);
    assert_eq!(held.len(), 1);
    assert_eq!(
        partial_iv(&held[0]),
        None,
        "registration answer uses the request nonce"
    );
    server
        .notify(t0, "obs", &Response::new(Code::CONTENT).payload(b"new"))
        .unwrap();
    for mut d in take(&mut server, t0) {
        client.handle_datagram(t0, 2, &mut d).unwrap();
    }
    let mut seen = Vec::new();
    while let Some(ev) = client.poll_event() {
        if let Event::Notification {
            id: got,
            notification,
            ..
        } = ev
        {
            assert_eq!(got, id);
            seen.push(notification.payload().to_vec());
        }
    }
    assert_eq!(seen, vec![b"new".to_vec()]);
    // Now the held-back answer arrives.
    for mut d in held {
        client.handle_datagram(t0, 2, &mut d).unwrap();
    }
    let mut late = Vec::new();
    while let Some(ev) = client.poll_event() {
        match ev {
            Event::Notification { notification, .. } => late.push(notification.payload().to_vec()),
            Event::Response { response, .. } => late.push(response.payload().to_vec()),
            _ => {}
        }
    }
    assert!(
        late.is_empty(),
        "older state delivered after a newer notification: {:?}",
        late.iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
    );
}

#[test]
fn registration_answer_held_back_non() {
    held_back(true, false);
}

#[test]
fn registration_answer_held_back_separate_con() {
    held_back(false, true);
}

/// Another client holding its own, legitimate context "D" (the server's
/// index 1) sends a protected registration on client "C"'s token from C's
/// address (UDP source addresses are not authenticated): the server
/// dropped C's observation and gave the token to D (fixed: it is
/// answered without Observe). A request verified under D must not end or
/// take over an observation made under C.
#[test]
fn protected_registration_of_another_context_takes_over_an_observation() {
    let (mut ep, mut client, mut binding) = registered();
    let mut d_ctx =
        SecurityContext::new(&params(&[9; 16], b"D", b"S"), SenderSequence::Volatile).unwrap();
    let (wire, _) = protected_observe(&mut d_ctx, 80, &[6], 0);
    send(&mut ep, Duration::ZERO, &wire);
    while let Some(ev) = ep.poll_event() {
        if let Event::Request { id, .. } = ev {
            ep.respond(
                Duration::ZERO,
                id,
                &Response::new(Code::CONTENT).payload(b"d"),
            )
            .unwrap();
        }
    }
    drain(&mut ep);
    ep.notify(
        Duration::ZERO,
        "obs",
        &Response::new(Code::CONTENT).payload(b"7"),
    )
    .unwrap();
    let sent = drain(&mut ep);
    let mut for_c = 0;
    for d in &sent {
        let mut m = d.clone();
        let mut out = [0u8; 512];
        if client
            .unprotect_response(&mut binding, &mut m, &mut out)
            .is_ok()
        {
            for_c += 1;
        }
    }
    assert_eq!(
        for_c, 1,
        "C's protected observation was ended by a registration verified under context D"
    );
}
