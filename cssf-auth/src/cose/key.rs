//! Keys that carry their algorithm (RFC 9052 §7, RFC 9053), and how a
//! verifier finds the one to use.
//!
//! A [`CoseKey`] is bound to exactly one [`Algorithm`]: an HMAC key can only
//! check a COSE_Mac0 with that HMAC algorithm, an ES256 public key only a
//! COSE_Sign1 with ES256. The algorithm named in a message selects the key,
//! never the other way round, so no message can make a key be used with an
//! algorithm it was not configured for.

use p256::ecdsa::VerifyingKey;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::bytes::Bytes;
use crate::cose::hmac_pre::HmacMidstate;
use crate::cose::Algorithm;
use crate::Error;

/// Longest symmetric key accepted (an HMAC-SHA256 key longer than the block
/// size would be hashed first; we do not accept those).
pub const MAX_SYMMETRIC_KEY_LEN: usize = 64;
/// Longest key identifier stored.
pub const MAX_KID_LEN: usize = 32;

/// A symmetric secret, zeroized on drop, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey {
    bytes: [u8; MAX_SYMMETRIC_KEY_LEN],
    len: usize,
    /// HMAC keys made by [`CoseKey::hmac`]: the precomputed inner / outer
    /// SHA-256 states.
    hmac: Option<HmacMidstate>,
}

impl SymmetricKey {
    /// Copies `k`; [`Error::TooLarge`] above [`MAX_SYMMETRIC_KEY_LEN`], and
    /// [`Error::Malformed`] if empty.
    pub fn new(k: &[u8]) -> Result<Self, Error> {
        if k.is_empty() {
            return Err(Error::Malformed);
        }
        let mut bytes = [0; MAX_SYMMETRIC_KEY_LEN];
        bytes
            .get_mut(..k.len())
            .ok_or(Error::TooLarge)?
            .copy_from_slice(k);
        Ok(Self {
            bytes,
            len: k.len(),
            hmac: None,
        })
    }

    pub(crate) fn hmac_midstate(&self) -> Option<&HmacMidstate> {
        self.hmac.as_ref()
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl core::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SymmetricKey({} bytes)", self.len)
    }
}

/// A key bound to its algorithm.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum CoseKey {
    /// ES256 public key: verifies COSE_Sign1 with alg -7.
    Es256(VerifyingKey),
    /// ES256 private key (issuer side): signs COSE_Sign1 with alg -7.
    #[cfg(feature = "issuer")]
    Es256Signing(p256::ecdsa::SigningKey),
    /// HMAC 256/64 key (alg 4).
    Hmac256_64(SymmetricKey),
    /// HMAC 256/256 key (alg 5).
    Hmac256(SymmetricKey),
    /// AES-CCM-16-64-128 key (alg 10), 16 bytes, with an optional base IV
    /// for messages that carry a Partial IV.
    AesCcm16_64_128 {
        /// The 16-byte key.
        key: SymmetricKey,
        /// The base IV (Context IV, RFC 9052 §3.1), 13 bytes, if any.
        base_iv: Option<[u8; 13]>,
    },
    /// ChaCha20/Poly1305 key (alg 24), 32 bytes, optional 12-byte base IV.
    ChaCha20Poly1305 {
        /// The 32-byte key.
        key: SymmetricKey,
        /// The base IV, 12 bytes, if any.
        base_iv: Option<[u8; 12]>,
    },
}

impl CoseKey {
    /// The one algorithm this key may be used with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            CoseKey::Es256(_) => Algorithm::Es256,
            #[cfg(feature = "issuer")]
            CoseKey::Es256Signing(_) => Algorithm::Es256,
            CoseKey::Hmac256_64(_) => Algorithm::Hmac256_64,
            CoseKey::Hmac256(_) => Algorithm::Hmac256,
            CoseKey::AesCcm16_64_128 { .. } => Algorithm::AesCcm16_64_128,
            CoseKey::ChaCha20Poly1305 { .. } => Algorithm::ChaCha20Poly1305,
        }
    }

    /// An ES256 verification key from its affine coordinates (32 bytes each).
    pub fn es256_from_xy(x: &[u8], y: &[u8]) -> Result<Self, Error> {
        if x.len() != 32 || y.len() != 32 {
            return Err(Error::InvalidPopKey);
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..33].copy_from_slice(x);
        sec1[33..].copy_from_slice(y);
        VerifyingKey::from_sec1_bytes(&sec1)
            .map(CoseKey::Es256)
            .map_err(|_| Error::InvalidPopKey)
    }

    /// An HMAC key for `alg` (4 or 5).
    pub fn hmac(alg: Algorithm, k: &[u8]) -> Result<Self, Error> {
        let mut k = SymmetricKey::new(k)?;
        k.hmac = Some(HmacMidstate::new(k.as_bytes()));
        match alg {
            Algorithm::Hmac256_64 => Ok(CoseKey::Hmac256_64(k)),
            Algorithm::Hmac256 => Ok(CoseKey::Hmac256(k)),
            _ => Err(Error::UnsupportedAlgorithm),
        }
    }

    /// An AEAD key for `alg` (10 or 24) of the right length, no base IV.
    pub fn aead(alg: Algorithm, k: &[u8]) -> Result<Self, Error> {
        match (alg, k.len()) {
            (Algorithm::AesCcm16_64_128, 16) => Ok(CoseKey::AesCcm16_64_128 {
                key: SymmetricKey::new(k)?,
                base_iv: None,
            }),
            (Algorithm::ChaCha20Poly1305, 32) => Ok(CoseKey::ChaCha20Poly1305 {
                key: SymmetricKey::new(k)?,
                base_iv: None,
            }),
            (Algorithm::AesCcm16_64_128 | Algorithm::ChaCha20Poly1305, _) => {
                Err(Error::InvalidPopKey)
            }
            _ => Err(Error::UnsupportedAlgorithm),
        }
    }
}

