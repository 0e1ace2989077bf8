//! Raw public key attacks (RFC 7250, ECDHE-ECDSA): an impostor server with
//! an untrusted key, the key in the server's Certificate swapped for the
//! attacker's (ServerKeyExchange re-signed with the attacker's key), and a
//! ServerKeyExchange signed by another key.

use std::time::Duration;

use cssf_dtls::wire::handshake::{msg_type, HandshakeHeader, HEADER_LEN as HS_LEN};
use cssf_dtls::wire::record::{ContentType, RecordHeader, HEADER_LEN as REC_LEN};
use cssf_dtls::{CipherSuite, Identity, SigningKey};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::DerSignature;
use p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::handshake::{
    echo_ok, hs_config, lab_key, public, rpk_client, rpk_server, LabTrust, Redirect, IMPOSTOR,
};
use crate::net::{Adversary, Honest, Net, Packet, CLIENT, SERVER};
use crate::{Cmp, Opts, Row};

/// Given a handshake message's type and body, its new body (`None`:
/// unchanged).
pub type BodyEdit<'e> = &'e mut dyn FnMut(u8, &[u8]) -> Option<Vec<u8>>;

/// Rebuilds a datagram, letting `edit` replace the body of any whole
/// epoch-0 handshake message (`None`: unchanged). Records of other kinds
/// are copied.
pub fn edit_handshake(data: &[u8], edit: BodyEdit<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (rh, frag, tail) = RecordHeader::parse(rest).ok()?;
        let whole = rest.get(..rest.len() - tail.len())?;
        rest = tail;
        if rh.content_type != ContentType::Handshake || rh.epoch != 0 {
            out.extend_from_slice(whole);
            continue;
        }
        let mut msgs = Vec::new();
        let mut f = frag;
        while !f.is_empty() {
            let (hh, body, more) = HandshakeHeader::parse(f).ok()?;
            let hlen = f.len() - more.len();
            let raw = f.get(..hlen)?;
            f = more;
            if hh.fragment_offset != 0 || hh.fragment_length != hh.length {
                msgs.extend_from_slice(raw);
                continue;
            }
            match edit(hh.msg_type, body) {
                Some(nb) => {
                    let mut m = vec![0u8; HS_LEN + nb.len()];
                    HandshakeHeader::whole(hh.msg_type, hh.message_seq, nb.len())
                        .emit(&mut m)
                        .ok()?;
                    m.get_mut(HS_LEN..)?.copy_from_slice(&nb);
                    msgs.extend_from_slice(&m);
                }
                None => msgs.extend_from_slice(raw),
            }
        }
        let mut rec = vec![0u8; REC_LEN];
        RecordHeader {
            length: u16::try_from(msgs.len()).ok()?,
            ..rh
        }
        .emit(&mut rec)
        .ok()?;
        rec.extend_from_slice(&msgs);
        out.extend_from_slice(&rec);
    }
    Some(out)
}

/// Re-signs a ServerKeyExchange body (ECDHE params, then the signature)
/// with `key` over the two hellos' randoms, the ECDHE point first replaced
/// by `point` if set (same length).
fn resign(
    body: &[u8],
    cr: &[u8; 32],
    sr: &[u8; 32],
    key: &SigningKey,
    point: Option<&[u8]>,
) -> Option<Vec<u8>> {
    // curve_type(1) named_curve(2) point_len(1) point
    let plen = usize::from(*body.get(3)?);
    let mut params = body.get(..4 + plen)?.to_vec();
    if let Some(p) = point {
        params.get_mut(4..4 + plen)?.copy_from_slice(p.get(..plen)?);
    }
    let params = params.as_slice();
    let alg = body.get(4 + plen..6 + plen)?;
    let mut msg = cr.to_vec();
    msg.extend_from_slice(sr);
    msg.extend_from_slice(params);
    let sig: DerSignature = key.sign(&msg);
    let s = sig.as_bytes();
    let mut nb = params.to_vec();
    nb.extend_from_slice(alg);
    nb.extend_from_slice(&u16::try_from(s.len()).ok()?.to_be_bytes());
    nb.extend_from_slice(s);
    Some(nb)
}

