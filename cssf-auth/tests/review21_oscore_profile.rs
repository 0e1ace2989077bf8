//! Review 21: attacks on the ACE OSCORE profile (RFC 9203) resource
//! server.
#![cfg(feature = "oscore-profile")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unused_imports
)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use core::time::Duration;

use cssf_auth::accounting::AuthEvent;
use cssf_auth::authorizer::{Authorizer, Granted, Proof, Requester, Rights, Verdict};
use cssf_auth::authz_info::OscorePost;
use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::oscore_profile::{
    master_salt, OscoreContextInput, OscoreError, OscoreInputMaterial, MAX_RESPONSE_LEN,
};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Error, KeyEntry, PopKey};
use cssf_coap::endpoint::{Config as CoapConfig, Endpoint, Event, Methods, RequestSecurity};
use cssf_coap::endpoint::{Resource, Response};
use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
use cssf_coap::{Code, Message, MessageBuilder, MessageType};
use cssf_netsim::peer::{require_python_module, ChildGuard};
use cssf_netsim::SimRng;

const AUD: &str = "coap://rs-osc.example";
const MS: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

fn as_key() -> CoseKey {
    CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap()
}

fn rs_keys() -> Vec<KeyEntry> {
    let es = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    vec![
        KeyEntry::with_kid(b"as-hmac", as_key()).unwrap(),
        KeyEntry::with_kid(b"as-es256", CoseKey::Es256(*es.verifying_key())).unwrap(),
        KeyEntry::with_kid(
            b"as-hmac64",
            CoseKey::hmac(Algorithm::Hmac256_64, &[0x12; 32]).unwrap(),
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

fn material(id: &[u8], salt: Option<&[u8]>, context_id: Option<&[u8]>) -> OscoreInputMaterial {
    OscoreInputMaterial {
        id: Bytes::from_slice(id).unwrap(),
        ms: Bytes::from_slice(&MS).unwrap(),
        salt: salt.map(|s| Bytes::from_slice(s).unwrap()),
        context_id: context_id.map(|c| Bytes::from_slice(c).unwrap()),
    }
}

/// An HMAC 256 token (kid "as-hmac") for `cnf`, granting GET on /temp and
/// GET on /led, living `exi` seconds from reception.
fn token_with(cnf: CnfOut<'_>, cti: &[u8], exi: u64) -> Vec<u8> {
    let mut aif = [0u8; 64];
    let n = Aif::emit(&[("/temp", 1), ("/led", 1)], &mut aif).unwrap();
    let c = ClaimsSet {
        aud: Some(AUD),
        exi: Some(exi),
        cti: Some(cti),
        cnf: Some(cnf),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 512];
    let n = c.emit(&mut p).unwrap();
    let mut t = [0u8; 600];
    let m = mac0(&as_key(), Some(b"as-hmac"), &p[..n], &mut t).unwrap();
    t[..m].to_vec()
}

fn token(m: &OscoreInputMaterial, cti: &[u8]) -> Vec<u8> {
    token_with(CnfOut::Osc(m), cti, 60)
}

fn bstr(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        n @ 0..=23 => out.push(0x40 | n as u8),
        n @ 24..=255 => out.extend_from_slice(&[0x58, n as u8]),
        n => out.extend_from_slice(&[0x59, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(b);
}

/// The RFC 9203 §4.1 payload `{1: token, 40: nonce1, 43: id1}`.
fn request(token: &[u8], nonce1: Option<&[u8]>, id1: Option<&[u8]>) -> Vec<u8> {
    let n = 1 + usize::from(nonce1.is_some()) + usize::from(id1.is_some());
    let mut p = vec![0xa0 | n as u8, 0x01];
    bstr(&mut p, token);
    if let Some(n1) = nonce1 {
        p.extend_from_slice(&[0x18, 40]);
        bstr(&mut p, n1);
    }
    if let Some(id) = id1 {
        p.extend_from_slice(&[0x18, 43]);
        bstr(&mut p, id);
    }
    p
}

/// The 2.01 payload: (nonce2, ace_server_recipientid).
fn answer(p: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(p[..3], [0xa2, 0x18, 42], "{p:02x?}");
    let n2len = usize::from(p[3] & 0x1f);
    let n2 = p[4..4 + n2len].to_vec();
    let rest = &p[4 + n2len..];
    assert_eq!(rest[..2], [0x18, 44]);
    let idlen = usize::from(rest[2] & 0x1f);
    assert_eq!(rest.len(), 3 + idlen);
    (n2, rest[3..].to_vec())
}

type Rs<'k> = AuthzInfo<'k, [KeyEntry]>;

fn rs(keys: &[KeyEntry]) -> Rs<'_> {
    AuthzInfo::new(Config::new(AUD), keys)
}

fn nothing_in_use(_: &[u8], _: Option<&[u8]>) -> bool {
    false
}

/// Posts `payload` at `secs`; the response, its payload and the inputs.
fn post(
    rs: &mut Rs<'_>,
    rng: &mut SimRng,
    secs: u64,
    payload: &[u8],
) -> (cssf_auth::Response, Vec<u8>, Option<OscoreContextInput>) {
    let mut p = payload.to_vec();
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let (r, input) = rs.post_oscore(
        OscorePost {
            now: Duration::from_secs(secs),
            wall: None,
            rng,
            in_use: &nothing_in_use,
        },
        &mut p,
        &mut out,
    );
    assert!(p.iter().all(|b| *b == 0), "payload zeroized");
    (r, out[..r.payload_len].to_vec(), input)
}

fn rs_context(i: &OscoreContextInput) -> SecurityContext {
    let p = Params {
        master_secret: i.master_secret(),
        master_salt: i.master_salt(),
        id_context: i.id_context(),
        sender_id: i.sender_id(),
        recipient_id: i.recipient_id(),
    };
    SecurityContext::new(&p, SenderSequence::Volatile).unwrap()
}

/// The client's side (RFC 9203 §4.3): its own nonce1, the RS's nonce2 and
/// ID2; Sender ID = ID2, Recipient ID = ID1.
fn client_context(
    m: &OscoreInputMaterial,
    n1: &[u8],
    n2: &[u8],
    id1: &[u8],
    id2: &[u8],
) -> SecurityContext {
    let salt = master_salt(m.salt.as_ref().map_or(&[][..], |s| s.as_slice()), n1, n2).unwrap();
    let p = Params {
        master_secret: m.ms.as_slice(),
        master_salt: salt.as_slice(),
        id_context: m.context_id.as_ref().map(|c| c.as_slice()),
        sender_id: id2,
        recipient_id: id1,
    };
    SecurityContext::new(&p, SenderSequence::Volatile).unwrap()
}

fn removed(rs: &mut Rs<'_>) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while let Some(ev) = rs.poll_event() {
        if let AuthEvent::OscoreContextRemoved { recipient_id, .. } = ev {
            v.push(recipient_id.as_slice().to_vec());
        }
    }
    v
}

/// The `/authz-info` POST of RFC 9203 is unprotected: anyone on the path
/// sees the access token. Re-posting those bytes with a nonce1 of the
/// attacker's choosing is taken without any proof of possession of the
/// Master Secret, and replaces the legitimate client's context (its
/// binding is removed and `OscoreContextRemoved` tells the server to drop
/// the context the client is using). The attacker cannot derive the new
/// keys, but can unbind the client's context as often as it likes. A
/// re-POST should not end a binding whose context is in use before the new
/// context has been used by its holder (or be refused while the binding
/// lives).
///
/// Not fixed yet (a known limitation, said in the README and the crate
/// README): ignored until a re-POST keeps the old binding until the new
/// context is used. `cargo test -p cssf-auth --features oscore-profile
/// --test review21_oscore_profile -- --ignored` shows it failing.
#[test]
#[ignore = "known limitation: a re-POST of an observed token replaces the client's context"]
fn eavesdropper_repost_of_the_token_unbinds_the_clients_context() {
    let keys = rs_keys();
    let mut rs = rs(&keys);
    let mut rng = SimRng::new(1);
    let mut az: Authorizer<u64> = Authorizer::new();
    let m = material(b"osc-v", None, None);
    let tok = token(&m, b"cti-v");
    // The client's POST.
    let (r, p1, i1) = post(
        &mut rs,
        &mut rng,
        1,
        &request(&tok, Some(&[1; 8]), Some(&[0x40])),
    );
    assert_eq!(r.code, 0x41, "{r:?}");
    let _i1 = i1.unwrap();
    let (_, id2) = answer(&p1);
    az.on_connected(
        0,
        Proof::Oscore {
            recipient_id: &id2,
            id_context: None,
        },
        &mut rs,
    )
    .unwrap();
    let _ = removed(&mut rs);
    let get = |az: &mut Authorizer<u64>, rs: &mut Rs<'_>| {
        az.decide(
            rs,
            Requester::Session(0),
            cssf_auth::Method::Get,
            "/temp",
            Duration::from_secs(2),
            None,
        )
    };
    assert_eq!(get(&mut az, &mut rs), Verdict::Allow);
    // The attacker replays the token bytes it saw, with its own nonce1 and
    // ID1; it holds no key.
    let (r, _, _) = post(
        &mut rs,
        &mut rng,
        2,
        &request(&tok, Some(&[0xAA; 8]), Some(&[0x66])),
    );
    assert_eq!(r.code, 0x41, "re-POST taken: {r:?}");
    assert!(
        removed(&mut rs).is_empty(),
        "a re-POST by someone without the Master Secret removed the client's context"
    );
    assert_eq!(
        rs.oscore_token(&id2, None).map(|k| k.as_slice().to_vec()),
        Some(b"osc-v".to_vec()),
        "the client's context lost its token binding"
    );
    assert_eq!(
        get(&mut az, &mut rs),
        Verdict::Allow,
        "the client lost its rights"
    );
}
