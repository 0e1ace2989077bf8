//! Options (RFC 7252 §3.1, §5.4, §5.10; RFC 7641, 7959, 7967, 8768, 9175).
//!
//! An option on the wire is a header byte with a 4-bit *delta* (the number
//! minus the previous option's number) and a 4-bit *length*, each extended by
//! one byte (nibble 13, value + 13) or two bytes (nibble 14, value + 269);
//! nibble 15 is reserved (and `0xFF` is the payload marker).

use core::fmt;

use crate::Error;

/// The payload marker byte (RFC 7252 §3).
pub const PAYLOAD_MARKER: u8 = 0xFF;

/// Nibble value announcing a one-byte extension (value − 13).
pub(crate) const EXT8: u8 = 13;
/// Nibble value announcing a two-byte extension (value − 269).
pub(crate) const EXT16: u8 = 14;
/// Reserved nibble value.
pub(crate) const RESERVED: u8 = 15;
/// Offset added to a one-byte extension.
pub(crate) const EXT8_BASE: usize = 13;
/// Offset added to a two-byte extension.
pub(crate) const EXT16_BASE: usize = 269;
/// The longest value (or largest delta) the encoding can carry.
pub const MAX_OPTION_VALUE_LEN: usize = EXT16_BASE + 0xFFFF;

/// The format of an option value (RFC 7252 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionFormat {
    /// Zero-length value.
    Empty,
    /// Opaque bytes.
    Opaque,
    /// Non-negative integer, network byte order, minimal length.
    Uint,
    /// UTF-8 string.
    String,
}

impl OptionFormat {
    /// Lower-case name of the format, as in the RFC tables.
    pub const fn name(self) -> &'static str {
        match self {
            OptionFormat::Empty => "empty",
            OptionFormat::Opaque => "opaque",
            OptionFormat::Uint => "uint",
            OptionFormat::String => "string",
        }
    }
}

/// What the RFCs register about one option number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OptionInfo {
    /// Registered name, e.g. `"Uri-Path"`.
    pub name: &'static str,
    /// Value format.
    pub format: OptionFormat,
    /// Minimum value length in bytes.
    pub min_len: usize,
    /// Maximum value length in bytes.
    pub max_len: usize,
    /// Whether the option may occur more than once.
    pub repeatable: bool,
}

/// A CoAP option number.
///
/// The critical / unsafe / no-cache-key properties are derived from the
/// number itself (RFC 7252 §5.4.6):
///
/// ```
/// use cssf_coap::OptionNumber;
/// assert!(OptionNumber::URI_PATH.is_critical());
/// assert!(OptionNumber::URI_PATH.is_unsafe());
/// assert!(!OptionNumber::MAX_AGE.is_critical());
/// assert!(OptionNumber::SIZE1.is_no_cache_key());
/// assert_eq!(OptionNumber::BLOCK2.info().map(|i| i.name), Some("Block2"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OptionNumber(pub u16);