/// On the path: swaps the server's key in its Certificate for `swap_to`
/// (if set) and re-signs its ServerKeyExchange with `signer` (if set).
struct KeyRewriter {
    from_point: Vec<u8>,
    swap_to: Option<Vec<u8>>,
    signer: Option<SigningKey>,
    /// The attacker's ECDHE point put into the ServerKeyExchange before
    /// it is signed.
    ecdhe_to: Option<Vec<u8>>,
    client_random: [u8; 32],
    /// Server flights rewritten.
    rewritten: u32,
    /// The client sent a ClientKeyExchange (it took the server's flight).
    client_went_on: bool,
}

impl Adversary for KeyRewriter {
    fn intercept(&mut self, _now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.to == SERVER {
            let _ = edit_handshake(&p.data, &mut |t, body| {
                if t == msg_type::CLIENT_HELLO {
                    if let Some(r) = body.get(2..34) {
                        self.client_random.copy_from_slice(r);
                    }
                }
                if t == msg_type::CLIENT_KEY_EXCHANGE {
                    self.client_went_on = true;
                }
                None
            });
            out.push(p);
            return;
        }
        let mut server_random = [0u8; 32];
        let cr = self.client_random;
        let mut changed = false;
        let edited = edit_handshake(&p.data, &mut |t, body| match t {
            msg_type::SERVER_HELLO => {
                if let Some(r) = body.get(2..34) {
                    server_random.copy_from_slice(r);
                }
                None
            }
            msg_type::CERTIFICATE => {
                let to = self.swap_to.as_ref()?;
                let at = body
                    .windows(self.from_point.len())
                    .position(|w| w == self.from_point.as_slice())?;
                let mut nb = body.to_vec();
                nb.get_mut(at..at + to.len())?.copy_from_slice(to);
                changed = true;
                Some(nb)
            }
            msg_type::SERVER_KEY_EXCHANGE => {
                let k = self.signer.as_ref()?;
                let nb = resign(body, &cr, &server_random, k, self.ecdhe_to.as_deref())?;
                changed = true;
                Some(nb)
            }
            _ => None,
        });
        match edited {
            Some(d) if changed => {
                self.rewritten += 1;
                out.push(Packet::forged(p.from, p.to, d));
            }
            _ => out.push(p),
        }
    }
}

/// One attempt's outcome: client completed, client went on past the
/// server's flight, flights rewritten.
struct Seen {
    completed: bool,
    went_on: bool,
    rewritten: u32,
    alive: bool,
}

/// A server-only (even attempts) or mutual raw-public-key handshake under
/// a `KeyRewriter`; the client trusts every key with `trust_all`, else
/// the server's; with `ecdhe` the attacker's ECDHE point replaces the
/// server's in the ServerKeyExchange before `signer` signs it.
fn rewritten_attempt(
    seed: u64,
    mutual: bool,
    trust_all: bool,
    swap: bool,
    signer: Option<SigningKey>,
    ecdhe: bool,
) -> Seen {
    let mut cfg = hs_config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
    cfg.require_client_auth = mutual;
    let (sk, ck, mk) = (lab_key(seed, 1), lab_key(seed, 2), lab_key(seed, 3));
    let (spub, cpub, mpub) = (public(&sk), public(&ck), public(&mk));
    let trust = if trust_all {
        LabTrust::All
    } else {
        LabTrust::Pin(spub)
    };
    let own = mutual.then(|| ck.clone());
    let mut net = Net::default();
    let mut c = rpk_client(CLIENT, cfg.clone(), own.clone(), trust, seed, net.now);
    let mut s = rpk_server(SERVER, cfg.clone(), sk, LabTrust::Pin(cpub), seed);
    let point = |k: &p256::PublicKey| k.to_encoded_point(false).as_bytes().to_vec();
    let mut adv = KeyRewriter {
        from_point: point(&spub),
        swap_to: swap.then(|| point(&mpub)),
        signer,
        ecdhe_to: ecdhe.then(|| point(&public(&lab_key(seed, 4)))),
        client_random: [0; 32],
        rewritten: 0,
        client_went_on: false,
    };
    net.run_for(&mut [&mut c, &mut s], &mut adv, Duration::from_secs(60));
    let completed = c.connected.is_some();
    let mut c2 = rpk_client(
        CLIENT + 10,
        cfg,
        own,
        LabTrust::Pin(spub),
        seed ^ 1,
        net.now,
    );
    net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
    let alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
    Seen {
        completed,
        went_on: adv.client_went_on,
        rewritten: adv.rewritten,
        alive,
    }
}

