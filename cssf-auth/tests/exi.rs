//! RFC 9200 §5.10.3: tokens with `exi` carry a Sequence Number in their
//! `cti`; the RS keeps, per issuer, the highest Sequence Number of an expired
//! `exi` token and refuses tokens at or below it, and keeps that state across
//! a restart. Also the `nbf` decision for devices without a wall clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;

use cssf_auth::exi::{CtiFormat, SeqEncoding};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Error, KeyEntry, PopKey};

const AUD: &str = "coaps://rs1.example";
const HMAC_K: [u8; 32] = [0x11; 32];
const CREATED: u8 = 0x41;
const S: fn(u64) -> Duration = Duration::from_secs;

fn keys() -> Vec<KeyEntry> {
    vec![KeyEntry::with_kid(
        b"as-hmac",
        CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap(),
    )
    .unwrap()]
}

struct T<'a> {
    iss: Option<&'a str>,
    cti: &'a [u8],
    exi: Option<u64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    kid: &'a [u8],
}

fn token(t: &T<'_>) -> Vec<u8> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(t.kid).unwrap()),
        k: Bytes::from_slice(&[0x55; 16]).unwrap(),
    };
    let mut aif = [0u8; 32];
    let an = Aif::emit(&[("/sensors/temp", 1)], &mut aif).unwrap();
    let mut p = [0u8; 512];
    let n = ClaimsSet {
        iss: t.iss,
        aud: Some(AUD),
        exi: t.exi,
        nbf: t.nbf,
        exp: t.exp,
        cti: Some(t.cti),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..an])),
        ..Default::default()
    }
    .emit(&mut p)
    .unwrap();
    let key = CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap();
    let mut out = [0u8; 1024];
    let m = issuer::mac0(&key, Some(b"as-hmac"), &p[..n], &mut out).unwrap();
    out[..m].to_vec()
}

fn exi_token(iss: Option<&str>, seq: u64, exi: u64, kid: &[u8]) -> Vec<u8> {
    token(&T {
        iss,
        cti: &seq.to_be_bytes(),
        exi: Some(exi),
        nbf: None,
        exp: None,
        kid,
    })
}

type Rs<'k> = AuthzInfo<'k, [KeyEntry]>;

fn post(rs: &mut Rs<'_>, now: Duration, tok: &[u8]) -> (u8, Option<Error>) {
    let mut t = tok.to_vec();
    let r = rs.post(now, None, &mut t, &mut [0u8; 8]);
    (r.code, r.error)
}

#[test]
fn same_sequence_number_while_live_is_a_replay_and_does_not_extend_life() {
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    let t5 = exi_token(Some("as"), 5, 10, b"k5");
    assert_eq!(post(&mut rs, S(0), &t5).0, CREATED);
    assert_eq!(post(&mut rs, S(3), &t5), (0x81, Some(Error::Replay)));
    // the deadline stays the first one
    assert_eq!(rs.poll_timeout(), Some(S(10)));
}

#[test]
fn lower_or_equal_sequence_number_than_an_expired_token_is_refused() {
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    assert_eq!(
        post(&mut rs, S(0), &exi_token(Some("as"), 5, 10, b"k5")).0,
        CREATED
    );
    rs.handle_timeout(S(10), None);
    assert!(rs.store().is_empty());
    // the expired token again, and an older unseen one: both expired (4.01)
    assert_eq!(
        post(&mut rs, S(11), &exi_token(Some("as"), 5, 10, b"k5")),
        (0x81, Some(Error::Expired))
    );
    assert_eq!(
        post(&mut rs, S(11), &exi_token(Some("as"), 4, 10, b"k4")),
        (0x81, Some(Error::Expired))
    );
    // a higher number is fine
    assert_eq!(
        post(&mut rs, S(11), &exi_token(Some("as"), 6, 10, b"k6")).0,
        CREATED
    );
}

#[test]
fn expiry_is_noticed_without_handle_timeout() {
    // The RS learns that number 5 expired when the next token arrives after
    // its deadline, even if the caller never ran handle_timeout.
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    assert_eq!(
        post(&mut rs, S(0), &exi_token(None, 5, 10, b"k5")).0,
        CREATED
    );
    assert_eq!(
        post(&mut rs, S(50), &exi_token(None, 5, 10, b"k5")),
        (0x81, Some(Error::Expired))
    );
}

#[test]
fn sequence_numbers_are_per_issuer() {
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    assert_eq!(
        post(&mut rs, S(0), &exi_token(Some("as-a"), 100, 1, b"a")).0,
        CREATED
    );
    rs.handle_timeout(S(2), None);
    assert_eq!(
        post(&mut rs, S(2), &exi_token(Some("as-a"), 7, 10, b"a7")).1,
        Some(Error::Expired)
    );
    assert_eq!(
        post(&mut rs, S(2), &exi_token(Some("as-b"), 7, 10, b"b7")).0,
        CREATED
    );
}

