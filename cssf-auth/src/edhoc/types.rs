//! Connection identifiers, credentials, identities, EAD items, the caller's
//! policy, the completed session and its exports, and the error message.

use minicbor::Decoder;
use p256::{PublicKey, SecretKey};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::cbor;
use crate::Error;

use super::crypto::{self, Prk, ELEM_LEN};
use super::wire::{is_int_byte, malformed, Writer};
use super::{EdhocError, MAX_CONN_ID_LEN, MAX_CRED_LEN, MAX_KID_LEN, MAX_SUITES};

fn edhoc(e: EdhocError) -> Error {
    Error::Edhoc(e)
}

/// A connection identifier C_I / C_R (RFC 9528 §3.3), in its byte form:
/// the one this side chose is the peer's OSCORE Sender ID (Appendix A.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConnId {
    bytes: [u8; MAX_CONN_ID_LEN],
    len: u8,
}

impl ConnId {
    /// An identifier from its bytes (0 to [`MAX_CONN_ID_LEN`]); a single
    /// byte 0x00..=0x17 or 0x20..=0x37 goes on the wire as the integer it
    /// encodes (-24..=23).
    pub fn new(b: &[u8]) -> Result<Self, Error> {
        let mut bytes = [0; MAX_CONN_ID_LEN];
        bytes
            .get_mut(..b.len())
            .ok_or(edhoc(EdhocError::TooLarge))?
            .copy_from_slice(b);
        Ok(Self {
            bytes,
            len: b.len() as u8,
        })
    }

    /// The identifier's bytes (the OSCORE Sender / Recipient ID).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        match self.as_bytes() {
            [b] if is_int_byte(*b) => w.raw(&[*b]),
            b => w.bstr(b),
        }
    }

    /// The CBOR encoding, as it appears in the messages and MAC contexts.
    pub(crate) fn encoded(&self) -> ([u8; MAX_CONN_ID_LEN + 1], usize) {
        let mut o = [0u8; MAX_CONN_ID_LEN + 1];
        let mut w = Writer::new(&mut o);
        // cannot fail: MAX_CONN_ID_LEN < 24, so the head is one byte
        let _ = self.write(&mut w);
        let n = w.len();
        (o, n)
    }
}

/// A credential (RFC 9528 §3.5.2): an encoded CWT Claims Set (RFC 8392)
/// whose `cnf` claim holds a `COSE_Key` of type EC2 on P-256, with its kid.
/// The bytes are CRED_x exactly as they enter the transcript.
#[derive(Clone)]
pub struct Credential {
    bytes: [u8; MAX_CRED_LEN],
    len: u16,
    kid: [u8; MAX_KID_LEN],
    kid_len: u8,
    public: PublicKey,
}

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credential")
            .field("kid", &self.kid())
            .field("len", &self.len)
            .finish()
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// The labels met so far in one CBOR map, to refuse duplicates. A map of
/// more than 16 entries is refused as well (a CCS of RFC 9529's shape has
/// 2, a COSE_Key 5).
struct Labels<'a> {
    seen: heapless::Vec<cbor::Label<'a>, 16>,
}

impl<'a> Labels<'a> {
    fn new() -> Self {
        Self {
            seen: heapless::Vec::new(),
        }
    }

    fn insert(&mut self, label: cbor::Label<'a>) -> Result<(), Error> {
        if self.seen.contains(&label) {
            return Err(edhoc(EdhocError::InvalidCredential));
        }
        self.seen
            .push(label)
            .map_err(|_| edhoc(EdhocError::InvalidCredential))
    }
}

