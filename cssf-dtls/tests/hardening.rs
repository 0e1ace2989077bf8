//! Defects found by an adversarial review of the server endpoint, one test
//! each: no peer may stall the endpoint, make it amplify, or panic it.
#![cfg(all(feature = "server", feature = "ecdhe"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod at;
mod common;

use at::At;
use core::time::Duration;
use std::net::SocketAddr;
use std::vec::Vec;

use common::{key, public, Pins};
use cssf_dtls::wire::handshake::HandshakeHeader;
use cssf_dtls::wire::hello_verify_request::HelloVerifyRequestRepr;
use cssf_dtls::wire::record::{ContentType, RecordHeader};
use cssf_dtls::{CipherSuite, Client, Config, Endpoint, Error, Event, StaticPsk};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK-secretPSK";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn server_addr() -> SocketAddr {
    addr("10.0.0.100:5684")
}

fn config() -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap();
    c.retransmit_initial = Duration::from_secs(1);
    c.retransmit_max = Duration::from_secs(8);
    c
}

type Server = Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 4>;

fn server(cfg: Config) -> Server {
    Endpoint::new(cfg, StaticPsk::new(&KEYS), SimRng::new(1), Duration::ZERO).unwrap()
}

fn client(cfg: Config, seed: u64) -> Client<SocketAddr, SimRng> {
    Client::new(
        cfg,
        ID,
        KEY,
        server_addr(),
        SimRng::new(seed),
        Duration::ZERO,
    )
    .unwrap()
}

/// Drains the client's datagrams.
fn out_c(c: &mut Client<SocketAddr, SimRng>, now: Duration) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
        v.push(buf[..t.len].to_vec());
    }
    v
}

/// Drains the server's datagrams; a per-connection error escaping
/// `poll_transmit` fails the test.
fn out_s<const N: usize>(
    s: &mut Endpoint<SocketAddr, StaticPsk<'static>, SimRng, N>,
    now: Duration,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    for _ in 0..1000 {
        match s.poll_transmit(now, &mut buf) {
            Ok(Some(t)) => v.push((t.to, buf[..t.len].to_vec())),
            Ok(None) => return v,
            Err(e) => panic!("poll_transmit returned a connection's error: {e:?}"),
        }
    }
    panic!("poll_transmit never ends");
}

fn feed_s<const N: usize>(
    s: &mut Endpoint<SocketAddr, StaticPsk<'static>, SimRng, N>,
    now: Duration,
    from: SocketAddr,
    d: &[Vec<u8>],
) {
    for d in d {
        let _ = s.handle_datagram(now, from, &mut d.clone());
    }
}

fn feed_c(
    c: &mut Client<SocketAddr, SimRng>,
    now: Duration,
    to: SocketAddr,
    d: &[(SocketAddr, Vec<u8>)],
) {
    for (dst, d) in d {
        if *dst == to {
            let _ = c.handle_datagram(now, server_addr(), &mut d.clone());
        }
    }
}

