//! In-memory handshakes and data for every suite under the shared netsim
//! harness: clean links, 30% loss with duplication and reordering, lost
//! final flights, tampering and replay.
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod at;
use at::At;
use core::time::Duration;
use std::vec::Vec;

use cssf_dtls::{CipherSuite, Client, Config, Endpoint, Error, Event, StaticPsk};
use cssf_netsim::{LinkConfig, Node, Sim, SimRng};

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
static KEYS: [(&[u8], &[u8]); 2] = [(ID, KEY), (b"other", b"otherkey")];
const CLIENT: u8 = 1;
const SERVER: u8 = 2;

fn config(suite: CipherSuite) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    c.retransmit_initial = Duration::from_millis(100);
    c.retransmit_max = Duration::from_millis(800);
    c.max_retransmits = 30;
    c
}

struct ClientNode {
    c: Client<u8, SimRng>,
    connected: bool,
    got: Vec<Vec<u8>>,
    error: Option<Error>,
}

impl ClientNode {
    fn new(cfg: Config, seed: u64) -> Self {
        ClientNode {
            c: Client::new(cfg, ID, KEY, SERVER, SimRng::new(seed), Duration::ZERO).unwrap(),
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
                Event::Closed { reason, .. } => self.error = reason.error(),
                _ => {}
            }
        }
    }
}

