//! Connection ID (RFC 9146) in memory: negotiation in both directions,
//! tls12_cid records on the wire, a client whose address changes while data
//! flows under loss, and forged, replayed or older records from another
//! address that must not move the session.
#![cfg(all(
    feature = "server",
    feature = "cid",
    feature = "ecdhe",
    feature = "chacha20"
))]
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

use cssf_dtls::{CipherSuite, Client, Config, Endpoint, Event, StaticPsk};
use cssf_netsim::{LinkConfig, Node, Sim, SimRng};

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];
const CLIENT: u8 = 1;
const SERVER: u8 = 2;
const NEW_CLIENT: u8 = 3;
const ATTACKER: u8 = 9;

/// The PSK suites (the ECDHE_ECDSA ones are covered in `cid_rpk`).
const PSK_SUITES: [CipherSuite; 3] = [
    CipherSuite::PskWithAes128Ccm8,
    CipherSuite::PskWithChaCha20Poly1305Sha256,
    CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
];

fn config(suite: CipherSuite, cid_len: Option<u8>) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    c.retransmit_initial = Duration::from_millis(100);
    c.retransmit_max = Duration::from_millis(800);
    c.max_retransmits = 30;
    c.cid_len = cid_len;
    c
}

struct ClientNode {
    c: Client<u8, SimRng>,
    addr: u8,
    connected: bool,
    got: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
}

