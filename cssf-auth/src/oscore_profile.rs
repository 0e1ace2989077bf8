//! The OSCORE profile of ACE (RFC 9203), resource-server side (feature
//! `oscore-profile`).
//!
//! - §3.2.1: the `osc` member of `cnf` (label 4) carries an
//!   OSCORE_Input_Material: [`OscoreInputMaterial::parse`] reads it (`id`
//!   and `ms` required; HKDF SHA-256 and AES-CCM-16-64-128 only, the
//!   algorithms of cssf-coap's OSCORE; `version` 1 only; unknown
//!   parameters refused; every field bounded).
//! - §4.1 / §4.2: the client POSTs `application/ace+cbor`
//!   `{1: access_token, 40: nonce1, 43: ace_client_recipientid}` to
//!   `/authz-info`; [`AuthzInfo::post_oscore`](crate::AuthzInfo::post_oscore)
//!   verifies and stores the token, draws `nonce2` (8 bytes) from the
//!   caller's RNG, picks `ace_server_recipientid` different from the
//!   client's and from every Recipient ID in use, and answers 2.01 with
//!   `{42: nonce2, 44: ace_server_recipientid}`.
//! - §4.3: the inputs of the OSCORE context derivation are handed to the
//!   caller as an [`OscoreContextInput`]: Master Secret `ms`, Master Salt
//!   the concatenation of the CBOR byte strings `salt` (empty if absent),
//!   `nonce1` and `nonce2`, ID Context `contextId` (if present), Sender ID
//!   `ace_client_recipientid` and Recipient ID `ace_server_recipientid`
//!   (the client's side has them the other way round).
//! - §4.4 / §5: the context is bound to the token (by the token's `id`):
//!   requests verified under it get the token's scope only
//!   ([`AuthzInfo::oscore_token`](crate::AuthzInfo::oscore_token), or the
//!   `Authorizer` with `Proof::Oscore`); when the token expires, is
//!   evicted or is replaced by a token with another key, the binding goes
//!   and [`AuthEvent::OscoreContextRemoved`](crate::AuthEvent) tells the
//!   caller to drop the context.

use minicbor::Decoder;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::bytes::Bytes;
use crate::cbor::{self, Label};
use crate::cose::key::MAX_KID_LEN;
use crate::pop::Kid;
use crate::Error;

/// `cnf` member `osc` (RFC 9203 §3.2.1, §9.5).
pub const CNF_OSC: i64 = 4;

/// OSCORE_Input_Material labels (RFC 9203 §3.2.1, Figure 4).
pub mod label {
    /// `id`, bstr.
    pub const ID: i64 = 0;
    /// `version`, uint.
    pub const VERSION: i64 = 1;
    /// `ms`, bstr: the Master Secret.
    pub const MS: i64 = 2;
    /// `hkdf`, int or tstr.
    pub const HKDF: i64 = 3;
    /// `alg`, int or tstr.
    pub const ALG: i64 = 4;
    /// `salt`, bstr.
    pub const SALT: i64 = 5;
    /// `contextId`, bstr.
    pub const CONTEXT_ID: i64 = 6;
}

/// ACE parameters of the `/authz-info` exchange (RFC 9203 §4.1, §4.2;
/// RFC 9200 §8.9 for `access_token`).
pub mod param {
    /// `access_token`.
    pub const ACCESS_TOKEN: u64 = 1;
    /// `nonce1`, client to RS.
    pub const NONCE1: u64 = 40;
    /// `nonce2`, RS to client.
    pub const NONCE2: u64 = 42;
    /// `ace_client_recipientid`, client to RS.
    pub const ACE_CLIENT_RECIPIENTID: u64 = 43;
    /// `ace_server_recipientid`, RS to client.
    pub const ACE_SERVER_RECIPIENTID: u64 = 44;
}

/// HKDF SHA-256 (COSE algorithm -10), the default and the only one taken.
pub const HKDF_SHA256: i64 = -10;
/// AES-CCM-16-64-128 (COSE algorithm 10), the default and the only one taken.
pub const AES_CCM_16_64_128: i64 = 10;

