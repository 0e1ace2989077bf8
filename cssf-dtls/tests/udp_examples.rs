//! The `udp_server` and `udp_client` examples, run as the programs a user
//! runs: against each other on loopback, and the client against OpenSSL's
//! `s_server`.
//!
//! `cargo test` builds the examples (into `target/<profile>/examples/`,
//! beside the directory of this test's binary) unless a target filter is
//! given: with `--test udp_examples` alone, build them first with
//! `cargo build -p cssf-dtls --examples`. A missing or stale example
//! binary fails the test rather than skipping it.
//!
//! Nothing here depends on timing: each step waits for what the programs
//! print, and the timeouts only stop a run that hangs.
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;

use cssf_netsim::peer::{free_udp_port, require_binary, version, Proc};

fn example(name: &str) -> PathBuf {
    cssf_netsim::peer::example(env!("CARGO_MANIFEST_DIR"), name)
}

#[test]
fn udp_client_example_against_udp_server_example() {
    let (server_bin, client_bin) = (example("udp_server"), example("udp_client"));
    // Port 0: the server prints the port the system gave it.
    let mut server = Proc::spawn(&server_bin, &["127.0.0.1:0", "--once"], "udp_server");
    let listening = server.wait_line("listening on ");
    let addr = listening.trim_start_matches("listening on ").trim();

    let client = Proc::spawn(&client_bin, &[addr, "hello, examples"], "udp_client");
    let (status, out) = client.finish();
    assert!(status.success(), "udp_client failed ({status}):\n{out}");
    assert!(out.contains("connected (PskWithAes128Ccm8)"), "{out}");
    assert!(out.contains(r#"received "hello, examples""#), "{out}");
    assert!(out.contains("closed: closed"), "{out}");

    // The server ends on its own (`--once`) after the client's close_notify.
    let (status, out) = server.finish();
    assert!(status.success(), "udp_server failed ({status}):\n{out}");
    assert!(
        out.contains(r#"identity: Some(Psk("Client_identity"))"#),
        "{out}"
    );
    assert!(out.contains(r#"#1: "hello, examples""#), "{out}");
    assert!(out.contains("#1: closed: closed by the peer"), "{out}");
}

#[test]
fn udp_client_example_against_openssl_s_server() {
    if !require_binary("openssl", "apt-get install -y openssl") {
        return;
    }
    let client_bin = example("udp_client");
    let what = format!("{} s_server", version("openssl", &["version"]));
    let accept = format!("127.0.0.1:{}", free_udp_port());
    // The example's PSK, "secretPSK", in hex.
    let psk: String = b"secretPSK".iter().map(|b| format!("{b:02x}")).collect();
    #[rustfmt::skip]
    let args = [
        "s_server", "-dtls1_2", "-accept", &accept, "-listen", "-nocert",
        "-psk", &psk, "-psk_identity", "Client_identity", "-cipher", "PSK-AES128-CCM8",
        "-no_ticket", "-naccept", "1",
    ];
    let mut peer = Proc::spawn(&PathBuf::from("openssl"), &args, &what);
    peer.wait_line("ACCEPT");

    // s_server prints what it receives (read here by lines: end with one)
    // and sends what it reads on stdin.
    let message = "hello from udp_client\n";
    let client = Proc::spawn(&client_bin, &[&accept, message], "udp_client");
    peer.wait_line("hello from udp_client");
    peer.write_stdin(b"hello from openssl\n");
    let (status, out) = client.finish();
    assert!(status.success(), "udp_client failed ({status}):\n{out}");
    assert!(out.contains("connected (PskWithAes128Ccm8)"), "{out}");
    assert!(out.contains(r#"received "hello from openssl\n""#), "{out}");
    assert!(out.contains("closed: closed"), "{out}");
    // s_server warns when the identity is not the one it expects.
    assert!(
        !peer.lines().iter().any(|l| l.contains("PSK warning")),
        "{what}:\n{}",
        peer.lines().join("\n")
    );
}

/// The README opens with `examples/udp_client.rs`, in full: the copy is
/// the file.
#[test]
fn readme_shows_the_client_example() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let client = std::fs::read_to_string(dir.join("examples/udp_client.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{client}```\n")),
        "README.md must show examples/udp_client.rs verbatim: copy the file into its first code block"
    );
}
