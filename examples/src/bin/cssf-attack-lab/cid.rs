//! Connection ID attacks (RFC 9146 §6, RFC 9853): the source address of a
//! victim's tls12_cid records rewritten to the attacker's (or a copy
//! replayed from there), and a session moved onto another session's
//! address. The server gives every session a 4-byte CID; clients ask for
//! none, so the server's records carry their content type in the clear.

use std::time::Duration;

use cssf_dtls::wire::cid_record::TLS12_CID;
use cssf_dtls::wire::rrc::CONTENT_TYPE as RRC;
use cssf_dtls::{CipherSuite, Config, Endpoint, SessionHandle, StaticPsk};
use cssf_netsim::SimRng;

use crate::handshake::{echo_ok, hs_config, DtlsClient, DtlsServer};
use crate::net::{Addr, Adversary, Honest, Net, Packet, CLIENT, SERVER};
use crate::stack::{IDENTITY, PSK};
use crate::{Cmp, Opts, Row};

/// The attacker's own address.
const ATTACKER: Addr = 9;
/// The attacker's own (legitimate) client, whose session it moves.
const MALLORY: Addr = 5;
/// Mallory's PSK identity and key.
const MALLORY_ID: &[u8] = b"mallory";
const MALLORY_PSK: &[u8] = b"mallory-psk-0001";
/// The server's PSK table for these rows.
static CID_KEYS: [(&[u8], &[u8]); 2] = [(IDENTITY, PSK), (MALLORY_ID, MALLORY_PSK)];

fn configs(rrc: bool) -> (Config, Config) {
    let mut c = hs_config(CipherSuite::PskWithAes128Ccm8);
    c.cid_len = Some(0);
    c.rrc = rrc;
    let mut s = c.clone();
    s.cid_len = Some(4);
    (c, s)
}

fn server(cfg: Config, seed: u64) -> DtlsServer<StaticPsk<'static>, cssf_dtls::RejectAll> {
    let e = Endpoint::new(
        cfg,
        StaticPsk::new(&CID_KEYS),
        SimRng::new(seed ^ 0x5E),
        Duration::ZERO,
    )
    .unwrap_or_else(|e| panic!("lab bug: server config refused: {e}"));
    DtlsServer::wrap(SERVER, e)
}

/// Rewrites the source of `victim`'s tls12_cid records toward the server
/// to `to`: every other one instead of the original (dropped), the others
/// delivered and then replayed from `to`.
struct SourceRewriter {
    victim: Addr,
    to: Addr,
    n: u32,
    held: Vec<(Duration, Packet)>,
    /// Records rewritten (original dropped), copies replayed.
    rewritten: u32,
    replayed: u32,
}

impl Adversary for SourceRewriter {
    fn intercept(&mut self, now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.from != self.victim || p.to != SERVER || p.data.first() != Some(&TLS12_CID) {
            out.push(p);
            return;
        }
        self.n += 1;
        if self.n % 2 == 1 {
            self.rewritten += 1;
            out.push(Packet::forged(self.to, p.to, p.data));
        } else {
            self.replayed += 1;
            self.held.push((
                now + Duration::from_millis(500),
                Packet::forged(self.to, p.to, p.data.clone()),
            ));
            out.push(p);
        }
    }
    fn tick(&mut self, now: Duration, out: &mut Vec<Packet>) {
        let (due, keep): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(t, _)| *t <= now);
        self.held = keep;
        out.extend(due.into_iter().map(|(_, p)| p));
    }
    fn wakeup(&self) -> Option<Duration> {
        self.held.iter().map(|(t, _)| *t).min()
    }
}

/// What the server sent to `to` after `from` datagrams: application
/// records, path challenges.
fn sent_to<P, T>(s: &DtlsServer<P, T>, from: usize, to: Addr) -> (u32, u32) {
    let mut app = 0;
    let mut rrc = 0;
    for d in s.sent.iter().skip(from).filter(|d| d.to == to) {
        match d.data.first() {
            Some(23) => app += 1,
            Some(&t) if t == RRC => rrc += 1,
            _ => {}
        }
    }
    (app, rrc)
}

struct RewriteOutcome {
    app_to_attacker: u32,
    rrc_to_attacker: u32,
    moved_to_attacker: bool,
    rewritten: u32,
    alive: bool,
}

fn rewrite_attempt(seed: u64, rrc: bool) -> RewriteOutcome {
    let (ccfg, scfg) = configs(rrc);
    let mut net = Net::default();
    let mut c = DtlsClient::psk(CLIENT, ccfg, IDENTITY, PSK, seed, net.now);
    let mut s = server(scfg, seed);
    net.run_for(&mut [&mut c, &mut s], &mut Honest, Duration::from_secs(30));
    let handle = s.conn_from(CLIENT).map(|x| x.handle);
    let mark = s.sent.len();
    let mut adv = SourceRewriter {
        victim: CLIENT,
        to: ATTACKER,
        n: 0,
        held: Vec::new(),
        rewritten: 0,
        replayed: 0,
    };
    for k in 0..5 {
        c.outbox.push_back(format!("victim-{k}").into_bytes());
        net.run_for(&mut [&mut c, &mut s], &mut adv, Duration::from_secs(2));
    }
    net.run_for(&mut [&mut c, &mut s], &mut adv, Duration::from_secs(10));
    let (app_to_attacker, rrc_to_attacker) = sent_to(&s, mark, ATTACKER);
    let moved_to_attacker = s
        .moves
        .iter()
        .any(|(h, _, new)| Some(*h) == handle && *new == ATTACKER);
    let alive = echo_ok(&mut net, &mut c, &mut s, &mut [], &mut Honest, b"after");
    RewriteOutcome {
        app_to_attacker,
        rrc_to_attacker,
        moved_to_attacker,
        rewritten: adv.rewritten + adv.replayed,
        alive,
    }
}

