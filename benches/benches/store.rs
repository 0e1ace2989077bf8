//! cssf-store beside sequential-storage's fully cached map and beside its
//! own floor, on the same RAM flash.
//!
//! Everything runs on `RamFlash` (64 KiB, 4 KiB sectors, 4-byte words).
//! - cssf-store seals every value (XChaCha20-Poly1305, tagged headers,
//!   HMAC'd key names);
//! - the main peer is sequential-storage 8's map with all its caches (page
//!   states, page pointers, key pointers: like our index, its key cache maps
//!   a key to the flash address of its newest item, and a fetch still reads
//!   and CRC-checks the item on flash); it stores values in clear. Its
//!   default uncached map (which scans the flash) is a secondary column.
//!   It is driven through a thin async adapter with a trivial `block_on`;
//! - the floor of a get is what a get cannot avoid: one flash read of the
//!   record at its size and one XChaCha20-Poly1305 open of its sealed part
//!   (name length, name and value, the 48-byte header as associated data),
//!   under a fixed key and nonce. The floor of a set is one seal of the same
//!   record and one flash program of it, with the sector erases that costs
//!   (no header tag, no name hash, no garbage collection).
//!
//! Built with `RUSTFLAGS="--cfg cssf_store_bench_no_crypto"`, cssf-store's
//! cryptography is replaced by identities (see cssf-store's README, Bench):
//! a bench-only build that compares the store's own machinery with
//! sequential-storage's, never a mode to ship.
//!
//! Besides the criterion figures, interleaved rounds of fixed workloads
//! print ops/s for each, the ratios (medians of the per-round ratios), and
//! the write amplification (bytes programmed into the flash, garbage
//! collection included, per value byte).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::sync::Arc;
use std::task::Wake;
use std::time::Instant;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use cssf_store::crypto::TAG_LEN;
use cssf_store::flash::RamFlash;
use cssf_store::layout::{align_up, RECORD_HEADER_LEN};
use cssf_store::{Config, NoRollbackProtection, RootKey, Store};
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use sequential_storage::cache::key_pointers::ArrayKeyPointers;
use sequential_storage::cache::page_pointers::ArrayPagePointers;
use sequential_storage::cache::page_states::ArrayPageStates;
use sequential_storage::cache::{Cache, CacheImpl, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

const SIZE: usize = 64 * 1024;
const SECTOR: usize = 4096;
const WORD: usize = 4;
type Flash = RamFlash<SIZE, SECTOR, WORD, WORD>;
type Ours = Store<Flash, NoRollbackProtection, 64, { SIZE / SECTOR }>;
const KEYS: usize = 32;
/// Key names are `key/NN`.
const NAME_LEN: usize = 6;

/// Whether cssf-store was built with its cryptography off (bench only).
const NO_CRYPTO: bool = cfg!(cssf_store_bench_no_crypto);

fn ours_label() -> &'static str {
    if NO_CRYPTO {
        "cssf-store (bench-only build, crypto off)"
    } else {
        "cssf-store (sealed)"
    }
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Drives a future that never waits on I/O (the RAM flash is synchronous).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// `embedded-storage-async` view of a blocking flash.
struct AsyncFlash(Flash);

impl ErrorType for AsyncFlash {
    type Error = <Flash as ErrorType>::Error;
}

impl embedded_storage_async::nor_flash::ReadNorFlash for AsyncFlash {
    const READ_SIZE: usize = <Flash as ReadNorFlash>::READ_SIZE;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl embedded_storage_async::nor_flash::NorFlash for AsyncFlash {
    const WRITE_SIZE: usize = <Flash as NorFlash>::WRITE_SIZE;
    const ERASE_SIZE: usize = <Flash as NorFlash>::ERASE_SIZE;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}

const PAGES: usize = SIZE / SECTOR;
type Theirs<C> = MapStorage<u8, AsyncFlash, C>;
/// sequential-storage with no cache (scans the flash on every access).
type Plain = Cache<Uncached, Uncached, Uncached, u8>;
/// sequential-storage with all its caches: page states, page pointers and
/// key pointers (key to flash address, as our in-RAM index).
type Cached =
    Cache<ArrayPageStates<PAGES>, ArrayPagePointers<PAGES>, ArrayKeyPointers<u8, KEYS>, u8>;

fn plain() -> Plain {
    Cache::new_uncached()
}

fn cached() -> Cached {
    Cache::new(
        ArrayPageStates::new(),
        ArrayPagePointers::new(),
        ArrayKeyPointers::new(),
    )
}

fn names() -> Vec<Vec<u8>> {
    let n: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("key/{i:02}").into_bytes())
        .collect();
    assert!(n.iter().all(|k| k.len() == NAME_LEN));
    n
}

fn ours() -> Ours {
    Store::mount(
        Box::new(Flash::new()).as_ref().clone(),
        &RootKey([7; 32]),
        NoRollbackProtection,
        Config::new(),
        &mut rand_core::OsRng,
    )
    .unwrap()
}

fn theirs<C: CacheImpl<u8>>(cache: C) -> Theirs<C> {
    MapStorage::new(
        AsyncFlash(Flash::new()),
        const { MapConfig::new(0..SIZE as u32) },
        cache,
    )
}

fn ours_set(s: &mut Ours, names: &[Vec<u8>], i: usize, v: &[u8]) {
    s.set(&names[i % KEYS], v).unwrap();
}

fn theirs_set<C: CacheImpl<u8>>(s: &mut Theirs<C>, buf: &mut [u8], i: usize, v: &[u8]) {
    block_on(s.store_item(buf, &((i % KEYS) as u8), &v)).unwrap();
}

fn ours_get(s: &mut Ours, names: &[Vec<u8>], i: usize, out: &mut [u8]) -> usize {
    s.get(&names[i % KEYS], out).unwrap()
}

fn theirs_get<C: CacheImpl<u8>>(s: &mut Theirs<C>, buf: &mut [u8], i: usize) -> usize {
    let v: Option<&[u8]> = block_on(s.fetch_item(buf, &((i % KEYS) as u8))).unwrap();
    v.unwrap().len()
}

/// The floor: the work a get (or set) of one `len`-byte value cannot avoid,
/// on the same flash type, with the same record layout.
struct Floor {
    flash: Flash,
    cipher: XChaCha20Poly1305,
    nonce: XNonce,
    /// Record length on flash (header, sealed part, tag, padding).
    total: usize,
    /// Sealed part: name length, name, value.
    body: usize,
    buf: [u8; 2048],
    /// Next write position of the set floor (sectors 1.., sector 0 holds
    /// the record the get floor reads).
    pos: usize,
    counter: u64,
}

impl Floor {
    fn new(len: usize) -> Self {
        let body = 1 + NAME_LEN + len;
        let total = align_up(RECORD_HEADER_LEN + body + TAG_LEN, WORD);
        let mut f = Self {
            flash: Flash::new(),
            cipher: XChaCha20Poly1305::new(&[9; 32].into()),
            nonce: [5; 24].into(),
            total,
            body,
            buf: [0xFF; 2048],
            pos: SECTOR,
            counter: 0,
        };
        let value = vec![0x5Au8; len];
        let nonce = f.nonce;
        f.seal_into_buf(&nonce, b"key/00", &value);
        let rec = &f.buf[..total];
        f.flash.write(0, rec).unwrap();
        assert_eq!(f.get(), len);
        f
    }

    /// Fills `buf[..total]` with a record of `name` = `value` sealed under `nonce`.
    fn seal_into_buf(&mut self, nonce: &XNonce, name: &[u8], value: &[u8]) {
        let (hdr, rest) = self.buf.split_at_mut(RECORD_HEADER_LEN);
        hdr.fill(0x11);
        hdr[..8].copy_from_slice(&self.counter.to_le_bytes());
        let (body, rest) = rest.split_at_mut(self.body);
        body[0] = name.len() as u8;
        body[1..1 + name.len()].copy_from_slice(name);
        body[1 + name.len()..].copy_from_slice(value);
        let tag = self
            .cipher
            .encrypt_in_place_detached(nonce, hdr, body)
            .unwrap();
        rest[..TAG_LEN].copy_from_slice(&tag);
        let pad = self.total - RECORD_HEADER_LEN - self.body - TAG_LEN;
        rest[TAG_LEN..TAG_LEN + pad].fill(0xFF);
    }

    /// One flash read of the record and one AEAD open; returns the value length.
    fn get(&mut self) -> usize {
        let rec = &mut self.buf[..self.total];
        self.flash.read(0, rec).unwrap();
        let (ad, rest) = rec.split_at_mut(RECORD_HEADER_LEN);
        let (sealed, rest) = rest.split_at_mut(self.body);
        let tag = Tag::clone_from_slice(&rest[..TAG_LEN]);
        self.cipher
            .decrypt_in_place_detached(&self.nonce, ad, sealed, &tag)
            .unwrap();
        self.body - 1 - NAME_LEN
    }

    /// The flash read alone (the floor when the store's crypto is off).
    fn read(&mut self) -> usize {
        let rec = &mut self.buf[..self.total];
        self.flash.read(0, rec).unwrap();
        std::hint::black_box(rec);
        self.body - 1 - NAME_LEN
    }

    /// One seal and one program of the record, erasing a sector when the
    /// record no longer fits in the current one.
    fn set(&mut self, name: &[u8], value: &[u8]) {
        if self.pos % SECTOR + self.total > SECTOR || self.pos % SECTOR == 0 {
            let mut s = self.pos.div_ceil(SECTOR) * SECTOR;
            if s >= SIZE {
                s = SECTOR;
            }
            self.flash.erase(s as u32, (s + SECTOR) as u32).unwrap();
            self.pos = s;
        }
        self.counter += 1;
        let mut nonce = self.nonce;
        nonce[16..].copy_from_slice(&self.counter.to_le_bytes());
        self.seal_into_buf(&nonce, name, value);
        self.flash
            .write(self.pos as u32, &self.buf[..self.total])
            .unwrap();
        self.pos += self.total;
    }
}

fn bench(c: &mut Criterion) {
    let names = names();
    for len in [32usize, 256] {
        let value = vec![0xA5u8; len];
        let mut g = c.benchmark_group(format!("store/{len}B"));

        let mut s = ours();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("set", ours_label()), |b| {
            b.iter(|| {
                ours_set(&mut s, &names, i, &value);
                i += 1;
            })
        });
        let mut out = [0u8; 512];
        g.bench_function(BenchmarkId::new("get", ours_label()), |b| {
            b.iter(|| {
                i += 1;
                ours_get(&mut s, &names, i, &mut out)
            })
        });
        let mut f = Floor::new(len);
        g.bench_function(BenchmarkId::new("get", "floor (read + open)"), |b| {
            b.iter(|| f.get())
        });

        let mut t = theirs(cached());
        let mut buf = [0u8; 512];
        let mut j = 0;
        let peer = "sequential-storage (clear, all caches)";
        g.bench_function(BenchmarkId::new("set", peer), |b| {
            b.iter(|| {
                theirs_set(&mut t, &mut buf, j, &value);
                j += 1;
            })
        });
        for k in 0..KEYS {
            theirs_set(&mut t, &mut buf, k, &value);
        }
        g.bench_function(BenchmarkId::new("get", peer), |b| {
            b.iter(|| {
                j += 1;
                theirs_get(&mut t, &mut buf, j)
            })
        });
        g.finish();
    }
    side_by_side();
}

