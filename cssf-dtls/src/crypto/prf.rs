//! The TLS 1.2 pseudo-random function, P_SHA256 (RFC 5246 §5), and the key
//! schedule built on it: master secret (§8.1), extended master secret
//! (RFC 7627 §4), key block (§6.3) and Finished verify_data (§7.4.9).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Fills `out` with `PRF(secret, label, seed_parts...)` = P_SHA256(secret, label || seed).
pub fn prf(secret: &[u8], label: &[u8], seeds: &[&[u8]], out: &mut [u8]) {
    let Ok(base) = HmacSha256::new_from_slice(secret) else {
        // HMAC accepts keys of any length; unreachable in practice.
        return;
    };
    // One HMAC state beside the keyed one, reused for every block (a
    // device's deepest stack frames are in this key schedule).
    // A(1) = HMAC(secret, label || seed)
    let mut m = base.clone();
    m.update(label);
    for s in seeds {
        m.update(s);
    }
    let mut a = Zeroizing::new(<[u8; 32]>::from(m.finalize().into_bytes()));
    let mut block = Zeroizing::new([0u8; 32]);
    for chunk in out.chunks_mut(32) {
        m = base.clone();
        m.update(&a[..]);
        m.update(label);
        for s in seeds {
            m.update(s);
        }
        *block = m.finalize().into_bytes().into();
        let n = chunk.len();
        if let Some(src) = block.get(..n) {
            chunk.copy_from_slice(src);
        }
        m = base.clone();
        m.update(&a[..]);
        *a = m.finalize().into_bytes().into();
    }
}

/// The 48-byte master secret. With `session_hash` (RFC 7627 extended master
/// secret) it binds the handshake transcript, otherwise the two randoms.
pub fn master_secret(
    premaster: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    session_hash: Option<&[u8; 32]>,
) -> Zeroizing<[u8; 48]> {
    let mut ms = Zeroizing::new([0u8; 48]);
    match session_hash {
        Some(h) => prf(premaster, b"extended master secret", &[h], &mut ms[..]),
        None => prf(
            premaster,
            b"master secret",
            &[client_random, server_random],
            &mut ms[..],
        ),
    }
    ms
}

/// The PSK premaster secret (RFC 4279 §2, RFC 5489 §2): `other_secret` is
/// `N` zero bytes for plain PSK or the ECDH shared secret for ECDHE_PSK.
/// Returns the length written into `out`.
pub fn psk_premaster(other: Option<&[u8]>, psk: &[u8], out: &mut [u8; 2 + 66 + 2 + 64]) -> usize {
    let olen = other.map_or(psk.len(), <[u8]>::len);
    let total = 4 + olen + psk.len();
    let Some(buf) = out.get_mut(..total) else {
        return 0;
    };
    buf.fill(0);
    let (len1, rest) = buf.split_at_mut(2);
    len1.copy_from_slice(&(olen as u16).to_be_bytes());
    let (o, rest) = rest.split_at_mut(olen);
    if let Some(other) = other {
        o.copy_from_slice(other);
    }
    let (len2, p) = rest.split_at_mut(2);
    len2.copy_from_slice(&(psk.len() as u16).to_be_bytes());
    p.copy_from_slice(psk);
    total
}

/// Finished verify_data (12 bytes) for the given transcript hash.
pub fn verify_data(master: &[u8; 48], client: bool, transcript: &[u8; 32]) -> [u8; 12] {
    let mut out = [0u8; 12];
    let label: &[u8] = if client {
        b"client finished"
    } else {
        b"server finished"
    };
    prf(master, label, &[transcript], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> std::vec::Vec<u8> {
        let s: std::string::String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The public TLS 1.2 P_SHA256 vector (IETF TLS list); the expected bytes
    /// were confirmed independently with `openssl kdf -keylen 100 -kdfopt
    /// digest:SHA256 ... TLS1-PRF` (label prepended to the seed).
    #[test]
    fn prf_sha256_known_answer() {
        let secret = hex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = hex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let mut out = [0u8; 100];
        prf(&secret, b"test label", &[&seed], &mut out);
        let expected = hex(PRF_EXPECTED);
        assert_eq!(&out[..], &expected[..]);
    }

    const PRF_EXPECTED: &str = concat!(
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a",
        "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab",
        "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701",
        "87347b66"
    );

    #[test]
    fn premaster_layout() {
        let mut out = [0u8; 134];
        let n = psk_premaster(None, b"abc", &mut out);
        assert_eq!(&out[..n], &[0, 3, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let n = psk_premaster(Some(&[9, 9]), b"k", &mut out);
        assert_eq!(&out[..n], &[0, 2, 9, 9, 0, 1, b'k']);
    }
}
