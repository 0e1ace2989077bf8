//! Handshake attacks (`--family handshake`): bit flips, truncation and
//! reordering of every handshake flight, both directions, for PSK and for
//! ECDHE-ECDSA with raw public keys; the raw public key, resumption and
//! Connection ID rows (`rpk.rs`, `resumption.rs`, `cid.rs`) use the DTLS
//! nodes defined here.
//!
//! These rows attack cssf-dtls alone (no CoAP on top): a client and a
//! server endpoint exchange application records the lab names, and the
//! server echoes each one, so "both sides agree on keys" is observed as
//! application data flowing both ways.

use std::collections::VecDeque;
use std::time::Duration;

use cssf_dtls::{
    CipherSuite, Client, CloseReason, Config, Endpoint, Event, FnTrust, Identity, PinnedKeys,
    PskStore, Session, SessionHandle, SigningKey, StaticPsk, TrustStore,
};
use cssf_netsim::SimRng;

use crate::net::{Addr, Adversary, Honest, Net, Node, Packet, CLIENT, SERVER};
use crate::stack::{IDENTITY, KEYS, PSK};
use crate::{Cmp, Opts, Row};

/// Attempts of a row's control: a tenth of the row's, 4 to 20.
pub fn controls(o: &Opts) -> u32 {
    (o.attempts / 10).clamp(4, 20)
}

/// Where an impostor (a second server the adversary routes to) listens.
pub const IMPOSTOR: Addr = 7;

/// Sessions the lab's DTLS-only server holds.
pub const SLOTS: usize = 4;

/// A DTLS client node (any trust store) with a queue of application
/// records to send.
pub struct DtlsClient<T> {
    /// Its address.
    pub addr: Addr,
    /// DTLS.
    pub dtls: Client<Addr, SimRng, T>,
    /// `Connected`: what it proved about the server, the suite, resumed.
    pub connected: Option<(Option<Identity>, CipherSuite, bool)>,
    /// `Closed`, with why.
    pub closed: Option<CloseReason>,
    /// Application records delivered.
    pub got: Vec<Vec<u8>>,
    /// Records to send once connected.
    pub outbox: VecDeque<Vec<u8>>,
}