/// Runs client `c` at `at` against `s` from `now` for at most `limit`,
/// stepping time to the next deadline; true once both sides are connected.
fn connect<const N: usize>(
    s: &mut Endpoint<SocketAddr, StaticPsk<'static>, SimRng, N>,
    c: &mut Client<SocketAddr, SimRng>,
    at: SocketAddr,
    mut now: Duration,
    limit: Duration,
) -> Option<Duration> {
    let end = now + limit;
    while now <= end {
        for _ in 0..8 {
            let d = out_c(c, now);
            feed_s(s, now, at, &d);
            let r = out_s(s, now);
            feed_c(c, now, at, &r);
            while s.poll_event().is_some() {}
            if c.is_connected() && s.connected_at(&at) {
                return Some(now);
            }
            if d.is_empty() && r.is_empty() {
                break;
            }
        }
        let next = [c.poll_timeout(), s.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end + Duration::from_secs(1))
            .max(now + Duration::from_millis(1));
        now = next;
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    None
}

/// The client's cookie-bearing ClientHello (after the HelloVerifyRequest).
fn cookie_hello(s: &mut Server, c: &mut Client<SocketAddr, SimRng>, at: SocketAddr) -> Vec<u8> {
    let now = Duration::ZERO;
    let ch1 = out_c(c, now);
    feed_s(s, now, at, &ch1);
    let hvr = out_s(s, now);
    assert_eq!(hvr.len(), 1, "HelloVerifyRequest");
    feed_c(c, now, at, &hvr);
    let ch2 = out_c(c, now);
    assert_eq!(ch2.len(), 1);
    ch2.into_iter().next().unwrap()
}

#[test]
fn a_client_hello_at_the_end_of_the_sequence_space_does_not_block_the_endpoint() {
    // Defect 1: the server took the ClientHello's record sequence number
    // for its flight; at 2^48-1 the flight could not be sealed and
    // poll_transmit failed for every session from then on.
    let mut s = server(config());
    let evil = addr("10.0.0.66:4000");
    let mut bad = client(config(), 2);
    let mut ch2 = cookie_hello(&mut s, &mut bad, evil);
    ch2[5..11].copy_from_slice(&[0xFF; 6]);
    let _ = s.handle_datagram(Duration::ZERO, evil, &mut ch2);
    let _ = out_s(&mut s, Duration::ZERO);
    // Another client is served as usual.
    let good = addr("10.0.0.7:5000");
    let mut c = client(config(), 3);
    let t = connect(
        &mut s,
        &mut c,
        good,
        Duration::ZERO,
        Duration::from_secs(30),
    );
    assert!(t.is_some(), "the legitimate client connected");
    c.send(Duration::ZERO, b"ping").unwrap();
    let d = out_c(&mut c, Duration::ZERO);
    feed_s(&mut s, Duration::ZERO, good, &d);
    let mut buf = [0u8; 64];
    assert_eq!(s.recv_at(&good, &mut buf).unwrap(), Some(4));
}

#[test]
fn replayed_cookie_hellos_from_one_host_cannot_hold_every_handshake_slot() {
    // Defect 2: replaying the cookie-bearing ClientHello from two ports of
    // one host kept both handshake slots busy for good (any epoch-0 record
    // counted as activity). One host holds at most its share, and replays
    // are not progress.
    let cfg = config();
    let mut s = server(cfg.clone());
    let mut hellos = Vec::new();
    for (i, port) in [1000u16, 2000].into_iter().enumerate() {
        let a = SocketAddr::new(addr("10.0.0.66:1").ip(), port);
        let mut c = client(cfg.clone(), 10 + i as u64);
        let ch2 = cookie_hello(&mut s, &mut c, a);
        feed_s(&mut s, Duration::ZERO, a, std::slice::from_ref(&ch2));
        let _ = out_s(&mut s, Duration::ZERO);
        hellos.push((a, ch2));
    }
    let legit = addr("10.0.0.7:5000");
    let mut c = client(cfg.clone(), 20);
    let mut now = Duration::ZERO;
    let mut connected_at = None;
    while now < Duration::from_secs(60) && connected_at.is_none() {
        // The attacker replays both hellos every 500 ms.
        for (a, h) in &hellos {
            feed_s(&mut s, now, *a, std::slice::from_ref(h));
        }
        let _ = out_s(&mut s, now);
        connected_at = connect(&mut s, &mut c, legit, now, Duration::from_millis(499));
        now += Duration::from_millis(500);
    }
    let at = connected_at.expect("the legitimate client never got a handshake slot");
    assert!(
        at <= cfg.retransmit_initial * 2,
        "connected only at {at:?}, more than one retransmission timeout late"
    );
}

#[test]
fn replayed_cookie_hellos_from_two_hosts_do_not_count_as_progress() {
    // Defect 2, second half: two hosts replaying their hellos are not
    // active; the legitimate client gets a slot within one retransmission
    // timeout of its first attempt.
    let cfg = config();
    let mut s: Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 4, _, 4, 2> = Endpoint::new(
        cfg.clone(),
        StaticPsk::new(&KEYS),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let mut hellos = Vec::new();
    for (i, a) in ["10.0.0.66:1000", "10.0.0.67:1000"].into_iter().enumerate() {
        let a = addr(a);
        let mut c = client(cfg.clone(), 30 + i as u64);
        let now = Duration::ZERO;
        let ch1 = out_c(&mut c, now);
        feed_s(&mut s, now, a, &ch1);
        let hvr = out_s(&mut s, now);
        feed_c(&mut c, now, a, &hvr);
        let ch2 = out_c(&mut c, now);
        feed_s(&mut s, now, a, &ch2);
        let _ = out_s(&mut s, now);
        hellos.push((a, ch2[0].clone()));
    }
    assert_eq!(s.handshakes(), 2);
    let legit = addr("10.0.0.7:5000");
    let mut c = client(cfg.clone(), 40);
    let mut now = Duration::ZERO;
    let mut connected_at = None;
    while now < Duration::from_secs(60) && connected_at.is_none() {
        for (a, h) in &hellos {
            feed_s(&mut s, now, *a, std::slice::from_ref(h));
        }
        let _ = out_s(&mut s, now);
        connected_at = connect(&mut s, &mut c, legit, now, Duration::from_millis(499));
        now += Duration::from_millis(500);
    }
    let at = connected_at.expect("the legitimate client never got a handshake slot");
    assert!(at <= cfg.retransmit_initial * 3, "connected only at {at:?}");
}

/// A tiny epoch-0 handshake record: `msg_type` with `message_seq`, an
/// empty fragment of a message claiming `length` bytes.
fn tiny_handshake(msg_type: u8, message_seq: u16, length: u32, seq: u64) -> Vec<u8> {
    let mut v = std::vec![22, 0xFE, 0xFD, 0, 0];
    v.extend_from_slice(&seq.to_be_bytes()[2..]);
    v.extend_from_slice(&12u16.to_be_bytes());
    v.push(msg_type);
    v.extend_from_slice(&length.to_be_bytes()[1..]);
    v.extend_from_slice(&message_seq.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0]);
    v
}

#[test]
fn tiny_spoofed_records_do_not_make_the_server_resend_its_flight() {
    // Defect 3: a 25-byte epoch-0 record naming the ClientHello's
    // message_seq made the server resend its whole flight each time.
    let mut s = server(config());
    let victim = addr("10.0.0.7:5000");
    let mut c = client(config(), 5);
    let ch2 = cookie_hello(&mut s, &mut c, victim);
    feed_s(&mut s, Duration::ZERO, victim, std::slice::from_ref(&ch2));
    let flight4: usize = out_s(&mut s, Duration::ZERO)
        .iter()
        .map(|d| d.1.len())
        .sum();
    assert!(flight4 > 0);
    let (mut bytes_in, mut bytes_out) = (0usize, 0usize);
    for i in 0..100u64 {
        let now = Duration::from_millis(10 * i);
        let mut d = tiny_handshake(1, 1, 200, 100 + i);
        bytes_in += d.len();
        let _ = s.handle_datagram(now, victim, &mut d);
        bytes_out += out_s(&mut s, now).iter().map(|d| d.1.len()).sum::<usize>();
    }
    assert_eq!(bytes_out, 0, "{bytes_in} spoofed bytes in, {bytes_out} out");
    // A whole copy of the ClientHello (the client's own retransmission)
    // is answered, once per retransmission timeout at most.
    let mut resent = 0;
    for i in 0..20u64 {
        let now = Duration::from_millis(1000 + 10 * i);
        feed_s(&mut s, now, victim, std::slice::from_ref(&ch2));
        if !out_s(&mut s, now).is_empty() {
            resent += 1;
        }
    }
    assert_eq!(resent, 1, "one resend for twenty copies within 200 ms");
}

/// A ClientHello body with `n` distinct empty extensions.
fn hello_with_extensions(n: u16) -> Vec<u8> {
    let mut body = std::vec![0xFE, 0xFD];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session_id
    body.push(0); // cookie
    body.extend_from_slice(&[0, 2, 0xC0, 0xA8]);
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    for t in 0..n {
        exts.extend_from_slice(&(0x1000 + t).to_be_bytes());
        exts.extend_from_slice(&[0, 0]);
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut rec = std::vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0];
    rec.extend_from_slice(&((body.len() + 12) as u16).to_be_bytes());
    rec.push(1);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&[0, 0, 0, 0, 0]);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&body);
    rec
}

