//! The OSCORE option value (RFC 8613 §6.1): the compressed COSE header.
//!
//! ```text
//!  0 1 2 3 4 5 6 7 <------------- n bytes -------------->
//! +-+-+-+-+-+-+-+-+--------------------------------------
//! |0 0 0|h|k|  n  |       Partial IV (if any) ...
//! +-+-+-+-+-+-+-+-+--------------------------------------
//!
//!  <- 1 byte -> <----- s bytes ------>
//! +------------+----------------------+------------------+
//! | s (if any) | kid context (if any) | kid (if any) ... |
//! +------------+----------------------+------------------+
//! ```

use super::Error;

/// Flag bit: a kid context (with its length byte `s`) follows the Partial IV.
pub const FLAG_KID_CONTEXT: u8 = 0x10;
/// Flag bit: a kid fills the rest of the value.
pub const FLAG_KID: u8 = 0x08;
/// The Partial IV length bits `n`.
pub const PIV_LEN_MASK: u8 = 0x07;
/// The three reserved flag bits, which must be zero.
pub const RESERVED_MASK: u8 = 0xe0;
/// Longest Partial IV (5 bytes; lengths 6 and 7 are reserved).
pub const MAX_PIV_LEN: usize = 5;

/// A parsed (or to be emitted) OSCORE option value, borrowing its fields.
///
/// `None` means the field is absent; `kid: Some(&[])` is a present, empty
/// kid (the `k` bit set with nothing after it).
///
/// ```
/// use cssf_coap::oscore::OscoreOption;
/// // RFC 8613 Appendix C.6: Partial IV 0x14, kid context, empty kid.
/// let value = [0x19, 0x14, 0x08, 0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3];
/// let opt = OscoreOption::parse(&value)?;
/// assert_eq!(opt.partial_iv, Some(&[0x14][..]));
/// assert_eq!(opt.kid_context, Some(&value[3..]));
/// assert_eq!(opt.kid, Some(&[][..]));
/// let mut out = [0u8; 16];
/// let n = opt.emit(&mut out)?;
/// assert_eq!(&out[..n], &value);
/// # Ok::<(), cssf_coap::oscore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OscoreOption<'a> {
    /// The Partial IV, 1 to 5 bytes.
    pub partial_iv: Option<&'a [u8]>,
    /// The kid context (ID Context), at most 255 bytes.
    pub kid_context: Option<&'a [u8]>,
    /// The kid (the sender's Sender ID).
    pub kid: Option<&'a [u8]>,
}

impl<'a> OscoreOption<'a> {
    /// Parses an OSCORE option value.
    ///
    /// [`Error::BadOption`] for reserved bits set, a Partial IV length of 6
    /// or 7, a value shorter than its fields, bytes after the fields when no
    /// kid is flagged, or a one-byte value with every flag clear (such a
    /// value must be empty).
    pub fn parse(value: &'a [u8]) -> Result<Self, Error> {
        let Some((&flags, rest)) = value.split_first() else {
            return Ok(OscoreOption::default());
        };
        if flags & RESERVED_MASK != 0 || flags == 0 {
            return Err(Error::BadOption);
        }
        let n = usize::from(flags & PIV_LEN_MASK);
        if n > MAX_PIV_LEN {
            return Err(Error::BadOption);
        }
        let (piv, mut rest) = rest.split_at_checked(n).ok_or(Error::BadOption)?;
        let partial_iv = (n > 0).then_some(piv);
        let mut kid_context = None;
        if flags & FLAG_KID_CONTEXT != 0 {
            let (&s, after) = rest.split_first().ok_or(Error::BadOption)?;
            let (ctx, after) = after
                .split_at_checked(usize::from(s))
                .ok_or(Error::BadOption)?;
            kid_context = Some(ctx);
            rest = after;
        }
        let kid = if flags & FLAG_KID != 0 {
            Some(rest)
        } else if rest.is_empty() {
            None
        } else {
            return Err(Error::BadOption);
        };
        Ok(OscoreOption {
            partial_iv,
            kid_context,
            kid,
        })
    }

    /// Exact number of bytes [`OscoreOption::emit`] writes (0 when every
    /// field is absent).
    pub fn buffer_len(&self) -> usize {
        if self.partial_iv.is_none() && self.kid_context.is_none() && self.kid.is_none() {
            return 0;
        }
        1 + self.partial_iv.map_or(0, <[u8]>::len)
            + self.kid_context.map_or(0, |c| 1 + c.len())
            + self.kid.map_or(0, <[u8]>::len)
    }