impl<T: TrustStore<Addr>> DtlsClient<T> {
    /// Wraps a client.
    pub fn wrap(addr: Addr, dtls: Client<Addr, SimRng, T>) -> Self {
        DtlsClient {
            addr,
            dtls,
            connected: None,
            closed: None,
            got: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(ev) = self.dtls.poll_event() {
            match ev {
                Event::Connected {
                    identity,
                    suite,
                    resumed,
                    ..
                } => self.connected = Some((identity, suite, resumed)),
                Event::ApplicationData { .. } => {
                    let mut buf = [0u8; 2048];
                    while let Ok(Some(n)) = self.dtls.recv(&mut buf) {
                        self.got.push(buf.get(..n).unwrap_or(&[]).to_vec());
                    }
                }
                Event::Closed { reason, .. } => {
                    self.closed.get_or_insert(reason);
                }
                _ => {}
            }
        }
    }

    /// Connected and not closed.
    pub fn up(&self) -> bool {
        self.closed.is_none() && self.connected.is_some()
    }

    /// The session to resume later, once connected.
    pub fn session(&self) -> Option<Session> {
        self.dtls.session()
    }
}

impl DtlsClient<cssf_dtls::RejectAll> {
    /// A PSK client at `addr` toward `SERVER`.
    pub fn psk(
        addr: Addr,
        cfg: Config,
        identity: &[u8],
        psk: &[u8],
        seed: u64,
        now: Duration,
    ) -> Self {
        let c = Client::new(cfg, identity, psk, SERVER, SimRng::new(seed), now)
            .unwrap_or_else(|e| panic!("lab bug: client config refused: {e}"));
        Self::wrap(addr, c)
    }
}

impl<T: TrustStore<Addr>> Node for DtlsClient<T> {
    fn addr(&self) -> Addr {
        self.addr
    }
    fn input(&mut self, now: Duration, p: &Packet) {
        if self.closed.is_some() {
            return;
        }
        let mut data = p.data.clone();
        let _ = self.dtls.handle_datagram(now, p.from, &mut data);
        self.drain();
    }
    fn output(&mut self, now: Duration, out: &mut Vec<Packet>) {
        if self.up() {
            while let Some(m) = self.outbox.pop_front() {
                let _ = self.dtls.send(now, &m);
            }
        }
        let mut buf = [0u8; 1500];
        while let Ok(Some(t)) = self.dtls.poll_transmit(now, &mut buf) {
            out.push(Packet::new(
                self.addr,
                t.to,
                buf.get(..t.len).unwrap_or(&[]),
            ));
        }
        self.drain();
    }
    fn timeout(&mut self, now: Duration) {
        self.dtls.handle_timeout(now);
        self.drain();
    }
    fn next_timeout(&self) -> Option<Duration> {
        if self.closed.is_some() {
            return None;
        }
        self.dtls.poll_timeout()
    }
}

/// A `Connected` the server reported.
#[derive(Debug, Clone)]
pub struct ServerConn {
    /// The session.
    pub handle: SessionHandle,
    /// Its address then.
    pub peer: Addr,
    /// What it proved.
    pub identity: Option<Identity>,
    /// The suite.
    pub suite: CipherSuite,
    /// Abbreviated handshake.
    pub resumed: bool,
}

/// A datagram the server sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Destination.
    pub to: Addr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A DTLS server endpoint that echoes every application record (`echo:`
/// and the record) to the session it came from.
pub struct DtlsServer<P, T> {
    /// Its address.
    pub addr: Addr,
    /// DTLS.
    pub dtls: Endpoint<Addr, P, SimRng, SLOTS, T>,
    /// Every `Connected`.
    pub connected: Vec<ServerConn>,
    /// Every `Closed`.
    pub closed: Vec<(SessionHandle, CloseReason)>,
    /// Every `PeerAddressChanged`: session, old, new.
    pub moves: Vec<(SessionHandle, Addr, Addr)>,
    /// Application records delivered, by session.
    pub got: Vec<(SessionHandle, Vec<u8>)>,
    /// Every datagram sent.
    pub sent: Vec<Sent>,
    echoes: VecDeque<(SessionHandle, Vec<u8>)>,
}

impl<P: PskStore<Addr>, T: TrustStore<Addr>> DtlsServer<P, T> {
    /// Wraps an endpoint.
    pub fn wrap(addr: Addr, dtls: Endpoint<Addr, P, SimRng, SLOTS, T>) -> Self {
        DtlsServer {
            addr,
            dtls,
            connected: Vec::new(),
            closed: Vec::new(),
            moves: Vec::new(),
            got: Vec::new(),
            sent: Vec::new(),
            echoes: VecDeque::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(ev) = self.dtls.poll_event() {
            match ev {
                Event::Connected {
                    handle,
                    peer,
                    identity,
                    suite,
                    resumed,
                } => self.connected.push(ServerConn {
                    handle,
                    peer,
                    identity,
                    suite,
                    resumed,
                }),
                Event::ApplicationData { handle, .. } => {
                    let mut buf = [0u8; 2048];
                    while let Ok(Some(n)) = self.dtls.recv(handle, &mut buf) {
                        let rec = buf.get(..n).unwrap_or(&[]).to_vec();
                        let mut echo = b"echo:".to_vec();
                        echo.extend_from_slice(&rec);
                        self.echoes.push_back((handle, echo));
                        self.got.push((handle, rec));
                    }
                }
                Event::PeerAddressChanged { handle, old, new } => {
                    self.moves.push((handle, old, new));
                }
                Event::Closed { handle, reason, .. } => self.closed.push((handle, reason)),
                _ => {}
            }
        }
    }

    /// The `Connected` of a session that came from `peer`, if any.
    pub fn conn_from(&self, peer: Addr) -> Option<&ServerConn> {
        self.connected.iter().rev().find(|c| c.peer == peer)
    }

    /// True when `handle` was closed.
    pub fn is_closed(&self, handle: SessionHandle) -> bool {
        self.closed.iter().any(|(h, _)| *h == handle)
    }
}

impl DtlsServer<StaticPsk<'static>, cssf_dtls::RejectAll> {
    /// A PSK server with the lab's key table.
    pub fn psk(addr: Addr, cfg: Config, seed: u64) -> Self {
        let e = Endpoint::new(
            cfg,
            StaticPsk::new(&KEYS),
            SimRng::new(seed ^ 0x5E),
            Duration::ZERO,
        )
        .unwrap_or_else(|e| panic!("lab bug: server config refused: {e}"));
        Self::wrap(addr, e)
    }
}

impl<P: PskStore<Addr>, T: TrustStore<Addr>> Node for DtlsServer<P, T> {
    fn addr(&self) -> Addr {
        self.addr
    }
    fn input(&mut self, now: Duration, p: &Packet) {
        let mut data = p.data.clone();
        let _ = self.dtls.handle_datagram(now, p.from, &mut data);
        self.drain();
    }
    fn output(&mut self, now: Duration, out: &mut Vec<Packet>) {
        while let Some((h, m)) = self.echoes.pop_front() {
            let _ = self.dtls.send(now, h, &m);
        }
        let mut buf = [0u8; 1500];
        while let Ok(Some(t)) = self.dtls.poll_transmit(now, &mut buf) {
            let d = buf.get(..t.len).unwrap_or(&[]);
            self.sent.push(Sent {
                to: t.to,
                data: d.to_vec(),
            });
            out.push(Packet::new(self.addr, t.to, d));
        }
        self.drain();
    }
    fn timeout(&mut self, now: Duration) {
        self.dtls.handle_timeout(now);
        self.drain();
    }
    fn next_timeout(&self) -> Option<Duration> {
        self.dtls.poll_timeout()
    }
}

/// The lab's DTLS settings for these rows: one suite, one second initial
/// retransmission, a handful of retransmissions.
pub fn hs_config(suite: CipherSuite) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap_or_default();
    c.retransmit_initial = Duration::from_secs(1);
    c.retransmit_max = Duration::from_secs(8);
    c.max_retransmits = 5;
    c
}

/// A deterministic P-256 key for the lab (`tag` names whose).
pub fn lab_key(seed: u64, tag: u64) -> SigningKey {
    let mut rng = SimRng::new(seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    SigningKey::random(&mut rng)
}

/// The public half of `k`.
pub fn public(k: &SigningKey) -> p256::PublicKey {
    p256::PublicKey::from(k.verifying_key())
}

/// The trust store of the lab's raw-public-key clients and servers: one
/// pinned key, or (a lab-only control with the defence off) every key.
#[derive(Debug, Clone, Copy)]
pub enum LabTrust {
    /// Trusts exactly this key.
    Pin(p256::PublicKey),
    /// Trusts every key (control only).
    All,
}

impl TrustStore<Addr> for LabTrust {
    fn is_trusted(&self, cx: &cssf_dtls::PeerContext<'_, Addr>, key: &p256::PublicKey) -> bool {
        match self {
            LabTrust::Pin(k) => PinnedKeys::new(core::slice::from_ref(k)).is_trusted(cx, key),
            LabTrust::All => FnTrust(|_: &p256::PublicKey| true).is_trusted(cx, key),
        }
    }
}

/// A raw-public-key client of `SERVER` at `addr` with its own key
/// (`None`: server-only authentication).
pub fn rpk_client(
    addr: Addr,
    cfg: Config,
    own: Option<SigningKey>,
    trust: LabTrust,
    seed: u64,
    now: Duration,
) -> DtlsClient<LabTrust> {
    let c = Client::with_raw_public_key(cfg, own, trust, SERVER, SimRng::new(seed), now)
        .unwrap_or_else(|e| panic!("lab bug: client config refused: {e}"));
    DtlsClient::wrap(addr, c)
}

/// A raw-public-key server at `addr` signing with `key`, trusting
/// `trust`'s client keys.
pub fn rpk_server(
    addr: Addr,
    cfg: Config,
    key: SigningKey,
    trust: LabTrust,
    seed: u64,
) -> DtlsServer<StaticPsk<'static>, LabTrust> {
    let e = Endpoint::with_raw_public_key(
        cfg,
        StaticPsk::new(&[]),
        key,
        trust,
        SimRng::new(seed ^ 0x5E),
        Duration::ZERO,
    )
    .unwrap_or_else(|e| panic!("lab bug: server config refused: {e}"));
    DtlsServer::wrap(addr, e)
}

/// What the two ends of one handshake ended up with, checked against the
/// genuine peers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verdict {
    /// The client reported `Connected`.
    pub client_done: bool,
    /// The server reported `Connected` for the client's address.
    pub server_done: bool,
    /// Both completed, each proved the genuine peer's identity, the same
    /// suite and resumption, and a record went each way.
    pub correct: bool,
    /// A completed handshake with a different transcript or peer: both
    /// completed but disagree (identity, suite, resumption, or records do
    /// not get through), or the client completed with no server session
    /// behind it (it talks to someone else).
    pub wrong: bool,
}

