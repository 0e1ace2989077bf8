//! The Authorization Server's side for the examples: minting ACE access
//! tokens (CWT in COSE_Sign1 with ES256, or COSE_Mac0 with HMAC-SHA256)
//! bound to a fresh symmetric proof-of-possession key, and reading them back.
//!
//! The token file `cssf-token mint` writes is the AS's access-token response
//! to the client (RFC 9200 §5.8.2, CBOR): `{1: access_token, 8: {1:
//! COSE_Key}, 38: 1}` — the token for the device, the PoP key for the client
//! (`cnf`), profile `coap_dtls` (RFC 9202). The client posts the
//! `access_token` to `/authz-info` and uses the PoP key as its DTLS PSK with
//! the key's `kid` as `psk_identity`.

use std::path::Path;

use cssf_auth::cose::Message as CoseMessage;
use cssf_auth::cwt::{Audience, Claims, Scope};
use cssf_auth::issuer::{mac0, sign1, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::pop::Cnf;
use cssf_auth::{Aif, Algorithm, Bytes, CoseKey, KeyEntry, Limits, Method, PopKey};
use p256::SecretKey;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::fail;
use crate::util::{hex, printable, unix_now, Result};

/// ACE parameter `access_token` (RFC 9200 §8.10).
pub const ACCESS_TOKEN: u64 = 1;
/// ACE parameter `cnf`.
pub const CNF: u64 = 8;
/// ACE parameter `ace_profile`.
pub const ACE_PROFILE: u64 = 38;
/// `ace_profile` value of the DTLS profile (`coap_dtls`, RFC 9202 §9).
pub const COAP_DTLS: u64 = 1;

/// The Authorization Server's token-signing key.
#[derive(Clone)]
pub enum AsKey {
    /// ES256 (COSE_Sign1).
    Es256(SecretKey),
    /// HMAC-SHA256 (COSE_Mac0, alg 5).
    Hmac(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for AsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsKey::Es256(_) => f.write_str("AsKey::Es256"),
            AsKey::Hmac(k) => write!(f, "AsKey::Hmac({} bytes)", k.len()),
        }
    }
}

/// How a resource server is told about its AS keys beyond the key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// The algorithm of the HMAC key: one key, one algorithm (HMAC 256/256
    /// by default, what `cssf-token mint` uses; `HS256/64` for
    /// HMAC 256/64).
    pub hmac_alg: Algorithm,
    /// The kid the AS puts in its COSE headers (`--as-kid`), for every AS
    /// key without one of its own. A key without a kid matches tokens
    /// without a kid and tokens whose kid names no configured key.
    pub kid: Option<Vec<u8>>,
    /// The ES256 key's own kid (from a COSE_Key file).
    pub es256_kid: Option<Vec<u8>>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            hmac_alg: Algorithm::Hmac256,
            kid: None,
            es256_kid: None,
        }
    }
}

impl KeyOptions {
    /// Parses an `--as-hmac-alg` value: `HS256` (HMAC 256/256) or
    /// `HS256/64` (HMAC 256/64).
    pub fn parse_hmac_alg(s: &str) -> Result<Algorithm> {
        match s {
            "HS256" | "5" => Ok(Algorithm::Hmac256),
            "HS256/64" | "4" => Ok(Algorithm::Hmac256_64),
            _ => Err(fail!("--as-hmac-alg: `{s}` is not HS256 or HS256/64")),
        }
    }
}

/// The keys a resource server verifies tokens with (HMAC 256/256, no kid).
pub fn verification_keys(
    es256: Option<&p256::PublicKey>,
    hmac: Option<&[u8]>,
) -> Result<Vec<KeyEntry>> {
    verification_keys_with(es256, hmac, &KeyOptions::default())
}

