//! Return Routability Check (RFC 9853): the `rrc` extension (61, empty,
//! offered only beside `connection_id`) and the `return_routability_check`
//! record content (type 27, always protected): a message type and a 64-bit
//! cookie.
//!
//! ```text
//! struct {
//!     rrc_msg_type msg_type;   /* path_challenge(0), path_response(1), path_drop(2) */
//!     uint64 cookie;
//! } return_routability_check;
//! ```

use super::{Reader, Writer};
use crate::Error;

/// The `rrc` extension type (RFC 9853 §3, IANA).
pub const EXTENSION_TYPE: u16 = 61;
/// The `return_routability_check` content type (RFC 9853 §4, IANA).
pub const CONTENT_TYPE: u8 = 27;
/// Bytes of a message: type and cookie.
pub const MESSAGE_LEN: usize = 9;

/// `path_challenge`: prove you receive at the address this came to.
pub const PATH_CHALLENGE: u8 = 0;
/// `path_response`: the cookie of a challenge, echoed.
pub const PATH_RESPONSE: u8 = 1;
/// `path_drop`: the path the challenge came on is no longer preferred.
pub const PATH_DROP: u8 = 2;

/// A `return_routability_check` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrcRepr {
    /// `path_challenge`, `path_response`, `path_drop` or another value
    /// (to be ignored, §4).
    pub msg_type: u8,
    /// The 64-bit cookie.
    pub cookie: [u8; 8],
}

impl RrcRepr {
    /// Parses a message (exactly [`MESSAGE_LEN`] bytes).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(data);
        let msg_type = r.u8()?;
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(r.take(8)?);
        r.finish()?;
        Ok(RrcRepr { msg_type, cookie })
    }

    /// Writes the message; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u8(self.msg_type)?;
        w.put(&self.cookie)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let m = RrcRepr {
            msg_type: PATH_CHALLENGE,
            cookie: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        let mut b = [0u8; 16];
        assert_eq!(m.emit(&mut b), Ok(MESSAGE_LEN));
        assert_eq!(&b[..9], &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(RrcRepr::parse(&b[..9]), Ok(m));
        assert!(RrcRepr::parse(&b[..8]).is_err());
        assert!(RrcRepr::parse(&b[..10]).is_err());
        assert!(m.emit(&mut [0u8; 8]).is_err());
    }
}
