//! The RustCrypto backend (the default; `no_std`, no heap): the `p256`
//! and `ecdsa` crates for [`P256`], `sha2`, `hmac` and `hkdf` for
//! [`Hash`], what CSSF shipped before the provider existed.
//!
//! Signing is deterministic (RFC 6979) and ignores the `rng` argument;
//! key generation draws from it.

use ecdsa::hazmat::SignPrimitive;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::VerifyingKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::PrimeField;
use p256::{FieldBytes, NonZeroScalar};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{Ephemeral, DIGEST_LEN};
use crate::{
    CryptoProvider, EphemeralSecret, Error, Hash, KeyPair, PublicKey, SecretKey, SharedSecret,
    Signature, P256,
};

/// The RustCrypto provider: [`RustCryptoP256`] and [`RustCryptoHash`];
/// the other entries `None` (the crates' own RustCrypto code).
///
/// ```
/// let p = &cssf_provider::rustcrypto::PROVIDER;
/// assert_eq!(p.name, "rustcrypto");
/// assert!(p.hash.is_some() && p.aead.is_none());
/// ```
pub const PROVIDER: CryptoProvider = CryptoProvider {
    name: "rustcrypto",
    p256: &RustCryptoP256,
    aead: None,
    hash: Some(&RustCryptoHash),
    random: None,
};

/// SHA-256, HMAC-SHA-256 (RFC 2104) and HKDF-SHA-256 (RFC 5869) through
/// RustCrypto's `sha2`, `hmac` and `hkdf`. Keyed outputs are
/// [`Zeroizing`], and the copies made on the way are wiped.
///
/// ```
/// use cssf_provider::{rustcrypto::RustCryptoHash, Hash};
/// // RFC 5869 A.1.
/// let ikm = [0x0b; 22];
/// let salt: Vec<u8> = (0..=0x0c).collect();
/// let info: Vec<u8> = (0xf0..=0xf9).collect();
/// let prk = RustCryptoHash.hkdf_extract(&salt, &ikm);
/// assert_eq!(hex(&prk[..]), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
/// let mut okm = [0u8; 42];
/// RustCryptoHash.hkdf_expand(&prk, &[&info[..4], &info[4..]], &mut okm)?;
/// assert_eq!(hex(&okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
/// // HMAC is HKDF-Extract with the key as the salt.
/// assert_eq!(RustCryptoHash.hmac_sha256(&salt, &[&ikm[..5], &ikm[5..]]), prk);
/// // RFC 6234: SHA-256("abc"), in pieces.
/// assert_eq!(hex(&RustCryptoHash.sha256(&[b"a", b"bc"])),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// let mut long = [0u8; 255 * 32 + 1];
/// assert!(RustCryptoHash.hkdf_expand(&prk, &[], &mut long).is_err());
/// # fn hex(b: &[u8]) -> String { b.iter().map(|x| format!("{x:02x}")).collect() }
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCryptoHash;

impl Hash for RustCryptoHash {
    fn sha256(&self, data: &[&[u8]]) -> [u8; DIGEST_LEN] {
        let mut h = Sha256::new();
        for d in data {
            h.update(d);
        }
        h.finalize().into()
    }

    fn hmac_sha256(&self, key: &[u8], data: &[&[u8]]) -> Zeroizing<[u8; DIGEST_LEN]> {
        let mut out = Zeroizing::new([0u8; DIGEST_LEN]);
        // HMAC takes a key of any length: this cannot fail.
        if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) {
            for d in data {
                mac.update(d);
            }
            let mut tag = mac.finalize().into_bytes();
            out.copy_from_slice(&tag);
            tag.as_mut_slice().zeroize();
        }
        out
    }

    fn hkdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; DIGEST_LEN]> {
        // RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM).
        self.hmac_sha256(salt, &[ikm])
    }

    fn hkdf_expand(
        &self,
        prk: &[u8; DIGEST_LEN],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), Error> {
        Hkdf::<Sha256>::from_prk(prk)
            .map_err(|_| Error::InvalidLength)?
            .expand_multi_info(info, out)
            .map_err(|_| Error::InvalidLength)
    }
}

/// P-256 through RustCrypto's `p256` (constant-time field arithmetic in
/// Rust, no assembly).
///
/// ```
/// use cssf_provider::{rustcrypto::RustCryptoP256, SecretKey, P256};
/// // RFC 6979 A.2.5: P-256, SHA-256, message "sample".
/// let x = hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
/// let pair = RustCryptoP256.key_pair(SecretKey::from_slice(&x)?)?;
/// let sig = RustCryptoP256.sign(&pair, b"sample", &mut rand_core::OsRng)?;
/// assert_eq!(&sig.as_bytes()[..], &hex(
///     "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
///      F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")[..]);
/// # fn hex(s: &str) -> Vec<u8> {
/// #     (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
/// # }
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCryptoP256;

