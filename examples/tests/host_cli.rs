//! The command lines (clap): `--help` of cssf-client, cssf-server,
//! cssf-token and cssf-dissect exits 0 and lists every flag, bad
//! arguments exit 2, and each of cssf-client's libcoap-style flags has an
//! effect a real server sees: `cssf-server` (its `-v` log shows every
//! request's type, token and options) and libcoap's `coap-server-openssl`
//! (its `-v 7` log shows every PDU). `cssf-server --config FILE` is
//! honoured and overridden by flags.

mod host_common;

use std::fs::File;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cssf_netsim::peer::{free_udp_port_pair, require_binary, ChildGuard};
use host_common::{
    assert_one_line_error, assert_usage_error, large_body, run, text_body, Run, ServerProc, TempDir,
};

const LIMIT: Duration = Duration::from_secs(60);
const ID: &str = "Client_identity";
const KEY: &str = "secretPSK";
/// `secretPSK` in hex.
const KEY_HEX: &str = "73656372657450534b";
const INSTALL: &str = "apt-get install -y libcoap3-bin";

fn client(args: &[&str]) -> Run {
    let mut a = vec!["--timeout", "10"];
    a.extend_from_slice(args);
    run("cssf-client", &a, LIMIT)
}

#[test]
fn help_exits_zero_and_lists_every_flag() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "cssf-client",
            &["--help"],
            &[
                "-m, --method",
                "--psk",
                "-u, --psk-identity",
                "-k, --psk-text",
                "--key",
                "--trust",
                "--token",
                "--authz-info",
                "--observe",
                "-s, --observe-for",
                "-e, --payload",
                "-f, --payload-file",
                "-o, --output",
                "-b, --block",
                "-N, --non",
                "-t, --content-format",
                "-A, --accept",
                "-O, --option",
                "-T, --coap-token",
                "--timeout",
                "-B, --wait",
                "-q, --quiet",
                "-v, --verbose",
                "<URI>",
            ],
        ),
        (
            "cssf-server",
            &["--help"],
            &[
                "--config",
                "--bind",
                "--dtls-bind",
                "--psk",
                "--key",
                "--trust",
                "--require-client-key",
                "--as-public-key",
                "--as-hmac-key",
                "--as-hmac-alg",
                "--as-kid",
                "--as-uri",
                "--audience",
                "--public",
                "--acp",
                "--store",
                "-v, --verbose",
                "--plugtest",
                "--max-sessions",
                "--relaxed-dedup",
                "-q, --quiet",
                "RIGHTS:",
            ],
        ),
        (
            "cssf-load",
            &["--help"],
            &[
                "<URI>",
                "--psk",
                "-u, --psk-identity",
                "-k, --psk-text",
                "-c, --sessions",
                "--handshakes-at-once",
                "-d, --duration",
                "-r, --rate",
                "--timeout",
                "--source-hosts",
                "--server-pid",
                "--require-sessions",
            ],
        ),
        ("cssf-token", &["--help"], &["mint", "inspect", "genkey"]),
        ("cssf-dissect", &["--help"], &["[HEX]...", "Exit status"]),
        (
            "cssf-token",
            &["mint", "--help"],
            &[
                "--as-key",
                "--as-hmac-key",
                "--aud",
                "audience",
                "--scope",
                "--expires-in",
                "--exi",
                "--kid",
                "--iss",
                "-o, --out",
            ],
        ),
        (
            "cssf-token",
            &["inspect", "--help"],
            &["--as-public-key", "as-key", "--as-hmac-key", "<FILE>"],
        ),
        (
            "cssf-token",
            &["genkey", "--help"],
            &["-o, --out", "--public", "--sec1"],
        ),
    ];
    for (bin, args, flags) in cases {
        let r = run(bin, args, LIMIT);
        assert_eq!(r.code, Some(0), "{bin} {args:?}: {r:?}");
        for f in *flags {
            assert!(
                r.stdout.contains(f),
                "{bin} {args:?} lacks {f}:\n{}",
                r.stdout
            );
        }
        // -h too.
        let short: Vec<&str> = args
            .iter()
            .map(|a| if *a == "--help" { "-h" } else { a })
            .collect();
        assert_eq!(run(bin, &short, LIMIT).code, Some(0), "{bin} {short:?}");
    }
    // Bad arguments: clap's error, exit 2.
    assert_usage_error(
        &run("cssf-client", &[], LIMIT),
        "<URI>",
        "client without URI",
    );
    assert_usage_error(
        &run("cssf-client", &["-m", "brew", "coap://127.0.0.1/"], LIMIT),
        "unknown method",
        "client, bad method",
    );
    assert_usage_error(
        &run("cssf-client", &["-b", "100", "coap://127.0.0.1/"], LIMIT),
        "16, 32, 64",
        "client, bad -b",
    );
    assert_usage_error(
        &run("cssf-server", &["--bind", "nowhere"], LIMIT),
        "--bind",
        "server, bad address",
    );
    assert_usage_error(
        &run("cssf-token", &["frob"], LIMIT),
        "frob",
        "token command",
    );
}

