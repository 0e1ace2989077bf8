//! Certificate-based authentication messages: Certificate carrying a raw
//! public key (RFC 7250 §3) as a P-256 SubjectPublicKeyInfo, CertificateRequest
//! (RFC 5246 §7.4.4), and the `digitally-signed` element (RFC 5246 §4.7) used
//! by CertificateVerify (§7.4.8) and the ECDHE ServerKeyExchange (RFC 8422 §5.4).

use super::{Reader, Writer};
use crate::Error;

/// SignatureAndHashAlgorithm ecdsa_secp256r1_sha256 (hash 4, signature 3).
pub const ECDSA_SECP256R1_SHA256: u16 = 0x0403;
/// ClientCertificateType ecdsa_sign (64, RFC 8422 §5.5).
pub const ECDSA_SIGN: u8 = 64;
/// CertificateType X.509 (0, RFC 7250 §3).
pub const CERT_TYPE_X509: u8 = 0;
/// CertificateType RawPublicKey (2, RFC 7250 §3).
pub const CERT_TYPE_RAW_PUBLIC_KEY: u8 = 2;

/// DER of a P-256 SubjectPublicKeyInfo up to the uncompressed point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused) }.
pub const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of an uncompressed SEC1 P-256 point.
pub const P256_POINT_LEN: usize = 65;
/// Length of a P-256 SubjectPublicKeyInfo (91 bytes).
pub const SPKI_P256_LEN: usize = SPKI_P256_PREFIX.len() + P256_POINT_LEN;

/// Encodes an uncompressed P-256 point as a SubjectPublicKeyInfo.
pub fn spki_p256(point: &[u8; P256_POINT_LEN]) -> [u8; SPKI_P256_LEN] {
    let mut out = [0u8; SPKI_P256_LEN];
    let (a, b) = out.split_at_mut(SPKI_P256_PREFIX.len());
    a.copy_from_slice(&SPKI_P256_PREFIX);
    b.copy_from_slice(point);
    out
}

/// Strictly parses a P-256 SubjectPublicKeyInfo: exactly the DER above with
/// an uncompressed point (whether it is on the curve is checked by the caller
/// when decoding the point).
pub fn parse_spki_p256(spki: &[u8]) -> Result<&[u8; P256_POINT_LEN], Error> {
    let (prefix, point) = spki
        .split_at_checked(SPKI_P256_PREFIX.len())
        .ok_or(Error::BadCertificate)?;
    if prefix != SPKI_P256_PREFIX || point.first() != Some(&4) {
        return Err(Error::BadCertificate);
    }
    point.try_into().map_err(|_| Error::BadCertificate)
}

/// Certificate with certificate_type RawPublicKey: one SubjectPublicKeyInfo
/// (`opaque ASN.1_subjectPublicKeyInfo<1..2^24-1>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPublicKeyCertificateRepr<'a> {
    /// The DER SubjectPublicKeyInfo.
    pub spki: &'a [u8],
}

impl<'a> RawPublicKeyCertificateRepr<'a> {
    /// Parses the message body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let n = r.u24()?;
        let spki = r.take(n as usize)?;
        r.finish()?;
        if spki.is_empty() {
            return Err(Error::Decode);
        }
        Ok(RawPublicKeyCertificateRepr { spki })
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        3 + self.spki.len()
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u24(self.spki.len() as u32)?;
        w.put(self.spki)?;
        Ok(w.len())
    }
}

/// Certificate with certificate_type X.509: `ASN.1Cert certificate_list<0..2^24-1>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct X509CertificateListRepr<'a> {
    /// The list content (without its length), see [`certs`](Self::certs).
    pub list: &'a [u8],
}