impl ClientNode {
    fn new(cfg: Config, seed: u64) -> Self {
        ClientNode {
            c: Client::new(cfg, ID, KEY, SERVER, SimRng::new(seed), Duration::ZERO).unwrap(),
            addr: CLIENT,
            connected: false,
            got: Vec::new(),
            sent: Vec::new(),
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
                Event::Closed { reason, .. } => panic!("client closed: {reason:?}"),
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
        let t = self.c.poll_transmit(now, buf).unwrap()?;
        self.sent.push(buf[..t.len].to_vec());
        Some((t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.c.poll_timeout()
    }
}

struct ServerNode {
    s: Endpoint<u8, StaticPsk<'static>, SimRng, 4>,
    connected: Vec<u8>,
    moves: Vec<(u8, u8)>,
    got: Vec<Vec<u8>>,
    sent: Vec<(u8, Vec<u8>)>,
    echo: bool,
    /// Bytes from and to the new address before the session moved there.
    early_in: usize,
    early_out: usize,
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
            moves: Vec::new(),
            got: Vec::new(),
            sent: Vec::new(),
            echo: true,
            early_in: 0,
            early_out: 0,
        }
    }
    fn events(&mut self, now: Duration) {
        while let Some(e) = self.s.poll_event() {
            match e {
                Event::Connected { peer, .. } => self.connected.push(peer),
                Event::PeerAddressChanged { old, new, .. } => self.moves.push((old, new)),
                Event::ApplicationData { peer, .. } => {
                    let mut b = [0u8; 2048];
                    let n = self.s.recv_at(&peer, &mut b).unwrap().unwrap();
                    self.got.push(b[..n].to_vec());
                    if self.echo {
                        self.s.send_at(now, &peer, &b[..n]).unwrap();
                    }
                }
                Event::Closed { peer, reason, .. } => panic!("server closed {peer}: {reason:?}"),
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
        // RFC 9146 §6, RFC 9853 §5: before the session moved, the new
        // address gets only path challenges, at most three times what
        // came from it.
        if t.to == NEW_CLIENT && !self.moves.contains(&(CLIENT, NEW_CLIENT)) {
            self.early_out += t.len;
            assert!(
                self.early_out <= 3 * self.early_in,
                "server sent {} bytes to the unproven address, {} came from it",
                self.early_out,
                self.early_in
            );
        }
        self.sent.push((t.to, buf[..t.len].to_vec()));
        Some((t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.s.poll_timeout()
    }
}

/// Steps until both sides are connected; fails with the seed.
fn connect(sim: &mut Sim<u8>, c: &mut ClientNode, s: &mut ServerNode) {
    for _ in 0..50_000 {
        if c.connected && !s.connected.is_empty() {
            return;
        }
        if !sim.step(&mut [c, s]) {
            break;
        }
    }
    panic!(
        "seed {}: handshake did not finish by {:?}",
        sim.seed(),
        sim.now
    );
}

/// Sends `msg` until its echo comes back (as a CoAP CON would).
fn echo(sim: &mut Sim<u8>, c: &mut ClientNode, s: &mut ServerNode, msg: &[u8], what: &str) {
    let mut tries = 0;
    while !c.got.iter().any(|g| g[..] == msg[..]) {
        tries += 1;
        assert!(tries < 300, "seed {}: {what}: never echoed", sim.seed());
        c.c.send(sim.now, msg).unwrap();
        let until = sim.now + Duration::from_millis(300);
        sim.run_until(&mut [c, s], until);
    }
}

#[test]
fn cid_records_on_the_wire_for_every_suite() {
    for suite in PSK_SUITES {
        let mut sim = Sim::new(1, LinkConfig::perfect());
        let mut c = ClientNode::new(config(suite, Some(4)), 1);
        let mut s = ServerNode::new(config(suite, Some(6)), 2);
        connect(&mut sim, &mut c, &mut s);
        assert!(c.c.cid_negotiated(), "{suite:?}");
        echo(&mut sim, &mut c, &mut s, b"ping", "first message");
        // The client's last datagram is the protected "ping": tls12_cid with
        // the server's 6-byte CID; the server's echo carries our 4-byte CID.
        let out = c.sent.last().unwrap();
        assert_eq!(out[0], 25, "{suite:?}: client record type");
        let (to, back) = s.sent.last().unwrap();
        assert_eq!(
            (*to, back[0]),
            (CLIENT, 25),
            "{suite:?}: server record type"
        );
        // Length field after 13 - 2 + CID bytes: client record = 11 + 6 + 2.
        let len = usize::from(u16::from_be_bytes([out[17], out[18]]));
        assert_eq!(out.len(), 19 + len, "{suite:?}: client record length");
        let len = usize::from(u16::from_be_bytes([back[15], back[16]]));
        assert_eq!(back.len(), 17 + len, "{suite:?}: server record length");
        // The Finished messages went out as tls12_cid records too (RFC 9146
        // §4: once encryption is enabled); no plain epoch-1 record was sent.
        for d in c.sent.iter().chain(s.sent.iter().map(|(_, d)| d)) {
            assert!(
                !(d[0] != 25 && d[3..5] == [0, 1]) || contains_cid_record(d),
                "{suite:?}: plain protected record sent with a CID negotiated"
            );
        }
        assert_eq!(c.c.stats().auth_failures, 0);
        assert_eq!(s.s.stats().auth_failures, 0);
    }
}

/// True when a datagram holds a tls12_cid record after its first record.
fn contains_cid_record(d: &[u8]) -> bool {
    let first = 13 + usize::from(u16::from_be_bytes([d[11], d[12]]));
    d.get(first) == Some(&25)
}

#[test]
fn one_sided_and_absent_cids() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    // The client asks for no CID (length 0): it sends tls12_cid records with
    // the server's CID, the server sends plain records.
    let mut sim = Sim::new(2, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite, Some(0)), 3);
    let mut s = ServerNode::new(config(suite, Some(4)), 4);
    connect(&mut sim, &mut c, &mut s);
    echo(&mut sim, &mut c, &mut s, b"one-sided", "echo");
    assert!(c.c.cid_negotiated());
    assert_eq!(c.sent.last().unwrap()[0], 25);
    assert_eq!(s.sent.last().unwrap().1[0], 23);
    // A server without CID support ignores the offer: plain records.
    let mut sim = Sim::new(3, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite, Some(4)), 5);
    let mut s = ServerNode::new(config(suite, None), 6);
    connect(&mut sim, &mut c, &mut s);
    echo(&mut sim, &mut c, &mut s, b"no cid", "echo");
    assert!(!c.c.cid_negotiated());
    assert_eq!(c.sent.last().unwrap()[0], 23);
    assert_eq!(s.sent.last().unwrap().1[0], 23);
}

#[test]
fn padding_hides_the_length() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut cfg = config(suite, Some(4));
    cfg.cid_padding = 32;
    let mut sim = Sim::new(4, LinkConfig::perfect());
    let mut c = ClientNode::new(cfg.clone(), 7);
    let mut s = ServerNode::new(cfg, 8);
    connect(&mut sim, &mut c, &mut s);
    for msg in [&b"a"[..], b"abcdefghij", &[7u8; 31], &[7u8; 40]] {
        echo(&mut sim, &mut c, &mut s, msg, "padded echo");
        let d = c.sent.last().unwrap();
        // CCM_8: 8 explicit nonce bytes and an 8-byte tag around the inner
        // plaintext (content, type, zeros), a multiple of 32.
        let inner = d.len() - 17 - 16;
        assert_eq!(inner % 32, 0, "inner plaintext of {} bytes", msg.len());
    }
}

#[test]
fn address_change_mid_transfer_under_loss_every_suite() {
    for suite in PSK_SUITES {
        for seed in 0..20 {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut c = ClientNode::new(config(suite, Some(4)), seed);
            let mut s = ServerNode::new(config(suite, Some(5)), seed ^ 0x55);
            connect(&mut sim, &mut c, &mut s);
            for i in 0..3u8 {
                echo(&mut sim, &mut c, &mut s, &[i; 64], "before the move");
            }
            // NAT rebinding: from now on the client's datagrams come from
            // another address, and datagrams to the old one are lost.
            c.addr = NEW_CLIENT;
            for i in 3..8u8 {
                echo(&mut sim, &mut c, &mut s, &[i; 64], "after the move");
            }
            assert_eq!(
                s.moves,
                [(CLIENT, NEW_CLIENT)],
                "seed {seed} {suite:?}: one move"
            );
            assert_eq!(
                s.connected,
                [CLIENT],
                "seed {seed} {suite:?}: no new handshake"
            );
            assert_eq!(s.s.sessions(), 1);
            assert!(s.s.connected_at(&NEW_CLIENT) && !s.s.connected_at(&CLIENT));
            assert!(s.sent.iter().any(|(to, _)| *to == NEW_CLIENT));
        }
    }
}

#[test]
fn forged_replayed_and_older_records_from_elsewhere_change_nothing() {
    let suite = CipherSuite::PskWithChaCha20Poly1305Sha256;
    let mut sim = Sim::new(6, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite, Some(4)), 9);
    let mut s = ServerNode::new(config(suite, Some(4)), 10);
    s.echo = false;
    connect(&mut sim, &mut c, &mut s);
    let now = sim.now;
    let mut buf = [0u8; 1500];
    let mut record = |c: &mut ClientNode, msg: &[u8]| {
        c.c.send(now, msg).unwrap();
        let t = c.c.poll_transmit(now, &mut buf).unwrap().unwrap();
        buf[..t.len].to_vec()
    };
    let a = record(&mut c, b"a");
    let b = record(&mut c, b"b");
    let d = record(&mut c, b"d");
    assert_eq!(a[0], 25);
    let stats0 = s.s.stats();

