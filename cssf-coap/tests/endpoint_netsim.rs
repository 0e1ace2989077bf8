//! The endpoint as client and server over the seeded in-memory network
//! (`cssf-netsim`) with loss, duplication and reordering. Every failure
//! message names the seed so the run can be replayed.
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::time::Duration;

use cssf_coap::endpoint::{
    BlockAssembler, Config, Endpoint, Event, ExchangeId, Methods, Request, RequestId, Resource,
    Response,
};
use cssf_coap::{Block, Code};
use cssf_netsim::{LinkConfig, Node, Sim, SimRng};

const SERVER: u8 = 0;

static RESOURCES: [Resource; 6] = [
    Resource::new("echo", Methods::POST),
    Resource::new("big", Methods::GET),
    Resource::new("upload", Methods::PUT),
    Resource::new("obs", Methods::GET).observable(),
    Resource::new("fresh", Methods::PUT).echo(),
    Resource::new("bigobs", Methods::GET).observable(),
];

/// The /bigobs representation for value `v` (several Block2 blocks); its
/// ETag is `v` big-endian.
fn big_rep(v: u32) -> Vec<u8> {
    (0..2500u32).map(|i| (i * 7 + v) as u8).collect()
}

/// RFC defaults except MAX_RETRANSMIT: with 20% loss each way a CON
/// attempt fails with p = 0.36, so with the RFC's 4 retransmissions ~0.6%
/// of 1,000 requests time out (see `rfc_defaults_every_request_ends_exactly_once`);
/// with 10 (11 attempts, p = 1.3e-5 per request) all of them complete.
fn config() -> Config {
    Config {
        max_retransmit: 10,
        ..Config::default()
    }
}

type Ep<const D: usize, const M: usize> = Endpoint<u8, SimRng, 8, D, M, { 16 * 1024 }>;

struct Server<const D: usize, const M: usize> {
    ep: Box<Ep<D, M>>,
    /// How often the handler ran per request payload.
    handled: HashMap<Vec<u8>, u32>,
    big: Vec<u8>,
    uploaded: Vec<u8>,
    /// Block1 requests the /upload handler saw, by block size.
    upload_blocks: HashMap<usize, u32>,
    obs_value: u32,
    /// Every `late_every`-th /echo request is answered 1.5 s later, after
    /// the endpoint's Empty ACK (a separate response, RFC 7252 §5.2.2).
    late_every: u32,
    late: Vec<(RequestId, Vec<u8>, Duration)>,
    seen: u32,
}