impl<'a> X509CertificateListRepr<'a> {
    /// Parses the message body (every entry is checked to be well framed).
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let n = r.u24()?;
        let list = r.take(n as usize)?;
        r.finish()?;
        let mut it = Reader::new(list);
        while !it.is_empty() {
            let n = it.u24()?;
            if n == 0 {
                return Err(Error::Decode);
            }
            it.take(n as usize)?;
        }
        Ok(X509CertificateListRepr { list })
    }
    /// The DER certificates, end-entity first.
    pub fn certs(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut r = Reader::new(self.list);
        core::iter::from_fn(move || {
            let n = r.u24().ok()?;
            r.take(n as usize).ok()
        })
    }
    /// Emitted length of a one-certificate list.
    pub fn single_len(cert: &[u8]) -> usize {
        6 + cert.len()
    }
    /// Writes a body holding the one certificate `cert`; returns its length.
    pub fn emit_single(cert: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u24(cert.len() as u32 + 3)?;
        w.u24(cert.len() as u32)?;
        w.put(cert)?;
        Ok(w.len())
    }
}

/// CertificateRequest (RFC 5246 §7.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateRequestRepr<'a> {
    /// ClientCertificateType list (one byte each).
    pub certificate_types: &'a [u8],
    /// SignatureAndHashAlgorithm list (two bytes each).
    pub signature_algorithms: &'a [u8],
    /// DistinguishedName list (opaque, usually empty here).
    pub certificate_authorities: &'a [u8],
}

impl<'a> CertificateRequestRepr<'a> {
    /// What this crate sends: ecdsa_sign with ecdsa_secp256r1_sha256, no CAs.
    pub const ECDSA_P256: CertificateRequestRepr<'static> = CertificateRequestRepr {
        certificate_types: &[ECDSA_SIGN],
        signature_algorithms: &[0x04, 0x03],
        certificate_authorities: &[],
    };
    /// Parses the body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let certificate_types = r.vec8()?;
        let signature_algorithms = r.vec16()?;
        let certificate_authorities = r.vec16()?;
        r.finish()?;
        if certificate_types.is_empty() || signature_algorithms.len() % 2 != 0 {
            return Err(Error::Decode);
        }
        Ok(CertificateRequestRepr {
            certificate_types,
            signature_algorithms,
            certificate_authorities,
        })
    }
    /// True when the request allows an ECDSA key signing with SHA-256.
    pub fn allows_ecdsa_p256(&self) -> bool {
        self.certificate_types.contains(&ECDSA_SIGN)
            && self
                .signature_algorithms
                .chunks_exact(2)
                .any(|c| c == ECDSA_SECP256R1_SHA256.to_be_bytes())
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        5 + self.certificate_types.len()
            + self.signature_algorithms.len()
            + self.certificate_authorities.len()
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.vec8(self.certificate_types)?;
        w.vec16(self.signature_algorithms)?;
        w.vec16(self.certificate_authorities)?;
        Ok(w.len())
    }
}

/// `digitally-signed` (RFC 5246 §4.7): algorithm and a DER signature. It is
/// the whole CertificateVerify body, and the tail of an ECDHE_ECDSA
/// ServerKeyExchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitallySignedRepr<'a> {
    /// SignatureAndHashAlgorithm.
    pub algorithm: u16,
    /// The signature (DER `ECDSA-Sig-Value` for ECDSA).
    pub signature: &'a [u8],
}

