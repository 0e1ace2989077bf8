//! Interop with GnuTLS's `gnutls-serv --udp --echo` and `gnutls-cli --udp`
//! (DTLS 1.2, PSK suites).
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
const INSTALL: &str = "apt-get install -y gnutls-bin";

fn priority(kx: &str, cipher: &str) -> String {
    format!("NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+{kx}:-CIPHER-ALL:+{cipher}:-GROUP-ALL:+GROUP-SECP256R1")
}

const SUITES: [(CipherSuite, &str, &str); 3] = [
    (CipherSuite::PskWithAes128Ccm8, "PSK", "AES-128-CCM-8"),
    (
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        "PSK",
        "CHACHA20-POLY1305",
    ),
    (
        CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
        "ECDHE-PSK",
        "CHACHA20-POLY1305",
    ),
];

fn psk_file() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("cssf-dtls-gnutls-psk-{}.txt", std::process::id()));
    std::fs::write(&p, format!("{ID}:{PSK_HEX}\n")).unwrap();
    p
}

#[test]
fn our_client_against_gnutls_serv() {
    if !require_binary("gnutls-serv", INSTALL) {
        return;
    }
    let ver = version("gnutls-serv", &["--version"]);
    let file = psk_file();
    for (suite, kx, cipher) in SUITES {
        let port = free_udp_port().to_string();
        let prio = priority(kx, cipher);
        let peer = Peer::spawn(
            "gnutls-serv",
            &[
                "--udp",
                "--echo",
                "-p",
                &port,
                "--pskpasswd",
                file.to_str().unwrap(),
                "--priority",
                &prio,
            ],
            format!("{ver} gnutls-serv, suite {kx}-{cipher}"),
        );
        assert!(
            peer.wait_for("done", Duration::from_secs(10)),
            "{}: never ready: {}",
            peer.what,
            peer.output()
        );
        let r = run_client(
            format!("127.0.0.1:{port}").parse().unwrap(),
            config(&[suite]),
            ID.as_bytes(),
            &unhex(PSK_HEX),
            Some(b"echo me, gnutls"),
            || {},
            |got| got.iter().any(|g| g == b"echo me, gnutls"),
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
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn gnutls_cli_against_our_server() {
    if !require_binary("gnutls-cli", INSTALL) {
        return;
    }
    let ver = version("gnutls-cli", &["--version"]);
    // gnutls-cli 3.7 stalls after the server's Finished with ECDHE-PSK even
    // against its own gnutls-serv, so only the plain PSK suites run here;
    // ECDHE-PSK is covered by our client against gnutls-serv.
    for (suite, kx, cipher) in SUITES.into_iter().filter(|(_, kx, _)| *kx == "PSK") {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port().to_string();
        let prio = priority(kx, cipher);
        let mut peer = Peer::spawn(
            "gnutls-cli",
            &[
                "--udp",
                "-p",
                &port,
                "127.0.0.1",
                "--pskusername",
                ID,
                "--pskkey",
                PSK_HEX,
                "--priority",
                &prio,
            ],
            format!("{ver} gnutls-cli, suite {kx}-{cipher}"),
        );
        let key = unhex(PSK_HEX);
        let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), &key)];
        let mut wrote = false;
        let r = run_server(
            &sock,
            config(&[suite]),
            &keys,
            |m| Some([b"pong: ".as_slice(), m].concat()),
            |got| {
                if !wrote && peer.output().contains("Handshake was completed") {
                    wrote = true;
                    peer.write_stdin(b"ping from gnutls\n");
                }
                got.iter().any(|g| g.starts_with(b"ping from gnutls"))
            },
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
        assert!(
            peer.wait_for("pong: ping from gnutls", Duration::from_secs(5)),
            "{}: gnutls-cli never printed our reply:\n{}",
            peer.what,
            peer.output()
        );
    }
}

/// RFC 7627: a client without extended master secret (GnuTLS
/// `%NO_SESSION_HASH`) is refused by default and accepted when the server
/// is configured to allow it.
#[test]
fn extended_master_secret_required_by_default() {
    if !require_binary("gnutls-cli", INSTALL) {
        return;
    }
    let ver = version("gnutls-cli", &["--version"]);
    let prio = format!("{}:%NO_SESSION_HASH", priority("PSK", "AES-128-CCM-8"));
    let key = unhex(PSK_HEX);
    let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), &key)];
    for require in [true, false] {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port().to_string();
        let mut peer = Peer::spawn(
            "gnutls-cli",
            &["--udp", "-p", &port, "127.0.0.1", "--pskusername", ID, "--pskkey", PSK_HEX, "--priority", &prio],
            format!("{ver} gnutls-cli without EMS, suite PSK-AES-128-CCM-8, server requires EMS: {require}"),
        );
        let mut cfg = config(&[CipherSuite::PskWithAes128Ccm8]);
        cfg.require_extended_master_secret = require;
        let mut wrote = false;
        let r = run_server(
            &sock,
            cfg,
            &keys,
            |m| Some(m.to_vec()),
            |got| {
                if !wrote && peer.output().contains("Handshake was completed") {
                    wrote = true;
                    peer.write_stdin(b"no ems\n");
                }
                !got.is_empty()
            },
            Duration::from_secs(if require { 4 } else { 20 }),
        );
        if require {
            assert!(
                r.is_err(),
                "{}: handshake should have been refused",
                peer.what
            );
            assert!(
                peer.wait_for("Handshake failed", Duration::from_secs(5)),
                "{}: expected a failed handshake:\n{}",
                peer.what,
                peer.output()
            );
        } else {
            let r = r.unwrap_or_else(|e| panic!("{}: {e}\n{}", peer.what, peer.output()));
            assert_eq!(r.received[0], b"no ems\n", "{}", peer.what);
        }
    }
}
