//! Resumption attacks (RFC 5246 §7.4.1.2, RFC 7627 §5.3): resuming after
//! the identity was revoked, resuming under another suite or without
//! extended master secret (ClientHello rewritten on the path), replaying an
//! old abbreviated handshake.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use cssf_dtls::wire::client_hello::ClientHelloRepr;
use cssf_dtls::wire::extensions::EXTENDED_MASTER_SECRET;
use cssf_dtls::wire::handshake::msg_type;
use cssf_dtls::wire::server_hello::ServerHelloRepr;
use cssf_dtls::{
    CipherSuite, Client, Config, Endpoint, PeerContext, PskStore, Session, StaticPsk, MAX_PSK_LEN,
};
use cssf_netsim::SimRng;

use crate::handshake::{echo_ok, hs_config, DtlsClient, DtlsServer};
use crate::net::{Addr, Adversary, Honest, Net, Packet, CLIENT, SERVER};
use crate::rpk::edit_handshake;
use crate::stack::{IDENTITY, KEYS, PSK};
use crate::transport::rewrite_client_hello;
use crate::{Cmp, Opts, Row};

/// The address of the resuming client (a restarted client on a new port).
const RESUMER: Addr = 4;

/// The lab's PSK table, until the identity is revoked (the default
/// `may_resume`: a revoked identity cannot resume).
#[derive(Clone)]
struct Revocable {
    revoked: Rc<Cell<bool>>,
}

impl PskStore<Addr> for Revocable {
    fn psk(
        &mut self,
        cx: &PeerContext<'_, Addr>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        if self.revoked.get() {
            return None;
        }
        StaticPsk::new(&KEYS).psk(cx, identity, key)
    }
}

/// Lab-only control: the same store, with the resumption check off.
#[derive(Clone)]
struct ResumeAnyway(Revocable);

impl PskStore<Addr> for ResumeAnyway {
    fn psk(
        &mut self,
        cx: &PeerContext<'_, Addr>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        self.0.psk(cx, identity, key)
    }
    fn may_resume(&mut self, _: &PeerContext<'_, Addr>, _: &[u8]) -> bool {
        true
    }
}

fn server_with<P: PskStore<Addr>>(
    store: P,
    cfg: Config,
    seed: u64,
) -> DtlsServer<P, cssf_dtls::RejectAll> {
    let e = Endpoint::new(cfg, store, SimRng::new(seed ^ 0x5E), Duration::ZERO)
        .unwrap_or_else(|e| panic!("lab bug: server config refused: {e}"));
    DtlsServer::wrap(SERVER, e)
}

fn resuming_client(
    addr: Addr,
    cfg: Config,
    s: &Session,
    seed: u64,
    now: Duration,
) -> DtlsClient<cssf_dtls::RejectAll> {
    let c = Client::resume(cfg, IDENTITY, PSK, s, SERVER, SimRng::new(seed), now)
        .unwrap_or_else(|e| panic!("lab bug: client config refused: {e}"));
    DtlsClient::wrap(addr, c)
}

/// A full handshake from `CLIENT`, closed cleanly: the session to resume.
fn first<P: PskStore<Addr>>(
    net: &mut Net,
    s: &mut DtlsServer<P, cssf_dtls::RejectAll>,
    cfg: Config,
    seed: u64,
) -> Option<Session> {
    let mut c = DtlsClient::psk(CLIENT, cfg, IDENTITY, PSK, seed, net.now);
    net.run_for(&mut [&mut c, s], &mut Honest, Duration::from_secs(30));
    let session = c.session();
    c.dtls.close(net.now);
    net.run_for(&mut [&mut c, s], &mut Honest, Duration::from_secs(5));
    session
}

/// The second connection's result at the server: `Connected` at all,
/// resumed.
fn second_at<P: PskStore<Addr>>(
    s: &DtlsServer<P, cssf_dtls::RejectAll>,
    addr: Addr,
) -> (bool, bool) {
    match s.conn_from(addr) {
        Some(c) => (true, c.resumed),
        None => (false, false),
    }
}

