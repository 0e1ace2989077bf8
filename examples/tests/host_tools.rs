//! The real binaries on loopback: the demo, `cssf-client` against
//! `cssf-server` for every resource (PSK, tokens, plain CoAP), the token
//! tool, the store across a restart, and the bad-input cases.

mod host_common;

use std::time::{Duration, Instant};

use host_common::{
    assert_one_line_error, assert_usage_error, large_body, run, text_body, ServerProc, TempDir,
};

const LIMIT: Duration = Duration::from_secs(60);
const PSK: &str = "dev-1:00112233445566778899aabbccddeeff";
const HMAC: &str = "0101010101010101010101010101010101010101010101010101010101010101";

fn client(args: &[&str]) -> host_common::Run {
    let mut a = vec!["--timeout", "10"];
    a.extend_from_slice(args);
    run("cssf-client", &a, LIMIT)
}

#[test]
fn demo_exits_zero_and_prints_each_step() {
    // `run` fails the test if the demo does not finish within LIMIT.
    let r = run("cssf-demo", &[], LIMIT).ok("cssf-demo");
    let out = &r.stdout;
    for n in 1..=11 {
        assert!(out.contains(&format!("[{n}] ")), "step {n} missing:\n{out}");
    }
    for want in [
        "4.01 Unauthorized",
        "Creation Hints (RFC 9200 5.3): {AS: \"coaps://as.example/token\", audience: \"rs1\"}",
        "POST /authz-info",
        "2.01 Created",
        "accounting: token accepted",
        "connected, PskWithAes128Ccm8",
        "client <- 2.05 Content",
        "client <- 2.04 Changed \"on\"",
        "4.03 Forbidden",
        "accounting: denied GET /large",
        "notification 3 (Observe",
        "wire: ",
        "round trip",
        "dtls 127.0.0.1",
        "replay window synchronised by an Echo exchange",
        "[OSCORE kid ] GET /sensors/temp (0 bytes) -> 2.05 Content",
        "[OSCORE kid ] PUT /actuators/led (3 bytes) -> 2.04 Changed",
        "[OSCORE kid ] GET /large (0 bytes) -> 4.03 Forbidden",
        "GET /sensors/temp on the wire: OSCORE ",
        "done in",
    ] {
        assert!(out.contains(want), "demo output lacks {want:?}:\n{out}");
    }
}

/// Every resource through `cssf-client`, over `uri` with `creds`.
fn every_resource(s: &ServerProc, secure: bool, creds: &[&str], what: &str) {
    let uri = |p: &str| {
        if secure {
            s.coaps_uri(p)
        } else {
            s.coap_uri(p)
        }
    };
    let with = |extra: &[&str], u: String| {
        let mut a: Vec<&str> = creds.to_vec();
        a.extend_from_slice(extra);
        let r = client(&[a.as_slice(), &[u.as_str()]].concat()).ok(what);
        r.stdout
    };
    let out = with(&[], uri(".well-known/core"));
    assert!(out.starts_with("2.05 Content"), "{what}: {out}");
    for link in [
        "</time>",
        "</sensors/temp>",
        "</actuators/led>",
        "</large>",
        "</echo>",
    ] {
        assert!(out.contains(link), "{what}: discovery lacks {link}: {out}");
    }
    let out = with(&[], uri("time"));
    assert!(out.starts_with("2.05 Content"), "{what}: {out}");
    assert!(
        out.contains("T") && out.trim_end().ends_with('Z'),
        "{what}: {out}"
    );
    let out = with(&["-q"], uri("sensors/temp"));
    let t: f64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {out}"));
    assert!((15.0..30.0).contains(&t), "{what}: temperature {t}");
    let out = with(&["-m", "put", "--payload", "on"], uri("actuators/led"));
    assert!(out.starts_with("2.04 Changed"), "{what}: {out}");
    assert_eq!(with(&["-q"], uri("actuators/led")).trim(), "on", "{what}");
    let out = with(&["-m", "put", "--payload", "off"], uri("actuators/led"));
    assert!(out.starts_with("2.04 Changed"), "{what}: {out}");
    assert_eq!(with(&["-q"], uri("actuators/led")).trim(), "off", "{what}");
    let out = with(&["-m", "put", "--payload", "blink"], uri("actuators/led"));
    assert!(out.starts_with("4.00 Bad Request"), "{what}: {out}");
    // Block2: 4096 bytes in 1024-byte blocks.
    let out = with(&["-q"], uri("large"));
    assert_eq!(out, format!("{}\n", large_body()), "{what}: /large differs");
    let out = with(&[], uri("large"));
    assert!(out.contains("Block2: 3/0/1024"), "{what}: {out}");
    // Block1 up and Block2 down through /echo.
    let dir = TempDir::new("echo");
    let body = text_body(3000);
    let f = dir.path("body.txt");
    std::fs::write(&f, &body).unwrap();
    let out = with(
        &["-q", "-m", "post", "--payload-file", f.to_str().unwrap()],
        uri("echo"),
    );
    assert_eq!(
        out,
        format!("{body}\n"),
        "{what}: /echo of 3000 bytes differs"
    );
    let out = with(&["-q", "-m", "post", "--payload", "ping"], uri("echo"));
    assert_eq!(out, "ping\n", "{what}");
    // Observe: three notifications of /time, then of /sensors/temp's first.
    let out = with(&["--observe", "3"], uri("time"));
    assert_eq!(out.matches("2.05 Content").count(), 3, "{what}: {out}");
    assert_eq!(out.matches("Observe: ").count(), 3, "{what}: {out}");
    let out = with(&["--observe", "1"], uri("sensors/temp"));
    assert!(out.contains("Observe: "), "{what}: {out}");
    // Unknown resource and wrong method.
    assert!(with(&[], uri("nothing")).starts_with("4.04"), "{what}");
    assert!(
        with(&["-m", "delete"], uri("time")).starts_with("4.05"),
        "{what}"
    );
}

