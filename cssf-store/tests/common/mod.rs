//! Test doubles shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]
// Test double: indexing is bounds-checked by `check_*` above each access.
#![allow(clippy::indexing_slicing, clippy::panic)]

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

pub const ERASE: usize = 1024;

/// A NOR flash in a Vec with a power-cut switch: after `budget` more program
/// words or erases, the power fails. The word being programmed when the power
/// fails is left with a random subset of its new zero bits; a sector being
/// erased is left with its first `K` words erased, one word with random bits
/// set, and the rest as before.
#[derive(Clone, Debug)]
pub struct SimFlash {
    pub data: Vec<u8>,
    pub budget: Option<u64>,
    pub events: u64,
    pub dead: bool,
    pub rng: u64,
}

impl SimFlash {
    pub fn new(sectors: usize) -> Self {
        Self {
            data: vec![0xFF; sectors * ERASE],
            budget: None,
            events: 0,
            dead: false,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn from_image(data: Vec<u8>) -> Self {
        Self {
            data,
            budget: None,
            events: 0,
            dead: false,
            rng: 1,
        }
    }

    pub fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Consumes one event: `Ok(())`, or `Err(true)` when the power fails at
    /// this event, `Err(false)` when it already failed.
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

impl ErrorType for SimFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if self.dead {
            return Err(NorFlashErrorKind::Other);
        }
        check_read(self, offset, bytes.len())?;
        bytes.copy_from_slice(&self.data[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for SimFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        for s in (from as usize..to as usize).step_by(ERASE) {
            if let Err(now) = self.tick() {
                if now {
                    let words = ERASE / 4;
                    let k = (self.next_rand() as usize) % words;
                    self.data[s..s + 4 * k].fill(0xFF);
                    let r = self.next_rand() as u32;
                    for (i, b) in r.to_le_bytes().iter().enumerate() {
                        self.data[s + 4 * k + i] |= b;
                    }
                }
                return Err(NorFlashErrorKind::Other);
            }
            self.data[s..s + ERASE].fill(0xFF);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        for (w, chunk) in bytes.chunks(4).enumerate() {
            let at = offset as usize + 4 * w;
            for (i, b) in chunk.iter().enumerate() {
                assert_eq!(
                    b & !self.data[at + i],
                    0,
                    "NOR violation: write sets a bit at {}",
                    at + i
                );
            }
            if let Err(now) = self.tick() {
                if now {
                    let r = self.next_rand() as u32;
                    for (i, b) in chunk.iter().enumerate() {
                        self.data[at + i] &= b | r.to_le_bytes()[i];
                    }
                }
                return Err(NorFlashErrorKind::Other);
            }
            for (i, b) in chunk.iter().enumerate() {
                self.data[at + i] &= b;
            }
        }
        Ok(())
    }
}

/// A deterministic generator for mount salts in tests: every call to
/// [`rng`] starts a new stream, so each mount draws another salt, as a real
/// entropy source would (the tests stay reproducible).
pub struct TestRng(u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// Test double only: stands in for a TRNG so salts differ per mount.
impl rand_core::CryptoRng for TestRng {}

/// A fresh salt source for one mount.
pub fn rng() -> TestRng {
    static SEED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    TestRng(
        SEED.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
            .wrapping_mul(0xD1B5_4A32_D192_ED03),
    )
}
