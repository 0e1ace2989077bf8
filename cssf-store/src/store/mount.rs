//! Mount and recovery: rebuilding the in-RAM state from the log.
//!
//! # Invariants established
//!
//! - **Nothing is written before the image is accepted.** Sectors are
//!   classified, the log is surveyed and checked against the trusted counter
//!   (and a format 1 store is refused) with reads only; erases of stray
//!   sectors, the torn-write `ack`, the end of an interrupted garbage
//!   collection and the counter update come after.
//! - **The counter.** `next` ends up strictly above every counter that may
//!   have been used: every authentic header seen (torn records included),
//!   every acknowledged `hi`, an eager counter's reservation (its burned
//!   range acknowledged like a torn write) and the first counter of every
//!   used sector minus one. After a torn write it is bumped once more,
//!   since the torn header may have used a counter no header still shows.
//!   `last_written` is the newest record whose AEAD tag checks; it must be
//!   at least the trusted counter's confirmed counter, and the second pass
//!   must meet the record the first pass measured (else `Rollback`).
//! - **The next free position.** `head` is the used sector with the highest
//!   generation and `head_pos` is past the last programmed word of it, so no
//!   word is ever programmed twice.
//! - **Holes.** The counters of the log are contiguous. A hole after the
//!   newest authentic record is a torn write and gets an `ack`; a hole that no
//!   `ack` range explains anywhere else sets `lost_max` (the degraded state).
//!   Two sectors with one generation, or a missing oldest sector, count as
//!   holes too.
//! - **The index** holds, for each key, its newest record in log order;
//!   transaction records are applied only with their `commit` record, and a
//!   torn record after the newest authentic one is never applied.
//! - **Sectors.** On return the sector after the head is erased, unless the
//!   store is degraded (garbage collection stops) or an interrupted
//!   collection could not finish for lack of room (only after more than
//!   [`GC_CUTS`] cuts during it).

use rand_core::CryptoRngCore;

use crate::config::{Config, MAX_TX_OPS};
use crate::crypto::{Keys, RootKey, HKDF_SALT_V1, NAME_HASH_LEN, SALT_LEN};
use crate::error::Error;
use crate::layout::{align_up, Kind, SectorHeader, SECTOR_HEADER_LEN, SECTOR_MAGIC_V1};
use crate::rollback::MonotonicCounter;

use super::ack::{ack_hi, AckRange};
use super::index::EMPTY_ENTRY;
use super::io::Flash;
use super::{
    Core, Scratch, SectorInfo, SectorState, Stats, FREE_SECTOR, MAX_ACKS, MAX_ALIGN, NO_HASH,
};

/// A staged transaction operation while mounting.
#[derive(Clone, Copy)]
pub(super) struct Pending {
    pub(super) kind: Kind,
    pub(super) good: bool,
    pub(super) hash: [u8; NAME_HASH_LEN],
    pub(super) addr: u32,
    pub(super) counter: u64,
    pub(super) size: u32,
}

pub(super) const NO_PENDING: Pending = Pending {
    kind: Kind::Set,
    good: false,
    hash: NO_HASH,
    addr: 0,
    counter: 0,
    size: 0,
};

/// What the first mount pass learned.
#[derive(Default)]
pub(super) struct Survey {
    pub(super) max_good: u64,
    pub(super) max_header: u64,
    pub(super) max_gc_done: Option<u64>,
    pub(super) max_ack: u64,
    pub(super) acks: [AckRange; MAX_ACKS],
    pub(super) nacks: usize,
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

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    /// The first half of a mount, touching no flash: derives the keys and
    /// draws the salt; [`Self::recover`] does the rest (the front ends'
    /// `mount` call both).
    ///
    /// `rng` draws this mount's 16-byte nonce salt (see
    /// [`crate::crypto`]): it must be a real entropy source (a TRNG, or a
    /// CSPRNG seeded from one), since the confidentiality of every record
    /// written during this mount rests on the salt not repeating.
    ///
    pub(super) fn new(
        flash: F,
        root: &RootKey,
        counter: C,
        config: Config,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        Self {
            flash,
            counter,
            keys: Keys::derive(root, config.hash()),
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
            unacked: None,
            reserved: 0,
            confirmed: 0,
            live_bytes: 0,
            lost_max: None,
            stats: Stats::default(),
        }
    }

