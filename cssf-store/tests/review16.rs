//! An attacker review of format 2 (issue #16): an attacker who rewrites the
//! flash while the store runs, between runs, or during a mount. Each test
//! failed on the first format 2 commit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use core::cell::RefCell;
use std::rc::Rc;

use common::rng;
use cssf_store::layout::{align_up, RECORD_HEADER_LEN, RH_COUNTER, RH_LEN};
use cssf_store::{Config, Error, RamCounter, RootKey, Store};
use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

const ROOT: RootKey = RootKey([0x51; 32]);
const ERASE: usize = 1024;
const S: usize = 3;

/// A flash the attacker can rewrite while the store holds it.
#[derive(Clone)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl ErrorType for Shared {
    type Error = NorFlashErrorKind;
}
impl ReadNorFlash for Shared {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len())?;
        let d = self.0.borrow();
        bytes.copy_from_slice(&d[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.borrow().len()
    }
}
impl NorFlash for Shared {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        self.0.borrow_mut()[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        let mut d = self.0.borrow_mut();
        for (i, b) in bytes.iter().enumerate() {
            d[offset as usize + i] &= b;
        }
        Ok(())
    }
}

/// (address, total length, counter) of every record the attacker can see.
fn records(img: &[u8]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    for sec in 0..img.len() / ERASE {
        let base = sec * ERASE;
        let mut pos = align_up(40, 4);
        while pos + RECORD_HEADER_LEN <= ERASE {
            let h = &img[base + pos..base + pos + RECORD_HEADER_LEN];
            if h.iter().all(|&b| b == 0xFF) {
                break;
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

/// The newest record on flash (highest counter).
fn newest(img: &[u8]) -> (usize, usize, u64) {
    records(img).into_iter().max_by_key(|r| r.2).unwrap()
}

/// Garbage collection re-seals the record it finds at the index's address
/// without checking that it is the record the index holds (its counter): an
/// attacker who puts an older authentic record of the same key there while
/// the store runs gets the old value re-sealed under a fresh counter. After
/// that the rollback is invisible, even to an eager trusted counter and
/// across remounts.
#[test]
fn gc_launders_an_older_record_of_the_same_key() {
    const OLD: &[u8; 16] = b"revoked-psk-0000";
    const NEW: &[u8; 16] = b"current-psk-1111";
    let flash = Shared(Rc::new(RefCell::new(vec![0xFF; S * ERASE])));
    let mut counter = RamCounter::default();
    let mut s: Store<Shared, &mut RamCounter, 16, S> = Store::mount(
        flash.clone(),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    s.set(b"psk", OLD).unwrap();
    let (old_at, old_len, _) = newest(&flash.0.borrow());
    let old_rec = flash.0.borrow()[old_at..old_at + old_len].to_vec();
    s.set(b"psk", NEW).unwrap();
    let (new_at, new_len, _) = newest(&flash.0.borrow());
    assert_eq!(old_len, new_len);
    // While the store runs, the attacker writes the older record over the
    // newer one, then lets the device go on writing until that sector is
    // collected.
    flash.0.borrow_mut()[new_at..new_at + new_len].copy_from_slice(&old_rec);
    let sector = new_at / ERASE;
    let gcs = s.stats().gcs;
    let mut n = 0u32;
    while !(s.stats().gcs > gcs
        && flash.0.borrow()[sector * ERASE..(sector + 1) * ERASE]
            .iter()
            .all(|&b| b == 0xFF))
    {
        s.set(b"filler", &n.to_le_bytes()).unwrap();
        n += 1;
        assert!(n < 1000, "no GC of the sector");
    }
    let mut buf = [0u8; 32];
    let got = s.get(b"psk", &mut buf);
    drop(s);
    // Remount with the same (eager) trusted counter.
    let mut s: Store<Shared, &mut RamCounter, 16, S> = Store::mount(
        flash.clone(),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    let again = s.get(b"psk", &mut buf).map(|n| buf[..n].to_vec());
    assert!(
        got != Ok(OLD.len()) || again != Ok(OLD.to_vec()),
        "the revoked value came back as the current one (degraded: {}, live: {:?}, after remount: {:?})",
        s.is_degraded(),
        got,
        again.map(|v| String::from_utf8_lossy(&v).into_owned()),
    );
    // What must happen instead: an error for `psk` (Tampered), never OLD.
    assert!(matches!(again, Err(Error::Tampered) | Ok(_)));
}

/// A trusted counter whose next confirmation can be cut (power fails
/// between the record's write and the counter's confirmation of it; the
/// reservation before the write goes through), over a persistent value.
struct Cuttable<'a> {
    ram: &'a mut RamCounter,
    cut: bool,
}

impl cssf_store::MonotonicCounter for Cuttable<'_> {
    type Error = ();
    fn read(&mut self) -> Result<u64, ()> {
        Ok(self.ram.value)
    }
    fn advance_to(&mut self, v: u64) -> Result<(), ()> {
        // A value that confirms everything it reserves is a confirmation.
        let (reserved, confirmed) = cssf_store::rollback::trusted_parts(v);
        if self.cut && v > self.ram.value && reserved == confirmed {
            return Err(());
        }
        self.ram.value = self.ram.value.max(v);
        Ok(())
    }
}

fn mount<'a>(f: &Shared, ram: &'a mut RamCounter) -> Store<Shared, Cuttable<'a>, 16, S> {
    Store::mount(
        f.clone(),
        &ROOT,
        Cuttable { ram, cut: false },
        Config::new(),
        &mut rng(),
    )
    .unwrap()
}

/// One counter value must never be used by two authentic records: after a
/// power cut between a write and the counter update, the attacker cuts that
/// record; the device must not write the next record with the same counter,
/// or the spare record could later be put in place of the committed one
/// (the log identifies a record by its counter): a committed, counted `psk`
/// update (followed by more operations) would disappear with no error.
#[test]
fn a_spare_record_with_a_reused_counter_rolls_back_a_committed_write() {
    const P0: &[u8; 16] = b"psk-before-00000";
    const P1: &[u8; 16] = b"psk-committed-11";
    let blank = vec![0xFFu8; S * ERASE];
    let mut ram = RamCounter::default();
    let flash = Shared(Rc::new(RefCell::new(blank)));
    {
        let mut s = mount(&flash, &mut ram);
        s.set(b"psk", P0).unwrap();
    }
    // A write whose counter update the power cut hits (same record length).
    let mut s: Store<Shared, Cuttable<'_>, 16, S> = Store::mount(
        flash.clone(),
        &ROOT,
        Cuttable {
            ram: &mut ram,
            cut: true,
        },
        Config::new(),
        &mut rng(),
    )
    .unwrap();
    assert_eq!(s.set(b"tok", b"any-token-value!"), Err(Error::Counter));
    drop(s);
    let (spare_at, spare_len, spare_c) = newest(&flash.0.borrow());
    let spare = flash.0.borrow()[spare_at..spare_at + spare_len].to_vec();
    // The attacker cuts it: the counter never saw it, so this is accepted.
    flash.0.borrow_mut()[spare_at..spare_at + spare_len].fill(0xFF);
    {
        let mut s = mount(&flash, &mut ram);
        s.set(b"psk", P1).unwrap();
        s.set(b"other", b"later operation").unwrap();
    }
    let after = records(&flash.0.borrow());
    assert!(
        after.iter().all(|r| r.2 != spare_c),
        "a counter was used by two records"
    );
    // The committed psk record: the first record of the spare's length
    // written after the cut.
    let committed = after
        .into_iter()
        .find(|r| r.2 > spare_c && r.1 == spare_len)
        .unwrap();
    assert!(
        ram.value > spare_c,
        "the eager counter counted the psk write"
    );
    // Later, between runs: the spare record replaces the committed one.
    flash.0.borrow_mut()[committed.0..committed.0 + spare_len].copy_from_slice(&spare);
    let mut s = mount(&flash, &mut ram);
    let mut buf = [0u8; 32];
    let got = s.get(b"psk", &mut buf).map(|n| buf[..n].to_vec());
    assert_ne!(
        got,
        Ok(P0.to_vec()),
        "a committed and counted write was rolled back (degraded: {})",
        s.is_degraded()
    );
}

/// A flash that serves `a` until the mount's second pass starts (the second
/// 256-byte block read at address 0), then `b`: an interposer on the flash
/// bus, or an attacker rewriting the flash during mount.
struct Swap {
    data: Vec<u8>,
    b: Option<Vec<u8>>,
    block0_reads: u32,
}

impl ErrorType for Swap {
    type Error = NorFlashErrorKind;
}
impl ReadNorFlash for Swap {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len())?;
        if offset == 0 && bytes.len() == 256 {
            self.block0_reads += 1;
            if self.block0_reads == 2 {
                if let Some(b) = self.b.take() {
                    self.data = b;
                }
            }
        }
        bytes.copy_from_slice(&self.data[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.data.len()
    }
}
impl NorFlash for Swap {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        self.data[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        for (i, b) in bytes.iter().enumerate() {
            self.data[offset as usize + i] &= b;
        }
        Ok(())
    }
}

/// Mount reads the log twice (survey, then index) and never checks that the
/// second pass saw the newest record the first pass measured against the
/// trusted counter: serve the current image to the first pass and an older
/// one to the second, and the older state is mounted under an eager counter.
#[test]
fn mount_checks_one_image_and_indexes_another() {
    let flash = Shared(Rc::new(RefCell::new(vec![0xFF; S * ERASE])));
    let mut counter = RamCounter::default();
    {
        let mut s: Store<Shared, &mut RamCounter, 16, S> = Store::mount(
            flash.clone(),
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rng(),
        )
        .unwrap();
        s.set(b"led", b"old").unwrap();
    }
    let older = flash.0.borrow().clone();
    {
        let mut s: Store<Shared, &mut RamCounter, 16, S> = Store::mount(
            flash.clone(),
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rng(),
        )
        .unwrap();
        s.set(b"led", b"new").unwrap();
    }
    let current = flash.0.borrow().clone();
    // Control: the older image alone is refused.
    let plain = Swap {
        data: older.clone(),
        b: None,
        block0_reads: 0,
    };
    assert_eq!(
        Store::<Swap, &mut RamCounter, 16, S>::mount(
            plain,
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rng()
        )
        .err(),
        Some(Error::Rollback)
    );
    let swap = Swap {
        data: current,
        b: Some(older),
        block0_reads: 0,
    };
    let r = Store::<Swap, &mut RamCounter, 16, S>::mount(
        swap,
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rng(),
    );
    let got = r.map(|mut s| {
        let mut buf = [0u8; 8];
        s.get(b"led", &mut buf).map(|n| buf[..n].to_vec())
    });
    assert_ne!(
        got,
        Ok(Ok(b"old".to_vec())),
        "older image mounted past the trusted counter"
    );
}
