//! Acknowledged ranges: counters explained as torn writes.
//!
//! # Invariants
//!
//! - `acks[..nacks]` are the ranges `lo..=hi` of counters that are known not
//!   to hold a record (a write cut by the power, or a loss accepted by
//!   [`Store::repair`], which acknowledges `0..=next - 1`), each stated by an
//!   `ack` record at `addr`. A counter covered by a range is not a hole.
//! - At most [`MAX_ACKS`] ranges are kept; when the table is full the range
//!   with the lowest `hi` is the one replaced (mount keeps the `MAX_ACKS`
//!   highest the same way).
//! - Garbage collection carries an `ack` record into the new head while its
//!   range still reaches the log (`hi` at or above the first counter of the
//!   oldest sector left), and drops it after: the counters it explains have
//!   left the log with their sector.
//! - An `ack` record stores `lo` in its argument field and `hi` in the first
//!   8 bytes of its name-hash field; one range spans at most `u32::MAX - 2`
//!   counters.

use crate::crypto::NAME_HASH_LEN;
use crate::error::Error;
use crate::layout::Kind;
use crate::rollback::MonotonicCounter;

use super::io::Flash;
use super::{Core, SectorState, MAX_ACKS, NO_HASH};

/// Counters `lo..=hi` are explained as torn writes; the record is at `addr`.
#[derive(Clone, Copy, Default)]
pub(super) struct AckRange {
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) addr: u32,
}

/// The `ack` record stores `hi` in the name-hash field.
pub(super) fn ack_hash(hi: u64) -> [u8; NAME_HASH_LEN] {
    let mut h = NO_HASH;
    if let Some(d) = h.get_mut(..8) {
        d.copy_from_slice(&hi.to_le_bytes());
    }
    h
}

pub(super) fn ack_hi(h: &[u8; NAME_HASH_LEN]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(h.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    /// The highest counter in `lo..=hi` no `ack` range explains.
    pub(super) fn uncovered_max(&self, lo: u64, hi: u64) -> Option<u64> {
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

    pub(super) async fn write_ack(&mut self, lo: u64, hi: u64, limit: u32) -> Result<(), Error> {
        // The record stores the range length in 32 bits.
        let lo = lo.max(hi.saturating_sub(u64::from(u32::MAX) - 2));
        let (addr, _, _) = self
            .append(Kind::Ack, 0, lo, &ack_hash(hi), None, limit)
            .await?;
        let a = AckRange { lo, hi, addr };
        if let Some(slot) = self.acks.get_mut(self.nacks) {
            *slot = a;
            self.nacks += 1;
        } else if let Some(min) = self.acks.iter_mut().min_by_key(|x| x.hi) {
            *min = a;
        }
        Ok(())
    }

    /// Carries the `ack` record at `addr` (in sector `i`, being collected)
    /// into the head while its range still touches the log; drops it after.
    pub(super) async fn carry_ack(&mut self, i: usize, addr: u32, limit: u32) -> Result<(), Error> {
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
            self.write_ack(a.lo, a.hi, limit).await?;
        }
        Ok(())
    }
}
