//! Parses arbitrary bytes as a CoAP message, walks every accessor and
//! option, and for anything accepted checks that the builder re-emits the
//! exact same bytes (the option encoding is canonical) and that the result
//! parses to the same fields.
#![no_main]

use cssf_coap::wire::RawOptions;
use cssf_coap::{Block, Message, MessageBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The raw iterator must terminate and never panic on any input.
    for o in RawOptions::new(data, data.len().min(4)) {
        if o.is_err() {
            break;
        }
    }
    let Ok(m) = Message::parse(data) else {
        return;
    };
    let _ = (m.version(), m.ty(), m.code(), m.message_id(), m.token_len());
    let _ = (m.observe(), m.content_format(), m.accept(), m.max_age());
    let _ = (
        m.block1(),
        m.block2(),
        m.check_options(),
        m.first_bad_length(),
    );
    let _ = m.first_unknown_critical();
    for o in m.options() {
        let _ = (o.as_uint(), o.as_str(), Block::from_bytes(o.value));
        let _ = (
            o.number.is_critical(),
            o.number.is_unsafe(),
            o.number.info(),
        );
    }
    let Ok(b) = MessageBuilder::<128>::from_message(&m) else {
        assert!(m.options().count() > 128);
        return;
    };
    let mut out = vec![0u8; b.buffer_len()];
    let n = b.emit(&mut out).expect("emit of a parsed message");
    assert_eq!(&out[..n], data, "re-emit differs");
    let again = Message::parse(&out[..n]).expect("re-parse");
    assert_eq!(again, Message::parse(data).expect("parse"));
    let dest = "[::1]:5683".parse().expect("addr");
    let mut s = String::new();
    let _ = cssf_coap::wire::uri::compose(&m, false, dest, &mut s);
});
