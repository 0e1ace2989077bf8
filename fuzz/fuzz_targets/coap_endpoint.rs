//! Drives a CoAP server+client endpoint with arbitrary sequences of raw and
//! structured datagrams from three peers (peer 0 verified, like a DTLS
//! session; 1 and 2 plain), time steps, answers and notifications. Checks:
//! no panic, every datagram the endpoint emits parses, the fixed tables
//! never exceed their capacity (memory is bounded by the type), no peer
//! holds more of a table than its quota, nothing sent to a plain peer in
//! answer to a datagram exceeds three times that datagram, and after
//! `handle_timeout(now)` no confirmable notification first sent more than
//! MAX_TRANSMIT_WAIT before is still awaiting its ACK (its observer is
//! removed, RFC 7641 §4.5).
//!
//! OSCORE (feature `oscore`): the endpoint holds one security context and
//! the target one client context for it; `Protected` sends a request it
//! protects (to any path, `/secret` requiring OSCORE), `Replay` sends the
//! last protected datagram again from any peer, with its message ID or
//! another; `Request` may go protected (the endpoint's client side then
//! verifies whatever answers it). The same checks hold (answers to plain
//! peers included).
#![no_main]

use core::time::Duration;

use arbitrary::Arbitrary;
use cssf_coap::endpoint::{Config, Endpoint, Event, Methods, Request, Resource, Response};
use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
use cssf_coap::{Block, Code, Message, MessageBuilder, MessageType, OptionNumber};
use libfuzzer_sys::fuzz_target;

#[path = "common/fuzz_rng.rs"]
mod fuzz_rng;
use fuzz_rng::FuzzRng as Rng;

static RESOURCES: [Resource; 5] = [
    Resource::new("obs", Methods::GET).observable().rt("x"),
    Resource::new("data", Methods::ALL).ct(0),
    Resource::new("fresh", Methods::PUT).echo(),
    Resource::new("a/b", Methods::GET.union(Methods::POST)),
    Resource::new("secret", Methods::GET.union(Methods::PUT)).requires_oscore(),
];
const PATHS: [&str; 7] = [
    "obs",
    "data",
    "fresh",
    "a/b",
    ".well-known/core",
    "nope",
    "secret",
];

