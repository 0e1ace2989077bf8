//! The crate's one error type and the TLS alert codes it maps to (RFC 5246 §7.2).

use core::fmt;

/// TLS alert descriptions (RFC 5246 §7.2, RFC 4279 §2, RFC 5746 §3.4).
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlertDescription {
    /// close_notify (0).
    CloseNotify,
    /// unexpected_message (10).
    UnexpectedMessage,
    /// bad_record_mac (20).
    BadRecordMac,
    /// record_overflow (22).
    RecordOverflow,
    /// handshake_failure (40).
    HandshakeFailure,
    /// bad_certificate (42).
    BadCertificate,
    /// unsupported_certificate (43).
    UnsupportedCertificate,
    /// illegal_parameter (47).
    IllegalParameter,
    /// decode_error (50).
    DecodeError,
    /// decrypt_error (51).
    DecryptError,
    /// protocol_version (70).
    ProtocolVersion,
    /// insufficient_security (71).
    InsufficientSecurity,
    /// internal_error (80).
    InternalError,
    /// no_renegotiation (100).
    NoRenegotiation,
    /// unsupported_extension (110).
    UnsupportedExtension,
    /// unknown_psk_identity (115).
    UnknownPskIdentity,
    /// Any other value.
    Other(u8),
}

impl AlertDescription {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::CloseNotify => 0,
            Self::UnexpectedMessage => 10,
            Self::BadRecordMac => 20,
            Self::RecordOverflow => 22,
            Self::HandshakeFailure => 40,
            Self::BadCertificate => 42,
            Self::UnsupportedCertificate => 43,
            Self::IllegalParameter => 47,
            Self::DecodeError => 50,
            Self::DecryptError => 51,
            Self::ProtocolVersion => 70,
            Self::InsufficientSecurity => 71,
            Self::InternalError => 80,
            Self::NoRenegotiation => 100,
            Self::UnsupportedExtension => 110,
            Self::UnknownPskIdentity => 115,
            Self::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::CloseNotify,
            10 => Self::UnexpectedMessage,
            20 => Self::BadRecordMac,
            22 => Self::RecordOverflow,
            40 => Self::HandshakeFailure,
            42 => Self::BadCertificate,
            43 => Self::UnsupportedCertificate,
            47 => Self::IllegalParameter,
            50 => Self::DecodeError,
            51 => Self::DecryptError,
            70 => Self::ProtocolVersion,
            71 => Self::InsufficientSecurity,
            80 => Self::InternalError,
            100 => Self::NoRenegotiation,
            110 => Self::UnsupportedExtension,
            115 => Self::UnknownPskIdentity,
            o => Self::Other(o),
        }
    }
}

/// Everything that can go wrong. An `Err` from a `handle_*` method means the
/// connection is dead; malformed or replayed records are dropped and counted
/// instead.
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The output buffer is too short; `needed` bytes are required.
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
    },
    /// A message could not be parsed (decode_error).
    Decode,
    /// A field held a value the protocol forbids here (illegal_parameter).
    IllegalParameter,
    /// A message arrived out of order (unexpected_message).
    UnexpectedMessage,
    /// No common cipher suite or a required extension is missing (handshake_failure).
    HandshakeFailure,
    /// The peer does not speak DTLS 1.2 (protocol_version).
    ProtocolVersion,
    /// The peer refused extended master secret while we require it (insufficient_security... sent as handshake_failure per RFC 7627).
    InsufficientSecurity,
    /// The server does not know the PSK identity (unknown_psk_identity).
    UnknownPskIdentity,
    /// The peer answered with an extension we did not offer (unsupported_extension).
    UnsupportedExtension,
    /// The Finished verify_data or a handshake signature (ServerKeyExchange,
    /// CertificateVerify) did not verify (decrypt_error).
    DecryptError,
    /// The peer's certificate or raw public key is malformed or not a P-256
    /// key (bad_certificate).
    BadCertificate,
    /// The peer's key parsed but the trust store does not accept it
    /// (bad_certificate).
    UntrustedPeer,
    /// No certificate type both sides support, or the peer sent a
    /// certificate we cannot use (unsupported_certificate).
    UnsupportedCertificate,
    /// A record failed authentication where that is fatal (bad_record_mac).
    BadRecordMac,
    /// A record or message exceeds a limit (record_overflow).
    RecordOverflow,
    /// The peer sent a fatal alert.
    AlertReceived(AlertDescription),
    /// The handshake did not finish within the retransmission budget.
    Timeout,
    /// The connection is closed (close_notify sent or received).
    Closed,
    /// The operation needs an established connection.
    NotConnected,
    /// A bounded table or queue is full.
    Full,
    /// The peer is not known to this endpoint.
    UnknownPeer,
    /// The configuration is unusable (e.g. no cipher suite, key too long, a
    /// Connection ID without feature `cid`).
    Config,
    /// An internal invariant failed (internal_error).
    Internal,
}

