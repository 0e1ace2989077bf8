//! The power-cut test of `power_cut.rs`, run through the async front end
//! (`AsyncStore`, feature `async`): the same workload, cut at EVERY program
//! word and erase, remounted (and cut again during the recovery mount for
//! every fifth cut), with the same checks. The flash is `SimFlash` behind an
//! async adapter that suspends once before every operation, so the shared
//! core really is suspended and resumed at each flash access. Plus: the
//! blocking and async front ends write byte-identical images for the same
//! workload and salt.

// Test helpers outside #[test] fns: panicking on failure is the point.
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod common;
#[path = "common/workload.rs"]
mod workload;

use common::{rng, SimFlash};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use cssf_store::{AsyncStore, Config, Error, RamCounter, Store, Transaction};
use embedded_storage_async::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use workload::{apply_model, workload, Model, Op, KEYS, ROOT};

/// A blocking flash behind the async traits; every operation returns
/// `Pending` once (waking itself) before it runs.
#[derive(Clone, Debug)]
struct YieldFlash<F>(F);

/// Returns `Pending` on its first poll, `Ready` on the second.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl<F: embedded_storage::nor_flash::ErrorType> ErrorType for YieldFlash<F> {
    type Error = F::Error;
}

impl<F: embedded_storage::nor_flash::NorFlash> ReadNorFlash for YieldFlash<F> {
    const READ_SIZE: usize = F::READ_SIZE;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        YieldOnce(false).await;
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: embedded_storage::nor_flash::NorFlash> NorFlash for YieldFlash<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        YieldOnce(false).await;
        self.0.erase(from, to)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        YieldOnce(false).await;
        self.0.write(offset, bytes)
    }
}

/// Polls `fut` to completion; counts the suspensions.
fn block_on<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        SUSPENSIONS.with(|c| c.set(c.get() + 1));
    }
}

