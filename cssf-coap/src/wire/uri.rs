//! `coap://` and `coaps://` URIs to options and back (RFC 7252 §6.4, §6.5).
//!
//! [`decompose`] follows §6.4 step by step without allocating: components
//! without percent-encodings (or upper-case host letters) are borrowed from
//! the URI, the others are decoded into a caller scratch buffer, and the
//! options go into a [`MessageBuilder`]. [`compose`] follows §6.5 and writes
//! into any [`core::fmt::Write`] (or a byte slice with [`compose_to_slice`]).
//!
//! ```
//! use cssf_coap::wire::uri::{compose_to_slice, decompose};
//! use cssf_coap::{Code, Message, MessageBuilder, MessageType};
//!
//! let mut scratch = [0u8; 64];
//! let mut b = MessageBuilder::<8>::new(MessageType::Con, Code::GET, 1);
//! let uri = "coap://[::1]/sensors/temp%20C?unit=C";
//! let parts = decompose(uri, &mut scratch, None, &mut b)?;
//! assert_eq!((parts.host, parts.port, parts.secure), ("::1", 5683, false));
//!
//! let mut buf = [0u8; 64];
//! let n = b.emit(&mut buf)?;
//! let m = Message::parse(&buf[..n])?;
//! assert_eq!(m.uri_path().collect::<Vec<_>>(), [b"sensors".as_slice(), b"temp C"]);
//!
//! let dest = "[::1]:5683".parse().unwrap();
//! let mut text = [0u8; 64];
//! let n = compose_to_slice(&m, false, dest, &mut text)?;
//! assert_eq!(&text[..n], uri.as_bytes());
//! # Ok::<(), cssf_coap::Error>(())
//! ```

use core::fmt::{self, Write};
use core::net::{IpAddr, SocketAddr};

use crate::wire::message::{Message, MessageBuilder};
use crate::wire::option::OptionNumber;
use crate::Error;

/// Default port of `coap://` (RFC 7252 §6.1).
pub const COAP_PORT: u16 = 5683;
/// Default port of `coaps://` (RFC 7252 §6.2).
pub const COAPS_PORT: u16 = 5684;

/// What [`decompose`] learned about the URI besides the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UriParts<'a> {
    /// `true` for `coaps`.
    pub secure: bool,
    /// The host as written (IPv6 literal without brackets; not decoded).
    pub host: &'a str,
    /// `true` when the host is an IP-literal or IPv4address (no Uri-Host).
    pub host_is_ip: bool,
    /// The explicit port, or the scheme's default port.
    pub port: u16,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes (and optionally lower-cases) `s`; borrows `s` when that
/// changes nothing, otherwise writes into the front of `scratch`.
fn decode<'a>(s: &'a str, lower: bool, scratch: &mut &'a mut [u8]) -> Result<&'a [u8], Error> {
    let bytes = s.as_bytes();
    let needs_work = bytes
        .iter()
        .any(|&b| b == b'%' || (lower && b.is_ascii_uppercase()));
    if !needs_work {
        return Ok(bytes);
    }
    let space = core::mem::take(scratch);
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let out = if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            i += 3;
            match (hi, lo) {
                (Some(h), Some(l)) => (h << 4) | l,
                _ => return Err(Error::BadUri),
            }
        } else {
            i += 1;
            if lower {
                b.to_ascii_lowercase()
            } else {
                b
            }
        };
        let slot = space
            .get_mut(n)
            .ok_or(Error::BufferTooSmall { needed: n + 1 })?;
        *slot = out;
        n += 1;
    }
    let (done, rest) = space.split_at_mut(n);
    *scratch = rest;
    Ok(done)
}

fn is_ipv4(host: &str) -> bool {
    let mut parts = 0;
    for p in host.split('.') {
        parts += 1;
        let ok = !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u8>().is_ok();
        if !ok {
            return false;
        }
    }
    parts == 4
}

