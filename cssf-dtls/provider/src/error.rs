//! The one error type of every provider entry.

use core::fmt;

/// Why a provider operation failed.
///
/// ```
/// use cssf_provider::{rustcrypto, PublicKey, Error};
/// // Not a point on the curve.
/// let bogus = PublicKey::from_sec1(&[4; 65]).unwrap();
/// let (e, _) = rustcrypto::PROVIDER.p256.ephemeral(&mut rand_core::OsRng).unwrap();
/// let err = rustcrypto::PROVIDER.p256.agree_ephemeral(e, &bogus).unwrap_err();
/// assert_eq!(err, Error::InvalidPublicKey);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A public key that is not an uncompressed point on the curve, or the
    /// identity.
    InvalidPublicKey,
    /// A private scalar that is zero or not below the group order, or a
    /// key the backend cannot use (one made by another backend).
    InvalidSecretKey,
    /// A signature that does not verify or is malformed (`r` or `s` zero
    /// or not below the group order).
    BadSignature,
    /// An AEAD tag that does not verify.
    BadTag,
    /// A length the algorithm does not take (key, nonce, tag, output).
    InvalidLength,
    /// The backend does not implement this entry or algorithm.
    Unsupported,
    /// The random number generator failed.
    Random,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::InvalidPublicKey => "invalid public key",
            Error::InvalidSecretKey => "invalid secret key",
            Error::BadSignature => "signature does not verify",
            Error::BadTag => "authentication tag does not verify",
            Error::InvalidLength => "invalid length",
            Error::Unsupported => "not supported by this provider",
            Error::Random => "random number generator failed",
        })
    }
}

impl core::error::Error for Error {}
