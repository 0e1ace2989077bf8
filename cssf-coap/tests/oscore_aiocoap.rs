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
//!   refused by our replay window;
//! - aiocoap's client against our `Endpoint` (RFC 8613 §4.1.3.4.1,
//!   §4.1.3.5): it GETs a resource larger than one block (inner Block2,
//!   each block its own protected request) and gets the whole body, then
//!   observes a resource and verifies the registration answer and three
//!   notifications, each of which carries its own Partial IV;
//! - our `Endpoint`'s `request_protected` against an aiocoap server (a
//!   small site behind aiocoap's OSCORE site wrapper): a large resource
//!   reassembled from protected Block2 blocks, and an observation whose
//!   notifications (each with aiocoap's own Partial IV) verify and arrive
//!   as `Event::Notification`s, in order, until we cancel it; and a
//!   protected Block1 upload (`upload_protected`) aiocoap reassembles.
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

use cssf_coap::endpoint::{self, Endpoint, Methods, Resource, Response};
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

/// `len` bytes of a recognisable body.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The Partial IV of a protected message's OSCORE option, as a number.
fn partial_iv(datagram: &[u8]) -> Option<u64> {
    let m = Message::parse(datagram).ok()?;
    let opt =
        cssf_coap::oscore::OscoreOption::parse(m.option(cssf_coap::OptionNumber::OSCORE)?).ok()?;
    opt.partial_iv
        .map(|p| p.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

/// Waits for a child and returns its stdout and stderr (`None` on
/// timeout).
fn finish(child: &mut ChildGuard, within: Duration) -> Option<(bool, String, String)> {
    use std::io::Read;
    let end = Instant::now() + within;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
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
    Some((status.success(), out, err))
}

/// aiocoap's client with the context in `creds`: GETs `/big` (printing
/// its length and body), then observes `/obs`, printing each payload,
/// until it has the registration answer and three notifications.
const AIOCOAP_OBSERVER: &str = r#"
import asyncio, json, sys
import aiocoap
async def main():
    ctx = await aiocoap.Context.create_client_context()
    ctx.client_credentials.load_from_dict(json.load(open(sys.argv[1])))
    base = sys.argv[2]
    r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=base + "/big")).response
    print("BIG", r.code, len(r.payload), r.payload.decode(), flush=True)
    req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=base + "/obs", observe=0))
    first = await req.response
    print("N", first.code, first.payload.decode(), flush=True)
    n = 0
    async for m in req.observation:
        print("N", m.code, m.payload.decode(), flush=True)
        n += 1
        if n == 3:
            req.observation.cancel()
            break
    await ctx.shutdown()
asyncio.run(main())
"#;

static OUR_RESOURCES: [Resource; 2] = [
    Resource::new("obs", Methods::GET).observable(),
    Resource::new("big", Methods::GET).requires_oscore(),
];

