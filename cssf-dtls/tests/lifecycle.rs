//! Who a session is and when it ends: every handshake gets a handle that is
//! never reused; `Connected` carries only what the handshake proved (PSK,
//! ECDHE-PSK, raw public keys server-only and mutual, resumption, after a
//! Connection ID move); every way a session or handshake ends is reported
//! by exactly one `Closed` with its reason; and a PSK identity named in a
//! ClientKeyExchange that was never proven is never reported, whatever
//! connects later from the same address.
#![cfg(all(
    feature = "server",
    feature = "ecdhe",
    feature = "cid",
    feature = "resumption",
    feature = "chacha20"
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
use std::collections::{BTreeMap, HashSet};
use std::vec::Vec;

use common::{key, public, Pins};
use cssf_dtls::{
    AlertDescription, CipherSuite, Client, CloseReason, Config, Endpoint, Error, Event, Identity,
    PskIdentity, Session, SessionHandle, SigningKey, StaticPsk, TrustStore,
};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"0123456789abcdef";
const OTHER_ID: &[u8] = b"another-client";
const OTHER_KEY: &[u8] = b"fedcba9876543210";
static KEYS: [(&[u8], &[u8]); 2] = [(ID, KEY), (OTHER_ID, OTHER_KEY)];
const SERVER: u8 = 100;

fn psk_id(id: &[u8]) -> Identity {
    Identity::Psk(PskIdentity::new(id).unwrap())
}

fn config(suites: &[CipherSuite]) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(suites).unwrap();
    c.retransmit_initial = Duration::from_secs(1);
    c.retransmit_max = Duration::from_secs(4);
    c.max_retransmits = 4;
    c.idle_timeout = Duration::from_secs(600);
    c
}

const PSK: [CipherSuite; 1] = [CipherSuite::PskWithAes128Ccm8];
const ECDHE_PSK: [CipherSuite; 1] = [CipherSuite::EcdhePskWithChaCha20Poly1305Sha256];
const ECDSA: [CipherSuite; 1] = [CipherSuite::EcdheEcdsaWithAes128Ccm8];
/// A server that takes PSK and raw-public-key clients.
const BOTH: [CipherSuite; 2] = [
    CipherSuite::PskWithAes128Ccm8,
    CipherSuite::EcdheEcdsaWithAes128Ccm8,
];

/// A client whatever its trust store.
trait AnyClient {
    fn out(&mut self, now: Duration) -> Vec<Vec<u8>>;
    fn input(&mut self, now: Duration, d: &mut [u8]);
    fn timeout(&mut self, now: Duration);
    fn next(&self) -> Option<Duration>;
    fn drain(&mut self) -> Vec<Event<u8>>;
    fn send(&mut self, now: Duration, d: &[u8]) -> Result<(), Error>;
    fn close(&mut self, now: Duration);
    fn identity(&self) -> Option<Identity>;
    fn session(&self) -> Option<Session>;
    fn fail(&mut self);
    fn connected(&self) -> bool;
}

impl<T: TrustStore<u8>> AnyClient for Client<u8, SimRng, T> {
    fn out(&mut self, now: Duration) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = self.poll_transmit(now, &mut buf).unwrap() {
            v.push(buf[..t.len].to_vec());
        }
        v
    }
    fn input(&mut self, now: Duration, d: &mut [u8]) {
        let _ = self.handle_datagram(now, SERVER, d);
    }
    fn timeout(&mut self, now: Duration) {
        self.handle_timeout(now);
    }
    fn next(&self) -> Option<Duration> {
        self.poll_timeout()
    }
    fn drain(&mut self) -> Vec<Event<u8>> {
        core::iter::from_fn(|| self.poll_event()).collect()
    }
    fn send(&mut self, now: Duration, d: &[u8]) -> Result<(), Error> {
        Client::send(self, now, d)
    }
    fn close(&mut self, now: Duration) {
        Client::close(self, now);
    }
    fn identity(&self) -> Option<Identity> {
        self.peer_identity().cloned()
    }
    fn session(&self) -> Option<Session> {
        Client::session(self)
    }
    fn fail(&mut self) {
        self.fail_for_tests();
    }
    fn connected(&self) -> bool {
        self.is_connected()
    }
}

type Server<const N: usize> = Endpoint<u8, StaticPsk<'static>, SimRng, N, Pins, 4, 2>;

/// A server, clients at addresses, a virtual clock, no loss; every event
/// the server and each client report, in order.
struct World<const N: usize> {
    s: Server<N>,
    now: Duration,
    clients: BTreeMap<u8, Box<dyn AnyClient>>,
    events: Vec<Event<u8>>,
    client_events: BTreeMap<u8, Vec<Event<u8>>>,
    /// Datagrams from the server to addresses without a client.
    lost: usize,
}