impl Credential {
    /// Reads a CCS: `{ ... 8: {1: COSE_Key} ... }` with the COSE_Key
    /// `{1: 2, 2: kid, -1: 1, -2: x, -3: y}` (other labels ignored). A
    /// label that appears twice in either map is refused
    /// ([`EdhocError::InvalidCredential`]): parsers differ on which one
    /// wins, so a policy reading the CCS with another parser could approve
    /// a different key than the one EDHOC authenticates.
    pub fn from_ccs(ccs: &[u8]) -> Result<Self, Error> {
        let bad = || edhoc(EdhocError::InvalidCredential);
        let mut bytes = [0; MAX_CRED_LEN];
        bytes
            .get_mut(..ccs.len())
            .ok_or(edhoc(EdhocError::TooLarge))?
            .copy_from_slice(ccs);
        cbor::check_single_item(ccs, 8).map_err(|_| bad())?;
        let mut d = Decoder::new(ccs);
        let n = cbor::map(&mut d).map_err(|_| bad())?;
        let mut key = None;
        let mut seen = Labels::new();
        for _ in 0..n {
            let label = cbor::label(&mut d).map_err(|_| bad())?;
            seen.insert(label)?;
            match label {
                cbor::Label::Int(8) => {
                    if cbor::map(&mut d).map_err(|_| bad())? != 1 || cbor::int(&mut d) != Ok(1) {
                        return Err(bad());
                    }
                    key = Some(Self::cose_key(&mut d)?);
                }
                _ => cbor::skip(&mut d, 8).map_err(|_| bad())?,
            }
        }
        let (kid, kid_len, public) = key.ok_or_else(bad)?;
        Ok(Self {
            bytes,
            len: ccs.len() as u16,
            kid,
            kid_len,
            public,
        })
    }

    fn cose_key(d: &mut Decoder<'_>) -> Result<([u8; MAX_KID_LEN], u8, PublicKey), Error> {
        let bad = || edhoc(EdhocError::InvalidCredential);
        let n = cbor::map(d).map_err(|_| bad())?;
        let (mut kty, mut crv, mut x, mut y) = (None, None, None, None);
        let mut kid = [0u8; MAX_KID_LEN];
        let mut kid_len = 0u8;
        let mut seen = Labels::new();
        for _ in 0..n {
            let label = cbor::int(d).map_err(|_| bad())?;
            seen.insert(cbor::Label::Int(label))?;
            match label {
                1 => kty = Some(cbor::int(d).map_err(|_| bad())?),
                2 => {
                    let k = cbor::bytes(d).map_err(|_| bad())?;
                    kid.get_mut(..k.len()).ok_or_else(bad)?.copy_from_slice(k);
                    kid_len = k.len() as u8;
                }
                -1 => crv = Some(cbor::int(d).map_err(|_| bad())?),
                -2 => x = Some(cbor::bytes(d).map_err(|_| bad())?),
                -3 => y = Some(cbor::bytes(d).map_err(|_| bad())?),
                _ => cbor::skip(d, 8).map_err(|_| bad())?,
            }
        }
        if kty != Some(2) || crv != Some(1) {
            return Err(bad());
        }
        let (x, y) = (x.ok_or_else(bad)?, y.ok_or_else(bad)?);
        if x.len() != ELEM_LEN || y.len() != ELEM_LEN {
            return Err(bad());
        }
        let mut sec1 = [0u8; 1 + 2 * ELEM_LEN];
        sec1[0] = 0x04;
        sec1.get_mut(1..1 + ELEM_LEN)
            .ok_or_else(bad)?
            .copy_from_slice(x);
        sec1.get_mut(1 + ELEM_LEN..)
            .ok_or_else(bad)?
            .copy_from_slice(y);
        let public =
            PublicKey::from_sec1_bytes(&sec1).map_err(|_| edhoc(EdhocError::InvalidPublicKey))?;
        Ok((kid, kid_len, public))
    }

    /// Makes the CCS for a private key, in the shape RFC 9529 uses:
    /// `{2: subject, 8: {1: {1: 2, 2: kid, -1: 1, -2: x, -3: y}}}`.
    pub fn ccs_for(secret: &[u8; 32], kid: &[u8], subject: &str) -> Result<Self, Error> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let sk = SecretKey::from_slice(secret).map_err(|_| edhoc(EdhocError::InvalidPublicKey))?;
        let ep = sk.public_key().to_encoded_point(false);
        let (x, y) = (
            ep.x().ok_or(edhoc(EdhocError::InvalidPublicKey))?,
            ep.y().ok_or(edhoc(EdhocError::InvalidPublicKey))?,
        );
        if kid.len() > MAX_KID_LEN {
            return Err(edhoc(EdhocError::TooLarge));
        }
        let mut buf = [0u8; MAX_CRED_LEN];
        let mut w = Writer::new(&mut buf);
        w.raw(&[0xa2, 0x02])?;
        w.head(3, subject.len() as u64)?;
        w.raw(subject.as_bytes())?;
        w.raw(&[0x08, 0xa1, 0x01, 0xa5, 0x01, 0x02, 0x02])?;
        w.bstr(kid)?;
        w.raw(&[0x20, 0x01, 0x21])?;
        w.bstr(x)?;
        w.raw(&[0x22])?;
        w.bstr(y)?;
        let n = w.len();
        Self::from_ccs(buf.get(..n).unwrap_or(&[]))
    }

    /// CRED_x: the encoded CCS.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The COSE_Key's kid (empty if it has none).
    pub fn kid(&self) -> &[u8] {
        self.kid.get(..usize::from(self.kid_len)).unwrap_or(&[])
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

/// How ID_CRED_x names this side's credential (RFC 9528 §3.5.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CredentialTransfer {
    /// `{4: kid}` (sent as the kid alone): the peer must already have it.
    ByReference,
    /// `{14: CCS}` (kccs): the credential itself.
    ByValue,
}

