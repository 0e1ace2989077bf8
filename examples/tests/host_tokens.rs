//! ACE tokens against the real `cssf-server` over loopback, found by the
//! attack lab's `tokens` family.
//!
//! - A token T1 replaced by a narrower T2 for the same kid and key must not
//!   come back when T1 is posted again after a restart: T1's `cti` is a
//!   replay whether or not the server restarted. The replay cache is what
//!   refuses it when T2 does not order after T1 by `iat` (both issued
//!   within the same second, or neither carrying `iat`); the tokens survive
//!   a restart in `--store`, so the cache must too.

mod host_common;

use std::net::UdpSocket;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, Bytes, CoseKey, PopKey};
use host_common::{ServerProc, TempDir};

const AS_HMAC: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A MAC0 token from the `--as-hmac-key` AS: PoP key `key` under `kid`,
/// `scope` (AIF), audience rs1, `iat` as given.
fn token(
    kid: &[u8],
    key: &[u8; 16],
    scope: &[(&str, u64)],
    cti: &[u8],
    iat: Option<i64>,
) -> Vec<u8> {
    let as_key: Vec<u8> = (0u8..32).collect();
    let as_key = CoseKey::hmac(Algorithm::Hmac256, &as_key).unwrap();
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(kid).unwrap()),
        k: Bytes::from_slice(key).unwrap(),
    };
    let mut aif = [0u8; 96];
    let n = Aif::emit(scope, &mut aif).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let c = ClaimsSet {
        aud: Some("rs1"),
        iat,
        exp: Some(now + 600),
        cti: Some(cti),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = c.emit(&mut p).unwrap();
    let mut t = [0u8; 400];
    let m = mac0(&as_key, None, &p[..plen], &mut t).unwrap();
    t[..m].to_vec()
}

/// `POST /authz-info` in plain CoAP: the response code.
fn post(s: &ServerProc, mid: u16, token: &[u8]) -> String {
    let mut m = vec![0x41, 0x02, (mid >> 8) as u8, mid as u8, 0x5C];
    m.push(0xBA);
    m.extend_from_slice(b"authz-info");
    m.push(0xFF);
    m.extend_from_slice(token);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        sock.send_to(&m, ("127.0.0.1", s.coap)).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert!(n >= 4);
            return format!("{}.{:02}", buf[1] >> 5, buf[1] & 0x1F);
        }
    }
    panic!("no answer on plain CoAP\n{}", s.log());
}

/// Severity: high. T1 (LED GET,PUT) replaced by T2 (LED GET) for the same
/// kid and key; after a restart with `--store`, T2 is restored but T1's
/// `cti` is forgotten, and T1 posted again replaces T2 (the same `iat`, or
/// none, orders neither before the other): the narrowed scope is restored.
#[test]
fn a_replaced_token_stays_replaced_after_a_restart() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (n, iat) in [Some(now), None].into_iter().enumerate() {
        let dir = TempDir::new("tokens-restart");
        let store = dir.path("store");
        let args = ["--as-hmac-key", AS_HMAC, "--store", store.to_str().unwrap()];
        let kid = format!("kid{n}").into_bytes();
        let key = [0x5A; 16];
        let t1 = token(&kid, &key, &[("/actuators/led", 1 | 4)], b"cti-one", iat);
        let t2 = token(&kid, &key, &[("/actuators/led", 1)], b"cti-two", iat);
        let s = ServerProc::start(&args);
        assert_eq!(post(&s, 1, &t1), "2.01", "T1\n{}", s.log());
        assert_eq!(post(&s, 2, &t2), "2.01", "T2\n{}", s.log());
        assert_ne!(
            post(&s, 3, &t1),
            "2.01",
            "T1 again, no restart\n{}",
            s.log()
        );
        drop(s);
        let s = ServerProc::start(&args);
        assert!(
            s.log().contains("1 tokens restored"),
            "T2 not restored\n{}",
            s.log()
        );
        assert_ne!(
            post(&s, 4, &t1),
            "2.01",
            "after a restart the replaced T1 (iat {iat:?}) was taken again, restoring PUT\n{}",
            s.log()
        );
        drop(dir);
    }
}