impl<const D: usize, const M: usize> Server<D, M> {
    fn new(seed: u64, config: Config) -> Self {
        Server {
            ep: Box::new(Endpoint::new(config, SimRng::new(seed ^ 0xabc), &RESOURCES)),
            handled: HashMap::new(),
            big: (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect(),
            uploaded: Vec::new(),
            upload_blocks: HashMap::new(),
            obs_value: 0,
            late_every: 0,
            late: Vec::new(),
            seen: 0,
        }
    }

    fn app(&mut self, now: Duration) {
        let due: Vec<_> = self.late.iter().filter(|l| l.2 <= now).cloned().collect();
        self.late.retain(|l| l.2 > now);
        for (id, payload, _) in due {
            let r = Response::new(Code::CONTENT).payload(&payload);
            self.ep.respond(now, id, &r).unwrap();
        }
        while let Some(ev) = self.ep.poll_event() {
            let Event::Request {
                id,
                resource,
                request,
                ..
            } = ev
            else {
                continue;
            };
            let payload = request.payload().to_vec();
            let msg = request.message().unwrap();
            match resource {
                0 => {
                    *self.handled.entry(payload.clone()).or_default() += 1;
                    self.seen += 1;
                    if self.late_every != 0 && self.seen % self.late_every == 0 {
                        self.late
                            .push((id, payload, now + Duration::from_millis(1500)));
                        continue;
                    }
                    let r = Response::new(Code::CONTENT).payload(&payload);
                    self.ep.respond(now, id, &r).unwrap();
                }
                1 => {
                    let r = Response::new(Code::CONTENT).payload(&self.big);
                    self.ep.respond(now, id, &r).unwrap();
                }
                2 => {
                    let b = msg.block1().unwrap().expect("Block1 upload");
                    assert_eq!(
                        b.offset(),
                        self.uploaded.len(),
                        "blocks must arrive in order"
                    );
                    self.uploaded.extend_from_slice(&payload);
                    *self.upload_blocks.entry(b.size()).or_default() += 1;
                    self.ep
                        .respond(now, id, &Response::new(Code::CHANGED))
                        .unwrap();
                }
                3 => {
                    let v = self.obs_value.to_be_bytes();
                    self.ep
                        .respond(now, id, &Response::new(Code::CONTENT).payload(&v))
                        .unwrap();
                }
                5 => {
                    let rep = big_rep(self.obs_value);
                    let etag = self.obs_value.to_be_bytes();
                    let mut r = Response::new(Code::CONTENT).payload(&rep);
                    r.etag = Some(&etag);
                    self.ep.respond(now, id, &r).unwrap();
                }
                _ => {
                    *self.handled.entry(payload.clone()).or_default() += 1;
                    self.ep
                        .respond(now, id, &Response::new(Code::CHANGED))
                        .unwrap();
                }
            }
        }
    }
}

impl<const D: usize, const M: usize> Node<u8> for Server<D, M> {
    fn addr(&self) -> u8 {
        SERVER
    }
    fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
        self.ep.handle_datagram(now, from, data).unwrap();
        self.app(now);
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.ep.handle_timeout(now);
        self.app(now);
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        self.ep
            .poll_transmit(now, buf)
            .unwrap()
            .map(|t| (t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        let late = self.late.iter().map(|l| l.2).min();
        [self.ep.poll_timeout(), late].into_iter().flatten().min()
    }
}

/// What the client application does.
enum Job {
    /// POST /echo `total` times, `window` at once.
    Requests {
        next: u32,
        total: u32,
        window: usize,
        got: HashMap<Vec<u8>, u32>,
    },
    /// GET /big, reassembled.
    Download { body: Vec<u8>, done: bool },
    /// PUT /upload block by block.
    Upload {
        data: Vec<u8>,
        offset: usize,
        szx: u8,
        done: bool,
        tag: [u8; 2],
    },
    /// Observe /obs.
    Observe { values: Vec<u32> },
    /// PUT /fresh (needs Echo).
    Fresh { code: Option<Code> },
    /// PUT /upload with `Endpoint::upload` (the endpoint drives Block1).
    AutoUpload {
        data: Vec<u8>,
        result: Option<Code>,
        responses: u32,
    },
    /// Observe /bigobs: notifications span several Block2 blocks.
    ObserveBig { buf: Vec<u8>, bodies: Vec<Vec<u8>> },
}

struct Client<const D: usize, const M: usize> {
    addr: u8,
    ep: Box<Ep<D, M>>,
    job: Job,
    timeouts: u32,
    open: Vec<ExchangeId>,
    asm: BlockAssembler,
}

impl<const D: usize, const M: usize> Client<D, M> {
    fn new(addr: u8, seed: u64, config: Config, job: Job) -> Self {
        Client {
            addr,
            ep: Box::new(Endpoint::new(
                config,
                SimRng::new(seed ^ u64::from(addr)),
                &[],
            )),
            job,
            timeouts: 0,
            open: Vec::new(),
            asm: BlockAssembler::new(),
        }
    }

    fn start(&mut self, now: Duration) {
        match &mut self.job {
            Job::Download { .. } => {
                let id = self.ep.request(now, SERVER, &Request::get("big")).unwrap();
                self.open.push(id);
            }
            Job::Observe { .. } => {
                let id = self
                    .ep
                    .request(now, SERVER, &Request::get("obs").observe())
                    .unwrap();
                self.open.push(id);
            }
            Job::AutoUpload { data, .. } => {
                let r = Request::put("upload").payload(data).request_tag(&[9]);
                let id = self.ep.upload(now, SERVER, &r).unwrap();
                self.open.push(id);
            }
            Job::ObserveBig { .. } => {
                let id = self
                    .ep
                    .request(now, SERVER, &Request::get("bigobs").observe())
                    .unwrap();
                self.open.push(id);
            }
            Job::Fresh { .. } => {
                let r = Request::put("fresh").payload(b"on");
                let id = self.ep.request(now, SERVER, &r).unwrap();
                self.open.push(id);
            }
            Job::Upload { .. } => self.send_block(now),
            Job::Requests { .. } => {}
        }
        self.app(now);
    }

    fn send_block(&mut self, now: Duration) {
        let Job::Upload {
            data,
            offset,
            szx,
            tag,
            ..
        } = &self.job
        else {
            return;
        };
        let size = 16usize << *szx;
        let end = (*offset + size).min(data.len());
        let b = Block::at_offset(*offset, end < data.len(), *szx).unwrap();
        let mut r = Request::put("upload")
            .block1(b, &data[*offset..end])
            .request_tag(tag);
        if *offset == 0 {
            r = r.size1(data.len() as u32);
        }
        let id = self.ep.request(now, SERVER, &r).unwrap();
        self.open.push(id);
    }