#[test]
fn client_hellos_with_thousands_of_extensions_are_refused_before_the_cookie() {
    // Defect 4: extension validation was quadratic and ran on any
    // ClientHello, before the cookie check.
    let mut s = server(config());
    let from = addr("10.0.0.66:4000");
    let mut ok = hello_with_extensions(8);
    s.handle_datagram(Duration::ZERO, from, &mut ok).unwrap();
    assert_eq!(out_s(&mut s, Duration::ZERO).len(), 1, "HelloVerifyRequest");
    let mut big = hello_with_extensions(4000);
    let dropped = s.stats().records_dropped;
    s.handle_datagram(Duration::ZERO, from, &mut big).unwrap();
    assert_eq!(
        out_s(&mut s, Duration::ZERO).len(),
        0,
        "no HelloVerifyRequest"
    );
    assert_eq!(s.stats().records_dropped, dropped + 1);
}

#[test]
fn a_spoofed_fragment_does_not_stall_reassembly() {
    // Defect 5: one spoofed fragment claiming another total length made
    // every real fragment of that message conflict, forever.
    let mut cfg = config();
    cfg.suites = heapless::Vec::from_slice(&[CipherSuite::EcdheEcdsaWithAes128Ccm8]).unwrap();
    cfg.mtu = 128;
    let skey = key(7);
    let pins = [public(&skey)];
    let mut s: Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 4, Pins> =
        Endpoint::with_raw_public_key(
            cfg.clone(),
            StaticPsk::new(&[]),
            skey,
            Pins(Vec::new()),
            SimRng::new(1),
            Duration::ZERO,
        )
        .unwrap();
    let mut c = Client::with_raw_public_key(
        cfg,
        None,
        Pins(pins.to_vec()),
        server_addr(),
        SimRng::new(2),
        Duration::ZERO,
    )
    .unwrap();
    let at = addr("10.0.0.7:5000");
    let mut now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut spoofed = false;
    for _ in 0..200 {
        while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
            let _ = s.handle_datagram(now, at, &mut buf[..t.len]);
        }
        let mut flight = Vec::new();
        while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
            flight.push(buf[..t.len].to_vec());
        }
        // Within the server's flight 4 (ServerHello, Certificate,
        // ServerKeyExchange, ServerHelloDone: message_seq 1..=4, the
        // ServerKeyExchange fragmented), before each datagram of its first
        // transmission, one spoofed fragment of the ServerKeyExchange
        // (seq 3) claiming another total length reaches the client.
        let first = !spoofed && flight.len() > 1;
        for mut d in flight {
            if first {
                let mut f = tiny_handshake(12, 3, 999, 50);
                f[11..13].copy_from_slice(&22u16.to_be_bytes());
                f[22..25].copy_from_slice(&10u32.to_be_bytes()[1..]);
                f.extend_from_slice(&[0xAA; 10]);
                let _ = c.handle_datagram(now, server_addr(), &mut f);
            }
            let _ = c.handle_datagram(now, server_addr(), &mut d);
        }
        spoofed |= first;
        while s.poll_event().is_some() {}
        if c.is_connected() {
            break;
        }
        now = [c.poll_timeout(), s.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    assert!(spoofed);
    assert!(
        c.is_connected(),
        "the handshake recovered from the spoofed fragment"
    );
}

