//! The DTLS handshake message header (RFC 6347 §4.2.2): msg_type, length
//! (24), message_seq (16), fragment_offset (24), fragment_length (24).

use super::{Reader, Writer};
use crate::Error;

/// Length of the handshake header.
pub const HEADER_LEN: usize = 12;

/// Handshake message types (RFC 5246 §7.4, RFC 6347 §4.3.2).
#[allow(missing_docs)]
pub mod msg_type {
    pub const HELLO_REQUEST: u8 = 0;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;

    /// The message's name (for logs).
    #[cfg_attr(
        not(any(feature = "log", all(feature = "defmt", target_os = "none"))),
        allow(dead_code)
    )]
    pub(crate) fn name(t: u8) -> &'static str {
        match t {
            HELLO_REQUEST => "HelloRequest",
            CLIENT_HELLO => "ClientHello",
            SERVER_HELLO => "ServerHello",
            HELLO_VERIFY_REQUEST => "HelloVerifyRequest",
            CERTIFICATE => "Certificate",
            SERVER_KEY_EXCHANGE => "ServerKeyExchange",
            CERTIFICATE_REQUEST => "CertificateRequest",
            SERVER_HELLO_DONE => "ServerHelloDone",
            CERTIFICATE_VERIFY => "CertificateVerify",
            CLIENT_KEY_EXCHANGE => "ClientKeyExchange",
            FINISHED => "Finished",
            _ => "unknown handshake message",
        }
    }
}

/// A handshake fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeHeader {
    /// Message type (see [`msg_type`]).
    pub msg_type: u8,
    /// Length of the whole message body.
    pub length: u32,
    /// Message sequence number.
    pub message_seq: u16,
    /// Offset of this fragment in the body.
    pub fragment_offset: u32,
    /// Length of this fragment.
    pub fragment_length: u32,
}

impl HandshakeHeader {
    /// Parses one fragment at the start of `buf`; returns the header, the
    /// fragment bytes and the rest. The fragment must lie inside the message.
    pub fn parse(buf: &[u8]) -> Result<(HandshakeHeader, &[u8], &[u8]), Error> {
        let mut r = Reader::new(buf);
        let h = HandshakeHeader {
            msg_type: r.u8()?,
            length: r.u24()?,
            message_seq: r.u16()?,
            fragment_offset: r.u24()?,
            fragment_length: r.u24()?,
        };
        if u64::from(h.fragment_offset) + u64::from(h.fragment_length) > u64::from(h.length) {
            return Err(Error::Decode);
        }
        let frag = r.take(h.fragment_length as usize)?;
        Ok((h, frag, r.rest()))
    }

    /// An unfragmented header for a body of `len` bytes.
    pub fn whole(msg_type: u8, message_seq: u16, len: usize) -> Self {
        HandshakeHeader {
            msg_type,
            length: len as u32,
            message_seq,
            fragment_offset: 0,
            fragment_length: len as u32,
        }
    }

    /// Header length (12).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 12 bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut w = Writer::new(buf);
        w.u8(self.msg_type)?;
        w.u24(self.length)?;
        w.u16(self.message_seq)?;
        w.u24(self.fragment_offset)?;
        w.u24(self.fragment_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ServerHelloDone as sent by OpenSSL: type 14, length 0, seq 2.
    const SHD: [u8; 12] = [14, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0];

    #[test]
    fn parse_emit_and_bounds() {
        let (h, f, rest) = HandshakeHeader::parse(&SHD).unwrap();
        assert_eq!(h, HandshakeHeader::whole(msg_type::SERVER_HELLO_DONE, 2, 0));
        assert!(f.is_empty() && rest.is_empty());
        let mut out = [0u8; 12];
        h.emit(&mut out).unwrap();
        assert_eq!(out, SHD);
        // fragment past the end of the message
        let bad = [1, 0, 0, 4, 0, 0, 0, 0, 3, 0, 0, 2, 1, 2];
        assert_eq!(HandshakeHeader::parse(&bad), Err(Error::Decode));
    }

    proptest::proptest! {
        #[test]
        fn round_trip(t: u8, len in 0u32..5000, seq: u16, off in 0u32..5000, fl in 0u32..100) {
            let h = HandshakeHeader { msg_type: t, length: len.max(off + fl), message_seq: seq, fragment_offset: off, fragment_length: fl };
            let mut buf = std::vec![0u8; 12 + fl as usize];
            h.emit(&mut buf).unwrap();
            let (p, f, _) = HandshakeHeader::parse(&buf).unwrap();
            proptest::prop_assert_eq!(p, h);
            proptest::prop_assert_eq!(f.len(), fl as usize);
        }
    }
}
