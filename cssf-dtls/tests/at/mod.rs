//! Address-based shortcuts for tests whose peers have one session each.
#![allow(dead_code, unreachable_pub, clippy::panic)]

use core::time::Duration;

#[cfg(feature = "ecdhe")]
use cssf_dtls::TrustStore;
use cssf_dtls::{Endpoint, PskStore};

/// Address-based shortcuts for tests whose peers have one session each:
/// the session of an address is [`Endpoint::session_handle`].
pub trait At<A> {
    /// The live session at `a` (panics if there is none).
    fn at(&self, a: &A) -> cssf_dtls::SessionHandle;
    /// A live, established session at `a`.
    fn connected_at(&self, a: &A) -> bool;
    /// The session at `a` resumed an earlier one.
    fn resumed_at(&self, a: &A) -> bool;
    /// `recv` on the session at `a`.
    fn recv_at(&mut self, a: &A, buf: &mut [u8]) -> Result<Option<usize>, cssf_dtls::Error>;
    /// `send` on the session at `a`.
    fn send_at(&mut self, now: Duration, a: &A, data: &[u8]) -> Result<(), cssf_dtls::Error>;
}

macro_rules! at_impl {
    ($($generics:tt)*) => {
        impl<
                A: cssf_dtls::PeerAddress + core::fmt::Debug,
                P: PskStore<A>,
                R: rand_core::CryptoRngCore,
                const N: usize,
                $($generics)*
                const S: usize,
                const H: usize,
            > At<A> for Endpoint<A, P, R, N, T, S, H>
        {
    fn at(&self, a: &A) -> cssf_dtls::SessionHandle {
        self.session_handle(a)
            .unwrap_or_else(|| panic!("no session at {a:?}"))
    }
    fn connected_at(&self, a: &A) -> bool {
        self.session_handle(a).is_some_and(|h| self.is_connected(h))
    }
    fn resumed_at(&self, a: &A) -> bool {
        self.session_handle(a).is_some_and(|h| self.is_resumed(h))
    }
    fn recv_at(&mut self, a: &A, buf: &mut [u8]) -> Result<Option<usize>, cssf_dtls::Error> {
        let h = self
            .session_handle(a)
            .ok_or(cssf_dtls::Error::UnknownPeer)?;
        self.recv(h, buf)
    }
    fn send_at(&mut self, now: Duration, a: &A, data: &[u8]) -> Result<(), cssf_dtls::Error> {
        let h = self
            .session_handle(a)
            .ok_or(cssf_dtls::Error::UnknownPeer)?;
        self.send(now, h, data)
    }
}
    };
}

#[cfg(feature = "ecdhe")]
at_impl!(T: TrustStore<A>,);
// Without `ecdhe` the only trust store is `RejectAll`.
#[cfg(not(feature = "ecdhe"))]
type T = cssf_dtls::RejectAll;
#[cfg(not(feature = "ecdhe"))]
at_impl!();
