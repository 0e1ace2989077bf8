//! The CoAP message (RFC 7252 §3): a checked view for reading and a
//! fixed-capacity builder for writing.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver| T |  TKL  |      Code     |          Message ID           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Token (if any, TKL bytes) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Options (if any) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |1 1 1 1 1 1 1 1|    Payload (if any) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::wire::block::Block;
use crate::wire::code::{Code, MessageType};
use crate::wire::content_format::ContentFormat;
use crate::wire::option::{
    decode_uint, header_len, next_option, write_option, CoapOption, OptionNumber, Options,
    UintBytes, MAX_OPTION_VALUE_LEN, PAYLOAD_MARKER,
};
use crate::Error;

/// The only CoAP version (RFC 7252 §3).
pub const VERSION: u8 = 1;
/// Longest token (RFC 7252 §3).
pub const MAX_TOKEN_LEN: usize = 8;

/// Byte offsets of the fixed header.
pub mod field {
    /// Ver (2 bits) | T (2 bits) | TKL (4 bits).
    pub const VER_T_TKL: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Message ID, big-endian, 2 bytes.
    pub const MESSAGE_ID: usize = 2;
    /// First token byte; also the header length.
    pub const TOKEN: usize = 4;
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 4;
}

/// A validated, zero-copy view of a CoAP message.
///
/// Construction ([`Message::parse`]) checks the version, token length, every
/// option header and length, the payload marker rule and the Empty-message
/// rule, so no accessor can fail or panic afterwards. Option *semantics*
/// (unknown critical options, value lengths) are checked separately by
/// [`Message::check_options`], because RFC 7252 §5.4.1 answers those with
/// 4.02 rather than dropping the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Message<'a> {
    buf: &'a [u8],
    /// Offset of the first option byte (end of the token).
    options_start: usize,
    /// Offset of the payload marker, or `buf.len()` when there is none.
    options_end: usize,
}