/// Decomposes `uri` into Uri-Host, Uri-Port, Uri-Path and Uri-Query options
/// added to `builder` (RFC 7252 §6.4).
///
/// `destination_port` is the UDP port the request is sent to, when the
/// caller sends it somewhere else than the URI's port (e.g. through a
/// relay): Uri-Port is included only when the two differ. Uri-Host is
/// included only for a reg-name host (the destination IP is assumed to be
/// derived from the URI's host, the usual case the RFC's note describes).
///
/// Errors: `BadUri` (not absolute, scheme not coap/coaps, fragment,
/// userinfo, bad port, bad percent-encoding, empty host), `BufferTooSmall`
/// when `scratch` cannot hold the decoded components, builder errors.
pub fn decompose<'a, const N: usize>(
    uri: &'a str,
    scratch: &'a mut [u8],
    destination_port: Option<u16>,
    builder: &mut MessageBuilder<'a, N>,
) -> Result<UriParts<'a>, Error> {
    let mut scratch = scratch;
    // Steps 1 and 3: an absolute URI with scheme coap or coaps.
    let (scheme, rest) = uri.split_once(':').ok_or(Error::BadUri)?;
    let secure = if scheme.eq_ignore_ascii_case("coap") {
        false
    } else if scheme.eq_ignore_ascii_case("coaps") {
        true
    } else {
        return Err(Error::BadUri);
    };
    let rest = rest.strip_prefix("//").ok_or(Error::BadUri)?;
    // Step 4: no fragment.
    if rest.contains('#') {
        return Err(Error::BadUri);
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    if authority.contains('@') {
        return Err(Error::BadUri);
    }
    // Host and port.
    let (host, port_str, host_is_ip) = if let Some(v6) = authority.strip_prefix('[') {
        let (lit, after) = v6.split_once(']').ok_or(Error::BadUri)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(Error::BadUri)?),
        };
        if lit.is_empty()
            || !lit
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            // IPvFuture and zone identifiers are not supported.
            return Err(Error::BadUri);
        }
        (lit, port, true)
    } else {
        let (h, p) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        (h, p, is_ipv4(h))
    };
    if host.is_empty() || (!host_is_ip && !valid(host, Part::Host)) {
        return Err(Error::BadUri);
    }
    if !path.split('/').all(|seg| valid(seg, Part::Segment)) {
        return Err(Error::BadUri);
    }
    if let Some(q) = query {
        if !q.split('&').all(|arg| valid(arg, Part::Argument)) {
            return Err(Error::BadUri);
        }
    }
    let default_port = if secure { COAPS_PORT } else { COAP_PORT };
    let port = match port_str {
        None | Some("") => default_port,
        Some(p) => {
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::BadUri);
            }
            p.parse::<u16>().map_err(|_| Error::BadUri)?
        }
    };
    // Step 5: Uri-Host for a reg-name, lower-cased then percent-decoded.
    if !host_is_ip {
        let h = decode(host, true, &mut scratch)?;
        builder.add_option(OptionNumber::URI_HOST, h)?;
    }
    // Steps 6 and 7: Uri-Port when the destination port differs.
    if let Some(dest) = destination_port {
        if dest != port {
            builder.add_uint(OptionNumber::URI_PORT, u32::from(port))?;
        }
    }
    // Step 8: Uri-Path, one per segment (dot segments removed, RFC 3986
    // §5.2.4, as the reference resolution of step 2 does).
    if !(path.is_empty() || path == "/") {
        let mut segments = path.get(1..).unwrap_or("").split('/').peekable();
        while let Some(seg) = segments.next() {
            let last = segments.peek().is_none();
            match seg {
                "." | ".." => {
                    if seg == ".." {
                        builder.remove_last(OptionNumber::URI_PATH);
                    }
                    if last {
                        builder.add_option(OptionNumber::URI_PATH, &[])?;
                    }
                }
                s => {
                    let v = decode(s, false, &mut scratch)?;
                    builder.add_option(OptionNumber::URI_PATH, v)?;
                }
            }
        }
    }
    // Step 9: Uri-Query, one per `&`-separated argument.
    if let Some(q) = query {
        if !q.is_empty() {
            for arg in q.split('&') {
                let v = decode(arg, false, &mut scratch)?;
                builder.add_option(OptionNumber::URI_QUERY, v)?;
            }
        }
    }
    Ok(UriParts {
        secure,
        host,
        host_is_ip,
        port,
    })
}