fn server<const N: usize>(cfg: Config, trust: Pins) -> Server<N> {
    Endpoint::with_raw_public_key(
        cfg,
        StaticPsk::new(&KEYS),
        key(1),
        trust,
        SimRng::new(7),
        Duration::ZERO,
    )
    .unwrap()
}

fn psk_client(cfg: Config, id: &[u8], k: &[u8], seed: u64) -> Box<dyn AnyClient> {
    Box::new(Client::new(cfg, id, k, SERVER, SimRng::new(seed), Duration::ZERO).unwrap())
}

fn rpk_client(cfg: Config, own: Option<SigningKey>, seed: u64) -> Box<dyn AnyClient> {
    Box::new(
        Client::with_raw_public_key(
            cfg,
            own,
            Pins(std::vec![public(&key(1))]),
            SERVER,
            SimRng::new(seed),
            Duration::ZERO,
        )
        .unwrap(),
    )
}

impl<const N: usize> World<N> {
    fn new(s: Server<N>) -> Self {
        World {
            s,
            now: Duration::ZERO,
            clients: BTreeMap::new(),
            events: Vec::new(),
            client_events: BTreeMap::new(),
            lost: 0,
        }
    }

    fn add(&mut self, addr: u8, c: Box<dyn AnyClient>) {
        self.clients.insert(addr, c);
    }

    fn collect(&mut self) {
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
        for (a, c) in self.clients.iter_mut() {
            self.client_events.entry(*a).or_default().extend(c.drain());
        }
    }

