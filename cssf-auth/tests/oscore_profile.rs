//! The OSCORE profile of ACE (RFC 9203), resource-server side: a token
//! whose `cnf` is an OSCORE_Input_Material is posted to `/authz-info`
//! with `nonce1` and `ace_client_recipientid`, the RS answers `nonce2` and
//! `ace_server_recipientid`, both sides derive the OSCORE context, and
//! requests under that context get the token's scope, until the token
//! goes. The derivation is checked against an independent HKDF (Python
//! `cryptography`), tokens minted in Python (`cwt`'s COSE layer, `pycose`)
//! are accepted, and the refusals (bad MAC, expired, missing or
//! unsupported fields, wrong profile, replayed POST, Recipient ID choice,
//! no room) leave no state behind.
#![cfg(feature = "oscore-profile")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
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

// ---- end to end through cssf-coap's Endpoint ----

static RESOURCES: [Resource; 3] = [
    Resource::new("authz-info", Methods::POST),
    Resource::new("temp", Methods::GET),
    Resource::new("led", Methods::GET.union(Methods::PUT)),
];

type Server = Endpoint<u8, SimRng>;

fn drain(ep: &mut Server) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1280];
    while let Some(tx) = ep.poll_transmit(Duration::ZERO, &mut buf).unwrap() {
        out.push(buf[..tx.len].to_vec());
    }
    out
}

fn coap(code: Code, mid: u16, path: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = MessageBuilder::<8>::new(MessageType::Con, code, mid);
    let token = mid.to_be_bytes();
    b.token(&token).unwrap().uri_path(path).unwrap();
    if !payload.is_empty() {
        b.payload(payload);
    }
    let mut buf = [0u8; 1024];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// The server application: `/authz-info` through `post_oscore` (a new
/// context added to the endpoint and reported to the Authorizer), every
/// other request decided by the Authorizer for its OSCORE context.
struct App<'k> {
    rs: Rs<'k>,
    az: Authorizer<u64>,
    ep: Server,
    rng: SimRng,
}

impl App<'_> {
    fn handle(&mut self, secs: u64, datagram: &[u8]) -> Vec<u8> {
        let now = Duration::from_secs(secs);
        let mut d = datagram.to_vec();
        self.ep.handle_datagram(now, 1, &mut d).unwrap();
        let Some(Event::Request { id, request, .. }) = self.ep.poll_event() else {
            panic!("no request")
        };
        let m = request.message().unwrap();
        let path: Vec<u8> = m.uri_path().next().unwrap().to_vec();
        let path = format!("/{}", String::from_utf8(path).unwrap());
        let method = cssf_auth::Method::from_code(request.code().0).unwrap();
        if path == "/authz-info" {
            let mut payload = request.payload().to_vec();
            let mut out = [0u8; MAX_RESPONSE_LEN];
            let (r, input) = self.rs.post_oscore(
                OscorePost {
                    now,
                    wall: None,
                    rng: &mut self.rng,
                    in_use: &nothing_in_use,
                },
                &mut payload,
                &mut out,
            );
            if let Some(i) = input {
                let idx = self.ep.add_oscore_context(rs_context(&i)).unwrap() as u64;
                let proof = Proof::Oscore {
                    recipient_id: i.recipient_id(),
                    id_context: i.id_context(),
                };
                assert_eq!(
                    self.az.on_connected(idx, proof, &mut self.rs),
                    Ok(Granted::Token)
                );
            }
            let rsp = Response::new(Code(r.code)).payload(&out[..r.payload_len]);
            self.ep.respond(now, id, &rsp).unwrap();
        } else {
            let who = match request.security() {
                RequestSecurity::Oscore { context, .. } => Requester::Session(context as u64),
                _ => Requester::Plain,
            };
            let v = self.az.decide(&mut self.rs, who, method, &path, now, None);
            let rsp = match v.code() {
                None => Response::new(Code::CONTENT).payload(b"21.5"),
                Some(c) => Response::new(Code(c)),
            };
            self.ep.respond(now, id, &rsp).unwrap();
        }
        let mut sent = drain(&mut self.ep);
        assert_eq!(sent.len(), 1);
        sent.remove(0)
    }
}