/// The peer's ID_CRED_x as received (RFC 9528 §3.5.3).
///
/// A kid (1 to [`MAX_KID_LEN`] bytes; an empty or longer one is refused
/// before the policy sees it) is a hint, not an identity: kids are not
/// unique (RFC 9528 §3.5.3), several credentials may share one, and the
/// handshake authenticates the credential the policy returns, not the kid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IdCred<'a> {
    /// By reference: the kid.
    Kid(&'a [u8]),
    /// By value: the encoded CCS (`kccs`); it is trusted only if the policy
    /// says so.
    Ccs(&'a [u8]),
}

impl IdCred<'_> {
    /// ID_CRED_x as the map that enters MAC_2 / MAC_3.
    pub(crate) fn encode_map(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(out);
        match self {
            IdCred::Kid(k) => {
                w.raw(&[0xa1, 0x04])?;
                w.bstr(k)?;
            }
            IdCred::Ccs(c) => {
                w.raw(&[0xa1, 0x0e])?;
                w.raw(c)?;
            }
        }
        Ok(w.len())
    }

    /// ID_CRED_x as sent in a plaintext (a lone kid is sent compact).
    pub(crate) fn write_compact(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        match self {
            IdCred::Kid([b]) if is_int_byte(*b) => w.raw(&[*b]),
            IdCred::Kid(k) => w.bstr(k),
            IdCred::Ccs(c) => {
                w.raw(&[0xa1, 0x0e])?;
                w.raw(c)
            }
        }
    }
}

/// One External Authorization Data item (RFC 9528 §3.8): a label
/// (negative: critical) and an optional value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EadItem<'a> {
    /// `ead_label`; the item is critical when it is negative.
    pub label: i32,
    /// `ead_value`, if any.
    pub value: Option<&'a [u8]>,
}

impl EadItem<'_> {
    /// A critical item must be understood, or the message is refused.
    pub fn is_critical(&self) -> bool {
        self.label < 0
    }
}

/// Which EDHOC message an EAD item came in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EadMessage {
    /// EAD_1 (never authenticated).
    Message1,
    /// EAD_2 (after MAC_2 verified).
    Message2,
    /// EAD_3 (after MAC_3 verified).
    Message3,
    /// EAD_4 (after message_4 decrypted).
    Message4,
}

