//! ES256 token verification goes through the crypto provider the caller
//! selects (`Token::crypto`, `AuthzInfo::set_crypto`): a counting provider
//! sees exactly one `verify_digest` per signed layer, a provider that
//! refuses every signature makes valid tokens fail, and the default stays
//! RustCrypto.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use core::time::Duration;

use cssf_auth::cose::{sign1, CoseSign1, Header};
use cssf_auth::cwt::Token;
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Error, KeyEntry, Limits, PopKey,
};
use cssf_provider::counting::{CountingP256, Counts};
use cssf_provider::rustcrypto::{self, RustCryptoP256};
use cssf_provider::{
    CryptoProvider, EphemeralSecret, KeyPair, PublicKey, SecretKey, SharedSecret, Signature, P256,
};
use rand_core::CryptoRngCore;

const AUD: &str = "coaps://rs.example";
const WALL: u64 = 1_700_000_000;

fn as_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap()
}

fn keys() -> Vec<KeyEntry> {
    vec![
        KeyEntry::with_kid(b"as-es256", CoseKey::Es256(*as_key().verifying_key())).unwrap(),
        KeyEntry::with_kid(
            b"as-hmac",
            CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap(),
        )
        .unwrap(),
    ]
}

fn claims(cti: &[u8]) -> Vec<u8> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"client-1").unwrap()),
        k: Bytes::from_slice(&[9; 16]).unwrap(),
    };
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/temp", 1)], &mut aif).unwrap();
    let c = ClaimsSet {
        iss: Some("as"),
        aud: Some(AUD),
        exp: Some(WALL as i64 + 3600),
        iat: Some(WALL as i64),
        cti: Some(cti),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut out = [0u8; 256];
    let len = c.emit(&mut out).unwrap();
    out[..len].to_vec()
}

fn es256_token(cti: &[u8]) -> Vec<u8> {
    let mut t = [0u8; 512];
    let n = issuer::sign1(
        &CoseKey::Es256Signing(as_key()),
        Some(b"as-es256"),
        &claims(cti),
        &mut t,
    )
    .unwrap();
    t[..n].to_vec()
}

fn mac_token(cti: &[u8]) -> Vec<u8> {
    let mut t = [0u8; 512];
    let key = CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap();
    let n = issuer::mac0(&key, Some(b"as-hmac"), &claims(cti), &mut t).unwrap();
    t[..n].to_vec()
}

#[test]
fn token_verification_calls_the_selected_provider_once_per_es256_token() {
    static COUNTED: CountingP256 = CountingP256::new(&RustCryptoP256);
    static MINE: CryptoProvider = CryptoProvider {
        name: "counted",
        p256: &COUNTED,
        ..rustcrypto::PROVIDER
    };
    let keys = keys();
    for i in 0..3u8 {
        let mut tok = es256_token(&[i]);
        let t = Token::new(&mut tok, Limits::default())
            .crypto(&MINE)
            .verify(&keys[..], &[])
            .unwrap();
        assert_eq!(t.claims().cti, Some(&[i][..]));
    }
    assert_eq!(
        COUNTED.counts(),
        Counts {
            verify_digest: 3,
            ..Counts::default()
        }
    );

    // A tampered signature: the provider is asked, and says no.
    let mut tok = es256_token(b"x");
    let last = tok.len() - 1;
    tok[last] ^= 1;
    let r = Token::new(&mut tok, Limits::default())
        .crypto(&MINE)
        .verify(&keys[..], &[]);
    assert_eq!(r.err(), Some(Error::VerificationFailed));
    assert_eq!(COUNTED.counts().verify_digest, 4);

    // An HMAC token does not touch P-256.
    let mut tok = mac_token(b"m");
    Token::new(&mut tok, Limits::default())
        .crypto(&MINE)
        .verify(&keys[..], &[])
        .unwrap();
    assert_eq!(COUNTED.counts().total(), 4);

    // Without `crypto`, the default provider runs, not this one.
    let mut tok = es256_token(b"d");
    Token::new(&mut tok, Limits::default())
        .verify(&keys[..], &[])
        .unwrap();
    assert_eq!(COUNTED.counts().total(), 4);
}