/// Sends one record from the client through an honest network and checks
/// the echo: the two sides' keys agree exactly when it comes back.
pub fn echo_ok<T: TrustStore<Addr>, P: PskStore<Addr>, S: TrustStore<Addr>>(
    net: &mut Net,
    c: &mut DtlsClient<T>,
    s: &mut DtlsServer<P, S>,
    extra: &mut [&mut dyn Node],
    adv: &mut dyn Adversary,
    msg: &[u8],
) -> bool {
    if !c.up() {
        return false;
    }
    c.outbox.push_back(msg.to_vec());
    let mut nodes: Vec<&mut dyn Node> = vec![c, s];
    for n in extra.iter_mut() {
        nodes.push(&mut **n);
    }
    net.run_for(&mut nodes, adv, Duration::from_secs(20));
    let mut want = b"echo:".to_vec();
    want.extend_from_slice(msg);
    let got = c.got.contains(&want);
    let at_server = s.got.iter().any(|(_, g)| g == msg);
    got && at_server
}

/// Judges a handshake between the lab's client and server: `want_client`
/// is the identity the server must have proved about the client,
/// `want_server` the one the client must have proved about the server.
pub fn judge<T: TrustStore<Addr>, P: PskStore<Addr>, S: TrustStore<Addr>>(
    net: &mut Net,
    c: &mut DtlsClient<T>,
    s: &mut DtlsServer<P, S>,
    want_client: Option<&Identity>,
    want_server: Option<&Identity>,
    msg: &[u8],
) -> Verdict {
    let client_done = c.connected.is_some();
    let sc = s.conn_from(c.addr).cloned();
    let server_done = sc.is_some();
    let mut v = Verdict {
        client_done,
        server_done,
        ..Verdict::default()
    };
    if !client_done {
        return v;
    }
    let Some(sc) = sc else {
        // The client completed, and no server session answers for it.
        v.wrong = true;
        return v;
    };
    let agree = c.connected.as_ref().is_some_and(|(id, suite, resumed)| {
        id.as_ref() == want_server
            && sc.identity.as_ref() == want_client
            && *suite == sc.suite
            && *resumed == sc.resumed
    });
    let flows = echo_ok(net, c, s, &mut [], &mut Honest, msg);
    v.correct = agree && flows;
    // Judged as of the moment both sides connected: a completed handshake
    // whose two sides disagree, or whose records then do not get through
    // (even if a side ends the session later), is wrong.
    v.wrong = !v.correct;
    v
}

