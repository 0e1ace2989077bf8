//! Message Code (RFC 7252 §3, §5.8, §5.9, §12.1) and Type (RFC 7252 §3, §4).

use core::fmt;

/// The message Type (RFC 7252 §3): the two bits after the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// Confirmable (CON, 0): needs an ACK or RST.
    Con = 0,
    /// Non-confirmable (NON, 1).
    Non = 1,
    /// Acknowledgement (ACK, 2).
    Ack = 2,
    /// Reset (RST, 3).
    Rst = 3,
}

impl MessageType {
    /// The type from its two-bit wire value (only the low two bits are used).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => MessageType::Con,
            1 => MessageType::Non,
            2 => MessageType::Ack,
            _ => MessageType::Rst,
        }
    }

    /// The two-bit wire value.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// The RFC abbreviation: `CON`, `NON`, `ACK` or `RST`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Con => "CON",
            MessageType::Non => "NON",
            MessageType::Ack => "ACK",
            MessageType::Rst => "RST",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CoAP Code: 3-bit class and 5-bit detail, written `c.dd` (RFC 7252 §3).
///
/// ```
/// use cssf_coap::Code;
/// assert_eq!(Code::CONTENT, Code::new(2, 5));
/// assert_eq!(Code::CONTENT.class(), 2);
/// assert_eq!(Code::NOT_FOUND.name(), Some("Not Found"));
/// assert_eq!(format!("{}", Code::BAD_OPTION), "4.02");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub u8);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = ($class:literal, $detail:literal), $text:literal;)*) => {
        impl Code {
            $($(#[$doc])* pub const $name: Code = Code::new($class, $detail);)*

            /// The registered name of this code, if it is one this crate knows.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $(x if x == Code::$name.0 => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// 0.00 Empty message.
    EMPTY = (0, 0), "Empty";
    /// 0.01 GET (RFC 7252).
    GET = (0, 1), "GET";
    /// 0.02 POST (RFC 7252).
    POST = (0, 2), "POST";
    /// 0.03 PUT (RFC 7252).
    PUT = (0, 3), "PUT";
    /// 0.04 DELETE (RFC 7252).
    DELETE = (0, 4), "DELETE";
    /// 0.05 FETCH (RFC 8132).
    FETCH = (0, 5), "FETCH";
    /// 0.06 PATCH (RFC 8132).
    PATCH = (0, 6), "PATCH";
    /// 0.07 iPATCH (RFC 8132).
    IPATCH = (0, 7), "iPATCH";
    /// 2.01 Created.
    CREATED = (2, 1), "Created";
    /// 2.02 Deleted.
    DELETED = (2, 2), "Deleted";
    /// 2.03 Valid.
    VALID = (2, 3), "Valid";
    /// 2.04 Changed.
    CHANGED = (2, 4), "Changed";
    /// 2.05 Content.
    CONTENT = (2, 5), "Content";
    /// 2.31 Continue (RFC 7959).
    CONTINUE = (2, 31), "Continue";
    /// 4.00 Bad Request.
    BAD_REQUEST = (4, 0), "Bad Request";
    /// 4.01 Unauthorized.
    UNAUTHORIZED = (4, 1), "Unauthorized";
    /// 4.02 Bad Option.
    BAD_OPTION = (4, 2), "Bad Option";
    /// 4.03 Forbidden.
    FORBIDDEN = (4, 3), "Forbidden";
    /// 4.04 Not Found.
    NOT_FOUND = (4, 4), "Not Found";
    /// 4.05 Method Not Allowed.
    METHOD_NOT_ALLOWED = (4, 5), "Method Not Allowed";
    /// 4.06 Not Acceptable.
    NOT_ACCEPTABLE = (4, 6), "Not Acceptable";
    /// 4.08 Request Entity Incomplete (RFC 7959).
    REQUEST_ENTITY_INCOMPLETE = (4, 8), "Request Entity Incomplete";
    /// 4.09 Conflict (RFC 8132).
    CONFLICT = (4, 9), "Conflict";
    /// 4.12 Precondition Failed.
    PRECONDITION_FAILED = (4, 12), "Precondition Failed";
    /// 4.13 Request Entity Too Large.
    REQUEST_ENTITY_TOO_LARGE = (4, 13), "Request Entity Too Large";
    /// 4.15 Unsupported Content-Format.
    UNSUPPORTED_CONTENT_FORMAT = (4, 15), "Unsupported Content-Format";
    /// 4.22 Unprocessable Entity (RFC 8132).
    UNPROCESSABLE_ENTITY = (4, 22), "Unprocessable Entity";
    /// 4.29 Too Many Requests (RFC 8516).
    TOO_MANY_REQUESTS = (4, 29), "Too Many Requests";
    /// 5.00 Internal Server Error.
    INTERNAL_SERVER_ERROR = (5, 0), "Internal Server Error";
    /// 5.01 Not Implemented.
    NOT_IMPLEMENTED = (5, 1), "Not Implemented";
    /// 5.02 Bad Gateway.
    BAD_GATEWAY = (5, 2), "Bad Gateway";
    /// 5.03 Service Unavailable.
    SERVICE_UNAVAILABLE = (5, 3), "Service Unavailable";
    /// 5.04 Gateway Timeout.
    GATEWAY_TIMEOUT = (5, 4), "Gateway Timeout";
    /// 5.05 Proxying Not Supported.
    PROXYING_NOT_SUPPORTED = (5, 5), "Proxying Not Supported";
    /// 5.08 Hop Limit Reached (RFC 8768).
    HOP_LIMIT_REACHED = (5, 8), "Hop Limit Reached";
}

impl Code {
    /// The code `class.detail`; `class` is taken modulo 8, `detail` modulo 32.
    pub const fn new(class: u8, detail: u8) -> Self {
        Code(((class & 0x07) << 5) | (detail & 0x1f))
    }

    /// The class (0 request/empty, 2 success, 4 client error, 5 server error).
    pub const fn class(self) -> u8 {
        self.0 >> 5
    }

    /// The detail (0..=31).
    pub const fn detail(self) -> u8 {
        self.0 & 0x1f
    }

    /// `true` for 0.00.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `true` for a request method (0.01..=0.31).
    pub const fn is_request(self) -> bool {
        self.class() == 0 && self.detail() != 0
    }

    /// `true` for a response (classes 2, 3, 4, 5).
    pub const fn is_response(self) -> bool {
        matches!(self.class(), 2..=5)
    }

    /// `true` for a success response (class 2).
    pub const fn is_success(self) -> bool {
        self.class() == 2
    }

    /// `true` for the reserved classes 1, 6 and 7 (RFC 7252 §12.1; 7.xx is
    /// CoAP-over-TCP signaling, never valid over UDP).
    pub const fn is_reserved(self) -> bool {
        matches!(self.class(), 1 | 6 | 7)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.class(), self.detail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_from_rfc_registry() {
        // RFC 7252 §12.1.1 / §12.1.2 and RFC 7959 / 8132 / 8768 registrations.
        assert_eq!(Code::GET.0, 0x01);
        assert_eq!(Code::IPATCH.0, 0x07);
        assert_eq!(Code::CREATED.0, 0x41);
        assert_eq!(Code::CONTENT.0, 0x45);
        assert_eq!(Code::CONTINUE.0, 0x5f);
        assert_eq!(Code::BAD_OPTION.0, 0x82);
        assert_eq!(Code::UNSUPPORTED_CONTENT_FORMAT.0, 0x8f);
        assert_eq!(Code::PROXYING_NOT_SUPPORTED.0, 0xa5);
        assert_eq!(Code::HOP_LIMIT_REACHED.0, 0xa8);
        assert_eq!(Code(0x45).name(), Some("Content"));
        assert_eq!(Code(0x3f).name(), None);
        assert!(Code::GET.is_request() && !Code::GET.is_response());
        assert!(Code::new(7, 1).is_reserved());
    }

    #[test]
    fn types() {
        for b in 0..4u8 {
            assert_eq!(MessageType::from_bits(b).bits(), b);
        }
        assert_eq!(MessageType::Ack.name(), "ACK");
    }
}
