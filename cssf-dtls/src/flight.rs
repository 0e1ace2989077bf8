//! Flights (RFC 6347 §4.2.4): our last flight kept for retransmission, and
//! bounded reassembly of the peer's fragmented handshake messages (§4.2.3).

use crate::wire::handshake::{HandshakeHeader, HEADER_LEN};
use crate::Error;

/// Largest handshake message body this crate reassembles from fragments:
/// 1024 bytes, or 320 in a PSK-only client build (without features `ecdhe`
/// and `server`), which receives no certificates or ClientHellos (a
/// HelloVerifyRequest with the longest cookie has a 258-byte body). A
/// message that comes whole in one record is processed where it lies,
/// whatever its length.
#[cfg(any(feature = "ecdhe", feature = "server"))]
pub const MAX_MESSAGE_LEN: usize = 1024;
/// Largest handshake message body this crate reassembles from fragments:
/// 1024 bytes, or 320 in a PSK-only client build (without features `ecdhe`
/// and `server`), which receives no certificates or ClientHellos (a
/// HelloVerifyRequest with the longest cookie has a 258-byte body). A
/// message that comes whole in one record is processed where it lies,
/// whatever its length.
#[cfg(not(any(feature = "ecdhe", feature = "server")))]
pub const MAX_MESSAGE_LEN: usize = 320;
/// Bytes available for one flight's messages (headers included): 1024,
/// or 512 in a PSK-only client build, whose largest flight is one
/// ClientHello (under 400 bytes with a 255-byte cookie).
#[cfg(any(feature = "ecdhe", feature = "server"))]
pub(crate) const FLIGHT_CAPACITY: usize = 1024;
/// Bytes available for one flight's messages (headers included): 1024,
/// or 512 in a PSK-only client build, whose largest flight is one
/// ClientHello (under 400 bytes with a 255-byte cookie).
#[cfg(not(any(feature = "ecdhe", feature = "server")))]
pub(crate) const FLIGHT_CAPACITY: usize = 512;
/// Most records in one flight.
pub(crate) const MAX_FLIGHT_ENTRIES: usize = 6;

/// One record-level item of a flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Content type (handshake or change_cipher_spec).
    pub(crate) content_type: u8,
    /// Epoch to send it under.
    pub(crate) epoch: u16,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// Our last flight: whole, unfragmented messages (headers included).
#[derive(Debug, Clone)]
pub(crate) struct Flight {
    data: [u8; FLIGHT_CAPACITY],
    used: usize,
    pub(crate) entries: heapless::Vec<Entry, MAX_FLIGHT_ENTRIES>,
}

impl Flight {
    pub(crate) const fn new() -> Self {
        Flight {
            data: [0; FLIGHT_CAPACITY],
            used: 0,
            entries: heapless::Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.used = 0;
        self.entries.clear();
    }

    /// Appends an item and returns the space for its bytes.
    pub(crate) fn push(
        &mut self,
        content_type: u8,
        epoch: u16,
        len: usize,
    ) -> Result<&mut [u8], Error> {
        let start = self.used;
        let end = start + len;
        if end > FLIGHT_CAPACITY {
            return Err(Error::Internal);
        }
        self.entries
            .push(Entry {
                content_type,
                epoch,
                start,
                len,
            })
            .map_err(|_| Error::Internal)?;
        self.used = end;
        self.data.get_mut(start..end).ok_or(Error::Internal)
    }

    /// Drops the last item (used when building it failed).
    pub(crate) fn pop(&mut self) {
        if let Some(e) = self.entries.pop() {
            self.used = e.start;
        }
    }

    pub(crate) fn bytes(&self, e: &Entry) -> &[u8] {
        self.data.get(e.start..e.start + e.len).unwrap_or(&[])
    }
}

/// Reassembles one handshake message from fragments.
#[derive(Debug, Clone)]
pub(crate) struct Reassembly {
    pub(crate) active: bool,
    epoch: u16,
    pub(crate) msg_type: u8,
    pub(crate) seq: u16,
    pub(crate) len: usize,
    received: usize,
    pub(crate) body: [u8; MAX_MESSAGE_LEN],
    have: [u8; MAX_MESSAGE_LEN / 8],
}

impl Reassembly {
    pub(crate) const fn new() -> Self {
        Reassembly {
            active: false,
            epoch: 0,
            msg_type: 0,
            seq: 0,
            len: 0,
            received: 0,
            body: [0; MAX_MESSAGE_LEN],
            have: [0; MAX_MESSAGE_LEN / 8],
        }
    }

