//! SLIP framing (RFC 1055, "A Nonstandard for Transmission of IP Datagrams
//! over Serial Lines"): datagrams over a byte stream, as a serial radio
//! modem carries them.
//!
//! A frame is the datagram's bytes between two `END` (0xC0) bytes; an `END`
//! inside the datagram is sent as `ESC ESC_END` (0xDB 0xDC) and an `ESC` as
//! `ESC ESC_ESC` (0xDB 0xDD). The encoder starts every frame with `END` too
//! (the RFC's suggestion: it flushes line noise into an empty frame, which
//! the decoder ignores).
//!
//! The decoder is bounded (`N` bytes) and never panics: a frame longer than
//! `N` or with an `ESC` followed by anything but `ESC_END`/`ESC_ESC` is
//! dropped whole and counted, and decoding resumes at the next `END`.
//!
//! One copy of this file serves the firmware (`no_std`) and the host bridge
//! (`cssf-slip-bridge` includes it with `#[path]`); its tests run with the
//! bridge's (`cargo test -p cssf-examples --bin cssf-slip-bridge`).

/// Frame delimiter.
pub const END: u8 = 0xC0;
/// Escape.
pub const ESC: u8 = 0xDB;
/// `ESC ESC_END` stands for a data byte `END`.
pub const ESC_END: u8 = 0xDC;
/// `ESC ESC_ESC` stands for a data byte `ESC`.
pub const ESC_ESC: u8 = 0xDD;

/// The longest encoding of a `len`-byte datagram: every byte escaped, plus
/// the leading and trailing `END`.
pub const fn max_encoded_len(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(2)
}

/// Encodes `datagram` as one frame, handing each byte to `put` in order
/// (e.g. straight to a UART, without a second buffer).
pub fn encode_to(datagram: &[u8], mut put: impl FnMut(u8)) {
    put(END);
    for &b in datagram {
        match b {
            END => {
                put(ESC);
                put(ESC_END);
            }
            ESC => {
                put(ESC);
                put(ESC_ESC);
            }
            b => put(b),
        }
    }
    put(END);
}

/// Encodes `datagram` as one frame into `out`; returns its length, or
/// `None` (nothing usable written) when `out` is too short.
pub fn encode(datagram: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut n = 0usize;
    let mut fits = true;
    encode_to(datagram, |b| match out.get_mut(n) {
        Some(slot) if fits => {
            *slot = b;
            n += 1;
        }
        _ => fits = false,
    });
    fits.then_some(n)
}

/// Where the decoder stands within a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a frame (or between frames, when nothing was collected).
    Data,
    /// The previous byte was `ESC`.
    Escaped,
    /// The frame is too long or badly escaped: skip to the next `END`.
    Discard,
}

