//! [`CountingP256`]: a [`P256`] that counts the calls of each entry and
//! forwards them to another implementation. A test double (it shows a
//! crate routes each operation through its provider, and how many times)
//! and the shape of a hardware backend: a static implementing [`P256`],
//! plugged in without forking a crate.

use core::sync::atomic::{AtomicU32, Ordering};

use rand_core::CryptoRngCore;

use crate::keys::DIGEST_LEN;
use crate::{
    Aead, AeadAlgorithm, EphemeralSecret, Error, KeyPair, PublicKey, SecretKey, SharedSecret,
    Signature, P256,
};

/// Calls of each [`P256`] entry, as counted by a [`CountingP256`].
///
/// ```
/// use cssf_provider::counting::Counts;
/// let c = Counts { sign: 1, ..Counts::default() };
/// assert_eq!(c.total(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// [`P256::generate`].
    pub generate: u32,
    /// [`P256::key_pair`].
    pub key_pair: u32,
    /// [`P256::ephemeral`].
    pub ephemeral: u32,
    /// [`P256::agree_ephemeral`].
    pub agree_ephemeral: u32,
    /// [`P256::agree_static`].
    pub agree_static: u32,
    /// [`P256::sign`].
    pub sign: u32,
    /// [`P256::sign_digest`].
    pub sign_digest: u32,
    /// [`P256::verify`].
    pub verify: u32,
    /// [`P256::verify_digest`].
    pub verify_digest: u32,
}

impl Counts {
    /// All calls together.
    pub fn total(&self) -> u32 {
        self.generate
            + self.key_pair
            + self.ephemeral
            + self.agree_ephemeral
            + self.agree_static
            + self.sign
            + self.sign_digest
            + self.verify
            + self.verify_digest
    }
}

/// Forwards every call to `inner` and counts it (successful or not).
///
/// ```
/// use cssf_provider::counting::{CountingP256, Counts};
/// use cssf_provider::{rustcrypto::RustCryptoP256, P256};
///
/// static P: CountingP256 = CountingP256::new(&RustCryptoP256);
/// let (e, _) = P.ephemeral(&mut rand_core::OsRng)?;
/// let (_, peer) = P.ephemeral(&mut rand_core::OsRng)?;
/// P.agree_ephemeral(e, &peer)?;
/// assert_eq!(P.counts(), Counts { ephemeral: 2, agree_ephemeral: 1, ..Counts::default() });
/// P.reset();
/// assert_eq!(P.counts().total(), 0);
/// # Ok::<(), cssf_provider::Error>(())
/// ```
pub struct CountingP256 {
    inner: &'static dyn P256,
    c: [AtomicU32; 9],
}

impl core::fmt::Debug for CountingP256 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("CountingP256").field(&self.counts()).finish()
    }
}

const GENERATE: usize = 0;
const KEY_PAIR: usize = 1;
const EPHEMERAL: usize = 2;
const AGREE_EPHEMERAL: usize = 3;
const AGREE_STATIC: usize = 4;
const SIGN: usize = 5;
const SIGN_DIGEST: usize = 6;
const VERIFY: usize = 7;
const VERIFY_DIGEST: usize = 8;

impl CountingP256 {
    /// Counts calls forwarded to `inner`, all counts zero.
    pub const fn new(inner: &'static dyn P256) -> Self {
        CountingP256 {
            inner,
            c: [const { AtomicU32::new(0) }; 9],
        }
    }

    fn bump(&self, i: usize) {
        if let Some(c) = self.c.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, i: usize) -> u32 {
        self.c.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The calls so far.
    pub fn counts(&self) -> Counts {
        Counts {
            generate: self.get(GENERATE),
            key_pair: self.get(KEY_PAIR),
            ephemeral: self.get(EPHEMERAL),
            agree_ephemeral: self.get(AGREE_EPHEMERAL),
            agree_static: self.get(AGREE_STATIC),
            sign: self.get(SIGN),
            sign_digest: self.get(SIGN_DIGEST),
            verify: self.get(VERIFY),
            verify_digest: self.get(VERIFY_DIGEST),
        }
    }

    /// Sets every count to zero.
    pub fn reset(&self) {
        for c in &self.c {
            c.store(0, Ordering::Relaxed);
        }
    }
}

impl P256 for CountingP256 {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<KeyPair, Error> {
        self.bump(GENERATE);
        self.inner.generate(rng)
    }