fn rewrite(o: &Opts) -> Row {
    let mut row = Row::new(
        "cid-rewrite",
        "Connection ID: source address of the victim's CID records rewritten to the attacker's (or a copy replayed from there)",
    );
    let (mut challenges, mut rewritten) = (0u32, 0u32);
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0xC1D;
        let r = rewrite_attempt(seed, true);
        challenges += r.rrc_to_attacker;
        rewritten += u32::from(r.rewritten > 0);
        row.attempt(r.app_to_attacker > 0 || r.moved_to_attacker, r.alive);
    }
    let n = crate::handshake::controls(o);
    let (mut control, mut control_app) = (0u32, 0u32);
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0xC1E;
        let r = rewrite_attempt(seed, false);
        control += u32::from(r.app_to_attacker > 0 || r.moved_to_attacker);
        control_app += r.app_to_attacker;
    }
    row.control(control, n, false);
    if control != n || rewritten != row.attempts {
        row.failure = Some(format!(
            "control: without the Return Routability Check the server sent to the attacker in {control}/{n}; records rewritten in {rewritten}/{}",
            row.attempts
        ));
    }
    row.defence = format!(
        "Return Routability Check (RFC 9853): the session moves only after a path_response from the new address; replays fail the replay window (path challenges to the attacker's address: {challenges} in all, application records: 0; control, the same rewrite without RRC: moved and sent the victim's records to the attacker in {control}/{n}, {control_app} records, within the 3x budget)"
    );
    row.baseline = Cmp::Na("no sessions");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

struct MoveOutcome {
    victim_hurt: bool,
    moved_onto: bool,
    alive: bool,
}

fn move_attempt(seed: u64, rrc: bool) -> MoveOutcome {
    let (ccfg, scfg) = configs(rrc);
    let mut net = Net::default();
    let mut a = DtlsClient::psk(CLIENT, ccfg.clone(), IDENTITY, PSK, seed, net.now);
    let mut m = DtlsClient::psk(MALLORY, ccfg, MALLORY_ID, MALLORY_PSK, seed ^ 7, net.now);
    let mut s = server(scfg, seed);
    net.run_for(
        &mut [&mut a, &mut m, &mut s],
        &mut Honest,
        Duration::from_secs(30),
    );
    let ha: Option<SessionHandle> = s.conn_from(CLIENT).map(|x| x.handle);
    let hm: Option<SessionHandle> = s.conn_from(MALLORY).map(|x| x.handle);
    let mut adv = SourceRewriter {
        victim: MALLORY,
        to: CLIENT,
        n: 0,
        held: Vec::new(),
        rewritten: 0,
        replayed: 0,
    };
    let mut a_ok = 0;
    for k in 0..5 {
        m.outbox.push_back(format!("mallory-{k}").into_bytes());
        let msg = format!("victim-{k}").into_bytes();
        a.outbox.push_back(msg.clone());
        net.run_for(
            &mut [&mut a, &mut m, &mut s],
            &mut adv,
            Duration::from_secs(2),
        );
        let mut want = b"echo:".to_vec();
        want.extend_from_slice(&msg);
        a_ok += usize::from(a.got.contains(&want));
    }
    net.run_for(
        &mut [&mut a, &mut m, &mut s],
        &mut adv,
        Duration::from_secs(10),
    );
    let a_closed = ha.map_or(true, |h| s.is_closed(h));
    // The server announced the move, or sends the attacker's session's
    // records to the victim's address now.
    let moved_onto = s
        .moves
        .iter()
        .any(|(h, _, new)| Some(*h) == hm && *new == CLIENT)
        || hm.is_some_and(|h| s.dtls.peer_address(h) == Some(&CLIENT));
    let victim_hurt = a_closed || a_ok < 5;
    let alive = echo_ok(
        &mut net,
        &mut a,
        &mut s,
        &mut [&mut m],
        &mut Honest,
        b"after",
    );
    MoveOutcome {
        victim_hurt,
        moved_onto,
        alive,
    }
}

fn move_onto(o: &Opts) -> Row {
    let mut row = Row::new(
        "cid-move",
        "Connection ID: the attacker's own session moved onto the victim's address (source of its CID records rewritten)",
    );
    let mut moved = 0u32;
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x30E;
        let r = move_attempt(seed, true);
        moved += u32::from(r.moved_onto);
        row.attempt(r.victim_hurt || r.moved_onto, r.alive);
    }
    let n = crate::handshake::controls(o);
    let (mut control, mut control_hurt) = (0u32, 0u32);
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x30F;
        let r = move_attempt(seed, false);
        control += u32::from(r.moved_onto);
        control_hurt += u32::from(r.victim_hurt);
    }
    row.control(control, n, false);
    if control != n {
        row.failure = Some(format!(
            "control: without the Return Routability Check the attacker's session moved onto the victim's address in {control}/{n}"
        ));
    }
    row.defence = format!(
        "sessions found by CID, never by the address; Return Routability Check (accepted: the attacker's session moved onto the victim's address (the server's PeerAddressChanged, or the session's address at the end), or the victim's session was closed or went unserved; the attacker's session moved onto the victim's address in {moved}/{a}; control, without RRC: it moved there in {control}/{n}, and the victim was still served in {served}/{n})",
        a = row.attempts,
        served = n - control_hurt
    );
    row.baseline = Cmp::Na("no sessions");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

/// The Connection ID rows.
pub fn run(o: &Opts) -> Vec<Row> {
    vec![rewrite(o), move_onto(o)]
}
