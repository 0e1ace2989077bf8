//! Session resumption with session IDs (RFC 5246 §7.3, §7.4.1.2; RFC 6347
//! §4.2.8 for the DTLS flights) and its interaction with extended master
//! secret (RFC 7627 §5.3).
//!
//! A full handshake on a server with resumption enabled assigns a random
//! 32-byte session ID; the server keeps `(id -> master secret, suite, EMS
//! flag, peer identity: PSK identity or raw public key)` in a bounded [`SessionCache`], and a client keeps a
//! [`Session`] snapshot. A later ClientHello offering that ID gets the
//! abbreviated handshake:
//!
//! ```text
//! Client                                   Server
//! ClientHello (session_id) -------->
//!                          <--------       HelloVerifyRequest
//! ClientHello + cookie     -------->
//!                                          ServerHello (same session_id)
//!                                          ChangeCipherSpec
//!                          <--------       Finished
//! ChangeCipherSpec
//! Finished                 -------->
//! ```
//!
//! A session whose connection ended with a fatal alert is never resumed
//! (RFC 5246 §7.2.2): the server forgets it, and [`Client::session`] no
//! longer returns it. Master secrets are zeroized when a session is dropped
//! or evicted.
//!
//! [`Client::session`]: crate::Client::session

#[cfg(feature = "server")]
use core::time::Duration;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[cfg(feature = "ecdhe")]
use p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::crypto::suite::CipherSuite;
use crate::identity::{Identity, PskIdentity};
use crate::psk::MAX_IDENTITY_LEN;
use crate::wire::{Reader, Writer};
use crate::Error;

/// Format version of [`Session::to_bytes`] (version 1, without the flags
/// byte, is still read).
const ENCODING_VERSION: u8 = 2;

/// Longest [`Session::to_bytes`] encoding: version, ID, master secret,
/// suite, EMS flag, identity, uncompressed peer key, flags.
pub const MAX_SESSION_ENCODING_LEN: usize =
    1 + 1 + SESSION_ID_LEN + 48 + 2 + 1 + 1 + MAX_IDENTITY_LEN + 1 + 65 + 1;

/// Flags byte: the peer's key came from an X.509 certificate.
const FLAG_CERTIFICATE: u8 = 1;

/// Length of the session IDs this crate assigns.
pub const SESSION_ID_LEN: usize = 32;

