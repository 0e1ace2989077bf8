//! Every way a token or request must be refused, one test each, through the
//! public `/authz-info` API, plus the accepted path and accounting events.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use core::time::Duration;

use cssf_auth::accounting::AuthEvent;
use cssf_auth::cose::mac0::mac_structure_hmac;
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Decision, DenyReason, Error, KeyEntry,
    Method, PopKey,
};

const AUD: &str = "coaps://rs1.example";
const WALL: u64 = 1_700_000_000;
const HMAC_K: [u8; 32] = [0x11; 32];

fn keys() -> Vec<KeyEntry> {
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    vec![
        KeyEntry::with_kid(
            b"as-hmac",
            CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap(),
        )
        .unwrap(),
        KeyEntry::with_kid(b"as-es256", CoseKey::Es256(*sk.verifying_key())).unwrap(),
        KeyEntry::with_kid(
            b"rs-ccm",
            CoseKey::aead(Algorithm::AesCcm16_64_128, &[0x33; 16]).unwrap(),
        )
        .unwrap(),
    ]
}

fn signing_key() -> CoseKey {
    CoseKey::Es256Signing(p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap())
}

fn pop() -> PopKey {
    PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"client-kid").unwrap()),
        k: Bytes::from_slice(&[0x55; 16]).unwrap(),
    }
}

fn aif() -> Vec<u8> {
    let mut b = [0u8; 64];
    let n = Aif::emit(&[("/sensors/temp", 1), ("/actuators/led", 1 | 4)], &mut b).unwrap();
    b[..n].to_vec()
}

fn claims_with(f: impl FnOnce(&mut ClaimsSet<'_>), out: &mut [u8]) -> usize {
    let pop = pop();
    let aif = aif();
    let mut c = ClaimsSet {
        iss: Some("as"),
        aud: Some(AUD),
        exp: Some(WALL as i64 + 3600),
        iat: Some(WALL as i64),
        cti: Some(b"cti-1"),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif)),
        ..Default::default()
    };
    f(&mut c);
    c.emit(out).unwrap()
}

fn mac_token(f: impl FnOnce(&mut ClaimsSet<'_>)) -> Vec<u8> {
    let mut p = [0u8; 4096];
    let n = claims_with(f, &mut p);
    let mut t = [0u8; 4200];
    let key = CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap();
    let m = issuer::mac0(&key, Some(b"as-hmac"), &p[..n], &mut t).unwrap();
    t[..m].to_vec()
}

/// Posts `token`; returns the response and the events.
fn post(rs: &mut AuthzInfo<'_, [KeyEntry]>, token: &[u8]) -> (cssf_auth::Response, Vec<AuthEvent>) {
    let mut tok = token.to_vec();
    let mut out = [0u8; 16];
    let r = rs.post(Duration::from_secs(5), Some(WALL), &mut tok, &mut out);
    let mut evs = Vec::new();
    while let Some(e) = rs.poll_event() {
        evs.push(e);
    }
    (r, evs)
}

fn expect_reject(token: &[u8], err: Error) {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let (r, evs) = post(&mut rs, token);
    assert_eq!(r.error, Some(err), "expected {err:?}, got {r:?}");
    assert_eq!(r.code, err.code());
    assert_eq!(evs, vec![AuthEvent::TokenRejected { reason: err }]);
    assert_eq!(rs.stats().tokens_rejected, 1);
    assert!(rs.store().is_empty());
}

/// A Mac0 with hand-built headers and a correct tag.
fn custom_mac0(protected: &[u8], unprotected: &[u8], payload: &[u8]) -> Vec<u8> {
    let tag = mac_structure_hmac(&HMAC_K, protected, &[], payload).unwrap();
    let mut t = vec![0xd1, 0x84];
    cbor_bytes(&mut t, protected);
    t.extend_from_slice(unprotected);
    cbor_bytes(&mut t, payload);
    cbor_bytes(&mut t, &tag);
    t
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() < 24 {
        out.push(0x40 | b.len() as u8);
    } else if b.len() < 256 {
        out.extend_from_slice(&[0x58, b.len() as u8]);
    } else {
        out.extend_from_slice(&[0x59, (b.len() >> 8) as u8, b.len() as u8]);
    }
    out.extend_from_slice(b);
}

fn good_payload() -> Vec<u8> {
    let mut p = [0u8; 512];
    let n = claims_with(|_| {}, &mut p);
    p[..n].to_vec()
}

#[test]
fn accepts_and_authorizes_with_accounting() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let (r, evs) = post(&mut rs, &mac_token(|_| {}));
    assert_eq!(r.code, 0x41, "{r:?}");
    assert_eq!(
        evs,
        vec![AuthEvent::TokenAccepted {
            kid: Bytes::from_slice(b"client-kid").unwrap(),
            replaced: false
        }]
    );
    let now = Duration::from_secs(6);
    assert_eq!(
        rs.authorize(
            now,
            Some(WALL),
            Some(b"client-kid"),
            Method::Get,
            "/sensors/temp"
        ),
        Decision::Allow
    );
    assert_eq!(
        rs.authorize(
            now,
            Some(WALL),
            Some(b"client-kid"),
            Method::Put,
            "/actuators/led"
        ),
        Decision::Allow
    );
    assert!(matches!(
        rs.poll_event(),
        Some(AuthEvent::RequestAllowed {
            method: Method::Get,
            ..
        })
    ));
    assert_eq!(rs.stats().requests_allowed, 2);
    // the PoP key is retrievable for the DTLS handshake
    assert_eq!(
        rs.store().get(b"client-kid").unwrap().pop.symmetric(),
        Some(&[0x55; 16][..])
    );
}

