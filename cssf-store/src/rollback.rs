//! Rollback protection: a trusted monotonic counter the caller provides.
//!
//! Every record in the log carries a 64-bit counter that only grows. After
//! each completed operation the store calls [`MonotonicCounter::advance_to`]
//! with the counter of the last record written. On mount the newest valid
//! record counter must be at least [`MonotonicCounter::read`]; otherwise the
//! image is older than the last commit the trusted counter saw, and mount
//! fails with [`crate::Error::Rollback`].
//!
//! The protection is only as strong as the counter: it must live where an
//! attacker who can rewrite the flash cannot rewind it (a secure element, OTP
//! fuses, a replay-protected memory block). A counter that is persisted
//! lazily (say every 16 commits) detects only rollbacks past that window.

/// A trusted monotonic counter (secure element, OTP, RPMB, ...).
pub trait MonotonicCounter {
    /// The counter's error type.
    type Error: core::fmt::Debug;
    /// The current value.
    ///
    /// # Errors
    /// When the counter cannot be read.
    fn read(&mut self) -> Result<u64, Self::Error>;
    /// Raises the counter to at least `v` (never lowers it).
    ///
    /// # Errors
    /// When the counter cannot be written.
    fn advance_to(&mut self, v: u64) -> Result<(), Self::Error>;
}

/// No rollback protection: reads 0 and ignores advances.
///
/// Use only where the threat model excludes an attacker replaying old flash
/// images; corruption and tampering are still detected.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRollbackProtection;

impl MonotonicCounter for NoRollbackProtection {
    type Error = core::convert::Infallible;
    fn read(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn advance_to(&mut self, _v: u64) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A counter held in RAM, for tests and simulations (it is not persistent, so
/// it protects nothing across a real reboot).
#[derive(Debug, Default, Clone, Copy)]
pub struct RamCounter {
    /// The current value.
    pub value: u64,
}

impl MonotonicCounter for RamCounter {
    type Error = core::convert::Infallible;
    fn read(&mut self) -> Result<u64, Self::Error> {
        Ok(self.value)
    }
    fn advance_to(&mut self, v: u64) -> Result<(), Self::Error> {
        self.value = self.value.max(v);
        Ok(())
    }
}

impl<C: MonotonicCounter> MonotonicCounter for &mut C {
    type Error = C::Error;
    fn read(&mut self) -> Result<u64, Self::Error> {
        C::read(self)
    }
    fn advance_to(&mut self, v: u64) -> Result<(), Self::Error> {
        C::advance_to(self, v)
    }
}
