//! EDHOC, Ephemeral Diffie-Hellman Over COSE (RFC 9528): an authenticated
//! key exchange of three messages, sans-IO, `no_std`, without allocation.
//!
//! What is implemented: cipher suite 2 (AES-CCM-16-64-128, SHA-256, 8-byte
//! MACs, P-256 ECDH, ES256), methods 0 to 3 (signatures and static
//! Diffie-Hellman keys in every combination, §3.2), credentials as CWT
//! Claims Sets (CCS, RFC 8392) holding an EC2 P-256 `COSE_Key`, sent by
//! reference (`kid`) or by value (`kccs`), EAD items handed to the caller
//! (§3.8), the error message (§6) with cipher-suite negotiation (§6.3),
//! the optional message_4 (§5.5), `EDHOC_Exporter` (§4.2.1) and the OSCORE
//! security context export (Appendix A.1).
//!
//! The two roles are [`Initiator`] and [`Responder`], each a state machine
//! driven message by message: a message goes in, the next one comes out.
//! As RFC 9528 asks (§5.2.3, §5.3.3, §5.4.3, §5.5.3), a message_2,
//! message_3 or message_4 that fails processing (authentication, decryption,
//! format, an unknown credential, a refused EAD item, an error message from
//! the peer) discontinues the handshake: the state becomes aborted, its
//! secrets are dropped, every later call returns [`EdhocError::Aborted`]
//! and only a new handshake goes on (a forged message thus ends the
//! handshake it targets: there is no retry to probe with). A message the
//! current state does not take at all ([`EdhocError::UnexpectedMessage`],
//! e.g. a replay to a finished side) changes nothing. A refused message_1
//! leaves the responder waiting for message_1.
//!
//! Whom to trust is decided by the caller's [`Policy`]: it resolves the
//! peer's ID_CRED to a [`Credential`] and is shown every EAD item.
//!
//! Randomness (the ephemeral keys) comes from a caller `CryptoRngCore`.
//! [`Initiator`] and [`Responder`] are not `Clone`: a copy could send two
//! messages under one key and nonce, or use one ephemeral key twice.
//!
//! ## Sizes
//!
//! Every buffer is fixed: connection identifiers up to
//! [`MAX_CONN_ID_LEN`] bytes, kids up to [`MAX_KID_LEN`], credentials up to
//! [`MAX_CRED_LEN`], the EAD of one message up to [`MAX_EAD_LEN`] and a
//! message up to [`MAX_MESSAGE_LEN`] bytes; a longer input is refused. The
//! RFC 9529 §3 trace (method 3, kids, one-byte connection identifiers)
//! takes 39, 45 and 19 bytes for message_1, message_2 and message_3.
//!
//! ## A handshake
//!
//! ```
//! use cssf_auth::edhoc::*;
//! # fn main() -> Result<(), cssf_auth::Error> {
//! # let (i_key, r_key) = ([0x11u8; 32], [0x22u8; 32]);
//! # let i_ccs = Credential::ccs_for(&i_key, b"\x2b", "I")?;
//! # let r_ccs = Credential::ccs_for(&r_key, b"\x32", "R")?;
//! // Each side's own credential and private key, and whom it trusts.
//! let i_cred = Credential::from_ccs(i_ccs.as_bytes())?;
//! let r_cred = Credential::from_ccs(r_ccs.as_bytes())?;
//! let mut i_trust = [r_cred.clone()];
//! let mut r_trust = [i_cred.clone()];
//! let mut rng = rand_core::OsRng;
//!
//! let mut initiator = Initiator::new(
//!     Method::StaticStatic,
//!     Identity::new(i_cred, &i_key, CredentialTransfer::ByReference)?,
//! );
//! let mut responder = Responder::new(
//!     Identity::new(r_cred, &r_key, CredentialTransfer::ByReference)?,
//!     &[Method::StaticStatic],
//! );
//! let (mut m1, mut m2, mut m3) = ([0u8; MAX_MESSAGE_LEN], [0u8; MAX_MESSAGE_LEN], [0u8; MAX_MESSAGE_LEN]);
//!
//! let n1 = initiator.prepare_message_1(&mut rng, ConnId::new(&[0x37])?, &[], &mut m1)?;
//! responder.process_message_1(&m1[..n1], &mut r_trust[..])?;
//! let n2 = responder.prepare_message_2(&mut rng, ConnId::new(&[0x27])?, &[], &mut m2)?;
//! initiator.process_message_2(&m2[..n2], &mut i_trust[..])?;
//! let n3 = initiator.prepare_message_3(&[], &mut m3)?;
//! responder.process_message_3(&m3[..n3], &mut r_trust[..])?;
//!
//! let (i, r) = (initiator.session().unwrap().oscore()?, responder.session().unwrap().oscore()?);
//! assert_eq!(i.master_secret(), r.master_secret());
//! assert_eq!(i.sender_id(), r.recipient_id());
//! # Ok(()) }
//! ```

