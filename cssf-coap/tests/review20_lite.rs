//! Review of the lite client's driver shape (`handle_datagram(now, from,
//! &mut bytes)` for every peer input, `handle_datagram_protected` for a
//! request sent with `request_protected`).
//!
//! Review finding (medium, API), fixed: the plain `handle_datagram` did not know that
//! the outstanding request was protected. Fed an unprotected response
//! with the request's token (and, piggybacked, its message ID, both on
//! the wire in the clear), it ends the protected request with
//! `Event::Response` carrying the forger's payload. The new driver shape
//! makes `handle_datagram` the verb a generic driver calls (see
//! examples/tests/driver_shape.rs: one `Driver` trait, one loop), so a
//! program that drives an OSCORE lite client through it takes forged
//! responses. The protected path drops the same datagram
//! (`Stats::unverified`).
//!
//! Path: `Client::handle_datagram` -> `input` -> `matched` (token, MID)
//! -> `finish(Outcome::Response)`; `self.binding` is never looked at.
//!
//! Failed before the fix (now dropped and counted in `Stats::unverified`).
#![cfg(feature = "oscore")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;

use cssf_coap::lite::{Client, Config, Event};
use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
use cssf_coap::rand_core::{self, CryptoRng, RngCore};
use cssf_coap::{Code, Message, MessageBuilder, MessageType};

struct Rng(u64);
impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        self.0
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        for b in d {
            *b = (self.next_u64() >> 40) as u8;
        }
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}
impl CryptoRng for Rng {}

fn client_context() -> SecurityContext {
    let p = Params {
        master_secret: &[3; 16],
        master_salt: &[],
        id_context: None,
        sender_id: b"c",
        recipient_id: b"s",
    };
    SecurityContext::new(&p, SenderSequence::Volatile).unwrap()
}

/// A protected GET on the wire; its message ID and token (both in the
/// clear, as OSCORE leaves them).
fn protected_request(
    client: &mut Client<Rng, 256, u8>,
    ctx: &mut SecurityContext,
) -> (u16, Vec<u8>) {
    let mut get = MessageBuilder::<2>::new(MessageType::Con, Code::GET, 0);
    get.uri_path("secret").unwrap();
    client.request_protected(Duration::ZERO, &get, ctx).unwrap();
    let mut buf = [0u8; 256];
    let t = client
        .poll_transmit(Duration::ZERO, &mut buf)
        .unwrap()
        .unwrap();
    let m = Message::parse(&buf[..t.len]).unwrap();
    (m.message_id(), m.token().to_vec())
}

/// What an on-path attacker (or anyone who saw the request) sends: a
/// plain 2.05 piggybacked in an ACK with the request's ID and token.
fn forged(mid: u16, token: &[u8]) -> Vec<u8> {
    let mut rsp = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, mid);
    rsp.token(token).unwrap().payload(b"forged");
    let mut out = [0u8; 64];
    let n = rsp.emit(&mut out).unwrap();
    out[..n].to_vec()
}

const SERVER: u8 = 7;

/// The protected entry drops it (the reference behaviour).
#[test]
fn the_protected_entry_drops_an_unprotected_response() {
    let mut ctx = client_context();
    let mut c: Client<Rng, 256, u8> = Client::with_server(Config::default(), Rng(1), SERVER);
    let (mid, token) = protected_request(&mut c, &mut ctx);
    let mut d = forged(mid, &token);
    c.handle_datagram_protected(Duration::ZERO, SERVER, &mut d, &mut ctx)
        .unwrap();
    assert_eq!(c.stats().unverified, 1);
    assert!(c.is_busy());
    assert_eq!(c.poll_event(), None);
}

/// The driver-shape entry takes it as the protected request's response.
#[test]
fn the_driver_shape_entry_does_not_take_a_forged_response_to_a_protected_request() {
    let mut ctx = client_context();
    let mut c: Client<Rng, 256, u8> = Client::with_server(Config::default(), Rng(1), SERVER);
    let (mid, token) = protected_request(&mut c, &mut ctx);
    let mut d = forged(mid, &token);
    c.handle_datagram(Duration::ZERO, SERVER, &mut d).unwrap();
    let (took, ev) = {
        let ev = c.poll_event();
        let took = matches!(ev, Some(Event::Response(ref m)) if m.payload() == b"forged");
        (took, format!("{ev:?}"))
    };
    assert!(
        !took && c.is_busy(),
        "an unprotected response ended a protected request: {ev}"
    );
}
