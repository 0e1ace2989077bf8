//! Transactions: staging, and committing them atomically.
//!
//! # Invariants
//!
//! - The records of a transaction carry its id, the counter of its first
//!   record, in their argument field, and are closed by a `commit` record
//!   whose counter is the id plus the number of operations. Mount applies
//!   them only when that `commit` is found with the count matching, so after
//!   a power cut either all of them are visible or none is.
//! - All records of a transaction, `commit` included, are written into one
//!   sector (space is ensured for the total first), so no sector rotation or
//!   garbage collection runs between them.
//! - The limits (operations, key count, space) are checked before anything
//!   is written; the index is updated only after the `commit` record.

use crate::config::{MAX_KEY_LEN, MAX_TX_OPS, MAX_VALUE_LEN};
use crate::error::Error;
use crate::layout::Kind;
use crate::rollback::MonotonicCounter;

use super::index::{Entry, EMPTY_ENTRY};
use super::io::Flash;
use super::{Core, NO_HASH};

/// One staged operation of a [`Transaction`].
#[derive(Clone, Copy, Debug)]
enum Op<'a> {
    Set(&'a [u8], &'a [u8]),
    Remove(&'a [u8]),
}

/// An atomic group of sets and removes: after a power cut either all of them
/// are visible or none is.
///
/// It borrows the keys and values until [`Store::commit`](super::Store::commit); at most
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

pub(super) fn check_key(key: &[u8]) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLong { max: MAX_KEY_LEN });
    }
    Ok(())
}

pub(super) fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLong { max: MAX_VALUE_LEN });
    }
    Ok(())
}

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
{
    /// Applies all operations of `tx` atomically.
    ///
    /// # Errors
    /// [`Error::TransactionTooLarge`] when the records do not fit in one
    /// sector, [`Error::IndexFull`], [`Error::Full`], flash and counter errors.
    /// After a flash error the transaction is not applied.
    pub(super) async fn commit<const N: usize>(
        &mut self,
        tx: &Transaction<'_, N>,
    ) -> Result<(), Error> {
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
        self.ensure_space(total, added, big, hashes.get(..nhashes).unwrap_or(&[]))
            .await?;
        let txid = self.next;
        let mut entries = [(EMPTY_ENTRY, false); MAX_TX_OPS];
        let limit = Self::SECTOR - Self::RESERVE;
        for (slot, op) in entries.iter_mut().zip(ops) {
            match op {
                Some(Op::Set(k, v)) => *slot = (self.write_set(k, v, txid).await?, true),
                Some(Op::Remove(k)) => {
                    let hash = self.name_hash(k);
                    self.append(Kind::Remove, 0, txid, &hash, None, limit)
                        .await?;
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
        self.append(Kind::Commit, 0, txid, &NO_HASH, None, limit)
            .await?;
        for (e, is_set) in entries.iter().take(ops.len()) {
            if *is_set {
                self.index_put(*e)?;
            } else {
                self.index_remove(&e.hash);
            }
        }
        self.commit_counter()
    }
}
