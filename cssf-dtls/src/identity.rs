//! Who the peer of a session is: what its handshake proved, never what it
//! claimed (DESIGN.md, "Sessions, identity and authorization").
//!
//! A PSK identity travels in clear in the ClientKeyExchange and a raw
//! public key in the Certificate message; either is only an identity once
//! the peer's Finished verified (it then proved it holds the PSK, or the
//! private key through its CertificateVerify or ServerKeyExchange
//! signature). Before that, nothing here is reported.

use core::fmt;

use crate::psk::MAX_IDENTITY_LEN;
use crate::Error;

/// A PSK identity (RFC 4279 §5.1: opaque bytes, up to
/// [`MAX_IDENTITY_LEN`] here).
///
/// ```
/// use cssf_dtls::PskIdentity;
/// let id = PskIdentity::new(b"Client_identity").unwrap();
/// assert_eq!(id.as_bytes(), b"Client_identity");
/// assert!(PskIdentity::new(&[0; 200]).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct PskIdentity(heapless::Vec<u8, MAX_IDENTITY_LEN>);

impl PskIdentity {
    /// `identity`, or `Error::Config` if it is longer than [`MAX_IDENTITY_LEN`].
    pub fn new(identity: &[u8]) -> Result<Self, Error> {
        heapless::Vec::from_slice(identity)
            .map(PskIdentity)
            .map_err(|_| Error::Config)
    }

    /// The identity's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::ops::Deref for PskIdentity {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PskIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(&self.0) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "{s:?}"),
            _ => {
                for b in self.0.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// What a handshake proved about the peer.
///
/// ```
/// use cssf_dtls::{Identity, PskIdentity};
/// let id = Identity::Psk(PskIdentity::new(b"sensor-17").unwrap());
/// assert_eq!(id.psk_identity(), Some(&b"sensor-17"[..]));
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Identity {
    /// The peer knows the PSK of this identity (RFC 4279; the PSK and
    /// ECDHE_PSK suites). For a client, the identity it used, which the
    /// server proved it knows the key of.
    Psk(PskIdentity),
    /// The peer holds the private key of this raw public key (RFC 7250),
    /// which the trust store accepted.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    RawPublicKey(p256::PublicKey),
    /// The peer holds the private key of this X.509 end-entity
    /// certificate's P-256 key, which the trust store accepted (feature
    /// `x509`).
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    Certificate(p256::PublicKey),
}

impl Identity {
    /// The PSK identity, for [`Identity::Psk`].
    pub fn psk_identity(&self) -> Option<&[u8]> {
        match self {
            Identity::Psk(id) => Some(id.as_bytes()),
            #[cfg(feature = "ecdhe")]
            _ => None,
        }
    }

    /// The peer's public key, for a raw public key or a certificate.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn public_key(&self) -> Option<&p256::PublicKey> {
        match self {
            Identity::RawPublicKey(k) | Identity::Certificate(k) => Some(k),
            Identity::Psk(_) => None,
        }
    }
}
