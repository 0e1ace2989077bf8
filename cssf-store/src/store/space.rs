//! Space accounting: when a write is refused with [`Error::Full`].
//!
//! # Invariants (the GC headroom)
//!
//! Let `cap` be a sector's room for records below the `gc-done` reserve
//! (`SECTOR - DATA_START - RESERVE`). For every used sector `i`,
//! `gc_need(i) <= cap`, where `gc_need` is the live bytes in `i`, plus one
//! reserve-sized `ack` for each `ack` record a collection of `i` carries and
//! one for an `ack` left pending by a torn write, plus [`GC_CUTS`] times a
//! torn copy of the largest live record of `i` and the `ack` explaining it.
//!
//! So a garbage collection of any sector into a freshly erased head always
//! finishes, even when the power is cut [`GC_CUTS`] times during it, and the
//! `gc-done` record always fits in the reserve.
//!
//! - `set` and `commit` check this (and that all live data fits in
//!   `SECTORS - 1` sectors) for the head and for the sector the next head
//!   would collect, and refuse with [`Error::Full`] before anything is
//!   written; a write that no sector could take is refused before a sector is
//!   opened. Records the write supersedes are not counted.
//! - Removes add no live data: they only need a reserve-sized record in the
//!   head, so they are accepted whenever a sector can be opened, and free room.
//! - All records of one operation (a transaction with its `commit`) go into
//!   one sector.

use crate::crypto::{NAME_HASH_LEN, TAG_LEN};
use crate::error::Error;
use crate::layout::{align_up, RECORD_HEADER_LEN};
use crate::rollback::MonotonicCounter;

use super::io::Flash;
use super::{Core, SectorState, GC_CUTS};

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    /// Live bytes and largest live record of sector `i` (from the index).
    pub(super) fn sector_load(&self, i: usize) -> (usize, usize) {
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
    pub(super) fn carried_acks(&self, i: usize) -> usize {
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
    pub(super) fn gc_need(
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
    pub(super) async fn ensure_space(
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
            self.advance_head().await?;
        }
        Err(Error::Full)
    }

    /// Fails early with `Full` when the live data after a write that adds
    /// `add` bytes and supersedes `drop` bytes cannot fit.
    pub(super) fn check_room(&self, add: usize, drop: usize) -> Result<(), Error> {
        let per = (Self::SECTOR - Self::DATA_START - Self::RESERVE) as usize;
        if self.live_bytes.saturating_sub(drop) + add > per * (SECTORS - 1) {
            return Err(Error::Full);
        }
        Ok(())
    }

    pub(super) fn set_size(key: &[u8], value: &[u8]) -> usize {
        align_up(
            RECORD_HEADER_LEN + 1 + key.len() + value.len() + TAG_LEN,
            Self::ALIGN,
        )
    }
}
