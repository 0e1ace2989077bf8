//! COSE_Mac0 (RFC 9052 §6.2) with HMAC-SHA256 (RFC 9053 §3.1): alg 5 (full
//! 32-byte tag) and alg 4 (tag truncated to 8 bytes). The MAC_structure of
//! §6.3 is streamed into the HMAC; tags compare in constant time and must
//! have exactly the algorithm's length (a truncated tag is refused).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::cose::sign1::stream_structure;
use crate::cose::{Algorithm, CoseKey, Header};
use crate::Error;

/// Context string of the MAC_structure for COSE_Mac0.
pub const CONTEXT: &str = "MAC0";

/// A parsed COSE_Mac0; [`CoseMac0::verify`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoseMac0<'a> {
    /// The serialized protected bucket.
    pub protected: &'a [u8],
    /// Parsed header parameters.
    pub header: Header<'a>,
    /// The payload.
    pub payload: &'a [u8],
    /// The (possibly truncated) tag.
    pub tag: &'a [u8],
}

/// Full HMAC-SHA256 over the MAC_structure.
pub fn mac_structure_hmac(
    key: &[u8],
    protected: &[u8],
    external_aad: &[u8],
    payload: &[u8],
) -> Result<[u8; 32], Error> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Error::UnknownKey)?;
    stream_structure(CONTEXT, protected, external_aad, Some(payload), |b| {
        mac.update(b)
    });
    Ok(mac.finalize().into_bytes().into())
}

/// Constant-time equality of two tags: the XOR of every 64-bit word is
/// OR-folded without branches and the result compared with `subtle` once
/// (a byte-wise `ct_eq` costs as much as a quarter of the HMAC of a short
/// token).
fn ct_eq_words(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u64;
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let xa: [u8; 8] = x.try_into().unwrap_or([0; 8]);
        let ya: [u8; 8] = y.try_into().unwrap_or([0; 8]);
        diff |= u64::from_le_bytes(xa) ^ u64::from_le_bytes(ya);
    }
    for (x, y) in ra.iter().zip(rb) {
        diff |= u64::from(x ^ y);
    }
    bool::from(diff.ct_eq(&0))
}

/// Tag length of an HMAC algorithm.
pub(crate) fn tag_len(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::Hmac256_64 => Some(8),
        Algorithm::Hmac256 => Some(32),
        _ => None,
    }
}

impl CoseMac0<'_> {
    /// Verifies the tag with `key`, which must be an HMAC key for exactly the
    /// protected `alg`.
    pub fn verify(&self, key: &CoseKey, external_aad: &[u8]) -> Result<(), Error> {
        let alg = self.header.alg.ok_or(Error::MissingAlg)?;
        let len = tag_len(alg).ok_or(Error::UnsupportedAlgorithm)?;
        let k = match (key, alg) {
            (CoseKey::Hmac256_64(k), Algorithm::Hmac256_64) => k,
            (CoseKey::Hmac256(k), Algorithm::Hmac256) => k,
            _ => return Err(Error::UnknownKey),
        };
        if self.tag.len() != len {
            return Err(Error::VerificationFailed);
        }
        let full = match k.hmac_midstate() {
            Some(pre) => {
                let mut s = pre.start();
                stream_structure(
                    CONTEXT,
                    self.protected,
                    external_aad,
                    Some(self.payload),
                    |b| s.update(b),
                );
                pre.finish(s)
            }
            None => mac_structure_hmac(k.as_bytes(), self.protected, external_aad, self.payload)?,
        };
        let expected = full.get(..len).ok_or(Error::VerificationFailed)?;
        if ct_eq_words(expected, self.tag) {
            Ok(())
        } else {
            Err(Error::VerificationFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_compare() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(ct_eq_words(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq_words(&a, &b));
        assert!(!ct_eq_words(&a[..8], &a));
        assert!(ct_eq_words(&a[..5], &b[..5]));
    }
}
