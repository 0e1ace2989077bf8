//! A second attacker review of the counter reservation (issue #16). Each
//! test fails on the code it was written against.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::rng;
use cssf_store::flash::RamFlash;
use cssf_store::layout::{align_up, RECORD_HEADER_LEN, RH_COUNTER, RH_LEN};
use cssf_store::{Config, Error, MonotonicCounter, RamCounter, RootKey, Store};

const ROOT: RootKey = RootKey([0x61; 32]);
const ERASE: usize = 1024;
const S: usize = 3;
type Flash = RamFlash<{ S * ERASE }, ERASE, 4, 1>;

/// (address, total length, counter) of every record on the image.
fn records(img: &[u8]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    for sec in 0..img.len() / ERASE {
        let base = sec * ERASE;
        let mut pos = align_up(40, 4);
        while pos + RECORD_HEADER_LEN <= ERASE {
            let h = &img[base + pos..base + pos + RECORD_HEADER_LEN];
            if h[0] == 0xFF {
                pos += 4; // erased (or wiped): skip a word
                continue;
            }
            let len = u16::from_le_bytes([h[RH_LEN], h[RH_LEN + 1]]) as usize;
            let total = align_up(RECORD_HEADER_LEN + len, 4);
            let c = u64::from_le_bytes(h[RH_COUNTER..RH_COUNTER + 8].try_into().unwrap());
            out.push((base + pos, total, c));
            pos += total;
        }
    }
    out
}

fn find(img: &[u8], counter: u64) -> (usize, usize) {
    let r = records(img).into_iter().find(|r| r.2 == counter).unwrap();
    (r.0, r.1)
}

fn newest(img: &[u8]) -> u64 {
    records(img).into_iter().map(|r| r.2).max().unwrap()
}

/// A lazy counter with a block past 2^16 - 1: the first reservation is more
/// than 2^16 - 1 counters ahead of the confirmation, `trusted_value` caps
/// the distance, and `trusted_parts` reads back a confirmation far above
/// what was written. The next mount of the untouched image is a "rollback":
/// the store is bricked by ordinary use, no attacker, no power cut.
#[test]
fn lazy_block_past_2_16_bricks_on_the_next_mount() {
    let mut counter = RamCounter::default();
    let cfg = Config::new().with_counter_block(100_000);
    let mut s: Store<Flash, &mut RamCounter, 8, S> =
        Store::mount(Flash::new(), &ROOT, &mut counter, cfg, &mut rng()).unwrap();
    s.set(b"psk", b"value").unwrap();
    let (flash, _) = s.into_parts();
    let r =
        Store::<Flash, &mut RamCounter, 8, S>::mount(flash, &ROOT, &mut counter, cfg, &mut rng());
    assert!(
        r.is_ok(),
        "false rollback on an untouched image: {:?} (trusted parts {:?})",
        r.err(),
        cssf_store::rollback::trusted_parts(counter.value)
    );
}

/// A trusted counter over a persistent value where the power fails right
/// after the first update of each boot persisted (before the flash write it
/// reserved for): a brown-out loop, where the flash program current resets
/// the device every boot.
struct BrownOut<'a> {
    ram: &'a mut RamCounter,
    armed: &'a core::cell::Cell<bool>,
}

impl MonotonicCounter for BrownOut<'_> {
    type Error = ();
    fn read(&mut self) -> Result<u64, ()> {
        Ok(self.ram.value)
    }
    fn advance_to(&mut self, v: u64) -> Result<(), ()> {
        self.ram.value = self.ram.value.max(v);
        if self.armed.get() {
            return Err(()); // the power fails after the update persisted
        }
        Ok(())
    }
}