impl<'a> DigitallySignedRepr<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let algorithm = r.u16()?;
        let signature = r.vec16()?;
        if signature.is_empty() {
            return Err(Error::Decode);
        }
        Ok(DigitallySignedRepr {
            algorithm,
            signature,
        })
    }
    /// Parses a body that is exactly one `digitally-signed` (CertificateVerify).
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let d = Self::read(&mut r)?;
        r.finish()?;
        Ok(d)
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        4 + self.signature.len()
    }
    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u16(self.algorithm)?;
        w.vec16(self.signature)
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        self.write(&mut w)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A P-256 public key as `openssl ec -pubout -outform DER` writes it.
    const SPKI: [u8; 91] = {
        let mut b = [0u8; 91];
        let mut i = 0;
        while i < 26 {
            b[i] = SPKI_P256_PREFIX[i];
            i += 1;
        }
        b[26] = 4;
        b
    };

    #[test]
    fn spki_strict() {
        let p = parse_spki_p256(&SPKI).unwrap();
        assert_eq!(p[0], 4);
        assert_eq!(spki_p256(p), SPKI);
        assert!(parse_spki_p256(&SPKI[..90]).is_err());
        let mut long = SPKI.to_vec();
        long.push(0);
        assert!(parse_spki_p256(&long).is_err());
        let mut bad = SPKI;
        bad[20] ^= 1; // another curve OID
        assert!(parse_spki_p256(&bad).is_err());
        let mut compressed = SPKI;
        compressed[26] = 2;
        assert!(parse_spki_p256(&compressed).is_err());
    }

    #[test]
    fn raw_public_key_certificate() {
        let c = RawPublicKeyCertificateRepr { spki: &SPKI };
        let mut b = [0u8; 128];
        let n = c.emit(&mut b).unwrap();
        assert_eq!(n, 94);
        assert_eq!(&b[..4], &[0, 0, 91, 0x30]);
        assert_eq!(RawPublicKeyCertificateRepr::parse(&b[..n]).unwrap(), c);
        assert!(RawPublicKeyCertificateRepr::parse(&b[..n - 1]).is_err());
        assert!(RawPublicKeyCertificateRepr::parse(&[0, 0, 0]).is_err());
    }

    #[test]
    fn x509_list() {
        let mut b = [0u8; 32];
        let n = X509CertificateListRepr::emit_single(b"cert", &mut b).unwrap();
        assert_eq!(&b[..n], &[0, 0, 7, 0, 0, 4, b'c', b'e', b'r', b't']);
        let l = X509CertificateListRepr::parse(&b[..n]).unwrap();
        assert_eq!(l.certs().collect::<std::vec::Vec<_>>(), [&b"cert"[..]]);
        assert!(X509CertificateListRepr::parse(&[0, 0, 3, 0, 0, 0]).is_err());
        assert!(X509CertificateListRepr::parse(&[0, 0, 0])
            .unwrap()
            .certs()
            .next()
            .is_none());
    }

    #[test]
    fn certificate_request() {
        let r = CertificateRequestRepr::ECDSA_P256;
        let mut b = [0u8; 16];
        let n = r.emit(&mut b).unwrap();
        // RFC 5246 §7.4.4 layout: types<1..>, algorithms<2..>, authorities<0..>.
        assert_eq!(&b[..n], &[1, 64, 0, 2, 4, 3, 0, 0]);
        let p = CertificateRequestRepr::parse(&b[..n]).unwrap();
        assert_eq!(p, r);
        assert!(p.allows_ecdsa_p256());
        assert!(!CertificateRequestRepr::parse(&[1, 1, 0, 2, 4, 1, 0, 0])
            .unwrap()
            .allows_ecdsa_p256());
        assert!(CertificateRequestRepr::parse(&[0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn digitally_signed() {
        let d = DigitallySignedRepr {
            algorithm: ECDSA_SECP256R1_SHA256,
            signature: &[0x30, 0x06, 2, 1, 1, 2, 1, 1],
        };
        let mut b = [0u8; 16];
        let n = d.emit(&mut b).unwrap();
        assert_eq!(&b[..4], &[4, 3, 0, 8]);
        assert_eq!(DigitallySignedRepr::parse(&b[..n]).unwrap(), d);
        assert!(DigitallySignedRepr::parse(&[4, 3, 0, 0]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any(
            spki in proptest::collection::vec(proptest::num::u8::ANY, 1..300),
            alg: u16,
            types in proptest::collection::vec(proptest::num::u8::ANY, 1..8),
            algs in proptest::collection::vec(proptest::num::u16::ANY, 0..8),
        ) {
            let c = RawPublicKeyCertificateRepr { spki: &spki };
            let mut buf = std::vec![0u8; c.buffer_len()];
            let n = c.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(RawPublicKeyCertificateRepr::parse(&buf[..n]).unwrap(), c);
            let d = DigitallySignedRepr { algorithm: alg, signature: &spki };
            let mut buf = std::vec![0u8; d.buffer_len()];
            let n = d.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(DigitallySignedRepr::parse(&buf[..n]).unwrap(), d);
            let a: std::vec::Vec<u8> = algs.iter().flat_map(|a| a.to_be_bytes()).collect();
            let r = CertificateRequestRepr { certificate_types: &types, signature_algorithms: &a, certificate_authorities: &[] };
            let mut buf = std::vec![0u8; r.buffer_len()];
            let n = r.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(CertificateRequestRepr::parse(&buf[..n]).unwrap(), r);
        }
    }
}