/// The caller's trust decisions.
///
/// Both methods run on data that is **not authenticated yet**: whatever
/// they do must be undone, or be harmless, if the handshake then fails.
pub trait Policy {
    /// The credential the peer's ID_CRED names, if it is trusted; `None`
    /// refuses the handshake ([`EdhocError::UnknownCredential`]).
    ///
    /// Called before MAC_2 / MAC_3 or the signature is verified (the
    /// credential is what they are verified with): `id` comes from anyone
    /// who can send a message. A trust-on-first-use policy must not record
    /// a credential sent by value here; record it once the handshake
    /// completed ([`super::Session::peer_credential`]). Only one
    /// credential is tried: kids are not unique (RFC 9528 §3.5.3), so a
    /// policy holding several credentials under one kid must pick one (the
    /// handshake fails if it is not the peer's).
    fn credential(&mut self, id: IdCred<'_>) -> Option<Credential>;

    /// Shown each received EAD item (except padding, label 0) in order;
    /// returns whether the item was understood. A critical item that was
    /// not understood refuses the message. The default understands
    /// nothing.
    ///
    /// EAD_2 and EAD_3 are shown after MAC_2 / MAC_3 verified, EAD_4 after
    /// message_4 decrypted; EAD_1 is never authenticated (message_1 is
    /// not protected: anyone can send one). Items are shown one by one, not
    /// atomically: a later critical item that is not understood refuses
    /// the message after earlier items were shown, so act on an item only
    /// once the message is accepted (the call that processed it returned
    /// `Ok`), and for EAD_1 not before the handshake completes.
    fn ead(&mut self, message: EadMessage, item: EadItem<'_>) -> bool {
        let _ = (message, item);
        false
    }
}

/// A list of trusted credentials is a policy: kids are looked up in it, a
/// credential sent by value is trusted if it is in the list. No EAD item is
/// understood. Only the first credential with the kid is tried (kids are
/// not unique, RFC 9528 §3.5.3): give each trusted credential its own kid.
impl Policy for [Credential] {
    fn credential(&mut self, id: IdCred<'_>) -> Option<Credential> {
        self.iter()
            .find(|c| match id {
                IdCred::Kid(k) => c.kid() == k,
                IdCred::Ccs(b) => c.as_bytes() == b,
            })
            .cloned()
    }
}

/// Hands the EAD items to the policy; refuses an unknown critical one.
/// Whether an error ends the handshake (RFC 9528 §5.2.3, 5.3.3, 5.4.3:
/// after a processing failure the session is discontinued); a message the
/// current state does not take at all (a replay to a finished side)
/// changes nothing. One rule for both roles.
pub(crate) fn discontinues(e: &Error) -> bool {
    *e != Error::Edhoc(EdhocError::UnexpectedMessage)
}

pub(crate) fn process_ead<P: Policy + ?Sized>(
    policy: &mut P,
    msg: EadMessage,
    ead: &[u8],
) -> Result<(), Error> {
    for item in super::wire::EadItems::new(ead) {
        let item = item?;
        if item.label == 0 {
            continue;
        }
        if !policy.ead(msg, item) && item.is_critical() {
            return Err(edhoc(EdhocError::UnknownCriticalEad));
        }
    }
    Ok(())
}

/// Resolves an ID_CRED through the policy.
pub(crate) fn resolve<P: Policy + ?Sized>(
    policy: &mut P,
    id: IdCred<'_>,
) -> Result<Credential, Error> {
    if let IdCred::Ccs(c) = id {
        // by value: it must at least be a credential we can use
        Credential::from_ccs(c)?;
    }
    let cred = policy
        .credential(id)
        .ok_or(edhoc(EdhocError::UnknownCredential))?;
    if let IdCred::Ccs(c) = id {
        if cred.as_bytes() != c {
            return Err(edhoc(EdhocError::UnknownCredential));
        }
    }
    Ok(cred)
}

/// This side's credential, its private key (zeroized on drop) and how the
/// credential is sent.
#[derive(Clone)]
pub struct Identity {
    pub(crate) cred: Credential,
    pub(crate) secret: SecretKey,
    pub(crate) transfer: CredentialTransfer,
}

impl Identity {
    /// Binds a credential to its private key; the key must be the
    /// credential's ([`EdhocError::InvalidCredential`] otherwise).
    pub fn new(
        cred: Credential,
        secret: &[u8; 32],
        transfer: CredentialTransfer,
    ) -> Result<Self, Error> {
        let secret =
            SecretKey::from_slice(secret).map_err(|_| edhoc(EdhocError::InvalidCredential))?;
        if secret.public_key() != cred.public {
            return Err(edhoc(EdhocError::InvalidCredential));
        }
        if transfer == CredentialTransfer::ByReference && cred.kid().is_empty() {
            return Err(edhoc(EdhocError::InvalidCredential));
        }
        Ok(Self {
            cred,
            secret,
            transfer,
        })
    }

    /// The credential.
    pub fn credential(&self) -> &Credential {
        &self.cred
    }

    pub(crate) fn id_cred(&self) -> IdCred<'_> {
        match self.transfer {
            CredentialTransfer::ByReference => IdCred::Kid(self.cred.kid()),
            CredentialTransfer::ByValue => IdCred::Ccs(self.cred.as_bytes()),
        }
    }
}

