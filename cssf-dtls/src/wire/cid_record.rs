//! The tls12_cid record (RFC 9146 §4) and its inner plaintext.
//!
//! ```text
//! struct {
//!     ContentType outer_type = tls12_cid;   // 25
//!     ProtocolVersion version;
//!     uint16 epoch;
//!     uint48 sequence_number;
//!     opaque cid[cid_length];               // length known to the receiver only
//!     uint16 length;
//!     opaque enc_content[DTLSCiphertext.length];
//! } DTLSCiphertext;
//!
//! struct {
//!     opaque content[length];
//!     ContentType real_type;
//!     uint8 zeros[length_of_padding];
//! } DTLSInnerPlaintext;
//! ```
//!
//! The record carries no CID length: a receiver parses with the length of the
//! CID it asked its peer to use.

use super::{Reader, Writer};
use crate::Error;

/// The tls12_cid content type (25).
pub const TLS12_CID: u8 = 25;
/// Offset of the CID in the record header.
pub const CID_OFFSET: usize = 11;
/// Header length without the CID (type, version, epoch, sequence, length).
pub const FIXED_HEADER_LEN: usize = 13;
/// The connection_id extension type (54).
pub const EXTENSION_TYPE: u16 = 54;

/// A parsed tls12_cid record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidRecordHeader<'a> {
    /// Protocol version.
    pub version: u16,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number.
    pub sequence: u64,
    /// The connection ID.
    pub cid: &'a [u8],
    /// Length of the protected fragment.
    pub length: u16,
}

impl<'a> CidRecordHeader<'a> {
    /// Parses one tls12_cid record at the start of `buf` with a CID of
    /// `cid_len` bytes: returns the header, the fragment and the rest.
    pub fn parse(buf: &'a [u8], cid_len: usize) -> Result<(Self, &'a [u8], &'a [u8]), Error> {
        let mut r = Reader::new(buf);
        if r.u8()? != TLS12_CID {
            return Err(Error::Decode);
        }
        let version = r.u16()?;
        let epoch = r.u16()?;
        let sequence = r.u48()?;
        let cid = r.take(cid_len)?;
        let length = r.u16()?;
        let frag = r.take(usize::from(length))?;
        Ok((
            CidRecordHeader {
                version,
                epoch,
                sequence,
                cid,
                length,
            },
            frag,
            r.rest(),
        ))
    }

    /// The combined 64-bit epoch || sequence value used in nonces.
    pub fn epoch_seq(&self) -> u64 {
        (u64::from(self.epoch) << 48) | (self.sequence & 0xFFFF_FFFF_FFFF)
    }

    /// Header length: 13 plus the CID.
    pub fn buffer_len(&self) -> usize {
        FIXED_HEADER_LEN + self.cid.len()
    }

    /// Writes the header into the first [`buffer_len`](Self::buffer_len) bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut w = Writer::new(buf);
        w.u8(TLS12_CID)?;
        w.u16(self.version)?;
        w.u16(self.epoch)?;
        w.u48(self.sequence)?;
        w.put(self.cid)?;
        w.u16(self.length)
    }
}

/// Splits a decrypted DTLSInnerPlaintext: the real content type and the
/// content length, after removing the zero padding. `None` when every byte
/// is zero (no content type; the record is invalid).
pub fn split_inner_plaintext(inner: &[u8]) -> Option<(u8, usize)> {
    let pos = inner.iter().rposition(|&b| b != 0)?;
    Some((*inner.get(pos)?, pos))
}

