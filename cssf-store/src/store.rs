//! The store: mount, get, set, remove, iterate, transactions, garbage
//! collection.
//!
//! # Design
//!
//! The store is a log over `SECTORS` erase sectors used round robin (see
//! [`crate::layout`] for the bytes). Records are only appended to the *head*
//! sector. When it is full the next sector (always kept erased) becomes the
//! head, and if the sector after that is in use it is the oldest one: its live
//! records are re-sealed with fresh counters into the new head, a `gc-done`
//! record names its generation, and it is erased. So exactly one sector is
//! always free, every sector is erased equally often, and a power cut at any
//! point leaves either the old copy or both copies readable.
//!
//! An in-RAM index of at most `KEYS` entries maps each key's 8-byte keyed name hash
//! to the flash address and counter of its newest record; `get` is one index
//! lookup and one record read. Mount rebuilds the index by scanning the log.
//!
//! # Counters, nonces and integrity
//!
//! Every record carries a 64-bit counter, one higher than the record written
//! before it. It is the AEAD nonce and part of the associated data. On mount
//! the next counter is one above every counter seen in an authentic header
//! (including torn records), so a nonce is never reused, even for a record
//! whose write was cut short.
//!
//! Because the counters in the log are contiguous, a lost record (a bit flip
//! in its header, a removed record, a swapped or dropped sector) shows as a
//! hole. Holes after the newest valid record are torn writes from a power cut
//! and are acknowledged with an `ack` record; a hole anywhere else puts the
//! store in the *degraded* state: every key whose newest record is older than
//! the hole answers [`Error::Corrupt`] (the lost record may have held a newer
//! value), absent keys answer [`Error::Corrupt`] instead of
//! [`Error::NotFound`], and garbage collection stops until
//! [`Store::repair`]. A record whose header is authentic but whose AEAD tag
//! fails makes only its own key answer [`Error::Tampered`].
//!
//! # Threat model and limits
//!
//! An attacker who can read and rewrite the flash, but not the root key,
//! cannot read values or (unless `plain_names`) key names, cannot forge,
//! modify, swap or move records without detection, and cannot replay an older
//! image or truncate the newest records past the trusted
//! [`MonotonicCounter`]. Without a trusted counter ([`crate::NoRollbackProtection`])
//! replaying a whole older image, or erasing the whole store, is not detected.
//! Value and key lengths, the number of keys, access patterns and timing are
//! not hidden. Erasing a value does not scrub old copies until the sector
//! holding them is garbage collected.

use embedded_storage::nor_flash::NorFlash;
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

use crate::config::{Config, MAX_KEY_LEN, MAX_TX_OPS, MAX_VALUE_LEN};
use crate::crypto::{Keys, RootKey, HKDF_SALT_V1, NAME_HASH_LEN, SALT_LEN, TAG_LEN};
use crate::error::{flash_err, Error};
use crate::layout::{
    align_up, Kind, RecordHeader, SectorHeader, FLAG_PLAIN_NAME, RECORD_HEADER_LEN,
    SECTOR_HEADER_LEN, SECTOR_MAGIC_V1,
};
use crate::rollback::MonotonicCounter;

/// Largest supported `max(READ_SIZE, WRITE_SIZE)`.
pub const MAX_ALIGN: usize = 64;
/// Largest record on flash, in bytes.
pub const MAX_RECORD_LEN: usize = align_up(
    RECORD_HEADER_LEN + 1 + MAX_KEY_LEN + MAX_VALUE_LEN + TAG_LEN,
    MAX_ALIGN,
);
const NO_HASH: [u8; NAME_HASH_LEN] = [0; NAME_HASH_LEN];
/// Power cuts during one garbage collection that the space accounting
/// absorbs: each may leave a torn record copy and an `ack` in the new head.
/// Writes are refused with [`Error::Full`] early enough that a collection
/// always finishes after this many cuts (see [`Store::set`]).
pub const GC_CUTS: usize = 2;
/// Most `ack` ranges (torn writes explained) kept at once; older ones are
/// dropped when their counters leave the log.
pub const MAX_ACKS: usize = 8;

/// Counters `lo..=hi` are explained as torn writes; the record is at `addr`.
#[derive(Clone, Copy, Default)]
struct AckRange {
    lo: u64,
    hi: u64,
    addr: u32,
}

/// The `ack` record stores `hi` in the name-hash field.
fn ack_hash(hi: u64) -> [u8; NAME_HASH_LEN] {
    let mut h = NO_HASH;
    if let Some(d) = h.get_mut(..8) {
        d.copy_from_slice(&hi.to_le_bytes());
    }
    h
}

fn ack_hi(h: &[u8; NAME_HASH_LEN]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(h.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

/// Scratch buffer for one record, wiped on drop (it holds plaintext). Only
/// the prefix handed out is wiped: volatile wiping is byte by byte.
struct Scratch {
    buf: [u8; MAX_RECORD_LEN],
    used: usize,
}

impl Scratch {
    const fn new() -> Self {
        Self {
            buf: [0; MAX_RECORD_LEN],
            used: 0,
        }
    }

    /// The first `len` bytes, to write into.
    fn prefix_mut(&mut self, len: usize) -> Option<&mut [u8]> {
        self.used = self.used.max(len.min(MAX_RECORD_LEN));
        self.buf.get_mut(..len)
    }

    fn get(&self, r: core::ops::Range<usize>) -> Option<&[u8]> {
        self.buf.get(r)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(b) = self.buf.get_mut(..self.used) {
            b.zeroize();
        }
    }
}

/// Counters of what mount and operations met; for diagnostics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sectors garbage collected.
    pub gcs: u32,
    /// Sectors erased (GC, interrupted erases, stray data).
    pub erases: u32,
    /// Records whose authentic header came with a failing AEAD tag.
    pub tampered_records: u32,
    /// Flash regions skipped because no authentic header was found there.
    pub garbage_regions: u32,
    /// Records lost to holes in the counter sequence (not torn writes).
    pub lost_records: u64,
    /// Torn writes found at the end of the log on mount.
    pub torn_writes: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SectorState {
    Free,
    Used,
    /// Holds data but no valid header, or was retired by GC: to be erased.
    Dirty,
}

#[derive(Clone, Copy)]
struct SectorInfo {
    state: SectorState,
    erase_count: u32,
    gen: u64,
    first_counter: u64,
    oldest_gen: u64,
}

const FREE_SECTOR: SectorInfo = SectorInfo {
    state: SectorState::Free,
    erase_count: 0,
    gen: 0,
    first_counter: 0,
    oldest_gen: 0,
};

#[derive(Clone, Copy)]
struct Entry {
    hash: [u8; NAME_HASH_LEN],
    addr: u32,
    counter: u64,
    size: u32,
    tampered: bool,
}

const EMPTY_ENTRY: Entry = Entry {
    hash: NO_HASH,
    addr: 0,
    counter: 0,
    size: 0,
    tampered: false,
};

/// One staged operation of a [`Transaction`].
#[derive(Clone, Copy, Debug)]
enum Op<'a> {
    Set(&'a [u8], &'a [u8]),
    Remove(&'a [u8]),
}

/// An atomic group of sets and removes: after a power cut either all of them
/// are visible or none is.
///
/// It borrows the keys and values until [`Store::commit`]; at most
/// `N` (and at most [`MAX_TX_OPS`]) operations, and the records must fit in
/// one sector.
#[derive(Debug)]
pub struct Transaction<'a, const N: usize> {
    ops: [Option<Op<'a>>; N],
    len: usize,
}

impl<const N: usize> Default for Transaction<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> Transaction<'a, N> {
    /// An empty transaction.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            ops: [None; N],
            len: 0,
        }
    }

    fn push(&mut self, op: Op<'a>) -> Result<(), Error> {
        if self.len >= MAX_TX_OPS {
            return Err(Error::TransactionTooLarge);
        }
        let slot = self
            .ops
            .get_mut(self.len)
            .ok_or(Error::TransactionTooLarge)?;
        *slot = Some(op);
        self.len += 1;
        Ok(())
    }

    /// Stages `key = value`.
    ///
    /// # Errors
    /// Key or value too long, or the transaction is full.
    pub fn set(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), Error> {
        check_key(key)?;
        check_value(value)?;
        self.push(Op::Set(key, value))
    }

    /// Stages the removal of `key`.
    ///
    /// # Errors
    /// Key too long, or the transaction is full.
    pub fn remove(&mut self, key: &'a [u8]) -> Result<(), Error> {
        check_key(key)?;
        self.push(Op::Remove(key))
    }

    /// Number of staged operations.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is staged.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn check_key(key: &[u8]) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLong { max: MAX_KEY_LEN });
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLong { max: MAX_VALUE_LEN });
    }
    Ok(())
}

