//! `cssf-server --oscore-context FILE` against aiocoap's client with its
//! OSCORE credentials (RFC 8613, the Appendix C.1 master secret and salt;
//! aiocoap's Sender ID empty, the server's 01), on the plain CoAP port:
//! - protected GET and PUT of `/actuators/led` within the context's scope
//!   are answered (2.05 "off", 2.04, then 2.05 "on"), while the same GET
//!   in plain CoAP gets 4.01 (no public rights once a context is
//!   configured) and a protected GET outside the scope 4.03;
//! - aiocoap with a wrong Master Secret is refused (4.00 "Decryption
//!   failed", unprotected) and the LED is not touched;
//! - a protected request captured on the way (the test relays aiocoap's
//!   datagrams) and sent again: from the same address with the same
//!   message ID it is a retransmission and gets the very same protected
//!   answer; from another address it is a replay, refused with 4.01
//!   "Replay detected"; and after a server restart with the same `--store`
//!   it is still refused (the replay window was kept); after a restart
//!   with a new, empty store (the saved window lost) it is verified but
//!   not processed: a protected 4.01 with an Echo option (RFC 8613
//!   Appendix B.1.2), while aiocoap's next request goes through the Echo
//!   round trip, is processed, and synchronises the window, after which
//!   the captured request is refused as a replay;
//! - a new context (no window saved yet) is synchronised the same way by
//!   the first request of aiocoap's client and of `cssf-client`;
//! - `cssf-client --oscore-context FILE` against `cssf-server
//!   --oscore-context` (three runs in a row: the Sender Sequence Number
//!   kept in `FILE.seq` goes on, or the server would refuse a replay) and
//!   against aiocoap's file server (2.05 with the file, 4.04).

mod host_common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cssf_coap::oscore::{
    Id, OscoreOption, Params, PartialIv, RequestBinding, SecurityContext, SenderSequence,
};
use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use cssf_examples::server::large_body;
use cssf_netsim::peer::require_python_module;
use host_common::{run, ServerProc, TempDir};

const INSTALL: &str = "pip install 'aiocoap[oscore]==0.4.17'";
const LIMIT: Duration = Duration::from_secs(60);
const SECRET: &str = "0102030405060708090a0b0c0d0e0f10";
const SALT: &str = "9e7ca92223786340";

fn aiocoap_ready() -> bool {
    require_python_module("aiocoap", INSTALL)
        && require_python_module("cbor2", INSTALL)
        && require_python_module("cryptography", INSTALL)
        && require_python_module("filelock", INSTALL)
}