#[test]
fn es256_and_encrypt0_tokens_and_encrypted_pop_key() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    // ES256 Sign1 with an Encrypted_COSE_Key cnf
    let rs_key = CoseKey::aead(Algorithm::AesCcm16_64_128, &[0x33; 16]).unwrap();
    let pop = pop();
    let aif = aif();
    let c = ClaimsSet {
        aud: Some(AUD),
        exi: Some(60),
        cti: Some(b"cti-es"),
        cnf: Some(CnfOut::Encrypted {
            pop: &pop,
            key: &rs_key,
            kid: Some(b"rs-ccm"),
            iv: &[9; 13],
        }),
        scope: Some(ScopeOut::AifArray(&aif)),
        ..Default::default()
    };
    let mut p = [0u8; 512];
    let n = c.emit(&mut p).unwrap();
    let mut t = [0u8; 1024];
    let m = issuer::sign1(&signing_key(), Some(b"as-es256"), &p[..n], &mut t).unwrap();
    let (r, _) = post(&mut rs, &t[..m]);
    assert_eq!(r.code, 0x41, "{r:?}");
    assert_eq!(rs.store().get(b"client-kid").unwrap().pop, pop);
    // exi: expires 60 s after reception (t = 5 s)
    assert_eq!(rs.poll_timeout(), Some(Duration::from_secs(65)));
    assert_eq!(
        rs.authorize(
            Duration::from_secs(66),
            None,
            Some(b"client-kid"),
            Method::Get,
            "/sensors/temp"
        ),
        Decision::Deny(DenyReason::Expired)
    );
    // Encrypt0 token (a fresh RS: the live `exi` token above cannot be
    // ordered against an `iat` one, so it would not be replaced)
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let m = issuer::encrypt0(&rs_key, Some(b"rs-ccm"), &[7; 13], &good_payload(), &mut t).unwrap();
    let (r, _) = post(&mut rs, &t[..m]);
    assert_eq!(r.code, 0x41, "{r:?}");
}

#[test]
fn wrong_audience() {
    expect_reject(
        &mac_token(|c| c.aud = Some("coaps://other.example")),
        Error::WrongAudience,
    );
}

#[test]
fn expired() {
    expect_reject(
        &mac_token(|c| c.exp = Some(WALL as i64 - 1)),
        Error::Expired,
    );
}

#[test]
fn not_yet_valid() {
    expect_reject(
        &mac_token(|c| c.nbf = Some(WALL as i64 + 10)),
        Error::NotYetValid,
    );
}

#[test]
fn exi_without_cti() {
    expect_reject(
        &mac_token(|c| {
            c.exp = None;
            c.exi = Some(60);
            c.cti = None;
        }),
        Error::MissingClaim,
    );
}

