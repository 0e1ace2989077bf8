//! Review 15 (attacker's review of the Authorizer and the token fixes):
//! library findings, one test each, through the public API. Each test
//! fails on 707d3df.
//!
//! - a session's token grant is bound to the PoP key stored for its kid
//!   when `on_connected` runs, not to the key its handshake used: a token
//!   for the kid with another key (and a wider scope), posted between the
//!   ClientKeyExchange and the Finished, becomes the session's grant;
//! - the RFC 9202 §3.3.2 handshake without a usable token ends with
//!   `unknown_psk_identity`, not `illegal_parameter`;
//! - a replaced (wider) token comes back once its `cti` left the replay
//!   cache, if the newer token expired or was issued in the same second;
//! - a token for another PoP key replaces a live token for the same kid:
//!   whoever gets a colliding kid from the AS locks the holder out;
//! - one client holding as many tokens as the store has slots locks every
//!   other client out of ACE until its tokens expire.
#![cfg(all(feature = "dtls", feature = "issuer"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::cell::{Cell, RefCell};
use core::time::Duration;

use cssf_auth::authorizer::{Authorizer, Proof, Requester, Verdict};
use cssf_auth::dtls::{Clock, SharedTokenPsk};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, KeyEntry, Method, PopKey};
use cssf_dtls::{AlertDescription, CloseReason, Event, Identity, SessionHandle};
use cssf_netsim::SimRng;

const AUD: &str = "rs1";
/// The wall clock the RS runs at.
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

