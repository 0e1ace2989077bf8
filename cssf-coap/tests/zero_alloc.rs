//! Asserts that parsing, option iteration, the builder, Block values, URI
//! decomposition/composition and (with the `oscore` feature) OSCORE never
//! touch the heap.
//!
//! A counting global allocator (`stats_alloc`, so no `unsafe` here) wraps the
//! system allocator; this test runs without the libtest harness
//! (`harness = false`), single-threaded, so nothing else allocates while a
//! region is measured. A positive control checks the counter is live.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use core::hint::black_box;
use std::alloc::System;

use cssf_coap::wire::uri::{compose_to_slice, decompose};
use cssf_coap::{Block, Code, ContentFormat, Message, MessageBuilder, MessageType, OptionNumber};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn measure(what: &str, f: impl FnOnce()) {
    let region = Region::new(GLOBAL);
    f();
    let s = region.change();
    assert!(
        s.allocations == 0 && s.reallocations == 0,
        "{what} allocated: {s:?}"
    );
    println!("{what:<40} 0 allocations");
}

fn main() {
    // Positive control: the counter sees a real allocation.
    let region = Region::new(GLOBAL);
    black_box(vec![1u8; 64]);
    assert!(
        region.change().allocations >= 1,
        "allocation counter not live"
    );

    let mut buf = [0u8; 256];
    let mut scratch = [0u8; 64];
    let mut len = 0;
    measure("URI decompose + builder emit (request)", || {
        let mut b = MessageBuilder::<12>::new(MessageType::Con, Code::GET, 0x1234);
        b.token(&[1, 2, 3, 4]).unwrap();
        decompose(
            "coap://example.net/sensors/temp%20C?unit=C",
            &mut scratch,
            None,
            &mut b,
        )
        .unwrap();
        b.observe(0).unwrap();
        b.accept(ContentFormat::SENML_CBOR).unwrap();
        b.block2(Block::new(0, false, 6).unwrap()).unwrap();
        len = b.emit(&mut buf).unwrap();
    });
    let bytes = buf;
    let bytes = &bytes[..len];
    measure("parse + accessors + option iteration", || {
        let m = Message::parse(bytes).unwrap();
        black_box((m.ty(), m.code(), m.message_id(), m.token(), m.payload()));
        let _ = black_box((m.observe(), m.accept(), m.block2(), m.check_options()));
        black_box(m.first_unknown_critical());
        let mut n = 0;
        for o in m.options() {
            let _ = black_box((o.number.info(), o.as_uint(), o.as_str()));
            n += 1;
        }
        assert_eq!(n, 7);
        assert_eq!(m.uri_path().count(), 2);
    });
    let mut text = [0u8; 128];
    measure("URI compose", || {
        let m = Message::parse(bytes).unwrap();
        let dest = "[2001:db8::1]:5683".parse().unwrap();
        let n = compose_to_slice(&m, false, dest, &mut text).unwrap();
        assert_eq!(&text[..n], b"coap://example.net/sensors/temp%20C?unit=C");
    });
    let mut out = [0u8; 256];
    measure("response builder + from_message re-emit", || {
        let m = Message::parse(bytes).unwrap();
        let mut r = MessageBuilder::<8>::new(MessageType::Ack, Code::CONTENT, m.message_id());
        r.token(m.token()).unwrap();
        r.content_format(ContentFormat::TEXT_PLAIN).unwrap();
        r.add_uint(OptionNumber::MAX_AGE, 30).unwrap();
        r.add_option(OptionNumber::ETAG, &[9, 9]).unwrap();
        r.payload(b"22.5");
        let n = r.emit(&mut out).unwrap();
        black_box(Message::parse(&out[..n]).unwrap());
        let copy = MessageBuilder::<12>::from_message(&m).unwrap();
        let n = copy.emit(&mut out).unwrap();
        assert_eq!(&out[..n], bytes);
    });
    measure("Block values and malformed input", || {
        let b = Block::from_bytes(&[0x2e]).unwrap();
        black_box((b.num(), b.more(), b.size(), b.offset(), b.to_bytes()));
        black_box(Block::from_uint(7).is_err());
        for bad in [
            &b"\x40\x01\x00"[..],
            b"\x49\x01\x00\x00",
            b"\x40\x01\x00\x00\xff",
        ] {
            black_box(Message::parse(bad).is_err());
        }
    });
    #[cfg(feature = "oscore")]
    oscore(&mut buf);
    println!("zero_alloc: ok");
}

/// OSCORE: context derivation and a protected request and response, both
/// ways, and a failing verification.
#[cfg(feature = "oscore")]
fn oscore(plain: &mut [u8; 256]) {
    use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
    let mut wire = [0u8; 256];
    let mut inner = [0u8; 256];
    measure("OSCORE derive + protect + verify", || {
        let p = Params {
            master_secret: &[1; 16],
            master_salt: b"salt",
            id_context: Some(b"ctx"),
            sender_id: b"c",
            recipient_id: b"s",
        };
        let mut client = SecurityContext::new(&p, SenderSequence::Volatile).unwrap();
        let sp = Params {
            sender_id: b"s",
            recipient_id: b"c",
            ..p
        };
        let mut server = SecurityContext::new(&sp, SenderSequence::Volatile).unwrap();
        let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 7);
        b.token(&[1, 2]).unwrap().uri_path("sensors/temp").unwrap();
        let n = b.emit(plain).unwrap();
        let (len, mut request) = client.protect_request(&plain[..n], &mut wire).unwrap();
        let (n, mut binding) = server
            .unprotect_request(&mut wire[..len], &mut inner)
            .unwrap();
        let req = Message::parse(&inner[..n]).unwrap();
        let mut r = MessageBuilder::<2>::new(MessageType::Ack, Code::CONTENT, req.message_id());
        r.token(req.token()).unwrap().payload(b"22.5");
        let n = r.emit(plain).unwrap();
        let len = server
            .protect_response(&mut binding, &plain[..n], true, &mut wire)
            .unwrap();
        let n = client
            .unprotect_response(&mut request, &mut wire[..len], &mut inner)
            .unwrap();
        black_box(Message::parse(&inner[..n]).unwrap().payload());
        wire[len - 1] ^= 1;
        black_box(client.unprotect_response(&mut request, &mut wire[..len], &mut inner))
            .unwrap_err();
    });
}