/// How one handshake datagram is tampered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// One bit flipped at a random position.
    Flip,
    /// Cut at a random length.
    Truncate,
    /// Held back and delivered after the sender's next datagram (or 3 s).
    Reorder,
}

/// Tampers with the `index`-th datagram one side sends (the side is the
/// one whose datagrams go to `toward`), once.
struct FlightTamper {
    toward: Addr,
    index: usize,
    how: Tamper,
    rng: SimRng,
    seen: usize,
    /// Held datagram (reordering) and when it goes anyway.
    held: Option<(Duration, Packet)>,
    /// The tampered datagram was delivered.
    pub done: bool,
    /// Handshake type of the first message in the tampered datagram.
    pub what: Option<u8>,
}

impl Adversary for FlightTamper {
    fn intercept(&mut self, now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.to != self.toward {
            out.push(p);
            return;
        }
        let k = self.seen;
        self.seen += 1;
        if let Some((_, h)) = self.held.take() {
            // The sender's next datagram overtakes the held one.
            out.push(p);
            out.push(h);
            self.done = true;
            return;
        }
        if k != self.index || p.data.is_empty() {
            out.push(p);
            return;
        }
        self.what = handshake_type(&p.data);
        let len = p.data.len();
        let pos = (self.rng.next_u64_raw() % len as u64) as usize;
        let mut data = p.data.clone();
        match self.how {
            Tamper::Flip => {
                let bit = (self.rng.next_u64_raw() % 8) as u8;
                if let Some(b) = data.get_mut(pos) {
                    *b ^= 1 << bit;
                }
            }
            Tamper::Truncate => data.truncate(pos),
            Tamper::Reorder => {
                self.held = Some((
                    now + Duration::from_secs(3),
                    Packet::forged(p.from, p.to, data),
                ));
                return;
            }
        }
        self.done = true;
        out.push(Packet::forged(p.from, p.to, data));
    }
    fn tick(&mut self, now: Duration, out: &mut Vec<Packet>) {
        if self.held.as_ref().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, p)) = self.held.take() {
                out.push(p);
                self.done = true;
            }
        }
    }
    fn wakeup(&self) -> Option<Duration> {
        self.held.as_ref().map(|(t, _)| *t)
    }
}

