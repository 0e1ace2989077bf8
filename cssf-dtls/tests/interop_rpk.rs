//! Raw public keys (RFC 7250) with ECDHE_ECDSA against GnuTLS
//! (`gnutls-serv` / `gnutls-cli --udp` with `--rawpkfile` / `--rawpkkeyfile`),
//! server-only and mutual, both suites, both directions.
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

use common::{config, drive_client, drive_server, key, seed, KeyFiles, Peer};
use cssf_dtls::{CipherSuite, Client, Endpoint, PinnedKeys, StaticPsk};
use cssf_netsim::peer::{free_udp_port, require_binary, version};
use cssf_netsim::SimRng;

const INSTALL: &str = "apt-get install -y gnutls-bin";

const SUITES: [(CipherSuite, &str); 2] = [
    (CipherSuite::EcdheEcdsaWithAes128Ccm8, "AES-128-CCM-8"),
    (
        CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
        "CHACHA20-POLY1305",
    ),
];

fn priority(cipher: &str) -> String {
    format!(
        "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+{cipher}:\
         -GROUP-ALL:+GROUP-SECP256R1:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
    )
}

#[test]
fn our_client_against_gnutls_serv_raw_public_keys() {
    if !require_binary("gnutls-serv", INSTALL) {
        return;
    }
    let ver = version("gnutls-serv", &["--version"]);
    let server_key = key(seed());
    let files = KeyFiles::write(&server_key, "gnutls-serv");
    let pins = [p256::PublicKey::from(server_key.verifying_key())];
    // (mutual, we have a key): the keyless run against a server requiring
    // client certificates shows that requirement is enforced, so the run
    // with a key did authenticate with it.
    for (suite, cipher) in SUITES {
        for (mutual, with_key) in [(false, false), (true, false), (true, true)] {
            let port = free_udp_port().to_string();
            let prio = priority(cipher);
            let mut args = std::vec![
                "--udp",
                "--echo",
                "-p",
                &port,
                "--rawpkfile",
                files.public(),
                "--rawpkkeyfile",
                files.key(),
                "--priority",
                &prio,
            ];
            if mutual {
                args.push("--require-client-cert");
            }
            let what = format!(
                "{ver} gnutls-serv, suite ECDHE-ECDSA-{cipher}, raw public keys, {}, our client {} a key",
                if mutual { "client certificate required" } else { "server-only" },
                if with_key { "with" } else { "without" },
            );
            let peer = Peer::spawn("gnutls-serv", &args, what);
            assert!(
                peer.wait_for("done", Duration::from_secs(10)),
                "{}: never ready: {}",
                peer.what,
                peer.output()
            );
            let client = Client::with_raw_public_key(
                config(&[suite]),
                with_key.then(|| key(seed())),
                PinnedKeys::new(&pins),
                format!("127.0.0.1:{port}").parse().unwrap(),
                SimRng::new(seed()),
                Duration::ZERO,
            )
            .unwrap();
            let refused = mutual && !with_key;
            let r = drive_client(
                client,
                Some(b"echo me, gnutls"),
                || {},
                |got| got.iter().any(|g| g == b"echo me, gnutls"),
                Duration::from_secs(if refused { 5 } else { 20 }),
            );
            if refused {
                // We answer its CertificateRequest with an empty list;
                // GnuTLS drops the session (without an alert).
                assert!(
                    r.is_err() && peer.wait_for("No certificate was found", Duration::from_secs(5)),
                    "{}: should have been refused, got {:?}\n{}",
                    peer.what,
                    r.map(|r| r.suite),
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
        }
    }
}

#[test]
fn gnutls_cli_against_our_server_raw_public_keys() {
    if !require_binary("gnutls-cli", INSTALL) {
        return;
    }
    let ver = version("gnutls-cli", &["--version"]);
    let server_key = key(seed());
    let client_key = key(seed() ^ 1);
    let client_files = KeyFiles::write(&client_key, "gnutls-cli");
    let client_pins = [p256::PublicKey::from(client_key.verifying_key())];
    for (suite, cipher) in SUITES {
        for mutual in [false, true] {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = sock.local_addr().unwrap().port().to_string();
            let prio = priority(cipher);
            let mut args = std::vec![
                "--udp",
                "-p",
                &port,
                "127.0.0.1",
                "--insecure",
                "--priority",
                &prio,
            ];
            if mutual {
                args.extend_from_slice(&[
                    "--rawpkfile",
                    client_files.public(),
                    "--rawpkkeyfile",
                    client_files.key(),
                ]);
            }
            let what = format!(
                "{ver} gnutls-cli, suite ECDHE-ECDSA-{cipher}, raw public keys, {}",
                if mutual { "mutual" } else { "server-only" }
            );
            let mut peer = Peer::spawn("gnutls-cli", &args, what);
            let mut cfg = config(&[suite]);
            cfg.require_client_auth = mutual;
            let server: Endpoint<_, _, _, 4, _> = Endpoint::with_raw_public_key(
                cfg,
                StaticPsk::new(&[]),
                server_key.clone(),
                PinnedKeys::new(&client_pins),
                SimRng::new(seed()),
                Duration::ZERO,
            )
            .unwrap();
            let mut wrote = false;
            let r = drive_server(
                &sock,
                server,
                |m| Some([b"pong: ".as_slice(), m].concat()),
                |got| {
                    if !wrote && peer.output().contains("Handshake was completed") {
                        wrote = true;
                        peer.write_stdin(b"ping from gnutls\n");
                    }
                    got.iter().any(|g| g.starts_with(b"ping from gnutls"))
                },
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
            assert!(
                peer.wait_for("pong: ping from gnutls", Duration::from_secs(5)),
                "{}: gnutls-cli never printed our reply:\n{}",
                peer.what,
                peer.output()
            );
        }
    }
}
