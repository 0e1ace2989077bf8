//! Authorization attacks (ACE-OAuth, RFC 9200 / DTLS profile RFC 9202):
//! forged, expired, replayed and scope-escalated tokens, and a stolen token
//! used without its proof-of-possession key.
//!
//! The resource server is the CSSF stack with `cssf-auth` in front: the
//! token store is the DTLS PSK store (psk_identity = the PoP key's kid, or
//! the token itself) and every CoAP request is authorized against the
//! session's token. Tokens are handed to the server's `/authz-info` handler
//! ([`AuthzInfo::post`]). An attack is accepted when a refused token is
//! stored (2.01) or when the attacker's PUT /actuators/led is carried out.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use cssf_auth::dtls::{Clock, SharedTokenPsk};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Decision, KeyEntry, Method, PopKey,
};
use cssf_coap::Code;
use cssf_dtls::MAX_IDENTITY_LEN;
use cssf_netsim::SimRng;

use crate::net::{contains, Addr, Honest, Net, SERVER, SPOOF_BASE};
use crate::stack::{connect, cssf_alive, CssfClient, CssfServer, LAB_SUITES};
use crate::{Cmp, Opts, Row};

const AUD: &str = "coaps://rs1.lab";
/// The resource server's wall clock (seconds since the epoch).
const WALL: u64 = 1_800_000_000;
const AS_KEY: [u8; 32] = [0x11; 32];
const LEGIT_KID: &[u8] = b"legit-kid";
const LEGIT_POP: [u8; 16] = [0x55; 16];
const MAL_KID: &[u8] = b"mallory";
const MAL_POP: [u8; 16] = [0x77; 16];
const ATTACKER: Addr = SPOOF_BASE + 1;
const EVIL: &[u8] = b"led=on;by=attacker";
const GET: u64 = 1;
const PUT: u64 = 4;

fn as_key(k: &[u8]) -> CoseKey {
    match CoseKey::hmac(Algorithm::Hmac256_64, k) {
        Ok(k) => k,
        Err(e) => panic!("lab bug: AS key: {e}"),
    }
}

