//! A client for a device with little RAM: application queues of a size the
//! caller picks (`Client::with_queue_capacity`), and a client built where
//! it is kept and started there (`Client::unstarted` + `start_psk`). It
//! completes handshakes, retransmits its flights and carries records like
//! the default client, bounded by its queues.
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

use cssf_dtls::{
    footprint, CipherSuite, Client, CloseReason, Config, Endpoint, Error, Event, RejectAll,
    StaticPsk, APP_QUEUE_CAPACITY,
};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];
const SERVER: u8 = 100;
const ME: u8 = 1;
const T: Duration = Duration::from_millis(1);
/// Bytes of each of the small client's queues.
const Q: usize = 320;
/// AES-128-CCM-8 without a Connection ID: header, explicit nonce, tag.
const OVERHEAD: usize = 13 + 8 + 8;

type Server = Endpoint<u8, StaticPsk<'static>, SimRng, 2, RejectAll, 4, 2>;
type Small = Client<u8, SimRng, RejectAll, Q>;

fn config() -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap();
    c
}

fn server() -> Server {
    Endpoint::new(config(), StaticPsk::new(&KEYS), SimRng::new(1), T).unwrap()
}

fn from_client(c: &mut Small, now: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
        assert_eq!(t.to, SERVER);
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn from_server(s: &mut Server, now: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
        assert_eq!(t.to, ME);
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn to_server(s: &mut Server, now: Duration, d: &[Vec<u8>]) {
    for d in d {
        s.handle_datagram(now, ME, &mut d.clone()).unwrap();
    }
}

fn to_client(c: &mut Small, now: Duration, d: &[Vec<u8>]) {
    for d in d {
        c.handle_datagram(now, SERVER, &mut d.clone()).unwrap();
    }
}

/// Runs the handshake to the end; returns the number of exchanges.
fn handshake(s: &mut Server, c: &mut Small, now: Duration) -> usize {
    for round in 1..=4 {
        to_server(s, now, &from_client(c, now));
        to_client(c, now, &from_server(s, now));
        if c.is_connected() {
            return round;
        }
    }
    panic!("no handshake in four rounds");
}

#[test]
fn a_small_client_connects_and_carries_records_up_to_its_queue() {
    let mut s = server();
    let mut c = Small::with_queue_capacity(config(), ID, KEY, SERVER, SimRng::new(2), T).unwrap();
    // Before the handshake nothing is sent.
    assert_eq!(c.send(T, b"early"), Err(Error::NotConnected));
    assert_eq!(
        handshake(&mut s, &mut c, T),
        3,
        "ClientHello, cookie, flight 5"
    );
    assert!(matches!(
        c.poll_event(),
        Some(Event::Connected {
            suite: CipherSuite::PskWithAes128Ccm8,
            ..
        })
    ));
    // The largest record fits the queue; one byte more does not.
    let max = c.max_payload();
    assert_eq!(max, Q - OVERHEAD);
    assert_eq!(c.send(T, &vec![7; max + 1]), Err(Error::RecordOverflow));
    c.send(T, &vec![7; max]).unwrap();
    // The queue is full until it is drained.
    assert_eq!(c.send(T, b"x"), Err(Error::Full));
    let sent = from_client(&mut c, T);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), Q);
    to_server(&mut s, T, &sent);
    let mut buf = [0u8; 1024];
    assert_eq!(s.recv_at(&ME, &mut buf).unwrap(), Some(max));
    assert_eq!(&buf[..max], &vec![7; max][..]);
    // A record from the server whose plaintext fits the receive queue
    // arrives...
    s.send_at(T, &ME, &vec![9; Q]).unwrap();
    to_client(&mut c, T, &from_server(&mut s, T));
    assert!(matches!(
        c.poll_event(),
        Some(Event::ApplicationData { len, .. }) if len == Q
    ));
    assert_eq!(c.recv(&mut buf).unwrap(), Some(Q));
    assert_eq!(&buf[..Q], &vec![9; Q][..]);
    // ... a larger one is dropped (and counted), and the session goes on.
    let overflows = c.stats().rx_overflow;
    s.send_at(T, &ME, &vec![5; Q + 1]).unwrap();
    to_client(&mut c, T, &from_server(&mut s, T));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.stats().rx_overflow, overflows + 1);
    assert_eq!(c.recv(&mut buf).unwrap(), None);
    assert!(c.is_connected());
    c.send(T, b"still here").unwrap();
    to_server(&mut s, T, &from_client(&mut c, T));
    assert_eq!(s.recv_at(&ME, &mut buf).unwrap(), Some(10));
}

