//! A CoAP / CoAPs client over tokio: one UDP socket connected to the server,
//! a cssf-dtls [`cssf_dtls::Client`] when the URI is `coaps://`, and a
//! cssf-coap [`cssf_coap::Endpoint`] for requests, Block-wise transfers and
//! Observe. Every wait is bounded by the link's timeout.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cssf_coap::endpoint::{Event as CoapEvent, ExchangeId, Received, Request};
use cssf_coap::oscore::{SecurityContext, SenderSequence};
use cssf_coap::{Block, Code, ContentFormat, MessageBuilder, OptionFormat, OptionNumber};
use cssf_dtls::{CipherSuite, Event as DtlsEvent};
use rand_core::OsRng;
use tokio::net::UdpSocket;

use crate::fail;
use crate::oscore_file::OscoreContextFile;
use crate::server::MAX_MESSAGE;
use crate::util::{hex, printable, Result};

/// The client's CoAP endpoint: uploads up to 64 KiB block-wise.
pub type ClientCoap = cssf_coap::Endpoint<SocketAddr, OsRng, 8, 16, MAX_MESSAGE, 65536>;

/// Datagrams and bytes that went over the wire.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams sent.
    pub sent: u64,
    /// Bytes sent (UDP payload).
    pub sent_bytes: u64,
    /// Datagrams received.
    pub received: u64,
    /// Bytes received.
    pub received_bytes: u64,
}

impl Traffic {
    /// What happened since `before`.
    pub fn since(&self, before: &Traffic) -> Traffic {
        Traffic {
            sent: self.sent - before.sent,
            sent_bytes: self.sent_bytes - before.sent_bytes,
            received: self.received - before.received,
            received_bytes: self.received_bytes - before.received_bytes,
        }
    }
}

impl std::fmt::Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} datagram{} out ({} bytes), {} in ({} bytes)",
            self.sent,
            s(self.sent),
            self.sent_bytes,
            self.received,
            self.received_bytes
        )
    }
}

/// A response (Block2 blocks reassembled).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The response code.
    pub code: Code,
    /// The options of the (last) response message, in order.
    pub options: Vec<(OptionNumber, Vec<u8>)>,
    /// The whole payload.
    pub payload: Vec<u8>,
    /// Response messages it took (blocks).
    pub messages: usize,
    /// Where the payload starts in the resource: 0, unless the transfer
    /// started at a later Block2 block (`cssf-client -b NUM,SIZE`).
    pub offset: usize,
}

impl Reply {
    fn start(r: &Received<MAX_MESSAGE>) -> Result<Reply> {
        let m = r.message().map_err(|e| fail!("bad response: {e}"))?;
        Ok(Reply {
            code: r.code(),
            options: m.options().map(|o| (o.number, o.value.to_vec())).collect(),
            payload: Vec::new(),
            messages: 0,
            offset: 0,
        })
    }

    /// Adds one message (a block or the whole response); `true` when
    /// complete.
    fn add(&mut self, r: &Received<MAX_MESSAGE>, last: bool) -> Result<bool> {
        let m = r.message().map_err(|e| fail!("bad response: {e}"))?;
        let b2 = m.block2().ok().flatten();
        match b2 {
            // A transfer may start at a later block (`cssf-client -b NUM,SIZE`).
            Some(b) if b.num() > 0 && self.messages > 0 => {
                if b.offset() != self.offset + self.payload.len() {
                    return Err(fail!("Block2 block {} out of order", b.num()));
                }
            }
            _ => {
                // A first block or a complete response starts over.
                let fresh = Reply::start(r)?;
                *self = Reply {
                    messages: self.messages,
                    offset: b2.map_or(0, |b| b.offset()),
                    ..fresh
                };
            }
        }
        self.code = r.code();
        self.options = m.options().map(|o| (o.number, o.value.to_vec())).collect();
        self.payload.extend_from_slice(m.payload());
        self.messages += 1;
        Ok(last || !b2.is_some_and(|b| b.more()))
    }

