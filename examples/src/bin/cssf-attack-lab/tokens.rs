//! ACE token attacks on the real `cssf-server` over loopback UDP (RFC 9200
//! / RFC 9202): the token travels as the DTLS profile has it, an
//! unprotected `POST /authz-info` in plain CoAP before the handshake, and
//! the client then proves the token's PoP key in a DTLS PSK handshake
//! whose `psk_identity` is the kid (or the token itself, or RFC 9202's
//! `cnf` form).
//!
//! Every attempt starts a fresh server (the build beside the lab, or
//! `--server` / `CSSF_LAB_SERVER`) with an HMAC AS key and `dev-2`
//! provisioned with `/actuators/led:GET` only. The legitimate client
//! posts its token through an on-path adversary, a UDP relay that
//! forwards (or withholds) the datagrams and keeps a copy of each; the
//! attacker sends from its own socket what the adversary captured or
//! made. An attack is accepted only when its effect is observed on a
//! resource: a `PUT /actuators/led` answered 2.04 for a credential the
//! scope does not allow it to (or a refused token answered 2.01).
//!
//! - Forged: a token minted with a key the attacker made up, a genuine
//!   token with one bit of its claims flipped, or one with a random tag;
//!   posted, then a handshake with its kid and PoP key and the PUT.
//! - Expired: expired before it is posted; or valid when posted and used
//!   over a session that was established before it expired (its PUT
//!   before expiry is that attempt's control).
//! - Replayed: the legitimate client's captured `POST /authz-info` sent
//!   again (unchanged from the attacker's address, or with a new message
//!   ID from the client's). Accepted: 2.01. Control: a captured POST the
//!   adversary withheld, delivered by the attacker, gets 2.01 and its
//!   key holder's PUT 2.04.
//! - Scope: a genuine token granting `GET` on the LED used for `PUT`; the
//!   same token with its scope edited to grant `PUT`.
//! - Stolen: the legitimate client's token (captured) used without its
//!   PoP key, with the kid, the token or RFC 9202's `cnf` form as
//!   `psk_identity`. Control: the key holder with the same identity.
//! - Scope restored: the client's token T1 (LED `GET,PUT`) is replaced by
//!   T2 (same kid and key, LED `GET` only, issued a second after T1, the
//!   same second, or both without `iat`); the attacker sends T1's
//!   captured POST again. Accepted: the client's PUT (over its session or
//!   a new one) gets 2.04 after that. Control: its PUT got 2.04 under T1
//!   and not under T2 (the lab sees the scope change).
//! - Scope restored after a restart: the same with the server keeping its
//!   tokens in `--store`, killed (as by a power cut) after T2 replaced T1
//!   and started again on the same store before T1 is sent again; the
//!   control also checks that T2 came back (a handshake with the key and
//!   no 2.04).
//! - Token as identity: a token posted by one party gives rights to
//!   another one's session: the attacker's token whose kid is the
//!   provisioned `dev-2` (read-only), used by `dev-2` or by the attacker
//!   with its PoP key; the victim's token (withheld by the adversary)
//!   posted over the attacker's own token session or over `dev-2`'s
//!   session; a plain CoAP PUT from the address that posted the victim's
//!   token. Where `dev-2` is involved, its own PUT must first be refused
//!   (the reference). Control: the victim's key gets 2.04 once its token
//!   is posted (by the attacker, where it was withheld).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, Bytes, CoseKey, PopKey};
use cssf_dtls::{Client, Config, RejectAll, MAX_IDENTITY_LEN};
use cssf_netsim::SimRng;
use rand_core::OsRng;

use crate::lifecycle::{
    not_started, psk_spec, server_binary, socket, Res, Scratch, Server, Session,
};
use crate::{Cmp, Opts, Row};

/// The AS's HMAC key (`--as-hmac-key`, HMAC 256/256).
const AS_KEY: [u8; 32] = [
    0x41, 0x53, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x6c, 0x61, 0x62, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
    0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
];
/// The server's audience (`cssf-server`'s default).
const AUD: &str = "rs1";
/// Provisioned, read-only on the LED.
const DEV2_ID: &str = "dev-2";
const DEV2_KEY: [u8; 16] = [0xD2; 16];
const DEV2_RIGHTS: &str = "/actuators/led:GET";
/// AIF method bits.
const GET: u64 = 1;
const PUT: u64 = 4;
/// CoAP request codes.
const C_POST: u8 = 2;
const C_PUT: u8 = 3;
const CREATED: &str = "2.01";
const CHANGED: &str = "2.04";
const LED: &str = "/actuators/led";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a token says.
struct Claims<'a> {
    kid: &'a [u8],
    pop: &'a [u8; 16],
    cti: &'a [u8],
    scope: &'a [(&'a str, u64)],
    iat: Option<i64>,
    exp: i64,
}

