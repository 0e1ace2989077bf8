//! Feature `log`: token decisions (accepted, rejected with the reason) and
//! request decisions are logged through the `log` crate, without the key.
#![cfg(all(feature = "log", feature = "issuer"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;
use cssf_netsim::logs;

use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Decision, KeyEntry, Method, PopKey,
};

const AUD: &str = "coaps://rs1.example";
const HMAC_K: [u8; 32] = [0x11; 32];

fn token(cti: &[u8], mac_key: &[u8; 32]) -> Vec<u8> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"k1").unwrap()),
        k: Bytes::from_slice(&[0x55; 16]).unwrap(),
    };
    let mut aif = [0u8; 32];
    let an = Aif::emit(&[("/sensors/temp", 1)], &mut aif).unwrap();
    let mut p = [0u8; 512];
    let n = ClaimsSet {
        aud: Some(AUD),
        cti: Some(cti),
        exp: Some(2_000_000_000),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..an])),
        ..Default::default()
    }
    .emit(&mut p)
    .unwrap();
    let key = CoseKey::hmac(Algorithm::Hmac256, mac_key).unwrap();
    let mut out = [0u8; 1024];
    let m = issuer::mac0(&key, Some(b"as-hmac"), &p[..n], &mut out).unwrap();
    out[..m].to_vec()
}

/// Fails unless a `cssf_auth::` message at `level` contains `needle`.
fn expect_logged(level: log::Level, needle: &str) {
    logs::expect(level, "cssf_auth::", needle);
}

#[test]
fn token_and_request_decisions_are_logged() {
    logs::capture();
    let keys = [KeyEntry::with_kid(
        b"as-hmac",
        CoseKey::hmac(Algorithm::Hmac256, &HMAC_K).unwrap(),
    )
    .unwrap()];
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    let now = Duration::from_secs(1);
    // A token MACed with another key, then a good one, then its replay.
    let mut forged = token(b"c1", &[0x22; 32]);
    assert_eq!(
        rs.post(now, Some(1_700_000_000), &mut forged, &mut [0; 8])
            .code,
        0x81
    );
    expect_logged(log::Level::Debug, "token rejected: ");
    let good = token(b"c2", &HMAC_K);
    let r = rs.post(now, Some(1_700_000_000), &mut good.clone(), &mut [0; 8]);
    assert_eq!(r.code, 0x41, "{:?}", r.error);
    expect_logged(log::Level::Info, "token accepted");
    assert_eq!(
        rs.post(now, Some(1_700_000_000), &mut good.clone(), &mut [0; 8])
            .code,
        0x81
    );
    expect_logged(log::Level::Debug, "token rejected: Replay");
    // Request decisions, with the reason of a refusal.
    assert_eq!(
        rs.authorize(
            now,
            Some(1_700_000_000),
            Some(b"k1"),
            Method::Get,
            "/sensors/temp"
        ),
        Decision::Allow
    );
    expect_logged(
        log::Level::Trace,
        "request allowed by its token: Get \"/sensors/temp\"",
    );
    assert!(matches!(
        rs.authorize(
            now,
            Some(1_700_000_000),
            Some(b"k1"),
            Method::Put,
            "/actuators/led"
        ),
        Decision::Deny(_)
    ));
    expect_logged(
        log::Level::Debug,
        "request denied: Put \"/actuators/led\": ",
    );
    // A path with a newline cannot forge a log line: it is escaped.
    let _ = rs.authorize(
        now,
        Some(1_700_000_000),
        Some(b"k1"),
        Method::Get,
        "/a\nINFO forged",
    );
    expect_logged(
        log::Level::Debug,
        "request denied: Get \"/a\\nINFO forged\"",
    );
    // Neither the PoP key nor the AS key appears in any message (bytes or
    // hex), and no message spans two lines.
    let lines = logs::lines();
    for (_, _, m) in lines.iter() {
        assert!(!m.contains('\n'), "{m}");
        for secret in ["85, 85", "5555", "17, 17", "1111"] {
            assert!(!m.contains(secret), "{m}");
        }
    }
}