    /// Delivers everything queued, without moving the clock.
    fn flush(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            let now = self.now;
            for (a, c) in self.clients.iter_mut() {
                for mut d in c.out(now) {
                    moved = true;
                    let _ = self.s.handle_datagram(now, *a, &mut d);
                }
            }
            let mut buf = [0u8; 1500];
            while let Some(t) = self.s.poll_transmit(now, &mut buf).unwrap() {
                moved = true;
                match self.clients.get_mut(&t.to) {
                    Some(c) => c.input(now, &mut buf[..t.len]),
                    None => self.lost += 1,
                }
            }
            self.collect();
            if !moved {
                return;
            }
        }
        panic!("no quiet point");
    }

    /// Runs for `d`, jumping from deadline to deadline.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            let next = self
                .clients
                .values()
                .filter_map(|c| c.next())
                .chain(self.s.poll_timeout())
                .filter(|t| *t > self.now)
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = t;
                    self.s.handle_timeout(t);
                    for c in self.clients.values_mut() {
                        c.timeout(t);
                    }
                }
                _ => {
                    self.now = end;
                    self.s.handle_timeout(end);
                    self.flush();
                    return;
                }
            }
        }
    }

    /// The handles the server reported `Connected`, in order.
    fn connected(&self) -> Vec<(SessionHandle, u8, Option<Identity>, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Connected {
                    handle,
                    peer,
                    identity,
                    resumed,
                    ..
                } => Some((*handle, *peer, identity.clone(), *resumed)),
                _ => None,
            })
            .collect()
    }

    /// The one reason `handle` was closed with (fails unless exactly one).
    fn closed(&self, handle: SessionHandle) -> CloseReason {
        let r: Vec<CloseReason> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Closed {
                    handle: h, reason, ..
                } if *h == handle => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(r.len(), 1, "Closed events for {handle}: {r:?}");
        r[0]
    }

    /// Every handle the server reported Closed, with its reason.
    fn all_closed(&self) -> Vec<(SessionHandle, CloseReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Closed { handle, reason, .. } => Some((*handle, *reason)),
                _ => None,
            })
            .collect()
    }

    fn client_closed(&self, addr: u8) -> Vec<CloseReason> {
        self.client_events
            .get(&addr)
            .map(|v| {
                v.iter()
                    .filter_map(|e| match e {
                        Event::Closed { reason, .. } => Some(*reason),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn handle_at(&self, addr: u8) -> SessionHandle {
        self.s.session_handle(&addr).unwrap()
    }
}

/// The lifecycle rules over a whole event log: per handle at most one
/// `Connected`, then its other events, then exactly one `Closed` when
/// `ended` holds it; handles of `Connected` never seen before.
fn check_log(events: &[Event<u8>]) {
    let mut connected = HashSet::new();
    let mut closed = HashSet::new();
    for e in events {
        let h = e.handle();
        assert!(!closed.contains(&h), "event after Closed: {e:?}");
        match e {
            Event::Connected { .. } => assert!(connected.insert(h), "Connected twice: {e:?}"),
            Event::Closed { .. } => {
                closed.insert(h);
            }
            _ => {}
        }
    }
}

// ---- identities ----------------------------------------------------------

#[test]
fn psk_and_ecdhe_psk_sessions_carry_the_proven_identity() {
    for suites in [&PSK[..], &ECDHE_PSK[..]] {
        let mut w: World<4> = World::new(server(config(suites), Pins(Vec::new())));
        w.add(1, psk_client(config(suites), ID, KEY, 2));
        w.add(2, psk_client(config(suites), OTHER_ID, OTHER_KEY, 3));
        w.run_for(Duration::from_secs(5));
        let c = w.connected();
        assert_eq!(c.len(), 2, "{suites:?}");
        let by_addr: BTreeMap<u8, Option<Identity>> =
            c.iter().map(|(_, a, i, _)| (*a, i.clone())).collect();
        assert_eq!(by_addr[&1], Some(psk_id(ID)));
        assert_eq!(by_addr[&2], Some(psk_id(OTHER_ID)));
        assert_eq!(w.s.peer_identity(w.handle_at(1)), Some(&psk_id(ID)));
        // The client knows the server proved the key of its identity.
        assert_eq!(w.clients[&1].identity(), Some(psk_id(ID)));
        assert!(matches!(
            w.client_events[&1].first(),
            Some(Event::Connected { identity: Some(i), handle, resumed: false, .. })
                if *i == psk_id(ID) && *handle == SessionHandle::CLIENT
        ));
        check_log(&w.events);
    }
}

#[test]
fn raw_public_key_sessions_server_only_and_mutual() {
    // Server-only: the client is anonymous; it proved nothing.
    let mut w: World<4> = World::new(server(config(&ECDSA), Pins(Vec::new())));
    w.add(1, rpk_client(config(&ECDSA), None, 2));
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.connected()[0].2, None);
    assert_eq!(w.s.peer_identity(w.handle_at(1)), None);
    assert!(w.s.is_connected(w.handle_at(1)));
    assert_eq!(
        w.clients[&1].identity(),
        Some(Identity::RawPublicKey(public(&key(1))))
    );
    // Mutual: the client's key, once its CertificateVerify and Finished
    // verified.
    let mut cfg = config(&ECDSA);
    cfg.require_client_auth = true;
    let mut w: World<4> = World::new(server(cfg.clone(), Pins(std::vec![public(&key(5))])));
    w.add(1, rpk_client(cfg.clone(), Some(key(5)), 2));
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        w.connected()[0].2,
        Some(Identity::RawPublicKey(public(&key(5))))
    );
    // An untrusted key connects nobody, and names nobody.
    w.add(2, rpk_client(cfg, Some(key(6)), 3));
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.connected().len(), 1);
    let refused = w
        .all_closed()
        .into_iter()
        .find(|(h, _)| w.connected().iter().all(|c| c.0 != *h))
        .unwrap();
    assert_eq!(refused.1, CloseReason::Error(Error::UntrustedPeer));
    check_log(&w.events);
}

#[test]
fn resumed_sessions_carry_the_identity_of_their_full_handshake() {
    // PSK.
    let mut w: World<4> = World::new(server(config(&PSK), Pins(Vec::new())));
    w.add(1, psk_client(config(&PSK), ID, KEY, 2));
    w.run_for(Duration::from_secs(5));
    let session = w.clients[&1].session().unwrap();
    let resumed = Client::resume(
        config(&PSK),
        ID,
        KEY,
        &session,
        SERVER,
        SimRng::new(3),
        w.now,
    )
    .unwrap();
    w.add(2, Box::new(resumed));
    w.run_for(Duration::from_secs(5));
    let c = w.connected();
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[1].1, c[1].2.clone(), c[1].3),
        (2, Some(psk_id(ID)), true)
    );
    assert_eq!(w.clients[&2].identity(), Some(psk_id(ID)));
    // Raw public keys, mutual.
    let mut cfg = config(&ECDSA);
    cfg.require_client_auth = true;
    let mut w: World<4> = World::new(server(cfg.clone(), Pins(std::vec![public(&key(5))])));
    w.add(1, rpk_client(cfg.clone(), Some(key(5)), 2));
    w.run_for(Duration::from_secs(5));
    let session = w.clients[&1].session().unwrap();
    let resumed = Client::resume_with_raw_public_key(
        cfg,
        Some(key(5)),
        Pins(std::vec![public(&key(1))]),
        &session,
        SERVER,
        SimRng::new(3),
        w.now,
    )
    .unwrap();
    w.add(2, Box::new(resumed));
    w.run_for(Duration::from_secs(5));
    let c = w.connected();
    assert_eq!(
        (c[1].2.clone(), c[1].3),
        (Some(Identity::RawPublicKey(public(&key(5)))), true)
    );
    assert_eq!(
        w.clients[&2].identity(),
        Some(Identity::RawPublicKey(public(&key(1))))
    );
    check_log(&w.events);
}

