//! ACE DTLS profile glue (RFC 9202, feature `dtls`): the resource server's
//! token store as the DTLS server's [`cssf_dtls::PskStore`].
//!
//! - RFC 9202 §3.3.1: after `POST /authz-info`, the client's `psk_identity`
//!   is the `kid` of the symmetric PoP key; the PSK is that key.
//! - RFC 9202 §3.3.2: a client that did not post the token first sends the
//!   access token itself as `psk_identity`; it is then verified and stored
//!   exactly as `/authz-info` would, and its PoP key is the PSK.
//!
//! - RFC 9202 §3.2 (feature `dtls-rpk`): a client's raw public key is
//!   trusted while a live token's PoP key is that key
//!   ([`AuthzInfo::trusts_pop_key`], and [`SharedTokenPsk`] as a
//!   `cssf_dtls::TrustStore`).
//!
//! Expired tokens and non-symmetric PoP keys resolve to no PSK, so the
//! handshake fails. Which rights a session then has is the
//! [`Authorizer`](crate::authorizer::Authorizer)'s decision, from the
//! identity the handshake proved.

use core::cell::{Cell, RefCell};
use core::time::Duration;

use cssf_dtls::{PeerContext, PskStore, MAX_IDENTITY_LEN, MAX_PSK_LEN};

use crate::aif::ScopeMapper;
use crate::authz_info::{AuthzInfo, CREATED};
use crate::cose::KeyResolver;

/// A [`PskStore`] view of an [`AuthzInfo`] at one instant.
pub struct TokenPsk<
    'a,
    'k,
    K: KeyResolver + ?Sized,
    M: ScopeMapper,
    const N: usize,
    const R: usize,
    const E: usize,
> {
    rs: &'a mut AuthzInfo<'k, K, M, N, R, E>,
    now: Duration,
    wall: Option<u64>,
}

impl<
        'k,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > AuthzInfo<'k, K, M, N, R, E>
{
    /// The PSK store for a DTLS handshake happening at `now` / `wall`.
    pub fn psk_store(
        &mut self,
        now: Duration,
        wall: Option<u64>,
    ) -> TokenPsk<'_, 'k, K, M, N, R, E> {
        TokenPsk {
            rs: self,
            now,
            wall,
        }
    }

    /// True when a live stored token's PoP key is the EC2 key `(x, y)`
    /// (RFC 9202 §3.2: the client authenticates with it as a raw public
    /// key).
    pub fn trusts_pop_key(
        &self,
        x: &[u8; 32],
        y: &[u8; 32],
        now: Duration,
        wall: Option<u64>,
    ) -> bool {
        self.store().iter().any(|r| {
            matches!(&r.pop, crate::PopKey::Ec2 { x: kx, y: ky, .. } if kx == x && ky == y)
                && !r.lifetime.expired(now, wall, self.leeway_secs())
        })
    }

    fn psk_for_kid(
        &self,
        kid: &[u8],
        now: Duration,
        wall: Option<u64>,
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        let rec = self.store().get(kid)?;
        if rec.lifetime.expired(now, wall, self.leeway_secs()) {
            return None;
        }
        let k = rec.pop.symmetric()?;
        key.get_mut(..k.len())?.copy_from_slice(k);
        Some(k.len())
    }
}

impl<
        A,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > PskStore<A> for TokenPsk<'_, '_, K, M, N, R, E>
{
    fn psk(
        &mut self,
        cx: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        self.psk_for(cx.handle.raw(), identity, key)
    }

    /// Never: a resumed session would prove only the old master secret,
    /// not which token key it was made with (the token for the kid may
    /// have changed since); the client does a full handshake instead.
    fn may_resume(&mut self, _: &PeerContext<'_, A>, _: &[u8]) -> bool {
        false
    }

    /// `illegal_parameter`: RFC 9202 §3.3.2, for an identity that selects
    /// no valid access token.
    fn unknown_identity(&self) -> cssf_dtls::Error {
        cssf_dtls::Error::IllegalParameter
    }
}

impl<K: KeyResolver + ?Sized, M: ScopeMapper, const N: usize, const R: usize, const E: usize>
    TokenPsk<'_, '_, K, M, N, R, E>
{
    /// As [`psk_at`](Self::psk_at), for handshake `handshake`: records
    /// which key it was given ([`AuthzInfo::note_handshake_key`]), so the
    /// session is bound to that key and not to a token stored later.
    pub fn psk_for(
        &mut self,
        handshake: u64,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        use sha2::Digest;
        let n = self.psk_at(identity, key)?;
        let digest: [u8; 32] = sha2::Sha256::digest(key.get(..n)?).into();
        self.rs.note_handshake_key(handshake, digest);
        Some(n)
    }

    /// The PSK for `identity`: a stored token's kid (bare or in the RFC
    /// 9202 §3.3.2 `cnf` form), a token stored before with these bytes, or
    /// a new token itself (verified and stored as `/authz-info` would).
    pub fn psk_at(&mut self, identity: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize> {
        if let Some(kid) = self.rs.kid_for_psk_identity(identity) {
            return self
                .rs
                .psk_for_kid(kid.as_slice(), self.now, self.wall, key);
        }
        if crate::authz_info::psk_identity_kid(identity).is_some() {
            return None;
        }
        // RFC 9202 §3.3.2: the identity is the access token itself.
        let mut tok = [0u8; MAX_IDENTITY_LEN];
        let t = tok.get_mut(..identity.len())?;
        t.copy_from_slice(identity);
        let r = self.rs.post(self.now, self.wall, t, &mut []);
        if r.code != CREATED {
            return None;
        }
        let kid = self.rs.last_accepted_kid()?;
        self.rs
            .psk_for_kid(kid.as_slice(), self.now, self.wall, key)
    }
}

/// The time a [`SharedTokenPsk`] resolves PSKs at; the driver loop updates
/// it before feeding the DTLS endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Monotonic time.
    pub now: Duration,
    /// Wall clock, seconds since the epoch, if the device has one.
    pub wall: Option<u64>,
}

