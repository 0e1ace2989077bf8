//! The DTLS record header (RFC 6347 §4.1): type, version, epoch (16 bits),
//! sequence number (48 bits), length; 13 bytes.

use super::{Reader, Writer};
use crate::Error;

/// Length of the record header.
pub const HEADER_LEN: usize = 13;
/// Largest plaintext fragment length (2^14, RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;

/// Record content types (RFC 5246 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentType {
    /// change_cipher_spec (20).
    ChangeCipherSpec,
    /// alert (21).
    Alert,
    /// handshake (22).
    Handshake,
    /// application_data (23).
    ApplicationData,
    /// return_routability_check (27, RFC 9853; feature `cid`): only ever
    /// inside a protected record.
    #[cfg(feature = "cid")]
    ReturnRoutabilityCheck,
}

impl ContentType {
    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            20 => Self::ChangeCipherSpec,
            21 => Self::Alert,
            22 => Self::Handshake,
            23 => Self::ApplicationData,
            #[cfg(feature = "cid")]
            27 => Self::ReturnRoutabilityCheck,
            _ => return None,
        })
    }
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::ChangeCipherSpec => 20,
            Self::Alert => 21,
            Self::Handshake => 22,
            Self::ApplicationData => 23,
            #[cfg(feature = "cid")]
            Self::ReturnRoutabilityCheck => 27,
        }
    }
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub content_type: ContentType,
    /// Protocol version (DTLS 1.2 = 0xFEFD; 0xFEFF also seen in first flights).
    pub version: u16,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number.
    pub sequence: u64,
    /// Fragment length.
    pub length: u16,
}

impl RecordHeader {
    /// Parses one record at the start of `buf`: returns the header and the
    /// fragment, leaving the rest of the datagram for the next call.
    pub fn parse(buf: &[u8]) -> Result<(RecordHeader, &[u8], &[u8]), Error> {
        let mut r = Reader::new(buf);
        let ct = ContentType::from_u8(r.u8()?).ok_or(Error::Decode)?;
        let version = r.u16()?;
        let epoch = r.u16()?;
        let sequence = r.u48()?;
        let length = r.u16()?;
        let frag = r.take(usize::from(length))?;
        Ok((
            RecordHeader {
                content_type: ct,
                version,
                epoch,
                sequence,
                length,
            },
            frag,
            r.rest(),
        ))
    }

    /// The combined 64-bit epoch || sequence value used in nonces and AAD.
    pub fn epoch_seq(&self) -> u64 {
        (u64::from(self.epoch) << 48) | (self.sequence & 0xFFFF_FFFF_FFFF)
    }

    /// Header length (13).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 13 bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut w = Writer::new(buf);
        w.u8(self.content_type.to_u8())?;
        w.u16(self.version)?;
        w.u16(self.epoch)?;
        w.u48(self.sequence)?;
        w.u16(self.length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A ClientHello record header as captured from `openssl s_client -dtls1_2`.
    const CAPTURED: [u8; 13] = [22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];

    #[test]
    fn parse_and_emit() {
        let mut data = CAPTURED.to_vec();
        data.extend_from_slice(&[1, 2, 3, 0xAA]);
        let (h, frag, rest) = RecordHeader::parse(&data).unwrap();
        assert_eq!(h.content_type, ContentType::Handshake);
        assert_eq!(h.version, 0xFEFF);
        assert_eq!(h.length, 3);
        assert_eq!(frag, &[1, 2, 3]);
        assert_eq!(rest, &[0xAA]);
        let mut out = [0u8; 13];
        h.emit(&mut out).unwrap();
        assert_eq!(out, CAPTURED);
        assert!(RecordHeader::parse(&data[..14]).is_err());
        assert!(RecordHeader::parse(&[99; 20]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn round_trip(ct in 20u8..24, v: u16, e: u16, s in 0u64..(1 << 48), l: u16) {
            let h = RecordHeader { content_type: ContentType::from_u8(ct).unwrap(), version: v, epoch: e, sequence: s, length: l };
            let mut buf = std::vec![0u8; 13 + usize::from(l)];
            h.emit(&mut buf).unwrap();
            let (p, _, _) = RecordHeader::parse(&buf).unwrap();
            proptest::prop_assert_eq!(p, h);
        }
    }
}