/// A COSE_Mac0 CWT over `c`, under the HMAC 256/256 key `as_key`.
fn mint(as_key: &[u8], c: &Claims<'_>) -> Res<Vec<u8>> {
    let e = |e: cssf_auth::Error| format!("lab bug: minting: {e}");
    let key = CoseKey::hmac(Algorithm::Hmac256, as_key).map_err(e)?;
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(c.kid).map_err(e)?),
        k: Bytes::from_slice(c.pop).map_err(e)?,
    };
    let mut aif = [0u8; 96];
    let n = Aif::emit(c.scope, &mut aif).map_err(e)?;
    let claims = ClaimsSet {
        aud: Some(AUD),
        iat: c.iat,
        exp: Some(c.exp),
        cti: Some(c.cti),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(aif.get(..n).unwrap_or(&[]))),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = claims.emit(&mut p).map_err(e)?;
    let mut t = [0u8; 400];
    let m = mac0(&key, None, p.get(..plen).unwrap_or(&[]), &mut t).map_err(e)?;
    Ok(t.get(..m).unwrap_or(&[]).to_vec())
}

/// A genuine token valid for ten minutes, issued now.
fn genuine(kid: &[u8], pop: &[u8; 16], cti: &[u8], scope: &[(&str, u64)]) -> Res<Vec<u8>> {
    let now = unix_now();
    mint(
        &AS_KEY,
        &Claims {
            kid,
            pop,
            cti,
            scope,
            iat: Some(now),
            exp: now + 600,
        },
    )
}

const FULL: [(&str, u64); 2] = [(LED, GET | PUT), ("/time", GET)];
const LED_READ: [(&str, u64); 2] = [(LED, GET), ("/time", GET)];

/// A CON request with a 2-byte token: `code` (0.0x), message ID, path
/// (segments under 13 bytes), payload.
fn coap(code: u8, mid: u16, path: &str, payload: &[u8]) -> Vec<u8> {
    let [hi, lo] = mid.to_be_bytes();
    let mut m = vec![0x42, code, hi, lo, hi ^ 0x5A, lo];
    let mut delta = 11u8;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        m.push((delta << 4) | (seg.len() as u8 & 0x0F));
        m.extend_from_slice(seg.as_bytes());
        delta = 0;
    }
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// `class.detail` of a CoAP message.
fn code_of(m: &[u8]) -> Res<String> {
    let c = m.get(1).ok_or("response shorter than a CoAP header")?;
    Ok(format!("{}.{:02}", c >> 5, c & 0x1F))
}

/// A copy of `msg` with another message ID (and token).
fn new_mid(msg: &[u8], mid: u16) -> Vec<u8> {
    let mut m = msg.to_vec();
    let [hi, lo] = mid.to_be_bytes();
    for (i, b) in [(2, hi), (3, lo), (4, hi ^ 0x5A), (5, lo)] {
        if let Some(x) = m.get_mut(i) {
            *x = b;
        }
    }
    m
}

/// Sends `msg` from `sock` to `to` and returns the answer (retransmitting
/// as a CoAP client would).
fn exchange_raw(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Res<Vec<u8>> {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(300)));
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        sock.send_to(msg, to).map_err(|e| format!("send: {e}"))?;
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == to {
                return Ok(buf.get(..n).unwrap_or(&[]).to_vec());
            }
        }
    }
    Err(format!("no answer from {to} on plain CoAP"))
}

/// [`exchange_raw`]: the code of the answer.
fn exchange(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Res<String> {
    code_of(&exchange_raw(sock, to, msg)?)
}

/// The on-path adversary between a client and the server's plain CoAP
/// port: a relay the client sends to; it keeps a copy of every request.
struct Relay {
    sock: UdpSocket,
    server: SocketAddr,
}

impl Relay {
    fn new(server: SocketAddr) -> Res<Relay> {
        Ok(Relay {
            sock: socket()?,
            server,
        })
    }

    fn addr(&self) -> Res<SocketAddr> {
        self.sock.local_addr().map_err(|e| format!("relay: {e}"))
    }

    /// The client sends `msg` to the server through the relay: returns
    /// the datagram the adversary captured and, if `forward`, the code of
    /// the server's answer (else the adversary withholds the request and
    /// the code is empty).
    fn carry(&self, client: &UdpSocket, msg: &[u8], forward: bool) -> Res<(Vec<u8>, String)> {
        let to = self.addr()?;
        client.send_to(msg, to).map_err(|e| format!("send: {e}"))?;
        let _ = self.sock.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 1500];
        let (n, from) = self
            .sock
            .recv_from(&mut buf)
            .map_err(|e| format!("relay: the client's request never came: {e}"))?;
        let captured = buf.get(..n).unwrap_or(&[]).to_vec();
        if !forward {
            return Ok((captured, String::new()));
        }
        let answer = exchange_raw(&self.sock, self.server, &captured)?;
        // Passed on to the client (which the lab does not read further).
        let _ = self.sock.send_to(&answer, from);
        Ok((captured, code_of(&answer)?))
    }
}

