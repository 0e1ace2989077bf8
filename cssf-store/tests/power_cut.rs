//! Power-cut simulation: for EVERY program word and erase of a workload of
//! sets, removes, transactions and garbage collections, cut the power there,
//! remount, and check that the store holds exactly the state before or after
//! the interrupted operation (and still works). Cuts during the recovery
//! mount itself are checked too.

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
use cssf_store::{Config, Error, RamCounter, Store, Transaction};
use workload::{apply_model, workload, Model, Op, KEYS, ROOT};

fn run_op<const S: usize>(
    s: &mut Store<SimFlash, &mut RamCounter, 16, S>,
    op: &Op,
) -> Result<(), Error> {
    match op {
        Op::Set(k, v) => s.set(k, v),
        Op::Remove(k) => match s.remove(k) {
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
            s.commit(&tx)
        }
    }
}

fn read_state<const S: usize>(
    s: &mut Store<SimFlash, &mut RamCounter, 16, S>,
) -> Result<Model, Error> {
    let mut m = Model::new();
    let mut buf = [0u8; 128];
    for k in KEYS {
        match s.get(k, &mut buf) {
            Ok(n) => {
                m.insert(k.to_vec(), buf[..n].to_vec());
            }
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let mut names = Vec::new();
    s.for_each_key(|n| names.push(n.map(<[u8]>::to_vec)))
        .unwrap();
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
    let flash = SimFlash::from_image(image);
    let mut s: Store<SimFlash, &mut RamCounter, 16, S> =
        Store::mount(flash, &ROOT, counter, Config::new(), &mut rng())
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
    (s.flash().data.clone(), got)
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
    let mut s: Store<SimFlash, &mut RamCounter, 16, S> = Store::mount(
        SimFlash::new(S),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    for (i, op) in ops.iter().enumerate() {
        run_op(&mut s, op).unwrap_or_else(|e| panic!("op {i} {op:?}: {e}"));
    }
    assert_eq!(read_state(&mut s).unwrap(), *models.last().unwrap());
    let total = s.flash().events;
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
        let (image, k) = match Store::<SimFlash, &mut RamCounter, 16, S>::mount(
            flash.clone(),
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rng(),
        ) {
            Err(_) => (vec![0xFF; 0], 0),
            Ok(mut s) => {
                let mut cut_at = ops.len();
                for (i, op) in ops.iter().enumerate() {
                    if run_op(&mut s, op).is_err() {
                        cut_at = i;
                        break;
                    }
                }
                (s.flash().data.clone(), cut_at)
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
            let s = Store::<SimFlash, &mut RamCounter, 16, S>::mount(
                probe.clone(),
                &ROOT,
                &mut c2,
                Config::new(),
                &mut rng(),
            )
            .unwrap();
            let rec_events = s.flash().events;
            drop(s);
            for m in 0..rec_events {
                let mut f = probe.clone();
                f.budget = Some(m);
                f.rng = m + 7;
                let mut c3 = counter;
                // Ok or cut by the power: either way take the flash as it is.
                let _ = Store::<&mut SimFlash, &mut RamCounter, 16, S>::mount(
                    &mut f,
                    &ROOT,
                    &mut c3,
                    Config::new(),
                    &mut rng(),
                );
                let img = f.data.clone();
                let what2 = format!("{what}, then cut at recovery event {m}");
                check_recovery::<S>(img, &mut c3, before, after, &what2);
                nested += 1;
            }
        }
        // And it accepts new writes and sees them after another remount.
        let mut c4 = counter;
        let mut s: Store<SimFlash, &mut RamCounter, 16, S> = Store::mount(
            SimFlash::from_image(img2),
            &ROOT,
            &mut c4,
            Config::new(),
            &mut rng(),
        )
        .unwrap();
        let mut state =
            read_state(&mut s).unwrap_or_else(|e| panic!("{what}: second remount: {e}"));
        for (i, key) in KEYS.iter().enumerate().take(3) {
            s.set(key, &[i as u8; 12])
                .unwrap_or_else(|e| panic!("{what}: write after recovery: {e}"));
            state.insert(key.to_vec(), vec![i as u8; 12]);
        }
        let img3 = s.flash().data.clone();
        drop(s);
        let mut s: Store<SimFlash, &mut RamCounter, 16, S> = Store::mount(
            SimFlash::from_image(img3),
            &ROOT,
            &mut c4,
            Config::new(),
            &mut rng(),
        )
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

#[test]
fn power_cut_at_every_event_three_sectors() {
    cut_everywhere::<3>(40);
}

#[test]
fn power_cut_at_every_event_two_sectors() {
    cut_everywhere::<2>(16);
}
