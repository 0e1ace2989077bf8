//! Drives every COSE WG example file under tests/vectors generically: every
//! pass case of a supported message type and algorithm verifies (and yields
//! the expected plaintext), every fail case is rejected, and every example
//! using an unsupported message type or algorithm is rejected as such.
//! A new JSON file dropped into one of the directories adds a case.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::{b64url, hex};
use cssf_auth::cose::{self, Algorithm, CoseKey, KeyEntry, Limits, Message};
use cssf_auth::{cwt, Error};
use serde_json::Value;

fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut v = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "json") {
                    v.push(f);
                }
            }
        }
    }
    v.sort();
    assert!(v.len() >= 50, "vectors missing: {}", v.len());
    v
}

fn field_bytes(o: &Value, name: &str) -> Option<Vec<u8>> {
    if let Some(s) = o.get(format!("{name}_hex")).and_then(Value::as_str) {
        return Some(hex(s));
    }
    o.get(name).and_then(Value::as_str).map(b64url)
}

fn alg_of(name: &str) -> Option<Algorithm> {
    match name {
        "ES256" => Some(Algorithm::Es256),
        "HS256" => Some(Algorithm::Hmac256),
        "HS256/64" => Some(Algorithm::Hmac256_64),
        "AES-CCM-16-128/64" => Some(Algorithm::AesCcm16_64_128),
        "ChaCha-Poly1305" => Some(Algorithm::ChaCha20Poly1305),
        _ => None,
    }
}

fn key_for(alg: Algorithm, k: &Value) -> CoseKey {
    match alg {
        Algorithm::Es256 => {
            CoseKey::es256_from_xy(&field_bytes(k, "x").unwrap(), &field_bytes(k, "y").unwrap())
                .unwrap()
        }
        Algorithm::Hmac256 | Algorithm::Hmac256_64 => {
            CoseKey::hmac(alg, &field_bytes(k, "k").unwrap()).unwrap()
        }
        _ => CoseKey::aead(alg, &field_bytes(k, "k").unwrap()).unwrap(),
    }
}

fn plaintext(input: &Value) -> Vec<u8> {
    if let Some(h) = input.get("plaintext_hex").and_then(Value::as_str) {
        hex(h)
    } else {
        input["plaintext"].as_str().unwrap().as_bytes().to_vec()
    }
}

