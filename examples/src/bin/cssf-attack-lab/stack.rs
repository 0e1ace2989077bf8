//! The two stacks under attack, as network nodes with the same small
//! application on top: CSSF (CoAP over DTLS 1.2) and plain CoAP.
//!
//! Server resources: `GET /sensors/temp` and `GET|PUT /actuators/led` (PUT
//! needs a fresh Echo, RFC 9175). Every PUT the server application acts on
//! is logged, with whether it arrived in a datagram the adversary touched.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use cssf_coap::endpoint::{Event as CoapEvent, ExchangeId, Methods, Request, Resource, Response};
use cssf_coap::Code;
use cssf_dtls::{CipherSuite, Client, Config, Endpoint, Event, PskStore, StaticPsk};
use cssf_netsim::SimRng;

use crate::net::{Addr, Honest, Net, Node, Packet, CLIENT, SERVER};

/// The legitimate client's PSK identity and key.
pub const IDENTITY: &[u8] = b"Client_identity";
/// The legitimate client's PSK.
pub const PSK: &[u8] = b"lab-secret-psk-0";
/// The server's PSK table.
pub static KEYS: [(&[u8], &[u8]); 1] = [(IDENTITY, PSK)];
/// Sessions the DTLS server holds at most.
pub const SESSIONS: usize = 4;
/// The temperature representation (a recognisable plaintext).
pub const TEMP: &[u8] = b"temperature=21.5C;sensor=lab-0001";

/// The server's resources.
pub static RESOURCES: [Resource; 2] = [
    Resource::new("sensors/temp", Methods::GET),
    Resource::new("actuators/led", Methods::GET.union(Methods::PUT)).echo(),
];

/// The CoAP endpoint both stacks use.
pub type Coap = cssf_coap::Endpoint<Addr, SimRng>;

/// An authorization hook: given the session's PSK identity, method and
/// path, `Some(code)` refuses the request with that code.
pub type Gate<'a> = Box<dyn FnMut(Duration, Option<&[u8]>, Code, &str) -> Option<Code> + 'a>;

/// A PUT the server application carried out.
#[derive(Debug, Clone)]
pub struct Action {
    /// The new LED state.
    pub payload: Vec<u8>,
}

/// The server application.
#[derive(Default)]
pub struct ServerApp<'a> {
    /// Every PUT acted on.
    pub actions: Vec<Action>,
    /// Requests refused by the gate.
    pub denied: u64,
    /// Requests the CoAP layer handed over from tainted datagrams.
    pub tainted_requests: u64,
    /// Optional authorization.
    pub gate: Option<Gate<'a>>,
}

fn path_of(msg: &cssf_coap::Message<'_>) -> String {
    let mut p = String::new();
    for seg in msg.uri_path() {
        p.push('/');
        p.push_str(&String::from_utf8_lossy(seg));
    }
    p
}

impl ServerApp<'_> {
    /// Answers every request the endpoint reported.
    pub fn serve(
        &mut self,
        coap: &mut Coap,
        now: Duration,
        tainted: bool,
        identity: &dyn Fn(Addr) -> Option<Vec<u8>>,
    ) -> usize {
        let mut n = 0;
        while let Some(ev) = coap.poll_event() {
            let CoapEvent::Request {
                id,
                peer,
                resource,
                request,
            } = ev
            else {
                continue;
            };
            n += 1;
            if tainted {
                self.tainted_requests += 1;
            }
            let Ok(msg) = request.message() else { continue };
            let code = msg.code();
            let path = path_of(&msg);
            if let Some(gate) = self.gate.as_mut() {
                let id_bytes = identity(peer);
                if let Some(deny) = gate(now, id_bytes.as_deref(), code, &path) {
                    self.denied += 1;
                    let _ = coap.respond(now, id, &Response::new(deny));
                    continue;
                }
            }
            let rsp = match (resource, code) {
                (0, _) => Response::new(Code::CONTENT).payload(TEMP),
                (_, Code::PUT) => {
                    self.actions.push(Action {
                        payload: msg.payload().to_vec(),
                    });
                    Response::new(Code::CHANGED)
                }
                _ => Response::new(Code::CONTENT).payload(b"off"),
            };
            let _ = coap.respond(now, id, &rsp);
        }
        n
    }
}

/// A response the client application received.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its code.
    pub code: Code,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// The client application: a queue of requests to make, the answers.
