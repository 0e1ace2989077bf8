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
//! lazily ([`LazyCounter`], say every 16 records) detects only rollbacks past
//! that window; an eager one (advanced after every operation) detects any
//! rollback except of the one operation a power cut interrupts between its
//! flash write and the counter update.
//!
//! The counter only detects rollbacks. Confidentiality does not depend on
//! it: record nonces carry a random per-mount salt (see [`crate::crypto`]),
//! so the store never reuses a nonce with no counter, a lazy one, or after a
//! power cut before the update.
//!
//! | counter | old image replayed | newest records cut away | nonce reuse |
//! | --- | --- | --- | --- |
//! | [`NoRollbackProtection`] | not detected | not detected | never |
//! | [`LazyCounter`] (every `n`) | detected past `n` records | detected past `n` records | never |
//! | eager (e.g. [`RamCounter`] semantics, persisted) | detected | detected, except the last operation when a power cut hit before the update | never |

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

/// A counter persisted lazily: the inner counter is advanced only when the
/// value has moved `every` or more past what it last persisted, so a counter
/// with few write cycles (OTP fuses, a secure element's slot) lasts longer.
///
/// Rollback detection then has a window: an image at most `every - 1`
/// records older than the newest may be replayed, or that many newest
/// records cut away, without [`crate::Error::Rollback`]. Confidentiality is
/// not affected (nonces never repeat, whatever the counter).
///
/// ```
/// use cssf_store::{LazyCounter, MonotonicCounter, RamCounter};
/// let mut c = LazyCounter::new(RamCounter::default(), 16);
/// c.advance_to(10).unwrap();
/// assert_eq!(c.inner().value, 0); // not persisted yet
/// c.advance_to(16).unwrap();
/// assert_eq!(c.inner().value, 16);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LazyCounter<C> {
    inner: C,
    every: u64,
    persisted: Option<u64>,
}

impl<C: MonotonicCounter> LazyCounter<C> {
    /// Wraps `inner`, persisting only every `every` counts (at least 1).
    pub const fn new(inner: C, every: u64) -> Self {
        Self {
            inner,
            every: if every == 0 { 1 } else { every },
            persisted: None,
        }
    }

    /// The wrapped counter.
    pub const fn inner(&self) -> &C {
        &self.inner
    }

    /// Unwraps the counter.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: MonotonicCounter> MonotonicCounter for LazyCounter<C> {
    type Error = C::Error;
    fn read(&mut self) -> Result<u64, Self::Error> {
        let v = self.inner.read()?;
        self.persisted = Some(v);
        Ok(v)
    }
    fn advance_to(&mut self, v: u64) -> Result<(), Self::Error> {
        let base = match self.persisted {
            Some(p) => p,
            None => self.read()?,
        };
        if v >= base.saturating_add(self.every) {
            self.inner.advance_to(v)?;
            self.persisted = Some(v);
        }
        Ok(())
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
