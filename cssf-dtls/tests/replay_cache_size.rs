//! The ClientHello replay cache's capacity is the endpoint's last const
//! parameter `C`: every admitted ClientHello stays for the cookie
//! lifetime, and a cache full of distinct hosts refuses the current
//! second's cookies (a HelloVerifyRequest again). 64 clients from 64 hosts
//! within a third of a second: with the default 32 entries the later ones
//! are sent back for another cookie (and, the clock standing still, do not
//! get in); with 128 entries each needs one cookie exchange only.
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;
use std::net::SocketAddr;

use cssf_dtls::{
    CipherSuite, Client, Config, Endpoint, RejectAll, StaticPsk, APP_QUEUE_CAPACITY,
    CLIENT_HELLO_REPLAY_CACHE,
};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK-secretPSK";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];

fn config() -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap();
    c
}

type Server<const C: usize> =
    Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 128, RejectAll, 4, 4, APP_QUEUE_CAPACITY, C>;

/// `hosts` clients, one after the other 5 ms apart, each from its own
/// IPv4 host; each exchange runs with the clock standing still. Returns
/// (clients connected, HelloVerifyRequests sent).
fn run<const C: usize>(hosts: u16) -> (usize, usize) {
    let server_addr: SocketAddr = "10.0.0.100:5684".parse().unwrap();
    let mut s: Server<C> = Endpoint::new(
        config(),
        StaticPsk::new(&KEYS),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let mut now = Duration::from_millis(10);
    let (mut connected, mut hvrs) = (0, 0);
    let mut buf = [0u8; 1500];
    for k in 0..hosts {
        let at = SocketAddr::from(([10, 1, (k / 200) as u8, (k % 200 + 1) as u8], 5000));
        let mut c = Client::new(
            config(),
            ID,
            KEY,
            server_addr,
            SimRng::new(100 + u64::from(k)),
            now,
        )
        .unwrap();
        for _ in 0..20 {
            while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
                let _ = s.handle_datagram(now, at, &mut buf[..t.len].to_vec());
            }
            let mut back = Vec::new();
            let mut sbuf = [0u8; 1500];
            while let Some(t) = s.poll_transmit(now, &mut sbuf).unwrap() {
                if t.to == at {
                    let d = sbuf[..t.len].to_vec();
                    if d.len() > 13 && d[0] == 22 && d[13] == 3 {
                        hvrs += 1;
                    }
                    back.push(d);
                }
            }
            for mut d in back {
                let _ = c.handle_datagram(now, server_addr, &mut d);
            }
            while s.poll_event().is_some() {}
            if c.is_connected() {
                connected += 1;
                break;
            }
        }
        now += Duration::from_millis(5);
    }
    (connected, hvrs)
}

#[test]
fn a_larger_replay_cache_takes_more_hosts_a_second() {
    assert_eq!(CLIENT_HELLO_REPLAY_CACHE, 32);
    let (small_connected, small_hvrs) = run::<CLIENT_HELLO_REPLAY_CACHE>(64);
    assert!(
        small_connected < 64 || small_hvrs > 64,
        "32 entries: {small_connected} connected with {small_hvrs} HelloVerifyRequests"
    );
    let (connected, hvrs) = run::<128>(64);
    assert_eq!((connected, hvrs), (64, 64), "128 entries");
}