/// A store that can revoke identities and keys at run time.
#[derive(Clone, Default)]
struct Revocable {
    revoked: std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>>,
}

impl<A> cssf_dtls::PskStore<A> for Revocable {
    fn psk(
        &mut self,
        _: &cssf_dtls::PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; cssf_dtls::MAX_PSK_LEN],
    ) -> Option<usize> {
        if self.revoked.borrow().iter().any(|r| r == identity) {
            return None;
        }
        let (_, k) = KEYS.iter().find(|(id, _)| *id == identity)?;
        key[..k.len()].copy_from_slice(k);
        Some(k.len())
    }
}

impl<A> TrustStore<A> for Revocable {
    fn is_trusted(&self, _: &cssf_dtls::PeerContext<'_, A>, key: &p256::PublicKey) -> bool {
        let enc = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(key, true);
        !self.revoked.borrow().iter().any(|r| r == enc.as_bytes())
    }
}

#[test]
fn a_revoked_identity_cannot_resume() {
    let store = Revocable::default();
    let mut s: Endpoint<u8, Revocable, SimRng, 4, Revocable> = Endpoint::with_raw_public_key(
        config(&BOTH),
        store.clone(),
        key(1),
        store.clone(),
        SimRng::new(7),
        Duration::ZERO,
    )
    .unwrap();
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut connect = |s: &mut Endpoint<u8, Revocable, SimRng, 4, Revocable>,
                       c: &mut dyn AnyClient,
                       addr: u8|
     -> Vec<Event<u8>> {
        let mut ev = Vec::new();
        for _ in 0..8 {
            for mut d in c.out(now) {
                let _ = s.handle_datagram(now, addr, &mut d);
            }
            while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
                c.input(now, &mut buf[..t.len]);
            }
            ev.extend(core::iter::from_fn(|| s.poll_event()));
        }
        ev
    };
    // PSK: connect, then revoke the identity; the session is not resumed.
    let mut c = psk_client(config(&PSK), ID, KEY, 2);
    connect(&mut s, c.as_mut(), 1);
    let session = c.session().unwrap();
    assert_eq!(s.cached_sessions(), 1);
    store.revoked.borrow_mut().push(ID.to_vec());
    let mut again: Box<dyn AnyClient> = Box::new(
        Client::resume(config(&PSK), ID, KEY, &session, SERVER, SimRng::new(3), now).unwrap(),
    );
    let ev = connect(&mut s, again.as_mut(), 2);
    assert!(
        !again.connected(),
        "the full handshake fails: unknown identity"
    );
    assert!(
        ev.iter().all(|e| !matches!(e, Event::Connected { .. })),
        "{ev:?}"
    );
    assert_eq!(s.cached_sessions(), 0, "the revoked session left the cache");
    // Raw public keys: the same after the client's key is revoked.
    let mut cfg = config(&ECDSA);
    cfg.require_client_auth = true;
    let mut s: Endpoint<u8, Revocable, SimRng, 4, Revocable> = Endpoint::with_raw_public_key(
        cfg.clone(),
        store.clone(),
        key(1),
        store.clone(),
        SimRng::new(7),
        Duration::ZERO,
    )
    .unwrap();
    let mut c = rpk_client(cfg.clone(), Some(key(5)), 4);
    connect(&mut s, c.as_mut(), 1);
    let session = c.session().unwrap();
    let enc = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&public(&key(5)), true);
    store.revoked.borrow_mut().push(enc.as_bytes().to_vec());
    let mut again: Box<dyn AnyClient> = Box::new(
        Client::resume_with_raw_public_key(
            cfg,
            Some(key(5)),
            Pins(std::vec![public(&key(1))]),
            &session,
            SERVER,
            SimRng::new(5),
            now,
        )
        .unwrap(),
    );
    let ev = connect(&mut s, again.as_mut(), 2);
    assert!(!again.connected());
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Closed {
            reason: CloseReason::Error(Error::UntrustedPeer),
            ..
        }
    )));
}

#[test]
fn a_moved_connection_id_session_keeps_its_handle_and_identity() {
    let mut cfg = config(&PSK);
    cfg.cid_len = Some(4);
    let mut w: World<4> = World::new(server(cfg.clone(), Pins(Vec::new())));
    w.add(1, psk_client(cfg, ID, KEY, 2));
    w.run_for(Duration::from_secs(5));
    let h = w.handle_at(1);
    // The client's NAT binding changes: its records come from address 3.
    let c = w.clients.remove(&1).unwrap();
    w.add(3, c);
    w.clients.get_mut(&3).unwrap().send(w.now, b"hi").unwrap();
    w.flush();
    assert_eq!(w.s.session_handle(&3), Some(h));
    assert_eq!(w.s.peer_address(h), Some(&3));
    assert_eq!(w.s.peer_identity(h), Some(&psk_id(ID)));
    assert!(w.events.iter().any(|e| matches!(
        e,
        Event::PeerAddressChanged { handle, old: 1, new: 3 } if *handle == h
    )));
    check_log(&w.events);
}

