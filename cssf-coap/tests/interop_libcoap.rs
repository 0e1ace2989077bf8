//! Interop with libcoap (`coap-server-notls` / `coap-client-notls`) on
//! loopback UDP, both directions: GET, PUT, POST, DELETE, Observe,
//! Block2, Block1 and `/.well-known/core` discovery.
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{peer_name, start_server_notls, INSTALL};
use cssf_coap::endpoint::{
    Config, Endpoint, Event, ExchangeId, Methods, Request, Resource, Response,
};
use cssf_coap::{Block, Code, ContentFormat};
use cssf_netsim::peer::{require_binary, ChildGuard};
use cssf_netsim::SimRng;

type Ep = Endpoint<SocketAddr, SimRng, 8, 64, 1152>;
/// The server remembers every message ID for EXCHANGE_LIFETIME (247 s):
/// a Block2 transfer of 5000 bytes in 64-byte blocks alone takes 79.
type ServerEp = Endpoint<SocketAddr, SimRng, 8, 512, 1152>;

/// A std UDP driver around a client endpoint.
struct Driver {
    ep: Box<Ep>,
    sock: UdpSocket,
    origin: Instant,
    peer: SocketAddr,
    name: String,
}

impl Driver {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn flush(&mut self) {
        let mut buf = [0u8; 1500];
        let now = self.now();
        while let Some(t) = self.ep.poll_transmit(now, &mut buf).unwrap() {
            self.sock.send_to(&buf[..t.len], t.to).unwrap();
        }
    }

    /// Pumps the endpoint until `on_event` returns true (or `limit` passes).
    fn run(
        &mut self,
        limit: Duration,
        mut on_event: impl FnMut(&mut Ep, Event<SocketAddr, 1152>) -> bool,
    ) {
        let end = Instant::now() + limit;
        loop {
            self.flush();
            while let Some(ev) = self.ep.poll_event() {
                if on_event(&mut self.ep, ev) {
                    self.flush();
                    return;
                }
                self.flush();
            }
            assert!(
                Instant::now() < end,
                "{}: no answer within {limit:?}",
                self.name
            );
            let wait = self
                .ep
                .poll_timeout()
                .map(|t| t.saturating_sub(self.now()))
                .unwrap_or(Duration::from_millis(100))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            let mut buf = [0u8; 1500];
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let now = self.now();
                    self.ep.handle_datagram(now, from, &mut buf[..n]).unwrap();
                }
                Err(_) => {
                    let now = self.now();
                    self.ep.handle_timeout(now);
                }
            }
        }
    }

    /// One request; returns the code and the reassembled (Block2) payload.
    fn call(&mut self, req: &Request<'_>) -> (Code, Vec<u8>) {
        let now = self.now();
        let id = self.ep.request(now, self.peer, req).unwrap();
        let mut body = Vec::new();
        let mut code = Code::EMPTY;
        let name = self.name.clone();
        self.run(Duration::from_secs(20), |_, ev| match ev {
            Event::Response {
                id: got,
                response,
                last,
                ..
            } if got == id => {
                body.extend_from_slice(response.payload());
                code = response.code();
                last
            }
            Event::Timeout { id: got } | Event::Reset { id: got } if got == id => {
                panic!("{name}: {} {} timed out or was reset", req.method, req.path)
            }
            _ => false,
        });
        (code, body)
    }
}