/// The authentication method (RFC 9528 §3.2): who signs and who uses a
/// static Diffie-Hellman key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Method {
    /// 0: both sign (ES256).
    SignatureSignature = 0,
    /// 1: the initiator signs, the responder uses static DH.
    SignatureStatic = 1,
    /// 2: the initiator uses static DH, the responder signs.
    StaticSignature = 2,
    /// 3: both use static DH (the lightest: 8-byte MACs, no signatures).
    StaticStatic = 3,
}

impl Method {
    pub(crate) fn from_int(m: i64) -> Option<Self> {
        match m {
            0 => Some(Method::SignatureSignature),
            1 => Some(Method::SignatureStatic),
            2 => Some(Method::StaticSignature),
            3 => Some(Method::StaticStatic),
            _ => None,
        }
    }

    pub(crate) fn initiator_signs(self) -> bool {
        matches!(self, Method::SignatureSignature | Method::SignatureStatic)
    }

    pub(crate) fn responder_signs(self) -> bool {
        matches!(self, Method::SignatureSignature | Method::StaticSignature)
    }
}

/// A completed handshake: PRK_out, the exporter and the authenticated peer.
#[derive(Clone)]
pub struct Session {
    pub(crate) prk_out: Prk,
    pub(crate) prk_exporter: Prk,
    /// The connection identifier the peer chose (our OSCORE Sender ID).
    pub(crate) peer_id: ConnId,
    /// The one we chose (our OSCORE Recipient ID).
    pub(crate) own_id: ConnId,
    pub(crate) peer: Credential,
}

impl Session {
    /// PRK_out (RFC 9528 §4.1.3), the handshake's output secret.
    pub fn prk_out(&self) -> &[u8; 32] {
        &self.prk_out.0
    }

    /// The peer's credential, authenticated by the handshake.
    pub fn peer_credential(&self) -> &Credential {
        &self.peer
    }

    /// EDHOC_Exporter(label, context, length) (RFC 9528 §4.2.1) into `out`.
    pub fn exporter(&self, label: u32, context: &[u8], out: &mut [u8]) -> Result<(), Error> {
        crypto::kdf(&self.prk_exporter, u64::from(label), &[context], out)
    }

    /// The OSCORE security context inputs (RFC 9528 Appendix A.1) for
    /// AES-CCM-16-64-128 and HKDF SHA-256: a 16-byte Master Secret, an
    /// 8-byte Master Salt, and the Sender / Recipient IDs from the
    /// connection identifiers.
    pub fn oscore(&self) -> Result<OscoreContext, Error> {
        let mut ctx = OscoreContext {
            master_secret: [0; 16],
            master_salt: [0; 8],
            sender_id: self.peer_id,
            recipient_id: self.own_id,
        };
        self.exporter(0, &[], &mut ctx.master_secret)?;
        self.exporter(1, &[], &mut ctx.master_salt)?;
        Ok(ctx)
    }
}

/// What RFC 9528 Appendix A.1 exports for OSCORE (RFC 8613 §3.2): feed it
/// to an OSCORE implementation (e.g. cssf-coap's `oscore` feature).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct OscoreContext {
    master_secret: [u8; 16],
    master_salt: [u8; 8],
    #[zeroize(skip)]
    sender_id: ConnId,
    #[zeroize(skip)]
    recipient_id: ConnId,
}

impl OscoreContext {
    /// The Master Secret (EDHOC_Exporter label 0, 16 bytes).
    pub fn master_secret(&self) -> &[u8; 16] {
        &self.master_secret
    }
    /// The Master Salt (EDHOC_Exporter label 1, 8 bytes).
    pub fn master_salt(&self) -> &[u8; 8] {
        &self.master_salt
    }
    /// This side's Sender ID: the connection identifier the peer chose.
    pub fn sender_id(&self) -> &[u8] {
        self.sender_id.as_bytes()
    }
    /// This side's Recipient ID: the connection identifier it chose.
    pub fn recipient_id(&self) -> &[u8] {
        self.recipient_id.as_bytes()
    }
}

impl PartialEq for OscoreContext {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.master_secret.ct_eq(&other.master_secret))
            && self.master_salt == other.master_salt
            && self.sender_id == other.sender_id
            && self.recipient_id == other.recipient_id
    }
}