// ---- planted identities --------------------------------------------------

/// Splits a datagram into its records.
fn records(d: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let end = (13 + len).min(rest.len());
        out.push(rest[..end].to_vec());
        rest = &rest[end..];
    }
    out
}

/// The attacker names identity `ID` in a ClientKeyExchange from `addr`
/// without knowing its key: either the whole flight with a wrong key, or
/// only the ClientKeyExchange record (never finishing).
fn plant<const N: usize>(w: &mut World<N>, addr: u8, only_cke: bool, seed: u64) {
    let mut c = psk_client(config(&BOTH), ID, b"not the right key", seed);
    for _ in 0..8 {
        for d in c.out(w.now) {
            for mut r in records(&d) {
                // ClientKeyExchange is handshake type 16; after it, stop.
                let stop = only_cke && r[0] == 22 && r.get(13) == Some(&16);
                let _ = w.s.handle_datagram(w.now, addr, &mut r);
                if stop {
                    w.collect();
                    return;
                }
            }
        }
        let mut buf = [0u8; 1500];
        while let Some(t) = w.s.poll_transmit(w.now, &mut buf).unwrap() {
            c.input(w.now, &mut buf[..t.len]);
        }
        w.collect();
    }
}

#[test]
fn an_identity_named_but_never_proven_is_never_reported() {
    for only_cke in [false, true] {
        let mut w: World<4> = World::new(server(config(&BOTH), Pins(Vec::new())));
        plant(&mut w, 9, only_cke, 11);
        assert!(w.connected().is_empty());
        // From the same address: an anonymous raw-public-key client.
        w.add(9, rpk_client(config(&ECDSA), None, 12));
        w.run_for(Duration::from_secs(5));
        let c = w.connected();
        assert_eq!(c.len(), 1, "only_cke {only_cke}");
        assert_eq!(c[0].2, None, "the anonymous session is nobody");
        assert_eq!(w.s.peer_identity(c[0].0), None);
        let first = c[0].0;
        // Its own session, resumed from the same address: still nobody.
        let session = w.clients[&9].session().unwrap();
        plant(&mut w, 9, only_cke, 13);
        let resumed = Client::resume_with_raw_public_key(
            config(&ECDSA),
            None,
            Pins(std::vec![public(&key(1))]),
            &session,
            SERVER,
            SimRng::new(14),
            w.now,
        )
        .unwrap();
        w.add(9, Box::new(resumed));
        w.run_for(Duration::from_secs(5));
        let c = w.connected();
        let last = c.last().unwrap();
        assert!(last.3, "resumed");
        assert_ne!(last.0, first, "a new handle");
        assert_eq!(last.2, None);
        // No event anywhere names the planted identity.
        for e in &w.events {
            if let Event::Connected { identity, .. } = e {
                assert_ne!(identity.as_ref(), Some(&psk_id(ID)), "{e:?}");
            }
        }
        check_log(&w.events);
    }
}

// ---- every end, once -----------------------------------------------------

#[test]
fn close_notify_either_way_and_local_close() {
    let mut w: World<4> = World::new(server(config(&PSK), Pins(Vec::new())));
    w.add(1, psk_client(config(&PSK), ID, KEY, 2));
    w.add(2, psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 3));
    w.run_for(Duration::from_secs(2));
    let (h1, h2) = (w.handle_at(1), w.handle_at(2));
    // The client closes: the server reports PeerClosed.
    let now = w.now;
    w.clients.get_mut(&1).unwrap().close(now);
    w.flush();
    assert_eq!(w.closed(h1), CloseReason::PeerClosed);
    assert_eq!(w.client_closed(1), [CloseReason::LocalClose]);
    // The server closes: LocalClose here, PeerClosed at the client.
    w.s.close(w.now, h2).unwrap();
    w.flush();
    assert_eq!(w.closed(h2), CloseReason::LocalClose);
    assert_eq!(w.client_closed(2), [CloseReason::PeerClosed]);
    // The handles are gone.
    assert_eq!(w.s.recv(h1, &mut [0; 64]), Err(Error::UnknownPeer));
    assert_eq!(w.s.send(w.now, h2, b"x"), Err(Error::UnknownPeer));
    assert_eq!(w.s.sessions(), 0);
    check_log(&w.events);
}

