//! proptest: long random operation sequences against a `BTreeMap` model,
//! remounting at random points, with hidden and with plain key names.

// Test helpers outside #[test] fns: panicking on failure is the point.
#![allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{rng, SimFlash};
use cssf_store::{Config, Error, RamCounter, RootKey, Store, Transaction};
use proptest::prelude::*;

const SECTORS: usize = 4;
type S<'c> = Store<SimFlash, &'c mut RamCounter, 16, SECTORS>;

#[derive(Clone, Debug)]
enum Op {
    Set(u8, Vec<u8>),
    Remove(u8),
    Tx(Vec<(u8, Option<Vec<u8>>)>),
    Remount,
}

fn key(k: u8) -> Vec<u8> {
    format!("key/{k}").into_bytes()
}

fn op() -> impl Strategy<Value = Op> {
    let val = prop::collection::vec(any::<u8>(), 0..120);
    prop_oneof![
        6 => (0u8..10, val.clone()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (0u8..10).prop_map(Op::Remove),
        2 => prop::collection::vec((0u8..10, prop::option::of(prop::collection::vec(any::<u8>(), 0..60))), 1..5)
            .prop_map(Op::Tx),
        1 => Just(Op::Remount),
    ]
}

fn check(s: &mut S<'_>, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut buf = [0u8; 256];
    for k in 0..10 {
        let kk = key(k);
        match (s.get(&kk, &mut buf), model.get(&kk)) {
            (Ok(n), Some(v)) => assert_eq!(&buf[..n], &v[..], "key {k}"),
            (Err(Error::NotFound), None) => {}
            (got, want) => panic!("key {k}: got {got:?}, model {want:?}"),
        }
    }
    assert_eq!(s.len(), model.len());
    let mut names = Vec::new();
    s.for_each_key(|n| names.push(n.unwrap().to_vec())).unwrap();
    names.sort();
    assert_eq!(names, model.keys().cloned().collect::<Vec<_>>());
}

fn run(ops: &[Op], plain: bool) {
    let root = RootKey([9; 32]);
    let cfg = Config::new().with_plain_names(plain);
    let mut counter = RamCounter::default();
    let mut model = BTreeMap::new();
    let mut flash = Some(SimFlash::new(SECTORS));
    let mut s: Option<S<'_>> = None;
    let mut c = Some(&mut counter);
    for op in ops {
        let st = match &mut s {
            Some(st) => st,
            None => {
                s = Some(
                    Store::mount(
                        flash.take().unwrap(),
                        &root,
                        c.take().unwrap(),
                        cfg,
                        &mut rng(),
                    )
                    .unwrap(),
                );
                s.as_mut().unwrap()
            }
        };
        match op {
            Op::Set(k, v) => match st.set(&key(*k), v) {
                Ok(()) => {
                    model.insert(key(*k), v.clone());
                }
                Err(Error::Full) => {}
                Err(e) => panic!("set: {e}"),
            },
            Op::Remove(k) => match st.remove(&key(*k)) {
                Ok(()) => assert!(model.remove(&key(*k)).is_some()),
                Err(Error::NotFound) => assert!(!model.contains_key(&key(*k))),
                Err(e) => panic!("remove: {e}"),
            },
            Op::Tx(ops) => {
                let keys: Vec<Vec<u8>> = ops.iter().map(|(k, _)| key(*k)).collect();
                let mut tx = Transaction::<4>::new();
                for ((_, v), k) in ops.iter().zip(&keys) {
                    match v {
                        Some(v) => tx.set(k, v).unwrap(),
                        None => tx.remove(k).unwrap(),
                    }
                }
                match st.commit(&tx) {
                    Ok(()) => {
                        for ((_, v), k) in ops.iter().zip(&keys) {
                            match v {
                                Some(v) => model.insert(k.clone(), v.clone()),
                                None => model.remove(k),
                            };
                        }
                    }
                    Err(Error::Full | Error::TransactionTooLarge) => {}
                    Err(e) => panic!("commit: {e}"),
                }
            }
            Op::Remount => {
                let (f, cc) = s.take().unwrap().into_parts();
                flash = Some(f);
                c = Some(cc);
                let st: S<'_> = Store::mount(
                    flash.take().unwrap(),
                    &root,
                    c.take().unwrap(),
                    cfg,
                    &mut rng(),
                )
                .unwrap();
                assert!(!st.is_degraded());
                s = Some(st);
            }
        }
        check(s.as_mut().unwrap(), &model);
    }
    if let Some(st) = s {
        let counts: Vec<u32> = st.erase_counts().collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(
            max - min <= 1,
            "round robin spreads erases evenly: {counts:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..250)) {
        run(&ops, false);
    }

    #[test]
    fn store_matches_model_plain_names(ops in prop::collection::vec(op(), 1..120)) {
        run(&ops, true);
    }
}