/// A resumable session: what both sides keep after a full handshake. The
/// master secret is zeroized on drop; `Debug` does not print it.
///
/// ```
/// # // Without `resumption` the type is internal (and the example needs `server`).
/// # #[cfg(all(feature = "resumption", feature = "server"))] {
/// # use cssf_dtls::{Client, Config, Endpoint, StaticPsk};
/// # use core::time::Duration;
/// # let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
/// # let mut server: Endpoint<u8, _, _, 2> = Endpoint::new(Config::default(), StaticPsk::new(&keys), rand_core::OsRng, Duration::ZERO).unwrap();
/// # let mut client = Client::new(Config::default(), b"Client_identity", b"secretPSK", 2u8, rand_core::OsRng, Duration::ZERO).unwrap();
/// # let now = Duration::ZERO; let mut buf = [0u8; 1500];
/// # for _ in 0..8 {
/// #     while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() { server.handle_datagram(now, 1u8, &mut buf[..t.len]).unwrap(); }
/// #     while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() { client.handle_datagram(now, 2u8, &mut buf[..t.len]).unwrap(); }
/// # }
/// // After a full handshake with a server that assigns session IDs:
/// let session = client.session().expect("resumable");
/// assert_eq!(session.id().len(), 32);
/// assert!(session.extended_master_secret());
/// // Later: a new connection offering it (abbreviated handshake if the
/// // server still knows it, a full one otherwise).
/// let again = Client::resume(Config::default(), b"Client_identity", b"secretPSK", &session, 2u8, rand_core::OsRng, now).unwrap();
/// # let _ = again;
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) id: heapless::Vec<u8, SESSION_ID_LEN>,
    pub(crate) master: Zeroizing<[u8; 48]>,
    pub(crate) suite: CipherSuite,
    pub(crate) ems: bool,
    pub(crate) identity: heapless::Vec<u8, MAX_IDENTITY_LEN>,
    #[cfg(feature = "ecdhe")]
    pub(crate) peer_key: Option<p256::PublicKey>,
    /// `peer_key` is an X.509 certificate's key.
    #[cfg(feature = "ecdhe")]
    pub(crate) peer_certificate: bool,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("suite", &self.suite)
            .field("ems", &self.ems)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session ID (1..=32 bytes).
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The cipher suite the session was established with.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// True when the session's master secret was derived with extended
    /// master secret (RFC 7627); only such sessions resume under EMS.
    pub fn extended_master_secret(&self) -> bool {
        self.ems
    }

    /// The PSK identity the session was authenticated with (empty for raw
    /// public keys).
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// What the session's full handshake proved about the peer (see
    /// [`Identity`]): the PSK identity for the PSK suites (on a client, its
    /// own identity, whose key the server proved it knows), the peer's raw
    /// public key or certificate key for ECDHE_ECDSA; `None` for a client
    /// that did not authenticate (server-only raw public keys).
    pub fn peer_identity(&self) -> Option<Identity> {
        if self.suite.key_exchange().is_psk() {
            return PskIdentity::new(&self.identity).ok().map(Identity::Psk);
        }
        #[cfg(feature = "ecdhe")]
        if let Some(k) = self.peer_key {
            return Some(if self.peer_certificate {
                Identity::Certificate(k)
            } else {
                Identity::RawPublicKey(k)
            });
        }
        None
    }

    /// The peer's raw public key, for sessions authenticated with one.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn peer_public_key(&self) -> Option<&p256::PublicKey> {
        self.peer_key.as_ref()
    }

    /// Writes the session into `out` so a device can resume after a reboot
    /// (e.g. kept in an encrypted store); returns the length. The encoding
    /// holds the master secret: store it as a key.
    ///
    /// ```
    /// # // Without `resumption` the type is internal.
    /// # #[cfg(feature = "resumption")] {
    /// # use cssf_dtls::{Session, MAX_SESSION_ENCODING_LEN};
    /// # fn f(session: &Session) -> Result<(), cssf_dtls::Error> {
    /// let mut buf = [0u8; MAX_SESSION_ENCODING_LEN];
    /// let n = session.to_bytes(&mut buf)?;
    /// let again = Session::from_bytes(&buf[..n])?;
    /// assert_eq!(again.id(), session.id());
    /// # Ok(()) }
    /// # }
    /// ```
    pub fn to_bytes(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(out);
        w.u8(ENCODING_VERSION)?;
        w.vec8(&self.id)?;
        w.put(&self.master[..])?;
        w.u16(self.suite.id())?;
        w.u8(u8::from(self.ems))?;
        w.vec8(&self.identity)?;
        #[cfg(feature = "ecdhe")]
        match &self.peer_key {
            Some(k) => w.vec8(k.to_encoded_point(false).as_bytes())?,
            None => w.u8(0)?,
        }
        #[cfg(not(feature = "ecdhe"))]
        w.u8(0)?;
        #[cfg(feature = "ecdhe")]
        let flags = if self.peer_certificate {
            FLAG_CERTIFICATE
        } else {
            0
        };
        #[cfg(not(feature = "ecdhe"))]
        let flags = 0;
        w.u8(flags)?;
        Ok(w.len())
    }

    /// Reads a session written by [`to_bytes`](Self::to_bytes); `Decode`
    /// for anything else.
    pub fn from_bytes(data: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(data);
        let version = r.u8()?;
        if version != 1 && version != ENCODING_VERSION {
            return Err(Error::Decode);
        }
        let id = r.vec8()?;
        if id.is_empty() {
            return Err(Error::Decode);
        }
        let id = heapless::Vec::from_slice(id).map_err(|_| Error::Decode)?;
        let mut master = Zeroizing::new([0u8; 48]);
        master.copy_from_slice(r.take(48)?);
        let suite = CipherSuite::from_id(r.u16()?).ok_or(Error::Decode)?;
        let ems = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Error::Decode),
        };
        let identity = heapless::Vec::from_slice(r.vec8()?).map_err(|_| Error::Decode)?;
        let key = r.vec8()?;
        #[cfg(feature = "ecdhe")]
        let peer_key = if key.is_empty() {
            None
        } else {
            Some(p256::PublicKey::from_sec1_bytes(key).map_err(|_| Error::Decode)?)
        };
        // Only sessions of the ECDHE_ECDSA suites hold a key.
        #[cfg(not(feature = "ecdhe"))]
        if !key.is_empty() {
            return Err(Error::Decode);
        }
        let flags = if version == 1 { 0 } else { r.u8()? };
        if flags & !FLAG_CERTIFICATE != 0 || (flags != 0 && key.is_empty()) {
            return Err(Error::Decode);
        }
        r.finish()?;
        Ok(Session {
            id,
            master,
            suite,
            ems,
            identity,
            #[cfg(feature = "ecdhe")]
            peer_key,
            #[cfg(feature = "ecdhe")]
            peer_certificate: flags & FLAG_CERTIFICATE != 0,
        })
    }

    pub(crate) fn id_is(&self, id: &[u8]) -> bool {
        !id.is_empty() && self.id.len() == id.len() && bool::from(self.id.as_slice().ct_eq(id))
    }
}

