//! Interop with OpenSSL's `s_server` / `s_client` (DTLS 1.2, PSK suites).
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

use common::{config, run_client, run_server, unhex, Peer};
use cssf_dtls::CipherSuite;
use cssf_netsim::peer::{free_udp_port, require_binary, version};

const PSK_HEX: &str = "00112233445566778899aabbccddeeff";
const ID: &str = "Client_identity";
const INSTALL: &str = "apt-get install -y openssl";

const SUITES: [(CipherSuite, &str); 3] = [
    (CipherSuite::PskWithAes128Ccm8, "PSK-AES128-CCM8"),
    (
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        "PSK-CHACHA20-POLY1305",
    ),
    (
        CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
        "ECDHE-PSK-CHACHA20-POLY1305",
    ),
];

#[test]
fn our_client_against_openssl_s_server() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    for (suite, name) in SUITES {
        let port = free_udp_port();
        let accept = format!("127.0.0.1:{port}");
        let mut peer = Peer::spawn(
            "openssl",
            &[
                "s_server",
                "-dtls1_2",
                "-accept",
                &accept,
                "-listen",
                "-nocert",
                "-psk",
                PSK_HEX,
                "-psk_hint",
                "cssf-hint",
                "-cipher",
                name,
                "-no_ticket",
                "-naccept",
                "1",
            ],
            format!("{ver} s_server, suite {name}"),
        );
        assert!(
            peer.wait_for("ACCEPT", Duration::from_secs(10)),
            "{}: never ready: {}",
            peer.what,
            peer.output()
        );
        let what = peer.what.clone();
        let peer_ref = std::cell::RefCell::new(&mut peer);
        let r = run_client(
            accept.parse().unwrap(),
            config(&[suite]),
            ID.as_bytes(),
            &unhex(PSK_HEX),
            Some(b"hello from cssf\n"),
            || peer_ref.borrow_mut().write_stdin(b"hello from openssl\n"),
            |got| got.iter().any(|g| g.starts_with(b"hello from openssl")),
            Duration::from_secs(20),
        );
        let out = peer.output();
        let r = r.unwrap_or_else(|e| panic!("{what}: our client failed: {e}\npeer output:\n{out}"));
        assert_eq!(r.suite, suite, "{what}");
        assert!(
            peer.wait_for("hello from cssf", Duration::from_secs(5)),
            "{what}: s_server never printed our data:\n{}",
            peer.output()
        );
        drop(peer);
    }
}

#[test]
fn openssl_s_client_against_our_server() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    for (suite, name) in SUITES {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap().to_string();
        let mut peer = Peer::spawn(
            "openssl",
            &[
                "s_client",
                "-dtls1_2",
                "-connect",
                &addr,
                "-psk",
                PSK_HEX,
                "-psk_identity",
                ID,
                "-cipher",
                name,
            ],
            format!("{ver} s_client, suite {name}"),
        );
        peer.write_stdin(b"ping from openssl\n");
        let key = unhex(PSK_HEX);
        let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), &key)];
        let r = run_server(
            &sock,
            config(&[suite]),
            &keys,
            |m| Some([b"pong: ".as_slice(), m].concat()),
            |got| got.iter().any(|g| g.starts_with(b"ping from openssl")),
            Duration::from_secs(20),
        );
        let r = r.unwrap_or_else(|e| {
            panic!(
                "{}: our server failed: {e}\npeer output:\n{}",
                peer.what,
                peer.output()
            )
        });
        assert_eq!(r.suite, Some(suite), "{}", peer.what);
        // The session names the identity whose key s_client proved.
        assert_eq!(
            r.identities,
            [Some(cssf_dtls::Identity::Psk(
                cssf_dtls::PskIdentity::new(ID.as_bytes()).unwrap()
            ))],
            "{}",
            peer.what
        );
        assert!(
            peer.wait_for("pong: ping from openssl", Duration::from_secs(5)),
            "{}: s_client never printed our reply:\n{}",
            peer.what,
            peer.output()
        );
        let out = peer.output();
        assert!(
            out.contains("Extended master secret: yes") || !out.contains("Extended master secret"),
            "{}: EMS not negotiated:\n{out}",
            peer.what
        );
    }
}