#[test]
fn aiocoap_client_observes_and_fetches_blocks_from_our_endpoint() {
    if !aiocoap_ready() {
        return;
    }
    let dir = Dir::new("observer");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
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
    let script = dir.0.join("observer.py");
    std::fs::write(&script, AIOCOAP_OBSERVER).unwrap();
    let mut child = ChildGuard(
        Command::new("python3")
            .arg(&script)
            .arg(&creds)
            .arg(format!("coap://127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    // Our endpoint: 64-byte blocks, so the 300-byte resource takes five.
    // (No amplification limit on loopback: aiocoap's address is never
    // in doubt here, and its Echo handling is not under test.)
    let cfg = endpoint::Config {
        max_szx: 2,
        amplification_factor: 0,
        ..endpoint::Config::default()
    };
    let mut ep: Endpoint<SocketAddr, SimRng> = Endpoint::new(cfg, SimRng::new(5), &OUR_RESOURCES);
    ep.add_oscore_context(our_context(&[1], b"")).unwrap();
    let whole = body(300);
    let origin = Instant::now();
    let end = origin + Duration::from_secs(60);
    let mut buf = [0u8; 1500];
    let mut notified = 0u8;
    let mut big_requests = 0;
    let mut note_pivs = Vec::new();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "aiocoap's client did not finish");
        let now = origin.elapsed();
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => ep.handle_datagram(now, from, &mut buf[..n]).unwrap(),
            Err(_) => ep.handle_timeout(now),
        }
        while let Some(ev) = ep.poll_event() {
            if let cssf_coap::Event::Request {
                id,
                resource,
                request,
                ..
            } = ev
            {
                assert!(request.security().is_oscore(), "a plain request came");
                let r = if resource == 1 {
                    big_requests += 1;
                    Response::new(Code::CONTENT).payload(&whole)
                } else {
                    Response::new(Code::CONTENT).payload(b"n0")
                };
                ep.respond(now, id, &r).unwrap();
            }
        }
        // Once aiocoap observes, a notification per round, three in all.
        if ep.observer_count() == 1 && notified < 3 {
            notified += 1;
            let payload = format!("n{notified}");
            ep.notify(
                now,
                "obs",
                &Response::new(Code::CONTENT).payload(payload.as_bytes()),
            )
            .unwrap();
        }
        while let Some(tx) = ep.poll_transmit(now, &mut buf).unwrap() {
            let m = Message::parse(&buf[..tx.len]).unwrap();
            if m.code().is_response() && m.observe().unwrap().is_some() {
                note_pivs.push(partial_iv(&buf[..tx.len]));
            }
            sock.send_to(&buf[..tx.len], tx.to).unwrap();
        }
    }
    let (ok, out, err) = finish(&mut child, Duration::from_secs(5)).unwrap();
    assert!(ok, "aiocoap failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("BIG 2.05 Content 300 {}", String::from_utf8(whole).unwrap()).as_str()),
        "aiocoap printed:\n{out}\n{err}"
    );
    assert_eq!(big_requests, 5, "one protected request per block");
    assert_eq!(
        &lines[1..],
        &[
            "N 2.05 Content n0",
            "N 2.05 Content n1",
            "N 2.05 Content n2",
            "N 2.05 Content n3"
        ],
        "aiocoap printed:\n{out}\n{err}"
    );
    // The registration answer may use the request's nonce; every
    // notification after it carries a Partial IV of its own, increasing.
    let own: Vec<u64> = note_pivs.iter().skip(1).map(|p| p.unwrap()).collect();
    assert_eq!(own.len(), 3, "{note_pivs:?}");
    assert!(own.windows(2).all(|w| w[0] < w[1]), "{own:?}");
    assert_eq!(ep.stats().oscore_refused, 0);
}

/// An aiocoap server (argv: credentials file, port) whose site, behind
/// aiocoap's OSCORE site wrapper, has `/obs` (observable; its state
/// changes every 100 ms), `/big` (2500 bytes: three of aiocoap's
/// 1024-byte blocks) and `/up` (PUT: answers with the length and byte sum
/// of the body it reassembled).
const AIOCOAP_SERVER: &str = r#"
import asyncio, json, sys
import aiocoap, aiocoap.resource as resource
from aiocoap.credentials import CredentialsMap
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
BODY = bytes(ord("a") + (i % 26) for i in range(2500))
class Obs(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.n = 0
    async def render_get(self, request):
        return aiocoap.Message(payload=b"n%d" % self.n)
class Big(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=BODY)
class Up(resource.Resource):
    async def render_put(self, request):
        body = request.payload
        text = "len=%d sum=%d" % (len(body), sum(body) % 65536)
        return aiocoap.Message(code=aiocoap.CHANGED, payload=text.encode())
async def main():
    root = resource.Site()
    obs = Obs()
    root.add_resource(["obs"], obs)
    root.add_resource(["big"], Big())
    root.add_resource(["up"], Up())
    creds = CredentialsMap()
    creds.load_from_dict(json.load(open(sys.argv[1])))
    site = OscoreSiteWrapper(root, creds)
    await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", int(sys.argv[2])), server_credentials=creds
    )
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.1)
        obs.n += 1
        obs.updated_state()
asyncio.run(main())
"#;

/// Runs our endpoint's pending output to `to` and feeds it what arrives
/// for up to `wait`, returning the events it produced.
fn pump_client(
    ep: &mut Endpoint<SocketAddr, SimRng>,
    sock: &UdpSocket,
    origin: Instant,
    wait: Duration,
) -> Vec<cssf_coap::Event<SocketAddr, 1152>> {
    let mut buf = [0u8; 1500];
    let end = Instant::now() + wait;
    let mut events = Vec::new();
    loop {
        let now = origin.elapsed();
        while let Some(tx) = ep.poll_transmit(now, &mut buf).unwrap() {
            sock.send_to(&buf[..tx.len], tx.to).unwrap();
        }
        while let Some(ev) = ep.poll_event() {
            events.push(ev);
        }
        if !events.is_empty() || Instant::now() > end {
            return events;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => ep.handle_datagram(now, from, &mut buf[..n]).unwrap(),
            Err(_) => ep.handle_timeout(now),
        }
    }
}

