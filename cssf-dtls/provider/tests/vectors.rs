//! The same vectors through every backend: RFC 5903 §8.1 (ECDH P-256),
//! RFC 6979 A.2.5 (deterministic ECDSA P-256/SHA-256), and refusals
//! (points off the curve, out-of-range signatures) in the manner of
//! Wycheproof's ecdh/ecdsa cases.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test helpers

use cssf_provider::counting::{CountingP256, Counts};
use cssf_provider::{rustcrypto, EphemeralSecret, Error, PublicKey, SecretKey, Signature, P256};
use rand_core::OsRng;
use sha2::{Digest, Sha256};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn point(x: &str, y: &str) -> PublicKey {
    let mut p = vec![4];
    p.extend(hex(x));
    p.extend(hex(y));
    PublicKey::from_sec1(&p).unwrap()
}

fn backends() -> Vec<(&'static str, &'static dyn P256)> {
    #[allow(unused_mut)] // only `ring` adds a backend
    let mut v: Vec<(&'static str, &'static dyn P256)> =
        vec![("rustcrypto", rustcrypto::PROVIDER.p256)];
    #[cfg(feature = "ring")]
    v.push(("ring", cssf_provider::ring::PROVIDER.p256));
    v
}

// RFC 5903 §8.1.
const I: &str = "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433";
const GIX: &str = "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180";
const GIY: &str = "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3";
const R: &str = "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53";
const GRX: &str = "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63";
const GRY: &str = "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB";
const GIRX: &str = "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE";

// RFC 6979 A.2.5.
const X: &str = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
const UX: &str = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
const UY: &str = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
const SIG_SAMPLE: &str = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
                          F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";
const SIG_TEST: &str = "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367
                        019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083";
/// The group order n: an `s` (or `r`) equal to it is out of range.
const N: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

#[test]
fn rfc5903_ecdh() {
    for (name, p) in backends() {
        let i = p.key_pair(SecretKey::from_slice(&hex(I)).unwrap()).unwrap();
        let r = p.key_pair(SecretKey::from_slice(&hex(R)).unwrap()).unwrap();
        assert_eq!(i.public, point(GIX, GIY), "{name}");
        assert_eq!(r.public, point(GRX, GRY), "{name}");
        let z1 = p.agree_static(&i.secret, &r.public).unwrap();
        let z2 = p.agree_static(&r.secret, &i.public).unwrap();
        assert_eq!(&z1.as_bytes()[..], &hex(GIRX)[..], "{name}");
        assert_eq!(&z2.as_bytes()[..], &hex(GIRX)[..], "{name}");
        // An ephemeral key held as a scalar agrees the same way.
        let e = EphemeralSecret::from_scalar(i.secret.clone());
        let z3 = p.agree_ephemeral(e, &r.public).unwrap();
        assert_eq!(&z3.as_bytes()[..], &hex(GIRX)[..], "{name}");
    }
}

#[test]
fn ephemeral_agreement_across_backends() {
    for (n1, a) in backends() {
        for (n2, b) in backends() {
            let (sa, pa) = a.ephemeral(&mut OsRng).unwrap();
            let (sb, pb) = b.ephemeral(&mut OsRng).unwrap();
            let za = a.agree_ephemeral(sa, &pb).unwrap();
            let zb = b.agree_ephemeral(sb, &pa).unwrap();
            assert_eq!(za.as_bytes(), zb.as_bytes(), "{n1} with {n2}");
            assert_ne!(za.as_bytes(), &[0; 32], "{n1} with {n2}");
        }
    }
}

#[test]
fn points_off_the_curve_are_refused() {
    let good = point(GIX, GIY);
    let mut off = *good.as_bytes();
    off[64] ^= 1; // y changed: not on the curve
    let off = PublicKey::from_sec1(&off).unwrap();
    let zero = PublicKey::from_sec1(&[&[4u8][..], &[0; 64]].concat()).unwrap();
    for (name, p) in backends() {
        let k = p.key_pair(SecretKey::from_slice(&hex(R)).unwrap()).unwrap();
        for bad in [off, zero] {
            let (e, _) = p.ephemeral(&mut OsRng).unwrap();
            assert_eq!(
                p.agree_ephemeral(e, &bad).unwrap_err(),
                Error::InvalidPublicKey,
                "{name}"
            );
            assert_eq!(
                p.agree_static(&k.secret, &bad).unwrap_err(),
                Error::InvalidPublicKey,
                "{name}"
            );
            let sig = Signature::from_slice(&hex(SIG_TEST)).unwrap();
            assert!(p.verify(&bad, b"test", &sig).is_err(), "{name}");
        }
    }
    assert!(PublicKey::from_sec1(&[&[3u8][..], &[0; 64]].concat()).is_err());
    assert!(PublicKey::from_sec1(&[4; 33]).is_err());
}

