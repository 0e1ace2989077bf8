//! What clients and endpoints report, and what they ask to send.

use crate::crypto::suite::CipherSuite;
use crate::Error;

/// A datagram to send: `len` bytes at the start of the caller's buffer, to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<A> {
    /// Destination.
    pub to: A,
    /// Bytes written into the buffer.
    pub len: usize,
}

/// Something that happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A> {
    /// The handshake with `peer` completed.
    Connected {
        /// The peer.
        peer: A,
        /// The negotiated suite.
        suite: CipherSuite,
    },
    /// An application record of `len` bytes from `peer` is ready for `recv`.
    ApplicationData {
        /// The peer.
        peer: A,
        /// Its length.
        len: usize,
    },
    /// RFC 9146 §6: an authenticated tls12_cid record, newer than every
    /// record before it, arrived from `new`; the session now sends there.
    PeerAddressChanged {
        /// The address used until now.
        old: A,
        /// The address the session moved to.
        new: A,
    },
    /// The connection ended: `error` is `None` after close_notify.
    Closed {
        /// The peer.
        peer: A,
        /// Why, if it failed.
        error: Option<Error>,
    },
}
