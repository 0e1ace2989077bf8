//! ECDHE_ECDSA with raw public keys (RFC 7250, RFC 7925 §4.4) in memory:
//! both suites, server-only and mutual authentication, clean and lossy
//! links; untrusted keys, forged ServerKeyExchange signatures and invalid
//! ECDH points are refused with typed errors and alerts.
#![cfg(all(feature = "server", feature = "ecdhe", feature = "chacha20"))]
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
    AlertDescription, CipherSuite, Client, Config, Endpoint, Error, Event, Identity, SigningKey,
    StaticPsk,
};
use cssf_netsim::{LinkConfig, Node, Sim, SimRng};
use p256::ecdsa::signature::Signer;
use p256::PublicKey;

const CLIENT: u8 = 1;
const SERVER: u8 = 2;
const ECDSA_SUITES: [CipherSuite; 2] = [
    CipherSuite::EcdheEcdsaWithAes128Ccm8,
    CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
];

fn config(suite: CipherSuite, mutual: bool) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    c.retransmit_initial = Duration::from_millis(100);
    c.retransmit_max = Duration::from_millis(800);
    c.max_retransmits = 30;
    c.require_client_auth = mutual;
    c
}

struct ClientNode {
    c: Client<u8, SimRng, Pins>,
    connected: bool,
    got: Vec<Vec<u8>>,
    error: Option<Error>,
}

