//! The provider struct and the traits of its entries.

use core::fmt;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::keys::{
    EphemeralSecret, KeyPair, PublicKey, SecretKey, SharedSecret, Signature, DIGEST_LEN,
};
use crate::Error;

/// The cryptography a crate calls, one `&'static dyn` table per family.
///
/// A `&'static CryptoProvider` is what a crate's configuration holds
/// (e.g. `cssf_dtls::Config::crypto`): one pointer, no generic parameter
/// spreading through every type, no heap. The tables are static, so an
/// implementation carries its state in statics (a peripheral's registers,
/// counters) or none.
///
/// [`p256`](Self::p256) is routed through the provider (cssf-dtls's
/// handshakes, cssf-auth's ES256 tokens), and [`hash`](Self::hash) for
/// cssf-store's key derivation (filled in the RustCrypto backend); the
/// other entries are declared, `None` in the shipped backends (the crates
/// use their own RustCrypto code for them, which is what `None` means).
///
/// A provider that changes one entry of another:
///
/// ```
/// use cssf_provider::{counting::CountingP256, rustcrypto, CryptoProvider};
///
/// static COUNTED: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
/// static MINE: CryptoProvider = CryptoProvider {
///     name: "counted rustcrypto",
///     p256: &COUNTED,
///     ..rustcrypto::PROVIDER
/// };
///
/// let pair = MINE.p256.generate(&mut rand_core::OsRng)?;
/// assert_eq!(COUNTED.counts().generate, 1);
/// assert_eq!(format!("{MINE:?}"), r#"CryptoProvider("counted rustcrypto")"#);
/// # let _ = pair;
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct CryptoProvider {
    /// A name for logs and benchmark labels.
    pub name: &'static str,
    /// P-256: key generation, ECDH, ECDSA P-256/SHA-256.
    pub p256: &'static dyn P256,
    /// AEADs: cssf-dtls seals and opens its records through it for the
    /// algorithms it [`supports`](Aead::supports) (`None`, or an
    /// algorithm it does not support: the crate's own code).
    pub aead: Option<&'static dyn Aead>,
    /// SHA-256, HMAC, HKDF: cssf-store derives its keys through it
    /// (`None`: through [`rustcrypto::RustCryptoHash`](crate::rustcrypto::RustCryptoHash)).
    pub hash: Option<&'static dyn Hash>,
    /// A randomness source (declared; not routed yet: `None` means the
    /// caller's `CryptoRng`, passed to every call that needs one, which
    /// is how all crates take randomness today).
    pub random: Option<&'static dyn SecureRandom>,
}

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CryptoProvider").field(&self.name).finish()
    }
}