/// Verifies one COSE layer; returns the payload / plaintext.
fn verify_layer(bytes: &[u8], key: &CoseKey, aad: &[u8]) -> Result<Vec<u8>, Error> {
    let limits = Limits::default();
    match Message::parse(bytes, &limits)? {
        Message::Sign1(m) => m
            .verify_with(key, aad, common::provider())
            .map(|_| m.payload.to_vec()),
        Message::Mac0(m) => m.verify(key, aad).map(|_| m.payload.to_vec()),
        Message::Encrypt0(m) => {
            let prep = m.prepare(key, aad)?;
            let mut buf = bytes.to_vec();
            let r = prep.decrypt_in_place(key, &mut buf)?;
            Ok(buf[r].to_vec())
        }
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Verified,
    Rejected(Error),
}

#[test]
fn every_cose_wg_vector() {
    let mut verified = 0;
    let mut rejected = 0;
    let mut policy = 0;
    for f in files() {
        let name = f
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display()
            .to_string();
        let j: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let input = &j["input"];
        let fail = j.get("fail").and_then(Value::as_bool).unwrap_or(false);
        let bytes = hex(j["output"]["cbor"].as_str().unwrap());
        let (layer, key_json) = if let Some(s) = input.get("sign0") {
            (s, &s["key"])
        } else if let Some(m) = input.get("mac0") {
            (m, &m["recipients"][0]["key"])
        } else if let Some(e) = input.get("encrypted") {
            (e, &e["recipients"][0]["key"])
        } else {
            // COSE_Sign / COSE_Mac / COSE_Encrypt (multi-recipient): unsupported.
            let r = Message::parse(&bytes, &Limits::default());
            assert_eq!(
                r.err(),
                Some(Error::UnsupportedMessage),
                "{name}: multi-recipient message must be refused"
            );
            rejected += 1;
            continue;
        };
        let alg_name = layer
            .get("alg")
            .or_else(|| layer["protected"].get("alg"))
            .or_else(|| layer["unprotected"].get("alg"))
            .and_then(Value::as_str)
            .unwrap();
        let aad = layer
            .get("external")
            .and_then(Value::as_str)
            .map(hex)
            .unwrap_or_default();
        let Some(alg) = alg_of(alg_name) else {
            // An algorithm we do not implement: refused, whatever the key.
            let any = CoseKey::hmac(Algorithm::Hmac256, &[0; 32]).unwrap();
            let r = verify_layer(&bytes, &any, &aad);
            assert_eq!(
                r,
                Err(Error::UnsupportedAlgorithm),
                "{name}: alg {alg_name}"
            );
            rejected += 1;
            continue;
        };
        let key = key_for(alg, key_json);
        let alg_unprotected = layer
            .get("unprotected")
            .and_then(|u| u.get("alg"))
            .is_some()
            && layer.get("protected").and_then(|p| p.get("alg")).is_none();
        let outcome = match verify_layer(&bytes, &key, &aad) {
            Ok(p) => {
                assert_eq!(p, plaintext(input), "{name}: wrong payload");
                Outcome::Verified
            }
            Err(e) => Outcome::Rejected(e),
        };
        if fail {
            assert!(
                matches!(outcome, Outcome::Rejected(_)),
                "{name}: fail case verified"
            );
            rejected += 1;
        } else if alg_unprotected {
            // Our policy (RFC 9052 §3.1: alg MUST be protected when it can be):
            // refused. The vector's cryptography is still checked below over
            // its published ToBeSign / ToMac bytes.
            assert_eq!(outcome, Outcome::Rejected(Error::AlgNotProtected), "{name}");
            check_intermediate(&name, &j, &bytes, &key);
            policy += 1;
        } else {
            assert_eq!(outcome, Outcome::Verified, "{name}: pass case rejected");
            verified += 1;
        }
    }
    eprintln!("verified {verified}, rejected {rejected}, refused by policy {policy}");
    assert!(
        verified >= 13 && rejected >= 43 && policy == 4,
        "{verified} {rejected} {policy}"
    );
}

/// For the pass vectors whose alg is unprotected: the published to-be-signed
/// bytes are what we would build, and the signature / tag over them is good.
fn check_intermediate(name: &str, j: &Value, bytes: &[u8], key: &CoseKey) {
    let inter = &j["intermediates"];
    let limits = Limits::default();
    // Re-parse leniently: the fields are at fixed positions of the array.
    let tagged = bytes[0] >> 5 == 6;
    let arr = if tagged { &bytes[1..] } else { bytes };
    let v: Vec<u8> = arr.to_vec();
    let _ = limits;
    if let Some(tbs) = inter.get("ToBeSign_hex").and_then(Value::as_str) {
        use p256::ecdsa::signature::Verifier;
        let CoseKey::Es256(vk) = key else {
            panic!("{name}")
        };
        let sig = &v[v.len() - 64..];
        let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
        vk.verify(&hex(tbs), &sig)
            .unwrap_or_else(|_| panic!("{name}: ToBeSign"));
    } else if let Some(tbm) = inter.get("ToMac_hex").and_then(Value::as_str) {
        use hmac::Mac;
        let CoseKey::Hmac256(k) = key else {
            panic!("{name}")
        };
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(k.as_bytes()).unwrap();
        m.update(&hex(tbm));
        let tag = m.finalize().into_bytes();
        assert_eq!(&v[v.len() - 32..], &tag[..], "{name}: ToMac");
    } else {
        panic!("{name}: no intermediate");
    }
}

fn cwt_json(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/CWT")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn rfc8392_appendix_a_cwts_through_the_token_api() {
    let a3 = cwt_json("A_3.json");
    let es = &a3["input"]["sign0"]["key"];
    let a5 = cwt_json("A_5.json");
    let aes = &a5["input"]["encrypted"]["recipients"][0]["key"];
    let a4 = cwt_json("A_4.json");
    let mac = &a4["input"]["mac0"]["recipients"][0]["key"];
    let keys = [
        KeyEntry::new(key_for(Algorithm::Es256, es)),
        KeyEntry::new(key_for(Algorithm::AesCcm16_64_128, aes)),
        KeyEntry::new(key_for(Algorithm::Hmac256_64, mac)),
    ];
    for f in ["A_3.json", "A_4.json", "A_5.json", "A_6.json"] {
        let mut tok = hex(cwt_json(f)["output"]["cbor"].as_str().unwrap());
        let c = cwt::Token::new(&mut tok, Limits::default())
            .crypto(common::provider())
            .verify(&keys[..], &[])
            .map(cwt::Token::into_claims)
            .unwrap_or_else(|e| panic!("RFC 8392 {f}: {e}"));
        assert_eq!(c.iss, Some("coap://as.example.com"), "{f}");
        assert_eq!(c.exp, Some(1444064944), "{f}");
        assert_eq!(c.cti, Some(&[0x0b, 0x71][..]), "{f}");
    }
    let mut a7 = hex(cwt_json("A_7.json")["output"]["cbor"].as_str().unwrap());
    let c = cwt::Token::new(&mut a7, Limits::default())
        .crypto(common::provider())
        .verify(&keys[..], &[])
        .unwrap()
        .into_claims();
    // iat 1443944944.5 rounds down
    assert_eq!(c.iat, Some(1443944944));
    // A.6 nested Sign1-in-Encrypt0 needs both keys: without the ES256 key it fails.
    let mut a6 = hex(cwt_json("A_6.json")["output"]["cbor"].as_str().unwrap());
    assert_eq!(
        cwt::verify(&mut a6, &keys[1..], Limits::default()).err(),
        Some(Error::UnknownKey)
    );
    let _ = cose::TAG_CWT;
}