    pub(crate) fn reset(&mut self) {
        self.active = false;
        self.received = 0;
        self.have.fill(0);
    }

    /// Adds a fragment of a record of `epoch`; returns true once the
    /// message is complete. A fragment that does not fit the partial
    /// message (another type, length or sequence: a forged fragment, or a
    /// real one after a forged start) starts the message over, so one
    /// spoofed fragment cannot stall the real message; only an epoch-0
    /// fragment never replaces an authenticated (epoch 1) partial message.
    pub(crate) fn add(
        &mut self,
        epoch: u16,
        h: &HandshakeHeader,
        frag: &[u8],
    ) -> Result<bool, Error> {
        let len = h.length as usize;
        if len > MAX_MESSAGE_LEN {
            return Err(Error::RecordOverflow);
        }
        let conflict = self.active
            && (self.msg_type != h.msg_type
                || self.len != len
                || self.seq != h.message_seq
                || self.epoch != epoch);
        if conflict && self.epoch > epoch {
            return Err(Error::Decode);
        }
        if !self.active || conflict {
            self.reset();
            self.active = true;
            self.epoch = epoch;
            self.msg_type = h.msg_type;
            self.seq = h.message_seq;
            self.len = len;
        }
        let off = h.fragment_offset as usize;
        for (i, b) in frag.iter().enumerate() {
            let p = off + i;
            let (Some(slot), Some(bits)) = (self.body.get_mut(p), self.have.get_mut(p / 8)) else {
                return Err(Error::Decode);
            };
            let mask = 1u8 << (p % 8);
            if *bits & mask == 0 {
                *bits |= mask;
                *slot = *b;
                self.received += 1;
            }
        }
        Ok(self.received == self.len)
    }

    pub(crate) fn message(&self) -> &[u8] {
        self.body.get(..self.len).unwrap_or(&[])
    }
}

/// The 12-byte header of the unfragmented form of a message, as hashed into
/// the transcript (RFC 6347 §4.2.6).
pub(crate) fn whole_header(msg_type: u8, seq: u16, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let _ = HandshakeHeader::whole(msg_type, seq, len).emit(&mut h);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_out_of_order_and_overlapping() {
        let msg: std::vec::Vec<u8> = (0..100u8).collect();
        let mut r = Reassembly::new();
        let frag = |off: u32, len: u32| HandshakeHeader {
            msg_type: 12,
            length: 100,
            message_seq: 3,
            fragment_offset: off,
            fragment_length: len,
        };
        assert!(!r.add(0, &frag(50, 50), &msg[50..]).unwrap());
        assert!(!r.add(0, &frag(0, 30), &msg[..30]).unwrap());
        assert!(!r.add(0, &frag(20, 20), &msg[20..40]).unwrap());
        assert!(r.add(0, &frag(30, 30), &msg[30..60]).unwrap());
        assert_eq!(r.message(), &msg[..]);
        let mut big = frag(0, 0);
        big.length = 5000;
        assert_eq!(
            Reassembly::new().add(0, &big, &[]),
            Err(Error::RecordOverflow)
        );
    }

    #[test]
    fn a_conflicting_fragment_starts_over_but_never_replaces_epoch_1() {
        let msg: std::vec::Vec<u8> = (0..100u8).collect();
        let frag = |len: u32, off: u32, flen: u32| HandshakeHeader {
            msg_type: 12,
            length: len,
            message_seq: 3,
            fragment_offset: off,
            fragment_length: flen,
        };
        // A forged start with another length (still one that fits), then
        // the real fragments.
        let forged = MAX_MESSAGE_LEN as u32 - 1;
        let mut r = Reassembly::new();
        assert!(!r.add(0, &frag(forged, 0, 10), &[0xAA; 10]).unwrap());
        assert!(!r.add(0, &frag(100, 0, 50), &msg[..50]).unwrap());
        assert!(r.add(0, &frag(100, 50, 50), &msg[50..]).unwrap());
        assert_eq!(r.message(), &msg[..]);
        // An authenticated partial message is not replaced by plaintext.
        let mut r = Reassembly::new();
        assert!(!r.add(1, &frag(100, 0, 50), &msg[..50]).unwrap());
        assert_eq!(r.add(0, &frag(forged, 0, 10), &[0; 10]), Err(Error::Decode));
        assert!(r.add(1, &frag(100, 50, 50), &msg[50..]).unwrap());
    }

    #[test]
    fn flight_push_pop() {
        let mut f = Flight::new();
        f.push(22, 0, 10).unwrap().fill(7);
        f.push(20, 0, 1).unwrap()[0] = 1;
        assert_eq!(f.entries.len(), 2);
        f.pop();
        assert_eq!(f.bytes(&f.entries[0]), &[7; 10]);
        assert!(f.push(22, 0, FLIGHT_CAPACITY).is_err());
    }
}

/// Bytes available for complete messages that arrived ahead of their turn
/// (a PSK-only client build: the ServerKeyExchange and ServerHelloDone of
/// flight 4; one that does not fit comes again with the retransmission).
#[cfg(any(feature = "ecdhe", feature = "server"))]
pub(crate) const AHEAD_CAPACITY: usize = 384;
/// Bytes available for complete messages that arrived ahead of their turn
/// (a PSK-only client build: the ServerKeyExchange and ServerHelloDone of
/// flight 4; one that does not fit comes again with the retransmission).
#[cfg(not(any(feature = "ecdhe", feature = "server")))]
pub(crate) const AHEAD_CAPACITY: usize = 256;

#[derive(Debug, Clone, Copy)]
struct AheadEntry {
    seq: u16,
    msg_type: u8,
    epoch: u16,
    start: usize,
    len: usize,
}

/// Complete handshake messages that overtook an earlier one of the same
/// flight (reordering): kept, bounded, until their turn comes.
#[derive(Debug, Clone)]
pub(crate) struct Ahead {
    buf: [u8; AHEAD_CAPACITY],
    used: usize,
    entries: heapless::Vec<AheadEntry, 4>,
}

impl Ahead {
    pub(crate) const fn new() -> Self {
        Ahead {
            buf: [0; AHEAD_CAPACITY],
            used: 0,
            entries: heapless::Vec::new(),
        }
    }

