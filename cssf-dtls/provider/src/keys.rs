//! The values a [`P256`](crate::P256) backend takes and returns: plain
//! bytes in the encodings the protocols use, so that any backend (a
//! library, an accelerator) can take them without knowing another
//! backend's types. Secrets are zeroized on drop.

use core::fmt;

use zeroize::Zeroizing;

use crate::Error;

/// Length of an uncompressed SEC1 P-256 point: `0x04 || x || y`.
pub const POINT_LEN: usize = 65;
/// Length of a P-256 private scalar, big-endian.
pub const SCALAR_LEN: usize = 32;
/// Length of a fixed-size ECDSA P-256 signature, `r || s` big-endian.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;

/// A P-256 public key: an uncompressed SEC1 point (`0x04 || x || y`).
///
/// [`from_sec1`](Self::from_sec1) checks only the form; whether the point
/// lies on the curve is checked by the backend that uses it (every
/// operation refuses one that does not with [`Error::InvalidPublicKey`]).
///
/// ```
/// use cssf_provider::PublicKey;
/// assert!(PublicKey::from_sec1(&[4; 65]).is_ok());
/// assert!(PublicKey::from_sec1(&[2; 33]).is_err()); // compressed: not taken
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; POINT_LEN]);

impl PublicKey {
    /// Takes an uncompressed point (65 bytes starting with 4).
    pub fn from_sec1(point: &[u8]) -> Result<Self, Error> {
        let p: [u8; POINT_LEN] = point.try_into().map_err(|_| Error::InvalidPublicKey)?;
        if p[0] != 4 {
            return Err(Error::InvalidPublicKey);
        }
        Ok(PublicKey(p))
    }

    /// The uncompressed SEC1 encoding.
    ///
    /// ```
    /// # use cssf_provider::PublicKey;
    /// assert_eq!(PublicKey::from_sec1(&[4; 65]).unwrap().as_bytes(), &[4; 65]);
    /// ```
    pub fn as_bytes(&self) -> &[u8; POINT_LEN] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        for b in self.0.iter().take(9) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// A P-256 private scalar (big-endian), zeroized on drop.
///
/// Whether it is in range (not zero, below the group order) is checked by
/// the backend that uses it ([`Error::InvalidSecretKey`]).
///
/// ```
/// use cssf_provider::SecretKey;
/// let k = SecretKey::from_bytes([7; 32]);
/// assert_eq!(k.as_bytes(), &[7; 32]);
/// assert_eq!(format!("{k:?}"), "SecretKey(..)");
/// ```
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; SCALAR_LEN]>);

impl SecretKey {
    /// Takes a big-endian scalar.
    pub fn from_bytes(scalar: [u8; SCALAR_LEN]) -> Self {
        SecretKey(Zeroizing::new(scalar))
    }

    /// Takes a big-endian scalar from a slice of exactly 32 bytes.
    ///
    /// ```
    /// # use cssf_provider::SecretKey;
    /// assert!(SecretKey::from_slice(&[1; 31]).is_err());
    /// ```
    pub fn from_slice(scalar: &[u8]) -> Result<Self, Error> {
        let mut k = SecretKey(Zeroizing::new([0; SCALAR_LEN]));
        if scalar.len() != SCALAR_LEN {
            return Err(Error::InvalidSecretKey);
        }
        k.0.copy_from_slice(scalar);
        Ok(k)
    }

    /// The big-endian scalar.
    pub fn as_bytes(&self) -> &[u8; SCALAR_LEN] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A static key pair: what signs, and what static ECDH uses.
///
/// [`P256::key_pair`](crate::P256::key_pair) computes the public half;
/// a pair put together by hand must match (a backend may refuse one that
/// does not, e.g. ring).
///
/// ```
/// use cssf_provider::{rustcrypto, SecretKey};
/// let pair = rustcrypto::PROVIDER.p256.key_pair(SecretKey::from_bytes([1; 32]))?;
/// assert_eq!(pair.public.as_bytes()[0], 4);
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The private scalar.
    pub secret: SecretKey,
    /// Its public point.
    pub public: PublicKey,
}

/// An ephemeral ECDH private key, used once by
/// [`P256::agree_ephemeral`](crate::P256::agree_ephemeral) and zeroized on
/// drop.
///
/// A backend that keeps keys outside the caller's memory (ring, whose
/// ephemeral keys cannot be exported; an accelerator with key slots)
/// holds its own form; others, and every backend's fallback, a scalar.
///
/// ```
/// use cssf_provider::{EphemeralSecret, SecretKey};
/// let e = EphemeralSecret::from_scalar(SecretKey::from_bytes([3; 32]));
/// assert_eq!(e.as_scalar().map(|k| k.as_bytes()[0]), Some(3));
/// ```
pub struct EphemeralSecret(pub(crate) Ephemeral);

pub(crate) enum Ephemeral {
    Scalar(SecretKey),
    // ring's key has no zeroize: ring wipes nothing on drop.
    #[cfg(feature = "ring")]
    Ring(::ring::agreement::EphemeralPrivateKey),
}

impl EphemeralSecret {
    /// An ephemeral key held as a scalar (what [`rustcrypto`](crate::rustcrypto)
    /// makes; a custom backend may make them too).
    pub fn from_scalar(scalar: SecretKey) -> Self {
        EphemeralSecret(Ephemeral::Scalar(scalar))
    }

    /// The scalar, if the key is held as one.
    pub fn as_scalar(&self) -> Option<&SecretKey> {
        match &self.0 {
            Ephemeral::Scalar(k) => Some(k),
            #[cfg(feature = "ring")]
            Ephemeral::Ring(_) => None,
        }
    }
}

impl fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EphemeralSecret(..)")
    }
}

/// An ECDH shared secret: the x coordinate of the shared point (RFC 8422
/// §5.10, RFC 9528 §5.1), zeroized on drop.
///
/// ```
/// use cssf_provider::SharedSecret;
/// let z = SharedSecret::from_bytes([9; 32]);
/// assert_eq!(z.as_bytes(), &[9; 32]);
/// ```
pub struct SharedSecret(Zeroizing<[u8; 32]>);

impl SharedSecret {
    /// Takes the x coordinate (what a custom backend returns).
    pub fn from_bytes(x: [u8; 32]) -> Self {
        SharedSecret(Zeroizing::new(x))
    }

    /// The x coordinate.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// A fixed-size ECDSA P-256 signature, `r || s` (COSE's form, RFC 9053
/// §2.1; DTLS carries it DER-encoded and converts).
///
/// ```
/// use cssf_provider::Signature;
/// let s = Signature::from_slice(&[1; 64])?;
/// assert_eq!(s.as_bytes(), &[1; 64]);
/// assert!(Signature::from_slice(&[1; 70]).is_err());
/// # Ok::<(), cssf_provider::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Takes `r || s`.
    pub fn from_bytes(rs: [u8; SIGNATURE_LEN]) -> Self {
        Signature(rs)
    }

    /// Takes `r || s` from a slice of exactly 64 bytes.
    pub fn from_slice(rs: &[u8]) -> Result<Self, Error> {
        rs.try_into()
            .map(Signature)
            .map_err(|_| Error::BadSignature)
    }

    /// `r || s`.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }
}
