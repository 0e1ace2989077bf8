//! COSE_Sign1 (RFC 9052 §4.2) with ES256 (RFC 9053 §2.1): the signature is
//! the raw 64-byte `r || s`, computed over the Sig_structure of §4.4, which
//! is streamed straight into SHA-256 (no buffer, no heap).

#[cfg(feature = "issuer")]
use p256::ecdsa::Signature;
use sha2::{Digest, Sha256};

use crate::cbor::{MAJOR_ARRAY, MAJOR_BYTES, MAJOR_TEXT};
use crate::cose::{Algorithm, CoseKey, Header};
use crate::Error;
use cssf_provider::CryptoProvider;

/// Context string of the Sig_structure for COSE_Sign1.
pub const CONTEXT: &str = "Signature1";

/// A parsed COSE_Sign1; [`CoseSign1::verify`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoseSign1<'a> {
    /// The serialized protected bucket (`body_protected`).
    pub protected: &'a [u8],
    /// Parsed header parameters.
    pub header: Header<'a>,
    /// The payload.
    pub payload: &'a [u8],
    /// The signature bytes.
    pub signature: &'a [u8],
}

/// Streams a COSE `*_structure` (an array of the context string, the
/// protected bucket, the external AAD and, except for Enc_structure, the
/// payload) into `sink`, exactly as its CBOR serialization.
pub(crate) fn stream_structure(
    context: &str,
    protected: &[u8],
    external_aad: &[u8],
    payload: Option<&[u8]>,
    sink: impl FnMut(&[u8]),
) {
    // The small leading items are gathered into one stack buffer so the
    // hash / MAC sees few, larger updates (it matters for HMAC on short
    // tokens); anything that does not fit is passed through directly.
    let mut c = Coalesce {
        buf: [0; COALESCE],
        n: 0,
        sink,
    };
    c.head(MAJOR_ARRAY, if payload.is_some() { 4 } else { 3 });
    c.head(MAJOR_TEXT, context.len() as u64);
    c.push(context.as_bytes());
    c.head(MAJOR_BYTES, protected.len() as u64);
    c.push(protected);
    c.head(MAJOR_BYTES, external_aad.len() as u64);
    c.push(external_aad);
    if let Some(p) = payload {
        c.head(MAJOR_BYTES, p.len() as u64);
        c.push(p);
    }
    c.flush();
}

const COALESCE: usize = 128;

struct Coalesce<F: FnMut(&[u8])> {
    buf: [u8; COALESCE],
    n: usize,
    sink: F,
}

impl<F: FnMut(&[u8])> Coalesce<F> {
    /// Writes a CBOR head straight into the buffer (no temporary, no
    /// memcpy call for one to nine bytes).
    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        let (first, extra): (u8, usize) = match arg {
            0..=23 => (m | arg as u8, 0),
            24..=0xff => (m | 24, 1),
            0x100..=0xffff => (m | 25, 2),
            0x1_0000..=0xffff_ffff => (m | 26, 4),
            _ => (m | 27, 8),
        };
        if self.n + 1 + extra > COALESCE {
            self.flush();
        }
        let be = arg.to_be_bytes();
        let at = self.n;
        if let Some(b) = self.buf.get_mut(at) {
            *b = first;
        }
        for k in 0..extra {
            if let (Some(dst), Some(src)) = (self.buf.get_mut(at + 1 + k), be.get(8 - extra + k)) {
                *dst = *src;
            }
        }
        self.n = at + 1 + extra;
    }

    fn push(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        match self.buf.get_mut(self.n..self.n + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.n += b.len();
            }
            None => {
                self.flush();
                (self.sink)(b);
            }
        }
    }

    fn flush(&mut self) {
        if self.n > 0 {
            (self.sink)(self.buf.get(..self.n).unwrap_or(&[]));
            self.n = 0;
        }
    }
}

/// SHA-256 of the Sig_structure for COSE_Sign1.
pub fn sig_structure_digest(protected: &[u8], external_aad: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    stream_structure(CONTEXT, protected, external_aad, Some(payload), |b| {
        hash.update(b)
    });
    hash.finalize().into()
}