/// The server's `-v` log line describing the request that contains `what`.
fn request_line(s: &ServerProc, what: &str) -> String {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let log = s.log();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("request: ") && l.contains(what))
        {
            return l.to_string();
        }
        assert!(
            Instant::now() < end,
            "no request line with {what:?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_flags_reach_cssf_server() {
    let s = ServerProc::start(&[
        "-v",
        "--public",
        "*:ALL",
        "--psk",
        &format!("{ID}:{KEY_HEX}"),
    ]);
    // -N: a NON request gets a NON response.
    let r = client(&["-N", "-v", &s.coap_uri("time")]).ok("-N");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    assert!(r.stderr.contains("sent NON 0.01 GET"), "{}", r.stderr);
    assert!(r.stderr.contains("received NON 2.05"), "-N: {}", r.stderr);
    request_line(&s, "NON 0.01 GET");
    // -T: the server sees our token and the response echoes it.
    let r = client(&["-T", "c0ffee01", "-v", &s.coap_uri("time")]).ok("-T");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    assert!(
        r.stderr.contains("received ACK 2.05 Content mid")
            && r.stderr
                .lines()
                .any(|l| l.contains("received ACK 2.05") && l.contains("token c0ffee01")),
        "-T: {}",
        r.stderr
    );
    request_line(&s, "token c0ffee01");
    // -t and -A: Content-Format and Accept reach the server.
    let r = client(&[
        "-m",
        "post",
        "-e",
        "{}",
        "-t",
        "application/json",
        "-A",
        "text/plain",
        &s.coap_uri("echo"),
    ])
    .ok("-t -A");
    assert!(r.stdout.starts_with("2.0"), "{}", r.stdout);
    let l = request_line(&s, "0.02 POST");
    assert!(
        l.contains("Content-Format: 50") && l.contains("Accept: 0"),
        "{l}"
    );
    // -O: custom options, text and hex (elective numbers: the server
    // ignores them and answers).
    let r = client(&[
        "-O",
        "65000,hello",
        "-O",
        "65002,0x0102",
        &s.coap_uri("time"),
    ])
    .ok("-O");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    let l = request_line(&s, "Option 65000");
    assert!(
        l.contains("Option 65000: 68656c6c6f") && l.contains("Option 65002: 0102"),
        "{l}"
    );
    // -b SIZE: Block2 of that size; -b NUM,SIZE starts at block NUM.
    let r = client(&["-q", "-b", "64", &s.coap_uri("large")]).ok("-b 64");
    assert_eq!(r.stdout.trim_end(), large_body().trim_end());
    assert!(s.log().contains("/large Block2 0/0/64"), "{}", s.log());
    assert!(s.log().contains("/large Block2 1/0/64"), "{}", s.log());
    let r = client(&["-q", "-b", "2,64", &s.coap_uri("large")]).ok("-b 2,64");
    assert!(
        r.stdout.starts_with("0004 abc"),
        "-b 2,64: {}",
        &r.stdout[..40.min(r.stdout.len())]
    );
    assert_eq!(r.stdout.trim_end(), large_body()[128..].trim_end());
    // -b with an upload: Block1 blocks of that size.
    let dir = TempDir::new("cli-up");
    let f = dir.path("body.txt");
    std::fs::write(&f, text_body(300)).unwrap();
    let r = client(&[
        "-q",
        "-m",
        "post",
        "-b",
        "32",
        "-f",
        f.to_str().unwrap(),
        &s.coap_uri("echo"),
    ])
    .ok("-b 32 -f");
    assert_eq!(r.stdout.trim_end(), text_body(300));
    assert!(s.log().contains("/echo Block1 0/1/32"), "{}", s.log());
    // -o FILE: the payload goes to the file, the code and options to stdout.
    let out = dir.path("large.txt");
    let r = client(&["-o", out.to_str().unwrap(), &s.coap_uri("large")]).ok("-o");
    assert!(
        r.stdout.starts_with("2.05") && !r.stdout.contains("0000 abc"),
        "{}",
        r.stdout
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), large_body());
    // -f -: the payload from stdin.
    let mut child = Command::new(host_common::bin("cssf-client"))
        .args(["-q", "-m", "post", "-f", "-", &s.coap_uri("echo")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"from stdin").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "-f -: {o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end(), "from stdin");
    // -m: every method reaches the server (fetch, patch, ipatch: 4.05 on /echo).
    for (m, name) in [
        ("fetch", "FETCH"),
        ("patch", "PATCH"),
        ("ipatch", "iPATCH"),
        ("delete", "DELETE"),
    ] {
        let r = client(&["-m", m, &s.coap_uri("echo")]).ok(m);
        assert!(r.stdout.starts_with("4.05"), "-m {m}: {}", r.stdout);
        assert!(
            s.log().contains(&format!("{name} /echo")),
            "-m {m}: {}",
            s.log()
        );
    }
    // -u / -k: a text PSK.
    let r = client(&["-u", ID, "-k", KEY, &s.coaps_uri("time")]).ok("-u -k");
    assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
    assert!(s.log().contains("psk \"Client_identity\""), "{}", s.log());
    // -s SECONDS: observes for that long, then ends cleanly.
    let t0 = Instant::now();
    let r = client(&["-s", "3", &s.coap_uri("time")]).ok("-s 3");
    let took = t0.elapsed();
    let n = r.stdout.matches("Observe: ").count();
    assert!(n >= 2, "-s 3: {n} notifications\n{}", r.stdout);
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(20),
        "-s 3 took {took:?}"
    );
    // --observe N still counts.
    let r = client(&["--observe", "2", &s.coap_uri("time")]).ok("--observe 2");
    assert_eq!(r.stdout.matches("Observe: ").count(), 2, "{}", r.stdout);
}

