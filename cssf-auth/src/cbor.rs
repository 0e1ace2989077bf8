//! Bounded CBOR reading (RFC 8949) on top of `minicbor`'s decoder.
//!
//! Everything here is iterative: nesting is tracked in a fixed array whose
//! length is the depth limit, so deeply nested input is rejected with
//! [`Error::TooDeep`] instead of being recursed into. Indefinite-length items
//! are refused (tokens are produced by encoders using the preferred,
//! definite-length serialization of RFC 8949 §4.2).

use minicbor::data::Type;
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

/// Reads an integer (major type 0 or 1) that fits an `i64`.
pub(crate) fn int(d: &mut Decoder<'_>) -> Result<i64, Error> {
    match d.datatype().map_err(malformed)? {
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::Int => d.i64().map_err(malformed),
        _ => Err(Error::Malformed),
    }
}

/// Reads an unsigned integer.
pub(crate) fn uint(d: &mut Decoder<'_>) -> Result<u64, Error> {
    match d.datatype().map_err(malformed)? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => d.u64().map_err(malformed),
        _ => Err(Error::Malformed),
    }
}

/// Reads a definite-length byte string.
pub(crate) fn bytes<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], Error> {
    match d.datatype().map_err(malformed)? {
        Type::Bytes => d.bytes().map_err(malformed),
        _ => Err(Error::Malformed),
    }
}

/// Reads a definite-length text string.
pub(crate) fn text<'a>(d: &mut Decoder<'a>) -> Result<&'a str, Error> {
    match d.datatype().map_err(malformed)? {
        Type::String => d.str().map_err(malformed),
        _ => Err(Error::Malformed),
    }
}

/// Reads a definite-length array header.
pub(crate) fn array(d: &mut Decoder<'_>) -> Result<u64, Error> {
    match d.datatype().map_err(malformed)? {
        Type::Array => d.array().map_err(malformed)?.ok_or(Error::Malformed),
        _ => Err(Error::Malformed),
    }
}

/// Reads a definite-length map header.
pub(crate) fn map(d: &mut Decoder<'_>) -> Result<u64, Error> {
    match d.datatype().map_err(malformed)? {
        Type::Map => d.map().map_err(malformed)?.ok_or(Error::Malformed),
        _ => Err(Error::Malformed),
    }
}

/// Reads a label (int or tstr).
pub(crate) fn label<'a>(d: &mut Decoder<'a>) -> Result<Label<'a>, Error> {
    match d.datatype().map_err(malformed)? {
        Type::String => Ok(Label::Text(d.str().map_err(malformed)?)),
        _ => Ok(Label::Int(int(d)?)),
    }
}

/// If the next item is a tag, consumes it and returns its number.
pub(crate) fn opt_tag(d: &mut Decoder<'_>) -> Result<Option<u64>, Error> {
    match d.datatype().map_err(malformed)? {
        Type::Tag => Ok(Some(d.tag().map_err(malformed)?.as_u64())),
        _ => Ok(None),
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
        let opened = match d.datatype().map_err(malformed)? {
            Type::Array => d.array().map_err(malformed)?.ok_or(Error::Malformed)?,
            Type::Map => d
                .map()
                .map_err(malformed)?
                .ok_or(Error::Malformed)?
                .checked_mul(2)
                .ok_or(Error::TooLarge)?,
            Type::Tag => {
                // A tag wraps the next item; it is not an item of its own.
                d.tag().map_err(malformed)?;
                continue;
            }
            Type::Bytes => {
                d.bytes().map_err(malformed)?;
                0
            }
            Type::String => {
                d.str().map_err(malformed)?;
                0
            }
            Type::BytesIndef
            | Type::StringIndef
            | Type::ArrayIndef
            | Type::MapIndef
            | Type::Break
            | Type::Unknown(_) => return Err(Error::Malformed),
            _ => {
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
    fn heads_match_rfc8949() {
        let mut b = [0; 9];
        assert_eq!(head(2, 10, &mut b), &[0x4a]);
        assert_eq!(head(2, 24, &mut b), &[0x58, 24]);
        assert_eq!(head(4, 300, &mut b), &[0x99, 0x01, 0x2c]);
        assert_eq!(head(3, 70000, &mut b), &[0x7a, 0, 1, 0x11, 0x70]);
    }
}