    /// Writes the option value into `buf`, returning its length.
    ///
    /// [`Error::BadOption`] for a Partial IV of 0 or more than 5 bytes or a
    /// kid context longer than 255 bytes; [`crate::Error::BufferTooSmall`]
    /// (wrapped) for a short `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let needed = self.buffer_len();
        if needed == 0 {
            return Ok(0);
        }
        let piv = self.partial_iv.unwrap_or(&[]);
        if (self.partial_iv.is_some() && piv.is_empty()) || piv.len() > MAX_PIV_LEN {
            return Err(Error::BadOption);
        }
        let out = buf
            .get_mut(..needed)
            .ok_or(Error::Coap(crate::Error::BufferTooSmall { needed }))?;
        let (flags, rest) = out.split_first_mut().ok_or(Error::BadOption)?;
        // piv.len() <= 5 was checked above.
        *flags = (piv.len() as u8) & PIV_LEN_MASK;
        let (dst, mut rest) = rest
            .split_at_mut_checked(piv.len())
            .ok_or(Error::BadOption)?;
        dst.copy_from_slice(piv);
        if let Some(ctx) = self.kid_context {
            *flags |= FLAG_KID_CONTEXT;
            let s = u8::try_from(ctx.len()).map_err(|_| Error::BadOption)?;
            let (len, after) = rest.split_first_mut().ok_or(Error::BadOption)?;
            *len = s;
            let (dst, after) = after
                .split_at_mut_checked(ctx.len())
                .ok_or(Error::BadOption)?;
            dst.copy_from_slice(ctx);
            rest = after;
        }
        if let Some(kid) = self.kid {
            *flags |= FLAG_KID;
            rest.get_mut(..kid.len())
                .ok_or(Error::BadOption)?
                .copy_from_slice(kid);
        }
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &[u8]) -> OscoreOption<'_> {
        let opt = OscoreOption::parse(value).unwrap();
        let mut out = [0u8; 300];
        let n = opt.emit(&mut out).unwrap();
        assert_eq!(&out[..n], value);
        assert_eq!(opt.buffer_len(), value.len());
        opt
    }

    #[test]
    fn rfc_values() {
        // C.4 request: Partial IV 20, empty kid.
        let o = round_trip(&[0x09, 0x14]);
        assert_eq!(o.partial_iv, Some(&[0x14][..]));
        assert_eq!(o.kid, Some(&[][..]));
        assert_eq!(o.kid_context, None);
        // C.5 request: kid 0x00.
        let o = round_trip(&[0x09, 0x14, 0x00]);
        assert_eq!(o.kid, Some(&[0x00][..]));
        // C.7 response: empty value.
        let o = round_trip(&[]);
        assert_eq!(o, OscoreOption::default());
        // C.8 response: Partial IV 0, no kid.
        let o = round_trip(&[0x01, 0x00]);
        assert_eq!(o.partial_iv, Some(&[0x00][..]));
        assert_eq!(o.kid, None);
    }

    #[test]
    fn five_byte_piv_and_long_context() {
        let mut v = [0u8; 1 + 5 + 1 + 255 + 3];
        v[0] = 0x1d;
        v[6] = 255;
        let o = round_trip(&v);
        assert_eq!(o.partial_iv.map(<[u8]>::len), Some(5));
        assert_eq!(o.kid_context.map(<[u8]>::len), Some(255));
        assert_eq!(o.kid.map(<[u8]>::len), Some(3));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &[0x00][..],                  // all flags clear but not empty
            &[0x20, 0x00],                // reserved bit
            &[0x80],                      // reserved bit
            &[0x40],                      // reserved bit
            &[0x06, 1, 2, 3, 4, 5, 6],    // Partial IV length 6
            &[0x07, 1, 2, 3, 4, 5, 6, 7], // Partial IV length 7
            &[0x02, 0x01],                // truncated Partial IV
            &[0x10],                      // kid context without its length
            &[0x10, 0x03, 0xaa],          // truncated kid context
            &[0x01, 0x14, 0x99],          // trailing byte without the k flag
        ] {
            assert_eq!(
                OscoreOption::parse(bad),
                Err(Error::BadOption),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn emit_checks() {
        let mut buf = [0u8; 8];
        let zero_piv = OscoreOption {
            partial_iv: Some(&[]),
            ..Default::default()
        };
        assert_eq!(zero_piv.emit(&mut buf), Err(Error::BadOption));
        let long_piv = OscoreOption {
            partial_iv: Some(&[1, 2, 3, 4, 5, 6]),
            ..Default::default()
        };
        assert_eq!(long_piv.emit(&mut buf), Err(Error::BadOption));
        let big = OscoreOption {
            kid: Some(&[7; 9]),
            ..Default::default()
        };
        assert_eq!(
            big.emit(&mut buf),
            Err(Error::Coap(crate::Error::BufferTooSmall { needed: 10 }))
        );
    }
}