    /// Finishes [`Self::new`]: scans the log, checks it against the trusted
    /// counter, repairs what a power cut left, rebuilds the index. Called
    /// once, right after `new`; the future borrows the core, so its size does
    /// not grow with the flash driver's. A blank flash gives an empty store.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable geometry, [`Error::Rollback`] when
    /// the image is older than the counter, [`Error::IndexFull`] when the
    /// flash holds more than `KEYS` keys (only possible when it was written
    /// with a larger `KEYS`, or when a remove record was tampered with:
    /// `set` and `commit` refuse a new key past `KEYS`
    /// before writing anything), [`Error::UnsupportedFormat`] for a flash
    /// written in format 1 (left untouched), flash and counter errors.
    pub(super) async fn recover(&mut self, root: &RootKey) -> Result<(), Error> {
        self.check_geometry()?;
        // The trusted value holds the reserved and the confirmed counter
        // (see `crate::rollback::trusted_value`).
        let trusted = self.counter.read().map_err(|_| Error::Counter)?;
        (self.reserved, self.confirmed) = crate::rollback::trusted_parts(trusted);
        self.classify_sectors(root).await?;
        let survey = self.survey().await?;
        // Every record up to the confirmed counter was on flash when the
        // counter said so: an image without them is older.
        if survey.max_good < self.confirmed {
            return Err(Error::Rollback);
        }
        // Sectors whose GC finished are garbage even if their erase was cut.
        if let Some(retired) = survey.max_gc_done {
            for sec in &mut self.sectors {
                if sec.state == SectorState::Used && sec.gen <= retired {
                    sec.state = SectorState::Dirty;
                }
            }
        }
        self.last_written = survey.max_good;
        self.acks = survey.acks;
        self.nacks = survey.nacks;
        let torn = self.build_index(&survey).await?;
        let max_first = self
            .sectors
            .iter()
            .filter(|x| x.state == SectorState::Used)
            .map(|x| x.first_counter);
        let floor = max_first.max().unwrap_or(0).saturating_sub(1);
        // An eager counter reserved past the log: a power cut between a
        // reservation and its write, or those records cut away. They may
        // exist somewhere, so their counters are never used again, and the
        // range is acknowledged like a torn write. (A lazy counter's block is
        // reused from the log's end: its records are inside the window a
        // lazy counter does not protect.)
        let eager = self.config.counter_block <= 1;
        let burned = if eager && self.reserved > survey.max_good {
            self.reserved
        } else {
            0
        };
        let torn = torn || burned > 0;
        self.next = survey
            .max_header
            .max(survey.max_ack)
            .max(burned)
            .max(floor)
            .max(survey.max_good)
            + 1;
        if torn {
            // The torn write may have used `next` in a header we could not
            // read: never reuse it.
            self.next += 1;
        }
        // Repairs: only now that the image is accepted.
        self.erase_dirty().await?;
        if !self.sectors.iter().any(|x| x.state == SectorState::Used) {
            self.open_sector(0, 1, 1).await?;
        }
        if torn && self.lost_max.is_some() {
            // Degraded: no `ack` now; `repair` writes it for these counters.
            self.unacked = Some((survey.max_good + 1, self.next - 1));
        }
        if torn && self.lost_max.is_none() {
            self.stats.torn_writes += 1;
            let (lo, hi) = (survey.max_good + 1, self.next - 1);
            if self.head_pos + Self::RESERVE <= Self::SECTOR {
                self.write_ack(lo, hi, Self::SECTOR).await?;
            } else {
                // Written by `open_sector` before anything else in the new head.
                self.pending_ack = Some((lo, hi));
                self.advance_head().await?;
            }
        }
        // An interrupted GC leaves the sector after the head in use: finish it.
        let after = (self.head + 1) % SECTORS;
        if self.sector(after).state == SectorState::Used && self.lost_max.is_none() {
            match self.gc(after).await {
                // No room left to finish it: only after more than `GC_CUTS`
                // cuts during this GC (the write checks keep that headroom),
                // or for an image written without them. Stay mounted and
                // readable; removes of keys in the head may free room.
                Err(Error::Full) => {}
                r => r?,
            }
        }
        self.commit_counter()?;
        Ok(())
    }