#[test]
fn secret_scalars_out_of_range_are_refused() {
    for (name, p) in backends() {
        assert_eq!(
            p.key_pair(SecretKey::from_bytes([0; 32])).unwrap_err(),
            Error::InvalidSecretKey,
            "{name}"
        );
        let n = SecretKey::from_slice(&hex(N)).unwrap();
        assert_eq!(
            p.key_pair(n).unwrap_err(),
            Error::InvalidSecretKey,
            "{name}"
        );
    }
}

#[test]
fn rfc6979_ecdsa() {
    let u = point(UX, UY);
    for (name, p) in backends() {
        let key = p.key_pair(SecretKey::from_slice(&hex(X)).unwrap()).unwrap();
        assert_eq!(key.public, u, "{name}");
        for (msg, sig) in [(&b"sample"[..], SIG_SAMPLE), (&b"test"[..], SIG_TEST)] {
            let sig = Signature::from_slice(&hex(sig)).unwrap();
            p.verify(&u, msg, &sig).unwrap();
            let digest: [u8; 32] = Sha256::digest(msg).into();
            p.verify_digest(&u, &digest, &sig).unwrap();
            assert_eq!(
                p.verify(&u, b"other", &sig).unwrap_err(),
                Error::BadSignature,
                "{name}"
            );
            let mut d2 = digest;
            d2[0] ^= 1;
            assert_eq!(
                p.verify_digest(&u, &d2, &sig).unwrap_err(),
                Error::BadSignature,
                "{name}"
            );
            // Whatever the nonce (ring's is random), a signature verifies
            // under every backend; RustCrypto's is RFC 6979's.
            for (other, q) in backends() {
                let s = p.sign(&key, msg, &mut OsRng).unwrap();
                q.verify(&u, msg, &s)
                    .unwrap_or_else(|e| panic!("{name} signed, {other}: {e}"));
                let s = p.sign_digest(&key, &digest, &mut OsRng).unwrap();
                q.verify_digest(&u, &digest, &s)
                    .unwrap_or_else(|e| panic!("{name} signed, {other}: {e}"));
            }
        }
        let s = rustcrypto::PROVIDER
            .p256
            .sign(&key, b"test", &mut OsRng)
            .unwrap();
        assert_eq!(&s.as_bytes()[..], &hex(SIG_TEST)[..]);
    }
}

#[test]
fn signatures_out_of_range_are_refused() {
    let u = point(UX, UY);
    let good = hex(SIG_TEST);
    let cases = [
        [&[0u8; 32][..], &good[32..]].concat(),  // r = 0
        [&good[..32], &[0u8; 32][..]].concat(),  // s = 0
        [&hex(N)[..], &good[32..]].concat(),     // r = n
        [&good[..32], &hex(N)[..]].concat(),     // s = n
        [&good[..32], &[0xff; 32][..]].concat(), // s > n
    ];
    for (name, p) in backends() {
        for c in &cases {
            let sig = Signature::from_slice(c).unwrap();
            assert_eq!(
                p.verify(&u, b"test", &sig).unwrap_err(),
                Error::BadSignature,
                "{name}"
            );
        }
    }
}

#[test]
fn counting_forwards_and_counts_every_entry() {
    static C: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    let k = C.generate(&mut OsRng).unwrap();
    let k2 = C.key_pair(k.secret.clone()).unwrap();
    assert_eq!(k.public, k2.public);
    let (e, _) = C.ephemeral(&mut OsRng).unwrap();
    C.agree_ephemeral(e, &k.public).unwrap();
    C.agree_static(&k.secret, &k.public).unwrap();
    let s = C.sign(&k, b"m", &mut OsRng).unwrap();
    C.verify(&k.public, b"m", &s).unwrap();
    let d = [7; 32];
    let s = C.sign_digest(&k, &d, &mut OsRng).unwrap();
    C.verify_digest(&k.public, &d, &s).unwrap();
    assert!(C.verify_digest(&k.public, &[8; 32], &s).is_err());
    assert_eq!(
        C.counts(),
        Counts {
            generate: 1,
            key_pair: 1,
            ephemeral: 1,
            agree_ephemeral: 1,
            agree_static: 1,
            sign: 1,
            sign_digest: 1,
            verify: 1,
            verify_digest: 2,
        }
    );
}