/// The keys a resource server verifies tokens with, as `opts` says.
pub fn verification_keys_with(
    es256: Option<&p256::PublicKey>,
    hmac: Option<&[u8]>,
    opts: &KeyOptions,
) -> Result<Vec<KeyEntry>> {
    let entry = |kid: Option<&Vec<u8>>, key: CoseKey| match kid.or(opts.kid.as_ref()) {
        Some(kid) => KeyEntry::with_kid(kid, key).map_err(|e| fail!("AS key id: {e}")),
        None => Ok(KeyEntry::new(key)),
    };
    let mut keys = Vec::new();
    if let Some(pk) = es256 {
        keys.push(entry(
            opts.es256_kid.as_ref(),
            CoseKey::Es256((*pk).into()),
        )?);
    }
    if let Some(k) = hmac {
        let key = CoseKey::hmac(opts.hmac_alg, k).map_err(|e| fail!("AS HMAC key: {e}"))?;
        keys.push(entry(None, key)?);
    }
    Ok(keys)
}

/// Loads an AS public key: PEM (`PUBLIC KEY`), or a COSE_Key (RFC 9052
/// §7: kty EC2, crv P-256, x, y, and optionally a kid) as CBOR bytes or
/// hex text. Returns the key and its kid.
pub fn load_as_public_key(path: &Path) -> Result<(p256::PublicKey, Option<Vec<u8>>)> {
    let raw =
        std::fs::read(path).map_err(|e| fail!("cannot read public key {}: {e}", path.display()))?;
    if raw.starts_with(b"-----BEGIN") {
        return Ok((crate::keys::load_public_key(path)?, None));
    }
    let text = String::from_utf8_lossy(&raw);
    let cbor = crate::util::unhex(text.trim()).unwrap_or(raw);
    let not_a_key = || {
        fail!(
            "{} is not a P-256 public key in PEM (`PUBLIC KEY`) or a COSE_Key",
            path.display()
        )
    };
    match PopKey::parse_cose_key(&cbor, cssf_auth::MAX_DEPTH).map_err(|_| not_a_key())? {
        PopKey::Ec2 { kid, x, y } => {
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let pk = p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| not_a_key())?;
            Ok((pk, kid.map(|k| k.as_slice().to_vec())))
        }
        _ => Err(not_a_key()),
    }
}

impl AsKey {
    /// The matching verification keys (what the device is configured with).
    pub fn verification_keys(&self) -> Result<Vec<KeyEntry>> {
        match self {
            AsKey::Es256(sk) => verification_keys(Some(&sk.public_key()), None),
            AsKey::Hmac(k) => verification_keys(None, Some(k)),
        }
    }
}

/// What to mint.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// The signing key.
    pub as_key: AsKey,
    /// Issuer (`iss`), if any.
    pub issuer: Option<String>,
    /// Audience (`aud`): the resource server's name.
    pub audience: String,
    /// Scope: (path, AIF method bits) pairs.
    pub scope: Vec<(String, u64)>,
    /// Lifetime in seconds (`exp` = now + this; `iat` = now).
    pub expires_in: u64,
    /// Use `exi` (lifetime from reception, RFC 9200 §5.10.3) instead of
    /// `exp`/`iat`, for devices without a clock: the `cti` then carries a
    /// Sequence Number (milliseconds since the epoch, 8 bytes big-endian).
    pub exi: bool,
    /// PoP key identifier; random 4 bytes when `None`.
    pub kid: Option<Vec<u8>>,
}

/// A minted token and its PoP key.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The CWT (what the device verifies).
    pub token: Vec<u8>,
    /// The PoP key identifier (the client's `psk_identity`).
    pub kid: Vec<u8>,
    /// The PoP key (the client's PSK).
    pub key: Zeroizing<Vec<u8>>,
    /// `exp`.
    pub exp: u64,
}

/// Parses a scope `'/sensors/temp:GET /actuators/led:GET,PUT'` into AIF
/// entries (RFC 9237: path and method bit set).
pub fn parse_scope(s: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        let (path, methods) = item
            .rsplit_once(':')
            .ok_or_else(|| fail!("scope entry `{item}` wants PATH:METHOD[,METHOD...]"))?;
        if !path.starts_with('/') {
            return Err(fail!("scope path `{path}` must start with /"));
        }
        let mut bits = 0u64;
        for m in methods.split(',') {
            bits |= match m.to_ascii_uppercase().as_str() {
                "GET" => Method::Get.bit(),
                "POST" => Method::Post.bit(),
                "PUT" => Method::Put.bit(),
                "DELETE" => Method::Delete.bit(),
                "FETCH" => Method::Fetch.bit(),
                "PATCH" => Method::Patch.bit(),
                "IPATCH" => Method::IPatch.bit(),
                other => return Err(fail!("unknown method `{other}` in scope entry `{item}`")),
            };
        }
        out.push((path.to_string(), bits));
    }
    if out.is_empty() {
        return Err(fail!("empty scope"));
    }
    Ok(out)
}

