//! Cipher suite 2 (RFC 9528 §3.6): AES-CCM-16-64-128, SHA-256, P-256 ECDH,
//! ES256, with EDHOC_KDF (§4.1.2) as HKDF-Expand over a CBOR-sequence info.

use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::cbor::head;
use crate::Error;

use super::EdhocError;

/// Output length of SHA-256, the suite's hash.
pub(crate) const HASH_LEN: usize = 32;
/// AES-CCM-16-64-128 key length.
pub(crate) const KEY_LEN: usize = 16;
/// AES-CCM-16-64-128 nonce length.
pub(crate) const IV_LEN: usize = 13;
/// AES-CCM-16-64-128 tag length.
pub(crate) const TAG_LEN: usize = 8;
/// P-256 coordinate length.
pub(crate) const ELEM_LEN: usize = 32;

type Ccm = ccm::Ccm<Aes128, U8, U13>;

// K_3 / K_4 expand into an AES key schedule inside the CCM cipher, wiped
// on drop only with the `aes` crate's `zeroize` feature: a build without
// it fails here.
const _: fn() = || {
    fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<Aes128>();
};

/// A pseudorandom key (PRK_2e, PRK_3e2m, PRK_4e3m, PRK_out, PRK_exporter),
/// zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Prk(pub(crate) [u8; HASH_LEN]);

/// HKDF-Extract (RFC 5869) with HMAC-SHA-256.
pub(crate) fn extract(salt: &[u8], ikm: &[u8]) -> Result<Prk, Error> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(salt).map_err(|_| Error::Malformed)?;
    m.update(ikm);
    let mut out = m.finalize().into_bytes();
    let mut prk = Prk([0; HASH_LEN]);
    prk.0.copy_from_slice(&out);
    out.as_mut_slice().zeroize();
    Ok(prk)
}

/// EDHOC_KDF(PRK, label, context, length) = HKDF-Expand(PRK, info, length)
/// with info = (label: uint, context: bstr, length: uint); the context is
/// given as up to six parts that are concatenated.
pub(crate) fn kdf(prk: &Prk, label: u64, context: &[&[u8]], out: &mut [u8]) -> Result<(), Error> {
    let hk = Hkdf::<Sha256>::from_prk(&prk.0).map_err(|_| Error::Malformed)?;
    let clen: usize = context.iter().map(|c| c.len()).sum();
    let (mut a, mut b, mut c) = ([0u8; 9], [0u8; 9], [0u8; 9]);
    let h_label = head(0, label, &mut a);
    let h_ctx = head(2, clen as u64, &mut b);
    let h_len = head(0, out.len() as u64, &mut c);
    let mut parts: [&[u8]; 9] = [&[]; 9];
    if context.len() > 6 {
        return Err(Error::TooLarge);
    }
    let mut n = 0;
    for p in [h_label, h_ctx].into_iter().chain(context.iter().copied()) {
        *parts.get_mut(n).ok_or(Error::TooLarge)? = p;
        n += 1;
    }
    *parts.get_mut(n).ok_or(Error::TooLarge)? = h_len;
    n += 1;
    hk.expand_multi_info(parts.get(..n).unwrap_or(&[]), out)
        .map_err(|_| Error::TooLarge)
}

/// EDHOC_KDF into a new PRK (hash-length output).
pub(crate) fn kdf_prk(prk: &Prk, label: u64, context: &[&[u8]]) -> Result<Prk, Error> {
    let mut out = Prk([0; HASH_LEN]);
    kdf(prk, label, context, &mut out.0)?;
    Ok(out)
}

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `TH` as it appears inside the transcript and KDF contexts: a CBOR bstr.
pub(crate) fn th_bstr(th: &[u8; HASH_LEN]) -> [u8; HASH_LEN + 2] {
    let mut o = [0u8; HASH_LEN + 2];
    o[0] = 0x58;
    o[1] = HASH_LEN as u8;
    if let Some(d) = o.get_mut(2..) {
        d.copy_from_slice(th);
    }
    o
}

/// The AEAD's additional data: the COSE Enc_structure
/// `["Encrypt0", h'', TH]` (RFC 9528 §5.4.3, §5.5.2).
fn enc_structure(th: &[u8; HASH_LEN]) -> [u8; 13 + HASH_LEN] {
    let mut o = [0u8; 13 + HASH_LEN];
    let prefix = [
        0x83,
        0x68,
        b'E',
        b'n',
        b'c',
        b'r',
        b'y',
        b'p',
        b't',
        b'0',
        0x40,
        0x58,
        HASH_LEN as u8,
    ];
    if let (Some(a), Some(b)) = (o.get_mut(..13), Some(&prefix)) {
        a.copy_from_slice(b);
    }
    if let Some(d) = o.get_mut(13..) {
        d.copy_from_slice(th);
    }
    o
}

/// Encrypts `buf[..len]` in place and appends the tag; returns the new length.
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    th: &[u8; HASH_LEN],
    buf: &mut [u8],
    len: usize,
) -> Result<usize, Error> {
    let c = Ccm::new_from_slice(key).map_err(|_| Error::Malformed)?;
    let total = len + TAG_LEN;
    if buf.len() < total {
        return Err(Error::BufferTooSmall { needed: total });
    }
    let (data, rest) = buf.split_at_mut(len);
    let tag = c
        .encrypt_in_place_detached(iv.into(), &enc_structure(th), data)
        .map_err(|_| Error::TooLarge)?;
    rest.get_mut(..TAG_LEN)
        .ok_or(Error::BufferTooSmall { needed: total })?
        .copy_from_slice(&tag);
    Ok(total)
}