/// What a PUT through a DTLS session came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Put {
    /// The handshake failed (the identity or key was refused).
    Refused,
    /// The server's answer.
    Code(String),
}

impl Put {
    fn changed(&self) -> bool {
        *self == Put::Code(CHANGED.into())
    }
}

fn dtls_config() -> Config {
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(500);
    cfg
}

/// A DTLS PSK client with the identity `id` (any bytes) and key `key`.
fn client(server: SocketAddr, id: &[u8], key: &[u8]) -> Res<Client<SocketAddr, OsRng>> {
    if id.len() > MAX_IDENTITY_LEN {
        return Err(format!(
            "lab bug: a {}-byte psk_identity (at most {MAX_IDENTITY_LEN})",
            id.len()
        ));
    }
    Client::new(dtls_config(), id, key, server, OsRng, Duration::ZERO)
        .map_err(|e| format!("client: {e}"))
}

/// A session with `id`/`key` from a fresh socket, or `None` when the
/// handshake was refused.
fn open<'a>(
    sock: &'a UdpSocket,
    server: SocketAddr,
    id: &[u8],
    key: &[u8],
) -> Res<Option<Session<'a, RejectAll>>> {
    let mut s = Session::new(sock, client(server, id, key)?);
    match s.handshake() {
        Ok(()) => Ok(Some(s)),
        Err(e) if e.contains("timed out") => Err(format!("handshake: {e}")),
        Err(_) => Ok(None),
    }
}

/// `PUT /actuators/led` over a session.
fn put_over(s: &mut Session<'_, RejectAll>, mid: u16) -> Res<Put> {
    let r = s.request(&coap(C_PUT, mid, LED, b"on"))?;
    Ok(Put::Code(code_of(&r)?))
}

/// A new session with `id`/`key` and its `PUT /actuators/led`.
fn put(server: SocketAddr, id: &[u8], key: &[u8], mid: u16) -> Res<Put> {
    let sock = socket()?;
    let Some(mut s) = open(&sock, server, id, key)? else {
        return Ok(Put::Refused);
    };
    let r = put_over(&mut s, mid);
    s.close();
    r
}

/// The attempt's random choices.
struct Draw(SimRng);

impl Draw {
    fn mid(&mut self) -> u16 {
        self.0.next_u64_raw() as u16
    }
    fn key(&mut self) -> [u8; 16] {
        let mut k = [0u8; 16];
        for b in &mut k {
            *b = self.0.next_u64_raw() as u8;
        }
        k
    }
    fn cti(&mut self) -> [u8; 8] {
        self.0.next_u64_raw().to_be_bytes()
    }
    fn kid(&mut self, tag: &str) -> Vec<u8> {
        format!("{tag}{:04x}", self.0.next_u64_raw() as u16).into_bytes()
    }
}

/// One attempt's outcome.
struct Outcome {
    /// The attack's effect was observed.
    accepted: bool,
    /// The attempt's control showed the effect the attack looks for (and
    /// a legitimate client was served afterwards).
    control: bool,
}

/// The genuine control of most rows: a fresh token for a fresh kid, posted
/// from the attacker's socket, and its key holder's PUT. `Ok(2.04)`.
fn genuine_control(server: &Server, d: &mut Draw) -> Res<bool> {
    let (kid, key, cti) = (d.kid("ok"), d.key(), d.cti());
    let tok = genuine(&kid, &key, &cti, &FULL)?;
    let code = exchange(
        &socket()?,
        server.plain,
        &coap(C_POST, d.mid(), "/authz-info", &tok),
    )?;
    Ok(code == CREATED && put(server.addr, &kid, &key, d.mid())?.changed())
}

