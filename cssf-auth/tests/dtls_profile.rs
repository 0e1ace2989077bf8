//! The ACE DTLS profile end to end (RFC 9202) with our own DTLS endpoint:
//! a client posts its token to /authz-info, then runs a DTLS PSK handshake
//! whose psk_identity is the token's kid (§3.3.1), or the token itself
//! (§3.3.2); the resource server resolves the PSK from the token store and
//! authorizes the request that arrives over the session.
#![cfg(feature = "dtls")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::cell::{Cell, RefCell};
use core::time::Duration;

use cssf_auth::dtls::{Clock, SharedTokenPsk};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{
    Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, Decision, DenyReason, KeyEntry, Method,
    PopKey,
};
use cssf_netsim::SimRng;

const AUD: &str = "coaps://rs1.example";

fn token(as_key: &CoseKey, kid: &[u8], psk: &[u8], cti: &[u8]) -> Vec<u8> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(kid).unwrap()),
        k: Bytes::from_slice(psk).unwrap(),
    };
    let mut aif = [0u8; 64];
    let n = Aif::emit(&[("/sensors/temp", 1)], &mut aif).unwrap();
    let c = ClaimsSet {
        aud: Some(AUD),
        exi: Some(600),
        cti: Some(cti),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = c.emit(&mut p).unwrap();
    let mut t = [0u8; 512];
    let m = issuer::mac0(as_key, Some(b"as"), &p[..plen], &mut t).unwrap();
    t[..m].to_vec()
}

/// Runs a handshake and one request; returns the kid-bound decision.
fn handshake_and_request(
    identity: &[u8],
    psk: &[u8],
    seed: u64,
    preposted: Option<Vec<u8>>,
) -> Option<Decision> {
    let keys = [
        KeyEntry::with_kid(
            b"as",
            CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap(),
        )
        .unwrap(),
        KeyEntry::with_kid(
            b"as",
            CoseKey::hmac(Algorithm::Hmac256_64, &[0x12; 32]).unwrap(),
        )
        .unwrap(),
    ];
    let rs: RefCell<AuthzInfo<'_, [KeyEntry; 2]>> =
        RefCell::new(AuthzInfo::new(Config::new(AUD), &keys));
    let clock = Cell::new(Clock {
        now: Duration::ZERO,
        wall: None,
    });
    if let Some(mut t) = preposted {
        let r = rs.borrow_mut().post(Duration::ZERO, None, &mut t, &mut []);
        assert_eq!(r.code, 0x41, "{r:?}");
    }
    let mut server: cssf_dtls::Endpoint<u8, _, _, 2> = cssf_dtls::Endpoint::new(
        cssf_dtls::Config::default(),
        SharedTokenPsk::new(&rs, &clock),
        SimRng::new(seed),
        Duration::ZERO,
    )
    .unwrap();
    let mut client = cssf_dtls::Client::new(
        cssf_dtls::Config::default(),
        identity,
        psk,
        2u8,
        SimRng::new(seed + 1),
        Duration::ZERO,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    let now = Duration::from_millis(10);
    clock.set(Clock { now, wall: None });
    for _ in 0..8 {
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            let _ = server.handle_datagram(now, 1u8, &mut buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            let _ = client.handle_datagram(now, 2u8, &mut buf[..t.len]);
        }
    }
    if !client.is_connected() {
        return None;
    }
    client.send(now, b"GET /sensors/temp").unwrap();
    let t = client.poll_transmit(now, &mut buf).unwrap().unwrap();
    server.handle_datagram(now, 1u8, &mut buf[..t.len]).unwrap();
    let mut got = [0u8; 64];
    let session = server.session_handle(&1u8).unwrap();
    let n = server.recv(session, &mut got).unwrap().unwrap();
    assert_eq!(&got[..n], b"GET /sensors/temp");
    // The session's PSK identity names the token (kid): authorize with it.
    let kid: &[u8] = if identity.len() > 32 {
        b"client-kid"
    } else {
        identity
    };
    let mut rs = rs.borrow_mut();
    Some(rs.authorize(now, None, Some(kid), Method::Get, "/sensors/temp"))
}

#[test]
fn kid_as_psk_identity_after_authz_info() {
    let as_key = CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap();
    let t = token(&as_key, b"client-kid", &[0x55; 16], b"c1");
    let d = handshake_and_request(b"client-kid", &[0x55; 16], 1, Some(t));
    assert_eq!(
        d,
        Some(Decision::Allow),
        "DTLS PSK handshake with psk_identity = kid"
    );
}

#[test]
fn token_as_psk_identity() {
    // HMAC 256/64 keeps the token within the DTLS identity limit.
    let as_key = CoseKey::hmac(Algorithm::Hmac256_64, &[0x12; 32]).unwrap();
    let t = token(&as_key, b"client-kid", &[0x56; 16], b"c2");
    assert!(
        t.len() <= cssf_dtls::MAX_IDENTITY_LEN,
        "token {} bytes",
        t.len()
    );
    let d = handshake_and_request(&t, &[0x56; 16], 3, None);
    assert_eq!(
        d,
        Some(Decision::Allow),
        "DTLS PSK handshake with psk_identity = access token"
    );
}

#[test]
fn wrong_pop_key_or_unknown_kid_fails_the_handshake() {
    let as_key = CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap();
    let t = token(&as_key, b"client-kid", &[0x55; 16], b"c3");
    assert_eq!(
        handshake_and_request(b"client-kid", &[0x99; 16], 5, Some(t)),
        None
    );
    assert_eq!(handshake_and_request(b"nobody", &[0x55; 16], 7, None), None);
    let _ = DenyReason::NoToken;
}
