//! Bounded CBOR reading (RFC 8949) on top of `minicbor`'s decoder.
//!
//! Everything here is iterative: nesting is tracked in a fixed array whose
//! length is the depth limit, so deeply nested input is rejected with
//! [`Error::TooDeep`] instead of being recursed into. Indefinite-length items
//! are refused (tokens are produced by encoders using the preferred,
//! definite-length serialization of RFC 8949 §4.2).

use minicbor::Decoder;

use crate::Error;

/// The hard upper bound on nesting depth any caller may configure.
pub const MAX_DEPTH: usize = 32;

/// CBOR major types, as the top three bits of the initial byte.
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;

/// A COSE header / CWT claim label: an integer or a text string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label<'a> {
    Int(i64),
    Text(&'a str),
}

pub(crate) fn malformed<E>(_: E) -> Error {
    Error::Malformed
}

/// The major type of the next item, without decoding it.
pub(crate) fn peek_major(d: &Decoder<'_>) -> Option<u8> {
    d.input().get(d.position()).map(|b| b >> 5)
}

// The typed readers below decode the item head themselves (one byte of
// major type / additional information, then 0, 1, 2, 4 or 8 argument bytes)
// and move the decoder's position: no type probe, no generic error values on
// the hot path. They accept exactly what the minicbor readers they replace
// accepted: any argument width (preferred serialization is not required),
// no indefinite lengths (additional information 31) and no reserved
// additional information (28–30); text must be valid UTF-8.

/// The head at the decoder's position: `(major, argument, head length)`.
#[inline(always)]
fn head_at(input: &[u8], pos: usize) -> Result<(u8, u64, usize), Error> {
    let first = *input.get(pos).ok_or(Error::Malformed)?;
    let ai = first & 0x1f;
    let (arg, len) = match ai {
        0..=23 => (u64::from(ai), 1),
        24 => (u64::from(*input.get(pos + 1).ok_or(Error::Malformed)?), 2),
        25 => (be(input, pos + 1, 2)?, 3),
        26 => (be(input, pos + 1, 4)?, 5),
        27 => (be(input, pos + 1, 8)?, 9),
        _ => return Err(Error::Malformed),
    };
    Ok((first >> 5, arg, len))
}

#[inline(always)]
fn be(input: &[u8], at: usize, n: usize) -> Result<u64, Error> {
    let b = input
        .get(at..at.checked_add(n).ok_or(Error::Malformed)?)
        .ok_or(Error::Malformed)?;
    Ok(b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
}

/// Reads a head of major type `major`, returning its argument.
#[inline(always)]
fn expect(d: &mut Decoder<'_>, major: u8) -> Result<u64, Error> {
    let pos = d.position();
    let (m, arg, len) = head_at(d.input(), pos)?;
    if m != major {
        return Err(Error::Malformed);
    }
    d.set_position(pos + len);
    Ok(arg)
}

/// Reads the content of a byte or text string whose head was just read.
#[inline(always)]
fn content<'a>(d: &mut Decoder<'a>, len: u64) -> Result<&'a [u8], Error> {
    let input: &'a [u8] = d.input();
    let start = d.position();
    let len = usize::try_from(len).map_err(|_| Error::Malformed)?;
    let end = start.checked_add(len).ok_or(Error::Malformed)?;
    let b = input.get(start..end).ok_or(Error::Malformed)?;
    d.set_position(end);
    Ok(b)
}

pub(crate) fn int(d: &mut Decoder<'_>) -> Result<i64, Error> {
    let pos = d.position();
    let (m, arg, len) = head_at(d.input(), pos)?;
    let v = i64::try_from(arg).map_err(|_| Error::Malformed)?;
    let v = match m {
        0 => v,
        1 => -1 - v,
        _ => return Err(Error::Malformed),
    };
    d.set_position(pos + len);
    Ok(v)
}

/// Fails unless the next item's head is the shortest for its argument
/// (RFC 8949 §4.2.1; EDHOC messages are deterministically encoded, RFC 9528
/// §3.1, where COSE and CWT input is taken in any valid form).
#[cfg(feature = "edhoc")]
fn shortest_head(d: &Decoder<'_>) -> Result<(), Error> {
    let (m, arg, len) = head_at(d.input(), d.position())?;
    let mut h = [0u8; 9];
    if head(m, arg, &mut h).len() == len {
        Ok(())
    } else {
        Err(Error::Malformed)
    }
}

