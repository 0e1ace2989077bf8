//! `cssf-server --oscore-context FILE`: an OSCORE security context (RFC
//! 8613 §3) in a small JSON file, with the key names aiocoap uses in its
//! `settings.json` (so one file, with the IDs swapped, keys both ends) and
//! one of ours, `scope`:
//!
//! ```json
//! {
//!   "sender-id_hex": "01",
//!   "recipient-id_hex": "",
//!   "secret_hex": "0102030405060708090a0b0c0d0e0f10",
//!   "salt_hex": "9e7ca92223786340",
//!   "scope": "/sensors/temp:GET;/actuators/led:GET,PUT"
//! }
//! ```
//!
//! - `secret_hex` or `secret_ascii`: the Master Secret (required);
//! - `salt_hex` or `salt_ascii`: the Master Salt (optional, default empty);
//! - `sender-id_hex`, `recipient-id_hex`: this server's Sender ID and the
//!   client's (required, at most 7 bytes each, may be empty);
//! - `id-context_hex`: the ID Context (optional);
//! - `scope`: RIGHTS (as for `--psk`) the holder of the context has, on
//!   top of the public rights (optional: without it, the public rights
//!   only);
//! - `algorithm` (`"AES-CCM-16-64-128"` or 10) and `kdf-hashfun`
//!   (`"sha256"`) may be given, only with these values.
//!
//! Any other key is refused, so a misspelt one does not pass unnoticed.

use std::path::{Path, PathBuf};

use cssf_auth::authorizer::Rights;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::fail;
use crate::util::{unhex, Result};

/// One `--oscore-context` file, read.
#[derive(Clone)]
pub struct OscoreContextFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The Master Secret.
    pub master_secret: Zeroizing<Vec<u8>>,
    /// The Master Salt (empty: none).
    pub master_salt: Vec<u8>,
    /// This server's Sender ID.
    pub sender_id: Vec<u8>,
    /// The client's Sender ID (this server's Recipient ID; the kid its
    /// requests carry).
    pub recipient_id: Vec<u8>,
    /// The ID Context, if any.
    pub id_context: Option<Vec<u8>>,
    /// What the holder may do beyond the public rights (`None`: nothing
    /// more).
    pub scope: Option<Rights>,
}

impl std::fmt::Debug for OscoreContextFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OscoreContextFile")
            .field("path", &self.path)
            .field("recipient_id", &self.recipient_id)
            .finish_non_exhaustive()
    }
}

fn bytes(map: &serde_json::Map<String, Value>, name: &str, path: &Path) -> Result<Option<Vec<u8>>> {
    let hex = map.get(&format!("{name}_hex"));
    let ascii = map.get(&format!("{name}_ascii"));
    match (hex, ascii) {
        (Some(_), Some(_)) => Err(fail!(
            "{}: both {name}_hex and {name}_ascii",
            path.display()
        )),
        // An empty ID is common (RFC 8613 Appendix C.1's client).
        (Some(Value::String(h)), None) if h.is_empty() => Ok(Some(Vec::new())),
        (Some(Value::String(h)), None) => unhex(h)
            .map(Some)
            .map_err(|e| fail!("{}: {name}_hex: {e}", path.display())),
        (None, Some(Value::String(a))) => Ok(Some(a.as_bytes().to_vec())),
        (None, None) => Ok(None),
        _ => Err(fail!("{}: {name} must be a string", path.display())),
    }
}

