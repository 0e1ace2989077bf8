//! HelloVerifyRequest (RFC 6347 §4.2.1): server_version and a cookie.

use super::{Reader, Writer};
use crate::Error;

/// Longest cookie (RFC 6347: cookie<0..2^8-1>).
pub const MAX_COOKIE_LEN: usize = 255;

/// A HelloVerifyRequest body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloVerifyRequestRepr<'a> {
    /// server_version (DTLS 1.0 per RFC 6347 §4.2.1; 1.2 accepted).
    pub version: u16,
    /// The cookie to echo.
    pub cookie: &'a [u8],
}

impl<'a> HelloVerifyRequestRepr<'a> {
    /// Parses a HelloVerifyRequest body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let cookie = r.vec8()?;
        r.finish()?;
        Ok(HelloVerifyRequestRepr { version, cookie })
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        3 + self.cookie.len()
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u16(self.version)?;
        w.vec8(self.cookie)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_emit() {
        let bytes = [0xfe, 0xff, 2, 0xaa, 0xbb];
        let h = HelloVerifyRequestRepr::parse(&bytes).unwrap();
        assert_eq!(h.version, 0xFEFF);
        assert_eq!(h.cookie, &[0xaa, 0xbb]);
        let mut out = [0u8; 5];
        assert_eq!(h.emit(&mut out).unwrap(), 5);
        assert_eq!(out, bytes);
        assert!(HelloVerifyRequestRepr::parse(&bytes[..4]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any(v: u16, cookie in proptest::collection::vec(proptest::num::u8::ANY, 0..=255)) {
            let h = HelloVerifyRequestRepr { version: v, cookie: &cookie };
            let mut buf = std::vec![0u8; h.buffer_len()];
            let n = h.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(HelloVerifyRequestRepr::parse(&buf[..n]).unwrap(), h);
        }
    }
}