/// The handshake message type at the start of a datagram's first record
/// (epoch 0 only: later ones are encrypted), or 20 for an encrypted
/// handshake record (Finished), 0xFF for anything else.
fn handshake_type(d: &[u8]) -> Option<u8> {
    match (d.first(), d.get(3..5)) {
        (Some(22), Some([0, 0])) => d.get(13).copied(),
        (Some(22), Some(_)) => Some(20),
        (Some(20), _) => d
            .get(14..)
            .and_then(|r| (r.len() > 13 && r.first() == Some(&22)).then_some(20)),
        _ => Some(0xFF),
    }
}

/// Routes every datagram meant for `SERVER` to the impostor, and the
/// impostor's answers back as if from `SERVER` (the client talks to
/// someone else).
pub struct Redirect;

impl Adversary for Redirect {
    fn intercept(&mut self, _now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.to == SERVER {
            out.push(Packet::forged(p.from, IMPOSTOR, p.data));
        } else if p.from == IMPOSTOR {
            out.push(Packet::forged(SERVER, p.to, p.data));
        } else {
            out.push(p);
        }
    }
}

/// One handshake kind the tampering row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Psk,
    Rpk,
}

/// Outcome of one attempt: the verdict, the tampered datagram delivered.
fn tamper_attempt(seed: u64, kind: Kind, adv: &mut dyn Adversary) -> (Verdict, bool) {
    let mut net = Net::default();
    let msg = format!("record-{seed:016x}").into_bytes();
    match kind {
        Kind::Psk => {
            let cfg = hs_config(CipherSuite::PskWithAes128Ccm8);
            let mut c = DtlsClient::psk(CLIENT, cfg.clone(), IDENTITY, PSK, seed, net.now);
            let mut s = DtlsServer::psk(SERVER, cfg, seed);
            net.run_for(&mut [&mut c, &mut s], adv, Duration::from_secs(60));
            let id = Identity::Psk(
                cssf_dtls::PskIdentity::new(IDENTITY)
                    .unwrap_or_else(|e| panic!("lab bug: identity: {e}")),
            );
            let v = judge(&mut net, &mut c, &mut s, Some(&id), Some(&id), &msg);
            // After the attack a fresh client still gets in.
            let mut c2 = DtlsClient::psk(
                CLIENT + 10,
                hs_config(CipherSuite::PskWithAes128Ccm8),
                IDENTITY,
                PSK,
                seed ^ 1,
                net.now,
            );
            net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
            let alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
            (v, alive)
        }
        Kind::Rpk => {
            let mut cfg = hs_config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
            cfg.require_client_auth = true;
            let (sk, ck) = (lab_key(seed, 1), lab_key(seed, 2));
            let (spub, cpub) = (public(&sk), public(&ck));
            let mut c = rpk_client(
                CLIENT,
                cfg.clone(),
                Some(ck.clone()),
                LabTrust::Pin(spub),
                seed,
                net.now,
            );
            let mut s = rpk_server(SERVER, cfg.clone(), sk, LabTrust::Pin(cpub), seed);
            net.run_for(&mut [&mut c, &mut s], adv, Duration::from_secs(60));
            let v = judge(
                &mut net,
                &mut c,
                &mut s,
                Some(&Identity::RawPublicKey(cpub)),
                Some(&Identity::RawPublicKey(spub)),
                &msg,
            );
            let mut c2 = rpk_client(
                CLIENT + 10,
                cfg,
                Some(ck),
                LabTrust::Pin(spub),
                seed ^ 1,
                net.now,
            );
            net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
            let alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
            (v, alive)
        }
    }
}

