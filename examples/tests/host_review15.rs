//! Review 15 (attacker's review of the Authorizer, the oneM2M policies and
//! `cssf-server` built on them): findings against the real server over
//! loopback, one test each. Each test fails on 707d3df.
//!
//! - a DTLS session resumed after the token for its kid was replaced by a
//!   token for another key gets the new token's scope (the holder of the
//!   old key never proves the new one);
//! - a oneM2M DISCOVERY privilege (GET with `fu=1`) reads the resource;
//! - without an AS key the public rights are everything, so the RIGHTS of
//!   `--psk IDENTITY:HEXKEY:RIGHTS` restrict nobody;
//! - an `acip` address range alone lets plain CoAP (a spoofable UDP source
//!   address) update an actuator.

mod host_common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, Bytes, CoseKey, PopKey};
use cssf_dtls::{Client, Config, Event, TrustStore};
use host_common::{ServerProc, TempDir};
use rand_core::OsRng;

const AS_HMAC: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// One DTLS session over a socket the test owns.
struct Dtls<'a, T> {
    sock: &'a UdpSocket,
    c: Client<SocketAddr, OsRng, T>,
    start: Instant,
}

impl<'a, T: TrustStore<SocketAddr>> Dtls<'a, T> {
    fn new(sock: &'a UdpSocket, c: Client<SocketAddr, OsRng, T>) -> Self {
        Dtls {
            sock,
            c,
            start: Instant::now(),
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn flush(&mut self) {
        let mut buf = [0u8; 1500];
        while let Some(t) = self.c.poll_transmit(self.now(), &mut buf).unwrap() {
            self.sock.send_to(&buf[..t.len], t.to).unwrap();
        }
    }

    /// Runs the handshake: `Err(reason)` if it failed.
    fn handshake(&mut self) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 1500];
        while !self.c.is_connected() {
            if Instant::now() > end {
                return Err("handshake timed out".into());
            }
            self.flush();
            self.sock
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let _ = self.c.handle_datagram(self.now(), from, &mut buf[..n]);
                }
                Err(_) => {
                    self.c.handle_timeout(self.now());
                }
            }
            while let Some(e) = self.c.poll_event() {
                if let Event::Closed { reason, .. } = e {
                    return Err(format!("{reason}"));
                }
            }
        }
        Ok(())
    }

    /// Sends a CoAP request and returns the first response.
    fn request(&mut self, msg: &[u8]) -> Vec<u8> {
        self.c.send(self.now(), msg).unwrap();
        self.flush();
        let end = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1500];
        loop {
            assert!(Instant::now() < end, "no response");
            self.sock
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                let _ = self.c.handle_datagram(self.now(), from, &mut buf[..n]);
            }
            self.flush();
            let mut rec = [0u8; 1500];
            while let Some(e) = self.c.poll_event() {
                if let Event::ApplicationData { .. } = e {
                    if let Ok(Some(n)) = self.c.recv(&mut rec) {
                        return rec[..n].to_vec();
                    }
                }
            }
        }
    }
}

fn cfg() -> Config {
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(500);
    cfg
}

/// A CON request: `code` (0.0x), message ID, Uri-Path segments, Uri-Query
/// options, payload.
fn coap(code: u8, mid: u16, path: &[&str], query: &[&str], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x41, code, (mid >> 8) as u8, mid as u8, 0x5C];
    let mut last = 0u8;
    for (number, value) in path
        .iter()
        .map(|s| (11u8, *s))
        .chain(query.iter().map(|s| (15u8, *s)))
    {
        assert!(value.len() < 13);
        m.push(((number - last) << 4) | value.len() as u8);
        m.extend_from_slice(value.as_bytes());
        last = number;
    }
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// `(class.detail, payload)` of a CoAP response.
fn response(m: &[u8]) -> (String, Vec<u8>) {
    let code = m[1];
    let tkl = usize::from(m[0] & 0x0F);
    let rest = &m[4 + tkl..];
    let payload = rest
        .iter()
        .position(|b| *b == 0xFF)
        .map(|i| rest[i + 1..].to_vec())
        .unwrap_or_default();
    (format!("{}.{:02}", code >> 5, code & 0x1F), payload)
}

