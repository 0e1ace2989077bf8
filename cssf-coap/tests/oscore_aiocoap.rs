//! OSCORE (RFC 8613) against aiocoap 0.4, on loopback UDP, both ways, with
//! the security context of RFC 8613 Appendix C.1 (master secret, salt,
//! client Sender ID empty, server Sender ID 0x01; AES-CCM-16-64-128,
//! HKDF-SHA256: aiocoap's defaults):
//! - `cssf_coap::lite::Client::request_protected` against aiocoap's file
//!   server with that context: a protected GET of a file, the protected
//!   response verified and its payload checked, then a second request
//!   (the next Partial IV) and a 4.04 for a missing file;
//! - aiocoap's client with that context against a server here built on
//!   `SecurityContext::unprotect_request` / `protect_response`: it answers
//!   with the path it decrypted, so the check shows that the Uri-Path
//!   travelled inside the ciphertext; a replay of the captured request is
//!   refused by our replay window.
#![cfg(feature = "oscore")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cssf_coap::lite::{Client, Config, Event, Stats};
use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
use cssf_coap::{Code, Message, MessageBuilder, MessageType};
use cssf_netsim::peer::{free_udp_port, require_python_module, ChildGuard};
use cssf_netsim::SimRng;

const INSTALL: &str = "pip install 'aiocoap[oscore]==0.4.17'";
const SECRET: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const SALT: [u8; 8] = [0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A temporary directory, removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "cssf-oscore-{tag}-{}-{}",
            std::process::id(),
            free_udp_port()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// aiocoap's security context directory (`settings.json`; it keeps its
/// sequence numbers and replay window beside it).
fn aiocoap_context(dir: &Path, sender: &[u8], recipient: &[u8]) -> PathBuf {
    let ctx = dir.join(format!("ctx-{}", hex(sender)));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("settings.json"),
        format!(
            "{{\"sender-id_hex\": \"{}\", \"recipient-id_hex\": \"{}\", \
             \"secret_hex\": \"{}\", \"salt_hex\": \"{}\"}}",
            hex(sender),
            hex(recipient),
            hex(&SECRET),
            hex(&SALT)
        ),
    )
    .unwrap();
    ctx
}

fn our_context(sender: &'static [u8], recipient: &'static [u8]) -> SecurityContext {
    let p = Params {
        master_secret: &SECRET,
        master_salt: &SALT,
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    };
    SecurityContext::new(&p, SenderSequence::Volatile).unwrap()
}

fn aiocoap_ready() -> bool {
    require_python_module("aiocoap", INSTALL)
        && require_python_module("cbor2", INSTALL)
        && require_python_module("cryptography", INSTALL)
        && require_python_module("filelock", INSTALL)
}

/// Sends `req` protected with `ctx` and pumps until the lite client
/// reports the verified response: (code, payload).
fn protected_call(
    client: &mut Client<SimRng, 1152>,
    ctx: &mut SecurityContext,
    sock: &UdpSocket,
    to: SocketAddr,
    req: &MessageBuilder<'_, 4>,
) -> (Code, Vec<u8>) {
    let origin = Instant::now();
    client
        .request_protected(origin.elapsed(), req, ctx)
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 1500];
    loop {
        while let Some(t) = client.poll_transmit(origin.elapsed(), &mut buf).unwrap() {
            sock.send_to(&buf[..t.len], to).unwrap();
        }
        if let Some(ev) = client.poll_event() {
            let Event::Response(m) = ev else {
                panic!("request ended with {ev:?}");
            };
            return (m.code(), m.payload().to_vec());
        }
        assert!(Instant::now() < end, "no verified response within 20 s");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from.port() == to.port() => {
                // A datagram that does not verify is dropped by the
                // client (and counted): fail loudly.
                client
                    .handle_datagram_protected(origin.elapsed(), (), &mut buf[..n], ctx)
                    .unwrap();
                assert_eq!(client.stats(), Stats::default(), "a datagram was dropped");
            }
            Ok(_) => {}
            Err(_) => client.handle_timeout(origin.elapsed()),
        }
    }
}

