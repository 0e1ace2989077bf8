//! Capacity limits under power cuts: a store filled to the point where writes
//! are refused with `Full` is cut at every event of the garbage collections
//! that follow (and again during the recovery mount); it must remount with
//! every committed value, and accept writes again after removes. The `KEYS`
//! limit is enforced before anything is written, so the store always mounts
//! with the same `KEYS`, also after a cut.

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
use cssf_store::{Config, Error, RamCounter, RootKey, Store, Transaction};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
const ROOT: RootKey = RootKey([0x33; 32]);
const K: usize = 16;

#[derive(Clone, Debug)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Tx(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

fn key(i: usize) -> Vec<u8> {
    format!("key/{i:02}").into_bytes()
}

fn value(i: usize, round: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + round * 7 + j) as u8).collect()
}

fn run<F: embedded_storage::nor_flash::NorFlash, const N: usize, const S: usize>(
    s: &mut Store<F, &mut RamCounter, N, S>,
    op: &Op,
) -> Result<(), Error> {
    match op {
        Op::Set(k, v) => s.set(k, v),
        Op::Remove(k) => s.remove(k),
        Op::Tx(ops) => {
            let mut tx = Transaction::<4>::new();
            for (k, v) in ops {
                match v {
                    Some(v) => tx.set(k, v)?,
                    None => tx.remove(k)?,
                }
            }
            s.commit(&tx)
        }
    }
}

fn apply(m: &mut Model, op: &Op) {
    let mut one = |k: &Vec<u8>, v: &Option<Vec<u8>>| match v {
        Some(v) => {
            m.insert(k.clone(), v.clone());
        }
        None => {
            m.remove(k);
        }
    };
    match op {
        Op::Set(k, v) => one(k, &Some(v.clone())),
        Op::Remove(k) => one(k, &None),
        Op::Tx(ops) => ops.iter().for_each(|(k, v)| one(k, v)),
    }
}