/// Which characters a component may carry unencoded.
#[derive(Clone, Copy)]
enum Part {
    Host,
    Segment,
    Argument,
}

fn allowed(b: u8, part: Part) -> bool {
    let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    // sub-delims without '&' ( '&' separates query arguments)
    let sub = matches!(
        b,
        b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    );
    match part {
        Part::Host => unreserved || sub || b == b'&',
        Part::Segment => unreserved || sub || matches!(b, b'&' | b':' | b'@'),
        Part::Argument => unreserved || sub || matches!(b, b':' | b'@' | b'/' | b'?'),
    }
}

/// RFC 3986 syntax check of one component (percent-escapes are checked
/// when decoding).
fn valid(s: &str, part: Part) -> bool {
    s.bytes().all(|b| b == b'%' || allowed(b, part))
}

fn encode<W: Write>(out: &mut W, value: &[u8], part: Part) -> fmt::Result {
    for &b in value {
        if allowed(b, part) {
            out.write_char(char::from(b))?;
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// Composes the request URI of `message` (RFC 7252 §6.5) into `out`.
///
/// `destination` is the address the request was sent to (used when Uri-Host
/// or Uri-Port are absent); `secure` picks `coaps`. Default ports are
/// omitted and IPv6 literals are bracketed.
pub fn compose<W: Write>(
    message: &Message<'_>,
    secure: bool,
    destination: SocketAddr,
    out: &mut W,
) -> Result<(), Error> {
    compose_inner(message, secure, destination, out).map_err(|_| Error::BadUri)
}

fn compose_inner<W: Write>(
    m: &Message<'_>,
    secure: bool,
    destination: SocketAddr,
    out: &mut W,
) -> fmt::Result {
    out.write_str(if secure { "coaps://" } else { "coap://" })?;
    match m.option(OptionNumber::URI_HOST) {
        Some(h) => encode(out, h, Part::Host)?,
        None => match destination.ip() {
            IpAddr::V4(a) => write!(out, "{a}")?,
            IpAddr::V6(a) => write!(out, "[{a}]")?,
        },
    }
    let port = match m.uint_option(OptionNumber::URI_PORT) {
        Ok(Some(p)) => u16::try_from(p).map_err(|_| fmt::Error)?,
        Ok(None) => destination.port(),
        Err(_) => return Err(fmt::Error),
    };
    let default_port = if secure { COAPS_PORT } else { COAP_PORT };
    if port != default_port {
        write!(out, ":{port}")?;
    }
    let mut any = false;
    for seg in m.uri_path() {
        out.write_char('/')?;
        encode(out, seg, Part::Segment)?;
        any = true;
    }
    if !any {
        out.write_char('/')?;
    }
    for (i, arg) in m.uri_query().enumerate() {
        out.write_char(if i == 0 { '?' } else { '&' })?;
        encode(out, arg, Part::Argument)?;
    }
    Ok(())
}

struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    needed: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.needed + s.len();
        if let Some(dst) = self.buf.get_mut(self.needed..end) {
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
        }
        self.needed = end;
        Ok(())
    }
}

/// [`compose`] into a byte slice; returns the length, or
/// `BufferTooSmall { needed }`.
pub fn compose_to_slice(
    message: &Message<'_>,
    secure: bool,
    destination: SocketAddr,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let mut w = SliceWriter {
        buf,
        len: 0,
        needed: 0,
    };
    compose(message, secure, destination, &mut w)?;
    if w.len != w.needed {
        return Err(Error::BufferTooSmall { needed: w.needed });
    }
    Ok(w.len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Code, MessageType};
    use std::{string::String, vec::Vec};

    fn opts(uri: &str, dest_port: Option<u16>) -> Result<Vec<(u16, Vec<u8>)>, Error> {
        let mut scratch = [0u8; 128];
        let mut b = MessageBuilder::<16>::new(MessageType::Con, Code::GET, 1);
        decompose(uri, &mut scratch, dest_port, &mut b)?;
        Ok(b.options()
            .map(|(n, v)| (n.0, v.as_bytes().to_vec()))
            .collect())
    }

    fn roundtrip(uri: &str, dest: &str) -> String {
        let mut scratch = [0u8; 128];
        let mut b = MessageBuilder::<16>::new(MessageType::Con, Code::GET, 1);
        let dest: SocketAddr = dest.parse().unwrap();
        let parts = decompose(uri, &mut scratch, Some(dest.port()), &mut b).unwrap();
        let mut buf = [0u8; 256];
        let n = b.emit(&mut buf).unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        let mut s = String::new();
        compose(&m, parts.secure, dest, &mut s).unwrap();
        s
    }

    #[test]
    fn rfc7252_6_3_equivalent_uris() {
        // §6.3: these three URIs are equivalent; they decompose identically.
        let a = opts("coap://example.com:5683/~sensors/temp.xml", None).unwrap();
        let b = opts("coap://EXAMPLE.com/%7Esensors/temp.xml", None).unwrap();
        let c = opts("coap://EXAMPLE.COM:/%7esensors/temp.xml", None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a,
            [
                (3, b"example.com".to_vec()),
                (11, b"~sensors".to_vec()),
                (11, b"temp.xml".to_vec())
            ]
        );
    }

    #[test]
    fn hosts_ports_paths_queries() {
        assert_eq!(opts("coap://192.0.2.1/", None).unwrap(), []);
        assert_eq!(opts("coap://[2001:db8::1]", None).unwrap(), []);
        assert_eq!(
            opts("coaps://h:61616/a?x=1&y=%26", Some(5684)).unwrap(),
            [
                (3, b"h".to_vec()),
                (7, vec_u16(61616)),
                (11, b"a".to_vec()),
                (15, b"x=1".to_vec()),
                (15, b"y=&".to_vec())
            ]
        );
        assert_eq!(
            opts("coap://1.2.3.4/a/./b/../c/", None).unwrap(),
            [(11, b"a".to_vec()), (11, b"c".to_vec()), (11, b"".to_vec())]
        );
        for bad in [
            "http://h/",
            "coap:h/x",
            "coap://h/#frag",
            "coap://u@h/",
            "coap://h:99999/",
            "coap://h:x/",
            "coap://h/%zz",
            "coap://h/%4",
            "coap:///path",
            "coap://[::1/",
            "coap://[::1]x/",
            "coap://::1/",
            "coap://h/a b",
            "coap://h/x?a\"b",
            "coap://h<>/",
            "coap",
        ] {
            assert_eq!(opts(bad, None), Err(Error::BadUri), "{bad}");
        }
        // too little scratch
        let mut scratch = [0u8; 2];
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
        assert!(matches!(
            decompose("coap://h/%41%42%43", &mut scratch, None, &mut b),
            Err(Error::BufferTooSmall { .. })
        ));
    }

    fn vec_u16(v: u16) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    #[test]
    fn compose_roundtrips() {
        for (uri, dest) in [
            ("coap://[::1]/sensors/temp?unit=C", "[::1]:5683"),
            ("coap://192.0.2.1:61616/", "192.0.2.1:61616"),
            ("coaps://example.net/a%2Fb/%20?q=a%26b&r", "192.0.2.1:5684"),
            ("coap://example.net:7000/.well-known/core", "192.0.2.1:5683"),
        ] {
            assert_eq!(roundtrip(uri, dest), uri);
        }
        // Uri-Port relative to destination
        assert_eq!(
            roundtrip("coap://[::1]:5683/x", "[::1]:5683"),
            "coap://[::1]/x"
        );
        // compose_to_slice reports the needed size
        let m = Message::parse(b"\x40\x01\x00\x01\xb1a").unwrap();
        let dest: SocketAddr = "10.0.0.1:5683".parse().unwrap();
        let mut small = [0u8; 4];
        assert_eq!(
            compose_to_slice(&m, false, dest, &mut small),
            Err(Error::BufferTooSmall { needed: 17 })
        );
    }
}
