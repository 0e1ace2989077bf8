//! A token issuer (the AS side, feature `issuer`): mints CWTs as
//! COSE_Sign1 (ES256), COSE_Mac0 (HMAC 256/64, 256/256) or COSE_Encrypt0
//! (AES-CCM-16-64-128, ChaCha20/Poly1305) into a caller buffer, no heap.
//! For tests, examples and small backends.
//!
//! ```
//! use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
//! use cssf_auth::{Algorithm, CoseKey, KeyEntry, Limits, PopKey, Bytes};
//!
//! let as_key = CoseKey::hmac(Algorithm::Hmac256, &[7; 32])?;
//! let pop = PopKey::Symmetric { kid: Some(Bytes::from_slice(b"client-1")?), k: Bytes::from_slice(&[9; 16])? };
//! let mut aif = [0u8; 32];
//! let n = cssf_auth::Aif::emit(&[("/temp", 1)], &mut aif)?;
//! let claims = ClaimsSet { aud: Some("rs1"), exi: Some(3600), cti: Some(b"t1"),
//!     scope: Some(ScopeOut::AifBytes(&aif[..n])), cnf: Some(CnfOut::Key(&pop)), ..Default::default() };
//! let mut payload = [0u8; 128];
//! let plen = claims.emit(&mut payload)?;
//! let mut token = [0u8; 256];
//! let tlen = mac0(&as_key, Some(b"as"), &payload[..plen], &mut token)?;
//!
//! let keys = [KeyEntry::with_kid(b"as", as_key)?];
//! let c = cssf_auth::cwt::verify(&mut token[..tlen], &keys[..], Limits::default())?;
//! assert_eq!(c.aud, Some(cssf_auth::cwt::Audience::One("rs1")));
//! # Ok::<(), cssf_auth::Error>(())
//! ```

use minicbor::encode::write::Cursor;
use minicbor::Encoder;

use crate::cose::encrypt0::{enc_structure, encrypt_detached, MAX_ENC_STRUCTURE};
use crate::cose::mac0::{mac_structure_hmac, tag_len};
use crate::cose::sign1::sign_es256;
use crate::cose::{Algorithm, CoseKey, TAG_ENCRYPT0, TAG_MAC0, TAG_SIGN1};
use crate::cwt;
use crate::pop::{PopKey, CNF_COSE_KEY, CNF_ENCRYPTED_COSE_KEY, CNF_KID};
use crate::Error;

