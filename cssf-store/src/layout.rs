//! On-flash format: sector headers and record headers, with named offsets.
//!
//! ```text
//! sector  = sector_header (padded to ALIGN) record* 0xFF*
//! sector_header (40 bytes):
//!   0  magic         "CSF2" (format 2; "CSF1" was format 1, refused at mount)
//!   4  erase_count   u32 le   erases this sector has seen (best effort)
//!   8  gen           u64 le   sector generation, +1 per sector opened
//!  16  first_counter u64 le   counter of the first record in the sector
//!  24  oldest_gen    u64 le   oldest sector generation still live when opened
//!  32  tag           8 bytes  HMAC-SHA256(hdr key, 1 || bytes 0..32)[..8]
//! record  = record_header payload, padded with 0xFF to ALIGN
//! record_header (48 bytes):
//!   0  kind          u8       1 set, 2 remove, 3 commit, 4 gc-done, 5 tampered, 6 ack
//!   1  flags         u8       bit 0: name stored in clear
//!   2  payload_len   u16 le   bytes after the header (sealed data + 16-byte tag)
//!   4  counter       u64 le   log counter: order, rollback state, nonce tail
//!  12  back          u32 le   set/remove/commit: 0 outside a transaction, else
//!                             counter - (counter of the transaction's first record) + 1;
//!                             ack: hi - lo + 1 of the counter range it explains
//!  16  name_hash     8 bytes  keyed hash of the key name; gc-done: the collected
//!                             sector generation (u64 le); ack: hi (u64 le)
//!  24  salt          16 bytes the writing mount's random salt (nonce head)
//!  40  tag           8 bytes  XChaCha20-Poly1305(hdr key, nonce salt || counter,
//!                             AD bytes 0..40, empty message) tag [..8]
//! payload (set):   seal(name_len u8 || name || value) || aead_tag
//!          (plain names: name_len u8 || name in clear, then seal(value) || aead_tag)
//! payload (other): aead_tag over the empty message
//! AEAD: XChaCha20-Poly1305 under the enc key, 24-byte nonce salt || counter_le64;
//! associated data: the record header (and, with plain names, the name).
//! ```
//!
//! `ALIGN` is the larger of the flash's `READ_SIZE` and `WRITE_SIZE`; every
//! record starts and ends on it, so each program operation touches only
//! erased words.

use crate::crypto::{Keys, MacDomain, RecordNonce, HEADER_MAC_LEN, NAME_HASH_LEN, SALT_LEN};

/// Sector magic (format 2).
pub const SECTOR_MAGIC: [u8; 4] = *b"CSF2";
/// Sector magic of format 1 (record counter as the nonce), which mount
/// refuses with [`crate::Error::UnsupportedFormat`] rather than erase.
pub const SECTOR_MAGIC_V1: [u8; 4] = *b"CSF1";
/// Length of the sector header before padding.
pub const SECTOR_HEADER_LEN: usize = 40;
const SH_MAGIC: usize = 0;
const SH_ERASE: usize = 4;
const SH_GEN: usize = 8;
const SH_FIRST: usize = 16;
const SH_OLDEST: usize = 24;
const SH_TAG: usize = 32;

/// Length of the record header.
pub const RECORD_HEADER_LEN: usize = 48;
const RH_KIND: usize = 0;
const RH_FLAGS: usize = 1;
/// Offset of the payload length (u16 le) in the record header.
pub const RH_LEN: usize = 2;
/// Offset of the record counter (u64 le) in the record header.
pub const RH_COUNTER: usize = 4;
const RH_BACK: usize = 12;
const RH_NAME: usize = 16;
/// Offset of the writing mount's salt in the record header.
pub const RH_SALT: usize = 24;
/// Offset of the record header tag.
pub const RH_TAG: usize = 40;

/// Record flag: the name is stored in clear before the sealed value.
pub const FLAG_PLAIN_NAME: u8 = 1;

/// Rounds `n` up to a multiple of `align` (a power of two).
#[must_use]
pub const fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

/// A sector header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorHeader {
    /// Erases this sector has seen.
    pub erase_count: u32,
    /// Sector generation.
    pub gen: u64,
    /// Counter of the first record written to the sector.
    pub first_counter: u64,
    /// Oldest generation still live when the sector was opened.
    pub oldest_gen: u64,
}

impl SectorHeader {
    pub(crate) fn emit(&self, keys: &Keys, out: &mut [u8; SECTOR_HEADER_LEN]) {
        self.emit_magic(keys, SECTOR_MAGIC, out);
    }

