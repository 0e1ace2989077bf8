//! Storage attacks on `cssf-store`: tampering with the flash image,
//! rolling it back to an older image (for old values, and to make the store
//! reuse a nonce and give a stored key away), and cutting the power in the
//! middle of a transaction.

use std::collections::BTreeMap;

use cssf_netsim::SimRng;
use cssf_store::flash::RamFlash;
use cssf_store::{Config, Error, NoRollbackProtection, RamCounter, RootKey, Store, Transaction};
use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

use crate::{Cmp, Opts, Row};

const ROOT: RootKey = RootKey([0xC3; 32]);
const ERASE: usize = 1024;
const SECTORS: usize = 4;
const SIZE: usize = ERASE * SECTORS;
type Flash = RamFlash<SIZE, ERASE, 4, 1>;
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PROBE: [&[u8]; 6] = [b"psk", b"token", b"led", b"k0", b"k1", b"absent"];

/// Writes a history (overwrites, a remove, garbage collections) and returns
/// the flash, the model of what was committed, and the trusted counter.
/// One operation of a history: a key and its new value, or `None` for a
/// removal.
type Op = (Vec<u8>, Option<Vec<u8>>);

fn history(rng: &mut SimRng, rounds: usize) -> (Flash, Model, RamCounter, Vec<Op>) {
    let mut counter = RamCounter::default();
    let mut model = Model::new();
    let mut ops = Vec::new();
    let Ok(mut s) = Store::<_, _, 16, SECTORS>::mount(
        Flash::new(),
        &ROOT,
        &mut counter,
        Config::new(),
        &mut rand_core::OsRng,
    ) else {
        panic!("lab bug: blank store did not mount");
    };
    for r in 0..rounds {
        let key: &[u8] = PROBE[r % 5];
        let len = 4 + (rng.next_u64_raw() % 40) as usize;
        let val: Vec<u8> = (0..len).map(|_| rng.next_u64_raw() as u8).collect();
        if r % 11 == 10 {
            if s.remove(key).is_ok() {
                model.remove(key);
                ops.push((key.to_vec(), None));
            }
        } else if s.set(key, &val).is_ok() {
            model.insert(key.to_vec(), val.clone());
            ops.push((key.to_vec(), Some(val)));
        }
    }
    let (flash, _) = s.into_parts();
    (flash, model, counter, ops)
}

/// Mounts and reads every probe key. Returns (betrayed, detected):
/// betrayed when the store returned something it must not (a wrong value,
/// a value for an absent key, or "absent" for a present key); detected when
/// the mount or a read reported an error.
fn betrayed<F: NorFlash>(flash: F, counter: &mut RamCounter, model: &Model) -> (bool, bool) {
    let Ok(mut s) = Store::<_, _, 16, SECTORS>::mount(
        flash,
        &ROOT,
        counter,
        Config::new(),
        &mut rand_core::OsRng,
    ) else {
        return (false, true);
    };
    let mut buf = [0u8; 64];
    let (mut bad, mut detected) = (false, false);
    for k in PROBE {
        match (s.get(k, &mut buf), model.get(k)) {
            (Ok(n), Some(v)) => bad |= buf.get(..n) != Some(v.as_slice()),
            (Ok(_), None) => bad = true,
            (Err(Error::NotFound), Some(_)) => bad = true,
            (Err(Error::NotFound), None) => {}
            (Err(_), _) => detected = true,
        }
    }
    (bad, detected)
}

/// Every byte offset of `img` that was written: in each erase sector, up
/// to its last byte that is not erased (0xFF) (records are appended in
/// order).
fn written(img: &[u8], sector: usize) -> Vec<usize> {
    let mut v = Vec::new();
    for (k, sec) in img.chunks(sector).enumerate() {
        if let Some(last) = sec.iter().rposition(|b| *b != 0xFF) {
            v.extend(k * sector..=k * sector + last);
        }
    }
    v
}

