//! Attacks from an adversarial review of the session lifecycle and
//! identity work, each a regression test: handshake slots held by
//! restarting handshakes (one IPv6 /64, one slot), a Connection ID peer
//! naming another session's address, a client resuming with a server key
//! its trust store revoked, records lost between our own client and server,
//! one anonymous host holding every session slot, replayed cookie-bearing
//! ClientHellos, and a randomized run of spoofing, replay and time travel
//! checking the lifecycle rules. (One finding is accepted, not fixed: see
//! the crate README's status on forged epoch-0 records.)
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
    CipherSuite, Client, CloseReason, Config, Endpoint, Error, Event, Identity, SessionHandle,
    SigningKey, StaticPsk, TrustStore,
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
    fn session(&self) -> Option<cssf_dtls::Session>;
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
    fn session(&self) -> Option<cssf_dtls::Session> {
        Client::session(self)
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

/// Server datagrams (destination, bytes).
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

/// Runs client `c` at `at` against `s` (no loss) until both are connected
/// or `limit` passed; the server's events go to `ev`. Datagrams to other
/// addresses are dropped (counted in the returned tuple's second field).
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

// ---- 1. handshake slots: fresh hellos from one IPv6 /64 -------------------

/// A fresh client's cookie-bearing ClientHello at `a` (a new random each
/// time: the attacker receives at its own addresses).
fn fresh_cookie_hello<const N: usize, const H: usize>(
    s: &mut Srv<N, H>,
    now: Duration,
    a: SocketAddr,
    seed: u64,
) -> Vec<u8> {
    let mut c = psk_client(config(&PSK), ID, KEY, seed);
    for mut d in c.out(now) {
        let _ = s.handle_datagram(now, a, &mut d);
    }
    for (to, mut d) in out_s(s, now) {
        // Only the HelloVerifyRequest (the old handshake's retransmitted
        // flight is not for this fresh client).
        if to == a && d[13] == 3 {
            c.input(now, &mut d);
        }
    }
    c.out(now).into_iter().next().unwrap()
}

#[test]
fn one_ipv6_prefix_restarting_handshakes_does_not_hold_every_handshake_slot() {
    // Two addresses of one /64 (one attacker) each start a fresh
    // handshake (new random, new cookie) every 500 ms, less than the
    // initial retransmission timeout: their handshakes are never
    // "stalled", so nobody else is ever admitted.
    let mut s: Server<4> = server(config(&PSK));
    restarting_attackers_leave_a_slot(
        &mut s,
        &[addr("[2001:db8::1]:1000"), addr("[2001:db8::2]:1000")],
    );
}

#[test]
fn control_one_ipv4_host_restarting_leaves_the_other_slot() {
    let mut s: Server<4> = server(config(&PSK));
    restarting_attackers_leave_a_slot(&mut s, &[addr("10.0.0.66:1000"), addr("10.0.0.66:2000")]);
}

#[test]
fn with_one_handshake_slot_a_restarting_address_does_not_hold_it() {
    let mut s: Srv<4, 1> = server(config(&PSK));
    restarting_attackers_leave_a_slot(&mut s, &[addr("10.0.0.66:1000")]);
}

fn restarting_attackers_leave_a_slot<const N: usize, const H: usize>(
    s: &mut Srv<N, H>,
    attackers: &[SocketAddr],
) {
    let legit = addr("10.0.0.7:5000");
    let mut c = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 99);
    let mut now = Duration::ZERO;
    let mut seed = 1000;
    let mut ev = Vec::new();
    let mut connected_at = None;
    while now < Duration::from_secs(60) && connected_at.is_none() {
        for a in attackers {
            seed += 1;
            let mut ch = fresh_cookie_hello(s, now, *a, seed);
            let _ = s.handle_datagram(now, *a, &mut ch);
            let _ = out_s(s, now);
            ev.extend(core::iter::from_fn(|| s.poll_event()));
        }
        if !c.connected() && c.next().is_none() {
            // The legitimate client gave up: it starts over.
            seed += 1;
            c = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, seed);
        }
        connected_at = connect(
            s,
            c.as_mut(),
            legit,
            now,
            Duration::from_millis(499),
            &mut ev,
        );
        now += Duration::from_millis(500);
    }
    assert!(
        connected_at.is_some(),
        "the legitimate client never got a handshake slot in 60 s ({} refused)",
        s.stats().handshakes_refused
    );
}

