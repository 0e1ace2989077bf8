//! ServerHello (RFC 5246 §7.4.1.3).

use super::{Reader, Writer};
use crate::Error;

/// A ServerHello body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHelloRepr<'a> {
    /// server_version.
    pub version: u16,
    /// 32 random bytes.
    pub random: &'a [u8; 32],
    /// session_id<0..32>.
    pub session_id: &'a [u8],
    /// The chosen suite.
    pub cipher_suite: u16,
    /// The chosen compression method.
    pub compression_method: u8,
    /// Extensions block without its length (empty if absent).
    pub extensions: &'a [u8],
}

impl<'a> ServerHelloRepr<'a> {
    /// Parses a ServerHello body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let random = r.array32()?;
        let session_id = r.vec8()?;
        if session_id.len() > 32 {
            return Err(Error::Decode);
        }
        let cipher_suite = r.u16()?;
        let compression_method = r.u8()?;
        let extensions = if r.is_empty() { &[][..] } else { r.vec16()? };
        r.finish()?;
        super::extensions::ExtensionIter::validate(extensions)?;
        Ok(ServerHelloRepr {
            version,
            random,
            session_id,
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        2 + 32
            + 1
            + self.session_id.len()
            + 3
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
        w.u16(self.cipher_suite)?;
        w.u8(self.compression_method)?;
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
        let random = [3u8; 32];
        let sh = ServerHelloRepr {
            version: 0xFEFD,
            random: &random,
            session_id: &[9; 4],
            cipher_suite: 0xC0A8,
            compression_method: 0,
            extensions: &[0xff, 0x01, 0, 1, 0],
        };
        let mut buf = [0u8; 64];
        let n = sh.emit(&mut buf).unwrap();
        assert_eq!(n, sh.buffer_len());
        assert_eq!(&buf[39..44], &[0xC0, 0xA8, 0, 0, 5]);
        assert_eq!(ServerHelloRepr::parse(&buf[..n]).unwrap(), sh);
        assert!(ServerHelloRepr::parse(&buf[..n - 1]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any(random: [u8; 32], sid in proptest::collection::vec(proptest::num::u8::ANY, 0..=32), suite: u16, comp: u8, reneg: bool) {
            let ext: &[u8] = if reneg { &[0xff, 0x01, 0, 1, 0] } else { &[] };
            let sh = ServerHelloRepr { version: 0xFEFD, random: &random, session_id: &sid, cipher_suite: suite, compression_method: comp, extensions: ext };
            let mut buf = std::vec![0u8; sh.buffer_len()];
            let n = sh.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(ServerHelloRepr::parse(&buf[..n]).unwrap(), sh);
        }
    }
}
