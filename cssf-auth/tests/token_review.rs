//! Token defects found in a security review of the resource server, one
//! test each, through the public API (each failed before its fix):
//!
//! - a replaced token posted again (its `cti` gone from the replay cache)
//!   won back the wider scope the newer token had replaced;
//! - a token without `cti` was accepted, so nothing could tell it posted
//!   twice;
//! - a kid-only `cnf` (a scope update, RFC 9202 §4) deleted the stored PoP
//!   key;
//! - a token used as `psk_identity` (RFC 9202 §3.3.2) worked for one
//!   handshake only: the second was refused as a replay;
//! - the RFC 9202 §3.3.2 `psk_identity` form `{8: {1: {1: 4, 2: kid}}}`
//!   named no token;
//! - the issuer emitted high-S ES256 signatures;
//! - a token's EC2 PoP key could not authenticate a DTLS client (RFC 9202
//!   §3.2, raw public keys): there was no glue from the token store to the
//!   DTLS trust store;
//! - a device that keeps its tokens across a restart had no way to keep
//!   the replay cache: a token replaced by one issued the same second (or
//!   both without `iat`) was taken again after the restart.
#![cfg(all(feature = "dtls", feature = "issuer"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use core::cell::{Cell, RefCell};
use core::time::Duration;

use cssf_auth::authorizer::{Authorizer, Granted, Proof, Requester, Verdict};
use cssf_auth::dtls::{Clock, SharedTokenPsk};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Decision, DenyReason, Error, KeyEntry,
    Method, PopKey,
};
use cssf_dtls::Identity;
use cssf_netsim::SimRng;

const AUD: &str = "rs1";

fn as_key() -> CoseKey {
    CoseKey::hmac(Algorithm::Hmac256_64, &[0x12; 32]).unwrap()
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

/// The wall clock the RS runs at.
const WALL: u64 = 1_000;

/// A MAC0 token; `edit` adjusts the claims (a PoP key `pop`, scope
/// `/a` with `methods`, `iat` 100, `cti` "c1", `exp` 10 000 by default).
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

fn post<const R: usize>(
    rs: &mut AuthzInfo<'_, [KeyEntry; 1], cssf_auth::aif::NoTextScopes, 4, R>,
    t: &[u8],
) -> Result<(), Error> {
    let mut t = t.to_vec();
    let r = rs.post(Duration::from_secs(1), Some(WALL), &mut t, &mut []);
    r.error.map_or(Ok(()), Err)
}

const NOW: Duration = Duration::from_secs(2);

#[test]
fn a_replaced_token_cannot_come_back_when_its_cti_left_the_replay_cache() {
    let keys = keys();
    // A replay cache of one cti. Before, the second token pushed the
    // first one's cti out; now a live token's cti is never forgotten (the
    // second token is refused until the first expires), and a replaced
    // token is refused by its iat anyway.
    let mut rs: AuthzInfo<'_, _, _, 4, 1> = AuthzInfo::new(Config::new(AUD), &keys);
    let wide = token(&sym(b"k", 1), 1 | 4, |c| c.cti = Some(b"wide"));
    let narrow = token(&sym(b"k", 1), 1, |c| {
        c.cti = Some(b"narrow");
        c.iat = Some(200);
    });
    post(&mut rs, &wide).unwrap();
    assert_eq!(post(&mut rs, &narrow), Err(Error::ReplayCacheFull));
    let mut rs: AuthzInfo<'_, _, _, 4, 2> = AuthzInfo::new(Config::new(AUD), &keys);
    post(&mut rs, &wide).unwrap();
    post(&mut rs, &narrow).unwrap();
    assert!(post(&mut rs, &wide).is_err(), "the wide token came back");
    let mut cfg = Config::new(AUD);
    cfg.require_cti = false;
    let mut rs: AuthzInfo<'_, _, _, 4, 1> = AuthzInfo::new(cfg, &keys);
    let no_cti = |t: &[u8]| t.to_vec();
    let wide = no_cti(&token(&sym(b"k", 1), 1 | 4, |c| c.cti = None));
    let narrow = no_cti(&token(&sym(b"k", 1), 1, |c| {
        c.cti = None;
        c.iat = Some(200);
    }));
    post(&mut rs, &wide).unwrap();
    post(&mut rs, &narrow).unwrap();
    assert_eq!(post(&mut rs, &wide), Err(Error::Superseded));
    assert_eq!(
        rs.authorize(NOW, Some(WALL), Some(b"k"), Method::Put, "/a"),
        Decision::Deny(DenyReason::MethodNotAllowed),
        "the narrower, newer token still decides"
    );
}

#[test]
fn a_token_without_cti_is_refused() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, _> = AuthzInfo::new(Config::new(AUD), &keys);
    let t = token(&sym(b"k", 1), 1, |c| c.cti = None);
    assert_eq!(post(&mut rs, &t), Err(Error::MissingClaim));
    assert!(rs.store().is_empty());
}

