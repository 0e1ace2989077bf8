//! Drives `cssf_coap::lite::Client` with arbitrary sequences of raw
//! datagrams, replies built around its current message ID and token (so the
//! matching paths are reached), time steps, requests and cancellations.
//! Checks: no panic; every datagram it emits parses and is its request or a
//! 4-byte Empty ACK/RST; each request ends with at most one event, and a
//! response event is also what `response()` returns.
#![no_main]

use core::time::Duration;

use arbitrary::Arbitrary;
use cssf_coap::lite::{Client, Config, Event};
use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use libfuzzer_sys::fuzz_target;

#[path = "common/fuzz_rng.rs"]
mod fuzz_rng;
use fuzz_rng::FuzzRng as Rng;

#[derive(Arbitrary, Debug)]
enum Op {
    Raw(Vec<u8>),
    Reply {
        ty: u8,
        code: u8,
        /// Flip bits of the request's message ID / token (0: exact).
        mid_xor: u16,
        token_xor: u8,
        option: Option<(u16, Vec<u8>)>,
        payload: Vec<u8>,
    },
    Advance {
        ms: u32,
    },
    Timeout,
    Request {
        con: bool,
        len: u8,
    },
    Cancel,
}

type C = Client<Rng, 160>;

fuzz_target!(|input: (u64, Vec<Op>)| {
    let (seed, ops) = input;
    let config = Config {
        token_len: (seed % 9) as u8,
        ..Config::default()
    };
    let mut c: C = Client::new(config, Rng(seed));
    let mut now = Duration::ZERO;
    let mut last: Option<(u16, Vec<u8>, Vec<u8>)> = None;
    let mut outstanding = false;
    let body = [0x5au8; 200];
    let mut out = [0u8; 256];
    for op in ops.into_iter().take(256) {
        match op {
            Op::Raw(mut bytes) => {
                // Nothing a peer sends is an error of the call.
                assert!(c.handle_datagram(now, (), &mut bytes).is_ok());
            }
            Op::Reply {
                ty,
                code,
                mid_xor,
                token_xor,
                option,
                payload,
            } => {
                let (mid, mut token) = last
                    .as_ref()
                    .map_or((0, Vec::new()), |l| (l.0, l.1.clone()));
                if let Some(t) = token.first_mut() {
                    *t ^= token_xor;
                }
                let mut b =
                    MessageBuilder::<2>::new(MessageType::from_bits(ty), Code(code), mid ^ mid_xor);
                let _ = b.token(&token);
                if let Some((n, v)) = option.as_ref() {
                    let _ = b.add_option(OptionNumber(*n), v);
                }
                b.payload(&payload);
                let mut buf = [0u8; 512];
                if let Ok(n) = b.emit(&mut buf) {
                    assert!(
                        c.handle_datagram(now, (), &mut buf[..n]).is_ok(),
                        "a well-formed datagram"
                    );
                }
            }
            Op::Advance { ms } => now += Duration::from_millis(u64::from(ms % 200_000)),
            Op::Timeout => {
                if let Some(t) = c.poll_timeout() {
                    now = now.max(t);
                }
                c.handle_timeout(now);
            }
            Op::Request { con, len } => {
                let ty = if con {
                    MessageType::Con
                } else {
                    MessageType::Non
                };
                let mut b = MessageBuilder::<2>::new(ty, Code::POST, 0);
                let _ = b.uri_path("x");
                b.payload(&body[..usize::from(len) % body.len()]);
                let busy = c.is_busy();
                match c.request(now, &b) {
                    Ok(()) => {
                        assert!(!busy);
                        outstanding = true;
                        last = None;
                    }
                    Err(e) => assert!(busy || matches!(e, cssf_coap::Error::BufferTooSmall { .. })),
                }
            }
            Op::Cancel => {
                c.cancel();
                outstanding = false;
            }
        }
        while let Ok(Some(n)) = c.poll_transmit(now, &mut out).map(|t| t.map(|t| t.len)) {
            let m = Message::parse(&out[..n]).expect("the client emitted a malformed message");
            if m.code() == Code::POST {
                let bytes = out[..n].to_vec();
                if let Some(l) = last.as_ref() {
                    assert_eq!(l.2, bytes, "a retransmission repeats the request");
                }
                last = Some((m.message_id(), m.token().to_vec(), bytes));
            } else {
                assert!(n == 4 && m.code() == Code::EMPTY);
                assert!(matches!(m.ty(), MessageType::Ack | MessageType::Rst));
            }
        }
        if let Some(ev) = c.poll_event() {
            assert!(outstanding, "an event without a request");
            outstanding = false;
            if let Event::Response(m) = ev {
                let (bytes, code) = (m.as_bytes().to_vec(), m.code());
                assert!(code.is_response());
                assert_eq!(c.response().map(|r| r.as_bytes().to_vec()), Some(bytes));
            }
            assert!(c.poll_event().is_none());
        }
        assert_eq!(c.is_busy(), outstanding);
        if let Some(t) = c.poll_timeout() {
            assert!(c.is_busy() && t <= now + Duration::from_secs(247));
        }
    }
});
