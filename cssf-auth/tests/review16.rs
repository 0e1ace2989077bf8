//! Review 16 (attacker's review of the review-15 fixes e9de612 and
//! 2b8ab7b): library findings, one test each, through the public API.
//! Each test asserts the behaviour the fixes promise; a failing test is a
//! finding.
//!
//! - the 8-entry handshake-key ring is flushed by eight unauthenticated
//!   ClientKeyExchanges (wrong key, no Finished) between a victim's
//!   ClientKeyExchange and its Finished: the victim's session is anonymous;
//! - a token whose session authenticated with its raw public key (RFC 9202
//!   §3.2) is not "used" until a request was decided with it: new tokens
//!   displace it under a connected session;
//! - a displaced token's `cti` stays in the replay cache: its holder can
//!   never post it again;
//! - `mark_used` is set by a ClientKeyExchange before any Finished: a
//!   party without keys pins every unused token, and the store is full for
//!   newcomers again (the review-15 lock-out, now without a session);
//! - the replay cache keeps the `cti`s of displaced tokens: one client
//!   posting `R` tokens it never uses locks every other client out of
//!   `/authz-info` until its tokens expire;
//! - a keyless record (a `cnf` of only a kid with no token stored) makes
//!   KidConflict refuse the newer token that carries the key.
#![cfg(all(feature = "dtls", feature = "issuer"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::cell::{Cell, RefCell};
use core::time::Duration;

use cssf_auth::authorizer::{Authorizer, Granted, Proof, Requester, Verdict};
use cssf_auth::dtls::{Clock, SharedTokenPsk};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthEvent, AuthzInfo, Bytes, Config, CoseKey, Error, KeyEntry, Method, PopKey,
};
use cssf_dtls::{Event, Identity, SessionHandle};
use cssf_netsim::SimRng;

const AUD: &str = "rs1";
const WALL: u64 = 1_000;
const NOW: Duration = Duration::from_secs(2);

fn as_key() -> CoseKey {
    CoseKey::hmac(Algorithm::Hmac256, &[0x12; 32]).unwrap()
}

fn keys() -> [KeyEntry; 1] {
    [KeyEntry::new(as_key())]
}

fn sym(kid: &[u8], k: u8) -> PopKey {
    PopKey::Symmetric {
        kid: Some(Bytes::from_slice(kid).unwrap()),
        k: Bytes::from_slice(&[k; 16]).unwrap(),
    }
}

