//! libcoap 4.3 against our host tools: `coap-client-notls`,
//! `coap-client-openssl` and `coap-client-gnutls` (PSK) against
//! `cssf-server`, and `cssf-client` against `coap-server-openssl` (PSK).
//! libcoap's client exits 0 even when a request failed, so every check is
//! on what it printed.

mod host_common;

use std::process::{Command, Stdio};
use std::time::Duration;

use cssf_netsim::peer::require_binary;
use host_common::{large_body, run, start_libcoap_server, text_body, ServerProc, TempDir};

const INSTALL: &str = "apt-get install -y libcoap3-bin";
const ID: &str = "Client_identity";
const KEY: &str = "secretPSK";
/// `secretPSK` in hex, for our tools.
const KEY_HEX: &str = "73656372657450534b";
const LIMIT: Duration = Duration::from_secs(60);

/// Runs a libcoap client (with its own 10 s wait) within a bounded time.
fn libcoap(bin: &str, args: &[&str]) -> String {
    let mut a = vec!["-B", "10"];
    a.extend_from_slice(args);
    let r = run(bin, &a, LIMIT);
    format!("{}{}", r.stdout, r.stderr)
}

/// `coap-client-notls v4.3.1 ...`: `-h` makes every libcoap binary print
/// its usage (with the version) and exit, servers included.
fn libcoap_version(bin: &str) -> String {
    Command::new(bin)
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| l.contains(" v") && l.contains("CoAP"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown version".into())
}

fn psk_arg() -> String {
    format!("{ID}:{KEY_HEX}")
}

#[test]
fn libcoap_notls_client_against_cssf_server() {
    let bin = "coap-client-notls";
    if !require_binary(bin, INSTALL) {
        return;
    }
    let who = format!("{bin} ({})", libcoap_version(bin));
    let s = ServerProc::start(&[]);
    let out = libcoap(bin, &[&s.coap_uri(".well-known/core")]);
    assert!(out.contains("</sensors/temp>"), "{who}: discovery: {out}");
    let out = libcoap(bin, &[&s.coap_uri("time")]);
    assert!(out.trim_end().ends_with('Z'), "{who}: /time: {out}");
    let out = libcoap(
        bin,
        &["-m", "put", "-e", "on", &s.coap_uri("actuators/led")],
    );
    assert!(
        !out.contains("ERR") && !out.contains("4."),
        "{who}: PUT: {out}"
    );
    let out = libcoap(bin, &[&s.coap_uri("actuators/led")]);
    assert_eq!(out.trim(), "on", "{who}: LED after PUT");
    // Block2 with 64-byte blocks, and with the server's 1024-byte ones.
    for b in ["64", "1024"] {
        let out = libcoap(bin, &["-b", b, &s.coap_uri("large")]);
        assert_eq!(
            out.trim_end(),
            large_body().trim_end(),
            "{who}: /large with -b {b}"
        );
    }
    // Block1 upload to /echo (64-byte blocks); the answer is the body.
    let dir = TempDir::new("libcoap-echo");
    let f = dir.path("body.txt");
    let body = text_body(1500);
    std::fs::write(&f, &body).unwrap();
    let out = libcoap(
        bin,
        &[
            "-m",
            "post",
            "-b",
            "64",
            "-f",
            f.to_str().unwrap(),
            &s.coap_uri("echo"),
        ],
    );
    assert_eq!(out.trim_end(), body, "{who}: /echo Block1 upload");
    // Observe /time for 3 s: a notification per second.
    let out = libcoap(bin, &["-s", "3", &s.coap_uri("time")]);
    // libcoap prints the payloads back to back: one `Z` ends each time.
    let n = out.matches('Z').count();
    assert!(n >= 2, "{who}: observe gave {n} notifications: {out}");
    let log = s.log();
    assert!(log.contains("GET /time Observe 0"), "{who}: {log}");
    assert!(log.contains("POST /echo Block1 23/0/64"), "{who}: {log}");
}

fn dtls_client_against_cssf_server(bin: &str) {
    if !require_binary(bin, INSTALL) {
        return;
    }
    let who = format!("{bin} ({}), PSK", libcoap_version(bin));
    // The PSK session may do everything (a provisioned identity is
    // read-only unless given rights).
    let s = ServerProc::start(&["--psk", &format!("{}:*:ALL", psk_arg())]);
    let u = ["-u", ID, "-k", KEY];
    let out = libcoap(
        bin,
        &[&u[..], &[s.coaps_uri("sensors/temp").as_str()]].concat(),
    );
    let t: f64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{who}: /sensors/temp gave {out:?}\nserver:\n{}", s.log()));
    assert!((15.0..30.0).contains(&t), "{who}: {t}");
    let out = libcoap(
        bin,
        &[
            &u[..],
            &[
                "-m",
                "put",
                "-e",
                "on",
                s.coaps_uri("actuators/led").as_str(),
            ],
        ]
        .concat(),
    );
    assert!(!out.contains("ERR"), "{who}: PUT: {out}");
    let out = libcoap(
        bin,
        &[&u[..], &[s.coaps_uri("actuators/led").as_str()]].concat(),
    );
    assert_eq!(out.trim(), "on", "{who}: LED");
    let out = libcoap(
        bin,
        &[&u[..], &["-b", "256", s.coaps_uri("large").as_str()]].concat(),
    );
    assert_eq!(out.trim_end(), large_body().trim_end(), "{who}: /large");
    // A wrong key: no answer, and the server logs the failed handshake.
    let out = libcoap(bin, &["-u", ID, "-k", "wrongPSK", &s.coaps_uri("time")]);
    assert!(
        !out.trim_end().ends_with('Z'),
        "{who}: wrong key got an answer: {out}"
    );
    let log = s.log();
    assert!(log.contains("psk \"Client_identity\""), "{who}: {log}");
}

#[test]
fn libcoap_openssl_client_against_cssf_server() {
    dtls_client_against_cssf_server("coap-client-openssl");
}

#[test]
fn libcoap_gnutls_client_against_cssf_server() {
    dtls_client_against_cssf_server("coap-client-gnutls");
}

#[test]
fn cssf_client_against_libcoap_openssl_server() {
    let bin = "coap-server-openssl";
    if !require_binary(bin, INSTALL) {
        return;
    }
    let who = format!("{bin} ({}), PSK", libcoap_version(bin));
    let (_guard, port) = start_libcoap_server(bin, KEY);
    let client = |args: &[&str]| {
        let mut a = vec!["--timeout", "10"];
        a.extend_from_slice(args);
        run("cssf-client", &a, LIMIT)
    };
    let coaps = format!("coaps://127.0.0.1:{}/", port + 1);
    let r = client(&["--psk", &psk_arg(), &format!("{coaps}time")]);
    assert_eq!(r.code, Some(0), "{who}: {r:?}");
    assert!(r.stdout.starts_with("2.05 Content"), "{who}: {}", r.stdout);
    let r = client(&["--psk", &psk_arg(), &format!("{coaps}.well-known/core")]);
    assert!(
        r.stdout.starts_with("2.05") && r.stdout.contains("</time>"),
        "{who}: {}",
        r.stdout
    );
    // Block1 upload and Block2 download of libcoap's /example_data.
    let body = text_body(2500);
    let r = client(&[
        "--psk",
        &psk_arg(),
        "-m",
        "put",
        "--payload",
        &body,
        &format!("{coaps}example_data"),
    ]);
    assert!(r.stdout.starts_with("2.0"), "{who}: PUT: {r:?}");
    let r = client(&["--psk", &psk_arg(), "-q", &format!("{coaps}example_data")]);
    assert_eq!(r.stdout.trim_end(), body, "{who}: GET after PUT");
    let r = client(&["--observe", "2", &format!("coap://127.0.0.1:{port}/time")]);
    assert_eq!(
        r.stdout.matches("Observe: ").count(),
        2,
        "{who}: observe: {r:?}"
    );
    // A wrong key: the handshake fails with a one-line error.
    let r = client(&["--psk", &format!("{ID}:00"), &format!("{coaps}time")]);
    assert_eq!(r.code, Some(1), "{who}: wrong key: {r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{who}: {r:?}");
}
