//! The one error type of `cssf-auth`, and its mapping to CoAP response codes
//! (RFC 9200 §5.10.1.1).

use core::fmt;

/// Why a token, a COSE message or a request was refused.
#[non_exhaustive]
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The CBOR is not well formed, or not the structure RFC 9052 / RFC 8392 asks for.
    Malformed,
    /// CBOR nesting deeper than the configured limit.
    TooDeep,
    /// An item or the whole input exceeds a configured size or count limit.
    TooLarge,
    /// A CBOR tag or structure that is not COSE_Sign1, COSE_Mac0 or COSE_Encrypt0 (or CWT tag 61).
    UnsupportedMessage,
    /// An algorithm this crate does not implement (e.g. ES384, HMAC 384, AES-CCM-64-128-64).
    UnsupportedAlgorithm,
    /// No configured key for the message's algorithm (and kid): the verifier is
    /// never asked to use a key with an algorithm it was not configured for.
    UnknownKey,
    /// `alg` is missing from the protected header bucket.
    MissingAlg,
    /// `alg` appears in the unprotected bucket (RFC 9052 §3.1 requires it protected).
    AlgNotProtected,
    /// A `crit` label this implementation does not understand, or a malformed `crit`.
    UnknownCritical,
    /// A header label appears twice (within or across buckets).
    DuplicateLabel,
    /// Missing, malformed or conflicting IV / Partial IV.
    BadIv,
    /// Signature, MAC tag or AEAD tag did not verify.
    VerificationFailed,
    /// The token's audience does not name this resource server.
    WrongAudience,
    /// The token has expired (`exp`, or `exi` counted from reception).
    Expired,
    /// The token is not valid yet (`nbf`).
    NotYetValid,
    /// The token has no usable lifetime: `exp` without a wall clock and no `exi`.
    NoLifetime,
    /// A required claim is missing (e.g. `cnf`, a `kid`, or `cti` on an `exi` token).
    MissingClaim,
    /// The `cti` was seen before (replay).
    Replay,
    /// A token for the same kid that is not older is stored (by `iat`, or
    /// by `exi` Sequence Number): a replaced token cannot come back.
    Superseded,
    /// A live token for the same kid is bound to another PoP key.
    KidConflict,
    /// The replay cache holds only live tokens' `cti`s: no room to
    /// remember one more without forgetting one that could then be
    /// replayed.
    ReplayCacheFull,
    /// The scope claim is malformed or not understood.
    InvalidScope,
    /// The proof-of-possession key (`cnf`) is malformed or of an unsupported type.
    InvalidPopKey,
    /// The token store is full and no stored token has expired.
    StoreFull,
    /// No room to track the `exi` Sequence Numbers of one more issuer
    /// (RFC 9200 §5.10.3).
    ExiStateFull,
    /// An access-control policy element is malformed: a schedule, an IP
    /// address range, an originator or path pattern, an operation mask, or
    /// a policy index that does not exist (oneM2M ACPs, [`crate::acp`]).
    InvalidPolicy,
    /// An EDHOC message was refused or could not be made (RFC 9528).
    #[cfg(feature = "edhoc")]
    Edhoc(crate::edhoc::EdhocError),
    /// An OSCORE-profile token or `/authz-info` request was refused
    /// (RFC 9203).
    #[cfg(feature = "oscore-profile")]
    Oscore(crate::oscore_profile::OscoreError),
    /// An output buffer is too short.
    BufferTooSmall {
        /// Bytes the output needs.
        needed: usize,
    },
}

