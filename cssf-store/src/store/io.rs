//! The flash as the shared core sees it, and the adapters of the two front
//! ends.
//!
//! The core (mount, index, GC, space accounting, write path) is written once
//! as `async fn`s over [`Flash`]. The async front end
//! (`AsyncStore`, feature `async`) awaits them over an
//! `embedded-storage-async` flash ([`Async`]). The blocking [`Store`] wraps
//! its `embedded-storage` flash in [`Blocking`], whose futures finish on
//! their first poll, and runs each core future with [`block_on`]: one poll
//! with a no-op waker.
//!
//! # Invariants
//!
//! - A [`Blocking`] operation never returns `Pending`: it calls the blocking
//!   driver and is ready on the first poll. So a core future over it never
//!   suspends (the core awaits nothing else), and [`block_on`] never sees
//!   `Pending`; were it to, it answers a flash error instead of looping or
//!   panicking, and the operation counts as failed at that point (like a
//!   flash error, the caller remounts to recover).
//! - Both adapters map the driver's error to [`Error::Flash`] with its kind,
//!   so both front ends answer the same errors.
//!
//! [`Store`]: super::Store

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_storage::nor_flash::{NorFlash, NorFlashErrorKind};

use crate::error::{flash_err, Error};

/// A NOR flash whose operations the core awaits. Offsets, alignment and
/// semantics are those of `embedded_storage::nor_flash::NorFlash`.
pub(crate) trait Flash {
    /// Read granularity in bytes.
    const READ_SIZE: usize;
    /// Program granularity in bytes.
    const WRITE_SIZE: usize;
    /// Erase granularity (the sector size) in bytes.
    const ERASE_SIZE: usize;
    /// Size of the flash in bytes.
    fn capacity(&self) -> usize;
    /// Reads `bytes.len()` bytes at `offset`.
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error>;
    /// Programs `bytes` at `offset`.
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error>;
    /// Erases `from..to`.
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Error>;
}

/// A blocking `embedded-storage` flash: every operation is ready at once.
pub(crate) struct Blocking<F>(pub(crate) F);

impl<F: NorFlash> Flash for Blocking<F> {
    const READ_SIZE: usize = F::READ_SIZE;
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn capacity(&self) -> usize {
        self.0.capacity()
    }

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
        self.0.read(offset, bytes).map_err(flash_err)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        self.0.write(offset, bytes).map_err(flash_err)
    }

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Error> {
        self.0.erase(from, to).map_err(flash_err)
    }
}

/// An `embedded-storage-async` flash.
#[cfg(feature = "async")]
pub(crate) struct Async<F>(pub(crate) F);

#[cfg(feature = "async")]
impl<F: embedded_storage_async::nor_flash::NorFlash> Flash for Async<F> {
    const READ_SIZE: usize = F::READ_SIZE;
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn capacity(&self) -> usize {
        self.0.capacity()
    }

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
        self.0.read(offset, bytes).await.map_err(flash_err)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        self.0.write(offset, bytes).await.map_err(flash_err)
    }

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Error> {
        self.0.erase(from, to).await.map_err(flash_err)
    }
}

/// Runs a core future over [`Blocking`] flash: polls it once. `Pending`
/// cannot happen (see the module invariants); it is answered with
/// `Error::Flash(Other)` rather than a loop or a panic.
pub(crate) fn block_on<T>(fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let fut = pin!(fut);
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(Error::Flash(NorFlashErrorKind::Other)),
    }
}
