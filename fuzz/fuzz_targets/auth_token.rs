//! Token verification and `/authz-info` on arbitrary bytes: must never
//! panic, loop or grow memory. Keys of every supported algorithm are
//! configured so every verification path is reachable.
#![no_main]

use core::time::Duration;

use cssf_auth::{Algorithm, AuthzInfo, Config, CoseKey, KeyEntry, Limits};
use libfuzzer_sys::fuzz_target;

static KEYS: std::sync::OnceLock<[KeyEntry; 5]> = std::sync::OnceLock::new();

fn keys() -> [KeyEntry; 5] {
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    [
        KeyEntry::new(CoseKey::Es256(*sk.verifying_key())),
        KeyEntry::new(CoseKey::hmac(Algorithm::Hmac256, &[1; 32]).unwrap()),
        KeyEntry::new(CoseKey::hmac(Algorithm::Hmac256_64, &[2; 32]).unwrap()),
        KeyEntry::new(CoseKey::aead(Algorithm::AesCcm16_64_128, &[3; 16]).unwrap()),
        KeyEntry::new(CoseKey::aead(Algorithm::ChaCha20Poly1305, &[4; 32]).unwrap()),
    ]
}

fuzz_target!(|data: &[u8]| {
    let keys = KEYS.get_or_init(keys);
    let mut buf = data.to_vec();
    let _ = cssf_auth::cwt::verify(&mut buf, &keys[..], Limits::default());
    let _ = cssf_auth::cose::Message::parse(data, &Limits::default());
    let _ = cssf_auth::PopKey::parse_cose_key(data, 8);
    let _ = cssf_auth::Aif::parse(data);
    if let Ok(c) = cssf_auth::Claims::parse(data, &Limits::default()) {
        let v = cssf_auth::Validation {
            audience: "rs",
            leeway_secs: 5,
        };
        let _ = c.validate(&v, Duration::from_secs(1), Some(1_700_000_000));
        if let Some(cnf) = &c.cnf {
            let _ = cnf.resolve(&keys[..], &Limits::default());
        }
    }
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new("rs"), &keys[..]);
    let mut buf = data.to_vec();
    let mut out = [0u8; 8];
    let _ = rs.post(
        Duration::from_secs(1),
        Some(1_700_000_000),
        &mut buf,
        &mut out,
    );
    while rs.poll_event().is_some() {}
});
