//! ECDHE_ECDSA with X.509 certificates (feature `x509`) against OpenSSL 3.0,
//! which has no raw public keys: our client against `s_server -dtls1_2`
//! (its certificate accepted by CA signature, then by a pinned key, and an
//! untrusted one refused), and `s_client -dtls1_2` against our server
//! sending its own certificate; both suites. Certificates are made in the
//! test with `openssl req -x509` for keys we generate.
#![cfg(all(feature = "x509", feature = "server", feature = "chacha20"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::{config, drive_client, drive_server, key, seed, KeyFiles, Peer};
use cssf_dtls::{
    CaSigned, CipherSuite, Client, Endpoint, Identity, PinnedKeys, StaticPsk, TrustStore,
};
use cssf_netsim::peer::{free_udp_port, require_binary, version};
use cssf_netsim::SimRng;

const INSTALL: &str = "apt-get install -y openssl";

const SUITES: [(CipherSuite, &str); 2] = [
    (
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
        "ECDHE-ECDSA-AES128-CCM8",
    ),
    (
        CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
];

/// A self-signed certificate for `files.key` (`openssl req -x509`), in PEM
/// and DER; removed on drop.
struct Cert {
    pem: std::path::PathBuf,
    der: Vec<u8>,
}

impl Cert {
    fn self_signed(files: &KeyFiles, cn: &str) -> Cert {
        let pem = files.key.with_extension("crt.pem");
        let st = Command::new("openssl")
            .args(["req", "-x509", "-new", "-key", files.key(), "-subj"])
            .arg(format!("/CN={cn}"))
            .args(["-days", "30", "-sha256", "-out"])
            .arg(&pem)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&pem)
            .output()
            .unwrap();
        assert!(der.status.success());
        Cert {
            pem,
            der: der.stdout,
        }
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem);
    }
}

fn client_against_s_server<T: TrustStore<std::net::SocketAddr>>(
    ver: &str,
    files: &KeyFiles,
    cert: &Cert,
    suite: CipherSuite,
    name: &str,
    trust: T,
    how: &str,
) -> Result<(), String> {
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
            "-cert",
            cert.pem.to_str().unwrap(),
            "-key",
            files.key(),
            "-cipher",
            name,
            "-no_ticket",
            "-naccept",
            "1",
        ],
        format!("{ver} s_server, suite {name}, X.509 certificate, trusted by {how}"),
    );
    assert!(
        peer.wait_for("ACCEPT", Duration::from_secs(10)),
        "{}: never ready: {}",
        peer.what,
        peer.output()
    );
    let what = peer.what.clone();
    let client = Client::with_raw_public_key(
        config(&[suite]),
        None,
        trust,
        accept.parse().unwrap(),
        SimRng::new(seed()),
        Duration::ZERO,
    )
    .unwrap();
    let peer_ref = std::cell::RefCell::new(&mut peer);
    let r = drive_client(
        client,
        Some(b"hello from cssf\n"),
        || peer_ref.borrow_mut().write_stdin(b"hello from openssl\n"),
        |got| got.iter().any(|g| g.starts_with(b"hello from openssl")),
        Duration::from_secs(20),
    );
    let r = r.map_err(|e| {
        format!(
            "{what}: our client failed: {e}\npeer output:\n{}",
            peer.output()
        )
    })?;
    assert_eq!(r.suite, suite, "{what}");
    // The session names what the handshake proved: the certificate's key.
    assert_eq!(
        r.identity,
        Some(Identity::Certificate(files.public_key)),
        "{what}"
    );
    assert!(
        peer.wait_for("hello from cssf", Duration::from_secs(5)),
        "{what}: s_server never printed our data:\n{}",
        peer.output()
    );
    Ok(())
}

#[test]
fn our_client_against_openssl_s_server_with_a_certificate() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    let server_key = key(seed());
    let files = KeyFiles::write(&server_key, "s_server");
    let cert = Cert::self_signed(&files, "cssf test server");
    // Self-signed: the CA key is the server's own key.
    let ca = [p256::PublicKey::from(server_key.verifying_key())];
    let other = [p256::PublicKey::from(key(seed() ^ 5).verifying_key())];
    for (suite, name) in SUITES {
        client_against_s_server(
            &ver,
            &files,
            &cert,
            suite,
            name,
            CaSigned::new(&ca),
            "CA signature",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        client_against_s_server(
            &ver,
            &files,
            &cert,
            suite,
            name,
            PinnedKeys::new(&ca),
            "pinned key",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let (suite, name) = SUITES[0];
    for (trust, how) in [
        (CaSigned::new(&other), "another CA"),
        (CaSigned::new(&[]), "no CA"),
    ] {
        let e =
            client_against_s_server(&ver, &files, &cert, suite, name, trust, how).expect_err(how);
        assert!(e.contains("peer key not trusted"), "{how}: {e}");
    }
    let e = client_against_s_server(
        &ver,
        &files,
        &cert,
        suite,
        name,
        PinnedKeys::new(&other),
        "another pin",
    )
    .expect_err("another pin");
    assert!(e.contains("peer key not trusted"), "{e}");
}

#[test]
fn openssl_s_client_against_our_server_with_a_certificate() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    let server_key = key(seed());
    let files = KeyFiles::write(&server_key, "our-server");
    let cert = Cert::self_signed(&files, "cssf server");
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
                "-cipher",
                name,
                "-groups",
                "P-256",
                "-sigalgs",
                "ECDSA+SHA256",
                "-CAfile",
                cert.pem.to_str().unwrap(),
                "-verify_return_error",
            ],
            format!(
                "{ver} s_client, suite {name}, our X.509 certificate verified against it as CA"
            ),
        );
        peer.write_stdin(b"ping from openssl\n");
        let mut cfg = config(&[suite]);
        cfg.certificate = heapless::Vec::from_slice(&cert.der).unwrap();
        let server: Endpoint<_, _, _, 4, _> = Endpoint::with_raw_public_key(
            cfg,
            StaticPsk::new(&[]),
            server_key.clone(),
            PinnedKeys::new(&[]),
            SimRng::new(seed()),
            Duration::ZERO,
        )
        .unwrap();
        let r = drive_server(
            &sock,
            server,
            |m| Some([b"pong: ".as_slice(), m].concat()),
            |got| got.iter().any(|g| g.starts_with(b"ping from openssl")),
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
            peer.wait_for("pong: ping from openssl", Duration::from_secs(5)),
            "{}: s_client never printed our reply:\n{}",
            peer.what,
            peer.output()
        );
        assert!(
            peer.output().contains("Verify return code: 0 (ok)"),
            "{}: s_client did not verify our certificate:\n{}",
            peer.what,
            peer.output()
        );
    }
}
