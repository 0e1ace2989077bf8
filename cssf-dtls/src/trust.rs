//! Peer authentication with raw public keys (RFC 7250, RFC 7925 §4.4): who
//! is trusted is decided by the caller through [`TrustStore`] (feature
//! `ecdhe`; without it only [`RejectAll`] exists, the trust store type of
//! PSK clients and servers).

#[cfg(feature = "ecdhe")]
use p256::PublicKey;

#[cfg(feature = "ecdhe")]
pub use p256::ecdsa::SigningKey;

#[cfg(not(feature = "ecdhe"))]
pub(crate) use sealed::TrustStore;

/// Without `ecdhe` no peer key is ever checked: the connection still takes
/// a trust store argument, of this unnameable trait that only [`RejectAll`]
/// implements.
#[cfg(not(feature = "ecdhe"))]
mod sealed {
    pub trait TrustStore {}
    impl TrustStore for super::RejectAll {}
}

/// Decides whether a peer's P-256 public key is accepted.
///
/// The key handed in has already been decoded from a strictly parsed
/// SubjectPublicKeyInfo and checked to be a valid point on the curve (not
/// the identity); the handshake proves the peer holds its private key.
#[cfg(feature = "ecdhe")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
pub trait TrustStore {
    /// True when `key` may authenticate the peer.
    fn is_trusted(&self, key: &PublicKey) -> bool;

    /// True when the peer's X.509 end-entity `certificate` (DER, feature
    /// `x509`), whose P-256 key is `key`, may authenticate it. By default
    /// the key decides ([`is_trusted`](Self::is_trusted), i.e. pinning).
    fn is_trusted_certificate(&self, certificate: &[u8], key: &PublicKey) -> bool {
        let _ = certificate;
        self.is_trusted(key)
    }
}

#[cfg(feature = "ecdhe")]
impl<T: TrustStore + ?Sized> TrustStore for &T {
    fn is_trusted(&self, key: &PublicKey) -> bool {
        (**self).is_trusted(key)
    }
    fn is_trusted_certificate(&self, certificate: &[u8], key: &PublicKey) -> bool {
        (**self).is_trusted_certificate(certificate, key)
    }
}

/// Trusts nobody: the trust store of PSK-only clients and servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectAll;

#[cfg(feature = "ecdhe")]
impl TrustStore for RejectAll {
    fn is_trusted(&self, _: &PublicKey) -> bool {
        false
    }
}

/// A fixed list of pinned public keys (RFC 7250 §6: the out-of-band binding
/// of a key to an identity).
///
/// ```
/// use cssf_dtls::{PinnedKeys, SigningKey, TrustStore};
/// # let mut rng = cssf_netsim::SimRng::new(1);
/// let server_key = SigningKey::random(&mut rng);
/// let other = SigningKey::random(&mut rng);
/// let pins = [p256::PublicKey::from(server_key.verifying_key())];
/// let trust = PinnedKeys::new(&pins);
/// assert!(trust.is_trusted(&server_key.verifying_key().into()));
/// assert!(!trust.is_trusted(&other.verifying_key().into()));
/// ```
#[cfg(feature = "ecdhe")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
#[derive(Debug, Clone, Copy)]
pub struct PinnedKeys<'a> {
    keys: &'a [PublicKey],
}

#[cfg(feature = "ecdhe")]
impl<'a> PinnedKeys<'a> {
    /// Trusts exactly `keys`.
    pub const fn new(keys: &'a [PublicKey]) -> Self {
        PinnedKeys { keys }
    }
}

#[cfg(feature = "ecdhe")]
impl TrustStore for PinnedKeys<'_> {
    fn is_trusted(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// Lets a closure decide (a lookup in a device registry, say).
///
/// ```
/// use cssf_dtls::{FnTrust, TrustStore, SigningKey};
/// # let mut rng = cssf_netsim::SimRng::new(1);
/// let k = SigningKey::random(&mut rng);
/// assert!(FnTrust(|_: &p256::PublicKey| true).is_trusted(&k.verifying_key().into()));
/// ```
#[cfg(feature = "ecdhe")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
#[derive(Debug, Clone, Copy)]
pub struct FnTrust<F>(pub F);

#[cfg(feature = "ecdhe")]
impl<F: Fn(&PublicKey) -> bool> TrustStore for FnTrust<F> {
    fn is_trusted(&self, key: &PublicKey) -> bool {
        (self.0)(key)
    }
}
