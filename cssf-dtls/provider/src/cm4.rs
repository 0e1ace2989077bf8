//! The Cortex-M4 backend (feature `p256-cm4`, `thumbv7em` targets): key
//! generation and ECDH (ephemeral and static) through `p256-cm4`, a Rust
//! port of Emil Lenngren's P256-Cortex-M4 assembly; ECDSA signing and
//! verifying through RustCrypto ([`RustCryptoP256`]).
//!
//! The signatures stay in RustCrypto in [`PROVIDER`] because `p256-cm4`
//! 0.4.0's ECDSA cannot be tested under QEMU (its 288-bit multiplier,
//! which signing and verifying reach, has a 32-bit LDM of one register,
//! which QEMU treats as undefined); key generation and ECDH do not reach
//! it and are tested there, against the RFC 5903 vectors and in a full
//! DTLS handshake.
//!
//! [`PROVIDER_FULL`] ([`Cm4P256Full`]) also signs and verifies with
//! `p256-cm4`, for boards. **It is not tested**: it cannot run under QEMU,
//! and this project has run it on no hardware. Test it on your part first
//! (the firmware's `p256-cm4-ecdsa` feature runs the RFC 6979 vectors and
//! a handshake through it); until then use [`PROVIDER`].
//!
//! `p256-cm4` takes scalars and coordinates as little-endian 32-bit limbs;
//! the interface's big-endian bytes are converted with [`limbs`] and
//! [`bytes`], and every secret limb copy is zeroized after use.

use p256_cm4 as cm4;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{Ephemeral, DIGEST_LEN, POINT_LEN, SCALAR_LEN};
use crate::rustcrypto::RustCryptoP256;
use crate::{
    CryptoProvider, EphemeralSecret, Error, KeyPair, PublicKey, SecretKey, SharedSecret, Signature,
    P256,
};

/// The Cortex-M4 provider: [`Cm4P256`] (`p256-cm4` key generation and
/// ECDH, RustCrypto ECDSA); the other entries `None` (the crates' own
/// RustCrypto code).
pub const PROVIDER: CryptoProvider = CryptoProvider {
    name: "p256-cm4 (ECDH), rustcrypto (ECDSA)",
    p256: &Cm4P256,
    aead: None,
    hash: None,
    random: None,
};

/// Everything through `p256-cm4`, ECDSA included ([`Cm4P256Full`]).
/// **Untested**: `p256-cm4`'s ECDSA cannot run under QEMU and has not
/// been run on hardware by this project; see the module's documentation.
pub const PROVIDER_FULL: CryptoProvider = CryptoProvider {
    name: "p256-cm4 (ECDH, ECDSA; untested ECDSA)",
    p256: &Cm4P256Full,
    aead: None,
    hash: None,
    random: None,
};

/// Attempts at drawing a scalar in range before giving up with
/// [`Error::Random`] (a uniform 256-bit value is out of range with
/// probability below 2^-32).
const DRAWS: usize = 16;

/// Big-endian bytes to `p256-cm4`'s little-endian 32-bit limbs.
///
/// ```
/// # use cssf_provider::cm4::{bytes, limbs};
/// let mut be = [0u8; 32];
/// be[31] = 1;
/// be[0] = 0x80;
/// let l = limbs(&be);
/// assert_eq!((l[0], l[7]), (1, 0x8000_0000));
/// assert_eq!(bytes(&l), be);
/// ```
pub fn limbs(be: &[u8; 32]) -> [u32; 8] {
    let mut l = [0u32; 8];
    for (w, chunk) in l.iter_mut().zip(be.rchunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *w = u32::from_be_bytes(b);
    }
    l
}

/// `p256-cm4`'s little-endian 32-bit limbs to big-endian bytes (the
/// inverse of [`limbs`]).
pub fn bytes(l: &[u32; 8]) -> [u8; 32] {
    let mut be = [0u8; 32];
    for (chunk, w) in be.rchunks_exact_mut(4).zip(l.iter()) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    be
}

/// P-256 with `p256-cm4` for key generation and ECDH, RustCrypto for
/// ECDSA.
///
/// Key generation draws 32 bytes from the caller's `rng` and retries while
/// the value is not a valid scalar (zero or not below the group order).
/// Peers' points are decoded and checked (coordinates below p, on the
/// curve) by `p256-cm4`'s `octet_string_to_point`; a point that fails is
/// refused with [`Error::InvalidPublicKey`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Cm4P256;

/// The uncompressed public point of `d` (little-endian limbs), or
/// [`Error::InvalidSecretKey`] if `d` is not in `1..n`.
fn public_of(d: &[u32; 8]) -> Result<PublicKey, Error> {
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    if !cm4::keygen(&mut x, &mut y, d) {
        return Err(Error::InvalidSecretKey);
    }
    let mut p = [0u8; POINT_LEN];
    cm4::point_to_octet_string_uncompressed(&mut p, &x, &y);
    PublicKey::from_sec1(&p)
}

fn key_pair(secret: SecretKey) -> Result<KeyPair, Error> {
    let d = Zeroizing::new(limbs(secret.as_bytes()));
    let public = public_of(&d)?;
    Ok(KeyPair { secret, public })
}

fn agree(secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    if !cm4::octet_string_to_point(&mut x, &mut y, peer.as_bytes()) {
        return Err(Error::InvalidPublicKey);
    }
    let d = Zeroizing::new(limbs(secret.as_bytes()));
    if !cm4::check_range_n(&d) {
        return Err(Error::InvalidSecretKey);
    }
    let mut z = [0u8; 32];
    let ok = cm4::ecdh_calc_shared_secret(&mut z, &d, &x, &y);
    let out = SharedSecret::from_bytes(z);
    z.zeroize();
    if ok {
        Ok(out)
    } else {
        Err(Error::InvalidPublicKey)
    }
}