impl<'a> Message<'a> {
    /// Validates `buf` as one CoAP message (the whole datagram).
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let header = buf.get(..field::HEADER_LEN).ok_or(Error::Truncated)?;
        let first = header.first().copied().unwrap_or(0);
        let version = first >> 6;
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        let tkl = first & 0x0f;
        if usize::from(tkl) > MAX_TOKEN_LEN {
            return Err(Error::BadTokenLength(tkl));
        }
        let options_start = field::TOKEN + usize::from(tkl);
        if buf.len() < options_start {
            return Err(Error::Truncated);
        }
        let code = header.get(field::CODE).copied().unwrap_or(0);
        if code == 0 && buf.len() != field::HEADER_LEN {
            return Err(Error::EmptyMessageNotEmpty);
        }
        let mut rest = buf.get(options_start..).ok_or(Error::Truncated)?;
        let mut number = 0;
        while let Some((n, _, r)) = next_option(rest, number)? {
            number = n;
            rest = r;
        }
        // `rest` is now empty or starts with the payload marker.
        if rest.len() == 1 {
            return Err(Error::PayloadMarkerWithoutPayload);
        }
        let options_end = buf.len() - rest.len();
        Ok(Message {
            buf,
            options_start,
            options_end,
        })
    }

    /// Same as [`Message::parse`] (smoltcp naming).
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        Message::parse(buf)
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    fn byte(&self, at: usize) -> u8 {
        self.buf.get(at).copied().unwrap_or(0)
    }

    /// The version (always 1 for a parsed message).
    pub fn version(&self) -> u8 {
        self.byte(field::VER_T_TKL) >> 6
    }

    /// The message type.
    pub fn ty(&self) -> MessageType {
        MessageType::from_bits(self.byte(field::VER_T_TKL) >> 4)
    }

    /// The token length TKL (0..=8).
    pub fn token_len(&self) -> usize {
        usize::from(self.byte(field::VER_T_TKL) & 0x0f)
    }

    /// The code.
    pub fn code(&self) -> Code {
        Code(self.byte(field::CODE))
    }

    /// The message ID.
    pub fn message_id(&self) -> u16 {
        u16::from_be_bytes([
            self.byte(field::MESSAGE_ID),
            self.byte(field::MESSAGE_ID + 1),
        ])
    }

    /// The token (0..=8 bytes).
    pub fn token(&self) -> &'a [u8] {
        self.buf
            .get(field::TOKEN..self.options_start)
            .unwrap_or(&[])
    }

    /// The raw option area (between the token and the payload marker).
    pub fn options_bytes(&self) -> &'a [u8] {
        self.buf
            .get(self.options_start..self.options_end)
            .unwrap_or(&[])
    }

    /// Offset of the first option byte in the message.
    pub fn options_offset(&self) -> usize {
        self.options_start
    }

    /// All options in wire order.
    pub fn options(&self) -> Options<'a> {
        Options::new(self.options_bytes())
    }

    /// The options with number `number`, in order.
    pub fn options_numbered(
        &self,
        number: OptionNumber,
    ) -> impl Iterator<Item = CoapOption<'a>> + Clone + 'a {
        self.options()
            .skip_while(move |o| o.number < number)
            .take_while(move |o| o.number == number)
    }

    /// The value of the first option numbered `number`.
    pub fn option(&self, number: OptionNumber) -> Option<&'a [u8]> {
        self.options_numbered(number).next().map(|o| o.value)
    }

    /// `true` if an option numbered `number` is present.
    pub fn has_option(&self, number: OptionNumber) -> bool {
        self.option(number).is_some()
    }

    /// The first `number` option as a uint: `Ok(None)` when absent.
    pub fn uint_option(&self, number: OptionNumber) -> Result<Option<u32>, Error> {
        self.option(number).map(decode_uint).transpose()
    }

    /// Observe (RFC 7641): 0 register, 1 deregister, or a sequence number.
    pub fn observe(&self) -> Result<Option<u32>, Error> {
        self.uint_option(OptionNumber::OBSERVE)
    }

    /// Content-Format.
    pub fn content_format(&self) -> Result<Option<ContentFormat>, Error> {
        self.format_option(OptionNumber::CONTENT_FORMAT)
    }

    /// Accept.
    pub fn accept(&self) -> Result<Option<ContentFormat>, Error> {
        self.format_option(OptionNumber::ACCEPT)
    }

    fn format_option(&self, n: OptionNumber) -> Result<Option<ContentFormat>, Error> {
        match self.uint_option(n)? {
            None => Ok(None),
            Some(v) => u16::try_from(v)
                .map(|v| Some(ContentFormat(v)))
                .map_err(|_| Error::BadUint),
        }
    }

    /// Max-Age in seconds; `None` when absent (the default is 60).
    pub fn max_age(&self) -> Result<Option<u32>, Error> {
        self.uint_option(OptionNumber::MAX_AGE)
    }

    /// Block1 (RFC 7959).
    pub fn block1(&self) -> Result<Option<Block>, Error> {
        self.option(OptionNumber::BLOCK1)
            .map(Block::from_bytes)
            .transpose()
    }

    /// Block2 (RFC 7959).
    pub fn block2(&self) -> Result<Option<Block>, Error> {
        self.option(OptionNumber::BLOCK2)
            .map(Block::from_bytes)
            .transpose()
    }

    /// The Uri-Path segments, in order (not percent-decoded: the option
    /// values are already decoded strings).
    pub fn uri_path(&self) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        self.options_numbered(OptionNumber::URI_PATH)
            .map(|o| o.value)
    }

    /// The Uri-Query arguments, in order.
    pub fn uri_query(&self) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        self.options_numbered(OptionNumber::URI_QUERY)
            .map(|o| o.value)
    }

    /// The payload (empty if there is none).
    pub fn payload(&self) -> &'a [u8] {
        self.buf.get(self.options_end + 1..).unwrap_or(&[])
    }

    /// The first critical option this crate does not know, if any: a
    /// confirmable request carrying one is answered with 4.02 Bad Option
    /// (RFC 7252 §5.4.1).
    pub fn first_unknown_critical(&self) -> Option<OptionNumber> {
        self.options()
            .map(|o| o.number)
            .find(|n| n.is_critical() && !n.is_known())
    }

    /// The first known option whose value length is outside its registered
    /// bounds (RFC 7252 §5.4.3 treats it like an unrecognised option).
    pub fn first_bad_length(&self) -> Option<(OptionNumber, usize)> {
        self.options()
            .find(|o| o.number.check_len(o.value.len()).is_err())
            .map(|o| (o.number, o.value.len()))
    }

    /// RFC 7252 §5.4.1 / §5.4.3 / §5.4.5 check: `Err(UnknownCriticalOption)`
    /// for an unknown critical option, `Err(RepeatedOption)` for a second
    /// occurrence of a critical option that is not repeatable,
    /// `Err(BadOptionLength)` for a *critical* known option of invalid
    /// length. Elective options with bad lengths or repeated are to be
    /// ignored and do not fail this check.
    pub fn check_options(&self) -> Result<(), Error> {
        let mut prev = None;
        for o in self.options() {
            let repeated = prev == Some(o.number);
            prev = Some(o.number);
            if !o.number.is_critical() {
                continue;
            }
            if !o.number.is_known() {
                return Err(Error::UnknownCriticalOption(o.number));
            }
            // §5.4.5: a supernumerary occurrence is treated like an
            // unrecognized option (critical: the message is rejected or
            // answered 4.02; elective ones are ignored by the accessors,
            // which read the first occurrence).
            if repeated && !o.number.is_repeatable() {
                return Err(Error::RepeatedOption(o.number));
            }
            o.number.check_len(o.value.len())?;
        }
        Ok(())
    }
}