    fn app(&mut self, now: Duration) {
        if let Job::Requests {
            next,
            total,
            window,
            ..
        } = &mut self.job
        {
            while *next < *total && self.open.len() < *window {
                let payload = format!("{}:{}", self.addr, *next);
                *next += 1;
                let id = self
                    .ep
                    .request(
                        now,
                        SERVER,
                        &Request::post("echo").payload(payload.as_bytes()),
                    )
                    .unwrap();
                self.open.push(id);
            }
        }
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                Event::Response {
                    id, last, response, ..
                } => {
                    if last {
                        self.open.retain(|x| *x != id);
                    }
                    match &mut self.job {
                        Job::Requests { got, .. } => {
                            assert_eq!(response.code(), Code::CONTENT);
                            *got.entry(response.payload().to_vec()).or_default() += 1;
                        }
                        Job::Download { body, done } => {
                            // Reassemble into a fixed caller buffer.
                            let len = self.asm.push(&mut body[..], &response).unwrap();
                            assert_eq!(len.is_some(), last, "last block flag");
                            if let Some(len) = len {
                                body.truncate(len);
                                *done = true;
                            }
                        }
                        Job::Upload {
                            offset,
                            szx,
                            done,
                            data,
                            ..
                        } => {
                            let b1 = response.message().unwrap().block1().unwrap().unwrap();
                            let sent = (16usize << *szx).min(data.len() - *offset);
                            if response.code() == Code::CONTINUE {
                                *offset += sent;
                                // The server may ask for smaller blocks (SZX negotiation).
                                *szx = (*szx).min(b1.szx());
                                self.send_block(now);
                            } else {
                                assert_eq!(response.code(), Code::CHANGED);
                                *done = true;
                            }
                        }
                        Job::Fresh { code } => *code = Some(response.code()),
                        Job::AutoUpload {
                            result, responses, ..
                        } => {
                            assert!(last, "an upload ends with one response");
                            *responses += 1;
                            *result = Some(response.code());
                        }
                        Job::Observe { .. } | Job::ObserveBig { .. } => {
                            panic!("observe registration ended")
                        }
                    }
                }
                Event::Notification {
                    notification, last, ..
                } => match &mut self.job {
                    Job::Observe { values } => {
                        assert!(last, "small notification split into blocks");
                        let v = u32::from_be_bytes(notification.payload().try_into().unwrap());
                        values.push(v);
                    }
                    Job::ObserveBig { buf, bodies } => {
                        let len = self.asm.push(&mut buf[..], &notification).unwrap();
                        assert_eq!(len.is_some(), last, "last block flag");
                        if let Some(len) = len {
                            bodies.push(buf[..len].to_vec());
                        }
                    }
                    _ => panic!("unexpected notification"),
                },
                Event::Timeout { id } | Event::Reset { id } => {
                    self.timeouts += 1;
                    self.open.retain(|x| *x != id);
                }
                _ => {}
            }
        }
        if let Job::Requests {
            next,
            total,
            window,
            ..
        } = &mut self.job
        {
            while *next < *total && self.open.len() < *window {
                let payload = format!("{}:{}", self.addr, *next);
                *next += 1;
                let id = self
                    .ep
                    .request(
                        now,
                        SERVER,
                        &Request::post("echo").payload(payload.as_bytes()),
                    )
                    .unwrap();
                self.open.push(id);
            }
        }
    }
}

