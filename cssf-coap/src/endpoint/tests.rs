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

static UP: [Resource; 2] = [
    Resource::new("up", Methods::PUT),
    Resource::new("obs", Methods::GET).observable(),
];

fn small_server() -> Ep {
    let config = Config {
        max_body: 256,
        ..Config::default()
    };
    Endpoint::new(config, TestRng(9), &UP)
}

fn block1_put(
    mid: u16,
    num: u32,
    more: bool,
    tag: Option<&[u8]>,
    size1: Option<u32>,
) -> StdVec<u8> {
    let payload = [0x42u8; 16];
    let token = [mid as u8];
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::PUT, mid);
    b.token(&token).unwrap();
    b.uri_path("up").unwrap();
    b.block1(Block::new(num, more, 0).unwrap()).unwrap();
    if let Some(t) = tag {
        b.add_option(OptionNumber::REQUEST_TAG, t).unwrap();
    }
    if let Some(s) = size1 {
        b.add_uint(OptionNumber::SIZE1, s).unwrap();
    }
    b.payload(&payload);
    let mut buf = [0u8; 128];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// The Block1 tests send many blocks from one peer at once: no quota.
fn block1_server() -> Ep {
    let config = Config {
        max_body: 256,
        peer_share_percent: 100,
        ..Config::default()
    };
    Endpoint::new(config, TestRng(9), &UP)
}

/// Sends a message, answers any request with 2.04, returns the reply code.
fn exchange(s: &mut Ep, m: StdVec<u8>) -> Code {
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    while let Some(ev) = s.poll_event() {
        if let Event::Request { id, .. } = ev {
            s.respond(Duration::ZERO, id, &Response::new(Code::CHANGED))
                .unwrap();
        }
    }
    let out = drain(s);
    Message::parse(&out[0]).unwrap().code()
}

#[test]
fn block1_continue_gap_too_large_and_request_tags() {
    let mut s = block1_server();
    // Two concurrent uploads kept apart by Request-Tag.
    assert_eq!(
        exchange(&mut s, block1_put(1, 0, true, Some(b"a"), None)),
        Code::CONTINUE
    );
    assert_eq!(
        exchange(&mut s, block1_put(2, 0, true, Some(b"b"), None)),
        Code::CONTINUE
    );
    assert_eq!(
        exchange(&mut s, block1_put(3, 1, true, Some(b"a"), None)),
        Code::CONTINUE
    );
    assert_eq!(
        exchange(&mut s, block1_put(4, 1, false, Some(b"b"), None)),
        Code::CHANGED
    );
    // A gap (block 3 after block 1) is 4.08 and never reaches the application.
    assert_eq!(
        exchange(&mut s, block1_put(5, 3, true, Some(b"a"), None)),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    assert_eq!(
        exchange(&mut s, block1_put(6, 2, false, Some(b"a"), None)),
        Code::CHANGED
    );
    // No upload in progress: 4.08.
    assert_eq!(
        exchange(&mut s, block1_put(7, 5, false, None, None)),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    // Announced or actual size above max_body (256): 4.13 with Size1.
    let m = block1_put(8, 0, true, None, Some(10_000));
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(r.code(), Code::REQUEST_ENTITY_TOO_LARGE);
    assert_eq!(r.uint_option(OptionNumber::SIZE1).unwrap(), Some(256));
    let mut s = block1_server();
    assert_eq!(
        exchange(&mut s, block1_put(9, 16, true, None, None)),
        Code::REQUEST_ENTITY_TOO_LARGE
    );
}

fn observe_get(mid: u16, token: u8, observe: Option<u32>) -> StdVec<u8> {
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::GET, mid);
    b.token(core::slice::from_ref(&token)).unwrap();
    b.uri_path("obs").unwrap();
    if let Some(o) = observe {
        b.observe(o).unwrap();
    }
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn register(s: &mut Ep, mid: u16, token: u8) -> StdVec<u8> {
    s.handle_datagram(Duration::ZERO, 1, &mut observe_get(mid, token, Some(0)))
        .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(b"0"),
    )
    .unwrap();
    drain(s).remove(0)
}

#[test]
fn observe_register_notify_rst_and_deregister() {
    let mut s = small_server();
    let first = register(&mut s, 1, 0xaa);
    let r = Message::parse(&first).unwrap();
    let seq0 = r.observe().unwrap().unwrap();
    assert_eq!(s.observer_count(), 1);
    // Notifications carry increasing sequence numbers and the token.
    assert_eq!(
        s.notify(
            Duration::ZERO,
            "/obs",
            &Response::new(Code::CONTENT).payload(b"1")
        )
        .unwrap(),
        1
    );
    let n = drain(&mut s).remove(0);
    let m = Message::parse(&n).unwrap();
    assert_eq!((m.ty(), m.token()), (MessageType::Non, &[0xaa][..]));
    assert!(m.observe().unwrap().unwrap() > seq0);
    // RST to the notification removes the observer.
    let mid = m.message_id().to_be_bytes();
    let mut rst = [0x70, 0, mid[0], mid[1]];
    s.handle_datagram(Duration::ZERO, 1, &mut rst).unwrap();
    assert_eq!(s.observer_count(), 0);
    assert_eq!(
        s.notify(Duration::ZERO, "obs", &Response::new(Code::CONTENT))
            .unwrap(),
        0
    );
    // Register again, then deregister with Observe 1.
    register(&mut s, 2, 0xbb);
    assert_eq!(s.observer_count(), 1);
    s.handle_datagram(Duration::ZERO, 1, &mut observe_get(3, 0xbb, Some(1)))
        .unwrap();
    assert_eq!(s.observer_count(), 0);
}

#[test]
fn notify_with_refuses_one_observer_and_ends_only_its_observation() {
    let mut s = small_server();
    // Peer 1 and peer 2 both observe /obs.
    register(&mut s, 1, 0xaa);
    s.handle_datagram(Duration::ZERO, 2, &mut observe_get(7, 0xbb, Some(0)))
        .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(b"0"),
    )
    .unwrap();
    drain(&mut s);
    assert_eq!(s.observer_count(), 2);
    // Peer 2's authorization ended: it gets 4.01 without a payload and
    // without Observe; peer 1 gets the representation.
    let r = Response::new(Code::CONTENT).payload(b"1");
    let sent = s
        .notify_with(Duration::ZERO, "obs", &r, |peer| {
            (*peer == 2).then_some(Code::UNAUTHORIZED)
        })
        .unwrap();
    assert_eq!(sent, 2);
    let mut got = StdVec::new();
    for d in drain(&mut s) {
        let m = Message::parse(&d).unwrap();
        got.push((
            m.token().to_vec(),
            m.code(),
            m.payload().to_vec(),
            m.observe().unwrap(),
        ));
    }
    got.sort();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (&got[0].0[..], got[0].1, &got[0].2[..]),
        (&[0xaa][..], Code::CONTENT, &b"1"[..])
    );
    assert!(got[0].3.is_some());
    assert_eq!(
        (&got[1].0[..], got[1].1, &got[1].2[..], got[1].3),
        (&[0xbb][..], Code::UNAUTHORIZED, &b""[..], None)
    );
    // Only peer 1 still observes; a success code from `refuse` is ignored.
    assert_eq!(s.observer_count(), 1);
    assert_eq!(
        s.notify_with(Duration::ZERO, "obs", &r, |_| Some(Code::CONTENT))
            .unwrap(),
        1
    );
    let m = drain(&mut s).remove(0);
    assert_eq!(Message::parse(&m).unwrap().payload(), b"1");
    assert_eq!(s.observer_count(), 1);
}

#[test]
fn refused_notification_replacing_one_in_flight_ends_the_observation() {
    let mut s = small_server();
    register(&mut s, 1, 0xaa);
    // Notify until a CON notification is in flight (never acknowledged).
    let every = Config::default().notify_con_every.max(1);
    let mut con_in_flight = false;
    for i in 0..every {
        s.notify(
            Duration::ZERO,
            "obs",
            &Response::new(Code::CONTENT).payload(&[b'0' + (i % 10) as u8]),
        )
        .unwrap();
        for d in drain(&mut s) {
            con_in_flight |= Message::parse(&d).unwrap().ty() == MessageType::Con;
        }
    }
    assert!(con_in_flight, "no CON notification after {every}");
    assert_eq!(s.observer_count(), 1);
    // The token expired: the 4.01 replaces the CON in flight and ends it.
    let r = Response::new(Code::CONTENT).payload(b"x");
    assert_eq!(
        s.notify_with(Duration::ZERO, "obs", &r, |_| Some(Code::UNAUTHORIZED))
            .unwrap(),
        1
    );
    let out = drain(&mut s);
    let last = Message::parse(out.last().unwrap()).unwrap();
    assert_eq!(
        (last.code(), last.observe().unwrap()),
        (Code::UNAUTHORIZED, None)
    );
    assert_eq!(s.observer_count(), 0);
    assert_eq!(s.notify(Duration::ZERO, "obs", &r).unwrap(), 0);
}