/// The control: the client's datagrams go to an impostor holding the
/// credential (the defence, secrecy of the PSK or trust in the server
/// key, switched off); the verdict must call it wrong.
fn impostor_attempt(seed: u64, kind: Kind) -> bool {
    let mut net = Net::default();
    let msg = b"to-the-impostor";
    match kind {
        Kind::Psk => {
            let cfg = hs_config(CipherSuite::PskWithAes128Ccm8);
            let mut c = DtlsClient::psk(CLIENT, cfg.clone(), IDENTITY, PSK, seed, net.now);
            let mut s = DtlsServer::psk(SERVER, cfg.clone(), seed);
            let mut m = DtlsServer::psk(IMPOSTOR, cfg, seed ^ 0x1);
            net.run_for(
                &mut [&mut c, &mut s, &mut m],
                &mut Redirect,
                Duration::from_secs(60),
            );
            let id = Identity::Psk(
                cssf_dtls::PskIdentity::new(IDENTITY)
                    .unwrap_or_else(|e| panic!("lab bug: identity: {e}")),
            );
            judge(&mut net, &mut c, &mut s, Some(&id), Some(&id), msg).wrong
        }
        Kind::Rpk => {
            let mut cfg = hs_config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
            cfg.require_client_auth = true;
            let (sk, ck, mk) = (lab_key(seed, 1), lab_key(seed, 2), lab_key(seed, 3));
            let (spub, cpub) = (public(&sk), public(&ck));
            let mut c = rpk_client(CLIENT, cfg.clone(), Some(ck), LabTrust::All, seed, net.now);
            let mut s = rpk_server(SERVER, cfg.clone(), sk, LabTrust::Pin(cpub), seed);
            let mut m = rpk_server(IMPOSTOR, cfg, mk, LabTrust::All, seed ^ 1);
            net.run_for(
                &mut [&mut c, &mut s, &mut m],
                &mut Redirect,
                Duration::from_secs(60),
            );
            judge(
                &mut net,
                &mut c,
                &mut s,
                Some(&Identity::RawPublicKey(cpub)),
                Some(&Identity::RawPublicKey(spub)),
                msg,
            )
            .wrong
        }
    }
}