fn forged(server: &Server, i: u32, d: &mut Draw) -> Res<Outcome> {
    let (kid, key, cti) = (d.kid("fg"), d.key(), d.cti());
    let now = unix_now();
    let c = Claims {
        kid: &kid,
        pop: &key,
        cti: &cti,
        scope: &FULL,
        iat: Some(now),
        exp: now + 600,
    };
    let tok = match i % 3 {
        // Minted with a key the attacker made up.
        0 => mint(&d.key().repeat(2), &c)?,
        // A genuine GET-only token with one bit of its claims flipped.
        1 => {
            let mut t = mint(
                &AS_KEY,
                &Claims {
                    scope: &LED_READ,
                    ..c
                },
            )?;
            let span = t.len().saturating_sub(40).max(1);
            let pos = 8 + (d.0.next_u64_raw() as usize) % span;
            if let Some(b) = t.get_mut(pos) {
                *b ^= 1 << (d.0.next_u64_raw() % 8);
            }
            t
        }
        // The attacker's claims with a random tag.
        _ => {
            let mut t = mint(&d.key().repeat(2), &c)?;
            let n = t.len();
            for b in t.iter_mut().skip(n.saturating_sub(32)) {
                *b = d.0.next_u64_raw() as u8;
            }
            t
        }
    };
    let code = exchange(
        &socket()?,
        server.plain,
        &coap(C_POST, d.mid(), "/authz-info", &tok),
    )?;
    let used = put(server.addr, &kid, &key, d.mid())?;
    Ok(Outcome {
        accepted: code == CREATED || used.changed(),
        control: genuine_control(server, d)?,
    })
}

fn expired(server: &Server, i: u32, d: &mut Draw) -> Res<Outcome> {
    let (kid, key, cti) = (d.kid("ex"), d.key(), d.cti());
    let now = unix_now();
    if i % 2 == 0 {
        // Expired (beyond the server's 5 s leeway) before it is posted.
        let tok = mint(
            &AS_KEY,
            &Claims {
                kid: &kid,
                pop: &key,
                cti: &cti,
                scope: &FULL,
                iat: Some(now - 3600),
                exp: now - 60 - i64::from(i),
            },
        )?;
        let code = exchange(
            &socket()?,
            server.plain,
            &coap(C_POST, d.mid(), "/authz-info", &tok),
        )?;
        let used = put(server.addr, &kid, &key, d.mid())?;
        return Ok(Outcome {
            accepted: code == CREATED || used.changed(),
            control: genuine_control(server, d)?,
        });
    }
    // Valid for about two more seconds (with the leeway) when posted; the
    // session is established and used at once (the control), then used
    // again after the token expired.
    let exp = now - 3;
    let tok = mint(
        &AS_KEY,
        &Claims {
            kid: &kid,
            pop: &key,
            cti: &cti,
            scope: &FULL,
            iat: Some(now - 60),
            exp,
        },
    )?;
    let code = exchange(
        &socket()?,
        server.plain,
        &coap(C_POST, d.mid(), "/authz-info", &tok),
    )?;
    if code != CREATED {
        return Err(format!(
            "the short-lived token was refused when posted: {code}"
        ));
    }
    let sock = socket()?;
    let Some(mut s) = open(&sock, server.addr, &kid, &key)? else {
        return Err("the short-lived token's handshake was refused before it expired".into());
    };
    let before = put_over(&mut s, d.mid())?.changed();
    // Past exp + leeway (5 s), by a second.
    let end = exp + 5 + 1;
    let start = Instant::now();
    while unix_now() <= end && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = put_over(&mut s, d.mid())?;
    s.close();
    let fresh = put(server.addr, &kid, &key, d.mid())?;
    Ok(Outcome {
        accepted: after.changed() || fresh.changed(),
        control: before,
    })
}

fn replayed(server: &Server, i: u32, d: &mut Draw) -> Res<Outcome> {
    let relay = Relay::new(server.plain)?;
    let victim = socket()?;
    let (kid, key, cti) = (d.kid("rp"), d.key(), d.cti());
    let tok = genuine(&kid, &key, &cti, &FULL)?;
    let (captured, code) =
        relay.carry(&victim, &coap(C_POST, d.mid(), "/authz-info", &tok), true)?;
    if code != CREATED {
        return Err(format!("the victim's token was refused: {code}"));
    }
    let replay = if i % 2 == 0 {
        // Unchanged, from the attacker's own address.
        exchange(&socket()?, server.plain, &captured)?
    } else {
        // From the relay (the address the server saw it from), with a new
        // message ID so that it is not answered from the duplicate cache.
        exchange(&relay.sock, server.plain, &new_mid(&captured, d.mid()))?
    };
    // Control: a POST the adversary withheld, delivered by the attacker.
    let (kid2, key2, cti2) = (d.kid("rc"), d.key(), d.cti());
    let tok2 = genuine(&kid2, &key2, &cti2, &FULL)?;
    let (held, _) = relay.carry(&victim, &coap(C_POST, d.mid(), "/authz-info", &tok2), false)?;
    let delivered = exchange(&socket()?, server.plain, &held)?;
    let control = delivered == CREATED && put(server.addr, &kid2, &key2, d.mid())?.changed();
    Ok(Outcome {
        accepted: replay == CREATED,
        control,
    })
}

