//! A fixed-capacity owned byte string, for identifiers and scopes kept in
//! fixed-size records (no heap).

use crate::Error;

/// Up to `N` bytes stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Bytes<N> {
    /// The empty string.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// Copies `data`; [`Error::TooLarge`] if it exceeds `N` bytes.
    pub fn from_slice(data: &[u8]) -> Result<Self, Error> {
        let mut s = Self::new();
        s.buf
            .get_mut(..data.len())
            .ok_or(Error::TooLarge)?
            .copy_from_slice(data);
        s.len = data.len();
        Ok(s)
    }

    /// The stored bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Number of stored bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for Bytes<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("h'")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        f.write_str("'")
    }
}

impl<const N: usize> zeroize::Zeroize for Bytes<N> {
    fn zeroize(&mut self) {
        self.buf.zeroize();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_copy() {
        let b = Bytes::<4>::from_slice(b"abc").unwrap();
        assert_eq!(b.as_slice(), b"abc");
        assert_eq!(Bytes::<2>::from_slice(b"abc"), Err(Error::TooLarge));
        assert_eq!(std::format!("{b:?}"), "h'616263'");
    }
}
