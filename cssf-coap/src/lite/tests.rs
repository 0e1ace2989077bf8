//! Unit tests of the lite client against hand-built server messages.

use super::*;
use crate::wire::{Code, OptionNumber};
use std::vec::Vec;

/// LCG for tokens; `next_u32` returns `jitter` when set, so the
/// retransmission timeout (and the first message ID) are known.
struct TestRng {
    state: u64,
    jitter: Option<u32>,
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        match self.jitter {
            Some(j) => j,
            None => (self.next_u64() >> 16) as u32,
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.state
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        for b in d {
            *b = (self.next_u64() >> 40) as u8;
        }
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

type C = Client<TestRng, 128>;

fn client_with(config: Config, seed: u64, jitter: Option<u32>) -> C {
    Client::new(
        config,
        TestRng {
            state: seed,
            jitter,
        },
    )
}

fn client() -> C {
    client_with(Config::default(), 1, Some(0))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn get(ty: MessageType) -> MessageBuilder<'static, 2> {
    let mut b = MessageBuilder::new(ty, Code::GET, 0);
    b.uri_path("time").unwrap();
    b
}

fn drain(c: &mut C, now: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 128];
    while let Some(n) = c.poll_transmit(now, &mut buf).unwrap().map(|t| t.len) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Sends a request; returns its message ID and token.
fn start(c: &mut C, now: Duration, ty: MessageType) -> (u16, Vec<u8>) {
    c.request(now, &get(ty)).unwrap();
    let tx = drain(c, now);
    assert_eq!(tx.len(), 1);
    let m = Message::parse(&tx[0]).unwrap();
    assert_eq!(m.ty(), ty);
    assert_eq!(m.code(), Code::GET);
    assert_eq!(m.uri_path().collect::<Vec<_>>(), [b"time".as_slice()]);
    assert_eq!(m.token().len(), 4);
    (m.message_id(), m.token().to_vec())
}

fn msg(ty: MessageType, code: Code, mid: u16, token: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = MessageBuilder::<'_, 2>::new(ty, code, mid);
    b.token(token).unwrap().payload(payload);
    let mut out = [0u8; 300];
    let n = b.emit(&mut out).unwrap();
    out[..n].to_vec()
}

fn empty(ty: MessageType, mid: u16) -> Vec<u8> {
    msg(ty, Code::EMPTY, mid, &[], &[])
}

/// The payload of the response event, or a description of another event.
fn event(c: &mut C) -> Option<Result<Vec<u8>, Event<'static>>> {
    Some(match c.poll_event()? {
        Event::Response(m) => Ok(m.payload().to_vec()),
        Event::Timeout => Err(Event::Timeout),
        Event::Reset => Err(Event::Reset),
        Event::Rejected(e) => Err(Event::Rejected(e)),
    })
}

#[test]
fn piggybacked_response() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    assert!(c.is_busy());
    assert_eq!(c.poll_event(), None);
    let rsp = msg(MessageType::Ack, Code::CONTENT, mid, &token, b"12:00");
    c.handle_datagram(secs(1), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(event(&mut c), Some(Ok(b"12:00".to_vec())));
    assert_eq!(event(&mut c), None, "reported once");
    assert!(!c.is_busy());
    assert_eq!(c.poll_timeout(), None);
    assert!(drain(&mut c, secs(1)).is_empty(), "nothing to acknowledge");
    let m = c.response().unwrap();
    assert_eq!(
        (m.code(), m.payload()),
        (Code::CONTENT, b"12:00".as_slice())
    );
    // A second copy of the ACK (our request was retransmitted) is ignored.
    c.handle_datagram(secs(2), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(event(&mut c), None);
    assert!(drain(&mut c, secs(2)).is_empty());
}

#[test]
fn empty_ack_then_separate_con_response() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Ack, mid))
        .unwrap();
    // No more retransmissions: only the response timeout runs.
    assert_eq!(c.poll_timeout(), Some(secs(1 + 93)));
    c.handle_timeout(secs(10));
    assert!(drain(&mut c, secs(10)).is_empty());
    assert!(c.is_busy());

    let rsp = msg(MessageType::Con, Code::CONTENT, 0x9000, &token, b"late");
    c.handle_datagram(secs(20), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(drain(&mut c, secs(20)), [[0x60, 0x00, 0x90, 0x00]]);
    assert_eq!(event(&mut c), Some(Ok(b"late".to_vec())));
    // The server did not get our ACK and repeats: ACKed again, not delivered.
    c.handle_datagram(secs(22), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(drain(&mut c, secs(22)), [[0x60, 0x00, 0x90, 0x00]]);
    assert_eq!(event(&mut c), None);
    // Still true while the next request is outstanding.
    let (mid2, _) = start(&mut c, secs(23), MessageType::Con);
    assert_eq!(mid2, mid.wrapping_add(1));
    c.handle_datagram(secs(24), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(drain(&mut c, secs(24)), [[0x60, 0x00, 0x90, 0x00]]);
    assert_eq!(event(&mut c), None);
    assert!(c.is_busy());
    // After EXCHANGE_LIFETIME the ID is forgotten: a CON with it and a
    // foreign token is rejected.
    c.handle_datagram(secs(20 + 247), (), &mut rsp.to_vec())
        .unwrap();
    assert_eq!(drain(&mut c, secs(20 + 247)), [[0x70, 0x00, 0x90, 0x00]]);
}

#[test]
fn separate_non_response_after_empty_ack() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Ack, mid))
        .unwrap();
    let rsp = msg(MessageType::Non, Code::CONTENT, 0x4242, &token, b"x");
    c.handle_datagram(secs(2), (), &mut rsp.to_vec()).unwrap();
    assert!(
        drain(&mut c, secs(2)).is_empty(),
        "a NON is not acknowledged"
    );
    assert_eq!(event(&mut c), Some(Ok(b"x".to_vec())));
}

