//! Rollback protection: a trusted monotonic counter the caller provides.
//!
//! Every record in the log carries a 64-bit counter that only grows. The
//! store keeps two facts in the one trusted value ([`trusted_value`]): the
//! highest record counter *reserved*, and the highest *confirmed* written.
//!
//! - Before it writes a record whose counter is not yet reserved, the store
//!   reserves it, and [`crate::Config::counter_block`] - 1 more, with
//!   [`MonotonicCounter::advance_to`] (write-ahead), confirming in the same
//!   write the records already on flash. No counter is ever used by two
//!   records, whatever power cuts and rollbacks happen, so a record cut away
//!   by a power cut cannot be swapped in for a later one.
//! - With a block of 1 (the default, "eager") the store also confirms the
//!   records of each operation when it completes.
//! - On mount the newest valid record must be at least the confirmed
//!   counter; otherwise the image is older than the trusted counter allows,
//!   and mount fails with [`crate::Error::Rollback`].
//!
//! The protection is only as strong as the counter: it must live where an
//! attacker who can rewrite the flash cannot rewind it (a secure element, OTP
//! fuses, a replay-protected memory block). With a block of 1 (the default,
//! "eager": one counter write per record, one more per operation) every
//! rollback is detected except of the operation a power cut interrupted
//! before its confirmation; with a block of `n` ("lazy": one counter write
//! per `n` records) a rollback of up to `n` records goes unseen.
//!
//! The counter only detects rollbacks. Confidentiality does not depend on
//! it: record nonces carry a random per-mount salt (see [`crate::crypto`]),
//! so the store never reuses a nonce with no counter, a lazy one, or after a
//! power cut.
//!
//! | counter | old image replayed | newest records cut away | nonce reuse |
//! | --- | --- | --- | --- |
//! | [`NoRollbackProtection`] | not detected | not detected | never |
//! | lazy (`counter_block` = n) | detected past n records | detected past n records; a record cut inside the last block can later be put back in place of a newer one (its counter is reused) | never |
//! | eager (`counter_block` = 1, the default) | detected | detected, except the operation a power cut interrupted before its confirmation | never |

const SPAN: u64 = 1 << 16;

/// The trusted counter value for `reserved` (the highest record counter
/// reserved) and `confirmed` (the highest confirmed written, at most
/// `reserved`): `reserved * 2^16 + 2^16 - 1 - min(reserved - confirmed,
/// 2^16 - 1)`. It grows when either grows, so a monotonic counter can hold
/// both. A confirmation 2^16 - 1 or more records behind the reservation
/// reads back as unknown (0): weaker until the next confirmation, never a
/// false rollback. The counter must accept jumps (`advance_to` any higher
/// value; a 64-bit counter in a secure element or a replay-protected
/// memory block): the value grows by 2^16 per reserved record, which a
/// counter that only counts up by one (unary OTP fuses) cannot hold.
///
/// ```
/// use cssf_store::rollback::{trusted_parts, trusted_value};
/// assert!(trusted_value(5, 5) > trusted_value(5, 4));
/// assert!(trusted_value(6, 0) > trusted_value(5, 5));
/// assert_eq!(trusted_parts(trusted_value(7, 6)), (7, 6));
/// assert_eq!(trusted_parts(0), (0, 0));
/// // Too far behind to say: confirmation unknown, never a false rollback.
/// assert_eq!(trusted_parts(trusted_value(100_000, 0)), (100_000, 0));
/// ```
#[must_use]
pub const fn trusted_value(reserved: u64, confirmed: u64) -> u64 {
    let behind = reserved.saturating_sub(confirmed);
    let behind = if behind > SPAN - 1 { SPAN - 1 } else { behind };
    reserved
        .saturating_mul(SPAN)
        .saturating_add(SPAN - 1 - behind)
}

/// The (reserved, confirmed) counters a trusted value holds (see
/// [`trusted_value`]); 0 is (0, 0).
#[must_use]
pub const fn trusted_parts(v: u64) -> (u64, u64) {
    if v == 0 {
        return (0, 0);
    }
    let reserved = v / SPAN;
    let behind = SPAN - 1 - v % SPAN;
    if behind >= SPAN - 1 {
        // Saturated: how far behind is not known.
        return (reserved, 0);
    }
    (reserved, reserved.saturating_sub(behind))
}