fn scope(server: &Server, i: u32, d: &mut Draw) -> Res<Outcome> {
    let (kid, key, cti) = (d.kid("sc"), d.key(), d.cti());
    let mut tok = genuine(&kid, &key, &cti, &LED_READ)?;
    let mut posted_edited = false;
    if i % 2 == 1 {
        // The scope edited to grant PUT too (mask 1 -> 5 after the path).
        let p = LED.as_bytes();
        let at = tok
            .windows(p.len())
            .position(|w| w == p)
            .ok_or("lab bug: the path is not in the token")?;
        match tok.get_mut(at + p.len()) {
            Some(b) if *b == GET as u8 => *b = (GET | PUT) as u8,
            _ => return Err("lab bug: no GET mask after the path".into()),
        }
        posted_edited = true;
    }
    let code = exchange(
        &socket()?,
        server.plain,
        &coap(C_POST, d.mid(), "/authz-info", &tok),
    )?;
    if !posted_edited && code != CREATED {
        return Err(format!("the genuine GET-only token was refused: {code}"));
    }
    let used = put(server.addr, &kid, &key, d.mid())?;
    Ok(Outcome {
        accepted: (posted_edited && code == CREATED) || used.changed(),
        control: genuine_control(server, d)?,
    })
}

/// RFC 9202 §3.3.2's `psk_identity`: `{8: {1: {1: 4, 2: kid}}}`.
fn cnf_identity(kid: &[u8]) -> Vec<u8> {
    let mut v = vec![0xA1, 0x08, 0xA1, 0x01, 0xA2, 0x01, 0x04, 0x02];
    v.push(0x40 | (kid.len() as u8 & 0x1F));
    v.extend_from_slice(kid);
    v
}

fn stolen(server: &Server, i: u32, d: &mut Draw) -> Res<Outcome> {
    let relay = Relay::new(server.plain)?;
    let victim = socket()?;
    let (kid, key, cti) = (d.kid("st"), d.key(), d.cti());
    // One scope entry: the token fits in a psk_identity (128 bytes).
    let tok = genuine(&kid, &key, &cti, &[(LED, GET | PUT)])?;
    let (captured, code) =
        relay.carry(&victim, &coap(C_POST, d.mid(), "/authz-info", &tok), true)?;
    if code != CREATED {
        return Err(format!("the victim's token was refused: {code}"));
    }
    // The token as the adversary read it off the wire.
    let payload = captured
        .iter()
        .position(|b| *b == 0xFF)
        .and_then(|p| captured.get(p + 1..))
        .ok_or("lab bug: the captured POST has no payload")?
        .to_vec();
    let identity = match i % 3 {
        0 => kid.clone(),
        1 => payload,
        _ => cnf_identity(&kid),
    };
    let guess = d.key();
    let attack = put(server.addr, &identity, &guess, d.mid())?;
    // Control: the key holder with the same identity.
    let control = put(server.addr, &identity, &key, d.mid())?.changed();
    Ok(Outcome {
        accepted: attack.changed(),
        control,
    })
}

/// What the scope-restore row saw, beyond accepted and control.
#[derive(Default)]
struct RestoreSeen {
    /// The re-posted T1 was answered 2.01.
    reposted: u32,
}

