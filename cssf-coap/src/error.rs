//! The crate's one error type.

use core::fmt;

use crate::wire::{Code, OptionNumber};

/// Everything that can go wrong in `cssf-coap`.
///
/// Parsing errors ([`Error::Truncated`] … [`Error::EmptyMessageNotEmpty`]) are
/// RFC 7252 §3 "message format errors": the endpoint drops (or resets) such a
/// message. Option errors ([`Error::UnknownCriticalOption`],
/// [`Error::BadOptionLength`]) map to `4.02 Bad Option` through
/// [`Error::code`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The output buffer is too short; `needed` bytes are required.
    BufferTooSmall {
        /// Total number of bytes the output needs.
        needed: usize,
    },
    /// The datagram ends inside the header, the token or an option.
    Truncated,
    /// The version field is not 1.
    BadVersion(u8),
    /// Token length 9..=15 (reserved), or a builder token longer than 8 bytes.
    BadTokenLength(u8),
    /// An option delta or length nibble of 15 that is not the payload marker.
    ReservedOptionNibble,
    /// The option number accumulated past 65535.
    OptionNumberOverflow,
    /// A payload marker (0xFF) with no payload after it.
    PayloadMarkerWithoutPayload,
    /// An Empty message (code 0.00) carrying a token, options or a payload.
    EmptyMessageNotEmpty,
    /// A critical option this implementation does not know (answer 4.02).
    UnknownCriticalOption(OptionNumber),
    /// A critical option that may occur once occurs more than once (RFC
    /// 7252 §5.4.5: treated like an unrecognized option, answer 4.02).
    RepeatedOption(OptionNumber),
    /// A known option whose value length is outside the RFC bounds.
    BadOptionLength {
        /// The option number.
        number: OptionNumber,
        /// The length found.
        len: usize,
    },
    /// A uint option value longer than 4 bytes, or a value out of range for
    /// its option (e.g. a Content-Format above 65535).
    BadUint,
    /// A string option value that is not UTF-8.
    BadUtf8,
    /// A Block1/Block2 value with SZX 7 (reserved) or NUM above 2^20-1.
    BadBlock,
    /// An option value longer than the wire format can encode (65804 bytes).
    OptionTooLong,
    /// The builder's fixed option capacity is full.
    TooManyOptions,
    /// A URI that RFC 7252 §6.4 rejects (not absolute, wrong scheme, fragment,
    /// bad percent-encoding, bad port) or that §6.5 cannot compose.
    BadUri,
    /// An endpoint table (exchanges, CON messages in flight, queue) is
    /// full; try again later (a server answers 5.03 in this case).
    Busy,
    /// No pending request or exchange has this id.
    UnknownId,
}

impl Error {
    /// The CoAP response code an endpoint answers with when a request fails
    /// this way, if any (RFC 7252 §5.4.1, §5.9).
    ///
    /// Message format errors return `None`: such messages are rejected (RST)
    /// or silently dropped, never answered with a response code.
    pub const fn code(&self) -> Option<Code> {
        match self {
            Error::UnknownCriticalOption(_)
            | Error::RepeatedOption(_)
            | Error::BadOptionLength { .. }
            | Error::BadUint
            | Error::BadUtf8
            | Error::BadBlock => Some(Code::BAD_OPTION),
            Error::BadUri => Some(Code::BAD_REQUEST),
            Error::Busy => Some(Code::SERVICE_UNAVAILABLE),
            Error::BufferTooSmall { .. } | Error::TooManyOptions | Error::OptionTooLong => {
                Some(Code::INTERNAL_SERVER_ERROR)
            }
            _ => None,
        }
    }

    /// `true` for RFC 7252 §3 message format errors (the message is rejected).
    pub const fn is_format_error(&self) -> bool {
        matches!(
            self,
            Error::Truncated
                | Error::BadVersion(_)
                | Error::BadTokenLength(_)
                | Error::ReservedOptionNibble
                | Error::OptionNumberOverflow
                | Error::PayloadMarkerWithoutPayload
                | Error::EmptyMessageNotEmpty
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            Error::Truncated => f.write_str("message truncated"),
            Error::BadVersion(v) => write!(f, "unsupported CoAP version {v}"),
            Error::BadTokenLength(l) => write!(f, "invalid token length {l}"),
            Error::ReservedOptionNibble => f.write_str("reserved option delta/length nibble 15"),
            Error::OptionNumberOverflow => f.write_str("option number above 65535"),
            Error::PayloadMarkerWithoutPayload => f.write_str("payload marker without payload"),
            Error::EmptyMessageNotEmpty => {
                f.write_str("empty message (0.00) with token, options or payload")
            }
            Error::UnknownCriticalOption(n) => write!(f, "unknown critical option {}", n.0),
            Error::RepeatedOption(n) => write!(f, "critical option {} repeated", n.0),
            Error::BadOptionLength { number, len } => {
                write!(f, "option {} has invalid length {len}", number.0)
            }
            Error::BadUint => f.write_str("invalid uint option value"),
            Error::BadUtf8 => f.write_str("string option is not UTF-8"),
            Error::BadBlock => f.write_str("invalid block option value"),
            Error::OptionTooLong => f.write_str("option value too long to encode"),
            Error::TooManyOptions => f.write_str("too many options for the builder capacity"),
            Error::BadUri => f.write_str("invalid coap/coaps URI"),
            Error::Busy => f.write_str("endpoint table full"),
            Error::UnknownId => f.write_str("no such request or exchange"),
        }
    }
}

impl core::error::Error for Error {}