    /// Keeps a whole message; false when it is a duplicate or does not fit.
    pub(crate) fn store(&mut self, epoch: u16, msg_type: u8, seq: u16, body: &[u8]) -> bool {
        if self.entries.iter().any(|e| e.seq == seq) || self.entries.is_full() {
            return false;
        }
        let start = self.used;
        let Some(dst) = self.buf.get_mut(start..start + body.len()) else {
            return false;
        };
        dst.copy_from_slice(body);
        self.used += body.len();
        let _ = self.entries.push(AheadEntry {
            seq,
            msg_type,
            epoch,
            start,
            len: body.len(),
        });
        true
    }

    fn remove(&mut self, i: usize) {
        let Some(&e) = self.entries.get(i) else {
            return;
        };
        crate::queue::remove_at(&mut self.entries, i);
        crate::queue::shift_down(&mut self.buf, e.start, e.start + e.len, self.used);
        self.used -= e.len;
        for o in self.entries.iter_mut() {
            if o.start > e.start {
                o.start -= e.len;
            }
        }
    }

    /// Forgets messages older than `seq`.
    pub(crate) fn purge_below(&mut self, seq: u16) {
        while let Some(i) = self.entries.iter().position(|e| e.seq < seq) {
            self.remove(i);
        }
    }

    /// Moves the message with `seq` into `out`: (type, epoch, length).
    pub(crate) fn take(&mut self, seq: u16, out: &mut [u8]) -> Option<(u8, u16, usize)> {
        let i = self.entries.iter().position(|e| e.seq == seq)?;
        let e = *self.entries.get(i)?;
        let src = self.buf.get(e.start..e.start + e.len)?;
        out.get_mut(..e.len)?.copy_from_slice(src);
        self.remove(i);
        Some((e.msg_type, e.epoch, e.len))
    }
}

#[cfg(test)]
mod ahead_tests {
    use super::*;

    #[test]
    fn store_take_purge() {
        let mut a = Ahead::new();
        assert!(a.store(0, 12, 3, &[3; 10]));
        assert!(a.store(0, 14, 4, &[]));
        assert!(a.store(0, 16, 5, &[5; 20]));
        assert!(!a.store(0, 16, 5, &[5; 20]), "duplicate");
        assert!(!a.store(0, 16, 6, &[0; AHEAD_CAPACITY]), "too large");
        let mut out = [0u8; AHEAD_CAPACITY];
        assert_eq!(a.take(3, &mut out), Some((12, 0, 10)));
        assert_eq!(&out[..10], &[3; 10]);
        assert_eq!(a.take(3, &mut out), None);
        a.purge_below(5);
        assert_eq!(a.take(4, &mut out), None);
        assert_eq!(a.take(5, &mut out), Some((16, 0, 20)));
        assert_eq!(&out[..20], &[5; 20]);
        assert_eq!(a.used, 0);
    }
}
