//! Review of "a peer's input never fails handle_datagram; a failed
//! session or handshake is its Closed event".
//!
//! `Endpoint::handle_datagram` now discards the `Err` of its inner input
//! path. One such `Err` belongs to no slot: a cookie-verified ClientHello
//! that `start_server` refuses (no suite in common, a bad extension) gets
//! a `Closed` event only "if a session slot is free". With the session
//! table full, the failure used to reach the caller as `Err(e)`; now it
//! leaves no event and no counter: the operator cannot see it at all.
//! (No state is left behind: nothing was admitted.)
#![cfg(all(feature = "server", feature = "ecdhe"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use core::time::Duration;

use common::{key, public, Pins};
use cssf_dtls::{Client, CloseReason, Config, Endpoint, Error, Event, RejectAll, StaticPsk, Stats};
use cssf_netsim::SimRng;

const SERVER: u8 = 9;
const KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"secretPSK")];

type Server<const N: usize> = Endpoint<u8, StaticPsk<'static>, SimRng, N>;

/// Exchanges datagrams between `client` (at `at`) and `server` until
/// neither sends; the server's events.
fn pump<T: cssf_dtls::TrustStore<u8>, const N: usize>(
    client: &mut Client<u8, SimRng, T>,
    at: u8,
    server: &mut Server<N>,
) -> Vec<Event<u8>> {
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut events = Vec::new();
    for _ in 0..16 {
        let mut moved = false;
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            moved = true;
            server.handle_datagram(now, at, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            moved = true;
            if t.to == at {
                client
                    .handle_datagram(now, SERVER, &mut buf[..t.len])
                    .unwrap();
            }
        }
        events.extend(core::iter::from_fn(|| server.poll_event()));
        while client.poll_event().is_some() {}
        if !moved {
            break;
        }
    }
    events
}

/// A client offering only ECDHE_ECDSA: a PSK-only server has no suite in
/// common with it, and refuses its cookie-verified ClientHello in
/// `start_server`.
fn ecdsa_only_client(seed: u64) -> Client<u8, SimRng, Pins> {
    Client::with_raw_public_key(
        Config::default(),
        None,
        Pins(vec![public(&key(1))]),
        SERVER,
        SimRng::new(seed),
        Duration::ZERO,
    )
    .unwrap()
}

fn psk_client(seed: u64) -> Client<u8, SimRng, RejectAll> {
    Client::new(
        Config::default(),
        KEYS[0].0,
        KEYS[0].1,
        SERVER,
        SimRng::new(seed),
        Duration::ZERO,
    )
    .unwrap()
}

fn closed_errors(ev: &[Event<u8>]) -> Vec<Error> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Closed {
                reason: CloseReason::Error(e),
                ..
            } => Some(*e),
            _ => None,
        })
        .collect()
}

/// Counters that could record a refused handshake.
fn refusals(s: &Stats) -> (u64, u64) {
    (s.handshakes_refused, s.records_dropped)
}

/// With a free slot, the refused ClientHello is reported (Closed with the
/// error): the contract holds.
#[test]
fn a_refused_client_hello_is_reported_when_a_slot_is_free() {
    let mut s: Server<2> = Endpoint::new(
        Config::default(),
        StaticPsk::new(&KEYS),
        SimRng::new(2),
        Duration::ZERO,
    )
    .unwrap();
    let mut c = ecdsa_only_client(3);
    let ev = pump(&mut c, 1, &mut s);
    assert!(!c.is_connected());
    assert_eq!(closed_errors(&ev).len(), 1, "{ev:?}");
}

/// Review finding (low, observability), fixed: with the session table full, the same
/// refused ClientHello leaves no trace: no `Closed` event (no slot for
/// it), no counter; before this change the caller got `Err(e)`.
///
/// Path: `handle_datagram` -> `input` -> `stateless_client_hello`:
/// `start_server` fails -> `if !self.slots.is_full() { push Ended slot }`
/// -> `return Err(e)` -> discarded by `let _ = self.input(..)`.
///
/// Failed before the fix (now counted in `records_dropped`).
#[test]
fn a_refused_client_hello_leaves_a_trace_when_the_table_is_full() {
    let mut s: Server<1> = Endpoint::new(
        Config::default(),
        StaticPsk::new(&KEYS),
        SimRng::new(4),
        Duration::ZERO,
    )
    .unwrap();
    // One PSK session fills the table.
    let mut ok = psk_client(5);
    let _ = pump(&mut ok, 1, &mut s);
    assert!(ok.is_connected());
    let before = refusals(&s.stats());

    // A client the server cannot serve, from another address.
    let mut c = ecdsa_only_client(6);
    let ev = pump(&mut c, 2, &mut s);
    assert!(!c.is_connected());
    let reported = !closed_errors(&ev).is_empty();
    let counted = refusals(&s.stats()) != before;
    assert!(
        reported || counted,
        "a ClientHello refused by start_server with the table full is neither \
         reported (events {ev:?}) nor counted (stats {:?})",
        s.stats()
    );
}