#[test]
fn separate_response_timeout() {
    let mut c = client();
    let (mid, _) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Ack, mid))
        .unwrap();
    c.handle_timeout(secs(93));
    assert_eq!(event(&mut c), None);
    c.handle_timeout(secs(94));
    assert_eq!(event(&mut c), Some(Err(Event::Timeout)));
    assert!(!c.is_busy());
}

#[test]
fn non_request_non_response() {
    let mut c = client();
    let (_, token) = start(&mut c, secs(5), MessageType::Non);
    assert_eq!(c.poll_timeout(), Some(secs(5 + 93)), "no retransmission");
    c.handle_timeout(secs(50));
    assert!(drain(&mut c, secs(50)).is_empty());
    let rsp = msg(MessageType::Non, Code::CONTENT, 0x1111, &token, b"n");
    c.handle_datagram(secs(51), (), &mut rsp.to_vec()).unwrap();
    assert!(drain(&mut c, secs(51)).is_empty());
    assert_eq!(event(&mut c), Some(Ok(b"n".to_vec())));
    // A duplicate NON response is ignored.
    c.handle_datagram(secs(52), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(event(&mut c), None);
    assert!(drain(&mut c, secs(52)).is_empty());

    // Unanswered: a timeout after response_timeout.
    start(&mut c, secs(60), MessageType::Non);
    c.handle_timeout(secs(60 + 92));
    assert_eq!(event(&mut c), None);
    c.handle_timeout(secs(60 + 93));
    assert_eq!(event(&mut c), Some(Err(Event::Timeout)));
}

/// Transmission times and the time the client gives up, driven by
/// `poll_timeout` only.
fn schedule(config: Config, jitter: u32) -> (Vec<Duration>, Duration) {
    let mut c = client_with(config, 1, Some(jitter));
    c.request(Duration::ZERO, &get(MessageType::Con)).unwrap();
    let mut now = Duration::ZERO;
    let mut sent = Vec::new();
    let first = drain(&mut c, now);
    assert_eq!(first.len(), 1);
    sent.push(now);
    loop {
        let at = c.poll_timeout().unwrap();
        // Nothing happens just before the deadline.
        c.handle_timeout(at - Duration::from_millis(1));
        assert!(drain(&mut c, at).is_empty());
        now = at;
        c.handle_timeout(now);
        match event(&mut c) {
            Some(Err(Event::Timeout)) => return (sent, now),
            None => {}
            other => panic!("{other:?}"),
        }
        let tx = drain(&mut c, now);
        assert_eq!(tx, first, "a retransmission repeats the request");
        sent.push(now);
    }
}

#[test]
fn retransmission_schedule() {
    let ms = Duration::from_millis;
    // Random factor at its minimum: ACK_TIMEOUT 2 s, doubling.
    let (sent, gave_up) = schedule(Config::default(), 0);
    assert_eq!(sent, [secs(0), secs(2), secs(6), secs(14), secs(30)]);
    assert_eq!(gave_up, secs(62));
    // At its maximum (1.5): 3 s, giving up after MAX_TRANSMIT_WAIT, 93 s.
    let (sent, gave_up) = schedule(Config::default(), u32::MAX);
    assert_eq!(sent, [secs(0), secs(3), secs(9), secs(21), secs(45)]);
    assert_eq!(gave_up, secs(93));
    // Half way: 2.5 s.
    let (sent, _) = schedule(Config::default(), 1 << 31);
    assert_eq!(sent[1], ms(2500));
    assert_eq!(sent[2], ms(7500));
    // A factor of 1 has no jitter at all.
    let config = Config {
        ack_random_factor_milli: 1000,
        ..Config::default()
    };
    assert_eq!(schedule(config, u32::MAX).0[1], secs(2));
}

#[test]
fn gives_up_after_max_retransmit() {
    let config = Config {
        max_retransmit: 2,
        ack_timeout: secs(1),
        ..Config::default()
    };
    let (sent, gave_up) = schedule(config, 0);
    assert_eq!(sent, [secs(0), secs(1), secs(3)]);
    assert_eq!(gave_up, secs(7));
    let config = Config {
        max_retransmit: 0,
        ..Config::default()
    };
    let (sent, gave_up) = schedule(config, 0);
    assert_eq!((sent.len(), gave_up), (1, secs(2)));
}

#[test]
fn late_response_after_timeout_is_rejected() {
    let config = Config {
        max_retransmit: 0,
        ..Config::default()
    };
    let mut c = client_with(config, 1, Some(0));
    let (_, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_timeout(secs(2));
    assert_eq!(event(&mut c), Some(Err(Event::Timeout)));
    let rsp = msg(MessageType::Con, Code::CONTENT, 0x0707, &token, b"late");
    c.handle_datagram(secs(3), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(drain(&mut c, secs(3)), [[0x70, 0x00, 0x07, 0x07]]);
    assert_eq!(event(&mut c), None);
}

#[test]
fn reset_cancels_the_request() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    // A Reset for another message ID changes nothing.
    c.handle_datagram(
        secs(1),
        (),
        &mut empty(MessageType::Rst, mid.wrapping_add(1)),
    )
    .unwrap();
    assert!(c.is_busy());
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Rst, mid))
        .unwrap();
    assert_eq!(event(&mut c), Some(Err(Event::Reset)));
    assert!(!c.is_busy());
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(secs(100));
    assert!(drain(&mut c, secs(100)).is_empty(), "no retransmission");
    // A late piggybacked response is ignored.
    let rsp = msg(MessageType::Ack, Code::CONTENT, mid, &token, b"x");
    c.handle_datagram(secs(2), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(event(&mut c), None);
    assert_eq!(c.response(), None);
}

#[test]
fn mismatched_token_or_message_id_is_ignored() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    let mut other = token.clone();
    other[0] ^= 1;
    let now = secs(1);
    // ACK with our message ID but another token; with our token but another
    // message ID; NON with another token: all ignored.
    for d in [
        msg(MessageType::Ack, Code::CONTENT, mid, &other, b"a"),
        msg(MessageType::Ack, Code::CONTENT, mid ^ 0x100, &token, b"b"),
        msg(MessageType::Ack, Code::CONTENT, mid, &[], b"c"),
        msg(MessageType::Non, Code::CONTENT, 0x5555, &other, b"d"),
        empty(MessageType::Ack, mid ^ 1),
        empty(MessageType::Non, mid),
    ] {
        c.handle_datagram(now, (), &mut d.to_vec()).unwrap();
        assert_eq!(event(&mut c), None);
        assert!(drain(&mut c, now).is_empty());
        assert!(c.is_busy());
        assert_eq!(c.poll_timeout(), Some(secs(2)), "still awaiting the ACK");
    }
    // A CON response with a token not ours is rejected with RST.
    let d = msg(MessageType::Con, Code::CONTENT, 0x5556, &other, b"e");
    c.handle_datagram(now, (), &mut d.to_vec()).unwrap();
    assert_eq!(drain(&mut c, now), [[0x70, 0x00, 0x55, 0x56]]);
    assert!(c.is_busy());
    // The real answer still completes the request.
    let rsp = msg(MessageType::Ack, Code::CONTENT, mid, &token, b"ok");
    c.handle_datagram(now, (), &mut rsp.to_vec()).unwrap();
    assert_eq!(event(&mut c), Some(Ok(b"ok".to_vec())));
}

