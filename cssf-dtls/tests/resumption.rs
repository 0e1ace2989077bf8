//! Session resumption with session IDs (RFC 5246 §7.3, RFC 6347 §4.2.8) in
//! memory: a client restarts and resumes under loss, unknown IDs fall back
//! to a full handshake, forged plaintext handshake records neither end
//! nor spoil an established session, a session ended by a fatal alert is
//! not resumed, and extended master secret mismatches follow RFC 7627 §5.3.
#![cfg(all(
    feature = "server",
    feature = "resumption",
    feature = "cid",
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

use cssf_dtls::{
    AlertDescription, CipherSuite, Client, Config, Endpoint, Error, Event, RejectAll, Session,
    StaticPsk,
};
use cssf_netsim::{LinkConfig, Node, Sim, SimRng};

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];
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
    bytes_sent: usize,
}

impl ClientNode {
    fn new(c: Client<u8, SimRng>) -> Self {
        ClientNode {
            c,
            connected: false,
            got: Vec::new(),
            error: None,
            bytes_sent: 0,
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
        let t = self.c.poll_transmit(now, buf).unwrap()?;
        self.bytes_sent += t.len;
        Some((t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.c.poll_timeout()
    }
}

struct ServerNode {
    s: Endpoint<u8, StaticPsk<'static>, SimRng, 4, RejectAll, 4>,
    connected: usize,
    closed: Vec<Option<Error>>,
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
            connected: 0,
            closed: Vec::new(),
        }
    }
    fn events(&mut self, now: Duration) {
        while let Some(e) = self.s.poll_event() {
            match e {
                Event::Connected { .. } => self.connected += 1,
                Event::ApplicationData { peer, .. } => {
                    let mut b = [0u8; 2048];
                    let n = self.s.recv_at(&peer, &mut b).unwrap().unwrap();
                    self.s.send_at(now, &peer, &b[..n]).unwrap();
                }
                Event::Closed { reason, .. } => self.closed.push(reason.error()),
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
        self.s
            .poll_transmit(now, buf)
            .unwrap()
            .map(|t| (t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.s.poll_timeout()
    }
}

fn run(
    sim: &mut Sim<u8>,
    c: &mut ClientNode,
    s: &mut ServerNode,
    what: &str,
    done: impl Fn(&ClientNode, &ServerNode) -> bool,
) {
    for _ in 0..50_000 {
        if done(c, s) {
            return;
        }
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

fn client(cfg: Config, seed: u64, session: Option<&Session>, now: Duration) -> ClientNode {
    let rng = SimRng::new(seed);
    ClientNode::new(match session {
        Some(s) => Client::resume(cfg, ID, KEY, s, SERVER, rng, now).unwrap(),
        None => Client::new(cfg, ID, KEY, SERVER, rng, now).unwrap(),
    })
}

/// A full handshake and one echo; returns the client's session.
fn first_connection(sim: &mut Sim<u8>, s: &mut ServerNode, cfg: Config, seed: u64) -> Session {
    let mut c = client(cfg, seed, None, sim.now);
    run(sim, &mut c, s, "full handshake", |c, s| {
        c.connected && s.connected >= 1
    });
    assert!(!c.c.is_resumed());
    echo(sim, &mut c, s, b"first");
    c.c.session().expect("a resumable session")
}

#[test]
fn resumption_after_client_restart_under_loss_every_suite() {
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        for seed in 0..20 {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut s = ServerNode::new(config(suite), seed ^ 0x77);
            let session = first_connection(&mut sim, &mut s, config(suite), seed);
            assert_eq!(session.id().len(), 32);
            assert_eq!(session.suite(), suite);
            assert!(session.extended_master_secret());
            assert_eq!(s.s.cached_sessions(), 1);
            // The client restarts (its connection state is gone) and resumes
            // from the same address.
            let mut c = client(config(suite), seed + 1000, Some(&session), sim.now);
            run(&mut sim, &mut c, &mut s, "abbreviated handshake", |c, s| {
                c.connected && s.connected >= 2
            });
            assert!(c.c.is_resumed(), "seed {seed} {suite:?}: not resumed");
            assert!(s.s.resumed_at(&CLIENT), "seed {seed} {suite:?}");
            echo(&mut sim, &mut c, &mut s, b"after resumption");
            // The resumed connection's session is the same one.
            assert_eq!(c.c.session().unwrap().id(), session.id());
            assert_eq!(s.s.cached_sessions(), 1);
        }
    }
}

#[test]
fn abbreviated_handshake_saves_a_round_trip() {
    // On a clean link with a fixed 10 ms one-way delay: virtual time until
    // the client is connected, and bytes on the wire in both directions
    // (cookie exchange included). Printed for the record (--nocapture).
    // The abbreviated handshake is one round trip shorter for every suite;
    // it also sends fewer bytes when it skips an ECDH exchange, but with
    // plain PSK the 32-byte session ID, carried three times, costs about
    // what ClientKeyExchange and ServerHelloDone saved.
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        let mut sim = Sim::new(1, LinkConfig::perfect());
        let mut s = ServerNode::new(config(suite), 2);
        let mut full = client(config(suite), 3, None, sim.now);
        run(&mut sim, &mut full, &mut s, "full", |c, _| c.connected);
        let full_time = sim.now;
        run(&mut sim, &mut full, &mut s, "full", |_, s| s.connected == 1);
        let full_bytes = sim.net.stats.bytes_delivered;
        let session = full.c.session().unwrap();
        let start = sim.now;
        let mut again = client(config(suite), 4, Some(&session), sim.now);
        run(&mut sim, &mut again, &mut s, "resumed", |c, _| c.connected);
        let resumed_time = sim.now - start;
        run(&mut sim, &mut again, &mut s, "resumed", |_, s| {
            s.connected == 2
        });
        let resumed_bytes = sim.net.stats.bytes_delivered - full_bytes;
        assert!(again.c.is_resumed());
        std::println!(
            "{suite:?}: client connected after {full_time:?} (full) vs {resumed_time:?} (resumed); \
             bytes {full_bytes} vs {resumed_bytes}"
        );
        assert_eq!(
            full_time - resumed_time,
            Duration::from_millis(20),
            "{suite:?}: one round trip saved"
        );
        if suite.key_exchange().is_ecdhe() {
            assert!(resumed_bytes < full_bytes, "{suite:?}");
        }
    }
}

#[test]
fn unknown_session_id_falls_back_to_a_full_handshake() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(5, LinkConfig::lossy(0.1));
    let mut s = ServerNode::new(config(suite), 6);
    let session = first_connection(&mut sim, &mut s, config(suite), 7);
    // Another server (e.g. after a reboot) has never seen the ID.
    let mut sim = Sim::new(8, LinkConfig::lossy(0.1));
    let mut other = ServerNode::new(config(suite), 9);
    let mut c = client(config(suite), 10, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut other, "fallback", |c, s| {
        c.connected && s.connected == 1
    });
    assert!(!c.c.is_resumed() && !other.s.resumed_at(&CLIENT));
    echo(&mut sim, &mut c, &mut other, b"full again");
    let fresh = c.c.session().unwrap();
    assert_ne!(fresh.id(), session.id());
}

#[test]
fn forged_plaintext_handshake_records_neither_end_nor_spoil_a_session() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(11, LinkConfig::perfect());
    let mut s = ServerNode::new(config(suite), 12);
    let mut c = client(config(suite), 13, None, sim.now);
    run(&mut sim, &mut c, &mut s, "full handshake", |c, s| {
        c.connected && s.connected == 1
    });
    let session = c.c.session().unwrap();
    assert_eq!(s.s.cached_sessions(), 1);
    // Unprotected handshake messages in and around the client's next
    // expected message_seq while connected, as an off-path attacker
    // spoofing the server could send: dropped, no alert, the session is
    // neither ended nor made unresumable.
    for seq in 0..8u16 {
        let mut rec = std::vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 99, 0, 24];
        rec.extend_from_slice(&[20, 0, 0, 12]);
        rec.extend_from_slice(&seq.to_be_bytes());
        rec.extend_from_slice(&[0, 0, 0, 0, 0, 12]);
        rec.extend_from_slice(&[0u8; 12]);
        c.handle_datagram(sim.now, SERVER, &mut rec);
    }
    assert_eq!(c.error, None);
    assert!(c.c.is_connected());
    assert_eq!(c.c.stats().records_dropped, 8);
    let until = sim.now + Duration::from_secs(1);
    sim.run_until(&mut [&mut c, &mut s], until);
    assert_eq!(s.closed, []);
    assert_eq!(s.s.cached_sessions(), 1);
    // The session is still resumable.
    assert!(c.c.session().is_some());
    let mut c = client(config(suite), 14, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "abbreviated handshake", |c, s| {
        c.connected && s.connected == 2
    });
    assert!(c.c.is_resumed());
}

#[test]
fn a_session_ended_by_a_fatal_alert_is_not_resumed() {
    // RFC 5246 §7.2.2 on both sides: the client ends the session with a
    // fatal internal_error alert (through a test hook: nothing
    // authenticated that a well-behaved peer sends is fatal); it no longer
    // offers the session, and the server, on receiving the alert, drops
    // it from its cache.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(41, LinkConfig::perfect());
    let mut s = ServerNode::new(config(suite), 42);
    let mut c = client(config(suite), 43, None, sim.now);
    run(&mut sim, &mut c, &mut s, "full handshake", |c, s| {
        c.connected && s.connected == 1
    });
    let session = c.c.session().unwrap();
    assert_eq!(s.s.cached_sessions(), 1);
    c.c.fail_for_tests();
    c.events();
    assert_eq!(c.error, Some(Error::Internal));
    assert!(c.c.session().is_none());
    run(&mut sim, &mut c, &mut s, "alert delivered", |_, s| {
        !s.closed.is_empty()
    });
    assert_eq!(
        s.closed,
        [Some(Error::AlertReceived(AlertDescription::InternalError))]
    );
    assert_eq!(s.s.cached_sessions(), 0);
    // The session saved before the alert is refused: a full handshake.
    let mut c = client(config(suite), 44, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "new handshake", |c, s| {
        c.connected && s.connected == 2
    });
    assert!(!c.c.is_resumed());
    assert_eq!(s.s.cached_sessions(), 1);
}

fn no_ems_required(suite: CipherSuite) -> Config {
    let mut c = config(suite);
    c.require_extended_master_secret = false;
    c
}

#[test]
fn ems_session_is_not_resumed_without_ems() {
    // RFC 7627 §5.3: the original session used EMS, the new ClientHello
    // does not offer it: the server aborts.
    let suite = CipherSuite::PskWithChaCha20Poly1305Sha256;
    let mut sim = Sim::new(15, LinkConfig::perfect());
    let mut s = ServerNode::new(no_ems_required(suite), 16);
    let session = first_connection(&mut sim, &mut s, config(suite), 17);
    assert!(session.extended_master_secret());
    let mut cfg = no_ems_required(suite);
    cfg.offer_extended_master_secret = false;
    let mut c = client(cfg, 18, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "abort", |c, _| c.error.is_some());
    assert_eq!(
        c.error,
        Some(Error::AlertReceived(AlertDescription::HandshakeFailure))
    );
    assert!(!c.connected);
}

#[test]
fn session_without_ems_is_not_resumed_when_ems_is_offered() {
    // RFC 7627 §5.3: the original session did not use EMS, the new
    // ClientHello offers it: a full handshake (with EMS) instead.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(19, LinkConfig::perfect());
    let mut s = ServerNode::new(no_ems_required(suite), 20);
    let mut legacy = no_ems_required(suite);
    legacy.offer_extended_master_secret = false;
    let session = first_connection(&mut sim, &mut s, legacy.clone(), 21);
    assert!(!session.extended_master_secret());
    // Without EMS on either side it does resume.
    let mut c = client(legacy, 22, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "legacy resumption", |c, _| {
        c.connected
    });
    assert!(c.c.is_resumed());
    // Offering EMS now: full handshake.
    let mut c = client(no_ems_required(suite), 23, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "full handshake", |c, _| {
        c.connected
    });
    assert!(!c.c.is_resumed());
    assert!(c.c.session().unwrap().extended_master_secret());
}

#[test]
fn resumed_connection_negotiates_cids_afresh() {
    // RFC 9146 §3: connection_id is negotiated again in a resumed handshake.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut cfg = config(suite);
    cfg.cid_len = Some(4);
    let mut sim = Sim::new(24, LinkConfig::lossy(0.2));
    let mut s = ServerNode::new(cfg.clone(), 25);
    let session = first_connection(&mut sim, &mut s, config(suite), 26);
    let mut c = client(cfg, 27, Some(&session), sim.now);
    run(
        &mut sim,
        &mut c,
        &mut s,
        "abbreviated handshake with CIDs",
        |c, s| c.connected && s.connected >= 2,
    );
    assert!(c.c.is_resumed() && c.c.cid_negotiated());
    echo(&mut sim, &mut c, &mut s, b"resumed with a CID");
}

#[test]
fn resumption_from_a_stored_session_after_a_reboot() {
    // The client keeps the session's encoding (e.g. in an encrypted store),
    // reboots (all state gone) and resumes from the bytes.
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut sim = Sim::new(28, LinkConfig::lossy(0.1));
    let mut s = ServerNode::new(config(suite), 29);
    let mut stored = [0u8; cssf_dtls::MAX_SESSION_ENCODING_LEN];
    let n = first_connection(&mut sim, &mut s, config(suite), 30)
        .to_bytes(&mut stored)
        .unwrap();
    let session = Session::from_bytes(&stored[..n]).unwrap();
    let mut c = client(config(suite), 31, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "resumption from bytes", |c, s| {
        c.connected && s.connected >= 2
    });
    assert!(c.c.is_resumed());
    echo(&mut sim, &mut c, &mut s, b"after reboot");
}

#[test]
fn expired_session_gets_a_full_handshake() {
    let suite = CipherSuite::PskWithAes128Ccm8;
    let mut cfg = config(suite);
    cfg.session_lifetime = Duration::from_secs(60);
    let mut sim = Sim::new(32, LinkConfig::perfect());
    let mut s = ServerNode::new(cfg, 33);
    let session = first_connection(&mut sim, &mut s, config(suite), 34);
    // Still fresh: resumed.
    let mut c = client(config(suite), 35, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "fresh", |c, s| {
        c.connected && s.connected >= 2
    });
    assert!(c.c.is_resumed());
    // A minute and a half after the full handshake: a full one again.
    let later = sim.now + Duration::from_secs(90);
    sim.run_until(&mut [&mut c, &mut s], later);
    sim.now = sim.now.max(later);
    let mut c = client(config(suite), 36, Some(&session), sim.now);
    run(&mut sim, &mut c, &mut s, "expired", |c, s| {
        c.connected && s.connected >= 3
    });
    assert!(!c.c.is_resumed());
}
