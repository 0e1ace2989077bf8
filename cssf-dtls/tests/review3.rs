//! Third adversarial review: attacks on the fixes of the second one
//! (origin-address accounting, lent session slots, require_rrc, path check
//! pacing, validated addresses, the HelloVerifyRequest rule, path_challenge
//! answers). Each test asserts the behaviour we want; a failing test is a
//! finding.
#![cfg(all(feature = "server", feature = "cid"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;
use std::net::SocketAddr;
use std::vec::Vec;

use cssf_dtls::{
    CipherSuite, Client, CloseReason, Config, Endpoint, Event, SessionHandle, StaticPsk,
};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"0123456789abcdef";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];

const PSK: [CipherSuite; 1] = [CipherSuite::PskWithAes128Ccm8];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn server_addr() -> SocketAddr {
    addr("10.0.0.100:5684")
}

fn config() -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&PSK).unwrap();
    c.retransmit_initial = Duration::from_secs(1);
    c.retransmit_max = Duration::from_secs(4);
    c.max_retransmits = 4;
    c
}

/// Four session slots, two handshake slots; `max_sessions_per_host`
/// defaults to half the slots: two.
type Server = Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 4>;

fn server() -> Server {
    Endpoint::new(
        config(),
        StaticPsk::new(&KEYS),
        SimRng::new(7),
        Duration::ZERO,
    )
    .unwrap()
}

type Cl = Client<SocketAddr, SimRng>;

fn client(seed: u64, now: Duration) -> Cl {
    Client::new(config(), ID, KEY, server_addr(), SimRng::new(seed), now).unwrap()
}

fn out_c(c: &mut Cl, now: Duration) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
        v.push(buf[..t.len].to_vec());
    }
    v
}

fn out_s(s: &mut Server, now: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    for _ in 0..1000 {
        match s.poll_transmit(now, &mut buf) {
            Ok(Some(t)) => v.push((t.to, buf[..t.len].to_vec())),
            Ok(None) => return v,
            Err(e) => panic!("poll_transmit: {e:?}"),
        }
    }
    panic!("poll_transmit never ends");
}

/// Runs a full handshake of a fresh client at `at`; its handle.
fn connect(
    s: &mut Server,
    at: SocketAddr,
    seed: u64,
    now: Duration,
    ev: &mut Vec<Event<SocketAddr>>,
) -> SessionHandle {
    let mut c = client(seed, now);
    for _ in 0..16 {
        for mut d in out_c(&mut c, now) {
            let _ = s.handle_datagram(now, at, &mut d);
        }
        for (to, mut d) in out_s(s, now) {
            if to == at {
                let _ = c.handle_datagram(now, server_addr(), &mut d);
            }
        }
        ev.extend(core::iter::from_fn(|| s.poll_event()));
        while c.poll_event().is_some() {}
        if let Some(h) = s.session_handle(&at).filter(|h| s.is_connected(*h)) {
            if c.is_connected() {
                return h;
            }
        }
    }
    panic!("no connection from {at}");
}

/// A peer at `at` that only does the cookie exchange: a ClientHello, the
/// HelloVerifyRequest, the ClientHello with the cookie; the server's
/// flight is never answered. No key, nothing authenticated. True when
/// the server took the handshake.
fn half_open(s: &mut Server, at: SocketAddr, seed: u64, now: Duration) -> bool {
    let mut c = client(seed, now);
    for mut d in out_c(&mut c, now) {
        let _ = s.handle_datagram(now, at, &mut d);
    }
    for (to, mut d) in out_s(s, now) {
        if to == at {
            let _ = c.handle_datagram(now, server_addr(), &mut d);
        }
    }
    for mut d in out_c(&mut c, now) {
        let _ = s.handle_datagram(now, at, &mut d);
    }
    s.session_handle(&at).is_some()
}

fn closed(ev: &[Event<SocketAddr>], h: SessionHandle) -> Vec<CloseReason> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Closed { handle, reason, .. } if *handle == h => Some(*reason),
            _ => None,
        })
        .collect()
}

/// Host V (a NAT, 10.0.0.7) with two authenticated sessions, within its
/// limit of two; host C with one. Then a half-open handshake (cookie
/// exchange only) from `fourth`, then another from host B (203.0.113.66,
/// no sessions). Returns the Closed reasons of V's two sessions.
fn lent_slot_scenario(fourth: SocketAddr) -> (bool, Vec<CloseReason>) {
    let mut s = server();
    let mut ev = Vec::new();
    let v1 = connect(
        &mut s,
        addr("10.0.0.7:5000"),
        1,
        Duration::from_secs(1),
        &mut ev,
    );
    let v2 = connect(
        &mut s,
        addr("10.0.0.7:5001"),
        2,
        Duration::from_secs(2),
        &mut ev,
    );
    let _c = connect(
        &mut s,
        addr("198.51.100.9:5000"),
        3,
        Duration::from_secs(3),
        &mut ev,
    );
    let now = Duration::from_secs(4);
    assert!(half_open(&mut s, fourth, 4, now), "a free slot");
    let b = half_open(&mut s, addr("203.0.113.66:1000"), 5, now);
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    let mut lost = closed(&ev, v1);
    lost.extend(closed(&ev, v2));
    (b, lost)
}

#[test]
fn control_a_half_open_handshake_of_another_host_makes_no_session_lent() {
    // The fourth slot taken by host D: nobody is beyond its limit, B's
    // handshake is refused and nobody loses a session.
    let (admitted, lost) = lent_slot_scenario(addr("192.0.2.44:4000"));
    assert!(!admitted);
    assert!(lost.is_empty(), "{lost:?}");
}

/// Severity: medium (two unauthenticated addresses, one of them behind the
/// victim's NAT or in its IPv6 /64: CGNAT, a campus, a shared LAN).
/// aedbde9 lends session slots beyond a host's limit and lets a handshake
/// of a host below its limit take back "the least recently active session
/// of a host holding more than its limit". The count includes half-open
/// handshakes, but only established sessions are taken back: a cookie
/// exchange from the victim host's address space turns the victim's
/// oldest authenticated session (within the limit until then) into the
/// "lent" one, and the next cookie exchange from anywhere else evicts it.
/// Config docs: "A session within its host's limit is never evicted for
/// another handshake". The attacker repeats it each time the victim
/// reconnects; nothing it sends is authenticated.
#[test]
fn a_half_open_handshake_from_a_hosts_address_space_does_not_lend_out_its_sessions() {
    let (admitted, lost) = lent_slot_scenario(addr("10.0.0.7:6666"));
    assert!(
        lost.is_empty(),
        "an authenticated session of 10.0.0.7 (two sessions, limit two) was ended {lost:?} \
         for an unauthenticated handshake of 203.0.113.66 (admitted: {admitted}), after a \
         cookie exchange from 10.0.0.7:6666 made the host 'beyond its limit'"
    );
}