/// One tampering of `img`, at positions drawn from its written bytes:
/// `kind` 0 flips a bit, 1 copies 32 bytes from one written place over
/// another, 2 erases the 64-byte block around a written byte; `r` are the
/// random choices (the same for the control's image).
fn tamper_image(img: &mut [u8], kind: u32, r: [u64; 3], sector: usize) {
    let w = written(img, sector);
    let pick = |x: u64| w.get((x % w.len().max(1) as u64) as usize).copied();
    let n = img.len();
    match kind {
        0 => {
            if let Some(b) = pick(r[0]).and_then(|p| img.get_mut(p)) {
                *b ^= 1 << (r[1] % 8);
            }
        }
        1 => {
            let (Some(from), Some(to)) = (pick(r[0]), pick(r[1])) else {
                return;
            };
            let (from, to) = (from.min(n - 32), to.min(n - 32));
            let chunk: Vec<u8> = img.get(from..from + 32).unwrap_or(&[]).to_vec();
            if let Some(d) = img.get_mut(to..to + 32) {
                d.copy_from_slice(&chunk);
            }
        }
        _ => {
            let Some(p) = pick(r[0]) else { return };
            let at = (p / 64) * 64;
            if let Some(d) = img.get_mut(at..(at + 64).min(n)) {
                d.fill(0xFF);
            }
        }
    }
}

/// The control: the same history in an unauthenticated log (records
/// `key length, value length or 0xFE for a removal, key, value`, appended;
/// the last record of a key wins), read back the same way.
struct PlainLog(Vec<u8>);