/// A value held by the [`MessageBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionValue<'a> {
    /// Borrowed bytes (opaque, string or an already-encoded uint).
    Bytes(&'a [u8]),
    /// An integer, written in minimal encoding.
    Uint(UintBytes),
}

impl OptionValue<'_> {
    /// The bytes written on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            OptionValue::Bytes(b) => b,
            OptionValue::Uint(u) => u.as_bytes(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Entry<'a> {
    number: OptionNumber,
    value: OptionValue<'a>,
}

const VACANT: Entry<'static> = Entry {
    number: OptionNumber(0),
    value: OptionValue::Bytes(&[]),
};

/// Builds a CoAP message into a caller buffer without allocating.
///
/// Holds up to `N` options borrowing their values. Options may be added in
/// any order; they are kept sorted by number (stable: repeated options keep
/// the order they were added in) and written with minimal delta/length
/// encoding.
///
/// ```
/// use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
/// let mut b = MessageBuilder::<8>::new(MessageType::Con, Code::GET, 0x1234);
/// b.token(&[0xca, 0xfe])?;
/// b.add_str(OptionNumber::URI_QUERY, "unit=C")?;
/// b.add_str(OptionNumber::URI_PATH, "sensors")?;
/// b.add_str(OptionNumber::URI_PATH, "temp")?;
/// let mut buf = [0u8; 64];
/// let n = b.emit(&mut buf)?;
/// let m = Message::parse(&buf[..n])?;
/// assert_eq!(m.uri_path().collect::<Vec<_>>(), [b"sensors".as_slice(), b"temp"]);
/// # Ok::<(), cssf_coap::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageBuilder<'a, const N: usize = 16> {
    ty: MessageType,
    code: Code,
    message_id: u16,
    token: &'a [u8],
    options: [Entry<'a>; N],
    count: usize,
    payload: &'a [u8],
}

impl<'a, const N: usize> MessageBuilder<'a, N> {
    /// A message with no token, options or payload.
    pub const fn new(ty: MessageType, code: Code, message_id: u16) -> Self {
        MessageBuilder {
            ty,
            code,
            message_id,
            token: &[],
            options: [VACANT; N],
            count: 0,
            payload: &[],
        }
    }

    /// An Empty ACK (0.00) for `message_id`.
    pub const fn empty_ack(message_id: u16) -> Self {
        MessageBuilder::new(MessageType::Ack, Code::EMPTY, message_id)
    }

    /// A Reset for `message_id`.
    pub const fn reset(message_id: u16) -> Self {
        MessageBuilder::new(MessageType::Rst, Code::EMPTY, message_id)
    }

    /// Copies header, token, options and payload of a parsed message
    /// (`TooManyOptions` if it has more than `N` options).
    pub fn from_message(m: &Message<'a>) -> Result<Self, Error> {
        let mut b = MessageBuilder::new(m.ty(), m.code(), m.message_id());
        b.token = m.token();
        for o in m.options() {
            b.push(o.number, OptionValue::Bytes(o.value))?;
        }
        b.payload = m.payload();
        Ok(b)
    }

    /// Sets the type.
    pub fn set_type(&mut self, ty: MessageType) -> &mut Self {
        self.ty = ty;
        self
    }