#[test]
fn an_unstarted_client_started_in_place_retransmits_and_connects() {
    let mut s = server();
    let mut c = Small::unstarted(config(), SERVER, SimRng::new(3), T);
    // Nothing goes out before it is started.
    assert!(from_client(&mut c, T).is_empty());
    c.start_psk(ID, KEY, T).unwrap();
    // A second start is refused and closes it.
    let mut twice = Small::unstarted(config(), SERVER, SimRng::new(4), T);
    twice.start_psk(ID, KEY, T).unwrap();
    assert!(twice.start_psk(ID, KEY, T).is_err());
    assert!(matches!(twice.poll_event(), Some(Event::Closed { .. })));
    // The first ClientHello is lost: the client's timer resends it.
    let hello = from_client(&mut c, T);
    assert_eq!(hello.len(), 1);
    let at = c.poll_timeout().expect("a retransmission timer");
    assert!(at > T);
    c.handle_timeout(at);
    let again = from_client(&mut c, at);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].len(), hello[0].len());
    assert_eq!(c.stats().retransmissions, 1);
    to_server(&mut s, at, &again);
    to_client(&mut c, at, &from_server(&mut s, at));
    assert_eq!(
        handshake(&mut s, &mut c, at),
        2,
        "cookie exchange, flight 5"
    );
    assert!(matches!(c.poll_event(), Some(Event::Connected { .. })));
    c.send(at, b"hello").unwrap();
    to_server(&mut s, at, &from_client(&mut c, at));
    let mut buf = [0u8; 64];
    assert_eq!(s.recv_at(&ME, &mut buf).unwrap(), Some(5));
    c.close(at);
    assert!(!from_client(&mut c, at).is_empty(), "close_notify");
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::LocalClose,
            ..
        })
    ));
}

#[test]
fn an_unstarted_client_refuses_what_new_refuses() {
    // An empty key is no key.
    let mut c = Small::unstarted(config(), SERVER, SimRng::new(5), T);
    assert_eq!(c.start_psk(ID, b"", T), Err(Error::Config));
    assert!(matches!(c.poll_event(), Some(Event::Closed { .. })));
    assert_eq!(c.start_psk(ID, KEY, T), Err(Error::Closed));
    assert!(Small::with_queue_capacity(config(), ID, b"", SERVER, SimRng::new(5), T).is_err());
    assert!(Client::new(config(), ID, b"", SERVER, SimRng::new(5), T).is_err());
}

#[test]
fn the_queues_are_what_the_client_weighs() {
    let small = footprint::client::<u8, SimRng, Q>();
    let default = footprint::client::<u8, SimRng, APP_QUEUE_CAPACITY>();
    assert_eq!(small, core::mem::size_of::<Small>());
    assert_eq!(default, core::mem::size_of::<Client<u8, SimRng>>());
    assert_eq!(
        default - small,
        2 * (footprint::client_queue::<APP_QUEUE_CAPACITY>() - footprint::client_queue::<Q>())
    );
    assert_eq!(
        footprint::client_queue::<APP_QUEUE_CAPACITY>() - footprint::client_queue::<Q>(),
        APP_QUEUE_CAPACITY - Q
    );
}