    // Forged: the right CID, a corrupted tag, from another address.
    let mut forged = a.clone();
    *forged.last_mut().unwrap() ^= 1;
    s.handle_datagram(now, ATTACKER, &mut forged);
    assert_eq!(s.s.stats().auth_failures, stats0.auth_failures + 1);
    // Unknown CID: dropped before any session sees it.
    let mut unknown = a.clone();
    unknown[11] ^= 0xff;
    s.handle_datagram(now, ATTACKER, &mut unknown);
    assert_eq!(s.s.stats().records_dropped, stats0.records_dropped + 1);
    assert!(s.moves.is_empty() && s.got.is_empty());

    // Genuine b from the client's address, then a (older, not a replay)
    // from another: the data is accepted, the address stays.
    s.handle_datagram(now, CLIENT, &mut b.clone());
    s.handle_datagram(now, ATTACKER, &mut a.clone());
    assert_eq!(s.got, [b"b".to_vec(), b"a".to_vec()]);
    assert!(s.moves.is_empty(), "an older record moved the session");
    // Replays of both, from another address: dropped, counted, no move.
    s.handle_datagram(now, ATTACKER, &mut a.clone());
    s.handle_datagram(now, ATTACKER, &mut b.clone());
    assert_eq!(s.s.stats().replays, stats0.replays + 2);
    assert_eq!(s.got.len(), 2);
    assert!(s.moves.is_empty());
    assert!(s.s.connected_at(&CLIENT) && !s.s.connected_at(&ATTACKER));
    s.s.send_at(now, &CLIENT, b"still here").unwrap();
    let t = s.s.poll_transmit(now, &mut buf).unwrap().unwrap();
    assert_eq!(t.to, CLIENT);

