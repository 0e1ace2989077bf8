//! Interop with independent COSE/CWT implementations: the PyPI packages
//! `cwt` and `pycose`, driven by tests/peers/cose_peer.py. Tokens they mint
//! (ES256 Sign1, HMAC Mac0, AES-CCM and ChaCha20/Poly1305 Encrypt0, an
//! exi-only HMAC 256/64 token) are accepted by our `/authz-info`; tokens we
//! mint verify in theirs; and a `cwt` token as an Authorization Server
//! issues it (the AS key's kid in the COSE header) works end to end:
//! upload, DTLS with its PoP key, scope enforced.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use core::time::Duration;
use core::time::Duration as StdDuration;

use cssf_auth::accounting::AuthEvent;
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Decision, KeyEntry, Method, PopKey,
};
use cssf_netsim::peer::{require_python_module, ChildGuard};

const AUD: &str = "coaps://rs1.example";

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/cose_peer.py")
}

fn versions() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import cwt, importlib.metadata as m; print('cwt', cwt.__version__, 'pycose', m.version('pycose'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if out.is_empty() {
        "cwt/pycose (unknown version)".into()
    } else {
        out
    }
}

/// Runs the peer script with a bounded wait; returns (success, stdout, stderr).
fn run_peer(args: &[&str]) -> (bool, String, String) {
    let child = Command::new("python3")
        .arg(script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut g = ChildGuard(child);
    let deadline = Instant::now() + StdDuration::from_secs(60);
    let status = loop {
        if let Some(s) = g.0.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(StdDuration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(o) = g.0.stdout.as_mut() {
        o.read_to_string(&mut out).unwrap();
    }
    if let Some(e) = g.0.stderr.as_mut() {
        e.read_to_string(&mut err).unwrap();
    }
    match status {
        Some(s) => (s.success(), out, err),
        None => (false, out, format!("timed out after 60 s; {err}")),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn es_signing() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap()
}

fn rs_keys() -> Vec<KeyEntry> {
    vec![
        KeyEntry::with_kid(b"as-es256", CoseKey::Es256(*es_signing().verifying_key())).unwrap(),
        KeyEntry::with_kid(
            b"as-hmac",
            CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap(),
        )
        .unwrap(),
        KeyEntry::with_kid(
            b"as-hmac64",
            CoseKey::hmac(Algorithm::Hmac256_64, &[0x12; 32]).unwrap(),
        )
        .unwrap(),
        KeyEntry::with_kid(
            b"rs-ccm",
            CoseKey::aead(Algorithm::AesCcm16_64_128, &[0x33; 16]).unwrap(),
        )
        .unwrap(),
        KeyEntry::with_kid(
            b"rs-chacha",
            CoseKey::aead(Algorithm::ChaCha20Poly1305, &[0x44; 32]).unwrap(),
        )
        .unwrap(),
    ]
}

fn wall() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn peers_present() -> bool {
    require_python_module("cwt", "pip install cwt")
        && require_python_module("pycose", "pip install pycose")
        && require_python_module("cbor2", "pip install cbor2")
}

#[test]
fn tokens_minted_by_cwt_and_pycose_are_accepted() {
    if !peers_present() {
        return;
    }
    let v = versions();
    let (ok, out, err) = run_peer(&["mint"]);
    assert!(ok, "{v}: minting failed: {err}");
    let keys = rs_keys();
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs.set_crypto(common::provider());
    let mut n = 0;
    for line in out.lines() {
        let (name, h) = line.split_once(' ').unwrap();
        let mut tok = hex(h);
        let mut resp = [0u8; 8];
        let r = rs.post(Duration::from_secs(1), Some(wall()), &mut tok, &mut resp);
        assert_eq!(
            r.code, 0x41,
            "{v}: token '{name}' from the Python peer refused: {r:?}"
        );
        let ev = rs.poll_event();
        assert!(
            matches!(ev, Some(AuthEvent::TokenAccepted { .. })),
            "{v} {name}: {ev:?}"
        );
        n += 1;
    }
    assert_eq!(n, 6, "{v}: expected six tokens from the peer, got: {out}");
    let now = Duration::from_secs(2);
    for kid in [&b"py-client"[..], b"py-kid-only", b"py-enc"] {
        assert_eq!(
            rs.authorize(now, Some(wall()), Some(kid), Method::Get, "/sensors/temp"),
            Decision::Allow,
            "{v}: scope from the peer's AIF byte string"
        );
        assert_ne!(
            rs.authorize(now, Some(wall()), Some(kid), Method::Put, "/sensors/temp"),
            Decision::Allow
        );
    }
    assert_eq!(
        rs.store().get(b"py-client").unwrap().pop.symmetric(),
        Some(&[0x55; 16][..])
    );
    // exi-only token: without any wall clock its lifetime counts from reception
    let keys = rs_keys();
    let mut rs2: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(AUD), &keys[..]);
    rs2.set_crypto(common::provider());
    let exi = out.lines().find(|l| l.starts_with("pycose-exi")).unwrap();
    let mut tok = hex(exi.split_once(' ').unwrap().1);
    let r = rs2.post(Duration::from_secs(10), None, &mut tok, &mut []);
    assert_eq!(
        r.code, 0x41,
        "{v}: pycose exi token without a wall clock: {r:?}"
    );
    assert_eq!(rs2.poll_timeout(), Some(Duration::from_secs(130)));
}

#[test]
fn tokens_we_mint_verify_in_cwt_and_pycose() {
    if !peers_present() {
        return;
    }
    let v = versions();
    let now = wall() as i64;
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"our-client").unwrap()),
        k: Bytes::from_slice(&[0x66; 16]).unwrap(),
    };
    let mut aif = [0u8; 64];
    let alen = Aif::emit(&[("/sensors/temp", 1), ("/actuators/led", 5)], &mut aif).unwrap();
    let claims = ClaimsSet {
        iss: Some("cssf-auth"),
        aud: Some(AUD),
        iat: Some(now),
        nbf: Some(now),
        exp: Some(now + 600),
        cti: Some(b"ours-1"),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..alen])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = claims.emit(&mut p).unwrap();
    let payload = &p[..plen];
    let mut pop_cbor = [0u8; 64];
    let klen = pop.emit_cose_key(&mut pop_cbor).unwrap();
    let mut t = [0u8; 512];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("es256", {
            let n = issuer::sign1(
                &CoseKey::Es256Signing(es_signing()),
                Some(b"as-es256"),
                payload,
                &mut t,
            )
            .unwrap();
            t[..n].to_vec()
        }),
        ("hmac", {
            let k = CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap();
            let n = issuer::mac0(&k, Some(b"as-hmac"), payload, &mut t).unwrap();
            t[..n].to_vec()
        }),
        ("pycose-hmac64", {
            let k = CoseKey::hmac(Algorithm::Hmac256_64, &[0x12; 32]).unwrap();
            let n = issuer::mac0(&k, Some(b"as-hmac64"), payload, &mut t).unwrap();
            t[..n].to_vec()
        }),
        ("ccm", {
            let k = CoseKey::aead(Algorithm::AesCcm16_64_128, &[0x33; 16]).unwrap();
            let n = issuer::encrypt0(&k, Some(b"rs-ccm"), &[0xa5; 13], payload, &mut t).unwrap();
            t[..n].to_vec()
        }),
        ("pycose-ccm", {
            let k = CoseKey::aead(Algorithm::AesCcm16_64_128, &[0x33; 16]).unwrap();
            let n = issuer::encrypt0(&k, Some(b"rs-ccm"), &[0x5a; 13], payload, &mut t).unwrap();
            t[..n].to_vec()
        }),
        ("chacha", {
            let k = CoseKey::aead(Algorithm::ChaCha20Poly1305, &[0x44; 32]).unwrap();
            let n = issuer::encrypt0(&k, Some(b"rs-chacha"), &[0x3c; 12], payload, &mut t).unwrap();
            t[..n].to_vec()
        }),
    ];
    for (name, tok) in &cases {
        let (ok, out, err) = run_peer(&["verify", name, &to_hex(tok)]);
        assert!(
            ok,
            "{v}: our '{name}' token refused by the Python peer: {err}"
        );
        let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(j["1"], "cssf-auth", "{v} {name}: {out}");
        assert_eq!(j["3"], AUD, "{v} {name}");
        assert_eq!(j["9"], to_hex(&aif[..alen]), "{v} {name}: AIF scope");
        assert_eq!(
            j["8"].as_str().unwrap(),
            format!("a101{}", to_hex(&pop_cbor[..klen])),
            "{v} {name}: cnf"
        );
    }
    // and a tampered one is refused by the peer (the check is real)
    let mut bad = cases[1].1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let (ok, _, _) = run_peer(&["verify", "hmac", &to_hex(&bad)]);
    assert!(!ok, "{v}: the peer accepted a tampered HMAC token");
}

