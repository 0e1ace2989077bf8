//! The crate's examples run as a user runs them: `server` answering
//! libcoap's `coap-client-notls`, `coaps_client` against libcoap's
//! `coap-server-openssl` (PSK). `cargo test` builds the examples first
//! (with a target filter, build them with `cargo build -p cssf-coap
//! --examples`). Each step waits for output; timeouts only stop a hang.
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cssf_netsim::peer::{free_udp_port_pair, require_binary, Proc};

fn example(name: &str) -> PathBuf {
    cssf_netsim::peer::example(env!("CARGO_MANIFEST_DIR"), name)
}

/// Runs libcoap's client and returns what it printed (the payload).
fn coap_client(args: &[&str]) -> String {
    let out = Command::new("coap-client-notls")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "coap-client-notls {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn server_example_answers_libcoap() {
    if !require_binary("coap-client-notls", "apt-get install libcoap3-bin") {
        return;
    }
    let mut server = Proc::spawn(
        &example("server"),
        &["127.0.0.1:0", "--requests", "4"],
        "server",
    );
    let addr = server
        .wait_line("listening on ")
        .trim_start_matches("listening on ")
        .trim()
        .to_string();
    let uri = |p: &str| format!("coap://{addr}/{p}");
    assert_eq!(
        coap_client(&["-m", "get", &uri("hello")]).trim(),
        "hello, world"
    );
    assert_eq!(coap_client(&["-m", "post", &uri("counter")]).trim(), "1");
    assert_eq!(coap_client(&["-m", "post", &uri("counter")]).trim(), "2");
    // The endpoint's own answer (not counted as one of the four):
    // discovery lists both resources.
    let wk = coap_client(&["-m", "get", &uri(".well-known/core")]);
    assert!(
        wk.contains("</hello>;rt=\"greeting\"") && wk.contains("</counter>"),
        "{wk}"
    );
    assert_eq!(coap_client(&["-m", "get", &uri("counter")]).trim(), "2");
    // Four requests answered by the application: the server exits 0.
    let (status, out) = server.finish();
    assert!(status.success(), "server failed ({status}):\n{out}");
    assert!(out.contains("0.02 counter -> 2.04 2"), "{out}");
}

#[test]
fn coaps_client_example_against_libcoap_server() {
    if !require_binary("coap-server-openssl", "apt-get install libcoap3-bin") {
        return;
    }
    let port = free_udp_port_pair();
    let (coap, coaps) = (port.to_string(), format!("127.0.0.1:{}", port + 1));
    let _peer = Proc::spawn(
        Path::new("coap-server-openssl"),
        &["-A", "127.0.0.1", "-p", &coap, "-k", "secretPSK", "-v", "6"],
        "coap-server-openssl",
    );
    // Give it time to bind: the client retransmits its ClientHello anyway.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let client = Proc::spawn(&example("coaps_client"), &[&coaps, "time"], "coaps_client");
    let (status, out) = client.finish();
    assert!(status.success(), "coaps_client failed ({status}):\n{out}");
    assert!(
        out.contains("connected (PskWithAes128Ccm8), GET /time"),
        "{out}"
    );
    assert!(out.contains("2.05 "), "{out}");
    assert!(out.contains("closed: closed"), "{out}");
}
