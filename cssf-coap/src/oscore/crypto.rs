//! The fixed CBOR structures, the nonce and the AEAD of OSCORE with
//! AES-CCM-16-64-128 and HKDF-SHA256 (RFC 8613 §3.2.1, §5.2, §5.4).
//!
//! The CBOR items are small and bounded (IDs of at most 7 bytes, an ID
//! Context of at most [`MAX_ID_CONTEXT_LEN`] bytes, a Partial IV of at most
//! 5), so they are written by hand into fixed arrays.

use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use hkdf::Hkdf;
use sha2::Sha256;

use super::context::Keys;
use super::option::MAX_PIV_LEN;
use super::{Error, KEY_LEN, MAX_ID_CONTEXT_LEN, MAX_ID_LEN, NONCE_LEN, TAG_LEN};

/// COSE algorithm AES-CCM-16-64-128 (RFC 9053 Table 6).
pub(crate) const ALG_AES_CCM_16_64_128: u8 = 10;

type Aead = ccm::Ccm<Aes128, U8, U13>;

/// Longest HKDF `info`: array head, bstr id, bstr id_context, alg, "Key", L.
const INFO_MAX: usize = 1 + (1 + MAX_ID_LEN) + (2 + MAX_ID_CONTEXT_LEN) + 1 + 4 + 1;
/// Longest `external_aad`: [1, [10], bstr kid, bstr piv, h''].
const EXTERNAL_AAD_MAX: usize = 1 + 1 + 2 + (1 + MAX_ID_LEN) + (1 + MAX_PIV_LEN) + 1;
/// Longest `Enc_structure`: ["Encrypt0", h'', bstr external_aad].
pub(crate) const AAD_MAX: usize = 1 + 9 + 1 + 1 + EXTERNAL_AAD_MAX;