macro_rules! options {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $text:literal, $fmt:ident, $min:literal ..= $max:literal, $rep:literal;)*) => {
        impl OptionNumber {
            $($(#[$doc])* pub const $name: OptionNumber = OptionNumber($num);)*

            /// The registration of this option, `None` if this crate does not
            /// know it.
            pub const fn info(self) -> Option<OptionInfo> {
                match self.0 {
                    $($num => Some(OptionInfo {
                        name: $text,
                        format: OptionFormat::$fmt,
                        min_len: $min,
                        max_len: $max,
                        repeatable: $rep,
                    }),)*
                    _ => None,
                }
            }
        }

        /// `(number, min_len, max_len, repeatable)` of every known option:
        /// what [`OptionNumber::check_len`] and
        /// [`OptionNumber::is_repeatable`] need, without building the whole
        /// [`OptionInfo`] (a few hundred bytes less code in small images).
        const LEN_BOUNDS: &[(u16, u16, u16, bool)] = &[$(($num, $min, $max, $rep)),*];
    };
}

options! {
    /// If-Match (1, RFC 7252 §5.10.8.1): opaque 0..=8, repeatable.
    IF_MATCH = 1, "If-Match", Opaque, 0..=8, true;
    /// Uri-Host (3, RFC 7252 §5.10.1): string 1..=255.
    URI_HOST = 3, "Uri-Host", String, 1..=255, false;
    /// ETag (4, RFC 7252 §5.10.6): opaque 1..=8, repeatable in requests.
    ETAG = 4, "ETag", Opaque, 1..=8, true;
    /// If-None-Match (5, RFC 7252 §5.10.8.2): empty.
    IF_NONE_MATCH = 5, "If-None-Match", Empty, 0..=0, false;
    /// Observe (6, RFC 7641): uint 0..=3.
    OBSERVE = 6, "Observe", Uint, 0..=3, false;
    /// Uri-Port (7, RFC 7252 §5.10.1): uint 0..=2.
    URI_PORT = 7, "Uri-Port", Uint, 0..=2, false;
    /// Location-Path (8, RFC 7252 §5.10.7): string 0..=255, repeatable.
    LOCATION_PATH = 8, "Location-Path", String, 0..=255, true;
    /// OSCORE (9, RFC 8613): opaque 0..=255.
    OSCORE = 9, "OSCORE", Opaque, 0..=255, false;
    /// Uri-Path (11, RFC 7252 §5.10.1): string 0..=255, repeatable.
    URI_PATH = 11, "Uri-Path", String, 0..=255, true;
    /// Content-Format (12, RFC 7252 §5.10.3): uint 0..=2.
    CONTENT_FORMAT = 12, "Content-Format", Uint, 0..=2, false;
    /// Max-Age (14, RFC 7252 §5.10.5): uint 0..=4, default 60.
    MAX_AGE = 14, "Max-Age", Uint, 0..=4, false;
    /// Uri-Query (15, RFC 7252 §5.10.1): string 0..=255, repeatable.
    URI_QUERY = 15, "Uri-Query", String, 0..=255, true;
    /// Hop-Limit (16, RFC 8768): uint 1..=1.
    HOP_LIMIT = 16, "Hop-Limit", Uint, 1..=1, false;
    /// Accept (17, RFC 7252 §5.10.4): uint 0..=2.
    ACCEPT = 17, "Accept", Uint, 0..=2, false;
    /// Location-Query (20, RFC 7252 §5.10.7): string 0..=255, repeatable.
    LOCATION_QUERY = 20, "Location-Query", String, 0..=255, true;
    /// Block2 (23, RFC 7959): uint 0..=3.
    BLOCK2 = 23, "Block2", Uint, 0..=3, false;
    /// Block1 (27, RFC 7959): uint 0..=3.
    BLOCK1 = 27, "Block1", Uint, 0..=3, false;
    /// Size2 (28, RFC 7959): uint 0..=4.
    SIZE2 = 28, "Size2", Uint, 0..=4, false;
    /// Proxy-Uri (35, RFC 7252 §5.10.2): string 1..=1034.
    PROXY_URI = 35, "Proxy-Uri", String, 1..=1034, false;
    /// Proxy-Scheme (39, RFC 7252 §5.10.2): string 1..=255.
    PROXY_SCHEME = 39, "Proxy-Scheme", String, 1..=255, false;
    /// Size1 (60, RFC 7252 §5.10.9, RFC 7959): uint 0..=4.
    SIZE1 = 60, "Size1", Uint, 0..=4, false;
    /// Echo (252, RFC 9175): opaque 1..=40.
    ECHO = 252, "Echo", Opaque, 1..=40, false;
    /// No-Response (258, RFC 7967): uint 0..=1.
    NO_RESPONSE = 258, "No-Response", Uint, 0..=1, false;
    /// Request-Tag (292, RFC 9175): opaque 0..=8, repeatable.
    REQUEST_TAG = 292, "Request-Tag", Opaque, 0..=8, true;
}

impl OptionNumber {
    /// Critical options must be understood (odd numbers, RFC 7252 §5.4.6).
    pub const fn is_critical(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// Elective options may be ignored when unknown.
    pub const fn is_elective(self) -> bool {
        !self.is_critical()
    }

    /// Unsafe-to-forward options (bit 1, RFC 7252 §5.4.6).
    pub const fn is_unsafe(self) -> bool {
        self.0 & 0x02 != 0
    }

    /// NoCacheKey options (bits 2..=4 all set, safe-to-forward only).
    pub const fn is_no_cache_key(self) -> bool {
        self.0 & 0x1e == 0x1c
    }

    /// `true` if this crate knows the option's registration.
    pub const fn is_known(self) -> bool {
        self.info().is_some()
    }

    /// Registered name, or `None` for an unknown number.
    pub const fn name(self) -> Option<&'static str> {
        match self.info() {
            Some(i) => Some(i.name),
            None => None,
        }
    }

    /// Checks a value length against the registered bounds. Unknown numbers
    /// always pass (use [`OptionNumber::is_known`] for those).
    pub const fn check_len(self, len: usize) -> Result<(), Error> {
        let mut rest = LEN_BOUNDS;
        while let [(n, min, max, _), tail @ ..] = rest {
            if *n == self.0 {
                if len < *min as usize || len > *max as usize {
                    return Err(Error::BadOptionLength { number: self, len });
                }
                return Ok(());
            }
            rest = tail;
        }
        Ok(())
    }
}

impl OptionNumber {
    /// Whether the option may occur more than once in a message (RFC 7252
    /// §5.4.5); unknown numbers count as repeatable (an unknown critical
    /// option is rejected anyway, an unknown elective one ignored).
    ///
    /// ```
    /// use cssf_coap::OptionNumber;
    /// assert!(OptionNumber::URI_PATH.is_repeatable());
    /// assert!(!OptionNumber::ACCEPT.is_repeatable());
    /// ```
    pub const fn is_repeatable(self) -> bool {
        let mut rest = LEN_BOUNDS;
        while let [(n, _, _, rep), tail @ ..] = rest {
            if *n == self.0 {
                return *rep;
            }
            rest = tail;
        }
        true
    }
}

impl fmt::Display for OptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "Unknown ({})", self.0),
        }
    }
}

