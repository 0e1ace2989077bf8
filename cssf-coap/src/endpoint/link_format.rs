//! `/.well-known/core` in CoRE Link Format (RFC 6690 §5) with query
//! filtering (§4.1: one `attr=value` filter, `href` included, a trailing `*`
//! matches a prefix).
//!
//! The document is written through a [`Window`], so a Block2 slice of any
//! offset is produced without ever holding the whole document.

use super::router::Resource;

/// Writes the bytes of a document that fall in `[start, start + out.len())`
/// and counts the total length.
#[derive(Debug)]
pub(crate) struct Window<'b> {
    out: &'b mut [u8],
    start: usize,
    pos: usize,
    written: usize,
}

impl<'b> Window<'b> {
    /// A window of `out.len()` bytes beginning at document offset `start`.
    pub(crate) fn new(out: &'b mut [u8], start: usize) -> Self {
        Window {
            out,
            start,
            pos: 0,
            written: 0,
        }
    }

    /// Appends document bytes.
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.pos >= self.start {
                if let Some(slot) = self.out.get_mut(self.pos - self.start) {
                    *slot = b;
                    self.written += 1;
                }
            }
            self.pos += 1;
        }
    }

    fn put_uint(&mut self, v: u32) {
        let mut digits = [0u8; 10];
        let mut n = v;
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.put(digits.get(i..).unwrap_or(&[]));
    }

    /// Total document length so far.
    pub(crate) fn total(&self) -> usize {
        self.pos
    }

    /// Bytes written into the window.
    pub(crate) fn written(&self) -> usize {
        self.written
    }
}

/// Whether `value` matches the filter `pattern` (trailing `*` = prefix).
fn value_matches(pattern: &[u8], value: &[u8]) -> bool {
    match pattern.split_last() {
        Some((b'*', prefix)) => value.starts_with(prefix),
        _ => pattern == value,
    }
}

/// Whether a space-separated attribute value list has a matching entry.
fn list_matches(pattern: &[u8], list: &str) -> bool {
    list.split(' ')
        .any(|v| value_matches(pattern, v.as_bytes()))
}

fn uint_matches(pattern: &[u8], v: u32) -> bool {
    let mut buf = [0u8; 10];
    let mut w = Window::new(&mut buf, 0);
    w.put_uint(v);
    let n = w.written();
    value_matches(pattern, buf.get(..n).unwrap_or(&[]))
}

/// Whether `r` passes the query filter `query` (`attr=value`, or `None`).
pub(crate) fn filter_matches(r: &Resource, query: Option<&[u8]>) -> bool {
    let Some(q) = query else { return true };
    let Some(eq) = q.iter().position(|&b| b == b'=') else {
        return true;
    };
    let (attr, value) = q.split_at(eq);
    let value = value.get(1..).unwrap_or(&[]);
    match attr {
        b"href" => {
            // href values carry the leading '/'.
            let v = value.strip_prefix(b"/").unwrap_or(value);
            value_matches(v, r.trimmed_path().as_bytes())
        }
        b"rt" => r.rt.is_some_and(|rt| list_matches(value, rt)),
        b"if" => r.if_.is_some_and(|i| list_matches(value, i)),
        b"ct" => r.ct.is_some_and(|ct| uint_matches(value, u32::from(ct))),
        b"sz" => r.sz.is_some_and(|sz| uint_matches(value, sz)),
        b"obs" => r.obs,
        b"osc" => r.oscore,
        // Unknown attributes match nothing (RFC 6690 §4.1).
        _ => false,
    }
}

/// Writes the link-format document for `table` (filtered by `query`).
pub(crate) fn write_links(table: &[Resource], query: Option<&[u8]>, w: &mut Window<'_>) {
    let mut first = true;
    for r in table.iter().filter(|r| filter_matches(r, query)) {
        if !first {
            w.put(b",");
        }
        first = false;
        w.put(b"</");
        w.put(r.trimmed_path().as_bytes());
        w.put(b">");
        if let Some(rt) = r.rt {
            w.put(b";rt=\"");
            w.put(rt.as_bytes());
            w.put(b"\"");
        }
        if let Some(i) = r.if_ {
            w.put(b";if=\"");
            w.put(i.as_bytes());
            w.put(b"\"");
        }
        if let Some(ct) = r.ct {
            w.put(b";ct=");
            w.put_uint(u32::from(ct));
        }
        if let Some(sz) = r.sz {
            w.put(b";sz=");
            w.put_uint(sz);
        }
        if r.obs {
            w.put(b";obs");
        }
        if r.oscore {
            // RFC 8613 §9: the resource is accessed with OSCORE.
            w.put(b";osc");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Methods;

    static T: [Resource; 3] = [
        Resource::new("sensors/temp", Methods::GET)
            .rt("temperature-c")
            .if_("sensor")
            .ct(0)
            .observable(),
        Resource::new("sensors/light", Methods::GET)
            .rt("light-lux core.s")
            .if_("sensor")
            .sz(120),
        Resource::new("led", Methods::PUT),
    ];

    fn doc(q: Option<&[u8]>) -> std::string::String {
        let mut buf = [0u8; 512];
        let mut w = Window::new(&mut buf, 0);
        write_links(&T, q, &mut w);
        let n = w.written();
        assert_eq!(n, w.total());
        std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn rfc6690_document() {
        assert_eq!(
            doc(None),
            "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\";ct=0;obs,\
             </sensors/light>;rt=\"light-lux core.s\";if=\"sensor\";sz=120,</led>"
        );
    }

    #[test]
    fn filters() {
        assert_eq!(
            doc(Some(b"rt=temperature-c")),
            "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\";ct=0;obs"
        );
        assert_eq!(
            doc(Some(b"rt=core.s")),
            "</sensors/light>;rt=\"light-lux core.s\";if=\"sensor\";sz=120"
        );
        assert_eq!(doc(Some(b"rt=light*")), doc(Some(b"rt=core.s")));
        assert_eq!(doc(Some(b"href=/led")), "</led>");
        assert_eq!(doc(Some(b"href=/sensors/*")).matches("</").count(), 2);
        assert_eq!(doc(Some(b"if=sensor")).matches("</").count(), 2);
        assert_eq!(doc(Some(b"ct=0")).matches("</").count(), 1);
        assert_eq!(doc(Some(b"foo=bar")), "");
    }

    #[test]
    fn window_slices_match_whole_document() {
        let whole = doc(None);
        let mut out = std::vec::Vec::new();
        let mut off = 0;
        loop {
            let mut buf = [0u8; 16];
            let mut w = Window::new(&mut buf, off);
            write_links(&T, None, &mut w);
            let n = w.written();
            assert_eq!(w.total(), whole.len());
            out.extend_from_slice(&buf[..n]);
            off += 16;
            if off >= whole.len() {
                break;
            }
        }
        assert_eq!(out, whole.as_bytes());
    }
}