impl<const D: usize, const M: usize> Node<u8> for Client<D, M> {
    fn addr(&self) -> u8 {
        self.addr
    }
    fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
        self.ep.handle_datagram(now, from, data).unwrap();
        self.app(now);
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.ep.handle_timeout(now);
        self.app(now);
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        self.ep
            .poll_transmit(now, buf)
            .unwrap()
            .map(|t| (t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.ep.poll_timeout()
    }
}

/// Runs `f` on a thread with a large stack (the endpoints hold their
/// fixed-capacity tables inline).
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn thousand_requests_exactly_once_under_loss_and_duplication() {
    big_stack(|| {
        for seed in [1u64, 2, 3] {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut server: Server<1024, 256> = Server::new(seed, config());
            server.late_every = 5;
            let mut clients: Vec<Client<1024, 256>> = (1..=4)
                .map(|a| {
                    let job = Job::Requests {
                        next: 0,
                        total: 250,
                        window: 2,
                        got: HashMap::new(),
                    };
                    Client::new(a, seed, config(), job)
                })
                .collect();
            for c in &mut clients {
                c.start(sim.now);
            }
            let [c1, c2, c3, c4] = &mut clients[..] else {
                unreachable!()
            };
            let mut nodes: [&mut dyn Node<u8>; 5] = [&mut server, c1, c2, c3, c4];
            sim.drive_bounded(&mut nodes, 2_000_000, |_| false).ok();
            let _ = nodes;
            let mut total = 0;
            for c in &clients {
                let Job::Requests { got, .. } = &c.job else {
                    unreachable!()
                };
                assert_eq!(c.timeouts, 0, "seed {seed}: client {} had timeouts", c.addr);
                assert_eq!(
                    got.len(),
                    250,
                    "seed {seed}: client {} got {} distinct responses",
                    c.addr,
                    got.len()
                );
                assert!(
                    got.values().all(|&n| n == 1),
                    "seed {seed}: a response was delivered twice"
                );
                total += got.len();
            }
            assert_eq!(total, 1000, "seed {seed}");
            assert_eq!(
                server.handled.len(),
                1000,
                "seed {seed}: handler saw {} requests",
                server.handled.len()
            );
            let twice: Vec<_> = server.handled.iter().filter(|(_, &n)| n != 1).collect();
            assert!(
                twice.is_empty(),
                "seed {seed}: handler ran more than once for {twice:?}"
            );
            let st = server.ep.stats();
            assert!(
                st.duplicates > 0,
                "seed {seed}: no duplicate was exercised: {:?} {st:?}",
                sim.net.stats
            );
            assert!(
                sim.net.stats.lost > 0 && sim.net.stats.duplicated > 0,
                "seed {seed}"
            );
        }
    });
}

/// With the RFC's MAX_RETRANSMIT 4 some exchanges legitimately fail at 20%
/// loss: each request still ends exactly once (a response or a timeout),
/// and the handler never runs twice.
#[test]
fn rfc_defaults_every_request_ends_exactly_once() {
    big_stack(|| {
        for seed in [101u64, 102] {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut server: Server<1024, 256> = Server::new(seed, Config::default());
            server.late_every = 7;
            let job = Job::Requests {
                next: 0,
                total: 500,
                window: 2,
                got: HashMap::new(),
            };
            let mut client: Client<1024, 256> = Client::new(1, seed, Config::default(), job);
            client.start(sim.now);
            sim.drive_bounded(&mut [&mut server, &mut client], 2_000_000, |_| false)
                .ok();
            let Job::Requests { got, .. } = &client.job else {
                unreachable!()
            };
            assert!(
                got.values().all(|&n| n == 1),
                "seed {seed}: a response was delivered twice"
            );
            assert_eq!(
                got.len() as u32 + client.timeouts,
                500,
                "seed {seed}: {} responses + {} timeouts",
                got.len(),
                client.timeouts
            );
            assert!(
                server.handled.values().all(|&n| n == 1),
                "seed {seed}: handler ran twice"
            );
            assert!(client.open.is_empty(), "seed {seed}: exchanges left open");
        }
    });
}

#[test]
fn observe_notifications_in_order_stale_dropped() {
    big_stack(|| {
        for seed in [11u64, 12, 13] {
            let mut link = LinkConfig::lossy(0.2);
            link.reorder = 0.3;
            let mut sim = Sim::new(seed, link);
            let mut server: Server<64, 256> = Server::new(seed, config());
            let mut client: Client<64, 256> =
                Client::new(1, seed, config(), Job::Observe { values: Vec::new() });
            client.start(sim.now);
            sim.drive_bounded(&mut [&mut server, &mut client], 100_000, |n| {
                let _ = n;
                false
            })
            .ok();
            // Registration is done (the first response is a notification too).
            let Job::Observe { values } = &client.job else {
                unreachable!()
            };
            assert_eq!(
                values.len(),
                1,
                "seed {seed}: registration response missing"
            );
            assert_eq!(server.ep.observer_count(), 1, "seed {seed}");
            for i in 1..=300u32 {
                server.obs_value = i;
                let v = i.to_be_bytes();
                server
                    .ep
                    .notify(sim.now, "obs", &Response::new(Code::CONTENT).payload(&v))
                    .unwrap();
                let until = sim.now + Duration::from_millis(50);
                sim.run_until(&mut [&mut server, &mut client], until);
            }
            sim.run_until(
                &mut [&mut server, &mut client],
                sim.now + Duration::from_secs(300),
            );
            let Job::Observe { values } = &client.job else {
                unreachable!()
            };
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "seed {seed}: out of order: {values:?}"
            );
            let stale = client.ep.stats().stale_notifications;
            assert!(
                stale > 0,
                "seed {seed}: no reordered notification was dropped ({:?})",
                sim.net.stats
            );
            assert!(
                values.len() > 150,
                "seed {seed}: only {} of 300 notifications",
                values.len()
            );
            // NON notifications may be lost for good, but the last CON one
            // (every `notify_con_every`-th, or newer ones replacing it) is
            // retransmitted until acknowledged.
            let every = config().notify_con_every;
            assert!(
                *values.last().unwrap() > 300 - every,
                "seed {seed}: last notification {} older than the last CON one",
                values.last().unwrap()
            );
        }
    });
}