/// Method names of an AIF permission set.
pub fn method_names(bits: u64) -> String {
    let all = [
        (Method::Get, "GET"),
        (Method::Post, "POST"),
        (Method::Put, "PUT"),
        (Method::Delete, "DELETE"),
        (Method::Fetch, "FETCH"),
        (Method::Patch, "PATCH"),
        (Method::IPatch, "iPATCH"),
    ];
    let v: Vec<&str> = all
        .iter()
        .filter(|(m, _)| bits & m.bit() != 0)
        .map(|(_, n)| *n)
        .collect();
    v.join(",")
}

/// Mints a token with a fresh 16-byte symmetric PoP key.
pub fn mint(req: &MintRequest) -> Result<Minted> {
    let mut k = Zeroizing::new(vec![0u8; 16]);
    OsRng.fill_bytes(&mut k);
    let kid = match &req.kid {
        Some(k) => k.clone(),
        None => {
            let mut b = [0u8; 4];
            OsRng.fill_bytes(&mut b);
            hex(&b).into_bytes()
        }
    };
    let mut cti = [0u8; 8];
    if req.exi {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        cti = ms.to_be_bytes();
    } else {
        OsRng.fill_bytes(&mut cti);
    }
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(&kid).map_err(|_| fail!("kid longer than 32 bytes"))?),
        k: Bytes::from_slice(&k).map_err(|e| fail!("PoP key: {e}"))?,
    };
    let entries: Vec<(&str, u64)> = req.scope.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    let mut aif = vec![0u8; Aif::buffer_len(&entries)];
    let n = Aif::emit(&entries, &mut aif).map_err(|e| fail!("scope: {e}"))?;
    aif.truncate(n);
    let now = unix_now();
    let exp = now
        .checked_add(req.expires_in)
        .ok_or_else(|| fail!("lifetime too long"))?;
    let claims = ClaimsSet {
        iss: req.issuer.as_deref(),
        aud: Some(&req.audience),
        exp: if req.exi {
            None
        } else {
            i64::try_from(exp).ok()
        },
        iat: if req.exi {
            None
        } else {
            i64::try_from(now).ok()
        },
        exi: req.exi.then_some(req.expires_in),
        cti: Some(&cti),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif)),
        ..Default::default()
    };
    let mut payload = Zeroizing::new(vec![0u8; 1024]);
    let plen = claims
        .emit(&mut payload)
        .map_err(|e| fail!("cannot encode the claims: {e}"))?;
    let body = payload.get(..plen).unwrap_or(&[]);
    let mut token = vec![0u8; plen + 200];
    let tlen = match &req.as_key {
        AsKey::Es256(sk) => sign1(&CoseKey::Es256Signing(sk.into()), None, body, &mut token),
        AsKey::Hmac(key) => {
            let ck = CoseKey::hmac(Algorithm::Hmac256, key).map_err(|e| fail!("AS key: {e}"))?;
            mac0(&ck, None, body, &mut token)
        }
    }
    .map_err(|e| fail!("cannot sign the token: {e}"))?;
    token.truncate(tlen);
    Ok(Minted {
        token,
        kid,
        key: k,
        exp,
    })
}

