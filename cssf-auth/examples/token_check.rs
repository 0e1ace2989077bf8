//! The resource server's side of ACE (RFC 9200): an access token POSTed to
//! `/authz-info` is verified (COSE MAC, audience, lifetime, replay) and
//! stored; requests are then decided by its scope.
//!
//! `cargo run -p cssf-auth --features issuer --example token_check`: plays
//! the Authorization Server too (mints an HMAC-256 CWT for `/sensors/temp`
//! GET), then shows the decisions and a forged copy refused.
//! `... --example token_check -- TOKEN_FILE HMAC_KEY_HEX [AUDIENCE]`
//! checks a token made elsewhere (e.g. `cssf-token mint --as-hmac-key ...`).
// The workspace's lints are for library code; an example may index and use std.
#![allow(clippy::indexing_slicing, clippy::std_instead_of_core)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, KeyEntry, Method, PopKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Time: monotonic for the RS's own timers, the wall clock for `exp`.
    let now = Duration::ZERO;
    let wall = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let (token, key, audience) = match args.as_slice() {
        [file, key, rest @ ..] => (
            std::fs::read(file)?,
            unhex(key)?,
            rest.first().cloned().unwrap_or_else(|| "rs1".into()),
        ),
        [] => {
            let key = b"AS-RS shared HMAC key, demo only".to_vec();
            (mint(&key, wall)?, key, "rs1".into())
        }
        _ => return Err("usage: token_check [TOKEN_FILE HMAC_KEY_HEX [AUDIENCE]]".into()),
    };
    // The RS trusts one AS key (kid `as`) and is audience `rs1`.
    let keys = [KeyEntry::with_kid(
        b"as",
        CoseKey::hmac(Algorithm::Hmac256, &key)?,
    )?];
    let mut rs: AuthzInfo<'_, [KeyEntry]> = AuthzInfo::new(Config::new(&audience), &keys[..]);

    // A forged copy (one byte of the MAC changed) is refused...
    let mut forged = token.clone();
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    let r = rs.post(now, Some(wall), &mut forged, &mut [0; 8]);
    println!("forged token: {} ({:?})", code(r.code), r.error);
    // ...the real one is taken (the buffer is zeroized: it may hold keys).
    let r = rs.post(now, Some(wall), &mut token.clone(), &mut [0; 8]);
    println!("token: {} ({:?})", code(r.code), r.error);
    let Some(kid) = rs.last_accepted_kid() else {
        return Err("the token was refused".into());
    };
    println!(
        "PoP key id (the DTLS psk_identity): {:?}",
        String::from_utf8_lossy(kid.as_slice())
    );
    // Requests on the session bound to that key are decided by the scope.
    for (method, path) in [
        (Method::Get, "/sensors/temp"),
        (Method::Put, "/actuators/led"),
    ] {
        let d = rs.authorize(now, Some(wall), Some(kid.as_slice()), method, path);
        println!("{method:?} {path}: {d:?}");
    }
    Ok(())
}

/// The AS: a CWT (COSE_Mac0, HMAC 256/256) for audience `rs1`, scope
/// `/sensors/temp` GET (AIF), a symmetric PoP key with kid `client-1`,
/// valid for an hour.
fn mint(key: &[u8], wall: u64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"client-1")?),
        k: Bytes::from_slice(b"PoP key: 16 byte")?,
    };
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/sensors/temp", Method::Get.bit())], &mut aif)?;
    let mut claims = [0u8; 256];
    let len = ClaimsSet {
        aud: Some("rs1"),
        exp: Some(i64::try_from(wall + 3600)?),
        cti: Some(b"token-1"),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    }
    .emit(&mut claims)?;
    let mut out = [0u8; 512];
    let m = mac0(
        &CoseKey::hmac(Algorithm::Hmac256, key)?,
        Some(b"as"),
        &claims[..len],
        &mut out,
    )?;
    Ok(out[..m].to_vec())
}

fn code(c: u8) -> String {
    format!("{}.{:02}", c >> 5, c & 0x1f)
}

fn unhex(s: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    if s.len() % 2 != 0 {
        return Err("odd hex length".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(&s[i..i + 2], 16)?))
        .collect()
}