/// The scope-restore attempt; `restart`: the server keeps its tokens in
/// the store file and is restarted (killed, as by a power cut, and
/// started again on that file) after T2 replaced T1.
fn restore(
    server: Server,
    i: u32,
    d: &mut Draw,
    seen: &mut RestoreSeen,
    restart: Option<(&Path, &Path, &Path)>,
) -> Res<Outcome> {
    let relay = Relay::new(server.plain)?;
    let client_sock = socket()?;
    let (kid, key) = (d.kid("rs"), d.key());
    let (cti1, cti2) = (d.cti(), d.cti());
    let now = unix_now();
    let (iat1, iat2) = match i % 3 {
        // T2 a second newer.
        0 => (Some(now - 1), Some(now)),
        // Both issued within the same second.
        1 => (Some(now), Some(now)),
        // Neither carries iat.
        _ => (None, None),
    };
    let t = |cti: &[u8], scope: &[(&str, u64)], iat: Option<i64>| {
        mint(
            &AS_KEY,
            &Claims {
                kid: &kid,
                pop: &key,
                cti,
                scope,
                iat,
                exp: now + 600,
            },
        )
    };
    let (t1, t2) = (t(&cti1, &FULL, iat1)?, t(&cti2, &LED_READ, iat2)?);
    let (captured, code) = relay.carry(
        &client_sock,
        &coap(C_POST, d.mid(), "/authz-info", &t1),
        true,
    )?;
    if code != CREATED {
        return Err(format!("T1 was refused: {code}"));
    }
    let (sock, sock2) = (socket()?, socket()?);
    let mut s = open(&sock, server.addr, &kid, &key)?.ok_or("T1's handshake was refused")?;
    let under_t1 = put_over(&mut s, d.mid())?.changed();
    let (_, code) = relay.carry(
        &client_sock,
        &coap(C_POST, d.mid(), "/authz-info", &t2),
        true,
    )?;
    if code != CREATED {
        return Err(format!("T2 was refused: {code}"));
    }
    let mut under_t2 = put_over(&mut s, d.mid())?;
    let server = match restart {
        None => server,
        Some((bin, dir, store)) => {
            // A power cycle: the tokens come back from the store.
            drop(s);
            drop(server);
            let server = start(bin, dir, Some(store))?;
            s = Session::new(&sock2, client(server.addr, &kid, &key)?);
            s.handshake()
                .map_err(|e| format!("after the restart, T2's handshake: {e}"))?;
            // Under T2 still (its token restored), not T1.
            let restored = put_over(&mut s, d.mid())?;
            if restored.changed() {
                under_t2 = restored;
            }
            server
        }
    };
    // The attacker sends T1's captured POST again.
    let again = exchange(&socket()?, server.plain, &captured)?;
    seen.reposted += u32::from(again == CREATED);
    let after = put_over(&mut s, d.mid())?;
    s.close();
    let fresh = put(server.addr, &kid, &key, d.mid())?;
    Ok(Outcome {
        accepted: after.changed() || fresh.changed(),
        control: under_t1 && !under_t2.changed(),
    })
}

/// Which effect the identity row saw in which variant.
#[derive(Default)]
struct IdentitySeen {
    /// Accepted, per variant.
    per_variant: [u32; 4],
    /// Attempts that ran, per variant.
    ran: [u32; 4],
}

fn identity(server: &Server, i: u32, d: &mut Draw, seen: &mut IdentitySeen) -> Res<Outcome> {
    let relay = Relay::new(server.plain)?;
    let (vkid, vkey, vcti) = (d.kid("vi"), d.key(), d.cti());
    let vtok = genuine(&vkid, &vkey, &vcti, &FULL)?;
    let victim = socket()?;
    let v = (i % 4) as usize;
    if v == 0 || v == 2 {
        // The reference: dev-2 may not PUT on its own (else its 2.04 below
        // would be its provisioned rights' doing, not the token's).
        if put(server.addr, DEV2_ID.as_bytes(), &DEV2_KEY, d.mid())?.changed() {
            return Err(
                "dev-2's own PUT got 2.04 with no token posted (its RIGHTS not taken)".into(),
            );
        }
    }
    let (accepted, control) = match v {
        // The attacker's own token under dev-2's kid (rw, its own key).
        0 => {
            let mkey = d.key();
            let mtok = genuine(DEV2_ID.as_bytes(), &mkey, &d.cti(), &FULL)?;
            let _ = exchange(
                &socket()?,
                server.plain,
                &coap(C_POST, d.mid(), "/authz-info", &mtok),
            )?;
            let by_dev2 = put(server.addr, DEV2_ID.as_bytes(), &DEV2_KEY, d.mid())?;
            let by_attacker = put(server.addr, DEV2_ID.as_bytes(), &mkey, d.mid())?;
            // Control: the victim's own token and key.
            let (_, code) =
                relay.carry(&victim, &coap(C_POST, d.mid(), "/authz-info", &vtok), true)?;
            let control = code == CREATED && put(server.addr, &vkid, &vkey, d.mid())?.changed();
            (by_dev2.changed() || by_attacker.changed(), control)
        }
        // The victim's token, withheld by the adversary, posted over the
        // attacker's own (GET-only) token session, or over dev-2's.
        1 | 2 => {
            let (held, _) =
                relay.carry(&victim, &coap(C_POST, d.mid(), "/authz-info", &vtok), false)?;
            let sock = socket()?;
            let (id, key) = if v == 1 {
                let (mkid, mkey) = (d.kid("ma"), d.key());
                let mtok = genuine(&mkid, &mkey, &d.cti(), &LED_READ)?;
                let code = exchange(
                    &socket()?,
                    server.plain,
                    &coap(C_POST, d.mid(), "/authz-info", &mtok),
                )?;
                if code != CREATED {
                    return Err(format!("the attacker's own token was refused: {code}"));
                }
                (mkid, mkey.to_vec())
            } else {
                (DEV2_ID.as_bytes().to_vec(), DEV2_KEY.to_vec())
            };
            let mut s = open(&sock, server.addr, &id, &key)?
                .ok_or("the attacker's handshake was refused")?;
            let payload = held
                .iter()
                .position(|b| *b == 0xFF)
                .and_then(|p| held.get(p + 1..))
                .ok_or("lab bug: the captured POST has no payload")?;
            let posted = code_of(&s.request(&coap(C_POST, d.mid(), "/authz-info", payload))?)?;
            let over = put_over(&mut s, d.mid())?;
            s.close();
            let fresh = put(server.addr, &id, &key, d.mid())?;
            // Control: the token the attacker posted is stored and grants
            // its key holder, the victim.
            let control = posted == CREATED && put(server.addr, &vkid, &vkey, d.mid())?.changed();
            (over.changed() || fresh.changed(), control)
        }
        // Plain CoAP from the address that posted the victim's token.
        _ => {
            let (_, code) =
                relay.carry(&victim, &coap(C_POST, d.mid(), "/authz-info", &vtok), true)?;
            if code != CREATED {
                return Err(format!("the victim's token was refused: {code}"));
            }
            let from_relay =
                exchange(&relay.sock, server.plain, &coap(C_PUT, d.mid(), LED, b"on"))?;
            let control = put(server.addr, &vkid, &vkey, d.mid())?.changed();
            (from_relay == CHANGED, control)
        }
    };
    if let Some(n) = seen.per_variant.get_mut(v) {
        *n += u32::from(accepted);
    }
    if let Some(n) = seen.ran.get_mut(v) {
        *n += 1;
    }
    Ok(Outcome { accepted, control })
}