#[test]
fn a_fatal_alert_and_a_failed_finished_end_with_their_errors() {
    let mut w: World<4> = World::new(server(config(&PSK), Pins(Vec::new())));
    w.add(1, psk_client(config(&PSK), ID, KEY, 2));
    w.run_for(Duration::from_secs(2));
    let h = w.handle_at(1);
    w.clients.get_mut(&1).unwrap().fail();
    w.flush();
    assert_eq!(
        w.closed(h),
        CloseReason::Error(Error::AlertReceived(AlertDescription::InternalError))
    );
    // A wrong key: the server's check of the client's Finished fails.
    w.add(2, psk_client(config(&PSK), ID, b"not the right key", 3));
    w.run_for(Duration::from_secs(2));
    let (h2, r) = *w.all_closed().last().unwrap();
    assert_ne!(h2, h);
    assert_eq!(r, CloseReason::Error(Error::BadRecordMac));
    // An unknown identity.
    w.add(3, psk_client(config(&PSK), b"nobody", KEY, 4));
    w.run_for(Duration::from_secs(2));
    assert_eq!(
        w.all_closed().last().unwrap().1,
        CloseReason::Error(Error::UnknownPskIdentity)
    );
    assert_eq!(
        w.client_closed(3),
        [CloseReason::Error(Error::AlertReceived(
            AlertDescription::UnknownPskIdentity
        ))]
    );
    // A ClientHello with no suite in common gets a handle and its end too.
    w.add(4, rpk_client(config(&ECDSA), None, 5));
    w.run_for(Duration::from_secs(2));
    assert_eq!(
        w.all_closed().last().unwrap().1,
        CloseReason::Error(Error::HandshakeFailure)
    );
    assert_eq!(w.s.sessions(), 0);
    check_log(&w.events);
}

#[test]
fn idle_sessions_and_half_open_handshakes_time_out() {
    let mut cfg = config(&PSK);
    cfg.idle_timeout = Duration::from_secs(30);
    let mut w: World<4> = World::new(server(cfg.clone(), Pins(Vec::new())));
    w.add(1, psk_client(cfg.clone(), ID, KEY, 2));
    w.run_for(Duration::from_secs(2));
    let h = w.handle_at(1);
    w.run_for(Duration::from_secs(40));
    assert_eq!(w.closed(h), CloseReason::IdleTimeout);
    assert_eq!(
        w.client_closed(1),
        [CloseReason::PeerClosed],
        "close_notify"
    );
    // A client that vanishes after its cookie-bearing ClientHello: the
    // server's flight is retransmitted until the budget is spent.
    let mut c = psk_client(cfg.clone(), OTHER_ID, OTHER_KEY, 3);
    let mut buf = [0u8; 1500];
    for _ in 0..2 {
        for mut d in c.out(w.now) {
            w.s.handle_datagram(w.now, 2, &mut d).unwrap();
        }
        while let Some(t) = w.s.poll_transmit(w.now, &mut buf).unwrap() {
            c.input(w.now, &mut buf[..t.len]);
        }
    }
    let half_open = w.s.session_handle(&2).unwrap();
    w.run_for(Duration::from_secs(60));
    assert_eq!(w.closed(half_open), CloseReason::HandshakeTimeout);
    assert!(w.lost > 0, "the flight was retransmitted to nobody");
    // The client side gives up the same way.
    let mut lonely = World::<4>::new(server(cfg, Pins(Vec::new())));
    lonely.add(
        1,
        Box::new(
            Client::new(
                config(&PSK),
                ID,
                KEY,
                SERVER + 1,
                SimRng::new(9),
                Duration::ZERO,
            )
            .unwrap(),
        ),
    );
    lonely.run_for(Duration::from_secs(60));
    assert_eq!(lonely.client_closed(1), [CloseReason::HandshakeTimeout]);
    check_log(&w.events);
}

#[test]
fn a_client_restarting_from_its_address_replaces_its_session() {
    let mut w: World<4> = World::new(server(config(&PSK), Pins(Vec::new())));
    w.add(1, psk_client(config(&PSK), ID, KEY, 2));
    w.run_for(Duration::from_secs(2));
    let old = w.handle_at(1);
    // Same address, fresh state (RFC 6347 §4.2.8).
    w.add(1, psk_client(config(&PSK), OTHER_ID, OTHER_KEY, 3));
    w.run_for(Duration::from_secs(2));
    let new = w.handle_at(1);
    assert_ne!(old, new, "a new handle");
    assert_eq!(w.closed(old), CloseReason::Replaced);
    assert_eq!(w.s.peer_identity(new), Some(&psk_id(OTHER_ID)));
    assert!(w.s.recv(old, &mut [0; 16]).is_err());
    check_log(&w.events);
}

