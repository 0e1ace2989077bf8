//! Interop with tinydtls through its Python binding (PyPI `DTLSSocket`):
//! TLS_PSK_WITH_AES_128_CCM_8 only, CoAP over DTLS both ways.
#![cfg(all(feature = "server", feature = "ecdhe"))]
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
use cssf_netsim::peer::{free_udp_port, require_python_module};

const ID: &str = "Client_identity";

const INSTALL: &str = "pip install dtlssocket";

fn key() -> Vec<u8> {
    b"secretPSK".to_vec()
}

fn script(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tinydtls_config() -> cssf_dtls::Config {
    // The default profile, extended master secret required: this tinydtls
    // build negotiates it.
    config(&[CipherSuite::PskWithAes128Ccm8])
}

#[test]
fn tinydtls_client_against_our_server() {
    if !require_python_module("DTLSSocket", INSTALL) {
        return;
    }

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let key_hex: String = key().iter().map(|b| format!("{b:02x}")).collect();
    let peer = Peer::spawn(
        "python3",
        &[&script("tinydtls_client.py"), &port, ID, &key_hex],
        "tinydtls (python DTLSSocket) client, suite PSK-AES128-CCM8".into(),
    );
    let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), b"secretPSK")];
    let r = run_server(
        &sock,
        tinydtls_config(),
        &keys,
        |req| coap_ack_205(req, b"hello from cssf"),
        |got| !got.is_empty(),
        Duration::from_secs(25),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}: our server failed: {e}\npeer output:\n{}",
            peer.what,
            peer.output()
        )
    });
    assert_eq!(r.suite, Some(CipherSuite::PskWithAes128Ccm8));
    assert_eq!(coap_code(&r.received[0]), Some(0x01), "{}", peer.what);
    assert!(
        peer.wait_for("CONNECTED", Duration::from_secs(10)),
        "{}: {}",
        peer.what,
        peer.output()
    );
    // Not asserted: the python DTLSSocket client never surfaces application
    // data it receives after connecting (the same happens against
    // `openssl s_server`), so our response cannot be observed on that side.
    // The other direction (our client, tinydtls server) checks data both ways.
}

#[test]
fn our_client_against_tinydtls_server() {
    if !require_python_module("DTLSSocket", INSTALL) {
        return;
    }
    let port = free_udp_port();
    let key_hex: String = key().iter().map(|b| format!("{b:02x}")).collect();
    let peer = Peer::spawn(
        "python3",
        &[
            &script("tinydtls_server.py"),
            &port.to_string(),
            ID,
            &key_hex,
        ],
        "tinydtls (python DTLSSocket) server, suite PSK-AES128-CCM8".into(),
    );
    assert!(
        peer.wait_for("READY", Duration::from_secs(10)),
        "{}: never ready: {}",
        peer.what,
        peer.output()
    );
    let r = run_client(
        format!("127.0.0.1:{port}").parse().unwrap(),
        tinydtls_config(),
        ID.as_bytes(),
        &key(),
        Some(&coap_get_time(0x4321)),
        || {},
        |got| !got.is_empty(),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}: our client failed: {e}\npeer output:\n{}",
            peer.what,
            peer.output()
        )
    });
    assert_eq!(coap_code(&r.received[0]), Some(0x45), "{}", peer.what);
    assert!(r.received[0].ends_with(b"tinydtls"), "{}", peer.what);
    assert!(
        peer.wait_for("GOT 4201", Duration::from_secs(5)),
        "{}: {}",
        peer.what,
        peer.output()
    );
}