fn untrusted(o: &Opts) -> Row {
    let mut row = Row::new(
        "rpk-untrusted",
        "Raw public keys: an impostor server with an untrusted key (the client's datagrams routed to it)",
    );
    let mut refused = 0u32;
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x52_504B;
        let mutual = i % 2 == 1;
        let mut cfg = hs_config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
        cfg.require_client_auth = mutual;
        let (sk, ck, mk) = (lab_key(seed, 1), lab_key(seed, 2), lab_key(seed, 3));
        let (spub, cpub) = (public(&sk), public(&ck));
        let own = mutual.then(|| ck.clone());
        let mut net = Net::default();
        let mut c = rpk_client(
            CLIENT,
            cfg.clone(),
            own.clone(),
            LabTrust::Pin(spub),
            seed,
            net.now,
        );
        let mut s = rpk_server(SERVER, cfg.clone(), sk, LabTrust::Pin(cpub), seed);
        let mut m = rpk_server(IMPOSTOR, cfg.clone(), mk, LabTrust::All, seed ^ 2);
        net.run_for(
            &mut [&mut c, &mut s, &mut m],
            &mut Redirect,
            Duration::from_secs(60),
        );
        let accepted = c.connected.is_some() || !c.got.is_empty();
        refused += u32::from(matches!(
            c.closed.and_then(|r| r.error()),
            Some(cssf_dtls::Error::UntrustedPeer)
        ));
        let mut c2 = rpk_client(
            CLIENT + 10,
            cfg,
            own,
            LabTrust::Pin(spub),
            seed ^ 1,
            net.now,
        );
        net.run_for(&mut [&mut c2, &mut s], &mut Honest, Duration::from_secs(30));
        let alive = echo_ok(&mut net, &mut c2, &mut s, &mut [], &mut Honest, b"alive");
        row.attempt(accepted, alive);
    }
    // Controls: the trusted key completes; trusting every key (the
    // defence off), the client completes with the impostor.
    let n = crate::handshake::controls(o);
    let (mut genuine, mut fooled) = (0u32, 0u32);
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x52_504C;
        let cfg = hs_config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
        let (sk, mk) = (lab_key(seed, 1), lab_key(seed, 3));
        let spub = public(&sk);
        let mut net = Net::default();
        let mut c = rpk_client(
            CLIENT,
            cfg.clone(),
            None,
            LabTrust::Pin(spub),
            seed,
            net.now,
        );
        let mut s = rpk_server(SERVER, cfg.clone(), sk.clone(), LabTrust::All, seed);
        net.run_for(&mut [&mut c, &mut s], &mut Honest, Duration::from_secs(60));
        genuine += u32::from(
            c.connected
                .as_ref()
                .is_some_and(|(id, ..)| *id == Some(Identity::RawPublicKey(spub)))
                && echo_ok(&mut net, &mut c, &mut s, &mut [], &mut Honest, b"hi"),
        );
        let mut net = Net::default();
        let mut c = rpk_client(CLIENT, cfg.clone(), None, LabTrust::All, seed, net.now);
        let mut s = rpk_server(SERVER, cfg.clone(), sk, LabTrust::All, seed);
        let mut m = rpk_server(IMPOSTOR, cfg, mk, LabTrust::All, seed ^ 2);
        net.run_for(
            &mut [&mut c, &mut s, &mut m],
            &mut Redirect,
            Duration::from_secs(60),
        );
        fooled += u32::from(c.connected.is_some());
    }
    row.control(genuine, n, false);
    row.control(fooled, n, false);
    if genuine != n || fooled != n {
        row.failure = Some(format!(
            "control: trusted key completed {genuine}/{n}, trust-all client fooled {fooled}/{n}"
        ));
    }
    row.defence = format!(
        "trust store checks the server's key (client ended with UntrustedPeer, alert bad_certificate, in {refused}/{}; control: the trusted key completed {genuine}/{n}, a client trusting every key completed with the impostor {fooled}/{n})",
        row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

fn swapped(o: &Opts) -> Row {
    let mut row = Row::new(
        "rpk-swap",
        "Raw public keys: the key in the server's Certificate swapped for the attacker's, ServerKeyExchange re-signed with it",
    );
    let mut went_on = 0u32;
    let mut rewritten = 0u32;
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x5357;
        let mk = lab_key(seed, 3);
        let r = rewritten_attempt(seed, i % 2 == 1, false, true, Some(mk), false);
        went_on += u32::from(r.went_on);
        rewritten += u32::from(r.rewritten > 0);
        // An on-path rewriter without the server's ECDHE key cannot
        // complete; the client going on past the server's flight (its
        // ClientKeyExchange) is the effect.
        row.attempt(r.went_on || r.completed, r.alive);
    }
    // Control: a client trusting every key (the defence off) takes the
    // swapped key and the re-signed ServerKeyExchange and goes on.
    let n = crate::handshake::controls(o);
    let mut control = 0u32;
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x5358;
        let mk = lab_key(seed, 3);
        let r = rewritten_attempt(seed, false, true, true, Some(mk), false);
        control += u32::from(r.went_on);
    }
    row.control(control, n, false);
    if control != n || rewritten != row.attempts {
        row.failure = Some(format!(
            "control: trust-all client went on {control}/{n}; flights rewritten {rewritten}/{}",
            row.attempts
        ));
    }
    row.defence = format!(
        "trust store checks the Certificate's key before the signature (accepted: the client went on past the rewritten flight, sending ClientKeyExchange, or completed; rewritten {rewritten}/{a}; client sent ClientKeyExchange {went_on}/{a}; control, a client trusting every key: took the swapped key and signature and sent ClientKeyExchange {control}/{n})",
        a = row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

fn other_signer(o: &Opts) -> Row {
    let mut row = Row::new(
        "rpk-ske-key",
        "Raw public keys: ServerKeyExchange signed by another key (Certificate unchanged)",
    );
    let mut went_on = 0u32;
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x534B;
        let mk = lab_key(seed, 3);
        let r = rewritten_attempt(seed, i % 2 == 1, false, false, Some(mk), false);
        went_on += u32::from(r.went_on);
        row.attempt(r.went_on || r.completed, r.alive);
    }
    // Control: the attacker's ECDHE point put into the ServerKeyExchange
    // and signed with the server's own key (what a signature by the
    // Certificate's key over altered parameters looks like): the client
    // checks the signature, finds it good and goes on.
    let n = crate::handshake::controls(o);
    let mut control = 0u32;
    for i in 0..n {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x534C;
        let r = rewritten_attempt(seed, i % 2 == 1, false, false, Some(lab_key(seed, 1)), true);
        control += u32::from(r.went_on && r.rewritten > 0);
    }
    row.control(control, n, false);
    if control != n {
        row.failure = Some(format!(
            "control: the attacker's ECDHE point signed with the server's key: client went on {control}/{n}"
        ));
    }
    row.defence = format!(
        "ServerKeyExchange signature checked against the Certificate's key (accepted: the client went on past the rewritten flight, sending ClientKeyExchange, or completed; client sent ClientKeyExchange {went_on}/{}; control, the attacker's ECDHE point in the ServerKeyExchange signed with the server's key: client sent ClientKeyExchange {control}/{n})",
        row.attempts
    );
    row.baseline = Cmp::Na("no handshake");
    row.libcoap = Cmp::NotRun("in-memory only");
    row
}

/// The raw public key rows.
pub fn run(o: &Opts) -> Vec<Row> {
    vec![untrusted(o), swapped(o), other_signer(o)]
}
