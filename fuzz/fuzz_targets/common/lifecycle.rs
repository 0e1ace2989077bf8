//! The session lifecycle contract, checked on every event a fuzzed client
//! or endpoint reports: per handle at most one `Connected`, at most one
//! `Closed`, nothing after `Closed`, `Connected` never after `Closed` (so
//! a handle is never reused).

use std::collections::HashSet;
use std::fmt::Debug;

use cssf_dtls::Event;

#[derive(Default)]
pub struct Lifecycle {
    pub connected: HashSet<u64>,
    pub closed: HashSet<u64>,
}

impl Lifecycle {
    /// Checks `e` against what was reported before; panics on a violation.
    pub fn observe<A: Debug>(&mut self, e: &Event<A>) {
        let h = e.handle().raw();
        assert!(
            !self.closed.contains(&h),
            "event after Closed for session {h}: {e:?}"
        );
        match e {
            Event::Connected { .. } => {
                assert!(self.connected.insert(h), "Connected twice for {h}")
            }
            Event::Closed { .. } => {
                self.closed.insert(h);
            }
            _ => {}
        }
    }
}