/// Decrypts `buf` (ciphertext and tag) in place; returns the plaintext length.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    th: &[u8; HASH_LEN],
    buf: &mut [u8],
) -> Result<usize, Error> {
    let c = Ccm::new_from_slice(key).map_err(|_| Error::Malformed)?;
    let plen = buf
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(Error::Edhoc(EdhocError::Malformed))?;
    let (data, tag) = buf.split_at_mut(plen);
    c.decrypt_in_place_detached(iv.into(), &enc_structure(th), data, (&*tag).into())
        .map_err(|_| Error::Edhoc(EdhocError::DecryptFailed))?;
    Ok(plen)
}

/// A public key from its x-coordinate alone (RFC 9528 §3.7: compact
/// representation; the sign of y does not change the ECDH output).
pub(crate) fn public_from_x(x: &[u8; ELEM_LEN]) -> Result<PublicKey, Error> {
    let mut sec1 = [0u8; ELEM_LEN + 1];
    sec1[0] = 0x02;
    if let Some(d) = sec1.get_mut(1..) {
        d.copy_from_slice(x);
    }
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| Error::Edhoc(EdhocError::InvalidPublicKey))
}

/// The x-coordinate of a public key.
pub(crate) fn x_of(pk: &PublicKey) -> [u8; ELEM_LEN] {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let ep = pk.to_encoded_point(false);
    let mut x = [0u8; ELEM_LEN];
    if let Some(v) = ep.x() {
        x.copy_from_slice(v);
    }
    x
}

/// ECDH: the x-coordinate of the shared point, zeroized on drop.
pub(crate) fn ecdh(secret: &SecretKey, public: &PublicKey) -> Prk {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    let mut out = Prk([0; HASH_LEN]);
    out.0.copy_from_slice(shared.raw_secret_bytes());
    out
}

/// SHA-256 of the COSE Sig_structure `["Signature1", << ID_CRED >>,
/// << external_aad >>, MAC]` (RFC 9528 §5.3.2, §5.4.2), streamed.
fn sig_digest(id_cred: &[u8], external_aad: &[&[u8]], mac: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    h.update([0x84, 0x6a]);
    h.update(b"Signature1");
    let mut b = [0u8; 9];
    h.update(head(2, id_cred.len() as u64, &mut b));
    h.update(id_cred);
    let alen: usize = external_aad.iter().map(|p| p.len()).sum();
    h.update(head(2, alen as u64, &mut b));
    for p in external_aad {
        h.update(p);
    }
    h.update(head(2, mac.len() as u64, &mut b));
    h.update(mac);
    h.finalize().into()
}

/// ES256 signature (Signature_or_MAC_2 / _3 of a signing side).
pub(crate) fn sign(
    secret: &SecretKey,
    id_cred: &[u8],
    external_aad: &[&[u8]],
    mac: &[u8],
) -> Result<[u8; 64], Error> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let sk = p256::ecdsa::SigningKey::from(secret);
    let sig: p256::ecdsa::Signature = sk
        .sign_prehash(&sig_digest(id_cred, external_aad, mac))
        .map_err(|_| Error::Edhoc(EdhocError::InvalidCredential))?;
    Ok(sig.to_bytes().into())
}

/// Verifies an ES256 Signature_or_MAC.
pub(crate) fn verify(
    public: &PublicKey,
    id_cred: &[u8],
    external_aad: &[&[u8]],
    mac: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let fail = || Error::Edhoc(EdhocError::AuthenticationFailed);
    let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| fail())?;
    p256::ecdsa::VerifyingKey::from(public)
        .verify_prehash(&sig_digest(id_cred, external_aad, mac), &sig)
        .map_err(|_| fail())
}

/// Checks a received MAC in constant time.
pub(crate) fn check_mac(expected: &[u8], received: &[u8]) -> Result<(), Error> {
    use subtle::ConstantTimeEq;
    if expected.len() == received.len() && bool::from(expected.ct_eq(received)) {
        Ok(())
    } else {
        Err(Error::Edhoc(EdhocError::AuthenticationFailed))
    }
}

/// `bstr(x)` of a 32-byte coordinate or hash: the two head bytes.
pub(crate) const BSTR32: [u8; 2] = [0x58, 0x20];

/// Key and IV for message_3 (labels 3, 4) or message_4 (labels 8, 9).
pub(crate) fn key_iv(
    prk: &Prk,
    key_label: u64,
    th: &[u8; HASH_LEN],
) -> Result<(Zeroizing<[u8; KEY_LEN]>, [u8; IV_LEN]), Error> {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    let mut iv = [0u8; IV_LEN];
    kdf(prk, key_label, &[th], &mut *k)?;
    kdf(prk, key_label + 1, &[th], &mut iv)?;
    Ok((k, iv))
}

/// PRK_out and PRK_exporter from PRK_4e3m and TH_4 (RFC 9528 §4.1.3, §4.2.1).
pub(crate) fn outputs(prk_4e3m: &Prk, th_4: &[u8; HASH_LEN]) -> Result<(Prk, Prk), Error> {
    let prk_out = kdf_prk(prk_4e3m, 7, &[th_4])?;
    let prk_exporter = kdf_prk(&prk_out, 10, &[&[]])?;
    Ok((prk_out, prk_exporter))
}