#[test]
fn unknown_kid() {
    let mut p = [0u8; 512];
    let n = claims_with(|_| {}, &mut p);
    let mut t = [0u8; 1024];
    let key = CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap();
    let m = issuer::mac0(&key, Some(b"nobody"), &p[..n], &mut t).unwrap();
    expect_reject(&t[..m], Error::UnknownKey);
}

#[test]
fn tampered_payload() {
    let mut t = mac_token(|_| {});
    let pos = t
        .windows(AUD.len())
        .position(|w| w == AUD.as_bytes())
        .unwrap();
    t[pos + 8] ^= 1;
    expect_reject(&t, Error::VerificationFailed);
}

#[test]
fn truncated_tag() {
    // Same token with the 32-byte tag cut to 31 bytes (re-encoded length).
    let p = good_payload();
    let full = custom_mac0(&[0xa1, 0x01, 0x05], &[0xa0], &p);
    let mut t = full[..full.len() - 34].to_vec();
    t.push(0x58);
    t.push(31);
    t.extend_from_slice(&full[full.len() - 32..full.len() - 1]);
    expect_reject(&t, Error::VerificationFailed);
    // and the whole message truncated mid-tag is malformed
    expect_reject(&full[..full.len() - 5], Error::Malformed);
}

#[test]
fn alg_in_unprotected_header() {
    let p = good_payload();
    // protected {}, unprotected {1: 5}, a valid tag over that
    expect_reject(
        &custom_mac0(&[], &[0xa1, 0x01, 0x05], &p),
        Error::AlgNotProtected,
    );
    // protected {1: 5} and unprotected {1: 5}: duplicate, alg unprotected
    let t = custom_mac0(&[0xa1, 0x01, 0x05], &[0xa1, 0x01, 0x05], &p);
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    assert!(post(&mut rs, &t).0.error.is_some());
}

#[test]
fn alg_confusion_hmac_keyed_with_public_key() {
    // The attacker knows the AS's ES256 public key and MACs a token with its
    // SEC1 bytes as the HMAC key, naming the ES256 key's kid.
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let pubkey = sk.verifying_key().to_encoded_point(false);
    let evil = CoseKey::hmac(Algorithm::Hmac256, &pubkey.as_bytes()[..64]).unwrap();
    let mut p = [0u8; 512];
    let n = claims_with(|_| {}, &mut p);
    let mut t = [0u8; 1024];
    let m = issuer::mac0(&evil, Some(b"as-es256"), &p[..n], &mut t).unwrap();
    expect_reject(&t[..m], Error::UnknownKey);
    // and tagged as a Sign1 (18) while saying alg HMAC: refused outright
    let mut t2 = t[..m].to_vec();
    t2[0] = 0xd2;
    expect_reject(&t2, Error::UnsupportedAlgorithm);
}

#[test]
fn unknown_crit() {
    let p = good_payload();
    // protected {1: 5, 2: [99], 99: 0}
    let prot = [0xa3, 0x01, 0x05, 0x02, 0x81, 0x18, 0x63, 0x18, 0x63, 0x00];
    expect_reject(&custom_mac0(&prot, &[0xa0], &p), Error::UnknownCritical);
    // the same message without crit verifies (the extension is then ignored)
    let prot_ok = [0xa2, 0x01, 0x05, 0x18, 0x63, 0x00];
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    assert_eq!(
        post(&mut rs, &custom_mac0(&prot_ok, &[0xa0], &p)).0.code,
        0x41
    );
}

#[test]
fn replayed_cti() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let t = mac_token(|_| {});
    assert_eq!(post(&mut rs, &t).0.code, 0x41);
    let (r, evs) = post(&mut rs, &t);
    assert_eq!(r.error, Some(Error::Replay));
    assert_eq!(r.code, 0x81);
    assert_eq!(
        evs,
        vec![AuthEvent::TokenRejected {
            reason: Error::Replay
        }]
    );
}