#[test]
fn block2_download_64k_under_loss() {
    big_stack(|| {
        for seed in [21u64, 22] {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut server: Server<256, 1152> = Server::new(seed, config());
            let mut client: Client<256, 1152> = Client::new(
                1,
                seed,
                config(),
                Job::Download {
                    body: vec![0; 64 * 1024],
                    done: false,
                },
            );
            client.start(sim.now);
            let r = sim.drive_bounded(&mut [&mut server, &mut client], 1_000_000, |n| {
                let _ = n;
                false
            });
            let Job::Download { body, done } = &client.job else {
                unreachable!()
            };
            assert!(
                *done,
                "seed {seed}: download incomplete ({} bytes, {r:?})",
                body.len()
            );
            assert_eq!(body.len(), 64 * 1024, "seed {seed}");
            assert!(*body == server.big, "seed {seed}: content differs");
            assert_eq!(client.timeouts, 0, "seed {seed}");
        }
    });
}

#[test]
fn block1_upload_16k_under_loss_with_szx_negotiation() {
    big_stack(|| {
        for seed in [31u64, 32] {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            // The server takes 256-byte blocks; the client starts with 1024.
            let mut server: Server<256, 1152> = Server::new(
                seed,
                Config {
                    max_szx: 4,
                    ..config()
                },
            );
            let data: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 13 % 241) as u8).collect();
            let job = Job::Upload {
                data: data.clone(),
                offset: 0,
                szx: 6,
                done: false,
                tag: [7, 7],
            };
            let mut client: Client<256, 1152> = Client::new(1, seed, config(), job);
            client.start(sim.now);
            sim.drive_bounded(&mut [&mut server, &mut client], 1_000_000, |_| false)
                .ok();
            let Job::Upload { done, szx, .. } = &client.job else {
                unreachable!()
            };
            assert!(
                *done,
                "seed {seed}: upload incomplete ({} bytes)",
                server.uploaded.len()
            );
            assert_eq!(*szx, 4, "seed {seed}: block size not negotiated down");
            assert!(
                server.uploaded == data,
                "seed {seed}: uploaded content differs"
            );
            assert_eq!(client.timeouts, 0, "seed {seed}");
        }
    });
}

#[test]
fn echo_freshness_retried_automatically() {
    big_stack(|| {
        let seed = 41;
        let mut sim = Sim::new(seed, LinkConfig::lossy(0.1));
        let mut server: Server<64, 256> = Server::new(seed, config());
        let mut client: Client<64, 256> = Client::new(1, seed, config(), Job::Fresh { code: None });
        client.start(sim.now);
        sim.drive_bounded(&mut [&mut server, &mut client], 100_000, |_| false)
            .ok();
        let Job::Fresh { code } = &client.job else {
            unreachable!()
        };
        assert_eq!(*code, Some(Code::CHANGED), "seed {seed}: Echo retry failed");
        assert_eq!(server.handled.get(&b"on"[..]), Some(&1), "seed {seed}");
    });
}

/// RFC 7959 §2.6: a notification larger than one block arrives as its
/// first block; the endpoint fetches the rest (GET + Block2, no Observe)
/// and every completed body is one whole representation, never a mix of
/// two (the ETag check), under 20% loss.
#[test]
fn block2_notifications_reassembled_under_loss() {
    big_stack(|| {
        for seed in [51u64, 52, 53] {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut server: Server<256, 1152> = Server::new(seed, config());
            let job = Job::ObserveBig {
                buf: vec![0; 4096],
                bodies: Vec::new(),
            };
            let mut client: Client<256, 1152> = Client::new(1, seed, config(), job);
            client.start(sim.now);
            let until = sim.now + Duration::from_secs(60);
            sim.run_until(&mut [&mut server, &mut client], until);
            assert_eq!(server.ep.observer_count(), 1, "seed {seed}: not registered");
            for i in 1..=30u32 {
                server.obs_value = i;
                let rep = big_rep(i);
                let etag = i.to_be_bytes();
                let mut r = Response::new(Code::CONTENT).payload(&rep);
                r.etag = Some(&etag);
                server.ep.notify(sim.now, "bigobs", &r).unwrap();
                let until = sim.now + Duration::from_secs(10);
                sim.run_until(&mut [&mut server, &mut client], until);
            }
            let until = sim.now + Duration::from_secs(300);
            sim.run_until(&mut [&mut server, &mut client], until);
            let Job::ObserveBig { bodies, .. } = &client.job else {
                unreachable!()
            };
            let values: Vec<u32> = bodies
                .iter()
                .map(|b| {
                    let v = u32::from(b[0]);
                    assert!(
                        *b == big_rep(v),
                        "seed {seed}: body {v} mixes representations"
                    );
                    v
                })
                .collect();
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "seed {seed}: out of order: {values:?}"
            );
            assert!(
                values.len() >= 20,
                "seed {seed}: only {} of 31 bodies completed: {values:?} {:?}",
                values.len(),
                client.ep.stats()
            );
            let every = config().notify_con_every;
            assert!(
                *values.last().unwrap() > 30 - every,
                "seed {seed}: last body {} older than the last CON notification",
                values.last().unwrap()
            );
            assert_eq!(client.timeouts, 0, "seed {seed}");
            assert_eq!(
                client.ep.exchange_count(),
                1,
                "seed {seed}: fetches left open"
            );
        }
    });
}