#[test]
fn client_against_server_with_psk_and_plain() {
    // Rights: the PSK identity may do everything, and so may plain CoAP
    // (with a provisioned identity, the public rights are none by default).
    let all = format!("{PSK}:*:ALL");
    let s = ServerProc::start(&["--psk", &all, "--public", "*:ALL"]);
    every_resource(&s, true, &["--psk", PSK], "coaps with PSK");
    every_resource(&s, false, &[], "plain coap without ACE");
    // A wrong key fails the handshake: one line, non-zero.
    let r = client(&["--psk", "dev-1:00", &s.coaps_uri("time")]);
    assert_one_line_error(&r, "DTLS", "wrong PSK");
    let log = s.log();
    assert!(
        log.contains("connected, PskWithAes128Ccm8, psk \"dev-1\""),
        "{log}"
    );
    assert!(log.contains("GET /large Block2 3/0/1024"), "{log}");
    // Exchanges the CoAP endpoint answers itself are logged too.
    assert!(
        log.contains("GET /.well-known/core -> 2.05 Content"),
        "{log}"
    );
    assert!(log.contains("GET /nothing -> 4.04 Not Found"), "{log}");
    assert!(log.contains("DELETE /time -> 4.05"), "{log}");
    assert!(log.contains("POST /echo Block1 1/1/1024"), "{log}");
}

#[test]
fn verbose_flags_log_the_dtls_and_token_steps() {
    let all = format!("{PSK}:*:ALL");
    let s = ServerProc::start(&["--psk", &all, "--as-hmac-key", HMAC, "-vv"]);
    let r = client(&["-vv", "--psk", PSK, &s.coaps_uri("time")]).ok("cssf-client -vv");
    for want in [
        "DEBUG cssf_dtls::handshake: HelloVerifyRequest (message_seq 0) received",
        "DEBUG cssf_dtls::handshake: ServerHello (message_seq 1) received",
        "INFO  cssf_dtls::client: client connected: PskWithAes128Ccm8",
    ] {
        assert!(
            r.stderr.contains(want),
            "client: {want:?} missing:\n{}",
            r.stderr
        );
    }
    // A wrong key: the failure and its alert (debug: a peer can cause it).
    let r = client(&["-vv", "--psk", "dev-1:00", &s.coaps_uri("time")]);
    assert!(
        r.stderr
            .contains("DEBUG cssf_dtls::handshake: Client handshake failed: AlertReceived("),
        "client -vv, wrong key:\n{}",
        r.stderr
    );
    // A token that is not one: rejected, with the reason.
    let dir = TempDir::new("verbose");
    let bad = dir.path("bad.cwt");
    std::fs::write(&bad, [0xd2, 0x84, 0x40]).unwrap();
    let tok = bad.to_str().unwrap();
    let _ = client(&["--token", tok, &s.coaps_uri("time")]);
    let want = [
        "DEBUG cssf_dtls::endpoint: ClientHello without a valid cookie",
        "INFO  cssf_dtls::endpoint: server session 1 connected: PskWithAes128Ccm8",
        "DEBUG cssf_dtls::handshake: Server handshake failed: BadRecordMac",
        "DEBUG cssf_auth::authz_info: token rejected: ",
    ];
    let end = Instant::now() + Duration::from_secs(10);
    let mut err = s.stderr();
    while !want.iter().all(|w| err.contains(w)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        err = s.stderr();
    }
    for w in want {
        assert!(err.contains(w), "server -vv: {w:?} missing:\n{err}");
    }
    // Nothing at warn: every failure here was the peers' doing.
    assert!(!err.contains("WARN"), "{err}");
    // Without -v, nothing of the crates' log on stderr.
    let r = client(&["--psk", PSK, &s.coaps_uri("time")]).ok("cssf-client");
    assert!(!r.stderr.contains("cssf_dtls"), "{}", r.stderr);
}

