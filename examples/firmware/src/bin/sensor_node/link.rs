//! The peer header of the served link: every SLIP frame between the node
//! and `cssf-slip-bridge --serve-coap ... --serve-coaps ...` starts with
//! seven bytes that say which of the bridge's UDP sockets the datagram
//! came in on (or goes out of) and the remote peer's IPv4 address and
//! port; the datagram follows.
//!
//! ```text
//!  0        1                 5         7
//! +--------+-----------------+---------+------------------
//! |  kind  |  IPv4 address   |  port   |  datagram ...
//! +--------+-----------------+---------+------------------
//!  kind: 0 = the CoAP socket, 1 = the CoAPs socket,
//!        0xFF = end of run (bridge to node only; address and datagram
//!        are zero and empty)
//!  port: big-endian
//! ```
//!
//! The node answers a peer with the header it received from it, so the
//! bridge keeps no peer table: it sends each frame from the socket of
//! `kind` to the address in the header.

use cssf_dtls::PeerAddress;

/// Bytes of the header.
pub const HEADER: usize = 7;

const KIND_COAP: u8 = 0;
const KIND_COAPS: u8 = 1;
const KIND_END: u8 = 0xFF;

/// Which socket of the bridge, or a control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain CoAP (RFC 7252 over UDP).
    Coap,
    /// CoAP over DTLS.
    Coaps,
    /// The bridge ends the run.
    End,
}

/// A remote UDP peer as the bridge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub ip: [u8; 4],
    pub port: u16,
}

impl PeerAddress for PeerAddr {
    fn feed(&self, f: &mut dyn FnMut(&[u8])) {
        f(&self.ip);
        f(&self.port.to_be_bytes());
    }
}

impl PeerAddr {
    /// Prints `a.b.c.d:port`.
    pub fn put(&self) {
        for (i, b) in self.ip.iter().enumerate() {
            if i > 0 {
                cssf_firmware::put(b".");
            }
            cssf_firmware::put_num(usize::from(*b));
        }
        cssf_firmware::put(b":");
        cssf_firmware::put_num(usize::from(self.port));
    }
}

/// Splits a frame into its kind, peer and datagram; `None` for a frame
/// shorter than the header or of an unknown kind.
pub fn parse(frame: &mut [u8]) -> Option<(Kind, PeerAddr, &mut [u8])> {
    let (h, datagram) = frame.split_at_mut_checked(HEADER)?;
    let kind = match *h.first()? {
        KIND_COAP => Kind::Coap,
        KIND_COAPS => Kind::Coaps,
        KIND_END => Kind::End,
        _ => return None,
    };
    let ip = <[u8; 4]>::try_from(h.get(1..5)?).ok()?;
    let port = u16::from_be_bytes(<[u8; 2]>::try_from(h.get(5..7)?).ok()?);
    Some((kind, PeerAddr { ip, port }, datagram))
}

/// Writes the header for a datagram to `to` on socket `kind` into `out`
/// (at least [`HEADER`] bytes).
pub fn emit_header(kind: Kind, to: PeerAddr, out: &mut [u8]) {
    let k = match kind {
        Kind::Coap => KIND_COAP,
        Kind::Coaps => KIND_COAPS,
        Kind::End => KIND_END,
    };
    let [p0, p1] = to.port.to_be_bytes();
    let [a, b, c, d] = to.ip;
    for (slot, v) in out.iter_mut().zip([k, a, b, c, d, p0, p1]) {
        *slot = v;
    }
}