/// `Endpoint::upload`: the endpoint sends a 16 KiB body as Block1 blocks,
/// follows 2.31, switches to the server's smaller block size and reports
/// one response, under 20% loss.
#[test]
fn automatic_block1_upload_16k_under_loss() {
    big_stack(|| {
        for seed in [61u64, 62, 63] {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            // The server takes 256-byte blocks; the client starts with 1024.
            let mut server: Server<256, 1152> = Server::new(
                seed,
                Config {
                    max_szx: 4,
                    ..config()
                },
            );
            let data: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 11 % 239) as u8).collect();
            let job = Job::AutoUpload {
                data: data.clone(),
                result: None,
                responses: 0,
            };
            let mut client: Client<256, 1152> = Client::new(1, seed, config(), job);
            client.start(sim.now);
            sim.drive_bounded(&mut [&mut server, &mut client], 1_000_000, |_| false)
                .ok();
            let Job::AutoUpload {
                result, responses, ..
            } = &client.job
            else {
                unreachable!()
            };
            assert_eq!(
                *result,
                Some(Code::CHANGED),
                "seed {seed}: upload result ({} bytes arrived)",
                server.uploaded.len()
            );
            assert_eq!(*responses, 1, "seed {seed}: response events");
            // One 1024-byte block, then the server's 256-byte blocks.
            let blocks = &server.upload_blocks;
            assert_eq!(blocks.get(&1024), Some(&1), "seed {seed}: {blocks:?}");
            assert_eq!(blocks.get(&256), Some(&60), "seed {seed}: {blocks:?}");
            assert!(
                server.uploaded == data,
                "seed {seed}: uploaded content differs ({} of {} bytes)",
                server.uploaded.len(),
                data.len()
            );
            assert_eq!(client.timeouts, 0, "seed {seed}");
            assert!(client.open.is_empty(), "seed {seed}");
            assert_eq!(client.ep.exchange_count(), 0, "seed {seed}");
        }
    });
}

/// `lite::Client` POSTing /echo to the endpoint server one request at a
/// time, alternating CON and NON, each payload unique.
struct LiteClient {
    addr: u8,
    client: cssf_coap::lite::Client<SimRng, 256, u8>,
    next: u32,
    total: u32,
    /// Responses per payload.
    got: HashMap<Vec<u8>, u32>,
    /// Requests that ended without a response (timeout, reset, rejected).
    failed: Vec<(u32, String)>,
}

impl LiteClient {
    fn new(addr: u8, seed: u64, config: cssf_coap::lite::Config, total: u32) -> Self {
        LiteClient {
            addr,
            client: cssf_coap::lite::Client::with_server(
                config,
                SimRng::new(seed ^ 0x11fe),
                SERVER,
            ),
            next: 0,
            total,
            got: HashMap::new(),
            failed: Vec::new(),
        }
    }

    /// Collects the outcome of the request in flight and starts the next.
    fn app(&mut self, now: Duration) {
        use cssf_coap::lite::Event as LiteEvent;
        if let Some(ev) = self.client.poll_event() {
            match ev {
                LiteEvent::Response(m) => {
                    assert_eq!(m.code(), Code::CONTENT);
                    *self.got.entry(m.payload().to_vec()).or_default() += 1;
                }
                other => self.failed.push((self.next - 1, format!("{other:?}"))),
            }
        }
        if !self.client.is_busy() && self.next < self.total {
            let payload = self.next.to_be_bytes();
            let ty = if self.next % 2 == 0 {
                cssf_coap::MessageType::Con
            } else {
                cssf_coap::MessageType::Non
            };
            let mut b = cssf_coap::MessageBuilder::<'_, 2>::new(ty, Code::POST, 0);
            b.uri_path("echo").unwrap();
            b.payload(&payload);
            self.client.request(now, &b).unwrap();
            self.next += 1;
        }
    }
}

impl Node<u8> for LiteClient {
    fn addr(&self) -> u8 {
        self.addr
    }
    fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
        self.client.handle_datagram(now, from, data).unwrap();
        self.app(now);
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.client.handle_timeout(now);
        self.app(now);
    }
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
        self.client
            .poll_transmit(now, buf)
            .unwrap()
            .map(|t| (t.to, t.len))
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.client.poll_timeout()
    }
}

