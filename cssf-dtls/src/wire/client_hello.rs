//! ClientHello (RFC 6347 §4.2.1 and RFC 5246 §7.4.1.2): like TLS, plus a
//! cookie after the session id.

use super::{Reader, Writer};
use crate::Error;

/// A ClientHello body, borrowing its variable parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHelloRepr<'a> {
    /// client_version.
    pub version: u16,
    /// 32 random bytes.
    pub random: &'a [u8; 32],
    /// session_id<0..32>.
    pub session_id: &'a [u8],
    /// cookie<0..2^8-1>.
    pub cookie: &'a [u8],
    /// cipher_suites<2..2^16-2>, raw big-endian u16 values.
    pub cipher_suites: &'a [u8],
    /// compression_methods<1..2^8-1>.
    pub compression_methods: &'a [u8],
    /// The extensions block without its length (empty if absent).
    pub extensions: &'a [u8],
}

impl<'a> ClientHelloRepr<'a> {
    /// Parses a ClientHello body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let random = r.array32()?;
        let session_id = r.vec8()?;
        let cookie = r.vec8()?;
        let cipher_suites = r.vec16()?;
        let compression_methods = r.vec8()?;
        if session_id.len() > 32
            || cipher_suites.is_empty()
            || cipher_suites.len() % 2 != 0
            || compression_methods.is_empty()
        {
            return Err(Error::Decode);
        }
        let extensions = if r.is_empty() { &[][..] } else { r.vec16()? };
        r.finish()?;
        super::extensions::ExtensionIter::validate(extensions)?;
        Ok(ClientHelloRepr {
            version,
            random,
            session_id,
            cookie,
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    /// The offered suite ids.
    pub fn suites(&self) -> impl Iterator<Item = u16> + 'a {
        self.cipher_suites
            .chunks_exact(2)
            .map(|c| c.iter().fold(0u16, |a, &x| (a << 8) | u16::from(x)))
    }

    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        2 + 32
            + 1
            + self.session_id.len()
            + 1
            + self.cookie.len()
            + 2
            + self.cipher_suites.len()
            + 1
            + self.compression_methods.len()
            + if self.extensions.is_empty() {
                0
            } else {
                2 + self.extensions.len()
            }
    }

    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(self.version)?;
        w.put(self.random)?;
        w.vec8(self.session_id)?;
        w.vec8(self.cookie)?;
        w.vec16(self.cipher_suites)?;
        w.vec8(self.compression_methods)?;
        if !self.extensions.is_empty() {
            w.vec16(self.extensions)?;
        }
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_emit_round_trip() {
        let random = [7u8; 32];
        let ext = [0x00, 0x17, 0, 0];
        let ch = ClientHelloRepr {
            version: 0xFEFD,
            random: &random,
            session_id: &[],
            cookie: &[1, 2, 3],
            cipher_suites: &[0xC0, 0xA8, 0xCC, 0xAB],
            compression_methods: &[0],
            extensions: &ext,
        };
        let mut buf = [0u8; 128];
        let n = ch.emit(&mut buf).unwrap();
        assert_eq!(n, ch.buffer_len());
        let p = ClientHelloRepr::parse(&buf[..n]).unwrap();
        assert_eq!(p, ch);
        assert_eq!(p.suites().collect::<std::vec::Vec<_>>(), [0xC0A8, 0xCCAB]);
        assert_eq!(&buf[..6], &[0xfe, 0xfd, 7, 7, 7, 7]);
        assert_eq!(&buf[34..39], &[0, 3, 1, 2, 3]);
        for cut in 0..n {
            assert!(ClientHelloRepr::parse(&buf[..cut]).is_err() || cut == n - 6);
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any(
            random: [u8; 32],
            sid in proptest::collection::vec(proptest::num::u8::ANY, 0..=32),
            cookie in proptest::collection::vec(proptest::num::u8::ANY, 0..=255),
            suites in proptest::collection::vec(proptest::num::u16::ANY, 1..20),
            comp in proptest::collection::vec(proptest::num::u8::ANY, 1..4),
            ems: bool,
        ) {
            let suites: std::vec::Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
            let ext: &[u8] = if ems { &[0, 0x17, 0, 0] } else { &[] };
            let ch = ClientHelloRepr { version: 0xFEFD, random: &random, session_id: &sid, cookie: &cookie, cipher_suites: &suites, compression_methods: &comp, extensions: ext };
            let mut buf = std::vec![0u8; ch.buffer_len()];
            let n = ch.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(ClientHelloRepr::parse(&buf[..n]).unwrap(), ch);
        }
    }
}
