//! The blocking front end: [`Store`] over an `embedded-storage` flash.
//!
//! Each method runs the shared core's future over the [`Blocking`] adapter
//! with [`block_on`] (one poll; see [`super::io`] for why that always
//! finishes).

use embedded_storage::nor_flash::NorFlash;
use rand_core::CryptoRngCore;

use crate::config::Config;
use crate::crypto::RootKey;
use crate::error::Error;
use crate::rollback::MonotonicCounter;

use super::io::{block_on, Blocking};
use super::{Core, Stats, Transaction};

/// The encrypted key-value store over a NOR flash `F`, with a trusted
/// monotonic counter `C`, an index of at most `KEYS` keys, and `SECTORS`
/// erase sectors (at least 2) starting at [`Config::base`].
///
/// ```
/// use cssf_store::{flash::RamFlash, Config, RamCounter, RootKey, Store};
/// let flash = RamFlash::<{ 4 * 4096 }, 4096, 4, 1>::new();
/// let rng = &mut rand_core::OsRng; // the device's entropy source
/// let mut store: Store<_, _, 16, 4> =
///     Store::mount(flash, &RootKey([7; 32]), RamCounter::default(), Config::new(), rng)
///         .unwrap();
/// store.set(b"wifi/psk", b"hunter2").unwrap();
/// let mut buf = [0u8; 32];
/// let n = store.get(b"wifi/psk", &mut buf).unwrap();
/// assert_eq!(&buf[..n], b"hunter2");
/// store.remove(b"wifi/psk").unwrap();
/// assert_eq!(store.get(b"wifi/psk", &mut buf), Err(cssf_store::Error::NotFound));
/// ```
pub struct Store<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize> {
    pub(super) core: Core<Blocking<F>, C, KEYS, SECTORS>,
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize> core::fmt::Debug
    for Store<F, C, KEYS, SECTORS>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.core.debug("Store", f)
    }
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Store<F, C, KEYS, SECTORS>
{
    /// Mounts the store: scans the log, checks it against the trusted
    /// counter, finishes any interrupted garbage collection or erase, and
    /// rebuilds the index. A blank flash gives an empty store.
    ///
    /// `rng` draws this mount's 16-byte nonce salt (see
    /// [`crate::crypto`]): it must be a real entropy source (a TRNG, or a
    /// CSPRNG seeded from one), since the confidentiality of every record
    /// written during this mount rests on the salt not repeating.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable geometry, [`Error::Rollback`] when
    /// the image is older than the counter, [`Error::IndexFull`] when the
    /// flash holds more than `KEYS` keys (only possible when it was written
    /// with a larger `KEYS`, or when a remove record was tampered with:
    /// [`Store::set`] and [`Store::commit`] refuse a new key past `KEYS`
    /// before writing anything), [`Error::UnsupportedFormat`] for a flash
    /// written in format 1 (left untouched), flash and counter errors.
    pub fn mount(
        flash: F,
        root: &RootKey,
        counter: C,
        config: Config,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, Error> {
        let mut core = Core::new(Blocking(flash), root, counter, config, rng);
        block_on(core.recover(root))?;
        Ok(Self { core })
    }

    /// Reads the value of `key` into `buf`, returning its length.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::BufferTooSmall`], [`Error::Tampered`]
    /// (the record failed authentication), [`Error::Corrupt`] (degraded store
    /// and the answer cannot be trusted), key length and flash errors.
    pub fn get(&mut self, key: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        block_on(self.core.get(key, buf))
    }

    /// Sets `key` to `value`.
    ///
    /// Refused before anything is written with [`Error::IndexFull`] when
    /// `key` is new and the index already holds `KEYS` keys (so a store
    /// written through this API always mounts with the same `KEYS`), and
    /// with [`Error::Full`] when the live data would grow past what one
    /// garbage collection can move into a fresh sector while absorbing
    /// [`GC_CUTS`](super::GC_CUTS) power cuts (so a power cut never leaves the store unable
    /// to write; removes are always accepted and free room again).
    ///
    /// # Errors
    /// Key or value too long, [`Error::IndexFull`], [`Error::Full`],
    /// [`Error::Corrupt`] when the store is degraded and needs a garbage
    /// collection, flash and counter errors.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        block_on(self.core.set(key, value))
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when absent (and the store is not degraded),
    /// [`Error::Full`], flash and counter errors.
    pub fn remove(&mut self, key: &[u8]) -> Result<(), Error> {
        block_on(self.core.remove(key))
    }

    /// Applies all operations of `tx` atomically.
    ///
    /// # Errors
    /// [`Error::TransactionTooLarge`] when the records do not fit in one
    /// sector, [`Error::IndexFull`], [`Error::Full`], flash and counter errors.
    /// After a flash error the transaction is not applied.
    pub fn commit<const N: usize>(&mut self, tx: &Transaction<'_, N>) -> Result<(), Error> {
        block_on(self.core.commit(tx))
    }

    /// Calls `f` with each key name (or the error that hides it, e.g.
    /// [`Error::Tampered`]), in no particular order.
    ///
    /// # Errors
    /// Flash errors stop the iteration.
    pub fn for_each_key(&mut self, f: impl FnMut(Result<&[u8], Error>)) -> Result<(), Error> {
        block_on(self.core.for_each_key(f))
    }

    /// Accepts the loss found on mount: every key whose answer could not be
    /// trusted is marked tampered (it answers [`Error::Tampered`] until set
    /// again or removed), an `ack` record covers the hole, and garbage
    /// collection resumes. Keys that only lived in the lost records are gone.
    ///
    /// # Errors
    /// [`Error::Full`], flash and counter errors.
    pub fn repair(&mut self) -> Result<(), Error> {
        block_on(self.core.repair())
    }

    /// Number of keys in the index (including ones whose record is damaged).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.core.index_len
    }

    /// Whether the store holds no key.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.core.index_len == 0
    }

    /// Whether a hole in the log was found (see the [module docs](super)).
    #[must_use]
    pub const fn is_degraded(&self) -> bool {
        self.core.lost_max.is_some()
    }

    /// Diagnostics counters.
    #[must_use]
    pub const fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Erase count of each sector (best effort: a count lost to an
    /// interrupted erase restarts from the highest count seen).
    pub fn erase_counts(&self) -> impl Iterator<Item = u32> + '_ {
        self.core.sectors.iter().map(|s| s.erase_count)
    }

    /// The flash, e.g. to read its counters.
    #[must_use]
    pub const fn flash(&self) -> &F {
        &self.core.flash.0
    }

    /// Unmounts, returning the flash and the counter.
    pub fn into_parts(self) -> (F, C) {
        let Core { flash, counter, .. } = self.core;
        (flash.0, counter)
    }
}