    fn key_pair(&self, secret: SecretKey) -> Result<KeyPair, Error> {
        self.bump(KEY_PAIR);
        self.inner.key_pair(secret)
    }

    fn ephemeral(
        &self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(EphemeralSecret, PublicKey), Error> {
        self.bump(EPHEMERAL);
        self.inner.ephemeral(rng)
    }

    fn agree_ephemeral(
        &self,
        secret: EphemeralSecret,
        peer: &PublicKey,
    ) -> Result<SharedSecret, Error> {
        self.bump(AGREE_EPHEMERAL);
        self.inner.agree_ephemeral(secret, peer)
    }

    fn agree_static(&self, secret: &SecretKey, peer: &PublicKey) -> Result<SharedSecret, Error> {
        self.bump(AGREE_STATIC);
        self.inner.agree_static(secret, peer)
    }

    fn sign(
        &self,
        key: &KeyPair,
        message: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        self.bump(SIGN);
        self.inner.sign(key, message, rng)
    }

    fn sign_digest(
        &self,
        key: &KeyPair,
        digest: &[u8; DIGEST_LEN],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Signature, Error> {
        self.bump(SIGN_DIGEST);
        self.inner.sign_digest(key, digest, rng)
    }

    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> Result<(), Error> {
        self.bump(VERIFY);
        self.inner.verify(key, message, sig)
    }

    fn verify_digest(
        &self,
        key: &PublicKey,
        digest: &[u8; DIGEST_LEN],
        sig: &Signature,
    ) -> Result<(), Error> {
        self.bump(VERIFY_DIGEST);
        self.inner.verify_digest(key, digest, sig)
    }
}

/// An [`Aead`] that counts seals and opens (successful or not) and
/// forwards them to `inner`: the shape of a hardware AEAD engine plugged
/// in without forking a crate, and a test double showing which records go
/// through the provider.
///
/// ```
/// use cssf_provider::counting::CountingAead;
/// use cssf_provider::{Aead, AeadAlgorithm, Error};
///
/// // An "accelerator" that can do nothing: every call is counted, none
/// // supported.
/// struct Nothing;
/// impl Aead for Nothing {
///     fn supports(&self, _: AeadAlgorithm) -> bool { false }
///     fn seal_in_place(&self, _: AeadAlgorithm, _: &[u8], _: &[u8], _: &[u8], _: &mut [u8], _: &mut [u8]) -> Result<(), Error> { Err(Error::InvalidLength) }
///     fn open_in_place(&self, _: AeadAlgorithm, _: &[u8], _: &[u8], _: &[u8], _: &mut [u8], _: &[u8]) -> Result<(), Error> { Err(Error::BadTag) }
/// }
/// static A: CountingAead = CountingAead::new(&Nothing);
/// assert!(!A.supports(AeadAlgorithm::Aes128Ccm8));
/// assert!(A.open_in_place(AeadAlgorithm::Aes128Ccm8, &[0; 16], &[0; 12], &[], &mut [], &[0; 8]).is_err());
/// assert_eq!((A.seals(), A.opens()), (0, 1));
/// ```
pub struct CountingAead {
    inner: &'static dyn Aead,
    seals: AtomicU32,
    opens: AtomicU32,
}

impl core::fmt::Debug for CountingAead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CountingAead")
            .field("seals", &self.seals())
            .field("opens", &self.opens())
            .finish()
    }
}

impl CountingAead {
    /// Counts calls forwarded to `inner`, both counts zero.
    pub const fn new(inner: &'static dyn Aead) -> Self {
        CountingAead {
            inner,
            seals: AtomicU32::new(0),
            opens: AtomicU32::new(0),
        }
    }

    /// [`Aead::seal_in_place`] calls so far.
    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::Relaxed)
    }

    /// [`Aead::open_in_place`] calls so far.
    pub fn opens(&self) -> u32 {
        self.opens.load(Ordering::Relaxed)
    }

    /// Sets both counts to zero.
    pub fn reset(&self) {
        self.seals.store(0, Ordering::Relaxed);
        self.opens.store(0, Ordering::Relaxed);
    }
}

impl Aead for CountingAead {
    fn supports(&self, alg: AeadAlgorithm) -> bool {
        self.inner.supports(alg)
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
        self.seals.fetch_add(1, Ordering::Relaxed);
        self.inner.seal_in_place(alg, key, nonce, aad, buffer, tag)
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
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.inner.open_in_place(alg, key, nonce, aad, buffer, tag)
    }
}