    // A genuine newest record from the new address starts the Return
    // Routability Check (RFC 9853): a challenge goes there, the session
    // stays where it was until the answer comes from the new address.
    s.handle_datagram(now, NEW_CLIENT, &mut d.clone());
    assert!(s.moves.is_empty());
    let challenge = s.s.poll_transmit(now, &mut buf).unwrap().unwrap();
    assert_eq!(challenge.to, NEW_CLIENT);
    assert!(challenge.len <= 3 * d.len());
    let mut challenge = buf[..challenge.len].to_vec();
    s.s.send_at(now, &CLIENT, b"not moved yet").unwrap();
    assert_eq!(
        s.s.poll_transmit(now, &mut buf).unwrap().unwrap().to,
        CLIENT
    );
    // A forged answer (the challenge itself, replayed) changes nothing.
    s.handle_datagram(now, NEW_CLIENT, &mut challenge.clone());
    assert!(s.moves.is_empty());
    c.c.handle_datagram(now, SERVER, &mut challenge).unwrap();
    let answer = c.c.poll_transmit(now, &mut buf).unwrap().unwrap();
    let answer = buf[..answer.len].to_vec();
    // The answer, wherever it comes from (an on-path copy, say), proves
    // the challenge reached the new address: the session moves there.
    s.handle_datagram(now, ATTACKER, &mut answer.clone());
    assert_eq!(s.moves, [(CLIENT, NEW_CLIENT)]);
    // A copy of it changes nothing (replay).
    s.handle_datagram(now, NEW_CLIENT, &mut answer.clone());
    assert_eq!(s.moves, [(CLIENT, NEW_CLIENT)]);
    assert!(s.s.connected_at(&NEW_CLIENT) && !s.s.connected_at(&CLIENT));
    s.s.send_at(now, &NEW_CLIENT, b"moved").unwrap();
    let t = s.s.poll_transmit(now, &mut buf).unwrap().unwrap();
    assert_eq!(t.to, NEW_CLIENT);
}

#[test]
fn plain_protected_records_are_refused_once_a_cid_is_negotiated() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(8, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite, Some(4)), 11);
    let mut s = ServerNode::new(config(suite, Some(4)), 12);
    s.echo = false;
    connect(&mut sim, &mut c, &mut s);
    let now = sim.now;
    // Rewrite a genuine tls12_cid record as a plain application_data record
    // (CID removed): RFC 9146 §4 makes it invalid.
    c.c.send(now, b"x").unwrap();
    let mut buf = [0u8; 1500];
    let t = c.c.poll_transmit(now, &mut buf).unwrap().unwrap();
    let rec = &buf[..t.len];
    let mut plain = Vec::new();
    plain.push(23);
    plain.extend_from_slice(&rec[1..11]);
    plain.extend_from_slice(&rec[15..]);
    let dropped = s.s.stats().records_dropped;
    s.handle_datagram(now, CLIENT, &mut plain);
    assert_eq!(s.s.stats().records_dropped, dropped + 1);
    assert!(s.got.is_empty());
}

/// The tls12_cid records of a datagram (CID length `cid_len`).
fn cid_records(d: &[u8], cid_len: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= 13 {
        let l = if rest[0] == 25 { 13 + cid_len } else { 13 };
        let len = l + usize::from(u16::from_be_bytes([rest[l - 2], rest[l - 1]]));
        if rest[0] == 25 {
            out.push(rest[..len].to_vec());
        }
        rest = &rest[len..];
    }
    out
}