impl ClientNode {
    fn new(cfg: Config, own: Option<SigningKey>, trust: Pins, seed: u64) -> Self {
        ClientNode {
            c: Client::with_raw_public_key(
                cfg,
                own,
                trust,
                SERVER,
                SimRng::new(seed),
                Duration::ZERO,
            )
            .unwrap(),
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

type Server = Endpoint<u8, StaticPsk<'static>, SimRng, 4, Pins>;

struct ServerNode {
    s: Server,
    connected: Vec<u8>,
    got: Vec<Vec<u8>>,
    error: Option<Error>,
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
            connected: Vec::new(),
            got: Vec::new(),
            error: None,
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
                    self.s.send_at(now, &peer, &b[..n]).unwrap();
                }
                Event::Closed { reason, .. } => self.error = self.error.or(reason.error()),
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
        self.s.handle_datagram(now, from, data).unwrap();
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

/// Keys: server 1, client 2, and an attacker's 3.
fn pair(suite: CipherSuite, mutual: bool, seed: u64) -> (ClientNode, ServerNode) {
    let (sk, ck) = (key(1), key(2));
    let c = ClientNode::new(
        config(suite, mutual),
        mutual.then(|| ck.clone()),
        Pins(std::vec![public(&sk)]),
        seed,
    );
    let s = ServerNode::new(
        config(suite, mutual),
        sk,
        Pins(std::vec![public(&ck)]),
        seed ^ 0xABCD,
    );
    (c, s)
}

fn drive(sim: &mut Sim<u8>, c: &mut ClientNode, s: &mut ServerNode, what: &str) {
    for _ in 0..50_000 {
        if c.connected && s.connected.contains(&CLIENT) {
            return;
        }
        assert!(
            c.error.is_none() && s.error.is_none(),
            "seed {}: {what} failed: client {:?}, server {:?}",
            sim.seed(),
            c.error,
            s.error
        );
        if !sim.step(&mut [c, s]) {
            break;
        }
    }
    panic!(
        "seed {}: {what} did not finish (client {:?}, server {:?})",
        sim.seed(),
        c.error,
        s.error
    );
}

fn full_exchange(suite: CipherSuite, mutual: bool, seed: u64, link: LinkConfig) {
    let mut sim = Sim::new(seed, link);
    let (mut c, mut s) = pair(suite, mutual, seed);
    drive(&mut sim, &mut c, &mut s, "handshake");
    assert_eq!(
        c.c.peer_identity(),
        Some(&Identity::RawPublicKey(public(&key(1))))
    );
    let client = s.s.peer_identity(s.s.at(&CLIENT)).cloned();
    assert_eq!(
        client,
        mutual.then(|| Identity::RawPublicKey(public(&key(2)))),
        "{suite:?}"
    );
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
}

#[test]
fn every_ecdsa_suite_server_only_and_mutual_clean_link() {
    for suite in ECDSA_SUITES {
        for mutual in [false, true] {
            full_exchange(suite, mutual, 7, LinkConfig::perfect());
        }
    }
}

#[test]
fn forty_seeds_at_30_percent_loss() {
    for suite in ECDSA_SUITES {
        for mutual in [false, true] {
            for seed in 0..40 {
                full_exchange(suite, mutual, seed, LinkConfig::lossy(0.3));
            }
        }
    }
}

#[test]
fn small_mtu_fragments_certificate_flights() {
    let suite = CipherSuite::EcdheEcdsaWithAes128Ccm8;
    let mut sim = Sim::new(3, LinkConfig::lossy(0.1).with_mtu(200));
    let (mut c, mut s) = pair(suite, true, 3);
    let mut cfg = config(suite, true);
    cfg.mtu = 200;
    c.c = Client::with_raw_public_key(
        cfg.clone(),
        Some(key(2)),
        Pins(std::vec![public(&key(1))]),
        SERVER,
        SimRng::new(3),
        Duration::ZERO,
    )
    .unwrap();
    s.s = Endpoint::with_raw_public_key(
        cfg,
        StaticPsk::new(&[]),
        key(1),
        Pins(std::vec![public(&key(2))]),
        SimRng::new(4),
        Duration::ZERO,
    )
    .unwrap();
    drive(&mut sim, &mut c, &mut s, "fragmented mutual handshake");
    assert_eq!(sim.net.stats.oversize, 0);
}

/// Runs a handshake that must fail; returns both sides' errors.
fn failing(mut c: ClientNode, mut s: ServerNode) -> (Option<Error>, Option<Error>) {
    let mut sim = Sim::new(1, LinkConfig::perfect());
    sim.run_until(&mut [&mut c, &mut s], Duration::from_secs(2));
    assert!(!c.connected && s.connected.is_empty());
    (c.error, s.error)
}

#[test]
fn untrusted_server_key_is_rejected_with_bad_certificate() {
    for suite in ECDSA_SUITES {
        let c = ClientNode::new(
            config(suite, false),
            None,
            Pins(std::vec![public(&key(3))]),
            1,
        );
        let s = ServerNode::new(config(suite, false), key(1), Pins(Vec::new()), 2);
        let (ce, se) = failing(c, s);
        assert_eq!(ce, Some(Error::UntrustedPeer), "{suite:?}");
        assert_eq!(
            se,
            Some(Error::AlertReceived(AlertDescription::BadCertificate))
        );
    }
}

#[test]
fn untrusted_client_key_is_rejected_with_bad_certificate() {
    for suite in ECDSA_SUITES {
        let c = ClientNode::new(
            config(suite, true),
            Some(key(3)),
            Pins(std::vec![public(&key(1))]),
            1,
        );
        let s = ServerNode::new(
            config(suite, true),
            key(1),
            Pins(std::vec![public(&key(2))]),
            2,
        );
        let (ce, se) = failing(c, s);
        assert_eq!(se, Some(Error::UntrustedPeer), "{suite:?}");
        assert_eq!(
            ce,
            Some(Error::AlertReceived(AlertDescription::BadCertificate))
        );
    }
}

#[test]
fn client_without_key_is_refused_when_client_auth_is_required() {
    let suite = CipherSuite::EcdheEcdsaWithAes128Ccm8;
    let c = ClientNode::new(
        config(suite, true),
        None,
        Pins(std::vec![public(&key(1))]),
        1,
    );
    let s = ServerNode::new(
        config(suite, true),
        key(1),
        Pins(std::vec![public(&key(2))]),
        2,
    );
    let (ce, se) = failing(c, s);
    assert_eq!(se, Some(Error::HandshakeFailure));
    assert_eq!(
        ce,
        Some(Error::AlertReceived(AlertDescription::HandshakeFailure))
    );
}

#[test]
fn psk_clients_still_work_against_a_server_with_a_key() {
    let keys: &'static [(&'static [u8], &'static [u8])] = &[(b"id", b"key")];
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(100);
    let mut s: Endpoint<u8, _, _, 2, _> = Endpoint::with_raw_public_key(
        cfg.clone(),
        StaticPsk::new(keys),
        key(1),
        Pins(Vec::new()),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let mut c = Client::new(cfg, b"id", b"key", SERVER, SimRng::new(2), Duration::ZERO).unwrap();
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    for _ in 0..6 {
        while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
            s.handle_datagram(now, CLIENT, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
            c.handle_datagram(now, SERVER, &mut buf[..t.len]).unwrap();
        }
    }
    assert!(c.is_connected());
    assert!(matches!(
        s.peer_identity(s.at(&CLIENT)),
        Some(Identity::Psk(id)) if id.as_bytes() == b"id"
    ));
    assert!(matches!(
        c.poll_event(),
        Some(Event::Connected { suite, .. }) if suite.key_exchange().is_psk()
    ));
}

// ---- tampering on the wire ------------------------------------------------

/// Offsets of the epoch-0 handshake message bodies of type `t` in a datagram.
fn find_handshake(d: &[u8], t: u8) -> Option<(usize, usize)> {
    let mut pos = 0;
    while pos + 13 <= d.len() {
        let epoch = u16::from_be_bytes([d[pos + 3], d[pos + 4]]);
        let len = usize::from(u16::from_be_bytes([d[pos + 11], d[pos + 12]]));
        let body = pos + 13;
        if d[pos] == 22 && epoch == 0 && d[body] == t {
            let mlen = usize::from(d[body + 1]) << 16
                | usize::from(d[body + 2]) << 8
                | usize::from(d[body + 3]);
            assert_eq!(mlen + 12, len, "test expects unfragmented messages");
            return Some((body + 12, mlen));
        }
        pos = body + len;
    }
    None
}

/// Drives a mutual ECDSA handshake by hand, letting `edit_s` and `edit_c`
/// rewrite each server/client datagram; returns both sides' errors.
fn tampered(
    mutual: bool,
    mut edit_s: impl FnMut(&mut Vec<u8>, &[u8; 32], &[u8; 32]),
    mut edit_c: impl FnMut(&mut Vec<u8>),
) -> (Option<Error>, Option<Error>) {
    let (mut c, mut s) = pair(CipherSuite::EcdheEcdsaWithAes128Ccm8, mutual, 5);
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let (mut cr, mut sr) = ([0u8; 32], [0u8; 32]);
    for _ in 0..6 {
        while let Some(t) = c.c.poll_transmit(now, &mut buf).unwrap() {
            let mut d = buf[..t.len].to_vec();
            if let Some((b, _)) = find_handshake(&d, 1) {
                cr.copy_from_slice(&d[b + 2..b + 34]);
            }
            edit_c(&mut d);
            s.s.handle_datagram(now, CLIENT, &mut d).unwrap();
        }
        while let Some(t) = s.s.poll_transmit(now, &mut buf).unwrap() {
            let mut d = buf[..t.len].to_vec();
            if let Some((b, _)) = find_handshake(&d, 2) {
                sr.copy_from_slice(&d[b + 2..b + 34]);
            }
            edit_s(&mut d, &cr, &sr);
            c.c.handle_datagram(now, SERVER, &mut d).unwrap();
        }
    }
    assert!(!c.c.is_connected() && !s.s.connected_at(&CLIENT));
    // Each side's first error, from its `Closed` event.
    c.events();
    s.events(now);
    (c.error, s.error)
}

#[test]
fn untampered_manual_drive_connects() {
    // The harness itself works: without edits the handshake completes.
    let (mut c, mut s) = pair(CipherSuite::EcdheEcdsaWithAes128Ccm8, true, 5);
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut seen = Vec::new();
    for _ in 0..6 {
        while let Some(t) = c.c.poll_transmit(now, &mut buf).unwrap() {
            for m in [11, 15, 16] {
                if find_handshake(&buf[..t.len], m).is_some() {
                    seen.push(m);
                }
            }
            s.s.handle_datagram(now, CLIENT, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = s.s.poll_transmit(now, &mut buf).unwrap() {
            for m in [11, 12, 13, 14] {
                if find_handshake(&buf[..t.len], m).is_some() {
                    seen.push(m);
                }
            }
            c.c.handle_datagram(now, SERVER, &mut buf[..t.len]).unwrap();
        }
    }
    assert!(c.c.is_connected() && s.s.connected_at(&CLIENT));
    seen.sort_unstable();
    // Certificate both ways, SKE, CertificateRequest, SHD, CV, CKE.
    assert_eq!(seen, [11, 11, 12, 13, 14, 15, 16]);
}

#[test]
fn forged_server_key_exchange_signature_is_rejected() {
    for mutual in [false, true] {
        let (ce, se) = tampered(
            mutual,
            |d, _, _| {
                if let Some((b, _)) = find_handshake(d, 12) {
                    d[b + 10] ^= 1; // a byte of the server's ECDH point
                }
            },
            |_| {},
        );
        assert_eq!(ce, Some(Error::DecryptError));
        assert_eq!(
            se,
            Some(Error::AlertReceived(AlertDescription::DecryptError))
        );
    }
}

#[test]
fn invalid_server_point_is_rejected_even_when_signed() {
    // A malicious server holding the trusted key signs a point that is not
    // on the curve; the client must refuse it rather than compute with it.
    let server_key = key(1);
    let (ce, _) = tampered(
        false,
        |d, cr, sr| {
            let Some((b, len)) = find_handshake(d, 12) else {
                return;
            };
            let old_sig_len = len - 4 - 65 - 4;
            for y in 0u8..=255 {
                let mut point = [0u8; 65];
                point[0] = 4;
                point[32] = 1; // x = 1
                point[64] = y; // y = y, not on the curve
                let mut params = std::vec![3, 0, 23, 65];
                params.extend_from_slice(&point);
                let mut msg = cr.to_vec();
                msg.extend_from_slice(sr);
                msg.extend_from_slice(&params);
                let sig: p256::ecdsa::DerSignature = server_key.sign(&msg);
                if sig.as_bytes().len() == old_sig_len {
                    d[b..b + 69].copy_from_slice(&params);
                    d[b + 73..b + 73 + old_sig_len].copy_from_slice(sig.as_bytes());
                    return;
                }
            }
            panic!("no signature of the same length");
        },
        |_| {},
    );
    assert_eq!(ce, Some(Error::IllegalParameter));
}

#[test]
fn invalid_client_point_is_rejected() {
    let (ce, se) = tampered(
        false,
        |_, _, _| {},
        |d| {
            if let Some((b, _)) = find_handshake(d, 16) {
                d[b + 1..b + 66].copy_from_slice(&[4; 65]); // not on the curve
            }
        },
    );
    assert_eq!(se, Some(Error::IllegalParameter));
    assert_eq!(
        ce,
        Some(Error::AlertReceived(AlertDescription::IllegalParameter))
    );
}

#[test]
fn forged_certificate_verify_is_rejected() {
    let (ce, se) = tampered(
        true,
        |_, _, _| {},
        |d| {
            if let Some((b, len)) = find_handshake(d, 15) {
                d[b + len - 3] ^= 1; // inside the signature's s
            }
        },
    );
    assert_eq!(se, Some(Error::DecryptError));
    assert_eq!(
        ce,
        Some(Error::AlertReceived(AlertDescription::DecryptError))
    );
}

#[test]
fn server_point_is_the_public_key_of_a_fresh_ephemeral() {
    // Sanity for the tamper tests' layout: SKE = 3, 0, 23, 65, point, 4, 3, len, sig.
    let (mut c, mut s) = pair(CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256, false, 9);
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut ske = None;
    for _ in 0..2 {
        while let Some(t) = c.c.poll_transmit(now, &mut buf).unwrap() {
            s.s.handle_datagram(now, CLIENT, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = s.s.poll_transmit(now, &mut buf).unwrap() {
            if let Some((b, len)) = find_handshake(&buf[..t.len], 12) {
                ske = Some(buf[b..b + len].to_vec());
            }
            c.c.handle_datagram(now, SERVER, &mut buf[..t.len]).unwrap();
        }
    }
    let ske = ske.unwrap();
    assert_eq!(&ske[..4], &[3, 0, 23, 65]);
    assert!(PublicKey::from_sec1_bytes(&ske[4..69]).is_ok());
    assert_eq!(&ske[69..71], &[4, 3]);
    assert_eq!(
        usize::from(u16::from_be_bytes([ske[71], ske[72]])),
        ske.len() - 73
    );
}