#[test]
fn every_nth_notification_is_con_and_replaced_in_flight() {
    let mut s = small_server();
    register(&mut s, 1, 0xcc);
    let every = Config::default().notify_con_every;
    let mut types = StdVec::new();
    for i in 0..every {
        let v = [i as u8];
        s.notify(
            Duration::ZERO,
            "obs",
            &Response::new(Code::CONTENT).payload(&v),
        )
        .unwrap();
        types.push(Message::parse(&drain(&mut s)[0]).unwrap().ty());
    }
    assert_eq!(types.iter().filter(|t| **t == MessageType::Con).count(), 1);
    assert_eq!(types.last(), Some(&MessageType::Con));
    // While that CON is unacknowledged the next notification replaces it.
    s.notify(
        Duration::ZERO,
        "obs",
        &Response::new(Code::CONTENT).payload(b"new"),
    )
    .unwrap();
    let out = drain(&mut s);
    let m = Message::parse(&out[0]).unwrap();
    assert_eq!((m.ty(), m.payload()), (MessageType::Con, &b"new"[..]));
    // The observer that never acknowledges is removed after MAX_RETRANSMIT.
    while let Some(t) = s.poll_timeout() {
        s.handle_timeout(t);
        drain_at(&mut s, t);
    }
    assert_eq!(s.observer_count(), 0);
}

#[test]
fn peer_at_its_message_id_quota_gets_503_with_max_age_until_its_oldest_settles() {
    let mut s = server(); // D = 8: quota 4
    assert_eq!(s.peer_quota().message_ids, 4);
    for mid in 0..4u16 {
        assert_eq!(
            get_as(&mut s, Duration::ZERO, 1, mid, &[1], "temp"),
            Code::CONTENT
        );
    }
    assert_eq!(s.peer_usage(&1).message_ids, 4);
    let mut m = req(MessageType::Con, Code::GET, 100, "temp");
    s.handle_datagram(Duration::ZERO, 1, &mut m).unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(r.code(), Code::SERVICE_UNAVAILABLE);
    assert_eq!(r.max_age().unwrap(), Some(Config::default().busy_max_age));
    assert_eq!(s.stats().busy, 1);
    assert!(s.poll_event().is_none());
    // Once MAX_TRANSMIT_SPAN passed, no retransmission of its oldest
    // request can come: that entry makes room.
    let settled = Config::default().max_transmit_span();
    assert_eq!(get_as(&mut s, settled, 1, 101, &[1], "temp"), Code::CONTENT);
    assert_eq!(s.peer_usage(&1).message_ids, 4);
    // After EXCHANGE_LIFETIME every ID is forgotten.
    let later = settled + Config::default().exchange_lifetime() + Duration::from_secs(1);
    s.handle_timeout(later);
    assert_eq!(s.peer_usage(&1).message_ids, 0);
}

#[test]
fn unverified_peers_never_evict_a_verified_peers_message_ids() {
    let mut s = server(); // D = 8: quota 4
    s.set_verified_peers(|p| *p < 10);
    // Two verified peers fill the cache to their quotas.
    for p in [1u8, 2] {
        for mid in 0..4u16 {
            assert_eq!(
                get_as(&mut s, Duration::ZERO, p, mid, &[p], "temp"),
                Code::CONTENT
            );
        }
    }
    // Spoofable peers get 5.03, the cache stays as it is.
    for p in 20..30u8 {
        assert_eq!(
            get_as(&mut s, Duration::ZERO, p, 7, &[p], "temp"),
            Code::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(s.peer_usage(&1).message_ids, 4);
    assert_eq!(s.peer_usage(&2).message_ids, 4);
    // A duplicate of peer 1 is still recognised.
    let dups = s.stats().duplicates;
    get_as(&mut s, Duration::ZERO, 1, 0, &[1], "temp");
    assert_eq!(s.stats().duplicates, dups + 1);
}

#[test]
fn a_verified_peer_within_its_quota_is_served_whatever_spoofed_peers_send() {
    let mut s = server(); // D = 8: quota 4
    s.set_verified_peers(|p| *p < 10);
    let mut mid = 0u16;
    for round in 0..40u8 {
        // Unverified sources fill the cache...
        for p in 0..8u8 {
            mid = mid.wrapping_add(1);
            get_as(&mut s, Duration::ZERO, 100 + p, mid, &[p], "temp");
        }
        // ...and the verified peer below its quota is served.
        if s.peer_usage(&1).message_ids < s.peer_quota().message_ids {
            mid = mid.wrapping_add(1);
            assert_eq!(
                get_as(&mut s, Duration::ZERO, 1, mid, &[round], "temp"),
                Code::CONTENT,
                "round {round}"
            );
        }
        assert!(s.peer_usage(&1).within(&s.peer_quota()));
    }
}

#[test]
fn client_rejects_unknown_notification_and_matches_separate_response() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(5), &[]);
    // An unknown token in a NON response is answered with RST (RFC 7641 §3.6).
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Non, Code::CONTENT, 77);
    b.token(&[9, 9]).unwrap();
    let mut buf = [0u8; 32];
    let n = b.emit(&mut buf).unwrap();
    c.handle_datagram(Duration::ZERO, 2, &mut buf[..n]).unwrap();
    assert_eq!(drain(&mut c), [[0x70, 0, 0, 77]]);
    // Request, Empty ACK, then a CON response with the token: ACKed once,
    // delivered once even when duplicated.
    let id = c.request(Duration::ZERO, 2, &Request::get("x")).unwrap();
    let sent = drain(&mut c).remove(0);
    let q = Message::parse(&sent).unwrap();
    let mut ack = [0x60, 0, sent[2], sent[3]];
    c.handle_datagram(Duration::ZERO, 2, &mut ack).unwrap();
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Con, Code::CONTENT, 500);
    b.token(q.token()).unwrap();
    b.payload(b"late");
    let n = b.emit(&mut buf).unwrap();
    for _ in 0..2 {
        c.handle_datagram(Duration::ZERO, 2, &mut buf[..n]).unwrap();
        assert_eq!(drain(&mut c), [[0x60, 0, 0x01, 0xf4]]);
    }
    match c.poll_event() {
        Some(Event::Response {
            id: got,
            response,
            last: true,
            ..
        }) => {
            assert_eq!((got, response.payload()), (id, &b"late"[..]));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.poll_event().is_none());
}

#[test]
fn unanswered_request_frees_its_slot_after_exchange_lifetime() {
    let mut s = server();
    let mut m = req(MessageType::Con, Code::PUT, 1, "led");
    s.handle_datagram(Duration::ZERO, 1, &mut m).unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!()
    };
    assert_eq!(s.pending_requests(), 1);
    let later = Config::default().exchange_lifetime() + Duration::from_secs(1);
    s.handle_timeout(later);
    assert_eq!(s.pending_requests(), 0);
    assert_eq!(
        s.respond(later, id, &Response::new(Code::CHANGED)),
        Err(Error::UnknownId)
    );
}

#[test]
fn non_request_gets_non_response_and_duplicate_is_ignored() {
    let mut s = server();
    let m = req(MessageType::Non, Code::GET, 40, "temp");
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(
        Duration::ZERO,
        id,
        &Response::new(Code::CONTENT).payload(b"20"),
    )
    .unwrap();
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(
        (r.ty(), r.code(), r.token()),
        (MessageType::Non, Code::CONTENT, &[1u8, 2][..])
    );
    assert_ne!(
        r.message_id(),
        40,
        "a NON response takes a fresh message ID"
    );
    // No separate-ACK timer for NON, and the duplicate is not re-run.
    assert_eq!(s.poll_timeout(), None);
    s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
        .unwrap();
    assert!(s.poll_event().is_none());
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.stats().duplicates, 1);
}

