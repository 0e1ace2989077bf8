//! The record layer version (RFC 6347 §4.1): after the first ClientHello,
//! records must carry DTLS 1.2 (0xFEFD). A ClientHello may carry 0xFEFF
//! (as OpenSSL sends it) and so may a HelloVerifyRequest (RFC 6347 §4.2.1);
//! every other record under another version is dropped and counted, and
//! the handshake then goes on with the genuine records.
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod at;
use at::At;
use core::time::Duration;
use std::vec::Vec;

use cssf_dtls::{CipherSuite, Client, Config, Endpoint, Event, RejectAll, StaticPsk};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];
const CLIENT: u8 = 1;
const SERVER: u8 = 2;
const T: Duration = Duration::from_millis(1);

type Server = Endpoint<u8, StaticPsk<'static>, SimRng, 4, RejectAll, 4>;

fn config() -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap();
    c
}

fn from_client(c: &mut Client<u8, SimRng>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = c.poll_transmit(T, &mut buf).unwrap() {
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn from_server(s: &mut Server) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = s.poll_transmit(T, &mut buf).unwrap() {
        assert_eq!(t.to, CLIENT);
        out.push(buf[..t.len].to_vec());
    }
    out
}

/// The same datagram with the first record's version replaced.
fn with_version(d: &[u8], v: u16) -> Vec<u8> {
    let mut d = d.to_vec();
    d[1..3].copy_from_slice(&v.to_be_bytes());
    d
}

fn version(d: &[u8]) -> u16 {
    u16::from_be_bytes([d[1], d[2]])
}

fn single(mut v: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(v.len(), 1, "expected one datagram");
    v.pop().unwrap()
}

#[test]
fn records_under_another_version_are_dropped() {
    let mut c = Client::new(config(), ID, KEY, SERVER, SimRng::new(1), T).unwrap();
    let mut s = Server::new(config(), StaticPsk::new(&KEYS), SimRng::new(2), T).unwrap();

    // Flight 1 and the HelloVerifyRequest.
    let ch1 = single(from_client(&mut c));
    s.handle_datagram(T, CLIENT, &mut ch1.clone()).unwrap();
    let hvr = single(from_server(&mut s));
    assert_eq!(
        version(&hvr),
        0xFEFF,
        "our HelloVerifyRequest record is DTLS 1.0"
    );

    // A HelloVerifyRequest under an unknown version: dropped, nothing sent.
    let before = c.stats().records_dropped;
    c.handle_datagram(T, SERVER, &mut with_version(&hvr, 0xFEFC))
        .unwrap();
    assert_eq!(c.stats().records_dropped, before + 1);
    assert!(from_client(&mut c).is_empty());
    // Under 0xFEFF it is taken: the ClientHello with the cookie follows.
    c.handle_datagram(T, SERVER, &mut hvr.clone()).unwrap();
    let ch2 = single(from_client(&mut c));
    assert_eq!(version(&ch2), 0xFEFD);

    // A ClientHello under 0xFEFC is dropped by the stateless path.
    let before = s.stats().records_dropped;
    s.handle_datagram(T, CLIENT, &mut with_version(&ch2, 0xFEFC))
        .unwrap();
    assert_eq!(s.stats().records_dropped, before + 1);
    assert!(from_server(&mut s).is_empty());
    assert_eq!(s.sessions(), 0);
    // Under 0xFEFF (as OpenSSL sends it) it is accepted.
    s.handle_datagram(T, CLIENT, &mut with_version(&ch2, 0xFEFF))
        .unwrap();
    assert_eq!(s.sessions(), 1);
    let flight4 = from_server(&mut s);
    assert!(!flight4.is_empty());
    assert!(flight4.iter().all(|d| version(d) == 0xFEFD));
    // The established session also takes a retransmitted 0xFEFF
    // ClientHello (it answers with its flight again) ...
    s.handle_datagram(T, CLIENT, &mut with_version(&ch2, 0xFEFF))
        .unwrap();
    // ... but not one under 0xFEFC.
    let before = s.stats().records_dropped;
    s.handle_datagram(T, CLIENT, &mut with_version(&ch2, 0xFEFC))
        .unwrap();
    assert_eq!(s.stats().records_dropped, before + 1);
    let _ = from_server(&mut s);

    // The ServerHello flight replayed under 0xFEFC or 0xFEFF: dropped, the
    // client stays where it was and sends nothing.
    for v in [0xFEFC, 0xFEFF, 0x0303] {
        let before = c.stats().records_dropped;
        for d in &flight4 {
            c.handle_datagram(T, SERVER, &mut with_version(d, v))
                .unwrap();
        }
        assert!(
            c.stats().records_dropped > before,
            "ServerHello flight under {v:#06x} not dropped"
        );
        assert!(
            from_client(&mut c).is_empty(),
            "client answered a ServerHello flight under {v:#06x}"
        );
    }
    for d in &flight4 {
        c.handle_datagram(T, SERVER, &mut d.clone()).unwrap();
    }
    let flight5 = from_client(&mut c);
    assert!(
        !flight5.is_empty(),
        "the genuine ServerHello flight is answered"
    );

    // Flight 5's first record (ClientKeyExchange, epoch 0) under 0xFEFF
    // after the version was settled: dropped, the server does not finish.
    let before = s.stats().records_dropped;
    for d in &flight5 {
        s.handle_datagram(T, CLIENT, &mut with_version(d, 0xFEFF))
            .unwrap();
    }
    assert!(s.stats().records_dropped > before);
    assert!(!s.connected_at(&CLIENT));
    let _ = from_server(&mut s);
    for d in &flight5 {
        s.handle_datagram(T, CLIENT, &mut d.clone()).unwrap();
    }
    assert!(s.connected_at(&CLIENT));
    for d in from_server(&mut s) {
        c.handle_datagram(T, SERVER, &mut d.clone()).unwrap();
    }
    assert!(c.is_connected());

    // Protected application data under another version: dropped before
    // decryption (not an authentication failure), then the real one passes.
    c.send(T, b"ping").unwrap();
    let app = single(from_client(&mut c));
    let st = s.stats();
    s.handle_datagram(T, CLIENT, &mut with_version(&app, 0xFEFE))
        .unwrap();
    assert_eq!(s.stats().records_dropped, st.records_dropped + 1);
    assert_eq!(s.stats().auth_failures, st.auth_failures);
    s.handle_datagram(T, CLIENT, &mut app.clone()).unwrap();
    let mut got = None;
    while let Some(e) = s.poll_event() {
        if let Event::ApplicationData { .. } = e {
            let mut b = [0u8; 64];
            let n = s.recv_at(&CLIENT, &mut b).unwrap().unwrap();
            got = Some(b[..n].to_vec());
        }
    }
    assert_eq!(got.as_deref(), Some(&b"ping"[..]));
}