/// The inner code and payload of a protected response.
fn open(
    ctx: &mut SecurityContext,
    binding: &mut cssf_coap::oscore::RequestBinding,
    rsp: &[u8],
) -> (Code, Vec<u8>) {
    let mut msg = rsp.to_vec();
    let mut out = [0u8; 512];
    let n = ctx.unprotect_response(binding, &mut msg, &mut out).unwrap();
    let m = Message::parse(&out[..n]).unwrap();
    (m.code(), m.payload().to_vec())
}

#[test]
fn a_token_keys_an_oscore_context_whose_requests_get_its_scope() {
    let keys = rs_keys();
    let mut app = App {
        rs: rs(&keys),
        az: Authorizer::new(),
        ep: Endpoint::new(CoapConfig::default(), SimRng::new(3), &RESOURCES),
        rng: SimRng::new(9),
    };
    app.az
        .set_public(Rights::parse("/authz-info:POST").unwrap());
    let m = material(b"osc-1", Some(&[0x5a; 8]), Some(&[0xc1, 0xd2]));
    let (n1, id1) = ([0x11u8; 8], [0x21u8]);
    let payload = request(&token(&m, b"cti-e2e"), Some(&n1), Some(&id1));
    // POST /authz-info, plain CoAP
    let rsp = app.handle(1, &coap(Code::POST, 1, "authz-info", &payload));
    let rsp = Message::parse(&rsp).unwrap();
    assert_eq!(rsp.code(), Code::CREATED);
    let (n2, id2) = answer(rsp.payload());
    assert_eq!(n2.len(), 8);
    assert_ne!(id2, id1);
    let mut client = client_context(&m, &n1, &n2, &id1, &id2);
    assert_eq!(client.id_context(), Some(&[0xc1, 0xd2][..]));

    // GET /temp under the context: in scope
    let mut wire = [0u8; 512];
    let (n, mut b) = client
        .protect_request(&coap(Code::GET, 2, "temp", &[]), &mut wire)
        .unwrap();
    let rsp = app.handle(2, &wire[..n]);
    assert_eq!(
        open(&mut client, &mut b, &rsp),
        (Code::CONTENT, b"21.5".to_vec())
    );
    // PUT /led: the path is in scope, not the method (4.05); PUT on a
    // path outside the scope: 4.03
    let (n, mut b) = client
        .protect_request(&coap(Code::PUT, 3, "led", b"1"), &mut wire)
        .unwrap();
    let rsp = app.handle(3, &wire[..n]);
    assert_eq!(open(&mut client, &mut b, &rsp).0, Code::new(4, 5));
    let (n, mut b) = client
        .protect_request(&coap(Code::GET, 4, "authz-inf", &[]), &mut wire)
        .unwrap();
    let mut d = wire[..n].to_vec();
    app.ep
        .handle_datagram(Duration::from_secs(4), 1, &mut d)
        .unwrap();
    // (an unknown resource is the endpoint's own 4.04)
    let rsp = drain(&mut app.ep).remove(0);
    assert_eq!(open(&mut client, &mut b, &rsp).0, Code::new(4, 4));
    let out_of_scope = app.az.decide(
        &mut app.rs,
        Requester::Session(0),
        cssf_auth::Method::Put,
        "/door",
        Duration::from_secs(4),
        None,
    );
    assert_eq!(out_of_scope, Verdict::Forbidden);
    // The same request unprotected: no grant
    let rsp = app.handle(5, &coap(Code::GET, 5, "temp", &[]));
    assert_eq!(Message::parse(&rsp).unwrap().code(), Code::UNAUTHORIZED);
    // A context keyed with another nonce1 does not open the RS's
    let mut wrong = client_context(&m, &[0x12; 8], &n2, &id1, &id2);
    let (n, _) = wrong
        .protect_request(&coap(Code::GET, 6, "temp", &[]), &mut wire)
        .unwrap();
    let mut d = wire[..n].to_vec();
    app.ep
        .handle_datagram(Duration::from_secs(6), 1, &mut d)
        .unwrap();
    assert!(app.ep.poll_event().is_none(), "forged request routed");
    drain(&mut app.ep);

    // The token lives 60 s: then its binding goes, with an event, and the
    // context's requests get no grant even if the caller kept it.
    let _ = removed(&mut app.rs);
    app.rs.handle_timeout(Duration::from_secs(62), None);
    assert_eq!(removed(&mut app.rs), vec![id2.clone()]);
    assert_eq!(app.rs.oscore_bindings(), 0);
    let (n, mut b) = client
        .protect_request(&coap(Code::GET, 7, "temp", &[]), &mut wire)
        .unwrap();
    let rsp = app.handle(63, &wire[..n]);
    assert_eq!(open(&mut client, &mut b, &rsp).0, Code::UNAUTHORIZED);
}

