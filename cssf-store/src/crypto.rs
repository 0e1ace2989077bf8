//! Key derivation, record sealing and name hashing.
//!
//! From the caller's 32-byte device root key, HKDF-SHA256 (RFC 5869, salt
//! [`HKDF_SALT`]) derives four independent keys, through the `Hash` entry
//! of the crypto provider in [`Config::crypto`](crate::Config::crypto)
//! (RustCrypto's `hkdf` by default):
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
//!
//! # Per-call cost
//!
//! The store keeps, per mount, what its keys allow to compute once: the two
//! XChaCha20-Poly1305 instances (which hold only their key: the cipher's
//! key schedule is per nonce) and, for the two HMAC keys, the SHA-256 states
//! after the inner and outer key blocks (RFC 2104 section 4), so a name hash
//! costs two compressions instead of four. All of it is wiped on drop.
//!
//! # Bench-only build without cryptography
//!
//! Built with `--cfg cssf_store_bench_no_crypto` (through `RUSTFLAGS`; no
//! Cargo feature can turn it on), `seal` and `open` are identities (the tag
//! is written as zeros and not checked), header tags are zeros and the name
//! hash is FNV-1a. It exists only so that a benchmark can compare the store's
//! own machinery (index, log, flash reads) with an unencrypted store; it
//! gives no confidentiality and no integrity and must never be shipped.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use cssf_provider::Hash;
use sha2::digest::generic_array::GenericArray;
use sha2::{compress256, Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Whether this is the bench-only build with the cryptography off (module
/// documentation).
const NO_CRYPTO: bool = cfg!(cssf_store_bench_no_crypto);

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

/// The device root key the caller supplies (32 bytes), wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey(pub [u8; 32]);

impl core::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

/// The keys derived from the root key, ready to use. Every field wipes
/// itself on drop (the AEAD instances their key, [`HmacMidstate`] its
/// states).
pub(crate) struct Keys {
    /// Seals records (key `enc`).
    enc: XChaCha20Poly1305,
    /// Record header tags (key `rhdr`).
    hdr_aead: XChaCha20Poly1305,
    /// Name hashes (key `name`).
    name: HmacMidstate,
    /// Sector header tags (key `hdr`).
    hdr: HmacMidstate,
}

impl ZeroizeOnDrop for Keys {}

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
    pub(crate) fn derive(root: &RootKey, hash: &dyn Hash) -> Self {
        Self::derive_with(root, HKDF_SALT, hash)
    }

    pub(crate) fn derive_with(root: &RootKey, salt: &[u8], hash: &dyn Hash) -> Self {
        let prk = hash.hkdf_extract(salt, &root.0);
        let mut enc = [0u8; 32];
        let mut name = [0u8; 32];
        let mut hdr = [0u8; 32];
        let mut rhdr = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ = hash.hkdf_expand(&prk, &[b"record encryption"], &mut enc);
        let _ = hash.hkdf_expand(&prk, &[b"key name hash"], &mut name);
        let _ = hash.hkdf_expand(&prk, &[b"header tag"], &mut hdr);
        let _ = hash.hkdf_expand(&prk, &[b"record header tag"], &mut rhdr);
        let keys = Self {
            enc: XChaCha20Poly1305::new((&enc).into()),
            hdr_aead: XChaCha20Poly1305::new((&rhdr).into()),
            name: HmacMidstate::new(&name),
            hdr: HmacMidstate::new(&hdr),
        };
        enc.zeroize();
        name.zeroize();
        hdr.zeroize();
        rhdr.zeroize();
        keys
    }

    /// The 8-byte index tag of a key name (keyed unless `plain`).
    pub(crate) fn name_hash(&self, name: &[u8], plain: bool) -> [u8; NAME_HASH_LEN] {
        let mut out = [0u8; NAME_HASH_LEN];
        if NO_CRYPTO {
            return fnv1a(name).to_le_bytes();
        }
        if plain {
            let d = Sha256::new()
                .chain_update(b"cssf-store name")
                .chain_update(name)
                .finalize();
            out.copy_from_slice(d.get(..NAME_HASH_LEN).unwrap_or(&[0; NAME_HASH_LEN]));
        } else {
            let mut m = self.name.start();
            m.update(name);
            let d = self.name.finish(m);
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
        let mut out = [0u8; HEADER_MAC_LEN];
        if NO_CRYPTO {
            return out;
        }
        let tag = self
            .hdr_aead
            .encrypt_in_place_detached(&nonce.to_bytes().into(), data, &mut [])
            .map(<[u8; TAG_LEN]>::from);
        if let Ok(tag) = tag {
            out.copy_from_slice(tag.get(..HEADER_MAC_LEN).unwrap_or(&[0; HEADER_MAC_LEN]));
        }
        out
    }

    /// The 8-byte tag of a header.
    pub(crate) fn header_mac(&self, domain: MacDomain, data: &[u8]) -> [u8; HEADER_MAC_LEN] {
        let mut out = [0u8; HEADER_MAC_LEN];
        if NO_CRYPTO {
            return out;
        }
        let mut m = self.hdr.start();
        m.update(&[domain as u8]);
        m.update(data);
        let d = self.hdr.finish(m);
        out.copy_from_slice(d.get(..HEADER_MAC_LEN).unwrap_or(&[0; HEADER_MAC_LEN]));
        out
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(crate) fn seal(&self, nonce: &RecordNonce, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        if NO_CRYPTO {
            return [0; TAG_LEN];
        }
        // Fails only for messages longer than 256 GiB.
        match self
            .enc
            .encrypt_in_place_detached(&nonce.to_bytes().into(), ad, buf)
        {
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
        if NO_CRYPTO {
            return true;
        }
        self.enc
            .decrypt_in_place_detached(&nonce.to_bytes().into(), ad, buf, tag.into())
            .is_ok()
    }
}

/// FNV-1a, 64-bit: the name hash of the bench-only build without
/// cryptography (module documentation), never used otherwise.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    compress256(state, &[GenericArray::from(*block)]);
}

/// HMAC-SHA256 (RFC 2104) with the `K ^ ipad` and `K ^ opad` blocks
/// compressed once per key (RFC 2104 section 4): a MAC then costs its
/// message blocks plus one outer block. The states are key-equivalent
/// secrets, wiped on drop. The same construction as cssf-auth's; checked
/// against the `hmac` crate in the tests below.
#[derive(Zeroize, ZeroizeOnDrop)]
struct HmacMidstate {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacMidstate {
    /// Precomputes for a 32-byte key (at most a block: used as is).
    fn new(key: &[u8; 32]) -> Self {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(key) {
            *i ^= k;
            *o ^= k;
        }
        let (mut inner, mut outer) = (SHA256_IV, SHA256_IV);
        compress(&mut inner, &ipad);
        compress(&mut outer, &opad);
        ipad.zeroize();
        opad.zeroize();
        Self { inner, outer }
    }

    /// A MAC computation: feed the message with [`Sha256Stream::update`],
    /// then [`Self::finish`].
    fn start(&self) -> Sha256Stream {
        Sha256Stream::new(self.inner, 64)
    }

    /// The tag for the inner hash stream `s`.
    fn finish(&self, s: Sha256Stream) -> [u8; 32] {
        let inner = s.finish();
        let mut o = Sha256Stream::new(self.outer, 64);
        o.update(&inner);
        o.finish()
    }
}

/// SHA-256 from a given state, `total` bytes already compressed. Wiped on
/// drop (it holds key-dependent state and message bytes).
struct Sha256Stream {
    state: [u32; 8],
    buf: [u8; 64],
    n: usize,
    total: u64,
}

impl Drop for Sha256Stream {
    fn drop(&mut self) {
        self.state.zeroize();
        self.buf.zeroize();
    }
}

impl Sha256Stream {
    const fn new(state: [u32; 8], done: u64) -> Self {
        Self {
            state,
            buf: [0; 64],
            n: 0,
            total: done,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.n > 0 {
            let take = (64 - self.n).min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(dst) = self.buf.get_mut(self.n..self.n + take) {
                dst.copy_from_slice(head);
            }
            self.n += take;
            data = rest;
            if self.n < 64 {
                return;
            }
            let b = self.buf;
            compress(&mut self.state, &b);
            self.n = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            let arr: [u8; 64] = b.try_into().unwrap_or([0; 64]);
            compress(&mut self.state, &arr);
        }
        let rest = blocks.remainder();
        if let Some(dst) = self.buf.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.n = rest.len();
    }

    fn finish(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8);
        let n = self.n;
        if let Some(b) = self.buf.get_mut(n) {
            *b = 0x80;
        }
        if let Some(z) = self.buf.get_mut(n + 1..) {
            z.fill(0);
        }
        if n >= 56 {
            let b = self.buf;
            compress(&mut self.state, &b);
            self.buf = [0; 64];
        }
        if let Some(l) = self.buf.get_mut(56..) {
            l.copy_from_slice(&bits.to_be_bytes());
        }
        let b = self.buf;
        compress(&mut self.state, &b);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state.iter()) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// The `Hash` the crate's own tests derive keys with (the default).
#[cfg(test)]
pub(crate) fn default_hash() -> &'static dyn Hash {
    &cssf_provider::rustcrypto::RustCryptoHash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = Keys::derive(&RootKey([7; 32]), default_hash());
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
        let k1 = Keys::derive(&RootKey([1; 32]), default_hash());
        let k2 = Keys::derive(&RootKey([2; 32]), default_hash());
        assert_ne!(k1.name_hash(b"a", false), k2.name_hash(b"a", false));
        assert_eq!(k1.name_hash(b"a", true), k2.name_hash(b"a", true));
        assert_ne!(k1.name_hash(b"a", false), k1.name_hash(b"b", false));
    }

    /// The precomputed HMAC equals the `hmac` crate's at every message
    /// length around the block boundaries, in one piece and in pieces.
    #[test]
    fn hmac_midstate_matches_the_hmac_crate() {
        use hmac::{Hmac, Mac};
        let msg: std::vec::Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for seed in [0u8, 1, 0xA5, 0xFF] {
            let key: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ seed);
            let pre = HmacMidstate::new(&key);
            for mlen in [0usize, 1, 6, 55, 56, 63, 64, 65, 119, 120, 128, 142, 300] {
                let m = &msg[..mlen];
                let mut r = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
                r.update(m);
                let want: [u8; 32] = r.finalize().into_bytes().into();
                let mut s = pre.start();
                s.update(m);
                assert_eq!(pre.finish(s), want, "m{mlen}");
                let mut s = pre.start();
                for piece in m.chunks(7) {
                    s.update(piece);
                }
                assert_eq!(pre.finish(s), want, "m{mlen} pieces");
            }
        }
    }

    /// The name hash and sector header tag are still HMAC-SHA256 of the
    /// HKDF-derived keys, truncated (format 2 images stay readable).
    #[test]
    fn hashes_unchanged_by_the_precomputation() {
        use hkdf::Hkdf;
        use hmac::{Hmac, Mac};
        let root = RootKey([7; 32]);
        let k = Keys::derive(&root, default_hash());
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &root.0);
        let (mut name, mut hdr) = ([0u8; 32], [0u8; 32]);
        hk.expand(b"key name hash", &mut name).unwrap();
        hk.expand(b"header tag", &mut hdr).unwrap();
        let want = <Hmac<Sha256> as Mac>::new_from_slice(&name)
            .unwrap()
            .chain_update(b"psk/a")
            .finalize()
            .into_bytes();
        assert_eq!(k.name_hash(b"psk/a", false)[..], want[..NAME_HASH_LEN]);
        let want = <Hmac<Sha256> as Mac>::new_from_slice(&hdr)
            .unwrap()
            .chain_update([MacDomain::Sector as u8])
            .chain_update(b"sector header")
            .finalize()
            .into_bytes();
        assert_eq!(
            k.header_mac(MacDomain::Sector, b"sector header")[..],
            want[..HEADER_MAC_LEN]
        );
    }

    #[test]
    fn debug_hides_keys() {
        let r = RootKey([0xAB; 32]);
        let s = format!("{r:?} {:?}", Keys::derive(&r, default_hash()));
        assert!(!s.contains("171") && !s.to_lowercase().contains("ab,"));
    }
}
