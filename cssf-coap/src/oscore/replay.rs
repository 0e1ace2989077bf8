//! The Recipient Context's replay window (RFC 8613 §7.4, §3.2.2).

use super::Error;

/// Width of the [`ReplayWindow`] in sequence numbers.
pub const REPLAY_WINDOW_SIZE: u64 = 64;

/// A sliding anti-replay window over received Partial IVs (RFC 8613 §7.4,
/// the RFC 4303 §3.4.3 algorithm with a 64-number window).
///
/// A number above the highest seen is accepted; one at most 63 below it is
/// accepted once; anything older is refused. The state is a fixed 16 bytes.
/// Check with [`ReplayWindow::check`] before decrypting, and only after the
/// message verified record it with [`ReplayWindow::accept`], so a forged
/// message cannot move the window.
///
/// ```
/// use cssf_coap::oscore::{Error, ReplayWindow};
/// let mut w = ReplayWindow::new();
/// w.accept(5);
/// assert_eq!(w.check(5), Err(Error::Replay));
/// assert_eq!(w.check(4), Ok(()));
/// assert_eq!(w.check(6), Ok(()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReplayWindow {
    /// The highest number accepted, `None` before the first.
    highest: Option<u64>,
    /// Bit `i` set: `highest - i` was accepted.
    seen: u64,
}

impl ReplayWindow {
    /// An empty window (a fresh Recipient Context).
    pub const fn new() -> Self {
        ReplayWindow {
            highest: None,
            seen: 0,
        }
    }

    /// A window that refuses every number up to `highest` (a window
    /// restored after a reboot from the highest number saved before it).
    pub const fn restored(highest: u64) -> Self {
        ReplayWindow {
            highest: Some(highest),
            seen: u64::MAX,
        }
    }

    /// The highest sequence number accepted so far.
    pub const fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// `Ok` if `seq` has not been received and is not older than the window.
    pub fn check(&self, seq: u64) -> Result<(), Error> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if seq > highest {
            return Ok(());
        }
        let age = highest - seq;
        if age >= REPLAY_WINDOW_SIZE || self.seen & (1u64 << age) != 0 {
            return Err(Error::Replay);
        }
        Ok(())
    }

    /// Records `seq` as received (call after the message verified).
    pub fn accept(&mut self, seq: u64) {
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.seen = 1;
            }
            Some(highest) if seq > highest => {
                let shift = seq - highest;
                self.seen = if shift >= REPLAY_WINDOW_SIZE {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.highest = Some(seq);
            }
            Some(highest) => {
                let age = highest - seq;
                if age < REPLAY_WINDOW_SIZE {
                    self.seen |= 1u64 << age;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, seq: u64) -> Result<(), Error> {
        w.check(seq)?;
        w.accept(seq);
        Ok(())
    }

    #[test]
    fn in_order() {
        let mut w = ReplayWindow::new();
        for s in 0..200 {
            assert_eq!(accept(&mut w, s), Ok(()));
        }
        assert_eq!(w.highest(), Some(199));
    }

    #[test]
    fn out_of_order_inside_window() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 10), Ok(()));
        assert_eq!(accept(&mut w, 7), Ok(()));
        assert_eq!(accept(&mut w, 9), Ok(()));
        assert_eq!(accept(&mut w, 100), Ok(()));
        assert_eq!(accept(&mut w, 100 - 63), Ok(()));
        assert_eq!(accept(&mut w, 99), Ok(()));
        assert_eq!(w.highest(), Some(100));
    }

    #[test]
    fn too_old() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 100), Ok(()));
        assert_eq!(accept(&mut w, 100 - 64), Err(Error::Replay));
        assert_eq!(accept(&mut w, 0), Err(Error::Replay));
        // A big jump forgets everything below the new window.
        assert_eq!(accept(&mut w, 1_000_000), Ok(()));
        assert_eq!(accept(&mut w, 101), Err(Error::Replay));
        assert_eq!(accept(&mut w, 1_000_000 - 1), Ok(()));
    }

    #[test]
    fn duplicates() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 0), Ok(()));
        assert_eq!(accept(&mut w, 0), Err(Error::Replay));
        assert_eq!(accept(&mut w, 5), Ok(()));
        assert_eq!(accept(&mut w, 3), Ok(()));
        assert_eq!(accept(&mut w, 3), Err(Error::Replay));
        assert_eq!(accept(&mut w, 5), Err(Error::Replay));
        // The highest possible Partial IV.
        let max = (1u64 << 40) - 1;
        assert_eq!(accept(&mut w, max), Ok(()));
        assert_eq!(accept(&mut w, max), Err(Error::Replay));
    }

    #[test]
    fn check_does_not_record() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(3), Ok(()));
        assert_eq!(w.check(3), Ok(()));
        w.accept(3);
        assert_eq!(w.check(3), Err(Error::Replay));
    }
}