#[test]
fn reposting_the_token_rekeys_and_a_replayed_post_is_refused() {
    let keys = rs_keys();
    let mut rs = rs(&keys);
    let mut rng = SimRng::new(1);
    let mut az: Authorizer<u64> = Authorizer::new();
    let m = material(b"osc-2", None, None);
    let tok = token(&m, b"cti-2");
    let first = request(&tok, Some(&[1; 8]), Some(&[0x40]));
    let (r, p1, i1) = post(&mut rs, &mut rng, 1, &first);
    assert_eq!(r.code, 0x41, "{r:?}");
    let i1 = i1.unwrap();
    let (_, id2a) = answer(&p1);
    assert_eq!(i1.recipient_id(), &id2a[..]);
    assert_eq!(i1.sender_id(), &[0x40]);
    az.on_connected(
        0,
        Proof::Oscore {
            recipient_id: &id2a,
            id_context: None,
        },
        &mut rs,
    )
    .unwrap();
    let _ = removed(&mut rs);
    // the same POST again: refused, nothing changes
    let (r, _, none) = post(&mut rs, &mut rng, 2, &first);
    assert_eq!(r.error, Some(Error::Oscore(OscoreError::NonceReplay)));
    assert_eq!(r.code, 0x80);
    assert!(none.is_none());
    assert!(removed(&mut rs).is_empty());
    assert_eq!(rs.oscore_token(&id2a, None).unwrap().as_slice(), b"osc-2");
    let get = |az: &mut Authorizer<u64>, rs: &mut Rs<'_>, s: u64| {
        az.decide(
            rs,
            Requester::Session(s),
            cssf_auth::Method::Get,
            "/temp",
            Duration::from_secs(3),
            None,
        )
    };
    assert_eq!(get(&mut az, &mut rs, 0), Verdict::Allow);
    // the same token with a fresh nonce1: a new context, with other keys
    // and another Recipient ID, replacing the first
    let (r, p2, i2) = post(
        &mut rs,
        &mut rng,
        3,
        &request(&tok, Some(&[2; 8]), Some(&[0x40])),
    );
    assert_eq!(r.code, 0x41, "{r:?}");
    let i2 = i2.unwrap();
    let (_, id2b) = answer(&p2);
    assert_ne!(id2a, id2b);
    assert_ne!(i1.master_salt(), i2.master_salt());
    assert_eq!(removed(&mut rs), vec![id2a.clone()]);
    assert_eq!(rs.store().iter().count(), 1, "one record for the token");
    assert_eq!(rs.oscore_bindings(), 1);
    assert!(rs.oscore_token(&id2a, None).is_none());
    // the first context's grant is gone; the second one's works
    assert_eq!(get(&mut az, &mut rs, 0), Verdict::Unauthorized);
    az.on_connected(
        1,
        Proof::Oscore {
            recipient_id: &id2b,
            id_context: None,
        },
        &mut rs,
    )
    .unwrap();
    assert_eq!(get(&mut az, &mut rs, 1), Verdict::Allow);
    // an OSCORE context's handle does not take a DTLS handshake's key
    // noted under the same number
    rs.note_handshake_key(1, [7; 32]);
    az.on_connected(
        1,
        Proof::Oscore {
            recipient_id: &id2b,
            id_context: None,
        },
        &mut rs,
    )
    .unwrap();
    assert_eq!(rs.handshake_key(1), Some([7; 32]));
    // a Recipient ID bound to nothing grants nothing
    assert_eq!(
        az.on_connected(
            2,
            Proof::Oscore {
                recipient_id: &[0xEE, 0xEE],
                id_context: None,
            },
            &mut rs,
        ),
        Ok(Granted::Anonymous)
    );
    assert_eq!(get(&mut az, &mut rs, 2), Verdict::Unauthorized);
    // and the first POST replayed now: still refused (nonce history)
    let (r, _, _) = post(&mut rs, &mut rng, 4, &first);
    assert_eq!(r.error, Some(Error::Oscore(OscoreError::NonceReplay)));
    assert_eq!(get(&mut az, &mut rs, 1), Verdict::Allow);
}