/// The additional data of a tls12_cid record under an AEAD (RFC 9146 §5):
/// `seq_num_placeholder (8 x 0xff) || tls12_cid || cid_length || tls12_cid
/// || version || epoch || sequence_number || cid || length_of_DTLSInnerPlaintext`.
/// Writes it into `out` and returns its length (23 + CID length).
pub fn additional_data(
    out: &mut [u8],
    version: u16,
    epoch_seq: u64,
    cid: &[u8],
    inner_len: usize,
) -> Result<usize, Error> {
    let cid_len = u8::try_from(cid.len()).map_err(|_| Error::Internal)?;
    let inner_len = u16::try_from(inner_len).map_err(|_| Error::RecordOverflow)?;
    let mut w = Writer::new(out);
    w.put(&[0xff; 8])?;
    w.u8(TLS12_CID)?;
    w.u8(cid_len)?;
    w.u8(TLS12_CID)?;
    w.u16(version)?;
    w.put(&epoch_seq.to_be_bytes())?;
    w.put(cid)?;
    w.u16(inner_len)?;
    Ok(w.len())
}

/// Parses the connection_id extension body (`opaque cid<0..2^8-1>`).
pub fn parse_extension(data: &[u8]) -> Result<&[u8], Error> {
    let mut r = Reader::new(data);
    let cid = r.vec8()?;
    r.finish()?;
    Ok(cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A tls12_cid record header with CID 01 02 03 04, epoch 1, sequence 5,
    // length 3, laid out by hand from RFC 9146 figure 3.
    const RECORD: [u8; 20] = [
        25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 0, 3, 0xaa, 0xbb, 0xcc,
    ];

    #[test]
    fn parse_and_emit() {
        let mut data = RECORD.to_vec();
        data.push(0x55);
        let (h, frag, rest) = CidRecordHeader::parse(&data, 4).unwrap();
        assert_eq!(
            h,
            CidRecordHeader {
                version: 0xFEFD,
                epoch: 1,
                sequence: 5,
                cid: &[1, 2, 3, 4],
                length: 3
            }
        );
        assert_eq!(frag, &[0xaa, 0xbb, 0xcc]);
        assert_eq!(rest, &[0x55]);
        assert_eq!(h.epoch_seq(), (1 << 48) | 5);
        let mut out = [0u8; 17];
        h.emit(&mut out).unwrap();
        assert_eq!(out, RECORD[..17]);
        // Wrong CID length shifts the length field: the fragment no longer fits.
        assert!(CidRecordHeader::parse(&RECORD, 6).is_err());
        assert!(CidRecordHeader::parse(&RECORD[..16], 4).is_err());
        let mut plain = RECORD;
        plain[0] = 23;
        assert!(CidRecordHeader::parse(&plain, 4).is_err());
    }

    #[test]
    fn inner_plaintext_and_additional_data() {
        assert_eq!(split_inner_plaintext(b"hi\x17\0\0\0"), Some((23, 2)));
        assert_eq!(split_inner_plaintext(b"\x15"), Some((21, 0)));
        assert_eq!(split_inner_plaintext(&[0, 0, 0]), None);
        assert_eq!(split_inner_plaintext(&[]), None);
        let mut a = [0u8; 64];
        let n = additional_data(&mut a, 0xFEFD, (1 << 48) | 5, &[1, 2, 3, 4], 0x0102).unwrap();
        assert_eq!(
            &a[..n],
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 25, 4, 25, 0xfe, 0xfd, 0, 1, 0, 0,
                0, 0, 0, 5, 1, 2, 3, 4, 1, 2
            ]
        );
        assert_eq!(parse_extension(&[2, 9, 8]), Ok(&[9u8, 8][..]));
        assert_eq!(parse_extension(&[0]), Ok(&[][..]));
        assert!(parse_extension(&[2, 9]).is_err());
        assert!(parse_extension(&[1, 9, 8]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn round_trip(e: u16, s in 0u64..(1 << 48), cid in proptest::collection::vec(proptest::num::u8::ANY, 0..20), l in 0u16..64) {
            let h = CidRecordHeader { version: 0xFEFD, epoch: e, sequence: s, cid: &cid, length: l };
            let mut buf = std::vec![0u8; h.buffer_len() + usize::from(l)];
            h.emit(&mut buf).unwrap();
            let (p, f, _) = CidRecordHeader::parse(&buf, cid.len()).unwrap();
            proptest::prop_assert_eq!(p, h);
            proptest::prop_assert_eq!(f.len(), usize::from(l));
        }
    }
}