#[test]
fn unknown_critical_option_is_rejected() {
    let now = secs(1);
    let with_option = |ty, mid, token: &[u8], number| {
        let mut b = MessageBuilder::<'_, 2>::new(ty, Code::CONTENT, mid);
        b.token(token).unwrap().payload(b"p");
        b.add_option(OptionNumber(number), b"").unwrap();
        let mut out = [0u8; 64];
        let n = b.emit(&mut out).unwrap();
        out[..n].to_vec()
    };
    // Piggybacked: rejected silently (an ACK is never answered).
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_datagram(
        now,
        (),
        &mut with_option(MessageType::Ack, mid, &token, 9999),
    )
    .unwrap();
    assert_eq!(
        event(&mut c),
        Some(Err(Event::Rejected(Error::UnknownCriticalOption(
            OptionNumber(9999)
        ))))
    );
    assert!(drain(&mut c, now).is_empty());
    assert_eq!(c.response(), None);
    // Separate CON: rejected with RST.
    let (mid, token) = start(&mut c, now, MessageType::Con);
    c.handle_datagram(now, (), &mut empty(MessageType::Ack, mid))
        .unwrap();
    c.handle_datagram(
        now,
        (),
        &mut with_option(MessageType::Con, 0x0102, &token, 9999),
    )
    .unwrap();
    assert_eq!(drain(&mut c, now), [[0x70, 0x00, 0x01, 0x02]]);
    assert!(matches!(event(&mut c), Some(Err(Event::Rejected(_)))));
    // An unknown elective option is fine.
    let (mid, token) = start(&mut c, now, MessageType::Con);
    c.handle_datagram(
        now,
        (),
        &mut with_option(MessageType::Ack, mid, &token, 10000),
    )
    .unwrap();
    assert_eq!(event(&mut c), Some(Ok(b"p".to_vec())));
}

