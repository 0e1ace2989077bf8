//! Feature `log`: what the endpoint drops, refuses, repeats or gives up is
//! logged with its reason (at debug; duplicates and pings at trace),
//! through the `log` crate, and nothing above debug for a peer's input.
#![cfg(feature = "log")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;

use cssf_coap::endpoint::{Config, Endpoint, Event, Methods, Request, Resource, Response};
use cssf_coap::{Code, MessageBuilder, MessageType};
use cssf_netsim::{logs, SimRng};

static RES: [Resource; 1] = [Resource::new("temp", Methods::GET)];

fn get(mid: u16) -> Vec<u8> {
    let mut b = MessageBuilder::<'_, 4>::new(MessageType::Con, Code::GET, mid);
    b.token(&[7]).unwrap();
    b.uri_path("temp").unwrap();
    let mut buf = [0u8; 64];
    let n = b.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn drain(ep: &mut Endpoint<u8, SimRng>, now: Duration) -> usize {
    let mut buf = [0u8; 1280];
    let mut n = 0;
    while ep.poll_transmit(now, &mut buf).unwrap().is_some() {
        n += 1;
    }
    n
}

#[test]
fn drops_refusals_duplicates_and_give_ups_are_logged_with_their_reason() {
    logs::capture();
    let t0 = Duration::ZERO;
    let mut s: Endpoint<u8, SimRng> = Endpoint::new(Config::default(), SimRng::new(1), &RES);
    // A malformed datagram (token length 9) and a ping.
    s.handle_datagram(t0, 1, &mut [0x49, 1, 0, 5]).unwrap();
    s.handle_datagram(t0, 1, &mut [0x40, 0, 0x12, 0x34])
        .unwrap();
    drain(&mut s, t0);
    logs::expect(
        log::Level::Debug,
        "cssf_coap::endpoint",
        "malformed message: dropped",
    );
    logs::expect(
        log::Level::Trace,
        "cssf_coap::endpoint",
        "RST sent (MID 4660)",
    );
    // A request answered, then its duplicate answered from the cache.
    s.handle_datagram(t0, 1, &mut get(9)).unwrap();
    let Some(Event::Request { id, .. }) = s.poll_event() else {
        panic!("no request")
    };
    s.respond(t0, id, &Response::new(Code::CONTENT).payload(b"21"))
        .unwrap();
    drain(&mut s, t0);
    s.handle_datagram(t0, 1, &mut get(9)).unwrap();
    drain(&mut s, t0);
    logs::expect(
        log::Level::Trace,
        "cssf_coap::endpoint",
        "duplicate request (MID 9): answered from the cache",
    );

    // A client whose confirmable request is never acknowledged: each
    // retransmission, then the give-up.
    let mut c: Endpoint<u8, SimRng> = Endpoint::new(Config::default(), SimRng::new(2), &[]);
    c.request(t0, 2, &Request::get("temp")).unwrap();
    let mut now = t0;
    drain(&mut c, now);
    for _ in 0..64 {
        let Some(next) = c.poll_timeout() else { break };
        now = next.max(now);
        c.handle_timeout(now);
        drain(&mut c, now);
    }
    logs::expect(
        log::Level::Debug,
        "cssf_coap::endpoint",
        "retransmission (MID",
    );
    logs::expect(
        log::Level::Debug,
        "cssf_coap::endpoint",
        "unacknowledged after MAX_RETRANSMIT: given up",
    );
    // Nothing a peer did was logged above debug.
    let lines = logs::lines();
    assert!(
        lines
            .iter()
            .filter(|(_, t, _)| t.starts_with("cssf_coap"))
            .all(|(l, _, _)| *l >= log::Level::Debug),
        "{lines:?}"
    );
}