/// The server's context file: Sender ID 01, the client's empty.
fn server_context(dir: &TempDir, scope: &str) -> String {
    let p = dir.path("server-context.json");
    std::fs::write(
        &p,
        format!(
            "{{\"sender-id_hex\": \"01\", \"recipient-id_hex\": \"\", \
             \"secret_hex\": \"{SECRET}\", \"salt_hex\": \"{SALT}\", \"scope\": \"{scope}\"}}"
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// An aiocoap context directory named `name` with `secret` (aiocoap
/// keeps its sequence number there: every credentials file pointing to it
/// continues the same numbering).
fn aiocoap_context(dir: &TempDir, name: &str, secret: &str) -> String {
    let ctx = dir.path(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("settings.json"),
        format!(
            "{{\"sender-id_hex\": \"\", \"recipient-id_hex\": \"01\", \
             \"secret_hex\": \"{secret}\", \"salt_hex\": \"{SALT}\"}}"
        ),
    )
    .unwrap();
    ctx.display().to_string()
}

/// aiocoap's credentials: context directory `ctx` for
/// `coap://127.0.0.1:PORT/*`.
fn aiocoap_credentials(dir: &TempDir, ctx: &str, port: u16) -> String {
    let creds = dir.path(&format!("credentials-{port}.json"));
    std::fs::write(
        &creds,
        format!("{{\"coap://127.0.0.1:{port}/*\": {{\"oscore\": {{\"basedir\": \"{ctx}/\"}}}}}}"),
    )
    .unwrap();
    creds.display().to_string()
}

/// aiocoap-client with `creds`: its stdout and stderr together.
fn aiocoap(creds: &str, args: &[&str]) -> String {
    let mut a = vec!["-m", "aiocoap.cli.client", "--credentials", creds, "-v"];
    a.extend_from_slice(args);
    let r = run("python3", &a, LIMIT);
    format!("{}\n{}", r.stdout, r.stderr)
}

/// Datagrams a relay saw: (from the client, bytes), in order.
type Seen = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

/// A UDP relay between aiocoap and the server that records the datagrams
/// each way.
struct Relay {
    port: u16,
    sock: UdpSocket,
    stop: Arc<AtomicBool>,
    seen: Seen,
    worker: Option<thread::JoinHandle<()>>,
}

impl Relay {
    fn start(server: SocketAddr) -> Relay {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let (s, st, sn) = (sock.try_clone().unwrap(), stop.clone(), seen.clone());
        let worker = thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                let from_client = from != server;
                sn.lock().unwrap().push((from_client, buf[..n].to_vec()));
                if from_client {
                    client = Some(from);
                    let _ = s.send_to(&buf[..n], server);
                } else if let Some(c) = client {
                    let _ = s.send_to(&buf[..n], c);
                }
            }
        });
        Relay {
            port,
            sock,
            stop,
            seen,
            worker: Some(worker),
        }
    }

    /// Stops relaying; the socket stays usable for the test.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            w.join().unwrap();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `datagram` from `sock` to `to` and returns the answer.
fn exchange(sock: &UdpSocket, to: SocketAddr, datagram: &[u8]) -> Vec<u8> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.send_to(datagram, to).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = sock.recv_from(&mut buf).expect("no answer within 10 s");
        if from == to {
            return buf[..n].to_vec();
        }
    }
}

