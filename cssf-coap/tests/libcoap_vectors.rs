//! Byte-exact tests against datagrams captured from libcoap 4.3.1
//! (`coap-client-notls` / `coap-server-notls`); see `data/libcoap/README.md`.
//!
//! Every captured datagram must parse, decode field by field as libcoap
//! meant it, and re-emit byte for byte from our builder: once copied from the
//! parsed view, and once rebuilt from typed values with the options added in
//! reverse number order (so the builder's sorting and minimal uint encoding
//! are what reproduce libcoap's bytes).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use cssf_coap::{
    Block, Code, ContentFormat, Message, MessageBuilder, MessageType, OptionFormat, OptionNumber,
};

const PEER: &str = "libcoap 4.3.1 (coap-client-notls/coap-server-notls)";

fn load(name: &str, text: &str) -> Capture {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l
                .split_once("> ")
                .unwrap_or_else(|| panic!("{name}: bad line {l}"));
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (dir.chars().next().unwrap(), bytes)
        })
        .collect()
}

type Capture = Vec<(char, Vec<u8>)>;

fn all() -> Vec<(&'static str, Capture)> {
    macro_rules! file {
        ($n:literal) => {
            (
                $n,
                load($n, include_str!(concat!("data/libcoap/", $n, ".hex"))),
            )
        };
    }
    vec![
        file!("get_query"),
        file!("observe"),
        file!("block2"),
        file!("put_payload"),
        file!("well_known_core"),
        file!("separate"),
        file!("ping_rst"),
    ]
}