impl PlainLog {
    fn new(ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Self {
        let mut img = vec![0xFF; SIZE];
        let mut at = 0;
        for (k, v) in ops {
            let mut rec = vec![k.len() as u8, v.as_ref().map_or(0xFE, |v| v.len() as u8)];
            rec.extend_from_slice(k);
            rec.extend_from_slice(v.as_deref().unwrap_or(&[]));
            if let Some(d) = img.get_mut(at..at + rec.len()) {
                d.copy_from_slice(&rec);
                at += rec.len();
            }
        }
        PlainLog(img)
    }

    /// What the log says, or `None` when it does not parse.
    fn read(&self) -> Option<Model> {
        let mut m = Model::new();
        let mut at = 0;
        while let Some(&kl) = self.0.get(at) {
            if kl == 0xFF {
                break;
            }
            let vl = *self.0.get(at + 1)?;
            let k = self.0.get(at + 2..at + 2 + usize::from(kl))?.to_vec();
            at += 2 + usize::from(kl);
            if vl == 0xFE {
                m.remove(&k);
            } else {
                let v = self.0.get(at..at + usize::from(vl))?.to_vec();
                at += usize::from(vl);
                m.insert(k, v);
            }
        }
        Some(m)
    }
}

fn tamper(o: &Opts) -> Row {
    let mut row = Row::new(
        "flash-tamper",
        "Flash tampering (bit flips, spliced and erased chunks where records are written)",
    );
    row.survived = None;
    let (mut detected, mut voided, mut control, mut control_runs) = (0, 0, 0, 0);
    for i in 0..o.attempts {
        let mut rng = SimRng::new(o.seed.wrapping_add(u64::from(i)) ^ 0x57);
        let (mut flash, model, mut counter, ops) = history(&mut rng, 20 + (i as usize % 30));
        let r = [rng.next_u64_raw(), rng.next_u64_raw(), rng.next_u64_raw()];
        let before = flash.image().to_vec();
        tamper_image(flash.image_mut(), i % 3, r, ERASE);
        // Only an attempt that changed written bytes tampered with
        // anything (erasing erased space changes nothing): the others are
        // voided and shown, not counted.
        let w = written(&before, ERASE);
        if w.iter().all(|&p| before.get(p) == flash.image().get(p)) {
            voided += 1;
            continue;
        }
        let (bad, det) = betrayed(flash, &mut counter, &model);
        detected += u32::from(det);
        row.attempt(bad, true);
        // Control: the same history and tampering in a log without
        // authentication; a wrong or missing value read back is the effect.
        let mut plain = PlainLog::new(&ops);
        let clean = plain.read();
        tamper_image(&mut plain.0, i % 3, r, ERASE);
        if clean.as_ref() == Some(&model) {
            control_runs += 1;
            let got = plain.read();
            let wrong = got.is_some_and(|g| PROBE.iter().any(|k| g.get(*k) != model.get(*k)));
            control += u32::from(wrong);
        }
    }
    let n = row.attempts;
    row.defence = format!(
        "XChaCha20-Poly1305 per record (error reported in {detected}/{n}; in the rest every key read its committed value; {voided} more attempts voided, the written bytes unchanged; control, the same history and kinds of tampering in an unauthenticated log: a wrong or missing value read in {control}/{control_runs})"
    );
    // Partial by nature: a random flip or splice can miss every probed
    // key, so at least one attempt must show it.
    row.control(control, n, true);
    if control == 0 || control_runs != n {
        row.failure = Some(format!(
            "control: the unauthenticated log gave a wrong value in {control}/{control_runs} of {n}"
        ));
    }
    row.baseline = Cmp::Na("no store");
    row
}

fn rollback(o: &Opts) -> Row {
    let mut row = Row::new("flash-rollback", "Flash rollback to an older image");
    row.survived = None;
    let mut control = 0;
    for i in 0..o.attempts {
        let mut rng = SimRng::new(o.seed.wrapping_add(u64::from(i)) ^ 0x80);
        let mut counter = RamCounter::default();
        let Ok(mut s) = Store::<_, _, 16, SECTORS>::mount(
            Flash::new(),
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rand_core::OsRng,
        ) else {
            panic!("lab bug: blank store did not mount");
        };
        let total = 5 + (rng.next_u64_raw() % 40) as usize;
        let snap_at = (rng.next_u64_raw() as usize) % (total - 1);
        let mut snapshot = None;
        let mut last = Vec::new();
        for k in 0..total {
            last = format!("led-state-{k}").into_bytes();
            let _ = s.set(b"led", &last);
            if k == snap_at {
                snapshot = Some(s.flash().image().to_vec());
            }
        }
        drop(s);
        let mut old = Flash::new();
        if let Some(img) = snapshot {
            old.image_mut().copy_from_slice(&img);
        }
        // Control: the same old image with the trusted counter lost (a
        // fresh one) mounts and serves the old value, so the probe below
        // does see a rollback when one gets through.
        let mut lost = RamCounter::default();
        if let Ok(mut s) = Store::<_, _, 16, SECTORS>::mount(
            old.clone(),
            &ROOT,
            &mut lost,
            Config::new(),
            &mut rand_core::OsRng,
        ) {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.get(b"led", &mut buf) {
                control += u32::from(buf.get(..n) != Some(last.as_slice()));
            }
        }
        let model: Model = [(b"led".to_vec(), last)].into_iter().collect();
        // Only the newest value may come back (or the mount fails).
        let mut ok_probe = true;
        if let Ok(mut s) = Store::<_, _, 16, SECTORS>::mount(
            old,
            &ROOT,
            &mut counter,
            Config::new(),
            &mut rand_core::OsRng,
        ) {
            let mut buf = [0u8; 64];
            ok_probe = match s.get(b"led", &mut buf) {
                Ok(n) => buf.get(..n) == model.get(&b"led"[..]).map(Vec::as_slice),
                Err(_) => true,
            };
        }
        row.attempt(!ok_probe, true);
    }
    row.defence = format!(
        "trusted monotonic counter checked at mount (control without it: old value served {control}/{})",
        row.attempts
    );
    row.control(control, row.attempts, false);
    row.baseline = Cmp::Na("no store");
    row
}

/// A NOR flash whose power fails after `budget` more program or erase
/// operations: the word being programmed gets a random subset of its new
/// zero bits, the sector being erased is erased only up to a random word.
struct CutFlash {
    data: Vec<u8>,
    budget: Option<u64>,
    events: u64,
    dead: bool,
    rng: SimRng,
}

impl CutFlash {
    fn tick(&mut self) -> Result<(), bool> {
        if self.dead {
            return Err(false);
        }
        self.events += 1;
        match &mut self.budget {
            Some(0) => {
                self.dead = true;
                Err(true)
            }
            Some(b) => {
                *b -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl ErrorType for CutFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for CutFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if self.dead {
            return Err(NorFlashErrorKind::Other);
        }
        check_read(self, offset, bytes.len())?;
        let src = self
            .data
            .get(offset as usize..offset as usize + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for CutFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        for s in (from as usize..to as usize).step_by(ERASE) {
            if let Err(now) = self.tick() {
                if now {
                    let k = (self.rng.next_u64_raw() as usize) % (ERASE / 4);
                    if let Some(d) = self.data.get_mut(s..s + 4 * k) {
                        d.fill(0xFF);
                    }
                }
                return Err(NorFlashErrorKind::Other);
            }
            if let Some(d) = self.data.get_mut(s..s + ERASE) {
                d.fill(0xFF);
            }
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        for (w, chunk) in bytes.chunks(4).enumerate() {
            let at = offset as usize + 4 * w;
            match self.tick() {
                Ok(()) => {
                    if let Some(d) = self.data.get_mut(at..at + chunk.len()) {
                        for (old, new) in d.iter_mut().zip(chunk) {
                            *old &= new;
                        }
                    }
                }
                Err(now) => {
                    if now {
                        let r = self.rng.next_u64_raw().to_le_bytes();
                        if let Some(d) = self.data.get_mut(at..at + chunk.len()) {
                            for ((old, new), m) in d.iter_mut().zip(chunk).zip(r) {
                                *old &= new | m;
                            }
                        }
                    }
                    return Err(NorFlashErrorKind::Other);
                }
            }
        }
        Ok(())
    }
}

/// Cuts the power during an update of three keys of the store in `image`
/// (history `model`): one transaction when `atomic`, else three separate
/// `set`s (the control). Returns (mixed state seen, store usable after),
/// or `None` if the run could not be set up.
fn cut_once(
    image: &[u8],
    model: &Model,
    counter: RamCounter,
    new_vals: &[Vec<u8>],
    atomic: bool,
    rng: &mut SimRng,
) -> Option<(bool, bool)> {
    let keys: [&[u8]; 3] = [b"psk", b"token", b"led"];
    let fresh = |budget| CutFlash {
        data: image.to_vec(),
        budget,
        events: 0,
        dead: false,
        rng: SimRng::new(image.len() as u64),
    };
    // Mounts, updates; returns the flash events after mount and in total,
    // and the image left behind.
    let run = |flash: CutFlash, counter: &mut RamCounter| -> Option<(u64, u64, Vec<u8>)> {
        let mut s = Store::<_, _, 16, SECTORS>::mount(
            flash,
            &ROOT,
            counter,
            Config::new(),
            &mut rand_core::OsRng,
        )
        .ok()?;
        let mounted = s.flash().events;
        if atomic {
            let mut tx = Transaction::<4>::new();
            for (k, v) in keys.iter().zip(new_vals) {
                let _ = tx.set(k, v);
            }
            let _ = s.commit(&tx);
        } else {
            for (k, v) in keys.iter().zip(new_vals) {
                if s.set(k, v).is_err() {
                    break;
                }
            }
        }
        let (f, _) = s.into_parts();
        Some((mounted, f.events, f.data))
    };
    // Dry run: where the update's flash operations lie.
    let mut c1 = counter;
    let (mounted, total, _) = run(fresh(None), &mut c1)?;
    // The real run, the power cut at one of the update's operations.
    let cut_at = mounted + rng.next_u64_raw() % (total - mounted + 1);
    let mut counter2 = counter;
    let (_, _, data) = run(fresh(Some(cut_at)), &mut counter2)?;
    // Power back: remount the image as the cut left it.
    let back = CutFlash {
        data,
        budget: None,
        events: 0,
        dead: false,
        rng: SimRng::new(1),
    };
    let Ok(mut s) = Store::<_, _, 16, SECTORS>::mount(
        back,
        &ROOT,
        &mut counter2,
        Config::new(),
        &mut rand_core::OsRng,
    ) else {
        return Some((false, false));
    };
    let mut buf = [0u8; 64];
    let mut state = Vec::new();
    for (k, v) in keys.iter().zip(new_vals) {
        let got = s
            .get(k, &mut buf)
            .ok()
            .and_then(|n| buf.get(..n).map(<[u8]>::to_vec));
        let old = model.get(*k).cloned();
        state.push(if got.as_ref() == Some(v) {
            1
        } else if got == old {
            0
        } else {
            2
        });
    }
    let mixed =
        state.contains(&2) || !(state.iter().all(|x| *x == 0) || state.iter().all(|x| *x == 1));
    let writable = s.set(b"k1", b"after").is_ok()
        && s.get(b"k1", &mut buf).ok().and_then(|n| buf.get(..n)) == Some(&b"after"[..]);
    Some((mixed, writable))
}

fn power_cut(o: &Opts) -> Row {
    let mut row = Row::new("power-cut", "Power cut during a store transaction (3 keys)");
    let mut control = 0;
    for i in 0..o.attempts {
        let mut rng = SimRng::new(o.seed.wrapping_add(u64::from(i)) ^ 0x9C);
        let (flash, model, counter, _) = history(&mut rng, (i as usize * 7) % 60);
        let new_vals: Vec<Vec<u8>> = (0..3)
            .map(|k| format!("new-{i}-{k}").into_bytes())
            .collect();
        match cut_once(flash.image(), &model, counter, &new_vals, true, &mut rng) {
            Some((mixed, usable)) => row.attempt(mixed, usable),
            None => row.skipped(),
        }
        // Control: the same update as three separate writes does tear.
        if let Some((mixed, _)) =
            cut_once(flash.image(), &model, counter, &new_vals, false, &mut rng)
        {
            control += u32::from(mixed);
        }
    }
    row.defence = format!(
        "one commit record per transaction (control, 3 separate writes: torn {control}/{}; partial by nature, a cut before the first or after the last write tears nothing)",
        row.attempts
    );
    row.control(control, row.attempts, true);
    row.baseline = Cmp::Na("no store");
    row
}

/// Whether XOR of two images and a known value, tried at every offset,
/// gives `secret` back (what nonce reuse hands an attacker).
fn recovers(a: &[u8], b: &[u8], known: &[u8], secret: &[u8]) -> bool {
    let n = a.len().min(b.len()).saturating_sub(known.len());
    (0..n).any(|o| {
        known.iter().zip(secret).enumerate().all(|(j, (k, s))| {
            matches!((a.get(o + j), b.get(o + j)), (Some(x), Some(y)) if x ^ y ^ k == *s)
        })
    })
}

/// One confidentiality attempt against a store without a trusted counter
/// (as the example node store ran before it got one): the device stores a
/// PSK; the attacker rolls the flash back to the image before it, lets the
/// device write a value the attacker knows (a token, a configuration) and
/// XORs the two images. `salt_seed` = Some(s) gives every mount the same
/// salt source (the control: a device whose "random" salt repeats);
/// None seeds each mount's salt source anew, as a TRNG would. `None` when
/// the attempt could not run (a mount or a write failed).
fn nonce_attempt(rng: &mut SimRng, salt_seed: Option<u64>) -> Option<bool> {
    let mut salt = |seed: Option<u64>| SimRng::new(seed.unwrap_or(rng.next_u64_raw()));
    let mut secret = [0u8; 16];
    let mut known = [0u8; 16];
    let mut r = salt(None);
    rand_core::RngCore::fill_bytes(&mut r, &mut secret);
    rand_core::RngCore::fill_bytes(&mut r, &mut known);
    let pre = 1 + (r.next_u64_raw() % 20) as usize;
    type S = Store<Flash, NoRollbackProtection, 16, SECTORS>;
    let mount = |f: Flash, salt: &mut SimRng| {
        S::mount(f, &ROOT, NoRollbackProtection, Config::new(), salt).ok()
    };
    let mut s = mount(Flash::new(), &mut salt(salt_seed))?;
    for k in 0..pre {
        s.set(b"led", format!("led-{k}").as_bytes()).ok()?;
    }
    let older = s.flash().clone();
    s.set(b"psk", &secret).ok()?;
    let with_secret = s.flash().image().to_vec();
    drop(s);
    let mut s = mount(older, &mut salt(salt_seed))?;
    s.set(b"psk", &known).ok()?;
    Some(recovers(&with_secret, s.flash().image(), &known, &secret))
}

fn nonce_reuse(o: &Opts) -> Row {
    let mut row = Row::new(
        "flash-nonce-reuse",
        "Flash rollback to make a nonce repeat and read a stored key (two images, one known value)",
    );
    row.survived = None;
    let (mut control, mut not_run) = (0, 0u32);
    for i in 0..o.attempts {
        let mut rng = SimRng::new(o.seed.wrapping_add(u64::from(i)) ^ 0x90);
        match nonce_attempt(&mut rng, None) {
            Some(recovered) => row.attempt(recovered, true),
            None => {
                not_run += 1;
                row.skipped();
            }
        }
        control += u32::from(nonce_attempt(&mut rng, Some(0x5a17)) == Some(true));
    }
    if not_run > 0 {
        row.failure = Some(format!(
            "{not_run}/{} attempts could not run (a mount or a write failed)",
            o.attempts
        ));
    }
    row.defence = format!(
        "random 128-bit salt per mount in every XChaCha20-Poly1305 nonce (control, the salt repeating across mounts: key recovered {control}/{})",
        o.attempts
    );
    row.control(control, o.attempts, false);
    row.baseline = Cmp::Na("no store");
    row
}

/// The storage rows.
pub fn run(o: &Opts) -> Vec<Row> {
    vec![tamper(o), rollback(o), nonce_reuse(o), power_cut(o)]
}