/// An EDHOC error message (RFC 9528 §6), parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorMessage<'a> {
    /// ERR_CODE 1, with its diagnostic text.
    Unspecified(&'a str),
    /// ERR_CODE 2: the responder's suites, in its order of preference
    /// (`count` of `suites` used).
    WrongSelectedSuite {
        /// SUITES_R.
        suites: [i32; MAX_SUITES],
        /// How many of `suites` are set.
        count: usize,
    },
    /// ERR_CODE 3: the credential was not recognised.
    UnknownCredential,
    /// Any other ERR_CODE (its ERR_INFO skipped).
    Other(i32),
}

impl<'a> ErrorMessage<'a> {
    /// Parses `(ERR_CODE: int, ERR_INFO: any)`.
    pub fn parse(m: &'a [u8]) -> Result<Self, Error> {
        let mut d = Decoder::new(m);
        let code = cbor::int_strict(&mut d).map_err(|_| malformed())?;
        let code = i32::try_from(code).map_err(|_| malformed())?;
        let r = match code {
            1 => ErrorMessage::Unspecified(cbor::text(&mut d).map_err(|_| malformed())?),
            2 => {
                let mut suites = [0i32; MAX_SUITES];
                let mut count = 0;
                let mut one = |d: &mut Decoder<'_>, count: &mut usize| -> Result<(), Error> {
                    let s = cbor::int_strict(d).map_err(|_| malformed())?;
                    *suites.get_mut(*count).ok_or_else(malformed)? =
                        i32::try_from(s).map_err(|_| malformed())?;
                    *count += 1;
                    Ok(())
                };
                if cbor::peek_major(&d) == Some(4) {
                    let n = cbor::array_strict(&mut d).map_err(|_| malformed())?;
                    // One suite is sent as an int, never as [suite].
                    if n < 2 {
                        return Err(malformed());
                    }
                    for _ in 0..n {
                        one(&mut d, &mut count)?;
                    }
                } else {
                    one(&mut d, &mut count)?;
                }
                ErrorMessage::WrongSelectedSuite { suites, count }
            }
            3 => {
                if d.input().get(d.position()) != Some(&0xf5) {
                    return Err(malformed());
                }
                d.set_position(d.position() + 1);
                ErrorMessage::UnknownCredential
            }
            0 => return Err(malformed()),
            c => {
                cbor::skip(&mut d, 8).map_err(|_| malformed())?;
                ErrorMessage::Other(c)
            }
        };
        if d.position() != m.len() {
            return Err(malformed());
        }
        Ok(r)
    }

    /// The ERR_CODE.
    pub fn code(&self) -> i32 {
        match self {
            ErrorMessage::Unspecified(_) => 1,
            ErrorMessage::WrongSelectedSuite { .. } => 2,
            ErrorMessage::UnknownCredential => 3,
            ErrorMessage::Other(c) => *c,
        }
    }
}

/// Writes the error message (RFC 9528 §6) that answers `err`: ERR_CODE 2
/// with our [`super::SUPPORTED_SUITES`] for a wrong selected suite, 3 for an
/// unknown credential, otherwise 1 with a short diagnostic. Returns the
/// length written.
pub fn error_message(err: &Error, out: &mut [u8]) -> Result<usize, Error> {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    match err {
        Error::Edhoc(EdhocError::WrongSelectedSuite) => {
            w.int(2)?;
            super::wire::write_suites(&mut w, &super::SUPPORTED_SUITES)?;
        }
        Error::Edhoc(EdhocError::UnknownCredential) => {
            w.int(3)?;
            w.raw(&[0xf5])?;
        }
        _ => {
            w.int(1)?;
            let text = "error";
            w.head(3, text.len() as u64)?;
            w.raw(text.as_bytes())?;
        }
    }
    let n = w.len();
    out.get_mut(..n)
        .ok_or(Error::BufferTooSmall { needed: n })?
        .copy_from_slice(buf.get(..n).unwrap_or(&[]));
    Ok(n)
}

pub(crate) fn check_suites(suites: &[i64]) -> Result<(), Error> {
    let supported = |s: &i64| super::SUPPORTED_SUITES.iter().any(|x| i64::from(*x) == *s);
    let (selected, before) = suites.split_last().ok_or(edhoc(EdhocError::Malformed))?;
    if !supported(selected) || before.iter().any(supported) {
        return Err(edhoc(EdhocError::WrongSelectedSuite));
    }
    let _ = MAX_SUITES;
    Ok(())
}