#[test]
fn client_with_tokens_es256_and_hmac() {
    let dir = TempDir::new("tokens");
    let (sk, pk, tok, tok2) = (
        dir.path("as.pem"),
        dir.path("as.pub.pem"),
        dir.path("token.cbor"),
        dir.path("token-hmac.cbor"),
    );
    let p = |x: &std::path::PathBuf| x.to_str().unwrap().to_string();
    run(
        "cssf-token",
        &["genkey", "--out", &p(&sk), "--public", &p(&pk)],
        LIMIT,
    )
    .ok("genkey");
    let scope = "/sensors/temp:GET /actuators/led:GET,PUT /time:GET";
    let minted = run(
        "cssf-token",
        &[
            "mint",
            "--as-key",
            &p(&sk),
            "--aud",
            "rs1",
            "--scope",
            scope,
            "--expires-in",
            "3600s",
            "--kid",
            "c1",
            "--out",
            &p(&tok),
        ],
        LIMIT,
    )
    .ok("mint");
    assert!(
        minted.stdout.contains("kid (psk_identity): \"c1\""),
        "{}",
        minted.stdout
    );
    assert!(
        minted.stdout.contains("PoP key (PSK):"),
        "{}",
        minted.stdout
    );
    let ins = run(
        "cssf-token",
        &["inspect", "--as-public-key", &p(&pk), &p(&tok)],
        LIMIT,
    )
    .ok("inspect");
    assert!(ins.stdout.contains("claims (verified)"), "{}", ins.stdout);
    assert!(
        ins.stdout.contains("/actuators/led GET,PUT"),
        "{}",
        ins.stdout
    );
    let ins = run("cssf-token", &["inspect", &p(&tok)], LIMIT).ok("inspect");
    assert!(ins.stdout.contains("NOT verified"), "{}", ins.stdout);
    run(
        "cssf-token",
        &[
            "mint",
            "--as-hmac-key",
            HMAC,
            "--scope",
            "/sensors/temp:GET",
            "--kid",
            "c2",
            "--out",
            &p(&tok2),
        ],
        LIMIT,
    )
    .ok("mint hmac");
    let bad = run(
        "cssf-token",
        &["inspect", "--as-public-key", &p(&pk), &p(&tok2)],
        LIMIT,
    );
    assert_one_line_error(&bad, "verification failed", "inspect with the wrong key");

    let s = ServerProc::start(&["--as-public-key", &p(&pk), "--as-hmac-key", HMAC]);
    // Plain CoAP without a token: 4.01 with AS Request Creation Hints.
    let out = client(&[&s.coap_uri("sensors/temp")]).ok("plain").stdout;
    assert!(out.starts_with("4.01 Unauthorized"), "{out}");
    assert!(out.contains("application/ace+cbor"), "{out}");
    // ES256 token: in scope, out of scope.
    let t = p(&tok);
    let ok = |args: &[&str]| client(&[&["--token", t.as_str()][..], args].concat()).ok("token");
    assert!(ok(&[&s.coaps_uri("sensors/temp")])
        .stdout
        .starts_with("2.05"));
    assert!(ok(&[
        "-m",
        "put",
        "--payload",
        "on",
        &s.coaps_uri("actuators/led")
    ])
    .stdout
    .starts_with("2.04 Changed"));
    assert_eq!(
        ok(&["-q", &s.coaps_uri("actuators/led")]).stdout.trim(),
        "on"
    );
    assert!(ok(&[&s.coaps_uri("large")])
        .stdout
        .starts_with("4.03 Forbidden"));
    assert!(ok(&["-m", "post", "--payload", "x", &s.coaps_uri("echo")])
        .stdout
        .starts_with("4.03 Forbidden"));
    let out = ok(&["--observe", "2", &s.coaps_uri("time")]).stdout;
    assert_eq!(out.matches("Observe: ").count(), 2, "{out}");
    // HMAC token: its own, smaller scope.
    let t2 = p(&tok2);
    let r = client(&["--token", &t2, &s.coaps_uri("sensors/temp")]).ok("hmac token");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    let r = client(&["--token", &t2, &s.coaps_uri("actuators/led")]).ok("hmac token");
    assert!(r.stdout.starts_with("4.03"), "{}", r.stdout);
    let log = s.log();
    for want in [
        "accounting: token accepted, kid \"c1\"",
        "accounting: token accepted, kid \"c2\"",
        "accounting: allowed GET /sensors/temp for kid \"c1\"",
        "accounting: denied GET /large for kid \"c1\"",
        "token kid \"c1\"",
    ] {
        assert!(log.contains(want), "server log lacks {want:?}:\n{log}");
    }
}

