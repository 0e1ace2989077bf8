//! Raw public keys (RFC 7250) with libcoap 4.3's GnuTLS build
//! (`coap-server-gnutls -M key.pem`, `coap-client-gnutls -M key.pem`):
//! CoAP over DTLS ECDHE_ECDSA in both directions, mutual authentication
//! (libcoap asks for and checks the peer's key unless `-n`) and server-only.
//! The CoAP messages on our side are built and parsed with cssf-coap.
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

use common::{config, drive_client, drive_server, key, read_public_pem, seed, KeyFiles, Peer};
use cssf_coap::{Code, Message, MessageBuilder, MessageType};
use cssf_dtls::{CipherSuite, Client, Endpoint, FnTrust, PinnedKeys, StaticPsk};
use cssf_netsim::peer::{free_udp_port_pair, require_binary, version};
use cssf_netsim::SimRng;

const INSTALL: &str = "apt-get install -y libcoap3-bin";

/// CON GET /time with a 2-byte token.
fn get_time(mid: u16) -> Vec<u8> {
    let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::GET, mid);
    b.token(&[0xAB, 0xCD]).unwrap();
    b.uri_path("time").unwrap();
    let mut out = [0u8; 64];
    let n = b.emit(&mut out).unwrap();
    out[..n].to_vec()
}

/// A piggybacked ACK 2.05 carrying `payload` for a CON request.
fn ack_content(req: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let m = Message::parse(req).ok()?;
    let mut b = MessageBuilder::<2>::new(MessageType::Ack, Code::CONTENT, m.message_id());
    b.token(m.token()).ok()?;
    b.payload(payload);
    let mut out = [0u8; 256];
    let n = b.emit(&mut out).ok()?;
    Some(out[..n].to_vec())
}

#[test]
fn our_client_against_coap_server_gnutls_raw_public_keys() {
    let bin = "coap-server-gnutls";
    if !require_binary(bin, INSTALL) {
        return;
    }
    let ver = version(bin, &["-h"]);
    let server_key = key(seed());
    let files = KeyFiles::write(&server_key, "coap-server");
    let pins = [p256::PublicKey::from(server_key.verifying_key())];
    for suite in [
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
        CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
    ] {
        // (peer checking on, we have a key): the keyless run shows libcoap
        // enforces client authentication, so the run with a key used it.
        for (mutual, with_key) in [(true, true), (true, false), (false, false)] {
            let port = free_udp_port_pair();
            let coap_port = port.to_string();
            let mut args = std::vec![
                "-A",
                "127.0.0.1",
                "-p",
                &coap_port,
                "-M",
                files.key(),
                "-v",
                "4"
            ];
            if !mutual {
                args.push("-n");
            }
            let what = format!(
                "{bin} ({ver}), suite {suite:?}, raw public keys, {}, our client {} a key",
                if mutual {
                    "peer checking on"
                } else {
                    "peer checking off (-n)"
                },
                if with_key { "with" } else { "without" },
            );
            let peer = Peer::spawn(bin, &args, what);
            std::thread::sleep(Duration::from_millis(300));
            let client = Client::with_raw_public_key(
                config(&[suite]),
                with_key.then(|| key(seed() ^ 7)),
                PinnedKeys::new(&pins),
                format!("127.0.0.1:{}", port + 1).parse().unwrap(),
                SimRng::new(seed()),
                Duration::ZERO,
            )
            .unwrap();
            let r = drive_client(
                client,
                Some(&get_time(0x1234)),
                || {},
                |got| got.iter().any(|g| Message::parse(g).is_ok()),
                Duration::from_secs(if mutual && !with_key { 5 } else { 20 }),
            );
            if mutual && !with_key {
                assert!(
                    r.is_err(),
                    "{}: should have been refused\n{}",
                    peer.what,
                    peer.output()
                );
                continue;
            }
            let r = r.unwrap_or_else(|e| {
                panic!(
                    "{}: our client failed: {e}\npeer output:\n{}",
                    peer.what,
                    peer.output()
                )
            });
            assert_eq!(r.suite, suite, "{}", peer.what);
            let rsp = Message::parse(&r.received[0]).unwrap();
            assert_eq!(rsp.token(), &[0xAB, 0xCD], "{}", peer.what);
            assert_eq!(
                rsp.code().class(),
                2,
                "{}: GET /time answered with {:?}",
                peer.what,
                rsp.code()
            );
        }
    }
}

#[test]
fn coap_client_gnutls_against_our_server_raw_public_keys() {
    let bin = "coap-client-gnutls";
    if !require_binary(bin, INSTALL) {
        return;
    }
    let ver = version(bin, &["-h"]);
    let client_key = key(seed());
    let files = KeyFiles::write(&client_key, "coap-client");
    let client_pin = read_public_pem(&std::fs::read_to_string(&files.public).unwrap());
    for suite in [
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
        CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
    ] {
        for mutual in [true, false] {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = sock.local_addr().unwrap().port();
            let uri = format!("coaps://127.0.0.1:{port}/x");
            let what = format!(
                "{bin} ({ver}), suite {suite:?}, raw public keys, {}",
                if mutual { "mutual" } else { "server-only" }
            );
            let peer = Peer::spawn(
                bin,
                &["-m", "get", "-M", files.key(), "-B", "15", &uri],
                what,
            );
            let mut cfg = config(&[suite]);
            cfg.require_client_auth = mutual;
            let pin = client_pin;
            let server: Endpoint<_, _, _, 4, _> = Endpoint::with_raw_public_key(
                cfg,
                StaticPsk::new(&[]),
                key(seed() ^ 3),
                FnTrust(move |k: &p256::PublicKey| *k == pin),
                SimRng::new(seed()),
                Duration::ZERO,
            )
            .unwrap();
            let r = drive_server(
                &sock,
                server,
                |req| ack_content(req, b"hello from cssf"),
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
            // Mutual: the client's key, proven; server-only: nobody.
            let want = mutual.then_some(cssf_dtls::Identity::RawPublicKey(client_pin));
            assert_eq!(r.identities, [want], "{}", peer.what);
            let req = Message::parse(&r.received[0]).unwrap();
            assert_eq!(req.code(), Code::GET, "{}: expected a GET", peer.what);
            assert!(
                peer.wait_for("hello from cssf", Duration::from_secs(5)),
                "{}: never printed our payload:\n{}",
                peer.what,
                peer.output()
            );
        }
    }
}