/// The AS's access-token response carrying `m` (RFC 9200 §5.8.2).
pub fn token_response(m: &Minted) -> Result<Vec<u8>> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(&m.kid).map_err(|_| fail!("kid too long"))?),
        k: Bytes::from_slice(&m.key).map_err(|e| fail!("PoP key: {e}"))?,
    };
    let mut ck = [0u8; 256];
    let n = pop
        .emit_cose_key(&mut ck)
        .map_err(|e| fail!("cannot encode the PoP key: {e}"))?;
    let mut e = minicbor::Encoder::new(Vec::new());
    let head = e
        .map(3)
        .and_then(|e| e.u64(ACCESS_TOKEN))
        .and_then(|e| e.bytes(&m.token))
        .and_then(|e| e.u64(CNF))
        .and_then(|e| e.map(1))
        .and_then(|e| e.u64(1))
        .map(|_| ());
    head.map_err(|_| fail!("cannot encode the token response"))?;
    e.writer_mut().extend_from_slice(ck.get(..n).unwrap_or(&[]));
    e.u64(ACE_PROFILE)
        .and_then(|e| e.u64(COAP_DTLS))
        .map_err(|_| fail!("cannot encode the token response"))?;
    Ok(e.into_writer())
}

/// A token file read back: the token, and the PoP key when the file is a
/// token response.
#[derive(Debug, Clone)]
pub struct TokenFile {
    /// The CWT.
    pub token: Vec<u8>,
    /// The PoP key the AS gave the client, if the file carries it.
    pub pop: Option<PopKey>,
    /// The `ace_profile`, if given.
    pub profile: Option<u64>,
}

impl TokenFile {
    /// The PoP key's kid and symmetric key (what the DTLS client needs).
    pub fn psk(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        let pop = self.pop.as_ref().ok_or_else(|| {
            fail!("the token file holds no PoP key (write it with `cssf-token mint`)")
        })?;
        let kid = pop
            .kid()
            .ok_or_else(|| fail!("the token's PoP key has no kid"))?;
        let k = pop
            .symmetric()
            .ok_or_else(|| fail!("the token's PoP key is not a symmetric key"))?;
        Ok((kid.to_vec(), Zeroizing::new(k.to_vec())))
    }
}

/// Decodes a token file: an access-token response map, or a bare CWT.
pub fn parse_token_file(bytes: &[u8]) -> Result<TokenFile> {
    let bad = || fail!("not an ACE token response or CWT");
    if bytes.first().is_some_and(|b| b >> 5 != 5) {
        return Ok(TokenFile {
            token: bytes.to_vec(),
            pop: None,
            profile: None,
        });
    }
    let mut d = minicbor::Decoder::new(bytes);
    let n = d.map().map_err(|_| bad())?.ok_or_else(bad)?;
    let (mut token, mut pop, mut profile) = (None, None, None);
    for _ in 0..n {
        match d.u64().map_err(|_| bad())? {
            ACCESS_TOKEN => token = Some(d.bytes().map_err(|_| bad())?.to_vec()),
            CNF => {
                if d.map().map_err(|_| bad())? != Some(1) || d.u64().map_err(|_| bad())? != 1 {
                    return Err(fail!("cnf: only a COSE_Key (key 1) is supported"));
                }
                let start = d.position();
                d.skip().map_err(|_| bad())?;
                let raw = bytes.get(start..d.position()).ok_or_else(bad)?;
                pop = Some(PopKey::parse_cose_key(raw, 8).map_err(|e| fail!("cnf COSE_Key: {e}"))?);
            }
            ACE_PROFILE => profile = Some(d.u64().map_err(|_| bad())?),
            _ => d.skip().map_err(|_| bad())?,
        }
    }
    Ok(TokenFile {
        token: token.ok_or_else(|| fail!("the token response has no access_token"))?,
        pop,
        profile,
    })
}

/// Reads a token file.
pub fn read_token_file(path: &Path) -> Result<TokenFile> {
    let bytes =
        std::fs::read(path).map_err(|e| fail!("cannot read token {}: {e}", path.display()))?;
    parse_token_file(&bytes).map_err(|e| fail!("{}: {e}", path.display()))
}

