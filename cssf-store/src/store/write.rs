//! The write path: appending records, `set`, `remove`, `repair`.
//!
//! # Invariants
//!
//! - **The counter.** Every record takes `next` as its counter and `next`
//!   grows by one per record, before the write is issued: a write that fails
//!   or is cut burns its counter, which is never used again. With the
//!   mount's random salt the counter makes the nonce, so no nonce repeats
//!   within a mount.
//! - **The next free position.** A record goes at `head_pos` in the head,
//!   and `head_pos` is advanced before the write is issued, so a failed write
//!   is never programmed over. Ordinary records stay below the reserve at the
//!   end of the sector (`limit`); `append` refuses with [`Error::Full`]
//!   rather than crossing it.
//! - **The trusted counter.** `reserved` is the highest counter the trusted
//!   counter has reserved; a record whose counter is above it is written
//!   only after a new reservation (`next` + `counter_block` - 1), so every
//!   counter on flash is at or below the trusted reservation and no counter
//!   is used by two records across power cuts and rollbacks. `last_written`
//!   is the counter of the newest record known to be on flash; `confirmed`
//!   (at most `last_written`) is what the trusted counter says is on flash,
//!   raised by each reservation and, for an eager counter, after each
//!   operation.
//! - Each operation checks its arguments and the space first (nothing is
//!   written when refused), writes its records, then updates the index.

use crate::config::{MAX_COUNTER_BLOCK, MAX_VALUE_LEN};
use crate::crypto::{NAME_HASH_LEN, TAG_LEN};
use crate::error::Error;
use crate::layout::{Kind, RecordHeader, FLAG_PLAIN_NAME, RECORD_HEADER_LEN};
use crate::rollback::MonotonicCounter;

use super::index::Entry;
use super::io::Flash;
use super::transaction::{check_key, check_value};
use super::{Core, Scratch, SectorState, MAX_RECORD_LEN};

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    /// Writes one record at the head (space must have been ensured; fails
    /// with `Full` past `limit`). `body` is `name_len || name || value` for
    /// sets. Returns address, counter and size.
    pub(super) async fn append(
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
        if self.next > self.reserved {
            // Reserve before writing, so that no power cut or rollback can
            // make this counter be used by two records; the same counter
            // write confirms what is on flash so far.
            let to = self.next.saturating_add(
                u64::from(self.config.counter_block.clamp(1, MAX_COUNTER_BLOCK)) - 1,
            );
            let confirmed = self.confirmed.max(self.last_written);
            self.counter
                .advance_to(crate::rollback::trusted_value(to, confirmed))
                .map_err(|_| Error::Counter)?;
            self.reserved = to;
            self.confirmed = confirmed;
        }
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
        self.flash.write(addr, rec).await?;
        self.last_written = h.counter;
        Ok((addr, h.counter, total as u32))
    }

    /// At the end of an operation: an eager counter (`counter_block` 1)
    /// confirms the records written, so that cutting any of them away is a
    /// rollback; any counter is raised to the newest record on flash when it
    /// is behind (an image written before a counter was in use). Records are
    /// reserved before they are written (see `append`).
    pub(super) fn commit_counter(&mut self) -> Result<(), Error> {
        let eager = self.config.counter_block <= 1;
        let last = self.last_written;
        if (eager && last > self.confirmed) || last > self.reserved {
            let reserved = self.reserved.max(last);
            self.counter
                .advance_to(crate::rollback::trusted_value(reserved, last))
                .map_err(|_| Error::Counter)?;
            self.reserved = reserved;
            self.confirmed = last;
        }
        Ok(())
    }

    pub(super) fn flags(&self) -> u8 {
        if self.config.plain_names {
            FLAG_PLAIN_NAME
        } else {
            0
        }
    }

    /// Writes a set record for `key` (space ensured) with transaction id `tx`.
    pub(super) async fn write_set(
        &mut self,
        key: &[u8],
        value: &[u8],
        tx: u64,
    ) -> Result<Entry, Error> {
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
        let (addr, counter, size) = self
            .append(Kind::Set, self.flags(), tx, &hash, Some(b), limit)
            .await?;
        Ok(Entry {
            hash,
            addr,
            counter,
            size,
            tampered: false,
        })
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
    pub(super) async fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
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
        self.ensure_space(size, size, size, &[hash]).await?;
        let e = self.write_set(key, value, 0).await?;
        self.index_put(e)?;
        self.commit_counter()
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when absent (and the store is not degraded),
    /// [`Error::Full`], flash and counter errors.
    pub(super) async fn remove(&mut self, key: &[u8]) -> Result<(), Error> {
        check_key(key)?;
        let hash = self.name_hash(key);
        if self.find(&hash).is_none() && self.lost_max.is_none() {
            return Err(Error::NotFound);
        }
        self.ensure_space(Self::RESERVE as usize, 0, 0, &[]).await?;
        let limit = Self::SECTOR - Self::RESERVE;
        self.append(Kind::Remove, 0, 0, &hash, None, limit).await?;
        self.index_remove(&hash);
        self.commit_counter()
    }

    /// Accepts the loss found on mount: every key whose answer could not be
    /// trusted is marked tampered (it answers [`Error::Tampered`] until set
    /// again or removed), an `ack` record covers the hole, and garbage
    /// collection resumes. Keys that only lived in the lost records are gone.
    ///
    /// # Errors
    /// [`Error::Full`], flash and counter errors.
    pub(super) async fn repair(&mut self) -> Result<(), Error> {
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
                let (addr, counter, size) = self
                    .append(Kind::Tampered, 0, 0, &e.hash, None, limit)
                    .await?;
                self.index_put(Entry {
                    addr,
                    counter,
                    size,
                    tampered: true,
                    ..e
                })?;
            }
        }
        let extra = self
            .unacked
            .filter(|&(lo, hi)| lo <= hi && hi > lost)
            .map(|(lo, hi)| (lo.max(lost.saturating_add(1)), hi));
        let acks = if extra.is_some() { 2 } else { 1 };
        if self.head_pos + acks * Self::RESERVE > limit {
            return Err(Error::Full);
        }
        // Counter 0 stands for "before the oldest sector" (a lost sector).
        // Only up to the highest lost counter, and the counters the mount
        // skipped: records above stay covered by the log's contiguity
        // (cutting one later is a hole).
        self.write_ack(0, lost, limit).await?;
        if let Some((lo, hi)) = extra {
            self.write_ack(lo, hi, limit).await?;
        }
        self.unacked = None;
        self.lost_max = None;
        let after = (self.head + 1) % SECTORS;
        if self.sector(after).state == SectorState::Used {
            self.gc(after).await?;
        }
        self.commit_counter()
    }
}