    /// The value of a uint option.
    pub fn uint_option(&self, n: OptionNumber) -> Option<u32> {
        self.options
            .iter()
            .find(|(o, _)| *o == n)
            .and_then(|(_, v)| decode_uint(v))
    }

    /// The payload as text when printable.
    pub fn text(&self) -> Option<&str> {
        printable(&self.payload)
    }

    /// `2.05 Content` and the options one per line.
    pub fn render_head(&self) -> String {
        let mut s = format!("{} {}\n", self.code, self.code.name().unwrap_or(""));
        for (n, v) in &self.options {
            let _ = writeln!(s, "  {}: {}", option_name(*n), option_value(*n, v));
        }
        s
    }

    /// `2.05 Content`, the options one per line, then the payload (text, or
    /// hex when binary).
    pub fn render(&self) -> String {
        let mut s = self.render_head();
        match self.text() {
            Some(t) => s.push_str(t),
            None => {
                let _ = write!(
                    s,
                    "(payload, {} bytes, hex) {}",
                    self.payload.len(),
                    hex(&self.payload)
                );
            }
        }
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }
}

/// A CoAP uint option value (big-endian, at most 4 bytes).
fn decode_uint(v: &[u8]) -> Option<u32> {
    if v.len() > 4 {
        return None;
    }
    Some(v.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
}

fn option_name(n: OptionNumber) -> String {
    n.info()
        .map_or(format!("Option {}", n.0), |i| i.name.to_string())
}

fn option_value(n: OptionNumber, v: &[u8]) -> String {
    let uint = || decode_uint(v).unwrap_or(0);
    if n == OptionNumber::BLOCK1 || n == OptionNumber::BLOCK2 {
        return match Block::from_bytes(v) {
            Ok(b) => format!("{}/{}/{}", b.num(), u8::from(b.more()), b.size()),
            Err(_) => hex(v),
        };
    }
    if n == OptionNumber::CONTENT_FORMAT || n == OptionNumber::ACCEPT {
        let cf = ContentFormat(uint() as u16);
        return match cf.media_type() {
            Some(t) => format!("{} ({t})", cf.0),
            None => cf.0.to_string(),
        };
    }
    match n.info().map(|i| i.format) {
        Some(OptionFormat::Uint) => uint().to_string(),
        Some(OptionFormat::String) => String::from_utf8_lossy(v).into_owned(),
        Some(OptionFormat::Empty) => String::new(),
        _ => hex(v),
    }
}

/// The DTLS client of every mode (PSK or raw public keys): one type.
type DtlsClient = cssf_dtls::Client<SocketAddr, OsRng, crate::server::TrustedKeys>;

/// `FILE.seq` of an OSCORE context, held by this process: `FILE.seq.lock`
/// is created exclusively while it is in use (removed on drop), so two
/// runs with one context cannot both read N and both send Partial IV N.
/// A lock left by a crashed run must be removed by hand, after checking
/// no run is going: that fails closed.
#[derive(Debug)]
struct SeqFile {
    path: PathBuf,
    lock: PathBuf,
}

impl SeqFile {
    fn lock(path: PathBuf) -> Result<SeqFile> {
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => Ok(SeqFile { path, lock }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(fail!(
                "{} exists: another run uses this OSCORE context (two runs would send the same Partial IV); remove it only if none is running",
                lock.display()
            )),
            Err(e) => Err(fail!("cannot create {}: {e}", lock.display())),
        }
    }
}

impl Drop for SeqFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// A connection to one server: plain CoAP or CoAP over DTLS.
pub struct Link {
    sock: UdpSocket,
    server: SocketAddr,
    dtls: Option<Box<DtlsClient>>,
    coap: Box<ClientCoap>,
    origin: Instant,
    timeout: Duration,
    /// What went over the wire so far.
    pub traffic: Traffic,
    suite: Option<CipherSuite>,
    buf: Vec<u8>,
    rewrite: Rewrite,
    /// Requests go OSCORE-protected with the endpoint's context 0, whose
    /// Sender Sequence Number is kept in this file.
    oscore_seq: Option<SeqFile>,
}

/// What the client changes in the requests the CoAP endpoint builds (the
/// endpoint picks tokens itself and knows only the usual options):
/// `cssf-client -T` and `-O`.
#[derive(Debug, Default, Clone)]
pub struct Rewrite {
    /// The token to send instead of the endpoint's.
    pub token: Option<Vec<u8>>,
    /// Options added to the request (number, value).
    pub options: Vec<(u16, Vec<u8>)>,
    /// The endpoint's token of the first request sent, once seen.
    endpoint_token: Option<Vec<u8>>,
}

impl Rewrite {
    fn active(&self) -> bool {
        self.token.is_some() || !self.options.is_empty()
    }

    /// An outgoing message: the first request's token (and its
    /// retransmissions, Observe cancellation) swapped and the options added.
    fn outgoing(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>> {
        if !self.active() {
            return Ok(None);
        }
        let Ok(m) = cssf_coap::Message::parse(data) else {
            return Ok(None);
        };
        if !m.code().is_request() {
            return Ok(None);
        }
        let ep = self
            .endpoint_token
            .get_or_insert_with(|| m.token().to_vec());
        if m.token() != ep.as_slice() {
            return Ok(None);
        }
        let mut b = MessageBuilder::<'_, 32>::from_message(&m)
            .map_err(|e| fail!("cannot rewrite the request: {e}"))?;
        if let Some(t) = &self.token {
            b.token(t).map_err(|e| fail!("-T: {e}"))?;
        }
        for (n, v) in &self.options {
            b.add_option(OptionNumber(*n), v)
                .map_err(|e| fail!("-O {n}: {e}"))?;
        }
        let mut out = vec![0u8; b.buffer_len()];
        let n = b
            .emit(&mut out)
            .map_err(|e| fail!("cannot rewrite the request: {e}"))?;
        out.truncate(n);
        Ok(Some(out))
    }

    /// An incoming message carrying our token gets the endpoint's back.
    fn incoming(&self, data: &[u8]) -> Option<Vec<u8>> {
        let (Some(ours), Some(ep)) = (&self.token, &self.endpoint_token) else {
            return None;
        };
        let m = cssf_coap::Message::parse(data).ok()?;
        if m.token() != ours.as_slice() {
            return None;
        }
        let mut b = MessageBuilder::<'_, 32>::from_message(&m).ok()?;
        b.token(ep).ok()?;
        let mut out = vec![0u8; b.buffer_len()];
        let n = b.emit(&mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}

/// One line describing a CoAP message (for `-v`): `CON 0.01 GET mid 0x1234
/// token 0a0b, Uri-Path: time, 0 bytes payload`.
pub fn describe_message(data: &[u8]) -> String {
    match cssf_coap::Message::parse(data) {
        Ok(m) => {
            let ty = match m.ty() {
                cssf_coap::MessageType::Con => "CON",
                cssf_coap::MessageType::Non => "NON",
                cssf_coap::MessageType::Ack => "ACK",
                _ => "RST",
            };
            let mut s = format!(
                "{ty} {} {} mid {:#06x} token {}",
                m.code(),
                m.code().name().unwrap_or(""),
                m.message_id(),
                if m.token().is_empty() {
                    "(empty)".to_string()
                } else {
                    hex(m.token())
                }
            );
            for o in m.options() {
                let _ = write!(
                    s,
                    ", {}: {}",
                    option_name(o.number),
                    option_value(o.number, o.value)
                );
            }
            let _ = write!(s, ", {} bytes payload", m.payload().len());
            s
        }
        Err(e) => format!("undecodable CoAP message ({e})"),
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("server", &self.server)
            .field("secure", &self.dtls.is_some())
            .finish_non_exhaustive()
    }
}

impl Link {
    async fn socket(server: SocketAddr, local: Option<std::net::IpAddr>) -> Result<UdpSocket> {
        let local: SocketAddr = match local {
            Some(ip) => (ip, 0).into(),
            None if server.is_ipv4() => ([0, 0, 0, 0], 0).into(),
            None => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| fail!("cannot open a UDP socket: {e}"))?;
        sock.connect(server)
            .await
            .map_err(|e| fail!("cannot reach {server}: {e}"))?;
        Ok(sock)
    }

    fn new_coap() -> Box<ClientCoap> {
        // Loopback and LAN use: answers come fast or not at all.
        let c = cssf_coap::endpoint::Config {
            ack_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        Box::new(ClientCoap::new(c, OsRng, &[]))
    }

    /// A plain CoAP link.
    pub async fn plain(server: SocketAddr, timeout: Duration) -> Result<Link> {
        Ok(Link {
            sock: Self::socket(server, None).await?,
            server,
            dtls: None,
            coap: Self::new_coap(),
            origin: Instant::now(),
            timeout,
            traffic: Traffic::default(),
            suite: None,
            buf: vec![0u8; 2048],
            rewrite: Rewrite::default(),
            oscore_seq: None,
        })
    }

    /// Sends every request OSCORE-protected (RFC 8613) with the context of
    /// `file`. Its Sender Sequence Number lives in `FILE.seq` (a decimal
    /// number: every Partial IV used so far is below it), written before
    /// a number is used, so no Partial IV is used twice across runs
    /// (Appendix B.1.1); delete it only together with a new context. Two
    /// numbers are kept ready before each request: a server that answers
    /// with a protected 4.01 Echo challenge (RFC 9175 §2.3; a server
    /// resynchronising its replay window, RFC 8613 Appendix B.1.2) gets the
    /// request again under the second.
    pub fn use_oscore(&mut self, file: &OscoreContextFile) -> Result<()> {
        let mut seq = file.path.clone().into_os_string();
        seq.push(".seq");
        let seq = SeqFile::lock(PathBuf::from(seq))?;
        let stored = match std::fs::read_to_string(&seq.path) {
            Ok(t) => t
                .trim()
                .parse::<u64>()
                .map_err(|_| fail!("{}: not a sequence number", seq.path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(fail!("cannot read {}: {e}", seq.path.display())),
        };
        let ctx = SecurityContext::new(
            &file.params(),
            // 16 numbers ahead: a block-wise transfer takes one a block,
            // and the bound is moved before every datagram is handled.
            SenderSequence::Persisted { stored, step: 16 },
        )
        .map_err(|e| fail!("{}: {e}", file.path.display()))?;
        self.coap
            .add_oscore_context(ctx)
            .map_err(|e| fail!("OSCORE context: {e}"))?;
        self.oscore_seq = Some(seq);
        Ok(())
    }

    /// Writes the next sequence-number bound durably if one is due.
    fn persist_oscore(&mut self) -> Result<()> {
        let Some(path) = self.oscore_seq.as_ref().map(|s| &s.path) else {
            return Ok(());
        };
        let Some(v) = self.coap.oscore_context(0).and_then(|c| c.persist_due()) else {
            return Ok(());
        };
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, format!("{v}\n").as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // The rename itself must survive a power cut, or the old
            // bound comes back.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
        if let Some(c) = self.coap.oscore_context_mut(0) {
            c.persisted(v);
        }
        Ok(())
    }

    /// A DTLS link keyed with a PSK: runs the handshake before returning.
    pub async fn dtls_psk(
        server: SocketAddr,
        identity: &[u8],
        psk: &[u8],
        timeout: Duration,
    ) -> Result<Link> {
        Self::dtls_psk_from(None, server, identity, psk, timeout).await
    }

    /// [`Link::dtls_psk`] from a socket bound to `local` (e.g. one of the
    /// 127.0.0.0/8 loopback addresses), any port.
    pub async fn dtls_psk_from(
        local: Option<std::net::IpAddr>,
        server: SocketAddr,
        identity: &[u8],
        psk: &[u8],
        timeout: Duration,
    ) -> Result<Link> {
        let mut cfg = cssf_dtls::Config::default();
        cfg.retransmit_initial = Duration::from_secs(1);
        cfg.max_retransmits = 4;
        let client = cssf_dtls::ClientBuilder::new(cfg, server, OsRng)
            .trust(crate::server::TrustedKeys(Vec::new()))
            .psk(identity, psk)
            .start(Duration::ZERO)
            .map_err(|e| fail!("DTLS client: {e}"))?;
        Self::dtls(local, server, Box::new(client), timeout).await
    }

    /// A DTLS link with raw public keys (RFC 7250): the server's key must be
    /// one of `trust`; `key` is ours, sent when the server asks for one.
    pub async fn dtls_rpk(
        server: SocketAddr,
        key: Option<p256::SecretKey>,
        trust: Vec<p256::PublicKey>,
        timeout: Duration,
    ) -> Result<Link> {
        let mut cfg = cssf_dtls::Config::default();
        cfg.retransmit_initial = Duration::from_secs(1);
        cfg.max_retransmits = 4;
        let client = cssf_dtls::ClientBuilder::new(cfg, server, OsRng)
            .trust(crate::server::TrustedKeys(trust))
            .raw_public_key(key.as_ref().map(cssf_dtls::SigningKey::from))
            .start(Duration::ZERO)
            .map_err(|e| fail!("DTLS client: {e}"))?;
        Self::dtls(None, server, Box::new(client), timeout).await
    }

    /// The server's raw public key, on a link made with raw public keys,
    /// once the handshake proved it.
    pub fn server_public_key(&self) -> Option<p256::PublicKey> {
        self.dtls
            .as_ref()
            .and_then(|d| d.peer_identity())
            .and_then(cssf_dtls::Identity::public_key)
            .copied()
    }

    async fn dtls(
        local: Option<std::net::IpAddr>,
        server: SocketAddr,
        client: Box<DtlsClient>,
        timeout: Duration,
    ) -> Result<Link> {
        let mut link = Link {
            sock: Self::socket(server, local).await?,
            server,
            dtls: Some(client),
            coap: Self::new_coap(),
            origin: Instant::now(),
            timeout,
            traffic: Traffic::default(),
            suite: None,
            buf: vec![0u8; 2048],
            rewrite: Rewrite::default(),
            oscore_seq: None,
        };
        link.handshake().await?;
        Ok(link)
    }

    /// Sets the token and extra options of the next request (see
    /// [`Rewrite`]).
    pub fn set_rewrite(&mut self, token: Option<Vec<u8>>, options: Vec<(u16, Vec<u8>)>) {
        self.rewrite = Rewrite {
            token,
            options,
            endpoint_token: None,
        };
    }

    /// Sets the block size of Block-wise uploads (SZX 0..=6, 16 to 1024
    /// bytes): call it before the first request and before
    /// [`use_oscore`](Self::use_oscore) (it rebuilds the CoAP endpoint).
    pub fn set_max_szx(&mut self, szx: u8) {
        let c = cssf_coap::endpoint::Config {
            max_szx: szx.min(6),
            ..*self.coap.config()
        };
        *self.coap = ClientCoap::new(c, OsRng, &[]);
    }

    /// The negotiated DTLS suite, on a DTLS link.
    pub fn suite(&self) -> Option<CipherSuite> {
        self.suite
    }

    /// The server.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn handshake(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            self.flush().await?;
            if self.suite.is_some() {
                return Ok(());
            }
            if !self.wait(deadline).await? {
                return Err(fail!(
                    "DTLS handshake with {} timed out after {} s",
                    self.server,
                    self.timeout.as_secs()
                ));
            }
        }
    }

    async fn send(&mut self, len: usize) -> Result<()> {
        let data = self.buf.get(..len).unwrap_or(&[]);
        self.sock.send(data).await.map_err(|e| self.io_error(&e))?;
        self.traffic.sent += 1;
        self.traffic.sent_bytes += len as u64;
        Ok(())
    }

    fn io_error(&self, e: &std::io::Error) -> crate::util::Failure {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            fail!("no server at {} (connection refused)", self.server)
        } else {
            fail!("{}: {e}", self.server)
        }
    }

    /// Sends everything queued.
    async fn flush(&mut self) -> Result<()> {
        let now = self.now();
        let mut msg = vec![0u8; 2048];
        while let Some(t) = self
            .coap
            .poll_transmit(now, &mut msg)
            .map_err(|e| fail!("CoAP: {e}"))?
        {
            let data = msg.get(..t.len).unwrap_or(&[]);
            let rewritten = self.rewrite.outgoing(data)?;
            let data = rewritten.as_deref().unwrap_or(data);
            log::info!("sent {}", describe_message(data));
            let len = data.len();
            match self.dtls.as_mut() {
                Some(d) => d.send(now, data).map_err(|e| fail!("DTLS send: {e}"))?,
                None => {
                    self.buf
                        .get_mut(..len)
                        .ok_or_else(|| fail!("message too long"))?
                        .copy_from_slice(data);
                    self.send(len).await?;
                }
            }
        }
        while let Some(d) = self.dtls.as_mut() {
            let Some(t) = d
                .poll_transmit(now, &mut self.buf)
                .map_err(|e| fail!("DTLS: {e}"))?
            else {
                break;
            };
            self.send(t.len).await?;
        }
        Ok(())
    }

    /// Waits for one datagram or timer; `false` when `deadline` passed.
    async fn wait(&mut self, deadline: Instant) -> Result<bool> {
        let now = self.now();
        let timers = [
            self.coap.poll_timeout(),
            self.dtls.as_ref().and_then(|d| d.poll_timeout()),
        ];
        let wake = timers
            .into_iter()
            .flatten()
            .map(|t| self.origin + t.max(now))
            .chain([deadline])
            .min()
            .unwrap_or(deadline);
        let mut rx = vec![0u8; 2048];
        let got = tokio::select! {
            r = self.sock.recv(&mut rx) => Some(r),
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => None,
        };
        let now = self.now();
        match got {
            Some(Ok(n)) => {
                self.traffic.received += 1;
                self.traffic.received_bytes += n as u64;
                let data = rx.get_mut(..n).unwrap_or(&mut []);
                // The next block or retry may need sequence numbers.
                self.persist_oscore()?;
                self.input(now, data)?;
            }
            Some(Err(e)) => return Err(self.io_error(&e)),
            None => {
                self.coap.handle_timeout(now);
                if let Some(d) = self.dtls.as_mut() {
                    // A handshake that gives up is its `Closed` event.
                    d.handle_timeout(now);
                    self.dtls_events(now)?;
                }
            }
        }
        Ok(Instant::now() < deadline)
    }

    /// Hands a CoAP message to the endpoint (our token swapped back).
    fn coap_input(
        coap: &mut ClientCoap,
        rewrite: &Rewrite,
        now: Duration,
        server: SocketAddr,
        data: &mut [u8],
    ) {
        log::info!("received {}", describe_message(data));
        match rewrite.incoming(data) {
            Some(mut m) => {
                let _ = coap.handle_datagram(now, server, &mut m);
            }
            None => {
                let _ = coap.handle_datagram(now, server, data);
            }
        }
    }

    fn input(&mut self, now: Duration, data: &mut [u8]) -> Result<()> {
        let server = self.server;
        let Some(d) = self.dtls.as_mut() else {
            Self::coap_input(&mut self.coap, &self.rewrite, now, server, data);
            return Ok(());
        };
        // A failed handshake or session is its `Closed` event, below.
        d.handle_datagram(now, server, data)
            .map_err(|e| fail!("DTLS with {server}: {e}"))?;
        self.dtls_events(now)
    }

    /// What the DTLS client reported: records for the CoAP endpoint, the
    /// session's end as an error.
    fn dtls_events(&mut self, now: Duration) -> Result<()> {
        let server = self.server;
        let Some(d) = self.dtls.as_mut() else {
            return Ok(());
        };
        let mut rec = vec![0u8; 2048];
        while let Some(ev) = d.poll_event() {
            match ev {
                DtlsEvent::Connected { suite, .. } => self.suite = Some(suite),
                DtlsEvent::ApplicationData { .. } => {
                    while let Ok(Some(n)) = d.recv(&mut rec) {
                        if let Some(m) = rec.get_mut(..n) {
                            Self::coap_input(&mut self.coap, &self.rewrite, now, server, m);
                        }
                    }
                }
                DtlsEvent::Closed { reason, .. } => {
                    return Err(match reason {
                        cssf_dtls::CloseReason::PeerClosed => {
                            fail!("DTLS session closed by {server}")
                        }
                        r => fail!("DTLS with {server} failed: {r}"),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn no_answer(&self) -> crate::util::Failure {
        fail!(
            "no response from {} within {} s",
            self.server,
            self.timeout.as_secs()
        )
    }

    /// Sends `req` (block-wise when its payload is longer than one block)
    /// and returns the whole response.
    pub async fn request(&mut self, req: &Request<'_>) -> Result<Reply> {
        let now = self.now();
        let id = if self.oscore_seq.is_some() {
            self.persist_oscore()?;
            // Block-wise when the payload is longer than one block, each
            // block its own protected request.
            self.coap
                .upload_protected(now, self.server, req, 0)
                .map_err(|e| fail!("cannot send the protected request: {e}"))?
        } else {
            self.coap
                .upload(now, self.server, req)
                .map_err(|e| fail!("cannot send the request: {e}"))?
        };
        let deadline = Instant::now() + self.timeout;
        let mut reply: Option<Reply> = None;
        loop {
            self.flush().await?;
            while let Some(ev) = self.coap.poll_event() {
                match ev {
                    CoapEvent::Response {
                        id: got,
                        last,
                        response,
                        ..
                    }
                    | CoapEvent::Notification {
                        id: got,
                        last,
                        notification: response,
                        ..
                    } if got == id => {
                        let r = match reply.as_mut() {
                            Some(r) => r,
                            None => reply.insert(Reply::start(&response)?),
                        };
                        if r.add(&response, last)? {
                            if r.uint_option(OptionNumber::OBSERVE).is_some() {
                                self.coap.forget(id);
                            }
                            return reply.ok_or_else(|| self.no_answer());
                        }
                    }
                    CoapEvent::Timeout { id: got } if got == id => return Err(self.no_answer()),
                    CoapEvent::Reset { id: got } if got == id => {
                        return Err(fail!("{} rejected the request (RST)", self.server))
                    }
                    _ => {}
                }
            }
            if !self.wait(deadline).await? {
                return Err(self.no_answer());
            }
        }
    }

    /// Observes `path`: calls `each` for every notification (the first
    /// response included), `count` of them, then cancels the observation.
    /// A response without Observe (the resource is not observable) is
    /// passed to `each` and ends the observation.
    pub async fn observe(
        &mut self,
        path: &str,
        query: Option<&str>,
        count: u32,
        each: impl FnMut(&Reply, &Traffic),
    ) -> Result<()> {
        let mut req = Request::get(path);
        if let Some(q) = query {
            req = req.query(q);
        }
        self.observe_with(&req, count, None, each).await
    }

    /// Observes with `req` (Observe 0 is added): like
    /// [`observe`](Self::observe), and also ends, without an error, at
    /// `until` (`cssf-client -s SECONDS`).
    pub async fn observe_with(
        &mut self,
        req: &Request<'_>,
        count: u32,
        until: Option<Instant>,
        mut each: impl FnMut(&Reply, &Traffic),
    ) -> Result<()> {
        let now = self.now();
        let req = req.observe();
        // With an OSCORE context the registration is protected, and so is
        // every notification taken.
        let id = if self.oscore_seq.is_some() {
            self.persist_oscore()?;
            self.coap
                .request_protected(now, self.server, &req, 0)
                .map_err(|e| fail!("cannot send the protected request: {e}"))?
        } else {
            self.coap
                .request(now, self.server, &req)
                .map_err(|e| fail!("cannot send the request: {e}"))?
        };
        let mut deadline = Instant::now() + self.timeout;
        let mut seen = 0;
        let mut reply: Option<Reply> = None;
        let mut mark = self.traffic;
        while seen < count {
            self.flush().await?;
            while let Some(ev) = self.coap.poll_event() {
                let (got, last, r) = match ev {
                    CoapEvent::Response {
                        id, last, response, ..
                    } => (id, last, response),
                    CoapEvent::Notification {
                        id,
                        last,
                        notification,
                        ..
                    } => (id, last, notification),
                    CoapEvent::Timeout { id: got } if got == id => return Err(self.no_answer()),
                    CoapEvent::Reset { id: got } if got == id => {
                        return Err(fail!("{} rejected the request (RST)", self.server))
                    }
                    _ => continue,
                };
                if got != id {
                    continue;
                }
                let rep = match reply.as_mut() {
                    Some(x) => x,
                    None => reply.insert(Reply::start(&r)?),
                };
                if rep.add(&r, last)? {
                    seen += 1;
                    deadline = Instant::now() + self.timeout;
                    each(rep, &self.traffic.since(&mark));
                    mark = self.traffic;
                    let observing = rep.uint_option(OptionNumber::OBSERVE).is_some();
                    reply = None;
                    if !observing {
                        self.coap.forget(id);
                        return Ok(());
                    }
                    if seen >= count {
                        break;
                    }
                }
            }
            let wake = until.map_or(deadline, |u| u.min(deadline));
            if seen < count && !self.wait(wake).await? {
                if until.is_some_and(|u| Instant::now() >= u) {
                    break;
                }
                return Err(fail!(
                    "no notification from {} within {} s",
                    self.server,
                    self.timeout.as_secs()
                ));
            }
        }
        self.cancel(id).await;
        Ok(())
    }

    /// Deregisters (GET with Observe 1) and waits briefly for the answer.
    async fn cancel(&mut self, id: ExchangeId) {
        let now = self.now();
        if self.coap.cancel_observe(now, id).is_err() {
            self.coap.forget(id);
            return;
        }
        let deadline = Instant::now() + self.timeout.min(Duration::from_secs(3));
        loop {
            if self.flush().await.is_err() {
                return;
            }
            while let Some(ev) = self.coap.poll_event() {
                if matches!(ev, CoapEvent::Response { id: got, last: true, .. } if got == id)
                    || matches!(ev, CoapEvent::Timeout { id: got } | CoapEvent::Reset { id: got } if got == id)
                {
                    self.coap.forget(id);
                    return;
                }
            }
            if !matches!(self.wait(deadline).await, Ok(true)) {
                self.coap.forget(id);
                return;
            }
        }
    }

    /// Ends the link (close_notify on DTLS).
    pub async fn close(mut self) {
        let now = self.now();
        if let Some(d) = self.dtls.as_mut() {
            d.close(now);
        }
        let _ = self.flush().await;
    }
}
