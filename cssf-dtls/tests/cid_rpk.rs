//! Connection ID and session resumption with the ECDHE_ECDSA suites and
//! raw public keys (mutual authentication): a client changing address
//! mid-transfer under loss, and a restarted client resuming, with the peer
//! keys carried by the session.
#![cfg(all(
    feature = "server",
    feature = "cid",
    feature = "ecdhe",
    feature = "chacha20",
    feature = "resumption"
))]
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
use std::vec::Vec;

use common::{key, public, Pins};
use cssf_dtls::{
    CipherSuite, Client, Config, Endpoint, Error, Event, Identity, Session, SigningKey, StaticPsk,
};
use cssf_netsim::{LinkConfig, Node, Sim, SimRng};

const CLIENT: u8 = 1;
const SERVER: u8 = 2;
const NEW_CLIENT: u8 = 3;
const ECDSA_SUITES: [CipherSuite; 2] = [
    CipherSuite::EcdheEcdsaWithAes128Ccm8,
    CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
];

fn config(suite: CipherSuite) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    c.retransmit_initial = Duration::from_millis(100);
    c.retransmit_max = Duration::from_millis(800);
    c.max_retransmits = 30;
    c.require_client_auth = true;
    c.cid_len = Some(4);
    c
}

struct ClientNode {
    c: Client<u8, SimRng, Pins>,
    addr: u8,
    connected: bool,
    got: Vec<Vec<u8>>,
    error: Option<Error>,
}

impl ClientNode {
    fn new(c: Client<u8, SimRng, Pins>) -> Self {
        ClientNode {
            c,
            addr: CLIENT,
            connected: false,
            got: Vec::new(),
            error: None,
        }
    }
    fn events(&mut self) {
        while let Some(e) = self.c.poll_event() {
            match e {
                Event::Connected { .. } => self.connected = true,
                Event::ApplicationData { .. } => {
                    let mut b = [0u8; 2048];
                    let n = self.c.recv(&mut b).unwrap().unwrap();
                    self.got.push(b[..n].to_vec());
                }
                Event::Closed { reason, .. } => self.error = self.error.or(reason.error()),
                _ => {}
            }
        }
    }
}