#[test]
fn authz_info_verifies_posted_tokens_through_its_provider() {
    static COUNTED: CountingP256 = CountingP256::new(&RustCryptoP256);
    static MINE: CryptoProvider = CryptoProvider {
        name: "counted",
        p256: &COUNTED,
        ..rustcrypto::PROVIDER
    };
    let keys = keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    assert_eq!(rs.crypto().name, "rustcrypto");
    rs.set_crypto(&MINE);
    assert_eq!(rs.crypto().name, "counted");
    for (i, cti) in [&b"a"[..], b"b"].into_iter().enumerate() {
        let mut tok = es256_token(cti);
        let r = rs.post(Duration::from_secs(1), Some(WALL), &mut tok, &mut []);
        assert_eq!(r.code, 0x41, "{r:?}");
        assert_eq!(COUNTED.counts().verify_digest, i as u32 + 1);
    }
    let mut tok = mac_token(b"c");
    let r = rs.post(Duration::from_secs(1), Some(WALL), &mut tok, &mut []);
    assert_eq!(r.code, 0x41, "{r:?}");
    assert_eq!(
        COUNTED.counts(),
        Counts {
            verify_digest: 2,
            ..Counts::default()
        }
    );
}

/// Refuses every signature; everything else forwards to RustCrypto.
struct Refusing;

impl P256 for Refusing {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, cssf_provider::Error> {
        RustCryptoP256.generate(rng)
    }
    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, cssf_provider::Error> {
        RustCryptoP256.key_pair(secret)
    }
    fn ephemeral(
        &self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(EphemeralSecret, PublicKey), cssf_provider::Error> {
        RustCryptoP256.ephemeral(rng)
    }
    fn agree_ephemeral(
        &self,
        s: EphemeralSecret,
        peer: &PublicKey,
    ) -> Result<SharedSecret, cssf_provider::Error> {
        RustCryptoP256.agree_ephemeral(s, peer)
    }
    fn agree_static(
        &self,
        s: &SecretKey,
        peer: &PublicKey,
    ) -> Result<SharedSecret, cssf_provider::Error> {
        RustCryptoP256.agree_static(s, peer)
    }
    fn sign(
        &self,
        k: &KeyPair,
        m: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, cssf_provider::Error> {
        RustCryptoP256.sign(k, m, rng)
    }
    fn sign_digest(
        &self,
        k: &KeyPair,
        d: &[u8; 32],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, cssf_provider::Error> {
        RustCryptoP256.sign_digest(k, d, rng)
    }
    fn verify(&self, _: &PublicKey, _: &[u8], _: &Signature) -> Result<(), cssf_provider::Error> {
        Err(cssf_provider::Error::BadSignature)
    }
    fn verify_digest(
        &self,
        _: &PublicKey,
        _: &[u8; 32],
        _: &Signature,
    ) -> Result<(), cssf_provider::Error> {
        Err(cssf_provider::Error::BadSignature)
    }
}

#[test]
fn the_providers_answer_decides() {
    static REFUSING: CryptoProvider = CryptoProvider {
        name: "refusing",
        p256: &Refusing,
        ..rustcrypto::PROVIDER
    };
    let keys = keys();
    let good = es256_token(b"r");
    let mut tok = good.clone();
    assert_eq!(
        Token::new(&mut tok, Limits::default())
            .crypto(&REFUSING)
            .verify(&keys[..], &[])
            .err(),
        Some(Error::VerificationFailed)
    );
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(&REFUSING);
    let mut tok = good.clone();
    let r = rs.post(Duration::from_secs(1), Some(WALL), &mut tok, &mut []);
    assert_eq!(r.error, Some(Error::VerificationFailed));
    // The same token through the provider the tests run with passes.
    rs.set_crypto(common::provider());
    let mut tok = good;
    let r = rs.post(Duration::from_secs(1), Some(WALL), &mut tok, &mut []);
    assert_eq!(r.code, 0x41, "{r:?}");
}

#[test]
fn sign1_verify_with_and_verify_agree() {
    let sk = as_key();
    let protected = [0xa1, 0x01, 0x26];
    let sig = sign1::sign_es256(&sk, &protected, b"aad", b"payload").unwrap();
    let m = CoseSign1 {
        protected: &protected,
        header: Header {
            alg: Some(Algorithm::Es256),
            ..Header::default()
        },
        payload: b"payload",
        signature: &sig,
    };
    let key = CoseKey::Es256(*sk.verifying_key());
    m.verify(&key, b"aad").unwrap();
    m.verify_with(&key, b"aad", common::provider()).unwrap();
    assert_eq!(
        m.verify_with(&key, b"other", common::provider()).err(),
        Some(Error::VerificationFailed)
    );
    assert_eq!(
        m.verify(&key, b"other").err(),
        Some(Error::VerificationFailed)
    );
    // A wrong-length signature is refused before the provider.
    let short = CoseSign1 {
        signature: &sig[..63],
        ..m
    };
    assert_eq!(
        short.verify_with(&key, b"aad", common::provider()).err(),
        Some(Error::VerificationFailed)
    );
}

#[test]
fn the_es256_tests_run_with_the_backend_the_features_select() {
    let expected = if cfg!(feature = "ring-p256") {
        "ring"
    } else {
        "rustcrypto"
    };
    assert_eq!(common::provider().name, expected);
}
