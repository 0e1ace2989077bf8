//! Echo values (RFC 9175 §2) that need no table: each one is its issue
//! time and a MAC over that time and the peer it was issued to, under a key
//! drawn once from the caller's RNG (the "integrity-protected timestamp" of
//! RFC 9175 Appendix A). A value is fresh for `Config::echo_lifetime` after
//! it was issued, whenever the endpoint is called, and only from the peer
//! it was issued to (so it also proves that the peer receives at its
//! address, §2.4 item 3).

use core::hash::{Hash, Hasher};
use core::time::Duration;

/// Length of an Echo value: 4 bytes of issue time (seconds, big-endian,
/// modulo 2^32) and an 8-byte tag.
pub(super) const ECHO_LEN: usize = 12;

/// The MAC key.
#[derive(Debug, Clone, Copy)]
pub(super) struct EchoKey {
    k0: u64,
    k1: u64,
}

impl EchoKey {
    pub(super) fn new(k0: u64, k1: u64) -> Self {
        EchoKey { k0, k1 }
    }

    fn tag<A: Hash>(&self, issued: u32, peer: &A) -> [u8; 8] {
        let mut h = SipHasher24::new(self.k0, self.k1);
        h.write(b"coap-echo");
        h.write(&issued.to_be_bytes());
        peer.hash(&mut h);
        h.finish().to_be_bytes()
    }

    /// The value for `peer` at `now`.
    pub(super) fn value<A: Hash>(&self, now: Duration, peer: &A) -> [u8; ECHO_LEN] {
        let issued = low32(now.as_secs());
        let mut v = [0u8; ECHO_LEN];
        let (t, m) = v.split_at_mut(4);
        t.copy_from_slice(&issued.to_be_bytes());
        m.copy_from_slice(&self.tag(issued, peer));
        v
    }

    /// Whether `value` was issued by this key to `peer` less than
    /// `lifetime` before `now` (the issue time is kept in whole seconds,
    /// rounded down, so a value is never accepted longer than `lifetime`).
    pub(super) fn is_fresh<A: Hash>(
        &self,
        now: Duration,
        lifetime: Duration,
        peer: &A,
        value: &[u8],
    ) -> bool {
        let Ok(v) = <[u8; ECHO_LEN]>::try_from(value) else {
            return false;
        };
        let (t, m) = v.split_at(4);
        let Ok(t) = <[u8; 4]>::try_from(t) else {
            return false;
        };
        let issued = u32::from_be_bytes(t);
        // Seconds since the issue time, modulo 2^32 (a value "from the
        // future" shows up as a very old one).
        let age = u64::from(low32(now.as_secs()).wrapping_sub(issued));
        let Some(at) = now.as_secs().checked_sub(age) else {
            return false;
        };
        let fresh = now.saturating_sub(Duration::from_secs(at)) < lifetime;
        // Compare without an early exit.
        let expect = self.tag(issued, peer);
        let diff = expect.iter().zip(m).fold(0u8, |d, (a, b)| d | (a ^ b));
        fresh && diff == 0
    }
}

fn low32(x: u64) -> u32 {
    (x & 0xffff_ffff) as u32
}

/// SipHash-2-4 (Aumasson and Bernstein), a keyed PRF for short inputs.
#[derive(Debug, Clone)]
struct SipHasher24 {
    v: [u64; 4],
    /// Bytes not yet absorbed (little-endian, `ntail` of them).
    tail: u64,
    ntail: u32,
    len: u64,
}

impl SipHasher24 {
    fn new(k0: u64, k1: u64) -> Self {
        SipHasher24 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.v;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        self.v = [v0, v1, v2, v3];
    }

    fn absorb(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.round();
        self.v[0] ^= m;
    }
}

impl Hasher for SipHasher24 {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.tail |= u64::from(b) << (8 * self.ntail);
            self.ntail += 1;
            self.len = self.len.wrapping_add(1);
            if self.ntail == 8 {
                let m = self.tail;
                self.absorb(m);
                self.tail = 0;
                self.ntail = 0;
            }
        }
    }

    fn finish(&self) -> u64 {
        let mut s = self.clone();
        let b = ((s.len & 0xff) << 56) | s.tail;
        s.absorb(b);
        s.v[2] ^= 0xff;
        for _ in 0..4 {
            s.round();
        }
        let [v0, v1, v2, v3] = s.v;
        v0 ^ v1 ^ v2 ^ v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors of the SipHash paper: key 00..0f, message
    /// 00..(n-1).
    #[test]
    fn siphash_2_4_reference_vectors() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let h = |n: u8| {
            let mut s = SipHasher24::new(k0, k1);
            let msg: [u8; 16] = core::array::from_fn(|i| i as u8);
            s.write(&msg[..usize::from(n)]);
            s.finish()
        };
        assert_eq!(h(0), 0x726f_db47_dd0e_0e31);
        assert_eq!(h(1), 0x74f8_39c5_93dc_67fd);
        assert_eq!(h(8), 0x93f5_f579_9a93_2462);
        assert_eq!(h(15), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn values_are_bound_to_peer_key_and_time() {
        let k = EchoKey::new(1, 2);
        let life = Duration::from_secs(30);
        let t = Duration::from_millis(100_900);
        let v = k.value(t, &7u8);
        assert!(k.is_fresh(t, life, &7u8, &v));
        assert!(k.is_fresh(t + Duration::from_millis(29_099), life, &7u8, &v));
        // Issued at 100.9 s, kept as 100 s: refused from 130 s on.
        assert!(!k.is_fresh(Duration::from_secs(130), life, &7u8, &v));
        assert!(!k.is_fresh(t, life, &8u8, &v), "another peer");
        assert!(
            !EchoKey::new(1, 3).is_fresh(t, life, &7u8, &v),
            "another key"
        );
        assert!(
            !k.is_fresh(t - Duration::from_secs(2), life, &7u8, &v),
            "from the future"
        );
        let mut forged = v;
        forged[3] ^= 1; // a later issue time with the old tag
        assert!(!k.is_fresh(t, life, &7u8, &forged));
        assert!(!k.is_fresh(t, life, &7u8, &v[..11]));
    }
}