#[test]
fn tokens_without_cti_when_configured_to_accept_them() {
    let keys = keys();
    let mut cfg = Config::new(AUD);
    cfg.require_cti = false;
    let mut rs: AuthzInfo<'_, _> = AuthzInfo::new(cfg, &keys);
    let t = token(&sym(b"k", 1), 1 | 4, |c| c.cti = None);
    post(&mut rs, &t).unwrap();
    // ...still ordered by iat: an older one is refused.
    let older = token(&sym(b"k", 1), 1 | 4, |c| {
        c.cti = None;
        c.iat = Some(50);
    });
    assert_eq!(post(&mut rs, &older), Err(Error::Superseded));
}

#[test]
fn a_kid_only_cnf_update_keeps_the_pop_key() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, _> = AuthzInfo::new(Config::new(AUD), &keys);
    post(&mut rs, &token(&sym(b"k", 7), 1, |_| {})).unwrap();
    let update = token(&sym(b"unused", 0), 1 | 4, |c| {
        c.cnf = Some(CnfOut::Kid(b"k"));
        c.cti = Some(b"c2");
        c.iat = Some(101);
    });
    post(&mut rs, &update).unwrap();
    let rec = rs.store().get(b"k").unwrap();
    assert_eq!(rec.pop.symmetric(), Some(&[7; 16][..]), "the PoP key stays");
    assert_eq!(
        rs.authorize(NOW, Some(WALL), Some(b"k"), Method::Put, "/a"),
        Decision::Allow,
        "the new scope applies"
    );
    let mut key = [0u8; cssf_dtls::MAX_PSK_LEN];
    assert_eq!(
        rs.psk_store(NOW, Some(WALL)).psk_at(b"k", &mut key),
        Some(16)
    );
}

fn handshake(
    rs: &RefCell<AuthzInfo<'_, [KeyEntry; 1]>>,
    identity: &[u8],
    psk: &[u8],
    seed: u64,
) -> Option<(Vec<u8>, u64)> {
    common::psk_handshake(rs, identity, psk, seed, NOW, Some(WALL))
}

#[test]
fn a_token_as_psk_identity_works_for_every_handshake() {
    let keys = keys();
    let rs = RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let t = token(&sym(b"k", 5), 1, |_| {});
    assert!(t.len() <= cssf_dtls::MAX_IDENTITY_LEN);
    let mut az: Authorizer<u64> = Authorizer::new();
    for (i, seed) in [10u64, 20, 30].into_iter().enumerate() {
        let (id, h) = handshake(&rs, &t, &[5; 16], seed)
            .unwrap_or_else(|| panic!("handshake {i} with the token as identity"));
        assert_eq!(
            az.on_connected(h, Proof::Psk(&id), &mut rs.borrow_mut()),
            Ok(Granted::Token)
        );
        let v = az.decide(
            &mut rs.borrow_mut(),
            Requester::Session(h),
            Method::Get,
            "/a",
            NOW,
            Some(WALL),
        );
        assert_eq!(v, Verdict::Allow, "session {i}");
    }
    // ...and the kid works too (RFC 9202 §3.3.2, after the token is known)
    assert!(handshake(&rs, b"k", &[5; 16], 40).is_some());
    // but not with another key
    assert!(handshake(&rs, &t, &[6; 16], 50).is_none());
}

