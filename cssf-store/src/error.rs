//! The one error type of the crate.

use core::fmt;

use embedded_storage::nor_flash::NorFlashErrorKind;

/// Everything that can go wrong in the store.
///
/// Integrity failures are split by what they mean for the caller:
/// [`Error::Tampered`] (one record failed authentication: only its key is
/// affected), [`Error::Corrupt`] (the log has a hole, so the answer for this
/// key cannot be trusted), [`Error::Rollback`] (the whole image is older than
/// the trusted monotonic counter).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The flash driver reported an error.
    Flash(NorFlashErrorKind),
    /// The caller's monotonic counter reported an error.
    Counter,
    /// The flash geometry or configuration cannot hold a store.
    Config,
    /// No value is stored under this key.
    NotFound,
    /// The key name is longer than [`crate::MAX_KEY_LEN`] or empty.
    KeyTooLong {
        /// The largest accepted key length.
        max: usize,
    },
    /// The value is longer than [`crate::MAX_VALUE_LEN`].
    ValueTooLong {
        /// The largest accepted value length.
        max: usize,
    },
    /// The output buffer is too short for the value.
    BufferTooSmall {
        /// How many bytes the value needs.
        needed: usize,
    },
    /// The live data plus this write do not fit in the flash.
    Full,
    /// The in-RAM index holds its maximum number of keys.
    IndexFull,
    /// A transaction has more operations than it can hold, or does not fit in
    /// one sector.
    TransactionTooLarge,
    /// The newest record of this key failed authentication (tampered flash or
    /// a bit flip): its value is not returned.
    Tampered,
    /// The log has an unexplained hole (a record lost to corruption or
    /// tampering) that may have held a newer value of this key.
    Corrupt,
    /// The flash image is older than the trusted monotonic counter: an old
    /// image was replayed, or the newest records were cut away.
    Rollback,
    /// The flash holds a store written in an older on-flash format (format
    /// 1, whose nonces could repeat after a rollback). Mount leaves it
    /// untouched: read the values with the release that wrote them and
    /// write them into a fresh store.
    UnsupportedFormat,
    /// An `AsyncStore` operation's future was dropped before it
    /// finished: the store's in-RAM state may not match the flash any more,
    /// so it refuses every call until it is mounted again.
    Interrupted,
}

impl Error {
    /// A stable numeric code, e.g. for logs or a management protocol.
    #[must_use]
    pub const fn code(&self) -> u8 {
        match self {
            Self::Flash(_) => 1,
            Self::Counter => 2,
            Self::Config => 3,
            Self::NotFound => 4,
            Self::KeyTooLong { .. } => 5,
            Self::ValueTooLong { .. } => 6,
            Self::BufferTooSmall { .. } => 7,
            Self::Full => 8,
            Self::IndexFull => 9,
            Self::TransactionTooLarge => 10,
            Self::Tampered => 11,
            Self::Corrupt => 12,
            Self::Rollback => 13,
            Self::UnsupportedFormat => 14,
            Self::Interrupted => 15,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flash(kind) => write!(f, "flash error: {kind}"),
            Self::Counter => f.write_str("monotonic counter error"),
            Self::Config => f.write_str("flash geometry or configuration unusable"),
            Self::NotFound => f.write_str("key not found"),
            Self::KeyTooLong { max } => write!(f, "key empty or longer than {max} bytes"),
            Self::ValueTooLong { max } => write!(f, "value longer than {max} bytes"),
            Self::BufferTooSmall { needed } => write!(f, "buffer too small, {needed} bytes needed"),
            Self::Full => f.write_str("store full"),
            Self::IndexFull => f.write_str("key index full"),
            Self::TransactionTooLarge => f.write_str("transaction too large"),
            Self::Tampered => f.write_str("record failed authentication"),
            Self::Corrupt => f.write_str("log corrupt: value cannot be trusted"),
            Self::Rollback => f.write_str("flash image older than the trusted counter"),
            Self::UnsupportedFormat => f.write_str("store written in an unsupported older format"),
            Self::Interrupted => f.write_str("an earlier operation was cancelled: mount again"),
        }
    }
}

impl core::error::Error for Error {}

/// Maps a flash driver error to [`Error::Flash`].
pub(crate) fn flash_err<E: embedded_storage::nor_flash::NorFlashError>(e: E) -> Error {
    Error::Flash(e.kind())
}