fn rebuild_typed(m: &Message<'_>) -> Vec<u8> {
    let mut b = MessageBuilder::<32>::new(m.ty(), m.code(), m.message_id());
    b.token(m.token()).unwrap();
    // Group options by number, add the groups in descending number order.
    let opts: Vec<_> = m.options().collect();
    let mut numbers: Vec<u16> = opts.iter().map(|o| o.number.0).collect();
    numbers.dedup();
    for n in numbers.iter().rev() {
        for o in opts.iter().filter(|o| o.number.0 == *n) {
            let uint = o.number.info().map(|i| i.format) == Some(OptionFormat::Uint);
            if uint && o.value.first() != Some(&0) {
                b.add_uint(o.number, o.as_uint().unwrap()).unwrap();
            } else {
                b.add_option(o.number, o.value).unwrap();
            }
        }
    }
    b.payload(m.payload());
    let mut out = vec![0u8; b.buffer_len()];
    let n = b.emit(&mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn every_capture_parses_and_reemits_byte_exact() {
    let mut count = 0;
    for (name, dgrams) in all() {
        assert!(!dgrams.is_empty(), "{name}: no datagrams in capture");
        for (i, (_, bytes)) in dgrams.iter().enumerate() {
            let m = Message::parse(bytes)
                .unwrap_or_else(|e| panic!("{PEER} {name}#{i}: parse failed: {e}"));
            assert_eq!(m.check_options(), Ok(()), "{PEER} {name}#{i}");
            assert_eq!(m.first_bad_length(), None, "{PEER} {name}#{i}");
            let copy = MessageBuilder::<32>::from_message(&m).unwrap();
            let mut out = vec![0u8; copy.buffer_len()];
            let n = copy.emit(&mut out).unwrap();
            assert_eq!(
                &out[..n],
                &bytes[..],
                "{PEER} {name}#{i}: copy re-emit differs"
            );
            assert_eq!(
                rebuild_typed(&m),
                *bytes,
                "{PEER} {name}#{i}: typed rebuild differs"
            );
            count += 1;
        }
    }
    assert_eq!(count, 30);
}

fn opts(m: &Message<'_>) -> Vec<(u16, Vec<u8>)> {
    m.options()
        .map(|o| (o.number.0, o.value.to_vec()))
        .collect()
}

#[test]
fn get_with_token_path_query_accept() {
    let f = load("get_query", include_str!("data/libcoap/get_query.hex"));
    let (dir, req) = &f[0];
    assert_eq!(*dir, 'c');
    let m = Message::parse(req).unwrap();
    assert_eq!(m.version(), 1);
    assert_eq!(m.ty(), MessageType::Con);
    assert_eq!(m.code(), Code::GET);
    assert_eq!(m.message_id(), 0xe20a);
    assert_eq!(m.token(), b"caff");
    assert_eq!(
        opts(&m),
        [
            (7, vec![0x86, 0x17]),
            (11, b"time".to_vec()),
            (15, b"ticks".to_vec()),
            (17, vec![])
        ]
    );
    assert_eq!(m.uint_option(OptionNumber::URI_PORT), Ok(Some(0x8617)));
    assert_eq!(m.accept(), Ok(Some(ContentFormat::TEXT_PLAIN)));
    assert_eq!(m.payload(), b"");

    let r = Message::parse(&f[1].1).unwrap();
    assert_eq!(
        (r.ty(), r.code(), r.message_id()),
        (MessageType::Ack, Code::CONTENT, 0xe20a)
    );
    assert_eq!(r.token(), b"caff");
    assert_eq!(r.max_age(), Ok(Some(1)));
    assert_eq!(r.payload(), b"1795920486");

    // Built from scratch with our API, in a different order: same bytes.
    let mut b = MessageBuilder::<8>::new(MessageType::Con, Code::GET, 0xe20a);
    b.token(b"caff").unwrap();
    b.accept(ContentFormat::TEXT_PLAIN).unwrap();
    b.add_str(OptionNumber::URI_QUERY, "ticks").unwrap();
    b.uri_path("/time").unwrap();
    b.add_uint(OptionNumber::URI_PORT, 0x8617).unwrap();
    let mut out = [0u8; 64];
    let n = b.emit(&mut out).unwrap();
    assert_eq!(
        &out[..n],
        &req[..],
        "{PEER}: our GET differs from libcoap's"
    );
}

#[test]
fn observe_registration_notifications_and_deregistration() {
    let f = load("observe", include_str!("data/libcoap/observe.hex"));
    let reg = Message::parse(&f[0].1).unwrap();
    assert_eq!((reg.ty(), reg.code()), (MessageType::Con, Code::GET));
    assert_eq!(reg.observe(), Ok(Some(0)));
    assert_eq!(reg.uri_path().collect::<Vec<_>>(), [b"time".as_slice()]);
    let token = reg.token();
    let first = Message::parse(&f[1].1).unwrap();
    assert_eq!(
        (first.ty(), first.code()),
        (MessageType::Ack, Code::CONTENT)
    );
    assert_eq!(first.token(), token);
    assert_eq!(first.observe(), Ok(Some(2)));
    assert_eq!(first.max_age(), Ok(Some(1)));
    let mut last_seq = 2;
    let mut notifications = 0;
    for w in f[2..].windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let n = Message::parse(&a.1).unwrap();
        if a.0 == 's' && n.ty() == MessageType::Con {
            notifications += 1;
            assert_eq!(n.token(), token);
            let seq = n.observe().unwrap().unwrap();
            assert!(seq > last_seq, "{PEER}: observe sequence not increasing");
            last_seq = seq;
            // the client's empty ACK follows, same message ID
            let ack = Message::parse(&b.1).unwrap();
            assert_eq!((ack.ty(), ack.code()), (MessageType::Ack, Code::EMPTY));
            assert_eq!(ack.message_id(), n.message_id());
            assert_eq!(ack.token(), b"");
        }
    }
    assert!(
        notifications >= 3,
        "{PEER}: only {notifications} notifications"
    );
    // Deregistration: GET with Observe 1.
    let dereg = Message::parse(&f[f.len() - 2].1).unwrap();
    assert_eq!(dereg.observe(), Ok(Some(1)));
    assert_eq!(dereg.code(), Code::GET);
}

#[test]
fn block2_transfer() {
    let f = load("block2", include_str!("data/libcoap/block2.hex"));
    let mut body = Vec::new();
    for (i, pair) in f.chunks(2).enumerate() {
        let req = Message::parse(&pair[0].1).unwrap();
        let rsp = Message::parse(&pair[1].1).unwrap();
        let want = Block::new(i as u32, false, 2).unwrap();
        assert_eq!(req.block2(), Ok(Some(want)), "{PEER}: request {i}");
        let b = rsp.block2().unwrap().unwrap();
        assert_eq!((b.num(), b.szx(), b.size()), (i as u32, 2, 64));
        assert_eq!(b.more(), i + 1 < f.len() / 2);
        assert_eq!(rsp.content_format(), Ok(Some(ContentFormat::LINK_FORMAT)));
        assert_eq!(rsp.token(), req.token());
        assert_eq!(b.offset(), body.len());
        if b.more() {
            assert_eq!(rsp.payload().len(), 64);
        }
        body.extend_from_slice(rsp.payload());
        // Size2 is present on the responses
        assert!(rsp.uint_option(OptionNumber::SIZE2).unwrap().is_some());
    }
    // Same body as the unblocked .well-known/core response.
    let wk = load(
        "well_known_core",
        include_str!("data/libcoap/well_known_core.hex"),
    );
    let full = Message::parse(&wk[1].1).unwrap();
    assert_eq!(body, full.payload());
    let size2 = Message::parse(&f[1].1)
        .unwrap()
        .uint_option(OptionNumber::SIZE2)
        .unwrap();
    assert_eq!(size2, Some(body.len() as u32));
}

#[test]
fn put_with_payload_and_content_format() {
    let f = load("put_payload", include_str!("data/libcoap/put_payload.hex"));
    let m = Message::parse(&f[0].1).unwrap();
    assert_eq!((m.ty(), m.code()), (MessageType::Con, Code::PUT));
    assert_eq!(
        m.uri_path().collect::<Vec<_>>(),
        [b"example_data".as_slice()]
    );
    assert_eq!(m.content_format(), Ok(Some(ContentFormat::TEXT_PLAIN)));
    assert_eq!(m.payload(), b"hello libcoap");
    let r = Message::parse(&f[1].1).unwrap();
    assert_eq!((r.ty(), r.code()), (MessageType::Ack, Code::CREATED));
    assert_eq!(r.token(), m.token());
    assert_eq!(r.message_id(), m.message_id());
    assert_eq!(r.payload(), b"");
    assert_eq!(r.options().count(), 0);
}

#[test]
fn well_known_core_response() {
    let f = load(
        "well_known_core",
        include_str!("data/libcoap/well_known_core.hex"),
    );
    let req = Message::parse(&f[0].1).unwrap();
    assert_eq!(
        req.uri_path().collect::<Vec<_>>(),
        [b".well-known".as_slice(), b"core"]
    );
    let r = Message::parse(&f[1].1).unwrap();
    assert_eq!(r.code(), Code::CONTENT);
    assert_eq!(r.content_format(), Ok(Some(ContentFormat::LINK_FORMAT)));
    let body = core::str::from_utf8(r.payload()).unwrap();
    assert!(
        body.starts_with("</>;title=\"General Info\""),
        "{PEER}: {body}"
    );
    assert!(
        body.contains("</time>;if=\"clock\";rt=\"ticks\""),
        "{PEER}: {body}"
    );
}

#[test]
fn separate_response_with_empty_acks() {
    let f = load("separate", include_str!("data/libcoap/separate.hex"));
    let req = Message::parse(&f[0].1).unwrap();
    assert_eq!(req.uri_query().collect::<Vec<_>>(), [b"1".as_slice()]);
    let ack = Message::parse(&f[1].1).unwrap();
    assert_eq!(
        (ack.ty(), ack.code(), ack.token()),
        (MessageType::Ack, Code::EMPTY, &b""[..])
    );
    assert_eq!(ack.message_id(), req.message_id());
    assert_eq!(ack.as_bytes().len(), 4);
    let sep = Message::parse(&f[2].1).unwrap();
    assert_eq!((sep.ty(), sep.code()), (MessageType::Con, Code::CONTENT));
    assert_eq!(sep.token(), req.token());
    assert_eq!(sep.payload(), b"done");
    let ack2 = Message::parse(&f[3].1).unwrap();
    assert_eq!(
        (ack2.ty(), ack2.message_id()),
        (MessageType::Ack, sep.message_id())
    );
    // our empty ACK is identical
    let mut out = [0u8; 4];
    let n = MessageBuilder::<0>::empty_ack(sep.message_id())
        .emit(&mut out)
        .unwrap();
    assert_eq!(&out[..n], &f[3].1[..]);
}

#[test]
fn ping_answered_with_rst() {
    let f = load("ping_rst", include_str!("data/libcoap/ping_rst.hex"));
    let rst = Message::parse(&f[1].1).unwrap();
    assert_eq!(
        (rst.ty(), rst.code(), rst.message_id()),
        (MessageType::Rst, Code::EMPTY, 0x1234)
    );
    let mut out = [0u8; 4];
    let n = MessageBuilder::<0>::reset(0x1234).emit(&mut out).unwrap();
    assert_eq!(&out[..n], &f[1].1[..]);
}
