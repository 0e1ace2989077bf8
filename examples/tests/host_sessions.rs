//! Attacks on the session lifecycle of the real `cssf-server` over
//! loopback, from one client address:port (a UDP socket the test owns):
//!
//! - an identity planted in a ClientKeyExchange that never finishes, then
//!   an anonymous (server-only raw public key) session from the same
//!   address: it must not get the planted identity's rights;
//! - a session that drops without close_notify, then a new session from the
//!   same address replaying its CoAP message ID: it must not get the old
//!   session's cached response;
//! - provisioned identities get the rights they were given (read-only by
//!   default), not everything;
//! - a oneM2M policy decides with the credential the session proved: a
//!   session claiming another credential's AE-ID is refused.

mod host_common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use cssf_dtls::{Client, Config, Event, TrustStore};
use host_common::{run, ServerProc, TempDir};
use rand_core::OsRng;

const LIMIT: Duration = Duration::from_secs(60);
const DEV1: &str = "dev-1:00112233445566778899aabbccddeeff";
const DEV1_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
const DEV2: &str = "dev-2:0f0e0d0c0b0a09080706050403020100";
const DEV2_KEY: [u8; 16] = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];

struct Keys {
    dir: TempDir,
    device: String,
    device_pub: String,
    as_pub: String,
}

fn keys() -> Keys {
    let dir = TempDir::new("sessions");
    let p = |n: &str| dir.path(n).to_str().unwrap().to_string();
    let (device, device_pub, as_key, as_pub) = (
        p("device.pem"),
        p("device.pub.pem"),
        p("as.pem"),
        p("as.pub.pem"),
    );
    for (sk, pk) in [(&device, &device_pub), (&as_key, &as_pub)] {
        run(
            "cssf-token",
            &["genkey", "--out", sk, "--public", pk],
            LIMIT,
        )
        .ok("genkey");
    }
    Keys {
        dir,
        device,
        device_pub,
        as_pub,
    }
}

/// One DTLS session over the test's socket.
struct Session<'a, T> {
    sock: &'a UdpSocket,
    c: Client<SocketAddr, OsRng, T>,
    start: Instant,
}

impl<'a, T: TrustStore<SocketAddr>> Session<'a, T> {
    fn new(sock: &'a UdpSocket, c: Client<SocketAddr, OsRng, T>) -> Self {
        Session {
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

    /// Runs until connected (or fails).
    fn handshake(&mut self) {
        let end = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 1500];
        while !self.c.is_connected() {
            assert!(Instant::now() < end, "handshake timed out");
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
                    panic!("handshake failed: {reason}");
                }
            }
        }
    }

    /// Sends a CoAP request and returns the first response it gets.
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

