//! COSE_Encrypt0 (RFC 9052 §5.2) with AES-CCM-16-64-128 (alg 10: 16-byte
//! key, 13-byte nonce, 8-byte tag) and ChaCha20/Poly1305 (alg 24: 32-byte
//! key, 12-byte nonce, 16-byte tag), RFC 9053 §4.2 and §4.3.
//!
//! The Enc_structure of §5.3 is the AEAD associated data; it is built in a
//! bounded stack buffer ([`MAX_ENC_STRUCTURE`]). The nonce is the `IV`
//! header, or the `Partial IV` left-padded and XORed with the key's base IV
//! (§3.1). Decryption happens in place: the caller's buffer holds the
//! ciphertext on entry and the plaintext on success.

use core::ops::Range;

use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use chacha20poly1305::ChaCha20Poly1305;

use crate::cose::sign1::stream_structure;
use crate::cose::{Algorithm, CoseKey, Header};
use crate::Error;

/// Context string of the Enc_structure for COSE_Encrypt0.
pub const CONTEXT: &str = "Encrypt0";
/// Largest Enc_structure (protected bucket plus external AAD plus framing).
pub const MAX_ENC_STRUCTURE: usize = 256;

type AesCcm16_64_128 = ccm::Ccm<Aes128, U8, U13>;

/// A parsed COSE_Encrypt0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoseEncrypt0<'a> {
    /// The serialized protected bucket.
    pub protected: &'a [u8],
    /// Parsed header parameters.
    pub header: Header<'a>,
    /// Ciphertext followed by the AEAD tag.
    pub ciphertext: &'a [u8],
    /// Where the ciphertext sits in the parsed input (for in-place decryption).
    pub ciphertext_range: Range<usize>,
}

/// Everything needed to decrypt, copied out of the message so the buffer
/// holding it can then be decrypted in place.
#[derive(Clone)]
pub struct Prepared {
    alg: Algorithm,
    aad: [u8; MAX_ENC_STRUCTURE],
    aad_len: usize,
    nonce: [u8; 13],
    range: Range<usize>,
}

fn params(alg: Algorithm) -> Result<(usize, usize), Error> {
    match alg {
        Algorithm::AesCcm16_64_128 => Ok((13, 8)),
        Algorithm::ChaCha20Poly1305 => Ok((12, 16)),
        _ => Err(Error::UnsupportedAlgorithm),
    }
}

/// Builds the Enc_structure into `out`, returning its length.
pub fn enc_structure(
    protected: &[u8],
    external_aad: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut n = 0usize;
    let mut overflow = false;
    stream_structure(CONTEXT, protected, external_aad, None, |b| {
        match out.get_mut(n..n + b.len()) {
            Some(dst) => dst.copy_from_slice(b),
            None => overflow = true,
        }
        n += b.len();
    });
    if overflow {
        Err(Error::TooLarge)
    } else {
        Ok(n)
    }
}

/// Computes the nonce for `alg` from the header and the key's base IV.
pub(crate) fn nonce(
    header: &Header<'_>,
    alg: Algorithm,
    key: &CoseKey,
    out: &mut [u8; 13],
) -> Result<usize, Error> {
    let (nlen, _) = params(alg)?;
    let base: Option<&[u8]> = match key {
        CoseKey::AesCcm16_64_128 { base_iv, .. } => base_iv.as_ref().map(|b| &b[..]),
        CoseKey::ChaCha20Poly1305 { base_iv, .. } => base_iv.as_ref().map(|b| &b[..]),
        _ => None,
    };
    let dst = out.get_mut(..nlen).ok_or(Error::BadIv)?;
    match (header.iv, header.partial_iv, base) {
        (Some(iv), None, _) if iv.len() == nlen => dst.copy_from_slice(iv),
        (None, Some(piv), Some(base)) if piv.len() <= nlen && base.len() == nlen => {
            dst.copy_from_slice(base);
            let off = nlen - piv.len();
            for (d, p) in dst.iter_mut().skip(off).zip(piv) {
                *d ^= p;
            }
        }
        _ => return Err(Error::BadIv),
    }
    Ok(nlen)
}

impl CoseEncrypt0<'_> {
    /// Checks the key against the protected `alg` and copies the nonce and
    /// the Enc_structure out of the message.
    pub fn prepare(&self, key: &CoseKey, external_aad: &[u8]) -> Result<Prepared, Error> {
        let alg = self.header.alg.ok_or(Error::MissingAlg)?;
        params(alg)?;
        if key.algorithm() != alg {
            return Err(Error::UnknownKey);
        }
        let mut p = Prepared {
            alg,
            aad: [0; MAX_ENC_STRUCTURE],
            aad_len: 0,
            nonce: [0; 13],
            range: self.ciphertext_range.clone(),
        };
        nonce(&self.header, alg, key, &mut p.nonce)?;
        p.aad_len = enc_structure(self.protected, external_aad, &mut p.aad)?;
        Ok(p)
    }
}

impl Prepared {
    /// Decrypts `buf[range]` (the range recorded at parse time) in place with
    /// `key`, returning the range of the plaintext within `buf`.
    pub fn decrypt_in_place(&self, key: &CoseKey, buf: &mut [u8]) -> Result<Range<usize>, Error> {
        let region = buf.get_mut(self.range.clone()).ok_or(Error::Malformed)?;
        let plain = decrypt_detached(self.alg, key, self.nonce_slice(), self.aad(), region)?;
        Ok(self.range.start..self.range.start + plain)
    }

    fn aad(&self) -> &[u8] {
        self.aad.get(..self.aad_len).unwrap_or(&[])
    }

