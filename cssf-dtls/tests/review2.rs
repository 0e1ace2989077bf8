//! Second adversarial review: attacks on the fixes of the previous one
//! (Return Routability Check, timestamped cookies, per-host limits).
//! Each test asserts the behaviour we want; a failing test is a finding.
#![cfg(all(
    feature = "server",
    feature = "ecdhe",
    feature = "cid",
    feature = "resumption"
))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use core::time::Duration;
use std::net::SocketAddr;
use std::vec::Vec;

use common::{key, public, Pins};
use cssf_dtls::{
    CipherSuite, Client, CloseReason, Config, Endpoint, Error, Event, Identity, PeerAddress,
    SessionHandle, SigningKey, StaticPsk, TrustStore,
};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"0123456789abcdef";
const OTHER_ID: &[u8] = b"another-client";
const OTHER_KEY: &[u8] = b"fedcba9876543210";
static KEYS: [(&[u8], &[u8]); 2] = [(ID, KEY), (OTHER_ID, OTHER_KEY)];

const PSK: [CipherSuite; 1] = [CipherSuite::PskWithAes128Ccm8];
const ECDSA: [CipherSuite; 1] = [CipherSuite::EcdheEcdsaWithAes128Ccm8];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn server_addr() -> SocketAddr {
    addr("10.0.0.100:5684")
}

fn config(suites: &[CipherSuite]) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(suites).unwrap();
    c.retransmit_initial = Duration::from_secs(1);
    c.retransmit_max = Duration::from_secs(4);
    c.max_retransmits = 4;
    c
}

type Srv<const N: usize, const H: usize> =
    Endpoint<SocketAddr, StaticPsk<'static>, SimRng, N, Pins, 4, H>;
type Server<const N: usize> = Srv<N, 2>;

fn server<const N: usize, const H: usize>(cfg: Config) -> Srv<N, H> {
    Endpoint::with_raw_public_key(
        cfg,
        StaticPsk::new(&KEYS),
        key(1),
        Pins(Vec::new()),
        SimRng::new(7),
        Duration::ZERO,
    )
    .unwrap()
}

trait AnyClient {
    fn out(&mut self, now: Duration) -> Vec<Vec<u8>>;
    fn input(&mut self, now: Duration, d: &mut [u8]);
    fn timeout(&mut self, now: Duration);
    fn next(&self) -> Option<Duration>;
    fn drain(&mut self) -> Vec<Event<SocketAddr>>;
    fn send(&mut self, now: Duration, d: &[u8]) -> Result<(), Error>;
    fn connected(&self) -> bool;
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;
}

impl<T: TrustStore<SocketAddr>> AnyClient for Client<SocketAddr, SimRng, T> {
    fn out(&mut self, now: Duration) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = self.poll_transmit(now, &mut buf).unwrap() {
            v.push(buf[..t.len].to_vec());
        }
        v
    }
    fn input(&mut self, now: Duration, d: &mut [u8]) {
        let _ = self.handle_datagram(now, server_addr(), d);
    }
    fn timeout(&mut self, now: Duration) {
        self.handle_timeout(now);
    }
    fn next(&self) -> Option<Duration> {
        self.poll_timeout()
    }
    fn drain(&mut self) -> Vec<Event<SocketAddr>> {
        core::iter::from_fn(|| self.poll_event()).collect()
    }
    fn send(&mut self, now: Duration, d: &[u8]) -> Result<(), Error> {
        Client::send(self, now, d)
    }
    fn connected(&self) -> bool {
        self.is_connected()
    }
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        Client::recv(self, buf).unwrap()
    }
}

fn psk_client(cfg: Config, id: &[u8], k: &[u8], seed: u64) -> Box<dyn AnyClient> {
    Box::new(Client::new(cfg, id, k, server_addr(), SimRng::new(seed), Duration::ZERO).unwrap())
}

fn rpk_client(cfg: Config, own: Option<SigningKey>, seed: u64) -> Box<dyn AnyClient> {
    Box::new(
        Client::with_raw_public_key(
            cfg,
            own,
            Pins(std::vec![public(&key(1))]),
            server_addr(),
            SimRng::new(seed),
            Duration::ZERO,
        )
        .unwrap(),
    )
}

fn out_s<const N: usize, const H: usize>(
    s: &mut Srv<N, H>,
    now: Duration,
) -> Vec<(SocketAddr, Vec<u8>)> {
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

fn connect<const N: usize, const H: usize>(
    s: &mut Srv<N, H>,
    c: &mut dyn AnyClient,
    at: SocketAddr,
    mut now: Duration,
    limit: Duration,
    ev: &mut Vec<Event<SocketAddr>>,
) -> Option<Duration> {
    let end = now + limit;
    c.timeout(now);
    s.handle_timeout(now);
    while now <= end {
        for _ in 0..8 {
            let d = c.out(now);
            for mut d in d.iter().cloned() {
                let _ = s.handle_datagram(now, at, &mut d);
                ev.extend(core::iter::from_fn(|| s.poll_event()));
            }
            let r = out_s(s, now);
            for (to, mut d) in r.iter().cloned() {
                if to == at {
                    c.input(now, &mut d);
                }
            }
            ev.extend(core::iter::from_fn(|| s.poll_event()));
            let _ = c.drain();
            if c.connected() && s.session_handle(&at).is_some_and(|h| s.is_connected(h)) {
                return Some(now);
            }
            if d.is_empty() && r.is_empty() {
                break;
            }
        }
        let next = [c.next(), s.poll_timeout()]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min();
        match next {
            Some(t) if t <= end => now = t,
            _ => return None,
        }
        c.timeout(now);
        s.handle_timeout(now);
        ev.extend(core::iter::from_fn(|| s.poll_event()));
    }
    None
}

fn closed(ev: &[Event<SocketAddr>], h: SessionHandle) -> Vec<CloseReason> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Closed { handle, reason, .. } if *handle == h => Some(*reason),
            _ => None,
        })
        .collect()
}