/// The lite client against the endpoint server at 20% loss, 10%
/// duplication and reordering, every fifth request answered separately
/// (Empty ACK, then a CON response): with MAX_RETRANSMIT 10 every CON
/// request gets its response exactly once and the handler runs once per
/// request; a NON request (never retransmitted) or its NON response may be
/// lost and then ends in a timeout, never in a second delivery.
#[test]
fn lite_client_exactly_once_under_loss_and_duplication() {
    big_stack(|| {
        for seed in [201u64, 202, 203] {
            let total = 300;
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.2));
            let mut server: Server<1024, 256> = Server::new(seed, config());
            server.late_every = 5;
            let lite_config = cssf_coap::lite::Config {
                max_retransmit: 10,
                ..cssf_coap::lite::Config::default()
            };
            let mut client = LiteClient::new(1, seed, lite_config, total);
            client.app(sim.now);
            let mut nodes: [&mut dyn Node<u8>; 2] = [&mut server, &mut client];
            sim.drive_bounded(&mut nodes, 2_000_000, |_| false).ok();
            assert_eq!(client.next, total, "seed {seed}: requests started");
            assert!(!client.client.is_busy(), "seed {seed}");
            assert!(
                client.got.values().all(|&n| n == 1),
                "seed {seed}: a response was delivered twice"
            );
            for (i, why) in &client.failed {
                assert!(
                    i % 2 == 1 && why == "Timeout",
                    "seed {seed}: request {i} (CON) failed: {why}"
                );
            }
            assert_eq!(
                client.got.len() + client.failed.len(),
                total as usize,
                "seed {seed}: every request ends exactly once"
            );
            for i in (0..total).step_by(2) {
                assert!(
                    client.got.contains_key(&i.to_be_bytes()[..]),
                    "seed {seed}: CON request {i} got no response"
                );
            }
            // Every response delivered is the echo of a request the handler
            // ran exactly once.
            for p in client.got.keys() {
                assert_eq!(server.handled.get(p), Some(&1), "seed {seed}");
            }
            assert!(
                server.handled.values().all(|&n| n == 1),
                "seed {seed}: handler ran twice"
            );
            assert!(
                sim.net.stats.lost > 0 && sim.net.stats.duplicated > 0,
                "seed {seed}"
            );
            assert!(server.ep.stats().duplicates > 0, "seed {seed}");
        }
    });
}

/// Observe over OSCORE (RFC 8613 §4.1.3.5, §7.4.1) on a lossy link that
/// duplicates and reorders.
#[cfg(feature = "oscore")]
mod oscore_observe {
    use super::*;
    use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
    use cssf_coap::Message;

    static OBS: [Resource; 1] = [Resource::new("obs", Methods::GET).observable()];
    const SECRET: [u8; 16] = [0x5a; 16];

    type OEp = Endpoint<u8, SimRng, 8, 64, 256, 0>;

    fn context(sender: &[u8], recipient: &[u8]) -> SecurityContext {
        let p = Params {
            master_secret: &SECRET,
            master_salt: &[],
            id_context: None,
            sender_id: sender,
            recipient_id: recipient,
        };
        SecurityContext::new(&p, SenderSequence::Volatile).unwrap()
    }

    struct ObsServer {
        ep: Box<OEp>,
        /// Every notification it sent (protected, with an outer Observe).
        sent_notes: Vec<Vec<u8>>,
    }