fn block_response(num: u32, more: bool, payload: &[u8]) -> Received<256> {
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Ack, Code::CONTENT, 1);
    b.block2(Block::new(num, more, 0).unwrap()).unwrap();
    b.payload(payload);
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    Received::new(&Message::parse(&buf[..n]).unwrap()).unwrap()
}

#[test]
fn block_assembler_in_order_gap_and_short_buffer() {
    let mut buf = [0u8; 40];
    let mut asm = BlockAssembler::new();
    assert_eq!(
        asm.push(&mut buf, &block_response(0, true, &[1; 16])),
        Ok(None)
    );
    // A gap (block 2 after block 0) is refused and writes nothing.
    assert_eq!(
        asm.push(&mut buf, &block_response(2, true, &[3; 16])),
        Err(Error::BadBlock)
    );
    assert_eq!(
        asm.push(&mut buf, &block_response(1, true, &[2; 16])),
        Ok(None)
    );
    assert_eq!(
        asm.push(&mut buf, &block_response(2, false, &[3; 16])),
        Err(Error::BufferTooSmall { needed: 48 })
    );
    let mut big = [0u8; 48];
    big[..32].copy_from_slice(&buf[..32]);
    assert_eq!(
        asm.push(&mut big, &block_response(2, false, &[3; 16])),
        Ok(Some(48))
    );
    assert_eq!(&big[..], &[[1u8; 16], [2; 16], [3; 16]].concat()[..]);
}

/// Sends a NON GET to `peer` at `now`, returns its message ID and forgets
/// the exchange (only the message layer is under test).
fn non_get_mid(c: &mut Ep, now: Duration, peer: u8) -> u16 {
    let id = c.request(now, peer, &Request::get("x").non()).unwrap();
    let out = drain_at(c, now);
    assert_eq!(out.len(), 1);
    c.forget(id);
    Message::parse(&out[0]).unwrap().message_id()
}

#[test]
fn message_ids_are_allocated_per_peer() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(3), &[]);
    let t = Duration::ZERO;
    // Interleaved requests: each peer still sees a consecutive sequence.
    let a0 = non_get_mid(&mut c, t, 1);
    let b0 = non_get_mid(&mut c, t, 2);
    let a1 = non_get_mid(&mut c, t, 1);
    let b1 = non_get_mid(&mut c, t, 2);
    let a2 = non_get_mid(&mut c, t, 1);
    assert_eq!(a1, a0.wrapping_add(1));
    assert_eq!(a2, a0.wrapping_add(2));
    assert_eq!(b1, b0.wrapping_add(1));
    assert_eq!(c.mid_sequences(), 2);
}

#[test]
fn message_id_table_evicts_least_recently_used_peer() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(5), &[]);
    // N = 4 sequences: peers 1..=4 at t = 1..=4 s, then peer 1 again.
    let mut last = [0u16; 6];
    for p in 1..=4u8 {
        last[usize::from(p)] = non_get_mid(&mut c, Duration::from_secs(u64::from(p)), p);
    }
    let again = non_get_mid(&mut c, Duration::from_secs(5), 1);
    assert_eq!(again, last[1].wrapping_add(1));
    // Peer 5 evicts the least recently used sequence (peer 2, t = 2 s)...
    non_get_mid(&mut c, Duration::from_secs(6), 5);
    assert_eq!(c.mid_sequences(), 4);
    // ...so peers 1, 3 and 4 continue their sequences.
    for p in [3u8, 4] {
        let m = non_get_mid(&mut c, Duration::from_secs(7), p);
        assert_eq!(m, last[usize::from(p)].wrapping_add(1), "peer {p}");
    }
    let m = non_get_mid(&mut c, Duration::from_secs(7), 1);
    assert_eq!(m, again.wrapping_add(1));
    assert_eq!(c.mid_sequences(), 4);
}

#[test]
fn block2_notification_fetches_rest_without_observe_on_fresh_token() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(9), &[]);
    let t = Duration::ZERO;
    let id = c.request(t, 2, &Request::get("temp").observe()).unwrap();
    let out = drain(&mut c);
    let reg = Message::parse(&out[0]).unwrap();
    let obs_token = reg.token().to_vec();
    // The registration answer: Observe 5, first of two 16-byte blocks.
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Ack, Code::CONTENT, reg.message_id());
    b.token(&obs_token).unwrap();
    b.observe(5).unwrap();
    b.add_option(OptionNumber::ETAG, &[9]).unwrap();
    b.block2(Block::new(0, true, 0).unwrap()).unwrap();
    b.payload(&[1; 16]);
    let mut m = emit_test(&b);
    c.handle_datagram(t, 2, &mut m).unwrap();
    let mut asm = BlockAssembler::new();
    let mut body = [0u8; 64];
    match c.poll_event() {
        Some(Event::Notification {
            id: got,
            last: false,
            notification,
            ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(asm.push(&mut body, &notification), Ok(None));
        }
        other => panic!("{other:?}"),
    }
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    let get = Message::parse(&out[0]).unwrap();
    assert_eq!(get.code(), Code::GET);
    assert_eq!(get.observe().unwrap(), None, "block fetch must not observe");
    assert_ne!(
        get.token(),
        &obs_token[..],
        "block fetch uses a fresh token"
    );
    assert_eq!(get.block2().unwrap().map(|b| b.num()), Some(1));
    // The final block completes the notification on the observing exchange.
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Ack, Code::CONTENT, get.message_id());
    b.token(get.token()).unwrap();
    b.add_option(OptionNumber::ETAG, &[9]).unwrap();
    b.block2(Block::new(1, false, 0).unwrap()).unwrap();
    b.payload(&[2; 10]);
    let mut m = emit_test(&b);
    c.handle_datagram(t, 2, &mut m).unwrap();
    match c.poll_event() {
        Some(Event::Notification {
            id: got,
            last: true,
            notification,
            ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(asm.push(&mut body, &notification), Ok(Some(26)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(&body[..26], &[[1u8; 16].as_slice(), &[2; 10]].concat()[..]);
    // Only the observation is left.
    assert_eq!(c.exchange_count(), 1);
}

#[test]
fn block2_notification_with_changed_etag_is_abandoned() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(10), &[]);
    let t = Duration::ZERO;
    c.request(t, 2, &Request::get("temp").observe()).unwrap();
    let out = drain(&mut c);
    let reg = Message::parse(&out[0]).unwrap();
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Ack, Code::CONTENT, reg.message_id());
    b.token(reg.token()).unwrap();
    b.observe(5).unwrap();
    b.add_option(OptionNumber::ETAG, &[1]).unwrap();
    b.block2(Block::new(0, true, 0).unwrap()).unwrap();
    b.payload(&[1; 16]);
    let mut m = emit_test(&b);
    c.handle_datagram(t, 2, &mut m).unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(Event::Notification { last: false, .. })
    ));
    let out = drain(&mut c);
    let get = Message::parse(&out[0]).unwrap();
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Ack, Code::CONTENT, get.message_id());
    b.token(get.token()).unwrap();
    b.add_option(OptionNumber::ETAG, &[2]).unwrap();
    b.block2(Block::new(1, false, 0).unwrap()).unwrap();
    b.payload(&[2; 10]);
    let mut m = emit_test(&b);
    let dropped = c.stats().dropped;
    c.handle_datagram(t, 2, &mut m).unwrap();
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.stats().dropped, dropped + 1);
    assert_eq!(c.exchange_count(), 1);
}

fn emit_test(b: &MessageBuilder<'_, 4>) -> StdVec<u8> {
    let mut v = StdVec::from_iter(core::iter::repeat_n(0u8, b.buffer_len()));
    let n = b.emit(&mut v).unwrap();
    v.truncate(n);
    v
}

/// Answers the client's last request (an ACK) with `code` and Block1.
fn answer_block1(c: &mut Ep, req: &[u8], code: Code, b1: Block) {
    let m = Message::parse(req).unwrap();
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Ack, code, m.message_id());
    b.token(m.token()).unwrap();
    b.block1(b1).unwrap();
    let mut out = emit_test(&b);
    c.handle_datagram(Duration::ZERO, 2, &mut out).unwrap();
}

