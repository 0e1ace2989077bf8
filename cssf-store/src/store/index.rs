//! The in-RAM index: key name hash to newest record.
//!
//! # Invariants
//!
//! - `index[..index_len]` holds at most one entry per keyed name hash, and
//!   `index_len <= KEYS`. [`Store::set`] and [`Store::commit`] refuse a new
//!   key past `KEYS` with [`Error::IndexFull`] before writing, so a store
//!   written through the API always mounts with the same `KEYS`.
//! - An entry is the newest record of its key in log order: its flash
//!   address, counter and on-flash size; `tampered` when that record failed
//!   authentication or is a `tampered` marker. A removed key has no entry.
//! - The index changes only after the records that justify it are on flash
//!   (for a transaction, after its `commit` record).
//! - `live_bytes` is the sum of the entries' sizes: the bytes a full
//!   garbage collection of the log would have to copy.

use crate::crypto::NAME_HASH_LEN;
use crate::error::Error;
use crate::layout::Kind;
use crate::rollback::MonotonicCounter;

use super::io::Flash;
use super::{Core, NO_HASH};

#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub(super) hash: [u8; NAME_HASH_LEN],
    pub(super) addr: u32,
    pub(super) counter: u64,
    pub(super) size: u32,
    pub(super) tampered: bool,
}

pub(super) const EMPTY_ENTRY: Entry = Entry {
    hash: NO_HASH,
    addr: 0,
    counter: 0,
    size: 0,
    tampered: false,
};

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    /// Applies one record to the index.
    pub(super) fn apply(
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

    pub(super) fn find(&self, hash: &[u8; NAME_HASH_LEN]) -> Option<usize> {
        self.index
            .get(..self.index_len)?
            .iter()
            .position(|e| &e.hash == hash)
    }

    pub(super) fn index_put(&mut self, e: Entry) -> Result<(), Error> {
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

    pub(super) fn index_remove(&mut self, hash: &[u8; NAME_HASH_LEN]) {
        if let Some(i) = self.find(hash) {
            let last = self.index_len - 1;
            self.live_bytes = self
                .live_bytes
                .saturating_sub(self.index.get(i).map_or(0, |e| e.size as usize));
            self.index.swap(i, last);
            self.index_len = last;
        }
    }

    pub(super) fn name_hash(&self, key: &[u8]) -> [u8; NAME_HASH_LEN] {
        self.keys.name_hash(key, self.config.plain_names)
    }
}