/// Longest Master Secret taken.
pub const MAX_MASTER_SECRET: usize = 32;
/// Longest `salt` taken.
pub const MAX_SALT: usize = 32;
/// Longest `contextId` taken (cssf-coap's `MAX_ID_CONTEXT_LEN`).
pub const MAX_CONTEXT_ID: usize = 32;
/// Longest Sender / Recipient ID (RFC 8613 §3.3 with AES-CCM-16-64-128:
/// nonce length 13 - 6).
pub const MAX_RECIPIENT_ID: usize = 7;
/// Longest `nonce1` taken (RFC 9203 recommends 8 bytes).
pub const MAX_NONCE: usize = 16;
/// Length of the `nonce2` this RS draws.
pub const NONCE2_LEN: usize = 8;
/// Longest Master Salt: `salt`, `nonce1` and `nonce2` as CBOR byte strings.
pub const MAX_MASTER_SALT: usize = 2 + MAX_SALT + 1 + MAX_NONCE + 1 + NONCE2_LEN;
/// Longest 2.01 payload [`AuthzInfo::post_oscore`](crate::AuthzInfo::post_oscore)
/// writes: `{42: nonce2, 44: ace_server_recipientid}`.
pub const MAX_RESPONSE_LEN: usize = 1 + 2 + 1 + NONCE2_LEN + 2 + 1 + MAX_RECIPIENT_ID;
/// Longest OSCORE_Input_Material [`OscoreInputMaterial::emit`] writes.
pub const MAX_MATERIAL_LEN: usize =
    1 + 1 + 2 + MAX_KID_LEN + 1 + 2 + MAX_MASTER_SECRET + 1 + 2 + MAX_SALT + 1 + 2 + MAX_CONTEXT_ID;
/// `nonce1` values remembered per binding: a POST repeating one of them is
/// refused as a replay.
pub const NONCE_HISTORY: usize = 4;

/// Why an OSCORE-profile token or `/authz-info` request was refused.
#[non_exhaustive]
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OscoreError {
    /// The OSCORE_Input_Material has no `ms`.
    MissingMasterSecret,
    /// The OSCORE_Input_Material has no `id`.
    MissingId,
    /// `hkdf` is not HKDF SHA-256 (-10).
    UnsupportedHkdf,
    /// `alg` is not AES-CCM-16-64-128 (10).
    UnsupportedAlg,
    /// `version` is not 1.
    UnsupportedVersion,
    /// A field is longer than this RS takes (or empty where it must not be).
    FieldLength,
    /// A parameter appears twice.
    DuplicateParameter,
    /// A parameter this RS does not know.
    UnknownParameter,
    /// The `/authz-info` payload is not a CBOR map of `access_token`,
    /// `nonce1` and `ace_client_recipientid` (each once, byte strings).
    MalformedRequest,
    /// The `/authz-info` payload lacks `nonce1` or `ace_client_recipientid`.
    MissingParameter,
    /// The token's `cnf` is not `osc` (posted with nonces), or is `osc`
    /// but was posted as a bare token (without nonces).
    WrongProfile,
    /// The same token was posted again with a `nonce1` already used with
    /// it: a replayed POST.
    NonceReplay,
    /// No Recipient ID of 1 or 2 bytes is free.
    NoRecipientId,
}

impl OscoreError {
    /// A short description.
    pub fn describe(&self) -> &'static str {
        match self {
            OscoreError::MissingMasterSecret => "OSCORE input material without ms",
            OscoreError::MissingId => "OSCORE input material without id",
            OscoreError::UnsupportedHkdf => "unsupported OSCORE hkdf",
            OscoreError::UnsupportedAlg => "unsupported OSCORE alg",
            OscoreError::UnsupportedVersion => "unsupported OSCORE version",
            OscoreError::FieldLength => "OSCORE field of unsupported length",
            OscoreError::DuplicateParameter => "duplicate OSCORE parameter",
            OscoreError::UnknownParameter => "unknown OSCORE parameter",
            OscoreError::MalformedRequest => "malformed OSCORE profile authz-info request",
            OscoreError::MissingParameter => "nonce1 or ace_client_recipientid missing",
            OscoreError::WrongProfile => "token cnf does not match the OSCORE profile request",
            OscoreError::NonceReplay => "token posted again with a used nonce1",
            OscoreError::NoRecipientId => "no free OSCORE Recipient ID",
        }
    }

    /// The CoAP response code: 5.03 for [`OscoreError::NoRecipientId`],
    /// 4.00 otherwise.
    pub fn code(&self) -> u8 {
        match self {
            OscoreError::NoRecipientId => 0xA3,
            _ => 0x80,
        }
    }
}

