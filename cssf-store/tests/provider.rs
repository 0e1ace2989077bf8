//! The store derives its keys through the `Hash` entry of the crypto
//! provider in its `Config`: a counting double sees one HKDF-Extract and
//! four HKDF-Expands per mount, an image written through it opens with the
//! default provider (the derivation is the same bytes), and a `Hash` that
//! derives other keys cannot read it.

// Test helpers outside #[test] fns: panicking on failure is the point.
#![allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

mod common;

use core::sync::atomic::{AtomicU32, Ordering};

use common::{rng, SimFlash};
use cssf_provider::rustcrypto::{self, RustCryptoHash};
use cssf_provider::{CryptoProvider, Hash, DIGEST_LEN};
use cssf_store::{Config, RamCounter, RootKey, Store};
use zeroize::Zeroizing;

const ROOT: RootKey = RootKey([0x5A; 32]);
const SECTORS: usize = 2;
type S<'c> = Store<SimFlash, &'c mut RamCounter, 16, SECTORS>;

/// Counts calls and forwards them to RustCrypto; with `skew`, flips a bit
/// of every HKDF-Expand output (another key schedule).
struct CountingHash {
    sha256: AtomicU32,
    hmac: AtomicU32,
    extract: AtomicU32,
    expand: AtomicU32,
    skew: bool,
}

impl CountingHash {
    const fn new(skew: bool) -> Self {
        CountingHash {
            sha256: AtomicU32::new(0),
            hmac: AtomicU32::new(0),
            extract: AtomicU32::new(0),
            expand: AtomicU32::new(0),
            skew,
        }
    }

    /// (sha256, hmac, extract, expand) calls so far.
    fn counts(&self) -> (u32, u32, u32, u32) {
        (
            self.sha256.load(Ordering::Relaxed),
            self.hmac.load(Ordering::Relaxed),
            self.extract.load(Ordering::Relaxed),
            self.expand.load(Ordering::Relaxed),
        )
    }
}

impl Hash for CountingHash {
    fn sha256(&self, data: &[&[u8]]) -> [u8; DIGEST_LEN] {
        self.sha256.fetch_add(1, Ordering::Relaxed);
        RustCryptoHash.sha256(data)
    }

    fn hmac_sha256(&self, key: &[u8], data: &[&[u8]]) -> Zeroizing<[u8; DIGEST_LEN]> {
        self.hmac.fetch_add(1, Ordering::Relaxed);
        RustCryptoHash.hmac_sha256(key, data)
    }

    fn hkdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; DIGEST_LEN]> {
        self.extract.fetch_add(1, Ordering::Relaxed);
        RustCryptoHash.hkdf_extract(salt, ikm)
    }

    fn hkdf_expand(
        &self,
        prk: &[u8; DIGEST_LEN],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), cssf_provider::Error> {
        self.expand.fetch_add(1, Ordering::Relaxed);
        RustCryptoHash.hkdf_expand(prk, info, out)?;
        if self.skew {
            if let Some(b) = out.first_mut() {
                *b ^= 1;
            }
        }
        Ok(())
    }
}

fn write_image(config: Config, counter: &mut RamCounter) -> Vec<u8> {
    let mut s: S<'_> =
        Store::mount(SimFlash::new(SECTORS), &ROOT, counter, config, &mut rng()).unwrap();
    s.set(b"psk/a", b"secret a").unwrap();
    s.set(b"psk/b", b"secret b").unwrap();
    s.remove(b"psk/b").unwrap();
    s.flash().data.clone()
}

fn read(image: Vec<u8>, config: Config, counter: &mut RamCounter) -> Option<Vec<u8>> {
    let mut s: S<'_> = Store::mount(
        SimFlash::from_image(image),
        &ROOT,
        counter,
        config,
        &mut rng(),
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.get(b"psk/a", &mut buf).ok()?;
    Some(buf[..n].to_vec())
}

#[test]
fn keys_are_derived_through_the_configured_hash() {
    static COUNTED: CountingHash = CountingHash::new(false);
    static MINE: CryptoProvider = CryptoProvider {
        name: "counted hash",
        hash: Some(&COUNTED),
        ..rustcrypto::PROVIDER
    };
    let config = Config::new().with_crypto(&MINE);
    assert_eq!(config.crypto.name, "counted hash");
    assert_ne!(config, Config::new());

    let mut counter = RamCounter::default();
    let image = write_image(config, &mut counter);
    // One mount: HKDF-Extract of the root key, HKDF-Expand of the four
    // keys; writing and reading derive nothing more.
    assert_eq!(COUNTED.counts(), (0, 0, 1, 4));

    // The image opens with the default provider: same derivation, same
    // bytes.
    assert_eq!(
        read(image.clone(), Config::new(), &mut counter).as_deref(),
        Some(&b"secret a"[..])
    );
    assert_eq!(COUNTED.counts(), (0, 0, 1, 4));
    // And again through the counted one: one more mount's derivation.
    assert_eq!(
        read(image, config, &mut counter).as_deref(),
        Some(&b"secret a"[..])
    );
    assert_eq!(COUNTED.counts(), (0, 0, 2, 8));
}

#[test]
fn a_hash_that_derives_other_keys_cannot_read_the_image() {
    static SKEWED: CountingHash = CountingHash::new(true);
    static OTHER: CryptoProvider = CryptoProvider {
        name: "skewed hash",
        hash: Some(&SKEWED),
        ..rustcrypto::PROVIDER
    };
    let mut counter = RamCounter::default();
    let image = write_image(Config::new(), &mut counter);
    assert_eq!(
        read(image.clone(), Config::new(), &mut counter).as_deref(),
        Some(&b"secret a"[..])
    );
    assert_eq!(
        read(image, Config::new().with_crypto(&OTHER), &mut counter),
        None
    );
    assert!(SKEWED.counts().3 >= 4, "{:?}", SKEWED.counts());
}

#[test]
fn a_provider_without_a_hash_entry_derives_with_rustcrypto() {
    static NO_HASH: CryptoProvider = CryptoProvider {
        name: "no hash",
        hash: None,
        ..rustcrypto::PROVIDER
    };
    let mut counter = RamCounter::default();
    let image = write_image(Config::new().with_crypto(&NO_HASH), &mut counter);
    assert_eq!(
        read(image, Config::new(), &mut counter).as_deref(),
        Some(&b"secret a"[..])
    );
}
