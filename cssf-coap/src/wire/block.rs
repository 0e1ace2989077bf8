//! Block1 / Block2 option values (RFC 7959 §2.2).
//!
//! The value is a uint `NUM << 4 | M << 3 | SZX`: NUM the block number
//! (up to 2^20 − 1), M "more blocks follow", SZX the size exponent (block
//! size `2^(SZX + 4)`, 16..=1024; SZX 7 is reserved).

use crate::wire::option::{decode_uint, UintBytes};
use crate::Error;

/// Largest block number the 3-byte option can carry.
pub const MAX_BLOCK_NUM: u32 = (1 << 20) - 1;

/// A Block1 or Block2 option value.
///
/// ```
/// use cssf_coap::Block;
/// let b = Block::new(2, true, 6)?; // third block of 1024 bytes, more follow
/// assert_eq!(b.size(), 1024);
/// assert_eq!(b.offset(), 2048);
/// assert_eq!(b.to_uint(), 0x2e);
/// assert_eq!(Block::from_bytes(&[0x2e])?, b);
/// assert!(Block::from_uint(0x07).is_err()); // SZX 7
/// # Ok::<(), cssf_coap::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    num: u32,
    more: bool,
    szx: u8,
}

impl Block {
    /// A block value; `szx` 0..=6, `num` up to [`MAX_BLOCK_NUM`].
    pub const fn new(num: u32, more: bool, szx: u8) -> Result<Self, Error> {
        if szx > 6 || num > MAX_BLOCK_NUM {
            return Err(Error::BadBlock);
        }
        Ok(Block { num, more, szx })
    }

    /// The block covering byte `offset` at size exponent `szx` (offset
    /// rounded down to the block boundary).
    pub const fn at_offset(offset: usize, more: bool, szx: u8) -> Result<Self, Error> {
        if szx > 6 {
            return Err(Error::BadBlock);
        }
        let num = offset >> (szx + 4);
        if num > MAX_BLOCK_NUM as usize {
            return Err(Error::BadBlock);
        }
        Block::new(num as u32, more, szx)
    }

    /// Decodes the uint value of the option.
    pub const fn from_uint(v: u32) -> Result<Self, Error> {
        Block::new(v >> 4, v & 0x08 != 0, (v & 0x07) as u8)
    }

    /// Decodes the raw option value (0..=3 bytes; leading zeros accepted).
    pub fn from_bytes(value: &[u8]) -> Result<Self, Error> {
        if value.len() > 3 {
            return Err(Error::BadBlock);
        }
        Block::from_uint(decode_uint(value)?)
    }

    /// The uint value of the option.
    pub const fn to_uint(self) -> u32 {
        (self.num << 4) | ((self.more as u32) << 3) | self.szx as u32
    }

    /// The minimal option encoding.
    pub const fn to_bytes(self) -> UintBytes {
        UintBytes::new(self.to_uint())
    }

    /// The block number NUM.
    pub const fn num(self) -> u32 {
        self.num
    }

    /// The M bit: more blocks follow (Block2 response / Block1 request), or
    /// in a Block1 response, that the server will want the next block.
    pub const fn more(self) -> bool {
        self.more
    }

    /// The size exponent SZX (0..=6).
    pub const fn szx(self) -> u8 {
        self.szx
    }

    /// The block size in bytes, `2^(SZX+4)`.
    pub const fn size(self) -> usize {
        1 << (self.szx + 4)
    }

    /// Offset of the first byte of this block in the whole body.
    pub const fn offset(self) -> usize {
        (self.num as usize) << (self.szx + 4)
    }

    /// SZX for a block size (16..=1024, a power of two).
    pub const fn szx_for_size(size: usize) -> Result<u8, Error> {
        match size {
            16 => Ok(0),
            32 => Ok(1),
            64 => Ok(2),
            128 => Ok(3),
            256 => Ok(4),
            512 => Ok(5),
            1024 => Ok(6),
            _ => Err(Error::BadBlock),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7959_examples() {
        // RFC 7959 §2.2: "Block2 0/0/64" is NUM 0, M 0, SZX 2 → value 0x02.
        let b = Block::from_bytes(&[0x02]).unwrap();
        assert_eq!((b.num(), b.more(), b.size()), (0, false, 64));
        // "2:1/1/128": NUM 1, M 1, SZX 3 → 0x1b.
        assert_eq!(
            Block::new(1, true, 3).unwrap().to_bytes().as_bytes(),
            &[0x1b]
        );
        // zero encodes as empty
        assert_eq!(Block::new(0, false, 0).unwrap().to_bytes().len(), 0);
        // biggest NUM: three bytes
        let b = Block::new(MAX_BLOCK_NUM, true, 6).unwrap();
        assert_eq!(b.to_bytes().as_bytes(), &[0xff, 0xff, 0xfe]);
        assert_eq!(Block::from_bytes(&[0xff, 0xff, 0xfe]), Ok(b));
        assert_eq!(
            Block::new(MAX_BLOCK_NUM + 1, false, 0),
            Err(Error::BadBlock)
        );
        assert_eq!(Block::from_bytes(&[0x0f]), Err(Error::BadBlock));
        assert_eq!(Block::from_bytes(&[0, 0, 0, 1]), Err(Error::BadBlock));
        // leading zeros accepted
        assert_eq!(
            Block::from_bytes(&[0, 0x1b]),
            Ok(Block::new(1, true, 3).unwrap())
        );
        assert_eq!(Block::at_offset(2100, true, 6), Block::new(2, true, 6));
        assert_eq!(Block::szx_for_size(256), Ok(4));
        assert!(Block::szx_for_size(2048).is_err());
    }
}