fn describe_claims(c: &Claims<'_>, lines: &mut Vec<String>) {
    let now = unix_now() as i64;
    if let Some(v) = c.iss {
        lines.push(format!("  iss   {v}"));
    }
    if let Some(v) = c.sub {
        lines.push(format!("  sub   {v}"));
    }
    match &c.aud {
        Some(Audience::One(a)) => lines.push(format!("  aud   {a}")),
        Some(Audience::Many(raw)) => lines.push(format!("  aud   (array) {}", hex(raw))),
        None => {}
    }
    for (name, v) in [("exp", c.exp), ("nbf", c.nbf), ("iat", c.iat)] {
        if let Some(t) = v {
            let rel = t - now;
            let when = if rel >= 0 {
                format!("in {rel} s")
            } else {
                format!("{} s ago", -rel)
            };
            lines.push(format!("  {name}   {t} ({when})"));
        }
    }
    if let Some(v) = c.exi {
        lines.push(format!("  exi   {v} s after reception"));
    }
    if let Some(v) = c.cti {
        lines.push(format!("  cti   {}", hex(v)));
    }
    match &c.cnf {
        Some(Cnf::Key(raw)) => match PopKey::parse_cose_key(raw, 8) {
            Ok(p) => lines.push(format!("  cnf   COSE_Key {}", pop_summary(&p))),
            Err(e) => lines.push(format!("  cnf   COSE_Key (unreadable: {e})")),
        },
        Some(Cnf::Encrypted(raw)) => {
            lines.push(format!("  cnf   Encrypted_COSE_Key, {} bytes", raw.len()))
        }
        Some(Cnf::Kid(k)) => lines.push(format!("  cnf   kid {}", kid_text(k))),
        // Forms of cssf-auth's features (e.g. `osc`, RFC 9203, which
        // holds a master secret): named, never printed.
        Some(_) => lines.push("  cnf   another form (not shown)".into()),
        None => {}
    }
    match &c.scope {
        Some(Scope::Aif(a)) => {
            let parts: Vec<String> = a
                .entries()
                .map(|e| match e {
                    Ok((p, bits)) => format!("{p} {}", method_names(bits)),
                    Err(e) => format!("(bad entry: {e})"),
                })
                .collect();
            lines.push(format!("  scope {} (AIF)", parts.join("; ")));
        }
        Some(Scope::Text(t)) => lines.push(format!("  scope \"{t}\" (text)")),
        None => {}
    }
}

/// A kid as text when printable, with its hex.
pub fn kid_text(kid: &[u8]) -> String {
    match printable(kid) {
        Some(s) if !s.is_empty() => format!("\"{s}\" ({})", hex(kid)),
        _ => hex(kid),
    }
}

/// One-line summary of a PoP key (the key bytes themselves are not shown).
pub fn pop_summary(p: &PopKey) -> String {
    match p {
        PopKey::Symmetric { kid, k } => format!(
            "symmetric {} bytes, kid {}",
            k.len(),
            kid.as_ref()
                .map_or("none".into(), |k| kid_text(k.as_slice()))
        ),
        PopKey::Ec2 { kid, .. } => format!(
            "EC2 P-256, kid {}",
            kid.as_ref()
                .map_or("none".into(), |k| kid_text(k.as_slice()))
        ),
        PopKey::KidOnly(k) => format!("kid only {}", kid_text(k.as_slice())),
        // Kinds of cssf-auth's features (e.g. OSCORE input material).
        _ => "another kind (not shown)".into(),
    }
}