impl Node<u8> for ClientNode {
    fn addr(&self) -> u8 {
        self.addr
    }
    fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
        self.c.handle_datagram(now, from, data).unwrap();
        self.events();
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.c.handle_timeout(now);
        self.events();
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        self.c
            .poll_transmit(now, buf)
            .unwrap()
            .map(|t| (t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.c.poll_timeout()
    }
}

struct ServerNode {
    s: Endpoint<u8, StaticPsk<'static>, SimRng, 4, Pins>,
    connected: usize,
    moves: Vec<(u8, u8)>,
    /// Bytes from and to the new address before the session moved there.
    early_in: usize,
    early_out: usize,
}

impl ServerNode {
    fn new(cfg: Config, own: SigningKey, trust: Pins, seed: u64) -> Self {
        ServerNode {
            s: Endpoint::with_raw_public_key(
                cfg,
                StaticPsk::new(&[]),
                own,
                trust,
                SimRng::new(seed),
                Duration::ZERO,
            )
            .unwrap(),
            connected: 0,
            moves: Vec::new(),
            early_in: 0,
            early_out: 0,
        }
    }
    fn events(&mut self, now: Duration) {
        while let Some(e) = self.s.poll_event() {
            match e {
                Event::Connected { .. } => self.connected += 1,
                Event::PeerAddressChanged { old, new, .. } => self.moves.push((old, new)),
                Event::ApplicationData { peer, .. } => {
                    let mut b = [0u8; 2048];
                    let n = self.s.recv_at(&peer, &mut b).unwrap().unwrap();
                    self.s.send_at(now, &peer, &b[..n]).unwrap();
                }
                _ => {}
            }
        }
    }
}

impl Node<u8> for ServerNode {
    fn addr(&self) -> u8 {
        SERVER
    }
    fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
        if from == NEW_CLIENT && !self.moves.contains(&(CLIENT, NEW_CLIENT)) {
            self.early_in += data.len();
        }
        let _ = self.s.handle_datagram(now, from, data);
        self.events(now);
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.s.handle_timeout(now);
        self.events(now);
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        let t = self.s.poll_transmit(now, buf).unwrap()?;
        // RFC 9853 §5: before the move, path challenges only, within 3x.
        if t.to == NEW_CLIENT && !self.moves.contains(&(CLIENT, NEW_CLIENT)) {
            self.early_out += t.len;
            assert!(self.early_out <= 3 * self.early_in);
        }
        Some((t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.s.poll_timeout()
    }
}

fn run(sim: &mut Sim<u8>, c: &mut ClientNode, s: &mut ServerNode, what: &str, n: usize) {
    for _ in 0..50_000 {
        if c.connected && s.connected >= n {
            return;
        }
        assert!(
            c.error.is_none(),
            "seed {}: {what}: client failed: {:?}",
            sim.seed(),
            c.error
        );
        if !sim.step(&mut [c, s]) {
            break;
        }
    }
    panic!(
        "seed {}: {what} did not finish by {:?}",
        sim.seed(),
        sim.now
    );
}

fn echo(sim: &mut Sim<u8>, c: &mut ClientNode, s: &mut ServerNode, msg: &[u8]) {
    let mut tries = 0;
    while !c.got.iter().any(|g| g[..] == msg[..]) {
        tries += 1;
        assert!(tries < 300, "seed {}: never echoed", sim.seed());
        c.c.send(sim.now, msg).unwrap();
        let until = sim.now + Duration::from_millis(300);
        sim.run_until(&mut [c, s], until);
    }
}

fn rpk_client(
    suite: CipherSuite,
    seed: u64,
    session: Option<&Session>,
    now: Duration,
) -> ClientNode {
    let (own, trust) = (Some(key(10)), Pins(std::vec![public(&key(20))]));
    let rng = SimRng::new(seed);
    ClientNode::new(match session {
        Some(s) => {
            Client::resume_with_raw_public_key(config(suite), own, trust, s, SERVER, rng, now)
                .unwrap()
        }
        None => Client::with_raw_public_key(config(suite), own, trust, SERVER, rng, now).unwrap(),
    })
}

fn rpk_server(suite: CipherSuite, seed: u64) -> ServerNode {
    ServerNode::new(
        config(suite),
        key(20),
        Pins(std::vec![public(&key(10))]),
        seed,
    )
}

#[test]
fn rpk_address_change_mid_transfer_under_loss() {
    for suite in ECDSA_SUITES {
        for seed in 0..10 {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut c = rpk_client(suite, seed, None, sim.now);
            let mut s = rpk_server(suite, seed ^ 0x99);
            run(&mut sim, &mut c, &mut s, "handshake", 1);
            assert!(c.c.cid_negotiated());
            for i in 0..3u8 {
                echo(&mut sim, &mut c, &mut s, &[i; 48]);
            }
            c.addr = NEW_CLIENT;
            for i in 3..6u8 {
                echo(&mut sim, &mut c, &mut s, &[i; 48]);
            }
            assert_eq!(s.moves, [(CLIENT, NEW_CLIENT)], "seed {seed} {suite:?}");
            assert_eq!(s.connected, 1, "seed {seed} {suite:?}: no new handshake");
            assert_eq!(
                s.s.peer_identity(s.s.at(&NEW_CLIENT)),
                Some(&Identity::RawPublicKey(public(&key(10)))),
                "the moved session keeps the client's authenticated key"
            );
        }
    }
}

#[test]
fn rpk_resumption_keeps_the_peer_keys() {
    for suite in ECDSA_SUITES {
        for seed in 0..10 {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut s = rpk_server(suite, seed ^ 0x33);
            let mut c = rpk_client(suite, seed, None, sim.now);
            run(&mut sim, &mut c, &mut s, "full handshake", 1);
            echo(&mut sim, &mut c, &mut s, b"full");
            let session = c.c.session().unwrap();
            assert_eq!(session.peer_public_key(), Some(&public(&key(20))));
            let mut c = rpk_client(suite, seed + 500, Some(&session), sim.now);
            run(&mut sim, &mut c, &mut s, "abbreviated handshake", 2);
            assert!(c.c.is_resumed(), "seed {seed} {suite:?}");
            assert!(s.s.resumed_at(&CLIENT));
            assert_eq!(
                c.c.peer_identity(),
                Some(&Identity::RawPublicKey(public(&key(20))))
            );
            assert_eq!(
                s.s.peer_identity(s.s.at(&CLIENT)),
                Some(&Identity::RawPublicKey(public(&key(10))))
            );
            echo(&mut sim, &mut c, &mut s, b"resumed");
        }
    }
}

#[test]
fn rpk_resumption_bytes_and_round_trips() {
    // Clean link, fixed 10 ms one-way delay; printed with --nocapture.
    for suite in ECDSA_SUITES {
        let mut sim = Sim::new(1, LinkConfig::perfect());
        let mut s = rpk_server(suite, 2);
        let mut c = rpk_client(suite, 3, None, sim.now);
        run(&mut sim, &mut c, &mut s, "full handshake", 1);
        sim.run_until(&mut [&mut c, &mut s], sim.now + Duration::from_millis(50));
        let (full_time, full_bytes) = (sim.now, sim.net.stats.bytes_delivered);
        let session = c.c.session().unwrap();
        let start = sim.now;
        let mut c = rpk_client(suite, 4, Some(&session), sim.now);
        run(&mut sim, &mut c, &mut s, "abbreviated handshake", 2);
        let resumed_time = sim.now - start;
        sim.run_until(&mut [&mut c, &mut s], sim.now + Duration::from_millis(50));
        let resumed_bytes = sim.net.stats.bytes_delivered - full_bytes;
        std::println!(
            "{suite:?} (mutual RPK, CID): full {full_bytes} bytes, resumed {resumed_bytes} bytes; \
             both sides connected after {:?} vs {resumed_time:?}",
            full_time - Duration::from_millis(50)
        );
        assert!(c.c.is_resumed());
        assert!(resumed_bytes < full_bytes, "{suite:?}");
    }
}