/// Decodes a uint option value (RFC 7252 §3.2). Leading zero bytes are
/// accepted as the RFC allows; more than 4 bytes is [`Error::BadUint`].
///
/// ```
/// use cssf_coap::wire::decode_uint;
/// assert_eq!(decode_uint(&[]), Ok(0));
/// assert_eq!(decode_uint(&[0x00, 0x01, 0x00]), Ok(256));
/// assert!(decode_uint(&[1, 2, 3, 4, 5]).is_err());
/// ```
pub fn decode_uint(value: &[u8]) -> Result<u32, Error> {
    if value.len() > 4 {
        return Err(Error::BadUint);
    }
    Ok(value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// The minimal big-endian encoding of a uint option value (RFC 7252 §3.2):
/// zero is the empty string.
///
/// ```
/// use cssf_coap::wire::UintBytes;
/// assert_eq!(UintBytes::new(0).as_bytes(), &[] as &[u8]);
/// assert_eq!(UintBytes::new(60).as_bytes(), &[60]);
/// assert_eq!(UintBytes::new(0x1_0000).as_bytes(), &[1, 0, 0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UintBytes {
    bytes: [u8; 4],
    len: u8,
}

impl UintBytes {
    /// Encodes `value` minimally.
    pub const fn new(value: u32) -> Self {
        let len = (4 - value.leading_zeros() / 8) as u8;
        UintBytes {
            bytes: value.to_be_bytes(),
            len,
        }
    }

    /// The encoded bytes (0..=4 of them).
    pub fn as_bytes(&self) -> &[u8] {
        let start = 4 - usize::from(self.len);
        self.bytes.get(start..).unwrap_or(&[])
    }

    /// Encoded length in bytes.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// `true` for the value 0 (encoded as the empty string).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One option read from a message: its number and raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoapOption<'a> {
    /// The (absolute) option number.
    pub number: OptionNumber,
    /// The raw value bytes.
    pub value: &'a [u8],
}

impl<'a> CoapOption<'a> {
    /// The value as a uint (leading zeros accepted, at most 4 bytes).
    pub fn as_uint(&self) -> Result<u32, Error> {
        decode_uint(self.value)
    }

    /// The value as a UTF-8 string.
    pub fn as_str(&self) -> Result<&'a str, Error> {
        core::str::from_utf8(self.value).map_err(|_| Error::BadUtf8)
    }
}

