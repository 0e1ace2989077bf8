//! Unit tests of the endpoint against hand-built messages.

use super::*;
use std::vec::Vec as StdVec;

struct TestRng(u64);
impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 7
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        for b in d {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

static RES: [Resource; 3] = [
    Resource::new("temp", Methods::GET)
        .rt("temperature")
        .ct(0)
        .observable(),
    Resource::new("led", Methods::PUT),
    Resource::new("fresh", Methods::PUT).echo(),
];

type Ep = Endpoint<u8, TestRng, 4, 8, 256>;

fn server() -> Ep {
    Endpoint::new(Config::default(), TestRng(7), &RES)
}

fn drain(ep: &mut Ep) -> StdVec<StdVec<u8>> {
    drain_at(ep, Duration::ZERO)
}

fn drain_at(ep: &mut Ep, now: Duration) -> StdVec<StdVec<u8>> {
    let mut out = StdVec::new();
    let mut buf = [0u8; 256];
    while let Some(t) = ep.poll_transmit(now, &mut buf).unwrap() {
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn req(ty: MessageType, code: Code, mid: u16, path: &str) -> StdVec<u8> {
    let mut b = MessageBuilder::<'_, 8>::new(ty, code, mid);
    b.token(&[1, 2]).unwrap();
    b.uri_path(path).unwrap();
    let mut buf = [0u8; 128];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn ping_gets_rst() {
    let mut s = server();
    let mut ping = [0x40, 0, 0x12, 0x34];
    s.handle_datagram(Duration::ZERO, 1, &mut ping).unwrap();
    assert_eq!(drain(&mut s), [[0x70, 0, 0x12, 0x34]]);
}

#[test]
fn malformed_con_gets_rst_malformed_non_dropped() {
    let mut s = server();
    // CON GET with token length 9 (reserved).
    let mut bad = [0x49, 1, 0, 5];
    s.handle_datagram(Duration::ZERO, 1, &mut bad).unwrap();
    assert_eq!(drain(&mut s), [[0x70, 0, 0, 5]]);
    let mut bad = [0x59, 1, 0, 6];
    s.handle_datagram(Duration::ZERO, 1, &mut bad).unwrap();
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.stats().malformed, 2);
}

#[test]
fn not_found_method_not_allowed_bad_option() {
    let mut s = server();
    let mut m = req(MessageType::Con, Code::GET, 1, "nope");
    s.handle_datagram(Duration::ZERO, 1, &mut m).unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(
        (r.ty(), r.code(), r.message_id(), r.token()),
        (MessageType::Ack, Code::NOT_FOUND, 1, &[1u8, 2][..])
    );

    let mut m = req(MessageType::Con, Code::DELETE, 2, "temp");
    s.handle_datagram(Duration::ZERO, 1, &mut m).unwrap();
    let out = drain(&mut s);
    assert_eq!(
        Message::parse(&out[0]).unwrap().code(),
        Code::METHOD_NOT_ALLOWED
    );

    // Unknown critical option 9999 (odd).
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::GET, 3);
    b.uri_path("temp").unwrap();
    b.add_option(OptionNumber(9999), b"x").unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(Duration::ZERO, 1, &mut buf[..n]).unwrap();
    let out = drain(&mut s);
    assert_eq!(Message::parse(&out[0]).unwrap().code(), Code::BAD_OPTION);
    assert!(s.poll_event().is_none());
}

#[test]
fn duplicate_replays_cached_response_without_new_event() {
    let mut s = server();
    let m = req(MessageType::Con, Code::GET, 9, "temp");
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!("no request")
    };
    s.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(b"21"),
    )
    .unwrap();
    let first = drain(&mut s);
    s.handle_datagram(Duration::from_secs(3), 1, &mut m.clone())
        .unwrap();
    assert!(s.poll_event().is_none(), "handler ran twice");
    assert_eq!(drain(&mut s), first);
    assert_eq!(s.stats().duplicates, 1);
}

#[test]
fn separate_response_after_empty_ack() {
    let mut s = server();
    let m = req(MessageType::Con, Code::PUT, 10, "led");
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!()
    };
    let t = s.poll_timeout().unwrap();
    assert_eq!(t, Config::default().separate_ack_delay);
    s.handle_timeout(t);
    assert_eq!(drain(&mut s), [[0x60, 0, 0, 10]]);
    // A duplicate now gets the Empty ACK again.
    s.handle_datagram(t, 1, &mut m.clone()).unwrap();
    assert_eq!(drain(&mut s), [[0x60, 0, 0, 10]]);
    s.respond(t, id, &Response::new(Code::CHANGED)).unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(
        (r.ty(), r.code(), r.token()),
        (MessageType::Con, Code::CHANGED, &[1u8, 2][..])
    );
    // Retransmitted until acknowledged.
    let t2 = s.poll_timeout().unwrap();
    s.handle_timeout(t2);
    assert_eq!(drain(&mut s), out);
    let mut ack = [0x60, 0, out[0][2], out[0][3]];
    s.handle_datagram(t2, 1, &mut ack).unwrap();
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn echo_required_then_accepted() {
    let mut s = server();
    let m = req(MessageType::Con, Code::PUT, 11, "fresh");
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(r.code(), Code::UNAUTHORIZED);
    let echo = r.option(OptionNumber::ECHO).unwrap().to_vec();
    assert!(s.poll_event().is_none());
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::PUT, 12);
    b.uri_path("fresh").unwrap();
    b.add_option(OptionNumber::ECHO, &echo).unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(Duration::ZERO, 1, &mut buf[..n]).unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Request { .. })));
}

#[test]
fn con_gives_up_after_max_retransmit() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(3), &[]);
    let id = c.request(Duration::ZERO, 2, &Request::get("x")).unwrap();
    let mut sends = drain(&mut c).len();
    let mut last = Duration::ZERO;
    while let Some(t) = c.poll_timeout() {
        assert!(t > last);
        last = t;
        c.handle_timeout(t);
        sends += drain_at(&mut c, t).len();
    }
    assert_eq!(sends, 5);
    // 2..3 s initial, doubled four times: gives up 62..93 s after sending.
    assert!(
        last >= Duration::from_secs(62) && last <= Duration::from_secs(93),
        "{last:?}"
    );
    assert_eq!(c.poll_event(), Some(Event::Timeout { id }));
}

#[test]
fn nstart_one_holds_second_con() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(3), &[]);
    c.request(Duration::ZERO, 2, &Request::get("a")).unwrap();
    c.request(Duration::ZERO, 2, &Request::get("b")).unwrap();
    c.request(Duration::ZERO, 3, &Request::get("c")).unwrap();
    assert_eq!(drain(&mut c).len(), 2, "one per peer");
}

#[test]
fn well_known_core_block2() {
    let mut s = server();
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::GET, 20);
    b.uri_path(".well-known/core").unwrap();
    b.block2(Block::new(0, false, 0).unwrap()).unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(Duration::ZERO, 1, &mut buf[..n]).unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(r.content_format().unwrap(), Some(ContentFormat(40)));
    assert_eq!(r.payload(), b"</temp>;rt=\"temp");
    let b2 = r.block2().unwrap().unwrap();
    assert!(b2.more());
    assert_eq!(b2.size(), 16);
}
