//! What clients and endpoints report, and what they ask to send: who a
//! session is ([`Identity`], known only once the peer's Finished verified)
//! and when it ends ([`CloseReason`], reported exactly once per session).

use core::fmt;

use crate::crypto::suite::CipherSuite;
use crate::identity::Identity;
use crate::Error;

/// A datagram to send: `len` bytes at the start of the caller's buffer, to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<A> {
    /// Destination.
    pub to: A,
    /// Bytes written into the buffer.
    pub len: usize,
}

/// One handshake and the session it becomes, for as long as the endpoint
/// lives: a handle is never reused, whatever happens to the peer's address
/// (a client restarting on the same port gets a new handle; a Connection ID
/// peer that moves keeps its handle).
///
/// ```
/// use cssf_dtls::SessionHandle;
/// let h = SessionHandle::from_raw(7);
/// assert_eq!(h.raw(), 7);
/// assert_eq!(h.to_string(), "#7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(u64);

impl SessionHandle {
    /// The handle of a [`Client`](crate::Client)'s one session.
    pub const CLIENT: SessionHandle = SessionHandle(0);

    /// The handle's number (an endpoint numbers its handshakes from 1).
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A handle from its number (for tests, logs and persisted state; an
    /// endpoint only knows the handles it gave out).
    pub const fn from_raw(n: u64) -> Self {
        SessionHandle(n)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a session (or a handshake) ended.
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer sent close_notify.
    PeerClosed,
    /// The application closed it (`close`); close_notify was sent.
    LocalClose,
    /// No authenticated record arrived for [`Config::idle_timeout`](crate::Config::idle_timeout);
    /// close_notify was sent.
    IdleTimeout,
    /// The handshake did not complete: its retransmission budget ran out,
    /// or it outlived the longest a handshake may take.
    HandshakeTimeout,
    /// Removed to make room for a new handshake (the endpoint's tables
    /// are full): it was idle, stalled or closed, or its host held it
    /// beyond `Config::max_sessions_per_host`.
    Evicted,
    /// A new ClientHello from the same address replaced it (RFC 6347
    /// §4.2.8: the client lost its state and started over).
    Replaced,
    /// Its record sequence numbers ran out (RFC 6347 §4.1: they never
    /// wrap); close_notify went with the last one.
    SequenceExhausted,
    /// A fatal error: a check failed (we sent the alert of
    /// [`Error::code`]) or the peer sent a fatal alert
    /// ([`Error::AlertReceived`]).
    Error(Error),
}

impl CloseReason {
    /// The error, for [`CloseReason::Error`].
    pub fn error(self) -> Option<Error> {
        match self {
            CloseReason::Error(e) => Some(e),
            _ => None,
        }
    }

    /// True for a clean end (close_notify either way).
    pub fn is_clean(self) -> bool {
        matches!(self, CloseReason::PeerClosed | CloseReason::LocalClose)
    }

    /// Logs the end of `handle` (features `log`, `defmt`), `role`
    /// "client" or "server": at info for a session that connected (as
    /// many as handshakes completed), at debug for a handshake that did
    /// not (a peer can cause those at will), at warn for an error of this
    /// side ([`Error`]s a peer cannot cause).
    pub(crate) fn log(self, role: &str, handle: SessionHandle, connected: bool) {
        match self {
            CloseReason::Error(e) if e.is_local() => {
                warn!("{} session {} closed: {:?}", role, handle.raw(), self)
            }
            _ if connected => info!("{} session {} closed: {:?}", role, handle.raw(), self),
            _ => debug!("{} session {} closed: {:?}", role, handle.raw(), self),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::LocalClose => f.write_str("closed"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseReason::Evicted => f.write_str("evicted for a new handshake"),
            CloseReason::Replaced => f.write_str("replaced by a new handshake from its address"),
            CloseReason::SequenceExhausted => f.write_str("record sequence numbers exhausted"),
            CloseReason::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Something that happened to a session. Every handle gets at most one
/// `Connected` and exactly one `Closed`, in that order; events of one
/// handle come in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A> {
    /// The handshake completed: both Finished messages verified.
    Connected {
        /// The session.
        handle: SessionHandle,
        /// Its address now.
        peer: A,
        /// What the handshake proved about the peer: its PSK identity, its
        /// raw public key or its certificate's key; `None` for a client of a
        /// server-only raw-public-key handshake (anonymous). Never anything
        /// the peer merely claimed.
        identity: Option<Identity>,
        /// The negotiated suite.
        suite: CipherSuite,
        /// The handshake resumed an earlier session (abbreviated).
        resumed: bool,
    },
    /// An application record of `len` bytes is ready for `recv`.
    ApplicationData {
        /// The session.
        handle: SessionHandle,
        /// The session's address.
        peer: A,
        /// Its length.
        len: usize,
    },
    /// RFC 9146 §6: an authenticated tls12_cid record, newer than every
    /// record before it, arrived from `new`; the session now sends there.
    PeerAddressChanged {
        /// The session.
        handle: SessionHandle,
        /// The address used until now.
        old: A,
        /// The address the session moved to.
        new: A,
    },
    /// The session or handshake ended; its handle is not used again, and
    /// state the application keeps for it should go.
    Closed {
        /// The session.
        handle: SessionHandle,
        /// Its last address.
        peer: A,
        /// Why.
        reason: CloseReason,
    },
}

impl<A> Event<A> {
    /// The session the event is about.
    pub fn handle(&self) -> SessionHandle {
        match self {
            Event::Connected { handle, .. }
            | Event::ApplicationData { handle, .. }
            | Event::PeerAddressChanged { handle, .. }
            | Event::Closed { handle, .. } => *handle,
        }
    }
}
