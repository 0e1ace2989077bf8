//! One client type and one endpoint type whatever the mode: the builders
//! make PSK, raw-public-key and mixed clients and servers of the same
//! types, and each offers exactly what it was given.
#![cfg(all(feature = "server", feature = "ecdhe", feature = "resumption"))]
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
use cssf_dtls::{
    CipherSuite, Client, ClientBuilder, CloseReason, Config, Endpoint, EndpointBuilder, Error,
    Event, Identity, KeyExchange, PskIdentity, SigningKey, StaticPsk,
};
use cssf_netsim::SimRng;

const CLIENT: u8 = 1;
const SERVER: u8 = 2;
const KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"secretPSK")];

/// The one client type of every mode in these tests.
type AnyClient = Client<u8, SimRng, Pins>;
/// The one server type of every mode in these tests.
type AnyServer = Endpoint<u8, StaticPsk<'static>, SimRng, 2, Pins>;

/// A server offering PSK (always, through the store) and, with `key`,
/// raw public keys.
fn server(key: Option<SigningKey>, seed: u64) -> AnyServer {
    let mut b = EndpointBuilder::new(Config::default(), StaticPsk::new(&KEYS), SimRng::new(seed))
        .trust(Pins(Vec::new()));
    if let Some(k) = key {
        b = b.raw_public_key(k);
    }
    b.build(Duration::ZERO).unwrap()
}

/// Runs both sides in memory until neither sends; true when both ended
/// connected.
fn drive(client: &mut AnyClient, server: &mut AnyServer) -> bool {
    drive_closed(client, server).0
}

/// [`drive`], and how the client's session ended, if it did.
fn drive_closed(client: &mut AnyClient, server: &mut AnyServer) -> (bool, Option<CloseReason>) {
    let mut closed = None;
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    for _ in 0..16 {
        let mut moved = false;
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            moved = true;
            server
                .handle_datagram(now, CLIENT, &mut buf[..t.len])
                .unwrap();
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            moved = true;
            client
                .handle_datagram(now, SERVER, &mut buf[..t.len])
                .unwrap();
        }
        while let Some(e) = client.poll_event() {
            if let Event::Closed { reason, .. } = e {
                closed = Some(reason);
            }
        }
        while server.poll_event().is_some() {}
        if !moved {
            break;
        }
    }
    let connected = client.is_connected()
        && server
            .session_handle(&CLIENT)
            .is_some_and(|h| server.is_connected(h));
    (connected, closed)
}

fn kx(c: &AnyClient) -> Option<KeyExchange> {
    c.suite().map(|s| s.key_exchange())
}

#[test]
fn a_psk_client_and_a_raw_public_key_client_are_one_type() {
    let sk = key(1);
    // PSK, with a trust store in the type it never uses.
    let mut psk: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(2))
        .trust(Pins(Vec::new()))
        .psk(KEYS[0].0, KEYS[0].1)
        .start(Duration::ZERO)
        .unwrap();
    let mut s = server(None, 3);
    assert!(drive(&mut psk, &mut s));
    assert!(kx(&psk).is_some_and(|k| k.is_psk()));
    assert_eq!(
        psk.peer_identity(),
        Some(&Identity::Psk(PskIdentity::new(KEYS[0].0).unwrap()))
    );

    // Raw public keys: the same type.
    let mut rpk: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(4))
        .trust(Pins(vec![public(&sk)]))
        .raw_public_key(None)
        .start(Duration::ZERO)
        .unwrap();
    let mut s = server(Some(sk.clone()), 5);
    assert!(drive(&mut rpk, &mut s));
    assert_eq!(kx(&rpk), Some(KeyExchange::EcdheEcdsa));
    assert_eq!(
        rpk.peer_identity(),
        Some(&Identity::RawPublicKey(public(&sk)))
    );
}

