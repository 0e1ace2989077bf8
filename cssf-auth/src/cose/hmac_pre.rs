//! HMAC-SHA256 (RFC 2104) with the inner and outer key blocks compressed
//! once per key (RFC 2104 §4, "precomputing the intermediate results"): a
//! MAC then costs the message blocks plus one outer block, not two more
//! key blocks. The midstates are key-equivalent secrets: zeroized on drop.
//! Checked against the `hmac` crate in the tests below.

use sha2::compress256;
use sha2::digest::generic_array::GenericArray;
use zeroize::{Zeroize, ZeroizeOnDrop};

const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    compress256(state, &[GenericArray::from(*block)]);
}

/// The SHA-256 states after the `K ^ ipad` and `K ^ opad` blocks.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacMidstate {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacMidstate {
    /// Precomputes for `key` (keys longer than a block are hashed first).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            let mut h = Sha256Stream::new(IV, 0);
            h.update(key);
            let d = h.finish();
            if let Some(dst) = k.get_mut(..32) {
                dst.copy_from_slice(&d);
            }
        } else if let Some(dst) = k.get_mut(..key.len()) {
            dst.copy_from_slice(key);
        }
        let mut ipad = k;
        let mut opad = k;
        for (i, o) in ipad.iter_mut().zip(opad.iter_mut()) {
            *i ^= 0x36;
            *o ^= 0x5c;
        }
        let (mut inner, mut outer) = (IV, IV);
        compress(&mut inner, &ipad);
        compress(&mut outer, &opad);
        k.zeroize();
        ipad.zeroize();
        opad.zeroize();
        Self { inner, outer }
    }

    /// A MAC computation: feed the message with [`Sha256Stream::update`],
    /// then [`Self::finish`].
    pub(crate) fn start(&self) -> Sha256Stream {
        Sha256Stream::new(self.inner, 64)
    }

    /// The tag for the inner hash stream `s`.
    pub(crate) fn finish(&self, s: Sha256Stream) -> [u8; 32] {
        let inner = s.finish();
        let mut o = Sha256Stream::new(self.outer, 64);
        o.update(&inner);
        o.finish()
    }
}

/// SHA-256 from a given state, `done` bytes already compressed.
pub(crate) struct Sha256Stream {
    state: [u32; 8],
    buf: [u8; 64],
    n: usize,
    total: u64,
}

impl Drop for Sha256Stream {
    fn drop(&mut self) {
        self.state.zeroize();
        self.buf.zeroize();
    }
}

impl Sha256Stream {
    fn new(state: [u32; 8], done: u64) -> Self {
        Self {
            state,
            buf: [0; 64],
            n: 0,
            total: done,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.n > 0 {
            let take = (64 - self.n).min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(dst) = self.buf.get_mut(self.n..self.n + take) {
                dst.copy_from_slice(head);
            }
            self.n += take;
            data = rest;
            if self.n < 64 {
                return;
            }
            let b = self.buf;
            compress(&mut self.state, &b);
            self.n = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            let arr: [u8; 64] = b.try_into().unwrap_or([0; 64]);
            compress(&mut self.state, &arr);
        }
        let rest = blocks.remainder();
        if let Some(dst) = self.buf.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.n = rest.len();
    }

    fn finish(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8);
        let n = self.n;
        if let Some(b) = self.buf.get_mut(n) {
            *b = 0x80;
        }
        if let Some(z) = self.buf.get_mut(n + 1..) {
            z.fill(0);
        }
        if n >= 56 {
            let b = self.buf;
            compress(&mut self.state, &b);
            self.buf = [0; 64];
        }
        if let Some(l) = self.buf.get_mut(56..) {
            l.copy_from_slice(&bits.to_be_bytes());
        }
        let b = self.buf;
        compress(&mut self.state, &b);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state.iter()) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    #[test]
    fn matches_the_hmac_crate() {
        let msg: std::vec::Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for klen in [1usize, 16, 32, 63, 64, 65, 100] {
            let key: std::vec::Vec<u8> = (0..klen).map(|i| (i * 13) as u8).collect();
            let pre = HmacMidstate::new(&key);
            for mlen in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 142, 300] {
                let m = &msg[..mlen];
                let mut r = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
                r.update(m);
                let want: [u8; 32] = r.finalize().into_bytes().into();
                // one update, and split into uneven pieces
                let mut s = pre.start();
                s.update(m);
                assert_eq!(pre.finish(s), want, "k{klen} m{mlen}");
                let mut s = pre.start();
                for piece in m.chunks(7) {
                    s.update(piece);
                }
                assert_eq!(pre.finish(s), want, "k{klen} m{mlen} pieces");
            }
        }
    }
}