fn revoked(o: &Opts) -> Row {
    let mut row = Row::new(
        "resume-revoked",
        "Resumption after the PSK identity was revoked",
    );
    let cfg = hs_config(CipherSuite::PskWithAes128Ccm8);
    let run_one = |seed: u64, revoke: bool, anyway: bool| -> (bool, bool, bool) {
        let flag = Rc::new(Cell::new(false));
        let store = Revocable {
            revoked: flag.clone(),
        };
        let mut net = Net::default();
        let (connected, resumed, alive);
        if anyway {
            let mut s = server_with(ResumeAnyway(store), cfg.clone(), seed);
            let sess = first(&mut net, &mut s, cfg.clone(), seed);
            flag.set(revoke);
            let Some(sess) = sess else {
                return (false, false, false);
            };
            let mut c = resuming_client(RESUMER, cfg.clone(), &sess, seed ^ 3, net.now);
            net.run_for(&mut [&mut c, &mut s], &mut Honest, Duration::from_secs(60));
            (connected, resumed) = second_at(&s, RESUMER);
            alive = true;
        } else {
            let mut s = server_with(store, cfg.clone(), seed);
            let sess = first(&mut net, &mut s, cfg.clone(), seed);
            flag.set(revoke);
            let Some(sess) = sess else {
                return (false, false, false);
            };
            let mut c = resuming_client(RESUMER, cfg.clone(), &sess, seed ^ 3, net.now);
            net.run_for(&mut [&mut c, &mut s], &mut Honest, Duration::from_secs(60));
            (connected, resumed) = second_at(&s, RESUMER);
            // The server still serves: with the identity back, a new client gets in.
            flag.set(false);
            let mut c2 =
                DtlsClient::psk(CLIENT + 10, cfg.clone(), IDENTITY, PSK, seed ^ 4, net.now);
            net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
            alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
        }
        (connected, resumed, alive)
    };
    let mut full = 0u32;
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x0052_4556;
        let (connected, resumed, alive) = run_one(seed, true, false);
        full += u32::from(connected && !resumed);
        row.attempt(connected, alive);
    }
    let n = crate::handshake::controls(o);
    let (mut kept, mut forced) = (0u32, 0u32);
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x0052_4557;
        kept += u32::from(run_one(seed, false, false).1);
        forced += u32::from(run_one(seed, true, true).1);
    }
    row.control(kept, n, false);
    row.control(forced, n, false);
    if kept != n || forced != n {
        row.failure = Some(format!(
            "control: not revoked resumed {kept}/{n}; revoked with the check off resumed {forced}/{n}"
        ));
    }
    row.defence = format!(
        "PskStore::may_resume asks the store again (default: the identity must still have a key); the full handshake then fails with unknown_psk_identity (full handshakes completed {full}/{}; control: not revoked, resumed {kept}/{n}; revoked, with a lab-only store whose may_resume says yes, resumed {forced}/{n}; run against a lab PSK store only: cssf-server's store and cssf-auth's token stores are not exercised here, and no token session is resumed after its token expired or was narrowed)",
        row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

/// The extension block without extension `t`.
fn strip_extension(block: &[u8], t: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = block;
    while rest.len() >= 4 {
        let ty = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let Some(ext) = rest.get(..4 + len) else {
            break;
        };
        if ty != t {
            out.extend_from_slice(ext);
        }
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    out
}

/// Rewrites the resuming ClientHellos (drops `suite` from the offer, or
/// the extended_master_secret extension) and watches the ServerHello.
struct ResumeRewriter {
    strip_suite: Option<u16>,
    strip_ems: bool,
    /// ClientHellos rewritten.
    rewritten: u32,
    /// A ServerHello echoed the offered session ID (an abbreviated
    /// handshake), with this suite.
    resumed_with: Option<u16>,
    offered: Vec<u8>,
}

impl Adversary for ResumeRewriter {
    fn intercept(&mut self, _now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.to == SERVER {
            let (suite, ems) = (self.strip_suite, self.strip_ems);
            let offered = std::cell::RefCell::new(Vec::new());
            let edit = |ch: &ClientHelloRepr<'_>| {
                *offered.borrow_mut() = ch.session_id.to_vec();
                let suites = ch
                    .suites()
                    .filter(|s| Some(*s) != suite)
                    .flat_map(u16::to_be_bytes)
                    .collect();
                let ext = if ems {
                    strip_extension(ch.extensions, EXTENDED_MASTER_SECRET)
                } else {
                    ch.extensions.to_vec()
                };
                (suites, ext)
            };
            if let Some(d) = rewrite_client_hello(&p.data, &edit) {
                let offered = offered.into_inner();
                if !offered.is_empty() {
                    self.offered = offered;
                }
                if d != p.data {
                    self.rewritten += 1;
                    out.push(Packet::forged(p.from, p.to, d));
                    return;
                }
            }
            out.push(p);
            return;
        }
        let offered = self.offered.clone();
        let mut seen = None;
        let _ = edit_handshake(&p.data, &mut |t, body| {
            if t == msg_type::SERVER_HELLO {
                if let Ok(sh) = ServerHelloRepr::parse(body) {
                    if !offered.is_empty() && sh.session_id == offered.as_slice() {
                        seen = Some(sh.cipher_suite);
                    }
                }
            }
            None
        });
        if seen.is_some() {
            self.resumed_with = seen;
        }
        out.push(p);
    }
}

/// One attempt: a full handshake, then a resuming one under `adv`
/// (both sides configured with `cfg`, the server with `scfg`).
fn rewritten_resume(
    seed: u64,
    cfg: &Config,
    scfg: &Config,
    strip_ems: bool,
    strip_suite: bool,
) -> (ResumeRewriter, Option<Session>, (bool, bool), bool) {
    let mut net = Net::default();
    let mut s = DtlsServer::psk(SERVER, scfg.clone(), seed);
    let sess = first(&mut net, &mut s, cfg.clone(), seed);
    let mut adv = ResumeRewriter {
        strip_suite: if strip_suite {
            sess.as_ref().map(|s| s.suite().id())
        } else {
            None
        },
        strip_ems,
        rewritten: 0,
        resumed_with: None,
        offered: Vec::new(),
    };
    let Some(se) = sess.clone() else {
        return (adv, None, (false, false), false);
    };
    let mut c = resuming_client(RESUMER, cfg.clone(), &se, seed ^ 3, net.now);
    net.run_for(&mut [&mut c, &mut s], &mut adv, Duration::from_secs(60));
    let second = second_at(&s, RESUMER);
    let mut c2 = DtlsClient::psk(CLIENT + 10, cfg.clone(), IDENTITY, PSK, seed ^ 4, net.now);
    net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
    let alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
    (adv, sess, second, alive)
}

fn other_suite(o: &Opts) -> Row {
    let mut row = Row::new(
        "resume-suite",
        "Resumption under another suite (the session's suite stripped from the resuming ClientHello)",
    );
    let mut cfg = hs_config(CipherSuite::PskWithAes128Ccm8);
    cfg.suites = heapless::Vec::from_slice(&[
        CipherSuite::PskWithAes128Ccm8,
        CipherSuite::PskWithChaCha20Poly1305Sha256,
    ])
    .unwrap_or_default();
    let (mut rewritten, mut full_other) = (0u32, 0u32);
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x5355;
        let (adv, sess, (connected, resumed), alive) =
            rewritten_resume(seed, &cfg, &cfg, false, true);
        let suite = sess.map(|s| s.suite().id());
        let accepted = adv.resumed_with.is_some_and(|x| Some(x) != suite) || (connected && resumed);
        rewritten += u32::from(adv.rewritten > 0);
        full_other += u32::from(adv.resumed_with.is_none());
        row.attempt(accepted, alive);
    }
    let n = crate::handshake::controls(o);
    let mut control = 0u32;
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x5356;
        let (adv, _, (_, resumed), _) = rewritten_resume(seed, &cfg, &cfg, false, false);
        control += u32::from(adv.resumed_with.is_some() && resumed);
    }
    row.control(control, n, false);
    if control != n || rewritten != row.attempts {
        row.failure = Some(format!(
            "control: unmodified, resumed {control}/{n}; rewritten {rewritten}/{}",
            row.attempts
        ));
    }
    row.defence = format!(
        "the server resumes only under the session's suite, else a full handshake (whose Finished then fails on the rewritten ClientHello): no abbreviated ServerHello in {full_other}/{a} (ClientHello rewritten {rewritten}/{a}; control, not rewritten: resumed {control}/{n})",
        a = row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

fn no_ems(o: &Opts) -> Row {
    let mut row = Row::new(
        "resume-ems",
        "Resumption without extended master secret (EMS stripped from the resuming ClientHello; server accepts non-EMS full handshakes)",
    );
    let cfg = hs_config(CipherSuite::PskWithAes128Ccm8);
    let mut scfg = cfg.clone();
    scfg.require_extended_master_secret = false;
    let (mut rewritten, mut refused) = (0u32, 0u32);
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x454D;
        let (adv, _, (connected, resumed), alive) =
            rewritten_resume(seed, &cfg, &scfg, true, false);
        let accepted = adv.resumed_with.is_some() || (connected && resumed);
        rewritten += u32::from(adv.rewritten > 0);
        refused += u32::from(adv.resumed_with.is_none());
        row.attempt(accepted, alive);
    }
    let n = crate::handshake::controls(o);
    let mut control = 0u32;
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x454E;
        let (adv, _, (_, resumed), _) = rewritten_resume(seed, &cfg, &scfg, false, false);
        control += u32::from(adv.resumed_with.is_some() && resumed);
    }
    row.control(control, n, false);
    if control != n || rewritten != row.attempts {
        row.failure = Some(format!(
            "control: unmodified, resumed {control}/{n}; rewritten {rewritten}/{}",
            row.attempts
        ));
    }
    row.defence = format!(
        "an EMS session is not resumed by a ClientHello without EMS (RFC 7627 §5.3): no abbreviated ServerHello in {refused}/{a} (ClientHello rewritten {rewritten}/{a}; control, not rewritten: resumed {control}/{n})",
        a = row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

/// Records the resuming client's datagrams (toward the server) and
/// replays them later from the same address; watches the server's answers
/// to the replay.
struct AbbrevReplay {
    capture: bool,
    captured: Vec<Packet>,
    offered: Vec<u8>,
    /// The server answered the replay with an abbreviated ServerHello.
    replay_resumed: bool,
    /// The server answered the genuine client with an abbreviated
    /// ServerHello (the control: the lab sees a resumption).
    genuine_resumed: bool,
}

impl Adversary for AbbrevReplay {
    fn intercept(&mut self, _now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.to == SERVER && self.capture {
            let mut offered = Vec::new();
            let _ = edit_handshake(&p.data, &mut |t, body| {
                if t == msg_type::CLIENT_HELLO {
                    if let Ok(ch) = ClientHelloRepr::parse(body) {
                        offered = ch.session_id.to_vec();
                    }
                }
                None
            });
            if !offered.is_empty() {
                self.offered = offered;
            }
            self.captured.push(p.clone());
        }
        if p.from == SERVER {
            let offered = self.offered.clone();
            let capture = self.capture;
            let _ = edit_handshake(&p.data, &mut |t, body| {
                if t == msg_type::SERVER_HELLO {
                    if let Ok(sh) = ServerHelloRepr::parse(body) {
                        if !offered.is_empty() && sh.session_id == offered.as_slice() {
                            if capture {
                                self.genuine_resumed = true;
                            } else {
                                self.replay_resumed = true;
                            }
                        }
                    }
                }
                None
            });
        }
        out.push(p);
    }
}

fn replayed(o: &Opts) -> Row {
    let mut row = Row::new(
        "resume-replay",
        "Replay of an old abbreviated handshake (the resuming client's datagrams re-sent from its address)",
    );
    let cfg = hs_config(CipherSuite::PskWithAes128Ccm8);
    let (mut reached, mut reached_live, mut closed) = (0u32, 0u32, 0u32);
    let (mut genuine, mut dropped) = (0u32, 0u64);
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x5250;
        let mut net = Net::default();
        let mut s = DtlsServer::psk(SERVER, cfg.clone(), seed);
        let Some(sess) = first(&mut net, &mut s, cfg.clone(), seed) else {
            row.failure = Some("no session to resume".into());
            continue;
        };
        let mut adv = AbbrevReplay {
            capture: true,
            captured: Vec::new(),
            offered: Vec::new(),
            replay_resumed: false,
            genuine_resumed: false,
        };
        let addr = RESUMER;
        let mut c = resuming_client(addr, cfg.clone(), &sess, seed ^ 3, net.now);
        c.outbox.push_back(b"resumed-record".to_vec());
        net.run_for(&mut [&mut c, &mut s], &mut adv, Duration::from_secs(4));
        let before = s.connected.len();
        let got_before = s.got.len();
        // The client goes away (odd attempts: cleanly); the attacker
        // replays everything it sent, in order, from its address.
        if i % 2 == 1 {
            c.dtls.close(net.now);
            net.run_for(&mut [&mut c, &mut s], &mut Honest, Duration::from_secs(2));
        }
        genuine += u32::from(adv.genuine_resumed);
        let dropped_before = s.dtls.stats().client_hello_replays;
        adv.capture = false;
        for p in adv.captured.clone() {
            let q = Packet::forged(p.from, SERVER, p.data);
            net.run_for(
                &mut [&mut s],
                &mut Adv(&mut adv, Some(q)),
                Duration::from_millis(300),
            );
        }
        net.run_for(&mut [&mut s], &mut adv, Duration::from_secs(20));
        dropped += s.dtls.stats().client_hello_replays - dropped_before;
        // An abbreviated ServerHello answering the replay counts too: the
        // server took a copy for a resumption it should have refused.
        let accepted = s.connected.len() > before
            || adv.replay_resumed
            || s.got
                .iter()
                .skip(got_before)
                .any(|(_, g)| g == b"resumed-record");
        if i % 2 == 1 {
            closed += 1;
            reached += u32::from(adv.replay_resumed);
        } else {
            reached_live += u32::from(adv.replay_resumed);
        }
        let mut c2 = DtlsClient::psk(CLIENT + 10, cfg.clone(), IDENTITY, PSK, seed ^ 4, net.now);
        net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
        let alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
        row.attempt(accepted, alive);
    }
    row.control(genuine, row.attempts, false);
    if genuine != row.attempts {
        row.failure = Some(format!(
            "control: the genuine resuming client got an abbreviated ServerHello in only {genuine}/{}",
            row.attempts
        ));
    }
    row.defence = format!(
        "ClientHello replay cache: a copy of a ClientHello taken before whose handshake is over opens nothing ({dropped} replayed ClientHellos dropped; after the client closed, the replay got an abbreviated ServerHello in {reached}/{closed}, with the client's session still live in {reached_live}/{}); fresh server random in every ServerHello: a replayed Finished does not verify; replay window for records (control, the genuine resuming client seen resumed by the same watcher: {genuine}/{})",
        row.attempts - closed,
        row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

/// Injects one datagram on the next tick, then behaves like the wrapped
/// adversary.
struct Adv<'a>(&'a mut AbbrevReplay, Option<Packet>);

impl Adversary for Adv<'_> {
    fn intercept(&mut self, now: Duration, p: Packet, out: &mut Vec<Packet>) {
        self.0.intercept(now, p, out);
    }
    fn tick(&mut self, _now: Duration, out: &mut Vec<Packet>) {
        if let Some(p) = self.1.take() {
            out.push(p);
        }
    }
}

/// The resumption rows.
pub fn run(o: &Opts) -> Vec<Row> {
    vec![revoked(o), other_suite(o), no_ems(o), replayed(o)]
}