#[test]
fn our_client_against_libcoap_server() {
    if !require_binary("coap-server-notls", INSTALL) {
        return;
    }
    let name = peer_name("coap-server-notls");
    let (_server, port) = start_server_notls(&name, &["-d", "10"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut d = Driver {
        ep: Box::new(Endpoint::new(Config::default(), SimRng::new(5), &[])),
        sock,
        origin: Instant::now(),
        peer: SocketAddr::from(([127, 0, 0, 1], port)),
        name: name.clone(),
    };

    // Discovery.
    let (code, body) = d.call(&Request::get(".well-known/core"));
    let links = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, Code::CONTENT, "{name}: GET /.well-known/core");
    assert!(
        links.contains("</time>") && links.contains("</example_data>"),
        "{name}: links {links}"
    );

    // GET.
    let (code, body) = d.call(&Request::get("time"));
    assert_eq!(code, Code::CONTENT, "{name}: GET /time");
    assert!(!body.is_empty(), "{name}: GET /time empty");

    // PUT then GET.
    let put = Request::put("example_data")
        .content_format(ContentFormat::TEXT_PLAIN)
        .payload(b"hello from cssf");
    let (code, _) = d.call(&put);
    assert!(code.is_success(), "{name}: PUT /example_data gave {code}");
    let (code, body) = d.call(&Request::get("example_data"));
    assert_eq!(
        (code, &body[..]),
        (Code::CONTENT, &b"hello from cssf"[..]),
        "{name}: GET after PUT"
    );

    // Block1 upload (64-byte blocks, libcoap answers 2.31 per block), then
    // Block2 download with 64-byte blocks (the endpoint follows the blocks).
    let data: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let szx = 2u8;
    let mut offset = 0;
    loop {
        let end = (offset + 64).min(data.len());
        let b = Block::at_offset(offset, end < data.len(), szx).unwrap();
        let mut r = Request::put("example_data")
            .content_format(ContentFormat::TEXT_PLAIN)
            .block1(b, &data[offset..end]);
        if offset == 0 {
            r = r.size1(data.len() as u32);
        }
        let (code, _) = d.call(&r);
        if end == data.len() {
            assert!(
                code.is_success() && code != Code::CONTINUE,
                "{name}: last Block1 gave {code}"
            );
            break;
        }
        assert_eq!(
            code,
            Code::CONTINUE,
            "{name}: Block1 at {offset} gave {code}"
        );
        offset = end;
    }
    let (code, body) =
        d.call(&Request::get("example_data").block2(Block::new(0, false, szx).unwrap()));
    assert_eq!(code, Code::CONTENT, "{name}: Block2 GET");
    assert!(
        body == data,
        "{name}: Block2 download differs ({} bytes)",
        body.len()
    );

    // POST and DELETE on a dynamic resource (-d).
    let (code, _) = d.call(&Request::put("dyn1").payload(b"x"));
    assert_eq!(code, Code::CREATED, "{name}: PUT /dyn1 (dynamic)");
    let (code, _) = d.call(&Request::post("dyn1").payload(b"y"));
    assert!(code.is_success(), "{name}: POST /dyn1 gave {code}");
    let (code, _) = d.call(&Request::delete("dyn1"));
    assert_eq!(code, Code::DELETED, "{name}: DELETE /dyn1");
    let (code, _) = d.call(&Request::get("dyn1"));
    assert_eq!(code, Code::NOT_FOUND, "{name}: GET /dyn1 after DELETE");

    // Observe /time: registration plus at least two notifications, then cancel.
    let now = d.now();
    let id: ExchangeId =
        d.ep.request(now, d.peer, &Request::get("time").observe())
            .unwrap();
    let mut seen = 0;
    d.run(Duration::from_secs(15), |_, ev| {
        match ev {
            Event::Notification {
                id: got,
                notification,
                ..
            } if got == id => {
                assert_eq!(
                    notification.code(),
                    Code::CONTENT,
                    "{name}: notification code"
                );
                seen += 1;
            }
            Event::Response { id: got, .. } if got == id => {
                panic!("{name}: observe not established")
            }
            _ => {}
        }
        seen >= 3
    });
    let now = d.now();
    d.ep.cancel_observe(now, id).unwrap();
    let mut ended = false;
    d.run(Duration::from_secs(15), |_, ev| {
        if let Event::Response {
            id: got, response, ..
        } = ev
        {
            if got == id {
                assert_eq!(response.code(), Code::CONTENT, "{name}: cancel answer");
                assert!(
                    response.message().unwrap().observe().unwrap().is_none(),
                    "{name}: still observing"
                );
                ended = true;
            }
        }
        ended
    });
}

// ---- their client against our server ----

static RESOURCES: [Resource; 4] = [
    Resource::new("time", Methods::GET)
        .rt("clock")
        .ct(0)
        .observable(),
    Resource::new("example_data", Methods::ALL).ct(0),
    Resource::new("big", Methods::GET).ct(0).sz(5000),
    Resource::new("fresh", Methods::PUT).echo(),
];

struct OurServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    stored: Arc<Mutex<Vec<u8>>>,
}

impl Drop for OurServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn big_body() -> Vec<u8> {
    (0..5000u32).map(|i| b'0' + (i % 10) as u8).collect()
}