#[test]
fn a_cwt_token_with_a_kid_in_its_header_works_end_to_end() {
    use cssf_auth::authorizer::{Authorizer, Proof, Requester, Verdict};
    if !peers_present() {
        return;
    }
    let v = versions();
    let (ok, out, err) = run_peer(&["mint-e2e"]);
    assert!(ok, "{v}: minting failed: {err}");
    // The resource server knows the AS keys but not the kids the AS puts
    // in its headers ("as-e2e", "as-es256"): keys configured without a kid.
    let keys = [
        KeyEntry::new(CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap()),
        KeyEntry::new(CoseKey::Es256(*es_signing().verifying_key())),
    ];
    let rs: core::cell::RefCell<AuthzInfo<'_, [KeyEntry]>> =
        core::cell::RefCell::new(AuthzInfo::new(Config::new(AUD), &keys[..]));
    rs.borrow_mut().set_crypto(common::provider());
    let now = Duration::from_secs(1);
    let wall = Some(wall());
    // 1. upload (POST /authz-info)
    for line in out.lines() {
        let (name, h) = line.split_once(' ').unwrap();
        assert!(
            h.contains("a104"),
            "{v} {name}: expected a kid in the unprotected header: {h}"
        );
        let mut tok = hex(h);
        let r = rs.borrow_mut().post(now, wall, &mut tok, &mut []);
        assert_eq!(r.code, 0x41, "{v}: token '{name}' refused: {r:?}");
    }
    // 2. DTLS with the PoP key: the bare kid, and RFC 9202's cnf form
    let mut cnf_form = vec![0xA1, 0x08, 0xA1, 0x01, 0xA2, 0x01, 0x04, 0x02, 0x49];
    cnf_form.extend_from_slice(b"py-e2e-es");
    let mut az: Authorizer<u64> = Authorizer::new();
    for (seed, identity) in [(1u64, b"py-e2e".to_vec()), (2, cnf_form)] {
        let (proven, h) = common::psk_handshake(&rs, &identity, &[0x77; 16], seed, now, wall)
            .unwrap_or_else(|| panic!("{v}: DTLS handshake with identity {identity:02x?}"));
        az.on_connected(h, Proof::Psk(&proven), &mut rs.borrow_mut())
            .unwrap();
        // 3. the scope is enforced: GET /sensors/temp only
        let mut ask =
            |m, p| az.decide(&mut rs.borrow_mut(), Requester::Session(h), m, p, now, wall);
        assert_eq!(ask(Method::Get, "/sensors/temp"), Verdict::Allow, "{v}");
        assert_eq!(
            ask(Method::Put, "/sensors/temp"),
            Verdict::MethodNotAllowed,
            "{v}"
        );
        assert_eq!(
            ask(Method::Put, "/actuators/led"),
            Verdict::Forbidden,
            "{v}"
        );
    }
    // a wrong PoP key does not connect
    assert!(common::psk_handshake(&rs, b"py-e2e", &[0x78; 16], 9, now, wall).is_none());
}