impl From<OscoreError> for Error {
    fn from(e: OscoreError) -> Self {
        Error::Oscore(e)
    }
}

/// An OSCORE_Input_Material (RFC 9203 §3.2.1), owned; the Master Secret
/// is zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct OscoreInputMaterial {
    /// `id`: identifies the material, and the token (it is the kid the
    /// token is stored under).
    #[zeroize(skip)]
    pub id: Kid,
    /// `ms`: the Master Secret.
    pub ms: Bytes<MAX_MASTER_SECRET>,
    /// `salt`, if present.
    #[zeroize(skip)]
    pub salt: Option<Bytes<MAX_SALT>>,
    /// `contextId`, if present: the ID Context.
    #[zeroize(skip)]
    pub context_id: Option<Bytes<MAX_CONTEXT_ID>>,
}

impl core::fmt::Debug for OscoreInputMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OscoreInputMaterial")
            .field("id", &self.id)
            .field("ms", &self.ms.len())
            .field("salt", &self.salt)
            .field("context_id", &self.context_id)
            .finish()
    }
}

fn bad<E>(_: E) -> Error {
    Error::Oscore(OscoreError::MalformedRequest)
}

fn bounded<const N: usize>(b: &[u8], allow_empty: bool) -> Result<Bytes<N>, Error> {
    if b.is_empty() && !allow_empty {
        return Err(OscoreError::FieldLength.into());
    }
    Bytes::from_slice(b).map_err(|_| OscoreError::FieldLength.into())
}

fn algorithm(d: &mut Decoder<'_>, wanted: i64, err: OscoreError) -> Result<(), Error> {
    // A text name (the COSE registry's) is not one we take.
    match cbor::peek_major(d) {
        Some(0 | 1) if cbor::int(d).map_err(|_| Error::Malformed)? == wanted => Ok(()),
        _ => Err(err.into()),
    }
}

impl OscoreInputMaterial {
    /// Parses an OSCORE_Input_Material map.
    pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Self, Error> {
        cbor::check_single_item(bytes, max_depth)?;
        let mut d = Decoder::new(bytes);
        let n = cbor::map(&mut d)?;
        let (mut id, mut ms, mut salt, mut context_id) = (None, None, None, None);
        let mut seen = 0u32;
        for _ in 0..n {
            let l = match cbor::label(&mut d)? {
                Label::Int(i @ 0..=6) => i,
                _ => return Err(OscoreError::UnknownParameter.into()),
            };
            let bit = 1u32 << l;
            if seen & bit != 0 {
                return Err(OscoreError::DuplicateParameter.into());
            }
            seen |= bit;
            match l {
                label::ID => id = Some(bounded::<MAX_KID_LEN>(cbor::bytes(&mut d)?, false)?),
                label::VERSION => {
                    if cbor::uint(&mut d)? != 1 {
                        return Err(OscoreError::UnsupportedVersion.into());
                    }
                }
                label::MS => ms = Some(bounded(cbor::bytes(&mut d)?, false)?),
                label::HKDF => algorithm(&mut d, HKDF_SHA256, OscoreError::UnsupportedHkdf)?,
                label::ALG => algorithm(&mut d, AES_CCM_16_64_128, OscoreError::UnsupportedAlg)?,
                label::SALT => salt = Some(bounded(cbor::bytes(&mut d)?, true)?),
                _ => context_id = Some(bounded(cbor::bytes(&mut d)?, true)?),
            }
        }
        Ok(OscoreInputMaterial {
            id: id.ok_or(OscoreError::MissingId)?,
            ms: ms.ok_or(OscoreError::MissingMasterSecret)?,
            salt,
            context_id,
        })
    }

