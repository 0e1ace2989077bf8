//! Key derivation, record sealing and name hashing.
//!
//! From the caller's 32-byte device root key, HKDF-SHA256 (RFC 5869, salt
//! [`HKDF_SALT`]) derives four independent keys:
//! - `enc`: ChaCha20-Poly1305 (RFC 8439) key sealing every record;
//! - `name`: HMAC-SHA256 key hashing key names to 8-byte index tags;
//! - `hdr` and `rhdr`: keys authenticating sector and record headers with
//!   64-bit tags, so the log can be walked and damage attributed without
//!   trusting unauthenticated bytes. Sector headers use HMAC-SHA256 under
//!   `hdr`; record headers, written on every operation, use
//!   XChaCha20-Poly1305 under `rhdr` over the header as associated data with
//!   an empty message and the record's nonce (a one-time Poly1305 MAC, so its
//!   nonce must never repeat either).
//!
//! # Nonces
//!
//! Records are sealed with XChaCha20-Poly1305 (192-bit nonce). A record's
//! nonce is [`RecordNonce`]: the 16-byte random salt drawn when the store was
//! mounted, then the record's 64-bit log counter. Within one mount the
//! counter only grows, so nonces differ; two mounts share a nonce only if
//! they drew the same salt (probability below n^2 / 2^129 for n mounts that
//! wrote). Nothing about the flash enters the salt, so a replayed older
//! image, records cut away, a power cut before the trusted counter moved, or
//! no trusted counter at all cannot make a nonce repeat: the log counter may
//! repeat across images, the salt does not. Format 1 used `0u32 || counter`
//! with ChaCha20-Poly1305 and reused nonces after a rollback.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// HKDF salt: binds derived keys to this store format version.
pub const HKDF_SALT: &[u8] = b"cssf-store v2";
/// HKDF salt of format 1, used only to recognise a format 1 image.
pub(crate) const HKDF_SALT_V1: &[u8] = b"cssf-store v1";
/// Length of the per-mount random salt that starts every record nonce.
pub const SALT_LEN: usize = 16;
/// Length of a key-name hash in the index and record header.
pub const NAME_HASH_LEN: usize = 8;
/// Length of a header authentication tag.
pub const HEADER_MAC_LEN: usize = 8;
/// Length of the AEAD tag closing every record.
pub const TAG_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The device root key the caller supplies (32 bytes), wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey(pub [u8; 32]);

impl core::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

/// The keys derived from the root key, wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Keys {
    enc: [u8; 32],
    name: [u8; 32],
    hdr: [u8; 32],
    rhdr: [u8; 32],
}

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The nonce of one record: the writing mount's salt and the record counter
/// (see the module documentation for why it never repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordNonce {
    /// The random salt of the mount that wrote the record.
    pub salt: [u8; SALT_LEN],
    /// The record's log counter.
    pub counter: u64,
}

impl RecordNonce {
    /// The 24-byte XChaCha20-Poly1305 nonce: `salt || counter_le64`.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut n = [0u8; 24];
        let (head, tail) = n.split_at_mut(SALT_LEN);
        head.copy_from_slice(&self.salt);
        tail.copy_from_slice(&self.counter.to_le_bytes());
        n
    }
}

/// Domain separation for header tags.
#[derive(Clone, Copy)]
#[repr(u8)]
pub(crate) enum MacDomain {
    Sector = 1,
}

impl Keys {
    pub(crate) fn derive(root: &RootKey) -> Self {
        Self::derive_with(root, HKDF_SALT)
    }