/// A MAC0 token for `pop` granting `methods` on `/a`; `edit` adjusts the
/// claims (`iat` 100, `cti` "c1", `exp` 10 000 by default).
fn token(pop: &PopKey, methods: u64, edit: impl FnOnce(&mut ClaimsSet<'_>)) -> Vec<u8> {
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/a", methods)], &mut aif).unwrap();
    let mut c = ClaimsSet {
        aud: Some(AUD),
        exp: Some(10_000),
        iat: Some(100),
        cti: Some(b"c1"),
        cnf: Some(CnfOut::Key(pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    edit(&mut c);
    let mut p = [0u8; 256];
    let plen = c.emit(&mut p).unwrap();
    let mut t = [0u8; 512];
    let m = issuer::mac0(&as_key(), None, &p[..plen], &mut t).unwrap();
    t[..m].to_vec()
}

fn post_at<K, M, const N: usize, const R: usize, const E: usize>(
    rs: &mut AuthzInfo<'_, K, M, N, R, E>,
    wall: u64,
    t: &[u8],
) -> Result<(), cssf_auth::Error>
where
    K: cssf_auth::KeyResolver + ?Sized,
    M: cssf_auth::ScopeMapper,
{
    let mut t = t.to_vec();
    let r = rs.post(Duration::from_secs(1), Some(wall), &mut t, &mut []);
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

/// Severity: high (with the resumption variant in
/// examples/tests/host_review15.rs). The Authorizer binds a token session to
/// `(kid, SHA-256 of the PoP key stored for kid at on_connected)`, but the
/// PSK the handshake proved was looked up earlier, at the
/// ClientKeyExchange. A token for the same kid with another key, stored in
/// between (a plain `POST /authz-info`, between the client's
/// ClientKeyExchange record and its Finished record, which may come in
/// separate datagrams), becomes the grant of a session that never proved
/// that key. README: "a later token for the kid with another key grants
/// this session nothing".
#[test]
fn a_token_stored_between_key_exchange_and_finished_is_not_the_sessions_grant() {
    let keys = keys();
    let rs: RefCell<AuthzInfo<'_, [KeyEntry; 1]>> =
        RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: NOW,
        wall: Some(WALL),
    });
    // The attacker's own token: kid "k", key 1, GET /a.
    let mine = token(&sym(b"k", 1), 1, |c| c.cti = Some(b"mine"));
    post_at(&mut rs.borrow_mut(), WALL, &mine).unwrap();
    // Someone else's token for the kid "k" (another key, every method),
    // newer: the attacker does not know its key.
    let theirs = token(&sym(b"k", 2), 0x7f, |c| {
        c.cti = Some(b"theirs");
        c.iat = Some(101);
    });
    let mut server: cssf_dtls::Endpoint<u8, _, _, 2> = cssf_dtls::Endpoint::new(
        cssf_dtls::Config::default(),
        SharedTokenPsk::new(&rs, &clock),
        SimRng::new(7),
        NOW,
    )
    .unwrap();
    let mut client = cssf_dtls::Client::new(
        cssf_dtls::Config::default(),
        b"k",
        &[1; 16],
        2u8,
        SimRng::new(8),
        NOW,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    let mut split = false;
    for _ in 0..8 {
        while let Some(t) = client.poll_transmit(NOW, &mut buf).unwrap() {
            for mut rec in records(&buf[..t.len]) {
                let cke = is_client_key_exchange(&rec);
                let _ = server.handle_datagram(NOW, 1u8, &mut rec);
                if cke && !split {
                    // Between the two datagrams: a plain POST /authz-info
                    // (now refused while the attacker's token lives,
                    // KidConflict; the session is bound to the key its
                    // handshake was given either way).
                    split = true;
                    let _ = post_at(&mut rs.borrow_mut(), WALL, &theirs);
                }
            }
        }
        while let Some(t) = server.poll_transmit(NOW, &mut buf).unwrap() {
            let _ = client.handle_datagram(NOW, 2u8, &mut buf[..t.len]);
        }
    }
    assert!(split, "the ClientKeyExchange went out on its own");
    assert!(client.is_connected(), "the handshake with key 1 completed");
    let mut az: Authorizer<SessionHandle> = Authorizer::new();
    let mut connected = None;
    while let Some(e) = server.poll_event() {
        if let Event::Connected {
            handle,
            identity: Some(Identity::Psk(id)),
            ..
        } = e
        {
            let g = az
                .on_connected(handle, Proof::Psk(id.as_bytes()), &mut rs.borrow_mut())
                .unwrap();
            connected = Some((handle, g));
        }
    }
    let (h, granted) = connected.expect("Connected");
    let v = az.decide(
        &mut rs.borrow_mut(),
        Requester::Session(h),
        Method::Put,
        "/a",
        NOW,
        Some(WALL),
    );
    assert!(
        v != Verdict::Allow,
        "a session that proved key 1 got the scope of the token for key 2 \
         (granted {granted:?}, PUT /a -> {v:?})"
    );
}

/// Severity: low (conformance). RFC 9202 §3.3.2: when the psk_identity
/// does not yield a valid access token, the RS aborts the handshake with
/// an illegal_parameter alert. cssf-server (NodePsk / TokenPsk::psk_at
/// returning None) ends it with unknown_psk_identity (115).
#[test]
fn an_identity_without_a_usable_token_is_refused_with_illegal_parameter() {
    let keys = keys();
    let rs: RefCell<AuthzInfo<'_, [KeyEntry; 1]>> =
        RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: NOW,
        wall: Some(WALL),
    });
    let mut server: cssf_dtls::Endpoint<u8, _, _, 2> = cssf_dtls::Endpoint::new(
        cssf_dtls::Config::default(),
        SharedTokenPsk::new(&rs, &clock),
        SimRng::new(17),
        NOW,
    )
    .unwrap();
    // The RFC 9202 §3.3.2 identity form, naming a kid with no token.
    let identity = [
        0xA1, 0x08, 0xA1, 0x01, 0xA2, 0x01, 0x04, 0x02, 0x42, b'z', b'z',
    ];
    let mut client = cssf_dtls::Client::new(
        cssf_dtls::Config::default(),
        &identity,
        &[1; 16],
        2u8,
        SimRng::new(18),
        NOW,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    let mut reason = None;
    for _ in 0..8 {
        while let Some(t) = client.poll_transmit(NOW, &mut buf).unwrap() {
            let _ = server.handle_datagram(NOW, 1u8, &mut buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(NOW, &mut buf).unwrap() {
            let _ = client.handle_datagram(NOW, 2u8, &mut buf[..t.len]);
        }
        while let Some(e) = client.poll_event() {
            if let Event::Closed { reason: r, .. } = e {
                reason = Some(r);
            }
        }
    }
    assert_eq!(
        reason,
        Some(CloseReason::Error(cssf_dtls::Error::AlertReceived(
            AlertDescription::IllegalParameter
        ))),
        "RFC 9202 §3.3.2 asks for illegal_parameter"
    );
}

/// Severity: low. store.rs: "a replaced token cannot be posted again to
/// win back a wider scope". It can, once the newer token expired (an
/// expired record "may be replaced by anything") and the old `cti` left
/// the replay cache (64 entries in cssf-server; one here).
#[test]
fn a_replaced_wider_token_does_not_come_back_after_the_newer_one_expired() {
    let keys = keys();
    // (With a cache of one cti the narrow token is now refused,
    // ReplayCacheFull, rather than the live wide one's cti forgotten.)
    let mut rs: AuthzInfo<'_, _, _, 4, 2> = AuthzInfo::new(Config::new(AUD), &keys);
    let wide = token(&sym(b"k", 1), 1 | 4, |c| c.cti = Some(b"wide"));
    // The AS narrowed the grant: a newer token for the same key, shorter.
    let narrow = token(&sym(b"k", 1), 1, |c| {
        c.cti = Some(b"narrow");
        c.iat = Some(200);
        c.exp = Some(WALL as i64 + 100);
    });
    post_at(&mut rs, WALL, &wide).unwrap();
    post_at(&mut rs, WALL, &narrow).unwrap();
    // refused: a replay of a live token's cti (and older than the stored)
    assert!(post_at(&mut rs, WALL, &wide).is_err());
    // After the narrow token's exp, the wide one is posted again.
    let later = WALL + 200;
    let again = post_at(&mut rs, later, &wide);
    let d = rs.authorize(NOW, Some(later), Some(b"k"), Method::Put, "/a");
    assert!(
        again.is_err() && d != cssf_auth::Decision::Allow,
        "the replaced wide token came back: post {again:?}, PUT /a {d:?}"
    );
}

/// Severity: low, same root as the test above. `Issued::supersedes`
/// accepts an equal `iat` ("the replay cache tells those two apart"): a
/// wide token replaced by a narrower one issued in the same second comes
/// back as soon as its `cti` left the replay cache, while the narrow one
/// still lives.
#[test]
fn a_replaced_token_issued_in_the_same_second_does_not_come_back() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, _, _, 4, 2> = AuthzInfo::new(Config::new(AUD), &keys);
    let wide = token(&sym(b"k", 1), 1 | 4, |c| c.cti = Some(b"wide"));
    let narrow = token(&sym(b"k", 1), 1, |c| c.cti = Some(b"narrow"));
    post_at(&mut rs, WALL, &wide).unwrap();
    post_at(&mut rs, WALL, &narrow).unwrap();
    let again = post_at(&mut rs, WALL, &wide);
    let d = rs.authorize(NOW, Some(WALL), Some(b"k"), Method::Put, "/a");
    assert!(
        again.is_err() && d != cssf_auth::Decision::Allow,
        "the replaced wide token came back: post {again:?}, PUT /a {d:?}"
    );
}

/// Severity: low (needs two PoP keys under one kid from the AS, e.g. a
/// client-chosen kid in an RPK `req_cnf`). A token for the kid of a live
/// token, bound to another key, replaces it: the holder of the live token
/// loses its sessions' grants and cannot handshake any more.
#[test]
fn a_token_for_another_key_does_not_evict_a_live_token_for_the_same_kid() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry; 1]> = AuthzInfo::new(Config::new(AUD), &keys);
    let victim = token(&sym(b"k", 1), 1, |c| c.cti = Some(b"v"));
    post_at(&mut rs, WALL, &victim).unwrap();
    let sk = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let (x, y) = cssf_auth::pop::coordinates(&sk.public_key()).unwrap();
    let colliding = PopKey::Ec2 {
        kid: Some(Bytes::from_slice(b"k").unwrap()),
        x,
        y,
    };
    let attacker = token(&colliding, 1, |c| {
        c.cti = Some(b"a");
        c.iat = Some(101);
    });
    let r = post_at(&mut rs, WALL, &attacker);
    let mut key = [0u8; cssf_dtls::MAX_PSK_LEN];
    let victim_psk = rs.psk_store(NOW, Some(WALL)).psk_at(b"k", &mut key);
    assert_eq!(
        victim_psk,
        Some(16),
        "the victim's live token was replaced by one for another key ({r:?})"
    );
}

/// Severity: low (DoS by a legitimate AS client). The store keeps `N`
/// tokens (8 in cssf-server) and, when full, evicts only expired ones:
/// one client that obtains `N` tokens for this audience (any scope, e.g.
/// read-only) and posts them over plain CoAP, without ever opening a
/// session, locks every other client out (5.03) until they expire.
#[test]
fn one_client_cannot_fill_the_token_store_for_everyone() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry; 1], cssf_auth::aif::NoTextScopes, 4> =
        AuthzInfo::new(Config::new(AUD), &keys);
    const KIDS: [&[u8]; 4] = [b"a0", b"a1", b"a2", b"a3"];
    for (i, kid) in (0u8..).zip(KIDS) {
        let t = token(&sym(kid, 10 + i), 1, |c| c.cti = Some(kid));
        post_at(&mut rs, WALL, &t).unwrap();
    }
    let victim = token(&sym(b"victim", 1), 1 | 4, |c| c.cti = Some(b"v"));
    assert_eq!(
        post_at(&mut rs, WALL, &victim),
        Ok(()),
        "four unused tokens of one client keep every other client out"
    );
}
