//! OSCORE, Object Security for Constrained RESTful Environments (RFC 8613),
//! with AES-CCM-16-64-128 and HKDF-SHA256 (feature `oscore`).
//!
//! OSCORE protects a CoAP message end to end: the code, the Class E options
//! and the payload are encrypted into the payload of an outer message that
//! carries only what proxies need (Class U options) and the OSCORE option.
//! This module turns a plain CoAP message (bytes, as built with
//! [`crate::MessageBuilder`]) into a protected one and back:
//!
//! * [`SecurityContext::new`] derives the context (§3.2): Sender Key,
//!   Recipient Key and Common IV from the Master Secret, optional Master
//!   Salt and ID Context, and the Sender and Recipient IDs;
//! * a client calls [`SecurityContext::protect_request`] and, with the
//!   [`RequestBinding`] it returns, [`SecurityContext::unprotect_response`];
//! * a server calls [`SecurityContext::unprotect_request`] (or
//!   [`ContextTable::unprotect_request`] to pick a context by kid) and
//!   [`SecurityContext::protect_response`].
//!
//! A server answers a request that fails verification with the
//! unprotected response [`Error::response`] names (4.00, 4.01 or 4.02 and a
//! fixed diagnostic). Requests pass a 64-number [`ReplayWindow`]. Sender
//! Sequence Numbers can be persisted across reboots with
//! [`SecurityContext::persist_due`] and [`SecurityContext::persisted`]
//! (Appendix B.1.1).
//!
//! Nothing allocates; keys are zeroized on drop. Received datagrams are
//! decrypted in place (`&mut [u8]`), and the plain message is written to a
//! caller buffer. Not covered: Observe and Block-wise specifics (Observe is
//! copied inner and outer; outer Block options for proxies are not
//! produced), Proxy-Uri (refused: send Proxy-Scheme and Uri-* options),
//! Echo-based re-synchronisation after a reboot (Appendix B.1.2: a server
//! restarted with the same keys starts with an empty replay window, so it
//! would take one old request again), other algorithms, Group OSCORE.
//!
//! **Sequence numbers across reboots.** [`SenderSequence::Volatile`]
//! starts at 0: use it only for keys that are new on every boot (e.g.
//! derived anew by EDHOC). A context built from fixed keys after every
//! reboot must be [`SenderSequence::Persisted`], or it reuses nonces. The
//! example below uses `Volatile` because its keys live only for the
//! example.
//!
//! ```
//! use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
//! use cssf_coap::{Code, Message, MessageBuilder, MessageType};
//!
//! let secret = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10];
//! let client_params = Params {
//!     master_secret: &secret,
//!     master_salt: &[0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40],
//!     id_context: None,
//!     sender_id: &[],
//!     recipient_id: &[0x01],
//! };
//! let server_params = Params { sender_id: &[0x01], recipient_id: &[], ..client_params };
//! let mut client = SecurityContext::new(&client_params, SenderSequence::Volatile)?;
//! let mut server = SecurityContext::new(&server_params, SenderSequence::Volatile)?;
//!
//! // Client: GET /tv1, protected.
//! let mut get = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 0x5d1f);
//! get.token(&[0x39, 0x74])?.uri_path("tv1")?;
//! let mut plain = [0u8; 64];
//! let n = get.emit(&mut plain)?;
//! let mut wire = [0u8; 128];
//! let (len, mut request) = client.protect_request(&plain[..n], &mut wire)?;
//! let outer = Message::parse(&wire[..len])?;
//! assert_eq!(outer.code(), Code::POST); // the method is encrypted
//! assert_eq!(outer.uri_path().count(), 0); // and so is the path
//!
//! // Server: verify, answer 2.05 "Hello World!", protect.
//! let mut inner = [0u8; 128];
//! let (n, mut binding) = server.unprotect_request(&mut wire[..len], &mut inner)?;
//! let req = Message::parse(&inner[..n])?;
//! assert_eq!(req.code(), Code::GET);
//! assert_eq!(req.uri_path().next(), Some(&b"tv1"[..]));
//! let mut rsp = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, req.message_id());
//! rsp.token(req.token())?.payload(b"Hello World!");
//! let n = rsp.emit(&mut plain)?;
//! let len = server.protect_response(&mut binding, &plain[..n], false, &mut wire)?;
//!
//! // Client: verify the response against its request.
//! let n = client.unprotect_response(&mut request, &mut wire[..len], &mut inner)?;
//! let rsp = Message::parse(&inner[..n])?;
//! assert_eq!(rsp.code(), Code::CONTENT);
//! assert_eq!(rsp.payload(), b"Hello World!");
//! # Ok::<(), cssf_coap::oscore::Error>(())
//! ```

mod context;
mod crypto;
mod error;
mod option;
mod protect;
mod replay;

pub use context::{
    Bytes, Id, IdContext, Params, PartialIv, RequestBinding, SecurityContext, SenderSequence,
    MAX_SEQUENCE_NUMBER,
};
pub use error::Error;
pub use option::{
    OscoreOption, FLAG_KID, FLAG_KID_CONTEXT, MAX_PIV_LEN, PIV_LEN_MASK, RESERVED_MASK,
};
pub use protect::ContextTable;
pub use replay::{ReplayWindow, REPLAY_WINDOW_SIZE};

/// AES-CCM-16-64-128 key length.
pub const KEY_LEN: usize = 16;
/// AES-CCM-16-64-128 nonce length.
pub const NONCE_LEN: usize = 13;
/// AES-CCM-16-64-128 tag length.
pub const TAG_LEN: usize = 8;
/// Longest Sender or Recipient ID: the nonce length minus 6 (RFC 8613 §3.3).
pub const MAX_ID_LEN: usize = NONCE_LEN - 6;
/// Longest ID Context this implementation keeps (the option allows 255).
pub const MAX_ID_CONTEXT_LEN: usize = 32;
/// Most options a plain message may have (inner and outer together).
pub const MAX_OPTIONS: usize = 16;

#[cfg(test)]
mod tests;