    impl Node<u8> for ObsServer {
        fn addr(&self) -> u8 {
            SERVER
        }
        fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
            self.ep.handle_datagram(now, from, data).unwrap();
            while let Some(ev) = self.ep.poll_event() {
                if let Event::Request { id, request, .. } = ev {
                    assert!(request.security().is_oscore(), "a plain request came");
                    let zero = 0u32.to_be_bytes();
                    let r = Response::new(Code::CONTENT).payload(&zero);
                    self.ep.respond(now, id, &r).unwrap();
                }
            }
        }
        fn handle_timeout(&mut self, now: Duration) {
            self.ep.handle_timeout(now);
        }
        fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
            let t = self.ep.poll_transmit(now, buf).unwrap()?;
            let m = Message::parse(&buf[..t.len]).unwrap();
            if m.code().is_response() && m.observe().unwrap().is_some() {
                self.sent_notes.push(buf[..t.len].to_vec());
            }
            Some((t.to, t.len))
        }
        fn poll_timeout(&self) -> Option<Duration> {
            self.ep.poll_timeout()
        }
    }

    struct ObsClient {
        ep: Box<OEp>,
        values: Vec<u32>,
    }

    impl ObsClient {
        fn take_events(&mut self) {
            while let Some(ev) = self.ep.poll_event() {
                match ev {
                    Event::Notification { notification, .. } => {
                        assert!(notification.security().is_oscore());
                        let v: [u8; 4] = notification.payload().try_into().unwrap();
                        self.values.push(u32::from_be_bytes(v));
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    impl Node<u8> for ObsClient {
        fn addr(&self) -> u8 {
            1
        }
        fn handle_datagram(&mut self, now: Duration, from: u8, data: &mut [u8]) {
            self.ep.handle_datagram(now, from, data).unwrap();
            self.take_events();
        }
        fn handle_timeout(&mut self, now: Duration) {
            self.ep.handle_timeout(now);
            self.take_events();
        }
        fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
            self.ep
                .poll_transmit(now, buf)
                .unwrap()
                .map(|t| (t.to, t.len))
        }
        fn poll_timeout(&self) -> Option<Duration> {
            self.ep.poll_timeout()
        }
    }

    /// 300 protected notifications over a link that loses 20%, duplicates
    /// 20% and reorders 30%: every one delivered verified (the event comes
    /// only after verification), none twice, none out of order, an older
    /// one arriving late refused by its Partial IV; then every notification
    /// sent, replayed under a new message ID, refused.
    #[test]
    fn protected_observation_under_loss_duplication_and_reordering() {
        big_stack(|| {
            for seed in [21u64, 22, 23] {
                let mut link = LinkConfig::lossy(0.2);
                link.duplicate = 0.2;
                link.reorder = 0.3;
                let mut sim = Sim::new(seed, link);
                let mut server = ObsServer {
                    ep: Box::new(Endpoint::new(config(), SimRng::new(seed ^ 0xabc), &OBS)),
                    sent_notes: Vec::new(),
                };
                server.ep.add_oscore_context(context(b"S", b"C")).unwrap();
                let mut client = ObsClient {
                    ep: Box::new(Endpoint::new(config(), SimRng::new(seed ^ 1), &[])),
                    values: Vec::new(),
                };
                client.ep.add_oscore_context(context(b"C", b"S")).unwrap();
                client
                    .ep
                    .request_protected(sim.now, SERVER, &Request::get("obs").observe(), 0)
                    .unwrap();
                sim.drive_bounded(&mut [&mut server, &mut client], 100_000, |n| {
                    let _ = n;
                    false
                })
                .ok();
                assert_eq!(client.values, [0], "seed {seed}: registration answer");
                assert_eq!(server.ep.observer_count(), 1, "seed {seed}");
                for i in 1..=300u32 {
                    let v = i.to_be_bytes();
                    server
                        .ep
                        .notify(sim.now, "obs", &Response::new(Code::CONTENT).payload(&v))
                        .unwrap();
                    let until = sim.now + Duration::from_millis(50);
                    sim.run_until(&mut [&mut server, &mut client], until);
                }
                sim.run_until(
                    &mut [&mut server, &mut client],
                    sim.now + Duration::from_secs(300),
                );
                let values = &client.values;
                assert!(
                    values.windows(2).all(|w| w[0] < w[1]),
                    "seed {seed}: delivered twice or out of order: {values:?}"
                );
                assert!(
                    values.len() > 150,
                    "seed {seed}: only {} of 300 notifications",
                    values.len()
                );
                let every = config().notify_con_every;
                assert!(
                    *values.last().unwrap() > 300 - every,
                    "seed {seed}: last notification {} older than the last CON one",
                    values.last().unwrap()
                );
                let s = client.ep.stats();
                assert!(
                    s.duplicates > 0,
                    "seed {seed}: no duplicate reached the client ({:?})",
                    sim.net.stats
                );
                assert!(
                    s.oscore_refused > 0,
                    "seed {seed}: no late notification refused by its Partial IV"
                );
                // The plain freshness rule is not what ordered them.
                assert_eq!(s.stale_notifications, 0, "seed {seed}");
                // Every notification sent, replayed under another message ID
                // (OSCORE does not protect it): refused, none delivered.
                let before = s.oscore_refused;
                let notes = server.sent_notes.clone();
                assert!(notes.len() > 300, "seed {seed}");
                for (k, note) in notes.iter().enumerate() {
                    let mut d = note.clone();
                    d[2] ^= 0xa5;
                    d[3] = d[3].wrapping_add(k as u8);
                    client.ep.handle_datagram(sim.now, SERVER, &mut d).unwrap();
                    assert_eq!(
                        client.ep.poll_event(),
                        None,
                        "seed {seed}: replay delivered"
                    );
                    // (Its Empty ACK, if confirmable, goes nowhere.)
                    let mut buf = [0u8; 256];
                    while client
                        .ep
                        .poll_transmit(sim.now, &mut buf)
                        .unwrap()
                        .is_some()
                    {}
                }
                // Each is refused after verification (older than the
                // newest taken), or, the piggybacked registration answer
                // (an ACK) and one whose new message ID happens to be
                // remembered, dropped as a duplicate before it.
                let after = client.ep.stats();
                let refused = after.oscore_refused - before;
                let dropped = after.duplicates - s.duplicates;
                assert_eq!(
                    (refused + dropped) as usize,
                    notes.len(),
                    "seed {seed}: {refused} refused, {dropped} dropped as duplicates"
                );
                assert!(refused as usize >= notes.len() - 5, "seed {seed}");
            }
        });
    }
}