/// Small MTUs: we fragment our flights at 128 bytes (OpenSSL reassembles),
/// and OpenSSL (whose minimum MTU is 256) fragments a ServerKeyExchange made
/// large by a 240-byte identity hint (we reassemble). ECDHE-PSK for the
/// largest messages.
#[test]
fn fragmented_flights_both_ways_with_openssl() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    let name = "ECDHE-PSK-CHACHA20-POLY1305";
    let suite = CipherSuite::EcdhePskWithChaCha20Poly1305Sha256;
    // Our server, s_client with a small MTU.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let mut peer = Peer::spawn(
        "openssl",
        &[
            "s_client",
            "-dtls1_2",
            "-mtu",
            "256",
            "-connect",
            &addr,
            "-psk",
            PSK_HEX,
            "-psk_identity",
            ID,
            "-cipher",
            name,
        ],
        format!("{ver} s_client -mtu 256, suite {name}"),
    );
    peer.write_stdin(b"fragmented hello\n");
    let key = unhex(PSK_HEX);
    let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), &key)];
    let mut cfg = config(&[suite]);
    cfg.mtu = 128;
    let r = run_server(
        &sock,
        cfg.clone(),
        &keys,
        |m| Some(m.to_vec()),
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
    assert_eq!(r.received[0], b"fragmented hello\n", "{}", peer.what);
    drop(peer);

    // Our client with a small MTU, s_server with a small MTU.
    let port = free_udp_port();
    let accept = format!("127.0.0.1:{port}");
    let hint = "h".repeat(240);
    let peer = Peer::spawn(
        "openssl",
        &[
            "s_server",
            "-dtls1_2",
            "-mtu",
            "256",
            "-accept",
            &accept,
            "-listen",
            "-nocert",
            "-psk",
            PSK_HEX,
            "-psk_hint",
            &hint,
            "-cipher",
            name,
            "-no_ticket",
            "-naccept",
            "1",
        ],
        format!("{ver} s_server -mtu 256 with a 240-byte hint, suite {name}"),
    );
    assert!(
        peer.wait_for("ACCEPT", Duration::from_secs(10)),
        "{}: never ready: {}",
        peer.what,
        peer.output()
    );
    let r = run_client(
        accept.parse().unwrap(),
        cfg,
        ID.as_bytes(),
        &key,
        Some(b"small mtu from cssf\n"),
        || {},
        |_| true,
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}: our client failed: {e}\npeer output:\n{}",
            peer.what,
            peer.output()
        )
    });
    assert_eq!(r.suite, suite);
    assert!(
        peer.wait_for("small mtu from cssf", Duration::from_secs(5)),
        "{}: {}",
        peer.what,
        peer.output()
    );
}

/// Failures end cleanly both ways: with a wrong key OpenSSL's server
/// silently drops our Finished (its MAC fails; DTLS discards such records),
/// so our client gives up after its retransmission budget; an unknown
/// identity from `s_client` gets our `unknown_psk_identity` alert.
#[test]
fn wrong_key_and_unknown_identity_alerts_with_openssl() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    let name = "PSK-AES128-CCM8";
    let port = free_udp_port();
    let accept = format!("127.0.0.1:{port}");
    let peer = Peer::spawn(
        "openssl",
        &[
            "s_server",
            "-dtls1_2",
            "-accept",
            &accept,
            "-listen",
            "-nocert",
            "-psk",
            PSK_HEX,
            "-cipher",
            name,
            "-no_ticket",
            "-naccept",
            "1",
        ],
        format!("{ver} s_server, suite {name}, client with a wrong key"),
    );
    assert!(
        peer.wait_for("ACCEPT", Duration::from_secs(10)),
        "{}: never ready: {}",
        peer.what,
        peer.output()
    );
    let mut cfg = config(&[CipherSuite::PskWithAes128Ccm8]);
    cfg.max_retransmits = 3;
    let r = run_client(
        accept.parse().unwrap(),
        cfg,
        ID.as_bytes(),
        &[0x42; 16],
        None,
        || {},
        |_| true,
        Duration::from_secs(20),
    );
    let err = r
        .err()
        .unwrap_or_else(|| panic!("{}: handshake with a wrong key succeeded", peer.what));
    assert!(
        err.contains("HandshakeTimeout") || err.contains("AlertReceived"),
        "{}: expected a timeout or a fatal alert, got: {err}",
        peer.what
    );
    drop(peer);

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let peer = Peer::spawn(
        "openssl",
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &addr,
            "-psk",
            PSK_HEX,
            "-psk_identity",
            "stranger",
            "-cipher",
            name,
        ],
        format!("{ver} s_client with an unknown identity, suite {name}"),
    );
    let key = unhex(PSK_HEX);
    let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), &key)];
    let r = run_server(
        &sock,
        config(&[CipherSuite::PskWithAes128Ccm8]),
        &keys,
        |_| None,
        |_| false,
        Duration::from_secs(3),
    );
    assert!(r.is_err());
    assert!(
        peer.wait_for("unknown psk identity", Duration::from_secs(5)),
        "{}: expected our unknown_psk_identity alert:\n{}",
        peer.what,
        peer.output()
    );
}
