//! Power cuts at the trusted counter: for EVERY counter update of a
//! workload of sets, removes, transactions and garbage collections (the
//! reservations before records are written and the confirmations after
//! operations), the power fails there, with the update either persisted or
//! lost. The store must stop writing, and the remount (with the counter as
//! the cut left it) must not report a rollback, must not be degraded, must
//! hold the state before or after the interrupted operation, and must take
//! writes again.

// Test helpers outside #[test] fns: panicking on failure is the point.
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod common;

use std::collections::BTreeMap;

use common::{rng, SimFlash};
use cssf_store::{Config, Error, MonotonicCounter, RamCounter, RootKey, Store, Transaction};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
const ROOT: RootKey = RootKey([0x3C; 32]);
const S: usize = 3;
const KEYS: [&[u8]; 5] = [b"psk/a", b"psk/b", b"tok/1", b"tok/2", b"cfg"];

#[derive(Clone, Debug)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Tx(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

fn workload() -> Vec<Op> {
    let mut r = 777u64;
    let mut rnd = move || {
        r = r
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (r >> 33) as usize
    };
    (0..40)
        .map(|i| {
            let k = KEYS[rnd() % KEYS.len()].to_vec();
            let v: Vec<u8> = (0..(rnd() % 60)).map(|j| (i * 5 + j) as u8).collect();
            match i % 5 {
                2 => Op::Remove(k),
                4 => Op::Tx(vec![
                    (k, Some(v)),
                    (KEYS[rnd() % KEYS.len()].to_vec(), None),
                ]),
                _ => Op::Set(k, v),
            }
        })
        .collect()
}

fn apply(m: &mut Model, op: &Op) {
    match op {
        Op::Set(k, v) => {
            m.insert(k.clone(), v.clone());
        }
        Op::Remove(k) => {
            m.remove(k);
        }
        Op::Tx(items) => {
            for (k, v) in items {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
    }
}

/// The counter of one boot over the persistent `ram`: `left` updates go
/// through, the next one is where the power fails (persisted or not).
struct CutCounter<'a> {
    ram: &'a mut RamCounter,
    left: Option<u64>,
    persisted: bool,
    updates: u64,
}

impl MonotonicCounter for CutCounter<'_> {
    type Error = ();
    fn read(&mut self) -> Result<u64, ()> {
        Ok(self.ram.value)
    }
    fn advance_to(&mut self, v: u64) -> Result<(), ()> {
        self.updates += 1;
        match self.left {
            Some(0) => {
                if self.persisted {
                    self.ram.advance_to(v).unwrap();
                }
                Err(())
            }
            Some(n) => {
                self.left = Some(n - 1);
                self.ram.advance_to(v).unwrap();
                Ok(())
            }
            None => {
                self.ram.advance_to(v).unwrap();
                Ok(())
            }
        }
    }
}

type St<'a> = Store<SimFlash, CutCounter<'a>, 16, S>;

fn run(s: &mut St<'_>, op: &Op) -> Result<(), Error> {
    match op {
        Op::Set(k, v) => s.set(k, v),
        Op::Remove(k) => match s.remove(k) {
            Err(Error::NotFound) => Ok(()),
            r => r,
        },
        Op::Tx(items) => {
            let mut tx = Transaction::<4>::new();
            for (k, v) in items {
                match v {
                    Some(v) => tx.set(k, v)?,
                    None => tx.remove(k)?,
                }
            }
            s.commit(&tx)
        }
    }
}

fn read_all(s: &mut Store<SimFlash, &mut RamCounter, 16, S>) -> Model {
    let mut m = Model::new();
    let mut buf = [0u8; 128];
    for k in KEYS {
        match s.get(k, &mut buf) {
            Ok(n) => {
                m.insert(k.to_vec(), buf[..n].to_vec());
            }
            Err(Error::NotFound) => {}
            Err(e) => panic!("read {k:?}: {e}"),
        }
    }
    m
}

#[test]
fn every_counter_update_cut_recovers() {
    let ops = workload();
    // Dry run: the models after each operation and how many counter
    // updates the whole workload makes.
    let mut models = vec![Model::new()];
    let mut ram = RamCounter::default();
    let total = {
        let c = CutCounter {
            ram: &mut ram,
            left: None,
            persisted: false,
            updates: 0,
        };
        let mut s: St<'_> =
            Store::mount(SimFlash::new(S), &ROOT, c, Config::new(), &mut rng()).unwrap();
        for op in &ops {
            run(&mut s, op).unwrap();
            let mut m = models.last().unwrap().clone();
            apply(&mut m, op);
            models.push(m);
        }
        assert!(s.stats().gcs > 0, "the workload must collect sectors");
        s.into_parts().1.updates
    };
    assert!(total > ops.len() as u64, "{total} counter updates");
    let mut cuts = 0;
    for k in 0..total {
        for persisted in [false, true] {
            let what = format!("cut at counter update {k} (persisted: {persisted})");
            let mut ram = RamCounter::default();
            let c = CutCounter {
                ram: &mut ram,
                left: Some(k),
                persisted,
                updates: 0,
            };
            let (image, at) = match Store::<SimFlash, CutCounter<'_>, 16, S>::mount(
                SimFlash::new(S),
                &ROOT,
                c,
                Config::new(),
                &mut rng(),
            ) {
                Err(Error::Counter) => (SimFlash::new(S).data, 0),
                Err(e) => panic!("{what}: first mount: {e}"),
                Ok(mut s) => {
                    let mut at = ops.len();
                    for (i, op) in ops.iter().enumerate() {
                        match run(&mut s, op) {
                            Ok(()) => {}
                            Err(Error::Counter) => {
                                at = i;
                                break;
                            }
                            Err(e) => panic!("{what}: op {i}: {e}"),
                        }
                    }
                    assert!(at < ops.len(), "{what}: the cut was never reached");
                    (s.flash().data.clone(), at)
                }
            };
            cuts += 1;
            // Power back, the counter as the cut left it.
            let mut s: Store<SimFlash, &mut RamCounter, 16, S> = Store::mount(
                SimFlash::from_image(image),
                &ROOT,
                &mut ram,
                Config::new(),
                &mut rng(),
            )
            .unwrap_or_else(|e| panic!("{what} (op {at}): remount: {e}"));
            assert!(!s.is_degraded(), "{what}: degraded: {:?}", s.stats());
            let got = read_all(&mut s);
            let (before, after) = (&models[at], &models[(at + 1).min(ops.len())]);
            assert!(
                got == *before || got == *after,
                "{what}: op {at}: state {got:?} is neither before {before:?} nor after {after:?}"
            );
            s.set(b"cfg", b"after the cut").unwrap();
            let image = s.flash().data.clone();
            drop(s);
            let mut s: Store<SimFlash, &mut RamCounter, 16, S> = Store::mount(
                SimFlash::from_image(image),
                &ROOT,
                &mut ram,
                Config::new(),
                &mut rng(),
            )
            .unwrap_or_else(|e| panic!("{what}: second remount: {e}"));
            let mut buf = [0u8; 32];
            assert_eq!(s.get(b"cfg", &mut buf), Ok(13), "{what}");
        }
    }
    assert_eq!(cuts, 2 * total);
}