#[test]
fn scope_escalation() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    assert_eq!(post(&mut rs, &mac_token(|_| {})).0.code, 0x41);
    let now = Duration::from_secs(6);
    let kid = Some(&b"client-kid"[..]);
    // method outside the scope
    let d = rs.authorize(now, Some(WALL), kid, Method::Put, "/sensors/temp");
    assert_eq!(d, Decision::Deny(DenyReason::MethodNotAllowed));
    assert_eq!(DenyReason::MethodNotAllowed.code(), 0x85);
    assert_eq!(
        rs.authorize(now, Some(WALL), kid, Method::Delete, "/actuators/led"),
        Decision::Deny(DenyReason::MethodNotAllowed)
    );
    // path outside the scope (prefixes and parents do not match)
    assert_eq!(
        rs.authorize(now, Some(WALL), kid, Method::Get, "/sensors"),
        Decision::Deny(DenyReason::PathNotInScope)
    );
    assert_eq!(
        rs.authorize(now, Some(WALL), kid, Method::Get, "/sensors/temp/x"),
        Decision::Deny(DenyReason::PathNotInScope)
    );
    // another client's kid / no token: 4.01 with creation hints
    let d = rs.authorize(
        now,
        Some(WALL),
        Some(b"other"),
        Method::Get,
        "/sensors/temp",
    );
    assert_eq!(d, Decision::Deny(DenyReason::NoToken));
    let mut hints = [0u8; 64];
    let n = rs
        .creation_hints(Some(&[1, 2, 3, 4]), None, &mut hints)
        .unwrap();
    assert!(n > 4 && hints[0] == 0xa2);
    let mut denied = 0;
    while let Some(e) = rs.poll_event() {
        if matches!(e, AuthEvent::RequestDenied { .. }) {
            denied += 1;
        }
    }
    assert_eq!(denied, 5);
}

#[test]
fn oversized_token() {
    let big = "x".repeat(2000);
    let t = mac_token(|c| c.sub = Some(Box::leak(big.into_boxed_str())));
    expect_reject(&t, Error::TooLarge);
}

#[test]
fn deeply_nested_cbor() {
    // A claims set with an unknown claim nested 40 levels deep, correctly MACed.
    let mut p = good_payload();
    p[0] += 1; // one more map entry
    p.extend_from_slice(&[0x18, 0x64]); // key 100
    p.extend_from_slice(&[0x81; 40]);
    p.push(0x00);
    expect_reject(
        &custom_mac0(&[0xa1, 0x01, 0x05], &[0xa0], &p),
        Error::TooDeep,
    );
    // deep nesting in the unprotected header, correctly MACed
    let mut unprot = vec![0xa1, 0x18, 0x63];
    unprot.extend_from_slice(&[0x81; 40]);
    unprot.push(0x00);
    let p = good_payload();
    expect_reject(
        &custom_mac0(&[0xa1, 0x01, 0x05], &unprot, &p),
        Error::TooDeep,
    );
    // a bare deeply nested blob is not a COSE message: refused on its first
    // element, without descending
    let mut blob = vec![0x81u8; 500];
    blob.push(0);
    expect_reject(&blob, Error::Malformed);
}

#[test]
fn garbage_never_panics() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let good = mac_token(|_| {});
    for cut in 0..good.len() {
        let (r, _) = post(&mut rs, &good[..cut]);
        assert_ne!(r.code, 0x41);
    }
    for i in 0..good.len() {
        let mut t = good.clone();
        t[i] ^= 0x80;
        let (r, _) = post(&mut rs, &t);
        assert_ne!(r.code, 0x41, "bit flip at {i} accepted");
    }
}

struct ReadOnly;

impl cssf_auth::ScopeMapper for ReadOnly {
    fn allows(&self, scope: &str, method: Method, path: &str) -> bool {
        scope.split(' ').any(|s| s == "read")
            && method == Method::Get
            && path.starts_with("/sensors/")
    }
}

#[test]
fn text_scopes_through_the_caller_mapper() {
    let keys = keys();
    let t = mac_token(|c| c.scope = Some(ScopeOut::Text("read calibrate")));
    // the default mapper refuses text scopes
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    assert_eq!(post(&mut rs, &t).0.code, 0x41);
    let now = Duration::from_secs(6);
    let kid = Some(&b"client-kid"[..]);
    assert_ne!(
        rs.authorize(now, Some(WALL), kid, Method::Get, "/sensors/temp"),
        Decision::Allow
    );
    // a caller mapper grants what it says
    let mut rs: AuthzInfo<'_, [KeyEntry], ReadOnly> =
        AuthzInfo::with_mapper(Config::new(AUD), &keys[..], ReadOnly);
    let mut tok = t.clone();
    assert_eq!(
        rs.post(Duration::from_secs(5), Some(WALL), &mut tok, &mut [])
            .code,
        0x41
    );
    assert_eq!(
        rs.authorize(now, Some(WALL), kid, Method::Get, "/sensors/temp"),
        Decision::Allow
    );
    assert_ne!(
        rs.authorize(now, Some(WALL), kid, Method::Put, "/sensors/temp"),
        Decision::Allow
    );
    assert_ne!(
        rs.authorize(now, Some(WALL), kid, Method::Get, "/actuators/led"),
        Decision::Allow
    );
}

