//! Review 16 (attacker's review of the review-15 fixes in `cssf-server`):
//! findings against the real server over loopback, one test each. Each
//! test asserts the behaviour the fix promises; a failing test is a
//! finding.
//!
//! - the public-rights default is still "everything" for a device whose
//!   only access control is its oneM2M policies (`--acp`): the shipped
//!   example policy restricts nobody, plain CoAP switches the LED.

mod host_common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use host_common::ServerProc;

/// A CON request: `code` (0.0x), message ID, Uri-Path segments, payload.
fn coap(code: u8, mid: u16, path: &[&str], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x41, code, (mid >> 8) as u8, mid as u8, 0x5C];
    let mut last = 0u8;
    for value in path {
        assert!(value.len() < 13);
        m.push(((11 - last) << 4) | value.len() as u8);
        m.extend_from_slice(value.as_bytes());
        last = 11;
    }
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// `class.detail` of a CoAP response.
fn code(m: &[u8]) -> String {
    format!("{}.{:02}", m[1] >> 5, m[1] & 0x1F)
}

/// A plain CoAP exchange with the server: the response code.
fn plain(s: &ServerProc, msg: &[u8]) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        sock.send_to(msg, ("127.0.0.1", s.coap)).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return code(&buf[..n]);
        }
    }
    panic!("no answer on plain CoAP\n{}", s.log());
}

/// Severity: medium (fail-open default; sibling of review 15's
/// `provisioned_rights_are_not_void_without_an_as_key`, which e9de612
/// fixed for `--psk` and `--trust` only). `Server::new` defaults the
/// public rights to everything unless an AS key, a PSK or a trusted key
/// is configured; `--acp FILE` (and `--key` with `--require-client-key`)
/// does not count. The README: "everything only when nothing at all is
/// configured (a development device)". Policies "add to the rights
/// above" (permit-overrides), so with everything public they restrict
/// nothing: with the shipped `examples/acp/example.json` (actuators: only
/// `Csensor*` may retrieve, only an authenticated `Cadmin` may update)
/// any plain CoAP client, no originator at all, switches the LED.
#[test]
fn onem2m_policies_alone_are_not_void() {
    let acp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("acp/example.json");
    let s = ServerProc::start(&["--acp", acp.to_str().unwrap()]);
    let c = plain(&s, &coap(3, 0x500, &["actuators", "led"], b"on"));
    assert_ne!(
        c,
        "2.04",
        "a device whose access control is its oneM2M policies let anonymous plain CoAP switch \
         the LED\n{}",
        s.log()
    );
}