fn read_all<const N: usize, const S: usize>(
    s: &mut Store<SimFlash, &mut RamCounter, N, S>,
    names: usize,
) -> Result<Model, Error> {
    let mut m = Model::new();
    let mut buf = [0u8; 256];
    for name in (0..names).map(key).chain([b"after".to_vec()]) {
        match s.get(&name, &mut buf) {
            Ok(n) => {
                m.insert(name, buf[..n].to_vec());
            }
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(m)
}

/// Runs `ops` on a fresh store; returns the ops the store accepted (those
/// refused with `Full` or `IndexFull` changed nothing and are dropped), the
/// model after each accepted op, and the flash event count after each.
fn dry_run<const N: usize, const S: usize>(ops: &[Op]) -> (Vec<Op>, Vec<Model>, Vec<u64>, u32) {
    let mut counter = RamCounter::default();
    let mut s: Store<SimFlash, &mut RamCounter, N, S> = Store::mount(
        SimFlash::new(S),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    let (mut kept, mut models, mut events) = (Vec::new(), vec![Model::new()], vec![0]);
    let mut refused = 0;
    for op in ops {
        let before = s.flash().events;
        match run(&mut s, op) {
            Ok(()) => {
                kept.push(op.clone());
                let mut m = models.last().unwrap().clone();
                apply(&mut m, op);
                models.push(m);
                events.push(s.flash().events);
            }
            Err(Error::Full | Error::IndexFull) => {
                assert_eq!(
                    s.flash().events,
                    before,
                    "S={S}: a refused {op:?} wrote to the flash"
                );
                refused += 1;
            }
            Err(e) => panic!("S={S}: {op:?}: {e}"),
        }
    }
    assert_eq!(read_all(&mut s, 2 * K).unwrap(), *models.last().unwrap());
    (kept, models, events, refused)
}

/// Mounts `image`, checks it holds `before` or `after` and is not degraded;
/// returns the store.
fn recover<'c, const N: usize, const S: usize>(
    image: Vec<u8>,
    counter: &'c mut RamCounter,
    before: &Model,
    after: &Model,
    what: &str,
) -> Store<SimFlash, &'c mut RamCounter, N, S> {
    let mut s: Store<SimFlash, &mut RamCounter, N, S> = Store::mount(
        SimFlash::from_image(image),
        &ROOT,
        counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap_or_else(|e| panic!("{what}: remount failed: {e}"));
    assert!(!s.is_degraded(), "{what}: degraded: {:?}", s.stats());
    let got = read_all(&mut s, 2 * K).unwrap_or_else(|e| panic!("{what}: read failed: {e}"));
    assert!(
        got == *before || got == *after,
        "{what}: state {got:?}\n is neither before {before:?}\n nor after {after:?}"
    );
    s
}

/// Cuts the power at every event from `from_op` on (and, for every
/// `nested_every`-th cut, at every event of the recovery mount); after each
/// cut the store must hold the state before or after the interrupted op, and
/// after removing two keys it must accept a write of the largest size used.
fn cut_from<const N: usize, const S: usize>(
    ops: &[Op],
    from_op: usize,
    nested_every: u64,
    big: usize,
) -> (u64, u64) {
    let (ops, models, events, refused) = dry_run::<N, S>(ops);
    assert!(
        refused > 0,
        "S={S}: the workload must reach the refusal point"
    );
    let from = events[from_op.min(ops.len())];
    let total = *events.last().unwrap();
    let mut nested = 0u64;
    for n in from..total {
        let mut counter = RamCounter::default();
        let mut flash = SimFlash::new(S);
        flash.budget = Some(n);
        flash.rng = n.wrapping_mul(0x9E37_79B9).wrapping_add(3);
        let mut s: Store<SimFlash, &mut RamCounter, N, S> =
            Store::mount(flash, &ROOT, &mut counter, Config::new(), &mut rng()).unwrap();
        let mut k = ops.len();
        for (i, op) in ops.iter().enumerate() {
            if run(&mut s, op).is_err() {
                k = i;
                break;
            }
        }
        assert!(k < ops.len(), "S={S}: cut {n} never happened");
        let image = s.flash().data.clone();
        drop(s);
        let (before, after) = (&models[k], &models[k + 1]);
        let what = format!("S={S} cut at event {n} (op {k} {:?})", ops[k]);
        if n % nested_every == 0 {
            let mut c2 = counter;
            let probe = recover::<N, S>(image.clone(), &mut c2, before, after, &what);
            let rec_events = probe.flash().events;
            drop(probe);
            for m in 0..rec_events {
                let mut f = SimFlash::from_image(image.clone());
                f.budget = Some(m);
                f.rng = m + 11;
                let mut c3 = counter;
                let _ = Store::<&mut SimFlash, &mut RamCounter, N, S>::mount(
                    &mut f,
                    &ROOT,
                    &mut c3,
                    Config::new(),
                    &mut rng(),
                );
                let what2 = format!("{what}, then cut at recovery event {m}");
                let mut s = recover::<N, S>(f.data.clone(), &mut c3, before, after, &what2);
                writable_after_removes(&mut s, &what2, big);
                nested += 1;
            }
        }
        let mut c4 = counter;
        let mut s = recover::<N, S>(image, &mut c4, before, after, &what);
        let state = writable_after_removes(&mut s, &what, big);
        let img = s.flash().data.clone();
        drop(s);
        let mut s: Store<SimFlash, &mut RamCounter, N, S> = Store::mount(
            SimFlash::from_image(img),
            &ROOT,
            &mut c4,
            Config::new(),
            &mut rng(),
        )
        .unwrap();
        assert_eq!(
            read_all(&mut s, 2 * K).unwrap(),
            state,
            "{what}: after remount"
        );
    }
    (total - from, nested)
}

/// Removes keys one by one until a set of `big` bytes succeeds: it must,
/// at the latest once the store is empty (the store is never stuck).
fn writable_after_removes<const N: usize, const S: usize>(
    s: &mut Store<SimFlash, &mut RamCounter, N, S>,
    what: &str,
    big: usize,
) -> Model {
    let mut state = read_all(s, 2 * K).unwrap();
    let names: Vec<Vec<u8>> = state.keys().cloned().collect();
    let v = vec![0x5C; big];
    let mut names = names.into_iter();
    loop {
        match s.set(b"after", &v) {
            Ok(()) => break,
            Err(Error::Full) => {
                let k = names
                    .next()
                    .unwrap_or_else(|| panic!("{what}: an empty store refuses a write"));
                s.remove(&k)
                    .unwrap_or_else(|e| panic!("{what}: remove after recovery: {e}"));
                state.remove(&k);
            }
            Err(e) => panic!("{what}: write after recovery: {e}"),
        }
    }
    state.insert(b"after".to_vec(), v);
    assert_eq!(
        read_all(s, 2 * K).unwrap(),
        state,
        "{what}: state after removes"
    );
    state
}

/// Fill with `len`-byte values until `Full`, then overwrite every key a few
/// times (each overwrite accepted or refused): the overwrites force garbage
/// collections of sectors that are almost all live data.
fn fill_workload(len: usize, rounds: usize) -> Vec<Op> {
    let mut ops: Vec<Op> = (0..K).map(|i| Op::Set(key(i), value(i, 0, len))).collect();
    for r in 1..=rounds {
        for i in 0..K {
            ops.push(if (i + r) % 5 == 0 {
                Op::Tx(vec![
                    (key(i), Some(value(i, r, len))),
                    (key((i + 1) % K), Some(value(i + 1, r, len / 2))),
                ])
            } else {
                Op::Set(key(i), value(i, r, len - (i + r) % 3))
            });
        }
    }
    ops
}

fn full_store_gc_survives_cuts<const S: usize>(len: usize, nested_every: u64) {
    let ops = fill_workload(len, 3);
    let (kept, _, _, refused) = dry_run::<K, S>(&ops);
    // The fill phase stops at the refusal point: not every key fits.
    let filled = kept.iter().take_while(|o| matches!(o, Op::Set(..))).count();
    assert!(
        filled < K,
        "S={S}: the fill must reach Full ({refused} refused)"
    );
    let (cuts, nested) = cut_from::<K, S>(&ops, filled.saturating_sub(1), nested_every, len);
    eprintln!("S={S}, {len} B values: {cuts} cuts, {nested} nested cuts during recovery");
}

#[test]
fn full_store_gc_survives_power_cuts_two_sectors() {
    full_store_gc_survives_cuts::<2>(60, 19);
}

#[test]
fn full_store_gc_survives_power_cuts_three_sectors() {
    full_store_gc_survives_cuts::<3>(60, 19);
}

#[test]
fn full_store_with_large_values_survives_power_cuts() {
    // 160 B under 6-byte names: a 232-byte record, near the largest a
    // 1 KiB sector takes with the headroom for `GC_CUTS` torn copies.
    full_store_gc_survives_cuts::<3>(160, 5);
}

/// A value too large for any sector once the collection headroom is kept is
/// refused with `Full` before anything is programmed, on a fresh store as on
/// a used one (the check once came after the head had already moved on).
#[test]
fn value_beyond_the_headroom_is_refused_before_any_write() {
    let mut counter = RamCounter::default();
    let mut s: Store<SimFlash, &mut RamCounter, 8, 3> = Store::mount(
        SimFlash::new(3),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    for round in 0..6 {
        let before = s.flash().events;
        assert_eq!(
            s.set(b"key/00", &[7u8; 200]),
            Err(Error::Full),
            "round {round}"
        );
        assert_eq!(
            s.flash().events,
            before,
            "round {round}: a refused set programmed the flash"
        );
        s.set(b"small", &[round; 100]).unwrap();
    }
    let mut buf = [0u8; 128];
    assert_eq!(s.get(b"small", &mut buf), Ok(100));
    assert_eq!(s.get(b"key/00", &mut buf), Err(Error::NotFound));
}

#[test]
fn refused_full_writes_nothing_and_removes_free_room() {
    let mut counter = RamCounter::default();
    let mut s: Store<SimFlash, &mut RamCounter, K, 2> = Store::mount(
        SimFlash::new(2),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    let mut n = 0;
    while s.set(&key(n), &[n as u8; 100]).is_ok() {
        n += 1;
    }
    let events = s.flash().events;
    assert_eq!(s.set(&key(n), &[1; 100]), Err(Error::Full));
    assert_eq!(s.flash().events, events, "a refused set wrote to the flash");
    assert!(n >= 1, "at least one value fits");
    // Removes are always accepted, and free room for the refused value.
    s.remove(&key(0)).unwrap();
    s.set(&key(n), &[1; 100]).unwrap();
}

#[test]
fn keys_capacity_enforced_before_writing() {
    const N: usize = 4;
    let mut counter = RamCounter::default();
    let mut s: Store<SimFlash, &mut RamCounter, N, 3> = Store::mount(
        SimFlash::new(3),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    for i in 0..N {
        s.set(&key(i), b"v").unwrap();
    }
    let events = s.flash().events;
    assert_eq!(s.set(&key(N), b"v"), Err(Error::IndexFull));
    let (k0, k) = (key(0), key(N + 1));
    let mut tx = Transaction::<4>::new();
    tx.set(&k0, b"w").unwrap();
    tx.set(&k, b"w").unwrap();
    assert_eq!(s.commit(&tx), Err(Error::IndexFull));
    assert_eq!(
        s.flash().events,
        events,
        "a refused write reached the flash"
    );
    // Existing keys can still be overwritten; a remove frees a slot.
    s.set(&key(1), b"new").unwrap();
    s.remove(&key(2)).unwrap();
    s.set(&key(N), b"v").unwrap();
    assert_eq!(s.len(), N);
    let img = s.flash().data.clone();
    drop(s);
    let mut s: Store<SimFlash, &mut RamCounter, N, 3> = Store::mount(
        SimFlash::from_image(img),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.get(&key(1), &mut buf), Ok(3));
    assert_eq!(s.get(&key(2), &mut buf), Err(Error::NotFound));
    assert_eq!(s.len(), N);
}

/// A store kept at its `KEYS` limit (removes and new keys, plain and in
/// transactions, refused attempts in between) cut at every event: it always
/// remounts with the same `KEYS` (never `IndexFull`) holding a valid state.
#[test]
fn keys_capacity_holds_across_power_cuts() {
    const N: usize = 4;
    let mut ops = Vec::new();
    for r in 0..12 {
        let a = r % 6;
        ops.push(Op::Set(key(a), value(a, r, 20)));
        ops.push(Op::Set(key((a + 3) % 6), value(a, r, 12)));
        ops.push(Op::Tx(vec![
            (key((a + 1) % 6), None),
            (key((a + 2) % 6), Some(value(a, r, 8))),
        ]));
        ops.push(Op::Remove(key((a + 4) % 6)));
    }
    // Drop removes of absent keys (they fail with NotFound in the dry run).
    let mut m = Model::new();
    let mut n = 0;
    let ops: Vec<Op> = ops
        .into_iter()
        .filter(|op| {
            let keep = match op {
                Op::Remove(k) => m.contains_key(k),
                Op::Set(k, _) => m.contains_key(k) || n < N,
                Op::Tx(t) => {
                    let added = t
                        .iter()
                        .filter(|(k, v)| v.is_some() && !m.contains_key(k))
                        .count();
                    // Commit checks new keys against the count before it.
                    n + added <= N
                }
            };
            if keep {
                apply(&mut m, op);
                n = m.len();
            }
            keep
        })
        .collect();
    let (kept, models, _, _) = dry_run::<N, 3>(&ops);
    assert_eq!(
        kept.len(),
        ops.len(),
        "the filtered workload is all accepted"
    );
    assert!(
        models.iter().filter(|m| m.len() == N).count() >= 4,
        "the workload must run at the KEYS limit"
    );
    // Add attempts the store must refuse, then cut everywhere.
    let mut with_refusals = Vec::new();
    for (op, m) in ops.iter().zip(&models[1..]) {
        with_refusals.push(op.clone());
        if m.len() == N {
            with_refusals.push(Op::Set(b"extra".to_vec(), b"x".to_vec()));
        }
    }
    let mut counter = RamCounter::default();
    let mut s: Store<SimFlash, &mut RamCounter, N, 3> = Store::mount(
        SimFlash::new(3),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    let mut refused = 0;
    for op in &with_refusals {
        match run(&mut s, op) {
            Ok(()) => {}
            Err(Error::IndexFull) if matches!(op, Op::Set(k, _) if k == b"extra") => refused += 1,
            Err(e) => panic!("{op:?}: {e}"),
        }
    }
    assert!(refused > 0, "some extra key must be refused");
    drop(s);
    let total = {
        let (_, _, ev, _) = dry_run::<N, 3>(&ops);
        *ev.last().unwrap()
    };
    for cut in 0..total {
        let mut counter = RamCounter::default();
        let mut flash = SimFlash::new(3);
        flash.budget = Some(cut);
        flash.rng = cut + 5;
        let Ok(mut s) = Store::<SimFlash, &mut RamCounter, N, 3>::mount(
            flash,
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rng(),
        ) else {
            continue; // cut during the first mount
        };
        let k = ops
            .iter()
            .position(|op| run(&mut s, op).is_err())
            .unwrap_or_else(|| panic!("cut {cut} never happened"));
        let img = s.flash().data.clone();
        drop(s);
        let what = format!("KEYS={N} cut at event {cut} (op {k} {:?})", ops[k]);
        let mut s = recover::<N, 3>(img, &mut counter, &models[k], &models[k + 1], &what);
        assert!(s.len() <= N, "{what}");
        let mut name = None;
        s.for_each_key(|k| name = name.take().or(k.ok().map(<[u8]>::to_vec)))
            .unwrap();
        if let Some(name) = name {
            s.set(&name, b"still writable")
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}