/// A human-readable description of a token file; verifies the token when
/// `keys` is given (an error if the signature or MAC does not check out).
pub fn describe(file: &TokenFile, keys: Option<&[KeyEntry]>) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    if file.pop.is_some() || file.profile.is_some() {
        let profile = match file.profile {
            Some(COAP_DTLS) => "coap_dtls".to_string(),
            Some(p) => p.to_string(),
            None => "none given".to_string(),
        };
        lines.push(format!(
            "ACE access-token response (RFC 9200 5.8.2), profile {profile}"
        ));
    }
    if let Some(p) = &file.pop {
        lines.push(format!("PoP key for the client: {}", pop_summary(p)));
    }
    let limits = Limits::default();
    let msg = CoseMessage::parse(&file.token, &limits)
        .map_err(|e| fail!("the access token is not a COSE message: {e}"))?;
    let (kind, payload) = match &msg {
        CoseMessage::Sign1(m) => ("COSE_Sign1", Some(m.payload)),
        CoseMessage::Mac0(m) => ("COSE_Mac0", Some(m.payload)),
        CoseMessage::Encrypt0(_) => ("COSE_Encrypt0", None),
    };
    let alg = msg
        .header()
        .alg
        .map_or("no alg".to_string(), |a| format!("{a:?}"));
    lines.push(format!(
        "access token: {} bytes, {kind} ({alg})",
        file.token.len()
    ));
    match keys {
        Some(keys) => {
            let mut t = file.token.clone();
            let c = cssf_auth::cwt::verify(&mut t, keys, limits)
                .map_err(|e| fail!("token verification failed: {e}"))?;
            lines.push("claims (verified):".into());
            describe_claims(&c, &mut lines);
        }
        None => match payload {
            Some(p) => {
                let c = Claims::parse(p, &limits)
                    .map_err(|e| fail!("the token's claims do not decode: {e}"))?;
                lines.push("claims (NOT verified: give --as-public-key or --as-hmac-key):".into());
                describe_claims(&c, &mut lines);
            }
            None => lines.push("claims encrypted: give the key to decrypt".into()),
        },
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: AsKey) -> MintRequest {
        MintRequest {
            as_key: key,
            issuer: Some("as".into()),
            audience: "rs1".into(),
            scope: parse_scope("/sensors/temp:GET /actuators/led:GET,PUT").unwrap(),
            expires_in: 3600,
            exi: false,
            kid: Some(b"c1".to_vec()),
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("/a:GET /b:get,put").unwrap(),
            vec![("/a".into(), 1), ("/b".into(), 5)]
        );
        assert!(parse_scope("/a").is_err());
        assert!(parse_scope("a:GET").is_err());
        assert!(parse_scope("/a:JUMP").is_err());
        assert_eq!(method_names(5), "GET,PUT");
    }

    #[test]
    fn mint_write_read_verify() {
        for key in [
            AsKey::Es256(SecretKey::random(&mut OsRng)),
            AsKey::Hmac(Zeroizing::new(vec![7; 32])),
        ] {
            let m = mint(&request(key.clone())).unwrap();
            let file = parse_token_file(&token_response(&m).unwrap()).unwrap();
            assert_eq!(file.token, m.token);
            assert_eq!(file.profile, Some(COAP_DTLS));
            let (kid, k) = file.psk().unwrap();
            assert_eq!((kid, &k[..]), (b"c1".to_vec(), &m.key[..]));
            let keys = key.verification_keys().unwrap();
            let text = describe(&file, Some(&keys)).unwrap().join("\n");
            assert!(text.contains("claims (verified)"), "{text}");
            assert!(text.contains("/actuators/led GET,PUT"), "{text}");
            assert!(text.contains("aud   rs1"), "{text}");
            // The resource server accepts it.
            let mut rs: cssf_auth::AuthzInfo<'_, [KeyEntry]> =
                cssf_auth::AuthzInfo::new(cssf_auth::Config::new("rs1"), &keys[..]);
            let mut t = m.token.clone();
            let r = rs.post(std::time::Duration::ZERO, Some(unix_now()), &mut t, &mut []);
            assert_eq!(r.code, 0x41, "{:?}", r.error);
            // A different key refuses it.
            let other = AsKey::Hmac(Zeroizing::new(vec![8; 32]))
                .verification_keys()
                .unwrap();
            assert!(describe(&file, Some(&other)).is_err());
        }
    }

    #[test]
    fn bare_token_and_garbage() {
        let m = mint(&request(AsKey::Hmac(Zeroizing::new(vec![1; 32])))).unwrap();
        let f = parse_token_file(&m.token).unwrap();
        assert!(f.pop.is_none());
        assert!(f.psk().is_err());
        let text = describe(&f, None).unwrap().join("\n");
        assert!(text.contains("NOT verified"), "{text}");
        assert!(parse_token_file(&[0xa1, 0xff]).is_err());
        assert!(describe(&parse_token_file(b"garbage").unwrap(), None).is_err());
    }
}
