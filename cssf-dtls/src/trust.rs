//! Peer authentication with raw public keys (RFC 7250, RFC 7925 §4.4): who
//! is trusted is decided by the caller through [`TrustStore`] (feature
//! `ecdhe`; without it only [`RejectAll`] exists, the trust store type of
//! PSK clients and servers).

#[cfg(feature = "ecdhe")]
use p256::PublicKey;

#[cfg(feature = "ecdhe")]
use crate::identity::Identity;
#[cfg(feature = "ecdhe")]
use crate::psk::PeerContext;

#[cfg(feature = "ecdhe")]
pub use p256::ecdsa::SigningKey;

/// Our signing key as the crypto provider takes it: the scalar and the
/// public point already computed in `key` (no scalar multiplication).
#[cfg(feature = "ecdhe")]
pub(crate) fn key_pair(key: &SigningKey) -> Result<cssf_provider::KeyPair, crate::Error> {
    use zeroize::Zeroize;
    let mut d: [u8; 32] = key.to_bytes().into();
    let secret = cssf_provider::SecretKey::from_bytes(d);
    d.zeroize();
    let public = key.verifying_key().to_encoded_point(false);
    let public = cssf_provider::PublicKey::from_sec1(public.as_bytes())
        .map_err(|_| crate::Error::Internal)?;
    Ok(cssf_provider::KeyPair { secret, public })
}

#[cfg(not(feature = "ecdhe"))]
pub(crate) use sealed::TrustStore;

/// Without `ecdhe` no peer key is ever checked: clients and endpoints still
/// take a trust store argument, of this unnameable trait that only
/// [`RejectAll`] implements.
#[cfg(not(feature = "ecdhe"))]
mod sealed {
    pub trait TrustStore<A> {}
    impl<A> TrustStore<A> for super::RejectAll {}
}

/// Decides whether a peer's P-256 public key is accepted, for a peer at
/// address type `A`.
///
/// The key handed in has already been decoded from a strictly parsed
/// SubjectPublicKeyInfo and checked to be a valid point on the curve (not
/// the identity); accepting it does not make it an identity yet: the
/// handshake then proves the peer holds its private key, and only a
/// session whose Finished verified reports it
/// ([`Identity::RawPublicKey`](crate::Identity)).
#[cfg(feature = "ecdhe")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
pub trait TrustStore<A> {
    /// True when `key` may authenticate the peer.
    fn is_trusted(&self, cx: &PeerContext<'_, A>, key: &PublicKey) -> bool;

    /// True when the peer's X.509 end-entity `certificate` (DER, feature
    /// `x509`), whose P-256 key is `key`, may authenticate it. By default
    /// the key decides ([`is_trusted`](Self::is_trusted), i.e. pinning).
    fn is_trusted_certificate(
        &self,
        cx: &PeerContext<'_, A>,
        certificate: &[u8],
        key: &PublicKey,
    ) -> bool {
        let _ = certificate;
        self.is_trusted(cx, key)
    }

    /// Whether a session whose peer proved `identity` (a raw public key or
    /// a certificate's key) may still be resumed: an abbreviated handshake
    /// proves only the old master secret. By default a raw public key is
    /// asked about again ([`is_trusted`](Self::is_trusted)), so a key
    /// removed from the store cannot resume; a certificate's key is not
    /// (the certificate is not kept): override to revoke it.
    fn may_resume(&self, cx: &PeerContext<'_, A>, identity: &Identity) -> bool {
        match identity {
            Identity::RawPublicKey(k) => self.is_trusted(cx, k),
            _ => true,
        }
    }
}

#[cfg(feature = "ecdhe")]
impl<A, T: TrustStore<A> + ?Sized> TrustStore<A> for &T {
    fn is_trusted(&self, cx: &PeerContext<'_, A>, key: &PublicKey) -> bool {
        (**self).is_trusted(cx, key)
    }
    fn is_trusted_certificate(
        &self,
        cx: &PeerContext<'_, A>,
        certificate: &[u8],
        key: &PublicKey,
    ) -> bool {
        (**self).is_trusted_certificate(cx, certificate, key)
    }
    fn may_resume(&self, cx: &PeerContext<'_, A>, identity: &Identity) -> bool {
        (**self).may_resume(cx, identity)
    }
}

/// Trusts nobody: the trust store of PSK-only clients and servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectAll;

#[cfg(feature = "ecdhe")]
impl<A> TrustStore<A> for RejectAll {
    fn is_trusted(&self, _: &PeerContext<'_, A>, _: &PublicKey) -> bool {
        false
    }
}

/// A fixed list of pinned public keys (RFC 7250 §6: the out-of-band binding
/// of a key to an identity).
///
/// ```
/// use cssf_dtls::{PeerContext, PinnedKeys, SessionHandle, SigningKey, TrustStore};
/// use core::time::Duration;
/// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
/// let server_key = SigningKey::random(&mut rng);
/// let other = SigningKey::random(&mut rng);
/// let pins = [p256::PublicKey::from(server_key.verifying_key())];
/// let trust = PinnedKeys::new(&pins);
/// let cx = PeerContext::new(SessionHandle::CLIENT, &5684u16, Duration::ZERO);
/// assert!(trust.is_trusted(&cx, &server_key.verifying_key().into()));
/// assert!(!trust.is_trusted(&cx, &other.verifying_key().into()));
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
impl<A> TrustStore<A> for PinnedKeys<'_> {
    fn is_trusted(&self, _: &PeerContext<'_, A>, key: &PublicKey) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// Lets a closure decide (a lookup in a device registry, say).
///
/// ```
/// use cssf_dtls::{FnTrust, PeerContext, SessionHandle, SigningKey, TrustStore};
/// use core::time::Duration;
/// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
/// let k = SigningKey::random(&mut rng);
/// let cx = PeerContext::new(SessionHandle::CLIENT, &5684u16, Duration::ZERO);
/// assert!(FnTrust(|_: &p256::PublicKey| true).is_trusted(&cx, &k.verifying_key().into()));
/// ```
#[cfg(feature = "ecdhe")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
#[derive(Debug, Clone, Copy)]
pub struct FnTrust<F>(pub F);

#[cfg(feature = "ecdhe")]
impl<A, F: Fn(&PublicKey) -> bool> TrustStore<A> for FnTrust<F> {
    fn is_trusted(&self, _: &PeerContext<'_, A>, key: &PublicKey) -> bool {
        (self.0)(key)
    }
}