#[test]
fn wait_bounds_the_whole_run() {
    // A socket that never answers: -B 2 ends the run long before
    // --timeout 30 would.
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let t0 = Instant::now();
    let r = run(
        "cssf-client",
        &[
            "--timeout",
            "30",
            "-B",
            "2",
            &format!("coap://127.0.0.1:{port}/time"),
        ],
        LIMIT,
    );
    assert_one_line_error(&r, "gave up after 2 s (-B)", "-B 2");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "-B 2 took {:?}",
        t0.elapsed()
    );
    drop(held);
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
}

#[test]
fn server_config_file_is_honoured_and_overridden() {
    let dir = TempDir::new("cli-config");
    let cfg = dir.path("server.toml");
    // The file's bind addresses are overridden by the ones ServerProc
    // passes on the command line (else the server could not start there);
    // its PSK is honoured.
    write(
        &cfg,
        &format!(
            "bind = \"127.0.0.1:1\"\ndtls-bind = \"127.0.0.1:2\"\npsk = [\"file-id:{KEY_HEX}:*:ALL\"]\nverbose = 1\n"
        ),
    );
    let c = cfg.to_str().unwrap();
    {
        let s = ServerProc::start(&["--config", c]);
        let r =
            client(&["--psk", &format!("file-id:{KEY_HEX}"), &s.coaps_uri("time")]).ok("file psk");
        assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
        // verbose = 1 from the file: the request lines are there.
        request_line(&s, "0.01 GET");
    }
    {
        // A --psk flag replaces the file's list.
        let s = ServerProc::start(&["--config", c, "--psk", &format!("cli-id:{KEY_HEX}")]);
        let r =
            client(&["--psk", &format!("cli-id:{KEY_HEX}"), &s.coaps_uri("time")]).ok("cli psk");
        assert!(r.stdout.starts_with("2.05"), "{}", r.stdout);
        let r = client(&[
            "--timeout",
            "3",
            "--psk",
            &format!("file-id:{KEY_HEX}"),
            &s.coaps_uri("time"),
        ]);
        assert_eq!(
            r.code,
            Some(1),
            "the file's PSK should be overridden: {r:?}"
        );
    }
    // A misspelt key is a one-line error.
    write(&cfg, "bnid = \"127.0.0.1:5683\"\n");
    let r = run("cssf-server", &["--config", c], LIMIT);
    assert_one_line_error(&r, "unknown field `bnid`", "misspelt config key");
    let r = run(
        "cssf-server",
        &["--config", dir.path("missing.toml").to_str().unwrap()],
        LIMIT,
    );
    assert_one_line_error(&r, "cannot read config", "missing config");
}

