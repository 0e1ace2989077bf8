//! The ring backend (feature `ring`; host targets ring 0.17 supports):
//! P-256 through ring's assembly (nistz256 on x86_64 and aarch64) where
//! ring offers the operation, RustCrypto ([`RustCryptoP256`]) where it
//! does not.
//!
//! | entry | through |
//! | --- | --- |
//! | [`ephemeral`](P256::ephemeral), [`agree_ephemeral`](P256::agree_ephemeral) | ring `agreement` (ECDH_P256) |
//! | [`sign`](P256::sign) | ring `EcdsaKeyPair` (ECDSA_P256_SHA256_FIXED_SIGNING) |
//! | [`verify`](P256::verify) | ring `signature` (ECDSA_P256_SHA256_FIXED) |
//! | [`agree_static`](P256::agree_static) | RustCrypto: ring has no ECDH with a static key |
//! | [`sign_digest`](P256::sign_digest), [`verify_digest`](P256::verify_digest) | RustCrypto: ring hashes the message itself, it takes no digest |
//! | [`generate`](P256::generate), [`key_pair`](P256::key_pair) | RustCrypto: ring exports no private scalar |
//! | [`Aead`] ([`RingAead`]) | ring `aead` for ChaCha20-Poly1305; ring has no AES-CCM, so it supports no CCM algorithm and the crates use their own code for those |
//!
//! **Randomness.** ring draws from its own `SystemRandom` (the operating
//! system's generator): its ephemeral keys and its ECDSA nonces (hedged:
//! ring mixes the key and the message digest into the random nonce) do
//! not come from the `rng` the caller passes, which it ignores. A caller
//! who needs reproducible runs (seeded tests, simulations) uses
//! [`rustcrypto`](crate::rustcrypto); on a host, the operating system's
//! generator is what the caller would pass anyway. ring's ephemeral keys
//! are not zeroized on drop (ring does not wipe them).

use rand_core::CryptoRngCore;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};

use crate::keys::{Ephemeral, DIGEST_LEN};
use crate::rustcrypto::RustCryptoP256;
use crate::{
    Aead, AeadAlgorithm, CryptoProvider, EphemeralSecret, Error, KeyPair, PublicKey, SecretKey,
    SharedSecret, Signature, P256,
};

/// The ring provider: [`RingP256`] and [`RingAead`]; the other entries
/// `None`.
///
/// ```
/// use cssf_provider::{ring, rustcrypto};
/// let (r, c) = (ring::PROVIDER.p256, rustcrypto::PROVIDER.p256);
/// // Either side of an ECDHE may run on either backend.
/// let (a, a_pub) = r.ephemeral(&mut rand_core::OsRng)?;
/// let (b, b_pub) = c.ephemeral(&mut rand_core::OsRng)?;
/// assert_eq!(r.agree_ephemeral(a, &b_pub)?.as_bytes(), c.agree_ephemeral(b, &a_pub)?.as_bytes());
/// # Ok::<(), cssf_provider::Error>(())
/// ```
pub const PROVIDER: CryptoProvider = CryptoProvider {
    name: "ring",
    p256: &RingP256,
    aead: Some(&RingAead),
    hash: None,
    random: None,
};

/// P-256 through ring where ring covers it (see the [module](self) table).
///
/// ```
/// use cssf_provider::{ring::RingP256, rustcrypto::RustCryptoP256, P256};
/// let key = RustCryptoP256.generate(&mut rand_core::OsRng)?;
/// let sig = RingP256.sign(&key, b"m", &mut rand_core::OsRng)?;
/// RustCryptoP256.verify(&key.public, b"m", &sig)?;
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RingP256;

impl P256 for RingP256 {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error> {
        RustCryptoP256.generate(rng)
    }

    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error> {
        RustCryptoP256.key_pair(secret)
    }

