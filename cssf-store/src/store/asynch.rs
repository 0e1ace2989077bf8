//! The async front end: [`AsyncStore`] over an `embedded-storage-async`
//! flash (feature `async`), e.g. an embassy flash driver.
//!
//! Each method awaits the same core future as the blocking [`Store`] runs,
//! over the [`Async`] adapter: one implementation of mount, GC, space
//! accounting and the write path for both. The monotonic counter stays a
//! blocking [`MonotonicCounter`].
//!
//! # Cancellation
//!
//! Dropping a future of this store before it finishes is like a power cut
//! at that point for the flash (a record may be half written), but the
//! in-RAM state may then disagree with the flash: remount before using the
//! store again.

use embedded_storage_async::nor_flash::NorFlash;
use rand_core::CryptoRngCore;

use crate::config::Config;
use crate::crypto::RootKey;
use crate::error::Error;
use crate::rollback::MonotonicCounter;

use super::io::Async;
#[cfg(doc)]
use super::Store;
use super::{Core, Stats, Transaction};

/// The encrypted key-value store over an async NOR flash `F`
/// (`embedded-storage-async`), with a trusted monotonic counter `C`, an
/// index of at most `KEYS` keys, and `SECTORS` erase sectors (at least 2)
/// starting at [`Config::base`]. Same format, behaviour and errors as
/// [`Store`], whose core it shares; only the flash operations are awaited.
///
/// ```
/// use core::future::Future;
/// use core::pin::pin;
/// use core::task::{Context, Poll, Waker};
/// use cssf_store::{flash::RamFlash, AsyncStore, Config, RamCounter, RootKey};
/// use embedded_storage_async::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
///
/// // An async driver; here a RAM flash behind the async traits.
/// struct AsyncRam(RamFlash<{ 4 * 4096 }, 4096, 4, 1>);
/// impl ErrorType for AsyncRam {
///     type Error = cssf_store::flash::FlashError;
/// }
/// impl ReadNorFlash for AsyncRam {
///     const READ_SIZE: usize = 1;
///     async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
///         embedded_storage::nor_flash::ReadNorFlash::read(&mut self.0, offset, bytes)
///     }
///     fn capacity(&self) -> usize {
///         embedded_storage::nor_flash::ReadNorFlash::capacity(&self.0)
///     }
/// }
/// impl NorFlash for AsyncRam {
///     const WRITE_SIZE: usize = 4;
///     const ERASE_SIZE: usize = 4096;
///     async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
///         embedded_storage::nor_flash::NorFlash::erase(&mut self.0, from, to)
///     }
///     async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
///         embedded_storage::nor_flash::NorFlash::write(&mut self.0, offset, bytes)
///     }
/// }
///
/// // A tiny executor (on a device: embassy's).
/// fn block_on<T>(fut: impl Future<Output = T>) -> T {
///     let mut fut = pin!(fut);
///     let mut cx = Context::from_waker(Waker::noop());
///     loop {
///         if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
///             return v;
///         }
///     }
/// }
///
/// block_on(async {
///     let flash = AsyncRam(RamFlash::new());
///     let rng = &mut rand_core::OsRng; // the device's entropy source
///     let mut store: AsyncStore<_, _, 16, 4> =
///         AsyncStore::mount(flash, &RootKey([7; 32]), RamCounter::default(), Config::new(), rng)
///             .await
///             .unwrap();
///     store.set(b"wifi/psk", b"hunter2").await.unwrap();
///     let mut buf = [0u8; 32];
///     let n = store.get(b"wifi/psk", &mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"hunter2");
/// });
/// ```
pub struct AsyncStore<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize> {
    core: Core<Async<F>, C, KEYS, SECTORS>,
    /// Set while an operation runs: still set at the start of the next one,
    /// an operation's future was dropped half way (cancelled), the in-RAM
    /// state may no longer match the flash, and every call answers
    /// [`Error::Interrupted`] until the store is mounted again.
    busy: bool,
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize> core::fmt::Debug
    for AsyncStore<F, C, KEYS, SECTORS>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.core.debug("AsyncStore", f)
    }
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    AsyncStore<F, C, KEYS, SECTORS>
{
    /// The async form of [`Store::mount`].
    pub async fn mount(
        flash: F,
        root: &RootKey,
        counter: C,
        config: Config,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, Error> {
        let mut core = Core::new(Async(flash), root, counter, config, rng);
        core.recover(root).await?;
        Ok(Self { core, busy: false })
    }

    /// Runs one operation of the core, refusing when an earlier one was
    /// cancelled half way.
    fn enter(&mut self) -> Result<(), Error> {
        if self.busy {
            return Err(Error::Interrupted);
        }
        self.busy = true;
        Ok(())
    }

    /// The async form of [`Store::get`].
    pub async fn get(&mut self, key: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        self.enter()?;
        let r = self.core.get(key, buf).await;
        self.busy = false;
        r
    }

    /// The async form of [`Store::set`].
    pub async fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.enter()?;
        let r = self.core.set(key, value).await;
        self.busy = false;
        r
    }

    /// The async form of [`Store::remove`].
    pub async fn remove(&mut self, key: &[u8]) -> Result<(), Error> {
        self.enter()?;
        let r = self.core.remove(key).await;
        self.busy = false;
        r
    }

    /// The async form of [`Store::commit`].
    pub async fn commit<const N: usize>(&mut self, tx: &Transaction<'_, N>) -> Result<(), Error> {
        self.enter()?;
        let r = self.core.commit(tx).await;
        self.busy = false;
        r
    }

    /// The async form of [`Store::for_each_key`].
    pub async fn for_each_key(&mut self, f: impl FnMut(Result<&[u8], Error>)) -> Result<(), Error> {
        self.enter()?;
        let r = self.core.for_each_key(f).await;
        self.busy = false;
        r
    }

    /// The async form of [`Store::repair`].
    pub async fn repair(&mut self) -> Result<(), Error> {
        self.enter()?;
        let r = self.core.repair().await;
        self.busy = false;
        r
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