#[test]
fn upload_follows_2_31_and_restarts_smaller_after_4_13() {
    let cfg = Config {
        max_szx: 3,
        ..Config::default()
    };
    let mut c: Ep = Endpoint::new(cfg, TestRng(11), &[]);
    let body: StdVec<u8> = (0..300u32).map(|i| i as u8).collect();
    let id = c
        .upload(Duration::ZERO, 2, &Request::put("led").payload(&body))
        .unwrap();
    assert_eq!(
        c.upload(Duration::ZERO, 2, &Request::put("led").payload(&body)),
        Err(Error::Busy),
        "one automatic upload at a time"
    );
    let out = drain(&mut c);
    let first = Message::parse(&out[0]).unwrap();
    assert_eq!(
        first.block1().unwrap(),
        Some(Block::new(0, true, 3).unwrap())
    );
    assert_eq!(first.payload(), &body[..128]);
    assert_eq!(first.option(OptionNumber::SIZE1), Some(&[1u8, 44][..]));
    // 4.13 naming 32-byte blocks: start over with them.
    answer_block1(
        &mut c,
        &out[0],
        Code::REQUEST_ENTITY_TOO_LARGE,
        Block::new(0, false, 1).unwrap(),
    );
    assert_eq!(c.poll_event(), None);
    let out2 = drain(&mut c);
    let again = Message::parse(&out2[0]).unwrap();
    assert_eq!(
        again.block1().unwrap(),
        Some(Block::new(0, true, 1).unwrap())
    );
    assert_eq!(again.payload(), &body[..32]);
    assert_eq!(again.option(OptionNumber::SIZE1), Some(&[1u8, 44][..]));
    assert_ne!(again.token(), first.token(), "fresh token per block");
    // 2.31: next block.
    answer_block1(
        &mut c,
        &out2[0],
        Code::CONTINUE,
        Block::new(0, true, 1).unwrap(),
    );
    assert_eq!(c.poll_event(), None);
    let out3 = drain(&mut c);
    let next = Message::parse(&out3[0]).unwrap();
    assert_eq!(
        next.block1().unwrap(),
        Some(Block::new(1, true, 1).unwrap())
    );
    assert_eq!(next.payload(), &body[32..64]);
    assert_eq!(next.option(OptionNumber::SIZE1), None);
    // Any other answer is final and delivered once.
    answer_block1(
        &mut c,
        &out3[0],
        Code(0x88),
        Block::new(1, false, 1).unwrap(),
    );
    match c.poll_event() {
        Some(Event::Response {
            id: got,
            last: true,
            response,
            ..
        }) => {
            assert_eq!(got, id);
            assert_eq!(response.code(), Code(0x88));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.exchange_count(), 0);
    // The upload slot is free again; a body larger than U is refused.
    assert!(c
        .upload(Duration::ZERO, 2, &Request::put("led").payload(&body))
        .is_ok());
    drain(&mut c);
    let huge = StdVec::from_iter(core::iter::repeat_n(0u8, 5000));
    let mut c2: Ep = Endpoint::new(cfg, TestRng(12), &[]);
    assert_eq!(
        c2.upload(Duration::ZERO, 2, &Request::put("led").payload(&huge)),
        Err(Error::BufferTooSmall { needed: 5000 })
    );
}

#[test]
fn upload_slot_is_freed_when_its_exchange_times_out() {
    let cfg = Config {
        max_szx: 3,
        ..Config::default()
    };
    let mut c: Ep = Endpoint::new(cfg, TestRng(13), &[]);
    let body = [7u8; 300];
    let id = c
        .upload(Duration::ZERO, 2, &Request::put("led").payload(&body))
        .unwrap();
    let mut now = Duration::ZERO;
    let mut timed_out = false;
    for _ in 0..1000 {
        drain_at(&mut c, now);
        match c.poll_event() {
            Some(Event::Timeout { id: got }) => {
                assert_eq!(got, id);
                timed_out = true;
                break;
            }
            Some(other) => panic!("{other:?}"),
            None => {}
        }
        now = c.poll_timeout().unwrap_or(now + Duration::from_secs(1));
        c.handle_timeout(now);
    }
    assert!(timed_out, "the unanswered upload never timed out");
    assert_eq!(c.stats().give_ups, 1);
    assert!(c
        .upload(now, 2, &Request::put("led").payload(&body))
        .is_ok());
}

#[test]
fn close_peer_drops_everything_tied_to_the_peer() {
    // Peer 1 observes, has an answered request cached, an unanswered one
    // pending and a Block1 upload going; peer 2 has a cached answer too.
    let mut s = small_server();
    register(&mut s, 1, 0xaa);
    assert_eq!(s.observer_count(), 1);
    let answered = |s: &mut Ep, peer: u8, mid: u16| {
        let mut m = observe_get(mid, 7, None);
        s.handle_datagram(Duration::ZERO, peer, &mut m).unwrap();
        let Some(Event::Request { id, .. }) = s.poll_event() else {
            panic!("no request")
        };
        s.respond(
            Duration::ZERO,
            id,
            &Response::new(Code::CONTENT).payload(b"secret"),
        )
        .unwrap();
        drain(s);
    };
    answered(&mut s, 1, 20);
    answered(&mut s, 2, 20);
    s.handle_datagram(Duration::ZERO, 1, &mut observe_get(21, 8, None))
        .unwrap();
    assert_eq!(s.pending_requests(), 1);
    s.close_peer(&1);
    assert_eq!(
        s.observer_count(),
        0,
        "the observation ended with the session"
    );
    assert_eq!(s.pending_requests(), 0);
    assert_eq!(s.poll_event(), None, "its undelivered request is gone");
    assert_eq!(
        s.notify(Duration::ZERO, "obs", &Response::new(Code::CONTENT))
            .unwrap(),
        0
    );
    // A later peer with the same value is new: the same message ID is a
    // new request, not a replay of the old answer.
    s.handle_datagram(Duration::ZERO, 1, &mut observe_get(20, 9, None))
        .unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Request { .. })));
    // Peer 2's cached answer is untouched.
    let dups = s.stats().duplicates;
    s.handle_datagram(Duration::ZERO, 2, &mut observe_get(20, 7, None))
        .unwrap();
    assert_eq!(s.stats().duplicates, dups + 1);
    let replay = drain(&mut s);
    assert!(replay.iter().any(|d| d.ends_with(b"secret")));
}

#[test]
fn close_peer_aborts_client_exchanges_with_it() {
    let mut c: Ep = Endpoint::new(Config::default(), TestRng(3), &[]);
    let a = c.request(Duration::ZERO, 5, &Request::get("x")).unwrap();
    let b = c.request(Duration::ZERO, 6, &Request::get("y")).unwrap();
    c.close_peer(&5);
    assert_eq!(c.poll_event(), Some(Event::Aborted { id: a }));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.exchange_count(), 1);
    // Only the other peer's request goes out.
    let mut buf = [0u8; 256];
    let mut to = StdVec::new();
    while let Some(t) = c.poll_transmit(Duration::ZERO, &mut buf).unwrap() {
        to.push(t.to);
    }
    assert_eq!(to, [6]);
    c.forget(b);
    assert_eq!(c.exchange_count(), 0);
}

/// Registers `token` of `peer` on /obs at `now`, answers 2.05; returns
/// whether the answer carried Observe (the registration was accepted).
fn register_as(s: &mut Ep, now: Duration, peer: u8, mid: u16, token: u8) -> bool {
    s.handle_datagram(now, peer, &mut observe_get(mid, token, Some(0)))
        .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!("no request")
    };
    s.respond(now, id, &Response::new(Code::CONTENT).payload(b"0"))
        .unwrap();
    let out = drain_at(s, now);
    Message::parse(&out[0])
        .unwrap()
        .observe()
        .unwrap()
        .is_some()
}

