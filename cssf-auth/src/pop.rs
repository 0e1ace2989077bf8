//! Proof-of-possession keys in the `cnf` claim (RFC 8747 §3.1): a COSE_Key
//! (symmetric kty 4 with `k` and `kid`, or EC2 P-256 kty 2 with `x`, `y`),
//! an Encrypted_COSE_Key (a COSE_Encrypt0 wrapping a COSE_Key, decrypted
//! with a key of the resource server) or a bare `kid`.

use minicbor::data::Type;
use minicbor::Decoder;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::bytes::Bytes;
use crate::cbor::{self, Label};
use crate::cose::encrypt0::{decrypt_detached, nonce, MAX_ENC_STRUCTURE};
use crate::cose::key::{MAX_KID_LEN, MAX_SYMMETRIC_KEY_LEN};
use crate::cose::{KeyResolver, Limits, Message, MessageKind};
use crate::Error;

/// `cnf` member `COSE_Key`.
pub const CNF_COSE_KEY: i64 = 1;
/// `cnf` member `Encrypted_COSE_Key`.
pub const CNF_ENCRYPTED_COSE_KEY: i64 = 2;
/// `cnf` member `kid`.
pub const CNF_KID: i64 = 3;

/// Largest Encrypted_COSE_Key accepted.
pub const MAX_ENCRYPTED_KEY_LEN: usize = 256;

/// A key identifier as stored.
pub type Kid = Bytes<MAX_KID_LEN>;

/// A proof-of-possession key, owned (zeroized on drop). Non-exhaustive:
/// features add kinds (`oscore-profile`: OSCORE input material).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
#[non_exhaustive]
pub enum PopKey {
    /// Symmetric key (kty 4): the PSK of the DTLS profile.
    Symmetric {
        /// Key identifier (the DTLS psk_identity), if given.
        #[zeroize(skip)]
        kid: Option<Kid>,
        /// Key bytes.
        k: Bytes<MAX_SYMMETRIC_KEY_LEN>,
    },
    /// EC2 P-256 public key (kty 2, crv 1).
    Ec2 {
        /// Key identifier, if given.
        #[zeroize(skip)]
        kid: Option<Kid>,
        /// x coordinate.
        x: [u8; 32],
        /// y coordinate.
        y: [u8; 32],
    },
    /// Only a key identifier; the key is known to both sides already.
    KidOnly(#[zeroize(skip)] Kid),
    /// OSCORE_Input_Material (`cnf` `osc`, RFC 9203 §3.2.1): its `id` is
    /// the kid. Never a DTLS PSK.
    #[cfg(feature = "oscore-profile")]
    Oscore(crate::oscore_profile::OscoreInputMaterial),
}

impl core::fmt::Debug for PopKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PopKey::Symmetric { kid, k } => {
                write!(f, "Symmetric {{ kid: {kid:?}, k: {} bytes }}", k.len())
            }
            PopKey::Ec2 { kid, .. } => write!(f, "Ec2 {{ kid: {kid:?} }}"),
            PopKey::KidOnly(kid) => write!(f, "KidOnly({kid:?})"),
            #[cfg(feature = "oscore-profile")]
            PopKey::Oscore(m) => write!(f, "Oscore({m:?})"),
        }
    }
}

impl PopKey {
    /// The key identifier, if any.
    pub fn kid(&self) -> Option<&[u8]> {
        match self {
            PopKey::Symmetric { kid, .. } | PopKey::Ec2 { kid, .. } => {
                kid.as_ref().map(|k| k.as_slice())
            }
            PopKey::KidOnly(k) => Some(k.as_slice()),
            #[cfg(feature = "oscore-profile")]
            PopKey::Oscore(m) => Some(m.id.as_slice()),
        }
    }

    /// The symmetric key bytes, if this is a symmetric key.
    pub fn symmetric(&self) -> Option<&[u8]> {
        match self {
            PopKey::Symmetric { k, .. } => Some(k.as_slice()),
            _ => None,
        }
    }

    /// Parses a COSE_Key map (RFC 9052 §7).
    pub fn parse_cose_key(bytes: &[u8], max_depth: usize) -> Result<Self, Error> {
        cbor::check_single_item(bytes, max_depth).map_err(|_| Error::InvalidPopKey)?;
        let mut d = Decoder::new(bytes);
        Self::read_cose_key(&mut d, max_depth)
    }

