//! Flash back ends: a RAM flash enforcing NOR semantics (tests, benches,
//! simulation) and, with the `std` feature, a file-backed flash for hosts.
//!
//! Any MCU driver implementing `embedded-storage`'s `NorFlash` works too.

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashError, NorFlashErrorKind,
    ReadNorFlash,
};

/// Errors of the flash back ends in this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlashError {
    /// Offset or length not aligned, or out of bounds.
    Bounds(NorFlashErrorKind),
    /// A write tried to set a bit from 0 to 1 (NOR flash can only clear bits
    /// between erases).
    BitSet {
        /// Offset of the offending byte.
        offset: u32,
    },
    /// An I/O error in the file back end.
    Io,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Bounds(k) => *k,
            Self::BitSet { .. } | Self::Io => NorFlashErrorKind::Other,
        }
    }
}

/// A NOR flash in RAM: `SIZE` bytes, erase sectors of `ERASE` bytes, program
/// unit `WRITE` bytes and read unit `READ` bytes.
///
/// Writes may only clear bits (a write that would set a bit fails with
/// [`FlashError::BitSet`] and changes nothing); erase sets a sector to 0xFF.
/// It counts bytes written and sectors erased, for write-amplification
/// figures.
///
/// ```
/// use cssf_store::flash::RamFlash;
/// use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
/// let mut f = RamFlash::<1024, 256, 4, 1>::new();
/// f.write(0, &[0x0F; 4]).unwrap();
/// assert!(f.write(0, &[0xFF; 4]).is_err()); // would set bits
/// f.erase(0, 256).unwrap();
/// let mut b = [0; 4];
/// f.read(0, &mut b).unwrap();
/// assert_eq!(b, [0xFF; 4]);
/// ```
#[derive(Clone)]
pub struct RamFlash<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> {
    data: [u8; SIZE],
    /// Bytes programmed so far.
    pub bytes_written: u64,
    /// Sectors erased so far.
    pub sectors_erased: u64,
}

impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> core::fmt::Debug
    for RamFlash<SIZE, ERASE, WRITE, READ>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RamFlash")
            .field("size", &SIZE)
            .field("bytes_written", &self.bytes_written)
            .field("sectors_erased", &self.sectors_erased)
            .finish_non_exhaustive()
    }
}

impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> Default
    for RamFlash<SIZE, ERASE, WRITE, READ>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize>
    RamFlash<SIZE, ERASE, WRITE, READ>
{
    /// A fully erased flash.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            data: [0xFF; SIZE],
            bytes_written: 0,
            sectors_erased: 0,
        }
    }

    /// The raw image.
    #[must_use]
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The raw image, mutable (to simulate tampering or load an image).
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> ErrorType
    for RamFlash<SIZE, ERASE, WRITE, READ>
{
    type Error = FlashError;
}

impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> ReadNorFlash
    for RamFlash<SIZE, ERASE, WRITE, READ>
{
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len()).map_err(FlashError::Bounds)?;
        let src = self
            .data
            .get(offset as usize..offset as usize + bytes.len())
            .ok_or(FlashError::Bounds(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        SIZE
    }
}

impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> NorFlash
    for RamFlash<SIZE, ERASE, WRITE, READ>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to).map_err(FlashError::Bounds)?;
        let d = self
            .data
            .get_mut(from as usize..to as usize)
            .ok_or(FlashError::Bounds(NorFlashErrorKind::OutOfBounds))?;
        d.fill(0xFF);
        self.sectors_erased += ((to - from) as usize / ERASE) as u64;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len()).map_err(FlashError::Bounds)?;
        let d = self
            .data
            .get_mut(offset as usize..offset as usize + bytes.len())
            .ok_or(FlashError::Bounds(NorFlashErrorKind::OutOfBounds))?;
        if let Some(i) = d.iter().zip(bytes).position(|(old, new)| new & !old != 0) {
            return Err(FlashError::BitSet {
                offset: offset + i as u32,
            });
        }
        for (old, new) in d.iter_mut().zip(bytes) {
            *old &= new;
        }
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use file::FileFlash;

#[cfg(feature = "std")]
mod file {
    use super::{
        check_erase, check_read, check_write, ErrorType, FlashError, NorFlash, NorFlashErrorKind,
        ReadNorFlash,
    };
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::Path;

    /// A NOR flash emulated in a host file (`std` feature), same semantics as
    /// [`super::RamFlash`]: `ERASE`-byte sectors, 4-byte program unit.
    #[derive(Debug)]
    pub struct FileFlash<const ERASE: usize> {
        file: File,
        capacity: usize,
    }

    impl<const ERASE: usize> FileFlash<ERASE> {
        /// Opens (or creates, erased) a flash file of `capacity` bytes.
        ///
        /// # Errors
        /// [`FlashError::Io`] when the file cannot be opened or sized, and
        /// [`FlashError::Bounds`] when `capacity` is not a multiple of `ERASE`.
        pub fn open(path: &Path, capacity: usize) -> Result<Self, FlashError> {
            if ERASE == 0 || capacity % ERASE != 0 {
                return Err(FlashError::Bounds(NorFlashErrorKind::NotAligned));
            }
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|_| FlashError::Io)?;
            let len = file.metadata().map_err(|_| FlashError::Io)?.len() as usize;
            if len < capacity {
                file.seek(SeekFrom::Start(len as u64))
                    .map_err(|_| FlashError::Io)?;
                let ff = [0xFFu8; 256];
                let mut left = capacity - len;
                while left > 0 {
                    let n = left.min(ff.len());
                    file.write_all(ff.get(..n).unwrap_or(&[]))
                        .map_err(|_| FlashError::Io)?;
                    left -= n;
                }
            }
            Ok(Self { file, capacity })
        }

