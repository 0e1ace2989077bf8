//! cssf-store beside sequential-storage's map, on the same RAM flash.
//!
//! Both run on `RamFlash` (64 KiB, 4 KiB sectors, 4-byte words); the
//! sequential-storage map is driven through a thin async adapter with a
//! trivial `block_on`. cssf-store seals every value (ChaCha20-Poly1305,
//! HMAC'd headers); sequential-storage stores it in clear with a CRC.
//!
//! Besides the criterion figures, a fixed-size run prints ops/s for both in
//! the same process, the ratio, and the write amplification (bytes
//! programmed into the flash, garbage collection included, per value byte).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::sync::Arc;
use std::task::Wake;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use cssf_store::flash::RamFlash;
use cssf_store::{Config, NoRollbackProtection, RootKey, Store};
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use sequential_storage::cache::key_pointers::ArrayKeyPointers;
use sequential_storage::cache::page_pointers::ArrayPagePointers;
use sequential_storage::cache::page_states::ArrayPageStates;
use sequential_storage::cache::{Cache, CacheImpl, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

const SIZE: usize = 64 * 1024;
const SECTOR: usize = 4096;
type Flash = RamFlash<SIZE, SECTOR, 4, 4>;
type Ours = Store<Flash, NoRollbackProtection, 64, { SIZE / SECTOR }>;
const KEYS: usize = 32;

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
/// sequential-storage with no cache.
type Plain = Cache<Uncached, Uncached, Uncached, u8>;
/// sequential-storage with all its caches, key pointers included (our store
/// keeps an in-RAM index too).
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
    (0..KEYS)
        .map(|i| format!("key/{i:02}").into_bytes())
        .collect()
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

fn bench(c: &mut Criterion) {
    let names = names();
    for len in [32usize, 256] {
        let value = vec![0xA5u8; len];
        let mut g = c.benchmark_group(format!("store/{len}B"));

        let mut s = ours();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("set", "cssf-store (sealed)"), |b| {
            b.iter(|| {
                ours_set(&mut s, &names, i, &value);
                i += 1;
            })
        });
        let mut out = [0u8; 512];
        g.bench_function(BenchmarkId::new("get", "cssf-store (sealed)"), |b| {
            b.iter(|| {
                i += 1;
                ours_get(&mut s, &names, i, &mut out)
            })
        });

        peer(
            &mut g,
            "sequential-storage (clear, uncached)",
            theirs(plain()),
            &value,
        );
        peer(
            &mut g,
            "sequential-storage (clear, cached)",
            theirs(cached()),
            &value,
        );
        g.finish();
    }
    side_by_side();
}

fn peer<C: CacheImpl<u8>>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut t: Theirs<C>,
    value: &[u8],
) {
    let mut buf = [0u8; 512];
    let mut j = 0;
    g.bench_function(BenchmarkId::new("set", name), |b| {
        b.iter(|| {
            theirs_set(&mut t, &mut buf, j, value);
            j += 1;
        })
    });
    for k in 0..KEYS {
        theirs_set(&mut t, &mut buf, k, value);
    }
    g.bench_function(BenchmarkId::new("get", name), |b| {
        b.iter(|| {
            j += 1;
            theirs_get(&mut t, &mut buf, j)
        })
    });
}

/// Timed fixed workloads in one run: (set ops/s, get ops/s, write amplification, erases).
struct Figures {
    set: f64,
    get: f64,
    wa: f64,
    erases: u64,
}

const N: usize = 20_000;

fn run_ours(len: usize) -> Figures {
    let names = names();
    let value = vec![0x5Au8; len];
    let mut s = ours();
    // Warm up into the steady state (every sector written, GC running).
    for i in 0..2 * N {
        ours_set(&mut s, &names, i, &value);
    }
    let (w0, e0) = (s.flash().bytes_written, s.flash().sectors_erased);
    let t0 = Instant::now();
    for i in 0..N {
        ours_set(&mut s, &names, i, &value);
    }
    let set = N as f64 / t0.elapsed().as_secs_f64();
    let wa = (s.flash().bytes_written - w0) as f64 / (N * len) as f64;
    let erases = s.flash().sectors_erased - e0;
    let mut out = [0u8; 512];
    let t0 = Instant::now();
    let mut sum = 0;
    for i in 0..N {
        sum += ours_get(&mut s, &names, i, &mut out);
    }
    let get = N as f64 / t0.elapsed().as_secs_f64();
    assert_eq!(sum, N * len);
    Figures {
        set,
        get,
        wa,
        erases,
    }
}

fn run_theirs<C: CacheImpl<u8>>(mut t: Theirs<C>, len: usize) -> Figures {
    let value = vec![0x5Au8; len];
    let mut buf = [0u8; 512];
    for i in 0..2 * N {
        theirs_set(&mut t, &mut buf, i, &value);
    }
    let (w0, e0) = (t.flash().0.bytes_written, t.flash().0.sectors_erased);
    let t0 = Instant::now();
    for i in 0..N {
        theirs_set(&mut t, &mut buf, i, &value);
    }
    let set = N as f64 / t0.elapsed().as_secs_f64();
    let wa = (t.flash().0.bytes_written - w0) as f64 / (N * len) as f64;
    let erases = t.flash().0.sectors_erased - e0;
    let t0 = Instant::now();
    let mut sum = 0;
    for i in 0..N {
        sum += theirs_get(&mut t, &mut buf, i);
    }
    let get = N as f64 / t0.elapsed().as_secs_f64();
    assert_eq!(sum, N * len);
    Figures {
        set,
        get,
        wa,
        erases,
    }
}

fn side_by_side() {
    println!("\nstore side by side ({N} ops each after {} warm-up sets, {KEYS} keys rotating, 64 KiB RAM flash, 4 KiB sectors):", 2 * N);
    for len in [32usize, 256] {
        let o = run_ours(len);
        for (name, p) in [
            (
                "sequential-storage, default uncached map (scans flash)",
                run_theirs(theirs(plain()), len),
            ),
            (
                "sequential-storage, all caches (page states, page and key pointers)",
                run_theirs(theirs(cached()), len),
            ),
        ] {
            println!(
                "  {len:>3} B set: cssf-store {:>9.0} ops/s, {name} {:>9.0} ops/s, ratio {:.2}x",
                o.set,
                p.set,
                o.set / p.set
            );
            println!(
                "  {len:>3} B get: cssf-store {:>9.0} ops/s, {name} {:>9.0} ops/s, ratio {:.2}x",
                o.get,
                p.get,
                o.get / p.get
            );
            println!(
                "  {len:>3} B write amplification (flash bytes / value bytes): cssf-store {:.2} ({} erases), {name} {:.2} ({} erases)",
                o.wa, o.erases, p.wa, p.erases
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