#[test]
fn response_larger_than_the_buffer_is_rejected() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Ack, mid))
        .unwrap();
    let big = [7u8; 200];
    let rsp = msg(MessageType::Con, Code::CONTENT, 0x0203, &token, &big);
    c.handle_datagram(secs(1), (), &mut rsp.to_vec()).unwrap();
    assert_eq!(drain(&mut c, secs(1)), [[0x70, 0x00, 0x02, 0x03]]);
    assert_eq!(
        event(&mut c),
        Some(Err(Event::Rejected(Error::BufferTooSmall {
            needed: rsp.len()
        })))
    );
}

#[test]
fn one_request_at_a_time() {
    let mut c = client();
    let (mid, _) = start(&mut c, Duration::ZERO, MessageType::Con);
    assert_eq!(c.request(secs(1), &get(MessageType::Con)), Err(Error::Busy));
    assert!(drain(&mut c, secs(1)).is_empty());
    c.cancel();
    assert!(!c.is_busy());
    assert_eq!(c.poll_timeout(), None);
    let (mid2, _) = start(&mut c, secs(1), MessageType::Con);
    assert_eq!(mid2, mid.wrapping_add(1));
    // A request larger than the buffer is refused and leaves no request.
    c.cancel();
    let body = [0u8; 200];
    let mut post = MessageBuilder::<'_, 1>::new(MessageType::Con, Code::POST, 0);
    post.payload(&body);
    assert!(matches!(
        c.request(secs(2), &post),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(!c.is_busy());
    assert!(drain(&mut c, secs(2)).is_empty());
    // A short output buffer keeps the datagram queued.
    c.request(secs(3), &get(MessageType::Con)).unwrap();
    let mut small = [0u8; 4];
    assert!(matches!(
        c.poll_transmit(secs(3), &mut small),
        Err(Error::BufferTooSmall { .. })
    ));
    assert_eq!(c.poll_timeout(), None, "not sent yet");
    assert_eq!(drain(&mut c, secs(3)).len(), 1);
}

#[test]
fn random_message_ids_and_tokens() {
    let mut a = client_with(Config::default(), 1, None);
    let mut b = client_with(Config::default(), 2, None);
    let (ma, ta) = start(&mut a, Duration::ZERO, MessageType::Non);
    let (mb, tb) = start(&mut b, Duration::ZERO, MessageType::Non);
    assert_ne!(ma, mb);
    assert_ne!(ta, tb);
    a.cancel();
    let (ma2, ta2) = start(&mut a, Duration::ZERO, MessageType::Non);
    assert_eq!(ma2, ma.wrapping_add(1));
    assert_ne!(ta2, ta);
    let config = Config {
        token_len: 8,
        ..Config::default()
    };
    let mut c = client_with(config, 3, None);
    c.request(Duration::ZERO, &get(MessageType::Con)).unwrap();
    let tx = drain(&mut c, Duration::ZERO);
    assert_eq!(Message::parse(&tx[0]).unwrap().token().len(), 8);
}

#[test]
fn unexpected_messages_are_rejected_or_ignored() {
    let mut c = client();
    let now = Duration::ZERO;
    // CoAP ping: RST.
    c.handle_datagram(now, (), &mut empty(MessageType::Con, 0x0a0b))
        .unwrap();
    assert_eq!(drain(&mut c, now), [[0x70, 0x00, 0x0a, 0x0b]]);
    // A CON request (this client serves nothing): RST; a NON one is ignored.
    c.handle_datagram(
        now,
        (),
        &mut msg(MessageType::Con, Code::GET, 0x0c0d, &[1], b""),
    )
    .unwrap();
    assert_eq!(drain(&mut c, now), [[0x70, 0x00, 0x0c, 0x0d]]);
    c.handle_datagram(
        now,
        (),
        &mut msg(MessageType::Non, Code::GET, 0x0c0e, &[1], b""),
    )
    .unwrap();
    assert!(drain(&mut c, now).is_empty());
    // A malformed CON: RST, dropped and counted (not an error of the call).
    c.handle_datagram(now, (), &mut b"\x41\x45\x01\x02".to_vec())
        .unwrap();
    assert_eq!(drain(&mut c, now), [[0x70, 0x00, 0x01, 0x02]]);
    assert_eq!(c.stats().malformed, 1);
    c.handle_datagram(now, (), &mut b"\x50\x45".to_vec())
        .unwrap();
    assert_eq!(c.stats().malformed, 2);
    assert!(drain(&mut c, now).is_empty());
    assert_eq!(event(&mut c), None);
}

#[test]
fn datagrams_from_another_address_are_dropped() {
    let rng = TestRng {
        state: 4,
        jitter: None,
    };
    let mut c: Client<TestRng, 256, u8> = Client::with_server(Config::default(), rng, 7);
    c.request(Duration::ZERO, &get(MessageType::Con)).unwrap();
    let mut buf = [0u8; 256];
    let t = c.poll_transmit(Duration::ZERO, &mut buf).unwrap().unwrap();
    assert_eq!(t.to, 7, "every datagram goes to the server");
    let req = Message::parse(&buf[..t.len]).unwrap();
    let mut rsp = msg(
        MessageType::Ack,
        Code::CONTENT,
        req.message_id(),
        req.token(),
        b"x",
    );
    // The right answer from elsewhere: dropped, the request stays.
    c.handle_datagram(Duration::ZERO, 8, &mut rsp.clone())
        .unwrap();
    assert!(c.is_busy());
    assert_eq!(c.stats().not_from_server, 1);
    assert!(c.poll_event().is_none());
    // From the server: taken.
    c.handle_datagram(Duration::ZERO, 7, &mut rsp).unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Response(m)) if m.payload() == b"x"));
}

