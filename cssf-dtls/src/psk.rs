//! Pre-shared keys (RFC 4279): how a server finds the key for a client.

use core::time::Duration;

use zeroize::Zeroizing;

use crate::Error;

use crate::event::SessionHandle;

/// Maximum PSK length in bytes (RFC 4279 allows up to 2^16-1; IoT keys are 16..32).
pub const MAX_PSK_LEN: usize = 64;

/// Maximum PSK identity (and identity hint) length this crate accepts.
pub const MAX_IDENTITY_LEN: usize = 128;

/// What a client or endpoint tells a [`PskStore`] or
/// [`TrustStore`](crate::TrustStore) about the handshake asking: the
/// peer's address and the current time. Nothing in it is proven yet (the
/// address is where the datagram came from; the cookie exchange showed the
/// peer receives there).
///
/// New fields may be added (`non_exhaustive`), so a store written today
/// keeps compiling.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PeerContext<'a, A> {
    /// The handshake (its handle becomes the session's).
    pub handle: SessionHandle,
    /// The peer's address.
    pub peer: &'a A,
    /// The time the caller passed in.
    pub now: Duration,
}

impl<'a, A> PeerContext<'a, A> {
    /// A context (for stores used outside a handshake, and tests).
    pub fn new(handle: SessionHandle, peer: &'a A, now: Duration) -> Self {
        PeerContext { handle, peer, now }
    }
}

/// Resolves a PSK identity (RFC 4279) to its key: how a server finds the
/// key for a client at address type `A`.
pub trait PskStore<A> {
    /// Writes the key for `identity` into `key` and returns its length, or
    /// `None` if the identity is unknown (or not acceptable from this peer
    /// now). An empty key is refused like an unknown identity.
    fn psk(
        &mut self,
        cx: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize>;

    /// Whether a session authenticated with `identity` may still be
    /// resumed (an abbreviated handshake proves only the old master
    /// secret). By default: when the identity still has a key, so a revoked
    /// identity cannot resume. `false` makes the client do a full
    /// handshake.
    fn may_resume(&mut self, cx: &PeerContext<'_, A>, identity: &[u8]) -> bool {
        let mut key = Zeroizing::new([0u8; MAX_PSK_LEN]);
        self.psk(cx, identity, &mut key).is_some_and(|n| n > 0)
    }

    /// The error (and so the fatal alert) a handshake whose identity has
    /// no key here ends with: [`Error::UnknownPskIdentity`]
    /// (`unknown_psk_identity`, RFC 4279 §2) by default. An ACE resource
    /// server answers [`Error::IllegalParameter`] (`illegal_parameter`,
    /// RFC 9202 §3.3.2).
    fn unknown_identity(&self) -> Error {
        Error::UnknownPskIdentity
    }
}

/// A fixed table of `(identity, key)` pairs: the simplest [`PskStore`].
///
/// ```
/// use cssf_dtls::{PeerContext, PskStore, SessionHandle, StaticPsk, MAX_PSK_LEN};
/// use core::time::Duration;
/// let mut store = StaticPsk::new(&[(b"Client_identity", b"secretPSK")]);
/// let cx = PeerContext::new(SessionHandle::from_raw(1), &5684u16, Duration::ZERO);
/// let mut key = [0u8; MAX_PSK_LEN];
/// assert_eq!(store.psk(&cx, b"Client_identity", &mut key), Some(9));
/// assert_eq!(store.psk(&cx, b"nobody", &mut key), None);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StaticPsk<'a> {
    entries: &'a [(&'a [u8], &'a [u8])],
}

impl<'a> StaticPsk<'a> {
    /// A store over the given pairs (identities compared byte for byte).
    pub const fn new(entries: &'a [(&'a [u8], &'a [u8])]) -> Self {
        StaticPsk { entries }
    }
}

impl<A> PskStore<A> for StaticPsk<'_> {
    fn psk(
        &mut self,
        _: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        let (_, k) = self.entries.iter().find(|(id, _)| *id == identity)?;
        key.get_mut(..k.len())?.copy_from_slice(k);
        Some(k.len())
    }
}

impl<A, T: PskStore<A> + ?Sized> PskStore<A> for &mut T {
    fn psk(
        &mut self,
        cx: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        (**self).psk(cx, identity, key)
    }
    fn may_resume(&mut self, cx: &PeerContext<'_, A>, identity: &[u8]) -> bool {
        (**self).may_resume(cx, identity)
    }
    fn unknown_identity(&self) -> Error {
        (**self).unknown_identity()
    }
}
