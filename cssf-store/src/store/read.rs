//! Reading: walking the log, opening records, `get` and `for_each_key`.
//!
//! # Invariants
//!
//! - A record is only trusted after its AEAD tag checks, with the header as
//!   associated data; [`Store::get`] also checks that the header matches the
//!   index entry (counter, name hash, kind) and that the name sealed inside
//!   the record is the key asked for.
//! - Walking a sector skips, word by word, any region without an authentic
//!   record header, and never reads past the sector.
//! - Plaintext only lives in [`Scratch`] buffers, wiped on drop.
//! - In the degraded state a key whose newest record is at or below the
//!   highest lost counter, and every absent key, answers [`Error::Corrupt`].

use crate::crypto::TAG_LEN;
use crate::error::Error;
use crate::layout::{align_up, Kind, RecordHeader, FLAG_PLAIN_NAME, RECORD_HEADER_LEN};
use crate::rollback::MonotonicCounter;

use super::index::Entry;
use super::io::Flash;
use super::transaction::check_key;
use super::{Core, Scratch, MAX_ALIGN, MAX_RECORD_LEN};

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    pub(super) async fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), Error> {
        self.flash.read(addr, buf).await
    }

    /// Offset just past the last byte in sector `i` that is not 0xFF,
    /// rounded up to `ALIGN`.
    pub(super) async fn data_end(&mut self, i: usize) -> Result<u32, Error> {
        let start = self.sector_start(i);
        let mut chunk = [0u8; MAX_ALIGN];
        let chunk = chunk.get_mut(..Self::ALIGN).unwrap_or(&mut []);
        let mut end = 0u32;
        let mut off = 0u32;
        // Read in larger blocks for speed.
        let mut block = [0u8; 256];
        let blen = (256 / Self::ALIGN).max(1) * Self::ALIGN;
        while off < Self::SECTOR {
            let n = (Self::SECTOR - off).min(blen as u32) as usize;
            if n % Self::ALIGN != 0 || n > block.len() {
                // Geometry with ALIGN > 256 is rejected; fall back to units.
                self.read(start + off, chunk).await?;
                if chunk.iter().any(|&b| b != 0xFF) {
                    end = off + Self::ALIGN as u32;
                }
                off += Self::ALIGN as u32;
                continue;
            }
            let b = block.get_mut(..n).unwrap_or(&mut []);
            self.flash.read(start + off, b).await?;
            if let Some(last) = b.iter().rposition(|&x| x != 0xFF) {
                end = off + align_up(last + 1, Self::ALIGN) as u32;
            }
            off += n as u32;
        }
        Ok(end)
    }

    /// Reads the record header at `*pos` in sector `i`, skipping regions
    /// without an authentic header. Returns the header and its address, or
    /// `None` at the end of the sector's data.
    pub(super) async fn walk(
        &mut self,
        i: usize,
        pos: &mut u32,
        data_end: u32,
        garbage: &mut bool,
    ) -> Result<Option<(RecordHeader, u32)>, Error> {
        let start = self.sector_start(i);
        let mut hb = [0u8; align_up(RECORD_HEADER_LEN, MAX_ALIGN)];
        let hb = hb.get_mut(..Self::HDR_READ).unwrap_or(&mut []);
        while *pos < data_end && *pos + Self::HDR_READ as u32 <= Self::SECTOR {
            let addr = start + *pos;
            self.flash.read(addr, hb).await?;
            if let Some(h) = RecordHeader::parse(&self.keys, hb) {
                let len = h.total_len(Self::ALIGN) as u32;
                if len as usize <= MAX_RECORD_LEN && *pos + len <= Self::SECTOR {
                    *pos += len;
                    return Ok(Some((h, addr)));
                }
            }
            if !*garbage {
                self.stats.garbage_regions += 1;
            }
            *garbage = true;
            *pos += Self::ALIGN as u32;
        }
        Ok(None)
    }

    /// Reads the record at `addr` into `buf` and checks its AEAD tag; on
    /// success `buf[RECORD_HEADER_LEN..][..payload_len - TAG_LEN]` holds the
    /// plaintext (`name_len || name || value`).
    pub(super) async fn open_record(
        &mut self,
        h: &RecordHeader,
        addr: u32,
        buf: &mut Scratch,
    ) -> Result<bool, Error> {
        let total = h.total_len(Self::ALIGN);
        let payload = h.payload_len as usize;
        if payload < TAG_LEN || total > MAX_RECORD_LEN {
            return Ok(false);
        }
        let rec = buf.prefix_mut(total).ok_or(Error::Corrupt)?;
        self.flash.read(addr, rec).await?;
        self.open_in_place(h, rec)
    }

    /// Checks the AEAD tag of the record `rec` (header `h`, `rec` as read
    /// from flash) and decrypts it in place, as [`Self::open_record`].
    pub(super) fn open_in_place(&self, h: &RecordHeader, rec: &mut [u8]) -> Result<bool, Error> {
        let payload = h.payload_len as usize;
        if payload < TAG_LEN || rec.len() < RECORD_HEADER_LEN + payload {
            return Ok(false);
        }
        let body_end = RECORD_HEADER_LEN + payload - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(
            rec.get(body_end..body_end + TAG_LEN)
                .ok_or(Error::Corrupt)?,
        );
        let clear = if h.flags & FLAG_PLAIN_NAME != 0 {
            match rec.get(RECORD_HEADER_LEN) {
                Some(&n) if body_end >= RECORD_HEADER_LEN + 1 + n as usize => 1 + n as usize,
                _ => return Ok(false),
            }
        } else {
            0
        };
        let (ad, rest) = rec.split_at_mut(RECORD_HEADER_LEN + clear);
        let sealed = rest
            .get_mut(..body_end - RECORD_HEADER_LEN - clear)
            .ok_or(Error::Corrupt)?;
        Ok(self.keys.open(&h.nonce(), ad, sealed, &tag))
    }

    /// Reads the value of `key` into `buf`, returning its length.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::BufferTooSmall`], [`Error::Tampered`]
    /// (the record failed authentication), [`Error::Corrupt`] (degraded store
    /// and the answer cannot be trusted), key length and flash errors.
    pub(super) async fn get(&mut self, key: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        check_key(key)?;
        let hash = self.name_hash(key);
        let Some(e) = self.find(&hash).and_then(|i| self.index.get(i).copied()) else {
            return Err(if self.lost_max.is_some() {
                Error::Corrupt
            } else {
                Error::NotFound
            });
        };
        if e.tampered {
            return Err(Error::Tampered);
        }
        if self.lost_max.is_some_and(|l| e.counter <= l) {
            return Err(Error::Corrupt);
        }
        let mut scratch = Scratch::new();
        let body = self.read_body(&e, &mut scratch).await?;
        let (name, value) = split_body(body).ok_or(Error::Tampered)?;
        if name != key {
            return Err(Error::Tampered);
        }
        let out = buf.get_mut(..value.len()).ok_or(Error::BufferTooSmall {
            needed: value.len(),
        })?;
        out.copy_from_slice(value);
        Ok(value.len())
    }

    /// Reads and authenticates the record of index entry `e`; returns the
    /// plaintext body.
    pub(super) async fn read_body<'b>(
        &mut self,
        e: &Entry,
        scratch: &'b mut Scratch,
    ) -> Result<&'b [u8], Error> {
        // One read of the whole record: the index knows its size.
        let size = e.size as usize;
        if size < Self::HDR_READ || size > MAX_RECORD_LEN {
            return Err(Error::Tampered);
        }
        let rec = scratch.prefix_mut(size).ok_or(Error::Tampered)?;
        self.read(e.addr, rec).await?;
        // The header tag is not checked: the AEAD check below covers the
        // header (associated data).
        let h = RecordHeader::parse_unchecked(rec).ok_or(Error::Tampered)?;
        if h.counter != e.counter
            || h.name_hash != e.hash
            || h.kind != Kind::Set
            || h.total_len(Self::ALIGN) != size
        {
            return Err(Error::Tampered);
        }
        if !self.open_in_place(&h, rec)? {
            return Err(Error::Tampered);
        }
        let plain = h.payload_len as usize - TAG_LEN;
        scratch
            .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + plain)
            .ok_or(Error::Tampered)
    }

    /// Calls `f` with each key name (or the error that hides it, e.g.
    /// [`Error::Tampered`]), in no particular order.
    ///
    /// # Errors
    /// Flash errors stop the iteration.
    pub(super) async fn for_each_key(
        &mut self,
        mut f: impl FnMut(Result<&[u8], Error>),
    ) -> Result<(), Error> {
        let mut scratch = Scratch::new();
        for i in 0..self.index_len {
            let Some(e) = self.index.get(i).copied() else {
                break;
            };
            if e.tampered {
                f(Err(Error::Tampered));
                continue;
            }
            if self.lost_max.is_some_and(|l| e.counter <= l) {
                f(Err(Error::Corrupt));
                continue;
            }
            match self.read_body(&e, &mut scratch).await {
                Ok(body) => match split_body(body) {
                    Some((name, _)) => f(Ok(name)),
                    None => f(Err(Error::Tampered)),
                },
                Err(Error::Flash(k)) => return Err(Error::Flash(k)),
                Err(err) => f(Err(err)),
            }
        }
        Ok(())
    }
}

/// Splits `name_len || name || value`.
pub(super) fn split_body(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = body.split_first()?;
    rest.split_at_checked(n as usize)
}