/// A MAC0 token for `pop` granting `methods` on `/a` (`iat` 100, `exp`
/// 10 000, `cti` = `cti`).
fn token(pop: &PopKey, methods: u64, cti: &[u8]) -> Vec<u8> {
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/a", methods)], &mut aif).unwrap();
    let c = ClaimsSet {
        aud: Some(AUD),
        exp: Some(10_000),
        iat: Some(100),
        cti: Some(cti),
        cnf: Some(CnfOut::Key(pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = c.emit(&mut p).unwrap();
    let mut t = [0u8; 512];
    let m = issuer::mac0(&as_key(), None, &p[..plen], &mut t).unwrap();
    t[..m].to_vec()
}

fn post<K, M, const N: usize, const R: usize, const E: usize>(
    rs: &mut AuthzInfo<'_, K, M, N, R, E>,
    t: &[u8],
) -> Result<(), Error>
where
    K: cssf_auth::KeyResolver + ?Sized,
    M: cssf_auth::ScopeMapper,
{
    let mut t = t.to_vec();
    let r = rs.post(Duration::from_secs(1), Some(WALL), &mut t, &mut []);
    r.error.map_or(Ok(()), Err)
}

/// The DTLS records of a datagram.
fn records(d: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= 13 {
        let len = 13 + usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let len = len.min(rest.len());
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    out
}

/// A plaintext ClientKeyExchange record.
fn is_client_key_exchange(rec: &[u8]) -> bool {
    rec[0] == 22 && rec[3..5] == [0, 0] && rec.get(13) == Some(&16)
}

type Rs<'k> = AuthzInfo<'k, [KeyEntry; 1]>;
type Server<'a, 'k> = cssf_dtls::Endpoint<
    u8,
    SharedTokenPsk<'a, 'k, [KeyEntry; 1], cssf_auth::aif::NoTextScopes, 4, 32, 16>,
    SimRng,
    4,
>;

/// Address of the server, as the clients see it.
const SERVER: u8 = 200;

/// A client at `at` naming `identity` but holding `key`: the handshake
/// runs until it ends (a wrong key fails at the Finished, after the
/// ClientKeyExchange was processed). Server events go to `events`, its
/// datagrams for others to `others`.
fn run_client(
    server: &mut Server<'_, '_>,
    at: u8,
    identity: &[u8],
    key: &[u8; 16],
    seed: u64,
    events: &mut Vec<Event<u8>>,
) -> bool {
    let mut c = cssf_dtls::Client::new(
        cssf_dtls::Config::default(),
        identity,
        key,
        SERVER,
        SimRng::new(seed),
        NOW,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..8 {
        while let Some(t) = c.poll_transmit(NOW, &mut buf).unwrap() {
            let _ = server.handle_datagram(NOW, at, &mut buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(NOW, &mut buf).unwrap() {
            if t.to == at {
                let _ = c.handle_datagram(NOW, SERVER, &mut buf[..t.len]);
            }
        }
        events.extend(core::iter::from_fn(|| server.poll_event()));
        while c.poll_event().is_some() {}
    }
    c.is_connected()
}

/// Severity: medium (denial of a victim's token grant; same timing
/// assumption as review 15's first test: the ClientKeyExchange and the
/// Finished in separate datagrams, or the Finished lost and resent).
/// `AuthzInfo` remembers the key handed to the last 8 handshakes
/// (`HANDSHAKE_KEYS`); each ClientKeyExchange naming any live token's kid
/// adds an entry, before its Finished is checked. Eight handshakes of an
/// attacker who knows only the victim's kid (it is in the clear in the
/// victim's ClientKeyExchange) and has no key push the victim's entry out:
/// `on_connected` finds no key for the victim's handle and the victim,
/// who proved the token's key, gets only the anonymous rights.
/// (Fixed: an entry goes when its handshake's session connects or closes,
/// `Authorizer::on_closed` included, so with the application draining
/// events the record holds only handshakes in flight, which the DTLS
/// endpoint's handshake slots bound.)
/// The victim's grant and `PUT /a` verdict after `attackers` failed
/// handshakes naming its kid between its ClientKeyExchange and Finished.
fn victim_grant_after(attackers: u64) -> (Granted, Verdict) {
    let keys = keys();
    let rs: RefCell<Rs<'_>> = RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: NOW,
        wall: Some(WALL),
    });
    post(&mut rs.borrow_mut(), &token(&sym(b"k", 1), 1 | 4, b"v")).unwrap();
    let mut server: Server<'_, '_> = cssf_dtls::Endpoint::new(
        cssf_dtls::Config::default(),
        SharedTokenPsk::new(&rs, &clock),
        SimRng::new(7),
        NOW,
    )
    .unwrap();
    let victim_at = 1u8;
    let attacker_at = 3u8;
    let mut victim = cssf_dtls::Client::new(
        cssf_dtls::Config::default(),
        b"k",
        &[1; 16],
        SERVER,
        SimRng::new(8),
        NOW,
    )
    .unwrap();
    let mut events = Vec::new();
    let mut buf = [0u8; 1500];
    let mut flushed = false;
    let mut attackers_connected = 0;
    // The application drains events as they come (the sans-IO contract):
    // every handshake that ends reaches `on_closed`, which forgets its
    // handed key, so the record holds handshakes in flight only.
    let mut az: Authorizer<SessionHandle> = Authorizer::new();
    let closed = |events: &mut Vec<Event<u8>>, az: &mut Authorizer<SessionHandle>| {
        events.retain(|e| match e {
            Event::Closed { handle, .. } => {
                az.on_closed(handle, &mut rs.borrow_mut());
                false
            }
            _ => true,
        });
    };
    for _ in 0..8 {
        while let Some(t) = victim.poll_transmit(NOW, &mut buf).unwrap() {
            for mut rec in records(&buf[..t.len]) {
                let cke = is_client_key_exchange(&rec);
                let _ = server.handle_datagram(NOW, victim_at, &mut rec);
                if cke && !flushed {
                    flushed = true;
                    // Between the victim's key exchange and its Finished:
                    // eight handshakes naming "k", with a wrong key.
                    for i in 0..attackers {
                        if run_client(
                            &mut server,
                            attacker_at,
                            b"k",
                            &[0xEE; 16],
                            100 + i,
                            &mut events,
                        ) {
                            attackers_connected += 1;
                        }
                        closed(&mut events, &mut az);
                    }
                }
            }
        }
        while let Some(t) = server.poll_transmit(NOW, &mut buf).unwrap() {
            if t.to == victim_at {
                let _ = victim.handle_datagram(NOW, SERVER, &mut buf[..t.len]);
            }
        }
        events.extend(core::iter::from_fn(|| server.poll_event()));
    }
    assert!(flushed, "the ClientKeyExchange went out");
    assert_eq!(attackers_connected, 0, "no attacker had the key");
    assert!(victim.is_connected(), "the victim proved key 1");
    let mut granted = None;
    for e in events {
        if let Event::Connected {
            handle,
            identity: Some(Identity::Psk(id)),
            ..
        } = e
        {
            let g = az
                .on_connected(handle, Proof::Psk(id.as_bytes()), &mut rs.borrow_mut())
                .unwrap();
            let v = az.decide(
                &mut rs.borrow_mut(),
                Requester::Session(handle),
                Method::Put,
                "/a",
                NOW,
                Some(WALL),
            );
            granted = Some((g, v));
        }
    }
    granted.expect("the victim's Connected")
}

#[test]
fn control_seven_failed_handshakes_leave_the_victim_its_token_grant() {
    assert_eq!(victim_grant_after(7), (Granted::Token, Verdict::Allow));
}

#[test]
fn eight_failed_handshakes_do_not_cost_a_victim_its_token_grant() {
    let (g, v) = victim_grant_after(8);
    assert_eq!(
        (g, v),
        (Granted::Token, Verdict::Allow),
        "eight unauthenticated ClientKeyExchanges naming the victim's kid flushed the \
         handshake-key ring: the victim, who proved the token's key, was granted {g:?} \
         (PUT /a -> {v:?})"
    );
}

/// An EC2 PoP key (RFC 9202 §3.2: the client authenticates with it as a
/// raw public key).
fn ec2(kid: &[u8], d: u8) -> (PopKey, [u8; 32], [u8; 32]) {
    let sk = p256::SecretKey::from_slice(&[d; 32]).unwrap();
    let (x, y) = cssf_auth::pop::coordinates(&sk.public_key()).unwrap();
    (
        PopKey::Ec2 {
            kid: Some(Bytes::from_slice(kid).unwrap()),
            x,
            y,
        },
        x,
        y,
    )
}

/// Severity: medium. store.rs: "Tokens in use are never evicted", "in
/// use" meaning "a handshake was given its key, or a request was decided
/// with it". A raw-public-key handshake is given the token's key through
/// the trust store (`SharedTokenPsk::is_trusted` / cssf-server's
/// `DeviceTrust`, `&self`: nothing is marked) and `on_connected` marks
/// nothing either: until its first non-public request, the token of a
/// connected RPK session is "unused". Tokens posted meanwhile (by one
/// client with `N` tokens, or by ordinary churn) displace it: the
/// connected session's every request is then 4.01, and (next test) the
/// holder cannot post its token again.
#[test]
fn the_token_of_a_connected_raw_public_key_session_is_not_displaced() {
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys);
    let (pop, x, y) = ec2(b"rpk", 0x42);
    post(&mut rs, &token(&pop, 1 | 4, b"victim")).unwrap();
    let mut az: Authorizer<u8> = Authorizer::new();
    // The RPK handshake completed with the token's key.
    assert_eq!(
        az.on_connected(1, Proof::PublicKey(&x, &y), &mut rs),
        Ok(Granted::Token)
    );
    // Four tokens (the store's size) of someone else, never used.
    for i in 0..4u8 {
        let kid = [b'a', i];
        post(&mut rs, &token(&sym(&kid, 10 + i), 1, &kid)).unwrap();
    }
    let mut displaced = Vec::new();
    while let Some(e) = rs.poll_event() {
        if let AuthEvent::TokenDisplaced { kid } = e {
            displaced.push(kid.as_slice().to_vec());
        }
    }
    let v = az.decide(
        &mut rs,
        Requester::Session(1),
        Method::Put,
        "/a",
        NOW,
        Some(WALL),
    );
    assert_eq!(
        v,
        Verdict::Allow,
        "the token of a connected RPK session was displaced as unused (displaced {displaced:?}): \
         PUT /a -> {v:?}"
    );
}

/// Severity: low. A displaced token (never used: its holder posted it and
/// had not connected yet, or the RPK case above) keeps its `cti` in the
/// replay cache until it expires, so its holder's retry is refused as a
/// replay: the token is lost for good although it was never superseded,
/// and the client must go back to the AS. A client holding `N` tokens
/// (or ordinary churn) burns the freshly posted token of everyone else.
#[test]
fn a_displaced_token_can_be_posted_again() {
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys);
    let victim = token(&sym(b"victim", 1), 1 | 4, b"victim");
    post(&mut rs, &victim).unwrap();
    for i in 0..4u8 {
        let kid = [b'a', i];
        post(&mut rs, &token(&sym(&kid, 10 + i), 1, &kid)).unwrap();
    }
    assert!(rs.store().get(b"victim").is_none(), "displaced");
    let again = post(&mut rs, &victim);
    assert_eq!(
        again,
        Ok(()),
        "a displaced, never superseded token cannot be posted again by its holder"
    );
}

/// Severity: low (the review-15 lock-out, back). 2b8ab7b lets a new token
/// displace the oldest one nothing has used, and counts a token as used
/// when a handshake "was given its key": `note_handshake_key` marks it at
/// the ClientKeyExchange, before the Finished proves anything. Anyone who
/// knows the kids (the RFC 9202 identities are in the clear) pins every
/// unused token with one failed handshake each; the client who posted
/// four tokens and never opens a session pins its own the same way.
/// Newcomers get 5.03 again until the tokens expire.
/// Four unused tokens, `attacks` failed handshakes naming their kids,
/// then a newcomer's token: its post's result.
fn newcomer_after_failed_handshakes(attacks: usize) -> Result<(), Error> {
    let keys = keys();
    let rs: RefCell<Rs<'_>> = RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: NOW,
        wall: Some(WALL),
    });
    const KIDS: [&[u8]; 4] = [b"a0", b"a1", b"a2", b"a3"];
    for (i, kid) in (0u8..).zip(KIDS) {
        post(&mut rs.borrow_mut(), &token(&sym(kid, 10 + i), 1, kid)).unwrap();
    }
    let mut server: Server<'_, '_> = cssf_dtls::Endpoint::new(
        cssf_dtls::Config::default(),
        SharedTokenPsk::new(&rs, &clock),
        SimRng::new(7),
        NOW,
    )
    .unwrap();
    // No key for any of them: each handshake fails at the Finished.
    let mut events = Vec::new();
    for (i, kid) in (0u64..).zip(KIDS).take(attacks) {
        assert!(!run_client(
            &mut server,
            3,
            kid,
            &[0xEE; 16],
            30 + i,
            &mut events
        ));
    }
    assert!(
        events.iter().all(|e| !matches!(e, Event::Connected { .. })),
        "nothing authenticated"
    );
    let newcomer = token(&sym(b"new", 1), 1 | 4, b"new");
    let r = post(&mut rs.borrow_mut(), &newcomer);
    r
}

#[test]
fn control_without_failed_handshakes_a_newcomer_displaces_an_unused_token() {
    assert_eq!(newcomer_after_failed_handshakes(0), Ok(()));
}

#[test]
fn failed_handshakes_do_not_pin_unused_tokens() {
    assert_eq!(
        newcomer_after_failed_handshakes(4),
        Ok(()),
        "four failed handshakes (no key, no Finished) pinned the four unused tokens: \
         the store is full for everyone again"
    );
}

/// Severity: low (a client the AS gives `R` tokens for this audience).
/// The store now displaces unused tokens, but the replay cache keeps the
/// `cti` of each displaced token until it expires and refuses new tokens
/// when full (`ReplayCacheFull`, 5.03): one client posting `R` tokens (64
/// in cssf-server) that it never uses, `N` of them still in the store, the
/// others displaced and useless, locks every other client out of
/// `/authz-info` (and of RFC 9202 §3.3.2 token identities) until its
/// tokens expire.
#[test]
fn one_client_cannot_fill_the_replay_cache_for_everyone() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry; 1], cssf_auth::aif::NoTextScopes, 4, 8> =
        AuthzInfo::new(Config::new(AUD), &keys);
    for i in 0..8u8 {
        let kid = [b'a', i];
        post(&mut rs, &token(&sym(&kid, 10 + i), 1, &kid)).unwrap();
    }
    assert_eq!(rs.store().iter().count(), 4);
    let victim = token(&sym(b"victim", 1), 1 | 4, b"victim");
    assert_eq!(
        post(&mut rs, &victim),
        Ok(()),
        "eight never-used tokens of one client (four of them already displaced) keep every \
         other client's token out"
    );
}