impl P256 for Cm4P256 {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error> {
        let mut k = Zeroizing::new([0u8; SCALAR_LEN]);
        for _ in 0..DRAWS {
            rng.try_fill_bytes(&mut k[..]).map_err(|_| Error::Random)?;
            match key_pair(SecretKey::from_bytes(*k)) {
                Err(Error::InvalidSecretKey) => continue,
                r => return r,
            }
        }
        Err(Error::Random)
    }

    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error> {
        key_pair(secret)
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
            Ephemeral::Scalar(k) => agree(k, peer),
            #[cfg(feature = "ring")]
            Ephemeral::Ring(_) => Err(Error::InvalidSecretKey),
        }
    }

    fn agree_static(&self, secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
        agree(secret, peer)
    }

    fn sign(
        &self,
        key: &KeyPair,
        message: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        RustCryptoP256.sign(key, message, rng)
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
        RustCryptoP256.verify(key, message, sig)
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

/// P-256 with `p256-cm4` for everything: key generation and ECDH as
/// [`Cm4P256`], and ECDSA signing and verifying through `p256-cm4`'s
/// `sign` and `verify`.
///
/// **Not tested** (see the module's documentation): `p256-cm4`'s ECDSA
/// cannot run under QEMU, and this project has not run it on hardware.
///
/// Signing is deterministic (RFC 6979, the nonce derived from the key and
/// the digest reduced modulo n, with HMAC-SHA-256): the signatures are the
/// RFC's and RustCrypto's, byte for byte, which is what a test on a board
/// can check. It ignores `rng`. Should the nonce give s = 0 (probability
/// about 2^-256) signing fails with [`Error::InvalidSecretKey`], as
/// RustCrypto's does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cm4P256Full;

/// The RFC 6979 nonce for `d` (big-endian) and `digest`.
fn rfc6979_k(d: &SecretKey, digest: &[u8; DIGEST_LEN]) -> Zeroizing<[u8; 32]> {
    use p256::elliptic_curve::bigint::ArrayEncoding;
    use p256::elliptic_curve::ops::Reduce;
    use p256::elliptic_curve::{Curve, PrimeField};
    use p256::{FieldBytes, NistP256, Scalar};

    let h = <Scalar as Reduce<p256::U256>>::reduce_bytes(&FieldBytes::clone_from_slice(digest))
        .to_repr();
    let n = NistP256::ORDER.to_be_byte_array();
    let mut x = FieldBytes::clone_from_slice(d.as_bytes());
    let mut k = rfc6979::generate_k::<sha2::Sha256, _>(&x, &n, &h, &[]);
    x.as_mut_slice().zeroize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(k.as_slice());
    k.as_mut_slice().zeroize();
    out
}

fn sign_full(key: &KeyPair, digest: &[u8; DIGEST_LEN]) -> Result<Signature, Error> {
    let d = Zeroizing::new(limbs(key.secret.as_bytes()));
    if !cm4::check_range_n(&d) {
        return Err(Error::InvalidSecretKey);
    }
    let k = rfc6979_k(&key.secret, digest);
    let k = Zeroizing::new(limbs(&k));
    let (mut r, mut s) = ([0u32; 8], [0u32; 8]);
    if !cm4::sign(&mut r, &mut s, digest, &d, &k) {
        // s = 0 for this nonce, as RustCrypto's signer would refuse too.
        return Err(Error::InvalidSecretKey);
    }
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&bytes(&r));
    rs[32..].copy_from_slice(&bytes(&s));
    Ok(Signature::from_bytes(rs))
}

fn verify_full(key: &PublicKey, digest: &[u8; DIGEST_LEN], sig: &Signature) -> Result<(), Error> {
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    if !cm4::octet_string_to_point(&mut x, &mut y, key.as_bytes()) {
        return Err(Error::InvalidPublicKey);
    }
    let (mut rb, mut sb) = ([0u8; 32], [0u8; 32]);
    rb.copy_from_slice(&sig.as_bytes()[..32]);
    sb.copy_from_slice(&sig.as_bytes()[32..]);
    // `verify` refuses r or s outside 1..n itself.
    if cm4::verify(&x, &y, digest, &limbs(&rb), &limbs(&sb)) {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

impl P256 for Cm4P256Full {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error> {
        Cm4P256.generate(rng)
    }

    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error> {
        key_pair(secret)
    }

    fn ephemeral(
        &self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(EphemeralSecret, PublicKey), Error> {
        Cm4P256.ephemeral(rng)
    }

    fn agree_ephemeral(
        &self,
        secret: EphemeralSecret,
        peer: &PublicKey,
    ) -> Result<SharedSecret, Error> {
        Cm4P256.agree_ephemeral(secret, peer)
    }

    fn agree_static(&self, secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
        agree(secret, peer)
    }

    fn sign(
        &self,
        key: &KeyPair,
        message: &[u8],
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        sign_full(key, &Sha256::digest(message).into())
    }

    fn sign_digest(
        &self,
        key: &KeyPair,
        digest: &[u8; DIGEST_LEN],
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        sign_full(key, digest)
    }

    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> Result<(), Error> {
        verify_full(key, &Sha256::digest(message).into(), sig)
    }

    fn verify_digest(
        &self,
        key: &PublicKey,
        digest: &[u8; DIGEST_LEN],
        sig: &Signature,
    ) -> Result<(), Error> {
        verify_full(key, digest, sig)
    }
}
