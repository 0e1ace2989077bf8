//! `cssf-load` works (a smoke run, not a speed test): 50 concurrent PSK
//! sessions against libcoap's `coap-server-openssl` and against
//! `cssf-server --max-sessions 64 --relaxed-dedup`, each getting 2.05 answers, with the
//! server's CPU time and memory read; a wrong key fails the run, and so
//! do more sessions than the server holds.

mod host_common;

use std::time::Duration;

use cssf_netsim::peer::require_binary;
use host_common::{run, start_libcoap_server, Run, ServerProc};

const LIMIT: Duration = Duration::from_secs(90);
const KEY: &str = "secretPSK";
/// `secretPSK` in hex.
const KEY_HEX: &str = "73656372657450534b";

/// The value of `key` in the `RESULT` line.
fn result(r: &Run, key: &str) -> String {
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{}{}", r.stdout, r.stderr));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .to_string()
}

fn load(uri: &str, sessions: usize, at_once: usize, pid: u32, key: &str) -> Run {
    let (n, k, p) = (sessions.to_string(), at_once.to_string(), pid.to_string());
    run(
        "cssf-load",
        &[
            uri,
            "-u",
            "Client_identity",
            "-k",
            key,
            "-c",
            &n,
            "--handshakes-at-once",
            &k,
            "-d",
            "2",
            "-r",
            "20",
            "--server-pid",
            &p,
            "--require-sessions",
            &n,
        ],
        LIMIT,
    )
}

fn check(r: &Run, sessions: usize) {
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert_eq!(result(r, "handshakes_ok"), sessions.to_string());
    assert_eq!(result(r, "requests_failed"), "0");
    assert_eq!(result(r, "requests_refused"), "0");
    let ok: usize = result(r, "requests_ok").parse().unwrap();
    // 20 a second per session for 2 s: most of 40 each
    assert!(ok >= sessions * 20, "{ok} requests answered\n{}", r.stdout);
    assert!(r.stdout.contains("server: CPU"), "{}", r.stdout);
    assert!(r.stdout.contains("resident memory"), "{}", r.stdout);
}

#[test]
fn fifty_sessions_against_libcoap() {
    let bin = "coap-server-openssl";
    if !require_binary(bin, "apt-get install -y libcoap3-bin") {
        return;
    }
    let (guard, port) = start_libcoap_server(bin, KEY);
    let uri = format!("coaps://127.0.0.1:{}/time", port + 1);
    let r = load(&uri, 50, 4, guard.0.id(), KEY);
    check(&r, 50);
    // The same with a wrong key: no session, exit 1.
    let r = load(&uri, 2, 2, guard.0.id(), "wrongPSK");
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert_eq!(result(&r, "handshakes_ok"), "0");
}

#[test]
fn fifty_sessions_against_cssf_server() {
    let psk = format!("Client_identity:{KEY_HEX}");
    let server = ServerProc::start(&[
        "--psk",
        &psk,
        "--max-sessions",
        "64",
        "--relaxed-dedup",
        "-q",
    ]);
    let r = load(&server.coaps_uri("time"), 50, 4, server.pid(), KEY);
    check(&r, 50);
    // Its default size, a device's 8 sessions: the others' handshakes fail.
    let device = ServerProc::start(&["--psk", &psk, "-q"]);
    let r = load(&device.coaps_uri("time"), 12, 12, device.pid(), KEY);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let ok: usize = result(&r, "handshakes_ok").parse().unwrap();
    assert!(
        ok <= 8,
        "{ok} sessions held by an 8-session server\n{}",
        r.stdout
    );
}