#[test]
fn the_rfc9202_cnf_identity_names_the_stored_token() {
    let keys = keys();
    let rs = RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    // RFC 9202 §3.3.2's example kid
    let kid = [0x3D, 0x02, 0x78, 0x33, 0xFC, 0x62, 0x67, 0xCE];
    post(&mut rs.borrow_mut(), &token(&sym(&kid, 3), 1, |_| {})).unwrap();
    let identity = [
        0xA1, 0x08, 0xA1, 0x01, 0xA2, 0x01, 0x04, 0x02, 0x48, 0x3D, 0x02, 0x78, 0x33, 0xFC, 0x62,
        0x67, 0xCE,
    ];
    let (proven, h) = handshake(&rs, &identity, &[3; 16], 60).expect("handshake");
    let mut az: Authorizer<u64> = Authorizer::new();
    az.on_connected(h, Proof::Psk(&proven), &mut rs.borrow_mut())
        .unwrap();
    assert_eq!(az.token_kid(&h), Some(&kid[..]));
    // the same form with an unknown kid is refused, never posted as a token
    let mut other = identity;
    other[16] ^= 1;
    assert!(handshake(&rs, &other, &[3; 16], 70).is_none());
    assert_eq!(rs.borrow().store().len(), 1);
}

#[test]
fn the_issuer_emits_low_s_es256_signatures() {
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let key = CoseKey::Es256Signing(sk.clone());
    // n / 2 for P-256, big-endian
    let half_n: [u8; 32] = [
        0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31,
        0x92, 0xA8,
    ];
    let verify = [KeyEntry::new(CoseKey::Es256(*sk.verifying_key()))];
    for i in 0u8..32 {
        let payload = [0xA1, 0x07, 0x41, i]; // {7: h'i'}
        let mut t = [0u8; 256];
        let m = issuer::sign1(&key, None, &payload, &mut t).unwrap();
        // COSE_Sign1 ends with the 64-byte signature r || s
        let s = &t[m - 32..m];
        assert!(s <= &half_n[..], "signature {i} has a high S");
        // and it verifies
        let mut tok = t[..m].to_vec();
        cssf_auth::Token::new(&mut tok, cssf_auth::Limits::default())
            .verify(&verify[..], &[])
            .unwrap();
    }
}

/// Trusts one key.
#[cfg(feature = "dtls-rpk")]
struct Pin(p256::PublicKey);

#[cfg(feature = "dtls-rpk")]
impl cssf_dtls::TrustStore<u8> for Pin {
    fn is_trusted(&self, _: &cssf_dtls::PeerContext<'_, u8>, key: &p256::PublicKey) -> bool {
        *key == self.0
    }
}