/// Eager counter (the default). A power cut between a reservation and its
/// write leaves a torn operation; every recovery mount reserves a counter
/// for its `ack` before writing it, with the confirmation unchanged. Cut
/// there repeatedly (a brown-out loop) and the reservation runs more than
/// 2^16 - 1 counters ahead of the confirmation: the saturated value then
/// reads back a confirmation above the newest record, and once the power is
/// good the mount answers `Rollback` forever. Legitimate power cuts only.
#[test]
fn brown_out_loop_in_recovery_mounts_ends_in_a_false_rollback() {
    let mut ram = RamCounter::default();
    let mut flash = Flash::new();
    let armed = core::cell::Cell::new(false);
    {
        let mut s: Store<Flash, BrownOut<'_>, 8, S> = Store::mount(
            flash,
            &ROOT,
            BrownOut {
                ram: &mut ram,
                armed: &armed,
            },
            Config::new(),
            &mut rng(),
        )
        .unwrap();
        s.set(b"psk", b"value").unwrap();
        // The first cut: between the reservation and the write of a set.
        armed.set(true);
        assert_eq!(s.set(b"psk", b"newer"), Err(Error::Counter));
        flash = s.into_parts().0;
    }
    let mut boots = 0u32;
    loop {
        let r = Store::<Flash, BrownOut<'_>, 8, S>::mount(
            flash.clone(),
            &ROOT,
            BrownOut {
                ram: &mut ram,
                armed: &armed,
            },
            Config::new(),
            &mut rng(),
        );
        match r {
            Err(Error::Counter) => {}
            Err(Error::Rollback) => break,
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
        boots += 1;
        if boots > 40_000 {
            break;
        }
    }
    // The power is good again.
    let r = Store::<Flash, &mut RamCounter, 8, S>::mount(
        flash,
        &ROOT,
        &mut ram,
        Config::new(),
        &mut rng(),
    );
    let mut buf = [0u8; 8];
    let got = r.map(|mut s| s.get(b"psk", &mut buf).map(|n| buf[..n].to_vec()));
    assert_eq!(
        got,
        Ok(Ok(b"value".to_vec())),
        "after {boots} brown-out boots (no record lost, no attacker)"
    );
}

/// `repair` acknowledges every counter below it (`ack(0, next - 1)`), not
/// just the hole it accepts. After one repair the attacker can cut any
/// later, committed and confirmed record below that point: the hole is
/// "explained", the store is not degraded, and the key silently answers its
/// older value (eager counter, no power cut).
#[test]
fn repair_ack_excuses_cutting_a_confirmed_record_later() {
    const OLD: &[u8] = b"revoked-psk-0000";
    const NEW: &[u8] = b"current-psk-1111";
    let mut counter = RamCounter::default();
    let mut s: Store<Flash, &mut RamCounter, 8, S> =
        Store::mount(Flash::new(), &ROOT, &mut counter, Config::new(), &mut rng()).unwrap();
    s.set(b"a", b"first").unwrap();
    let c_a = newest(s.flash().image());
    s.set(b"psk", OLD).unwrap();
    s.set(b"psk", NEW).unwrap();
    let c_new = newest(s.flash().image());
    s.set(b"b", b"later").unwrap();
    let (mut flash, _) = s.into_parts();
    // Tampering the device notices: the record of `a` is cut.
    let (at, len) = find(flash.image(), c_a);
    flash.image_mut()[at..at + len].fill(0xFF);
    let mut s: Store<Flash, &mut RamCounter, 8, S> =
        Store::mount(flash, &ROOT, &mut counter, Config::new(), &mut rng()).unwrap();
    assert!(s.is_degraded());
    s.repair().unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(s.get(b"psk", &mut buf), Ok(NEW.len()));
    assert_eq!(&buf[..NEW.len()], NEW);
    let (mut flash, _) = s.into_parts();
    // Later, between runs: the committed, confirmed `psk` = NEW is cut.
    let (at, len) = find(flash.image(), c_new);
    flash.image_mut()[at..at + len].fill(0xFF);
    let r = Store::<Flash, &mut RamCounter, 8, S>::mount(
        flash,
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    );
    let got = r.map(|mut s| {
        (
            s.is_degraded(),
            s.get(b"psk", &mut buf).map(|n| buf[..n].to_vec()),
        )
    });
    assert!(
        !matches!(got, Ok((_, Ok(ref v))) if v == OLD),
        "a confirmed write vanished without an error: {got:?}"
    );
}