#[test]
fn durations_at_their_maximum_do_not_panic() {
    // Defect 6: `idle_timeout = Duration::MAX` and other plausible
    // "never" settings panicked in time arithmetic.
    let mut cfg = config();
    cfg.idle_timeout = Duration::MAX;
    cfg.cookie_rotation = Duration::MAX;
    cfg.session_lifetime = Duration::MAX;
    cfg.retransmit_max = Duration::MAX;
    let mut s = server(cfg.clone());
    let at = addr("10.0.0.7:5000");
    let mut c = client(cfg.clone(), 8);
    let t = connect(
        &mut s,
        &mut c,
        at,
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    assert!(t.is_some());
    let _ = s.poll_timeout();
    s.handle_timeout(Duration::from_secs(1_000_000));
    // A huge initial retransmission timeout, a clock far in the future.
    cfg.retransmit_initial = Duration::MAX;
    let mut s = server(cfg.clone());
    let mut c = client(cfg, 9);
    let far = Duration::from_secs(u64::MAX / 2);
    let d = out_c(&mut c, far);
    feed_s(&mut s, far, at, &d);
    let _ = out_s(&mut s, far);
    let _ = c.poll_timeout();
    let _ = s.poll_timeout();
    c.handle_timeout(Duration::MAX);
    s.handle_timeout(Duration::MAX);
}

#[test]
fn an_empty_psk_is_refused_on_both_sides() {
    // Defect 7.
    assert_eq!(
        Client::new(
            config(),
            ID,
            b"",
            server_addr(),
            SimRng::new(1),
            Duration::ZERO
        )
        .err(),
        Some(Error::Config)
    );
    static EMPTY: [(&[u8], &[u8]); 1] = [(ID, b"")];
    let mut s: Server = Endpoint::new(
        config(),
        StaticPsk::new(&EMPTY),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    // Whatever key the client has, the server refuses the identity.
    let at = addr("10.0.0.7:5000");
    let mut c = client(config(), 10);
    let mut closed = Vec::new();
    let now = Duration::ZERO;
    for _ in 0..4 {
        let d = out_c(&mut c, now);
        feed_s(&mut s, now, at, &d);
        let r = out_s(&mut s, now);
        feed_c(&mut c, now, at, &r);
        while let Some(e) = s.poll_event() {
            if let Event::Closed { reason, .. } = e {
                closed.push(reason.error());
            }
        }
    }
    assert!(!c.is_connected());
    assert!(
        closed.contains(&Some(Error::UnknownPskIdentity)),
        "an empty key is an unknown identity: {closed:?}"
    );
}

#[test]
fn an_expired_cookie_gets_a_new_one_and_the_handshake_completes() {
    // Cookies are taken only while fresh (a captured ClientHello cannot be
    // replayed later); a client whose cookie-bearing ClientHello was lost
    // and retransmitted too late gets another HelloVerifyRequest.
    let cfg = config();
    let mut s = server(cfg.clone());
    let at = addr("10.0.0.7:5000");
    let mut c = client(cfg.clone(), 12);
    let now = Duration::ZERO;
    let ch1 = out_c(&mut c, now);
    feed_s(&mut s, now, at, &ch1);
    let hvr = out_s(&mut s, now);
    feed_c(&mut c, now, at, &hvr);
    let lost = out_c(&mut c, now);
    assert_eq!(lost.len(), 1, "the cookie-bearing ClientHello, lost");
    // Retransmitted after its timer backed off past the cookie's lifetime.
    let mut now = now;
    while now < cfg.cookie_lifetime + Duration::from_secs(1) {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        let _ = out_c(&mut c, now);
    }
    now = c.poll_timeout().unwrap();
    c.handle_timeout(now);
    let stale = out_c(&mut c, now);
    feed_s(&mut s, now, at, &stale);
    let again = out_s(&mut s, now);
    assert_eq!(again.len(), 1, "a new HelloVerifyRequest");
    assert_eq!(s.sessions(), 0, "the stale cookie created no state");
    feed_c(&mut c, now, at, &again);
    let t = connect(&mut s, &mut c, at, now, Duration::from_secs(30));
    assert!(t.is_some(), "connected with the new cookie");
}

#[test]
fn forged_hello_verify_requests_make_a_client_send_a_bounded_number_of_hellos() {
    let mut c = client(config(), 13);
    let now = Duration::ZERO;
    let _ = out_c(&mut c, now);
    let mut sent = 0;
    for i in 0..50u8 {
        // A HelloVerifyRequest with a new cookie each time, as if from the
        // server, message_seq rising.
        let hvr = HelloVerifyRequestRepr {
            version: 0xFEFF,
            cookie: &[i; 16],
        };
        let n = hvr.buffer_len();
        let mut d = std::vec![0u8; 13 + 12 + n];
        RecordHeader {
            content_type: ContentType::Handshake,
            version: 0xFEFF,
            epoch: 0,
            sequence: u64::from(i),
            length: (12 + n) as u16,
        }
        .emit(&mut d)
        .unwrap();
        HandshakeHeader::whole(3, u16::from(i), n)
            .emit(&mut d[13..])
            .unwrap();
        hvr.emit(&mut d[25..]).unwrap();
        let _ = c.handle_datagram(now, server_addr(), &mut d);
        sent += out_c(&mut c, now).len();
    }
    assert!(sent >= 1, "the first request was answered");
    assert!(sent <= 4, "{sent} ClientHellos for 50 forged requests");
}

/// A HelloVerifyRequest as a server that numbers every request 0 sends it
/// (OpenSSL's stateless listener), echoing the record sequence number of
/// the ClientHello record it answers (RFC 6347 §4.2.1).
fn hello_verify_request(record_seq: u64, message_seq: u16, cookie: &[u8]) -> Vec<u8> {
    let hvr = HelloVerifyRequestRepr {
        version: 0xFEFF,
        cookie,
    };
    let n = hvr.buffer_len();
    let mut d = std::vec![0u8; 13 + 12 + n];
    RecordHeader {
        content_type: ContentType::Handshake,
        version: 0xFEFF,
        epoch: 0,
        sequence: record_seq,
        length: (12 + n) as u16,
    }
    .emit(&mut d)
    .unwrap();
    HandshakeHeader::whole(3, message_seq, n)
        .emit(&mut d[13..])
        .unwrap();
    hvr.emit(&mut d[25..]).unwrap();
    d
}

#[test]
fn a_late_hello_verify_request_for_an_earlier_client_hello_is_not_a_new_cookie() {
    // The first ClientHello went out twice (records 0 and 1) before the
    // request for record 0 arrived; the client answered it (record 2).
    // The request for record 1, late, with another cookie: stale, whether
    // the server echoes message_seq or numbers its requests 0.
    for echoes in [true, false] {
        let mut c = client(config(), 14);
        let mut now = Duration::ZERO;
        assert_eq!(out_c(&mut c, now).len(), 1);
        now += Duration::from_secs(1);
        c.handle_timeout(now);
        assert_eq!(out_c(&mut c, now).len(), 1, "retransmitted");
        let mut d = hello_verify_request(0, 0, &[1; 16]);
        c.handle_datagram(now, server_addr(), &mut d).unwrap();
        assert_eq!(out_c(&mut c, now).len(), 1, "a ClientHello with the cookie");
        let mut late = hello_verify_request(1, 0, &[2; 16]);
        c.handle_datagram(now, server_addr(), &mut late).unwrap();
        assert!(
            out_c(&mut c, now).is_empty(),
            "echoes {echoes}: a stale cookie taken"
        );
        // A request for the second ClientHello (record 2, message_seq 1;
        // 0 from a server that numbers every request 0) is new: its
        // cookie expired.
        let mut again = hello_verify_request(2, if echoes { 1 } else { 0 }, &[3; 16]);
        c.handle_datagram(now, server_addr(), &mut again).unwrap();
        assert_eq!(
            out_c(&mut c, now).len(),
            1,
            "echoes {echoes}: a new cookie not taken"
        );
    }
}