    pub(crate) fn derive_with(root: &RootKey, salt: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(salt), &root.0);
        let mut keys = Self {
            enc: [0; 32],
            name: [0; 32],
            hdr: [0; 32],
            rhdr: [0; 32],
        };
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ = hk.expand(b"record encryption", &mut keys.enc);
        let _ = hk.expand(b"key name hash", &mut keys.name);
        let _ = hk.expand(b"header tag", &mut keys.hdr);
        let _ = hk.expand(b"record header tag", &mut keys.rhdr);
        keys
    }

    fn hmac(key: &[u8; 32]) -> HmacSha256 {
        // HMAC accepts keys of any length.
        match <HmacSha256 as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        }
    }

    /// The 8-byte index tag of a key name (keyed unless `plain`).
    pub(crate) fn name_hash(&self, name: &[u8], plain: bool) -> [u8; NAME_HASH_LEN] {
        let mut out = [0u8; NAME_HASH_LEN];
        if plain {
            let d = Sha256::new()
                .chain_update(b"cssf-store name")
                .chain_update(name)
                .finalize();
            out.copy_from_slice(d.get(..NAME_HASH_LEN).unwrap_or(&[0; NAME_HASH_LEN]));
        } else {
            let d = Self::hmac(&self.name)
                .chain_update(name)
                .finalize()
                .into_bytes();
            out.copy_from_slice(d.get(..NAME_HASH_LEN).unwrap_or(&[0; NAME_HASH_LEN]));
        }
        out
    }

    /// The 8-byte tag of a record header with nonce `nonce` (under the
    /// header key, so it never meets the record's own AEAD use of the nonce).
    pub(crate) fn record_header_mac(
        &self,
        nonce: &RecordNonce,
        data: &[u8],
    ) -> [u8; HEADER_MAC_LEN] {
        let cipher = XChaCha20Poly1305::new((&self.rhdr).into());
        let tag = cipher
            .encrypt_in_place_detached(&nonce.to_bytes().into(), data, &mut [])
            .map(<[u8; TAG_LEN]>::from);
        let mut out = [0u8; HEADER_MAC_LEN];
        if let Ok(tag) = tag {
            out.copy_from_slice(tag.get(..HEADER_MAC_LEN).unwrap_or(&[0; HEADER_MAC_LEN]));
        }
        out
    }

    /// The 8-byte tag of a header.
    pub(crate) fn header_mac(&self, domain: MacDomain, data: &[u8]) -> [u8; HEADER_MAC_LEN] {
        let d = Self::hmac(&self.hdr)
            .chain_update([domain as u8])
            .chain_update(data)
            .finalize();
        let mut out = [0u8; HEADER_MAC_LEN];
        out.copy_from_slice(
            d.into_bytes()
                .get(..HEADER_MAC_LEN)
                .unwrap_or(&[0; HEADER_MAC_LEN]),
        );
        out
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(crate) fn seal(&self, nonce: &RecordNonce, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let cipher = XChaCha20Poly1305::new((&self.enc).into());
        // Fails only for messages longer than 256 GiB.
        match cipher.encrypt_in_place_detached(&nonce.to_bytes().into(), ad, buf) {
            Ok(tag) => tag.into(),
            Err(_) => [0; TAG_LEN],
        }
    }

    /// Authenticates and decrypts `buf` in place.
    pub(crate) fn open(
        &self,
        nonce: &RecordNonce,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        let cipher = XChaCha20Poly1305::new((&self.enc).into());
        cipher
            .decrypt_in_place_detached(&nonce.to_bytes().into(), ad, buf, tag.into())
            .is_ok()
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // `Hmac::new_from_slice` never fails; keep the panic machinery out anyway
    // by falling back to an all-zero key, which this code path cannot reach.
    <HmacSha256 as KeyInit>::new(&Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = Keys::derive(&RootKey([7; 32]));
        let n = |salt: u8, counter| RecordNonce {
            salt: [salt; SALT_LEN],
            counter,
        };
        let mut buf = *b"hello world";
        let tag = k.seal(&n(1, 5), b"ad", &mut buf);
        assert_ne!(&buf, b"hello world");
        let mut c = buf;
        assert!(k.open(&n(1, 5), b"ad", &mut c, &tag));
        assert_eq!(&c, b"hello world");
        let mut c = buf;
        assert!(
            !k.open(&n(1, 6), b"ad", &mut c, &tag),
            "wrong counter must fail"
        );
        let mut c = buf;
        assert!(
            !k.open(&n(2, 5), b"ad", &mut c, &tag),
            "wrong salt must fail"
        );
        let mut c = buf;
        assert!(!k.open(&n(1, 5), b"ae", &mut c, &tag), "wrong AD must fail");
        // Same counter, another mount's salt: another keystream.
        let mut other = *b"hello world";
        let _ = k.seal(&n(2, 5), b"ad", &mut other);
        assert_ne!(other, buf);
    }

    #[test]
    fn name_hash_keyed_and_plain_differ() {
        let k1 = Keys::derive(&RootKey([1; 32]));
        let k2 = Keys::derive(&RootKey([2; 32]));
        assert_ne!(k1.name_hash(b"a", false), k2.name_hash(b"a", false));
        assert_eq!(k1.name_hash(b"a", true), k2.name_hash(b"a", true));
        assert_ne!(k1.name_hash(b"a", false), k1.name_hash(b"b", false));
    }

    #[test]
    fn debug_hides_keys() {
        let r = RootKey([0xAB; 32]);
        let s = format!("{r:?} {:?}", Keys::derive(&r));
        assert!(!s.contains("171") && !s.to_lowercase().contains("ab,"));
    }
}