#[test]
fn observer_that_never_acks_is_removed_although_notifications_come_fast() {
    // RFC 7641 §4.5: an observer that does not acknowledge a confirmable
    // notification is removed once its retransmissions run out. A newer
    // notification replaces the one in flight but keeps its retransmission
    // schedule (§4.5.2), so notifications faster than ACK_TIMEOUT must not
    // keep the observer forever.
    let mut s = small_server();
    assert!(register_as(&mut s, Duration::ZERO, 1, 1, 0xaa));
    let mut now = Duration::ZERO;
    let mut first_con = None;
    // One notification a second for 200 s, never acknowledged.
    for i in 0..200u32 {
        now = Duration::from_secs(u64::from(i) + 1);
        s.handle_timeout(now);
        if let Some(t) = s.oldest_unacknowledged_notification() {
            assert!(now - t <= Config::default().max_transmit_wait());
        }
        let v = [i as u8];
        s.notify(now, "obs", &Response::new(Code::CONTENT).payload(&v))
            .unwrap();
        for d in drain_at(&mut s, now) {
            if Message::parse(&d).unwrap().ty() == MessageType::Con && first_con.is_none() {
                first_con = Some(now);
            }
        }
        if s.observer_count() == 0 {
            break;
        }
    }
    let first = first_con.expect("no confirmable notification");
    assert_eq!(s.observer_count(), 0, "observer never removed");
    // Removed within MAX_TRANSMIT_WAIT (93 s) of the first unacknowledged
    // CON, plus the one-second notification period.
    let c = Config::default();
    let wait = c.ack_timeout * ((1 << (c.max_retransmit + 1)) - 1) * 3 / 2;
    assert!(
        now <= first + wait + Duration::from_secs(1),
        "removed {:?} after the first CON",
        now - first
    );
}

/// Notifies `s`'s observers of /obs at `now` until a confirmable one is on
/// the wire, then once more (replacing it in flight); returns when that
/// CON was first sent.
fn con_notification_in_flight(s: &mut Ep, now: Duration) -> Duration {
    for i in 0..=Config::default().notify_con_every {
        s.notify(
            now,
            "obs",
            &Response::new(Code::CONTENT).payload(&[i as u8]),
        )
        .unwrap();
        drain_at(s, now);
    }
    let first = s
        .oldest_unacknowledged_notification()
        .expect("no confirmable notification in flight");
    // One more replaces it in flight and keeps its schedule.
    s.notify(now, "obs", &Response::new(Code::CONTENT).payload(b"x"))
        .unwrap();
    assert_eq!(drain_at(s, now).len(), 1);
    assert_eq!(s.oldest_unacknowledged_notification(), Some(first));
    first
}

#[test]
fn late_handle_timeout_removes_an_observer_whose_budget_ran_out() {
    // RFC 7641 §4.5, RFC 7252 §4.2: a CON notification never acknowledged
    // ends its observation once MAX_TRANSMIT_WAIT has passed since its
    // first transmission. A driver that calls `handle_timeout` late (a
    // sleeping device, a busy loop) must not stretch that: one call at
    // 155 s, long after the whole budget ran out, removes the observer
    // instead of counting a single retransmission.
    let mut s = small_server();
    assert!(register_as(&mut s, Duration::ZERO, 1, 1, 0xaa));
    let first = con_notification_in_flight(&mut s, Duration::ZERO);
    let now = first + Duration::from_millis(155_136);
    s.handle_timeout(now);
    assert_eq!(s.oldest_unacknowledged_notification(), None);
    assert_eq!(s.observer_count(), 0);
    assert!(drain_at(&mut s, now).is_empty(), "sent after giving up");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn late_handle_timeout_keeps_the_schedule_of_a_notification_in_flight() {
    // A late call within the budget retransmits once, uses up the
    // retransmissions whose time passed, and keeps the schedule anchored
    // to the first transmission: with timeouts T, 2T, 4T, 8T, 16T (T at
    // most 3 s) the observer is gone by 31T <= MAX_TRANSMIT_WAIT, after
    // one more retransmission (at 15T).
    let mut s = small_server();
    assert!(register_as(&mut s, Duration::ZERO, 1, 1, 0xaa));
    let first = con_notification_in_flight(&mut s, Duration::ZERO);
    let wait = Config::default().max_transmit_wait();
    // Past the first three retransmission times (T, 3T, 7T <= 21 s), before
    // the fourth (15T >= 30 s).
    let mut now = first + Duration::from_secs(29);
    let before = s.stats().retransmissions;
    s.handle_timeout(now);
    assert_eq!(s.stats().retransmissions - before, 1);
    assert_eq!(drain_at(&mut s, now).len(), 1, "one retransmission now");
    assert_eq!(s.observer_count(), 1);
    while let Some(t) = s.poll_timeout() {
        assert!(t > now);
        now = t;
        s.handle_timeout(now);
        drain_at(&mut s, now);
    }
    assert_eq!(s.observer_count(), 0);
    assert_eq!(s.stats().retransmissions - before, 2);
    assert!(now - first <= wait, "removed {:?} after", now - first);
}

#[test]
fn rst_to_an_earlier_notification_ends_the_observation() {
    // A client whose round trip is longer than the notification period
    // answers an older notification with RST: that ends the observation
    // too (RFC 7641 §3.6, §4.5).
    let mut s = small_server();
    assert!(register_as(&mut s, Duration::ZERO, 1, 1, 0xaa));
    let mut mids = StdVec::new();
    for i in 0..10u8 {
        s.notify(
            Duration::ZERO,
            "obs",
            &Response::new(Code::CONTENT).payload(&[i]),
        )
        .unwrap();
        for d in drain(&mut s) {
            mids.push(Message::parse(&d).unwrap().message_id());
        }
    }
    assert!(mids.len() >= 10);
    // RST to the third-newest notification.
    let mid = mids[mids.len() - 3].to_be_bytes();
    let mut rst = [0x70, 0, mid[0], mid[1]];
    s.handle_datagram(Duration::ZERO, 1, &mut rst).unwrap();
    assert_eq!(s.observer_count(), 0);
    // Nothing more is sent to it, the CON in flight included.
    while let Some(t) = s.poll_timeout() {
        s.handle_timeout(t);
        assert!(drain_at(&mut s, t).is_empty(), "sent at {t:?}");
    }
}

#[test]
fn observer_acking_late_notifications_stays() {
    // A client with a 3 s round trip and a notification a second: its ACKs
    // always name an older notification than the one in flight. It is
    // alive, so it stays an observer.
    let mut s = small_server();
    assert!(register_as(&mut s, Duration::ZERO, 1, 1, 0xaa));
    let mut acks: StdVec<(Duration, u16)> = StdVec::new();
    for i in 0..300u32 {
        let now = Duration::from_secs(u64::from(i) + 1);
        while acks.first().is_some_and(|(t, _)| *t <= now) {
            let (_, mid) = acks.remove(0);
            let m = mid.to_be_bytes();
            s.handle_datagram(now, 1, &mut [0x60, 0, m[0], m[1]])
                .unwrap();
        }
        s.handle_timeout(now);
        s.notify(
            now,
            "obs",
            &Response::new(Code::CONTENT).payload(&[i as u8]),
        )
        .unwrap();
        for d in drain_at(&mut s, now) {
            let m = Message::parse(&d).unwrap();
            if m.ty() == MessageType::Con {
                acks.push((now + Duration::from_secs(3), m.message_id()));
            }
        }
    }
    assert_eq!(s.observer_count(), 1);
}

#[test]
fn one_peer_cannot_take_every_observation_slot() {
    let mut s = small_server(); // N = 4
    let mut accepted = 0;
    for t in 0..4u8 {
        if register_as(&mut s, Duration::ZERO, 1, 10 + u16::from(t), t) {
            accepted += 1;
        }
    }
    assert!(accepted < 4, "peer 1 holds every observer slot");
    assert!(
        register_as(&mut s, Duration::ZERO, 2, 20, 9),
        "another peer cannot observe"
    );
}

/// A CON GET of `path` from `peer` with message ID `mid` and `token`;
/// answers a resulting request with 2.05 "ok"; returns the reply code.
fn get_as(s: &mut Ep, now: Duration, peer: u8, mid: u16, token: &[u8], path: &str) -> Code {
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::GET, mid);
    b.token(token).unwrap();
    b.uri_path(path).unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(now, peer, &mut buf[..n]).unwrap();
    while let Some(ev) = s.poll_event() {
        if let Event::Request { id, .. } = ev {
            s.respond(now, id, &Response::new(Code::CONTENT).payload(b"ok"))
                .unwrap();
        }
    }
    let out = drain_at(s, now);
    Message::parse(&out[0]).unwrap().code()
}