fn tampering(o: &Opts) -> Row {
    let mut row = Row::new(
        "hs-tamper",
        "Handshake tampering: one datagram of a flight bit-flipped, truncated or reordered (every flight, both directions, PSK and ECDHE-ECDSA raw public keys)",
    );
    let (mut correct, mut failed, mut delivered) = (0u32, 0u32, 0u32);
    let mut types = std::collections::BTreeSet::new();
    // At least the 36 combinations, even in a short run (0.15 s).
    for i in 0..o.attempts.max(36) {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x4854;
        // Attempts walk through the 36 combinations of datagram (0..3, the
        // first three each way: every full-handshake flight of either
        // side; abbreviated handshakes are not tampered with here), kind,
        // direction and tampering with a stride coprime to 36; the byte
        // position and bit are random.
        let combo = (i as usize * 7) % 36;
        let index = combo % 3;
        let kind = if (combo / 3) % 2 == 0 {
            Kind::Psk
        } else {
            Kind::Rpk
        };
        let toward = if (combo / 6) % 2 == 0 { SERVER } else { CLIENT };
        let how = match combo / 12 {
            0 => Tamper::Flip,
            1 => Tamper::Truncate,
            _ => Tamper::Reorder,
        };
        let mut adv = FlightTamper {
            toward,
            index,
            how,
            rng: SimRng::new(seed ^ 0x7A),
            seen: 0,
            held: None,
            done: false,
            what: None,
        };
        let (v, alive) = tamper_attempt(seed, kind, &mut adv);
        delivered += u32::from(adv.done);
        if let Some(t) = adv.what {
            types.insert(t);
        }
        correct += u32::from(v.correct);
        failed += u32::from(!v.client_done || !v.server_done);
        row.attempt(v.wrong, alive);
    }
    // Control: an impostor holding the credential, the defence off.
    let n = crate::handshake::controls(o);
    let mut seen = 0u32;
    for i in 0..n {
        let kind = if i % 2 == 0 { Kind::Psk } else { Kind::Rpk };
        seen += u32::from(impostor_attempt(
            o.seed.wrapping_add(u64::from(i)) ^ 0x1B,
            kind,
        ));
    }
    row.control(seen, n, false);
    if seen != n {
        row.failure = Some(format!(
            "control: a client talking to an impostor was called wrong in only {seen}/{n}"
        ));
    }
    let names: Vec<String> = types
        .iter()
        .map(|t| match t {
            1 => "ClientHello".to_string(),
            2 => "ServerHello".into(),
            3 => "HelloVerifyRequest".into(),
            11 => "Certificate".into(),
            16 => "ClientKeyExchange".into(),
            20 => "Finished".into(),
            0xFF => "CCS/other".into(),
            t => format!("type {t}"),
        })
        .collect();
    row.defence = format!(
        "Finished MAC over the transcript, signatures, retransmission (completed correctly {correct}, failed {failed}, tampered datagram delivered {delivered}/{}; datagrams starting with {}; control, the client's datagrams routed to an impostor holding the credential: called wrong in {seen}/{n})",
        row.attempts,
        names.join(", ")
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

/// Every row of the family.
pub fn run(o: &Opts) -> Vec<Row> {
    let mut rows = vec![tampering(o)];
    rows.extend(crate::rpk::run(o));
    rows.extend(crate::resumption::run(o));
    rows.extend(crate::cid::run(o));
    rows
}
