//! Hello extensions (RFC 5246 §7.4.1.4): a lazy iterator over the block, and
//! the types this crate uses: supported_groups (RFC 8422), ec_point_formats,
//! extended_master_secret (RFC 7627), record_size_limit (RFC 8449),
//! renegotiation_info (RFC 5746).

use super::{Reader, Writer};
use crate::Error;

/// supported_groups (10).
pub const SUPPORTED_GROUPS: u16 = 10;
/// ec_point_formats (11).
pub const EC_POINT_FORMATS: u16 = 11;
/// signature_algorithms (13, RFC 5246 §7.4.1.4.1).
pub const SIGNATURE_ALGORITHMS: u16 = 13;
/// client_certificate_type (19, RFC 7250).
pub const CLIENT_CERTIFICATE_TYPE: u16 = 19;
/// server_certificate_type (20, RFC 7250).
pub const SERVER_CERTIFICATE_TYPE: u16 = 20;
/// extended_master_secret (23).
pub const EXTENDED_MASTER_SECRET: u16 = 23;
/// record_size_limit (28).
pub const RECORD_SIZE_LIMIT: u16 = 28;
/// renegotiation_info (0xFF01).
pub const RENEGOTIATION_INFO: u16 = 0xFF01;
/// secp256r1 named group (23).
pub const SECP256R1: u16 = 23;

/// Most extensions a hello may carry (real DTLS clients send about ten);
/// a block with more is refused by [`ExtensionIter::validate`].
pub const MAX_EXTENSIONS: usize = 64;

/// Iterates `(type, data)` over an extensions block (without its 2-byte
/// length). Yields `Err(Decode)` once and stops on malformed input.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> ExtensionIter<'a> {
    /// An iterator over `block`.
    pub fn new(block: &'a [u8]) -> Self {
        ExtensionIter {
            r: Reader::new(block),
            failed: false,
        }
    }

    /// Checks the whole block parses, holds at most [`MAX_EXTENSIONS`]
    /// extensions and has no duplicate types (linear in the block's length,
    /// at most `MAX_EXTENSIONS²` comparisons).
    pub fn validate(block: &'a [u8]) -> Result<(), Error> {
        let mut seen = [0u16; MAX_EXTENSIONS];
        for (n, e) in ExtensionIter::new(block).enumerate() {
            let (t, _) = e?;
            let earlier = seen.get(..n).ok_or(Error::Decode)?;
            if earlier.contains(&t) {
                return Err(Error::Decode);
            }
            *seen.get_mut(n).ok_or(Error::Decode)? = t;
        }
        Ok(())
    }

    /// The data of the first extension of type `t`.
    pub fn find(block: &'a [u8], t: u16) -> Option<&'a [u8]> {
        ExtensionIter::new(block)
            .filter_map(Result::ok)
            .find(|(u, _)| *u == t)
            .map(|(_, d)| d)
    }
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let item = (|| {
            let t = self.r.u16()?;
            let d = self.r.vec16()?;
            Ok((t, d))
        })();
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}

/// Writes one extension.
pub(crate) fn put(w: &mut Writer<'_>, t: u16, data: &[u8]) -> Result<(), Error> {
    w.u16(t)?;
    w.vec16(data)
}

/// Parses a record_size_limit value (RFC 8449 §4: at least 64).
pub fn parse_record_size_limit(data: &[u8]) -> Result<u16, Error> {
    let mut r = Reader::new(data);
    let v = r.u16()?;
    r.finish()?;
    if v < 64 {
        return Err(Error::IllegalParameter);
    }
    Ok(v)
}

/// True when a supported_groups list contains secp256r1.
pub fn groups_contain_p256(data: &[u8]) -> bool {
    let mut r = Reader::new(data);
    let Ok(list) = r.vec16() else { return false };
    list.chunks_exact(2).any(|c| c == SECP256R1.to_be_bytes())
}

/// True when a signature_algorithms list contains `alg`.
pub fn sig_algs_contain(data: &[u8], alg: u16) -> bool {
    let mut r = Reader::new(data);
    let Ok(list) = r.vec16() else { return false };
    list.chunks_exact(2).any(|c| c == alg.to_be_bytes())
}

/// True when a ClientHello certificate type list (`CertificateType<1..2^8-1>`)
/// contains `t`.
pub fn cert_types_contain(data: &[u8], t: u8) -> bool {
    let mut r = Reader::new(data);
    r.vec8().is_ok_and(|l| r.is_empty() && l.contains(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterate_and_find() {
        // renegotiation_info (empty) + extended_master_secret, as OpenSSL sends.
        let block = [0xff, 0x01, 0, 1, 0, 0, 0x17, 0, 0];
        let v: std::vec::Vec<_> = ExtensionIter::new(&block).map(|e| e.unwrap()).collect();
        assert_eq!(v, [(0xFF01, &[0u8][..]), (23, &[][..])]);
        assert_eq!(ExtensionIter::find(&block, 23), Some(&[][..]));
        ExtensionIter::validate(&block).unwrap();
        let mut dup = block.to_vec();
        dup.extend_from_slice(&[0, 0x17, 0, 0]);
        assert!(ExtensionIter::validate(&dup).is_err());
        assert!(ExtensionIter::validate(&block[..4]).is_err());
        assert_eq!(parse_record_size_limit(&[1, 0]), Ok(256));
        assert!(parse_record_size_limit(&[0, 10]).is_err());
        assert!(groups_contain_p256(&[0, 4, 0, 29, 0, 23]));
        assert!(!groups_contain_p256(&[0, 2, 0, 29]));
        assert!(sig_algs_contain(&[0, 4, 8, 4, 4, 3], 0x0403));
        assert!(!sig_algs_contain(&[0, 2, 4, 1], 0x0403));
        assert!(cert_types_contain(&[2, 2, 0], 2));
        assert!(!cert_types_contain(&[1, 0], 2));
        assert!(!cert_types_contain(&[2, 2], 2));
    }

    #[test]
    fn emit() {
        let mut b = [0u8; 8];
        let mut w = Writer::new(&mut b);
        put(&mut w, RECORD_SIZE_LIMIT, &[1, 0]).unwrap();
        assert_eq!(w.len(), 6);
        assert_eq!(&b[..6], &[0, 28, 0, 2, 1, 0]);
    }
}