impl OscoreContextFile {
    /// Parses the file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let v: Value = serde_json::from_str(text).map_err(|e| fail!("{}: {e}", path.display()))?;
        let Value::Object(map) = v else {
            return Err(fail!("{}: not a JSON object", path.display()));
        };
        const KNOWN: [&str; 11] = [
            "sender-id_hex",
            "sender-id_ascii",
            "recipient-id_hex",
            "recipient-id_ascii",
            "secret_hex",
            "secret_ascii",
            "salt_hex",
            "salt_ascii",
            "id-context_hex",
            "scope",
            "algorithm",
        ];
        for (k, v) in &map {
            let ok = match k.as_str() {
                "algorithm" => v == &Value::from("AES-CCM-16-64-128") || v == &Value::from(10),
                "kdf-hashfun" => v == &Value::from("sha256"),
                k => KNOWN.contains(&k),
            };
            if !ok {
                return Err(fail!(
                    "{}: `{k}` is not a key this server knows (or not with that value)",
                    path.display()
                ));
            }
        }
        let need = |name: &str| -> Result<Vec<u8>> {
            bytes(&map, name, path)?.ok_or_else(|| fail!("{}: {name}_hex missing", path.display()))
        };
        let master_secret = Zeroizing::new(need("secret")?);
        if master_secret.is_empty() {
            return Err(fail!("{}: empty Master Secret", path.display()));
        }
        let sender_id = need("sender-id")?;
        let recipient_id = need("recipient-id")?;
        if sender_id.len() > 7 || recipient_id.len() > 7 {
            return Err(fail!(
                "{}: a Sender or Recipient ID is longer than 7 bytes",
                path.display()
            ));
        }
        if sender_id == recipient_id {
            return Err(fail!(
                "{}: Sender ID and Recipient ID are equal (one key both ways)",
                path.display()
            ));
        }
        let scope = match map.get("scope") {
            None => None,
            Some(Value::String(s)) => Some(
                Rights::parse(s)
                    .map_err(|_| fail!("{}: scope `{s}` is not RIGHTS", path.display()))?,
            ),
            Some(_) => return Err(fail!("{}: scope must be a string", path.display())),
        };
        Ok(OscoreContextFile {
            path: path.to_path_buf(),
            master_secret,
            master_salt: bytes(&map, "salt", path)?.unwrap_or_default(),
            sender_id,
            recipient_id,
            id_context: bytes(&map, "id-context", path)?,
            scope,
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail!("--oscore-context: cannot read {}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// The context's parameters for [`cssf_coap::oscore::SecurityContext::new`].
    pub fn params(&self) -> cssf_coap::oscore::Params<'_> {
        cssf_coap::oscore::Params {
            master_secret: &self.master_secret,
            master_salt: &self.master_salt,
            id_context: self.id_context.as_deref(),
            sender_id: &self.sender_id,
            recipient_id: &self.recipient_id,
        }
    }

    /// The store key of its Sender Sequence Number bound (by Recipient ID
    /// and ID Context, like [`OscoreContextFile::store_name`]).
    pub fn sequence_store_name(&self) -> String {
        let ctx = self
            .id_context
            .as_deref()
            .map_or(String::new(), crate::util::hex);
        format!("oscore-ssn-{}-{ctx}", crate::util::hex(&self.recipient_id))
    }

    /// The store key of its replay-window state (by Recipient ID and ID
    /// Context, which select it).
    pub fn store_name(&self) -> String {
        let ctx = self
            .id_context
            .as_deref()
            .map_or(String::new(), crate::util::hex);
        format!(
            "oscore-replay-{}-{ctx}",
            crate::util::hex(&self.recipient_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aiocoap_keys_and_scope() {
        let f = OscoreContextFile::parse(
            r#"{"sender-id_hex": "01", "recipient-id_hex": "", "secret_hex": "0102",
                "salt_ascii": "ab", "scope": "/time:GET", "algorithm": "AES-CCM-16-64-128"}"#,
            Path::new("f.json"),
        )
        .unwrap();
        assert_eq!(f.sender_id, [1]);
        assert!(f.recipient_id.is_empty());
        assert_eq!(&f.master_secret[..], &[1, 2]);
        assert_eq!(f.master_salt, b"ab");
        assert!(f.scope.unwrap().allows(cssf_auth::Method::Get, "/time"));
    }

    #[test]
    fn refuses_unknown_keys_bad_values_and_equal_ids() {
        for text in [
            r#"{"sender-id_hex": "01", "recipient-id_hex": "", "secret_hex": "01", "salt": "x"}"#,
            r#"{"sender-id_hex": "01", "recipient-id_hex": "", "secret_hex": "01", "algorithm": "AES-GCM"}"#,
            r#"{"sender-id_hex": "01", "recipient-id_hex": "01", "secret_hex": "01"}"#,
            r#"{"sender-id_hex": "01", "secret_hex": "01"}"#,
            r#"{"sender-id_hex": "0102030405060708", "recipient-id_hex": "", "secret_hex": "01"}"#,
            r#"{"sender-id_hex": "01", "recipient-id_hex": "", "secret_hex": "01", "scope": "nonsense"}"#,
        ] {
            assert!(
                OscoreContextFile::parse(text, Path::new("f.json")).is_err(),
                "{text}"
            );
        }
    }
}