fn start_our_server() -> OurServer {
    // Bind port 0 and read the port back: picking a free port first and
    // binding it later races with the peers other tests start meanwhile.
    let sock = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(Mutex::new(b"initial".to_vec()));
    let (stop2, stored2) = (stop.clone(), stored.clone());
    let thread = std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let origin = Instant::now();
            let mut ep: Box<ServerEp> =
                Box::new(Endpoint::new(Config::default(), SimRng::new(9), &RESOURCES));
            let big = big_body();
            let mut tick = 0u32;
            let mut next_tick = Duration::from_millis(500);
            let mut upload: Vec<u8> = Vec::new();
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::SeqCst) {
                let now = origin.elapsed();
                while let Some(t) = ep.poll_transmit(now, &mut buf).unwrap() {
                    let _ = sock.send_to(&buf[..t.len], t.to);
                }
                while let Some(ev) = ep.poll_event() {
                    let Event::Request {
                        id,
                        resource,
                        request,
                        ..
                    } = ev
                    else {
                        continue;
                    };
                    let msg = request.message().unwrap();
                    let code = request.code();
                    let text;
                    let r = match (resource, code) {
                        (0, _) => {
                            text = format!("tick {tick}");
                            Response::new(Code::CONTENT).payload(text.as_bytes())
                        }
                        (1, Code::GET) => {
                            text = String::from_utf8_lossy(&stored2.lock().unwrap()).into_owned();
                            Response::new(Code::CONTENT).payload(text.as_bytes())
                        }
                        (1, Code::PUT) => {
                            match msg.block1().unwrap() {
                                Some(b) => {
                                    if b.num() == 0 {
                                        upload.clear();
                                    }
                                    upload.truncate(b.offset());
                                    upload.extend_from_slice(request.payload());
                                    if !b.more() {
                                        *stored2.lock().unwrap() = upload.clone();
                                    }
                                }
                                None => *stored2.lock().unwrap() = request.payload().to_vec(),
                            }
                            Response::new(Code::CHANGED)
                        }
                        (1, Code::POST) => Response::new(Code::CREATED).payload(b"posted"),
                        (1, _) => Response::new(Code::DELETED).payload(b"deleted"),
                        (2, _) => Response::new(Code::CONTENT).payload(&big),
                        _ => Response::new(Code::CHANGED).payload(b"fresh ok"),
                    };
                    ep.respond(now, id, &r).unwrap();
                }
                while let Some(t) = ep.poll_transmit(now, &mut buf).unwrap() {
                    let _ = sock.send_to(&buf[..t.len], t.to);
                }
                if now >= next_tick {
                    tick += 1;
                    next_tick = now + Duration::from_millis(500);
                    let text = format!("tick {tick}");
                    ep.notify(
                        now,
                        "time",
                        &Response::new(Code::CONTENT).payload(text.as_bytes()),
                    )
                    .unwrap();
                    continue;
                }
                let wait = ep
                    .poll_timeout()
                    .map(|t| t.saturating_sub(now))
                    .unwrap_or(Duration::from_millis(50))
                    .clamp(Duration::from_millis(1), Duration::from_millis(50));
                sock.set_read_timeout(Some(wait)).unwrap();
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => ep
                        .handle_datagram(origin.elapsed(), from, &mut buf[..n])
                        .unwrap(),
                    Err(_) => ep.handle_timeout(origin.elapsed()),
                }
            }
        })
        .unwrap();
    OurServer {
        port,
        stop,
        thread: Some(thread),
        stored,
    }
}