fn scalar(k: &SecretKey) -> Result<NonZeroScalar, Error> {
    let mut fb = FieldBytes::clone_from_slice(k.as_bytes());
    let s = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(fb));
    fb.as_mut_slice().zeroize();
    s.ok_or(Error::InvalidSecretKey)
}

fn point(k: &PublicKey) -> Result<p256::PublicKey, Error> {
    p256::PublicKey::from_sec1_bytes(k.as_bytes()).map_err(|_| Error::InvalidPublicKey)
}

fn encode(k: &p256::PublicKey) -> Result<PublicKey, Error> {
    PublicKey::from_sec1(k.to_encoded_point(false).as_bytes())
}

fn secret_key(s: &NonZeroScalar) -> SecretKey {
    let mut fb: FieldBytes = s.to_repr();
    let k = SecretKey::from_slice(fb.as_slice());
    fb.as_mut_slice().zeroize();
    // A field element's encoding is always 32 bytes.
    k.unwrap_or_else(|_| SecretKey::from_bytes([0; 32]))
}

fn agree(s: &NonZeroScalar, peer: &PublicKey) -> Result<SharedSecret, Error> {
    let peer = point(peer)?;
    let shared = p256::ecdh::diffie_hellman(s, peer.as_affine());
    let mut z = [0u8; 32];
    z.copy_from_slice(shared.raw_secret_bytes());
    let out = SharedSecret::from_bytes(z);
    z.zeroize();
    Ok(out)
}

fn sign_field(key: &KeyPair, digest: &[u8; DIGEST_LEN]) -> Result<Signature, Error> {
    let d = scalar(&key.secret)?;
    let z = FieldBytes::clone_from_slice(digest);
    let (sig, _) = (*d)
        .try_sign_prehashed_rfc6979::<Sha256>(&z, &[])
        .map_err(|_| Error::InvalidSecretKey)?;
    Signature::from_slice(&sig.to_bytes())
}

fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, Error> {
    Ok(VerifyingKey::from(point(key)?))
}

fn signature(s: &Signature) -> Result<p256::ecdsa::Signature, Error> {
    p256::ecdsa::Signature::from_slice(s.as_bytes()).map_err(|_| Error::BadSignature)
}

impl P256 for RustCryptoP256 {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error> {
        let mut r = rng;
        let s = NonZeroScalar::random(&mut r);
        let public = encode(&p256::PublicKey::from_secret_scalar(&s))?;
        Ok(KeyPair {
            secret: secret_key(&s),
            public,
        })
    }

    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error> {
        let s = scalar(&secret)?;
        let public = encode(&p256::PublicKey::from_secret_scalar(&s))?;
        Ok(KeyPair { secret, public })
    }

    fn ephemeral(
        &self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(EphemeralSecret, PublicKey), Error> {
        let pair = self.generate(rng)?;
        Ok((EphemeralSecret::from_scalar(pair.secret), pair.public))
    }

    fn agree_ephemeral(
        &self,
        secret: EphemeralSecret,
        peer: &PublicKey,
    ) -> Result<SharedSecret, Error> {
        match &secret.0 {
            Ephemeral::Scalar(k) => agree(&scalar(k)?, peer),
            #[cfg(feature = "ring")]
            Ephemeral::Ring(_) => Err(Error::InvalidSecretKey),
        }
    }

    fn agree_static(&self, secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
        agree(&scalar(secret)?, peer)
    }

    fn sign(
        &self,
        key: &KeyPair,
        message: &[u8],
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        sign_field(key, &Sha256::digest(message).into())
    }

    fn sign_digest(
        &self,
        key: &KeyPair,
        digest: &[u8; DIGEST_LEN],
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        sign_field(key, digest)
    }

    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> Result<(), Error> {
        verifying_key(key)?
            .verify(message, &signature(sig)?)
            .map_err(|_| Error::BadSignature)
    }

    fn verify_digest(
        &self,
        key: &PublicKey,
        digest: &[u8; DIGEST_LEN],
        sig: &Signature,
    ) -> Result<(), Error> {
        verifying_key(key)?
            .verify_prehash(digest, &signature(sig)?)
            .map_err(|_| Error::BadSignature)
    }
}