    /// Writes the map with `id`, `ms` and, when present, `salt` and
    /// `contextId` (the default `hkdf` and `alg` are left out, RFC 9203
    /// §3.2.1), at most [`MAX_MATERIAL_LEN`] bytes.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let n = 2 + u64::from(self.salt.is_some()) + u64::from(self.context_id.is_some());
        let mut e = minicbor::Encoder::new(minicbor::encode::write::Cursor::new(&mut *out));
        let r: Result<(), minicbor::encode::Error<_>> = (|| {
            e.map(n)?
                .i64(label::ID)?
                .bytes(self.id.as_slice())?
                .i64(label::MS)?
                .bytes(self.ms.as_slice())?;
            if let Some(s) = &self.salt {
                e.i64(label::SALT)?.bytes(s.as_slice())?;
            }
            if let Some(c) = &self.context_id {
                e.i64(label::CONTEXT_ID)?.bytes(c.as_slice())?;
            }
            Ok(())
        })();
        r.map_err(|_| Error::BufferTooSmall {
            needed: MAX_MATERIAL_LEN,
        })?;
        Ok(e.into_writer().position())
    }

    /// SHA-256 of the Master Secret: what tells two materials' keys apart.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.ms.as_slice()).into()
    }
}

/// A view of the `/authz-info` request payload of RFC 9203 §4.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzInfoRequest<'a> {
    /// Where the `access_token` byte string's content lies in the payload
    /// (so it can be decrypted in place).
    pub token: core::ops::Range<usize>,
    /// `nonce1`.
    pub nonce1: &'a [u8],
    /// `ace_client_recipientid`: the client's Recipient ID, the RS's
    /// Sender ID.
    pub client_recipient_id: &'a [u8],
}

impl<'a> AuthzInfoRequest<'a> {
    /// Parses `{1: bstr, 40: bstr, 43: bstr}` (any order; nothing else).
    /// `nonce1` must be 1 to [`MAX_NONCE`] bytes and the Recipient ID at
    /// most [`MAX_RECIPIENT_ID`].
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let mut d = Decoder::new(payload);
        let n = cbor::map(&mut d).map_err(bad)?;
        let (mut token, mut nonce1, mut id1) = (None, None, None);
        for _ in 0..n {
            let key = cbor::uint(&mut d).map_err(bad)?;
            let start = d.position();
            let value = cbor::bytes(&mut d).map_err(bad)?;
            let slot = match key {
                param::ACCESS_TOKEN => {
                    let end = d.position();
                    let begin = end.checked_sub(value.len()).ok_or(Error::Malformed)?;
                    if begin < start || token.replace(begin..end).is_some() {
                        return Err(OscoreError::DuplicateParameter.into());
                    }
                    continue;
                }
                param::NONCE1 => &mut nonce1,
                param::ACE_CLIENT_RECIPIENTID => &mut id1,
                _ => return Err(OscoreError::UnknownParameter.into()),
            };
            if slot.replace(value).is_some() {
                return Err(OscoreError::DuplicateParameter.into());
            }
        }
        if d.position() != payload.len() {
            return Err(OscoreError::MalformedRequest.into());
        }
        let token = token.ok_or(OscoreError::MissingParameter)?;
        let nonce1: &[u8] = nonce1.ok_or(OscoreError::MissingParameter)?;
        let id1: &[u8] = id1.ok_or(OscoreError::MissingParameter)?;
        if nonce1.is_empty() || nonce1.len() > MAX_NONCE || id1.len() > MAX_RECIPIENT_ID {
            return Err(OscoreError::FieldLength.into());
        }
        Ok(AuthzInfoRequest {
            token,
            nonce1,
            client_recipient_id: id1,
        })
    }
}

/// Writes the 2.01 payload `{42: nonce2, 44: ace_server_recipientid}`.
pub fn emit_response(
    nonce2: &[u8],
    server_recipient_id: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut e = minicbor::Encoder::new(minicbor::encode::write::Cursor::new(&mut *out));
    let r: Result<(), minicbor::encode::Error<_>> = (|| {
        e.map(2)?
            .u64(param::NONCE2)?
            .bytes(nonce2)?
            .u64(param::ACE_SERVER_RECIPIENTID)?
            .bytes(server_recipient_id)?;
        Ok(())
    })();
    r.map_err(|_| Error::BufferTooSmall {
        needed: 1 + 2 + 1 + nonce2.len() + 2 + 1 + server_recipient_id.len(),
    })?;
    Ok(e.into_writer().position())
}