/// A [`PskStore`] a DTLS endpoint can own for its whole life while the rest
/// of the resource server keeps using the same [`AuthzInfo`] (shared through
/// a `RefCell`) for `/authz-info` and `authorize`. The current time comes
/// from a `Cell<Clock>` the driver loop updates.
pub struct SharedTokenPsk<
    'a,
    'k,
    K: KeyResolver + ?Sized,
    M: ScopeMapper,
    const N: usize,
    const R: usize,
    const E: usize,
> {
    rs: &'a RefCell<AuthzInfo<'k, K, M, N, R, E>>,
    clock: &'a Cell<Clock>,
}

impl<
        'a,
        'k,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > SharedTokenPsk<'a, 'k, K, M, N, R, E>
{
    /// A PSK store over `rs`, at the time in `clock`.
    pub fn new(rs: &'a RefCell<AuthzInfo<'k, K, M, N, R, E>>, clock: &'a Cell<Clock>) -> Self {
        Self { rs, clock }
    }
}

impl<
        A,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > PskStore<A> for SharedTokenPsk<'_, '_, K, M, N, R, E>
{
    fn psk(
        &mut self,
        cx: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        let c = self.clock.get();
        let mut rs = self.rs.try_borrow_mut().ok()?;
        rs.psk_store(cx.now, c.wall)
            .psk_for(cx.handle.raw(), identity, key)
    }

    /// Never (see [`TokenPsk`]'s).
    fn may_resume(&mut self, _: &PeerContext<'_, A>, _: &[u8]) -> bool {
        false
    }

    /// `illegal_parameter` (RFC 9202 §3.3.2).
    fn unknown_identity(&self) -> cssf_dtls::Error {
        cssf_dtls::Error::IllegalParameter
    }
}

#[cfg(feature = "dtls-rpk")]
impl<
        A,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > cssf_dtls::TrustStore<A> for SharedTokenPsk<'_, '_, K, M, N, R, E>
{
    /// Trusts a client key that is a live token's PoP key (RFC 9202 §3.2).
    fn is_trusted(&self, cx: &PeerContext<'_, A>, key: &p256::PublicKey) -> bool {
        let Some((x, y)) = crate::pop::coordinates(key) else {
            return false;
        };
        let wall = self.clock.get().wall;
        self.rs
            .try_borrow()
            .is_ok_and(|rs| rs.trusts_pop_key(&x, &y, cx.now, wall))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
    use crate::{Algorithm, Bytes, Config, CoseKey, KeyEntry, PopKey};

    #[test]
    fn kid_and_token_as_identity() {
        let as_key = CoseKey::hmac(Algorithm::Hmac256, &[1; 32]).unwrap();
        let keys = [KeyEntry::new(as_key.clone())];
        let pop = PopKey::Symmetric {
            kid: Some(Bytes::from_slice(b"c1").unwrap()),
            k: Bytes::from_slice(&[9; 16]).unwrap(),
        };
        let c = ClaimsSet {
            aud: Some("rs"),
            exi: Some(100),
            cti: Some(b"x"),
            cnf: Some(CnfOut::Key(&pop)),
            scope: Some(ScopeOut::AifBytes(&[0x81, 0x82, 0x61, 0x2f, 0x01])),
            ..Default::default()
        };
        let mut p = [0u8; 128];
        let n = c.emit(&mut p).unwrap();
        let mut t = [0u8; 128];
        let m = mac0(&as_key, None, &p[..n], &mut t).unwrap();
        let mut rs: AuthzInfo<'_, _> = AuthzInfo::new(Config::new("rs"), &keys);
        let mut key = [0u8; MAX_PSK_LEN];
        let now = Duration::from_secs(1);
        assert_eq!(rs.psk_store(now, None).psk_at(b"c1", &mut key), None);
        // token as identity (RFC 9202 §3.3.2)
        assert_eq!(rs.psk_store(now, None).psk_at(&t[..m], &mut key), Some(16));
        assert_eq!(&key[..16], &[9; 16]);
        // now the kid works (RFC 9202 §3.3.1)
        assert_eq!(rs.psk_store(now, None).psk_at(b"c1", &mut key), Some(16));
        // and not after expiry
        assert_eq!(
            rs.psk_store(Duration::from_secs(200), None)
                .psk_at(b"c1", &mut key),
            None
        );
    }
}
