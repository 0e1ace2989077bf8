//! Typed helpers for what the other CSSF crates keep in the store, each under
//! a fixed key-name prefix:
//!
//! | item | key name | value |
//! | --- | --- | --- |
//! | pre-shared key | `psk/` + identity | the key (1..=64 bytes) |
//! | P-256 private key | `p256/` + name | 32-byte scalar |
//! | trusted public key | `tpk/` + name | 65-byte SEC1 uncompressed point |
//! | token | `tok/` + name | bytes, at most [`MAX_TOKEN_LEN`] |
//!
//! Names must leave room for the prefix within [`MAX_KEY_LEN`].

use embedded_storage::nor_flash::NorFlash;
use zeroize::Zeroizing;

use crate::config::{MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::rollback::MonotonicCounter;
use crate::{Error, Store};

/// Key-name prefix of pre-shared keys.
pub const PSK_PREFIX: &[u8] = b"psk/";
/// Key-name prefix of P-256 private keys.
pub const P256_PREFIX: &[u8] = b"p256/";
/// Key-name prefix of trusted public keys.
pub const TRUSTED_KEY_PREFIX: &[u8] = b"tpk/";
/// Key-name prefix of tokens.
pub const TOKEN_PREFIX: &[u8] = b"tok/";
/// Largest PSK.
pub const MAX_PSK_LEN: usize = 64;
/// Largest token.
pub const MAX_TOKEN_LEN: usize = MAX_VALUE_LEN;

/// A key name built from a prefix and a caller name.
struct Name {
    buf: [u8; MAX_KEY_LEN],
    len: usize,
}

impl Name {
    fn new(prefix: &[u8], name: &[u8]) -> Result<Self, Error> {
        let len = prefix.len() + name.len();
        let mut buf = [0u8; MAX_KEY_LEN];
        let dst = buf.get_mut(..len).ok_or(Error::KeyTooLong {
            max: MAX_KEY_LEN - prefix.len(),
        })?;
        let (p, n) = dst.split_at_mut(prefix.len());
        p.copy_from_slice(prefix);
        n.copy_from_slice(name);
        Ok(Self { buf, len })
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl<F: NorFlash, C: MonotonicCounter, const KEYS: usize, const SECTORS: usize>
    Store<F, C, KEYS, SECTORS>
{
    /// Stores a pre-shared key under its identity.
    ///
    /// # Errors
    /// As [`Store::set`]; [`Error::ValueTooLong`] for an empty or too long key.
    pub fn set_psk(&mut self, identity: &[u8], psk: &[u8]) -> Result<(), Error> {
        if psk.is_empty() || psk.len() > MAX_PSK_LEN {
            return Err(Error::ValueTooLong { max: MAX_PSK_LEN });
        }
        self.set(Name::new(PSK_PREFIX, identity)?.as_bytes(), psk)
    }

    /// Reads the pre-shared key of `identity` into `out`, returning its length.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_psk(&mut self, identity: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        self.get(Name::new(PSK_PREFIX, identity)?.as_bytes(), out)
    }

    /// Stores a P-256 private key (big-endian scalar).
    ///
    /// # Errors
    /// As [`Store::set`].
    pub fn set_p256_private_key(&mut self, name: &[u8], key: &[u8; 32]) -> Result<(), Error> {
        self.set(Name::new(P256_PREFIX, name)?.as_bytes(), key)
    }

    /// Reads a P-256 private key; it is wiped when the returned value drops.
    ///
    /// # Errors
    /// As [`Store::get`]; [`Error::Corrupt`] if the stored value is not 32 bytes.
    pub fn get_p256_private_key(&mut self, name: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        let mut k = Zeroizing::new([0u8; 32]);
        let mut buf = Zeroizing::new([0u8; 33]);
        let n = self.get(Name::new(P256_PREFIX, name)?.as_bytes(), &mut buf[..])?;
        let v = buf
            .get(..n)
            .filter(|v| v.len() == 32)
            .ok_or(Error::Corrupt)?;
        k.copy_from_slice(v);
        Ok(k)
    }

    /// Stores a trusted public key (65-byte uncompressed SEC1 point).
    ///
    /// # Errors
    /// [`Error::ValueTooLong`] when it does not start with 0x04; as [`Store::set`].
    pub fn set_trusted_key(&mut self, name: &[u8], sec1: &[u8; 65]) -> Result<(), Error> {
        if sec1.first() != Some(&0x04) {
            return Err(Error::ValueTooLong { max: 65 });
        }
        self.set(Name::new(TRUSTED_KEY_PREFIX, name)?.as_bytes(), sec1)
    }

    /// Reads a trusted public key.
    ///
    /// # Errors
    /// As [`Store::get`]; [`Error::Corrupt`] if the value is not 65 bytes.
    pub fn get_trusted_key(&mut self, name: &[u8]) -> Result<[u8; 65], Error> {
        let mut buf = [0u8; 66];
        let n = self.get(Name::new(TRUSTED_KEY_PREFIX, name)?.as_bytes(), &mut buf)?;
        let mut out = [0u8; 65];
        out.copy_from_slice(
            buf.get(..n)
                .filter(|v| v.len() == 65)
                .ok_or(Error::Corrupt)?,
        );
        Ok(out)
    }

    /// Stores a token (e.g. a CWT) under `name`.
    ///
    /// # Errors
    /// As [`Store::set`].
    pub fn set_token(&mut self, name: &[u8], token: &[u8]) -> Result<(), Error> {
        self.set(Name::new(TOKEN_PREFIX, name)?.as_bytes(), token)
    }

    /// Reads a token into `out`, returning its length.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_token(&mut self, name: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        self.get(Name::new(TOKEN_PREFIX, name)?.as_bytes(), out)
    }

    /// Removes a token.
    ///
    /// # Errors
    /// As [`Store::remove`].
    pub fn remove_token(&mut self, name: &[u8]) -> Result<(), Error> {
        self.remove(Name::new(TOKEN_PREFIX, name)?.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use crate::flash::RamFlash;
    use crate::{Config, Error, NoRollbackProtection, RootKey, Store};

    #[test]
    fn typed_round_trips() {
        let f = RamFlash::<8192, 4096, 4, 1>::new();
        let mut s: Store<_, _, 8, 2> = Store::mount(
            f,
            &RootKey([1; 32]),
            NoRollbackProtection,
            Config::new(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        s.set_psk(b"client1", b"secretsecret").unwrap();
        let mut b = [0; 64];
        let n = s.get_psk(b"client1", &mut b).unwrap();
        assert_eq!(&b[..n], b"secretsecret");
        s.set_p256_private_key(b"dev", &[9; 32]).unwrap();
        assert_eq!(*s.get_p256_private_key(b"dev").unwrap(), [9; 32]);
        let mut pk = [5u8; 65];
        pk[0] = 4;
        s.set_trusted_key(b"as", &pk).unwrap();
        assert_eq!(s.get_trusted_key(b"as").unwrap(), pk);
        pk[0] = 2;
        assert!(s.set_trusted_key(b"as", &pk).is_err());
        s.set_token(b"t1", b"\xd2\x84token").unwrap();
        let n = s.get_token(b"t1", &mut b).unwrap();
        assert_eq!(&b[..n], b"\xd2\x84token");
        s.remove_token(b"t1").unwrap();
        assert_eq!(s.get_token(b"t1", &mut b), Err(Error::NotFound));
        assert_eq!(
            s.get_psk(&[b'x'; 61], &mut b),
            Err(Error::KeyTooLong { max: 60 })
        );
    }
}
