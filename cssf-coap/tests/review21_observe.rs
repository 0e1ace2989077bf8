//! Review 21: attacks on Observe over OSCORE in the CoAP `Endpoint`.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    dead_code,
    unused_imports
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

fn client_endpoint(secret: &[u8]) -> Server {
    let mut ep: Server = Endpoint::new(Config::default(), SimRng::new(3), &[]);
    assert_eq!(ep.add_oscore_context(client_ctx(secret)).unwrap(), 0);
    ep
}

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