#[test]
fn recipient_ids_differ_from_the_clients_and_from_those_in_use() {
    let keys = rs_keys();
    let mut rs = rs(&keys);
    let mut rng = SimRng::new(2);
    let mut ids = Vec::new();
    for (i, id1) in [[0x00u8], [0x01], [0x00]].iter().enumerate() {
        let m = material(format!("osc-id{i}").as_bytes(), None, None);
        let tok = token(&m, format!("cti-id{i}").as_bytes());
        let (r, p, _) = post(
            &mut rs,
            &mut rng,
            1,
            &request(&tok, Some(&[7; 8]), Some(id1)),
        );
        assert_eq!(r.code, 0x41, "{r:?}");
        let (_, id2) = answer(&p);
        assert_ne!(&id2[..], &id1[..]);
        assert!(!ids.contains(&id2), "{id2:?} handed out twice");
        ids.push(id2);
    }
    // IDs the caller uses elsewhere are skipped
    let m = material(b"osc-id3", None, None);
    let mut p = request(&token(&m, b"cti-id3"), Some(&[7; 8]), Some(&[0x09]));
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let taken = |id: &[u8], _: Option<&[u8]>| id.len() == 1;
    let (r, input) = rs.post_oscore(
        OscorePost {
            now: Duration::from_secs(1),
            wall: None,
            rng: &mut rng,
            in_use: &taken,
        },
        &mut p,
        &mut out,
    );
    assert_eq!(r.code, 0x41, "{r:?}");
    assert_eq!(input.unwrap().recipient_id().len(), 2);
    // nothing free: 5.03, the token is not stored
    let keys2 = rs_keys();
    let mut rs2 = rs_(&keys2);
    let m = material(b"osc-full", None, None);
    let mut p = request(&token(&m, b"cti-full"), Some(&[7; 8]), Some(&[0x09]));
    let all = |_: &[u8], _: Option<&[u8]>| true;
    let (r, input) = rs2.post_oscore(
        OscorePost {
            now: Duration::from_secs(1),
            wall: None,
            rng: &mut rng,
            in_use: &all,
        },
        &mut p,
        &mut out,
    );
    assert_eq!(r.error, Some(Error::Oscore(OscoreError::NoRecipientId)));
    assert_eq!(r.code, 0xA3);
    assert!(input.is_none());
    assert_eq!(rs2.store().iter().count(), 0);
}

fn rs_(keys: &[KeyEntry]) -> Rs<'_> {
    rs(keys)
}