impl CoseSign1<'_> {
    /// Verifies the signature with `key`, which must be an ES256 public key
    /// and match the protected `alg`; `external_aad` is the application's
    /// externally supplied data (empty for CWTs).
    ///
    /// Both the low-S and the high-S form of a signature verify: RFC 9053
    /// §2.1 does not ask for either, and Authorization Servers emit both
    /// (this crate's issuer emits low-S only). Nothing here keys on a
    /// token's signature bytes: replay is detected by `cti`, and the stored
    /// token a DTLS `psk_identity` names is found by kid or by the exact
    /// bytes posted, so a token re-encoded with the other S is a new post
    /// and meets the replay cache.
    ///
    /// The signature is checked by [`rustcrypto::PROVIDER`]; see
    /// [`verify_with`](Self::verify_with) to choose the provider.
    ///
    /// [`rustcrypto::PROVIDER`]: cssf_provider::rustcrypto::PROVIDER
    pub fn verify(&self, key: &CoseKey, external_aad: &[u8]) -> Result<(), Error> {
        self.verify_with(key, external_aad, &cssf_provider::rustcrypto::PROVIDER)
    }

    /// [`verify`](Self::verify) through `provider`: the Sig_structure is
    /// hashed here (streamed, no buffer) and its SHA-256 digest checked
    /// with one [`P256::verify_digest`](cssf_provider::P256::verify_digest)
    /// call of `provider.p256`, the key passed as its uncompressed SEC1
    /// point.
    ///
    /// ```
    /// # #[cfg(feature = "issuer")] {
    /// use cssf_auth::cose::{CoseKey, CoseSign1, Header, Algorithm};
    /// use cssf_auth::cose::sign1::sign_es256;
    /// use cssf_provider::counting::CountingP256;
    /// use cssf_provider::{rustcrypto, CryptoProvider};
    ///
    /// static COUNTED: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    /// static MINE: CryptoProvider = CryptoProvider { name: "counted", p256: &COUNTED, ..rustcrypto::PROVIDER };
    ///
    /// let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("a valid scalar");
    /// let protected = [0xa1, 0x01, 0x26]; // {alg: ES256}
    /// let sig = sign_es256(&sk, &protected, &[], b"payload")?;
    /// let msg = CoseSign1 {
    ///     protected: &protected,
    ///     header: Header { alg: Some(Algorithm::Es256), ..Header::default() },
    ///     payload: b"payload",
    ///     signature: &sig,
    /// };
    /// msg.verify_with(&CoseKey::Es256(*sk.verifying_key()), &[], &MINE)?;
    /// assert_eq!(COUNTED.counts().verify_digest, 1);
    /// # }
    /// # Ok::<(), cssf_auth::Error>(())
    /// ```
    pub fn verify_with(
        &self,
        key: &CoseKey,
        external_aad: &[u8],
        provider: &CryptoProvider,
    ) -> Result<(), Error> {
        if self.header.alg != Some(Algorithm::Es256) {
            return Err(Error::UnsupportedAlgorithm);
        }
        let CoseKey::Es256(vk) = key else {
            return Err(Error::UnknownKey);
        };
        let sig = cssf_provider::Signature::from_slice(self.signature)
            .map_err(|_| Error::VerificationFailed)?;
        let point = vk.to_encoded_point(false);
        let public =
            cssf_provider::PublicKey::from_sec1(point.as_bytes()).map_err(|_| Error::UnknownKey)?;
        let digest = sig_structure_digest(self.protected, external_aad, self.payload);
        provider
            .p256
            .verify_digest(&public, &digest, &sig)
            .map_err(|_| Error::VerificationFailed)
    }
}

/// Signs the Sig_structure with ES256 (deterministic nonces, RFC 6979),
/// returning raw `r || s`.
#[cfg(feature = "issuer")]
pub fn sign_es256(
    key: &p256::ecdsa::SigningKey,
    protected: &[u8],
    external_aad: &[u8],
    payload: &[u8],
) -> Result<[u8; 64], Error> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let digest = sig_structure_digest(protected, external_aad, payload);
    let sig: Signature = key
        .sign_prehash(&digest)
        .map_err(|_| Error::VerificationFailed)?;
    // Low-S form (s <= n/2): (r, n - s) is the same signature's other
    // encoding; emitting one form means no token has two byte forms that
    // both verify from this issuer.
    let sig = sig.normalize_s().unwrap_or(sig);
    Ok(sig.to_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_structure_matches_rfc8392_a3_intermediate() {
        // RFC 8392 A.3: protected h'A10126', empty external AAD.
        let payload = [0xa1, 0x01, 0x61, 0x61];
        let mut out = std::vec::Vec::new();
        stream_structure(CONTEXT, &[0xa1, 0x01, 0x26], &[], Some(&payload), |b| {
            out.extend_from_slice(b)
        });
        let mut expect = std::vec![0x84, 0x6a];
        expect.extend_from_slice(b"Signature1");
        expect.extend_from_slice(&[0x43, 0xa1, 0x01, 0x26, 0x40, 0x44, 0xa1, 0x01, 0x61, 0x61]);
        assert_eq!(out, expect);
    }
}
