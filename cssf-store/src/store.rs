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
//! before it. The AEAD nonce is the writing mount's random salt and that
//! counter, and the header is the associated data. On mount the next counter
//! is one above every counter seen in an authentic header (including torn
//! records), so within a mount no counter, and so no nonce, is used twice,
//! even for a record whose write was cut short.
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
//! # Modules
//!
//! Each states the invariants it keeps at its top:
//!
//! - `mount`: mount and recovery (the survey of the log, the rollback check,
//!   rebuilding the index, finishing an interrupted collection);
//! - `index`: the in-RAM index and the live byte count;
//! - `read`: walking the log, opening records, [`Store::get`],
//!   [`Store::for_each_key`];
//! - `write`: appending records (the counter and the next free position),
//!   [`Store::set`], [`Store::remove`], [`Store::repair`];
//! - `transaction`: [`Transaction`] and [`Store::commit`];
//! - `space`: the space accounting behind [`Error::Full`] (the GC headroom);
//! - `gc`: sector rotation and garbage collection;
//! - `ack`: the acknowledged ranges (counters explained as torn writes).
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
//!
//! [`Error::Corrupt`]: crate::Error::Corrupt
//! [`Error::NotFound`]: crate::Error::NotFound
//! [`Error::Tampered`]: crate::Error::Tampered
//! [`Error::Full`]: crate::Error::Full

use zeroize::Zeroize;

use crate::config::{Config, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::crypto::{Keys, NAME_HASH_LEN, SALT_LEN, TAG_LEN};
use crate::layout::{align_up, RECORD_HEADER_LEN, SECTOR_HEADER_LEN};
use crate::rollback::MonotonicCounter;

use ack::AckRange;
use index::Entry;
use io::Flash;

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
/// Writes are refused with [`Error::Full`](crate::Error::Full) early
/// enough that a collection always finishes after this many cuts (see
/// [`Store::set`]).
pub const GC_CUTS: usize = 2;
/// Most `ack` ranges (torn writes explained) kept at once; older ones are
/// dropped when their counters leave the log.
pub const MAX_ACKS: usize = 8;

mod ack;
#[cfg(feature = "async")]
mod asynch;
mod blocking;
mod gc;
mod index;
mod io;
mod mount;
mod read;
mod space;
mod transaction;
mod write;

#[cfg(feature = "async")]
pub use asynch::AsyncStore;
pub use blocking::Store;
pub use transaction::Transaction;

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

/// The store's state and the logic shared by the blocking [`Store`] and the
/// async `AsyncStore` (feature `async`): generic over the internal
/// [`io::Flash`], so mount, GC, space accounting and the write path exist
/// once. The fields are kept by the modules named in the module docs.
pub(crate) struct Core<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize> {
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
    /// Counters a degraded mount skipped (torn write, burned reservation)
    /// without an `ack`: `repair` acknowledges them.
    unacked: Option<(u64, u64)>,
    /// Highest record counter reserved in the trusted counter: a record
    /// with a higher counter is written only after the reservation.
    reserved: u64,
    /// Highest record counter the trusted counter confirms written (see
    /// [`crate::rollback::trusted_value`]).
    confirmed: u64,
    /// An `ack` to write first thing in the next sector opened.
    pending_ack: Option<(u64, u64)>,
    live_bytes: usize,
    lost_max: Option<u64>,
    stats: Stats,
}

impl<F: Flash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Core<F, C, KEYS, SECTORS>
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

    fn sector(&self, i: usize) -> SectorInfo {
        self.sectors.get(i).copied().unwrap_or(FREE_SECTOR)
    }

    fn sector_mut(&mut self, i: usize) -> Option<&mut SectorInfo> {
        self.sectors.get_mut(i)
    }

    fn sector_start(&self, i: usize) -> u32 {
        self.config.base + (i as u32) * Self::SECTOR
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

    /// The `Debug` output of both front ends.
    fn debug(&self, name: &str, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct(name)
            .field("keys", &self.index_len)
            .field("head", &self.head)
            .field("next_counter", &self.next)
            .field("degraded", &self.lost_max.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{RootKey, HKDF_SALT_V1};
    use crate::error::Error;
    use crate::flash::RamFlash;
    use crate::layout::{SectorHeader, SECTOR_MAGIC_V1};
    use crate::rollback::RamCounter;
    use embedded_storage::nor_flash::NorFlash;

    /// A format 1 store (counter-only nonces) is refused, not erased: the
    /// caller can still read it with the release that wrote it.
    #[test]
    fn format_1_image_is_refused_and_left_untouched() {
        let root = RootKey([9; 32]);
        let mut flash = RamFlash::<{ 2 * 4096 }, 4096, 4, 1>::new();
        let v1 = Keys::derive_with(&root, HKDF_SALT_V1, crate::crypto::default_hash());
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

    /// A format 1 sector header beside a format 2 log (a sector replayed
    /// from a dump taken before the upgrade) is stray data, not a reason to
    /// refuse the store.
    #[test]
    fn format_1_sector_beside_a_format_2_log_is_erased() {
        let root = RootKey([9; 32]);
        let flash = RamFlash::<{ 3 * 4096 }, 4096, 4, 1>::new();
        let mut s = Store::<_, _, 4, 3>::mount(
            flash,
            &root,
            RamCounter::default(),
            Config::new(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        s.set(b"k", b"v").unwrap();
        let (mut flash, counter) = s.into_parts();
        let v1 = Keys::derive_with(&root, HKDF_SALT_V1, crate::crypto::default_hash());
        let mut hdr = [0u8; SECTOR_HEADER_LEN];
        SectorHeader {
            erase_count: 1,
            gen: 1,
            first_counter: 1,
            oldest_gen: 1,
        }
        .emit_magic(&v1, SECTOR_MAGIC_V1, &mut hdr);
        flash.write(2 * 4096, &hdr).unwrap();
        let mut s =
            Store::<_, _, 4, 3>::mount(flash, &root, counter, Config::new(), &mut rand_core::OsRng)
                .unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.get(b"k", &mut buf), Ok(1));
        assert!(s.flash().image()[2 * 4096..3 * 4096]
            .iter()
            .all(|&b| b == 0xFF));
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
        assert_ne!(a.core.salt, b.core.salt);
    }
}
