//! An endpoint for a node with little RAM: its two application queues (sealed
//! records to send, received records to read) of a size the caller picks
//! (`Endpoint`'s last parameter, `Q`). Records that fit go through; a send
//! that does not fit is `Error::Full` until `poll_transmit` drains the
//! queue, and nothing else changes.
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;

use cssf_dtls::{Client, Config, Endpoint, Error, Event, RejectAll, SessionHandle, StaticPsk};

/// The queue bytes: one record of a 256-byte message (285 bytes sealed
/// with AES_128_CCM_8) fits, two do not.
const Q: usize = 320;
const T: Duration = Duration::from_secs(1);

type Server<'k> = Endpoint<u8, StaticPsk<'k>, rand_core::OsRng, 2, RejectAll, 1, 1, Q>;

fn connect(server: &mut Server<'_>) -> (Client<u8, rand_core::OsRng>, SessionHandle) {
    let mut client = Client::new(
        Config::default(),
        b"Client_identity",
        b"secretPSK",
        2u8,
        rand_core::OsRng,
        T,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..8 {
        while let Some(t) = client.poll_transmit(T, &mut buf).unwrap() {
            server.handle_datagram(T, 1u8, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = server.poll_transmit(T, &mut buf).unwrap() {
            client
                .handle_datagram(T, t.to + 1, &mut buf[..t.len])
                .unwrap();
        }
    }
    assert!(client.is_connected());
    let handle = loop {
        match server.poll_event() {
            Some(Event::Connected { handle, .. }) => break handle,
            Some(_) => continue,
            None => panic!("the server did not report the session"),
        }
    };
    (client, handle)
}

#[test]
fn small_queues_carry_records_and_refuse_what_does_not_fit() {
    let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
    let mut server: Server<'_> = Endpoint::new(
        Config::default(),
        StaticPsk::new(&keys),
        rand_core::OsRng,
        T,
    )
    .unwrap();
    let (mut client, handle) = connect(&mut server);
    let mut buf = [0u8; 1500];

    // Server to client: one 256-byte message fits the send queue, a
    // second one does not until the first is sent.
    let msg = [0x5a; 256];
    server.send(T, handle, &msg).unwrap();
    assert_eq!(server.send(T, handle, &msg), Err(Error::Full));
    let t = server.poll_transmit(T, &mut buf).unwrap().unwrap();
    assert_eq!(t.len, 256 + 29, "one AES_128_CCM_8 record");
    assert!(server.poll_transmit(T, &mut buf).unwrap().is_none());
    client.handle_datagram(T, 2u8, &mut buf[..t.len]).unwrap();
    let mut got = [0u8; 512];
    assert_eq!(client.recv(&mut got).unwrap(), Some(256));
    assert_eq!(&got[..256], &msg[..]);
    // Drained: the next one fits again.
    server.send(T, handle, &msg).unwrap();
    assert!(server.poll_transmit(T, &mut buf).unwrap().is_some());

    // Client to server: a 256-byte message fits the receive queue and is
    // read back whole.
    client.send(T, &msg).unwrap();
    let t = client.poll_transmit(T, &mut buf).unwrap().unwrap();
    server.handle_datagram(T, 1u8, &mut buf[..t.len]).unwrap();
    assert_eq!(server.recv(handle, &mut got).unwrap(), Some(256));
    assert_eq!(&got[..256], &msg[..]);
    assert_eq!(server.stats().rx_overflow, 0);

    // A record larger than the whole queue is never taken.
    assert_eq!(server.send(T, handle, &[1; Q]), Err(Error::Full));
}

#[test]
fn the_queue_capacity_is_what_the_endpoint_holds() {
    let small = core::mem::size_of::<Server<'static>>();
    let default = core::mem::size_of::<
        Endpoint<u8, StaticPsk<'static>, rand_core::OsRng, 2, RejectAll, 1, 1>,
    >();
    // Two queues of 2048 bytes against two of 320.
    assert!(
        default - small >= 2 * (cssf_dtls::APP_QUEUE_CAPACITY - Q),
        "default {default} B, with {Q}-byte queues {small} B"
    );
}