/// RFC 9202 §3.2: the client authenticates with the raw public key its
/// token names as PoP key; the server trusts that key only while the token
/// lives, and the session gets the token's scope.
#[cfg(feature = "dtls-rpk")]
#[test]
fn a_raw_public_key_pop_token_authenticates_the_client() {
    let keys = keys();
    let rs: RefCell<AuthzInfo<'_, [KeyEntry; 1]>> =
        RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: NOW,
        wall: Some(WALL),
    });
    let client_key = p256::ecdsa::SigningKey::from_slice(&[0x21; 32]).unwrap();
    let server_key = p256::ecdsa::SigningKey::from_slice(&[0x22; 32]).unwrap();
    let (x, y) = cssf_auth::pop::coordinates(&(*client_key.verifying_key()).into()).unwrap();
    let run = |seed: u64| -> Option<(Vec<u8>, Vec<u8>)> {
        let mut cfg = cssf_dtls::Config::default();
        cfg.require_client_auth = true;
        let mut server: cssf_dtls::Endpoint<u8, _, _, 2, _> =
            cssf_dtls::Endpoint::with_raw_public_key(
                cfg.clone(),
                SharedTokenPsk::new(&rs, &clock),
                server_key.clone(),
                SharedTokenPsk::new(&rs, &clock),
                SimRng::new(seed),
                NOW,
            )
            .unwrap();
        let mut client = cssf_dtls::Client::with_raw_public_key(
            cfg,
            Some(client_key.clone()),
            Pin((*server_key.verifying_key()).into()),
            2u8,
            SimRng::new(seed + 1),
            NOW,
        )
        .unwrap();
        let mut buf = [0u8; 1500];
        for _ in 0..8 {
            while let Some(t) = client.poll_transmit(NOW, &mut buf).unwrap() {
                let _ = server.handle_datagram(NOW, 1u8, &mut buf[..t.len]);
            }
            while let Some(t) = server.poll_transmit(NOW, &mut buf).unwrap() {
                let _ = client.handle_datagram(NOW, 2u8, &mut buf[..t.len]);
            }
        }
        let h = server.session_handle(&1u8)?;
        match server.peer_identity(h)? {
            Identity::RawPublicKey(k) => {
                let (x, y) = cssf_auth::pop::coordinates(k)?;
                Some((x.to_vec(), y.to_vec()))
            }
            _ => None,
        }
    };
    assert!(run(1).is_none(), "no token yet: the key is not trusted");
    let pop = PopKey::Ec2 {
        kid: Some(Bytes::from_slice(b"rpk").unwrap()),
        x,
        y,
    };
    post(&mut rs.borrow_mut(), &token(&pop, 1, |_| {})).unwrap();
    let (px, py) = run(2).expect("handshake with the token's PoP key");
    let (px, py): ([u8; 32], [u8; 32]) = (px.try_into().unwrap(), py.try_into().unwrap());
    let mut az: Authorizer<u32> = Authorizer::new();
    az.on_connected(1, Proof::PublicKey(&px, &py), &mut rs.borrow_mut())
        .unwrap();
    let mut ask = |m| {
        az.decide(
            &mut rs.borrow_mut(),
            Requester::Session(1),
            m,
            "/a",
            NOW,
            Some(WALL),
        )
    };
    assert_eq!(ask(Method::Get), Verdict::Allow);
    assert_eq!(ask(Method::Put), Verdict::MethodNotAllowed);
}

#[test]
fn a_replaced_token_stays_replaced_after_a_restart_with_the_replay_cache_restored() {
    let keys = keys();
    for iat in [Some(100), None] {
        let wide = token(&sym(b"k", 1), 1 | 4, |c| {
            c.cti = Some(b"wide");
            c.iat = iat;
        });
        let narrow = token(&sym(b"k", 1), 1, |c| {
            c.cti = Some(b"narrow");
            c.iat = iat;
        });
        let mut rs: AuthzInfo<'_, _, _, 4, 8> = AuthzInfo::new(Config::new(AUD), &keys);
        post(&mut rs, &wide).unwrap();
        post(&mut rs, &narrow).unwrap();
        assert_eq!(post(&mut rs, &wide), Err(Error::Replay));
        let saved: Vec<_> = rs.replay_entries().collect();
        assert_eq!(saved.len(), 2);
        // The restart: the stored (narrow) token posted again, then the
        // saved ctis.
        let mut rs: AuthzInfo<'_, _, _, 4, 8> = AuthzInfo::new(Config::new(AUD), &keys);
        post(&mut rs, &narrow).unwrap();
        for e in &saved {
            rs.restore_replay_entry(NOW, Some(WALL), *e).unwrap();
        }
        assert_eq!(rs.replay_entries().count(), 2, "no duplicate entries");
        assert_eq!(
            post(&mut rs, &wide),
            Err(Error::Replay),
            "iat {iat:?}: the replaced wide token came back after the restart"
        );
        assert_eq!(
            rs.authorize(NOW, Some(WALL), Some(b"k"), Method::Put, "/a"),
            Decision::Deny(DenyReason::MethodNotAllowed),
        );
        // An entry whose token has expired is not restored.
        let mut rs: AuthzInfo<'_, _, _, 4, 8> = AuthzInfo::new(Config::new(AUD), &keys);
        for e in &saved {
            rs.restore_replay_entry(NOW, Some(20_000), *e).unwrap();
        }
        assert_eq!(rs.replay_entries().count(), 0);
    }
}
