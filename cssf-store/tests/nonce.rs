//! No two records share a nonce under one key, whatever happens to the flash
//! (issue #16): whole-image rollbacks, the newest records cut away, and power
//! cuts between a write and the trusted counter's update, under each counter
//! configuration (none, lazy, eager). Every image an attacker could collect
//! along the way is walked, every record's (salt, counter) nonce collected,
//! and a nonce seen with two different records is a failure.
//!
//! Also the review's attack: from two images whose records share a nonce,
//! XOR the ciphertexts with a known plaintext and read the stored key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashMap;

use common::{rng, SimFlash, ERASE};
use cssf_store::layout::{
    align_up, RECORD_HEADER_LEN, RH_COUNTER, RH_LEN, RH_SALT, SECTOR_HEADER_LEN, SECTOR_MAGIC,
};
use cssf_store::rollback::trusted_value;
use cssf_store::{
    Config, Error, MonotonicCounter, NoRollbackProtection, RamCounter, RootKey, Store,
};

const ROOT: RootKey = RootKey([0x42; 32]);
const S: usize = 3;
const ALIGN: usize = 4;
const LAZY_EVERY: u64 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    NoCounter,
    Lazy,
    Eager,
}

const MODES: [Mode; 3] = [Mode::NoCounter, Mode::Lazy, Mode::Eager];

/// The trusted counter of one boot, in one of the three configurations,
/// over the persistent value `ram` (which survives every flash rollback). A
/// power cut at a counter update is simulated by `cut_from`: advancing the
/// trusted value to `cut_from` or beyond fails (see
/// `cssf_store::rollback::trusted_value` for how the store encodes the
/// reserved and the confirmed counter).
struct Trusted<'a> {
    mode: Mode,
    ram: Option<&'a mut RamCounter>,
    cut_from: Option<u64>,
}

impl<'a> Trusted<'a> {
    fn boot(mode: Mode, ram: &'a mut RamCounter) -> Self {
        Self {
            mode,
            ram: (mode != Mode::NoCounter).then_some(ram),
            cut_from: None,
        }
    }

    fn config(&self) -> Config {
        match self.mode {
            Mode::Lazy => Config::new().with_counter_block(LAZY_EVERY as u32),
            _ => Config::new(),
        }
    }
}

impl MonotonicCounter for Trusted<'_> {
    type Error = ();
    fn read(&mut self) -> Result<u64, ()> {
        Ok(match &mut self.ram {
            Some(r) => r.read().unwrap(),
            None => NoRollbackProtection.read().unwrap(),
        })
    }
    fn advance_to(&mut self, v: u64) -> Result<(), ()> {
        if self.cut_from.is_some_and(|f| v >= f) {
            return Err(());
        }
        match &mut self.ram {
            Some(r) => r.advance_to(v).unwrap(),
            None => NoRollbackProtection.advance_to(v).unwrap(),
        }
        Ok(())
    }
}

type St<'a> = Store<SimFlash, Trusted<'a>, 16, S>;

fn mount<'a>(image: &[u8], t: Trusted<'a>) -> Result<St<'a>, Error> {
    let cfg = t.config();
    Store::mount(
        SimFlash::from_image(image.to_vec()),
        &ROOT,
        t,
        cfg,
        &mut rng(),
    )
}

fn salt_of(header: &[u8]) -> [u8; 16] {
    header[RH_SALT..RH_SALT + 16].try_into().unwrap()
}

/// One record as an attacker reads it off an image.
struct Rec {
    at: usize,
    len: usize,
    nonce: ([u8; 16], u64),
}

/// Walks the records of every sector of `img` by their length fields (no
/// key needed: headers are in clear).
fn records(img: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    for sec in 0..img.len() / ERASE {
        let base = sec * ERASE;
        if img[base..base + 4] != SECTOR_MAGIC {
            continue;
        }
        let mut pos = align_up(SECTOR_HEADER_LEN, ALIGN);
        while pos + RECORD_HEADER_LEN <= ERASE {
            let h = &img[base + pos..base + pos + RECORD_HEADER_LEN];
            if h.iter().all(|&b| b == 0xFF) {
                break;
            }
            let len = u16::from_le_bytes([h[RH_LEN], h[RH_LEN + 1]]) as usize;
            let total = align_up(RECORD_HEADER_LEN + len, ALIGN);
            if pos + total > ERASE {
                break;
            }
            let salt = salt_of(h);
            let counter = u64::from_le_bytes(h[RH_COUNTER..RH_COUNTER + 8].try_into().unwrap());
            out.push(Rec {
                at: base + pos,
                len: total,
                nonce: (salt, counter),
            });
            pos += total;
        }
    }
    out
}

fn max_counter(img: &[u8]) -> u64 {
    records(img).iter().map(|r| r.nonce.1).max().unwrap_or(0)
}

