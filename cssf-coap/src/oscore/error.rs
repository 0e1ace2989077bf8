//! What can go wrong while protecting or verifying a message (RFC 8613 §8),
//! and the CoAP error response a server may answer with.

use core::fmt;

use crate::wire::{Code, Message, MessageBuilder, MessageType, OptionNumber};

/// Everything that can go wrong in OSCORE processing.
///
/// A server that fails to verify a request answers, unprotected and with an
/// outer Max-Age of 0, the response [`Error::response`] gives (RFC 8613
/// §8.2); a client drops a response that fails (§8.4). Nothing in the
/// diagnostic payloads depends on the keys or the plaintext.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The CoAP codec failed: the outer message does not parse (a message
    /// format error: drop it), the plain message given to a `protect_*`
    /// call does not parse, or an output buffer is too short
    /// ([`crate::Error::BufferTooSmall`] says how long it must be).
    Coap(crate::Error),
    /// The message has no OSCORE option (it is plain CoAP, e.g. an
    /// unprotected error response).
    NotProtected,
    /// The OSCORE option value is malformed (reserved flag bits, Partial IV
    /// length 6 or 7, truncated kid context), or a request lacks its kid or
    /// Partial IV, or the ciphertext is shorter than the tag (§8.2 step 2:
    /// 4.02 "Failed to decode COSE").
    BadOption,
    /// No security context has this kid (and kid context) (§8.2 step 2:
    /// 4.01 "Security context not found").
    ContextNotFound,
    /// The request's Partial IV was received before or is older than the
    /// replay window (§7.4: 4.01 "Replay detected").
    Replay,
    /// A context restored after a reboot whose replay window was neither
    /// restored nor vouched for refuses every request (Appendix B.1.2:
    /// answered 4.01 "Replay detected"; the caller restores the window with
    /// [`SecurityContext::restore_replay_window`](super::SecurityContext::restore_replay_window)
    /// or synchronises, e.g. with Echo, then calls
    /// [`SecurityContext::replay_synchronised`](super::SecurityContext::replay_synchronised);
    /// the endpoint does the Echo exchange itself and never gives this
    /// error).
    ReplayWindowNotSynchronised,
    /// The AEAD tag does not verify (§8.2 step 6: 4.00 "Decryption
    /// failed").
    DecryptionFailed,
    /// The decrypted plaintext is not a well-formed inner message (bad
    /// options, a request code in a response or the reverse).
    BadInnerMessage,
    /// A Sender or Recipient ID longer than the nonce length minus 6 (7
    /// bytes for AES-CCM-16-64-128, §3.3).
    BadIdLength,
    /// An ID Context longer than [`crate::oscore::MAX_ID_CONTEXT_LEN`].
    BadIdContextLength,
    /// The Sender Sequence Number passed 2^40 - 1: the context must be
    /// renewed (§7.2.1).
    SequenceExhausted,
    /// The next Sender Sequence Number has not been persisted yet: store
    /// [`crate::oscore::SecurityContext::persist_due`] and confirm it with
    /// [`crate::oscore::SecurityContext::persisted`] (Appendix B.1.1).
    PersistRequired,
    /// An option this implementation cannot protect (Proxy-Uri, which §4.1.3.3
    /// decomposes; send Proxy-Scheme and Uri-* options instead), or an OSCORE
    /// option in a message to protect.
    UnsupportedOption(OptionNumber),
    /// The plaintext is longer than AES-CCM with a 13-byte nonce can
    /// encrypt (65535 bytes).
    MessageTooLong,
    /// `protect_request` / `unprotect_request` was given a message whose code
    /// is not a request method.
    NotARequest,
    /// `protect_response` / `unprotect_response` was given a message whose
    /// code is not a response code.
    NotAResponse,
}