impl Error {
    /// The CoAP response code (`class << 5 | detail`) a resource server answers
    /// a `POST /authz-info` failing with this error (RFC 9200 §5.10.1.1):
    /// 4.00 for undecodable tokens and unprocessable claims, 4.01 for tokens
    /// that are not valid, 4.03 for a wrong audience, 5.03 when the store is full.
    pub fn code(&self) -> u8 {
        const BAD_REQUEST: u8 = 0x80;
        const UNAUTHORIZED: u8 = 0x81;
        const FORBIDDEN: u8 = 0x83;
        const SERVICE_UNAVAILABLE: u8 = 0xA3;
        const INTERNAL: u8 = 0xA0;
        match self {
            Error::Malformed
            | Error::TooDeep
            | Error::TooLarge
            | Error::UnsupportedMessage
            | Error::MissingClaim
            | Error::InvalidScope
            | Error::InvalidPopKey
            | Error::InvalidPolicy
            | Error::KidConflict => BAD_REQUEST,
            Error::WrongAudience => FORBIDDEN,
            Error::StoreFull | Error::ExiStateFull | Error::ReplayCacheFull => SERVICE_UNAVAILABLE,
            Error::BufferTooSmall { .. } => INTERNAL,
            // EDHOC over CoAP answers errors with 4.00 (RFC 9528 §A.2)
            #[cfg(feature = "edhoc")]
            Error::Edhoc(_) => BAD_REQUEST,
            #[cfg(feature = "oscore-profile")]
            Error::Oscore(e) => e.code(),
            _ => UNAUTHORIZED,
        }
    }

    /// The ACE error code (RFC 9200 §8.4 CBOR mapping) carried in a 4.00
    /// response payload, if any: `invalid_scope` (6) or `invalid_request` (1).
    pub fn ace_error(&self) -> Option<u8> {
        match self.code() {
            0x80 if *self == Error::InvalidScope => Some(6),
            0x80 => Some(1),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Malformed => "malformed CBOR or COSE structure",
            Error::TooDeep => "CBOR nesting too deep",
            Error::TooLarge => "input exceeds a size limit",
            Error::UnsupportedMessage => "unsupported COSE message type",
            Error::UnsupportedAlgorithm => "unsupported algorithm",
            Error::UnknownKey => "no configured key for this algorithm and kid",
            Error::MissingAlg => "alg missing from the protected header",
            Error::AlgNotProtected => "alg in the unprotected header",
            Error::UnknownCritical => "unknown critical header parameter",
            Error::DuplicateLabel => "duplicate header label",
            Error::BadIv => "missing or invalid IV",
            Error::VerificationFailed => "signature, MAC or AEAD tag did not verify",
            Error::WrongAudience => "token audience does not match",
            Error::Expired => "token expired",
            Error::NotYetValid => "token not yet valid",
            Error::NoLifetime => "token lifetime cannot be checked",
            Error::MissingClaim => "required claim missing",
            Error::Replay => "token identifier replayed",
            Error::Superseded => "a newer token for this key is stored",
            Error::KidConflict => "a live token for this kid has another key",
            Error::ReplayCacheFull => "no room to remember another token identifier",
            Error::InvalidScope => "invalid scope",
            Error::InvalidPopKey => "invalid proof-of-possession key",
            Error::StoreFull => "token store full",
            Error::ExiStateFull => "no room for another issuer's exi sequence numbers",
            Error::InvalidPolicy => "invalid access-control policy",
            #[cfg(feature = "edhoc")]
            Error::Edhoc(e) => e.describe(),
            #[cfg(feature = "oscore-profile")]
            Error::Oscore(e) => e.describe(),
            Error::BufferTooSmall { needed } => {
                return write!(f, "buffer too small, {needed} bytes needed")
            }
        };
        f.write_str(s)
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc9200() {
        assert_eq!(Error::Malformed.code(), 0x80);
        assert_eq!(Error::VerificationFailed.code(), 0x81);
        assert_eq!(Error::WrongAudience.code(), 0x83);
        assert_eq!(Error::InvalidScope.ace_error(), Some(6));
        assert_eq!(Error::Expired.ace_error(), None);
        assert_eq!(Error::KidConflict.code(), 0x80);
        assert_eq!(Error::ReplayCacheFull.code(), 0xA3);
        assert_eq!(Error::Superseded.code(), 0x81);
    }
}