/// [`int`] in the shortest head only.
#[cfg(feature = "edhoc")]
pub(crate) fn int_strict(d: &mut Decoder<'_>) -> Result<i64, Error> {
    shortest_head(d)?;
    int(d)
}

/// [`bytes`] in the shortest head only.
#[cfg(feature = "edhoc")]
pub(crate) fn bytes_strict<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], Error> {
    shortest_head(d)?;
    bytes(d)
}

/// [`array`] in the shortest head only.
#[cfg(feature = "edhoc")]
pub(crate) fn array_strict(d: &mut Decoder<'_>) -> Result<u64, Error> {
    shortest_head(d)?;
    array(d)
}

pub(crate) fn uint(d: &mut Decoder<'_>) -> Result<u64, Error> {
    expect(d, 0)
}

pub(crate) fn bytes<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], Error> {
    let len = expect(d, MAJOR_BYTES)?;
    content(d, len)
}

pub(crate) fn text<'a>(d: &mut Decoder<'a>) -> Result<&'a str, Error> {
    let len = expect(d, MAJOR_TEXT)?;
    core::str::from_utf8(content(d, len)?).map_err(malformed)
}

pub(crate) fn array(d: &mut Decoder<'_>) -> Result<u64, Error> {
    expect(d, MAJOR_ARRAY)
}

pub(crate) fn map(d: &mut Decoder<'_>) -> Result<u64, Error> {
    expect(d, 5)
}

pub(crate) fn label<'a>(d: &mut Decoder<'a>) -> Result<Label<'a>, Error> {
    match peek_major(d) {
        Some(MAJOR_TEXT) => Ok(Label::Text(text(d)?)),
        _ => Ok(Label::Int(int(d)?)),
    }
}

/// If the next item is a tag, consumes it and returns its number.
pub(crate) fn opt_tag(d: &mut Decoder<'_>) -> Result<Option<u64>, Error> {
    match peek_major(d) {
        Some(6) => Ok(Some(d.tag().map_err(malformed)?.as_u64())),
        Some(_) => Ok(None),
        None => Err(Error::Malformed),
    }
}