#[test]
fn our_endpoint_observes_and_fetches_blocks_from_aiocoap_over_oscore() {
    if !aiocoap_ready() {
        return;
    }
    let dir = Dir::new("site");
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
    let script = dir.0.join("site.py");
    std::fs::write(&script, AIOCOAP_SERVER).unwrap();
    let port = free_udp_port();
    let _server = ChildGuard(
        Command::new("python3")
            .arg(&script)
            .arg(&creds)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.0.join("server.err")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(30);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < end, "the aiocoap server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = || std::fs::read_to_string(dir.0.join("server.err")).unwrap_or_default();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut ep: Endpoint<SocketAddr, SimRng> =
        Endpoint::new(endpoint::Config::default(), SimRng::new(9), &[]);
    let c = ep.add_oscore_context(our_context(b"", &[1])).unwrap();
    let origin = Instant::now();

    // The large resource, block by block, each a protected request.
    let id = ep
        .request_protected(origin.elapsed(), to, &endpoint::Request::get("big"), c)
        .unwrap();
    let mut got = Vec::new();
    let mut blocks = 0;
    'big: loop {
        let evs = pump_client(&mut ep, &sock, origin, Duration::from_secs(20));
        assert!(
            !evs.is_empty(),
            "no block within 20 s; aiocoap:\n{}",
            stderr()
        );
        for ev in evs {
            match ev {
                cssf_coap::Event::Response {
                    id: x,
                    response,
                    last,
                    ..
                } => {
                    assert_eq!(x, id);
                    assert_eq!(response.code(), Code::CONTENT, "aiocoap:\n{}", stderr());
                    assert!(response.security().is_oscore());
                    got.extend_from_slice(response.payload());
                    blocks += 1;
                    if last {
                        break 'big;
                    }
                }
                other => panic!("{other:?}; aiocoap:\n{}", stderr()),
            }
        }
    }
    assert_eq!(got, body(2500));
    assert_eq!(blocks, 3, "1024 + 1024 + 452 bytes");

    // The observation: the registration answer and three notifications,
    // in order, each verified.
    let id = ep
        .request_protected(
            origin.elapsed(),
            to,
            &endpoint::Request::get("obs").observe(),
            c,
        )
        .unwrap();
    let mut seen: Vec<u32> = Vec::new();
    while seen.len() < 4 {
        let evs = pump_client(&mut ep, &sock, origin, Duration::from_secs(20));
        assert!(
            !evs.is_empty(),
            "no notification within 20 s; aiocoap:\n{}",
            stderr()
        );
        for ev in evs {
            match ev {
                cssf_coap::Event::Notification {
                    id: x,
                    notification,
                    ..
                } => {
                    assert_eq!(x, id);
                    assert!(notification.security().is_oscore());
                    let text = String::from_utf8(notification.payload().to_vec()).unwrap();
                    let n: u32 = text.strip_prefix('n').unwrap().parse().unwrap();
                    seen.push(n);
                }
                other => panic!("{other:?}; aiocoap:\n{}", stderr()),
            }
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(ep.stats().oscore_refused, 0);
    // Cancel: a protected GET with Observe 1; aiocoap answers it.
    ep.cancel_observe(origin.elapsed(), id).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let evs = pump_client(&mut ep, &sock, origin, Duration::from_secs(20));
        if evs
            .iter()
            .any(|e| matches!(e, cssf_coap::Event::Response { id: x, last: true, .. } if x == &id))
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "no answer to the cancellation; aiocoap:\n{}",
            stderr()
        );
    }
    assert_eq!(ep.exchange_count(), 0);

    // A protected Block1 upload: three blocks, each its own protected
    // request; aiocoap reassembles the body behind its OSCORE layer.
    let up = body(2500);
    let id = ep
        .upload_protected(
            origin.elapsed(),
            to,
            &endpoint::Request::put("up").payload(&up),
            c,
        )
        .unwrap();
    let evs = pump_client(&mut ep, &sock, origin, Duration::from_secs(20));
    match evs.as_slice() {
        [cssf_coap::Event::Response {
            id: x,
            response,
            last: true,
            ..
        }] => {
            assert_eq!(*x, id);
            assert!(response.security().is_oscore());
            assert_eq!(response.code(), Code::CHANGED, "aiocoap:\n{}", stderr());
            let sum: u32 = up.iter().map(|&b| u32::from(b)).sum::<u32>() % 65536;
            assert_eq!(
                response.payload(),
                format!("len=2500 sum={sum}").as_bytes(),
                "aiocoap:\n{}",
                stderr()
            );
        }
        other => panic!("{other:?}; aiocoap:\n{}", stderr()),
    }
    assert_eq!(ep.stats().oscore_refused, 0);
}