    pub(crate) fn emit_magic(
        &self,
        keys: &Keys,
        magic: [u8; 4],
        out: &mut [u8; SECTOR_HEADER_LEN],
    ) {
        put(out, SH_MAGIC, &magic);
        put(out, SH_ERASE, &self.erase_count.to_le_bytes());
        put(out, SH_GEN, &self.gen.to_le_bytes());
        put(out, SH_FIRST, &self.first_counter.to_le_bytes());
        put(out, SH_OLDEST, &self.oldest_gen.to_le_bytes());
        let tag = keys.header_mac(MacDomain::Sector, out.get(..SH_TAG).unwrap_or(&[]));
        put(out, SH_TAG, &tag);
    }

    /// Parses and authenticates; `None` if the bytes are not a valid header.
    pub(crate) fn parse(keys: &Keys, b: &[u8]) -> Option<Self> {
        Self::parse_magic(keys, b, SECTOR_MAGIC)
    }

    /// Whether `b` is an authentic format 1 sector header under `v1_keys`
    /// (the keys derived with format 1's HKDF salt).
    pub(crate) fn is_v1(v1_keys: &Keys, b: &[u8]) -> bool {
        Self::parse_magic(v1_keys, b, SECTOR_MAGIC_V1).is_some()
    }

    fn parse_magic(keys: &Keys, b: &[u8], magic: [u8; 4]) -> Option<Self> {
        let body = b.get(..SH_TAG)?;
        let tag = b.get(SH_TAG..SH_TAG + HEADER_MAC_LEN)?;
        if body.get(..4)? != magic {
            return None;
        }
        let want = keys.header_mac(MacDomain::Sector, body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(tag, &want[..])) {
            return None;
        }
        let mut e = [0u8; 4];
        e.copy_from_slice(b.get(SH_ERASE..SH_ERASE + 4)?);
        Some(Self {
            erase_count: u32::from_le_bytes(e),
            gen: u64_at(b, SH_GEN),
            first_counter: u64_at(b, SH_FIRST),
            oldest_gen: u64_at(b, SH_OLDEST),
        })
    }
}

/// Record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A key set to a value.
    Set = 1,
    /// A key removed.
    Remove = 2,
    /// Commit of the transaction whose id is `arg`.
    Commit = 3,
    /// Garbage collection of sector generation `arg` finished.
    GcDone = 4,
    /// The key's newest value was lost to tampering (carried by GC).
    Tampered = 5,
    /// Counters up to `arg` that are missing from the log are explained
    /// (torn writes cut by power loss), not tampering.
    Ack = 6,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Set,
            2 => Self::Remove,
            3 => Self::Commit,
            4 => Self::GcDone,
            5 => Self::Tampered,
            6 => Self::Ack,
            _ => return None,
        })
    }
}

/// A record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Kind.
    pub kind: Kind,
    /// Flags.
    pub flags: u8,
    /// Payload length.
    pub payload_len: u16,
    /// Log counter.
    pub counter: u64,
    /// Transaction id (counter of its first record; 0 outside transactions)
    /// for set/remove/commit, the collected generation for gc-done, the low
    /// end of the explained range for ack.
    pub arg: u64,
    /// Key name hash.
    pub name_hash: [u8; NAME_HASH_LEN],
    /// Random salt of the mount that wrote the record: with the counter, the
    /// record's nonce.
    pub salt: [u8; SALT_LEN],
}

impl RecordHeader {
    /// The nonce of this record: its writer's salt and its counter.
    #[must_use]
    pub const fn nonce(&self) -> RecordNonce {
        RecordNonce {
            salt: self.salt,
            counter: self.counter,
        }
    }

    /// Total length on flash, padded to `align`.
    #[must_use]
    pub const fn total_len(&self, align: usize) -> usize {
        align_up(RECORD_HEADER_LEN + self.payload_len as usize, align)
    }

    pub(crate) fn emit(&self, keys: &Keys, out: &mut [u8]) {
        if let Some(k) = out.get_mut(RH_KIND) {
            *k = self.kind as u8;
        }
        if let Some(f) = out.get_mut(RH_FLAGS) {
            *f = self.flags;
        }
        put(out, RH_LEN, &self.payload_len.to_le_bytes());
        put(out, RH_COUNTER, &self.counter.to_le_bytes());
        let (back, name) = match self.kind {
            Kind::GcDone => (0, self.arg.to_le_bytes()),
            Kind::Ack => {
                let hi = u64::from_le_bytes(self.name_hash);
                (hi.wrapping_sub(self.arg).wrapping_add(1), self.name_hash)
            }
            _ if self.arg == 0 => (0, self.name_hash),
            _ => (
                self.counter.wrapping_sub(self.arg).wrapping_add(1),
                self.name_hash,
            ),
        };
        put(out, RH_BACK, &(back as u32).to_le_bytes());
        put(out, RH_NAME, &name);
        put(out, RH_SALT, &self.salt);
        let tag = keys.record_header_mac(&self.nonce(), out.get(..RH_TAG).unwrap_or(&[]));
        put(out, RH_TAG, &tag);
    }