thread_local! {
    static SUSPENSIONS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

type Sim = YieldFlash<SimFlash>;

fn run_op<const S: usize>(
    s: &mut AsyncStore<Sim, &mut RamCounter, 16, S>,
    op: &Op,
) -> Result<(), Error> {
    match op {
        Op::Set(k, v) => block_on(s.set(k, v)),
        Op::Remove(k) => match block_on(s.remove(k)) {
            Err(Error::NotFound) => Ok(()),
            r => r,
        },
        Op::Tx(ops) => {
            let mut tx = Transaction::<4>::new();
            for (k, v) in ops {
                match v {
                    Some(v) => tx.set(k, v)?,
                    None => tx.remove(k)?,
                }
            }
            block_on(s.commit(&tx))
        }
    }
}

fn read_state<const S: usize>(
    s: &mut AsyncStore<Sim, &mut RamCounter, 16, S>,
) -> Result<Model, Error> {
    let mut m = Model::new();
    let mut buf = [0u8; 128];
    for k in KEYS {
        match block_on(s.get(k, &mut buf)) {
            Ok(n) => {
                m.insert(k.to_vec(), buf[..n].to_vec());
            }
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let mut names = Vec::new();
    block_on(s.for_each_key(|n| names.push(n.map(<[u8]>::to_vec)))).unwrap();
    let mut names: Vec<Vec<u8>> = names.into_iter().collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        m.keys().cloned().collect::<Vec<_>>(),
        "for_each_key disagrees with get"
    );
    Ok(m)
}

/// Remounts `image` and checks it holds `before` or `after`; returns which.
fn check_recovery<const S: usize>(
    image: Vec<u8>,
    counter: &mut RamCounter,
    before: &Model,
    after: &Model,
    what: &str,
) -> (Vec<u8>, Model) {
    let flash = YieldFlash(SimFlash::from_image(image));
    let mut s: AsyncStore<Sim, &mut RamCounter, 16, S> = block_on(AsyncStore::mount(
        flash,
        &ROOT,
        counter,
        Config::new(),
        &mut rng(),
    ))
    .unwrap_or_else(|e| panic!("{what}: remount failed: {e}"));
    assert!(
        !s.is_degraded(),
        "{what}: degraded after a power cut: {:?}",
        s.stats()
    );
    assert_eq!(s.stats().tampered_records, 0, "{what}");
    let got = read_state(&mut s).unwrap_or_else(|e| panic!("{what}: read failed: {e}"));
    assert!(
        got == *before || got == *after,
        "{what}: state {got:?}\n is neither before {before:?}\n nor after {after:?}"
    );
    (s.flash().0.data.clone(), got)
}

fn cut_everywhere<const S: usize>(max_val: usize) {
    let ops = workload(max_val);
    let mut models = vec![Model::new()];
    for op in &ops {
        let mut m = models.last().unwrap().clone();
        apply_model(&mut m, op);
        models.push(m);
    }
    // Dry run: count events, check the workload itself and that it collects garbage.
    let mut counter = RamCounter::default();
    let mut s: AsyncStore<Sim, &mut RamCounter, 16, S> = block_on(AsyncStore::mount(
        YieldFlash(SimFlash::new(S)),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    ))
    .unwrap();
    for (i, op) in ops.iter().enumerate() {
        run_op(&mut s, op).unwrap_or_else(|e| panic!("op {i} {op:?}: {e}"));
    }
    assert_eq!(read_state(&mut s).unwrap(), *models.last().unwrap());
    let total = s.flash().0.events;
    assert!(
        s.stats().gcs >= 3,
        "workload must exercise GC: {:?}",
        s.stats()
    );
    drop(s);

    let mut nested = 0u64;
    for n in 0..=total {
        let mut counter = RamCounter::default();
        let mut flash = SimFlash::new(S);
        flash.budget = Some(n);
        flash.rng = n.wrapping_mul(0x9E37_79B9).wrapping_add(1);
        let (image, k) = match block_on(AsyncStore::<Sim, &mut RamCounter, 16, S>::mount(
            YieldFlash(flash.clone()),
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rng(),
        )) {
            Err(_) => (vec![0xFF; 0], 0),
            Ok(mut s) => {
                let mut cut_at = ops.len();
                for (i, op) in ops.iter().enumerate() {
                    if run_op(&mut s, op).is_err() {
                        cut_at = i;
                        break;
                    }
                }
                (s.flash().0.data.clone(), cut_at)
            }
        };
        if image.is_empty() {
            // Cut during the first mount: the image is what the flash holds.
            continue;
        }
        let (before, after) = (&models[k], &models[(k + 1).min(ops.len())]);
        let what = format!("S={S} cut at event {n} (op {k} {:?})", ops.get(k));
        let (img2, _) =
            check_recovery::<S>(image.clone(), &mut counter.clone(), before, after, &what);
        // The recovered store keeps working: cut again during recovery mount.
        if n % 5 == 0 {
            let probe = SimFlash::from_image(image.clone());
            let mut c2 = counter;
            let s = block_on(AsyncStore::<Sim, &mut RamCounter, 16, S>::mount(
                YieldFlash(probe.clone()),
                &ROOT,
                &mut c2,
                Config::new(),
                &mut rng(),
            ))
            .unwrap();
            let rec_events = s.flash().0.events;
            drop(s);
            for m in 0..rec_events {
                let mut f = probe.clone();
                f.budget = Some(m);
                f.rng = m + 7;
                let mut c3 = counter;
                // Ok or cut by the power: either way take the flash as it is.
                let _ = block_on(AsyncStore::<
                    YieldFlash<&mut SimFlash>,
                    &mut RamCounter,
                    16,
                    S,
                >::mount(
                    YieldFlash(&mut f),
                    &ROOT,
                    &mut c3,
                    Config::new(),
                    &mut rng(),
                ));
                let img = f.data.clone();
                let what2 = format!("{what}, then cut at recovery event {m}");
                check_recovery::<S>(img, &mut c3, before, after, &what2);
                nested += 1;
            }
        }
        // And it accepts new writes and sees them after another remount.
        let mut c4 = counter;
        let mut s: AsyncStore<Sim, &mut RamCounter, 16, S> = block_on(AsyncStore::mount(
            YieldFlash(SimFlash::from_image(img2)),
            &ROOT,
            &mut c4,
            Config::new(),
            &mut rng(),
        ))
        .unwrap();
        let mut state =
            read_state(&mut s).unwrap_or_else(|e| panic!("{what}: second remount: {e}"));
        for (i, key) in KEYS.iter().enumerate().take(3) {
            block_on(s.set(key, &[i as u8; 12]))
                .unwrap_or_else(|e| panic!("{what}: write after recovery: {e}"));
            state.insert(key.to_vec(), vec![i as u8; 12]);
        }
        let img3 = s.flash().0.data.clone();
        drop(s);
        let mut s: AsyncStore<Sim, &mut RamCounter, 16, S> = block_on(AsyncStore::mount(
            YieldFlash(SimFlash::from_image(img3)),
            &ROOT,
            &mut c4,
            Config::new(),
            &mut rng(),
        ))
        .unwrap();
        assert_eq!(
            read_state(&mut s).unwrap(),
            state,
            "{what}: after writes and remount"
        );
    }
    eprintln!(
        "S={S}: cut at each of {} events, {nested} nested cuts during recovery",
        total + 1
    );
}

/// A fixed salt source, so two mounts draw the same salt.
struct FixedRng;

impl rand_core::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        0x5EED_5A17
    }
    fn next_u64(&mut self) -> u64 {
        0x5EED_5A17_5EED_5A17
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0xA5);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for FixedRng {}

/// One core, two front ends: the same workload with the same salt programs
/// the same bytes in the same order, and the async run really suspends.
#[test]
fn blocking_and_async_write_identical_images() {
    let ops = workload(40);
    let mut c1 = RamCounter::default();
    let mut b: Store<SimFlash, &mut RamCounter, 16, 3> = Store::mount(
        SimFlash::new(3),
        &ROOT,
        &mut c1,
        Config::new(),
        &mut FixedRng,
    )
    .unwrap();
    let mut c2 = RamCounter::default();
    let before = SUSPENSIONS.with(core::cell::Cell::get);
    let mut a: AsyncStore<Sim, &mut RamCounter, 16, 3> = block_on(AsyncStore::mount(
        YieldFlash(SimFlash::new(3)),
        &ROOT,
        &mut c2,
        Config::new(),
        &mut FixedRng,
    ))
    .unwrap();
    for op in &ops {
        let r = match op {
            Op::Set(k, v) => b.set(k, v),
            Op::Remove(k) => match b.remove(k) {
                Err(Error::NotFound) => Ok(()),
                r => r,
            },
            Op::Tx(t) => {
                let mut tx = Transaction::<4>::new();
                for (k, v) in t {
                    match v {
                        Some(v) => tx.set(k, v).unwrap(),
                        None => tx.remove(k).unwrap(),
                    }
                }
                b.commit(&tx)
            }
        };
        assert_eq!(r, run_op(&mut a, op), "{op:?}");
    }
    assert!(b.stats().gcs >= 3);
    assert_eq!(b.stats(), a.stats());
    assert_eq!(b.flash().events, a.flash().0.events);
    assert!(b.flash().data == a.flash().0.data, "images differ");
    // Every read, write and erase suspended once.
    assert!(SUSPENSIONS.with(core::cell::Cell::get) - before > a.flash().0.events / 16);
    drop((a, b));
    assert_eq!(format!("{c1:?}"), format!("{c2:?}"));
}

#[test]
fn power_cut_at_every_event_three_sectors() {
    cut_everywhere::<3>(40);
}

#[test]
fn power_cut_at_every_event_two_sectors() {
    cut_everywhere::<2>(16);
}

/// An operation whose future is dropped half way (cancelled) leaves the
/// in-RAM state out of step with the flash: every later call answers
/// `Interrupted` until the store is mounted again, which then works.
#[test]
fn a_cancelled_operation_stops_the_store_until_remount() {
    let mut c = RamCounter::default();
    let mut a: AsyncStore<Sim, &mut RamCounter, 16, 3> = block_on(AsyncStore::mount(
        YieldFlash(SimFlash::new(3)),
        &ROOT,
        &mut c,
        Config::new(),
        &mut rng(),
    ))
    .unwrap();
    block_on(a.set(b"psk/a", b"first")).unwrap();
    {
        // Poll a set once (it stops at its first flash access), then drop it.
        let mut fut = pin!(a.set(b"psk/a", b"second"));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    let mut buf = [0u8; 16];
    assert_eq!(block_on(a.get(b"psk/a", &mut buf)), Err(Error::Interrupted));
    assert_eq!(block_on(a.set(b"psk/b", b"x")), Err(Error::Interrupted));
    let (flash, c) = a.into_parts();
    let mut a: AsyncStore<Sim, &mut RamCounter, 16, 3> = block_on(AsyncStore::mount(
        flash,
        &ROOT,
        c,
        Config::new(),
        &mut rng(),
    ))
    .unwrap();
    let n = block_on(a.get(b"psk/a", &mut buf)).unwrap();
    assert!(&buf[..n] == b"first" || &buf[..n] == b"second");
    block_on(a.set(b"psk/b", b"x")).unwrap();
}