mod crypto;
mod initiator;
mod responder;
#[cfg(test)]
mod tests;
mod types;
mod wire;

pub use initiator::Initiator;
pub use responder::Responder;
pub use types::*;
pub use wire::EadItems;

/// Not part of the API: every EDHOC parser on raw bytes, for the
/// `edhoc_parsers` fuzz target (cargo-fuzz builds with `--cfg fuzzing`).
/// The handshake fuzz target cannot reach the plaintext parsers, which sit
/// behind MAC_2's keystream and message_3's AEAD.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::{wire, Credential, EadItems, ErrorMessage, IdCred};

    /// Whether `s` lies inside `b` (a parser returned part of its input).
    fn within(b: &[u8], s: &[u8]) -> bool {
        let (b0, s0) = (b.as_ptr() as usize, s.as_ptr() as usize);
        s.is_empty() || (s0 >= b0 && s0 + s.len() <= b0 + b.len())
    }

    fn id_cred(b: &[u8], c: &IdCred<'_>) {
        match c {
            IdCred::Kid(k) => {
                assert!(within(b, k) && !k.is_empty() && k.len() <= super::MAX_KID_LEN)
            }
            IdCred::Ccs(ccs) => {
                assert!(within(b, ccs));
                let _ = Credential::from_ccs(ccs);
            }
        }
    }

    fn ead(b: &[u8], e: &[u8]) {
        assert!(within(b, e));
        for item in EadItems::new(e).take(64) {
            if let Ok(i) = item {
                assert!(i.value.map_or(true, |v| within(b, v)));
            }
        }
    }

    /// Runs message_1, PLAINTEXT_2, PLAINTEXT_3, the single-bstr message
    /// form, the error message and the CCS parser over `b`; panics if a
    /// parser hands back bytes outside its input or a kid it should have
    /// refused.
    pub fn parse_all(b: &[u8]) {
        if let Ok(m) = wire::message_1(b) {
            ead(b, m.ead);
            assert!(!m.suites.is_empty());
        }
        if let Ok(p) = wire::plaintext_2(b) {
            id_cred(b, &p.id_cred_r);
            assert!(within(b, p.sig_or_mac));
            ead(b, p.ead);
        }
        if let Ok(p) = wire::plaintext_3(b) {
            id_cred(b, &p.id_cred_i);
            assert!(within(b, p.sig_or_mac));
            ead(b, p.ead);
        }
        if let Ok(s) = wire::single_bstr(b) {
            assert!(within(b, s) && s.len() < b.len());
        }
        let _ = ErrorMessage::parse(b);
        let _ = Credential::from_ccs(b);
    }
}

/// The one cipher suite implemented: 2 (AES-CCM-16-64-128, SHA-256, 8,
/// P-256, ES256, AES-CCM-16-64-128, SHA-256).
pub const SUITE_2: u8 = 2;
/// The suites this implementation supports, in order of preference.
pub const SUPPORTED_SUITES: [u8; 1] = [SUITE_2];
/// Longest connection identifier (a byte string; one-byte identifiers that
/// encode an integer are sent as that integer): 7, the longest OSCORE
/// Sender ID with AES-CCM-16-64-128's 13-byte nonce (RFC 8613 §3.3), so
/// every exported context is usable.
pub const MAX_CONN_ID_LEN: usize = 7;
/// Longest kid in an ID_CRED or a credential.
pub const MAX_KID_LEN: usize = 16;
/// Longest credential (an encoded CCS).
pub const MAX_CRED_LEN: usize = 192;
/// Longest EAD (all items of one message, encoded).
pub const MAX_EAD_LEN: usize = 64;
/// Most cipher suites accepted in SUITES_I.
pub const MAX_SUITES: usize = 8;
/// Longest PLAINTEXT_2 / PLAINTEXT_3: a connection identifier, ID_CRED by
/// value, a 64-byte signature and the EAD, each with its CBOR head.
pub const MAX_PLAINTEXT_LEN: usize =
    (1 + MAX_CONN_ID_LEN) + (2 + MAX_CRED_LEN) + (2 + 64) + MAX_EAD_LEN;
