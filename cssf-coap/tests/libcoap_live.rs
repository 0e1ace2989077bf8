//! Live interop with libcoap's `coap-server-notls` (plain CoAP, no DTLS):
//! requests built by our `MessageBuilder` go over a real UDP socket, the
//! server's answers are parsed with `Message::parse`.
//!
//! Skips on a machine without libcoap (fails in CI, see `cssf_netsim::peer`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use cssf_coap::{Block, Code, ContentFormat, Message, MessageBuilder, MessageType, OptionNumber};
use cssf_netsim::peer;

const SERVER: &str = "coap-server-notls";
const INSTALL: &str = "apt-get install libcoap3-bin";

/// Kills the server on every path out of the test.
struct ServerGuard {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Peer {
    sock: UdpSocket,
    port: u16,
    version: String,
    next_mid: u16,
    _guard: ServerGuard,
}

impl Peer {
    fn ctx(&self) -> String {
        format!(
            "peer {} on 127.0.0.1:{}, plain coap (no DTLS)",
            self.version, self.port
        )
    }

    /// Sends `b` (message ID assigned here) and waits for the matching
    /// response (same MID, or same token for separate responses).
    fn exchange(&mut self, b: &mut MessageBuilder<'_, 8>) -> Vec<u8> {
        self.next_mid = self.next_mid.wrapping_add(1);
        b.set_message_id(self.next_mid);
        let mut buf = [0u8; 1500];
        let n = b.emit(&mut buf).unwrap();
        let token = b.get_token().to_vec();
        self.sock.send(&buf[..n]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rx = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok(len) = self.sock.recv(&mut rx) else {
                continue;
            };
            let m = Message::parse(&rx[..len]).unwrap_or_else(|e| {
                panic!(
                    "{}: unparsable datagram {:02x?}: {e}",
                    self.ctx(),
                    &rx[..len]
                )
            });
            if m.message_id() == self.next_mid || (!token.is_empty() && m.token() == token) {
                return rx[..len].to_vec();
            }
        }
        panic!("{}: no answer to {:02x?} within 5 s", self.ctx(), &buf[..n]);
    }
}

fn start() -> Option<Peer> {
    if !peer::require_binary(SERVER, INSTALL) {
        return None;
    }
    // libcoap prints its version in the usage text (after a complaint about
    // the unknown option), so pick the line that names it.
    let version = Command::new(SERVER)
        .arg("-?")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            text.lines()
                .find(|l| l.contains("CoAP implementation"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| peer::version(SERVER, &["-?"]));
    let dir = std::env::temp_dir().join(format!("cssf-coap-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = peer::free_udp_port();
    let child = Command::new(SERVER)
        .args(["-A", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SERVER} ({version}): {e}"));
    let guard = ServerGuard { child, dir };
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Wait for the server: CoAP ping (CON Empty) until it answers RST.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rx = [0u8; 64];
    loop {
        assert!(
            Instant::now() < deadline,
            "{version} on 127.0.0.1:{port} (plain coap) never answered a CoAP ping"
        );
        let mut ping = [0u8; 4];
        MessageBuilder::<0>::new(MessageType::Con, Code::EMPTY, 0x0bad)
            .emit(&mut ping)
            .unwrap();
        let _ = sock.send(&ping);
        if let Ok(n) = sock.recv(&mut rx) {
            let m = Message::parse(&rx[..n]).unwrap();
            assert_eq!(
                (m.ty(), m.code(), m.message_id()),
                (MessageType::Rst, Code::EMPTY, 0x0bad),
                "{version}: ping not answered with RST"
            );
            break;
        }
    }
    Some(Peer {
        sock,
        port,
        version,
        next_mid: 0x4000,
        _guard: guard,
    })
}

fn get<'a>(path: &'a str, token: &'a [u8]) -> MessageBuilder<'a, 8> {
    let mut b = MessageBuilder::new(MessageType::Con, Code::GET, 0);
    b.token(token).unwrap();
    b.uri_path(path).unwrap();
    b
}

#[test]
fn libcoap_server_answers_our_requests() {
    let Some(mut p) = start() else { return };
    let ctx = p.ctx();

    // GET /time?ticks: piggybacked 2.05 with our token.
    let mut b = get("time", b"\x01\x02\x03\x04");
    b.add_str(OptionNumber::URI_QUERY, "ticks").unwrap();
    let r = p.exchange(&mut b);
    let m = Message::parse(&r).unwrap();
    assert_eq!(
        (m.ty(), m.code()),
        (MessageType::Ack, Code::CONTENT),
        "{ctx}: GET /time"
    );
    assert_eq!(m.token(), b"\x01\x02\x03\x04", "{ctx}");
    assert!(
        !m.payload().is_empty() && m.payload().iter().all(u8::is_ascii_digit),
        "{ctx}: /time?ticks payload {:?}",
        m.payload()
    );

    // .well-known/core whole, then block-wise with 32-byte blocks.
    let r = p.exchange(&mut get(".well-known/core", b"wk"));
    let whole = Message::parse(&r).unwrap();
    assert_eq!(
        whole.content_format(),
        Ok(Some(ContentFormat::LINK_FORMAT)),
        "{ctx}"
    );
    let whole = whole.payload().to_vec();
    assert!(
        whole.len() > 32,
        "{ctx}: .well-known/core too short to block"
    );
    let mut body = Vec::new();
    for num in 0..64 {
        let mut b = get(".well-known/core", b"b2");
        b.block2(Block::new(num, false, 1).unwrap()).unwrap();
        let r = p.exchange(&mut b);
        let m = Message::parse(&r).unwrap();
        let blk = m
            .block2()
            .unwrap()
            .unwrap_or_else(|| panic!("{ctx}: no Block2 in block {num}"));
        assert_eq!((blk.num(), blk.size()), (num, 32), "{ctx}");
        body.extend_from_slice(m.payload());
        if !blk.more() {
            break;
        }
    }
    assert_eq!(
        body, whole,
        "{ctx}: Block2 reassembly differs from the whole resource"
    );

    // PUT then GET /example_data.
    let mut b = MessageBuilder::new(MessageType::Con, Code::PUT, 0);
    b.token(b"pu").unwrap();
    b.uri_path("example_data").unwrap();
    b.content_format(ContentFormat::TEXT_PLAIN).unwrap();
    b.payload(b"written by cssf-coap");
    let m_bytes = p.exchange(&mut b);
    let m = Message::parse(&m_bytes).unwrap();
    assert!(
        m.code() == Code::CHANGED || m.code() == Code::CREATED,
        "{ctx}: PUT answered {}",
        m.code()
    );
    let r = p.exchange(&mut get("example_data", b"g2"));
    assert_eq!(
        Message::parse(&r).unwrap().payload(),
        b"written by cssf-coap",
        "{ctx}"
    );

    // Observe registration: the 2.05 carries an Observe sequence number.
    let mut b = get("time", b"ob");
    b.observe(0).unwrap();
    let r = p.exchange(&mut b);
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.code(), Code::CONTENT, "{ctx}: observe");
    assert!(
        m.observe().unwrap().is_some(),
        "{ctx}: no Observe in the registration response"
    );
    let mut b = get("time", b"ob");
    b.observe(1).unwrap();
    let _ = p.exchange(&mut b);

    // An unknown critical option (65001, odd) is refused with 4.02.
    let mut b = get("time", b"uc");
    b.add_option(OptionNumber(65001), b"x").unwrap();
    let r = p.exchange(&mut b);
    assert_eq!(
        Message::parse(&r).unwrap().code(),
        Code::BAD_OPTION,
        "{ctx}: unknown critical option"
    );
}