    /// Sets the code.
    pub fn set_code(&mut self, code: Code) -> &mut Self {
        self.code = code;
        self
    }

    /// Sets the message ID.
    pub fn set_message_id(&mut self, id: u16) -> &mut Self {
        self.message_id = id;
        self
    }

    /// Sets the token (at most 8 bytes, else `BadTokenLength`).
    pub fn token(&mut self, token: &'a [u8]) -> Result<&mut Self, Error> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::BadTokenLength(
                u8::try_from(token.len()).unwrap_or(u8::MAX),
            ));
        }
        self.token = token;
        Ok(self)
    }

    /// Sets the payload (empty means no payload marker).
    pub fn payload(&mut self, payload: &'a [u8]) -> &mut Self {
        self.payload = payload;
        self
    }

    /// The type.
    pub fn ty(&self) -> MessageType {
        self.ty
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message ID.
    pub fn message_id(&self) -> u16 {
        self.message_id
    }

    /// The token.
    pub fn get_token(&self) -> &'a [u8] {
        self.token
    }

    /// The payload.
    pub fn get_payload(&self) -> &'a [u8] {
        self.payload
    }

    fn entries(&self) -> &[Entry<'a>] {
        self.options.get(..self.count).unwrap_or(&[])
    }

    /// The options held, sorted by number.
    pub fn options(&self) -> impl Iterator<Item = (OptionNumber, &OptionValue<'a>)> + '_ {
        self.entries().iter().map(|e| (e.number, &e.value))
    }

    /// Number of options held.
    pub fn option_count(&self) -> usize {
        self.count
    }

    fn push(&mut self, number: OptionNumber, value: OptionValue<'a>) -> Result<&mut Self, Error> {
        if value.as_bytes().len() > MAX_OPTION_VALUE_LEN {
            return Err(Error::OptionTooLong);
        }
        if self.count >= N {
            return Err(Error::TooManyOptions);
        }
        // Insert after the last entry with a number <= `number` (stable).
        let at = self.entries().partition_point(|e| e.number <= number);
        let end = self.count + 1;
        let slots = self.options.get_mut(at..end).ok_or(Error::TooManyOptions)?;
        // Each entry from `at` on moves up one slot, carried through a
        // local: unlike `rotate_right`, this links no memmove (about 1.5 KiB
        // of flash on a Cortex-M).
        let mut carry = Entry { number, value };
        for slot in slots {
            carry = core::mem::replace(slot, carry);
        }
        self.count = end;
        Ok(self)
    }

    /// Adds an option with opaque (or pre-encoded) value bytes. Lengths are
    /// not checked against the registry, so tests can build any message;
    /// see [`OptionNumber::check_len`].
    pub fn add_option(
        &mut self,
        number: OptionNumber,
        value: &'a [u8],
    ) -> Result<&mut Self, Error> {
        self.push(number, OptionValue::Bytes(value))
    }

    /// Adds a string option.
    pub fn add_str(&mut self, number: OptionNumber, value: &'a str) -> Result<&mut Self, Error> {
        self.push(number, OptionValue::Bytes(value.as_bytes()))
    }

    /// Adds a uint option in minimal encoding.
    pub fn add_uint(&mut self, number: OptionNumber, value: u32) -> Result<&mut Self, Error> {
        self.push(number, OptionValue::Uint(UintBytes::new(value)))
    }

    /// Adds an empty option (e.g. If-None-Match).
    pub fn add_empty(&mut self, number: OptionNumber) -> Result<&mut Self, Error> {
        self.push(number, OptionValue::Bytes(&[]))
    }

    /// Removes every option numbered `number`; returns how many were removed.
    pub fn remove_option(&mut self, number: OptionNumber) -> usize {
        let mut kept = 0;
        for i in 0..self.count {
            if let Some(e) = self.options.get(i).copied() {
                if e.number != number {
                    if let Some(slot) = self.options.get_mut(kept) {
                        *slot = e;
                    }
                    kept += 1;
                }
            }
        }
        let removed = self.count - kept;
        self.count = kept;
        removed
    }

    /// Removes the last option numbered `number`, if any.
    pub fn remove_last(&mut self, number: OptionNumber) -> bool {
        let Some(i) = self.entries().iter().rposition(|e| e.number == number) else {
            return false;
        };
        if let Some(tail) = self.options.get_mut(i..self.count) {
            tail.rotate_left(1);
        }
        self.count -= 1;
        true
    }

    /// Replaces every `number` option by one uint option.
    pub fn set_uint(&mut self, number: OptionNumber, value: u32) -> Result<&mut Self, Error> {
        self.remove_option(number);
        self.add_uint(number, value)
    }

    /// Adds Content-Format.
    pub fn content_format(&mut self, cf: ContentFormat) -> Result<&mut Self, Error> {
        self.set_uint(OptionNumber::CONTENT_FORMAT, u32::from(cf.0))
    }

    /// Adds Accept.
    pub fn accept(&mut self, cf: ContentFormat) -> Result<&mut Self, Error> {
        self.set_uint(OptionNumber::ACCEPT, u32::from(cf.0))
    }

    /// Sets Observe.
    pub fn observe(&mut self, value: u32) -> Result<&mut Self, Error> {
        self.set_uint(OptionNumber::OBSERVE, value & 0x00ff_ffff)
    }

    /// Sets Block1.
    pub fn block1(&mut self, block: Block) -> Result<&mut Self, Error> {
        self.set_uint(OptionNumber::BLOCK1, block.to_uint())
    }

    /// Sets Block2.
    pub fn block2(&mut self, block: Block) -> Result<&mut Self, Error> {
        self.set_uint(OptionNumber::BLOCK2, block.to_uint())
    }

    /// Adds one Uri-Path option per `/`-separated segment of `path` (a
    /// leading `/` is skipped; segments are taken verbatim, no
    /// percent-decoding: decompose full URIs with [`crate::wire::uri`]).
    pub fn uri_path(&mut self, path: &'a str) -> Result<&mut Self, Error> {
        let path = path.strip_prefix('/').unwrap_or(path);
        if !path.is_empty() {
            for seg in path.split('/') {
                self.add_str(OptionNumber::URI_PATH, seg)?;
            }
        }
        Ok(self)
    }

    /// Exact number of bytes [`MessageBuilder::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let mut len = field::HEADER_LEN + self.token.len();
        let mut prev = 0usize;
        for e in self.entries() {
            let n = usize::from(e.number.0);
            let v = e.value.as_bytes().len();
            len += header_len(n - prev, v) + v;
            prev = n;
        }
        if !self.payload.is_empty() {
            len += 1 + self.payload.len();
        }
        len
    }

    /// Writes the message into `buf`, returning its length.
    ///
    /// Errors: `BufferTooSmall { needed }` (nothing useful written),
    /// `EmptyMessageNotEmpty` for code 0.00 with a token, options or payload.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.code == Code::EMPTY
            && (!self.token.is_empty() || self.count != 0 || !self.payload.is_empty())
        {
            return Err(Error::EmptyMessageNotEmpty);
        }
        match self.write(buf) {
            Err(Error::BufferTooSmall { .. }) => Err(Error::BufferTooSmall {
                needed: self.buffer_len(),
            }),
            r => r,
        }
    }

    /// Writes without a sizing pass; a short buffer fails part-way (the
    /// caller turns that into the exact `needed`).
    fn write(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let total = buf.len();
        let short = Error::BufferTooSmall { needed: 0 };
        let (header, rest) = buf.split_at_mut_checked(field::HEADER_LEN).ok_or(short)?;
        // token.len() <= 8 is enforced by `token()`.
        let tkl = (self.token.len() & 0x0f) as u8;
        let id = self.message_id.to_be_bytes();
        header.copy_from_slice(&[
            (VERSION << 6) | (self.ty.bits() << 4) | tkl,
            self.code.0,
            id[0],
            id[1],
        ]);
        let (tok, mut rest) = rest.split_at_mut_checked(self.token.len()).ok_or(short)?;
        tok.copy_from_slice(self.token);
        let mut prev = 0usize;
        for e in self.entries() {
            let n = usize::from(e.number.0);
            let w = write_option(rest, n - prev, e.value.as_bytes())?;
            rest = rest.get_mut(w..).ok_or(short)?;
            prev = n;
        }
        if !self.payload.is_empty() {
            let (marker, body) = rest
                .get_mut(..1 + self.payload.len())
                .and_then(|d| d.split_first_mut())
                .ok_or(short)?;
            *marker = PAYLOAD_MARKER;
            body.copy_from_slice(self.payload);
            rest = rest.get_mut(1 + self.payload.len()..).ok_or(short)?;
        }
        Ok(total - rest.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{vec, vec::Vec};

    // RFC 7252 Appendix A figure 16-style GET: CON, MID 0x7d34, Uri-Path
    // "temperature", no token.
    const RFC_GET: &[u8] = b"\x40\x01\x7d\x34\xbbtemperature";

    #[test]
    fn parse_rfc_get() {
        let m = Message::parse(RFC_GET).unwrap();
        assert_eq!(m.version(), 1);
        assert_eq!(m.ty(), MessageType::Con);
        assert_eq!(m.code(), Code::GET);
        assert_eq!(m.message_id(), 0x7d34);
        assert_eq!(m.token(), b"");
        assert_eq!(
            m.uri_path().collect::<Vec<_>>(),
            [b"temperature".as_slice()]
        );
        assert_eq!(m.payload(), b"");
        let mut out = [0u8; 32];
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 0x7d34);
        b.uri_path("/temperature").unwrap();
        let n = b.emit(&mut out).unwrap();
        assert_eq!(&out[..n], RFC_GET);
    }

    #[test]
    fn response_with_payload() {
        // ACK 2.05, MID 0x7d34, token, Content-Format 0, payload "22.3 C"
        let msg = b"\x61\x45\x7d\x34\x20\xc0\xff22.3 C";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.ty(), MessageType::Ack);
        assert_eq!(m.code(), Code::CONTENT);
        assert_eq!(m.token(), b"\x20");
        assert_eq!(m.content_format(), Ok(Some(ContentFormat::TEXT_PLAIN)));
        assert_eq!(m.payload(), b"22.3 C");
        let b = MessageBuilder::<4>::from_message(&m).unwrap();
        let mut out = [0u8; 32];
        let n = b.emit(&mut out).unwrap();
        assert_eq!(&out[..n], msg);
    }

    #[test]
    fn malformed() {
        assert_eq!(Message::parse(b"\x40\x01\x00"), Err(Error::Truncated));
        assert_eq!(
            Message::parse(b"\x80\x01\x00\x00"),
            Err(Error::BadVersion(2))
        );
        assert_eq!(
            Message::parse(b"\x49\x01\x00\x00"),
            Err(Error::BadTokenLength(9))
        );
        assert_eq!(
            Message::parse(b"\x42\x01\x00\x00\x01"),
            Err(Error::Truncated)
        );
        assert_eq!(
            Message::parse(b"\x40\x01\x00\x00\xff"),
            Err(Error::PayloadMarkerWithoutPayload)
        );
        assert_eq!(
            Message::parse(b"\x41\x00\x00\x00\x01"),
            Err(Error::EmptyMessageNotEmpty)
        );
        assert_eq!(
            Message::parse(b"\x60\x00\x00\x00\xff\x01"),
            Err(Error::EmptyMessageNotEmpty)
        );
        assert_eq!(
            Message::parse(b"\x40\x01\x00\x00\xf0"),
            Err(Error::ReservedOptionNibble)
        );
        assert_eq!(
            Message::parse(b"\x40\x01\x00\x00\x0f"),
            Err(Error::ReservedOptionNibble)
        );
        assert_eq!(
            Message::parse(b"\x40\x01\x00\x00\xb5abc"),
            Err(Error::Truncated)
        );
        assert!(Message::parse(b"\x60\x00\x12\x34").is_ok());
    }

    #[test]
    fn option_checks() {
        // Unknown critical option 9999 (odd), elective 10000.
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
        b.add_option(OptionNumber(10000), b"x").unwrap();
        let mut out = [0u8; 32];
        let n = b.emit(&mut out).unwrap();
        let m = Message::parse(&out[..n]).unwrap();
        assert_eq!(m.first_unknown_critical(), None);
        assert_eq!(m.check_options(), Ok(()));
        b.add_option(OptionNumber(9999), b"").unwrap();
        let n = b.emit(&mut out).unwrap();
        let m = Message::parse(&out[..n]).unwrap();
        assert_eq!(m.first_unknown_critical(), Some(OptionNumber(9999)));
        assert_eq!(
            m.check_options(),
            Err(Error::UnknownCriticalOption(OptionNumber(9999)))
        );
        assert_eq!(
            m.check_options().unwrap_err().code(),
            Some(Code::BAD_OPTION)
        );
        // ETag of 9 bytes: bad length, elective → reported but check passes
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
        b.add_option(OptionNumber::ETAG, &[0; 9]).unwrap();
        let n = b.emit(&mut out).unwrap();
        let m = Message::parse(&out[..n]).unwrap();
        assert_eq!(m.first_bad_length(), Some((OptionNumber::ETAG, 9)));
        assert_eq!(m.check_options(), Ok(()));
        // Uri-Host empty: critical with bad length
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
        b.add_option(OptionNumber::URI_HOST, &[]).unwrap();
        let n = b.emit(&mut out).unwrap();
        let m = Message::parse(&out[..n]).unwrap();
        assert_eq!(
            m.check_options(),
            Err(Error::BadOptionLength {
                number: OptionNumber::URI_HOST,
                len: 0
            })
        );
    }

    #[test]
    fn builder_sorts_stably_and_reports_sizes() {
        let mut b = MessageBuilder::<8>::new(MessageType::Non, Code::POST, 7);
        b.add_str(OptionNumber::URI_QUERY, "b=2").unwrap();
        b.add_str(OptionNumber::URI_PATH, "x").unwrap();
        b.add_str(OptionNumber::URI_QUERY, "a=1").unwrap();
        b.add_uint(OptionNumber::CONTENT_FORMAT, 60).unwrap();
        b.add_str(OptionNumber::URI_PATH, "y").unwrap();
        b.payload(b"hi");
        let order: Vec<_> = b
            .options()
            .map(|(n, v)| (n.0, v.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            order,
            [
                (11, b"x".to_vec()),
                (11, b"y".to_vec()),
                (12, vec![60]),
                (15, b"b=2".to_vec()),
                (15, b"a=1".to_vec())
            ]
        );
        let need = b.buffer_len();
        let mut small = [0u8; 8];
        assert_eq!(
            b.emit(&mut small),
            Err(Error::BufferTooSmall { needed: need })
        );
        let mut out = [0u8; 64];
        assert_eq!(b.emit(&mut out), Ok(need));
        let m = Message::parse(&out[..need]).unwrap();
        assert_eq!(
            m.uri_query().collect::<Vec<_>>(),
            [b"b=2".as_slice(), b"a=1"]
        );
        assert_eq!(m.payload(), b"hi");
        assert_eq!(b.remove_option(OptionNumber::URI_QUERY), 2);
        assert_eq!(b.option_count(), 3);
        let mut full = MessageBuilder::<1>::new(MessageType::Non, Code::POST, 7);
        full.add_empty(OptionNumber::IF_NONE_MATCH).unwrap();
        assert_eq!(
            full.add_empty(OptionNumber::IF_NONE_MATCH).err(),
            Some(Error::TooManyOptions)
        );
        assert!(b.token(&[0; 9]).is_err());
        let mut e = MessageBuilder::<1>::empty_ack(1);
        e.token(&[1]).unwrap();
        assert_eq!(e.emit(&mut out), Err(Error::EmptyMessageNotEmpty));
    }

    #[test]
    fn repeated_options_rfc7252_5_4_5() {
        let check = |opts: &[(OptionNumber, &'static [u8])]| {
            let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 1);
            for (n, v) in opts {
                b.add_option(*n, v).unwrap();
            }
            let mut out = [0u8; 32];
            let n = b.emit(&mut out).unwrap();
            Message::parse(&out[..n]).unwrap().check_options()
        };
        // Critical and not repeatable: rejected like an unknown option.
        let r = check(&[(OptionNumber::ACCEPT, &[0]), (OptionNumber::ACCEPT, &[1])]);
        assert_eq!(r, Err(Error::RepeatedOption(OptionNumber::ACCEPT)));
        assert_eq!(r.unwrap_err().code(), Some(Code::BAD_OPTION));
        assert!(check(&[
            (OptionNumber::BLOCK2, &[0]),
            (OptionNumber::BLOCK2, &[0x10])
        ])
        .is_err());
        // Repeatable, or elective: fine.
        assert_eq!(
            check(&[
                (OptionNumber::URI_PATH, b"a"),
                (OptionNumber::URI_PATH, b"b")
            ]),
            Ok(())
        );
        assert_eq!(
            check(&[(OptionNumber::MAX_AGE, &[1]), (OptionNumber::MAX_AGE, &[2])]),
            Ok(())
        );
    }
}
