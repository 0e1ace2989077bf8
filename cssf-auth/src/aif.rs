//! Authorization Information Format (RFC 9237) scopes, REST-specific model:
//! a CBOR array of `[toid: tstr, tperm: uint]` pairs where `toid` is a local
//! URI path and `tperm` a bitmask of CoAP methods (§3: GET 1, POST 2, PUT 4,
//! DELETE 8, FETCH 16, PATCH 32, iPATCH 64). The scope claim may carry the
//! array directly or wrapped in a byte string; text scopes go through a
//! caller-supplied [`ScopeMapper`].

use minicbor::Decoder;

use crate::cbor;
use crate::Error;

/// Largest number of AIF entries accepted in one scope.
pub const MAX_ENTRIES: u64 = 64;

/// A CoAP request method (RFC 7252, RFC 8132).
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET (0.01).
    Get,
    /// POST (0.02).
    Post,
    /// PUT (0.03).
    Put,
    /// DELETE (0.04).
    Delete,
    /// FETCH (0.05).
    Fetch,
    /// PATCH (0.06).
    Patch,
    /// iPATCH (0.07).
    IPatch,
}

impl Method {
    /// The method for a CoAP request code (0.01 to 0.07).
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Method::Get),
            2 => Some(Method::Post),
            3 => Some(Method::Put),
            4 => Some(Method::Delete),
            5 => Some(Method::Fetch),
            6 => Some(Method::Patch),
            7 => Some(Method::IPatch),
            _ => None,
        }
    }

    /// The AIF permission bit (RFC 9237 §3): `1 << (code - 1)`.
    pub const fn bit(self) -> u64 {
        match self {
            Method::Get => 1,
            Method::Post => 2,
            Method::Put => 4,
            Method::Delete => 8,
            Method::Fetch => 16,
            Method::Patch => 32,
            Method::IPatch => 64,
        }
    }
}

/// A validated AIF scope: zero-copy over the CBOR array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aif<'a> {
    bytes: &'a [u8],
}

impl<'a> Aif<'a> {
    /// Validates `bytes` as exactly one AIF array of `[tstr, uint]` pairs.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let s = Self { bytes };
        let mut it = s.entries_raw()?;
        for e in &mut it {
            e?;
        }
        // exactly one array, nothing after it
        if it.d.position() != bytes.len() {
            return Err(Error::InvalidScope);
        }
        Ok(s)
    }

    fn entries_raw(&self) -> Result<AifIter<'a>, Error> {
        let mut d = Decoder::new(self.bytes);
        let n = cbor::array(&mut d).map_err(|_| Error::InvalidScope)?;
        if n > MAX_ENTRIES {
            return Err(Error::InvalidScope);
        }
        Ok(AifIter { d, left: n })
    }

    /// The `(path, methods)` entries, lazily.
    pub fn entries(&self) -> AifIter<'a> {
        self.entries_raw().unwrap_or(AifIter {
            d: Decoder::new(&[]),
            left: 0,
        })
    }

    /// The serialized array.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The permission bits granted on `path` (union over matching entries).
    pub fn permissions(&self, path: &str) -> u64 {
        self.entries()
            .flatten()
            .filter(|(p, _)| *p == path)
            .fold(0, |acc, (_, m)| acc | m)
    }

    /// Whether `method` on `path` is granted.
    pub fn allows(&self, method: Method, path: &str) -> bool {
        self.permissions(path) & method.bit() != 0
    }

    /// Emits an AIF array of `entries` into `out`.
    pub fn emit(entries: &[(&str, u64)], out: &mut [u8]) -> Result<usize, Error> {
        let mut e = minicbor::Encoder::new(minicbor::encode::write::Cursor::new(&mut *out));
        let r: Result<(), minicbor::encode::Error<_>> = (|| {
            e.array(entries.len() as u64)?;
            for (p, m) in entries {
                e.array(2)?.str(p)?.u64(*m)?;
            }
            Ok(())
        })();
        r.map_err(|_| Error::BufferTooSmall {
            needed: Self::buffer_len(entries),
        })?;
        Ok(e.into_writer().position())
    }

    /// The length [`Aif::emit`] needs.
    pub fn buffer_len(entries: &[(&str, u64)]) -> usize {
        let mut h = [0u8; 9];
        let mut n = cbor::head(4, entries.len() as u64, &mut h).len();
        for (p, m) in entries {
            n += 1 + cbor::head(3, p.len() as u64, &mut h).len() + p.len();
            n += cbor::head(0, *m, &mut h).len();
        }
        n
    }
}

/// Iterator over the entries of an [`Aif`].
#[derive(Debug, Clone)]
pub struct AifIter<'a> {
    d: Decoder<'a>,
    left: u64,
}

impl<'a> Iterator for AifIter<'a> {
    type Item = Result<(&'a str, u64), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = (|| {
            if cbor::array(&mut self.d)? != 2 {
                return Err(Error::InvalidScope);
            }
            let p = cbor::text(&mut self.d)?;
            let m = cbor::uint(&mut self.d)?;
            Ok((p, m))
        })()
        .map_err(|_| Error::InvalidScope);
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

/// Maps text scopes (e.g. `"read temp"`) to permissions; implement it for
/// deployments whose AS issues text scopes.
pub trait ScopeMapper {
    /// Whether the text `scope` grants `method` on `path`.
    fn allows(&self, scope: &str, method: Method, path: &str) -> bool;
}

/// A [`ScopeMapper`] that grants nothing: text scopes are refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTextScopes;

impl ScopeMapper for NoTextScopes {
    fn allows(&self, _: &str, _: Method, _: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_md_scope() {
        // [["/sensors/temp", 1], ["/actuators/led", 5]]
        let entries = [("/sensors/temp", 1), ("/actuators/led", 5)];
        let mut buf = [0u8; 64];
        let n = Aif::emit(&entries, &mut buf).unwrap();
        assert_eq!(n, Aif::buffer_len(&entries));
        let a = Aif::parse(&buf[..n]).unwrap();
        assert!(a.allows(Method::Get, "/sensors/temp"));
        assert!(!a.allows(Method::Put, "/sensors/temp"));
        assert!(a.allows(Method::Put, "/actuators/led"));
        assert!(!a.allows(Method::Get, "/actuators"));
        assert_eq!(
            Aif::emit(&entries, &mut buf[..5]),
            Err(Error::BufferTooSmall { needed: n })
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(Aif::parse(&[0x81, 0x81, 0x01]), Err(Error::InvalidScope));
        assert_eq!(
            Aif::parse(&[0x81, 0x82, 0x01, 0x01]),
            Err(Error::InvalidScope)
        );
        assert_eq!(
            Aif::parse(&[0x81, 0x82, 0x61, 0x2f, 0x20]),
            Err(Error::InvalidScope)
        );
        assert!(Aif::parse(&[0x80]).is_ok());
    }
}