    /// Parses and authenticates; `None` if not a valid header.
    pub(crate) fn parse(keys: &Keys, b: &[u8]) -> Option<Self> {
        let body = b.get(..RH_TAG)?;
        let tag = b.get(RH_TAG..RH_TAG + HEADER_MAC_LEN)?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(b.get(RH_SALT..RH_SALT + SALT_LEN)?);
        let nonce = RecordNonce {
            salt,
            counter: u64_at(b, RH_COUNTER),
        };
        let want = keys.record_header_mac(&nonce, body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(tag, &want[..])) {
            return None;
        }
        Self::parse_unchecked(b)
    }

    /// Parses without checking the header tag: only for records whose AEAD
    /// tag is checked next (the header is part of its associated data).
    pub(crate) fn parse_unchecked(b: &[u8]) -> Option<Self> {
        let kind = Kind::from_u8(*b.first()?)?;
        let mut len = [0u8; 2];
        len.copy_from_slice(b.get(RH_LEN..RH_LEN + 2)?);
        let mut name_hash = [0u8; NAME_HASH_LEN];
        name_hash.copy_from_slice(b.get(RH_NAME..RH_NAME + NAME_HASH_LEN)?);
        let mut back = [0u8; 4];
        back.copy_from_slice(b.get(RH_BACK..RH_BACK + 4)?);
        let back = u64::from(u32::from_le_bytes(back));
        let counter = u64_at(b, RH_COUNTER);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(b.get(RH_SALT..RH_SALT + SALT_LEN)?);
        let arg = match kind {
            Kind::GcDone => u64::from_le_bytes(name_hash),
            Kind::Ack => u64::from_le_bytes(name_hash)
                .wrapping_add(1)
                .wrapping_sub(back),
            _ if back == 0 => 0,
            _ => counter.wrapping_add(1).wrapping_sub(back),
        };
        Some(Self {
            kind,
            flags: *b.get(RH_FLAGS)?,
            payload_len: u16::from_le_bytes(len),
            counter,
            arg,
            name_hash: if kind == Kind::GcDone {
                [0; NAME_HASH_LEN]
            } else {
                name_hash
            },
            salt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RootKey;

    #[test]
    fn sector_header_round_trip_and_bit_flips() {
        let k = Keys::derive(&RootKey([3; 32]), crate::crypto::default_hash());
        let h = SectorHeader {
            erase_count: 9,
            gen: 77,
            first_counter: 1234,
            oldest_gen: 75,
        };
        let mut b = [0u8; SECTOR_HEADER_LEN];
        h.emit(&k, &mut b);
        assert_eq!(&b[..4], b"CSF2");
        assert_eq!(&b[8..16], &77u64.to_le_bytes());
        assert_eq!(SectorHeader::parse(&k, &b), Some(h));
        for bit in 0..SECTOR_HEADER_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(SectorHeader::parse(&k, &c), None, "bit {bit}");
        }
    }

    #[test]
    fn record_header_round_trip_and_bit_flips() {
        let k = Keys::derive(&RootKey([4; 32]), crate::crypto::default_hash());
        let h = RecordHeader {
            kind: Kind::Set,
            flags: 0,
            payload_len: 300,
            counter: 0x0102_0304_0506_0708,
            arg: 0x0102_0304_0506_0700,
            name_hash: [0xAA; 8],
            salt: [0x5A; 16],
        };
        let mut b = [0u8; RECORD_HEADER_LEN];
        h.emit(&k, &mut b);
        assert_eq!(b[0], 1);
        assert_eq!(&b[2..4], &300u16.to_le_bytes());
        assert_eq!(&b[4..12], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            &b[12..16],
            &9u32.to_le_bytes(),
            "transaction started 8 records back"
        );
        assert_eq!(&b[24..40], &[0x5A; 16]);
        assert_eq!(RecordHeader::parse(&k, &b), Some(h));
        assert_eq!(h.total_len(8), 352);
        let mut other = b;
        other[24] ^= 1;
        assert_eq!(
            RecordHeader::parse(&k, &other),
            None,
            "the salt is authenticated"
        );
        let g = RecordHeader {
            kind: Kind::GcDone,
            arg: 77,
            name_hash: [0; 8],
            ..h
        };
        g.emit(&k, &mut b);
        assert_eq!(&b[16..24], &77u64.to_le_bytes());
        assert_eq!(RecordHeader::parse(&k, &b), Some(g));
        let a = RecordHeader {
            kind: Kind::Ack,
            arg: 10,
            name_hash: 12u64.to_le_bytes(),
            ..h
        };
        a.emit(&k, &mut b);
        assert_eq!(&b[12..16], &3u32.to_le_bytes());
        assert_eq!(RecordHeader::parse(&k, &b), Some(a));
        for bit in 0..RECORD_HEADER_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(RecordHeader::parse(&k, &c), None, "bit {bit}");
        }
        assert_eq!(RecordHeader::parse(&k, &[0xFF; RECORD_HEADER_LEN]), None);
    }
}
