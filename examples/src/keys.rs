//! Key material from files and the command line: P-256 keys in PEM
//! (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, SPKI `PUBLIC KEY`) and
//! pre-shared keys written `IDENTITY:HEXKEY`.

use std::path::Path;

use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use p256::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use crate::fail;
use crate::util::{unhex, Result};

/// A pre-shared key and its identity.
#[derive(Clone)]
pub struct Psk {
    /// The PSK identity (RFC 4279), sent in clear in the handshake.
    pub identity: Vec<u8>,
    /// The key.
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Psk({:?}, {} bytes)",
            String::from_utf8_lossy(&self.identity),
            self.key.len()
        )
    }
}

impl Psk {
    /// Parses `IDENTITY:HEXKEY` (the identity may itself contain `:`; the
    /// key is after the last one).
    pub fn parse(spec: &str) -> Result<Self> {
        let (id, key) = spec
            .rsplit_once(':')
            .ok_or_else(|| fail!("--psk wants IDENTITY:HEXKEY, got `{spec}`"))?;
        if id.is_empty() {
            return Err(fail!("--psk `{spec}`: empty identity"));
        }
        if id.len() > cssf_dtls::MAX_IDENTITY_LEN {
            return Err(fail!(
                "--psk: identity longer than {} bytes",
                cssf_dtls::MAX_IDENTITY_LEN
            ));
        }
        let key = Zeroizing::new(unhex(key).map_err(|e| fail!("--psk key: {e}"))?);
        if key.len() > cssf_dtls::MAX_PSK_LEN {
            return Err(fail!(
                "--psk: key longer than {} bytes",
                cssf_dtls::MAX_PSK_LEN
            ));
        }
        Ok(Psk {
            identity: id.as_bytes().to_vec(),
            key,
        })
    }
}

fn read_text(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| fail!("cannot read {what} {}: {e}", path.display()))
}

/// Loads a P-256 private key from a PEM file (PKCS#8 or SEC1).
pub fn load_private_key(path: &Path) -> Result<SecretKey> {
    let pem = read_text(path, "private key")?;
    SecretKey::from_pkcs8_pem(&pem)
        .or_else(|_| SecretKey::from_sec1_pem(&pem))
        .map_err(|_| {
            fail!(
                "{} is not a P-256 private key in PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)",
                path.display()
            )
        })
}

/// Loads a P-256 public key from a PEM file (SPKI `PUBLIC KEY`); a private
/// key file is accepted too (its public half is used).
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let pem = read_text(path, "public key")?;
    PublicKey::from_public_key_pem(&pem)
        .or_else(|_| SecretKey::from_pkcs8_pem(&pem).map(|k| k.public_key()))
        .or_else(|_| {
            SecretKey::from_sec1_pem(&pem)
                .map(|k| k.public_key())
                .map_err(|_| p256::pkcs8::spki::Error::KeyMalformed)
        })
        .map_err(|_| {
            fail!(
                "{} is not a P-256 public key in PEM (`PUBLIC KEY`)",
                path.display()
            )
        })
}

/// Writes a fresh P-256 key pair: the private key (PEM, mode 0600 on Unix)
/// to `private`, and the public key (SPKI PEM) to `public` if given.
/// With `sec1`, the private key is written as SEC1 `EC PRIVATE KEY` (what
/// GnuTLS and libcoap's `-M` read) instead of PKCS#8.
pub fn generate_key_pair(private: &Path, public: Option<&Path>, sec1: bool) -> Result<PublicKey> {
    let sk = SecretKey::random(&mut rand_core::OsRng);
    let pem = if sec1 {
        sec1_pem(&sk)?
    } else {
        sk.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| fail!("cannot encode the private key: {e}"))?
    };
    write_private(private, pem.as_bytes())?;
    let pk = sk.public_key();
    if let Some(p) = public {
        let pem = pk
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| fail!("cannot encode the public key: {e}"))?;
        std::fs::write(p, pem).map_err(|e| fail!("cannot write {}: {e}", p.display()))?;
    }
    Ok(pk)
}

/// SEC1 `EC PRIVATE KEY` (RFC 5915) with the named curve and the public
/// key, the form OpenSSL and GnuTLS read.
fn sec1_pem(sk: &SecretKey) -> Result<Zeroizing<String>> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = sk.public_key().to_encoded_point(false);
    let mut der = Zeroizing::new(vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20]);
    der.extend_from_slice(&sk.to_bytes());
    // [0] namedCurve prime256v1 (1.2.840.10045.3.1.7)
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    // [1] publicKey BIT STRING
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(point.as_bytes());
    p256::pkcs8::der::pem::encode_string("EC PRIVATE KEY", p256::pkcs8::LineEnding::LF, &der)
        .map(Zeroizing::new)
        .map_err(|e| fail!("cannot encode the private key: {e}"))
}

/// Writes secret bytes to a new file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    use std::io::Write;
    o.open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| fail!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_specs() {
        let p = Psk::parse("Client_identity:73656372657450534b").unwrap();
        assert_eq!(p.identity, b"Client_identity");
        assert_eq!(&p.key[..], b"secretPSK");
        let p = Psk::parse("a:b:00ff").unwrap();
        assert_eq!(p.identity, b"a:b");
        assert!(Psk::parse("nokey").is_err());
        assert!(Psk::parse(":00").is_err());
        assert!(Psk::parse("id:xyz").is_err());
    }

    #[test]
    fn pem_round_trip_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("cssf-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (sk, pk) = (dir.join("k.pem"), dir.join("k.pub.pem"));
        let public = generate_key_pair(&sk, Some(&pk), false).unwrap();
        let sec1 = dir.join("k1.pem");
        let p1 = generate_key_pair(&sec1, None, true).unwrap();
        assert!(std::fs::read_to_string(&sec1)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY"));
        assert_eq!(load_private_key(&sec1).unwrap().public_key(), p1);
        assert_eq!(load_private_key(&sk).unwrap().public_key(), public);
        assert_eq!(load_public_key(&pk).unwrap(), public);
        assert_eq!(load_public_key(&sk).unwrap(), public);
        let e = load_private_key(&dir.join("missing.pem")).unwrap_err();
        assert!(e.0.starts_with("cannot read private key"), "{e}");
        let e = load_private_key(&pk).unwrap_err();
        assert!(e.0.contains("is not a P-256 private key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