/// Skips one complete data item, iteratively, refusing nesting deeper than
/// `max_depth` (clamped to [`MAX_DEPTH`]) and indefinite-length items.
pub(crate) fn skip(d: &mut Decoder<'_>, max_depth: usize) -> Result<(), Error> {
    let max_depth = max_depth.min(MAX_DEPTH);
    // remaining[i]: items still to read in the container at depth i + 1
    let mut remaining = [0u64; MAX_DEPTH];
    let mut depth = 0usize;
    loop {
        let first = *d.input().get(d.position()).ok_or(Error::Malformed)?;
        // Indefinite lengths (and the break code) are refused.
        if first & 0x1f == 31 {
            return Err(Error::Malformed);
        }
        let opened = match first >> 5 {
            MAJOR_ARRAY => array(d)?,
            5 => map(d)?.checked_mul(2).ok_or(Error::TooLarge)?,
            6 => {
                // A tag wraps the next item; it is not an item of its own.
                expect(d, 6)?;
                continue;
            }
            MAJOR_BYTES => {
                bytes(d)?;
                0
            }
            MAJOR_TEXT => {
                text(d)?;
                0
            }
            0 => {
                uint(d)?;
                0
            }
            1 => {
                expect(d, 1)?;
                0
            }
            _ => {
                // simple values and floats (minicbor refuses reserved ones)
                d.skip().map_err(malformed)?;
                0
            }
        };
        if opened > 0 {
            if depth >= max_depth {
                return Err(Error::TooDeep);
            }
            *remaining.get_mut(depth).ok_or(Error::TooDeep)? = opened;
            depth += 1;
            continue;
        }
        // One item completed: count it against the enclosing containers.
        loop {
            if depth == 0 {
                return Ok(());
            }
            let slot = remaining.get_mut(depth - 1).ok_or(Error::Malformed)?;
            *slot -= 1;
            if *slot > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// Checks that `input` is exactly one well-formed item within the depth limit.
pub(crate) fn check_single_item(input: &[u8], max_depth: usize) -> Result<(), Error> {
    let mut d = Decoder::new(input);
    skip(&mut d, max_depth)?;
    if d.position() == input.len() {
        Ok(())
    } else {
        Err(Error::Malformed)
    }
}

/// Encodes a CBOR head (major type and argument) into `out`, returning the
/// used prefix. Used to stream the COSE `*_structure`s into a hash or MAC.
pub(crate) fn head(major: u8, arg: u64, out: &mut [u8; 9]) -> &[u8] {
    let m = major << 5;
    let n = if arg < 24 {
        out[0] = m | arg as u8;
        1
    } else if arg <= 0xff {
        out[0] = m | 24;
        out[1] = arg as u8;
        2
    } else if arg <= 0xffff {
        out[0] = m | 25;
        out[1..3].copy_from_slice(&(arg as u16).to_be_bytes());
        3
    } else if arg <= 0xffff_ffff {
        out[0] = m | 26;
        out[1..5].copy_from_slice(&(arg as u32).to_be_bytes());
        5
    } else {
        out[0] = m | 27;
        out[1..9].copy_from_slice(&arg.to_be_bytes());
        9
    };
    out.get(..n).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_nested_and_refuses_too_deep() {
        // [1, {2: [h'00', "a"]}, 3.5]
        let ok = [
            0x83, 0x01, 0xa1, 0x02, 0x82, 0x41, 0x00, 0x61, 0x61, 0xf9, 0x43, 0x00,
        ];
        check_single_item(&ok, 4).unwrap();
        assert_eq!(check_single_item(&ok, 2), Err(Error::TooDeep));
        let deep = [0x81u8; 100];
        assert_eq!(check_single_item(&deep, MAX_DEPTH), Err(Error::TooDeep));
    }

    #[test]
    fn refuses_indefinite_truncated_and_trailing() {
        assert_eq!(
            check_single_item(&[0x9f, 0x01, 0xff], 4),
            Err(Error::Malformed)
        );
        assert_eq!(check_single_item(&[0x82, 0x01], 4), Err(Error::Malformed));
        assert_eq!(check_single_item(&[0x01, 0x01], 4), Err(Error::Malformed));
        // a huge declared length with no content
        assert_eq!(
            check_single_item(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 4),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn typed_readers_decode_heads_exactly() {
        let rd = |b: &[u8]| -> (Result<i64, Error>, usize) {
            let mut d = Decoder::new(b);
            let r = int(&mut d);
            (r, d.position())
        };
        assert_eq!(rd(&[0x17]), (Ok(23), 1));
        // non-preferred widths are accepted, as before
        assert_eq!(rd(&[0x19, 0x00, 0x05]), (Ok(5), 3));
        assert_eq!(rd(&[0x38, 0x63]), (Ok(-100), 2));
        assert_eq!(
            rd(&[0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).0,
            Ok(i64::MIN)
        );
        assert_eq!(
            rd(&[0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0]).0,
            Err(Error::Malformed)
        );
        assert_eq!(
            rd(&[0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0]).0,
            Err(Error::Malformed)
        );
        // reserved additional information, indefinite, truncated, wrong type
        for bad in [&[0x1c][..], &[0x1f], &[0x19, 0x01], &[0x40], &[]] {
            assert_eq!(rd(bad).0, Err(Error::Malformed), "{bad:02x?}");
        }
        let mut d = Decoder::new(&[0x5a, 0, 0, 0, 2, 1, 2, 0x62, 0xc3, 0x28]);
        assert_eq!(bytes(&mut d), Ok(&[1u8, 2][..]));
        // invalid UTF-8 in text
        assert_eq!(text(&mut d), Err(Error::Malformed));
        let mut d = Decoder::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(bytes(&mut d), Err(Error::Malformed));
        let mut d = Decoder::new(&[0x9f]);
        assert_eq!(array(&mut d), Err(Error::Malformed));
        let mut d = Decoder::new(&[0xb8, 0x02]);
        assert_eq!(map(&mut d), Ok(2));
        assert_eq!(uint(&mut Decoder::new(&[0x20])), Err(Error::Malformed));
    }

    #[test]
    fn heads_match_rfc8949() {
        let mut b = [0; 9];
        assert_eq!(head(2, 10, &mut b), &[0x4a]);
        assert_eq!(head(2, 24, &mut b), &[0x58, 24]);
        assert_eq!(head(4, 300, &mut b), &[0x99, 0x01, 0x2c]);
        assert_eq!(head(3, 70000, &mut b), &[0x7a, 0, 1, 0x11, 0x70]);
    }
}