/// `coap-server-openssl -v 7` on free ports, its log in `log`.
fn libcoap_server(log: &Path) -> Option<(ChildGuard, u16)> {
    let bin = "coap-server-openssl";
    if !require_binary(bin, INSTALL) {
        return None;
    }
    let port = free_udp_port_pair();
    let out = File::create(log).unwrap();
    let child = Command::new(bin)
        .args([
            "-A",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-k",
            KEY,
            "-v",
            "7",
        ])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let guard = ChildGuard(child);
    let end = Instant::now() + Duration::from_secs(10);
    while [port, port + 1]
        .iter()
        .any(|p| UdpSocket::bind(("127.0.0.1", *p)).is_ok())
    {
        assert!(Instant::now() < end, "{bin} did not bind");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((guard, port))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn client_flags_reach_libcoap_server() {
    let dir = TempDir::new("cli-libcoap");
    let log = dir.path("server.log");
    let Some((_guard, port)) = libcoap_server(&log) else {
        return;
    };
    let who = "coap-server-openssl (libcoap 4.3, -v 7)";
    let coap = format!("coap://127.0.0.1:{port}/");
    let coaps = format!("coaps://127.0.0.1:{}/", port + 1);
    // -u / -k: libcoap's text PSK.
    let r = client(&["-u", ID, "-k", KEY, &format!("{coaps}time")]);
    assert_eq!(r.code, Some(0), "{who}: -u -k: {r:?}");
    assert!(r.stdout.starts_with("2.05"), "{who}: {}", r.stdout);
    // -N, -T, -A, -O in one request; libcoap logs the PDU as
    // `v:1 t:NON c:GET i:.. {c0ffee02} [ Uri-Path:time, Accept:..., 65000:... ]`.
    let r = client(&[
        "-N",
        "-T",
        "c0ffee02",
        "-A",
        "text/plain",
        "-O",
        "65000,hello",
        "-v",
        &format!("{coap}time"),
    ]);
    assert_eq!(r.code, Some(0), "{who}: {r:?}");
    assert!(
        r.stderr.contains("received NON 2.05"),
        "{who}: -N: {}",
        r.stderr
    );
    let pdu = read(&log)
        .lines()
        .find(|l| l.contains("{c0ffee02}"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{who}: no PDU with token c0ffee02 in:\n{}", read(&log)));
    assert!(pdu.contains("t:NON"), "{who}: -N: {pdu}");
    assert!(
        pdu.contains("Accept:") && pdu.contains("65000:"),
        "{who}: -A -O: {pdu}"
    );
    // -t and -e: Content-Format on a PUT.
    let r = client(&[
        "-m",
        "put",
        "-e",
        "[1]",
        "-t",
        "application/json",
        &format!("{coap}example_data"),
    ]);
    assert!(r.stdout.starts_with("2.0"), "{who}: PUT: {r:?}");
    assert!(
        read(&log)
            .lines()
            .any(|l| l.contains("c:PUT") && l.contains("Content-Format:application/json")),
        "{who}: -t: {}",
        read(&log)
    );
    // -b: Block2 of 64 bytes.
    let body = text_body(300);
    let r = client(&["-m", "put", "-e", &body, &format!("{coap}example_data")]);
    assert!(r.stdout.starts_with("2.0"), "{who}: PUT: {r:?}");
    let r = client(&["-q", "-b", "64", &format!("{coap}example_data")]);
    assert_eq!(r.stdout.trim_end(), body, "{who}: -b 64");
    assert!(
        read(&log)
            .lines()
            .any(|l| l.contains("c:GET") && l.contains("Block2:0/_/64")),
        "{who}: -b 64: {}",
        read(&log)
    );
}
