//! `cssf_coap::lite::Client` against libcoap's `coap-server-notls` on
//! loopback UDP: piggybacked GET (CON and NON), PUT then GET, 4.04, and
//! a separate response (`/async`: Empty ACK, then a CON response the client
//! acknowledges).
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{peer_name, start_server_notls, INSTALL};
use cssf_coap::lite::{Client, Config, Event};
use cssf_coap::{Code, ContentFormat, Message, MessageBuilder, MessageType};
use cssf_netsim::peer::require_binary;
use cssf_netsim::SimRng;

type Lite = Client<SimRng, 1152>;

/// What one request produced.
#[derive(Debug)]
struct Outcome {
    ty: MessageType,
    code: Code,
    payload: Vec<u8>,
    /// Every datagram the client sent, as (type, code).
    sent: Vec<(MessageType, Code)>,
    /// Every datagram it received, as (type, code).
    received: Vec<(MessageType, Code)>,
}

struct Driver {
    client: Lite,
    sock: UdpSocket,
    origin: Instant,
    peer: SocketAddr,
    name: String,
}

impl Driver {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn flush(&mut self, sent: &mut Vec<(MessageType, Code)>) {
        let mut buf = [0u8; 1500];
        let now = self.now();
        while let Some(n) = self
            .client
            .poll_transmit(now, &mut buf)
            .unwrap()
            .map(|t| t.len)
        {
            let m = Message::parse(&buf[..n]).unwrap();
            sent.push((m.ty(), m.code()));
            self.sock.send_to(&buf[..n], self.peer).unwrap();
        }
    }

    /// Sends `req` and pumps the socket until the client reports the end.
    fn call(&mut self, req: &MessageBuilder<'_, 4>) -> Outcome {
        let now = self.now();
        self.client.request(now, req).unwrap();
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            self.flush(&mut sent);
            if let Some(ev) = self.client.poll_event() {
                let Event::Response(m) = ev else {
                    panic!("{}: {} ended with {ev:?}", self.name, req.code());
                };
                let out = Outcome {
                    ty: m.ty(),
                    code: m.code(),
                    payload: m.payload().to_vec(),
                    sent: Vec::new(),
                    received: Vec::new(),
                };
                // The ACK of a separate response goes out now.
                self.flush(&mut sent);
                return Outcome {
                    sent,
                    received,
                    ..out
                };
            }
            assert!(Instant::now() < end, "{}: no answer in 20 s", self.name);
            let wait = self
                .client
                .poll_timeout()
                .map(|t| t.saturating_sub(self.now()))
                .unwrap_or(Duration::from_millis(100))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            let mut buf = [0u8; 1500];
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.peer => {
                    let m = Message::parse(&buf[..n]).unwrap();
                    received.push((m.ty(), m.code()));
                    let now = self.now();
                    self.client.handle_datagram(now, (), &mut buf[..n]).unwrap();
                }
                Ok(_) => {}
                Err(_) => {
                    let now = self.now();
                    self.client.handle_timeout(now);
                }
            }
        }
    }
}

fn get(ty: MessageType, path: &str) -> MessageBuilder<'_, 4> {
    let mut b = MessageBuilder::new(ty, Code::GET, 0);
    b.uri_path(path).unwrap();
    b
}

#[test]
fn lite_client_against_libcoap_server() {
    if !require_binary("coap-server-notls", INSTALL) {
        return;
    }
    let name = peer_name("coap-server-notls");
    let (_server, port) = start_server_notls(&name, &["-d", "10"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut d = Driver {
        client: Client::new(Config::default(), SimRng::new(11)),
        sock,
        origin: Instant::now(),
        peer: SocketAddr::from(([127, 0, 0, 1], port)),
        name: name.clone(),
    };
    let con = MessageType::Con;

    // CON GET /: piggybacked 2.05 with the server's banner.
    let o = d.call(&get(con, ""));
    assert_eq!((o.ty, o.code), (MessageType::Ack, Code::CONTENT), "{name}");
    let banner = String::from_utf8_lossy(&o.payload).into_owned();
    assert!(banner.contains("libcoap"), "{name}: GET / gave {banner:?}");
    // Only the request (repeated if the ACK took longer than the timeout).
    assert!(
        o.sent.iter().all(|s| *s == (con, Code::GET)),
        "{name}: {:?}",
        o.sent
    );

    // CON GET /time.
    let o = d.call(&get(con, "time"));
    assert_eq!((o.ty, o.code), (MessageType::Ack, Code::CONTENT), "{name}");
    assert!(!o.payload.is_empty(), "{name}: GET /time empty");

    // NON GET /time: libcoap answers NON.
    let o = d.call(&get(MessageType::Non, "time"));
    assert_eq!((o.ty, o.code), (MessageType::Non, Code::CONTENT), "{name}");
    assert!(!o.payload.is_empty(), "{name}: NON GET /time empty");
    assert_eq!(o.sent, [(MessageType::Non, Code::GET)], "{name}");

    // PUT /example_data, then GET it back.
    let mut put = MessageBuilder::<'_, 4>::new(con, Code::PUT, 0);
    put.uri_path("example_data").unwrap();
    put.content_format(ContentFormat::TEXT_PLAIN).unwrap();
    put.payload(b"hello from lite");
    let o = d.call(&put);
    assert!(o.code.is_success(), "{name}: PUT gave {}", o.code);
    let o = d.call(&get(con, "example_data"));
    assert_eq!(
        (o.code, &o.payload[..]),
        (Code::CONTENT, &b"hello from lite"[..]),
        "{name}: GET after PUT"
    );

    // An unknown resource.
    let o = d.call(&get(con, "no/such/thing"));
    assert_eq!(o.code, Code::NOT_FOUND, "{name}");

    // /async?1: Empty ACK now, the response a second later as CON, which
    // the client acknowledges.
    let mut req = get(con, "async");
    req.add_str(cssf_coap::OptionNumber::URI_QUERY, "1")
        .unwrap();
    let o = d.call(&req);
    assert_eq!((o.ty, o.code), (con, Code::CONTENT), "{name}: /async");
    assert_eq!(o.payload, b"done", "{name}: /async");
    assert_eq!(
        o.received.first(),
        Some(&(MessageType::Ack, Code::EMPTY)),
        "{name}: /async {:?}",
        o.received
    );
    assert_eq!(
        o.received.last(),
        Some(&(con, Code::CONTENT)),
        "{name}: /async"
    );
    let (ack, request) = o.sent.split_last().unwrap();
    assert_eq!(*ack, (MessageType::Ack, Code::EMPTY), "{name}: /async");
    assert!(request.iter().all(|s| *s == (con, Code::GET)), "{name}");
}