    fn ephemeral(
        &self,
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<(EphemeralSecret, PublicKey), Error> {
        let k = EphemeralPrivateKey::generate(&agreement::ECDH_P256, &SystemRandom::new())
            .map_err(|_| Error::Random)?;
        let public = k.compute_public_key().map_err(|_| Error::Random)?;
        let public = PublicKey::from_sec1(public.as_ref())?;
        Ok((EphemeralSecret(Ephemeral::Ring(k)), public))
    }

    fn agree_ephemeral(
        &self,
        secret: EphemeralSecret,
        peer: &PublicKey,
    ) -> Result<SharedSecret, Error> {
        match secret.0 {
            Ephemeral::Ring(k) => {
                let peer = UnparsedPublicKey::new(&agreement::ECDH_P256, peer.as_bytes());
                agreement::agree_ephemeral(k, &peer, |z| {
                    let mut x = [0u8; 32];
                    if z.len() != x.len() {
                        return Err(Error::InvalidPublicKey);
                    }
                    x.copy_from_slice(z);
                    let s = SharedSecret::from_bytes(x);
                    zeroize::Zeroize::zeroize(&mut x);
                    Ok(s)
                })
                .map_err(|_| Error::InvalidPublicKey)?
            }
            scalar @ Ephemeral::Scalar(_) => {
                RustCryptoP256.agree_ephemeral(EphemeralSecret(scalar), peer)
            }
        }
    }

    fn agree_static(&self, secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
        RustCryptoP256.agree_static(secret, peer)
    }

    fn sign(
        &self,
        key: &KeyPair,
        message: &[u8],
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            key.secret.as_bytes(),
            key.public.as_bytes(),
            &rng,
        )
        .map_err(|_| Error::InvalidSecretKey)?;
        debug_assert_eq!(pair.public_key().as_ref(), key.public.as_bytes());
        let sig = pair.sign(&rng, message).map_err(|_| Error::Random)?;
        Signature::from_slice(sig.as_ref())
    }

    fn sign_digest(
        &self,
        key: &KeyPair,
        digest: &[u8; DIGEST_LEN],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        RustCryptoP256.sign_digest(key, digest, rng)
    }

    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> Result<(), Error> {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.as_bytes())
            .verify(message, sig.as_bytes())
            .map_err(|_| Error::BadSignature)
    }

    fn verify_digest(
        &self,
        key: &PublicKey,
        digest: &[u8; DIGEST_LEN],
        sig: &Signature,
    ) -> Result<(), Error> {
        RustCryptoP256.verify_digest(key, digest, sig)
    }
}

/// ChaCha20-Poly1305 through ring's assembly ([`Aead::supports`] is false
/// for the CCM algorithms, which ring does not have).
///
/// ```
/// use cssf_provider::{ring::RingAead, Aead, AeadAlgorithm};
/// let alg = AeadAlgorithm::ChaCha20Poly1305;
/// assert!(RingAead.supports(alg) && !RingAead.supports(AeadAlgorithm::Aes128Ccm8));
/// let (key, nonce) = ([7u8; 32], [1u8; 12]);
/// let mut data = *b"hello";
/// let mut tag = [0u8; 16];
/// RingAead.seal_in_place(alg, &key, &nonce, b"aad", &mut data, &mut tag)?;
/// RingAead.open_in_place(alg, &key, &nonce, b"aad", &mut data, &tag)?;
/// assert_eq!(&data, b"hello");
/// tag[0] ^= 1;
/// assert!(RingAead.open_in_place(alg, &key, &nonce, b"aad", &mut data, &tag).is_err());
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RingAead;

fn ring_key(alg: AeadAlgorithm, key: &[u8]) -> Result<ring::aead::LessSafeKey, Error> {
    if alg != AeadAlgorithm::ChaCha20Poly1305 {
        return Err(Error::InvalidLength);
    }
    ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
        .map(ring::aead::LessSafeKey::new)
        .map_err(|_| Error::InvalidLength)
}

fn ring_nonce(nonce: &[u8]) -> Result<ring::aead::Nonce, Error> {
    ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::InvalidLength)
}

impl Aead for RingAead {
    fn supports(&self, alg: AeadAlgorithm) -> bool {
        alg == AeadAlgorithm::ChaCha20Poly1305
    }

    fn seal_in_place(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), Error> {
        if tag.len() != alg.tag_len() {
            return Err(Error::InvalidLength);
        }
        let t = ring_key(alg, key)?
            .seal_in_place_separate_tag(ring_nonce(nonce)?, ring::aead::Aad::from(aad), buffer)
            .map_err(|_| Error::InvalidLength)?;
        tag.copy_from_slice(t.as_ref());
        Ok(())
    }

    fn open_in_place(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        let tag: [u8; 16] = tag.try_into().map_err(|_| Error::InvalidLength)?;
        // ring checks the tag in constant time before it decrypts.
        ring_key(alg, key)?
            .open_in_place_separate_tag(
                ring_nonce(nonce)?,
                ring::aead::Aad::from(aad),
                ring::aead::Tag::from(tag),
                buffer,
                0..,
            )
            .map(|_| ())
            .map_err(|_| Error::BadTag)
    }
}
