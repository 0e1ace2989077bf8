//! Interop with libcoap 4.3 (`coap-server-*` / `coap-client-*`, OpenSSL and
//! GnuTLS builds): CoAP over DTLS PSK in both directions.
#![cfg(all(feature = "server", feature = "ecdhe", feature = "chacha20"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{coap_ack_205, coap_code, coap_get_time, config, run_client, run_server, Peer};
use cssf_dtls::CipherSuite;
use cssf_netsim::peer::{free_udp_port_pair, require_binary, version};

const ID: &str = "Client_identity";
const KEY: &str = "secretPSK";
const INSTALL: &str = "apt-get install -y libcoap3-bin";

const SUITES: [CipherSuite; 3] = [
    CipherSuite::PskWithAes128Ccm8,
    CipherSuite::PskWithChaCha20Poly1305Sha256,
    CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
];

fn our_client_against(server_bin: &str) {
    if !require_binary(server_bin, INSTALL) {
        return;
    }
    let ver = version(server_bin, &["-h"]);
    for suite in SUITES {
        let port = free_udp_port_pair();
        let coap_port = port.to_string();
        let peer = Peer::spawn(
            server_bin,
            &["-A", "127.0.0.1", "-p", &coap_port, "-k", KEY, "-v", "4"],
            format!("{server_bin} ({ver}), suite {suite:?}"),
        );
        // The server needs a moment to bind; our client retransmits anyway.
        std::thread::sleep(Duration::from_millis(300));
        let r = run_client(
            format!("127.0.0.1:{}", port + 1).parse().unwrap(),
            config(&[suite]),
            ID.as_bytes(),
            KEY.as_bytes(),
            Some(&coap_get_time(0x1234)),
            || {},
            |got| got.iter().any(|g| coap_code(g).is_some()),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{}: our client failed: {e}\npeer output:\n{}",
                peer.what,
                peer.output()
            )
        });
        assert_eq!(r.suite, suite, "{}", peer.what);
        let code = coap_code(&r.received[0]).unwrap();
        assert_eq!(
            code >> 5,
            2,
            "{}: GET /time answered with {}.{:02}",
            peer.what,
            code >> 5,
            code & 31
        );
    }
}

fn their_client_against_ours(client_bin: &str) {
    if !require_binary(client_bin, INSTALL) {
        return;
    }
    let ver = version(client_bin, &["-h"]);
    for suite in SUITES {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let uri = format!("coaps://127.0.0.1:{port}/x");
        let peer = Peer::spawn(
            client_bin,
            &["-m", "get", "-u", ID, "-k", KEY, "-B", "15", &uri],
            format!("{client_bin} ({ver}), suite {suite:?}"),
        );
        let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), KEY.as_bytes())];
        let r = run_server(
            &sock,
            config(&[suite]),
            &keys,
            |req| coap_ack_205(req, b"hello from cssf"),
            |got| !got.is_empty(),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{}: our server failed: {e}\npeer output:\n{}",
                peer.what,
                peer.output()
            )
        });
        assert_eq!(r.suite, Some(suite), "{}", peer.what);
        assert_eq!(
            coap_code(&r.received[0]),
            Some(0x01),
            "{}: expected a GET",
            peer.what
        );
        assert!(
            peer.wait_for("hello from cssf", Duration::from_secs(5)),
            "{}: never printed our payload:\n{}",
            peer.what,
            peer.output()
        );
    }
}

#[test]
fn our_client_against_coap_server_openssl() {
    our_client_against("coap-server-openssl");
}

#[test]
fn our_client_against_coap_server_gnutls() {
    our_client_against("coap-server-gnutls");
}

#[test]
fn coap_client_openssl_against_our_server() {
    their_client_against_ours("coap-client-openssl");
}

#[test]
fn coap_client_gnutls_against_our_server() {
    their_client_against_ours("coap-client-gnutls");
}