#[cfg(feature = "server")]
struct CacheEntry {
    session: Session,
    created: Duration,
    last_used: Duration,
}

/// The server's bounded session cache: at most `S` sessions, the least
/// recently used one evicted first (and its master secret zeroized), and
/// none resumed past its lifetime.
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub struct SessionCache<const S: usize> {
    entries: heapless::Vec<CacheEntry, S>,
}

#[cfg(feature = "server")]
impl<const S: usize> core::fmt::Debug for SessionCache<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionCache")
            .field("len", &self.entries.len())
            .field("capacity", &S)
            .finish()
    }
}

#[cfg(feature = "server")]
impl<const S: usize> Default for SessionCache<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "server")]
impl<const S: usize> SessionCache<S> {
    /// An empty cache.
    pub const fn new() -> Self {
        SessionCache {
            entries: heapless::Vec::new(),
        }
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stores `session` (replacing one with the same ID), evicting the least
    /// recently used entry when full.
    pub fn insert(&mut self, session: Session, now: Duration) {
        if S == 0 || session.id.is_empty() {
            return;
        }
        self.remove(&session.id);
        if self.entries.is_full() {
            if let Some(i) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            {
                // Dropping the entry zeroizes its master secret.
                drop(self.entries.swap_remove(i));
            }
        }
        let _ = self.entries.push(CacheEntry {
            session,
            created: now,
            last_used: now,
        });
    }

    /// The session with `id`, marked as used at `now`, unless it was
    /// established more than `lifetime` ago (then it is forgotten).
    pub fn get(&mut self, id: &[u8], now: Duration, lifetime: Duration) -> Option<Session> {
        let i = self.entries.iter().position(|e| e.session.id_is(id))?;
        let e = self.entries.get_mut(i)?;
        if now.saturating_sub(e.created) > lifetime {
            drop(self.entries.swap_remove(i));
            return None;
        }
        e.last_used = now;
        Some(e.session.clone())
    }

    /// Forgets the session with `id` (e.g. after a fatal alert).
    pub fn remove(&mut self, id: &[u8]) -> bool {
        match self.entries.iter().position(|e| e.session.id_is(id)) {
            Some(i) => {
                drop(self.entries.swap_remove(i));
                true
            }
            None => false,
        }
    }
}

// The encodings under test carry the peer's raw public key (feature `ecdhe`).
#[cfg(test)]
#[cfg(feature = "ecdhe")]
mod tests {
    use super::*;

    fn session(b: u8) -> Session {
        Session {
            id: heapless::Vec::from_slice(&[b; 32]).unwrap(),
            master: Zeroizing::new([b; 48]),
            suite: CipherSuite::PskWithAes128Ccm8,
            ems: true,
            identity: heapless::Vec::from_slice(b"id").unwrap(),
            peer_key: None,
            peer_certificate: false,
        }
    }