#[test]
fn a_connection_id_peer_moving_onto_an_address_leaves_the_session_there_alone() {
    // With the Return Routability Check (the default) and without it.
    for rrc in [true, false] {
        let mut cfg = config(&PSK);
        cfg.cid_len = Some(4);
        cfg.rrc = rrc;
        let mut w: World<4> = World::new(server(cfg.clone(), Pins(Vec::new())));
        w.add(1, psk_client(cfg.clone(), ID, KEY, 2));
        w.add(2, psk_client(cfg, OTHER_ID, OTHER_KEY, 3));
        w.run_for(Duration::from_secs(2));
        let (h1, h2) = (w.handle_at(1), w.handle_at(2));
        // Client 2's device is gone; client 1 shows up at its address.
        w.clients.remove(&2);
        let c = w.clients.remove(&1).unwrap();
        w.add(2, c);
        w.clients
            .get_mut(&2)
            .unwrap()
            .send(w.now, b"moved")
            .unwrap();
        w.flush();
        // Session 1 moved (after answering the check, with RRC); session 2
        // was not ended by it: a moving peer could name any address.
        assert_eq!(w.s.peer_address(h1), Some(&2), "rrc {rrc}");
        assert!(w.s.is_connected(h1) && w.s.is_connected(h2), "rrc {rrc}");
        assert!(w.all_closed().is_empty(), "{:?}", w.all_closed());
        assert!(w.events.iter().any(|e| matches!(
            e,
            Event::PeerAddressChanged { handle, old: 1, new: 2 } if *handle == h1
        )));
        check_log(&w.events);
    }
}

#[test]
fn eviction_for_a_new_handshake_is_reported() {
    let mut cfg = config(&PSK);
    cfg.idle_timeout = Duration::from_secs(30);
    let mut w: World<2> = World::new(server(cfg.clone(), Pins(Vec::new())));
    w.add(1, psk_client(cfg.clone(), ID, KEY, 2));
    w.add(2, psk_client(cfg.clone(), OTHER_ID, OTHER_KEY, 3));
    w.flush();
    let (h1, h2) = (w.handle_at(1), w.handle_at(2));
    // Both go idle; without a timer call, a third client's handshake needs
    // a slot: an idle session is evicted (and reported).
    w.now += Duration::from_secs(40);
    w.add(3, psk_client(cfg, ID, KEY, 4));
    w.flush();
    assert!(w.s.is_connected(w.handle_at(3)));
    let evicted: Vec<_> = [h1, h2]
        .into_iter()
        .filter(|h| {
            w.all_closed()
                .iter()
                .any(|(c, r)| c == h && *r == CloseReason::Evicted)
        })
        .collect();
    assert_eq!(evicted.len(), 1, "{:?}", w.all_closed());
    check_log(&w.events);
}

#[test]
fn a_stalled_handshake_is_evicted_for_a_new_one_and_reported() {
    let cfg = config(&PSK);
    let mut w: World<4> = World::new(server(cfg.clone(), Pins(Vec::new())));
    // Two half-open handshakes from two hosts fill both handshake slots.
    let mut buf = [0u8; 1500];
    for (addr, seed) in [(5u8, 20u64), (6, 21)] {
        let mut c = psk_client(cfg.clone(), ID, KEY, seed);
        for _ in 0..2 {
            for mut d in c.out(w.now) {
                w.s.handle_datagram(w.now, addr, &mut d).unwrap();
            }
            while let Some(t) = w.s.poll_transmit(w.now, &mut buf).unwrap() {
                c.input(w.now, &mut buf[..t.len]);
            }
        }
    }
    assert_eq!(w.s.handshakes(), 2);
    let stalled = [
        w.s.session_handle(&5).unwrap(),
        w.s.session_handle(&6).unwrap(),
    ];
    w.now += Duration::from_millis(1500);
    w.add(1, psk_client(cfg, OTHER_ID, OTHER_KEY, 3));
    w.flush();
    assert!(w.s.is_connected(w.handle_at(1)));
    let evicted = w
        .all_closed()
        .iter()
        .filter(|(h, r)| stalled.contains(h) && *r == CloseReason::Evicted)
        .count();
    assert_eq!(evicted, 1, "{:?}", w.all_closed());
    check_log(&w.events);
}

/// Clients connect, send and close one after the other from one address
/// while the application does not read the server's events.
/// `n` clients at address 1, seeded from `seed` (each client's random
/// differs: the server drops a copy of a ClientHello it took before as a
/// replay).
fn without_polling<const N: usize>(w: &mut World<N>, seed: u64, n: u64) {
    let mut buf = [0u8; 1500];
    let now = w.now;
    for i in 0..n {
        let mut c = psk_client(config(&PSK), ID, KEY, seed + i);
        for _ in 0..6 {
            for mut d in c.out(now) {
                let _ = w.s.handle_datagram(now, 1, &mut d);
            }
            while let Some(t) = w.s.poll_transmit(now, &mut buf).unwrap() {
                c.input(now, &mut buf[..t.len]);
            }
        }
        if c.connected() {
            c.send(now, b"bye").unwrap();
            c.close(now);
            for mut d in c.out(now) {
                let _ = w.s.handle_datagram(now, 1, &mut d);
            }
            while w.s.poll_transmit(now, &mut buf).unwrap().is_some() {}
        }
    }
}