#[test]
fn answers_of_the_endpoint_itself_take_no_message_id_cache_entry() {
    let mut s = server(); // D = 8
                          // One peer draws 4.04 for every message ID it likes...
    for mid in 0..8u16 {
        assert_eq!(
            get_as(&mut s, Duration::ZERO, 1, mid, &[1], "nope"),
            Code::NOT_FOUND
        );
    }
    // ...and another peer's request is still served.
    assert_eq!(
        get_as(&mut s, Duration::ZERO, 2, 100, &[2], "temp"),
        Code::CONTENT
    );
}

#[test]
fn one_peer_cannot_fill_the_message_id_cache() {
    let mut s = server(); // D = 8
    for mid in 0..8u16 {
        get_as(&mut s, Duration::ZERO, 1, mid, &[1], "temp");
    }
    assert_eq!(
        get_as(&mut s, Duration::ZERO, 2, 100, &[2], "temp"),
        Code::CONTENT,
        "peer 1 holds the whole message-ID cache"
    );
}

#[test]
fn many_peers_with_one_entry_each_do_not_lock_out_a_new_peer() {
    let mut s = server(); // D = 8
    for p in 10..18u8 {
        assert_eq!(
            get_as(&mut s, Duration::ZERO, p, 1, &[1], "temp"),
            Code::CONTENT
        );
    }
    assert_eq!(
        get_as(&mut s, Duration::ZERO, 2, 100, &[2], "temp"),
        Code::CONTENT
    );
}

#[test]
fn a_message_with_a_known_id_but_another_token_is_no_duplicate() {
    let mut s = server();
    assert_eq!(
        get_as(&mut s, Duration::ZERO, 1, 9, &[1, 2, 3, 4], "temp"),
        Code::CONTENT
    );
    // A 4-byte message (no token) with that message ID is not the cached
    // exchange: it is not answered with the cached response.
    let mut short = [0x40, 1, 0, 9];
    s.handle_datagram(Duration::ZERO, 1, &mut short).unwrap();
    let out = drain(&mut s);
    assert!(
        out.iter().all(|d| !d.ends_with(b"ok")),
        "cached response replayed to another token"
    );
    assert_eq!(s.stats().duplicates, 0);
}

/// A CON POST of a first Block1 block (16 bytes, more to come) to /up
/// with `tag` as Request-Tag.
fn first_block(mid: u16, tag: &[u8]) -> StdVec<u8> {
    let token = [mid as u8, 1];
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::PUT, mid);
    b.token(&token).unwrap();
    b.uri_path("up").unwrap();
    b.block1(Block::new(0, true, 0).unwrap()).unwrap();
    b.add_option(OptionNumber::REQUEST_TAG, tag).unwrap();
    b.payload(&[0x42; 16]);
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn refused_first_blocks_keep_no_upload_slot() {
    let mut s = small_server(); // N = 4 upload slots
                                // An unauthenticated peer starts uploads the application refuses.
    for t in 0..4u8 {
        s.handle_datagram(Duration::ZERO, 5, &mut first_block(u16::from(t), &[t]))
            .unwrap();
        let Some(Event::Request { id, .. }) = s.poll_event() else {
            panic!("no request")
        };
        s.respond(Duration::ZERO, id, &Response::new(Code::UNAUTHORIZED))
            .unwrap();
        let out = drain(&mut s);
        assert_eq!(Message::parse(&out[0]).unwrap().code(), Code::UNAUTHORIZED);
    }
    // An authorized client's upload still gets a slot.
    s.handle_datagram(Duration::ZERO, 1, &mut first_block(50, b"ok"))
        .unwrap();
    if let Some(Event::Request { id, .. }) = s.poll_event() {
        s.respond(Duration::ZERO, id, &Response::new(Code::CHANGED))
            .unwrap();
    }
    let out = drain(&mut s);
    assert_eq!(Message::parse(&out[0]).unwrap().code(), Code::CONTINUE);
}

/// A CON PUT to /fresh (an `.echo()` resource) from peer 1 at `now`,
/// with `echo` if given; returns the reply code and its Echo value. A
/// request that reaches the application is answered 2.04.
fn put_fresh(s: &mut Ep, now: Duration, mid: u16, echo: Option<&[u8]>) -> (Code, StdVec<u8>) {
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::PUT, mid);
    b.uri_path("fresh").unwrap();
    if let Some(e) = echo {
        b.add_option(OptionNumber::ECHO, e).unwrap();
    }
    let mut buf = [0u8; 96];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(now, 1, &mut buf[..n]).unwrap();
    if let Some(Event::Request { id, .. }) = s.poll_event() {
        s.respond(now, id, &Response::new(Code::CHANGED)).unwrap();
    }
    let out = drain_at(s, now);
    let r = Message::parse(&out[0]).unwrap();
    let e = r.option(OptionNumber::ECHO).unwrap_or(&[]).to_vec();
    (r.code(), e)
}

#[test]
fn echo_values_expire_echo_lifetime_after_they_were_issued() {
    // RFC 9175 §2.3/§2.4: the server accepts an Echo value only while it
    // is fresh, i.e. no longer than echo_lifetime (30 s) after it issued it,
    // however rarely the endpoint is called.
    let life = Config::default().echo_lifetime;
    let mut s = server();
    let (code, v0) = put_fresh(&mut s, Duration::ZERO, 1, None);
    assert_eq!(code, Code::UNAUTHORIZED);
    assert!(!v0.is_empty());
    // Within the lifetime it is accepted...
    let (code, _) = put_fresh(&mut s, life - Duration::from_secs(2), 2, Some(&v0));
    assert_eq!(code, Code::CHANGED);
    // ...one second after it, not, although the endpoint was not called
    // in between.
    let (code, _) = put_fresh(&mut s, life + Duration::from_secs(1), 3, Some(&v0));
    assert_eq!(
        code,
        Code::UNAUTHORIZED,
        "a value older than echo_lifetime passed"
    );
    // Nor much later, after an unrelated call in between.
    s.handle_timeout(life + Duration::from_secs(2));
    let (code, _) = put_fresh(&mut s, 2 * life - Duration::from_secs(1), 4, Some(&v0));
    assert_eq!(
        code,
        Code::UNAUTHORIZED,
        "a value twice echo_lifetime old passed"
    );
}

/// A CON request `code` /`path` from `peer` with `token` and options
/// added by `extra`; feeds it and returns its length.
#[allow(clippy::too_many_arguments)]
fn send_req<'e>(
    s: &mut Ep,
    now: Duration,
    peer: u8,
    mid: u16,
    code: Code,
    token: &'e [u8],
    path: &'e str,
    extra: impl FnOnce(&mut MessageBuilder<'e, 8>),
) -> usize {
    let mut b = MessageBuilder::<'e, 8>::new(MessageType::Con, code, mid);
    b.token(token).unwrap();
    b.uri_path(path).unwrap();
    extra(&mut b);
    let mut buf = [0u8; 128];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(now, peer, &mut buf[..n]).unwrap();
    n
}