/// Mints a Mac0 CWT.
fn mint(
    key: &CoseKey,
    kid: &[u8],
    pop: &[u8],
    cti: &[u8],
    scope: &[(&str, u64)],
    exp: i64,
) -> Vec<u8> {
    let run = || -> Result<Vec<u8>, cssf_auth::Error> {
        let pop = PopKey::Symmetric {
            kid: Some(Bytes::from_slice(kid)?),
            k: Bytes::from_slice(pop)?,
        };
        let mut aif = [0u8; 96];
        let n = Aif::emit(scope, &mut aif)?;
        let c = ClaimsSet {
            aud: Some(AUD),
            exp: Some(exp),
            cti: Some(cti),
            cnf: Some(CnfOut::Key(&pop)),
            scope: Some(ScopeOut::AifBytes(aif.get(..n).unwrap_or(&[]))),
            ..Default::default()
        };
        let mut p = [0u8; 256];
        let plen = c.emit(&mut p)?;
        let mut t = [0u8; 512];
        let m = issuer::mac0(key, Some(b"as"), p.get(..plen).unwrap_or(&[]), &mut t)?;
        Ok(t.get(..m).unwrap_or(&[]).to_vec())
    };
    match run() {
        Ok(t) => t,
        Err(e) => panic!("lab bug: minting: {e}"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Forged,
    Expired,
    Replayed,
    Scope,
    Stolen,
    /// Not an attack: the attacker's client with a valid token and its PoP
    /// key, to show the lab sees access when it is granted.
    Control,
}

/// One attempt: returns (accepted, legitimate session survived).
fn attempt(kind: Kind, i: u32, seed: u64) -> (bool, bool) {
    let real_as = as_key(&AS_KEY);
    let keys = match KeyEntry::with_kid(b"as", real_as.clone()) {
        Ok(k) => [k],
        Err(e) => panic!("lab bug: key entry: {e}"),
    };
    let rs: RefCell<AuthzInfo<'_, [KeyEntry; 1]>> =
        RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: Duration::ZERO,
        wall: Some(WALL),
    });
    let mut s = CssfServer::with_store(SharedTokenPsk::new(&rs, &clock), &LAB_SUITES, seed);
    s.app.gate = Some(Box::new(|now, identity, code, path| {
        let Some(method) = Method::from_code(code.0) else {
            return Some(Code::METHOD_NOT_ALLOWED);
        };
        let wall = clock.get().wall;
        match rs.borrow_mut().authorize(now, wall, identity, method, path) {
            Decision::Allow => None,
            Decision::Deny(r) => Some(Code(r.code())),
        }
    }));
    let post = |token: &[u8]| -> bool {
        let mut t = token.to_vec();
        let c = clock.get();
        rs.borrow_mut()
            .post(c.now, c.wall, &mut t, &mut [0u8; 16])
            .code
            == cssf_auth::authz_info::CREATED
    };

    // The legitimate client: its token, posted, and a session.
    let full = [("/actuators/led", GET | PUT), ("/sensors/temp", GET)];
    let legit_token = mint(
        &real_as,
        LEGIT_KID,
        &LEGIT_POP,
        &seed.to_be_bytes(),
        &full,
        WALL as i64 + 3600,
    );
    let legit_ok = post(&legit_token);
    let mut net = Net::default();
    let mut c = CssfClient::new(
        crate::net::CLIENT,
        SERVER,
        LEGIT_KID,
        &LEGIT_POP,
        &LAB_SUITES,
        seed,
    );
    let up = legit_ok && connect(&mut net, &mut c, &mut s);

    let mut rng = SimRng::new(seed ^ 0xA77);
    let mal_cti = (seed ^ 0xBAD).to_be_bytes();
    let mut stored = false;
    // The attacker's client, connecting with `identity`/`psk` and asking
    // for the PUT (`expire_first`: the token expires after the handshake).
    let acted = |net: &mut Net,
                 c: &mut CssfClient,
                 s: &mut CssfServer<'_, _>,
                 identity: &[u8],
                 psk: &[u8],
                 expire_first: bool|
     -> bool {
        if identity.len() > MAX_IDENTITY_LEN {
            return false;
        }
        let mut m = CssfClient::new(ATTACKER, SERVER, identity, psk, &LAB_SUITES, seed ^ 0x3);
        net.run_for(
            &mut [&mut *c, &mut *s, &mut m],
            &mut Honest,
            Duration::from_secs(10),
        );
        if expire_first {
            clock.set(Clock {
                now: net.now,
                wall: Some(WALL + 200),
            });
        }
        m.app.push(Code::PUT, "actuators/led", EVIL);
        net.run_for(
            &mut [&mut *c, &mut *s, &mut m],
            &mut Honest,
            Duration::from_secs(60),
        );
        s.app.actions.iter().any(|a| a.payload == EVIL)
    };
    let accepted = match kind {
        Kind::Forged => {
            let tok = match i % 3 {
                // Minted with a key the attacker made up, under the AS's kid.
                0 => mint(
                    &as_key(&[0x66; 32]),
                    MAL_KID,
                    &MAL_POP,
                    &mal_cti,
                    &full,
                    WALL as i64 + 3600,
                ),
                // A genuine token with one bit of its claims flipped.
                1 => {
                    let mut t = mint(
                        &real_as,
                        MAL_KID,
                        &MAL_POP,
                        &mal_cti,
                        &[("/sensors/temp", GET)],
                        WALL as i64 + 3600,
                    );
                    let pos = 8 + (rng.next_u64_raw() as usize) % (t.len() - 16);
                    if let Some(b) = t.get_mut(pos) {
                        *b ^= 1 << (rng.next_u64_raw() % 8);
                    }
                    t
                }
                // The attacker's claims with a random tag.
                _ => {
                    let mut t = mint(
                        &as_key(&[0x67; 32]),
                        MAL_KID,
                        &MAL_POP,
                        &mal_cti,
                        &full,
                        WALL as i64 + 3600,
                    );
                    let n = t.len();
                    for b in t.iter_mut().skip(n - 8) {
                        *b = rng.next_u64_raw() as u8;
                    }
                    t
                }
            };
            stored = post(&tok);
            acted(&mut net, &mut c, &mut s, MAL_KID, &MAL_POP, false)
        }
        Kind::Expired => {
            if i % 2 == 0 {
                // Expired before it is posted.
                let tok = mint(
                    &real_as,
                    MAL_KID,
                    &MAL_POP,
                    &mal_cti,
                    &full,
                    WALL as i64 - 1 - i64::from(i),
                );
                stored = post(&tok);
                acted(&mut net, &mut c, &mut s, MAL_KID, &MAL_POP, false)
            } else {
                // Valid when posted, expired by the time it is used over
                // an established session.
                let tok = mint(
                    &real_as,
                    MAL_KID,
                    &MAL_POP,
                    &mal_cti,
                    &full,
                    WALL as i64 + 100,
                );
                let _ = post(&tok);
                acted(&mut net, &mut c, &mut s, MAL_KID, &MAL_POP, true)
            }
        }
        Kind::Replayed => {
            // The legitimate client's token, captured from its POST and
            // posted again.
            stored = post(&legit_token);
            false
        }
        Kind::Scope => {
            let limited = [("/actuators/led", GET), ("/sensors/temp", GET)];
            let mut tok = mint(
                &real_as,
                MAL_KID,
                &MAL_POP,
                &mal_cti,
                &limited,
                WALL as i64 + 3600,
            );
            if i % 2 == 0 {
                // A genuine limited token, used for a method it lacks.
                let _ = post(&tok);
            } else {
                // The token edited to grant PUT as well (mask 1 -> 5).
                let path = b"/actuators/led";
                if let Some(at) = tok.windows(path.len()).position(|w| w == path) {
                    if let Some(b) = tok.get_mut(at + path.len()) {
                        *b = (GET | PUT) as u8;
                    }
                }
                debug_assert!(contains(&tok, path));
                stored = post(&tok);
            }
            acted(&mut net, &mut c, &mut s, MAL_KID, &MAL_POP, false)
        }
        Kind::Control => {
            let tok = mint(
                &real_as,
                MAL_KID,
                &MAL_POP,
                &mal_cti,
                &full,
                WALL as i64 + 3600,
            );
            let _ = post(&tok);
            acted(&mut net, &mut c, &mut s, MAL_KID, &MAL_POP, false)
        }
        Kind::Stolen => {
            let mut guess = [0u8; 16];
            for b in &mut guess {
                *b = rng.next_u64_raw() as u8;
            }
            if i % 2 == 0 {
                acted(&mut net, &mut c, &mut s, LEGIT_KID, &guess, false)
            } else {
                // RFC 9202 §3.3.2: the token itself as psk_identity.
                acted(&mut net, &mut c, &mut s, &legit_token, &guess, false)
            }
        }
    };
    // The legitimate client is still served: a GET, and a PUT its scope allows.
    let mut alive = up && cssf_alive(&mut net, &mut c, &mut s);
    let mine = format!("led=on;by=owner-{i}").into_bytes();
    c.app.push(Code::PUT, "actuators/led", &mine);
    net.run_for(&mut [&mut c, &mut s], &mut Honest, Duration::from_secs(60));
    alive &= s.app.actions.iter().any(|a| a.payload == mine);
    (accepted || stored, alive)
}