impl Error {
    /// True for errors of this side (the caller's misuse, a full table, a
    /// bug), not caused by what a peer sent: logged at warn, the rest at
    /// debug, so a peer cannot fill the log at warn.
    #[cfg_attr(
        not(any(feature = "log", all(feature = "defmt", target_os = "none"))),
        allow(dead_code)
    )]
    pub(crate) const fn is_local(self) -> bool {
        matches!(
            self,
            Error::BufferTooSmall { .. }
                | Error::Closed
                | Error::NotConnected
                | Error::Full
                | Error::UnknownPeer
                | Error::Config
                | Error::Internal
        )
    }

    /// The fatal alert this error is reported with on the wire, if any.
    pub fn code(self) -> Option<AlertDescription> {
        Some(match self {
            Error::Decode => AlertDescription::DecodeError,
            Error::IllegalParameter => AlertDescription::IllegalParameter,
            Error::UnexpectedMessage => AlertDescription::UnexpectedMessage,
            // RFC 7627 §5.3: abort with handshake_failure when EMS is required.
            Error::HandshakeFailure | Error::InsufficientSecurity => {
                AlertDescription::HandshakeFailure
            }
            Error::ProtocolVersion => AlertDescription::ProtocolVersion,
            Error::UnknownPskIdentity => AlertDescription::UnknownPskIdentity,
            Error::UnsupportedExtension => AlertDescription::UnsupportedExtension,
            Error::DecryptError => AlertDescription::DecryptError,
            Error::BadCertificate | Error::UntrustedPeer => AlertDescription::BadCertificate,
            Error::UnsupportedCertificate => AlertDescription::UnsupportedCertificate,
            Error::BadRecordMac => AlertDescription::BadRecordMac,
            Error::RecordOverflow => AlertDescription::RecordOverflow,
            Error::Internal => AlertDescription::InternalError,
            _ => return None,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            Error::Decode => f.write_str("malformed message"),
            Error::IllegalParameter => f.write_str("illegal parameter"),
            Error::UnexpectedMessage => f.write_str("unexpected message"),
            Error::HandshakeFailure => f.write_str("handshake failure"),
            Error::ProtocolVersion => f.write_str("unsupported protocol version"),
            Error::InsufficientSecurity => f.write_str("peer lacks extended master secret"),
            Error::UnknownPskIdentity => f.write_str("unknown PSK identity"),
            Error::UnsupportedExtension => f.write_str("unsolicited extension"),
            Error::DecryptError => f.write_str("Finished or signature verification failed"),
            Error::BadCertificate => f.write_str("malformed peer certificate or key"),
            Error::UntrustedPeer => f.write_str("peer key not trusted"),
            Error::UnsupportedCertificate => f.write_str("unsupported certificate type"),
            Error::BadRecordMac => f.write_str("record authentication failed"),
            Error::RecordOverflow => f.write_str("record too large"),
            Error::AlertReceived(a) => write!(f, "peer sent fatal alert {}", a.to_u8()),
            Error::Timeout => f.write_str("handshake timed out"),
            Error::Closed => f.write_str("connection closed"),
            Error::NotConnected => f.write_str("connection not established"),
            Error::Full => f.write_str("table or queue full"),
            Error::UnknownPeer => f.write_str("unknown peer"),
            Error::Config => f.write_str("invalid configuration"),
            Error::Internal => f.write_str("internal error"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_codes_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(AlertDescription::from_u8(v).to_u8(), v);
        }
        assert_eq!(
            Error::DecryptError.code(),
            Some(AlertDescription::DecryptError)
        );
        assert_eq!(Error::Timeout.code(), None);
    }
}