#[test]
fn issuer_table_is_bounded() {
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry], cssf_auth::aif::NoTextScopes, 8> =
        AuthzInfo::new(Config::new(AUD), &keys[..]);
    let names = ["a", "b", "c", "d", "e"];
    for (i, n) in names.iter().enumerate() {
        let mut t = exi_token(Some(n), 1, 10, n.as_bytes()).to_vec();
        let r = rs.post(S(0), None, &mut t, &mut []);
        if i < cssf_auth::authz_info::EXI_ISSUERS {
            assert_eq!(r.code, CREATED, "{n}: {r:?}");
        } else {
            assert_eq!((r.code, r.error), (0xA3, Some(Error::ExiStateFull)));
        }
    }
    // tokens without exi do not need a slot
    let t = token(&T {
        iss: Some("f"),
        cti: b"plain",
        exi: None,
        nbf: None,
        exp: Some(2_000_000_000),
        kid: b"f",
    });
    let mut tt = t.clone();
    assert_eq!(
        rs.post(S(0), Some(1_700_000_000), &mut tt, &mut []).code,
        CREATED
    );
}

#[test]
fn cti_prefix_and_decimal_sequence_numbers() {
    let keys = keys();
    let mut cfg = Config::new(AUD);
    cfg.exi_cti = CtiFormat {
        prefix: b"rs1",
        encoding: SeqEncoding::Decimal,
    };
    let mut rs: Rs<'_> = AuthzInfo::new(cfg, &keys[..]);
    let mk = |cti: &[u8], kid: &[u8]| {
        token(&T {
            iss: None,
            cti,
            exi: Some(5),
            nbf: None,
            exp: None,
            kid,
        })
    };
    assert_eq!(post(&mut rs, S(0), &mk(b"rs142", b"x")).0, CREATED);
    rs.handle_timeout(S(5), None);
    assert_eq!(
        post(&mut rs, S(6), &mk(b"rs141", b"y")).1,
        Some(Error::Expired)
    );
    // a cti that is not prefix ‖ number is a bad request (4.00)
    assert_eq!(
        post(&mut rs, S(6), &mk(b"rs2-43", b"y")),
        (0x80, Some(Error::Malformed))
    );
    assert_eq!(post(&mut rs, S(6), &mk(b"rs143", b"y")).0, CREATED);
}

#[test]
fn restart_with_saved_watermarks_refuses_tokens_seen_before() {
    let keys = keys();
    let live = exi_token(Some("as"), 9, 3600, b"live");
    let saved: Vec<_> = {
        let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
        assert_eq!(
            post(&mut rs, S(0), &exi_token(Some("as"), 8, 1, b"old")).0,
            CREATED
        );
        assert_eq!(post(&mut rs, S(0), &live).0, CREATED);
        rs.exi_watermarks().collect()
    };
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].expired_up_to, 9);
    // After the restart the token store is empty; the live token must not
    // get a second, fresh lifetime.
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    for w in &saved {
        rs.restore_exi_watermark(*w).unwrap();
    }
    assert_eq!(post(&mut rs, S(0), &live), (0x81, Some(Error::Expired)));
    assert_eq!(
        post(&mut rs, S(0), &exi_token(Some("as"), 10, 60, b"new")).0,
        CREATED
    );
}

#[test]
fn clockless_device_nbf_without_exi_is_refused() {
    // RFC 9200 §5.10.3: a device without a synchronized clock cannot check
    // exp / nbf; it relies on exi. A token whose only time claims are nbf
    // (and exp) cannot be validated there and is refused.
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    let t = token(&T {
        iss: None,
        cti: b"n1",
        exi: None,
        nbf: Some(1_700_000_000),
        exp: Some(1_700_003_600),
        kid: b"n",
    });
    assert_eq!(post(&mut rs, S(0), &t), (0x81, Some(Error::NoLifetime)));
    let only_nbf = token(&T {
        iss: None,
        cti: b"n2",
        exi: None,
        nbf: Some(1_700_000_000),
        exp: None,
        kid: b"n",
    });
    assert_eq!(
        post(&mut rs, S(0), &only_nbf),
        (0x81, Some(Error::NoLifetime))
    );
}

#[test]
fn clockless_device_with_exi_relies_on_exi_and_leaves_nbf_unchecked() {
    // Documented decision: with exi the device has a lifetime it can check
    // (from reception, on its monotonic clock); nbf needs a wall clock it
    // does not have, so it is not checked. With a clock, nbf is enforced.
    let keys = keys();
    let mut rs: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    let t = token(&T {
        iss: None,
        cti: &[1],
        exi: Some(60),
        nbf: Some(1_700_000_000),
        exp: None,
        kid: b"e",
    });
    assert_eq!(post(&mut rs, S(0), &t).0, CREATED);
    let mut rs2: Rs<'_> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    let mut tt = t.clone();
    let r = rs2.post(S(0), Some(1_600_000_000), &mut tt, &mut []);
    assert_eq!((r.code, r.error), (0x81, Some(Error::NotYetValid)));
}
