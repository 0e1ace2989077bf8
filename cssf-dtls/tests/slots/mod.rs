//! The half-open handshake tests' harness (`halfopen.rs`, `review17.rs`,
//! `review17b.rs`): a PSK server with two handshake slots and a 1 s
//! initial retransmission timeout on `SocketAddr`s, clients, datagram
//! pumps and cookie-bearing ClientHellos from fresh addresses.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub use crate::at::At;
pub use core::time::Duration;
pub use std::net::SocketAddr;
pub use std::vec::Vec;

pub use cssf_dtls::{CipherSuite, Client, Config, Endpoint, StaticPsk};
pub use cssf_netsim::SimRng;

pub const ID: &[u8] = b"Client_identity";
pub const KEY: &[u8] = b"secretPSK-secretPSK";
pub static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];

/// The simulation's clock step.
pub const TICK: Duration = Duration::from_millis(10);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn server_addr() -> SocketAddr {
    addr("10.0.0.100:5684")
}

/// One initial retransmission timeout of 1 s; two handshake slots.
pub fn config() -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap();
    c.retransmit_initial = Duration::from_secs(1);
    c.retransmit_max = Duration::from_secs(8);
    c
}

pub type Server = Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 4>;
pub type Dtls = Client<SocketAddr, SimRng>;

pub fn server() -> Server {
    Endpoint::new(
        config(),
        StaticPsk::new(&KEYS),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap()
}

pub fn client(seed: u64, now: Duration) -> Dtls {
    Client::new(config(), ID, KEY, server_addr(), SimRng::new(seed), now).unwrap()
}

pub fn out_c(c: &mut Dtls, now: Duration) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
        v.push(buf[..t.len].to_vec());
    }
    v
}

pub fn out_s(s: &mut Server, now: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
        v.push((t.to, buf[..t.len].to_vec()));
    }
    v
}

pub fn feed_s(s: &mut Server, now: Duration, from: SocketAddr, d: &[Vec<u8>]) {
    for d in d {
        let _ = s.handle_datagram(now, from, &mut d.clone());
    }
}

pub fn feed_c(c: &mut Dtls, now: Duration, at: SocketAddr, d: &[(SocketAddr, Vec<u8>)]) {
    for (to, d) in d {
        if *to == at {
            let _ = c.handle_datagram(now, server_addr(), &mut d.clone());
        }
    }
}

/// The new legitimate client, once started.
pub struct Legit {
    pub c: Dtls,
    pub at: SocketAddr,
    pub began: Duration,
}

impl Legit {
    /// Exchanges datagrams with the server until both are quiet; the
    /// server's datagrams to other addresses are dropped (their senders
    /// went silent). `Some(t)`: connected, `t` after it started.
    pub fn pump(s: &mut Server, legit: &mut Option<Legit>, now: Duration) -> Option<Duration> {
        for _ in 0..8 {
            let d = legit
                .as_mut()
                .map(|l| out_c(&mut l.c, now))
                .unwrap_or_default();
            if let Some(l) = legit.as_ref() {
                feed_s(s, now, l.at, &d);
            }
            let r = out_s(s, now);
            if let Some(l) = legit.as_mut() {
                feed_c(&mut l.c, now, l.at, &r);
            }
            while s.poll_event().is_some() {}
            if let Some(l) = legit.as_ref() {
                if l.c.is_connected() && s.connected_at(&l.at) {
                    return Some(now.saturating_sub(l.began));
                }
            }
            if d.is_empty() && r.is_empty() {
                break;
            }
        }
        None
    }
}

/// A ClientHello with a valid cookie from `at`: the cookie exchange of a
/// fresh client there (which then goes silent). The server's other
/// datagrams of the exchange go to `legit`.
pub fn cookie_hello(
    s: &mut Server,
    legit: &mut Option<Legit>,
    at: SocketAddr,
    seed: u64,
    now: Duration,
) -> Vec<u8> {
    let mut m = client(seed, now);
    feed_s(s, now, at, &out_c(&mut m, now));
    let r = out_s(s, now);
    feed_c(&mut m, now, at, &r);
    if let Some(l) = legit.as_mut() {
        feed_c(&mut l.c, now, l.at, &r);
    }
    let ch2 = out_c(&mut m, now);
    assert_eq!(ch2.len(), 1, "the cookie-bearing ClientHello");
    ch2.into_iter().next().unwrap()
}