/// Longest EDHOC message sent or accepted (message_2 with the longest
/// plaintext: `bstr(G_Y || CIPHERTEXT_2)`).
pub const MAX_MESSAGE_LEN: usize = 3 + 32 + MAX_PLAINTEXT_LEN;

/// Why an EDHOC message was refused or could not be made.
#[non_exhaustive]
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdhocError {
    /// Not the CBOR sequence RFC 9528 §5 describes (or truncated).
    Malformed,
    /// An input or a field is longer than the fixed limits allow.
    TooLarge,
    /// The message is not the one this state expects (e.g. message_2 to an
    /// initiator that is done).
    UnexpectedMessage,
    /// The method in message_1 is not one this responder accepts.
    UnsupportedMethod,
    /// The selected cipher suite is not supported, or a suite the initiator
    /// preferred is (RFC 9528 §6.3): answer with an error message listing
    /// ours ([`error_message`]).
    WrongSelectedSuite,
    /// The ID_CRED names no credential the [`Policy`] trusts.
    UnknownCredential,
    /// An ID_CRED of a kind this implementation does not read (x5t, x5chain, ...).
    UnsupportedCredential,
    /// A credential is not a CCS with an EC2 P-256 COSE_Key.
    InvalidCredential,
    /// A public key that is not a point on P-256.
    InvalidPublicKey,
    /// MAC_2 / MAC_3 or the signature did not verify.
    AuthenticationFailed,
    /// CIPHERTEXT_3 / CIPHERTEXT_4 did not decrypt (AEAD tag).
    DecryptFailed,
    /// A critical EAD item the [`Policy`] does not understand (RFC 9528 §3.8).
    UnknownCriticalEad,
    /// C_R equals C_I (RFC 9528 §3.3.3): the responder refuses to send
    /// such a message_2 and the initiator refuses to accept one.
    ConnIdReused,
    /// The handshake was discontinued after an earlier processing failure
    /// (RFC 9528 §5.2.3, §5.3.3, §5.4.3, §5.5.3): every later call gets
    /// this; start a new handshake.
    Aborted,
    /// The peer sent an error message (RFC 9528 §6) with this ERR_CODE; read
    /// it with [`ErrorMessage::parse`].
    PeerError(i32),
}

impl EdhocError {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            EdhocError::Malformed => "EDHOC: malformed message",
            EdhocError::TooLarge => "EDHOC: message or field too large",
            EdhocError::UnexpectedMessage => "EDHOC: message not expected in this state",
            EdhocError::UnsupportedMethod => "EDHOC: unsupported method",
            EdhocError::WrongSelectedSuite => "EDHOC: wrong selected cipher suite",
            EdhocError::UnknownCredential => "EDHOC: unknown credential",
            EdhocError::UnsupportedCredential => "EDHOC: unsupported credential type",
            EdhocError::InvalidCredential => "EDHOC: invalid credential",
            EdhocError::InvalidPublicKey => "EDHOC: invalid public key",
            EdhocError::AuthenticationFailed => "EDHOC: MAC or signature did not verify",
            EdhocError::DecryptFailed => "EDHOC: ciphertext did not decrypt",
            EdhocError::UnknownCriticalEad => "EDHOC: unknown critical EAD item",
            EdhocError::ConnIdReused => "EDHOC: C_R equals C_I",
            EdhocError::Aborted => "EDHOC: handshake discontinued after an earlier failure",
            EdhocError::PeerError(_) => "EDHOC: the peer sent an error message",
        }
    }
}