/// A streaming SLIP decoder holding at most `N` bytes of one frame.
#[derive(Debug, Clone)]
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    state: State,
    dropped: u32,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; N],
            len: 0,
            state: State::Data,
            dropped: 0,
        }
    }

    /// Frames dropped so far (longer than `N`, or badly escaped).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Feeds one byte from the line; returns the datagram when `byte`
    /// ends a non-empty frame (valid until the next call).
    pub fn push(&mut self, byte: u8) -> Option<&mut [u8]> {
        match (self.state, byte) {
            (State::Discard, END) => {
                self.state = State::Data;
                self.len = 0;
            }
            (State::Discard, _) => {}
            // An END right after ESC: the frame is cut short.
            (State::Escaped, END) => self.drop_frame(State::Data),
            (State::Escaped, ESC_END) => self.store(END),
            (State::Escaped, ESC_ESC) => self.store(ESC),
            (State::Escaped, _) => self.drop_frame(State::Discard),
            (State::Data, END) => {
                let len = core::mem::take(&mut self.len);
                if len > 0 {
                    return self.buf.get_mut(..len);
                }
            }
            (State::Data, ESC) => self.state = State::Escaped,
            (State::Data, b) => self.store(b),
        }
        None
    }

    fn store(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
                self.state = State::Data;
            }
            None => self.drop_frame(State::Discard),
        }
    }

    fn drop_frame(&mut self, next: State) {
        self.dropped = self.dropped.saturating_add(1);
        self.len = 0;
        self.state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame `input` decodes into, and the drop count.
    fn decode_all<const N: usize>(input: &[u8]) -> (Vec<Vec<u8>>, u32) {
        let mut d = Decoder::<N>::new();
        let mut out = Vec::new();
        for &b in input {
            if let Some(f) = d.push(b) {
                out.push(f.to_vec());
            }
        }
        (out, d.dropped())
    }

    #[test]
    fn encodes_rfc1055_escapes() {
        let mut out = [0u8; 16];
        let n = encode(&[0x01, END, 0x02, ESC, 0x03], &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[END, 0x01, ESC, ESC_END, 0x02, ESC, ESC_ESC, 0x03, END]
        );
        let mut streamed = Vec::new();
        encode_to(&[0x01, END, 0x02, ESC, 0x03], |b| streamed.push(b));
        assert_eq!(streamed, &out[..n]);
    }

    #[test]
    fn encode_needs_room_for_the_worst_case_only_when_escaping() {
        let data = [END; 4];
        let mut out = [0u8; 10];
        assert_eq!(max_encoded_len(data.len()), 10);
        assert_eq!(encode(&data, &mut out), Some(10));
        assert_eq!(encode(&data, &mut out[..9]), None);
        assert_eq!(encode(b"abcd", &mut out[..6]), Some(6));
        assert_eq!(encode(b"abcd", &mut out[..5]), None);
        assert_eq!(encode(&[], &mut out[..2]), Some(2));
        assert_eq!(encode(&[], &mut []), None);
    }

    #[test]
    fn round_trips_every_byte_value() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut out = vec![0u8; max_encoded_len(data.len())];
        let n = encode(&data, &mut out).unwrap();
        let (frames, dropped) = decode_all::<512>(&out[..n]);
        assert_eq!((frames, dropped), (vec![data], 0));
    }

    #[test]
    fn splits_back_to_back_frames_and_skips_empty_ones() {
        let mut wire = Vec::new();
        for f in [&b"one"[..], b"", b"two\xc0", b"3"] {
            encode_to(f, |b| wire.push(b));
        }
        // Extra ENDs (line noise flushes) change nothing.
        wire.extend_from_slice(&[END, END]);
        let (frames, dropped) = decode_all::<16>(&wire);
        assert_eq!(
            frames,
            vec![b"one".to_vec(), b"two\xc0".to_vec(), b"3".to_vec()]
        );
        assert_eq!(dropped, 0);
        // A frame without the leading END (RFC 1055's minimal sender).
        let (frames, _) = decode_all::<16>(b"abc\xc0");
        assert_eq!(frames, vec![b"abc".to_vec()]);
    }

    #[test]
    fn drops_a_frame_longer_than_the_buffer_and_resynchronises() {
        let mut wire = Vec::new();
        encode_to(b"12345", |b| wire.push(b));
        encode_to(b"1234", |b| wire.push(b));
        encode_to(&[ESC, ESC, ESC], |b| wire.push(b)); // 3 bytes, 6 on the wire
        let (frames, dropped) = decode_all::<4>(&wire);
        assert_eq!(frames, vec![b"1234".to_vec(), vec![ESC, ESC, ESC]]);
        assert_eq!(dropped, 1);
    }

    #[test]
    fn drops_badly_escaped_frames() {
        // ESC followed by a plain byte: dropped up to the next END.
        let (frames, dropped) = decode_all::<16>(&[END, 1, ESC, 7, 2, END, 3, END]);
        assert_eq!((frames, dropped), (vec![vec![3]], 1));
        // ESC right before END: that frame is cut, the next one is fine.
        let (frames, dropped) = decode_all::<16>(&[END, 1, ESC, END, 4, END]);
        assert_eq!((frames, dropped), (vec![vec![4]], 1));
        // ESC ESC: the second ESC is not a valid escape either.
        let (frames, dropped) = decode_all::<16>(&[ESC, ESC, ESC_END, END, 5, END]);
        assert_eq!((frames, dropped), (vec![vec![5]], 1));
    }

    #[test]
    fn zero_capacity_decoder_drops_everything_without_panicking() {
        let (frames, dropped) = decode_all::<0>(&[END, 1, END, END, ESC, ESC_ESC, END]);
        assert!(frames.is_empty());
        assert_eq!(dropped, 2);
    }

    #[test]
    fn arbitrary_input_never_panics_and_frames_stay_bounded() {
        // A cheap deterministic generator over every kind of byte sequence,
        // biased towards the special bytes.
        let mut x: u64 = 0x5eed;
        let mut d = Decoder::<8>::new();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = match x % 8 {
                0 => END,
                1 => ESC,
                2 => ESC_END,
                3 => ESC_ESC,
                _ => (x >> 8) as u8,
            };
            if let Some(f) = d.push(b) {
                assert!(!f.is_empty() && f.len() <= 8);
            }
        }
    }
}
