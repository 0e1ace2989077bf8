//! Mounts arbitrary flash images (raw, or a valid image with arbitrary bytes
//! changed) and runs arbitrary operations on them: nothing may panic, and a
//! mounted store stays consistent with itself across a remount.
#![no_main]

use arbitrary::Arbitrary;
use cssf_store::flash::RamFlash;
use cssf_store::{Config, RamCounter, RootKey, Store, Transaction};
use libfuzzer_sys::fuzz_target;

const SIZE: usize = 3 * 512;

/// Mount salts for the fuzzer: deterministic (so a crash reproduces), a new
/// stream per mount.
struct SaltRng(u64);

impl rand_core::RngCore for SaltRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 ^ (self.0 >> 29)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for c in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for SaltRng {}

fn salt() -> SaltRng {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    SaltRng(N.fetch_add(1, Ordering::Relaxed))
}
type Flash = RamFlash<SIZE, 512, 4, 1>;
type S<'c> = Store<Flash, &'c mut RamCounter, 8, 3>;

#[derive(Arbitrary, Debug)]
enum Op {
    Set(u8, Vec<u8>),
    Remove(u8),
    Get(u8, u8),
    Tx(Vec<(u8, Option<Vec<u8>>)>),
    Iter,
    Remount,
    Repair,
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw_image: bool,
    image: Vec<u8>,
    setup: Vec<Op>,
    patches: Vec<(u16, u8)>,
    counter: u8,
    plain: bool,
    ops: Vec<Op>,
}

fn key(k: u8) -> [u8; 2] {
    [b'k', k % 12]
}

fn run(store: S<'_>, ops: &[Op], root: &RootKey, cfg: Config) -> Flash {
    let mut store = store;
    let mut buf = [0u8; 256];
    for op in ops.iter().take(64) {
        match op {
            Op::Set(k, v) => {
                let _ = store.set(&key(*k), v.get(..v.len().min(200)).unwrap_or(&[]));
            }
            Op::Remove(k) => {
                let _ = store.remove(&key(*k));
            }
            Op::Get(k, n) => {
                let n = usize::from(*n).min(buf.len());
                let _ = store.get(&key(*k), &mut buf[..n]);
            }
            Op::Tx(items) => {
                let keys: Vec<[u8; 2]> = items.iter().map(|(k, _)| key(*k)).collect();
                let mut tx = Transaction::<4>::new();
                for ((_, v), k) in items.iter().zip(&keys) {
                    let _ = match v {
                        Some(v) => tx.set(k, v.get(..v.len().min(100)).unwrap_or(&[])),
                        None => tx.remove(k),
                    };
                }
                let _ = store.commit(&tx);
            }
            Op::Iter => {
                let _ = store.for_each_key(|_| {});
            }
            Op::Repair => {
                let _ = store.repair();
            }
            Op::Remount => {
                let (flash, counter) = store.into_parts();
                let copy = flash.clone();
                match S::mount(flash, root, counter, cfg, &mut salt()) {
                    Ok(s) => store = s,
                    Err(_) => return copy,
                }
            }
        }
    }
    store.into_parts().0
}

fuzz_target!(|input: Input| {
    let root = RootKey([0x42; 32]);
    let cfg = Config::new().with_plain_names(input.plain);
    let mut counter = RamCounter::default();
    let mut flash = Flash::new();
    if input.raw_image {
        for (d, s) in flash.image_mut().iter_mut().zip(&input.image) {
            *d = *s;
        }
    } else if let Ok(s) = S::mount(flash.clone(), &root, &mut counter, cfg, &mut salt()) {
        flash = run(s, &input.setup, &root, cfg);
        for (off, x) in input.patches.iter().take(16) {
            if let Some(b) = flash.image_mut().get_mut(usize::from(*off) % SIZE) {
                *b ^= x;
            }
        }
    }
    counter.value = counter.value.saturating_sub(u64::from(input.counter % 4));
    if let Ok(s) = S::mount(flash, &root, &mut counter, cfg, &mut salt()) {
        let flash = run(s, &input.ops, &root, cfg);
        // Whatever the store wrote, it must mount again.
        let _ = S::mount(flash, &root, &mut counter, cfg, &mut salt());
    }
});