/// Starts a server for one attempt (keeping its tokens in `store`, if
/// given).
fn start(bin: &Path, dir: &Path, store: Option<&Path>) -> Res<Server> {
    let dev2 = psk_spec(DEV2_ID, &DEV2_KEY);
    let store: Vec<String> = store
        .map(|p| vec!["--store".into(), p.to_string_lossy().into_owned()])
        .unwrap_or_default();
    let args = |rights: bool| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--as-hmac-key".into(),
            hex(&AS_KEY),
            "--psk".into(),
            if rights {
                format!("{dev2}:{DEV2_RIGHTS}")
            } else {
                dev2.clone()
            },
        ];
        a.extend(store.iter().cloned());
        a
    };
    Server::start(bin, dir, &args(true), &args(false))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Forged,
    Expired,
    Replayed,
    Scope,
    Stolen,
    Restore,
    RestoreRestart,
    Identity,
}

/// The token rows.
pub fn run(o: &Opts) -> Vec<Row> {
    let kinds = [
        (
            Kind::Forged,
            "tokens-forged",
            "Token over the wire: forged (wrong key, flipped claim, random tag)",
            "COSE Mac0 verified at POST /authz-info; the PSK lookup finds no token",
        ),
        (
            Kind::Expired,
            "tokens-expired",
            "Token over the wire: expired (before posting, or after the handshake)",
            "exp checked at POST /authz-info and at every request",
        ),
        (
            Kind::Replayed,
            "tokens-replayed",
            "Token over the wire: captured POST /authz-info replayed",
            "cti replay cache",
        ),
        (
            Kind::Scope,
            "tokens-scope",
            "Token over the wire: scope escalation (PUT with a GET-only token; edited scope)",
            "AIF scope checked per request; Mac0 over the scope",
        ),
        (
            Kind::Stolen,
            "tokens-stolen",
            "Token over the wire: stolen, without its PoP key (kid, token or cnf as identity)",
            "the DTLS PSK handshake proves the PoP key",
        ),
        (
            Kind::Restore,
            "tokens-restore",
            "Token over the wire: older token re-posted to restore a narrowed scope",
            "cti replay cache; a token replaces only an older one (iat)",
        ),
        (
            Kind::RestoreRestart,
            "tokens-restore-restart",
            "Token over the wire: older token re-posted after a restart to restore a narrowed scope",
            "tokens and the cti replay state kept in the store; a token replaces only an older one",
        ),
        (
            Kind::Identity,
            "tokens-identity",
            "Token over the wire: token posted by one party used as another's identity",
            "provisioned identities first; a session's grant is the key its handshake proved",
        ),
    ];
    let setup = || -> Res<(PathBuf, Scratch)> { Ok((server_binary(o)?, Scratch::new("tokens")?)) };
    let (bin, dir) = match setup() {
        Ok(x) => x,
        Err(e) => {
            return kinds
                .iter()
                .map(|(_, id, name, _)| {
                    let mut r = Row::new(id, name);
                    comparisons(&mut r);
                    not_started(&mut r, e.clone());
                    r
                })
                .collect();
        }
    };
    kinds
        .into_iter()
        .map(|(kind, id, name, defence)| run_row(o, &bin, &dir.0, kind, id, name, defence))
        .collect()
}