const N: usize = 20_000;
const ROUNDS: usize = 7;

/// Ops/s of `n` calls of `f(i)`.
fn rate(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let t0 = Instant::now();
    for i in 0..n {
        f(i);
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per-round ops/s of every contender, for one value length.
#[derive(Default)]
struct Rounds {
    ours_set: Vec<f64>,
    ours_get: Vec<f64>,
    floor_set: Vec<f64>,
    floor_get: Vec<f64>,
    floor_read: Vec<f64>,
    cached_set: Vec<f64>,
    cached_get: Vec<f64>,
    plain_set: Vec<f64>,
    plain_get: Vec<f64>,
}

/// Median of the per-round ratios `a[r] / b[r]`.
fn ratio(a: &[f64], b: &[f64]) -> f64 {
    median(a.iter().zip(b).map(|(x, y)| x / y).collect())
}

fn k(v: &[f64]) -> String {
    format!("{:.0}k", median(v.to_vec()) / 1e3)
}

fn side_by_side() {
    let names = names();
    println!(
        "\nstore side by side: {ROUNDS} interleaved rounds of {N} ops each (the uncached map {} ops), \
         after {} warm-up sets; {KEYS} keys rotating, 64 KiB RAM flash, 4 KiB sectors; \
         ops/s are medians, ratios are medians of the per-round ratios",
        N / 4,
        2 * N
    );
    println!("  cssf-store build: {}", ours_label());
    for len in [32usize, 256] {
        let value = vec![0x5Au8; len];
        let mut buf = [0u8; 512];
        let mut out = [0u8; 512];
        let mut o = ours();
        let mut c = theirs(cached());
        let mut p = theirs(plain());
        let mut f = Floor::new(len);
        for i in 0..2 * N {
            ours_set(&mut o, &names, i, &value);
            theirs_set(&mut c, &mut buf, i, &value);
            theirs_set(&mut p, &mut buf, i, &value);
            f.set(&names[i % KEYS], &value);
        }
        let (ow, oe) = (o.flash().bytes_written, o.flash().sectors_erased);
        let (cw, ce) = (c.flash().0.bytes_written, c.flash().0.sectors_erased);
        let mut r = Rounds::default();
        for _ in 0..ROUNDS {
            r.ours_set
                .push(rate(N, |i| ours_set(&mut o, &names, i, &value)));
            r.cached_set
                .push(rate(N, |i| theirs_set(&mut c, &mut buf, i, &value)));
            r.plain_set
                .push(rate(N / 4, |i| theirs_set(&mut p, &mut buf, i, &value)));
            r.floor_set
                .push(rate(N, |i| f.set(&names[i % KEYS], &value)));
            let mut sum = 0;
            r.ours_get
                .push(rate(N, |i| sum += ours_get(&mut o, &names, i, &mut out)));
            r.floor_get.push(rate(N, |_| sum += f.get()));
            r.floor_read.push(rate(N, |_| sum += f.read()));
            r.cached_get
                .push(rate(N, |i| sum += theirs_get(&mut c, &mut buf, i)));
            r.plain_get
                .push(rate(N / 4, |i| sum += theirs_get(&mut p, &mut buf, i)));
            assert_eq!(sum, (4 * N + N / 4) * len);
        }
        let total = (ROUNDS * N * len) as f64;
        let owa = (o.flash().bytes_written - ow) as f64 / total;
        let cwa = (c.flash().0.bytes_written - cw) as f64 / total;
        let (oe, ce) = (
            o.flash().sectors_erased - oe,
            c.flash().0.sectors_erased - ce,
        );
        println!(
            "  {len:>3} B set: ours {} ops/s | sequential-storage all caches {} ops/s, ratio {:.2}x | \
             uncached {} ops/s, ratio {:.2}x | floor (seal + program {} B) {} ops/s, set takes {:.2}x the floor",
            k(&r.ours_set),
            k(&r.cached_set),
            ratio(&r.ours_set, &r.cached_set),
            k(&r.plain_set),
            ratio(&r.ours_set, &r.plain_set),
            f.total,
            k(&r.floor_set),
            ratio(&r.floor_set, &r.ours_set),
        );
        println!(
            "  {len:>3} B get: ours {} ops/s | sequential-storage all caches {} ops/s, ratio {:.2}x | \
             uncached {} ops/s, ratio {:.2}x | floor (read {} B + open {} B, AD {RECORD_HEADER_LEN} B) {} ops/s, \
             get takes {:.2}x the floor | read alone {} ops/s, get takes {:.2}x it",
            k(&r.ours_get),
            k(&r.cached_get),
            ratio(&r.ours_get, &r.cached_get),
            k(&r.plain_get),
            ratio(&r.ours_get, &r.plain_get),
            f.total,
            f.body,
            k(&r.floor_get),
            ratio(&r.floor_get, &r.ours_get),
            k(&r.floor_read),
            ratio(&r.floor_read, &r.ours_get),
        );
        println!(
            "  {len:>3} B write amplification (flash bytes / value bytes, GC included): \
             ours {owa:.2} ({oe} erases), sequential-storage all caches {cwa:.2} ({ce} erases)"
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