/// A MAC0 token with `cnf` = `cnf`, granting `methods` on `/a`, issued at
/// `iat`.
fn token_cnf(cnf: CnfOut<'_>, methods: u64, cti: &[u8], iat: i64) -> Vec<u8> {
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/a", methods)], &mut aif).unwrap();
    let c = ClaimsSet {
        aud: Some(AUD),
        exp: Some(10_000),
        iat: Some(iat),
        cti: Some(cti),
        cnf: Some(cnf),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = c.emit(&mut p).unwrap();
    let mut t = [0u8; 512];
    let m = issuer::mac0(&as_key(), None, &p[..plen], &mut t).unwrap();
    t[..m].to_vec()
}

/// Severity: low (a stuck state until the keyless token expires). A
/// `cnf` of only a kid the RS holds no token for is stored as a record
/// without a key (`pop_digest` None), e.g. the scope update (RFC 9202 §4)
/// of an RPK client whose token was displaced (second test). e9de612's
/// KidConflict compares `pop_digest`s, so the AS's next token for that
/// kid, with the key, is refused as "a live token for this kid has
/// another key" though the live record has none to protect: the client
/// cannot authenticate (no key) and cannot post the key until the keyless
/// token expires.
#[test]
fn a_keyless_record_does_not_block_the_token_that_carries_the_key() {
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys);
    // The scope update, its token gone: stored without a key.
    post(&mut rs, &token_cnf(CnfOut::Kid(b"rpk"), 1, b"upd", 200)).unwrap();
    let (pop, _, _) = ec2(b"rpk", 0x42);
    let r = post(&mut rs, &token_cnf(CnfOut::Key(&pop), 1 | 4, b"full", 300));
    assert_eq!(
        r,
        Ok(()),
        "a newer token carrying the key for a kid whose live record has no key was refused"
    );
}