#[test]
fn store_keeps_psks_and_tokens_across_restarts() {
    let dir = TempDir::new("store");
    let store = dir.path("device.store");
    let st = store.to_str().unwrap();
    let tok = dir.path("t.cbor");
    let t = tok.to_str().unwrap();
    run(
        "cssf-token",
        &[
            "mint",
            "--as-hmac-key",
            HMAC,
            "--scope",
            "/sensors/temp:GET",
            "--kid",
            "k9",
            "--out",
            t,
        ],
        LIMIT,
    )
    .ok("mint");
    {
        let s = ServerProc::start(&["--psk", PSK, "--as-hmac-key", HMAC, "--store", st]);
        client(&["--token", t, &s.coaps_uri("sensors/temp")]).ok("first run");
        assert!(s.log().contains("boot 1"), "{}", s.log());
    }
    assert!(std::fs::metadata(&store).unwrap().len() > 0);
    // Second boot: no --psk on the command line, the store has it; the
    // token is restored (posting it again is a replay, the handshake works).
    let s = ServerProc::start(&["--as-hmac-key", HMAC, "--store", st]);
    let log = s.log();
    assert!(
        log.contains("boot 2") && log.contains("1 tokens restored"),
        "{log}"
    );
    assert!(log.contains("1 PSK identities"), "{log}");
    let r = client(&["--psk", PSK, &s.coaps_uri("time")]).ok("stored PSK");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    let r = client(&["--token", t, &s.coaps_uri("sensors/temp")]).ok("restored token");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    assert!(s.log().contains("token rejected: "), "{}", s.log());
}

#[test]
fn bad_input_gives_one_line_errors() {
    let dir = TempDir::new("bad");
    let missing = dir.path("missing.pem");
    let m = missing.to_str().unwrap();
    let garbage = dir.path("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    let g = garbage.to_str().unwrap();
    // Unreadable or wrong key files.
    let r = run("cssf-server", &["--as-public-key", m], LIMIT);
    assert_one_line_error(&r, "cannot read public key", "server, missing AS key");
    let r = run("cssf-server", &["--as-public-key", g], LIMIT);
    assert_one_line_error(&r, "is not a P-256 public key", "server, garbage AS key");
    let r = run(
        "cssf-token",
        &["mint", "--as-key", m, "--scope", "/a:GET", "--out", "x"],
        LIMIT,
    );
    assert_one_line_error(&r, "cannot read private key", "token, missing AS key");
    let r = run(
        "cssf-client",
        &["--token", m, "coaps://127.0.0.1:9/x"],
        LIMIT,
    );
    assert_one_line_error(&r, "cannot read token", "client, missing token");
    let r = run(
        "cssf-client",
        &["--psk", "nokey", "coaps://127.0.0.1:9/x"],
        LIMIT,
    );
    // A malformed argument is clap's usage error (exit 2), not a run-time
    // failure.
    assert_usage_error(&r, "IDENTITY:HEXKEY", "client, bad --psk");
    // Malformed URIs.
    for u in [
        "http://127.0.0.1/",
        "coap://[::1/",
        "coap://127.0.0.1:99999/",
        "coap://",
    ] {
        let r = run("cssf-client", &[u], LIMIT);
        assert_one_line_error(&r, "malformed URI", u);
    }
    let r = run("cssf-client", &["coaps://127.0.0.1/x"], LIMIT);
    assert_one_line_error(&r, "give --psk", "coaps without credentials");
    // Port in use.
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let r = run(
        "cssf-server",
        &[
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--dtls-bind",
            "127.0.0.1:0",
        ],
        LIMIT,
    );
    assert_one_line_error(&r, "cannot bind CoAP", "port in use");
    // Unreachable: a port nobody listens on (refused at once), and a socket
    // that never answers (a bounded timeout, not a hang).
    let free = cssf_netsim::peer::free_udp_port();
    let r = run(
        "cssf-client",
        &[&format!("coap://127.0.0.1:{free}/time")],
        LIMIT,
    );
    assert_one_line_error(&r, "127.0.0.1", "nobody listening");
    let t0 = Instant::now();
    let r = run(
        "cssf-client",
        &["--timeout", "2", &format!("coap://127.0.0.1:{port}/time")],
        LIMIT,
    );
    assert_one_line_error(&r, "no response from", "silent server, plain");
    let r = run(
        "cssf-client",
        &[
            "--timeout",
            "2",
            "--psk",
            PSK,
            &format!("coaps://127.0.0.1:{port}/time"),
        ],
        LIMIT,
    );
    assert_one_line_error(&r, "timed out", "silent server, DTLS");
    // Both waits were bounded by --timeout 2 (not the 10 s default, nor a
    // hang): a functional check with a wide margin, not a speed test.
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "--timeout was not honoured"
    );
    // Unknown options.
    let r = run("cssf-server", &["--frobnicate"], LIMIT);
    assert_usage_error(&r, "unexpected argument '--frobnicate'", "server option");
    drop(held);
}