/// The Master Salt of RFC 9203 §4.3: the CBOR byte strings `salt` (empty
/// when the material has none), `nonce1` and `nonce2`, concatenated.
pub fn master_salt(
    salt: &[u8],
    nonce1: &[u8],
    nonce2: &[u8],
) -> Result<Bytes<MAX_MASTER_SALT>, Error> {
    let mut buf = [0u8; MAX_MASTER_SALT];
    let mut pos = 0usize;
    for part in [salt, nonce1, nonce2] {
        let mut h = [0u8; 9];
        let head = cbor::head(2, part.len() as u64, &mut h);
        for chunk in [head, part] {
            let end = pos.checked_add(chunk.len()).ok_or(Error::TooLarge)?;
            buf.get_mut(pos..end)
                .ok_or(OscoreError::FieldLength)?
                .copy_from_slice(chunk);
            pos = end;
        }
    }
    Bytes::from_slice(buf.get(..pos).unwrap_or(&[]))
}

/// The inputs of the OSCORE security context derivation (RFC 8613 §3.2)
/// for the RS's side, as RFC 9203 §4.3 defines them, with HKDF SHA-256
/// and AES-CCM-16-64-128 (the only ones taken). For cssf-coap:
/// `Params { master_secret, master_salt, id_context, sender_id,
/// recipient_id }`. Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct OscoreContextInput {
    master_secret: Bytes<MAX_MASTER_SECRET>,
    master_salt: Bytes<MAX_MASTER_SALT>,
    #[zeroize(skip)]
    id_context: Option<Bytes<MAX_CONTEXT_ID>>,
    #[zeroize(skip)]
    sender_id: Bytes<MAX_RECIPIENT_ID>,
    #[zeroize(skip)]
    recipient_id: Bytes<MAX_RECIPIENT_ID>,
    #[zeroize(skip)]
    token: Kid,
}