/// How the scope is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeOut<'a> {
    /// AIF CBOR wrapped in a byte string (as the `cwt` Python library does).
    AifBytes(&'a [u8]),
    /// AIF CBOR embedded directly as an array.
    AifArray(&'a [u8]),
    /// A text scope.
    Text(&'a str),
}

/// How the PoP key is written.
#[derive(Debug, Clone, Copy)]
pub enum CnfOut<'a> {
    /// A plain COSE_Key.
    Key(&'a PopKey),
    /// An Encrypted_COSE_Key, encrypted with `key` (an AEAD key of the RS).
    Encrypted {
        /// The PoP key.
        pop: &'a PopKey,
        /// The RS's AEAD key.
        key: &'a CoseKey,
        /// Its kid, put in the Encrypt0's unprotected header.
        kid: Option<&'a [u8]>,
        /// The IV (13 bytes for AES-CCM, 12 for ChaCha20/Poly1305).
        iv: &'a [u8],
    },
    /// Only a kid.
    Kid(&'a [u8]),
    /// An OSCORE_Input_Material (RFC 9203 §3.2.1), for the OSCORE profile
    /// (feature `oscore-profile`).
    #[cfg(feature = "oscore-profile")]
    Osc(&'a crate::oscore_profile::OscoreInputMaterial),
}

/// The claims to mint.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimsSet<'a> {
    /// iss.
    pub iss: Option<&'a str>,
    /// sub.
    pub sub: Option<&'a str>,
    /// aud.
    pub aud: Option<&'a str>,
    /// exp.
    pub exp: Option<i64>,
    /// nbf.
    pub nbf: Option<i64>,
    /// iat.
    pub iat: Option<i64>,
    /// cti.
    pub cti: Option<&'a [u8]>,
    /// cnf.
    pub cnf: Option<CnfOut<'a>>,
    /// scope.
    pub scope: Option<ScopeOut<'a>>,
    /// exi.
    pub exi: Option<u64>,
}

fn short(
    needed: usize,
) -> impl Fn(minicbor::encode::Error<minicbor::encode::write::EndOfSlice>) -> Error {
    move |_| Error::BufferTooSmall { needed }
}

fn raw(
    e: &mut Encoder<Cursor<&mut [u8]>>,
    b: &[u8],
) -> Result<(), minicbor::encode::Error<minicbor::encode::write::EndOfSlice>> {
    minicbor::encode::Write::write_all(e.writer_mut(), b).map_err(minicbor::encode::Error::write)
}

impl ClaimsSet<'_> {
    /// Emits the claims map into `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut cnf_buf = [0u8; 256];
        let cnf_len = match &self.cnf {
            Some(CnfOut::Encrypted { pop, key, kid, iv }) => {
                let mut k = [0u8; 160];
                let klen = pop.emit_cose_key(&mut k)?;
                encrypt0(key, *kid, iv, k.get(..klen).unwrap_or(&[]), &mut cnf_buf)?
            }
            _ => 0,
        };
        let needed = out.len() + 1;
        let mut e = Encoder::new(Cursor::new(&mut *out));
        let n = [
            self.iss.is_some(),
            self.sub.is_some(),
            self.aud.is_some(),
            self.exp.is_some(),
            self.nbf.is_some(),
            self.iat.is_some(),
            self.cti.is_some(),
            self.cnf.is_some(),
            self.scope.is_some(),
            self.exi.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let r: Result<(), minicbor::encode::Error<_>> = (|| {
            e.map(n as u64)?;
            if let Some(v) = self.iss {
                e.i64(cwt::ISS)?.str(v)?;
            }
            if let Some(v) = self.sub {
                e.i64(cwt::SUB)?.str(v)?;
            }
            if let Some(v) = self.aud {
                e.i64(cwt::AUD)?.str(v)?;
            }
            if let Some(v) = self.exp {
                e.i64(cwt::EXP)?.i64(v)?;
            }
            if let Some(v) = self.nbf {
                e.i64(cwt::NBF)?.i64(v)?;
            }
            if let Some(v) = self.iat {
                e.i64(cwt::IAT)?.i64(v)?;
            }
            if let Some(v) = self.cti {
                e.i64(cwt::CTI)?.bytes(v)?;
            }
            if let Some(c) = &self.cnf {
                e.i64(cwt::CNF)?.map(1)?;
                match c {
                    CnfOut::Key(k) => {
                        e.i64(CNF_COSE_KEY)?;
                        let mut kb = [0u8; 160];
                        let kl = k
                            .emit_cose_key(&mut kb)
                            .map_err(|_| minicbor::encode::Error::message("cose key"))?;
                        raw(&mut e, kb.get(..kl).unwrap_or(&[]))?;
                    }
                    CnfOut::Encrypted { .. } => {
                        e.i64(CNF_ENCRYPTED_COSE_KEY)?;
                        raw(&mut e, cnf_buf.get(..cnf_len).unwrap_or(&[]))?;
                    }
                    CnfOut::Kid(k) => {
                        e.i64(CNF_KID)?.bytes(k)?;
                    }
                    #[cfg(feature = "oscore-profile")]
                    CnfOut::Osc(m) => {
                        e.i64(crate::oscore_profile::CNF_OSC)?;
                        let mut mb = [0u8; crate::oscore_profile::MAX_MATERIAL_LEN];
                        let ml = m
                            .emit(&mut mb)
                            .map_err(|_| minicbor::encode::Error::message("osc"))?;
                        raw(&mut e, mb.get(..ml).unwrap_or(&[]))?;
                    }
                }
            }
            if let Some(s) = &self.scope {
                e.i64(cwt::SCOPE)?;
                match s {
                    ScopeOut::AifBytes(b) => {
                        e.bytes(b)?;
                    }
                    ScopeOut::AifArray(b) => raw(&mut e, b)?,
                    ScopeOut::Text(t) => {
                        e.str(t)?;
                    }
                }
            }
            if let Some(v) = self.exi {
                e.i64(cwt::EXI)?.u64(v)?;
            }
            Ok(())
        })();
        r.map_err(short(needed))?;
        Ok(e.into_writer().position())
    }
}

fn protected_alg(alg: Algorithm, buf: &mut [u8; 8]) -> &[u8] {
    let mut e = Encoder::new(Cursor::new(&mut buf[..]));
    let _ = e.map(1).and_then(|e| e.u8(1)).and_then(|e| e.i64(alg.id()));
    let n = e.into_writer().position();
    buf.get(..n).unwrap_or(&[])
}

fn header(
    e: &mut Encoder<Cursor<&mut [u8]>>,
    tag: u64,
    items: u64,
    protected: &[u8],
    kid: Option<&[u8]>,
    iv: Option<&[u8]>,
) -> Result<(), minicbor::encode::Error<minicbor::encode::write::EndOfSlice>> {
    e.tag(minicbor::data::Tag::new(tag))?
        .array(items)?
        .bytes(protected)?;
    e.map(u64::from(kid.is_some()) + u64::from(iv.is_some()))?;
    if let Some(k) = kid {
        e.u8(4)?.bytes(k)?;
    }
    if let Some(v) = iv {
        e.u8(5)?.bytes(v)?;
    }
    Ok(())
}

/// Mints a tagged COSE_Sign1 over `payload` with an ES256 signing key.
pub fn sign1(
    key: &CoseKey,
    kid: Option<&[u8]>,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let CoseKey::Es256Signing(sk) = key else {
        return Err(Error::UnknownKey);
    };
    let mut pb = [0u8; 8];
    let protected = protected_alg(Algorithm::Es256, &mut pb);
    let sig = sign_es256(sk, protected, &[], payload)?;
    let needed = payload.len() + 64 + 32 + kid.map_or(0, <[u8]>::len);
    let mut e = Encoder::new(Cursor::new(&mut *out));
    header(&mut e, TAG_SIGN1, 4, protected, kid, None)
        .and_then(|_| e.bytes(payload).map(|_| ()))
        .and_then(|_| e.bytes(&sig).map(|_| ()))
        .map_err(short(needed))?;
    Ok(e.into_writer().position())
}

/// Mints a tagged COSE_Mac0 over `payload` with an HMAC key (alg 4 or 5).
pub fn mac0(
    key: &CoseKey,
    kid: Option<&[u8]>,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let (alg, k) = match key {
        CoseKey::Hmac256_64(k) => (Algorithm::Hmac256_64, k),
        CoseKey::Hmac256(k) => (Algorithm::Hmac256, k),
        _ => return Err(Error::UnknownKey),
    };
    let mut pb = [0u8; 8];
    let protected = protected_alg(alg, &mut pb);
    let full = mac_structure_hmac(k.as_bytes(), protected, &[], payload)?;
    let tag = full.get(..tag_len(alg).unwrap_or(32)).unwrap_or(&[]);
    let needed = payload.len() + 32 + 32 + kid.map_or(0, <[u8]>::len);
    let mut e = Encoder::new(Cursor::new(&mut *out));
    header(&mut e, TAG_MAC0, 4, protected, kid, None)
        .and_then(|_| e.bytes(payload).map(|_| ()))
        .and_then(|_| e.bytes(tag).map(|_| ()))
        .map_err(short(needed))?;
    Ok(e.into_writer().position())
}

/// Mints a tagged COSE_Encrypt0 of `payload` with an AEAD key; `iv` goes in
/// the unprotected header (draw it from a `CryptoRng`, never reuse it).
pub fn encrypt0(
    key: &CoseKey,
    kid: Option<&[u8]>,
    iv: &[u8],
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let alg = key.algorithm();
    let tlen = match alg {
        Algorithm::AesCcm16_64_128 => 8,
        Algorithm::ChaCha20Poly1305 => 16,
        _ => return Err(Error::UnknownKey),
    };
    let mut pb = [0u8; 8];
    let protected = protected_alg(alg, &mut pb);
    let mut aad = [0u8; MAX_ENC_STRUCTURE];
    let alen = enc_structure(protected, &[], &mut aad)?;
    let clen = payload.len() + tlen;
    let needed = clen + 32 + iv.len() + kid.map_or(0, <[u8]>::len);
    let mut e = Encoder::new(Cursor::new(&mut *out));
    header(&mut e, TAG_ENCRYPT0, 3, protected, kid, Some(iv))
        .and_then(|_| e.bytes_len(clen as u64).map(|_| ()))
        .map_err(short(needed))?;
    let start = e.into_writer().position();
    let region = out
        .get_mut(start..start + clen)
        .ok_or(Error::BufferTooSmall { needed })?;
    region
        .get_mut(..payload.len())
        .ok_or(Error::BufferTooSmall { needed })?
        .copy_from_slice(payload);
    encrypt_detached(
        alg,
        key,
        iv,
        aad.get(..alen).unwrap_or(&[]),
        region,
        payload.len(),
    )?;
    Ok(start + clen)
}

/// Draws a fresh IV for `alg` from `rng` (13 bytes for AES-CCM, 12 for
/// ChaCha20/Poly1305); returns the buffer and the used length.
pub fn random_iv<R: rand_core::RngCore + rand_core::CryptoRng>(
    alg: Algorithm,
    rng: &mut R,
) -> ([u8; 13], usize) {
    let n = if alg == Algorithm::ChaCha20Poly1305 {
        12
    } else {
        13
    };
    let mut iv = [0u8; 13];
    rng.fill_bytes(iv.get_mut(..n).unwrap_or(&mut []));
    (iv, n)
}