    fn read_cose_key(d: &mut Decoder<'_>, max_depth: usize) -> Result<Self, Error> {
        fn bad<E>(_: E) -> Error {
            Error::InvalidPopKey
        }
        let n = cbor::map(d).map_err(bad)?;
        let (mut kty, mut kid, mut crv) = (None, None, None);
        let (mut k, mut x, mut y) = (None, None, None);
        let mut seen = 0u32;
        for _ in 0..n {
            let l = cbor::label(d).map_err(bad)?;
            let bit = match l {
                Label::Int(i @ -3..=4) => 1u32 << (i + 3),
                _ => 0,
            };
            if seen & bit != 0 {
                return Err(Error::InvalidPopKey);
            }
            seen |= bit;
            match l {
                Label::Int(1) => kty = Some(cbor::int(d).map_err(bad)?),
                Label::Int(2) => kid = Some(Kid::from_slice(cbor::bytes(d).map_err(bad)?)?),
                Label::Int(-1) => match d.datatype().map_err(bad)? {
                    Type::Bytes => k = Some(cbor::bytes(d).map_err(bad)?),
                    _ => crv = Some(cbor::int(d).map_err(bad)?),
                },
                Label::Int(-2) => x = Some(cbor::bytes(d).map_err(bad)?),
                Label::Int(-3) => y = Some(cbor::bytes(d).map_err(bad)?),
                _ => cbor::skip(d, max_depth)?,
            }
        }
        match (kty, k, crv, x, y) {
            (Some(4), Some(k), None, None, None) if !k.is_empty() => Ok(PopKey::Symmetric {
                kid,
                k: Bytes::from_slice(k).map_err(|_| Error::InvalidPopKey)?,
            }),
            (Some(2), None, Some(1), Some(x), Some(y)) => {
                let x: [u8; 32] = x.try_into().map_err(bad)?;
                let y: [u8; 32] = y.try_into().map_err(bad)?;
                // Must be a point on the curve.
                crate::cose::CoseKey::es256_from_xy(&x, &y)?;
                Ok(PopKey::Ec2 { kid, x, y })
            }
            _ => Err(Error::InvalidPopKey),
        }
    }

    /// Emits this key as a COSE_Key map.
    pub fn emit_cose_key(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut e = minicbor::Encoder::new(minicbor::encode::write::Cursor::new(&mut *out));
        let r: Result<(), minicbor::encode::Error<_>> = (|| {
            match self {
                PopKey::Symmetric { kid, k } => {
                    e.map(2 + u64::from(kid.is_some()))?.i8(1)?.u8(4)?;
                    if let Some(kid) = kid {
                        e.i8(2)?.bytes(kid.as_slice())?;
                    }
                    e.i8(-1)?.bytes(k.as_slice())?;
                }
                PopKey::Ec2 { kid, x, y } => {
                    e.map(4 + u64::from(kid.is_some()))?.i8(1)?.u8(2)?;
                    if let Some(kid) = kid {
                        e.i8(2)?.bytes(kid.as_slice())?;
                    }
                    e.i8(-1)?.u8(1)?.i8(-2)?.bytes(x)?.i8(-3)?.bytes(y)?;
                }
                PopKey::KidOnly(_) => return Err(minicbor::encode::Error::message("kid only")),
                #[cfg(feature = "oscore-profile")]
                PopKey::Oscore(_) => return Err(minicbor::encode::Error::message("osc")),
            }
            Ok(())
        })();
        r.map_err(|_| match self {
            PopKey::KidOnly(_) => Error::InvalidPopKey,
            #[cfg(feature = "oscore-profile")]
            PopKey::Oscore(_) => Error::InvalidPopKey,
            _ => Error::BufferTooSmall { needed: 128 },
        })?;
        Ok(e.into_writer().position())
    }
}

/// The bytes of the next item (skipped with the depth limit).
fn item<'a>(d: &mut Decoder<'a>, max_depth: usize) -> Result<&'a [u8], Error> {
    let start = d.position();
    cbor::skip(d, max_depth)?;
    let all: &'a [u8] = d.input();
    all.get(start..d.position()).ok_or(Error::Malformed)
}