impl Node<u8> for ClientNode {
    fn addr(&self) -> u8 {
        CLIENT
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

type Server = Endpoint<u8, StaticPsk<'static>, SimRng, 4>;

struct ServerNode {
    s: Server,
    connected: Vec<u8>,
    got: Vec<Vec<u8>>,
    echo: bool,
    drop_first_flight_after_connect: bool,
}

impl ServerNode {
    fn new(cfg: Config, seed: u64) -> Self {
        ServerNode {
            s: Endpoint::new(
                cfg,
                StaticPsk::new(&KEYS),
                SimRng::new(seed),
                Duration::ZERO,
            )
            .unwrap(),
            connected: Vec::new(),
            got: Vec::new(),
            echo: true,
            drop_first_flight_after_connect: false,
        }
    }
    fn events(&mut self, now: Duration) {
        while let Some(e) = self.s.poll_event() {
            match e {
                Event::Connected { peer, .. } => self.connected.push(peer),
                Event::ApplicationData { peer, .. } => {
                    let mut b = [0u8; 2048];
                    let n = self.s.recv_at(&peer, &mut b).unwrap().unwrap();
                    self.got.push(b[..n].to_vec());
                    if self.echo {
                        self.s.send_at(now, &peer, &b[..n]).unwrap();
                    }
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
        let _ = self.s.handle_datagram(now, from, data);
        self.events(now);
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.s.handle_timeout(now);
        self.events(now);
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        if self.drop_first_flight_after_connect && !self.connected.is_empty() {
            // Lose the server's final flight (ChangeCipherSpec + Finished).
            self.drop_first_flight_after_connect = false;
            let mut n = 0;
            while self.s.poll_transmit(now, buf).unwrap().is_some() {
                n += 1;
            }
            assert!(n > 0, "flight 6 should have been pending");
        }
        self.s
            .poll_transmit(now, buf)
            .unwrap()
            .map(|t| (t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.s.poll_timeout()
    }
}

fn drive_until(
    sim: &mut Sim<u8>,
    c: &mut ClientNode,
    s: &mut ServerNode,
    what: &str,
    mut done: impl FnMut(&ClientNode, &ServerNode) -> bool,
) {
    for _ in 0..50_000 {
        if done(c, s) {
            return;
        }
        assert!(
            c.error.is_none(),
            "seed {}: client failed during {what}: {:?}",
            sim.seed(),
            c.error
        );
        if !sim.step(&mut [c, s]) {
            break;
        }
    }
    assert!(
        done(c, s),
        "seed {}: {what} did not finish (t = {:?}, client error {:?})",
        sim.seed(),
        sim.now,
        c.error
    );
}

fn full_exchange(suite: CipherSuite, seed: u64, link: LinkConfig) -> (ClientNode, ServerNode) {
    let mut sim = Sim::new(seed, link);
    let mut c = ClientNode::new(config(suite), seed);
    let mut s = ServerNode::new(config(suite), seed ^ 0xABCD);
    drive_until(&mut sim, &mut c, &mut s, "handshake", |c, s| {
        c.connected && s.connected.contains(&CLIENT)
    });
    // Application data both ways (echo), retransmitted by the test on loss
    // the way an application (e.g. CoAP CON) would.
    for i in 0..3u8 {
        let msg = [i; 100];
        let mut tries = 0;
        while !c.got.iter().any(|g| g[..] == msg[..]) {
            tries += 1;
            assert!(tries < 200, "seed {seed}: message {i} never echoed");
            c.c.send(sim.now, &msg).unwrap();
            let until = sim.now + Duration::from_millis(400);
            sim.run_until(&mut [&mut c, &mut s], until);
        }
    }
    (c, s)
}

#[test]
fn every_suite_clean_link() {
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        let (c, s) = full_exchange(suite, 7, LinkConfig::perfect());
        assert_eq!(c.got.len(), 3, "{suite:?}");
        assert_eq!(s.got.len(), 3, "{suite:?}");
        assert_eq!(c.c.stats().auth_failures, 0);
    }
}

#[test]
fn hundred_seeds_at_30_percent_loss_every_suite() {
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        for seed in 0..100 {
            full_exchange(suite, seed, LinkConfig::lossy(0.3));
        }
    }
}

#[test]
#[cfg(all(feature = "ecdhe", feature = "chacha20"))]
fn small_mtu_fragments_flights() {
    // ECDHE-PSK flights exceed 200 bytes: they must be fragmented and reassembled.
    let suite = CipherSuite::EcdhePskWithChaCha20Poly1305Sha256;
    let mut sim = Sim::new(3, LinkConfig::lossy(0.1).with_mtu(200));
    let mut cfg = config(suite);
    cfg.mtu = 200;
    let mut c = ClientNode::new(cfg.clone(), 3);
    let mut s = ServerNode::new(cfg, 4);
    drive_until(&mut sim, &mut c, &mut s, "fragmented handshake", |c, s| {
        c.connected && !s.connected.is_empty()
    });
    assert_eq!(sim.net.stats.oversize, 0);
}

#[test]
fn lost_final_flight_still_completes() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(11, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite), 11);
    let mut s = ServerNode::new(config(suite), 12);
    s.drop_first_flight_after_connect = true;
    drive_until(&mut sim, &mut c, &mut s, "server side", |_, s| {
        !s.connected.is_empty()
    });
    assert!(!c.connected);
    drive_until(
        &mut sim,
        &mut c,
        &mut s,
        "completion after lost flight 6",
        |c, _| c.connected,
    );
    assert!(s.s.stats().retransmissions >= 1);
}

#[test]
fn tampered_and_replayed_records_are_dropped_and_counted() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(5, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite), 5);
    let mut s = ServerNode::new(config(suite), 6);
    s.echo = false;
    drive_until(&mut sim, &mut c, &mut s, "handshake", |c, s| {
        c.connected && !s.connected.is_empty()
    });
    let now = sim.now;
    c.c.send(now, b"hello").unwrap();
    let mut buf = [0u8; 1500];
    let t = c.c.poll_transmit(now, &mut buf).unwrap().unwrap();
    let record = buf[..t.len].to_vec();
    // tampered copy
    let mut bad = record.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    s.handle_datagram(now, CLIENT, &mut bad);
    assert_eq!(s.s.stats().auth_failures, 1);
    assert!(s.got.is_empty());
    // genuine
    let mut good = record.clone();
    s.handle_datagram(now, CLIENT, &mut good);
    assert_eq!(s.got, [b"hello".to_vec()]);
    // replay
    let mut again = record.clone();
    s.handle_datagram(now, CLIENT, &mut again);
    assert_eq!(s.got.len(), 1);
    assert_eq!(s.s.stats().replays, 1);
    assert!(s.s.connected_at(&CLIENT));
}

#[test]
fn wrong_psk_fails_with_bad_record_mac() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(9, LinkConfig::perfect());
    let mut c = ClientNode {
        c: Client::new(
            config(suite),
            ID,
            b"wrong key",
            SERVER,
            SimRng::new(9),
            Duration::ZERO,
        )
        .unwrap(),
        connected: false,
        got: Vec::new(),
        error: None,
    };
    let mut s = ServerNode::new(config(suite), 10);
    sim.run_until(&mut [&mut c, &mut s], Duration::from_secs(5));
    assert!(!c.connected);
    // The client's Finished fails authentication under the server's keys.
    assert_eq!(
        c.error,
        Some(Error::AlertReceived(
            cssf_dtls::AlertDescription::BadRecordMac
        )),
        "the server rejects the client's Finished"
    );
}

