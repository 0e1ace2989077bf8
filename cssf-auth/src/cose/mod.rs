//! COSE (RFC 9052 / RFC 9053): the single-recipient messages a CWT travels
//! in — COSE_Sign1 (§4.2), COSE_Mac0 (§6.2) and COSE_Encrypt0 (§5.2).
//!
//! Parsing is zero-copy over the input; the `*_structure`s that are signed,
//! MACed or used as AEAD associated data are built exactly per RFC 9052
//! §4.4, §6.3 and §5.3, streamed into the hash/MAC (Sign1, Mac0) or built in
//! a bounded stack buffer (Encrypt0). Nothing allocates.

pub mod encrypt0;
pub mod header;
mod hmac_pre;
pub mod key;
pub mod mac0;
pub mod sign1;

pub use encrypt0::CoseEncrypt0;
pub use header::Header;
pub use key::{CoseKey, KeyEntry, KeyResolver, SymmetricKey};
pub use mac0::CoseMac0;
pub use sign1::CoseSign1;

use minicbor::Decoder;

use crate::cbor;
use crate::Error;

/// CBOR tag of COSE_Sign1 (RFC 9052 §2).
pub const TAG_SIGN1: u64 = 18;
/// CBOR tag of COSE_Mac0.
pub const TAG_MAC0: u64 = 17;
/// CBOR tag of COSE_Encrypt0.
pub const TAG_ENCRYPT0: u64 = 16;
/// CBOR tag of a CWT (RFC 8392 §6).
pub const TAG_CWT: u64 = 61;

/// The algorithms this crate implements (RFC 9053 identifiers).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA with SHA-256 on P-256 (-7).
    Es256,
    /// HMAC with SHA-256, tag truncated to 64 bits (4).
    Hmac256_64,
    /// HMAC with SHA-256 (5).
    Hmac256,
    /// AES-CCM, 128-bit key, 64-bit tag, 13-byte nonce (10).
    AesCcm16_64_128,
    /// ChaCha20/Poly1305, 256-bit key, 128-bit tag (24).
    ChaCha20Poly1305,
}

impl Algorithm {
    /// The COSE algorithm identifier.
    pub const fn id(self) -> i64 {
        match self {
            Algorithm::Es256 => -7,
            Algorithm::Hmac256_64 => 4,
            Algorithm::Hmac256 => 5,
            Algorithm::AesCcm16_64_128 => 10,
            Algorithm::ChaCha20Poly1305 => 24,
        }
    }

    /// The algorithm for a COSE identifier, if implemented.
    pub const fn from_id(id: i64) -> Option<Self> {
        match id {
            -7 => Some(Algorithm::Es256),
            4 => Some(Algorithm::Hmac256_64),
            5 => Some(Algorithm::Hmac256),
            10 => Some(Algorithm::AesCcm16_64_128),
            24 => Some(Algorithm::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The message type this algorithm is used with.
    pub const fn message_kind(self) -> MessageKind {
        match self {
            Algorithm::Es256 => MessageKind::Sign1,
            Algorithm::Hmac256_64 | Algorithm::Hmac256 => MessageKind::Mac0,
            Algorithm::AesCcm16_64_128 | Algorithm::ChaCha20Poly1305 => MessageKind::Encrypt0,
        }
    }
}

/// The three single-recipient COSE message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// COSE_Sign1.
    Sign1,
    /// COSE_Mac0.
    Mac0,
    /// COSE_Encrypt0.
    Encrypt0,
}

/// Parse limits for COSE and CWT input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximal CBOR nesting depth (at most [`cbor::MAX_DEPTH`]).
    pub max_depth: usize,
    /// Maximal size of a whole message in bytes.
    pub max_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 8,
            max_len: 1024,
        }
    }
}

/// Nothing may follow the message.
fn end(d: &Decoder<'_>, input: &[u8]) -> Result<(), Error> {
    if d.position() == input.len() {
        Ok(())
    } else {
        Err(Error::Malformed)
    }
}

/// A parsed single-recipient COSE message (not yet verified).
#[derive(Debug, Clone)]
pub enum Message<'a> {
    /// COSE_Sign1.
    Sign1(CoseSign1<'a>),
    /// COSE_Mac0.
    Mac0(CoseMac0<'a>),
    /// COSE_Encrypt0.
    Encrypt0(CoseEncrypt0<'a>),
}

impl<'a> Message<'a> {
    /// Parses a tagged (18, 17, 16, optionally inside CWT tag 61) or untagged
    /// COSE_Sign1 / COSE_Mac0 / COSE_Encrypt0. An untagged four-element array
    /// is a Sign1 or a Mac0 according to its (protected) algorithm. Any other
    /// tag is [`Error::UnsupportedMessage`].
    pub fn parse(input: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        if input.len() > limits.max_len {
            return Err(Error::TooLarge);
        }
        let mut d = Decoder::new(input);
        let mut tag = cbor::opt_tag(&mut d)?;
        if tag == Some(TAG_CWT) {
            tag = cbor::opt_tag(&mut d)?;
        }
        let kind = match tag {
            Some(TAG_SIGN1) => Some(MessageKind::Sign1),
            Some(TAG_MAC0) => Some(MessageKind::Mac0),
            Some(TAG_ENCRYPT0) => Some(MessageKind::Encrypt0),
            Some(_) => return Err(Error::UnsupportedMessage),
            None => None,
        };
        let n = cbor::array(&mut d)?;
        let protected = cbor::bytes(&mut d)?;
        let header = header::parse(protected, &mut d, limits.max_depth)?;
        let alg = header.alg.ok_or(Error::MissingAlg)?;
        let kind = match kind {
            Some(k) if k != alg.message_kind() => return Err(Error::UnsupportedAlgorithm),
            Some(k) => k,
            None => alg.message_kind(),
        };
        let expected = if kind == MessageKind::Encrypt0 { 3 } else { 4 };
        if n != expected {
            return Err(Error::Malformed);
        }
        match kind {
            MessageKind::Sign1 => {
                let payload = cbor::bytes(&mut d)?;
                let signature = cbor::bytes(&mut d)?;
                end(&d, input)?;
                Ok(Message::Sign1(CoseSign1 {
                    protected,
                    header,
                    payload,
                    signature,
                }))
            }
            MessageKind::Mac0 => {
                let payload = cbor::bytes(&mut d)?;
                let tag = cbor::bytes(&mut d)?;
                end(&d, input)?;
                Ok(Message::Mac0(CoseMac0 {
                    protected,
                    header,
                    payload,
                    tag,
                }))
            }
            MessageKind::Encrypt0 => {
                let ciphertext = cbor::bytes(&mut d)?;
                end(&d, input)?;
                let stop = d.position();
                let begin = stop.checked_sub(ciphertext.len()).ok_or(Error::Malformed)?;
                Ok(Message::Encrypt0(CoseEncrypt0 {
                    protected,
                    header,
                    ciphertext,
                    ciphertext_range: begin..stop,
                }))
            }
        }
    }

    /// The parsed headers.
    pub fn header(&self) -> &Header<'a> {
        match self {
            Message::Sign1(m) => &m.header,
            Message::Mac0(m) => &m.header,
            Message::Encrypt0(m) => &m.header,
        }
    }
}