    #[test]
    fn encoding_round_trip_and_rejects() {
        let mut s = session(4);
        let mut buf = [0u8; MAX_SESSION_ENCODING_LEN];
        let n = s.to_bytes(&mut buf).unwrap();
        let back = Session::from_bytes(&buf[..n]).unwrap();
        assert_eq!(
            (
                back.id(),
                &back.master[..],
                back.suite,
                back.ems,
                back.identity()
            ),
            (s.id(), &s.master[..], s.suite, s.ems, s.identity())
        );
        assert!(back.peer_key.is_none());
        // With a raw public key, and the longest fields.
        let key = crate::SigningKey::random(&mut cssf_netsim::SimRng::new(1));
        s.peer_key = Some(key.verifying_key().into());
        s.identity = heapless::Vec::from_slice(&[7; MAX_IDENTITY_LEN]).unwrap();
        let n = s.to_bytes(&mut buf).unwrap();
        assert_eq!(n, MAX_SESSION_ENCODING_LEN);
        let back = Session::from_bytes(&buf[..n]).unwrap();
        assert_eq!(back.peer_key, s.peer_key);
        assert_eq!(back.identity(), s.identity());
        // Truncated, extended, wrong version, bad flag, short buffer.
        assert!(Session::from_bytes(&buf[..n - 1]).is_err());
        let mut long = buf.to_vec();
        long.push(0);
        assert!(Session::from_bytes(&long[..n + 1]).is_err());
        let mut bad = buf;
        bad[0] = 3;
        assert!(Session::from_bytes(&bad[..n]).is_err());
        let mut bad = buf;
        bad[n - 1] = 2;
        assert!(Session::from_bytes(&bad[..n]).is_err());
        // A certificate's key keeps its kind.
        s.peer_certificate = true;
        s.suite = CipherSuite::EcdheEcdsaWithAes128Ccm8;
        let m = s.to_bytes(&mut buf).unwrap();
        let back = Session::from_bytes(&buf[..m]).unwrap();
        assert_eq!(back.peer_identity(), s.peer_identity());
        assert!(matches!(
            back.peer_identity(),
            Some(Identity::Certificate(_))
        ));
        // Version 1 (no flags byte) is still read.
        s.peer_certificate = false;
        let m = s.to_bytes(&mut buf).unwrap();
        buf[0] = 1;
        let back = Session::from_bytes(&buf[..m - 1]).unwrap();
        assert!(matches!(
            back.peer_identity(),
            Some(Identity::RawPublicKey(_))
        ));
        let mut bad = buf;
        bad[1 + 1 + 32 + 48 + 2] = 7;
        assert!(Session::from_bytes(&bad[..n]).is_err());
        assert!(matches!(
            s.to_bytes(&mut [0u8; 10]),
            Err(Error::BufferTooSmall { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Session::from_bytes(&data);
        }
    }

    /// The server's session cache.
    #[cfg(feature = "server")]
    mod cache {
        use super::*;
        use core::time::Duration;

        const DAY: Duration = Duration::from_secs(86_400);

        #[test]
        fn sessions_expire() {
            let mut c: SessionCache<2> = SessionCache::new();
            c.insert(session(1), Duration::from_secs(10));
            let life = Duration::from_secs(100);
            assert!(c.get(&[1; 32], Duration::from_secs(110), life).is_some());
            // Use does not extend the lifetime.
            assert!(c.get(&[1; 32], Duration::from_secs(111), life).is_none());
            assert!(c.is_empty());
        }

        #[test]
        fn bounded_lru_cache() {
            let t = Duration::from_secs;
            let mut c: SessionCache<2> = SessionCache::new();
            c.insert(session(1), t(1));
            c.insert(session(2), t(2));
            // Using 1 makes 2 the least recently used.
            assert_eq!(c.get(&[1; 32], t(3), DAY).unwrap().master[0], 1);
            c.insert(session(3), t(4));
            assert_eq!(c.len(), 2);
            assert!(c.get(&[2; 32], t(5), DAY).is_none(), "2 was evicted");
            assert!(c.get(&[1; 32], t(5), DAY).is_some());
            assert!(c.get(&[3; 32], t(5), DAY).is_some());
            // Replacing keeps one entry per ID.
            c.insert(session(3), t(6));
            assert_eq!(c.len(), 2);
            assert!(c.remove(&[3; 32]));
            assert!(!c.remove(&[3; 32]));
            assert!(c.get(&[3; 32], t(7), DAY).is_none());
            // Empty and short IDs never match.
            assert!(c.get(&[], t(7), DAY).is_none());
            assert!(c.get(&[1; 31], t(7), DAY).is_none());
            let s = session(9);
            assert!(!std::format!("{s:?}").contains("master"));
        }
    }
}