impl core::fmt::Debug for OscoreContextInput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OscoreContextInput")
            .field("id_context", &self.id_context)
            .field("sender_id", &self.sender_id)
            .field("recipient_id", &self.recipient_id)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl OscoreContextInput {
    /// The Master Secret (`ms`).
    pub fn master_secret(&self) -> &[u8] {
        self.master_secret.as_slice()
    }
    /// The Master Salt (see [`master_salt`]).
    pub fn master_salt(&self) -> &[u8] {
        self.master_salt.as_slice()
    }
    /// The ID Context (`contextId`), if the material has one.
    pub fn id_context(&self) -> Option<&[u8]> {
        self.id_context.as_ref().map(|c| c.as_slice())
    }
    /// The RS's Sender ID: `ace_client_recipientid`.
    pub fn sender_id(&self) -> &[u8] {
        self.sender_id.as_slice()
    }
    /// The RS's Recipient ID: `ace_server_recipientid`, which requests
    /// under this context carry as kid.
    pub fn recipient_id(&self) -> &[u8] {
        self.recipient_id.as_slice()
    }
    /// The `id` of the token's material (the kid it is stored under).
    pub fn token_kid(&self) -> &[u8] {
        self.token.as_slice()
    }

    /// SHA-256 over everything that keys the context: what a grant is
    /// bound to.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            self.master_secret.as_slice(),
            self.master_salt.as_slice(),
            self.id_context().unwrap_or(&[]),
            self.sender_id.as_slice(),
            self.recipient_id.as_slice(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

/// The context derivation inputs for the RS side (RFC 9203 §4.3).
pub(crate) fn context_input(
    m: &OscoreInputMaterial,
    nonce1: &[u8],
    nonce2: &[u8],
    client_recipient_id: &[u8],
    server_recipient_id: &[u8],
) -> Result<OscoreContextInput, Error> {
    Ok(OscoreContextInput {
        master_secret: m.ms,
        master_salt: master_salt(
            m.salt.as_ref().map_or(&[][..], |s| s.as_slice()),
            nonce1,
            nonce2,
        )?,
        id_context: m.context_id,
        sender_id: bounded(client_recipient_id, true)?,
        recipient_id: bounded(server_recipient_id, true)?,
        token: m.id,
    })
}

/// The binding of one OSCORE context to the token it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The token's kid (its material's `id`).
    pub(crate) token: Kid,
    /// SHA-256 of the token's Master Secret: a token for the same `id`
    /// with another secret ends the binding.
    pub(crate) ms_digest: [u8; 32],
    /// [`OscoreContextInput::digest`] of the context.
    pub(crate) context: [u8; 32],
    /// The RS's Recipient ID for it.
    pub(crate) recipient_id: Bytes<MAX_RECIPIENT_ID>,
    /// Its ID Context.
    pub(crate) id_context: Option<Bytes<MAX_CONTEXT_ID>>,
    /// Truncated SHA-256 of the last [`NONCE_HISTORY`] `nonce1`s posted
    /// with this token.
    pub(crate) nonces: [Option<[u8; 16]>; NONCE_HISTORY],
}

impl Binding {
    pub(crate) fn matches(&self, recipient_id: &[u8], id_context: Option<&[u8]>) -> bool {
        self.recipient_id.as_slice() == recipient_id
            && self.id_context.as_ref().map(|c| c.as_slice()) == id_context
    }

    pub(crate) fn nonce_seen(&self, n: &[u8; 16]) -> bool {
        self.nonces.iter().flatten().any(|x| x == n)
    }
}

/// Truncated SHA-256 of a `nonce1`.
pub(crate) fn nonce_digest(nonce1: &[u8]) -> [u8; 16] {
    let d: [u8; 32] = Sha256::digest(nonce1).into();
    let mut t = [0u8; 16];
    t.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
    t
}

/// The `n`th candidate Recipient ID: the 256 one-byte IDs, then the
/// two-byte ones.
pub(crate) fn candidate(n: u32) -> Option<Bytes<MAX_RECIPIENT_ID>> {
    let b = n.to_be_bytes();
    match n {
        0..=0xFF => Bytes::from_slice(b.get(3..).unwrap_or(&[])).ok(),
        0x100..=0x100FF => {
            let m = (n - 0x100).to_be_bytes();
            Bytes::from_slice(m.get(2..).unwrap_or(&[])).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn master_salt_is_the_three_byte_strings() {
        // salt h'f9af8383...' (16 B), N1 h'018a278f7faab55a', N2 h'25a8991cd700ac01'
        let salt = [
            0xf9, 0xaf, 0x83, 0x83, 0x68, 0xe3, 0x53, 0xe7, 0x88, 0x88, 0xe1, 0x42, 0x6b, 0xd9,
            0x4e, 0x6f,
        ];
        let n1 = [0x01, 0x8a, 0x27, 0x8f, 0x7f, 0xaa, 0xb5, 0x5a];
        let n2 = [0x25, 0xa8, 0x99, 0x1c, 0xd7, 0x00, 0xac, 0x01];
        let s = master_salt(&salt, &n1, &n2).unwrap();
        let mut want = std::vec![0x50];
        want.extend_from_slice(&salt);
        want.push(0x48);
        want.extend_from_slice(&n1);
        want.push(0x48);
        want.extend_from_slice(&n2);
        assert_eq!(s.as_slice(), &want[..]);
        // no salt: the empty byte string 0x40 first
        assert_eq!(
            master_salt(&[], &[1], &[2]).unwrap().as_slice(),
            &[0x40, 0x41, 1, 0x41, 2]
        );
    }

    #[test]
    fn candidates_are_distinct_and_bounded() {
        assert_eq!(candidate(0).unwrap().as_slice(), &[0]);
        assert_eq!(candidate(0xFF).unwrap().as_slice(), &[0xFF]);
        assert_eq!(candidate(0x100).unwrap().as_slice(), &[0, 0]);
        assert_eq!(candidate(0x100FF).unwrap().as_slice(), &[0xFF, 0xFF]);
        assert!(candidate(0x10100).is_none());
    }

    #[test]
    fn material_rules() {
        // {0: h'01', 2: h'00..0f'}
        let mut ok = std::vec![0xa2, 0x00, 0x41, 0x01, 0x02, 0x50];
        ok.extend_from_slice(&[7; 16]);
        let m = OscoreInputMaterial::parse(&ok, 8).unwrap();
        assert_eq!(m.id.as_slice(), &[1]);
        assert_eq!(m.ms.as_slice(), &[7; 16]);
        let e = |b: &[u8]| OscoreInputMaterial::parse(b, 8).unwrap_err();
        assert_eq!(
            e(&[0xa1, 0x00, 0x41, 0x01]),
            Error::Oscore(OscoreError::MissingMasterSecret)
        );
        assert_eq!(
            e(&[0xa1, 0x02, 0x41, 0x01]),
            Error::Oscore(OscoreError::MissingId)
        );
        assert_eq!(
            e(&[0xa3, 0x00, 0x41, 0x01, 0x02, 0x41, 0x01, 0x03, 0x2a]), // hkdf -11 (HKDF SHA-512)
            Error::Oscore(OscoreError::UnsupportedHkdf)
        );
        assert_eq!(
            e(&[0xa3, 0x00, 0x41, 0x01, 0x02, 0x41, 0x01, 0x04, 0x01]),
            Error::Oscore(OscoreError::UnsupportedAlg)
        );
        assert_eq!(
            e(&[0xa3, 0x00, 0x41, 0x01, 0x02, 0x41, 0x01, 0x01, 0x02]),
            Error::Oscore(OscoreError::UnsupportedVersion)
        );
        assert_eq!(
            e(&[0xa3, 0x00, 0x41, 0x01, 0x00, 0x41, 0x02, 0x02, 0x41, 0x01]),
            Error::Oscore(OscoreError::DuplicateParameter)
        );
        assert_eq!(
            e(&[0xa3, 0x00, 0x41, 0x01, 0x02, 0x41, 0x01, 0x07, 0x41, 0x01]),
            Error::Oscore(OscoreError::UnknownParameter)
        );
        // a 33-byte master secret
        let mut long = std::vec![0xa2, 0x00, 0x41, 0x01, 0x02, 0x58, 33];
        long.extend_from_slice(&[1; 33]);
        assert_eq!(e(&long), Error::Oscore(OscoreError::FieldLength));
        // explicit defaults are fine
        let defaults =
            std::vec![0xa5, 0x00, 0x41, 0x01, 0x01, 0x01, 0x03, 0x29, 0x04, 0x0a, 0x02, 0x41, 0x05];
        assert!(OscoreInputMaterial::parse(&defaults, 8).is_ok());
        // emit / parse round trip, longest fields
        let m = OscoreInputMaterial {
            id: Kid::from_slice(&[3; MAX_KID_LEN]).unwrap(),
            ms: Bytes::from_slice(&[4; MAX_MASTER_SECRET]).unwrap(),
            salt: Some(Bytes::from_slice(&[5; MAX_SALT]).unwrap()),
            context_id: Some(Bytes::from_slice(&[6; MAX_CONTEXT_ID]).unwrap()),
        };
        let mut buf = [0u8; MAX_MATERIAL_LEN];
        let n = m.emit(&mut buf).unwrap();
        assert_eq!(OscoreInputMaterial::parse(&buf[..n], 8).unwrap(), m);
        assert!(m.emit(&mut buf[..n - 1]).is_err());
    }

    #[test]
    fn request_rules() {
        // {1: h'aa', 40: h'0102', 43: h'33'}
        let p = [
            0xa3, 0x01, 0x41, 0xaa, 0x18, 0x28, 0x42, 1, 2, 0x18, 0x2b, 0x41, 0x33,
        ];
        let r = AuthzInfoRequest::parse(&p).unwrap();
        assert_eq!(&p[r.token.clone()], &[0xaa]);
        assert_eq!(r.nonce1, &[1, 2]);
        assert_eq!(r.client_recipient_id, &[0x33]);
        // without nonce1
        let p = [0xa2, 0x01, 0x41, 0xaa, 0x18, 0x2b, 0x41, 0x33];
        assert_eq!(
            AuthzInfoRequest::parse(&p),
            Err(Error::Oscore(OscoreError::MissingParameter))
        );
        // an 8-byte recipient ID
        let p = [
            0xa3, 0x01, 0x41, 0xaa, 0x18, 0x28, 0x41, 1, 0x18, 0x2b, 0x48, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert_eq!(
            AuthzInfoRequest::parse(&p),
            Err(Error::Oscore(OscoreError::FieldLength))
        );
        // trailing bytes
        let p = [0xa1, 0x01, 0x41, 0xaa, 0x00];
        assert_eq!(
            AuthzInfoRequest::parse(&p),
            Err(Error::Oscore(OscoreError::MalformedRequest))
        );
        let mut out = [0u8; MAX_RESPONSE_LEN];
        let n = emit_response(&[9; 8], &[0x11], &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[0xa2, 0x18, 0x2a, 0x48, 9, 9, 9, 9, 9, 9, 9, 9, 0x18, 0x2c, 0x41, 0x11]
        );
        assert!(emit_response(&[9; 8], &[0x11], &mut out[..5]).is_err());
    }
}
