//! Sector rotation and garbage collection.
//!
//! # Invariants
//!
//! - Sectors are used round robin. The used sectors form a run of
//!   increasing generations ending at the head; between operations the
//!   sector after the head is erased (one sector is always free), except in
//!   the degraded state, where garbage collection stops.
//! - Opening a sector programs its header (erase count, generation, first
//!   counter = `next`, oldest live generation) before any record, then an
//!   `ack` left pending by mount, if any.
//! - When the head moves to the free sector and the sector after it is in
//!   use, that sector (the oldest) is collected at once: its live records
//!   (those the index points at) are re-sealed with fresh counters into the
//!   new head, its `ack` records that still reach the log are carried, a
//!   `gc-done` record names its generation, and only then is it erased. A
//!   power cut anywhere in between leaves the old copy or both readable, and
//!   mount finishes the collection.
//! - The copies and carried `ack`s stay below the reserve at the end of the
//!   head; only the `gc-done` record may use it. The space accounting
//!   (`space`) guarantees the copies fit, even after [`GC_CUTS`] power cuts.
//! - A record that failed authentication is carried as a `tampered` marker,
//!   so its key keeps answering [`Error::Tampered`].

use crate::crypto::TAG_LEN;
use crate::error::Error;
use crate::layout::{align_up, Kind, SectorHeader, RECORD_HEADER_LEN, SECTOR_HEADER_LEN};
use crate::rollback::MonotonicCounter;

use super::index::Entry;
use super::io::Flash;
use super::{Core, Scratch, SectorInfo, SectorState, MAX_ALIGN, NO_HASH};

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    pub(super) async fn erase_sector(&mut self, i: usize) -> Result<(), Error> {
        let start = self.sector_start(i);
        self.flash.erase(start, start + Self::SECTOR).await?;
        self.stats.erases += 1;
        if let Some(sec) = self.sector_mut(i) {
            sec.state = SectorState::Free;
            sec.erase_count = sec.erase_count.saturating_add(1);
        }
        Ok(())
    }

    pub(super) async fn erase_dirty(&mut self) -> Result<(), Error> {
        for i in 0..SECTORS {
            if self.sector(i).state == SectorState::Dirty {
                self.erase_sector(i).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn open_sector(
        &mut self,
        i: usize,
        gen: u64,
        oldest_gen: u64,
    ) -> Result<(), Error> {
        if self.sector(i).state != SectorState::Free {
            self.erase_sector(i).await?;
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
        self.flash.write(start, w).await?;
        if let Some(sec) = self.sector_mut(i) {
            *sec = info;
        }
        self.head = i;
        self.head_pos = Self::DATA_START;
        if let Some((lo, hi)) = self.pending_ack.take() {
            self.write_ack(lo, hi, Self::SECTOR).await?;
        }
        Ok(())
    }

    pub(super) async fn advance_head(&mut self) -> Result<(), Error> {
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
        self.open_sector(n, gen, oldest).await?;
        if self.sector(after).state == SectorState::Used {
            self.gc(after).await?;
        }
        Ok(())
    }

    /// Garbage collects sector `i` into the head sector.
    pub(super) async fn gc(&mut self, i: usize) -> Result<(), Error> {
        if self.lost_max.is_some() {
            return Err(Error::Corrupt);
        }
        let end = self.data_end(i).await?;
        let mut pos = Self::DATA_START;
        let mut garbage = false;
        let mut buf = Scratch::new();
        let limit = Self::SECTOR - Self::RESERVE;
        while let Some((h, addr)) = self.walk(i, &mut pos, end, &mut garbage).await? {
            if h.kind == Kind::Ack {
                self.carry_ack(i, addr, limit).await?;
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
            // Another record put at the indexed address (say an older value
            // of the key) is not the indexed one: re-sealing it would launder
            // a rollback. It counts as tampering.
            let good = !e.tampered
                && h.counter == e.counter
                && self.open_record(&h, addr, &mut buf).await?;
            let (a, c, size) = if good {
                let plain_len = h.payload_len as usize - TAG_LEN;
                let body = buf
                    .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + plain_len)
                    .ok_or(Error::Corrupt)?;
                let mut tmp = Scratch::new();
                let t = tmp.prefix_mut(plain_len).ok_or(Error::Corrupt)?;
                t.copy_from_slice(body);
                self.append(Kind::Set, h.flags, 0, &h.name_hash, Some(t), limit)
                    .await?
            } else {
                self.stats.tampered_records += u32::from(!e.tampered);
                self.append(Kind::Tampered, 0, 0, &h.name_hash, None, limit)
                    .await?
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
        self.append(Kind::GcDone, 0, gen, &NO_HASH, None, Self::SECTOR)
            .await?;
        self.erase_sector(i).await?;
        self.stats.gcs += 1;
        Ok(())
    }
}