#[derive(Default)]
pub struct ClientApp {
    /// Requests to issue (method, path, payload).
    pub todo: VecDeque<(Code, &'static str, Vec<u8>)>,
    /// Exchanges started.
    pub issued: Vec<ExchangeId>,
    /// Answers received.
    pub answers: Vec<Answer>,
    /// Exchanges that timed out or were reset.
    pub failed: u64,
}

impl ClientApp {
    fn issue(&mut self, coap: &mut Coap, now: Duration, server: Addr) {
        while let Some((code, path, payload)) = self.todo.front() {
            let req = Request::new(*code, path).payload(payload);
            match coap.request(now, server, &req) {
                Ok(id) => {
                    self.issued.push(id);
                    self.todo.pop_front();
                }
                Err(_) => break, // busy: try again later
            }
        }
    }

    fn collect(&mut self, coap: &mut Coap) -> usize {
        let mut n = 0;
        while let Some(ev) = coap.poll_event() {
            match ev {
                CoapEvent::Response { response, .. } => {
                    n += 1;
                    self.answers.push(Answer {
                        code: response.code(),
                        payload: response.payload().to_vec(),
                    })
                }
                CoapEvent::Timeout { .. } | CoapEvent::Reset { .. } => self.failed += 1,
                _ => {}
            }
        }
        n
    }