#[test]
fn refusals_leave_no_state() {
    let keys = rs_keys();
    let mut rs = rs(&keys);
    let mut rng = SimRng::new(4);
    let m = material(b"osc-r", None, None);
    let good = token(&m, b"cti-r");
    let mut check = |rs: &mut Rs<'_>, payload: &[u8], want: Error| {
        let (r, p, input) = post(rs, &mut rng, 1, payload);
        assert_eq!(r.error, Some(want), "{r:?}");
        assert_eq!(r.code, want.code());
        assert!(input.is_none());
        assert!(p.is_empty() || p == [0xa1, 0x18, 30, 1], "{p:02x?}");
        assert_eq!(rs.store().iter().count(), 0);
        assert_eq!(rs.oscore_bindings(), 0);
    };
    // a flipped bit in the MAC
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    check(
        &mut rs,
        &request(&bad, Some(&[1; 8]), Some(&[1])),
        Error::VerificationFailed,
    );
    // missing nonce1, missing ace_client_recipientid, missing token
    check(
        &mut rs,
        &request(&good, None, Some(&[1])),
        Error::Oscore(OscoreError::MissingParameter),
    );
    check(
        &mut rs,
        &request(&good, Some(&[1; 8]), None),
        Error::Oscore(OscoreError::MissingParameter),
    );
    check(
        &mut rs,
        &[0xa2, 0x18, 40, 0x41, 1, 0x18, 43, 0x41, 1],
        Error::Oscore(OscoreError::MissingParameter),
    );
    // oversized: a 17-byte nonce1, an 8-byte Recipient ID
    check(
        &mut rs,
        &request(&good, Some(&[1; 17]), Some(&[1])),
        Error::Oscore(OscoreError::FieldLength),
    );
    check(
        &mut rs,
        &request(&good, Some(&[1; 8]), Some(&[1; 8])),
        Error::Oscore(OscoreError::FieldLength),
    );
    // a material without ms, without id, with another AEAD (A128GCM, 1)
    for (osc, want) in [
        (
            &[0xa1, 0x00, 0x41, 0x01][..],
            OscoreError::MissingMasterSecret,
        ),
        (&[0xa1, 0x02, 0x41, 0x01][..], OscoreError::MissingId),
        (
            &[0xa3, 0x00, 0x41, 0x01, 0x02, 0x41, 0x01, 0x04, 0x01][..],
            OscoreError::UnsupportedAlg,
        ),
    ] {
        let t = raw_osc_token(osc, b"cti-raw");
        check(
            &mut rs,
            &request(&t, Some(&[1; 8]), Some(&[1])),
            Error::Oscore(want),
        );
    }
    // a DTLS-profile token (a symmetric COSE_Key) posted with nonces
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"dtls-1").unwrap()),
        k: Bytes::from_slice(&[9; 16]).unwrap(),
    };
    let dtls = token_with(CnfOut::Key(&pop), b"cti-dtls", 60);
    check(
        &mut rs,
        &request(&dtls, Some(&[1; 8]), Some(&[1])),
        Error::Oscore(OscoreError::WrongProfile),
    );
    // an OSCORE token posted bare (RFC 9202 style): refused too
    let mut bare = good.clone();
    let r = rs.post(Duration::from_secs(1), None, &mut bare, &mut [0u8; 8]);
    assert_eq!(r.error, Some(Error::Oscore(OscoreError::WrongProfile)));
    assert_eq!(rs.store().iter().count(), 0);
    // expired: exp in the past against the wall clock
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/temp", 1)], &mut aif).unwrap();
    let c = ClaimsSet {
        aud: Some(AUD),
        exp: Some(wall() as i64 - 10),
        cti: Some(b"cti-old"),
        cnf: Some(CnfOut::Osc(&m)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut pl = [0u8; 256];
    let pn = c.emit(&mut pl).unwrap();
    let mut t = [0u8; 300];
    let tn = mac0(&as_key(), Some(b"as-hmac"), &pl[..pn], &mut t).unwrap();
    let mut p = request(&t[..tn], Some(&[1; 8]), Some(&[1]));
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let (r, input) = rs.post_oscore(
        OscorePost {
            now: Duration::from_secs(1),
            wall: Some(wall()),
            rng: &mut SimRng::new(5),
            in_use: &nothing_in_use,
        },
        &mut p,
        &mut out,
    );
    assert_eq!(r.error, Some(Error::Expired));
    assert!(input.is_none());
    // an answer buffer too short: refused before the token is stored
    let mut p = request(&good, Some(&[1; 8]), Some(&[1]));
    let (r, input) = rs.post_oscore(
        OscorePost {
            now: Duration::from_secs(1),
            wall: None,
            rng: &mut SimRng::new(5),
            in_use: &nothing_in_use,
        },
        &mut p,
        &mut [0u8; 8],
    );
    assert!(
        matches!(r.error, Some(Error::BufferTooSmall { .. })),
        "{r:?}"
    );
    assert!(input.is_none());
    assert_eq!(rs.store().iter().count(), 0);
    // and the good one is then taken
    let (r, _, input) = post(
        &mut rs,
        &mut SimRng::new(6),
        1,
        &request(&good, Some(&[1; 8]), Some(&[1])),
    );
    assert_eq!(r.code, 0x41, "{r:?}");
    assert_eq!(input.unwrap().token_kid(), b"osc-r");
}

/// A token whose `cnf` is `{4: osc}` with `osc` given as raw CBOR.
fn raw_osc_token(osc: &[u8], cti: &[u8]) -> Vec<u8> {
    // {3: AUD, 7: cti, 8: {4: osc}, 9: h'AIF', 40: 60}
    let mut aif = [0u8; 32];
    let an = Aif::emit(&[("/temp", 1)], &mut aif).unwrap();
    let mut p = vec![0xa5, 0x03];
    p.push(0x60 | AUD.len() as u8);
    p.extend_from_slice(AUD.as_bytes());
    p.push(0x07);
    bstr(&mut p, cti);
    p.extend_from_slice(&[0x08, 0xa1, 0x04]);
    p.extend_from_slice(osc);
    p.push(0x09);
    bstr(&mut p, &aif[..an]);
    p.extend_from_slice(&[0x18, 40, 0x18, 60]);
    let mut t = [0u8; 300];
    let n = mac0(&as_key(), Some(b"as-hmac"), &p, &mut t).unwrap();
    t[..n].to_vec()
}

// ---- against the Python peer ----

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ace_oscore_peer.py")
}