impl Error {
    /// The CoAP error code and diagnostic payload a server answers a request
    /// that failed this way with (RFC 8613 §8.2), `None` when the request is
    /// not answered with an OSCORE error (a message format error is dropped
    /// or reset, a plain request goes to normal CoAP processing, local
    /// failures are the server's own).
    ///
    /// The response is sent unprotected with an outer Max-Age of 0; the
    /// diagnostic strings are the ones the RFC suggests and reveal nothing
    /// beyond the failure class.
    pub const fn response(&self) -> Option<(Code, &'static str)> {
        match self {
            Error::BadOption => Some((Code::BAD_OPTION, "Failed to decode COSE")),
            Error::ContextNotFound => Some((Code::UNAUTHORIZED, "Security context not found")),
            Error::Replay | Error::ReplayWindowNotSynchronised => {
                Some((Code::UNAUTHORIZED, "Replay detected"))
            }
            Error::DecryptionFailed => Some((Code::BAD_REQUEST, "Decryption failed")),
            Error::BadInnerMessage => Some((Code::BAD_REQUEST, "")),
            _ => None,
        }
    }

    /// Writes the unprotected error response (RFC 8613 §8.2) to the
    /// request `request` that failed this way: code and diagnostic from
    /// [`Error::response`], an outer Max-Age of 0, the request's token; a
    /// piggybacked ACK for a confirmable request, else a NON with
    /// `message_id`. Returns its length, or `None` when this error is not
    /// answered.
    ///
    /// Only the header and token of `request` are read, so it may be the
    /// datagram a failed verification left partly decrypted.
    ///
    /// ```
    /// use cssf_coap::oscore::Error;
    /// use cssf_coap::{Code, Message, MessageType};
    /// // A CON POST with token 0x39 whose Partial IV was seen before.
    /// let request = [0x41, 0x02, 0x12, 0x34, 0x39, 0x92, 0x09, 0x14];
    /// let mut out = [0u8; 64];
    /// let n = Error::Replay.emit_response(&request, 0, &mut out)?.unwrap();
    /// let rsp = Message::parse(&out[..n])?;
    /// assert_eq!((rsp.ty(), rsp.code(), rsp.message_id()), (MessageType::Ack, Code::UNAUTHORIZED, 0x1234));
    /// assert_eq!((rsp.token(), rsp.max_age()?, rsp.payload()), (&[0x39][..], Some(0), &b"Replay detected"[..]));
    /// # Ok::<(), cssf_coap::Error>(())
    /// ```
    pub fn emit_response(
        &self,
        request: &[u8],
        message_id: u16,
        out: &mut [u8],
    ) -> Result<Option<usize>, crate::Error> {
        let Some((code, diagnostic)) = self.response() else {
            return Ok(None);
        };
        let tkl = usize::from(request.first().copied().unwrap_or(0) & 0x0f);
        let head = request.get(..4 + tkl).ok_or(crate::Error::Truncated)?;
        let req = Message::parse(head)?;
        let (ty, mid) = if req.ty() == MessageType::Con {
            (MessageType::Ack, req.message_id())
        } else {
            (MessageType::Non, message_id)
        };
        let mut b = MessageBuilder::<1>::new(ty, code, mid);
        b.token(req.token())?;
        b.add_uint(OptionNumber::MAX_AGE, 0)?;
        b.payload(diagnostic.as_bytes());
        b.emit(out).map(Some)
    }

    /// The code of [`Error::response`], if any.
    pub const fn code(&self) -> Option<Code> {
        match self.response() {
            Some((code, _)) => Some(code),
            None => None,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Error::Coap(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Coap(e) => write!(f, "CoAP: {e}"),
            Error::NotProtected => f.write_str("no OSCORE option"),
            Error::BadOption => f.write_str("malformed OSCORE option or COSE object"),
            Error::ContextNotFound => f.write_str("security context not found"),
            Error::Replay => f.write_str("replay detected"),
            Error::ReplayWindowNotSynchronised => {
                f.write_str("replay window not synchronised after a restart")
            }
            Error::DecryptionFailed => f.write_str("decryption failed"),
            Error::BadInnerMessage => f.write_str("malformed inner message"),
            Error::BadIdLength => f.write_str("sender or recipient ID too long"),
            Error::BadIdContextLength => f.write_str("ID context too long"),
            Error::SequenceExhausted => f.write_str("sender sequence number exhausted"),
            Error::PersistRequired => f.write_str("sender sequence number not yet persisted"),
            Error::UnsupportedOption(n) => write!(f, "option {} cannot be protected", n.0),
            Error::MessageTooLong => f.write_str("message too long to protect"),
            Error::NotARequest => f.write_str("not a request"),
            Error::NotAResponse => f.write_str("not a response"),
        }
    }
}

impl core::error::Error for Error {}