#[test]
fn ends_are_reported_even_when_events_are_not_read_at_once() {
    // Sessions end while the application does not poll; each end is still
    // reported once, after the session's data.
    let mut w: World<8> = World::new(server(config(&PSK), Pins(Vec::new())));
    without_polling(&mut w, 100, 6);
    w.collect();
    check_log(&w.events);
    let connected = w.connected();
    assert_eq!(connected.len(), 6, "{:?}", w.events);
    for (h, ..) in &connected {
        assert_eq!(w.closed(*h), CloseReason::PeerClosed);
        let data = w
            .events
            .iter()
            .position(|e| matches!(e, Event::ApplicationData { handle, .. } if handle == h))
            .unwrap();
        let end = w
            .events
            .iter()
            .position(|e| matches!(e, Event::Closed { handle, .. } if handle == h))
            .unwrap();
        assert!(data < end);
    }
    let unique: HashSet<_> = connected.iter().map(|c| c.0).collect();
    assert_eq!(unique.len(), 6, "handles are never reused");
    // With fewer slots than sessions, an application that does not read
    // its events gets no new sessions (refused and counted), and still
    // loses no event.
    let mut w: World<2> = World::new(server(config(&PSK), Pins(Vec::new())));
    without_polling(&mut w, 100, 6);
    assert!(w.s.stats().handshakes_refused > 0);
    w.collect();
    check_log(&w.events);
    let connected = w.connected();
    assert_eq!(connected.len(), 2);
    for (h, ..) in &connected {
        assert_eq!(w.closed(*h), CloseReason::PeerClosed);
    }
    // Once it reads them, sessions are admitted again.
    without_polling(&mut w, 200, 1);
    w.collect();
    assert_eq!(w.connected().len(), 3);
}

#[test]
fn random_lifecycles_report_every_end_once_and_never_reuse_a_handle() {
    for seed in 0..40u64 {
        let mut rng = SimRng::new(seed);
        let mut cfg = config(&BOTH);
        cfg.cid_len = Some(4);
        cfg.idle_timeout = Duration::from_secs(20);
        let mut w: World<3> = World::new(server(cfg.clone(), Pins(std::vec![public(&key(5))])));
        let mut next_seed = 1000 * seed;
        let mut starts = 0;
        for _ in 0..30 {
            let addr = (rng.next_u64_raw() % 5) as u8;
            next_seed += 1;
            match rng.next_u64_raw() % 8 {
                0 | 1 => {
                    w.add(addr, psk_client(cfg.clone(), ID, KEY, next_seed));
                    starts += 1;
                }
                2 => {
                    w.add(addr, rpk_client(cfg.clone(), None, next_seed));
                    starts += 1;
                }
                3 => {
                    plant(&mut w, addr, next_seed % 2 == 0, next_seed);
                }
                4 => {
                    if let Some(c) = w.clients.get_mut(&addr) {
                        c.close(w.now);
                    }
                }
                5 => {
                    // Move a client to another address.
                    if let Some(c) = w.clients.remove(&addr) {
                        let to = (addr + 1) % 5;
                        w.clients.remove(&to);
                        w.add(to, c);
                        let now = w.now;
                        let _ = w.clients.get_mut(&to).unwrap().send(now, b"moved");
                    }
                }
                6 => {
                    let now = w.now;
                    if let Some(c) = w.clients.get_mut(&addr) {
                        let _ = c.send(now, b"data");
                    }
                }
                _ => {
                    let d = Duration::from_secs(rng.next_u64_raw() % 30);
                    w.run_for(d);
                }
            }
            w.flush();
        }
        w.run_for(Duration::from_secs(120));
        check_log(&w.events);
        // After a long quiet time every handle has ended, exactly once.
        let mut connected = HashSet::new();
        let mut handles = HashSet::new();
        for e in &w.events {
            handles.insert(e.handle());
            if let Event::Connected {
                handle, identity, ..
            } = e
            {
                assert!(connected.insert(*handle));
                assert!(
                    identity.is_none() || identity.as_ref() == Some(&psk_id(ID)),
                    "seed {seed}: {identity:?}"
                );
            }
        }
        for h in &handles {
            let _ = w.closed(*h);
        }
        assert_eq!(w.s.sessions(), 0, "seed {seed}");
        assert!(starts == 0 || !handles.is_empty());
    }
}