    /// Queues a request.
    pub fn push(&mut self, code: Code, path: &'static str, payload: &[u8]) {
        self.todo.push_back((code, path, payload.to_vec()));
    }
}

fn coap_config() -> cssf_coap::endpoint::Config {
    cssf_coap::endpoint::Config::default()
}

/// DTLS settings for the lab: one second initial retransmission (the
/// RFC 7925 default of 9 s only slows the virtual clock down).
pub fn dtls_config(suites: &[CipherSuite]) -> Config {
    let mut c = Config::default();
    c.retransmit_initial = Duration::from_secs(1);
    c.max_retransmits = 4;
    if let Ok(v) = heapless::Vec::from_slice(suites) {
        c.suites = v;
    }
    c
}

/// The suite the lab uses unless an attack needs another.
pub const LAB_SUITES: [CipherSuite; 1] = [CipherSuite::PskWithAes128Ccm8];

/// A CSSF client: CoAP over a DTLS client.
pub struct CssfClient {
    /// Its address.
    pub addr: Addr,
    /// The server's address.
    pub server: Addr,
    /// DTLS.
    pub dtls: Client<Addr, SimRng>,
    /// CoAP.
    pub coap: Coap,
    /// The application.
    pub app: ClientApp,
    /// The suite, once connected.
    pub suite: Option<CipherSuite>,
    /// Set when the DTLS connection ended (with its error, if any).
    pub closed: Option<Option<cssf_dtls::Error>>,
    /// Application records delivered from tainted datagrams.
    pub tainted_app: u64,
    /// Application payloads handed to the transport toward the peer
    /// (retransmissions included).
    pub sent: Vec<Vec<u8>>,
    /// Application payloads the transport delivered from the peer.
    pub delivered: Vec<Vec<u8>>,
}

impl CssfClient {
    /// A client at `addr` that will handshake with `server`.
    pub fn new(
        addr: Addr,
        server: Addr,
        identity: &[u8],
        psk: &[u8],
        suites: &[CipherSuite],
        seed: u64,
    ) -> Self {
        let dtls = match Client::new(
            dtls_config(suites),
            identity,
            psk,
            server,
            SimRng::new(seed),
            Duration::ZERO,
        ) {
            Ok(c) => c,
            Err(e) => panic!("lab bug: client config refused: {e}"),
        };
        CssfClient {
            addr,
            server,
            dtls,
            coap: Coap::new(coap_config(), SimRng::new(seed ^ 0xC0A9), &[]),
            app: ClientApp::default(),
            suite: None,
            closed: None,
            tainted_app: 0,
            sent: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// The legitimate client with the lab's suite.
    pub fn legit(seed: u64) -> Self {
        Self::new(CLIENT, SERVER, IDENTITY, PSK, &LAB_SUITES, seed)
    }

    /// Connected and not closed.
    pub fn up(&self) -> bool {
        self.closed.is_none() && self.dtls.is_connected()
    }

    fn drain(&mut self, now: Duration, tainted: bool) {
        while let Some(ev) = self.dtls.poll_event() {
            match ev {
                Event::Connected { suite, .. } => self.suite = Some(suite),
                Event::ApplicationData { .. } => {
                    let mut buf = [0u8; 2048];
                    while let Ok(Some(n)) = self.dtls.recv(&mut buf) {
                        if tainted {
                            self.tainted_app += 1;
                        }
                        if let Some(rec) = buf.get_mut(..n) {
                            self.delivered.push(rec.to_vec());
                            let _ = self.coap.handle_datagram(now, self.server, rec);
                        }
                    }
                }
                Event::Closed { reason, .. } => {
                    self.closed.get_or_insert(reason.error());
                }
                _ => {}
            }
        }
        self.app.collect(&mut self.coap);
    }
}

impl Node for CssfClient {
    fn addr(&self) -> Addr {
        self.addr
    }

    fn input(&mut self, now: Duration, p: &Packet) {
        if self.closed.is_some() {
            return;
        }
        let mut data = p.data.clone();
        // A failed session is its `Closed` event, taken in `drain`.
        let _ = self.dtls.handle_datagram(now, p.from, &mut data);
        self.drain(now, p.tainted);
    }

    fn output(&mut self, now: Duration, out: &mut Vec<Packet>) {
        if self.up() {
            self.app.issue(&mut self.coap, now, self.server);
            let mut buf = [0u8; 1500];
            while let Ok(Some(t)) = self.coap.poll_transmit(now, &mut buf) {
                if let Some(b) = buf.get(..t.len) {
                    if self.dtls.send(now, b).is_ok() {
                        self.sent.push(b.to_vec());
                    }
                }
            }
        }
        let mut buf = [0u8; 1500];
        loop {
            match self.dtls.poll_transmit(now, &mut buf) {
                Ok(Some(t)) => out.push(Packet::new(
                    self.addr,
                    t.to,
                    buf.get(..t.len).unwrap_or(&[]),
                )),
                Ok(None) => break,
                Err(e) => {
                    self.closed.get_or_insert(Some(e));
                    break;
                }
            }
        }
    }

    fn timeout(&mut self, now: Duration) {
        self.dtls.handle_timeout(now);
        self.coap.handle_timeout(now);
        self.drain(now, false);
    }

    fn next_timeout(&self) -> Option<Duration> {
        if self.closed.is_some() {
            return None;
        }
        [self.dtls.poll_timeout(), self.coap.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A CSSF server: CoAP over a DTLS endpoint.
pub struct CssfServer<'a, P: PskStore<Addr>> {
    /// DTLS.
    pub dtls: Endpoint<Addr, P, SimRng, SESSIONS>,
    /// CoAP.
    pub coap: Coap,
    /// The application.
    pub app: ServerApp<'a>,
    /// The PSK identity each connected peer proved (from `Connected`,
    /// until `Closed`).
    pub identities: HashMap<Addr, Vec<u8>>,
    /// Application records delivered from tainted datagrams.
    pub tainted_app: u64,
    /// Most sessions ever held at once.
    pub max_sessions: usize,
    /// The legitimate client's session was closed.
    pub legit_closed: bool,
    /// Application payloads handed to the transport toward the legitimate client
    /// (retransmissions included).
    pub sent: Vec<Vec<u8>>,
    /// Application payloads the transport delivered from the legitimate client.
    pub delivered: Vec<Vec<u8>>,
}

/// The server with the lab's static PSK table.
pub type LabServer<'a> = CssfServer<'a, StaticPsk<'static>>;

impl<'a, P: PskStore<Addr>> CssfServer<'a, P> {
    /// A server resolving PSKs through `store`.
    pub fn with_store(store: P, suites: &[CipherSuite], seed: u64) -> Self {
        Self::with_config(store, dtls_config(suites), seed)
    }

    /// A server with DTLS settings `config` (a control turning a defence
    /// off).
    pub fn with_config(store: P, config: Config, seed: u64) -> Self {
        let dtls = match Endpoint::new(config, store, SimRng::new(seed ^ 0x5E), Duration::ZERO) {
            Ok(e) => e,
            Err(e) => panic!("lab bug: server config refused: {e}"),
        };
        CssfServer {
            dtls,
            coap: Coap::new(coap_config(), SimRng::new(seed ^ 0x5E5E), &RESOURCES),
            app: ServerApp::default(),
            identities: HashMap::new(),
            tainted_app: 0,
            max_sessions: 0,
            legit_closed: false,
            sent: Vec::new(),
            delivered: Vec::new(),
        }
    }
}

impl LabServer<'_> {
    /// The lab's server.
    pub fn lab(seed: u64) -> Self {
        Self::with_store(StaticPsk::new(&KEYS), &LAB_SUITES, seed)
    }
}

impl<P: PskStore<Addr>> CssfServer<'_, P> {
    fn drain(&mut self, now: Duration, tainted: bool) {
        while let Some(ev) = self.dtls.poll_event() {
            match ev {
                Event::Connected { peer, identity, .. } => {
                    match identity.as_ref().and_then(|i| i.psk_identity()) {
                        Some(id) => self.identities.insert(peer, id.to_vec()),
                        None => self.identities.remove(&peer),
                    };
                }
                Event::ApplicationData { handle, peer, .. } => {
                    let mut buf = [0u8; 2048];
                    while let Ok(Some(n)) = self.dtls.recv(handle, &mut buf) {
                        if tainted {
                            self.tainted_app += 1;
                        }
                        if let Some(rec) = buf.get_mut(..n) {
                            if peer == CLIENT {
                                self.delivered.push(rec.to_vec());
                            }
                            let _ = self.coap.handle_datagram(now, peer, rec);
                        }
                        let ids = &self.identities;
                        let lookup = |a: Addr| ids.get(&a).cloned();
                        self.app.serve(&mut self.coap, now, tainted, &lookup);
                    }
                }
                Event::Closed { peer, .. } => {
                    self.identities.remove(&peer);
                    if peer == CLIENT {
                        self.legit_closed = true;
                    }
                }
                _ => {}
            }
        }
    }
}

impl<P: PskStore<Addr>> Node for CssfServer<'_, P> {
    fn addr(&self) -> Addr {
        SERVER
    }

    fn input(&mut self, now: Duration, p: &Packet) {
        let mut data = p.data.clone();
        let _ = self.dtls.handle_datagram(now, p.from, &mut data);
        self.max_sessions = self.max_sessions.max(self.dtls.sessions());
        self.drain(now, p.tainted);
    }

    fn output(&mut self, now: Duration, out: &mut Vec<Packet>) {
        let mut buf = [0u8; 1500];
        while let Ok(Some(t)) = self.coap.poll_transmit(now, &mut buf) {
            if let Some(b) = buf.get(..t.len) {
                let sent = self
                    .dtls
                    .session_handle(&t.to)
                    .is_some_and(|h| self.dtls.send(now, h, b).is_ok());
                if sent && t.to == CLIENT {
                    self.sent.push(b.to_vec());
                }
            }
        }
        while let Ok(Some(t)) = self.dtls.poll_transmit(now, &mut buf) {
            out.push(Packet::new(SERVER, t.to, buf.get(..t.len).unwrap_or(&[])));
        }
    }

    fn timeout(&mut self, now: Duration) {
        self.dtls.handle_timeout(now);
        self.coap.handle_timeout(now);
        self.drain(now, false);
        let ids = &self.identities;
        let lookup = |a: Addr| ids.get(&a).cloned();
        self.app.serve(&mut self.coap, now, false, &lookup);
    }

    fn next_timeout(&self) -> Option<Duration> {
        [self.dtls.poll_timeout(), self.coap.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A plain CoAP client (no security).
pub struct PlainClient {
    /// CoAP.
    pub coap: Coap,
    /// The application.
    pub app: ClientApp,
    /// Datagrams sent toward the peer
    /// (retransmissions included).
    pub sent: Vec<Vec<u8>>,
    /// Datagrams that reached the application from the peer.
    pub delivered: Vec<Vec<u8>>,
}

impl PlainClient {
    /// A client.
    pub fn new(seed: u64) -> Self {
        PlainClient {
            coap: Coap::new(coap_config(), SimRng::new(seed ^ 0xC0A9), &[]),
            app: ClientApp::default(),
            sent: Vec::new(),
            delivered: Vec::new(),
        }
    }
}

impl Node for PlainClient {
    fn addr(&self) -> Addr {
        CLIENT
    }
    fn input(&mut self, now: Duration, p: &Packet) {
        let mut data = p.data.clone();
        let _ = self.coap.handle_datagram(now, p.from, &mut data);
        if self.app.collect(&mut self.coap) > 0 {
            self.delivered.push(p.data.clone());
        }
    }
    fn output(&mut self, now: Duration, out: &mut Vec<Packet>) {
        self.app.issue(&mut self.coap, now, SERVER);
        let mut buf = [0u8; 1500];
        while let Ok(Some(t)) = self.coap.poll_transmit(now, &mut buf) {
            let b = buf.get(..t.len).unwrap_or(&[]);
            self.sent.push(b.to_vec());
            out.push(Packet::new(CLIENT, t.to, b));
        }
    }
    fn timeout(&mut self, now: Duration) {
        self.coap.handle_timeout(now);
        self.app.collect(&mut self.coap);
    }
    fn next_timeout(&self) -> Option<Duration> {
        self.coap.poll_timeout()
    }
}

/// A plain CoAP server (no security).
pub struct PlainServer {
    /// CoAP.
    pub coap: Coap,
    /// The application.
    pub app: ServerApp<'static>,
    /// Datagrams sent toward the peer
    /// (retransmissions included).
    pub sent: Vec<Vec<u8>>,
    /// Datagrams that reached the application from the peer.
    pub delivered: Vec<Vec<u8>>,
}

impl PlainServer {
    /// A server.
    pub fn new(seed: u64) -> Self {
        PlainServer {
            coap: Coap::new(coap_config(), SimRng::new(seed ^ 0x5E5E), &RESOURCES),
            app: ServerApp::default(),
            sent: Vec::new(),
            delivered: Vec::new(),
        }
    }
}

impl Node for PlainServer {
    fn addr(&self) -> Addr {
        SERVER
    }
    fn input(&mut self, now: Duration, p: &Packet) {
        let mut data = p.data.clone();
        let _ = self.coap.handle_datagram(now, p.from, &mut data);
        if self.app.serve(&mut self.coap, now, p.tainted, &|_| None) > 0 && p.from == CLIENT {
            self.delivered.push(p.data.clone());
        }
    }
    fn output(&mut self, now: Duration, out: &mut Vec<Packet>) {
        let mut buf = [0u8; 1500];
        while let Ok(Some(t)) = self.coap.poll_transmit(now, &mut buf) {
            let b = buf.get(..t.len).unwrap_or(&[]);
            if t.to == CLIENT {
                self.sent.push(b.to_vec());
            }
            out.push(Packet::new(SERVER, t.to, b));
        }
    }
    fn timeout(&mut self, now: Duration) {
        self.coap.handle_timeout(now);
        self.app.serve(&mut self.coap, now, false, &|_| None);
    }
    fn next_timeout(&self) -> Option<Duration> {
        self.coap.poll_timeout()
    }
}

/// Connects the legitimate CSSF client through an honest network.
pub fn connect<P: PskStore<Addr>>(
    net: &mut Net,
    c: &mut CssfClient,
    s: &mut CssfServer<'_, P>,
) -> bool {
    net.run_for(&mut [c, s], &mut Honest, Duration::from_secs(30));
    c.up()
}

/// The legitimate session still works: a fresh GET /sensors/temp through an
/// honest network is answered with the temperature.
pub fn cssf_alive<P: PskStore<Addr>>(
    net: &mut Net,
    c: &mut CssfClient,
    s: &mut CssfServer<'_, P>,
) -> bool {
    let before = c.app.answers.len();
    c.app.push(Code::GET, "sensors/temp", b"");
    net.run_for(&mut [c, s], &mut Honest, Duration::from_secs(120));
    c.up()
        && c.app
            .answers
            .iter()
            .skip(before)
            .any(|a| a.code == Code::CONTENT && a.payload == TEMP)
}

/// The same check for plain CoAP.
pub fn plain_alive(net: &mut Net, c: &mut PlainClient, s: &mut PlainServer) -> bool {
    let before = c.app.answers.len();
    c.app.push(Code::GET, "sensors/temp", b"");
    net.run_for(&mut [c, s], &mut Honest, Duration::from_secs(120));
    c.app
        .answers
        .iter()
        .skip(before)
        .any(|a| a.code == Code::CONTENT && a.payload == TEMP)
}

/// True for a datagram carrying a DTLS application_data record.
pub fn is_app_record(data: &[u8]) -> bool {
    data.first() == Some(&23)
}

/// Integrity and replay violations seen by a receiver: payloads it was
/// handed that the sender never sent (forged), and payloads handed more
/// often than the sender sent them (replayed).
pub fn violations(sent: &[Vec<u8>], delivered: &[Vec<u8>]) -> (usize, usize) {
    let mut left: HashMap<&[u8], usize> = HashMap::new();
    for s in sent {
        *left.entry(s.as_slice()).or_default() += 1;
    }
    let (mut forged, mut replayed) = (0, 0);
    for d in delivered {
        match left.get_mut(d.as_slice()) {
            None => forged += 1,
            Some(0) => replayed += 1,
            Some(n) => *n -= 1,
        }
    }
    (forged, replayed)
}