/// A CON request: `code` (0.0x), message ID, 1-byte token, Uri-Path
/// segments, payload.
fn coap(code: u8, mid: u16, path: &[&str], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x41, code, (mid >> 8) as u8, mid as u8, 0x7A];
    let mut delta = 11;
    for seg in path {
        assert!(seg.len() < 13);
        m.push((delta << 4) | seg.len() as u8);
        m.extend_from_slice(seg.as_bytes());
        delta = 0;
    }
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// As [`coap`], with a oneM2M originator (`From`, CoAP option 256).
fn coap_from(code: u8, mid: u16, path: &[&str], payload: &[u8], from: &str) -> Vec<u8> {
    let mut m = coap(code, mid, path, &[]);
    assert!(from.len() < 13);
    // option delta 256 - 11 = 245: nibble 13, one extension byte 245 - 13
    m.push((13 << 4) | from.len() as u8);
    m.push(245 - 13);
    m.extend_from_slice(from.as_bytes());
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

fn pins(path: &str) -> cssf_examples::server::TrustedKeys {
    cssf_examples::server::TrustedKeys(vec![
        cssf_examples::keys::load_public_key(Path::new(path)).unwrap()
    ])
}

#[test]
fn an_identity_planted_before_finished_gives_an_anonymous_session_nothing() {
    let k = keys();
    let s = ServerProc::start(&[
        "--psk",
        DEV1,
        "--key",
        &k.device,
        "--as-public-key",
        &k.as_pub,
    ]);
    let server: SocketAddr = format!("127.0.0.1:{}", s.coaps).parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // 1. A ClientKeyExchange naming the provisioned identity dev-1 (its key
    //    unknown to the attacker), and nothing after it: no Finished.
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(500);
    let planted = Client::new(
        cfg.clone(),
        b"dev-1",
        b"guessed",
        server,
        OsRng,
        Duration::ZERO,
    )
    .unwrap();
    let mut a = Session::new(&sock, planted);
    let mut buf = [0u8; 1500];
    let mut planted_cke = false;
    for _ in 0..20 {
        let now = a.now();
        while let Some(t) = a.c.poll_transmit(now, &mut buf).unwrap() {
            // Send the records one by one, stopping after ClientKeyExchange.
            let mut rest = &buf[..t.len];
            while rest.len() >= 13 {
                let len = 13 + usize::from(u16::from_be_bytes([rest[11], rest[12]]));
                let rec = &rest[..len.min(rest.len())];
                sock.send_to(rec, server).unwrap();
                if rec[0] == 22 && rec.get(13) == Some(&16) {
                    planted_cke = true;
                    break;
                }
                rest = &rest[rec.len()..];
            }
        }
        if planted_cke {
            break;
        }
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = a.c.handle_datagram(a.now(), from, &mut buf[..n]);
        }
    }
    assert!(planted_cke, "the attacker's ClientKeyExchange went out");
    std::thread::sleep(Duration::from_millis(200));
    // 2. From the same address:port, a server-only raw-public-key session:
    //    the client proves nothing.
    let anon = Client::with_raw_public_key(
        cfg,
        None,
        pins(&k.device_pub),
        server,
        OsRng,
        Duration::ZERO,
    )
    .unwrap();
    let mut b = Session::new(&sock, anon);
    b.handshake();
    let (code, _) = response(&b.request(&coap(3, 0x2001, &["actuators", "led"], b"on")));
    assert_eq!(
        code,
        "4.01",
        "an anonymous session changed the LED with the planted identity's rights\n{}",
        s.log()
    );
    let (code, _) = response(&b.request(&coap(1, 0x2002, &["actuators", "led"], b"")));
    assert_eq!(code, "4.01", "{}", s.log());
    // The server says who it thinks connected.
    let log = s.log();
    assert!(log.contains("no client key"), "{log}");
    drop(k.dir);
}

#[test]
fn a_new_session_from_the_same_address_never_gets_an_old_sessions_response() {
    let s = ServerProc::start(&[
        "--psk",
        &format!("{DEV1}:*:ALL"),
        "--psk",
        &format!("{DEV2}:*:ALL"),
    ]);
    let server: SocketAddr = format!("127.0.0.1:{}", s.coaps).parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(500);
    // Session A (dev-1) posts a secret with message ID 0x4242, then
    // vanishes without close_notify.
    let a = Client::new(
        cfg.clone(),
        b"dev-1",
        &DEV1_KEY,
        server,
        OsRng,
        Duration::ZERO,
    )
    .unwrap();
    let mut a = Session::new(&sock, a);
    a.handshake();
    let (code, body) = response(&a.request(&coap(2, 0x4242, &["echo"], b"TOP-SECRET")));
    assert_eq!((code.as_str(), &body[..]), ("2.04", &b"TOP-SECRET"[..]));
    drop(a);
    // Session B (dev-2) from the same address:port, reusing the message ID.
    let b = Client::new(cfg, b"dev-2", &DEV2_KEY, server, OsRng, Duration::ZERO).unwrap();
    let mut b = Session::new(&sock, b);
    b.handshake();
    let (code, body) = response(&b.request(&coap(1, 0x4242, &["time"], b"")));
    assert_ne!(
        body,
        b"TOP-SECRET",
        "session B received session A's cached response\n{}",
        s.log()
    );
    assert_eq!(code, "2.05", "B's own request was answered");
}

/// A PSK session to the server at `server` from a fresh socket.
fn connect<'a>(
    sock: &'a UdpSocket,
    server: SocketAddr,
    id: &[u8],
    key: &[u8],
) -> Session<'a, cssf_dtls::RejectAll> {
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(500);
    let c = Client::new(cfg, id, key, server, OsRng, Duration::ZERO).unwrap();
    let mut s = Session::new(sock, c);
    s.handshake();
    s
}