fn assert_replay_refused(answer: &[u8], what: &str) {
    let m = Message::parse(answer).unwrap();
    assert_eq!(m.code(), Code::UNAUTHORIZED, "{what}: {m:?}");
    assert_eq!(m.payload(), b"Replay detected", "{what}");
    assert!(!m.has_option(OptionNumber::OSCORE), "{what}: protected");
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// `answer` is the server's protected answer to the protected `request`
/// (aiocoap's, Sender ID empty): verified with the client's keys, it is a
/// 4.01 with an Echo option, under a Partial IV of the server's own (the
/// request's nonce may have protected an answer before).
fn assert_echo_challenge(request: &[u8], answer: &[u8], what: &str) {
    let outer = Message::parse(answer).unwrap();
    let opt = outer
        .option(OptionNumber::OSCORE)
        .unwrap_or_else(|| panic!("{what}: not protected: {outer:?}"));
    assert!(!opt.is_empty(), "{what}: the request's nonce was reused");
    let req = Message::parse(request).unwrap();
    let ro = OscoreOption::parse(req.option(OptionNumber::OSCORE).unwrap()).unwrap();
    let seq = ro
        .partial_iv
        .unwrap()
        .iter()
        .fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let mut binding = RequestBinding::new(
        Id::new(ro.kid.unwrap()).unwrap(),
        PartialIv::from_sequence(seq),
    );
    let (secret, salt) = (unhex(SECRET), unhex(SALT));
    let mut client = SecurityContext::new(
        &Params {
            master_secret: &secret,
            master_salt: &salt,
            id_context: None,
            sender_id: b"",
            recipient_id: &[1],
        },
        SenderSequence::Volatile,
    )
    .unwrap();
    let mut msg = answer.to_vec();
    let mut out = [0u8; 1024];
    let n = client
        .unprotect_response(&mut binding, &mut msg, &mut out)
        .unwrap_or_else(|e| panic!("{what}: answer does not verify: {e:?}"));
    let inner = Message::parse(&out[..n]).unwrap();
    assert_eq!(inner.code(), Code::UNAUTHORIZED, "{what}: {inner:?}");
    assert!(
        inner
            .option(OptionNumber::ECHO)
            .is_some_and(|e| !e.is_empty()),
        "{what}: no Echo: {inner:?}"
    );
}

fn start_server(store: &Path, context: &str) -> ServerProc {
    ServerProc::start(&[
        "--store",
        &store.display().to_string(),
        "--oscore-context",
        context,
    ])
}

#[test]
fn aiocoap_client_with_oscore_against_cssf_server() {
    if !aiocoap_ready() {
        return;
    }
    let dir = TempDir::new("oscore");
    let store = dir.path("store.bin");
    let context = server_context(&dir, "/actuators/led:GET,PUT");
    let s = start_server(&store, &context);
    let log = s.log();
    assert!(log.contains("OSCORE context 0: kid  ("), "{log}");
    let port = s.coap;
    let good_ctx = aiocoap_context(&dir, "good", SECRET);
    let good = aiocoap_credentials(&dir, &good_ctx, port);

    // A wrong Master Secret, first (its Partial IV 0 is fresh: a number
    // the window took already would be refused as a replay before the
    // decryption, RFC 8613 §8.2): 4.00, and the LED untouched.
    let bad_ctx = aiocoap_context(&dir, "bad", "0102030405060708090a0b0c0d0e0f11");
    let bad_dir = TempDir::new("oscore-bad");
    let bad = aiocoap_credentials(&bad_dir, &bad_ctx, port);
    let out = aiocoap(
        &bad,
        &["-m", "PUT", "--payload", "on", &s.coap_uri("actuators/led")],
    );
    assert!(!out.contains("2.04 Changed"), "{out}");
    let log = s.log();
    assert!(
        log.contains("OSCORE request -> 4.00 Bad Request"),
        "no 4.00 for the wrong key:\n{log}"
    );

    // Within the scope: GET, PUT, GET. The context is new (no window
    // saved): the first GET goes through an Echo round trip, which
    // synchronises the window.
    assert!(log.contains("no replay window saved"), "{log}");
    let out = aiocoap(&good, &[&s.coap_uri("actuators/led")]);
    assert!(out.contains("2.05 Content"), "{out}");
    assert!(out.lines().any(|l| l.trim() == "off"), "{out}");
    let log = s.log();
    assert!(
        log.contains("OSCORE context 0: replay window synchronised by an Echo exchange"),
        "{log}"
    );
    let out = aiocoap(
        &good,
        &["-m", "PUT", "--payload", "on", &s.coap_uri("actuators/led")],
    );
    assert!(out.contains("2.04 Changed"), "{out}");
    let out = aiocoap(&good, &[&s.coap_uri("actuators/led")]);
    assert!(out.lines().any(|l| l.trim() == "on"), "{out}");
    // Outside the scope: 4.03, protected (aiocoap verified it).
    let out = aiocoap(&good, &[&s.coap_uri("sensors/temp")]);
    assert!(out.contains("4.03 Forbidden"), "{out}");
    let log = s.log();
    assert!(
        log.contains("[OSCORE kid ] PUT /actuators/led (2 bytes) -> 2.04"),
        "{log}"
    );
    // The same GET in plain CoAP, from a socket of ours: 4.01.
    let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut b = MessageBuilder::<2>::new(MessageType::Con, Code::GET, 0x1234);
    b.uri_path("actuators/led").unwrap();
    let mut get = [0u8; 64];
    let n = b.emit(&mut get).unwrap();
    let get = &get[..n];
    let answer = exchange(&plain, server, get);
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.code(), Code::UNAUTHORIZED, "{m:?}");

    // Capture a protected request through the relay.
    let mut relay = Relay::start(server);
    // The same aiocoap context (its numbering goes on) at the relay.
    let relayed = aiocoap_credentials(&dir, &good_ctx, relay.port);
    let uri = format!("coap://127.0.0.1:{}/actuators/led", relay.port);
    let out = aiocoap(&relayed, &[&uri]);
    assert!(out.lines().any(|l| l.trim() == "on"), "{out}");
    relay.stop();
    let seen = relay.seen.lock().unwrap().clone();
    let request = seen
        .iter()
        .find(|(c, d)| *c && Message::parse(d).is_ok_and(|m| m.has_option(OptionNumber::OSCORE)))
        .map(|(_, d)| d.clone())
        .expect("no protected request relayed");
    let answer = seen
        .iter()
        .find(|(c, _)| !*c)
        .map(|(_, d)| d.clone())
        .expect("no answer relayed");
    // The same datagram from the same address: a retransmission, the
    // cached protected answer byte for byte.
    let again = exchange(&relay.sock, server, &request);
    assert_eq!(again, answer, "a retransmission got another answer");
    // From another address: a replay.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_replay_refused(&exchange(&other, server, &request), "replay");

    // After a restart with the same store: still a replay.
    drop(s);
    let s = start_server(&store, &context);
    let log = s.log();
    assert!(log.contains("replay window restored"), "{log}");
    let server: SocketAddr = format!("127.0.0.1:{}", s.coap).parse().unwrap();
    assert_replay_refused(&exchange(&other, server, &request), "replay after restart");
    // And a fresh request from aiocoap (its next Partial IV) still works.
    let good = aiocoap_credentials(&dir, &good_ctx, s.coap);
    let out = aiocoap(&good, &[&s.coap_uri("actuators/led")]);
    assert!(out.contains("2.05 Content"), "{out}");
    let log = s.log();
    assert!(!log.contains("replay window synchronised"), "{log}");

    // The store is lost (a new one, the same context): the window is not
    // known. The captured request verifies, but is not processed: a
    // protected 4.01 Echo challenge.
    drop(s);
    let s = start_server(&dir.path("store-new.bin"), &context);
    let log = s.log();
    assert!(log.contains("no replay window saved"), "{log}");
    let server: SocketAddr = format!("127.0.0.1:{}", s.coap).parse().unwrap();
    let answer = exchange(&other, server, &request);
    assert_echo_challenge(&request, &answer, "replay after the store was lost");
    // From another address too (no duplicate): challenged again.
    let third = UdpSocket::bind("127.0.0.1:0").unwrap();
    let answer = exchange(&third, server, &request);
    assert_echo_challenge(&request, &answer, "replay from a third address");
    let log = s.log();
    assert!(
        !log.contains("[OSCORE kid ]"),
        "a replay was processed:\n{log}"
    );
    assert!(!log.contains("replay window synchronised"), "{log}");
    // aiocoap's next request goes through the Echo round trip.
    let good = aiocoap_credentials(&dir, &good_ctx, s.coap);
    let out = aiocoap(&good, &[&s.coap_uri("actuators/led")]);
    assert!(out.contains("2.05 Content"), "{out}");
    let log = s.log();
    assert!(
        log.contains("OSCORE context 0: replay window synchronised by an Echo exchange"),
        "{log}"
    );
    assert_eq!(log.matches("[OSCORE kid ]").count(), 1, "{log}");
    // Now the captured request is below the window: a replay.
    let fourth = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_replay_refused(
        &exchange(&fourth, server, &request),
        "replay after resynchronisation",
    );
    assert_eq!(s.log().matches("[OSCORE kid ]").count(), 1);
}

