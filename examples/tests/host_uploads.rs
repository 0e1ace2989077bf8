//! Block1 uploads to the real `cssf-server`'s `/echo` over loopback, from
//! one UDP socket (one peer): two uploads kept apart by Request-Tag (RFC
//! 9175 §3) must not mix, as the CoAP endpoint keeps them apart too.

mod host_common;

use std::net::UdpSocket;
use std::time::Duration;

use cssf_coap::{Block, Code, Message, MessageBuilder, MessageType, OptionNumber};
use host_common::ServerProc;

/// One block of a POST /echo with `tag` as Request-Tag; returns the
/// response code and payload (retrying on loss a few times).
fn post_block(
    sock: &UdpSocket,
    port: u16,
    mid: u16,
    tag: &[u8],
    block: Block,
    payload: &[u8],
) -> (Code, Vec<u8>) {
    let token = mid.to_be_bytes();
    let mut b = MessageBuilder::<8>::new(MessageType::Con, Code::POST, mid);
    b.token(&token).unwrap();
    b.uri_path("echo").unwrap();
    b.block1(block).unwrap();
    b.add_option(OptionNumber::REQUEST_TAG, tag).unwrap();
    b.payload(payload);
    let mut out = [0u8; 256];
    let n = b.emit(&mut out).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        sock.send_to(&out[..n], ("127.0.0.1", port)).unwrap();
        while let Ok(len) = sock.recv(&mut buf) {
            let m = Message::parse(&buf[..len]).unwrap();
            if m.message_id() == mid && m.ty() == MessageType::Ack {
                return (m.code(), m.payload().to_vec());
            }
        }
    }
    panic!("no answer to block {block:?} of upload {tag:?}");
}

#[test]
fn two_tagged_uploads_from_one_peer_do_not_mix() {
    let s = ServerProc::start(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let first = |c: u8| vec![c; 32];
    let b0 = Block::new(0, true, 1).unwrap();
    let b1 = Block::new(1, false, 1).unwrap();
    // A and B interleaved: A0, B0, A1 (last), B1 (last).
    let (code, _) = post_block(&sock, s.coap, 1, b"A", b0, &first(b'a'));
    assert_eq!(code, Code::CONTINUE, "{}", s.log());
    let (code, _) = post_block(&sock, s.coap, 2, b"B", b0, &first(b'b'));
    assert_eq!(code, Code::CONTINUE, "{}", s.log());
    let (code, body_a) = post_block(&sock, s.coap, 3, b"A", b1, &first(b'A'));
    assert_eq!(code, Code::CHANGED, "{}", s.log());
    let (code, body_b) = post_block(&sock, s.coap, 4, b"B", b1, &first(b'B'));
    assert_eq!(code, Code::CHANGED, "{}", s.log());
    assert_eq!(
        String::from_utf8_lossy(&body_a),
        format!("{}{}", "a".repeat(32), "A".repeat(32)),
        "upload A"
    );
    assert_eq!(
        String::from_utf8_lossy(&body_b),
        format!("{}{}", "b".repeat(32), "B".repeat(32)),
        "upload B"
    );
}