/// Every (nonce -> record bytes) pair across `images`; panics on a nonce
/// that sealed two different records. Returns how many distinct records.
fn assert_nonces_unique(what: &str, images: &[Vec<u8>]) -> usize {
    let mut seen: HashMap<([u8; 16], u64), Vec<u8>> = HashMap::new();
    for (i, img) in images.iter().enumerate() {
        for r in records(img) {
            let bytes = img[r.at..r.at + r.len].to_vec();
            match seen.get(&r.nonce) {
                Some(b) if *b != bytes => panic!(
                    "{what}: image {i}: nonce (counter {}) seals two different records",
                    r.nonce.1
                ),
                Some(_) => {}
                None => {
                    seen.insert(r.nonce, bytes);
                }
            }
        }
    }
    seen.len()
}

fn secret(i: u8, round: u8) -> Vec<u8> {
    (0..24).map(|j| i ^ round.wrapping_mul(31) ^ j).collect()
}

/// Writes `rounds` rounds of 6 keys; returns the image after each round.
fn write_rounds(s: &mut St<'_>, first: u8, rounds: u8) -> Vec<Vec<u8>> {
    let mut imgs = Vec::new();
    for round in first..first + rounds {
        for k in 0..6u8 {
            // A counter cut is reported, the record is on flash regardless.
            let _ = s.set(format!("psk/{k}").as_bytes(), &secret(k, round));
        }
        imgs.push(s.flash().data.clone());
    }
    imgs
}

/// Whole-image rollback: write, keep an old image, write on, restore the old
/// image (twice), write again.
#[test]
fn whole_image_rollback_never_reuses_a_nonce() {
    for mode in MODES {
        let mut ram = RamCounter::default();
        let mut history = Vec::new();
        let mut s = mount(&SimFlash::new(S).data, Trusted::boot(mode, &mut ram)).unwrap();
        history.extend(write_rounds(&mut s, 0, 2));
        drop(s);
        let old = history[0].clone();
        let mut s = mount(history.last().unwrap(), Trusted::boot(mode, &mut ram)).unwrap();
        history.extend(write_rounds(&mut s, 2, 3));
        drop(s);
        let mut refused = 0;
        for again in 0..2u8 {
            match mount(&old, Trusted::boot(mode, &mut ram)) {
                Ok(mut s) => history.extend(write_rounds(&mut s, 10 + 3 * again, 3)),
                Err(Error::Rollback) => refused += 1,
                Err(e) => panic!("{mode:?}: {e}"),
            }
        }
        // The counter configurations see this rollback (5 rounds = 30 records
        // back, past the lazy window); without one it is written over.
        assert_eq!(
            refused,
            if mode == Mode::NoCounter { 0 } else { 2 },
            "{mode:?}"
        );
        let n = assert_nonces_unique(&format!("{mode:?} whole image"), &history);
        assert!(n >= 30, "{mode:?}: only {n} records collected");
    }
}

/// The newest records cut away (erased back to 0xFF), 1 to 8 of them, then
/// written over.
#[test]
fn newest_records_cut_never_reuses_a_nonce() {
    for mode in MODES {
        let mut ram = RamCounter::default();
        let mut history = Vec::new();
        let mut s = mount(&SimFlash::new(S).data, Trusted::boot(mode, &mut ram)).unwrap();
        history.extend(write_rounds(&mut s, 0, 3));
        drop(s);
        let full = history.last().unwrap().clone();
        let recs = records(&full);
        let mut mounted = 0;
        for cut in 1..=8usize {
            // Erase the `cut` records with the highest counters.
            let mut by_counter: Vec<&Rec> = recs.iter().collect();
            by_counter.sort_by_key(|r| r.nonce.1);
            let mut img = full.clone();
            for r in by_counter.iter().rev().take(cut) {
                img[r.at..r.at + r.len].fill(0xFF);
            }
            history.push(img.clone());
            match mount(&img, Trusted::boot(mode, &mut ram)) {
                Ok(mut s) => {
                    mounted += 1;
                    history.extend(write_rounds(&mut s, 20 + cut as u8, 1));
                }
                Err(Error::Rollback) => {}
                Err(e) => panic!("{mode:?} cut {cut}: {e}"),
            }
        }
        match mode {
            // Nothing sees the cut.
            Mode::NoCounter => assert_eq!(mounted, 8),
            // An eager counter sees every cut record.
            Mode::Eager => assert_eq!(mounted, 0),
            // A lazy one sees only cuts reaching behind its last update.
            Mode::Lazy => assert!(mounted < 8, "lazy: {mounted}"),
        }
        assert_nonces_unique(&format!("{mode:?} cut newest"), &history);
    }
}

