//! Raw public keys (RFC 7250) through the real binaries: `cssf-client`
//! against `cssf-server` with `--key`/`--trust`, refusals of untrusted keys
//! on both sides, PSK clients beside RPK ones, and libcoap's GnuTLS build
//! (the one with raw public keys) against `cssf-server`.

mod host_common;

use std::path::PathBuf;
use std::time::Duration;

use cssf_netsim::peer::require_binary;
use host_common::{assert_one_line_error, large_body, run, ServerProc, TempDir};

const LIMIT: Duration = Duration::from_secs(60);
const PSK: &str = "dev-1:00112233445566778899aabbccddeeff";

struct Keys {
    _dir: TempDir,
    device: (String, String),
    client: (String, String),
    other: (String, String),
}

fn keys() -> Keys {
    let dir = TempDir::new("rpk");
    let pair = |name: &str| {
        let (sk, pk): (PathBuf, PathBuf) = (
            dir.path(&format!("{name}.pem")),
            dir.path(&format!("{name}.pub.pem")),
        );
        let (sk, pk) = (
            sk.to_str().unwrap().to_string(),
            pk.to_str().unwrap().to_string(),
        );
        run(
            "cssf-token",
            &["genkey", "--out", &sk, "--public", &pk],
            LIMIT,
        )
        .ok("genkey");
        (sk, pk)
    };
    let (device, client, other) = (pair("device"), pair("client"), pair("other"));
    Keys {
        _dir: dir,
        device,
        client,
        other,
    }
}

fn client(args: &[&str]) -> host_common::Run {
    let mut a = vec!["--timeout", "10"];
    a.extend_from_slice(args);
    run("cssf-client", &a, LIMIT)
}

#[test]
fn cssf_client_against_cssf_server_with_raw_public_keys() {
    let k = keys();
    let trust = format!("{}:*:ALL", k.client.1);
    let s = ServerProc::start(&["--key", &k.device.0, "--trust", &trust, "--psk", PSK]);
    let rpk = ["--key", k.client.0.as_str(), "--trust", k.device.1.as_str()];
    let with = |extra: &[&str], path: &str| {
        client(&[&rpk[..], extra, &[s.coaps_uri(path).as_str()]].concat()).ok("rpk client")
    };
    let out = with(&[], "sensors/temp").stdout;
    assert!(out.starts_with("2.05 Content"), "{out}");
    let out = with(&["-m", "put", "--payload", "on"], "actuators/led").stdout;
    assert!(out.starts_with("2.04 Changed"), "{out}");
    assert_eq!(with(&["-q"], "actuators/led").stdout.trim(), "on");
    assert_eq!(with(&["-q"], "large").stdout, format!("{}\n", large_body()));
    let out = with(&["--observe", "2"], "time").stdout;
    assert_eq!(out.matches("Observe: ").count(), 2, "{out}");
    // PSK clients still work beside raw public keys.
    let out = client(&["--psk", PSK, &s.coaps_uri("time")])
        .ok("psk client")
        .stdout;
    assert!(out.starts_with("2.05"), "{out}");
    // A client key the device does not trust, and a device key the client
    // does not trust: the handshake fails, one line, non-zero.
    let r = client(&[
        "--key",
        &k.other.0,
        "--trust",
        &k.device.1,
        &s.coaps_uri("time"),
    ]);
    assert_one_line_error(&r, "DTLS", "untrusted client key");
    let r = client(&[
        "--key",
        &k.client.0,
        "--trust",
        &k.other.1,
        &s.coaps_uri("time"),
    ]);
    assert_one_line_error(&r, "not trusted", "untrusted device key");
    let log = s.log();
    assert!(log.contains("raw public key"), "{log}");
    assert!(log.contains("connected, EcdheEcdsa"), "{log}");
    assert!(log.contains("not trusted"), "{log}");
}

#[test]
fn raw_public_key_option_errors() {
    let k = keys();
    let r = run("cssf-server", &["--trust", &k.client.1], LIMIT);
    assert_one_line_error(&r, "--trust needs --key", "server --trust alone");
    let r = run(
        "cssf-client",
        &["--key", &k.client.0, "coaps://127.0.0.1/x"],
        LIMIT,
    );
    assert_one_line_error(&r, "--key needs --trust", "client --key alone");
    let r = run("cssf-server", &["--key", &k.client.1], LIMIT);
    assert_one_line_error(&r, "is not a P-256 private key", "public key as --key");
}

#[test]
fn libcoap_gnutls_client_with_raw_public_key_against_cssf_server() {
    let bin = "coap-client-gnutls";
    if !require_binary(bin, "apt-get install -y libcoap3-bin") {
        return;
    }
    let k = keys();
    // GnuTLS reads SEC1 `EC PRIVATE KEY` files; the device is given the
    // same file to trust (it takes the public half).
    let sec1 = k._dir.path("libcoap.pem");
    let sec1 = sec1.to_str().unwrap();
    run("cssf-token", &["genkey", "--sec1", "--out", sec1], LIMIT).ok("genkey --sec1");
    // libcoap's client sends the public key of its -M private key.
    let s = ServerProc::start(&["--key", &k.device.0, "--trust", sec1]);
    let r = run(
        bin,
        &["-B", "10", "-M", sec1, &s.coaps_uri("sensors/temp")],
        LIMIT,
    );
    let out = format!("{}{}", r.stdout, r.stderr);
    let t: Result<f64, _> = out.trim().parse();
    assert!(
        t.is_ok_and(|t| (15.0..30.0).contains(&t)),
        "{bin} with a raw public key got {out:?}\ndevice log:\n{}",
        s.log()
    );
    assert!(s.log().contains("raw public key"), "{}", s.log());
}

#[test]
fn cssf_client_with_raw_public_key_against_libcoap_gnutls_server() {
    let bin = "coap-server-gnutls";
    if !require_binary(bin, "apt-get install -y libcoap3-bin") {
        return;
    }
    let k = keys();
    let sec1 = k._dir.path("server.pem");
    let sec1 = sec1.to_str().unwrap();
    run("cssf-token", &["genkey", "--sec1", "--out", sec1], LIMIT).ok("genkey --sec1");
    let port = cssf_netsim::peer::free_udp_port_pair();
    let child = std::process::Command::new(bin)
        .args(["-A", "127.0.0.1", "-p", &port.to_string(), "-M", sec1])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = cssf_netsim::peer::ChildGuard(child);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
        assert!(std::time::Instant::now() < end, "{bin} did not bind");
        std::thread::sleep(Duration::from_millis(20));
    }
    let uri = format!("coaps://127.0.0.1:{}/time", port + 1);
    // Pinning the server's key (read from its private key file).
    let r = client(&["--key", &k.client.0, "--trust", sec1, &uri]);
    assert_eq!(r.code, Some(0), "{bin} with raw public keys: {r:?}");
    assert!(r.stdout.starts_with("2.05 Content"), "{bin}: {}", r.stdout);
    // Another pinned key: refused.
    let r = client(&["--trust", &k.other.1, &uri]);
    assert_one_line_error(&r, "not trusted", "libcoap server key not pinned");
}