/// One option as it sits on the wire, with its encoding details (for
/// dissectors and diagnostics). Produced by [`RawOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawOption<'a> {
    /// Offset of the option header byte in the scanned buffer.
    pub offset: usize,
    /// The delta from the previous option number.
    pub delta: u16,
    /// The absolute option number.
    pub number: OptionNumber,
    /// Length of the option header (1, 2, 3, 4 or 5 bytes).
    pub header_len: usize,
    /// The value.
    pub value: &'a [u8],
}

/// A lazy, checking iterator over the option area of a message that has not
/// been validated: yields `Err` once and then stops at the first malformed
/// option. Stops at the end of the buffer or at the payload marker; after
/// iteration [`RawOptions::position`] is the offset of the marker (or the
/// end).
///
/// Use [`crate::Message::options`] on validated messages instead; this is
/// for tools that want to show *where* a message is broken.
#[derive(Debug, Clone)]
pub struct RawOptions<'a> {
    buf: &'a [u8],
    pos: usize,
    number: u16,
    done: bool,
}

impl<'a> RawOptions<'a> {
    /// Scans `buf` starting at `start` (the first byte after the token).
    pub fn new(buf: &'a [u8], start: usize) -> Self {
        RawOptions {
            buf,
            pos: start,
            number: 0,
            done: false,
        }
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn step(&mut self) -> Result<Option<RawOption<'a>>, Error> {
        let offset = self.pos;
        let rest = self.buf.get(offset..).unwrap_or(&[]);
        let Some((number, value, after)) = next_option(rest, self.number)? else {
            return Ok(None);
        };
        let header_len = rest.len() - after.len() - value.len();
        let delta = number - self.number;
        self.pos = offset + header_len + value.len();
        self.number = number;
        Ok(Some(RawOption {
            offset,
            delta,
            number: OptionNumber(number),
            header_len,
            value,
        }))
    }
}

impl<'a> Iterator for RawOptions<'a> {
    type Item = Result<RawOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(o)) => Some(Ok(o)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over the options of a validated [`crate::Message`], in wire
/// order (ascending numbers, repeated options in their original order).
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
    number: u16,
}

impl<'a> Options<'a> {
    pub(crate) fn new(area: &'a [u8]) -> Self {
        Options {
            rest: area,
            number: 0,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = CoapOption<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The area was validated when the message was constructed, so this
        // never fails; if it did, iteration would just stop.
        let (number, value, rest) = next_option(self.rest, self.number).ok()??;
        self.rest = rest;
        self.number = number;
        Some(CoapOption {
            number: OptionNumber(number),
            value,
        })
    }
}

#[inline(always)]
fn ext_value(nibble: u8, ext: &[u8], used: &mut usize) -> Result<usize, Error> {
    match nibble {
        0..=12 => Ok(usize::from(nibble)),
        EXT8 => {
            let b = ext.get(*used).ok_or(Error::Truncated)?;
            *used += 1;
            Ok(usize::from(*b) + EXT8_BASE)
        }
        EXT16 => {
            let b = ext.get(*used..*used + 2).ok_or(Error::Truncated)?;
            *used += 2;
            let v = b.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
            Ok(v + EXT16_BASE)
        }
        RESERVED.. => Err(Error::ReservedOptionNibble),
    }
}

/// Decodes the option at the start of `rest` (which must not start with
/// the payload marker): `(number, value, bytes after the option)`, or
/// `None` when `rest` is empty or starts with the payload marker.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(crate) fn next_option(rest: &[u8], prev: u16) -> Result<Option<(u16, &[u8], &[u8])>, Error> {
    let Some((&head, ext)) = rest.split_first() else {
        return Ok(None);
    };
    if head == PAYLOAD_MARKER {
        return Ok(None);
    }
    let mut used = 0;
    let delta = ext_value(head >> 4, ext, &mut used)?;
    let len = ext_value(head & 0x0f, ext, &mut used)?;
    let number =
        u16::try_from(usize::from(prev) + delta).map_err(|_| Error::OptionNumberOverflow)?;
    let after = ext.get(used..).ok_or(Error::Truncated)?;
    let (value, rest) = after.split_at_checked(len).ok_or(Error::Truncated)?;
    Ok(Some((number, value, rest)))
}

