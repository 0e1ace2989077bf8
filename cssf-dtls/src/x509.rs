//! X.509 end-entity certificates for ECDHE_ECDSA (feature `x509`): for peers
//! without raw public keys, such as OpenSSL. Only the end-entity certificate
//! is used: its P-256 key is what the handshake authenticates, and the
//! [`TrustStore`] decides on the certificate — by its key (pinning, the
//! default) or by its ECDSA-P256-SHA256 signature from a configured CA key
//! ([`CaSigned`]). Validity dates, names and extensions are not checked
//! (the crate has no wall clock): pin, or give each device its own CA.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::PublicKey;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::psk::PeerContext;
use crate::trust::TrustStore;
use crate::wire::certificate::{parse_spki_p256, SPKI_P256_LEN};
use crate::Error;

/// DER content of the OID ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// The P-256 key of a DER certificate (its SubjectPublicKeyInfo, strictly
/// an uncompressed P-256 point on the curve).
pub fn certificate_key(cert: &[u8]) -> Result<PublicKey, Error> {
    let c = Certificate::from_der(cert).map_err(|_| Error::BadCertificate)?;
    let mut spki = [0u8; SPKI_P256_LEN];
    let n = c
        .tbs_certificate
        .subject_public_key_info
        .encode_to_slice(&mut spki)
        .map_err(|_| Error::UnsupportedCertificate)?
        .len();
    let point = parse_spki_p256(spki.get(..n).unwrap_or_default())
        .map_err(|_| Error::UnsupportedCertificate)?;
    PublicKey::from_sec1_bytes(point).map_err(|_| Error::BadCertificate)
}

/// Length of the DER TLV at the start of `b` (header and content).
fn tlv_len(b: &[u8]) -> Option<usize> {
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 3 {
        return None;
    }
    let len = b
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |a, &x| (a << 8) | usize::from(x));
    Some(2 + n + len)
}

/// The DER bytes of the tbsCertificate, as signed (taken from the input,
/// not re-encoded).
fn tbs_bytes(cert: &[u8]) -> Option<&[u8]> {
    let total = tlv_len(cert)?;
    let len_byte = *cert.get(1)?;
    let header = 2 + if len_byte < 0x80 {
        0
    } else {
        usize::from(len_byte & 0x7f)
    };
    let inner = cert.get(header..total)?;
    inner.get(..tlv_len(inner)?)
}

/// True when `cert` (DER) carries an ecdsa-with-SHA256 signature by `ca`.
pub fn signed_by(cert: &[u8], ca: &PublicKey) -> bool {
    let Ok(c) = Certificate::from_der(cert) else {
        return false;
    };
    if c.signature_algorithm.oid.as_bytes() != ECDSA_WITH_SHA256 {
        return false;
    }
    let (Some(tbs), Some(sig)) = (tbs_bytes(cert), c.signature.as_bytes()) else {
        return false;
    };
    let Ok(sig) = Signature::from_der(sig) else {
        return false;
    };
    VerifyingKey::from(ca).verify(tbs, &sig).is_ok()
}

/// Accepts end-entity certificates signed (ecdsa-with-SHA256) by one of a
/// fixed list of CA public keys; raw public keys are refused.
///
/// ```
/// use cssf_dtls::{CaSigned, PeerContext, SessionHandle, TrustStore};
/// use core::time::Duration;
/// let cas: [p256::PublicKey; 0] = [];
/// let any_key = p256::SecretKey::from_bytes(&[1u8; 32].into()).unwrap().public_key();
/// let cx = PeerContext::new(SessionHandle::CLIENT, &5684u16, Duration::ZERO);
/// assert!(!CaSigned::new(&cas).is_trusted_certificate(&cx, b"not DER", &any_key));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CaSigned<'a> {
    cas: &'a [PublicKey],
}

impl<'a> CaSigned<'a> {
    /// Trusts certificates signed by any of `cas`.
    pub const fn new(cas: &'a [PublicKey]) -> Self {
        CaSigned { cas }
    }
}

impl<A> TrustStore<A> for CaSigned<'_> {
    fn is_trusted(&self, _: &PeerContext<'_, A>, _: &PublicKey) -> bool {
        false
    }
    fn is_trusted_certificate(
        &self,
        _: &PeerContext<'_, A>,
        certificate: &[u8],
        _: &PublicKey,
    ) -> bool {
        self.cas.iter().any(|ca| signed_by(certificate, ca))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv_len(&[0x30, 3, 1, 2, 3]), Some(5));
        assert_eq!(tlv_len(&[0x30, 0x81, 0x80]), Some(3 + 128));
        assert_eq!(tlv_len(&[0x30, 0x82, 1, 0]), Some(4 + 256));
        assert_eq!(tlv_len(&[0x30, 0x80]), None);
        assert_eq!(tlv_len(&[0x30]), None);
        // SEQUENCE { SEQUENCE { 1 } , ... } -> the inner SEQUENCE
        assert_eq!(
            tbs_bytes(&[0x30, 6, 0x30, 1, 9, 5, 1, 0]),
            Some(&[0x30, 1, 9][..])
        );
        assert_eq!(tbs_bytes(&[0x30, 2, 0x30, 5]), None);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(certificate_key(b"nope"), Err(Error::BadCertificate));
        let k = p256::SecretKey::from_bytes(&[1u8; 32].into())
            .unwrap()
            .public_key();
        assert!(!signed_by(b"nope", &k));
    }
}