// ---- 2. Connection ID moves: spoofed address, no return routability ------

#[test]
fn a_connection_id_peer_naming_another_address_neither_ends_its_session_nor_moves_there() {
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    let mut s: Server<4> = server(cfg.clone());
    let mut ev = Vec::new();
    // The victim (a CID client too: its address does not even matter to it).
    let victim = addr("10.0.0.7:5000");
    let mut v = psk_client(cfg.clone(), ID, KEY, 2);
    connect(
        &mut s,
        v.as_mut(),
        victim,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let hv = s.session_handle(&victim).unwrap();
    // The attacker: any peer with a session (here another PSK identity; with
    // server-only raw public keys, anybody).
    let evil = addr("10.0.0.66:4000");
    let mut a = psk_client(cfg, OTHER_ID, OTHER_KEY, 3);
    connect(
        &mut s,
        a.as_mut(),
        evil,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let ha = s.session_handle(&evil).unwrap();
    let now = Duration::from_secs(6);
    // One authenticated record of its own, sent with the victim's address
    // as source (it never receives there).
    a.send(now, b"x").unwrap();
    let mut bytes_in = 0;
    for mut d in a.out(now) {
        bytes_in += d.len();
        let _ = s.handle_datagram(now, victim, &mut d);
    }
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    // The server application answers its peer (say 1000 bytes).
    let _ = s.send(now, ha, &[0u8; 1000]);
    let to_victim: usize = out_s(&mut s, now)
        .iter()
        .filter(|(to, _)| *to == victim)
        .map(|(_, d)| d.len())
        .sum();
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    std::eprintln!(
        "victim closed: {:?}; attacker now at {:?}; {bytes_in} bytes in, {to_victim} bytes to the victim",
        closed(&ev, hv),
        s.peer_address(ha)
    );
    assert!(
        closed(&ev, hv).is_empty(),
        "the victim's CID session was killed by one spoofed datagram: {:?}",
        closed(&ev, hv)
    );
    assert_eq!(
        s.peer_address(ha),
        Some(&evil),
        "moved to an address that never proved it receives (RFC 9146 §6, third condition)"
    );
}

// ---- 3. the client's trust store is not asked on resumption ---------------

#[test]
fn a_client_does_not_resume_with_a_server_key_its_trust_store_revoked() {
    let mut s: Server<4> = server(config(&ECDSA));
    let mut ev = Vec::new();
    let at = addr("10.0.0.7:5000");
    let mut c = Client::with_raw_public_key(
        config(&ECDSA),
        None,
        Pins(std::vec![public(&key(1))]),
        server_addr(),
        SimRng::new(2),
        Duration::ZERO,
    )
    .unwrap();
    connect(
        &mut s,
        &mut c,
        at,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let session = c.session().unwrap();
    // The server's key is revoked on the client: its trust store is empty now.
    let mut again = Client::resume_with_raw_public_key(
        config(&ECDSA),
        None,
        Pins(Vec::new()),
        &session,
        server_addr(),
        SimRng::new(3),
        Duration::from_secs(10),
    )
    .unwrap();
    let at2 = addr("10.0.0.7:5001");
    let ok = connect(
        &mut s,
        &mut again,
        at2,
        Duration::from_secs(10),
        Duration::from_secs(5),
        &mut ev,
    );
    let ident = again.peer_identity().cloned();
    assert!(
        ok.is_none(),
        "resumed={} with server identity {:?}, which the client's trust store no longer accepts",
        again.is_resumed(),
        ident.map(|i| matches!(i, Identity::RawPublicKey(_)))
    );
}

// ---- 4. records lost at a client that polls after every input ----------------

#[test]
fn a_client_polling_after_every_datagram_gets_every_record_the_endpoint_packed() {
    let mut s: Server<4> = server(config(&PSK));
    let mut ev = Vec::new();
    let at = addr("10.0.0.7:5000");
    let mut c = psk_client(config(&PSK), ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        at,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h = s.session_handle(&at).unwrap();
    let now = Duration::from_secs(6);
    // The server application sends twelve small notifications.
    for i in 0..12u8 {
        s.send(now, h, &[i; 8]).unwrap();
    }
    let mut got = 0;
    let mut datagrams = 0;
    for (to, mut d) in out_s(&mut s, now) {
        assert_eq!(to, at);
        datagrams += 1;
        c.input(now, &mut d);
        // The application polls and reads after every datagram.
        for e in c.drain() {
            if matches!(e, Event::ApplicationData { .. }) {
                got += 1;
            }
        }
        while c.recv(&mut [0u8; 64]).is_some() {}
    }
    assert_eq!(
        got, 12,
        "{got} of 12 records delivered in {datagrams} datagram(s)"
    );
}

// ---- 5. one anonymous host holds every session slot ------------------------

#[test]
fn one_anonymous_host_does_not_hold_every_session_slot() {
    anonymous_host_sessions(4);
}

#[test]
fn control_three_anonymous_sessions_leave_a_slot() {
    anonymous_host_sessions(3);
}

fn anonymous_host_sessions(n: u16) {
    // Server-only raw public keys: anybody completes a handshake. One IP,
    // four ports, keeps its four sessions alive with a record a minute.
    let mut cfg = config(&[
        CipherSuite::PskWithAes128Ccm8,
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
    ]);
    cfg.idle_timeout = Duration::from_secs(600);
    let mut s: Server<4> = server(cfg.clone());
    let mut ev = Vec::new();
    let mut now = Duration::ZERO;
    let mut evil = Vec::new();
    for p in 0..n {
        let a = SocketAddr::new(addr("10.0.0.66:1").ip(), 1000 + p);
        let mut c = rpk_client(config(&ECDSA), None, 10 + u64::from(p));
        connect(&mut s, c.as_mut(), a, now, Duration::from_secs(5), &mut ev)
            .expect("anonymous handshake");
        evil.push((a, c));
    }
    // A legitimate PSK client on another host tries for ten minutes; the
    // attacker sends one record per session every minute.
    let legit = addr("10.0.0.7:5000");
    let mut ok = None;
    while now < Duration::from_secs(600) && ok.is_none() {
        now += Duration::from_secs(60);
        for (a, c) in evil.iter_mut() {
            c.send(now, b"keepalive").unwrap();
            for mut d in c.out(now) {
                let _ = s.handle_datagram(now, *a, &mut d);
            }
        }
        s.handle_timeout(now);
        let _ = out_s(&mut s, now);
        ev.extend(core::iter::from_fn(|| s.poll_event()));
        let mut c = psk_client(config(&PSK), ID, KEY, now.as_secs());
        ok = connect(
            &mut s,
            c.as_mut(),
            legit,
            now,
            Duration::from_secs(20),
            &mut ev,
        );
    }
    assert!(
        ok.is_some(),
        "one anonymous host held {n} of 4 session slots for 10 minutes ({} refused)",
        s.stats().handshakes_refused
    );
}

// ---- 6. an old ClientHello, replayed, ends the current session -------------

#[test]
fn a_replayed_old_cookie_hello_does_not_end_the_current_session() {
    let mut s: Server<4> = server(config(&PSK));
    let mut ev = Vec::new();
    let x = addr("10.0.0.7:5000");
    // First connection from X; an on-path attacker records its
    // cookie-bearing ClientHello.
    let mut c1 = psk_client(config(&PSK), ID, KEY, 2);
    let mut captured = None;
    let now = Duration::ZERO;
    for _ in 0..8 {
        for mut d in c1.out(now) {
            if d[0] == 22 && d[13] == 1 && d[13 + 12 + 2 + 32 + 1] == 16 {
                // A ClientHello with a 16-byte cookie.
                captured = Some(d.clone());
            }
            let _ = s.handle_datagram(now, x, &mut d);
        }
        for (_, mut d) in out_s(&mut s, now) {
            c1.input(now, &mut d);
        }
        ev.extend(core::iter::from_fn(|| s.poll_event()));
    }
    assert!(c1.connected());
    let captured = captured.expect("captured the cookie hello");
    // The device restarts (same address, new state) a minute later.
    let t = Duration::from_secs(60);
    let mut c2 = psk_client(config(&PSK), ID, KEY, 3);
    connect(&mut s, c2.as_mut(), x, t, Duration::from_secs(5), &mut ev).unwrap();
    let h2 = s.session_handle(&x).unwrap();
    // Two minutes later the attacker replays the old hello from X.
    let t = Duration::from_secs(180);
    let _ = s.handle_datagram(t, x, &mut captured.clone());
    let _ = out_s(&mut s, t);
    ev.extend(core::iter::from_fn(|| s.poll_event()));
    assert!(
        closed(&ev, h2).is_empty() && s.is_connected(h2),
        "the live session was ended by a replay: {:?}",
        closed(&ev, h2)
    );
}

// ---- 7. randomized adversarial lifecycles (held up if it passes) -----------

fn pick(rng: &mut SimRng, n: u64) -> u64 {
    rng.next_u64_raw() % n
}

const HOSTS: [&str; 6] = [
    "10.0.0.1:1000",
    "10.0.0.1:2000",
    "10.0.0.2:1000",
    "10.0.0.3:1000",
    "[2001:db8::1]:1",
    "[2001:db8::2]:1",
];

const FUZZ_SEEDS: u64 = 300;

#[test]
fn randomized_spoofing_replay_and_time_travel_keep_the_lifecycle_rules() {
    for seed in 0..FUZZ_SEEDS {
        let mut rng = SimRng::new(seed);
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
        let mut sessions: Vec<cssf_dtls::Session> = Vec::new();
        let mut ev: Vec<Event<SocketAddr>> = Vec::new();
        let mut now = Duration::ZERO;
        let mut poll = true;
        let mut next_seed = seed * 10_000;
        let a = |rng: &mut SimRng| addr(HOSTS[pick(rng, HOSTS.len() as u64) as usize]);
        for _ in 0..150 {
            next_seed += 1;
            for c in clients.values() {
                if let Some(x) = c.session() {
                    if sessions.len() < 16 {
                        sessions.push(x);
                    }
                }
            }
            match pick(&mut rng, 14) {
                12 | 13 if !sessions.is_empty() => {
                    let x = sessions[pick(&mut rng, sessions.len() as u64) as usize].clone();
                    let at = a(&mut rng);
                    let c: Box<dyn AnyClient> = if x.suite().key_exchange().is_psk() {
                        let (id, k) = KEYS[pick(&mut rng, 2) as usize];
                        Box::new(
                            Client::resume(
                                cfg.clone(),
                                id,
                                k,
                                &x,
                                server_addr(),
                                SimRng::new(next_seed),
                                now,
                            )
                            .unwrap(),
                        )
                    } else {
                        Box::new(
                            Client::resume_with_raw_public_key(
                                cfg.clone(),
                                None,
                                Pins(std::vec![public(&key(1))]),
                                &x,
                                server_addr(),
                                SimRng::new(next_seed),
                                now,
                            )
                            .unwrap(),
                        )
                    };
                    clients.insert(at, c);
                }
                0 | 1 => {
                    let at = a(&mut rng);
                    let (id, k) = KEYS[pick(&mut rng, 2) as usize];
                    clients.insert(at, psk_client(cfg.clone(), id, k, next_seed));
                }
                2 => {
                    let at = a(&mut rng);
                    clients.insert(at, rpk_client(cfg.clone(), None, next_seed));
                }
                3 => {
                    // Wrong key for a known identity.
                    let at = a(&mut rng);
                    clients.insert(
                        at,
                        psk_client(cfg.clone(), ID, b"wrong-wrong-key!", next_seed),
                    );
                }
                4 if !captured.is_empty() => {
                    // Replay a captured datagram from anywhere.
                    let mut d = captured[pick(&mut rng, captured.len() as u64) as usize].clone();
                    let _ = s.handle_datagram(now, a(&mut rng), &mut d);
                }
                5 if !captured.is_empty() => {
                    // A mutated copy.
                    let mut d = captured[pick(&mut rng, captured.len() as u64) as usize].clone();
                    let i = pick(&mut rng, d.len() as u64) as usize;
                    d[i] ^= 1 << pick(&mut rng, 8);
                    if pick(&mut rng, 3) == 0 {
                        d.truncate(pick(&mut rng, d.len() as u64 + 1) as usize);
                    }
                    let _ = s.handle_datagram(now, a(&mut rng), &mut d);
                }
                6 => {
                    // Move a client (NAT rebinding), or spoof: same client, two addresses.
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
                    // A server-side close of any handle ever seen.
                    if let Some(e) = ev.get(pick(&mut rng, ev.len() as u64 + 1) as usize) {
                        let _ = s.close(now, e.handle());
                    }
                }
                9 => poll = !poll,
                10 => {
                    // Time travels backwards a little (a non-monotonic clock).
                    let back = now.saturating_sub(Duration::from_secs(pick(&mut rng, 5)));
                    s.handle_timeout(back);
                }
                _ => {
                    now += Duration::from_millis(pick(&mut rng, 30_000));
                    s.handle_timeout(now);
                    for c in clients.values_mut() {
                        c.timeout(now);
                    }
                }
            }
            // Deliver everything queued.
            for _ in 0..32 {
                let mut moved = false;
                for (at, c) in clients.iter_mut() {
                    for mut d in c.out(now) {
                        moved = true;
                        if captured.len() < 200 {
                            captured.push(d.clone());
                        }
                        let _ = s.handle_datagram(now, *at, &mut d);
                        if poll {
                            ev.extend(core::iter::from_fn(|| s.poll_event()));
                        }
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
                if poll {
                    ev.extend(core::iter::from_fn(|| s.poll_event()));
                    for e in &ev {
                        if let Event::ApplicationData { handle, .. } = e {
                            while let Ok(Some(_)) = s.recv(*handle, &mut [0u8; 1500]) {}
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        // Everybody leaves; a long quiet time, polling.
        clients.clear();
        for _ in 0..40 {
            now += Duration::from_secs(30);
            s.handle_timeout(now);
            let _ = out_s(&mut s, now);
            ev.extend(core::iter::from_fn(|| s.poll_event()));
        }
        let _ = out_s(&mut s, now);
        ev.extend(core::iter::from_fn(|| s.poll_event()));
        // The rules.
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
                Event::Closed { .. } => {
                    ended.insert(h);
                }
                _ => {}
            }
        }
        let all: std::collections::HashSet<_> = ev.iter().map(Event::handle).collect();
        assert_eq!(all, ended, "seed {seed}: handles without Closed");
        // Handles are numbered from 1: every number given out was reported.
        let max = all.iter().map(|h| h.raw()).max().unwrap_or(0);
        let missing: Vec<u64> = (1..=max)
            .filter(|n| !all.contains(&SessionHandle::from_raw(*n)))
            .collect();
        assert!(
            missing.is_empty(),
            "seed {seed}: handles never reported: {missing:?}"
        );
        assert_eq!((s.sessions(), s.handshakes()), (0, 0), "seed {seed}");
        if std::env::var("REVIEW_STATS").is_ok() {
            let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
            for e in &ev {
                let k = match e {
                    Event::Closed { reason, .. } => std::format!("Closed {reason:?}"),
                    Event::Connected {
                        resumed, identity, ..
                    } => std::format!("Connected resumed={resumed} anon={}", identity.is_none()),
                    Event::PeerAddressChanged { .. } => "Moved".into(),
                    _ => "Data".into(),
                };
                *reasons.entry(k).or_default() += 1;
            }
            std::eprintln!(
                "seed {seed}: {reasons:?} refused {}",
                s.stats().handshakes_refused
            );
        }
        assert_eq!(s.poll_timeout(), None, "seed {seed}");
    }
}

#[test]
fn a_replayed_cookie_hello_sends_no_flights_to_an_address_that_left() {
    // The victim connected (raw public keys) and left. An on-path observer
    // replays its cookie-bearing ClientHello from its address a minute
    // later: the cookie still verifies (two rotations, 300 s each), a
    // handshake is created, and its whole flight is retransmitted to the
    // victim until the budget is spent.
    let mut s: Server<4> = server(config(&ECDSA));
    let x = addr("10.0.0.7:5000");
    let mut c = rpk_client(config(&ECDSA), None, 2);
    let mut captured = None;
    let now = Duration::ZERO;
    for _ in 0..8 {
        for mut d in c.out(now) {
            if d[0] == 22 && d[13] == 1 && d[13 + 12 + 2 + 32 + 1] == 16 {
                captured = Some(d.clone());
            }
            let _ = s.handle_datagram(now, x, &mut d);
        }
        for (_, mut d) in out_s(&mut s, now) {
            c.input(now, &mut d);
        }
        while s.poll_event().is_some() {}
    }
    assert!(c.connected());
    let h = s.session_handle(&x).unwrap();
    s.close(now, h).unwrap();
    let _ = out_s(&mut s, now);
    while s.poll_event().is_some() {}
    let captured = captured.unwrap();
    let mut t = Duration::from_secs(60);
    let bytes_in = captured.len();
    let _ = s.handle_datagram(t, x, &mut captured.clone());
    let mut bytes_out = 0;
    for _ in 0..200 {
        bytes_out += out_s(&mut s, t)
            .iter()
            .filter(|(to, _)| *to == x)
            .map(|(_, d)| d.len())
            .sum::<usize>();
        while s.poll_event().is_some() {}
        t += Duration::from_millis(500);
        s.handle_timeout(t);
    }
    assert!(
        bytes_out <= 3 * bytes_in,
        "one replayed {bytes_in}-byte datagram, {bytes_out} bytes sent to an address nobody answers at"
    );
}

// ---- 8. an off-path spoofer ends a handshake in progress --------------------

#[test]
fn an_endpoint_polling_after_every_datagram_gets_every_record_a_client_packed() {
    let mut s: Server<4> = server(config(&PSK));
    let mut ev = Vec::new();
    let at = addr("10.0.0.7:5000");
    let mut c = psk_client(config(&PSK), ID, KEY, 2);
    connect(
        &mut s,
        c.as_mut(),
        at,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    // Another session is established (the fair share applies).
    let mut other = psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 3);
    connect(
        &mut s,
        other.as_mut(),
        addr("10.0.0.8:5000"),
        Duration::ZERO,
        Duration::from_secs(5),
        &mut ev,
    )
    .unwrap();
    let h = s.session_handle(&at).unwrap();
    let now = Duration::from_secs(6);
    for i in 0..12u8 {
        c.send(now, &[i; 8]).unwrap();
    }
    let mut got = 0;
    let out = c.out(now);
    for mut d in out.iter().cloned() {
        let _ = s.handle_datagram(now, at, &mut d);
        for e in core::iter::from_fn(|| s.poll_event()) {
            if matches!(e, Event::ApplicationData { .. }) {
                got += 1;
            }
        }
        while let Ok(Some(_)) = s.recv(h, &mut [0u8; 64]) {}
    }
    assert_eq!(
        got,
        12,
        "{got} of 12 records delivered in {} datagram(s)",
        out.len()
    );
}