/// Answers every pending request with 2.05 and `body`.
fn answer_all(s: &mut Ep, now: Duration, body: &[u8]) -> usize {
    let mut n = 0;
    while let Some(ev) = s.poll_event() {
        if let Event::Request { id, .. } = ev {
            s.respond(now, id, &Response::new(Code::CONTENT).payload(body))
                .unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn an_unverified_peer_gets_at_most_three_times_its_request() {
    // RFC 9175 §2.4 item 3: toward a source address that has not shown it
    // receives (a spoofed one, say), answers stay under three times the
    // request.
    let mut s = server();
    let body = [0x5a; 200];
    let n = send_req(
        &mut s,
        Duration::ZERO,
        1,
        1,
        Code::GET,
        &[1, 2],
        "temp",
        |_| {},
    );
    assert_eq!(answer_all(&mut s, Duration::ZERO, &body), 1);
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].len() <= 3 * n,
        "{} bytes answered to a {n}-byte request",
        out[0].len()
    );
}

#[test]
fn a_short_duplicate_does_not_replay_a_larger_cached_answer() {
    let mut s = server();
    // A 9-byte GET /temp without token, answered with 25 bytes.
    let n = send_req(&mut s, Duration::ZERO, 1, 7, Code::GET, &[], "temp", |_| {});
    assert_eq!(n, 9);
    answer_all(&mut s, Duration::ZERO, &[0x5a; 20]);
    let out = drain(&mut s);
    assert_eq!(out[0].len(), 25);
    // The 4-byte "duplicate" (same message ID, no token) must not get the
    // cached 25 bytes back.
    let mut short = [0x40, 1, 0, 7];
    s.handle_datagram(Duration::ZERO, 1, &mut short).unwrap();
    for d in drain(&mut s) {
        assert!(d.len() <= 12, "{} bytes answered to 4", d.len());
    }
}

static AMP: [Resource; 3] = [
    Resource::new("big", Methods::GET.union(Methods::POST)).rt("a-rather-long-resource-type"),
    Resource::new("obs", Methods::GET)
        .observable()
        .rt("another-long-resource-type"),
    Resource::new("a/long/path/to/many/things", Methods::GET),
];

fn amp_server(config: Config) -> Ep {
    Endpoint::new(config, TestRng(21), &AMP)
}

#[test]
fn echo_challenge_proves_the_address_then_answers_in_full() {
    let mut s = amp_server(Config::default());
    let body = [0x5a; 200];
    let t = Duration::ZERO;
    send_req(&mut s, t, 1, 1, Code::GET, &[1, 2], "big", |_| {});
    answer_all(&mut s, t, &body);
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert_eq!(r.code(), Code::UNAUTHORIZED);
    let echo = r.option(OptionNumber::ECHO).unwrap().to_vec();
    assert!(!s.is_verified(&1));
    assert_eq!(s.stats().amplification_limited, 1);
    // Another source cannot use peer 1's value...
    send_req(&mut s, t, 2, 2, Code::GET, &[1, 2], "big", |b| {
        b.add_option(OptionNumber::ECHO, &echo).unwrap();
    });
    answer_all(&mut s, t, &body);
    let r = drain(&mut s).remove(0);
    assert_eq!(Message::parse(&r).unwrap().code(), Code::UNAUTHORIZED);
    assert!(!s.is_verified(&2));
    // ...peer 1 repeating with it is verified and answered in full.
    send_req(&mut s, t, 1, 3, Code::GET, &[1, 2], "big", |b| {
        b.add_option(OptionNumber::ECHO, &echo).unwrap();
    });
    assert!(s.is_verified(&1));
    answer_all(&mut s, t, &body);
    let r = drain(&mut s).remove(0);
    let r = Message::parse(&r).unwrap();
    assert_eq!((r.code(), r.payload()), (Code::CONTENT, &body[..]));
    // Until Config::address_validity runs out.
    let later = Config::default().address_validity + Duration::from_secs(1);
    s.handle_timeout(later);
    assert!(!s.is_verified(&1));
}

#[test]
fn verified_peers_and_a_zero_factor_are_not_limited() {
    let body = [0x5a; 200];
    let t = Duration::ZERO;
    let mut s = amp_server(Config::default());
    s.set_verified_peers(|p| *p == 7);
    send_req(&mut s, t, 7, 1, Code::GET, &[1], "big", |_| {});
    answer_all(&mut s, t, &body);
    assert_eq!(
        Message::parse(&drain(&mut s)[0]).unwrap().payload(),
        &body[..]
    );
    let mut s = amp_server(Config {
        amplification_factor: 0,
        ..Config::default()
    });
    send_req(&mut s, t, 1, 1, Code::GET, &[1], "big", |_| {});
    answer_all(&mut s, t, &body);
    assert_eq!(
        Message::parse(&drain(&mut s)[0]).unwrap().payload(),
        &body[..]
    );
}

#[test]
fn an_unsafe_methods_answer_goes_in_blocks_that_fit() {
    // The POST was carried out: no challenge (a repeat would run it
    // again), a Block2 block small enough instead.
    let mut s = amp_server(Config::default());
    let t = Duration::ZERO;
    let n = send_req(&mut s, t, 1, 1, Code::POST, &[1, 2, 3, 4], "big", |b| {
        b.payload(b"0123456789");
    });
    answer_all(&mut s, t, &[0x5a; 200]);
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert!(out[0].len() <= 3 * n, "{} > 3 x {n}", out[0].len());
    assert_eq!(r.code(), Code::CONTENT);
    let b2 = r.block2().unwrap().unwrap();
    assert!(b2.more() && b2.num() == 0 && b2.size() < 200);
    assert_eq!(r.payload(), &[0x5a; 200][..b2.size()]);
}

#[test]
fn well_known_core_blocks_fit_an_unverified_peer() {
    let mut s = amp_server(Config::default());
    let n = send_req(
        &mut s,
        Duration::ZERO,
        1,
        1,
        Code::GET,
        &[],
        ".well-known/core",
        |_| {},
    );
    let out = drain(&mut s);
    let r = Message::parse(&out[0]).unwrap();
    assert!(out[0].len() <= 3 * n, "{} > 3 x {n}", out[0].len());
    assert_eq!(r.code(), Code::CONTENT);
    assert!(r.block2().unwrap().unwrap().more());
}

#[test]
fn notifications_to_an_unverified_observer_fit_its_registration() {
    let mut s = amp_server(Config::default());
    let t = Duration::ZERO;
    let n = send_req(&mut s, t, 1, 1, Code::GET, &[9], "obs", |b| {
        b.observe(0).unwrap();
    });
    answer_all(&mut s, t, b"0");
    drain(&mut s);
    assert_eq!(s.observer_count(), 1);
    s.notify(t, "obs", &Response::new(Code::CONTENT).payload(&[7; 300]))
        .unwrap();
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert!(out[0].len() <= 3 * n, "{} > 3 x {n}", out[0].len());
    let m = Message::parse(&out[0]).unwrap();
    assert!(m.observe().unwrap().is_some());
    assert!(m.block2().unwrap().unwrap().more());
}

/// Sends a request built by `f` (CON unless `non`) to the default server,
/// answers a resulting request with 2.05; returns what went out.
fn rfc_case(non: bool, f: impl FnOnce(&mut MessageBuilder<'_, 8>)) -> StdVec<StdVec<u8>> {
    let mut s = server();
    let ty = if non {
        MessageType::Non
    } else {
        MessageType::Con
    };
    let mut b = MessageBuilder::<'_, 8>::new(ty, Code::GET, 0x77);
    b.token(&[5]).unwrap();
    f(&mut b);
    let mut buf = [0u8; 128];
    let n = b.emit(&mut buf).unwrap();
    s.handle_datagram(Duration::ZERO, 1, &mut buf[..n]).unwrap();
    answer_all(&mut s, Duration::ZERO, b"21");
    drain(&mut s)
}

fn code_of(out: &[StdVec<u8>]) -> Code {
    Message::parse(&out[0]).unwrap().code()
}

#[test]
fn rfc7959_2_2_block_szx_7_is_bad_request() {
    for opt in [OptionNumber::BLOCK2, OptionNumber::BLOCK1] {
        let out = rfc_case(false, |b| {
            b.uri_path("temp").unwrap();
            b.add_uint(opt, 0x17).unwrap(); // NUM 1, M 0, SZX 7
        });
        assert_eq!(code_of(&out), Code::BAD_REQUEST, "option {}", opt.0);
    }
}

#[test]
fn rfc7252_5_7_2_proxy_uri_gets_5_05() {
    let out = rfc_case(false, |b| {
        b.add_str(OptionNumber::PROXY_URI, "coap://example.net/temp")
            .unwrap();
    });
    assert_eq!(code_of(&out), Code::PROXYING_NOT_SUPPORTED);
    let out = rfc_case(false, |b| {
        b.uri_path("temp").unwrap();
        b.add_str(OptionNumber::PROXY_SCHEME, "http").unwrap();
    });
    assert_eq!(code_of(&out), Code::PROXYING_NOT_SUPPORTED);
}

#[test]
fn rfc7252_5_4_5_repeated_critical_option_is_bad_option() {
    // Accept (17) is critical and not repeatable.
    let out = rfc_case(false, |b| {
        b.uri_path("temp").unwrap();
        b.add_uint(OptionNumber::ACCEPT, 0).unwrap();
        b.add_uint(OptionNumber::ACCEPT, 50).unwrap();
    });
    assert_eq!(code_of(&out), Code::BAD_OPTION);
    // A repeated elective one (Max-Age, 14) is ignored beyond the first.
    let out = rfc_case(false, |b| {
        b.uri_path("temp").unwrap();
        b.add_uint(OptionNumber::MAX_AGE, 1).unwrap();
        b.add_uint(OptionNumber::MAX_AGE, 2).unwrap();
    });
    assert_eq!(code_of(&out), Code::CONTENT);
}

#[test]
fn rfc7252_5_4_1_non_request_with_unknown_critical_option_is_rejected() {
    let out = rfc_case(true, |b| {
        b.uri_path("temp").unwrap();
        b.add_option(OptionNumber(9999), b"x").unwrap();
    });
    assert!(
        out.iter()
            .all(|d| Message::parse(d).unwrap().code() != Code::BAD_OPTION),
        "a NON request answered 4.02"
    );
    assert!(out.is_empty(), "rejected silently");
    // A CON one still gets 4.02.
    let out = rfc_case(false, |b| {
        b.uri_path("temp").unwrap();
        b.add_option(OptionNumber(9999), b"x").unwrap();
    });
    assert_eq!(code_of(&out), Code::BAD_OPTION);
}

#[test]
fn rfc7252_5_10_8_preconditions_on_well_known_core() {
    // The endpoint's own /.well-known/core exists and has no ETag:
    // If-None-Match and If-Match with a value fail (4.12), an empty
    // If-Match ("any representation") holds.
    let out = rfc_case(false, |b| {
        b.uri_path(".well-known/core").unwrap();
        b.add_empty(OptionNumber::IF_NONE_MATCH).unwrap();
    });
    assert_eq!(code_of(&out), Code::PRECONDITION_FAILED);
    let out = rfc_case(false, |b| {
        b.uri_path(".well-known/core").unwrap();
        b.add_option(OptionNumber::IF_MATCH, b"x").unwrap();
    });
    assert_eq!(code_of(&out), Code::PRECONDITION_FAILED);
    let out = rfc_case(false, |b| {
        b.uri_path(".well-known/core").unwrap();
        b.add_option(OptionNumber::IF_MATCH, b"").unwrap();
    });
    assert_eq!(code_of(&out), Code::CONTENT);
    // RFC 7232 §5 as CoAP reads it: a request that fails without its
    // conditions (4.04) ignores them.
    let out = rfc_case(false, |b| {
        b.uri_path("nope").unwrap();
        b.add_option(OptionNumber::IF_MATCH, b"x").unwrap();
    });
    assert_eq!(code_of(&out), Code::NOT_FOUND);
}

#[test]
fn location_path_and_query_become_one_option_each() {
    // The answer is more than three times the request: no amplification
    // limit here (it has its own tests).
    let config = Config {
        amplification_factor: 0,
        ..Config::default()
    };
    let mut s: Ep = Endpoint::new(config, TestRng(5), &RES);
    s.handle_datagram(
        Duration::ZERO,
        1,
        &mut req(MessageType::Con, Code::PUT, 5, "led"),
    )
    .unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!("no request")
    };
    let r = Response::new(Code::CREATED)
        .location_path("/location1/location2/location3")
        .location_query("first=1&second=2")
        .etag(b"e1");
    s.respond(Duration::ZERO, id, &r).unwrap();
    let out = drain(&mut s);
    let m = Message::parse(&out[0]).unwrap();
    assert_eq!(m.code(), Code::CREATED);
    let of = |n| {
        m.options_numbered(n)
            .map(|o| o.value.to_vec())
            .collect::<StdVec<_>>()
    };
    assert_eq!(
        of(OptionNumber::LOCATION_PATH),
        [&b"location1"[..], b"location2", b"location3"]
    );
    assert_eq!(
        of(OptionNumber::LOCATION_QUERY),
        [&b"first=1"[..], b"second=2"]
    );
    assert_eq!(of(OptionNumber::ETAG), [&b"e1"[..]]);
}

#[test]
fn observable_con_resource_sends_every_notification_confirmable() {
    static CON: [Resource; 1] = [Resource::new("obs", Methods::GET).observable_con()];
    let mut s: Ep = Endpoint::new(Config::default(), TestRng(3), &CON);
    register(&mut s, 1, 0xab);
    // Each notification acknowledged before the next: every one is CON
    // (with the default resource flag only every 8th would be).
    for i in 0..3u8 {
        s.notify(
            Duration::ZERO,
            "obs",
            &Response::new(Code::CONTENT).payload(&[b'a' + i]),
        )
        .unwrap();
        let out = drain(&mut s);
        assert_eq!(out.len(), 1);
        let m = Message::parse(&out[0]).unwrap();
        assert_eq!(m.ty(), MessageType::Con, "notification {i}");
        let mut ack = [0x60, 0, 0, 0];
        ack[2..4].copy_from_slice(&m.message_id().to_be_bytes());
        s.handle_datagram(Duration::ZERO, 1, &mut ack).unwrap();
    }
    assert_eq!(s.observer_count(), 1);
}

/// One resource that takes every method (`ALL` has no FETCH), observable.
static ANY: [Resource; 1] =
    [Resource::new("temp", Methods::ALL.union(Methods::FETCH)).observable()];

/// Requests from one peer, each answered at once: how many reached the
/// application, and how many the endpoint answered 5.03 itself.
fn answered_gets(cfg: Config, count: u16, code: Code) -> (usize, usize) {
    let mut s = Endpoint::<u8, TestRng, 4, 8, 256>::new(cfg, TestRng(7), &ANY);
    let (mut handled, mut busy) = (0, 0);
    for mid in 0..count {
        let m = req(MessageType::Con, code, 100 + mid, "temp");
        s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
            .unwrap();
        while let Some(ev) = s.poll_event() {
            if let Event::Request { id, .. } = ev {
                handled += 1;
                s.respond(Duration::ZERO, id, &Response::new(Code::CONTENT))
                    .unwrap();
            }
        }
        busy += drain(&mut s)
            .iter()
            .filter(|d| Message::parse(d).unwrap().code() == Code::SERVICE_UNAVAILABLE)
            .count();
    }
    (handled, busy)
}

#[test]
fn relaxed_dedup_serves_safe_requests_past_the_cache_quota() {
    // The RFC's default: the peer's quota of the 8-entry cache (4) lasts
    // MAX_TRANSMIT_SPAN, so the fifth GET within it gets 5.03.
    assert_eq!(answered_gets(Config::default(), 20, Code::GET), (4, 16));
    let relaxed = Config {
        relaxed_dedup: true,
        ..Config::default()
    };
    assert_eq!(answered_gets(relaxed, 20, Code::GET), (20, 0));
    assert_eq!(answered_gets(relaxed, 20, Code::FETCH), (20, 0));
    // A PUT or a POST is not relaxed: they still take entries.
    assert_eq!(answered_gets(relaxed, 20, Code::PUT), (4, 16));
    assert_eq!(answered_gets(relaxed, 20, Code::POST), (4, 16));
}

#[test]
fn relaxed_dedup_hands_a_duplicate_get_to_the_application_but_not_a_put_or_a_registration() {
    let cfg = Config {
        relaxed_dedup: true,
        ..Config::default()
    };
    let mut s = Endpoint::<u8, TestRng, 4, 8, 256>::new(cfg, TestRng(7), &ANY);
    let events = |s: &mut Ep, m: &StdVec<u8>| {
        s.handle_datagram(Duration::ZERO, 1, &mut m.clone())
            .unwrap();
        let mut n = 0;
        while let Some(ev) = s.poll_event() {
            if let Event::Request { id, .. } = ev {
                n += 1;
                s.respond(Duration::ZERO, id, &Response::new(Code::CONTENT))
                    .unwrap();
            }
        }
        drain(s);
        n
    };
    let get = req(MessageType::Con, Code::GET, 9, "temp");
    assert_eq!(events(&mut s, &get), 1);
    assert_eq!(events(&mut s, &get), 1, "a relaxed GET runs again");
    let put = req(MessageType::Con, Code::PUT, 10, "temp");
    assert_eq!(events(&mut s, &put), 1);
    assert_eq!(
        events(&mut s, &put),
        0,
        "a PUT's duplicate is answered from the cache"
    );
    let mut b = MessageBuilder::<'_, 8>::new(MessageType::Con, Code::GET, 11);
    b.token(&[3]).unwrap();
    b.observe(0).unwrap();
    b.uri_path("temp").unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    let reg = buf[..n].to_vec();
    assert_eq!(events(&mut s, &reg), 1);
    assert_eq!(
        events(&mut s, &reg),
        0,
        "a registration's duplicate is not re-run"
    );
}