/// P-256 (secp256r1): key generation, ECDH, and ECDSA with SHA-256.
///
/// Points are uncompressed SEC1, signatures fixed-size `r || s`, shared
/// secrets the x coordinate. Every method that takes a peer's point
/// checks it is on the curve and refuses it with
/// [`Error::InvalidPublicKey`] otherwise; verification fails with
/// [`Error::BadSignature`].
///
/// The `rng` argument is the caller's generator; a backend with its own
/// (ring uses the operating system's; an accelerator its TRNG) may ignore
/// it, and says so. Signing in [`rustcrypto`](crate::rustcrypto) is
/// deterministic (RFC 6979) and takes nothing from it.
///
/// Implement it for a hardware accelerator and put it in a
/// [`CryptoProvider`]; forward what the hardware lacks to
/// [`rustcrypto::RustCryptoP256`](crate::rustcrypto::RustCryptoP256):
///
/// ```
/// use cssf_provider::*;
/// use rand_core::CryptoRngCore;
///
/// /// Verifies on "hardware"; everything else in software.
/// struct Accelerator;
/// impl P256 for Accelerator {
///     fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error> {
///         rustcrypto::RustCryptoP256.generate(rng)
///     }
///     fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error> {
///         rustcrypto::RustCryptoP256.key_pair(secret)
///     }
///     fn ephemeral(&self, rng: &mut dyn CryptoRngCore) -> Result<(EphemeralSecret, PublicKey), Error> {
///         rustcrypto::RustCryptoP256.ephemeral(rng)
///     }
///     fn agree_ephemeral(&self, s: EphemeralSecret, peer: &PublicKey) -> Result<SharedSecret, Error> {
///         rustcrypto::RustCryptoP256.agree_ephemeral(s, peer)
///     }
///     fn agree_static(&self, s: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
///         rustcrypto::RustCryptoP256.agree_static(s, peer)
///     }
///     fn sign(&self, k: &KeyPair, m: &[u8], rng: &mut dyn CryptoRngCore) -> Result<Signature, Error> {
///         rustcrypto::RustCryptoP256.sign(k, m, rng)
///     }
///     fn sign_digest(&self, k: &KeyPair, d: &[u8; 32], rng: &mut dyn CryptoRngCore) -> Result<Signature, Error> {
///         rustcrypto::RustCryptoP256.sign_digest(k, d, rng)
///     }
///     fn verify(&self, k: &PublicKey, m: &[u8], s: &Signature) -> Result<(), Error> {
///         rustcrypto::RustCryptoP256.verify(k, m, s) // the peripheral here
///     }
///     fn verify_digest(&self, k: &PublicKey, d: &[u8; 32], s: &Signature) -> Result<(), Error> {
///         rustcrypto::RustCryptoP256.verify_digest(k, d, s) // and here
///     }
/// }
/// static PROVIDER: CryptoProvider = CryptoProvider {
///     name: "accelerator",
///     p256: &Accelerator,
///     ..rustcrypto::PROVIDER
/// };
/// let k = PROVIDER.p256.generate(&mut rand_core::OsRng)?;
/// let s = PROVIDER.p256.sign(&k, b"m", &mut rand_core::OsRng)?;
/// PROVIDER.p256.verify(&k.public, b"m", &s)?;
/// # Ok::<(), Error>(())
/// ```
pub trait P256: Sync {
    /// A new static key pair from `rng`.
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error>;

    /// The key pair of `secret` (its public point computed).
    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error>;

    /// A new ephemeral ECDH key and its public point.
    fn ephemeral(&self, rng: &mut dyn CryptoRngCore)
        -> Result<(EphemeralSecret, PublicKey), Error>;

    /// ECDH of an ephemeral key (used up) with the peer's point.
    fn agree_ephemeral(
        &self,
        secret: EphemeralSecret,
        peer: &PublicKey,
    ) -> Result<SharedSecret, Error>;

    /// ECDH of a static key with the peer's point (EDHOC's static DH
    /// methods, RFC 9528 §5.2).
    fn agree_static(&self, secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error>;

    /// ECDSA over SHA-256 of `message`.
    fn sign(
        &self,
        key: &KeyPair,
        message: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error>;

    /// ECDSA over a SHA-256 `digest` computed by the caller (a running
    /// transcript hash, e.g. DTLS 1.2's CertificateVerify).
    fn sign_digest(
        &self,
        key: &KeyPair,
        digest: &[u8; DIGEST_LEN],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error>;

    /// Verifies an ECDSA signature over SHA-256 of `message`.
    fn verify(&self, key: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), Error>;

    /// Verifies an ECDSA signature over a SHA-256 `digest`.
    fn verify_digest(
        &self,
        key: &PublicKey,
        digest: &[u8; DIGEST_LEN],
        signature: &Signature,
    ) -> Result<(), Error>;
}

/// The AEAD algorithms CSSF uses.
///
/// ```
/// use cssf_provider::AeadAlgorithm;
/// assert_eq!(AeadAlgorithm::Aes128Ccm8.nonce_len(), 12);
/// assert_eq!(AeadAlgorithm::AesCcm16_64_128.nonce_len(), 13);
/// assert_eq!(AeadAlgorithm::ChaCha20Poly1305.tag_len(), 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AES-128-CCM with an 8-byte tag and a 12-byte nonce (DTLS's CCM_8,
    /// RFC 6655).
    Aes128Ccm8,
    /// AES-CCM-16-64-128: AES-128-CCM with an 8-byte tag and a 13-byte
    /// nonce (COSE algorithm 10, RFC 9053 §4.2; OSCORE, EDHOC suite 2).
    AesCcm16_64_128,
    /// ChaCha20-Poly1305 (RFC 8439).
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            AeadAlgorithm::Aes128Ccm8 | AeadAlgorithm::AesCcm16_64_128 => 16,
            AeadAlgorithm::ChaCha20Poly1305 => 32,
        }
    }