#[test]
fn a_client_offers_exactly_what_it_was_given() {
    let sk = key(6);
    let both = || {
        ClientBuilder::new(Config::default(), SERVER, SimRng::new(7))
            .trust(Pins(vec![public(&sk)]))
            .psk(KEYS[0].0, KEYS[0].1)
            .raw_public_key(None)
    };
    // Both offered: a PSK-only server picks PSK...
    let mut c: AnyClient = both().start(Duration::ZERO).unwrap();
    assert!(drive(&mut c, &mut server(None, 8)));
    assert!(kx(&c).is_some_and(|k| k.is_psk()));
    // ...a server with a key and the default suite order picks ECDSA or
    // PSK, and either way the client connects.
    let mut c: AnyClient = both().start(Duration::ZERO).unwrap();
    assert!(drive(&mut c, &mut server(Some(sk.clone()), 9)));

    // Only raw public keys offered: a PSK-only server cannot agree.
    let mut c: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(10))
        .trust(Pins(vec![public(&sk)]))
        .raw_public_key(None)
        .start(Duration::ZERO)
        .unwrap();
    assert!(!drive(&mut c, &mut server(None, 11)));

    // Only PSK offered: the ClientHello lists no ECDHE_ECDSA suite, so a
    // key-only server (no PSK it knows) cannot agree either.
    let mut c: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(12))
        .trust(Pins(vec![public(&sk)]))
        .psk(b"unknown", b"secretPSK")
        .start(Duration::ZERO)
        .unwrap();
    assert!(!drive(&mut c, &mut server(Some(sk), 13)));

    // Nothing offered: refused before anything is sent.
    let r: Result<AnyClient, Error> =
        ClientBuilder::new(Config::default(), SERVER, SimRng::new(14))
            .trust(Pins(Vec::new()))
            .start(Duration::ZERO);
    assert_eq!(r.err(), Some(Error::Config));
}

#[test]
fn a_session_whose_server_key_is_no_longer_trusted_is_not_offered() {
    let sk = key(15);
    let mut s = server(Some(sk.clone()), 16);
    let mut first: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(17))
        .trust(Pins(vec![public(&sk)]))
        .raw_public_key(None)
        .start(Duration::ZERO)
        .unwrap();
    assert!(drive(&mut first, &mut s));
    let session = first.session().unwrap();
    let h = s.session_handle(&CLIENT).unwrap();
    s.close(Duration::ZERO, h).unwrap();
    while s.poll_event().is_some() {}
    let mut buf = [0u8; 1500];
    while s.poll_transmit(Duration::ZERO, &mut buf).unwrap().is_some() {}

    // Still trusted: resumed.
    let mut again: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(18))
        .trust(Pins(vec![public(&sk)]))
        .raw_public_key(None)
        .resume(&session)
        .start(Duration::ZERO)
        .unwrap();
    assert!(drive(&mut again, &mut s));
    assert!(again.is_resumed());

    // The key left the trust store: not offered though the server still
    // holds the session, so a full handshake, which fails on the
    // untrusted key.
    let h = s.session_handle(&CLIENT).unwrap();
    s.close(Duration::ZERO, h).unwrap();
    while s.poll_event().is_some() {}
    while s.poll_transmit(Duration::ZERO, &mut buf).unwrap().is_some() {}
    let mut revoked: AnyClient = ClientBuilder::new(Config::default(), SERVER, SimRng::new(20))
        .trust(Pins(Vec::new()))
        .raw_public_key(None)
        .resume(&session)
        .start(Duration::ZERO)
        .unwrap();
    let (connected, closed) = drive_closed(&mut revoked, &mut s);
    assert!(!connected && !revoked.is_resumed());
    assert!(
        matches!(closed, Some(CloseReason::Error(_))),
        "the refused key ends the session with Closed: {closed:?}"
    );
}

#[test]
fn the_queue_capacity_is_the_builders_too() {
    let c: Client<u8, SimRng, Pins, 512> =
        ClientBuilder::new(Config::default(), SERVER, SimRng::new(21))
            .trust(Pins(Vec::new()))
            .psk(KEYS[0].0, KEYS[0].1)
            .queue_capacity::<512>()
            .start(Duration::ZERO)
            .unwrap();
    assert!(c.max_payload() <= 512);
    let suites = Config::default().suites;
    assert!(suites.contains(&CipherSuite::PskWithAes128Ccm8));
}
