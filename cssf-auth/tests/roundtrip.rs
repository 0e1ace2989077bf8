//! proptest round trips: what the issuer emits, the parsers read back
//! unchanged (AIF scopes, COSE_Keys, whole claims sets through Mac0).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cssf_auth::cwt::{Audience, Scope};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::pop::Cnf;
use cssf_auth::{Aif, Algorithm, Bytes, CoseKey, KeyEntry, Limits, PopKey};
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9]{1,8}){1,3}"
}

proptest! {
    #[test]
    fn aif_round_trip(entries in proptest::collection::vec((path(), 0u64..128), 0..8)) {
        let e: Vec<(&str, u64)> = entries.iter().map(|(p, m)| (p.as_str(), *m)).collect();
        let mut buf = [0u8; 512];
        let n = Aif::emit(&e, &mut buf).unwrap();
        prop_assert_eq!(n, Aif::buffer_len(&e));
        let a = Aif::parse(&buf[..n]).unwrap();
        let back: Vec<(String, u64)> = a.entries().map(|r| { let (p, m) = r.unwrap(); (p.to_string(), m) }).collect();
        prop_assert_eq!(back, entries);
    }

    #[test]
    fn cose_key_round_trip(kid in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..32)),
                           k in proptest::collection::vec(any::<u8>(), 1..64)) {
        let key = PopKey::Symmetric {
            kid: kid.as_deref().map(|k| Bytes::from_slice(k).unwrap()),
            k: Bytes::from_slice(&k).unwrap(),
        };
        let mut buf = [0u8; 160];
        let n = key.emit_cose_key(&mut buf).unwrap();
        prop_assert_eq!(PopKey::parse_cose_key(&buf[..n], 4).unwrap(), key);
    }

    #[test]
    fn claims_round_trip_through_mac0(
        aud in "[a-z:/.]{1,40}",
        exp in any::<i64>(),
        exi in proptest::option::of(any::<u64>()),
        cti in proptest::collection::vec(any::<u8>(), 0..20),
        kid in proptest::collection::vec(any::<u8>(), 1..20),
        entries in proptest::collection::vec((path(), 0u64..128), 0..4),
        text_scope in proptest::option::of("[a-z ]{0,20}"),
    ) {
        let e: Vec<(&str, u64)> = entries.iter().map(|(p, m)| (p.as_str(), *m)).collect();
        let mut aif = [0u8; 256];
        let alen = Aif::emit(&e, &mut aif).unwrap();
        let cnf_kid = kid.clone();
        let scope = match &text_scope {
            Some(t) => ScopeOut::Text(t),
            None => ScopeOut::AifBytes(&aif[..alen]),
        };
        let c = ClaimsSet {
            aud: Some(&aud), exp: Some(exp), exi, cti: Some(&cti),
            cnf: Some(CnfOut::Kid(&cnf_kid)), scope: Some(scope), ..Default::default()
        };
        let mut p = [0u8; 1024];
        let plen = c.emit(&mut p).unwrap();
        let key = CoseKey::hmac(Algorithm::Hmac256_64, &[3; 32]).unwrap();
        let mut t = [0u8; 1200];
        let tlen = issuer::mac0(&key, Some(b"k"), &p[..plen], &mut t).unwrap();
        let keys = [KeyEntry::with_kid(b"k", key).unwrap()];
        let claims = cssf_auth::cwt::verify(&mut t[..tlen], &keys[..], Limits::default()).unwrap();
        prop_assert_eq!(claims.aud, Some(Audience::One(&aud)));
        prop_assert_eq!(claims.exp, Some(exp));
        prop_assert_eq!(claims.exi, exi);
        prop_assert_eq!(claims.cti, Some(&cti[..]));
        prop_assert_eq!(claims.cnf, Some(Cnf::Kid(&kid)));
        match (&text_scope, claims.scope) {
            (Some(t), Some(Scope::Text(s))) => prop_assert_eq!(t.as_str(), s),
            (None, Some(Scope::Aif(a))) => prop_assert_eq!(a.as_bytes(), &aif[..alen]),
            (_, other) => prop_assert!(false, "scope {:?}", other),
        }
    }
}