    fn nonce_slice(&self) -> &[u8] {
        let n = params(self.alg).map(|p| p.0).unwrap_or(0);
        self.nonce.get(..n).unwrap_or(&[])
    }
}

/// Decrypts `region` = ciphertext || tag in place; returns the plaintext length.
pub(crate) fn decrypt_detached(
    alg: Algorithm,
    key: &CoseKey,
    nonce: &[u8],
    aad: &[u8],
    region: &mut [u8],
) -> Result<usize, Error> {
    let (nlen, tlen) = params(alg)?;
    if nonce.len() != nlen {
        return Err(Error::BadIv);
    }
    let plen = region
        .len()
        .checked_sub(tlen)
        .ok_or(Error::VerificationFailed)?;
    let (data, tag) = region.split_at_mut(plen);
    let ok = match (alg, key) {
        (Algorithm::AesCcm16_64_128, CoseKey::AesCcm16_64_128 { key, .. }) => {
            let c =
                AesCcm16_64_128::new_from_slice(key.as_bytes()).map_err(|_| Error::UnknownKey)?;
            c.decrypt_in_place_detached(nonce.into(), aad, data, (&*tag).into())
                .is_ok()
        }
        (Algorithm::ChaCha20Poly1305, CoseKey::ChaCha20Poly1305 { key, .. }) => {
            let c =
                ChaCha20Poly1305::new_from_slice(key.as_bytes()).map_err(|_| Error::UnknownKey)?;
            c.decrypt_in_place_detached(nonce.into(), aad, data, (&*tag).into())
                .is_ok()
        }
        _ => return Err(Error::UnknownKey),
    };
    if ok {
        Ok(plen)
    } else {
        Err(Error::VerificationFailed)
    }
}

/// Encrypts `region[..plen]` in place and writes the tag after it; returns
/// the ciphertext-with-tag length (issuer side).
#[cfg(feature = "issuer")]
pub fn encrypt_detached(
    alg: Algorithm,
    key: &CoseKey,
    nonce: &[u8],
    aad: &[u8],
    region: &mut [u8],
    plen: usize,
) -> Result<usize, Error> {
    let (nlen, tlen) = params(alg)?;
    if nonce.len() != nlen {
        return Err(Error::BadIv);
    }
    let total = plen + tlen;
    if region.len() < total {
        return Err(Error::BufferTooSmall { needed: total });
    }
    let (data, rest) = region.split_at_mut(plen);
    let tag_dst = rest
        .get_mut(..tlen)
        .ok_or(Error::BufferTooSmall { needed: total })?;
    match (alg, key) {
        (Algorithm::AesCcm16_64_128, CoseKey::AesCcm16_64_128 { key, .. }) => {
            let c =
                AesCcm16_64_128::new_from_slice(key.as_bytes()).map_err(|_| Error::UnknownKey)?;
            let tag = c
                .encrypt_in_place_detached(nonce.into(), aad, data)
                .map_err(|_| Error::TooLarge)?;
            tag_dst.copy_from_slice(&tag);
        }
        (Algorithm::ChaCha20Poly1305, CoseKey::ChaCha20Poly1305 { key, .. }) => {
            let c =
                ChaCha20Poly1305::new_from_slice(key.as_bytes()).map_err(|_| Error::UnknownKey)?;
            let tag = c
                .encrypt_in_place_detached(nonce.into(), aad, data)
                .map_err(|_| Error::TooLarge)?;
            tag_dst.copy_from_slice(&tag);
        }
        _ => return Err(Error::UnknownKey),
    }
    Ok(total)
}

#[cfg(all(test, feature = "issuer"))]
mod tests {
    use super::*;
    use crate::cose::{Limits, Message};

    #[test]
    fn partial_iv_with_base_iv() {
        let base = [0xa0u8; 13];
        let key = CoseKey::AesCcm16_64_128 {
            key: crate::cose::SymmetricKey::new(&[5; 16]).unwrap(),
            base_iv: Some(base),
        };
        let protected = [0xa1, 0x01, 0x0a];
        let mut aad = [0u8; MAX_ENC_STRUCTURE];
        let alen = enc_structure(&protected, &[], &mut aad).unwrap();
        let mut nonce = base;
        nonce[11] ^= 0x01;
        nonce[12] ^= 0x02;
        let mut region = [0u8; 13];
        region[..5].copy_from_slice(b"hello");
        let clen = encrypt_detached(
            Algorithm::AesCcm16_64_128,
            &key,
            &nonce,
            &aad[..alen],
            &mut region,
            5,
        )
        .unwrap();
        // 16([h'A1010A', {6: h'0102'}, h'<ciphertext>'])
        let mut msg = std::vec![
            0xd0,
            0x83,
            0x43,
            0xa1,
            0x01,
            0x0a,
            0xa1,
            0x06,
            0x42,
            0x01,
            0x02,
            0x40 | clen as u8
        ];
        msg.extend_from_slice(&region[..clen]);
        let Message::Encrypt0(m) = Message::parse(&msg, &Limits::default()).unwrap() else {
            panic!()
        };
        let prep = m.prepare(&key, &[]).unwrap();
        let mut buf = msg.clone();
        let r = prep.decrypt_in_place(&key, &mut buf).unwrap();
        assert_eq!(&buf[r], b"hello");
        // without a base IV the Partial IV cannot be used
        let no_base = CoseKey::aead(Algorithm::AesCcm16_64_128, &[5; 16]).unwrap();
        assert_eq!(m.prepare(&no_base, &[]).err(), Some(Error::BadIv));
    }
}