fn params<'a>(sender: &'a [u8], recipient: &'a [u8]) -> Params<'a> {
    Params {
        master_secret: &[7; 16],
        master_salt: &[],
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Raw {
        peer: u8,
        bytes: Vec<u8>,
    },
    Msg {
        peer: u8,
        ty: u8,
        code: u8,
        mid: u16,
        token: u8,
        path: u8,
        observe: Option<u32>,
        block1: Option<u32>,
        block2: Option<u32>,
        echo: Option<[u8; 8]>,
        query: bool,
        payload: Vec<u8>,
    },
    Advance {
        ms: u32,
    },
    Timeout,
    Answer {
        code: u8,
        len: u16,
    },
    Notify {
        len: u16,
    },
    Request {
        peer: u8,
        path: u8,
        observe: bool,
        con: bool,
        protected: bool,
    },
    Cancel,
    Protected {
        peer: u8,
        con: bool,
        code: u8,
        mid: u16,
        token: u8,
        path: u8,
        block2: Option<u32>,
        echo: Option<[u8; 8]>,
        payload: Vec<u8>,
    },
    Replay {
        peer: u8,
        mid: Option<u16>,
        flip: Option<u16>,
    },
}

type Ep = Endpoint<u8, Rng, 4, 16, 512>;

/// Drains what the endpoint sends; every datagram must parse. Returns the
/// bytes of server-side messages (responses, ACK, RST; not the requests of
/// its client side) sent to each peer.
fn drain(ep: &mut Ep, now: Duration, out: &mut [u8]) -> [usize; 3] {
    let mut sent = [0usize; 3];
    for _ in 0..64 {
        match ep.poll_transmit(now, out) {
            Ok(Some(t)) => {
                assert!(t.len <= out.len());
                let m =
                    Message::parse(&out[..t.len]).expect("endpoint emitted a malformed message");
                if let (Some(s), false) = (sent.get_mut(usize::from(t.to)), m.code().is_request()) {
                    *s += t.len;
                }
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    sent
}

fuzz_target!(|ops: Vec<Op>| {
    let mut ep: Ep = Endpoint::new(Config::default(), Rng(1), &RESOURCES);
    ep.set_verified_peers(|p| *p == 0);
    let server_ctx = SecurityContext::new(&params(b"S", b"C"), SenderSequence::Volatile).unwrap();
    ep.add_oscore_context(server_ctx).unwrap();
    let mut client = SecurityContext::new(&params(b"C", b"S"), SenderSequence::Volatile).unwrap();
    let mut last_protected: Vec<u8> = Vec::new();
    let wait = Config::default().max_transmit_wait();
    let mut now = Duration::ZERO;
    let mut pending = Vec::new();
    let mut exchanges = Vec::new();
    let big = [0x5au8; 3000];
    let mut out = [0u8; 600];
    for op in ops.into_iter().take(256) {
        // Whatever is queued before a datagram arrives is not its answer.
        drain(&mut ep, now, &mut out);
        // (peer, datagram length) when the op is a datagram from a peer.
        let mut from = None;
        let mut timed_out = false;
        match op {
            Op::Raw { peer, mut bytes } => {
                from = Some((peer % 3, bytes.len()));
                let _ = ep.handle_datagram(now, peer % 3, &mut bytes);
            }
            Op::Msg {
                peer,
                ty,
                code,
                mid,
                token,
                path,
                observe,
                block1,
                block2,
                echo,
                query,
                payload,
            } => {
                let tok = [token; 2];
                let mut b = MessageBuilder::<16>::new(MessageType::from_bits(ty), Code(code), mid);
                let _ = b.token(&tok[..usize::from(token % 3)]);
                let _ = b.uri_path(PATHS[usize::from(path) % PATHS.len()]);
                if query {
                    let _ = b.add_str(OptionNumber::URI_QUERY, "rt=x*");
                }
                if let Some(o) = observe {
                    let _ = b.observe(o);
                }
                if let Some(v) = block1.and_then(|v| Block::from_uint(v).ok()) {
                    let _ = b.block1(v);
                }
                if let Some(v) = block2.and_then(|v| Block::from_uint(v).ok()) {
                    let _ = b.block2(v);
                }
                if let Some(e) = echo.as_ref() {
                    let _ = b.add_option(OptionNumber::ECHO, e);
                }
                b.payload(&payload);
                let mut buf = [0u8; 1024];
                if let Ok(n) = b.emit(&mut buf) {
                    from = Some((peer % 3, n));
                    let _ = ep.handle_datagram(now, peer % 3, &mut buf[..n]);
                }
            }
            Op::Advance { ms } => now += Duration::from_millis(u64::from(ms % 600_000)),
            Op::Timeout => {
                ep.handle_timeout(now);
                timed_out = true;
            }
            Op::Answer { code, len } => {
                if let Some(id) = pending.pop() {
                    let r = Response::new(Code(code)).payload(&big[..usize::from(len) % big.len()]);
                    let _ = ep.respond(now, id, &r);
                }
            }
            Op::Notify { len } => {
                let r = Response::new(Code::CONTENT).payload(&big[..usize::from(len) % big.len()]);
                let _ = ep.notify(now, "obs", &r);
            }
            Op::Request {
                peer,
                path,
                observe,
                con,
                protected,
            } => {
                let mut r = Request::get(PATHS[usize::from(path) % PATHS.len()]);
                if observe {
                    r = r.observe();
                }
                if !con {
                    r = r.non();
                }
                if protected {
                    // The client side: its responses (raw or structured
                    // datagrams from the peers) must verify.
                    if let Ok(id) = ep.request_protected(now, peer % 3, &r, 0) {
                        exchanges.push(id);
                    }
                } else if let Ok(id) = ep.request(now, peer % 3, &r) {
                    exchanges.push(id);
                }
            }
            Op::Cancel => {
                if let Some(id) = exchanges.pop() {
                    let _ = ep.cancel_observe(now, id);
                }
            }
            Op::Protected {
                peer,
                con,
                code,
                mid,
                token,
                path,
                block2,
                echo,
                payload,
            } => {
                let ty = if con {
                    MessageType::Con
                } else {
                    MessageType::Non
                };
                let tok = [token; 2];
                let mut b = MessageBuilder::<8>::new(ty, Code(code % 8), mid);
                let _ = b.token(&tok[..usize::from(token % 3)]);
                let _ = b.uri_path(PATHS[usize::from(path) % PATHS.len()]);
                if let Some(v) = block2.and_then(|v| Block::from_uint(v).ok()) {
                    let _ = b.block2(v);
                }
                if let Some(e) = echo.as_ref() {
                    let _ = b.add_option(OptionNumber::ECHO, e);
                }
                b.payload(&payload);
                let mut plain = [0u8; 512];
                let mut wire = [0u8; 600];
                if let Ok(n) = b.emit(&mut plain) {
                    if let Ok((len, _)) = client.protect_request(&plain[..n], &mut wire) {
                        last_protected = wire[..len].to_vec();
                        from = Some((peer % 3, len));
                        let _ = ep.handle_datagram(now, peer % 3, &mut wire[..len]);
                    }
                }
            }
            Op::Replay { peer, mid, flip } => {
                let mut d = last_protected.clone();
                if let (Some(m), true) = (mid, d.len() >= 4) {
                    d[2..4].copy_from_slice(&m.to_be_bytes());
                }
                if let Some(f) = flip {
                    let len = d.len();
                    if len > 0 {
                        d[usize::from(f) % len] ^= 0x01;
                    }
                }
                from = Some((peer % 3, d.len()));
                let _ = ep.handle_datagram(now, peer % 3, &mut d);
            }
        }
        // Drain: everything emitted must be a valid CoAP message, and what a
        // datagram from a plain peer brings back straight away (the
        // endpoint's own answers, replays, RST) stays under three times it.
        let sent = drain(&mut ep, now, &mut out);
        if let Some((peer, len)) = from {
            if peer != 0 && len > 0 {
                let back = sent[usize::from(peer)];
                assert!(
                    back <= 3 * len,
                    "{back} bytes to plain peer {peer} for {len}"
                );
            }
        }
        while let Some(ev) = ep.poll_event() {
            if let Event::Request { id, .. } = ev {
                pending.push(id);
                if pending.len() > 8 {
                    pending.remove(0);
                }
            }
        }
        let _ = ep.poll_timeout();
        assert!(ep.exchange_count() <= 4 && ep.observer_count() <= 4 && ep.pending_requests() <= 4);
        let quota = ep.peer_quota();
        for p in 0..3u8 {
            let u = ep.peer_usage(&p);
            assert!(u.within(&quota), "peer {p} holds {u:?}, quota {quota:?}");
        }
        if timed_out {
            if let Some(t) = ep.oldest_unacknowledged_notification() {
                assert!(
                    now.saturating_sub(t) <= wait,
                    "a notification first sent at {t:?} still in flight at {now:?}"
                );
            }
        }
    }
});