    pub(super) fn check_geometry(&self) -> Result<(), Error> {
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

    pub(super) async fn classify_sectors(&mut self, root: &RootKey) -> Result<(), Error> {
        let mut hdr = [0u8; align_up(SECTOR_HEADER_LEN, MAX_ALIGN)];
        let hlen = Self::DATA_START as usize;
        let mut max_erase = 0;
        let mut v1 = false;
        for i in 0..SECTORS {
            let start = self.sector_start(i);
            let h = hdr.get_mut(..hlen).unwrap_or(&mut []);
            self.flash.read(start, h).await?;
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
                && SectorHeader::is_v1(
                    &Keys::derive_with(root, HKDF_SALT_V1, self.config.hash()),
                    h,
                )
            {
                v1 = true;
                SectorInfo {
                    state: SectorState::Dirty,
                    ..FREE_SECTOR
                }
            } else if self.data_end(i).await? == 0 {
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
        // A format 1 store under this root key, and no format 2 sector: refuse
        // before anything is erased, so its data is not lost. (Beside a
        // format 2 log, a format 1 sector is stray data, erased like any.)
        if v1 && !self.sectors.iter().any(|x| x.state == SectorState::Used) {
            return Err(Error::UnsupportedFormat);
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

    /// Pass 1: find the newest authentic record and the control records.
    pub(super) async fn survey(&mut self) -> Result<Survey, Error> {
        let mut sv = Survey::default();
        let mut buf = Scratch::new();
        let (order, n) = self.used_in_order();
        for &i in order.get(..n).unwrap_or(&[]) {
            let end = self.data_end(i).await?;
            let mut pos = Self::DATA_START;
            let mut garbage = false;
            while let Some((h, addr)) = self.walk(i, &mut pos, end, &mut garbage).await? {
                sv.max_header = sv.max_header.max(h.counter);
                if self.open_record(&h, addr, &mut buf).await? {
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
    pub(super) fn gap(&mut self, lo: u64, hi: u64, sv: &Survey) {
        let hi = hi.min(sv.max_good);
        if lo > hi {
            return;
        }
        if let Some(c) = self.uncovered_max(lo, hi) {
            self.stats.lost_records += c - lo + 1;
            self.lost_max = self.lost_max.max(Some(c));
        }
    }

    /// Pass 2: rebuild the index in log order, check the counter sequence,
    /// apply committed transactions. Returns whether the head ends in a
    /// torn write.
    pub(super) async fn build_index(&mut self, sv: &Survey) -> Result<bool, Error> {
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
        // Pass 2 must meet the newest authentic record pass 1 measured
        // against the trusted counter; if the flash changed in between (an
        // attacker serving two images), the mount is refused.
        let mut met_newest = sv.max_good == 0;
        for &i in used {
            let sec = self.sector(i);
            match expected {
                Some(e) if sec.first_counter > e => self.gap(e, sec.first_counter - 1, sv),
                Some(e) if sec.first_counter < e => self.gap(sec.first_counter, e - 1, sv),
                _ => {}
            }
            expected = Some(sec.first_counter);
            npending = 0;
            let end = self.data_end(i).await?;
            let mut pos = Self::DATA_START;
            let mut garbage = false;
            while let Some((h, addr)) = self.walk(i, &mut pos, end, &mut garbage).await? {
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
                let good = self.open_record(&h, addr, &mut buf).await?;
                met_newest |= good && h.counter == sv.max_good;
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
        if !met_newest {
            return Err(Error::Rollback);
        }
        Ok(torn)
    }
}