/// RFC 9200 §5.10.3 across a restart: an `exi` token works until the device
/// restarts; after it, the saved Sequence Number watermark keeps the token
/// from living again (the device cannot know how long it was off).
#[test]
fn exi_tokens_do_not_survive_a_restart() {
    let dir = TempDir::new("exi");
    let store = dir.path("device.store");
    let st = store.to_str().unwrap();
    let tok = dir.path("exi.cbor");
    let t = tok.to_str().unwrap();
    let minted = run(
        "cssf-token",
        &[
            "mint",
            "--as-hmac-key",
            HMAC,
            "--scope",
            "/sensors/temp:GET",
            "--kid",
            "e1",
            "--expires-in",
            "600",
            "--exi",
            "--out",
            t,
        ],
        LIMIT,
    )
    .ok("mint --exi");
    assert!(minted.stdout.contains("(exi)"), "{}", minted.stdout);
    let ins = run("cssf-token", &["inspect", "--as-hmac-key", HMAC, t], LIMIT).ok("inspect");
    assert!(
        ins.stdout.contains("exi   600 s after reception"),
        "{}",
        ins.stdout
    );
    {
        let s = ServerProc::start(&["--as-hmac-key", HMAC, "--store", st]);
        let r = client(&["--token", t, &s.coaps_uri("sensors/temp")]).ok("exi token");
        assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    }
    let s = ServerProc::start(&["--as-hmac-key", HMAC, "--store", st]);
    assert!(s.log().contains("0 tokens restored"), "{}", s.log());
    let r = client(&["--token", t, &s.coaps_uri("sensors/temp")]);
    assert_one_line_error(&r, "refused the token", "exi token after a restart");
    assert!(s.log().contains("token rejected"), "{}", s.log());
}

#[test]
fn observation_ends_with_4_01_when_the_token_expires() {
    // Each notification is authorized again: once the token has expired,
    // the observer gets a final 4.01 instead of the next value.
    let dir = TempDir::new("expiry");
    let tok = dir.path("token.cbor");
    let t = tok.to_str().unwrap().to_string();
    run(
        "cssf-token",
        &[
            "mint",
            "--as-hmac-key",
            HMAC,
            "--scope",
            "/time:GET",
            "--expires-in",
            "6s",
            "--kid",
            "short",
            "--out",
            &t,
        ],
        LIMIT,
    )
    .ok("mint");
    let s = ServerProc::start(&["--as-hmac-key", HMAC]);
    // Far more notifications than the token's lifetime allows.
    let out = client(&["--token", &t, "--observe", "60", &s.coaps_uri("time")])
        .ok("observe")
        .stdout;
    let seen = out.matches("Observe: ").count();
    assert!((1..60).contains(&seen), "{seen} notifications:\n{out}");
    assert!(out.contains("4.01 Unauthorized"), "{out}");
    let log = s.log();
    assert!(
        log.contains("/time: ended with 4.01"),
        "server log lacks the ended observation:\n{log}"
    );
}