/// The authorization rows.
pub fn run(o: &Opts) -> Vec<Row> {
    let kinds = [
        (
            Kind::Forged,
            "token-forged",
            "Forged token (wrong key, flipped claim, random tag)",
            "COSE Mac0 verification",
        ),
        (
            Kind::Expired,
            "token-expired",
            "Expired token (before posting, or after the handshake)",
            "exp checked at /authz-info, PSK lookup and each request",
        ),
        (
            Kind::Replayed,
            "token-replayed",
            "Replayed token (captured POST /authz-info re-sent)",
            "cti replay cache",
        ),
        (
            Kind::Scope,
            "token-scope",
            "Scope escalation (PUT with a GET-only token; edited scope)",
            "AIF scope check per request; Mac0 over the scope",
        ),
        (
            Kind::Stolen,
            "token-stolen",
            "Stolen token used without its PoP key (kid or token as identity)",
            "DTLS PSK handshake proves the PoP key",
        ),
    ];
    kinds
        .into_iter()
        .map(|(kind, id, name, defence)| {
            let mut row = Row::new(id, name);
            let mut control = 0;
            for i in 0..o.attempts {
                let seed = o.seed.wrapping_add(u64::from(i)) ^ (0x70 + id.len() as u64);
                let (acc, alive) = attempt(kind, i, seed);
                row.attempt(acc, alive);
                control += u32::from(attempt(Kind::Control, i, seed ^ 0xC0).0);
            }
            row.defence = format!(
                "{defence} (control, valid token: granted {control}/{})",
                o.attempts
            );
            row.control(control, o.attempts, false);
            row.baseline = Cmp::Na("no access control: every request is served");
            row
        })
        .collect()
}