#[test]
fn lite_client_protected_requests_to_aiocoap_file_server() {
    if !aiocoap_ready() {
        return;
    }
    let dir = Dir::new("fileserver");
    let www = dir.0.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from aiocoap over OSCORE").unwrap();
    // The server: Sender ID 01, Recipient ID empty (RFC 8613 C.1.2).
    let ctx = aiocoap_context(&dir.0, &[1], &[]);
    let creds = dir.0.join("server-credentials.json");
    std::fs::write(
        &creds,
        format!(
            "{{\":cssf-test\": {{\"oscore\": {{\"basedir\": \"{}/\"}}}}}}",
            ctx.display()
        ),
    )
    .unwrap();
    let port = free_udp_port();
    let log = dir.0.join("server.log");
    let _server = ChildGuard(
        Command::new("python3")
            .args(["-m", "aiocoap.cli.fileserver", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials")
            .arg(&creds)
            .arg(&www)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(dir.0.join("server.err")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    // Bound when our bind to its port fails.
    let end = Instant::now() + Duration::from_secs(30);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < end, "aiocoap's file server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut ours = our_context(b"", &[1]);
    let mut client: Client<SimRng, 1152> = Client::new(Config::default(), SimRng::new(7));
    let mut get = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 0);
    get.uri_path("hello.txt").unwrap();
    let (code, body) = protected_call(&mut client, &mut ours, &sock, to, &get);
    assert_eq!(
        (code, body.as_slice()),
        (Code::CONTENT, &b"hello from aiocoap over OSCORE"[..]),
        "aiocoap's stderr:\n{}",
        std::fs::read_to_string(dir.0.join("server.err")).unwrap_or_default()
    );
    // The next request (Partial IV 1) and a missing file: 4.04, protected.
    let (code, _) = protected_call(&mut client, &mut ours, &sock, to, &get);
    assert_eq!(code, Code::CONTENT);
    let mut missing = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 0);
    missing.uri_path("nothing-here").unwrap();
    let (code, _) = protected_call(&mut client, &mut ours, &sock, to, &missing);
    assert_eq!(code, Code::NOT_FOUND);
}

#[test]
fn aiocoap_client_protected_requests_to_our_server() {
    if !aiocoap_ready() {
        return;
    }
    let dir = Dir::new("client");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    // aiocoap is the client: Sender ID empty, Recipient ID 01.
    let ctx = aiocoap_context(&dir.0, &[], &[1]);
    let creds = dir.0.join("client-credentials.json");
    std::fs::write(
        &creds,
        format!(
            "{{\"coap://127.0.0.1:{port}/*\": {{\"oscore\": {{\"basedir\": \"{}/\"}}}}}}",
            ctx.display()
        ),
    )
    .unwrap();
    let mut child = ChildGuard(
        Command::new("python3")
            .args(["-m", "aiocoap.cli.client", "-v", "--credentials"])
            .arg(&creds)
            .arg(format!("coap://127.0.0.1:{port}/sensors/temp?unit=c"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    // Our server: Sender ID 01, Recipient ID empty.
    let mut ours = our_context(&[1], b"");
    let mut buf = [0u8; 1500];
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (n, from) = sock.recv_from(&mut buf).expect("aiocoap sent nothing");
    let captured = buf[..n].to_vec();
    let mut inner = [0u8; 1500];
    let (m, mut binding) = ours
        .unprotect_request(&mut buf[..n], &mut inner)
        .expect("aiocoap's request does not verify");
    let req = Message::parse(&inner[..m]).unwrap();
    // The outer message carried no Uri-Path: it was inside.
    assert!(Message::parse(&captured)
        .unwrap()
        .uri_path()
        .next()
        .is_none());
    let path: Vec<String> = req
        .uri_path()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let query: Vec<String> = req
        .uri_query()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    assert_eq!(
        (req.code(), path.join("/"), query.join("&")),
        (Code::GET, "sensors/temp".into(), "unit=c".into())
    );
    let answer = format!("cssf saw {} /{}", req.code(), path.join("/"));
    let mut rsp = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, req.message_id());
    rsp.token(req.token()).unwrap().payload(answer.as_bytes());
    let mut plain = [0u8; 256];
    let len = rsp.emit(&mut plain).unwrap();
    let mut reply = [0u8; 256];
    let len = ours
        .protect_response(&mut binding, &plain[..len], false, &mut reply)
        .unwrap();
    sock.send_to(&reply[..len], from).unwrap();

    // aiocoap verified it and printed the payload.
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "aiocoap's client did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "aiocoap: {status}\n{out}\n{err}");
    assert_eq!(out.trim(), answer, "aiocoap printed:\n{out}\n{err}");
    assert!(err.contains("2.05 Content"), "{err}");

    // The captured request again: our replay window refuses it.
    let mut again = captured.clone();
    assert!(ours.unprotect_request(&mut again, &mut inner).is_err());
}