/// A trusted monotonic counter (secure element, OTP, RPMB, ...).
pub trait MonotonicCounter {
    /// The counter's error type.
    type Error: core::fmt::Debug;
    /// The current value.
    ///
    /// # Errors
    /// When the counter cannot be read.
    fn read(&mut self) -> Result<u64, Self::Error>;
    /// Raises the counter to at least `v` (never lowers it). It must be
    /// durable when it returns: the store writes the records it reserved
    /// right after.
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

#[cfg(feature = "std")]
pub use file::{FileCounter, FileCounterError};

#[cfg(feature = "std")]
mod file {
    use super::MonotonicCounter;
    use std::fs;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    const MAGIC: &[u8; 8] = b"cssfctr1";

    /// A counter kept in a file beside a host store image (for
    /// [`crate::flash::FileFlash`]), so that replacing the image with an
    /// older copy is detected.
    ///
    /// It is only as trusted as the file system: whoever can rewrite the
    /// image file and this file together can roll both back, and a missing
    /// file reads as 0 (a first run), so deleting it disables detection.
    /// Keep it where the image's attacker cannot write (another volume, a
    /// directory only the service may change), or use a hardware counter.
    /// Updates are written to a temporary file, synced and renamed over the
    /// old one, so a crash leaves the old or the new value.
    ///
    /// ```
    /// use cssf_store::{FileCounter, MonotonicCounter};
    /// let path = std::env::temp_dir().join(format!("cssf-doc-{}.ctr", std::process::id()));
    /// let mut c = FileCounter::open(&path).unwrap();
    /// c.advance_to(42).unwrap();
    /// assert_eq!(FileCounter::open(&path).unwrap().read().unwrap(), 42);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    #[derive(Debug)]
    pub struct FileCounter {
        path: PathBuf,
        value: u64,
    }

    /// Why a [`FileCounter`] failed.
    #[derive(Debug)]
    pub enum FileCounterError {
        /// The file could not be read or written.
        Io(std::io::Error),
        /// The file does not hold a counter (wrong length or magic).
        Malformed,
    }

    impl core::fmt::Display for FileCounterError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                Self::Io(e) => write!(f, "counter file: {e}"),
                Self::Malformed => f.write_str("counter file malformed"),
            }
        }
    }

    impl core::error::Error for FileCounterError {}

    impl FileCounter {
        /// Opens the counter at `path`; a missing file is a counter at 0.
        ///
        /// # Errors
        /// The file exists but cannot be read, or does not hold a counter.
        pub fn open(path: &Path) -> Result<Self, FileCounterError> {
            let value = match fs::read(path) {
                Ok(b) => parse(&b).ok_or(FileCounterError::Malformed)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(FileCounterError::Io(e)),
            };
            Ok(Self {
                path: path.to_path_buf(),
                value,
            })
        }

        fn store(&self, v: u64) -> Result<(), FileCounterError> {
            let mut tmp = self.path.clone().into_os_string();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            let mut b = [0u8; 16];
            let (m, n) = b.split_at_mut(8);
            m.copy_from_slice(MAGIC);
            n.copy_from_slice(&v.to_le_bytes());
            let mut f = fs::File::create(&tmp).map_err(FileCounterError::Io)?;
            f.write_all(&b).map_err(FileCounterError::Io)?;
            f.sync_all().map_err(FileCounterError::Io)?;
            drop(f);
            fs::rename(&tmp, &self.path).map_err(FileCounterError::Io)?;
            if let Some(dir) = self.path.parent() {
                // Make the rename durable where the platform allows it.
                if let Ok(d) = fs::File::open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                }) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        }
    }

    fn parse(b: &[u8]) -> Option<u64> {
        if b.len() != 16 || b.get(..8)? != MAGIC {
            return None;
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(b.get(8..16)?);
        Some(u64::from_le_bytes(v))
    }

    impl MonotonicCounter for FileCounter {
        type Error = FileCounterError;
        fn read(&mut self) -> Result<u64, Self::Error> {
            Ok(self.value)
        }
        fn advance_to(&mut self, v: u64) -> Result<(), Self::Error> {
            if v > self.value {
                self.store(v)?;
                self.value = v;
            }
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn persists_never_lowers_and_rejects_garbage() {
            let dir = std::env::temp_dir().join(format!("cssf-ctr-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            let p = dir.join("c");
            let mut c = FileCounter::open(&p).unwrap();
            assert_eq!(c.read().unwrap(), 0);
            c.advance_to(7).unwrap();
            c.advance_to(3).unwrap();
            assert_eq!(FileCounter::open(&p).unwrap().read().unwrap(), 7);
            fs::write(&p, b"short").unwrap();
            assert!(matches!(
                FileCounter::open(&p),
                Err(FileCounterError::Malformed)
            ));
            fs::remove_dir_all(&dir).unwrap();
        }
    }
}