/// A staged transaction operation while mounting.
#[derive(Clone, Copy)]
struct Pending {
    kind: Kind,
    good: bool,
    hash: [u8; NAME_HASH_LEN],
    addr: u32,
    counter: u64,
    size: u32,
}

const NO_PENDING: Pending = Pending {
    kind: Kind::Set,
    good: false,
    hash: NO_HASH,
    addr: 0,
    counter: 0,
    size: 0,
};

/// What the first mount pass learned.
#[derive(Default)]
struct Survey {
    max_good: u64,
    max_header: u64,
    max_gc_done: Option<u64>,
    max_ack: u64,
    acks: [AckRange; MAX_ACKS],
    nacks: usize,
}

impl Survey {
    /// Keeps the `MAX_ACKS` ranges with the highest `hi`.
    fn add_ack(&mut self, a: AckRange) {
        if self.nacks < MAX_ACKS {
            if let Some(slot) = self.acks.get_mut(self.nacks) {
                *slot = a;
            }
            self.nacks += 1;
        } else if let Some(min) = self.acks.iter_mut().min_by_key(|x| x.hi) {
            if min.hi < a.hi {
                *min = a;
            }
        }
    }
}

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
    flash: F,
    counter: C,
    keys: Keys,
    /// This mount's random salt: the head of every nonce it uses.
    salt: [u8; SALT_LEN],
    config: Config,
    index: [Entry; KEYS],
    index_len: usize,
    sectors: [SectorInfo; SECTORS],
    head: usize,
    head_pos: u32,
    next: u64,
    acks: [AckRange; MAX_ACKS],
    nacks: usize,
    /// Counter of the newest record known to be on flash.
    last_written: u64,
    /// An `ack` to write first thing in the next sector opened.
    pending_ack: Option<(u64, u64)>,
    live_bytes: usize,
    lost_max: Option<u64>,
    stats: Stats,
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize> core::fmt::Debug
    for Store<F, C, KEYS, SECTORS>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("keys", &self.index_len)
            .field("head", &self.head)
            .field("next_counter", &self.next)
            .field("degraded", &self.lost_max.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Store<F, C, KEYS, SECTORS>
{
    const ALIGN: usize = if F::WRITE_SIZE > F::READ_SIZE {
        F::WRITE_SIZE
    } else {
        F::READ_SIZE
    };
    const HDR_READ: usize = align_up(RECORD_HEADER_LEN, Self::ALIGN);
    const DATA_START: u32 = align_up(SECTOR_HEADER_LEN, Self::ALIGN) as u32;
    const SECTOR: u32 = F::ERASE_SIZE as u32;
    /// Space kept free in each sector for the `gc-done` record.
    const RESERVE: u32 = align_up(RECORD_HEADER_LEN + TAG_LEN, Self::ALIGN) as u32;

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
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut s = Self {
            flash,
            counter,
            keys: Keys::derive(root),
            salt,
            config,
            index: [EMPTY_ENTRY; KEYS],
            index_len: 0,
            sectors: [FREE_SECTOR; SECTORS],
            head: 0,
            head_pos: Self::DATA_START,
            next: 1,
            acks: [AckRange::default(); MAX_ACKS],
            nacks: 0,
            pending_ack: None,
            last_written: 0,
            live_bytes: 0,
            lost_max: None,
            stats: Stats::default(),
        };
        s.check_geometry()?;
        let trusted = s.counter.read().map_err(|_| Error::Counter)?;
        s.classify_sectors(root)?;
        let survey = s.survey()?;
        if survey.max_good < trusted {
            return Err(Error::Rollback);
        }
        // Sectors whose GC finished are garbage even if their erase was cut.
        if let Some(retired) = survey.max_gc_done {
            for sec in &mut s.sectors {
                if sec.state == SectorState::Used && sec.gen <= retired {
                    sec.state = SectorState::Dirty;
                }
            }
        }
        s.last_written = survey.max_good;
        s.acks = survey.acks;
        s.nacks = survey.nacks;
        let torn = s.build_index(&survey)?;
        let max_first = s
            .sectors
            .iter()
            .filter(|x| x.state == SectorState::Used)
            .map(|x| x.first_counter);
        let floor = max_first.max().unwrap_or(0).saturating_sub(1);
        s.next = survey
            .max_header
            .max(survey.max_ack)
            .max(trusted)
            .max(floor)
            .max(survey.max_good)
            + 1;
        if torn {
            // The torn write may have used `next` in a header we could not
            // read: never reuse it as a nonce.
            s.next += 1;
        }
        // Repairs: only now that the image is accepted.
        s.erase_dirty()?;
        if !s.sectors.iter().any(|x| x.state == SectorState::Used) {
            s.open_sector(0, 1, 1)?;
        }
        if torn && s.lost_max.is_none() {
            s.stats.torn_writes += 1;
            let (lo, hi) = (survey.max_good + 1, s.next - 1);
            if s.head_pos + Self::RESERVE <= Self::SECTOR {
                s.write_ack(lo, hi, Self::SECTOR)?;
            } else {
                // Written by `open_sector` before anything else in the new head.
                s.pending_ack = Some((lo, hi));
                s.advance_head()?;
            }
        }
        // An interrupted GC leaves the sector after the head in use: finish it.
        let after = (s.head + 1) % SECTORS;
        if s.sector(after).state == SectorState::Used && s.lost_max.is_none() {
            match s.gc(after) {
                // No room left to finish it: only after more than `GC_CUTS`
                // cuts during this GC (the write checks keep that headroom),
                // or for an image written without them. Stay mounted and
                // readable; removes of keys in the head may free room.
                Err(Error::Full) => {}
                r => r?,
            }
        }
        s.commit_counter()?;
        Ok(s)
    }

    fn check_geometry(&self) -> Result<(), Error> {
        let align_ok = Self::ALIGN.is_power_of_two() && Self::ALIGN <= MAX_ALIGN;
        let total = (F::ERASE_SIZE as u64) * (SECTORS as u64);
        let sector_ok = F::ERASE_SIZE % Self::ALIGN == 0
            && (F::ERASE_SIZE as u64) < u64::from(u32::MAX)
            && Self::DATA_START + 4 * Self::RESERVE <= Self::SECTOR;
        let range_ok = self.config.base % Self::SECTOR.max(1) == 0
            && u64::from(self.config.base) + total <= self.flash.capacity() as u64;
        if !align_ok || !sector_ok || !range_ok || SECTORS < 2 || KEYS == 0 {
            return Err(Error::Config);
        }
        Ok(())
    }

    // ----- small helpers -----

    fn sector(&self, i: usize) -> SectorInfo {
        self.sectors.get(i).copied().unwrap_or(FREE_SECTOR)
    }

    fn sector_mut(&mut self, i: usize) -> Option<&mut SectorInfo> {
        self.sectors.get_mut(i)
    }

    fn sector_start(&self, i: usize) -> u32 {
        self.config.base + (i as u32) * Self::SECTOR
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), Error> {
        self.flash.read(addr, buf).map_err(flash_err)
    }

    /// Sectors ordered by generation (oldest first), only `Used` ones.
    fn used_in_order(&self) -> ([usize; SECTORS], usize) {
        let mut order = [0usize; SECTORS];
        let mut n = 0;
        for (i, sec) in self.sectors.iter().enumerate() {
            if sec.state == SectorState::Used {
                if let Some(slot) = order.get_mut(n) {
                    *slot = i;
                }
                n += 1;
            }
        }
        let used = order.get_mut(..n).unwrap_or(&mut []);
        used.sort_unstable_by_key(|&i| self.sectors.get(i).map_or(0, |x| x.gen));
        (order, n)
    }

    /// Offset just past the last byte in sector `i` that is not 0xFF,
    /// rounded up to `ALIGN`.
    fn data_end(&mut self, i: usize) -> Result<u32, Error> {
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
                self.read(start + off, chunk)?;
                if chunk.iter().any(|&b| b != 0xFF) {
                    end = off + Self::ALIGN as u32;
                }
                off += Self::ALIGN as u32;
                continue;
            }
            let b = block.get_mut(..n).unwrap_or(&mut []);
            self.flash.read(start + off, b).map_err(flash_err)?;
            if let Some(last) = b.iter().rposition(|&x| x != 0xFF) {
                end = off + align_up(last + 1, Self::ALIGN) as u32;
            }
            off += n as u32;
        }
        Ok(end)
    }

    fn classify_sectors(&mut self, root: &RootKey) -> Result<(), Error> {
        let mut hdr = [0u8; align_up(SECTOR_HEADER_LEN, MAX_ALIGN)];
        let hlen = Self::DATA_START as usize;
        let mut max_erase = 0;
        for i in 0..SECTORS {
            let start = self.sector_start(i);
            let h = hdr.get_mut(..hlen).unwrap_or(&mut []);
            self.flash.read(start, h).map_err(flash_err)?;
            let info = if let Some(sh) = SectorHeader::parse(&self.keys, h) {
                max_erase = max_erase.max(sh.erase_count);
                SectorInfo {
                    state: SectorState::Used,
                    erase_count: sh.erase_count,
                    gen: sh.gen,
                    first_counter: sh.first_counter,
                    oldest_gen: sh.oldest_gen,
                }
            } else if h.get(..4) == Some(&SECTOR_MAGIC_V1[..])
                && SectorHeader::is_v1(&Keys::derive_with(root, HKDF_SALT_V1), h)
            {
                // A format 1 store under this root key: refuse before
                // anything is erased, so its data is not lost.
                return Err(Error::UnsupportedFormat);
            } else if self.data_end(i)? == 0 {
                FREE_SECTOR
            } else {
                SectorInfo {
                    state: SectorState::Dirty,
                    ..FREE_SECTOR
                }
            };
            if let Some(sec) = self.sector_mut(i) {
                *sec = info;
            }
        }
        // Erase counts of erased sectors are unknown: assume the highest seen.
        for sec in &mut self.sectors {
            if sec.state != SectorState::Used {
                sec.erase_count = max_erase;
            }
        }
        // Two sectors with one generation: keep the first, the other is stray.
        for i in 0..SECTORS {
            for j in (i + 1)..SECTORS {
                let (a, b) = (self.sector(i), self.sector(j));
                if a.state == SectorState::Used && b.state == SectorState::Used && a.gen == b.gen {
                    if let Some(sec) = self.sector_mut(j) {
                        sec.state = SectorState::Dirty;
                    }
                    self.lost_max = Some(u64::MAX);
                }
            }
        }
        Ok(())
    }

    /// Reads the record header at `*pos` in sector `i`, skipping regions
    /// without an authentic header. Returns the header and its address, or
    /// `None` at the end of the sector's data.
    fn walk(
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
            self.flash.read(addr, hb).map_err(flash_err)?;
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
    fn open_record(
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
        self.flash.read(addr, rec).map_err(flash_err)?;
        self.open_in_place(h, rec)
    }

    /// Checks the AEAD tag of the record `rec` (header `h`, `rec` as read
    /// from flash) and decrypts it in place, as [`Self::open_record`].
    fn open_in_place(&self, h: &RecordHeader, rec: &mut [u8]) -> Result<bool, Error> {
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

    /// Pass 1: find the newest authentic record and the control records.
    fn survey(&mut self) -> Result<Survey, Error> {
        let mut sv = Survey::default();
        let mut buf = Scratch::new();
        let (order, n) = self.used_in_order();
        for &i in order.get(..n).unwrap_or(&[]) {
            let end = self.data_end(i)?;
            let mut pos = Self::DATA_START;
            let mut garbage = false;
            while let Some((h, addr)) = self.walk(i, &mut pos, end, &mut garbage)? {
                sv.max_header = sv.max_header.max(h.counter);
                if self.open_record(&h, addr, &mut buf)? {
                    sv.max_good = sv.max_good.max(h.counter);
                    match h.kind {
                        Kind::GcDone => sv.max_gc_done = sv.max_gc_done.max(Some(h.arg)),
                        Kind::Ack => {
                            let hi = ack_hi(&h.name_hash);
                            sv.max_ack = sv.max_ack.max(hi);
                            sv.add_ack(AckRange {
                                lo: h.arg,
                                hi,
                                addr,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        // Undo the garbage count of pass 1; pass 2 counts again.
        self.stats.garbage_regions = 0;
        Ok(sv)
    }

    /// Records counters `lo..=hi` as missing from the log.
    fn gap(&mut self, lo: u64, hi: u64, sv: &Survey) {
        let hi = hi.min(sv.max_good);
        if lo > hi {
            return;
        }
        if let Some(c) = self.uncovered_max(lo, hi) {
            self.stats.lost_records += c - lo + 1;
            self.lost_max = self.lost_max.max(Some(c));
        }
    }

    /// The highest counter in `lo..=hi` no `ack` range explains.
    fn uncovered_max(&self, lo: u64, hi: u64) -> Option<u64> {
        let acks = self.acks.get(..self.nacks).unwrap_or(&[]);
        let mut c = hi;
        // Each step leaves one range behind, so this ends within MAX_ACKS + 1 steps.
        for _ in 0..=MAX_ACKS {
            match acks.iter().find(|a| a.lo <= c && c <= a.hi) {
                Some(a) if a.lo <= lo => return None,
                Some(a) => c = a.lo - 1,
                None => return Some(c),
            }
        }
        Some(c)
    }

    fn write_ack(&mut self, lo: u64, hi: u64, limit: u32) -> Result<(), Error> {
        // The record stores the range length in 32 bits.
        let lo = lo.max(hi.saturating_sub(u64::from(u32::MAX) - 2));
        let (addr, _, _) = self.append(Kind::Ack, 0, lo, &ack_hash(hi), None, limit)?;
        let a = AckRange { lo, hi, addr };
        if let Some(slot) = self.acks.get_mut(self.nacks) {
            *slot = a;
            self.nacks += 1;
        } else if let Some(min) = self.acks.iter_mut().min_by_key(|x| x.hi) {
            *min = a;
        }
        Ok(())
    }

    /// Pass 2: rebuild the index in log order, check the counter sequence,
    /// apply committed transactions. Returns whether the head ends in a
    /// torn write.
    fn build_index(&mut self, sv: &Survey) -> Result<bool, Error> {
        let (order, n) = self.used_in_order();
        let used = order.get(..n).unwrap_or(&[]);
        let mut buf = Scratch::new();
        let mut expected: Option<u64> = None;
        let mut torn = false;
        // The oldest sector must be the one the newest sector header (or the
        // newest gc-done record) says is the oldest; else sectors are missing.
        if let (Some(&first), Some(&last)) = (used.first(), used.last()) {
            let (oldest, newest) = (self.sector(first), self.sector(last));
            let want = newest.oldest_gen.max(sv.max_gc_done.map_or(0, |g| g + 1));
            if oldest.gen > want {
                self.gap(0, oldest.first_counter.saturating_sub(1), sv);
            }
        }
        let mut pending = [NO_PENDING; MAX_TX_OPS];
        let mut npending;
        let mut pending_tx = 0u64;
        for &i in used {
            let sec = self.sector(i);
            match expected {
                Some(e) if sec.first_counter > e => self.gap(e, sec.first_counter - 1, sv),
                Some(e) if sec.first_counter < e => self.gap(sec.first_counter, e - 1, sv),
                _ => {}
            }
            expected = Some(sec.first_counter);
            npending = 0;
            let end = self.data_end(i)?;
            let mut pos = Self::DATA_START;
            let mut garbage = false;
            while let Some((h, addr)) = self.walk(i, &mut pos, end, &mut garbage)? {
                let e = expected.unwrap_or(h.counter);
                if h.counter < e {
                    // Out of order (moved or duplicated record): ignore it.
                    self.gap(h.counter, h.counter, sv);
                    continue;
                }
                if h.counter > e {
                    self.gap(e, h.counter - 1, sv);
                }
                expected = Some(h.counter + 1);
                let good = self.open_record(&h, addr, &mut buf)?;
                if h.counter > sv.max_good {
                    // After the newest authentic record: a torn write.
                    torn = true;
                    npending = 0;
                    continue;
                }
                if !good && self.uncovered_max(h.counter, h.counter).is_none() {
                    // A torn write an `ack` record explains.
                    continue;
                }
                if !good {
                    self.stats.tampered_records += 1;
                }
                let size = h.total_len(Self::ALIGN) as u32;
                let in_tx = matches!(h.kind, Kind::Set | Kind::Remove) && h.arg != 0;
                if in_tx {
                    if h.arg != pending_tx {
                        npending = 0;
                        pending_tx = h.arg;
                    }
                    if let Some(p) = pending.get_mut(npending) {
                        *p = Pending {
                            kind: h.kind,
                            good,
                            hash: h.name_hash,
                            addr,
                            counter: h.counter,
                            size,
                        };
                    }
                    npending += 1;
                    continue;
                }
                match h.kind {
                    Kind::Set | Kind::Remove | Kind::Tampered => {
                        npending = 0;
                        self.apply(h.kind, good, &h.name_hash, addr, h.counter, size)?;
                    }
                    Kind::Commit => {
                        let complete = h.arg == pending_tx
                            && npending <= MAX_TX_OPS
                            && h.counter.checked_sub(h.arg) == Some(npending as u64);
                        if complete {
                            for p in pending.get(..npending).unwrap_or(&[]) {
                                // A tampered commit taints every key it covers.
                                let ok = p.good && good;
                                self.apply(p.kind, ok, &p.hash, p.addr, p.counter, p.size)?;
                            }
                        }
                        npending = 0;
                    }
                    Kind::GcDone | Kind::Ack => {
                        npending = 0;
                        if !good {
                            self.gap(h.counter, h.counter, sv);
                        }
                    }
                }
            }
            if garbage && self.sector(i).gen == self.sector(*used.last().unwrap_or(&i)).gen {
                torn = true;
            }
            if Some(&i) == used.last() {
                self.head = i;
                self.head_pos = align_up(pos.max(end) as usize, Self::ALIGN) as u32;
            }
        }
        Ok(torn)
    }

    /// Applies one record to the index.
    fn apply(
        &mut self,
        kind: Kind,
        good: bool,
        hash: &[u8; NAME_HASH_LEN],
        addr: u32,
        counter: u64,
        size: u32,
    ) -> Result<(), Error> {
        if good && kind == Kind::Remove {
            self.index_remove(hash);
            return Ok(());
        }
        let tampered = !good || kind == Kind::Tampered;
        self.index_put(Entry {
            hash: *hash,
            addr,
            counter,
            size,
            tampered,
        })
    }

    fn find(&self, hash: &[u8; NAME_HASH_LEN]) -> Option<usize> {
        self.index
            .get(..self.index_len)?
            .iter()
            .position(|e| &e.hash == hash)
    }

    fn index_put(&mut self, e: Entry) -> Result<(), Error> {
        if let Some(i) = self.find(&e.hash) {
            if let Some(slot) = self.index.get_mut(i) {
                self.live_bytes = self.live_bytes.saturating_sub(slot.size as usize);
                *slot = e;
                self.live_bytes += e.size as usize;
            }
            return Ok(());
        }
        let slot = self.index.get_mut(self.index_len).ok_or(Error::IndexFull)?;
        *slot = e;
        self.index_len += 1;
        self.live_bytes += e.size as usize;
        Ok(())
    }

    fn index_remove(&mut self, hash: &[u8; NAME_HASH_LEN]) {
        if let Some(i) = self.find(hash) {
            let last = self.index_len - 1;
            self.live_bytes = self
                .live_bytes
                .saturating_sub(self.index.get(i).map_or(0, |e| e.size as usize));
            self.index.swap(i, last);
            self.index_len = last;
        }
    }

    // ----- writing -----

    fn erase_sector(&mut self, i: usize) -> Result<(), Error> {
        let start = self.sector_start(i);
        self.flash
            .erase(start, start + Self::SECTOR)
            .map_err(flash_err)?;
        self.stats.erases += 1;
        if let Some(sec) = self.sector_mut(i) {
            sec.state = SectorState::Free;
            sec.erase_count = sec.erase_count.saturating_add(1);
        }
        Ok(())
    }

    fn erase_dirty(&mut self) -> Result<(), Error> {
        for i in 0..SECTORS {
            if self.sector(i).state == SectorState::Dirty {
                self.erase_sector(i)?;
            }
        }
        Ok(())
    }

    fn open_sector(&mut self, i: usize, gen: u64, oldest_gen: u64) -> Result<(), Error> {
        if self.sector(i).state != SectorState::Free {
            self.erase_sector(i)?;
        }
        let info = SectorInfo {
            state: SectorState::Used,
            erase_count: self.sector(i).erase_count,
            gen,
            first_counter: self.next,
            oldest_gen,
        };
        let sh = SectorHeader {
            erase_count: info.erase_count,
            gen,
            first_counter: self.next,
            oldest_gen,
        };
        let mut b = [0xFFu8; align_up(SECTOR_HEADER_LEN, MAX_ALIGN)];
        let mut h = [0u8; SECTOR_HEADER_LEN];
        sh.emit(&self.keys, &mut h);
        if let Some(d) = b.get_mut(..SECTOR_HEADER_LEN) {
            d.copy_from_slice(&h);
        }
        let start = self.sector_start(i);
        let w = b.get(..Self::DATA_START as usize).unwrap_or(&[]);
        self.flash.write(start, w).map_err(flash_err)?;
        if let Some(sec) = self.sector_mut(i) {
            *sec = info;
        }
        self.head = i;
        self.head_pos = Self::DATA_START;
        if let Some((lo, hi)) = self.pending_ack.take() {
            self.write_ack(lo, hi, Self::SECTOR)?;
        }
        Ok(())
    }

    /// Live bytes and largest live record of sector `i` (from the index).
    fn sector_load(&self, i: usize) -> (usize, usize) {
        let start = self.sector_start(i);
        let end = start + Self::SECTOR;
        let entries = self.index.get(..self.index_len).unwrap_or(&[]);
        entries
            .iter()
            .filter(|e| (start..end).contains(&e.addr))
            .fold((0, 0), |(live, big), e| {
                (live + e.size as usize, big.max(e.size as usize))
            })
    }

    /// `ack` records in sector `i` that a GC of `i` would carry.
    fn carried_acks(&self, i: usize) -> usize {
        let start = self.sector_start(i);
        let floor = (0..SECTORS)
            .filter(|&j| j != i && self.sector(j).state == SectorState::Used)
            .map(|j| self.sector(j).first_counter)
            .min()
            // The head opened for the GC starts at `next` or later.
            .unwrap_or(self.next);
        self.acks
            .get(..self.nacks)
            .unwrap_or(&[])
            .iter()
            .filter(|a| (start..start + Self::SECTOR).contains(&a.addr) && a.hi >= floor)
            .count()
    }

    /// Bytes a GC of sector `i` needs in a fresh head, below the reserve kept
    /// for the `gc-done` record, if `add` more live bytes (largest record
    /// `big`) were in `i`: its live records, the `ack`s it carries, an `ack`
    /// left pending by a torn write, and for each of [`GC_CUTS`] power cuts
    /// during the GC a torn copy plus the `ack` that explains it.
    ///
    /// Records of the keys in `superseded` that are in `i` stop being live
    /// after the write (a GC before it copies them into the head, where the
    /// write then supersedes them), so they are not counted.
    fn gc_need(
        &self,
        i: usize,
        add: usize,
        big: usize,
        superseded: &[[u8; NAME_HASH_LEN]],
    ) -> usize {
        let r = Self::RESERVE as usize;
        let (live, big0) = self.sector_load(i);
        let start = self.sector_start(i);
        let dropped: usize = superseded
            .iter()
            .filter_map(|h| self.find(h).and_then(|j| self.index.get(j)))
            .filter(|e| (start..start + Self::SECTOR).contains(&e.addr))
            .map(|e| e.size as usize)
            .sum();
        let torn = big0.max(big).max(r);
        (live + add).saturating_sub(dropped) + (self.carried_acks(i) + 1) * r + GC_CUTS * (torn + r)
    }

    /// Makes room in the head sector for records taking `size` bytes, of
    /// which `add` bytes stay live (largest record `big`), moving to the next
    /// sector (and collecting the oldest) as needed.
    ///
    /// Keeps the invariant that makes every garbage collection finish, even
    /// after [`GC_CUTS`] power cuts during it: each used sector's
    /// [`Self::gc_need`] fits in one sector. A write that would break it is
    /// refused with [`Error::Full`] before anything is written.
    /// `superseded` lists the distinct keys the write replaces or removes.
    fn ensure_space(
        &mut self,
        size: usize,
        add: usize,
        big: usize,
        superseded: &[[u8; NAME_HASH_LEN]],
    ) -> Result<(), Error> {
        let cap = (Self::SECTOR - Self::DATA_START - Self::RESERVE) as usize;
        if size > cap {
            return Err(Error::Full);
        }
        // What any sector needs to hold this write and still be collectable:
        // `gc_need` of an empty sector (live data, carried `ack`s and the
        // superseded records only add to it). Refused here, before a sector
        // is opened, a write that no sector could take programs nothing.
        if add > 0 {
            let r = Self::RESERVE as usize;
            if add + r + GC_CUTS * (big.max(r) + r) > cap {
                return Err(Error::Full);
            }
        }
        for _ in 0..=2 * SECTORS {
            let fits = self.head_pos as usize + size <= (Self::SECTOR - Self::RESERVE) as usize;
            if fits && (add == 0 || self.gc_need(self.head, add, big, superseded) <= cap) {
                return Ok(());
            }
            // The next head receives the live data of the sector after it.
            let after = (self.head + 2) % SECTORS;
            if self.sector(after).state == SectorState::Used
                && self.gc_need(after, add, big, superseded) > cap
            {
                return Err(Error::Full);
            }
            self.advance_head()?;
        }
        Err(Error::Full)
    }

    fn advance_head(&mut self) -> Result<(), Error> {
        let n = (self.head + 1) % SECTORS;
        if self.sector(n).state == SectorState::Used {
            // Only when GC is stopped (degraded store).
            return Err(if self.lost_max.is_some() {
                Error::Corrupt
            } else {
                Error::Full
            });
        }
        let (order, cnt) = self.used_in_order();
        let oldest = order
            .get(..cnt)
            .and_then(|o| o.first())
            .map_or(1, |&i| self.sector(i).gen);
        let gen = self.sector(self.head).gen + 1;
        let after = (n + 1) % SECTORS;
        let oldest = if self.sector(after).state == SectorState::Used {
            // It is about to be collected into the new head.
            oldest
        } else {
            oldest.max(1)
        };
        self.open_sector(n, gen, oldest)?;
        if self.sector(after).state == SectorState::Used {
            self.gc(after)?;
        }
        Ok(())
    }

    /// Garbage collects sector `i` into the head sector.
    fn gc(&mut self, i: usize) -> Result<(), Error> {
        if self.lost_max.is_some() {
            return Err(Error::Corrupt);
        }
        let end = self.data_end(i)?;
        let mut pos = Self::DATA_START;
        let mut garbage = false;
        let mut buf = Scratch::new();
        let limit = Self::SECTOR - Self::RESERVE;
        while let Some((h, addr)) = self.walk(i, &mut pos, end, &mut garbage)? {
            if h.kind == Kind::Ack {
                self.carry_ack(i, addr, limit)?;
                continue;
            }
            let Some(idx) = self.find(&h.name_hash) else {
                continue;
            };
            let Some(e) = self.index.get(idx).copied() else {
                continue;
            };
            if e.addr != addr {
                continue;
            }
            let good = !e.tampered && self.open_record(&h, addr, &mut buf)?;
            let (a, c, size) = if good {
                let plain_len = h.payload_len as usize - TAG_LEN;
                let body = buf
                    .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + plain_len)
                    .ok_or(Error::Corrupt)?;
                let mut tmp = Scratch::new();
                let t = tmp.prefix_mut(plain_len).ok_or(Error::Corrupt)?;
                t.copy_from_slice(body);
                self.append(Kind::Set, h.flags, 0, &h.name_hash, Some(t), limit)?
            } else {
                self.stats.tampered_records += u32::from(!e.tampered);
                self.append(Kind::Tampered, 0, 0, &h.name_hash, None, limit)?
            };
            self.index_put(Entry {
                hash: h.name_hash,
                addr: a,
                counter: c,
                size,
                tampered: !good,
            })?;
        }
        let gen = self.sector(i).gen;
        self.append(Kind::GcDone, 0, gen, &NO_HASH, None, Self::SECTOR)?;
        self.erase_sector(i)?;
        self.stats.gcs += 1;
        Ok(())
    }

    /// Carries the `ack` record at `addr` (in sector `i`, being collected)
    /// into the head while its range still touches the log; drops it after.
    fn carry_ack(&mut self, i: usize, addr: u32, limit: u32) -> Result<(), Error> {
        let Some(k) = self
            .acks
            .get(..self.nacks)
            .and_then(|a| a.iter().position(|a| a.addr == addr))
        else {
            return Ok(());
        };
        let Some(a) = self.acks.get(k).copied() else {
            return Ok(());
        };
        let floor = (0..SECTORS)
            .filter(|&j| j != i && self.sector(j).state == SectorState::Used)
            .map(|j| self.sector(j).first_counter)
            .min()
            .unwrap_or(0);
        // Remove it from the list; `write_ack` re-adds it when kept.
        self.nacks -= 1;
        self.acks.swap(k, self.nacks);
        if a.hi >= floor {
            self.write_ack(a.lo, a.hi, limit)?;
        }
        Ok(())
    }

    /// Writes one record at the head (space must have been ensured; fails
    /// with `Full` past `limit`). `body` is `name_len || name || value` for
    /// sets. Returns address, counter and size.
    fn append(
        &mut self,
        kind: Kind,
        flags: u8,
        arg: u64,
        hash: &[u8; NAME_HASH_LEN],
        body: Option<&[u8]>,
        limit: u32,
    ) -> Result<(u32, u64, u32), Error> {
        let body = body.unwrap_or(&[]);
        let payload = body.len() + TAG_LEN;
        let h = RecordHeader {
            kind,
            flags,
            payload_len: u16::try_from(payload).map_err(|_| Error::Full)?,
            counter: self.next,
            arg,
            name_hash: *hash,
            salt: self.salt,
        };
        let total = h.total_len(Self::ALIGN);
        if self.head_pos as usize + total > limit.min(Self::SECTOR) as usize
            || total > MAX_RECORD_LEN
        {
            return Err(Error::Full);
        }
        let clear = if flags & FLAG_PLAIN_NAME != 0 {
            1 + *body.first().unwrap_or(&0) as usize
        } else {
            0
        };
        let mut buf = Scratch::new();
        let rec = buf.prefix_mut(total).ok_or(Error::Full)?;
        rec.fill(0xFF);
        h.emit(&self.keys, rec);
        let body_end = RECORD_HEADER_LEN + body.len();
        rec.get_mut(RECORD_HEADER_LEN..body_end)
            .ok_or(Error::Full)?
            .copy_from_slice(body);
        let (ad, rest) = rec.split_at_mut(RECORD_HEADER_LEN + clear.min(body.len()));
        let sealed_len = body.len() - clear.min(body.len());
        let (sealed, tail) = rest.split_at_mut(sealed_len);
        let tag = self.keys.seal(&h.nonce(), ad, sealed);
        tail.get_mut(..TAG_LEN)
            .ok_or(Error::Full)?
            .copy_from_slice(&tag);
        let addr = self.sector_start(self.head) + self.head_pos;
        // Advance first: a failed write leaves a hole we must not reuse.
        self.head_pos += total as u32;
        self.next += 1;
        self.flash.write(addr, rec).map_err(flash_err)?;
        self.last_written = h.counter;
        Ok((addr, h.counter, total as u32))
    }

    fn commit_counter(&mut self) -> Result<(), Error> {
        // Only counters of records on flash: a burned counter (torn write)
        // must not raise the trusted counter above the log.
        self.counter
            .advance_to(self.last_written)
            .map_err(|_| Error::Counter)
    }

    fn name_hash(&self, key: &[u8]) -> [u8; NAME_HASH_LEN] {
        self.keys.name_hash(key, self.config.plain_names)
    }

    fn flags(&self) -> u8 {
        if self.config.plain_names {
            FLAG_PLAIN_NAME
        } else {
            0
        }
    }

    fn set_size(key: &[u8], value: &[u8]) -> usize {
        align_up(
            RECORD_HEADER_LEN + 1 + key.len() + value.len() + TAG_LEN,
            Self::ALIGN,
        )
    }

    /// Writes a set record for `key` (space ensured) with transaction id `tx`.
    fn write_set(&mut self, key: &[u8], value: &[u8], tx: u64) -> Result<Entry, Error> {
        let hash = self.name_hash(key);
        let mut body = Scratch::new();
        let n = 1 + key.len() + value.len();
        let b = body
            .prefix_mut(n)
            .ok_or(Error::ValueTooLong { max: MAX_VALUE_LEN })?;
        let (len, rest) = b.split_at_mut(1);
        let (name, val) = rest.split_at_mut(key.len());
        len.fill(key.len() as u8);
        name.copy_from_slice(key);
        val.copy_from_slice(value);
        let limit = Self::SECTOR - Self::RESERVE;
        let (addr, counter, size) =
            self.append(Kind::Set, self.flags(), tx, &hash, Some(b), limit)?;
        Ok(Entry {
            hash,
            addr,
            counter,
            size,
            tampered: false,
        })
    }

    // ----- public API -----

    /// Reads the value of `key` into `buf`, returning its length.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::BufferTooSmall`], [`Error::Tampered`]
    /// (the record failed authentication), [`Error::Corrupt`] (degraded store
    /// and the answer cannot be trusted), key length and flash errors.
    pub fn get(&mut self, key: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
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
        let body = self.read_body(&e, &mut scratch)?;
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
    fn read_body<'b>(&mut self, e: &Entry, scratch: &'b mut Scratch) -> Result<&'b [u8], Error> {
        // One read of the whole record: the index knows its size.
        let size = e.size as usize;
        if size < Self::HDR_READ || size > MAX_RECORD_LEN {
            return Err(Error::Tampered);
        }
        let rec = scratch.prefix_mut(size).ok_or(Error::Tampered)?;
        self.read(e.addr, rec)?;
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

    /// Sets `key` to `value`.
    ///
    /// Refused before anything is written with [`Error::IndexFull`] when
    /// `key` is new and the index already holds `KEYS` keys (so a store
    /// written through this API always mounts with the same `KEYS`), and
    /// with [`Error::Full`] when the live data would grow past what one
    /// garbage collection can move into a fresh sector while absorbing
    /// [`GC_CUTS`] power cuts (so a power cut never leaves the store unable
    /// to write; removes are always accepted and free room again).
    ///
    /// # Errors
    /// Key or value too long, [`Error::IndexFull`], [`Error::Full`],
    /// [`Error::Corrupt`] when the store is degraded and needs a garbage
    /// collection, flash and counter errors.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        check_key(key)?;
        check_value(value)?;
        let hash = self.name_hash(key);
        let known = self.find(&hash).is_some();
        if !known && self.index_len >= KEYS {
            return Err(Error::IndexFull);
        }
        let size = Self::set_size(key, value);
        let old = self
            .find(&hash)
            .and_then(|i| self.index.get(i))
            .map_or(0, |e| e.size as usize);
        self.check_room(size, old)?;
        self.ensure_space(size, size, size, &[hash])?;
        let e = self.write_set(key, value, 0)?;
        self.index_put(e)?;
        self.commit_counter()
    }

    /// Fails early with `Full` when the live data after a write that adds
    /// `add` bytes and supersedes `drop` bytes cannot fit.
    fn check_room(&self, add: usize, drop: usize) -> Result<(), Error> {
        let per = (Self::SECTOR - Self::DATA_START - Self::RESERVE) as usize;
        if self.live_bytes.saturating_sub(drop) + add > per * (SECTORS - 1) {
            return Err(Error::Full);
        }
        Ok(())
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when absent (and the store is not degraded),
    /// [`Error::Full`], flash and counter errors.
    pub fn remove(&mut self, key: &[u8]) -> Result<(), Error> {
        check_key(key)?;
        let hash = self.name_hash(key);
        if self.find(&hash).is_none() && self.lost_max.is_none() {
            return Err(Error::NotFound);
        }
        self.ensure_space(Self::RESERVE as usize, 0, 0, &[])?;
        let limit = Self::SECTOR - Self::RESERVE;
        self.append(Kind::Remove, 0, 0, &hash, None, limit)?;
        self.index_remove(&hash);
        self.commit_counter()
    }

    /// Applies all operations of `tx` atomically.
    ///
    /// # Errors
    /// [`Error::TransactionTooLarge`] when the records do not fit in one
    /// sector, [`Error::IndexFull`], [`Error::Full`], flash and counter errors.
    /// After a flash error the transaction is not applied.
    pub fn commit<const N: usize>(&mut self, tx: &Transaction<'_, N>) -> Result<(), Error> {
        let ops = tx.ops.get(..tx.len).unwrap_or(&[]);
        if ops.is_empty() {
            return Ok(());
        }
        let mut total = Self::RESERVE as usize;
        let mut new_keys = 0usize;
        let (mut added, mut dropped, mut big) = (0usize, 0usize, 0usize);
        let mut hashes = [NO_HASH; MAX_TX_OPS];
        let mut nhashes = 0usize;
        for (i, op) in ops.iter().enumerate() {
            let key = match op {
                Some(Op::Set(k, _) | Op::Remove(k)) => k,
                None => continue,
            };
            let h = self.name_hash(key);
            let first = !ops.get(..i).unwrap_or(&[]).iter().any(
                |o| matches!(o, Some(Op::Set(k2, _) | Op::Remove(k2)) if self.name_hash(k2) == h),
            );
            if first {
                if let Some(slot) = hashes.get_mut(nhashes) {
                    *slot = h;
                    nhashes += 1;
                }
                dropped += self
                    .find(&h)
                    .and_then(|j| self.index.get(j))
                    .map_or(0, |e| e.size as usize);
            }
            match op {
                Some(Op::Set(k, v)) => {
                    total += Self::set_size(k, v);
                    added += Self::set_size(k, v);
                    big = big.max(Self::set_size(k, v));
                    let earlier = ops
                        .get(..i)
                        .unwrap_or(&[])
                        .iter()
                        .any(|o| matches!(o, Some(Op::Set(k2, _)) if self.name_hash(k2) == h));
                    if self.find(&h).is_none() && !earlier {
                        new_keys += 1;
                    }
                }
                Some(Op::Remove(_)) => total += Self::RESERVE as usize,
                None => {}
            }
        }
        let cap = (Self::SECTOR - Self::DATA_START - Self::RESERVE) as usize;
        if total > cap {
            return Err(Error::TransactionTooLarge);
        }
        if self.index_len + new_keys > KEYS {
            return Err(Error::IndexFull);
        }
        self.check_room(added, dropped)?;
        self.ensure_space(total, added, big, hashes.get(..nhashes).unwrap_or(&[]))?;
        let txid = self.next;
        let mut entries = [(EMPTY_ENTRY, false); MAX_TX_OPS];
        let limit = Self::SECTOR - Self::RESERVE;
        for (slot, op) in entries.iter_mut().zip(ops) {
            match op {
                Some(Op::Set(k, v)) => *slot = (self.write_set(k, v, txid)?, true),
                Some(Op::Remove(k)) => {
                    let hash = self.name_hash(k);
                    self.append(Kind::Remove, 0, txid, &hash, None, limit)?;
                    *slot = (
                        Entry {
                            hash,
                            ..EMPTY_ENTRY
                        },
                        false,
                    );
                }
                None => {}
            }
        }
        self.append(Kind::Commit, 0, txid, &NO_HASH, None, limit)?;
        for (e, is_set) in entries.iter().take(ops.len()) {
            if *is_set {
                self.index_put(*e)?;
            } else {
                self.index_remove(&e.hash);
            }
        }
        self.commit_counter()
    }

    /// Calls `f` with each key name (or the error that hides it, e.g.
    /// [`Error::Tampered`]), in no particular order.
    ///
    /// # Errors
    /// Flash errors stop the iteration.
    pub fn for_each_key(&mut self, mut f: impl FnMut(Result<&[u8], Error>)) -> Result<(), Error> {
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
            match self.read_body(&e, &mut scratch) {
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

    /// Number of keys in the index (including ones whose record is damaged).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.index_len
    }

    /// Whether the store holds no key.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.index_len == 0
    }

    /// Whether a hole in the log was found (see the module docs).
    #[must_use]
    pub const fn is_degraded(&self) -> bool {
        self.lost_max.is_some()
    }

    /// Accepts the loss found on mount: every key whose answer could not be
    /// trusted is marked tampered (it answers [`Error::Tampered`] until set
    /// again or removed), an `ack` record covers the hole, and garbage
    /// collection resumes. Keys that only lived in the lost records are gone.
    ///
    /// # Errors
    /// [`Error::Full`], flash and counter errors.
    pub fn repair(&mut self) -> Result<(), Error> {
        let Some(lost) = self.lost_max else {
            return Ok(());
        };
        let limit = Self::SECTOR - Self::RESERVE;
        for i in 0..self.index_len {
            let Some(e) = self.index.get(i).copied() else {
                break;
            };
            if e.counter <= lost && !e.tampered {
                if self.head_pos + Self::RESERVE > limit {
                    return Err(Error::Full);
                }
                let (addr, counter, size) =
                    self.append(Kind::Tampered, 0, 0, &e.hash, None, limit)?;
                self.index_put(Entry {
                    addr,
                    counter,
                    size,
                    tampered: true,
                    ..e
                })?;
            }
        }
        if self.head_pos + Self::RESERVE > limit {
            return Err(Error::Full);
        }
        // Counter 0 stands for "before the oldest sector" (a lost sector).
        self.write_ack(0, self.next - 1, limit)?;
        self.lost_max = None;
        let after = (self.head + 1) % SECTORS;
        if self.sector(after).state == SectorState::Used {
            self.gc(after)?;
        }
        self.commit_counter()
    }

    /// Diagnostics counters.
    #[must_use]
    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// Erase count of each sector (best effort: a count lost to an
    /// interrupted erase restarts from the highest count seen).
    pub fn erase_counts(&self) -> impl Iterator<Item = u32> + '_ {
        self.sectors.iter().map(|s| s.erase_count)
    }

    /// The flash, e.g. to read its counters.
    #[must_use]
    pub const fn flash(&self) -> &F {
        &self.flash
    }

    /// Unmounts, returning the flash and the counter.
    pub fn into_parts(self) -> (F, C) {
        let Self { flash, counter, .. } = self;
        (flash, counter)
    }
}

/// Splits `name_len || name || value`.
fn split_body(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = body.split_first()?;
    rest.split_at_checked(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::RamFlash;
    use crate::layout::SECTOR_MAGIC_V1;
    use crate::rollback::RamCounter;

    /// A format 1 store (counter-only nonces) is refused, not erased: the
    /// caller can still read it with the release that wrote it.
    #[test]
    fn format_1_image_is_refused_and_left_untouched() {
        let root = RootKey([9; 32]);
        let mut flash = RamFlash::<{ 2 * 4096 }, 4096, 4, 1>::new();
        let v1 = Keys::derive_with(&root, HKDF_SALT_V1);
        let mut hdr = [0u8; SECTOR_HEADER_LEN];
        SectorHeader {
            erase_count: 1,
            gen: 1,
            first_counter: 1,
            oldest_gen: 1,
        }
        .emit_magic(&v1, SECTOR_MAGIC_V1, &mut hdr);
        flash.write(0, &hdr).unwrap();
        flash.write(64, &[0x11; 32]).unwrap();
        let before = flash.image().to_vec();
        let r = Store::<_, _, 4, 2>::mount(
            flash.clone(),
            &root,
            RamCounter::default(),
            Config::new(),
            &mut rand_core::OsRng,
        );
        assert_eq!(r.err(), Some(Error::UnsupportedFormat));
        assert_eq!(flash.image(), &before[..]);
        // Under another root key it is just unreadable data (erased as stray).
        let mut s = Store::<_, _, 4, 2>::mount(
            flash,
            &RootKey([8; 32]),
            RamCounter::default(),
            Config::new(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        s.set(b"k", b"v").unwrap();
    }

    /// Two mounts draw two salts: the same counter seals differently.
    #[test]
    fn each_mount_draws_its_own_salt() {
        let root = RootKey([9; 32]);
        let flash = RamFlash::<{ 2 * 4096 }, 4096, 4, 1>::new();
        let mount = |f| {
            Store::<_, _, 4, 2>::mount(
                f,
                &root,
                crate::NoRollbackProtection,
                Config::new(),
                &mut rand_core::OsRng,
            )
            .unwrap()
        };
        let a = mount(flash.clone());
        let b = mount(flash);
        assert_ne!(a.salt, b.salt);
    }
}