/// The `cnf` claim as found in a token: a zero-copy view, the key is only
/// decoded (or decrypted) by [`Cnf::resolve`]. Non-exhaustive: features
/// add forms (`oscore-profile`: `osc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cnf<'a> {
    /// A plain COSE_Key: the serialized map (well-formed, not yet decoded).
    Key(&'a [u8]),
    /// An Encrypted_COSE_Key: the COSE_Encrypt0 bytes.
    Encrypted(&'a [u8]),
    /// A bare kid.
    Kid(&'a [u8]),
    /// An OSCORE_Input_Material (RFC 9203 §3.2.1): the map's bytes.
    #[cfg(feature = "oscore-profile")]
    Osc(&'a [u8]),
}

impl<'a> Cnf<'a> {
    /// Reads the `cnf` map at the decoder's position.
    pub(crate) fn read(d: &mut Decoder<'a>, max_depth: usize) -> Result<Self, Error> {
        let bad = |_| Error::InvalidPopKey;
        if cbor::map(d).map_err(bad)? != 1 {
            return Err(Error::InvalidPopKey);
        }
        match cbor::int(d).map_err(bad)? {
            CNF_COSE_KEY => {
                if cbor::peek_major(d) != Some(5) {
                    return Err(Error::InvalidPopKey);
                }
                Ok(Cnf::Key(item(d, max_depth)?))
            }
            CNF_ENCRYPTED_COSE_KEY => Ok(Cnf::Encrypted(item(d, max_depth)?)),
            CNF_KID => Ok(Cnf::Kid(cbor::bytes(d).map_err(bad)?)),
            #[cfg(feature = "oscore-profile")]
            crate::oscore_profile::CNF_OSC => {
                if cbor::peek_major(d) != Some(5) {
                    return Err(Error::InvalidPopKey);
                }
                Ok(Cnf::Osc(item(d, max_depth)?))
            }
            _ => Err(Error::InvalidPopKey),
        }
    }

    /// The proof-of-possession key, decrypting an Encrypted_COSE_Key with a
    /// key from `keys` (found by the Encrypt0's protected alg and kid).
    pub fn resolve<K: KeyResolver + ?Sized>(
        &self,
        keys: &K,
        limits: &Limits,
    ) -> Result<PopKey, Error> {
        match self {
            Cnf::Key(k) => PopKey::parse_cose_key(k, limits.max_depth),
            Cnf::Kid(kid) => Ok(PopKey::KidOnly(Kid::from_slice(kid)?)),
            #[cfg(feature = "oscore-profile")]
            Cnf::Osc(m) => Ok(PopKey::Oscore(
                crate::oscore_profile::OscoreInputMaterial::parse(m, limits.max_depth)?,
            )),
            Cnf::Encrypted(bytes) => {
                let msg = Message::parse(bytes, limits).map_err(|_| Error::InvalidPopKey)?;
                let Message::Encrypt0(m) = msg else {
                    return Err(Error::InvalidPopKey);
                };
                let alg = m.header.alg.ok_or(Error::MissingAlg)?;
                if alg.message_kind() != MessageKind::Encrypt0 {
                    return Err(Error::InvalidPopKey);
                }
                let key = keys.resolve(m.header.kid, alg).ok_or(Error::UnknownKey)?;
                let mut n = [0u8; 13];
                let nlen = nonce(&m.header, alg, key, &mut n)?;
                let mut aad = [0u8; MAX_ENC_STRUCTURE];
                let alen = crate::cose::encrypt0::enc_structure(m.protected, &[], &mut aad)?;
                let mut buf = [0u8; MAX_ENCRYPTED_KEY_LEN];
                let region = buf.get_mut(..m.ciphertext.len()).ok_or(Error::TooLarge)?;
                region.copy_from_slice(m.ciphertext);
                let plen = decrypt_detached(
                    alg,
                    key,
                    n.get(..nlen).unwrap_or(&[]),
                    aad.get(..alen).unwrap_or(&[]),
                    region,
                )?;
                let r = PopKey::parse_cose_key(region.get(..plen).unwrap_or(&[]), limits.max_depth);
                buf.zeroize();
                r
            }
        }
    }
}

/// The x and y coordinates of a P-256 public key, as a COSE EC2 key and
/// [`Proof::PublicKey`](crate::authorizer::Proof::PublicKey) carry them.
pub fn coordinates(key: &p256::PublicKey) -> Option<([u8; 32], [u8; 32])> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = key.to_encoded_point(false);
    let x = point.x()?.as_slice().try_into().ok()?;
    let y = point.y()?.as_slice().try_into().ok()?;
    Some((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_cose_key_round_trip() {
        let k = PopKey::Symmetric {
            kid: Some(Kid::from_slice(b"kid1").unwrap()),
            k: Bytes::from_slice(&[7; 16]).unwrap(),
        };
        let mut buf = [0u8; 64];
        let n = k.emit_cose_key(&mut buf).unwrap();
        assert_eq!(PopKey::parse_cose_key(&buf[..n], 4).unwrap(), k);
        assert_eq!(k.kid(), Some(&b"kid1"[..]));
        // RFC 8747 §3.3 style: {1: 4, 2: h'...', -1: h'...'}; kty missing -> refused
        assert_eq!(
            PopKey::parse_cose_key(&[0xa1, 0x20, 0x41, 0x01], 4),
            Err(Error::InvalidPopKey)
        );
    }
}