#[test]
#[cfg(feature = "chacha20")]
fn unknown_identity_gets_unknown_psk_identity() {
    let suite = CipherSuite::PskWithChaCha20Poly1305Sha256;
    let mut sim = Sim::new(9, LinkConfig::perfect());
    let mut c = ClientNode {
        c: Client::new(
            config(suite),
            b"stranger",
            KEY,
            SERVER,
            SimRng::new(9),
            Duration::ZERO,
        )
        .unwrap(),
        connected: false,
        got: Vec::new(),
        error: None,
    };
    let mut s = ServerNode::new(config(suite), 10);
    sim.run_until(&mut [&mut c, &mut s], Duration::from_secs(5));
    assert_eq!(
        c.error,
        Some(Error::AlertReceived(
            cssf_dtls::AlertDescription::UnknownPskIdentity
        ))
    );
}

#[test]
fn handshake_bytes_on_the_wire_ccm8() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(1, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite), 1);
    let mut s = ServerNode::new(config(suite), 2);
    drive_until(&mut sim, &mut c, &mut s, "handshake", |c, _| c.connected);
    let total = sim.net.stats.bytes_delivered;
    std::println!(
        "PSK-AES128-CCM8 handshake incl. cookie exchange: {total} bytes in {} datagrams",
        sim.net.stats.delivered
    );
    assert_eq!(sim.net.stats.lost, 0);
    // OpenSSL 3.0 against itself uses 633 bytes for the same handshake
    // (s_client reports 246 read + 387 written); stay below that.
    assert!(total < 633, "{total} bytes");
}

#[test]
fn close_notify_both_ways() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(21, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite), 21);
    let mut s = ServerNode::new(config(suite), 22);
    drive_until(&mut sim, &mut c, &mut s, "handshake", |c, s| {
        c.connected && !s.connected.is_empty()
    });
    c.c.close(sim.now);
    let until = sim.now + Duration::from_secs(1);
    sim.run_until(&mut [&mut c, &mut s], until);
    assert_eq!(
        s.s.sessions(),
        0,
        "server forgets the peer after close_notify"
    );
    assert_eq!(c.c.send(sim.now, b"x"), Err(Error::Closed));
}

/// A node for a second or third client at another address.
struct NamedClient(u8, ClientNode);

impl Node<u8> for NamedClient {
    fn addr(&self) -> u8 {
        self.0
    }
    fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
        self.1.handle_datagram(now, from, data)
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.1.handle_timeout(now)
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        self.1.poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.1.poll_timeout()
    }
}

#[test]
fn server_demultiplexes_several_peers_and_bounds_its_table() {
    // Table capacity 4 (the `Server` type): four clients handshake at once
    // over a lossy link; a fifth finds the table full of live sessions and
    // gets no state (its handshake cannot complete).
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(31, LinkConfig::lossy(0.1));
    let mut s = ServerNode::new(config(suite), 32);
    let mut clients: Vec<NamedClient> = (10..14)
        .map(|a| NamedClient(a, ClientNode::new(config(suite), u64::from(a))))
        .collect();
    for _ in 0..20_000 {
        if clients.iter().all(|c| c.1.connected) {
            break;
        }
        let mut nodes: Vec<&mut dyn Node<u8>> = Vec::new();
        nodes.push(&mut s);
        for c in clients.iter_mut() {
            nodes.push(c);
        }
        if !sim.step(&mut nodes) {
            break;
        }
    }
    // Clients here talk to SERVER but from their own addresses.
    assert!(
        clients.iter().all(|c| c.1.connected),
        "seed {}: not all four connected",
        sim.seed()
    );
    assert_eq!(s.s.sessions(), 4);
    let mut sorted = s.connected.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, [10, 11, 12, 13]);
    let mut fifth = NamedClient(14, ClientNode::new(config(suite), 14));
    let until = sim.now + Duration::from_secs(3);
    {
        let mut nodes: Vec<&mut dyn Node<u8>> = std::vec![&mut s, &mut fifth];
        sim.run_until(&mut nodes, until);
    }
    assert!(!fifth.1.connected);
    assert_eq!(s.s.sessions(), 4, "the table never grows past its capacity");
}

#[test]
fn idle_sessions_expire() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut cfg = config(suite);
    cfg.idle_timeout = Duration::from_secs(30);
    let mut sim = Sim::new(41, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite), 41);
    let mut s = ServerNode::new(cfg, 42);
    drive_until(&mut sim, &mut c, &mut s, "handshake", |c, s| {
        c.connected && !s.connected.is_empty()
    });
    assert_eq!(s.s.sessions(), 1);
    let until = sim.now + Duration::from_secs(31);
    sim.run_until(&mut [&mut c, &mut s], until);
    assert_eq!(s.s.sessions(), 0, "idle session still held");
    assert_eq!(c.error, None, "the client saw a clean close_notify");
    assert_eq!(c.c.send(sim.now, b"x"), Err(Error::Closed));
}