#[test]
fn store_full_then_expired_token_evicted() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry], cssf_auth::aif::NoTextScopes, 1> =
        AuthzInfo::new(Config::new(AUD), &keys[..]);
    let pop2 = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"second").unwrap()),
        k: Bytes::from_slice(&[1; 16]).unwrap(),
    };
    let mut tok = mac_token(|c| {
        c.exp = None;
        c.exi = Some(10);
    });
    let mut out = [0u8; 8];
    assert_eq!(
        rs.post(Duration::from_secs(0), None, &mut tok, &mut out)
            .code,
        0x41
    );
    let mut p = [0u8; 512];
    let aif = aif();
    let n = ClaimsSet {
        aud: Some(AUD),
        exi: Some(10),
        cti: Some(b"cti-2"),
        cnf: Some(CnfOut::Key(&pop2)),
        scope: Some(ScopeOut::AifBytes(&aif)),
        ..Default::default()
    }
    .emit(&mut p)
    .unwrap();
    let key = CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap();
    let mut t = [0u8; 1024];
    let m = issuer::mac0(&key, Some(b"as-hmac"), &p[..n], &mut t).unwrap();
    let mut t1 = t[..m].to_vec();
    // The stored token is in use (a request was decided with it): it is
    // not displaced for the new one.
    let _ = rs.authorize(
        Duration::from_secs(1),
        None,
        Some(b"client-kid"),
        Method::Get,
        "/sensors/temp",
    );
    let r = rs.post(Duration::from_secs(5), None, &mut t1, &mut out);
    assert_eq!((r.code, r.error), (0xA3, Some(Error::StoreFull)));
    let mut t2 = t[..m].to_vec();
    let r = rs.post(Duration::from_secs(11), None, &mut t2, &mut out);
    assert_eq!(r.code, 0x41, "{r:?}");
    let evs: Vec<_> = core::iter::from_fn(|| rs.poll_event()).collect();
    assert!(
        evs.iter()
            .any(|e| matches!(e, AuthEvent::TokenExpired { .. })),
        "{evs:?}"
    );
}

#[test]
fn cwt_tag_61_and_untagged_are_accepted() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let t = mac_token(|_| {});
    let mut tagged61 = vec![0xd8, 0x3d];
    tagged61.extend_from_slice(&t);
    assert_eq!(post(&mut rs, &tagged61).0.code, 0x41);
    let untagged = mac_token(|c| c.cti = Some(b"cti-untagged"))[1..].to_vec();
    assert_eq!(post(&mut rs, &untagged).0.code, 0x41);
    // an unknown outer tag is refused
    let mut t99 = vec![0xd8, 0x63];
    t99.extend_from_slice(&mac_token(|c| c.cti = Some(b"cti-99")));
    let (r, _) = post(&mut rs, &t99);
    assert_eq!(r.error, Some(Error::UnsupportedMessage));
}

#[test]
fn post_zeroizes_the_token_buffer() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let rs_key = CoseKey::aead(Algorithm::AesCcm16_64_128, &[0x33; 16]).unwrap();
    let mut t = [0u8; 1024];
    let m = issuer::encrypt0(&rs_key, Some(b"rs-ccm"), &[7; 13], &good_payload(), &mut t).unwrap();
    let mut tok = t[..m].to_vec();
    let r = rs.post(Duration::from_secs(1), Some(WALL), &mut tok, &mut []);
    assert_eq!(r.code, 0x41);
    assert!(
        tok.iter().all(|b| *b == 0),
        "decrypted claims left in the caller's buffer"
    );
}