/// A power cut after a record reached the flash but before the trusted
/// counter confirmed it (eager; lazy: at its next counter update, if the
/// write needs one); then that record cut away (the attacker's move) or kept
/// (a plain reboot), and writing goes on.
#[test]
fn cut_during_counter_update_never_reuses_a_nonce() {
    for mode in MODES {
        for keep in [false, true] {
            let mut ram = RamCounter::default();
            let mut history = Vec::new();
            let mut s = mount(&SimFlash::new(S).data, Trusted::boot(mode, &mut ram)).unwrap();
            history.extend(write_rounds(&mut s, 0, 2));
            let before = records(history.last().unwrap()).len();
            // The power fails at the counter's confirmation of the next record
            // (its reservation still goes through).
            let (flash, mut t) = s.into_parts();
            let c = max_counter(&flash.data) + 1;
            t.cut_from = Some(trusted_value(c, c));
            let cfg = t.config();
            let mut s: St<'_> = Store::mount(flash, &ROOT, t, cfg, &mut rng())
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let r = s.set(b"psk/0", &secret(0, 99));
            let img = s.flash().data.clone();
            drop(s);
            history.push(img.clone());
            let mut recs = records(&img);
            let written = recs.len() > before;
            if mode != Mode::Lazy {
                assert_eq!(r, Err(Error::Counter), "{mode:?}: the cut hits the update");
                assert!(written, "{mode:?}: the record was written before the cut");
            }
            let mut img = img;
            if !keep && written {
                recs.sort_by_key(|r| r.nonce.1);
                let r = recs.last().unwrap();
                img[r.at..r.at + r.len].fill(0xFF);
                history.push(img.clone());
            }
            let mut s = mount(&img, Trusted::boot(mode, &mut ram))
                .unwrap_or_else(|e| panic!("{mode:?} keep={keep}: {e}"));
            history.extend(write_rounds(&mut s, 30, 2));
            assert_nonces_unique(&format!("{mode:?} counter cut, keep={keep}"), &history);
        }
    }
}

/// The review's attack, byte for byte: two images in which a stored key and
/// a value the attacker knows (or chose) sit at the same place; XOR of the
/// two ciphertexts and the known value, tried at every offset, must not give
/// the key back.
fn recovers(a: &[u8], b: &[u8], known: &[u8], secret: &[u8]) -> bool {
    (0..a.len().min(b.len()).saturating_sub(known.len()))
        .any(|o| (0..known.len()).all(|j| a[o + j] ^ b[o + j] ^ known[j] == secret[j]))
}

#[test]
fn rollback_attack_recovers_nothing_without_a_counter() {
    const SECRET: &[u8; 16] = b"PSK-0123456789ab";
    const KNOWN: &[u8; 16] = b"AAAAAAAAAAAAAAAA";
    let mut ram = RamCounter::default();
    // The device stores its PSK (as the example node store does, without a
    // counter); the attacker keeps that image and an older one.
    let blank = SimFlash::new(S).data;
    let mut s = mount(&blank, Trusted::boot(Mode::NoCounter, &mut ram)).unwrap();
    s.set(b"psk/dev", b"provisioning....").unwrap();
    let older = s.flash().data.clone();
    s.set(b"psk/dev", SECRET).unwrap();
    let with_secret = s.flash().data.clone();
    drop(s);
    // Roll back; the device (or the attacker through its API, e.g. a token
    // or config upload) writes a value the attacker knows.
    let mut s = mount(&older, Trusted::boot(Mode::NoCounter, &mut ram)).unwrap();
    s.set(b"psk/dev", KNOWN).unwrap();
    let with_known = s.flash().data.clone();
    assert!(
        !recovers(&with_secret, &with_known, KNOWN, SECRET),
        "stored PSK recovered after a rollback"
    );
}

#[test]
fn counter_cut_attack_recovers_nothing_with_an_eager_counter() {
    const SECRET: &[u8; 16] = b"PSK-0123456789ab";
    const KNOWN: &[u8; 16] = b"AAAAAAAAAAAAAAAA";
    let mut ram = RamCounter::default();
    let blank = SimFlash::new(S).data;
    let mut s = mount(&blank, Trusted::boot(Mode::Eager, &mut ram)).unwrap();
    s.set(b"psk/dev", b"provisioning....").unwrap();
    let older = s.flash().data.clone();
    // The power fails between the record's write and the counter update.
    let (flash, mut t) = s.into_parts();
    let c = max_counter(&flash.data) + 1;
    t.cut_from = Some(trusted_value(c, c));
    let mut s: St<'_> = Store::mount(flash, &ROOT, t, Config::new(), &mut rng()).unwrap();
    assert_eq!(s.set(b"psk/dev", SECRET), Err(Error::Counter));
    let with_secret = s.flash().data.clone();
    drop(s);
    // The attacker cuts that record (the older image): the counter never saw
    // it, so the mount is legitimate; then a known value is written.
    let mut s = mount(&older, Trusted::boot(Mode::Eager, &mut ram)).unwrap();
    s.set(b"psk/dev", KNOWN).unwrap();
    let with_known = s.flash().data.clone();
    assert!(
        !recovers(&with_secret, &with_known, KNOWN, SECRET),
        "stored PSK recovered after a counter cut"
    );
}