    /// Nonce length in bytes.
    pub const fn nonce_len(self) -> usize {
        match self {
            AeadAlgorithm::Aes128Ccm8 | AeadAlgorithm::ChaCha20Poly1305 => 12,
            AeadAlgorithm::AesCcm16_64_128 => 13,
        }
    }

    /// Tag length in bytes.
    pub const fn tag_len(self) -> usize {
        match self {
            AeadAlgorithm::Aes128Ccm8 | AeadAlgorithm::AesCcm16_64_128 => 8,
            AeadAlgorithm::ChaCha20Poly1305 => 16,
        }
    }
}

/// Authenticated encryption in place with a detached tag: cssf-dtls's
/// records go through it when a provider has one that supports their
/// algorithm.
///
/// One-shot: the key is passed with every call; a backend that needs a
/// key schedule computes it per call or caches it itself.
///
/// ```
/// use cssf_provider::rustcrypto;
/// // The RustCrypto provider leaves it to the crates' own code (the same
/// // RustCrypto AEADs); the ring provider fills it (ChaCha20-Poly1305).
/// assert!(rustcrypto::PROVIDER.aead.is_none());
/// ```
pub trait Aead: Sync {
    /// Whether `alg` is implemented.
    fn supports(&self, alg: AeadAlgorithm) -> bool;

    /// Encrypts `buffer` in place and writes the tag (lengths as
    /// [`AeadAlgorithm`] gives them, else [`Error::InvalidLength`]).
    fn seal_in_place(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), Error>;

    /// Checks `tag` and decrypts `buffer` in place ([`Error::BadTag`]
    /// otherwise, `buffer` then unspecified).
    fn open_in_place(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error>;
}

/// SHA-256, HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869), over data given in
/// pieces. Filled in the RustCrypto backend
/// ([`rustcrypto::RustCryptoHash`](crate::rustcrypto::RustCryptoHash));
/// cssf-store derives its record and header keys through it.
///
/// ```
/// use cssf_provider::{rustcrypto, Hash};
/// let hash = rustcrypto::PROVIDER.hash.ok_or(cssf_provider::Error::InvalidLength)?;
/// let prk = hash.hkdf_extract(b"salt", b"input key material");
/// let mut okm = [0u8; 32];
/// hash.hkdf_expand(&prk, &[b"info"], &mut okm)?;
/// assert_ne!(okm, [0; 32]);
/// # Ok::<(), cssf_provider::Error>(())
/// ```
pub trait Hash: Sync {
    /// SHA-256 of the concatenated `data`.
    fn sha256(&self, data: &[&[u8]]) -> [u8; DIGEST_LEN];

    /// HMAC-SHA-256 of the concatenated `data` under `key`.
    fn hmac_sha256(&self, key: &[u8], data: &[&[u8]]) -> Zeroizing<[u8; DIGEST_LEN]>;

    /// HKDF-Extract: the pseudorandom key of `ikm` under `salt`.
    fn hkdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; DIGEST_LEN]>;

    /// HKDF-Expand of `prk` with the concatenated `info` into `out`
    /// ([`Error::InvalidLength`] beyond 255 × 32 bytes).
    fn hkdf_expand(
        &self,
        prk: &[u8; DIGEST_LEN],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), Error>;
}

/// A source of cryptographically secure random bytes (declared; today
/// every crate takes the caller's `rand_core::CryptoRng` instead).
///
/// ```
/// use cssf_provider::rustcrypto;
/// assert!(rustcrypto::PROVIDER.random.is_none());
/// ```
pub trait SecureRandom: Sync {
    /// Fills `dest` ([`Error::Random`] if the source failed).
    fn fill(&self, dest: &mut [u8]) -> Result<(), Error>;
}