#[test]
fn oscore_context_needs_a_store_and_a_valid_file() {
    let dir = TempDir::new("oscore-args");
    let context = server_context(&dir, "/time:GET");
    let r = run(
        "cssf-server",
        &[
            "--bind",
            "127.0.0.1:0",
            "--dtls-bind",
            "127.0.0.1:0",
            "--oscore-context",
            &context,
        ],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("--oscore-context needs --store"), "{r:?}");
    let bad = dir.path("bad.json");
    std::fs::write(&bad, "{\"sender-id_hex\": \"01\", \"secret_hex\": \"01\"}").unwrap();
    let r = run(
        "cssf-server",
        &["--oscore-context", &bad.display().to_string()],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("recipient-id_hex missing"), "{r:?}");
}

/// Our client's context file (Sender ID empty, the server's 01).
fn client_context(dir: &TempDir) -> String {
    let p = dir.path("client-context.json");
    std::fs::write(
        &p,
        format!(
            "{{\"sender-id_hex\": \"\", \"recipient-id_hex\": \"01\", \
             \"secret_hex\": \"{SECRET}\", \"salt_hex\": \"{SALT}\"}}"
        ),
    )
    .unwrap();
    p.display().to_string()
}

#[test]
fn cssf_client_with_oscore_against_cssf_server() {
    let dir = TempDir::new("oscore-client");
    let store = dir.path("store.bin");
    let context = server_context(&dir, "/actuators/led:GET,PUT");
    let s = start_server(&store, &context);
    let ours = client_context(&dir);
    let uri = s.coap_uri("actuators/led");
    let r = run(
        "cssf-client",
        &["-q", "--oscore-context", &ours, &uri],
        LIMIT,
    )
    .ok("GET");
    assert_eq!(r.stdout.trim(), "off");
    // The context is new to the server: the first run went through an
    // Echo round trip (Partial IVs 0 and 1; FILE.seq keeps the bound of
    // the numbers a run may use, 16 ahead of the next one).
    let log = s.log();
    assert!(
        log.contains(
            "OSCORE context 0: replay window synchronised by an Echo exchange at Partial IV 1"
        ),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{ours}.seq"))
            .unwrap()
            .trim(),
        "16"
    );
    // A second run goes on from the number kept in FILE.seq: were the
    // Partial IV used again, the server would refuse it as a replay.
    let r = run(
        "cssf-client",
        &[
            "-q",
            "-m",
            "put",
            "-e",
            "on",
            "--oscore-context",
            &ours,
            &uri,
        ],
        LIMIT,
    )
    .ok("PUT");
    assert_eq!(r.stdout.trim(), "on");
    let seq = std::fs::read_to_string(format!("{ours}.seq")).unwrap();
    assert_eq!(seq.trim(), "32");
    let r = run(
        "cssf-client",
        &["-q", "--oscore-context", &ours, &uri],
        LIMIT,
    )
    .ok("GET");
    assert_eq!(r.stdout.trim(), "on");
    let log = s.log();
    assert_eq!(log.matches("[OSCORE kid ]").count(), 3, "{log}");
    // A run going on holds FILE.seq.lock: a second one at the same time
    // would read the same number and send the same Partial IV.
    let lock = format!("{ours}.seq.lock");
    std::fs::write(&lock, b"").unwrap();
    let r = run(
        "cssf-client",
        &["-q", "--oscore-context", &ours, &uri],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("another run uses this OSCORE context"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{ours}.seq"))
            .unwrap()
            .trim(),
        "48",
        "the refused run used no number"
    );
    std::fs::remove_file(&lock).unwrap();
    // Outside the scope: 4.03, verified.
    let r = run(
        "cssf-client",
        &["--oscore-context", &ours, &s.coap_uri("sensors/temp")],
        LIMIT,
    );
    assert!(r.stdout.contains("4.03"), "{r:?}");
    // Not with coaps.
    let r = run(
        "cssf-client",
        &["--oscore-context", &ours, &s.coaps_uri("actuators/led")],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{r:?}");
}

#[test]
fn cssf_client_observes_and_transfers_blocks_under_oscore() {
    let dir = TempDir::new("oscore-observe");
    let store = dir.path("store.bin");
    let context = server_context(&dir, "/time:GET /large:GET /echo:POST");
    let s = start_server(&store, &context);
    let ours = client_context(&dir);
    // Observe: the registration and both notifications protected and
    // verified (cssf-client takes none that does not verify).
    let r = run(
        "cssf-client",
        &[
            "--observe",
            "2",
            "--oscore-context",
            &ours,
            &s.coap_uri("time"),
        ],
        LIMIT,
    )
    .ok("observe");
    assert_eq!(r.stdout.matches("2.05 Content").count(), 2, "{r:?}");
    assert_eq!(r.stdout.matches("Observe: ").count(), 2, "{r:?}");
    // Block2: 4096 bytes in protected blocks of 64 bytes (-b 64), each
    // block its own protected request (64 Partial IVs: FILE.seq moved on
    // while the transfer ran).
    let before: u64 = std::fs::read_to_string(format!("{ours}.seq"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let r = run(
        "cssf-client",
        &[
            "-q",
            "-b",
            "64",
            "--oscore-context",
            &ours,
            &s.coap_uri("large"),
        ],
        LIMIT,
    )
    .ok("GET /large");
    assert_eq!(
        r.stdout.trim_end(),
        String::from_utf8(large_body()).unwrap().trim_end()
    );
    let after: u64 = std::fs::read_to_string(format!("{ours}.seq"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(after >= before + 64, "{before} -> {after}");
    // Block1 and Block2: 1000 bytes POSTed to /echo in protected blocks
    // of 64 bytes, the echo back in protected blocks.
    let body: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let r = run(
        "cssf-client",
        &[
            "-q",
            "-m",
            "post",
            "-b",
            "64",
            "-e",
            &body,
            "--oscore-context",
            &ours,
            &s.coap_uri("echo"),
        ],
        LIMIT,
    )
    .ok("POST /echo");
    assert_eq!(r.stdout.trim_end(), body);
    let log = s.log();
    assert!(log.contains("[OSCORE kid ]"), "{log}");
    assert!(!log.contains("unprotected request"), "{log}");
}

#[test]
fn cssf_client_with_oscore_against_aiocoap_file_server() {
    if !aiocoap_ready() {
        return;
    }
    let dir = TempDir::new("oscore-fileserver");
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from aiocoap over OSCORE").unwrap();
    // aiocoap's file server: Sender ID 01, Recipient ID empty.
    let ctx = dir.path("server-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("settings.json"),
        format!(
            "{{\"sender-id_hex\": \"01\", \"recipient-id_hex\": \"\", \
             \"secret_hex\": \"{SECRET}\", \"salt_hex\": \"{SALT}\"}}"
        ),
    )
    .unwrap();
    let creds = dir.path("server-credentials.json");
    std::fs::write(
        &creds,
        format!(
            "{{\":cssf-test\": {{\"oscore\": {{\"basedir\": \"{}/\"}}}}}}",
            ctx.display()
        ),
    )
    .unwrap();
    let port = cssf_netsim::peer::free_udp_port();
    let _server = cssf_netsim::peer::ChildGuard(
        std::process::Command::new("python3")
            .args(["-m", "aiocoap.cli.fileserver", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials")
            .arg(&creds)
            .arg(&www)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < end,
            "aiocoap's file server did not start"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let ours = client_context(&dir);
    let uri = format!("coap://127.0.0.1:{port}/hello.txt");
    for _ in 0..2 {
        let r = run(
            "cssf-client",
            &["-q", "--oscore-context", &ours, &uri],
            LIMIT,
        )
        .ok("GET");
        assert_eq!(r.stdout.trim(), "hello from aiocoap over OSCORE");
    }
    let r = run(
        "cssf-client",
        &[
            "--oscore-context",
            &ours,
            &format!("coap://127.0.0.1:{port}/missing"),
        ],
        LIMIT,
    );
    assert!(r.stdout.contains("4.04"), "{r:?}");
}

/// A replay window the server cannot save stops it before the answer
/// leaves: otherwise, after a restart, the same request would be taken
/// again and answered under the same nonce. The control is the first test
/// above (the same request answered when the store works).
#[test]
fn a_replay_window_not_saved_stops_the_server_before_it_answers() {
    let dir = TempDir::new("oscore-unsaved");
    let store = dir.path("store.bin");
    let context = server_context(&dir, "/actuators/led:GET,PUT");
    let s = start_server(&store, &context);
    // The rollback counter is written through FILE.counter.tmp: a
    // directory there makes every store write fail.
    std::fs::create_dir_all(format!("{}.counter.tmp", store.display())).unwrap();
    let ours = client_context(&dir);
    let r = run(
        "cssf-client",
        &[
            "-q",
            "--timeout",
            "3",
            "--oscore-context",
            &ours,
            &s.coap_uri("actuators/led"),
        ],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "an answer left the server: {r:?}");
    assert!(!r.stdout.contains("off"), "{r:?}");
    let err = s.stderr() + &s.log();
    assert!(
        err.contains("replay window") && err.contains("not saved"),
        "{err}"
    );
}