fn comparisons(r: &mut Row) {
    r.baseline = Cmp::Na("no access control: every request is served");
    r.libcoap = Cmp::NotRun("the lab drives only cssf-server here");
}

fn run_row(
    o: &Opts,
    bin: &Path,
    dir: &Path,
    kind: Kind,
    id: &'static str,
    name: &'static str,
    defence: &str,
) -> Row {
    let mut row = Row::new(id, name);
    comparisons(&mut row);
    let mut control = 0u32;
    let (mut not_run, mut why) = (0u32, String::new());
    let mut without_rights = false;
    let mut restore_seen = RestoreSeen::default();
    let mut identity_seen = IdentitySeen::default();
    // The identity row cycles through 4 variants: at least one attempt each.
    let attempts = if kind == Kind::Identity {
        o.server_attempts.max(4)
    } else {
        o.server_attempts
    };
    for i in 0..attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ (0x70C0 + id.len() as u64);
        let mut d = Draw(SimRng::new(seed));
        let store = dir.join(format!("store-{id}-{i}"));
        let kept = (kind == Kind::RestoreRestart).then_some(store.as_path());
        let r = start(bin, dir, kept).and_then(|server| {
            without_rights |= server.without_rights;
            match kind {
                Kind::Forged => forged(&server, i, &mut d),
                Kind::Expired => expired(&server, i, &mut d),
                Kind::Replayed => replayed(&server, i, &mut d),
                Kind::Scope => scope(&server, i, &mut d),
                Kind::Stolen => stolen(&server, i, &mut d),
                Kind::Restore => restore(server, i, &mut d, &mut restore_seen, None),
                Kind::RestoreRestart => restore(
                    server,
                    i,
                    &mut d,
                    &mut restore_seen,
                    Some((bin, dir, &store)),
                ),
                Kind::Identity => identity(&server, i, &mut d, &mut identity_seen),
            }
        });
        match r {
            Ok(out) => {
                // Survived: the control's key holder was served afterwards.
                row.attempt(out.accepted, out.control);
                control += u32::from(out.control);
            }
            Err(e) => {
                row.skipped();
                not_run += 1;
                why = e;
            }
        }
    }
    let n = row.attempts;
    let control_words = match kind {
        Kind::Expired => "PUT 2.04 with a valid token, or before it expired",
        Kind::Replayed => {
            "a withheld POST delivered by the attacker got 2.01 and its key holder's PUT 2.04"
        }
        Kind::Stolen => "the key holder with the same identity got PUT 2.04",
        Kind::Restore | Kind::RestoreRestart => {
            "the client's PUT got 2.04 under T1 and not under T2"
        }
        Kind::Identity => "the victim's key got PUT 2.04 with the token posted",
        _ => "a valid token with its PoP key got PUT 2.04",
    };
    let mut extra = String::new();
    if matches!(kind, Kind::Restore | Kind::RestoreRestart) {
        extra = format!("; T1 re-post answered 2.01 {}/{n}", restore_seen.reposted);
    }
    if kind == Kind::Identity {
        let [a, b, c, e] = identity_seen.per_variant;
        let [ra, rb, rc, re] = identity_seen.ran;
        extra = format!(
            "; accepted per variant, of the attempts that ran: token under dev-2's kid \
             {a}/{ra}, over the attacker's token session {b}/{rb}, over dev-2's session \
             {c}/{rc}, plain CoAP from the poster's address {e}/{re}"
        );
    }
    if without_rights {
        extra.push_str("; this server took no RIGHTS: dev-2 got full access");
    }
    row.control(control, n, false);
    if not_run > 0 {
        extra.push_str(&format!("; {not_run}/{n} attempts could not run: {why}"));
        row.failure = Some(format!("{not_run}/{n} attempts could not run ({why})"));
    } else if control < n {
        row.failure = Some(format!("the control showed the effect in {control}/{n}"));
    }
    row.defence = format!("{defence} (control: {control_words} in {control}/{n}{extra})");
    row
}