/// A plain CoAP exchange with the server.
fn plain(s: &ServerProc, msg: &[u8]) -> (String, Vec<u8>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        sock.send_to(msg, ("127.0.0.1", s.coap)).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return response(&buf[..n]);
        }
    }
    panic!("no answer on plain CoAP\n{}", s.log());
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A MAC0 token from the `--as-hmac-key` AS for the symmetric PoP key
/// `key` under `kid`, granting `scope` (AIF), audience rs1.
fn token(kid: &[u8], key: &[u8; 16], scope: &[(&str, u64)], cti: &[u8]) -> Vec<u8> {
    let as_key: Vec<u8> = (0u8..32).collect();
    let as_key = CoseKey::hmac(Algorithm::Hmac256, &as_key).unwrap();
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(kid).unwrap()),
        k: Bytes::from_slice(key).unwrap(),
    };
    let mut aif = [0u8; 96];
    let n = Aif::emit(scope, &mut aif).unwrap();
    let now = unix_now();
    let c = ClaimsSet {
        aud: Some("rs1"),
        iat: Some(now),
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

/// Severity: high. The session cache keeps a session keyed by kid "ck"
/// after the token for "ck" was replaced by one for another key. The
/// resumption check (`PskStore::may_resume`, default: "the identity still
/// has a key") passes because "ck" has a key, just not the same one, and
/// `Authorizer::on_connected` then binds the resumed session to the key
/// stored now. The holder of the old key (the old master secret) gets the
/// new token's scope without ever proving its key. README: "a later token
/// for the kid with another key grants this session nothing".
#[test]
fn a_resumed_session_does_not_get_the_scope_of_a_token_for_another_key() {
    let s = ServerProc::start(&["--as-hmac-key", AS_HMAC]);
    let server: SocketAddr = format!("127.0.0.1:{}", s.coaps).parse().unwrap();
    const OLD: [u8; 16] = [0xA1; 16];
    const NEW: [u8; 16] = [0xB2; 16];
    // 1. The attacker's token: kid "ck", key OLD, GET /time only.
    let narrow = token(b"ck", &OLD, &[("/time", 1)], b"old");
    let (code, _) = plain(&s, &coap(2, 0x100, &["authz-info"], &[], &narrow));
    assert_eq!(code, "2.01", "{}", s.log());
    let sa = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut a = Dtls::new(
        &sa,
        Client::new(cfg(), b"ck", &OLD, server, OsRng, Duration::ZERO).unwrap(),
    );
    a.handshake().unwrap();
    let (code, _) = response(&a.request(&coap(3, 0x1, &["actuators", "led"], &[], b"on")));
    assert_eq!(code, "4.03", "the narrow token does not cover the LED");
    let session = a.c.session().expect("a resumable session");
    // 2. A token for kid "ck" with another key (NEW, unknown to the
    //    attacker) and the LED in its scope.
    //    (Since the fix, refused while the OLD token lives: 4.00
    //    KidConflict; resumption is refused for token identities anyway.)
    let wide = token(b"ck", &NEW, &[("/actuators/led", 1 | 4)], b"new");
    let (code, _) = plain(&s, &coap(2, 0x101, &["authz-info"], &[], &wide));
    assert!(code == "2.01" || code == "4.00", "{code}\n{}", s.log());
    if code == "2.01" {
        // A full handshake with OLD no longer works...
        let sb = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = Dtls::new(
            &sb,
            Client::new(cfg(), b"ck", &OLD, server, OsRng, Duration::ZERO).unwrap(),
        );
        assert!(b.handshake().is_err(), "a full handshake proves OLD only");
    }
    // 3. ...but resuming the OLD session does.
    let sc = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut c = Dtls::new(
        &sc,
        Client::resume(cfg(), b"ck", &OLD, &session, server, OsRng, Duration::ZERO).unwrap(),
    );
    if c.handshake().is_err() {
        return; // refused: what the fix does
    }
    let resumed = c.c.is_resumed();
    let (code, body) = response(&c.request(&coap(3, 0x2, &["actuators", "led"], &[], b"on")));
    assert_ne!(
        code,
        "2.04",
        "a session resumed with the OLD key (resumed: {resumed}) switched the LED {} with \
         the scope of the token for the NEW key\n{}",
        String::from_utf8_lossy(&body),
        s.log()
    );
}

/// Severity: medium. `Policy::decide` maps a GET with Uri-Query `fu=1` to
/// the oneM2M DISCOVERY operation, and a rule granting DISCOVERY (acop 32)
/// lets the request through to `handle`, which serves the resource as a
/// plain GET: a discovery-only privilege reads the resource's state.
#[test]
fn a_discovery_privilege_does_not_read_the_resource() {
    let dir = TempDir::new("rev15-acp");
    let acp = dir.path("acp.json");
    std::fs::write(
        &acp,
        r#"{ "policies": [{ "m2m:acp": { "rn": "discover-only",
              "pv": { "acr": [ { "acor": ["all"], "acop": 32 } ] },
              "cssf:paths": ["/actuators"] } }] }"#,
    )
    .unwrap();
    let s = ServerProc::start(&["--as-hmac-key", AS_HMAC, "--acp", acp.to_str().unwrap()]);
    // Without fu=1 plain CoAP gets nothing.
    let (code, _) = plain(&s, &coap(1, 0x200, &["actuators", "led"], &[], b""));
    assert_eq!(code, "4.01", "{}", s.log());
    // With it, the LED state.
    let (code, body) = plain(&s, &coap(1, 0x201, &["actuators", "led"], &["fu=1"], b""));
    assert!(
        !(code == "2.05" && (body == b"on" || body == b"off")),
        "a DISCOVERY-only privilege read /actuators/led: {code} {:?}\n{}",
        String::from_utf8_lossy(&body),
        s.log()
    );
    drop(dir);
}