/// A bounded CBOR writer for the few item types OSCORE needs.
struct Cbor<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Cbor<N> {
    const fn new() -> Self {
        Cbor {
            buf: [0; N],
            len: 0,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(Error::BadIdContextLength)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// A head of major type `major` with argument `arg` (< 65536).
    fn head(&mut self, major: u8, arg: usize) -> Result<(), Error> {
        let m = major << 5;
        match arg {
            0..=23 => self.raw(&[m | arg as u8]),
            24..=0xff => self.raw(&[m | 24, arg as u8]),
            _ => {
                let a = u16::try_from(arg).map_err(|_| Error::BadIdContextLength)?;
                let b = a.to_be_bytes();
                self.raw(&[m | 25, b[0], b[1]])
            }
        }
    }

    fn uint(&mut self, v: usize) -> Result<(), Error> {
        self.head(0, v)
    }

    fn bstr(&mut self, b: &[u8]) -> Result<(), Error> {
        self.head(2, b.len())?;
        self.raw(b)
    }

    fn tstr(&mut self, s: &str) -> Result<(), Error> {
        self.head(3, s.len())?;
        self.raw(s.as_bytes())
    }

    fn array(&mut self, n: usize) -> Result<(), Error> {
        self.head(4, n)
    }

    fn nil(&mut self) -> Result<(), Error> {
        self.raw(&[0xf6])
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// The HKDF `info` of RFC 8613 §3.2.1:
/// `[id: bstr, id_context: bstr / nil, alg_aead: int, type: tstr, L: uint]`.
fn info(
    id: &[u8],
    id_context: Option<&[u8]>,
    ty: &str,
    len: usize,
) -> Result<Cbor<INFO_MAX>, Error> {
    let mut c = Cbor::new();
    c.array(5)?;
    c.bstr(id)?;
    match id_context {
        Some(ctx) => c.bstr(ctx)?,
        None => c.nil()?,
    }
    c.uint(usize::from(ALG_AES_CCM_16_64_128))?;
    c.tstr(ty)?;
    c.uint(len)?;
    Ok(c)
}

/// Derives Sender Key, Recipient Key and Common IV with HKDF-SHA256.
pub(crate) fn derive(
    master_secret: &[u8],
    master_salt: &[u8],
    id_context: Option<&[u8]>,
    sender_id: &[u8],
    recipient_id: &[u8],
) -> Result<Keys, Error> {
    let hk = Hkdf::<Sha256>::new(Some(master_salt), master_secret);
    // Derived in place in the zeroize-on-drop struct: no stray copies.
    let mut d = Keys {
        sender_key: [0; KEY_LEN],
        recipient_key: [0; KEY_LEN],
        common_iv: [0; NONCE_LEN],
    };
    // The output lengths are far below HKDF-SHA256's 8160-byte limit, so
    // `expand` cannot fail; map it anyway rather than panic.
    let expand_err = |_| Error::BadIdContextLength;
    hk.expand(
        info(sender_id, id_context, "Key", KEY_LEN)?.as_bytes(),
        &mut d.sender_key,
    )
    .map_err(expand_err)?;
    hk.expand(
        info(recipient_id, id_context, "Key", KEY_LEN)?.as_bytes(),
        &mut d.recipient_key,
    )
    .map_err(expand_err)?;
    hk.expand(
        info(&[], id_context, "IV", NONCE_LEN)?.as_bytes(),
        &mut d.common_iv,
    )
    .map_err(expand_err)?;
    Ok(d)
}

/// The AEAD nonce of RFC 8613 §5.2: the length of ID_PIV, ID_PIV padded to
/// 7 bytes and the Partial IV padded to 5, XORed with the Common IV.
/// `id_piv` is at most 7 and `piv` at most 5 bytes (checked by callers;
/// longer ones are cut to their last bytes rather than panic).
pub(crate) fn nonce(common_iv: &[u8; NONCE_LEN], id_piv: &[u8], piv: &[u8]) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    let (len, rest) = n.split_at_mut(1);
    let (id_field, piv_field) = rest.split_at_mut(MAX_ID_LEN);
    if let Some(l) = len.first_mut() {
        *l = (id_piv.len() & 0xff) as u8;
    }
    for (d, s) in id_field.iter_mut().rev().zip(id_piv.iter().rev()) {
        *d = *s;
    }
    for (d, s) in piv_field.iter_mut().rev().zip(piv.iter().rev()) {
        *d = *s;
    }
    for (d, s) in n.iter_mut().zip(common_iv) {
        *d ^= s;
    }
    n
}

/// The AAD of RFC 8613 §5.4: `Enc_structure = ["Encrypt0", h'',
/// external_aad]` with `external_aad = bstr .cbor [1, [10], request_kid,
/// request_piv, h'']` (no Class I options).
pub(crate) fn aad(request_kid: &[u8], request_piv: &[u8]) -> Result<Aad, Error> {
    let mut ext = Cbor::<EXTERNAL_AAD_MAX>::new();
    ext.array(5)?;
    ext.uint(1)?;
    ext.array(1)?;
    ext.uint(usize::from(ALG_AES_CCM_16_64_128))?;
    ext.bstr(request_kid).map_err(|_| Error::BadIdLength)?;
    ext.bstr(request_piv).map_err(|_| Error::BadOption)?;
    ext.bstr(&[])?;
    let mut c = Cbor::<AAD_MAX>::new();
    c.array(3)?;
    c.tstr("Encrypt0")?;
    c.bstr(&[])?;
    c.bstr(ext.as_bytes())?;
    Ok(Aad(c))
}

/// An encoded AAD.
pub(crate) struct Aad(Cbor<AAD_MAX>);

impl Aad {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Encrypts `data` in place, returning the tag.
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    let c = Aead::new(key.into());
    let tag = c
        .encrypt_in_place_detached(nonce.into(), aad, data)
        .map_err(|_| Error::MessageTooLong)?;
    Ok(tag.into())
}

/// Decrypts `data` in place if `tag` verifies (constant-time comparison
/// inside the AEAD); `data` is unspecified after a failure.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), Error> {
    let c = Aead::new(key.into());
    c.decrypt_in_place_detached(nonce.into(), aad, data, tag.into())
        .map_err(|_| Error::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_rfc_c1() {
        // RFC 8613 C.1.1: info for Sender Key, Recipient Key and Common IV.
        assert_eq!(
            info(&[], None, "Key", 16).unwrap().as_bytes(),
            [0x85, 0x40, 0xf6, 0x0a, 0x63, b'K', b'e', b'y', 0x10]
        );
        assert_eq!(
            info(&[1], None, "Key", 16).unwrap().as_bytes(),
            [0x85, 0x41, 0x01, 0xf6, 0x0a, 0x63, b'K', b'e', b'y', 0x10]
        );
        assert_eq!(
            info(&[], None, "IV", 13).unwrap().as_bytes(),
            [0x85, 0x40, 0xf6, 0x0a, 0x62, b'I', b'V', 0x0d]
        );
        // C.3.1: with an ID Context.
        let ctx = [0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3];
        let i = info(&[], Some(&ctx), "IV", 13).unwrap();
        assert_eq!(i.as_bytes().get(..4), Some(&[0x85, 0x40, 0x48, 0x37][..]));
        // The longest ID Context fits.
        assert!(info(&[0; MAX_ID_LEN], Some(&[0; MAX_ID_CONTEXT_LEN]), "Key", 16).is_ok());
    }

    #[test]
    fn aad_rfc_c4_c5() {
        assert_eq!(
            aad(&[], &[0x14]).unwrap().as_bytes(),
            [
                0x83, 0x68, b'E', b'n', b'c', b'r', b'y', b'p', b't', b'0', 0x40, 0x48, 0x85, 0x01,
                0x81, 0x0a, 0x40, 0x41, 0x14, 0x40
            ]
        );
        assert_eq!(
            aad(&[0x00], &[0x14]).unwrap().as_bytes().get(11..),
            Some(&[0x49, 0x85, 0x01, 0x81, 0x0a, 0x41, 0x00, 0x41, 0x14, 0x40][..])
        );
        assert!(aad(&[0; MAX_ID_LEN], &[0; MAX_PIV_LEN]).is_ok());
    }

    #[test]
    fn nonce_rfc_c4_c5() {
        let iv = [
            0x46, 0x22, 0xd4, 0xdd, 0x6d, 0x94, 0x41, 0x68, 0xee, 0xfb, 0x54, 0x98, 0x7c,
        ];
        assert_eq!(
            nonce(&iv, &[], &[0x14]),
            [0x46, 0x22, 0xd4, 0xdd, 0x6d, 0x94, 0x41, 0x68, 0xee, 0xfb, 0x54, 0x98, 0x68]
        );
        // C.1.2: the server's nonce for Partial IV 0.
        assert_eq!(
            nonce(&iv, &[0x01], &[0x00]),
            [0x47, 0x22, 0xd4, 0xdd, 0x6d, 0x94, 0x41, 0x69, 0xee, 0xfb, 0x54, 0x98, 0x7c]
        );
    }
}