        fn read_at(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
            self.file
                .seek(SeekFrom::Start(u64::from(offset)))
                .map_err(|_| FlashError::Io)?;
            self.file.read_exact(bytes).map_err(|_| FlashError::Io)
        }

        fn write_at(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
            self.file
                .seek(SeekFrom::Start(u64::from(offset)))
                .map_err(|_| FlashError::Io)?;
            self.file.write_all(bytes).map_err(|_| FlashError::Io)
        }
    }

    impl<const ERASE: usize> ErrorType for FileFlash<ERASE> {
        type Error = FlashError;
    }

    impl<const ERASE: usize> ReadNorFlash for FileFlash<ERASE> {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
            check_read(self, offset, bytes.len()).map_err(FlashError::Bounds)?;
            self.read_at(offset, bytes)
        }
        fn capacity(&self) -> usize {
            self.capacity
        }
    }

    impl<const ERASE: usize> NorFlash for FileFlash<ERASE> {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = ERASE;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
            check_erase(self, from, to).map_err(FlashError::Bounds)?;
            let ff = [0xFFu8; 256];
            let mut at = from;
            while at < to {
                let n = ((to - at) as usize).min(ff.len());
                self.write_at(at, ff.get(..n).unwrap_or(&[]))?;
                at += n as u32;
            }
            self.file.flush().map_err(|_| FlashError::Io)?;
            // Durable before the store moves its rollback counter on: a
            // counter file ahead of the image after a host crash would lock
            // the store out.
            self.file.sync_data().map_err(|_| FlashError::Io)
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
            check_write(self, offset, bytes.len()).map_err(FlashError::Bounds)?;
            let mut old = [0u8; 256];
            let mut done = 0usize;
            while done < bytes.len() {
                let n = (bytes.len() - done).min(old.len());
                let chunk = bytes.get(done..done + n).unwrap_or(&[]);
                let o = old.get_mut(..n).unwrap_or(&mut []);
                let at = offset + done as u32;
                self.read_at(at, o)?;
                if let Some(i) = o.iter().zip(chunk).position(|(a, b)| b & !a != 0) {
                    return Err(FlashError::BitSet {
                        offset: at + i as u32,
                    });
                }
                for (a, b) in o.iter_mut().zip(chunk) {
                    *a &= b;
                }
                self.write_at(at, o)?;
                done += n;
            }
            self.file.flush().map_err(|_| FlashError::Io)?;
            // Durable before the store moves its rollback counter on: a
            // counter file ahead of the image after a host crash would lock
            // the store out.
            self.file.sync_data().map_err(|_| FlashError::Io)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_flash_enforces_nor_semantics() {
        let mut f = RamFlash::<512, 128, 4, 4>::new();
        assert_eq!(
            f.write(1, &[0; 4]),
            Err(FlashError::Bounds(NorFlashErrorKind::NotAligned))
        );
        assert_eq!(
            f.write(512, &[0; 4]),
            Err(FlashError::Bounds(NorFlashErrorKind::OutOfBounds))
        );
        f.write(4, &[0xF0, 0x0F, 0xFF, 0x00]).unwrap();
        f.write(4, &[0xE0, 0x0F, 0xFF, 0x00]).unwrap(); // clears one more bit: fine
        assert_eq!(
            f.write(4, &[0xF0, 0x0F, 0xFF, 0x00]),
            Err(FlashError::BitSet { offset: 4 })
        );
        let mut b = [0; 4];
        f.read(4, &mut b).unwrap();
        assert_eq!(b, [0xE0, 0x0F, 0xFF, 0x00]);
        assert_eq!(f.bytes_written, 8);
        f.erase(0, 128).unwrap();
        f.read(4, &mut b).unwrap();
        assert_eq!(b, [0xFF; 4]);
        assert_eq!(
            f.erase(0, 100),
            Err(FlashError::Bounds(NorFlashErrorKind::NotAligned))
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn file_flash_enforces_nor_semantics() {
        let path = std::env::temp_dir().join(format!("cssf-store-ff-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let mut f = FileFlash::<256>::open(&path, 1024).unwrap();
            let mut b = [0; 4];
            f.read(300, &mut b).unwrap();
            assert_eq!(b, [0xFF; 4]);
            f.write(300, &[1, 2, 3, 4]).unwrap();
            assert!(matches!(
                f.write(300, &[0xFF; 4]),
                Err(FlashError::BitSet { .. })
            ));
        }
        let mut f = FileFlash::<256>::open(&path, 1024).unwrap();
        let mut b = [0; 4];
        f.read(300, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        f.erase(256, 512).unwrap();
        f.read(300, &mut b).unwrap();
        assert_eq!(b, [0xFF; 4]);
        let _ = std::fs::remove_file(&path);
    }
}