fn peers_present() -> bool {
    require_python_module("cwt", "pip install cwt")
        && require_python_module("pycose", "pip install pycose")
        && require_python_module("cbor2", "pip install cbor2")
        && require_python_module("cryptography", "pip install cryptography")
}

fn versions() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m; print(*(p + ' ' + m.version(p) for p in ('cwt', 'pycose', 'cryptography')))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if out.is_empty() {
        "cwt/pycose/cryptography (unknown versions)".into()
    } else {
        out
    }
}

fn run_peer(args: &[&str]) -> String {
    let child = Command::new("python3")
        .arg(script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut g = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = g.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "{}: peer timed out", versions());
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    g.0.stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    g.0.stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "{}: peer {args:?} failed: {err}",
        versions()
    );
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    if b.is_empty() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// salt, contextId, nonce1, ace_client_recipientid.
type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [u8], &'a [u8]);

#[test]
fn derivation_matches_an_independent_hkdf() {
    if !peers_present() {
        return;
    }
    let v = versions();
    let keys = rs_keys();
    let mut rs = rs(&keys);
    let mut rng = SimRng::new(11);
    let cases: [Case<'_>; 4] = [
        (None, None, &[0x11; 8], &[0x01]),
        (Some(&[0x5a; 8]), None, &[0x22; 8], &[]),
        (
            Some(&[0x9e, 0x7c]),
            Some(&[0x0c, 0x1d, 0x2e]),
            &[0x33; 16],
            &[1, 2, 3, 4, 5, 6, 7],
        ),
        (Some(&[]), Some(&[]), &[0x44], &[0x42]),
    ];
    for (i, (salt, ctx, n1, id1)) in cases.into_iter().enumerate() {
        let m = material(format!("osc-d{i}").as_bytes(), salt, ctx);
        let tok = token(&m, format!("cti-d{i}").as_bytes());
        let (r, p, input) = post(&mut rs, &mut rng, 1, &request(&tok, Some(n1), Some(id1)));
        assert_eq!(r.code, 0x41, "{r:?}");
        let (n2, id2) = answer(&p);
        let input = input.unwrap();
        let server = rs_context(&input);
        let arg = |b: Option<&[u8]>| b.map_or("-".to_string(), to_hex);
        let args = [
            "derive".to_string(),
            to_hex(&MS),
            arg(salt),
            to_hex(n1),
            to_hex(&n2),
            to_hex(id1),
            to_hex(&id2),
            arg(ctx),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_peer(&args);
        let mut w = out.split_whitespace().map(hex);
        let (sk, rk, iv) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        assert_eq!(
            &server.sender_key()[..],
            &sk[..],
            "{v}: case {i}, sender key"
        );
        assert_eq!(
            &server.recipient_key()[..],
            &rk[..],
            "{v}: case {i}, recipient key"
        );
        assert_eq!(&server.common_iv()[..], &iv[..], "{v}: case {i}, common IV");
        // and the client side, from its own inputs, is the mirror image
        let client = client_context(&m, n1, &n2, id1, &id2);
        assert_eq!(client.sender_key(), server.recipient_key());
        assert_eq!(client.recipient_key(), server.sender_key());
    }
}

#[test]
fn tokens_minted_in_python_are_accepted() {
    if !peers_present() {
        return;
    }
    let v = versions();
    let out = run_peer(&["mint"]);
    let keys = rs_keys();
    let mut rs = rs(&keys);
    let mut rng = SimRng::new(12);
    let mut n = 0;
    for (i, line) in out.lines().enumerate() {
        let (name, h) = line.split_once(' ').unwrap();
        let mut p = request(&hex(h), Some(&[i as u8 + 1; 8]), Some(&[0x70 + i as u8]));
        let mut o = [0u8; MAX_RESPONSE_LEN];
        let (r, input) = rs.post_oscore(
            OscorePost {
                now: Duration::from_secs(1),
                wall: Some(wall()),
                rng: &mut rng,
                in_use: &nothing_in_use,
            },
            &mut p,
            &mut o,
        );
        assert_eq!(
            r.code, 0x41,
            "{v}: token '{name}' from the Python peer refused: {r:?}"
        );
        let input = input.unwrap();
        assert_eq!(input.token_kid(), format!("py-{name}").as_bytes(), "{v}");
        assert_eq!(input.master_secret(), &MS[..16], "{v}");
        let rid = input.recipient_id().to_vec();
        let kid = rs.oscore_token(&rid, input.id_context()).unwrap();
        let now = Duration::from_secs(2);
        let get = rs.authorize(
            now,
            Some(wall()),
            Some(kid.as_slice()),
            cssf_auth::Method::Get,
            "/sensors/temp",
        );
        assert_eq!(get, cssf_auth::Decision::Allow, "{v}: {name}");
        let put = rs.authorize(
            now,
            Some(wall()),
            Some(kid.as_slice()),
            cssf_auth::Method::Put,
            "/sensors/temp",
        );
        assert_ne!(put, cssf_auth::Decision::Allow, "{v}: {name}");
        n += 1;
    }
    assert_eq!(n, 3, "{v}: expected three tokens, got: {out}");
    // the ES256 one carries a contextId
    let es = rs.store().get(b"py-es256").unwrap();
    match &es.pop {
        PopKey::Oscore(m) => assert_eq!(m.context_id.unwrap().as_slice(), &[0x0c, 0x1d]),
        other => panic!("{v}: {other:?}"),
    }
}

// ---- from an attacker review of the profile ----

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
/// --test oscore_profile -- --ignored` shows it failing.
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