#[test]
fn provisioned_identities_get_their_own_rights_and_no_more() {
    // With an AS key the public rights are only POST /authz-info.
    let s = ServerProc::start(&[
        "--psk",
        &format!("{DEV1}:/actuators/led:GET,PUT"),
        "--psk",
        DEV2,
        "--as-hmac-key",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    ]);
    let server: SocketAddr = format!("127.0.0.1:{}", s.coaps).parse().unwrap();
    let (sa, sb) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let mut a = connect(&sa, server, b"dev-1", &DEV1_KEY);
    let mut b = connect(&sb, server, b"dev-2", &DEV2_KEY);
    let ask = |x: &mut Session<'_, _>, code, mid, path: &[&str], body: &[u8]| {
        response(&x.request(&coap(code, mid, path, body))).0
    };
    // dev-1: exactly /actuators/led GET and PUT
    assert_eq!(
        ask(&mut a, 3, 0x10, &["actuators", "led"], b"on"),
        "2.04",
        "{}",
        s.log()
    );
    assert_eq!(ask(&mut a, 1, 0x11, &["actuators", "led"], b""), "2.05");
    assert_eq!(ask(&mut a, 1, 0x12, &["time"], b""), "4.03", "{}", s.log());
    // dev-2, given no rights: read-only
    assert_eq!(ask(&mut b, 1, 0x20, &["time"], b""), "2.05", "{}", s.log());
    assert_eq!(
        ask(&mut b, 3, 0x21, &["actuators", "led"], b"off"),
        "4.05",
        "a read-only identity changed the LED\n{}",
        s.log()
    );
    // plain CoAP: 4.01 (with AS Request Creation Hints)
    let log = s.log();
    assert!(log.contains("provisioned rights"), "{log}");
}

#[test]
fn a_onem2m_policy_decides_with_the_credential_the_session_proved() {
    let dir = TempDir::new("acp");
    let acp = dir.path("acp.json");
    std::fs::write(
        &acp,
        r#"{
          "policies": [{ "m2m:acp": { "rn": "acp-led",
            "pv": { "acr": [ { "acor": ["Cadmin"], "acop": 6, "acaf": true } ] },
            "cssf:paths": ["/actuators"] } }],
          "apps": [ { "credential": "dev-1", "aes": ["Cadmin"] },
                    { "credential": "dev-2", "aes": ["Csensor2"] } ]
        }"#,
    )
    .unwrap();
    // The PSKs themselves grant only /time (and ACE limits the public rights).
    let s = ServerProc::start(&[
        "--psk",
        &format!("{DEV1}:/time:GET"),
        "--psk",
        &format!("{DEV2}:/time:GET"),
        "--as-hmac-key",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "--acp",
        acp.to_str().unwrap(),
    ]);
    let server: SocketAddr = format!("127.0.0.1:{}", s.coaps).parse().unwrap();
    let (sa, sb) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let mut a = connect(&sa, server, b"dev-1", &DEV1_KEY);
    let mut b = connect(&sb, server, b"dev-2", &DEV2_KEY);
    let put = |x: &mut Session<'_, _>, mid, from: &str| {
        response(&x.request(&coap_from(3, mid, &["actuators", "led"], b"on", from))).0
    };
    // dev-1 is Cadmin: the policy grants the update
    assert_eq!(put(&mut a, 0x30, "Cadmin"), "2.04", "{}", s.log());
    // ...and with no From, its default originator is Cadmin
    let r = response(&a.request(&coap(1, 0x31, &["actuators", "led"], b""))).0;
    assert_eq!(r, "2.05", "{}", s.log());
    // dev-2 claiming Cadmin: impersonation, refused
    assert_eq!(put(&mut b, 0x40, "Cadmin"), "4.03", "{}", s.log());
    // dev-2 as itself: no rule grants it
    assert_eq!(put(&mut b, 0x41, "Csensor2"), "4.03", "{}", s.log());
    // and plain CoAP claiming Cadmin gets nothing
    drop(dir);
}