/// Runs coap-client-notls with a bounded wait; returns stdout + stderr.
fn client(args: &[&str]) -> String {
    let child = Command::new("coap-client-notls")
        .args(["-B", "20"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(child);
    let end = Instant::now() + Duration::from_secs(30);
    while guard.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < end,
            "coap-client-notls {args:?} did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    use std::io::Read;
    if let Some(mut s) = guard.0.stdout.take() {
        s.read_to_string(&mut out).unwrap();
    }
    if let Some(mut s) = guard.0.stderr.take() {
        s.read_to_string(&mut out).unwrap();
    }
    out
}

#[test]
fn libcoap_client_against_our_server() {
    if !require_binary("coap-client-notls", INSTALL) {
        return;
    }
    let name = peer_name("coap-client-notls");
    let server = start_our_server();
    let base = format!("coap://127.0.0.1:{}", server.port);

    let out = client(&["-m", "get", &format!("{base}/.well-known/core")]);
    assert!(
        out.contains("</time>;rt=\"clock\";ct=0;obs") && out.contains("</big>;ct=0;sz=5000"),
        "{name}: discovery: {out}"
    );
    let out = client(&["-m", "get", &format!("{base}/.well-known/core?rt=clock")]);
    assert!(
        out.contains("</time>") && !out.contains("</big>"),
        "{name}: filtered discovery: {out}"
    );

    let out = client(&["-m", "get", &format!("{base}/time")]);
    assert!(out.contains("tick"), "{name}: GET /time: {out}");

    let out = client(&[
        "-m",
        "put",
        "-e",
        "hello-libcoap",
        &format!("{base}/example_data"),
    ]);
    assert!(
        !out.contains("4.") && !out.contains("5."),
        "{name}: PUT: {out}"
    );
    let out = client(&["-m", "get", &format!("{base}/example_data")]);
    assert!(
        out.contains("hello-libcoap"),
        "{name}: GET after PUT: {out}"
    );

    let out = client(&["-m", "post", "-e", "x", &format!("{base}/example_data")]);
    assert!(out.contains("posted"), "{name}: POST: {out}");
    let out = client(&["-m", "delete", &format!("{base}/example_data")]);
    assert!(out.contains("deleted"), "{name}: DELETE: {out}");

    let out = client(&["-m", "get", &format!("{base}/nothing")]);
    assert!(out.contains("4.04"), "{name}: 4.04 expected: {out}");

    // Block2 with 64-byte blocks.
    let dir = std::env::temp_dir();
    let got = dir.join(format!("cssf-coap-interop-{}-big.out", server.port));
    let _ = client(&[
        "-m",
        "get",
        "-b",
        "64",
        "-o",
        got.to_str().unwrap(),
        &format!("{base}/big"),
    ]);
    let body = std::fs::read(&got).unwrap_or_default();
    let _ = std::fs::remove_file(&got);
    assert!(
        body == big_body(),
        "{name}: Block2 download of 5000 bytes got {} bytes",
        body.len()
    );

    // Block1 upload with 64-byte blocks.
    let upload: Vec<u8> = (0..3000u32).map(|i| b'A' + (i % 26) as u8).collect();
    let file = dir.join(format!("cssf-coap-interop-{}-up.in", server.port));
    std::fs::write(&file, &upload).unwrap();
    let out = client(&[
        "-m",
        "put",
        "-b",
        "64",
        "-f",
        file.to_str().unwrap(),
        &format!("{base}/example_data"),
    ]);
    let _ = std::fs::remove_file(&file);
    assert!(
        *server.stored.lock().unwrap() == upload,
        "{name}: Block1 upload did not arrive intact ({} bytes stored): {out}",
        server.stored.lock().unwrap().len()
    );

    // Echo (RFC 9175): our 4.01 + Echo, libcoap retries with the value.
    let out = client(&["-m", "put", "-e", "on", &format!("{base}/fresh")]);
    assert!(out.contains("fresh ok"), "{name}: Echo retry: {out}");

    // Observe for 3 s: the registration answer plus notifications every 500 ms.
    let out = client(&["-s", "3", &format!("{base}/time")]);
    let ticks = out.matches("tick").count();
    assert!(ticks >= 3, "{name}: observe produced {ticks} lines: {out}");
}

/// `Endpoint::upload` (the endpoint drives Block1 itself) against libcoap's
/// /example_data, then the body read back block-wise.
#[test]
fn our_automatic_upload_against_libcoap_server() {
    if !require_binary("coap-server-notls", INSTALL) {
        return;
    }
    let name = peer_name("coap-server-notls");
    let (_server, port) = start_server_notls(&name, &[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut d = Driver {
        ep: Box::new(Endpoint::new(Config::default(), SimRng::new(6), &[])),
        sock,
        origin: Instant::now(),
        peer: SocketAddr::from(([127, 0, 0, 1], port)),
        name: name.clone(),
    };
    for (len, szx) in [(4000usize, 6u8), (3000, 2)] {
        *d.ep = Endpoint::new(
            Config {
                max_szx: szx,
                ..Config::default()
            },
            SimRng::new(len as u64),
            &[],
        );
        let data: Vec<u8> = (0..len).map(|i| b'A' + (i % 23) as u8).collect();
        let now = d.now();
        let put = Request::put("example_data")
            .content_format(ContentFormat::TEXT_PLAIN)
            .payload(&data);
        let id = d.ep.upload(now, d.peer, &put).unwrap();
        let mut result = None;
        d.run(Duration::from_secs(30), |_, ev| match ev {
            Event::Response {
                id: got,
                response,
                last,
                ..
            } if got == id => {
                assert!(
                    last,
                    "{name}: upload of {len} bytes: more than one response"
                );
                result = Some(response.code());
                true
            }
            Event::Timeout { id: got } | Event::Reset { id: got } if got == id => {
                panic!("{name}: upload of {len} bytes (SZX {szx}) timed out or was reset")
            }
            _ => false,
        });
        let code = result.unwrap();
        assert!(
            code.is_success() && code != Code::CONTINUE,
            "{name}: upload of {len} bytes (SZX {szx}) gave {code}"
        );
        let (code, body) = d.call(&Request::get("example_data"));
        assert_eq!(code, Code::CONTENT, "{name}: GET after upload");
        assert!(
            body == data,
            "{name}: body read back differs after upload of {len} bytes (SZX {szx}): {} bytes",
            body.len()
        );
    }
}