#[test]
fn ack_is_not_displaced_by_rst() {
    let mut c = client();
    let (mid, token) = start(&mut c, Duration::ZERO, MessageType::Con);
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Ack, mid))
        .unwrap();
    let rsp = msg(MessageType::Con, Code::CONTENT, 0x3030, &token, b"r");
    c.handle_datagram(secs(1), (), &mut rsp.to_vec()).unwrap();
    c.handle_datagram(secs(1), (), &mut empty(MessageType::Con, 0x3131))
        .unwrap();
    assert_eq!(drain(&mut c, secs(1)), [[0x60, 0x00, 0x30, 0x30]]);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Raw(Vec<u8>),
        /// A response built around the current request's ID and token.
        Reply {
            ty: u8,
            code: u8,
            own_mid: bool,
            own_token: bool,
            empty: bool,
            option: Option<u16>,
            payload: Vec<u8>,
        },
        Advance(u32),
        Request(bool),
        Cancel,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(Op::Raw),
            (
                0u8..4,
                any::<u8>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(any::<u16>()),
                proptest::collection::vec(any::<u8>(), 0..150)
            )
                .prop_map(|(ty, code, own_mid, own_token, empty, option, payload)| {
                    Op::Reply {
                        ty,
                        code,
                        own_mid,
                        own_token,
                        empty,
                        option,
                        payload,
                    }
                }),
            (0u32..40_000).prop_map(Op::Advance),
            any::<bool>().prop_map(Op::Request),
            Just(Op::Cancel),
        ]
    }

    proptest! {
        /// Arbitrary datagrams, replies, time steps and requests: no panic,
        /// every datagram sent parses, at most one event per request, and a
        /// request always ends (an event) once time runs long enough.
        #[test]
        fn never_panics_and_always_ends(ops in proptest::collection::vec(op(), 0..60)) {
            let mut c = client_with(Config::default(), 9, None);
            let mut now = Duration::ZERO;
            let mut last: Option<(u16, Vec<u8>)> = None;
            let (mut requests, mut events) = (0usize, 0usize);
            for op in ops {
                match op {
                    Op::Raw(bytes) => {
                        let _ = c.handle_datagram(now, (), &mut bytes.to_vec());
                    }
                    Op::Reply { ty, code, own_mid, own_token, empty, option, payload } => {
                        let (mid, token) = last.clone().unwrap_or((0, Vec::new()));
                        let mid = if own_mid { mid } else { mid ^ 0x8001 };
                        let mut token = token;
                        if !own_token {
                            token.push(1);
                            token.truncate(8);
                        }
                        let mut b = MessageBuilder::<'_, 2>::new(
                            MessageType::from_bits(ty), Code(code), mid);
                        if !empty {
                            b.token(&token).unwrap().payload(&payload);
                            if let Some(n) = option {
                                b.add_option(OptionNumber(n), b"").unwrap();
                            }
                        } else {
                            b.set_code(Code::EMPTY);
                        }
                        let mut out = [0u8; 300];
                        // Code 0.00 with a token does not build: skip it.
                        if let Ok(n) = b.emit(&mut out) {
                            prop_assert!(c.handle_datagram(now, (), &mut out[..n].to_vec()).is_ok());
                        }
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(u64::from(ms));
                        c.handle_timeout(now);
                    }
                    Op::Request(con) => {
                        let ty = if con { MessageType::Con } else { MessageType::Non };
                        let busy = c.is_busy();
                        let r = c.request(now, &get(ty));
                        prop_assert_eq!(r.is_err(), busy);
                        if r.is_ok() {
                            requests += 1;
                        }
                    }
                    Op::Cancel => {
                        if c.is_busy() {
                            requests -= 1;
                        }
                        c.cancel();
                    }
                }
                let mut buf = [0u8; 128];
                while let Some(n) = c.poll_transmit(now, &mut buf).unwrap().map(|t| t.len) {
                    let m = Message::parse(&buf[..n]).unwrap();
                    if m.code() == Code::GET {
                        last = Some((m.message_id(), m.token().to_vec()));
                    } else {
                        prop_assert!(m.code().is_empty());
                    }
                }
                while c.poll_event().is_some() {
                    events += 1;
                }
                prop_assert!(events <= requests);
            }
            // Whatever is outstanding ends within MAX_TRANSMIT_WAIT.
            if c.is_busy() {
                for _ in 0..8 {
                    let mut buf = [0u8; 128];
                    while c.poll_transmit(now, &mut buf).unwrap().is_some() {}
                    if let Some(t) = c.poll_timeout() {
                        prop_assert!(t <= now + secs(93));
                        now = now.max(t);
                        c.handle_timeout(now);
                    }
                }
                prop_assert!(!c.is_busy());
                prop_assert!(c.poll_event().is_some());
                events += 1;
            }
            prop_assert_eq!(events, requests);
        }
    }
}