#[test]
#[cfg(all(feature = "ecdhe", feature = "chacha20"))]
fn record_size_limit_is_honoured() {
    // Both sides offer record_size_limit 128 (RFC 8449): handshake messages
    // are fragmented to fit and larger application records are refused.
    let suite = CipherSuite::EcdhePskWithChaCha20Poly1305Sha256;
    let mut cfg = config(suite);
    cfg.record_size_limit = Some(128);
    let mut sim = Sim::new(51, LinkConfig::perfect());
    let mut c = ClientNode::new(cfg.clone(), 51);
    let mut s = ServerNode::new(cfg, 52);
    drive_until(&mut sim, &mut c, &mut s, "handshake", |c, s| {
        c.connected && !s.connected.is_empty()
    });
    assert_eq!(c.c.max_payload(), 128);
    assert_eq!(c.c.send(sim.now, &[0u8; 129]), Err(Error::RecordOverflow));
    c.c.send(sim.now, &[7u8; 128]).unwrap();
    let until = sim.now + Duration::from_secs(1);
    sim.run_until(&mut [&mut c, &mut s], until);
    assert_eq!(s.got, [std::vec![7u8; 128]]);
}

#[test]
fn a_restarted_client_gets_a_fresh_session() {
    // The client reboots mid-session (new random, same address): its new
    // handshake replaces the old session once the cookie checks out.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(61, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite), 61);
    let mut s = ServerNode::new(config(suite), 62);
    drive_until(&mut sim, &mut c, &mut s, "first handshake", |c, s| {
        c.connected && s.connected.len() == 1
    });
    let mut c2 = ClientNode::new(config(suite), 63);
    drive_until(&mut sim, &mut c2, &mut s, "second handshake", |c, s| {
        c.connected && s.connected.len() == 2
    });
    assert_eq!(s.s.sessions(), 1);
    c2.c.send(sim.now, b"after reboot").unwrap();
    let until = sim.now + Duration::from_secs(1);
    sim.run_until(&mut [&mut c2, &mut s], until);
    assert_eq!(c2.got, [b"after reboot".to_vec()]);
}

#[test]
fn heavy_reordering_with_fragmented_flights() {
    // Flights split over several datagrams (MTU 200) and half of them
    // delayed: messages that overtake earlier ones are kept, not dropped.
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        for seed in 0..50 {
            let link = LinkConfig {
                reorder: 0.5,
                reorder_delay: Duration::from_millis(80),
                ..LinkConfig::lossy(0.1).with_mtu(200)
            };
            let mut sim = Sim::new(seed, link);
            let mut cfg = config(suite);
            cfg.mtu = 200;
            let mut c = ClientNode::new(cfg.clone(), seed);
            let mut s = ServerNode::new(cfg, seed + 7);
            drive_until(&mut sim, &mut c, &mut s, "reordered handshake", |c, s| {
                c.connected && !s.connected.is_empty()
            });
        }
    }
}

/// The PSK-only build (`--no-default-features --features server`): its
/// one suite completes the handshake and carries data both ways at 20 %
/// loss (with duplication and reordering) for several seeds.
#[test]
#[cfg(not(any(
    feature = "ecdhe",
    feature = "chacha20",
    feature = "cid",
    feature = "resumption"
)))]
fn psk_only_build_at_20_percent_loss() {
    assert_eq!(CipherSuite::ALL, [CipherSuite::PskWithAes128Ccm8]);
    let mut lost = 0;
    for seed in 0..20 {
        let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
        let cfg = Config::default();
        assert!(!cfg.resumption && cfg.cid_len.is_none());
        let mut c = ClientNode::new(cfg.clone(), seed);
        let mut s = ServerNode::new(cfg, seed ^ 0x5A5A);
        drive_until(&mut sim, &mut c, &mut s, "PSK-only handshake", |c, s| {
            c.connected && s.connected.contains(&CLIENT)
        });
        for i in 0..3u8 {
            let msg = [i ^ 0xA5; 64];
            let mut tries = 0;
            while !c.got.iter().any(|g| g[..] == msg[..]) {
                tries += 1;
                assert!(tries < 200, "seed {seed}: message {i} never echoed");
                c.c.send(sim.now, &msg).unwrap();
                let until = sim.now + Duration::from_millis(400);
                sim.run_until(&mut [&mut c, &mut s], until);
            }
            // The server got it (client to server) and echoed it (back).
            assert!(s.got.iter().any(|g| g[..] == msg[..]), "seed {seed}");
        }
        assert!(c.error.is_none(), "seed {seed}: {:?}", c.error);
        lost += sim.net.stats.lost;
    }
    assert!(lost >= 20, "the link lost only {lost} datagrams");
}