// ---- R2-1: RRC retries forget earlier cookies: no move when RTT >= 1 s -----

/// A CID+RRC client connected at `old` is NAT-rebound to `new` (the old
/// mapping is gone) on a path with `one_way` delay each direction. It sends
/// a request every 5 s for 30 s. Returns whether the server moved the
/// session to `new`.
fn nat_rebinding_with_delay(one_way: Duration) -> (bool, u64) {
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    let mut s: Server<4> = server(cfg.clone());
    let mut ev = Vec::new();
    let old = addr("10.0.0.7:5000");
    let new = addr("10.0.0.7:6000");
    let mut c = psk_client(cfg, ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        old,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h = s.session_handle(&old).unwrap();
    let mut now = Duration::from_secs(10);
    let end = now + Duration::from_secs(30);
    let mut next_req = now;
    // (deliver at, to the server?, bytes)
    let mut wire: Vec<(Duration, bool, Vec<u8>)> = Vec::new();
    let mut answers = 0;
    while now < end {
        if now >= next_req {
            c.send(now, b"GET /temp").unwrap();
            next_req = now + Duration::from_secs(5);
        }
        for d in c.out(now) {
            wire.push((now + one_way, true, d));
        }
        for (to, d) in out_s(&mut s, now) {
            if to == new {
                wire.push((now + one_way, false, d));
            }
        }
        let mut i = 0;
        while i < wire.len() {
            if wire[i].0 <= now {
                let (_, to_server, mut d) = wire.remove(i);
                if to_server {
                    let _ = s.handle_datagram(now, new, &mut d);
                } else {
                    c.input(now, &mut d);
                }
            } else {
                i += 1;
            }
        }
        for e in c.drain() {
            if matches!(e, Event::ApplicationData { .. }) {
                answers += 1;
            }
        }
        while c.recv(&mut [0u8; 64]).is_some() {}
        while let Some(e) = s.poll_event() {
            // The server application answers every request.
            if let Event::ApplicationData { handle, .. } = e {
                while let Ok(Some(_)) = s.recv(handle, &mut [0u8; 64]) {}
                let _ = s.send(now, handle, b"22.5 C");
            }
            ev.push(e);
        }
        s.handle_timeout(now);
        c.timeout(now);
        now += Duration::from_millis(50);
    }
    (s.peer_address(h) == Some(&new), answers)
}

#[test]
fn control_rrc_nat_rebinding_with_a_short_round_trip_moves() {
    let (moved, _) = nat_rebinding_with_delay(Duration::from_millis(250));
    assert!(moved, "RTT 0.5 s: the session never moved");
}

#[test]
fn rrc_nat_rebinding_with_a_1_5_s_round_trip_moves() {
    // Config's own default retransmit_initial is 9 s: the library targets
    // paths with round trips of seconds. Each retry replaces the cookie, so
    // an answer that takes longer than PATH_CHECK_TIMEOUT (1 s) never
    // matches, whatever the number of retries.
    let (moved, answers) = nat_rebinding_with_delay(Duration::from_millis(750));
    assert!(
        moved,
        "RTT 1.5 s: after 30 s of requests from the new address the session is still bound \
         to the dead old one ({answers} answers reached the client)"
    );
}

// ---- R2-2: CID moves without RRC bypass the per-host session limit --------

#[test]
fn one_anonymous_host_moving_its_sessions_does_not_hold_every_session_slot() {
    // Same setting as review_attacks::one_anonymous_host_does_not_hold_every_session_slot
    // (server-only raw public keys: anybody completes a handshake), but the
    // attacker negotiates CIDs and does not offer RRC (a client's choice,
    // RFC 9853 §3: SHOULD). Its sessions move at once to whatever source
    // address it spoofs; the per-host limit is only counted at admission,
    // on current addresses.
    let mut cfg = config(&[
        CipherSuite::PskWithAes128Ccm8,
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
    ]);
    cfg.cid_len = Some(4);
    cfg.idle_timeout = Duration::from_secs(600);
    let mut s: Server<4> = server(cfg.clone());
    let mut acfg = config(&ECDSA);
    acfg.cid_len = Some(4);
    acfg.rrc = false;
    let mut ev = Vec::new();
    let now = Duration::ZERO;
    let mut evil: Vec<(SocketAddr, Box<dyn AnyClient>)> = Vec::new();
    for p in 0..4u16 {
        let a = SocketAddr::new(addr("10.0.0.66:1").ip(), 1000 + p);
        let mut c = rpk_client(acfg.clone(), None, 10 + u64::from(p));
        connect(&mut s, c.as_mut(), a, now, Duration::from_secs(5), &mut ev)
            .expect("anonymous handshake");
        // One record with a spoofed source on another host: the session
        // is "there" now, and the attacker's host has room again.
        let spoofed = SocketAddr::new(addr("192.0.2.1:1").ip(), 1000 + p);
        c.send(now, b"moving").unwrap();
        for mut d in c.out(now) {
            let _ = s.handle_datagram(now, spoofed, &mut d);
        }
        ev.extend(core::iter::from_fn(|| s.poll_event()));
        evil.push((spoofed, c));
    }
    assert_eq!(s.sessions(), 4);
    let legit = addr("10.0.0.7:5000");
    let mut t = now;
    let mut ok = None;
    while t < Duration::from_secs(600) && ok.is_none() {
        t += Duration::from_secs(60);
        for (a, c) in evil.iter_mut() {
            c.send(t, b"keepalive").unwrap();
            for mut d in c.out(t) {
                let _ = s.handle_datagram(t, *a, &mut d);
            }
        }
        s.handle_timeout(t);
        let _ = out_s(&mut s, t);
        ev.extend(core::iter::from_fn(|| s.poll_event()));
        let mut c = psk_client(config(&PSK), ID, KEY, t.as_secs());
        ok = connect(
            &mut s,
            c.as_mut(),
            legit,
            t,
            Duration::from_secs(20),
            &mut ev,
        );
    }
    assert!(
        ok.is_some(),
        "one host (10.0.0.66, spoofing sources) held all 4 session slots for 10 minutes \
         ({} refused; max_sessions_per_host is 2)",
        s.stats().handshakes_refused
    );
}

// ---- R2-3: IPv4-mapped IPv6 addresses are one "host" ----------------------

#[test]
fn ipv4_mapped_addresses_of_different_hosts_are_different_hosts() {
    // A dual-stack socket ([::]:5684, IPV6_V6ONLY off) reports every IPv4
    // peer as ::ffff:a.b.c.d: the first 64 bits are zero for all of them.
    let a = addr("[::ffff:10.0.0.7]:5000");
    let b = addr("[::ffff:198.51.100.9]:5000");
    assert!(
        !a.same_host(&b),
        "every IPv4 peer of a dual-stack server is one host"
    );
}

#[test]
fn an_unauthenticated_ipv4_peer_of_a_dual_stack_server_does_not_evict_other_hosts() {
    // Two legitimate IPv4 clients (different hosts) on a dual-stack server
    // with four slots (two per host). A third IPv4 host with no valid key
    // completes the cookie exchange: admission makes room for "its host"
    // by evicting the least recently active of the others' sessions,
    // before anything is authenticated.
    let mut s: Server<4> = server(config(&PSK));
    let mut ev = Vec::new();
    let a1 = addr("[::ffff:10.0.0.7]:5000");
    let a2 = addr("[::ffff:198.51.100.9]:5000");
    let mut c1 = psk_client(config(&PSK), ID, KEY, 2);
    let mut c2 = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 3);
    connect(
        &mut s,
        c1.as_mut(),
        a1,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    connect(
        &mut s,
        c2.as_mut(),
        a2,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let (h1, h2) = (
        s.session_handle(&a1).unwrap(),
        s.session_handle(&a2).unwrap(),
    );
    let evil = addr("[::ffff:203.0.113.66]:4000");
    let now = Duration::from_secs(10);
    let mut e = psk_client(config(&PSK), ID, b"not-the-key-0000", 4);
    let _ = connect(
        &mut s,
        e.as_mut(),
        evil,
        now,
        Duration::from_secs(2),
        &mut ev,
    );
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert!(
        closed(&ev, h1).is_empty() && closed(&ev, h2).is_empty(),
        "sessions of other IPv4 hosts ended by a peer without a key: {:?} / {:?}",
        closed(&ev, h1),
        closed(&ev, h2)
    );
}

// ---- R2-4: per-host eviction happens even when admission then fails ---------

#[test]
fn a_host_at_its_limit_loses_no_session_when_the_new_handshake_is_refused_anyway() {
    // max one session per host; both handshake slots busy with fresh
    // handshakes: another host's, and one from the first host's network
    // (its share of the handshake slots). A second device behind the
    // first host's NAT sends a cookie-bearing ClientHello: the first
    // device's session was evicted, then the handshake refused (its host
    // holds its share of the handshake slots, none stalled): a loss for
    // nothing.
    let mut cfg = config(&PSK);
    cfg.max_sessions_per_host = Some(1);
    let mut s: Srv<6, 2> = server(cfg.clone());
    let mut ev = Vec::new();
    let home = addr("10.0.0.7:5000");
    let mut c = psk_client(cfg.clone(), ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        home,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h = s.session_handle(&home).unwrap();
    let now = Duration::from_secs(10);
    // Two other hosts each start a handshake (cookie exchange done, their
    // flights not answered yet: in progress, not stalled).
    for (i, a) in ["10.0.0.8:5000", "10.0.0.7:5002"].iter().enumerate() {
        let mut o = psk_client(cfg.clone(), OTHER_ID, OTHER_KEY, 10 + i as u64);
        let a = addr(a);
        for _ in 0..2 {
            for mut d in o.out(now) {
                let _ = s.handle_datagram(now, a, &mut d);
            }
            for (to, mut d) in out_s(&mut s, now) {
                if to == a {
                    o.input(now, &mut d);
                }
            }
        }
    }
    assert_eq!(s.handshakes(), 2);
    let refused = s.stats().handshakes_refused;
    let neighbour = addr("10.0.0.7:5001");
    let mut n = psk_client(cfg, OTHER_ID, OTHER_KEY, 20);
    for _ in 0..2 {
        for mut d in n.out(now) {
            let _ = s.handle_datagram(now, neighbour, &mut d);
        }
        for (to, mut d) in out_s(&mut s, now) {
            if to == neighbour {
                n.input(now, &mut d);
            }
        }
    }
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert!(
        s.stats().handshakes_refused > refused,
        "the neighbour was refused"
    );
    assert!(
        closed(&ev, h).is_empty(),
        "the session was evicted for a handshake that was refused: {:?}",
        closed(&ev, h)
    );
}

// ---- R2-5: randomized lifecycle with RRC on and off ---------------------------

fn pick(rng: &mut SimRng, n: u64) -> u64 {
    rng.next_u64_raw() % n
}

const HOSTS: [&str; 7] = [
    "10.0.0.1:1000",
    "10.0.0.1:2000",
    "10.0.0.2:1000",
    "10.0.0.3:1000",
    "[2001:db8::1]:1",
    "[2001:db8::2]:1",
    "[::ffff:10.0.0.4]:1",
];

#[test]
fn randomized_lifecycle_with_and_without_rrc_keeps_the_rules() {
    for seed in 0..std::env::var("R2_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200u64)
    {
        let mut rng = SimRng::new(seed ^ 0x5eed);
        let mut cfg = config(&[
            CipherSuite::PskWithAes128Ccm8,
            CipherSuite::EcdheEcdsaWithAes128Ccm8,
        ]);
        cfg.cid_len = Some(4);
        cfg.idle_timeout = Duration::from_secs(20);
        let mut s: Server<3> = server(cfg.clone());
        let mut clients: std::collections::BTreeMap<SocketAddr, Box<dyn AnyClient>> =
            Default::default();
        let mut captured: Vec<Vec<u8>> = Vec::new();
        let mut ev: Vec<Event<SocketAddr>> = Vec::new();
        let mut now = Duration::ZERO;
        let mut next_seed = seed * 10_000 + 7;
        let a = |rng: &mut SimRng| addr(HOSTS[pick(rng, HOSTS.len() as u64) as usize]);
        for _ in 0..150 {
            next_seed += 1;
            let mut ccfg = cfg.clone();
            ccfg.rrc = pick(&mut rng, 2) == 0;
            match pick(&mut rng, 12) {
                0 | 1 => {
                    let at = a(&mut rng);
                    let (id, k) = KEYS[pick(&mut rng, 2) as usize];
                    clients.insert(at, psk_client(ccfg, id, k, next_seed));
                }
                2 => {
                    let at = a(&mut rng);
                    clients.insert(at, rpk_client(ccfg, None, next_seed));
                }
                3 | 4 if !captured.is_empty() => {
                    let mut d = captured[pick(&mut rng, captured.len() as u64) as usize].clone();
                    let _ = s.handle_datagram(now, a(&mut rng), &mut d);
                }
                5 | 6 => {
                    // A move (NAT rebinding), or spoofing with one's own records.
                    let from = a(&mut rng);
                    if let Some(c) = clients.remove(&from) {
                        let to = a(&mut rng);
                        clients.insert(to, c);
                        let _ = clients.get_mut(&to).unwrap().send(now, b"moved");
                    }
                }
                7 => {
                    if let Some(c) = clients.get_mut(&a(&mut rng)) {
                        let _ = c.send(now, b"data");
                    }
                }
                8 => {
                    if let Some(e) = ev.get(pick(&mut rng, ev.len() as u64 + 1) as usize) {
                        let _ = s.close(now, e.handle());
                        let _ = s.address_validated(e.handle());
                    }
                }
                _ => {
                    now += Duration::from_millis(pick(&mut rng, 4_000));
                    s.handle_timeout(now);
                    for c in clients.values_mut() {
                        c.timeout(now);
                    }
                }
            }
            for _ in 0..32 {
                let mut moved = false;
                for (at, c) in clients.iter_mut() {
                    for mut d in c.out(now) {
                        moved = true;
                        if captured.len() < 200 {
                            captured.push(d.clone());
                        }
                        let _ = s.handle_datagram(now, *at, &mut d);
                    }
                }
                for (to, mut d) in out_s(&mut s, now) {
                    moved = true;
                    if let Some(c) = clients.get_mut(&to) {
                        c.input(now, &mut d);
                    }
                }
                for c in clients.values_mut() {
                    let _ = c.drain();
                    while c.recv(&mut [0u8; 1500]).is_some() {}
                }
                ev.extend(core::iter::from_fn(|| s.poll_event()));
                for e in &ev {
                    if let Event::ApplicationData { handle, .. } = e {
                        while let Ok(Some(_)) = s.recv(*handle, &mut [0u8; 1500]) {}
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        clients.clear();
        for _ in 0..40 {
            now += Duration::from_secs(30);
            s.handle_timeout(now);
            let _ = out_s(&mut s, now);
            ev.extend(core::iter::from_fn(|| s.poll_event()));
        }
        let mut connected = std::collections::HashSet::new();
        let mut ended = std::collections::HashSet::new();
        for e in &ev {
            let h = e.handle();
            assert!(
                !ended.contains(&h),
                "seed {seed}: event after Closed: {e:?}"
            );
            match e {
                Event::Connected { identity, .. } => {
                    assert!(connected.insert(h), "seed {seed}: Connected twice {e:?}");
                    let ok = match identity {
                        None => true,
                        Some(Identity::Psk(p)) => p.as_bytes() == ID || p.as_bytes() == OTHER_ID,
                        Some(_) => false,
                    };
                    assert!(ok, "seed {seed}: unproven identity {e:?}");
                }
                Event::PeerAddressChanged { .. } | Event::ApplicationData { .. } => {
                    assert!(
                        connected.contains(&h),
                        "seed {seed}: {e:?} before Connected"
                    );
                }
                Event::Closed { .. } => {
                    ended.insert(h);
                }
                _ => {}
            }
        }
        let all: std::collections::HashSet<_> = ev.iter().map(Event::handle).collect();
        assert_eq!(all, ended, "seed {seed}: handles without Closed");
        if std::env::var("R2_STATS").is_ok() {
            let moves = ev
                .iter()
                .filter(|e| matches!(e, Event::PeerAddressChanged { .. }))
                .count();
            std::eprintln!(
                "seed {seed}: {} connected, {moves} moves, amplification_limited {}",
                connected.len(),
                s.stats().amplification_limited
            );
        }
        assert_eq!((s.sessions(), s.handshakes()), (0, 0), "seed {seed}");
        assert_eq!(s.poll_timeout(), None, "seed {seed}");
    }
}

// ---- R2-6: a third-party client whose cookie expired (second HVR) ----------

/// Runs our server on a UDP socket against `peer`; the server's clock jumps
/// 30 s forward after the first datagram, so the cookie the peer echoes
/// has expired and it gets a second HelloVerifyRequest (message_seq 1).
/// Returns (connected, HelloVerifyRequests sent).
fn third_party_with_expired_cookie(
    sock: &std::net::UdpSocket,
    peer: &common::Peer,
) -> (bool, usize) {
    let key = common::unhex("00112233445566778899aabbccddeeff");
    let keys: [(&[u8], &[u8]); 1] = [(b"Client_identity", &key)];
    let mut cfg = Config::default();
    cfg.suites = heapless::Vec::from_slice(&PSK).unwrap();
    let mut s: Endpoint<SocketAddr, _, _, 4> =
        Endpoint::new(cfg, StaticPsk::new(&keys), SimRng::new(5), Duration::ZERO).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(50)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut offset = Duration::ZERO;
    let mut hvrs = 0;
    let mut buf = [0u8; 2048];
    while start.elapsed() < std::time::Duration::from_secs(15) {
        let now = start.elapsed() + offset;
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = s.handle_datagram(now, from, &mut buf[..n]);
            offset = Duration::from_secs(30);
        }
        let now = start.elapsed() + offset;
        s.handle_timeout(now);
        let mut out = [0u8; 2048];
        while let Some(t) = s.poll_transmit(now, &mut out).unwrap() {
            if out[0] == 22 && out[13] == 3 {
                hvrs += 1;
            }
            let _ = sock.send_to(&out[..t.len], t.to);
        }
        while let Some(e) = s.poll_event() {
            if matches!(e, Event::Connected { .. }) {
                return (true, hvrs);
            }
        }
    }
    std::eprintln!("peer output:\n{}", peer.output());
    (false, hvrs)
}

#[test]
fn openssl_s_client_whose_cookie_expired_connects() {
    if !cssf_netsim::peer::require_binary("openssl", "apt-get install -y openssl") {
        return;
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = sock.local_addr().unwrap().to_string();
    let peer = common::Peer::spawn(
        "openssl",
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &a,
            "-psk",
            "00112233445566778899aabbccddeeff",
            "-psk_identity",
            "Client_identity",
            "-cipher",
            "PSK-AES128-CCM8",
        ],
        "openssl s_client".into(),
    );
    let (ok, hvrs) = third_party_with_expired_cookie(&sock, &peer);
    std::eprintln!("connected {ok}, {hvrs} HelloVerifyRequests");
    assert!(
        hvrs >= 2,
        "the expired cookie was not exercised ({hvrs} HVRs)"
    );
    assert!(
        ok,
        "openssl s_client never connected after a second HelloVerifyRequest"
    );
}

#[test]
fn gnutls_cli_whose_cookie_expired_connects() {
    if !cssf_netsim::peer::require_binary("gnutls-cli", "apt-get install -y gnutls-bin") {
        return;
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let peer = common::Peer::spawn(
        "gnutls-cli",
        &[
            "--udp", "-p", &port, "127.0.0.1", "--pskusername", "Client_identity",
            "--pskkey", "00112233445566778899aabbccddeeff", "--priority",
            "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8:-GROUP-ALL:+GROUP-SECP256R1",
        ],
        "gnutls-cli".into(),
    );
    let (ok, hvrs) = third_party_with_expired_cookie(&sock, &peer);
    std::eprintln!("connected {ok}, {hvrs} HelloVerifyRequests");
    assert!(
        hvrs >= 2,
        "the expired cookie was not exercised ({hvrs} HVRs)"
    );
    assert!(
        ok,
        "gnutls-cli never connected after a second HelloVerifyRequest"
    );
}

// ---- R2-7: without RRC, one raced copy throttles the session for good ------

#[test]
fn without_rrc_one_raced_copy_does_not_throttle_the_validated_address_for_good() {
    // A CID client without RRC (a third-party stack, or rrc off) at C. An
    // off-path attacker copies one of its datagrams and races it from V:
    // the session moves to V at once, the genuine copy is a replay. The
    // client's next datagram moves it back to C, the address its handshake
    // came from, but C is now "unvalidated": the server sends there at
    // most 3x what C sends, until address_validated (nothing calls it).
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    let mut ccfg = cfg.clone();
    ccfg.rrc = false;
    let mut s: Server<4> = server(cfg);
    let mut ev = Vec::new();
    let c_addr = addr("10.0.0.7:5000");
    let v_addr = addr("198.51.100.9:7000");
    let mut c = psk_client(ccfg, ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        c_addr,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h = s.session_handle(&c_addr).unwrap();
    let now = Duration::from_secs(6);
    // An Observe registration.
    c.send(now, b"GET /temp Observe:0").unwrap();
    let d = c.out(now).pop().unwrap();
    let _ = s.handle_datagram(now, v_addr, &mut d.clone()); // the raced copy
    let _ = s.handle_datagram(now, c_addr, &mut d.clone()); // the genuine one
                                                            // The client acknowledges something a little later: back to C.
    c.send(now, b"ACK").unwrap();
    for mut d in c.out(now) {
        let _ = s.handle_datagram(now, c_addr, &mut d);
    }
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert_eq!(s.peer_address(h), Some(&c_addr));
    // Ten notifications over the next minutes.
    let mut got = 0;
    for i in 0..10u64 {
        let t = now + Duration::from_secs(10 * (i + 1));
        s.send(t, h, &[b'n'; 100]).unwrap();
        for (to, mut d) in out_s(&mut s, t) {
            if to == c_addr {
                c.input(t, &mut d);
            }
        }
        while c.recv(&mut [0u8; 256]).is_some() {
            got += 1;
        }
    }
    assert_eq!(
        got,
        10,
        "{got} of 10 notifications reached the handshake's own address ({} dropped as amplification)",
        s.stats().amplification_limited
    );
}

// ---- R2-8: a late copy of the first HelloVerifyRequest breaks the handshake -

/// Our client and server over a path with `one_way` delay each way (no
/// loss), the client's first retransmission timer 1 s. Returns whether both
/// ends connected within 30 s, and how many HelloVerifyRequests were sent.
fn handshake_over_slow_path(one_way: Duration) -> (bool, usize) {
    let cfg = config(&PSK);
    let mut s: Server<4> = server(cfg.clone());
    let at = addr("10.0.0.7:5000");
    let mut c = psk_client(cfg, ID, KEY, 2);
    let mut wire: Vec<(Duration, bool, Vec<u8>)> = Vec::new();
    let mut now = Duration::ZERO;
    let mut hvrs = 0;
    let mut failed = Vec::new();
    while now < Duration::from_secs(30) {
        for d in c.out(now) {
            wire.push((now + one_way, true, d));
        }
        for (to, d) in out_s(&mut s, now) {
            if d[0] == 22 && d[13] == 3 {
                hvrs += 1;
            }
            if to == at {
                wire.push((now + one_way, false, d));
            }
        }
        let mut i = 0;
        while i < wire.len() {
            if wire[i].0 <= now {
                let (_, to_server, mut d) = wire.remove(i);
                if to_server {
                    let _ = s.handle_datagram(now, at, &mut d);
                } else {
                    c.input(now, &mut d);
                }
            } else {
                i += 1;
            }
        }
        for e in c.drain() {
            if let Event::Closed { reason, .. } = e {
                failed.push(reason);
            }
        }
        while let Some(e) = s.poll_event() {
            if let Event::Closed { reason, .. } = e {
                failed.push(reason);
            }
        }
        if c.connected() && s.session_handle(&at).is_some_and(|h| s.is_connected(h)) {
            return (true, hvrs);
        }
        s.handle_timeout(now);
        c.timeout(now);
        now += Duration::from_millis(10);
    }
    std::eprintln!("closed: {failed:?}");
    (false, hvrs)
}

#[test]
fn control_a_handshake_over_a_0_8_s_round_trip_completes() {
    let (ok, hvrs) = handshake_over_slow_path(Duration::from_millis(400));
    assert!(ok, "RTT 0.8 s: no connection ({hvrs} HVRs)");
}

#[test]
fn a_handshake_over_a_1_2_s_round_trip_completes() {
    // The first ClientHello is retransmitted at 1 s, before the
    // HelloVerifyRequest arrives: the server answers both, one second
    // apart, so the two requests carry different cookies (the cookie holds
    // the time). The client takes the first, sends its ClientHello with it
    // (the server starts the handshake), then takes the late second one as
    // "a new cookie" (message_seq 0 < 1), resets its transcript and sends
    // another ClientHello: its transcript no longer matches the server's.
    let (ok, hvrs) = handshake_over_slow_path(Duration::from_millis(600));
    assert!(
        ok,
        "RTT 1.2 s: no connection in 30 s ({hvrs} HelloVerifyRequests sent)"
    );
}
// ---- held up: the client answers each authenticated challenge once --------

#[test]
fn a_replayed_path_challenge_is_answered_once() {
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    let mut s: Server<4> = server(cfg.clone());
    let mut ev = Vec::new();
    let old = addr("10.0.0.7:5000");
    let new = addr("10.0.0.7:6000");
    let mut c = psk_client(cfg, ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        old,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let now = Duration::from_secs(6);
    c.send(now, b"hello from a new port").unwrap();
    for mut d in c.out(now) {
        let _ = s.handle_datagram(now, new, &mut d);
    }
    let ch: Vec<_> = out_s(&mut s, now)
        .into_iter()
        .filter(|(to, _)| *to == new)
        .collect();
    assert_eq!(ch.len(), 1, "one challenge");
    let mut answers = 0;
    for _ in 0..3 {
        c.input(now, &mut ch[0].1.clone());
        answers += c.out(now).len();
    }
    assert_eq!(
        answers, 1,
        "{answers} answers to one challenge delivered three times"
    );
    // An epoch-0 record of content type 27 is not answered either.
    let mut plain =
        std::vec![27u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    c.input(now, &mut plain);
    assert!(c.out(now).is_empty());
}

#[test]
fn sessions_moved_in_by_another_host_do_not_make_a_host_evict_its_own() {
    // Host X (10.0.0.7, a NAT) has one legitimate session; its limit is 2.
    // An attacker on another host (anonymous raw-public-key sessions, CIDs,
    // no RRC) moves two sessions "to" X by spoofing X's address, and keeps
    // them active. A second device behind X connects: X is "at its limit",
    // and its least recently active session (the first device's) is
    // evicted. Without the attacker nothing would be evicted.
    let mut cfg = config(&[
        CipherSuite::PskWithAes128Ccm8,
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
    ]);
    cfg.cid_len = Some(4);
    let mut s: Srv<5, 2> = server(cfg.clone());
    let mut ev = Vec::new();
    let l1 = addr("10.0.0.7:5000");
    let mut c1 = psk_client(config(&PSK), ID, KEY, 2);
    connect(
        &mut s,
        c1.as_mut(),
        l1,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h1 = s.session_handle(&l1).unwrap();
    let mut acfg = config(&ECDSA);
    acfg.cid_len = Some(4);
    acfg.rrc = false;
    let mut evil = Vec::new();
    for p in 0..2u16 {
        let a = SocketAddr::new(addr("203.0.113.66:1").ip(), 1000 + p);
        let mut c = rpk_client(acfg.clone(), None, 30 + u64::from(p));
        connect(
            &mut s,
            c.as_mut(),
            a,
            Duration::ZERO,
            Duration::from_secs(5),
            &mut ev,
        )
        .unwrap();
        evil.push((SocketAddr::new(l1.ip(), 7000 + p), c));
    }
    let t = Duration::from_secs(60);
    for (spoofed, c) in evil.iter_mut() {
        c.send(t, b"keepalive").unwrap();
        for mut d in c.out(t) {
            let _ = s.handle_datagram(t, *spoofed, &mut d);
        }
    }
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    let l2 = addr("10.0.0.7:5001");
    let mut c2 = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 3);
    connect(&mut s, c2.as_mut(), l2, t, Duration::from_secs(5), &mut ev).unwrap();
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert!(
        closed(&ev, h1).is_empty(),
        "the first device's session was evicted for the second's because another host's \
         sessions were moved onto its address: {:?}",
        closed(&ev, h1)
    );
}

// ---- added with the fixes ----------------------------------------------------

#[test]
fn session_slots_beyond_a_hosts_limit_are_lent_and_a_host_at_its_limit_evicts_none() {
    // Four slots, two per host. Host A connects three devices while slots
    // are free (one lent), host B one: the table is full.
    let mut s: Server<4> = server(config(&PSK));
    let mut ev = Vec::new();
    let a = |p: u16| SocketAddr::new(addr("10.0.0.7:1").ip(), p);
    let b = |p: u16| SocketAddr::new(addr("198.51.100.9:1").ip(), p);
    let mut now = Duration::ZERO;
    let mut handles = Vec::new();
    for (i, at) in [a(1), a(2), a(3), b(1)].into_iter().enumerate() {
        now += Duration::from_secs(1);
        let mut c = psk_client(config(&PSK), ID, KEY, 40 + i as u64);
        connect(&mut s, c.as_mut(), at, now, Duration::from_secs(5), &mut ev).expect("a free slot");
        handles.push(s.session_handle(&at).unwrap());
    }
    assert_eq!(s.sessions(), 4);
    // A fourth device of A: A is beyond its limit and the table is full.
    // Refused, and nobody's session ends for it.
    now += Duration::from_secs(1);
    let refused = s.stats().handshakes_refused;
    let mut c = psk_client(config(&PSK), ID, KEY, 50);
    assert!(connect(
        &mut s,
        c.as_mut(),
        a(4),
        now,
        Duration::from_secs(5),
        &mut ev
    )
    .is_none());
    assert!(s.stats().handshakes_refused > refused);
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    for h in &handles {
        assert!(closed(&ev, *h).is_empty(), "{:?}", closed(&ev, *h));
    }
    // A second device of B (below its limit): A's least recently active
    // session, the lent one, gives its slot back; A keeps two.
    let mut c = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 51);
    connect(
        &mut s,
        c.as_mut(),
        b(2),
        now,
        Duration::from_secs(5),
        &mut ev,
    )
    .expect("a lent slot given back");
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert_eq!(closed(&ev, handles[0]), [CloseReason::Evicted]);
    for h in &handles[1..] {
        assert!(closed(&ev, *h).is_empty(), "{:?}", closed(&ev, *h));
    }
    // A third device of B: B is at its limit, A too; refused, no eviction.
    let mut c = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 52);
    assert!(connect(
        &mut s,
        c.as_mut(),
        b(3),
        now,
        Duration::from_secs(5),
        &mut ev
    )
    .is_none());
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert_eq!(s.sessions(), 4);
    for h in &handles[1..] {
        assert!(closed(&ev, *h).is_empty(), "{:?}", closed(&ev, *h));
    }
}

#[test]
fn require_rrc_grants_connection_ids_only_with_the_return_routability_check() {
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    cfg.require_rrc = true;
    let mut s: Server<4> = server(cfg.clone());
    let mut ev = Vec::new();
    let now = Duration::ZERO;
    // rrc off with require_rrc is no usable setting.
    let mut bad = cfg.clone();
    bad.rrc = false;
    assert_eq!(bad.validate(), Err(Error::Config));
    for rrc in [false, true] {
        let at = SocketAddr::new(addr("10.0.0.7:1").ip(), 5000 + u16::from(rrc));
        let mut ccfg = cfg.clone();
        ccfg.require_rrc = false;
        ccfg.rrc = rrc;
        let mut c = Client::new(ccfg, ID, KEY, server_addr(), SimRng::new(60), now).unwrap();
        connect(&mut s, &mut c, at, now, Duration::from_secs(5), &mut ev).expect("connects");
        assert_eq!(c.cid_negotiated(), rrc, "rrc {rrc}");
        // A record of the client from elsewhere: without CIDs it reaches
        // no session; with CIDs and RRC it starts a check, no move yet.
        let h = s.session_handle(&at).unwrap();
        c.send(now, b"from elsewhere").unwrap();
        let elsewhere = addr("198.51.100.9:7000");
        for mut d in AnyClient::out(&mut c, now) {
            let _ = s.handle_datagram(now, elsewhere, &mut d);
        }
        assert_eq!(s.peer_address(h), Some(&at), "rrc {rrc}");
        let challenged = out_s(&mut s, now).iter().any(|(to, _)| *to == elsewhere);
        assert_eq!(challenged, rrc, "rrc {rrc}");
    }
}

#[test]
fn path_challenges_are_paced_by_the_handshakes_round_trip() {
    // RFC 9853 §5.5: T = 3 x RTT when known (here measured by the
    // handshake), never below retransmit_initial (1 s in these tests).
    for (one_way, t) in [(0, 1000), (400, 2400)] {
        let one_way = Duration::from_millis(one_way);
        let mut cfg = config(&PSK);
        cfg.cid_len = Some(4);
        let mut s: Server<4> = server(cfg.clone());
        let at = addr("10.0.0.7:5000");
        let mut c = psk_client(cfg, ID, KEY, 2);
        let mut wire: Vec<(Duration, bool, Vec<u8>)> = Vec::new();
        let mut now = Duration::ZERO;
        while !(c.connected() && s.session_handle(&at).is_some_and(|h| s.is_connected(h))) {
            assert!(now < Duration::from_secs(20), "no connection");
            for d in c.out(now) {
                wire.push((now + one_way, true, d));
            }
            for (_, d) in out_s(&mut s, now) {
                wire.push((now + one_way, false, d));
            }
            let (due, later) = wire.into_iter().partition(|w| w.0 <= now);
            wire = later;
            for (_, to_server, mut d) in due {
                if to_server {
                    let _ = s.handle_datagram(now, at, &mut d);
                } else {
                    c.input(now, &mut d);
                }
            }
            s.handle_timeout(now);
            c.timeout(now);
            now += Duration::from_millis(10);
        }
        // The client's records now come from an address nothing answers at.
        let new = addr("10.0.0.7:6000");
        c.send(now, &[b'x'; 64]).unwrap();
        for mut d in c.out(now) {
            let _ = s.handle_datagram(now, new, &mut d);
        }
        let mut challenges = Vec::new();
        let end = now + Duration::from_secs(15);
        while now < end {
            s.handle_timeout(now);
            for (to, _) in out_s(&mut s, now) {
                if to == new {
                    challenges.push(now);
                }
            }
            now += Duration::from_millis(10);
        }
        assert_eq!(challenges.len(), 3, "one_way {one_way:?}: {challenges:?}");
        for w in challenges.windows(2) {
            let gap = (w[1] - w[0]).as_millis();
            // Measured in 10 ms steps: some tens of milliseconds more.
            assert!(
                gap.abs_diff(t) <= 100,
                "one_way {one_way:?}: challenges {gap} ms apart, want {t}"
            );
        }
    }
}

#[test]
fn without_rrc_an_address_the_application_validated_stays_validated() {
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    let mut ccfg = cfg.clone();
    ccfg.rrc = false;
    let mut s: Server<4> = server(cfg);
    let mut ev = Vec::new();
    let c_addr = addr("10.0.0.7:5000");
    let mut c = psk_client(ccfg, ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        c_addr,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h = s.session_handle(&c_addr).unwrap();
    let mut now = Duration::from_secs(6);
    let from = |s: &mut Server<4>, c: &mut Box<dyn AnyClient>, at: SocketAddr, now| {
        c.send(now, b"here").unwrap();
        for mut d in c.out(now) {
            let _ = s.handle_datagram(now, at, &mut d);
        }
        assert_eq!(s.peer_address(h), Some(&at));
    };
    // A move to V (a new NAT binding), validated by the application.
    let v = addr("10.0.0.7:6000");
    from(&mut s, &mut c, v, now);
    s.address_validated(h).unwrap();
    // Away to W, and back to V: V still needs no budget.
    from(&mut s, &mut c, addr("10.0.0.7:7000"), now);
    from(&mut s, &mut c, v, now);
    let limited = s.stats().amplification_limited;
    let mut got = 0;
    for _ in 0..10 {
        now += Duration::from_secs(10);
        s.send(now, h, &[b'n'; 100]).unwrap();
        for (to, mut d) in out_s(&mut s, now) {
            if to == v {
                c.input(now, &mut d);
            }
        }
        while c.recv(&mut [0u8; 256]).is_some() {
            got += 1;
        }
    }
    assert_eq!((got, s.stats().amplification_limited), (10, limited));
}