/// Severity: medium (documented default, but it voids the configuration
/// it sits next to). Without an AS key the public rights default to
/// everything, for plain CoAP too: `--psk dev-1:KEY:/time:GET` restricts
/// nothing, every anonymous client may switch the LED.
#[test]
fn provisioned_rights_are_not_void_without_an_as_key() {
    let s = ServerProc::start(&["--psk", "dev-1:00112233445566778899aabbccddeeff:/time:GET"]);
    let (code, _) = plain(&s, &coap(3, 0x300, &["actuators", "led"], &[], b"on"));
    assert_ne!(
        code,
        "2.04",
        "a device provisioned with restricted rights let plain CoAP switch the LED\n{}",
        s.log()
    );
}

/// Severity: low (design). An `acip` context is checked against the UDP
/// source address of plain CoAP requests, which anyone can forge (the
/// answer goes to the forged address; the update is done anyway). A rule
/// with an address range and no `acaf` thus lets an off-path attacker
/// switch the LED by spoofing an address in the range.
#[test]
fn an_address_range_alone_does_not_let_plain_coap_update() {
    let dir = TempDir::new("rev15-acip");
    let acp = dir.path("acp.json");
    std::fs::write(
        &acp,
        r#"{ "policies": [{ "m2m:acp": { "rn": "lan-may-update",
              "pv": { "acr": [ { "acor": ["all"], "acop": 6,
                                 "acco": [ { "acip": { "ipv4": ["127.0.0.0/8"] } } ] } ] },
              "cssf:paths": ["/actuators"] } }] }"#,
    )
    .unwrap();
    let s = ServerProc::start(&["--as-hmac-key", AS_HMAC, "--acp", acp.to_str().unwrap()]);
    let (code, _) = plain(&s, &coap(3, 0x400, &["actuators", "led"], &[], b"on"));
    assert_ne!(
        code,
        "2.04",
        "plain CoAP (spoofable source) updated the LED on an address range alone\n{}",
        s.log()
    );
    drop(dir);
}
