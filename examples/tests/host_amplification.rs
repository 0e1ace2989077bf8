//! The real `cssf-server` as a reflector: plain CoAP from a source address
//! that may be spoofed gets at most three times what it sent (RFC 9175
//! §2.4), until it answers an Echo challenge; a device without an AS key
//! (everything public) included.

mod host_common;

use std::net::UdpSocket;
use std::time::Duration;

use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use host_common::{large_body, ServerProc};

/// Sends `req` and returns every datagram that comes back within 1.5 s.
fn exchange(sock: &UdpSocket, port: u16, req: &[u8]) -> Vec<Vec<u8>> {
    sock.send_to(req, ("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(buf[..n].to_vec());
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    got
}

fn get_large(mid: u16, token: &[u8], echo: Option<&[u8]>) -> Vec<u8> {
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, mid);
    b.token(token).unwrap();
    b.uri_path("large").unwrap();
    if let Some(e) = echo {
        b.add_option(OptionNumber::ECHO, e).unwrap();
    }
    let mut out = [0u8; 128];
    let n = b.emit(&mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn plain_get_large_stays_under_three_times_the_request_until_echo() {
    let s = ServerProc::start(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The 10-byte GET /large without Block2 (no token) that used to bring
    // back 1035 bytes.
    let req = get_large(0x100, &[], None);
    assert_eq!(req.len(), 10);
    let got = exchange(&sock, s.coap, &req);
    let out: usize = got.iter().map(Vec::len).sum();
    assert!(
        out <= 3 * req.len(),
        "{out} bytes for {}\n{}",
        req.len(),
        s.log()
    );
    let m = Message::parse(&got[0]).unwrap();
    assert_eq!(m.code(), Code::UNAUTHORIZED);
    let echo = m.option(OptionNumber::ECHO).unwrap().to_vec();
    // A 4-byte "duplicate" of it gets no more than 12 bytes.
    let got = exchange(&sock, s.coap, &[0x40, 1, 1, 0]);
    let out: usize = got.iter().map(Vec::len).sum();
    assert!(out <= 12, "{out} bytes for a 4-byte duplicate\n{}", s.log());
    // Repeating with the Echo value proves the address: the first block in
    // full.
    let req = get_large(0x101, &[], Some(&echo));
    let got = exchange(&sock, s.coap, &req);
    let m = Message::parse(&got[0]).unwrap();
    assert_eq!(m.code(), Code::CONTENT, "{}", s.log());
    let block = m.block2().unwrap().unwrap();
    assert_eq!(block.num(), 0);
    assert_eq!(m.payload(), &large_body().as_bytes()[..block.size()]);
    assert!(block.size() >= 512);
}