/// Length of the header for `delta` and `len` (1..=5 bytes).
pub(crate) const fn header_len(delta: usize, len: usize) -> usize {
    1 + ext_len(delta) + ext_len(len)
}

const fn ext_len(v: usize) -> usize {
    if v < EXT8_BASE {
        0
    } else if v < EXT16_BASE {
        1
    } else {
        2
    }
}

fn nibble(v: usize) -> u8 {
    if v < EXT8_BASE {
        v as u8
    } else if v < EXT16_BASE {
        EXT8
    } else {
        EXT16
    }
}

/// Writes one option (header and value) at the start of `out`, returning the
/// bytes written. `out` must be at least `header_len(delta, value.len()) +
/// value.len()` long and `value.len() <= MAX_OPTION_VALUE_LEN`.
pub(crate) fn write_option(out: &mut [u8], delta: usize, value: &[u8]) -> Result<usize, Error> {
    let len = value.len();
    if delta < EXT8_BASE && len < EXT8_BASE {
        // The common case: a one-byte header.
        let total = 1 + len;
        let dst = out
            .get_mut(..total)
            .ok_or(Error::BufferTooSmall { needed: total })?;
        if let Some((head, val)) = dst.split_first_mut() {
            *head = ((delta as u8) << 4) | len as u8;
            val.copy_from_slice(value);
        }
        return Ok(total);
    }
    if len > MAX_OPTION_VALUE_LEN {
        return Err(Error::OptionTooLong);
    }
    let hl = header_len(delta, len);
    let total = hl + len;
    let dst = out
        .get_mut(..total)
        .ok_or(Error::BufferTooSmall { needed: total })?;
    let (head, val) = dst.split_at_mut(hl);
    let mut i = 1;
    for v in [delta, len] {
        match ext_len(v) {
            1 => {
                if let Some(b) = head.get_mut(i) {
                    *b = (v - EXT8_BASE) as u8;
                }
                i += 1;
            }
            2 => {
                let e = ((v - EXT16_BASE) as u16).to_be_bytes();
                if let Some(b) = head.get_mut(i..i + 2) {
                    b.copy_from_slice(&e);
                }
                i += 2;
            }
            _ => {}
        }
    }
    if let Some(b) = head.first_mut() {
        *b = (nibble(delta) << 4) | nibble(len);
    }
    val.copy_from_slice(value);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_from_number() {
        // RFC 7252 §12.2 table columns C, U, N.
        let crit = [1u16, 3, 5, 7, 11, 27, 35, 39, 23];
        for n in crit {
            assert!(OptionNumber(n).is_critical(), "{n}");
        }
        for n in [4u16, 6, 8, 12, 14, 15, 17, 20, 28, 60, 252, 258, 292] {
            let n = OptionNumber(n);
            assert_eq!(n.is_critical(), n.0 == 15 || n.0 == 17, "{n}");
        }
        assert!(OptionNumber::URI_HOST.is_unsafe());
        assert!(OptionNumber::MAX_AGE.is_unsafe());
        assert!(!OptionNumber::ETAG.is_unsafe());
        assert!(OptionNumber::SIZE1.is_no_cache_key());
        assert!(OptionNumber::SIZE2.is_no_cache_key());
        assert!(!OptionNumber::ETAG.is_no_cache_key());
    }

    #[test]
    fn length_bounds() {
        assert!(OptionNumber::ETAG.check_len(0).is_err());
        assert!(OptionNumber::ETAG.check_len(8).is_ok());
        assert!(OptionNumber::ETAG.check_len(9).is_err());
        assert!(OptionNumber::IF_NONE_MATCH.check_len(1).is_err());
        assert!(OptionNumber::PROXY_URI.check_len(1034).is_ok());
        assert!(OptionNumber(65000).check_len(100_000).is_ok());
        // The length table agrees with the registrations.
        for n in 0..=300u16 {
            let num = OptionNumber(n);
            for len in [0, 1, 2, 3, 4, 5, 8, 9, 40, 41, 255, 256, 1034, 1035] {
                let want = match num.info() {
                    Some(i) => len >= i.min_len && len <= i.max_len,
                    None => true,
                };
                assert_eq!(num.check_len(len).is_ok(), want, "{n} {len}");
            }
        }
    }

    #[test]
    fn extended_encoding_rfc_examples() {
        // delta 11 len 4 (Uri-Path "temp"): single header byte 0xB4.
        let mut out = [0u8; 16];
        assert_eq!(write_option(&mut out, 11, b"temp"), Ok(5));
        assert_eq!(&out[..5], b"\xb4temp");
        // delta 252 (Echo from 0): 0xD? with ext 252-13 = 239.
        let n = write_option(&mut out, 252, &[1, 2]).unwrap();
        assert_eq!(&out[..n], &[0xd2, 239, 1, 2]);
        // delta 292 (Request-Tag from 0): two-byte ext 292-269 = 23.
        let n = write_option(&mut out, 292, &[]).unwrap();
        assert_eq!(&out[..n], &[0xe0, 0, 23]);
        // value of 13 bytes: length nibble 13, ext 0.
        let mut big = [0u8; 300];
        let n = write_option(&mut big, 3, &[b'a'; 13]).unwrap();
        assert_eq!(&big[..2], &[0x3d, 0]);
        assert_eq!(n, 15);
        // 280-byte value: nibble 14, ext 11.
        let mut big = [0u8; 300];
        let n = write_option(&mut big, 1, &[7u8; 280]).unwrap();
        assert_eq!(&big[..3], &[0x1e, 0, 11]);
        assert_eq!(n, 283);
        // and back
        let mut it = RawOptions::new(&big[..n], 0);
        let o = it.next().unwrap().unwrap();
        assert_eq!((o.number.0, o.value.len(), o.header_len), (1, 280, 3));
        assert!(it.next().is_none());
    }

    #[test]
    fn raw_errors() {
        assert_eq!(
            RawOptions::new(&[0xf1, 0], 0).next(),
            Some(Err(Error::ReservedOptionNibble))
        );
        assert_eq!(
            RawOptions::new(&[0x1f], 0).next(),
            Some(Err(Error::ReservedOptionNibble))
        );
        assert_eq!(
            RawOptions::new(&[0x13, 1], 0).next(),
            Some(Err(Error::Truncated))
        );
        assert_eq!(
            RawOptions::new(&[0xd0], 0).next(),
            Some(Err(Error::Truncated))
        );
        assert_eq!(
            RawOptions::new(&[0xe0, 1], 0).next(),
            Some(Err(Error::Truncated))
        );
        // 65535 (ext 0xFEF2 + 269), then delta 1 overflows
        let b = [0xe0, 0xfe, 0xf2, 0x10];
        let mut it = RawOptions::new(&b, 0);
        assert!(matches!(it.next(), Some(Ok(_))));
        assert_eq!(it.next(), Some(Err(Error::OptionNumberOverflow)));
    }

    #[test]
    fn uint_codec() {
        for v in [0u32, 1, 255, 256, 65535, 65536, u32::MAX] {
            let e = UintBytes::new(v);
            assert_eq!(decode_uint(e.as_bytes()), Ok(v));
            assert!(e.as_bytes().first() != Some(&0));
        }
    }
}