/// A configured key and its optional key identifier.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyEntry {
    /// The key identifier messages name it by, if any.
    pub kid: Option<Bytes<MAX_KID_LEN>>,
    /// The key, bound to its algorithm.
    pub key: CoseKey,
}

impl KeyEntry {
    /// A key with a kid (at most [`MAX_KID_LEN`] bytes).
    pub fn with_kid(kid: &[u8], key: CoseKey) -> Result<Self, Error> {
        Ok(Self {
            kid: Some(Bytes::from_slice(kid)?),
            key,
        })
    }

    /// A key without a kid.
    pub fn new(key: CoseKey) -> Self {
        Self { kid: None, key }
    }
}

/// How a verifier finds the key for a message: by the message's protected
/// algorithm and its kid. Implement it over your own key storage, or use the
/// implementation for slices of [`KeyEntry`].
pub trait KeyResolver {
    /// The key for `alg` named `kid`. When the message carries no kid, any key
    /// for `alg` may be returned. Must never return a key whose
    /// [`CoseKey::algorithm`] differs from `alg` (checked again by the caller).
    ///
    /// The slice implementation: a key configured with a kid matches
    /// messages with that kid only; a key configured without one matches a
    /// message with no kid, and a message whose kid names no configured key
    /// (Authorization Servers such as Python `cwt` always send one). A kid
    /// is a hint, never a credential: the signature or MAC decides.
    fn resolve(&self, kid: Option<&[u8]>, alg: Algorithm) -> Option<&CoseKey>;
}

impl KeyResolver for [KeyEntry] {
    fn resolve(&self, kid: Option<&[u8]>, alg: Algorithm) -> Option<&CoseKey> {
        let mut for_alg = self.iter().filter(|e| e.key.algorithm() == alg);
        match kid {
            None => for_alg.next(),
            Some(k) => {
                let named = for_alg
                    .clone()
                    .find(|e| e.kid.as_ref().is_some_and(|ek| ek.as_slice() == k));
                named.or_else(|| for_alg.find(|e| e.kid.is_none()))
            }
        }
        .map(|e| &e.key)
    }
}

impl<const N: usize> KeyResolver for [KeyEntry; N] {
    fn resolve(&self, kid: Option<&[u8]>, alg: Algorithm) -> Option<&CoseKey> {
        self.as_slice().resolve(kid, alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_never_crosses_algorithms() {
        let keys = [
            KeyEntry::with_kid(b"a", CoseKey::hmac(Algorithm::Hmac256, &[1; 32]).unwrap()).unwrap(),
            KeyEntry::with_kid(
                b"b",
                CoseKey::aead(Algorithm::AesCcm16_64_128, &[2; 16]).unwrap(),
            )
            .unwrap(),
        ];
        assert!(keys.resolve(Some(b"a"), Algorithm::Hmac256).is_some());
        assert!(keys.resolve(Some(b"a"), Algorithm::Hmac256_64).is_none());
        assert!(keys.resolve(Some(b"b"), Algorithm::Hmac256).is_none());
        assert!(keys.resolve(None, Algorithm::AesCcm16_64_128).is_some());
        assert!(keys.resolve(None, Algorithm::Es256).is_none());
        // a kid naming no key falls back to a key configured without one
        assert!(keys.resolve(Some(b"zz"), Algorithm::Hmac256).is_none());
        let open = [
            KeyEntry::with_kid(b"a", CoseKey::hmac(Algorithm::Hmac256, &[1; 32]).unwrap()).unwrap(),
            KeyEntry::new(CoseKey::hmac(Algorithm::Hmac256, &[3; 32]).unwrap()),
        ];
        let k1 = open.resolve(Some(b"a"), Algorithm::Hmac256).unwrap();
        let k3 = open.resolve(Some(b"zz"), Algorithm::Hmac256).unwrap();
        assert_eq!(*k1, open[0].key);
        assert_eq!(*k3, open[1].key);
        assert!(open.resolve(Some(b"zz"), Algorithm::Hmac256_64).is_none());
        assert_eq!(
            CoseKey::aead(Algorithm::AesCcm16_64_128, &[0; 15]),
            Err(Error::InvalidPopKey)
        );
    }
}
