//! Accounting (issue #6): every authorization decision is reported as a
//! typed [`AuthEvent`] the caller can log, count or store. Events queue in a
//! bounded [`EventQueue`] drained with `poll_event()`; when it is full the
//! oldest event is dropped and counted.

use crate::aif::Method;
use crate::bytes::Bytes;
use crate::pop::Kid;
use crate::store::DenyReason;
use crate::Error;

/// Longest request path kept in an event (longer paths are truncated, and
/// the event says so).
pub const MAX_EVENT_PATH: usize = 48;

/// One accounting record.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// A token was accepted at `/authz-info` and stored under `kid`.
    TokenAccepted {
        /// The PoP key identifier the token is stored under.
        kid: Kid,
        /// True when it replaced a stored token with the same kid.
        replaced: bool,
    },
    /// A token was refused.
    TokenRejected {
        /// Why.
        reason: Error,
    },
    /// A stored token that nothing had used was evicted to make room for
    /// a new one (the store was full).
    TokenDisplaced {
        /// Its kid.
        kid: Kid,
    },
    /// A stored token was evicted because it had expired.
    TokenExpired {
        /// Its kid.
        kid: Kid,
    },
    /// The OSCORE security context bound to a token (RFC 9203) lost its
    /// binding: the token expired, was evicted, or was replaced (by a
    /// token with another key, or by a new context for the same token).
    /// Drop the context: requests under it get no grant any more.
    #[cfg(feature = "oscore-profile")]
    OscoreContextRemoved {
        /// The context's Recipient ID (the kid of requests under it).
        recipient_id: Bytes<{ crate::oscore_profile::MAX_RECIPIENT_ID }>,
        /// Its ID Context, if it has one.
        id_context: Option<Bytes<{ crate::oscore_profile::MAX_CONTEXT_ID }>>,
    },
    /// A request was allowed.
    RequestAllowed {
        /// The token's kid.
        kid: Kid,
        /// The method.
        method: Method,
        /// The path (possibly truncated).
        path: Bytes<MAX_EVENT_PATH>,
    },
    /// A request was denied.
    RequestDenied {
        /// The kid presented, if any.
        kid: Option<Kid>,
        /// The method.
        method: Method,
        /// The path (possibly truncated).
        path: Bytes<MAX_EVENT_PATH>,
        /// Why.
        reason: DenyReason,
    },
}

/// Copies `path`, truncating to [`MAX_EVENT_PATH`] bytes.
pub(crate) fn event_path(path: &str) -> Bytes<MAX_EVENT_PATH> {
    let b = path.as_bytes();
    Bytes::from_slice(b.get(..MAX_EVENT_PATH.min(b.len())).unwrap_or(&[])).unwrap_or_default()
}

/// A bounded FIFO of events.
#[derive(Debug, Clone)]
pub struct EventQueue<const E: usize> {
    slots: [Option<AuthEvent>; E],
    head: usize,
    len: usize,
    dropped: u64,
}

impl<const E: usize> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const E: usize> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| None),
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Appends `ev`, dropping the oldest event if full.
    pub fn push(&mut self, ev: AuthEvent) {
        if E == 0 {
            self.dropped += 1;
            return;
        }
        if self.len == E {
            self.pop();
            self.dropped += 1;
        }
        let idx = (self.head + self.len) % E;
        if let Some(s) = self.slots.get_mut(idx) {
            *s = Some(ev);
            self.len += 1;
        }
    }

    /// Removes the oldest event.
    pub fn pop(&mut self) -> Option<AuthEvent> {
        if self.len == 0 || E == 0 {
            return None;
        }
        let ev = self.slots.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % E;
        self.len -= 1;
        ev
    }

    /// Queued events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_fifo_drops_oldest() {
        let mut q = EventQueue::<2>::new();
        for r in [Error::Expired, Error::Replay, Error::Malformed] {
            q.push(AuthEvent::TokenRejected { reason: r });
        }
        assert_eq!(q.dropped(), 1);
        assert_eq!(
            q.pop(),
            Some(AuthEvent::TokenRejected {
                reason: Error::Replay
            })
        );
        assert_eq!(
            q.pop(),
            Some(AuthEvent::TokenRejected {
                reason: Error::Malformed
            })
        );
        assert_eq!(q.pop(), None);
        assert_eq!(event_path(&"x".repeat(100)).len(), MAX_EVENT_PATH);
    }
}