#[test]
fn cid_records_from_elsewhere_do_not_reach_a_handshake() {
    // A CID is public once the ServerHello went out: a garbage tls12_cid
    // record from another address while the server awaits the client's
    // Finished must not fail the handshake.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(9, LinkConfig::perfect());
    let mut c = ClientNode::new(config(suite, Some(4)), 13);
    let mut s = ServerNode::new(config(suite, Some(4)), 14);
    // Flush until the client has queued its Finished (a tls12_cid record),
    // before the server sees it.
    let flight = loop {
        sim.flush(&mut [&mut c, &mut s]);
        if let Some(d) = c.sent.iter().find(|d| !cid_records(d, 4).is_empty()) {
            break d.clone();
        }
        assert!(sim.step(&mut [&mut c, &mut s]));
    };
    assert!(s.connected.is_empty());
    // Deliver ClientKeyExchange and ChangeCipherSpec ahead of the network:
    // the server now awaits the Finished.
    let finished = cid_records(&flight, 4).pop().unwrap();
    let mut head = flight[..flight.len() - finished.len()].to_vec();
    let now = sim.now;
    s.handle_datagram(now, CLIENT, &mut head);
    let mut forged = finished.clone();
    *forged.last_mut().unwrap() ^= 1;
    s.handle_datagram(now, ATTACKER, &mut forged);
    assert!(s.s.stats().records_dropped >= 1);
    s.handle_datagram(now, CLIENT, &mut finished.clone());
    assert_eq!(
        s.connected,
        [CLIENT],
        "the genuine Finished completes the handshake"
    );
    connect(&mut sim, &mut c, &mut s);
    assert_eq!(s.connected, [CLIENT]);
}

#[test]
fn several_clients_one_moves_the_others_keep_their_sessions() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(10, LinkConfig::lossy(0.1));
    let mut s = ServerNode::new(config(suite, Some(2)), 20);
    let mut clients: Vec<ClientNode> = (0..3u8)
        .map(|i| {
            let mut c = ClientNode::new(config(suite, Some(3)), 30 + u64::from(i));
            c.addr = 4 + i;
            c
        })
        .collect();
    let [a, b, c] = &mut clients[..] else {
        unreachable!()
    };
    for _ in 0..50_000 {
        if a.connected && b.connected && c.connected && s.connected.len() == 3 {
            break;
        }
        assert!(sim.step(&mut [a, b, c, &mut s]), "seed {}", sim.seed());
    }
    assert_eq!(s.s.sessions(), 3);
    let round = |sim: &mut Sim<u8>,
                 a: &mut ClientNode,
                 b: &mut ClientNode,
                 c: &mut ClientNode,
                 s: &mut ServerNode,
                 n: u8| {
        for (who, node) in [a, b, c].into_iter().enumerate() {
            let msg = [who as u8, n, 0xAA];
            let mut tries = 0;
            while !node.got.iter().any(|g| g[..] == msg[..]) {
                tries += 1;
                assert!(
                    tries < 300,
                    "seed {}: client {who} never echoed",
                    sim.seed()
                );
                node.c.send(sim.now, &msg).unwrap();
                let until = sim.now + Duration::from_millis(300);
                sim.run_until(&mut [node, s], until);
            }
        }
    };
    round(&mut sim, a, b, c, &mut s, 0);
    b.addr = 9;
    round(&mut sim, a, b, c, &mut s, 1);
    assert_eq!(s.moves, [(5, 9)]);
    assert_eq!(s.s.sessions(), 3);
    assert_eq!(s.connected.len(), 3, "no new handshake");
    // Each client only ever received its own echoes.
    for (who, node) in [a, b, c].into_iter().enumerate() {
        assert!(node.got.iter().all(|g| g[0] == who as u8), "client {who}");
    }
}

#[test]
fn record_size_limit_counts_the_inner_plaintext() {
    // The server limits records to 100 bytes of plaintext (RFC 8449); with a
    // CID the real type and up to 15 bytes of padding share that room.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut ccfg = config(suite, Some(4));
    ccfg.cid_padding = 16;
    ccfg.record_size_limit = Some(512);
    let mut scfg = config(suite, Some(4));
    scfg.record_size_limit = Some(100);
    let mut sim = Sim::new(12, LinkConfig::perfect());
    let mut c = ClientNode::new(ccfg, 15);
    let mut s = ServerNode::new(scfg, 16);
    connect(&mut sim, &mut c, &mut s);
    assert_eq!(c.c.max_payload(), 100 - 1 - 15);
    echo(&mut sim, &mut c, &mut s, &[0x42; 84], "largest record");
    assert!(c.c.send(sim.now, &[0x42; 85]).is_err());
}
