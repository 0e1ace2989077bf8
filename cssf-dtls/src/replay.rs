//! The anti-replay sliding window (RFC 6347 §4.1.2.6), 64 records wide.

/// Tracks which of the last 64 sequence numbers of an epoch were seen.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest sequence number accepted so far (valid once `bits` is
    /// non-zero).
    top: u64,
    /// Bit `i` set: `top - i` was accepted (bit 0, `top` itself, is set
    /// once anything was accepted).
    bits: u64,
}

impl ReplayWindow {
    /// Width of the window.
    pub const WIDTH: u64 = 64;

    /// An empty window.
    pub const fn new() -> Self {
        ReplayWindow { top: 0, bits: 0 }
    }

    /// True when `seq` is new and inside (or ahead of) the window. Call
    /// before authenticating the record; call [`accept`](Self::accept) after.
    pub fn check(&self, seq: u64) -> bool {
        if self.bits == 0 || seq > self.top {
            return true;
        }
        let age = self.top - seq;
        age < Self::WIDTH && self.bits & (1u64 << age) == 0
    }

    /// The highest sequence number accepted so far, if any.
    pub fn highest(&self) -> Option<u64> {
        (self.bits != 0).then_some(self.top)
    }

    /// Marks an authenticated `seq` as seen.
    pub fn accept(&mut self, seq: u64) {
        if self.bits == 0 {
            self.top = seq;
            self.bits = 1;
        } else if seq > self.top {
            let shift = seq - self.top;
            self.bits = if shift >= Self::WIDTH {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.top = seq;
        } else {
            let age = self.top - seq;
            if age < Self::WIDTH {
                self.bits |= 1u64 << age;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_semantics() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.highest(), None);
        assert!(w.check(5));
        w.accept(5);
        assert_eq!(w.highest(), Some(5));
        assert!(!w.check(5));
        assert!(w.check(4));
        w.accept(4);
        assert!(!w.check(4));
        w.accept(100);
        assert!(!w.check(36), "older than the window");
        assert!(w.check(37));
        assert!(!w.check(100));
        assert!(w.check(101));
        w.accept(1000);
        assert!(w.check(999) && !w.check(1000));
    }

    proptest::proptest! {
        #[test]
        fn never_accepts_twice(seqs in proptest::collection::vec(0u64..200, 1..300)) {
            let mut w = ReplayWindow::new();
            let mut seen = std::collections::HashSet::new();
            for s in seqs {
                if w.check(s) {
                    proptest::prop_assert!(seen.insert(s), "replayed {}", s);
                    w.accept(s);
                }
            }
        }
    }
}
