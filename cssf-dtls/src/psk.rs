//! Pre-shared keys (RFC 4279): how a server finds the key for a client.

/// Maximum PSK length in bytes (RFC 4279 allows up to 2^16-1; IoT keys are 16..32).
pub const MAX_PSK_LEN: usize = 64;

/// Maximum PSK identity (and identity hint) length this crate accepts.
pub const MAX_IDENTITY_LEN: usize = 128;

/// Resolves a PSK identity (RFC 4279) to its key: how a server finds the key for a client.
pub trait PskStore {
    /// Writes the key for `identity` into `key` and returns its length, or `None` if the identity is unknown.
    fn psk(&mut self, identity: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize>;
}

/// A fixed table of `(identity, key)` pairs: the simplest [`PskStore`].
///
/// ```
/// use cssf_dtls::{PskStore, StaticPsk, MAX_PSK_LEN};
/// let mut store = StaticPsk::new(&[(b"Client_identity", b"secretPSK")]);
/// let mut key = [0u8; MAX_PSK_LEN];
/// assert_eq!(store.psk(b"Client_identity", &mut key), Some(9));
/// assert_eq!(store.psk(b"nobody", &mut key), None);
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

impl PskStore for StaticPsk<'_> {
    fn psk(&mut self, identity: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize> {
        let (_, k) = self.entries.iter().find(|(id, _)| *id == identity)?;
        key.get_mut(..k.len())?.copy_from_slice(k);
        Some(k.len())
    }
}

impl<T: PskStore + ?Sized> PskStore for &mut T {
    fn psk(&mut self, identity: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize> {
        (**self).psk(identity, key)
    }
}
