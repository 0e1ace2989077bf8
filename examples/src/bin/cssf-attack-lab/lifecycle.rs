//! Session-lifecycle attacks on the real `cssf-server` over loopback UDP.
//!
//! Unlike the in-memory rows, these start the device program itself (the
//! `cssf-server` beside the lab's own executable, or the one named by
//! `--server` / `CSSF_LAB_SERVER`) and drive DTLS clients from the lab
//! over a std `UdpSocket`. Every attempt comes from a fresh client
//! address:port; the attacker's sessions share that address:port with
//! what they attack, as a client restarting on the same port would.
//!
//! - Planted identity: a ClientKeyExchange naming `dev-1` (which may do
//!   everything) with a guessed key, never finished, then from the same
//!   address:port a server-only raw-public-key handshake (the client pins
//!   the device key and proves nothing) and `PUT /actuators/led`.
//!   Accepted: the PUT gets 2.04. Control: a session with dev-1's real key
//!   doing the same PUT gets 2.04. Reference: the same anonymous PUT with
//!   nothing planted (a 2.04 there would be the public rights' doing).
//!   Then the same with a resumption: a full handshake (anonymous raw
//!   public key, or dev-2, read-only `/time:GET`) ended with close_notify,
//!   dev-1 planted from the same address:port, the session resumed there
//!   and `PUT /actuators/led`. Accepted: 2.04 while the same resumption
//!   with nothing planted was refused. Control: dev-1's real resumption
//!   gets 2.04, resumed.
//! - Session restart: session A (dev-1) POSTs a unique secret to `/echo`
//!   with message ID M, starts a Block1 upload to `/echo` and observes
//!   `/time`, and vanishes without close_notify; session B (dev-2) from
//!   the same address:port sends `GET /time` with message ID M, then `PUT
//!   /actuators/led`, then the next block of A's upload, and listens for
//!   notifications. Accepted: B's response carries A's secret (a
//!   duplicate-cache entry crossed sessions), B's PUT gets 2.04, B's block
//!   completes A's upload (2.04 with A's block; the answer must be 4.08
//!   Request Entity Incomplete), or B receives a notification of A's
//!   observation. Control: within one session a request re-using a
//!   message ID gets the cached response (the effect the attack looks
//!   for), A's own PUT gets 2.04, the session's own upload completes with
//!   its next block, and its own observation is notified.
//! - Per-connection failures (module `lifecycle_failures`): broken
//!   handshakes and records from other hosts must leave a legitimate
//!   session served and the server running.
//!
//! A row whose server cannot be found or started, or whose attempts could
//! not run, is shown as a failure of the lab, never left out.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cssf_dtls::{Client, Config, Event, RejectAll, TrustStore};
use cssf_examples::server::TrustedKeys;
use cssf_netsim::peer::{free_udp_port_pair, ChildGuard};
use cssf_netsim::SimRng;
use rand_core::OsRng;

use crate::{Cmp, Opts, Row};

pub(crate) const DEV1_ID: &str = "dev-1";
pub(crate) const DEV1_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
pub(crate) const DEV2_ID: &str = "dev-2";
pub(crate) const DEV2_KEY: [u8; 16] = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
/// CoAP codes (class << 5 | detail).
pub(crate) const GET: u8 = 1;
const POST: u8 = 2;
pub(crate) const PUT: u8 = 3;
pub(crate) const CHANGED: &str = "2.04";
pub(crate) const CONTENT: &str = "2.05";

pub(crate) type Res<T> = Result<T, String>;

/// `IDENTITY:HEXKEY`.
pub(crate) fn psk_spec(id: &str, key: &[u8]) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("{id}:{hex}")
}

/// The server was named with `--server` or `CSSF_LAB_SERVER` (an older
/// build may then be started without per-identity rights).
static NAMED_SERVER: AtomicBool = AtomicBool::new(false);

/// The `cssf-server` to attack: `--server`, `CSSF_LAB_SERVER`, or the one
/// beside the lab's own executable.
pub(crate) fn server_binary(o: &Opts) -> Res<PathBuf> {
    NAMED_SERVER.store(
        o.server.is_some() || std::env::var_os("CSSF_LAB_SERVER").is_some(),
        Ordering::Relaxed,
    );
    let p = match (&o.server, std::env::var_os("CSSF_LAB_SERVER")) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => std::env::current_exe()
            .map_err(|e| format!("cannot find the lab's own executable: {e}"))?
            .parent()
            .map(|d| d.join("cssf-server"))
            .ok_or("the lab's executable has no directory")?,
    };
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "cssf-server not found at {} (build it, or name one with --server)",
            p.display()
        ))
    }
}

/// A scratch directory removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Res<Scratch> {
        let p = std::env::temp_dir().join(format!("cssf-attack-lab-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A running `cssf-server` (killed on drop).
pub(crate) struct Server {
    child: ChildGuard,
    /// Its CoAPs address.
    pub(crate) addr: SocketAddr,
    /// Its plain CoAP address.
    pub(crate) plain: SocketAddr,
    /// Started with plain `--psk IDENTITY:HEXKEY` because it refused the
    /// `:RIGHTS` suffix (a build from before per-identity rights).
    pub(crate) without_rights: bool,
}

impl Server {
    /// Starts `bin` on free loopback ports with `args` (each `--psk` with
    /// its rights); if it refuses them and was named with `--server` or
    /// `CSSF_LAB_SERVER` (an older build), once more with `plain` (the same
    /// without rights). The server built beside the lab gets no such
    /// fallback: its failing to start fails the row.
    pub(crate) fn start(bin: &Path, dir: &Path, args: &[String], plain: &[String]) -> Res<Server> {
        match Self::try_start(bin, dir, args) {
            Ok(s) => Ok(s),
            Err((true, first)) if !NAMED_SERVER.load(Ordering::Relaxed) => Err(format!(
                "{first} (not retried without per-identity rights: only a server named with \
                 --server or CSSF_LAB_SERVER is)"
            )),
            Err((true, first)) => match Self::try_start(bin, dir, plain) {
                Ok(mut s) => {
                    s.without_rights = true;
                    Ok(s)
                }
                Err((_, e)) => Err(format!("{first}; without rights: {e}")),
            },
            Err((false, e)) => Err(e),
        }
    }

    /// True while the process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }

    /// Kills the process (a control: the lab must see it).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// `Err((exited, why))`.
    fn try_start(bin: &Path, dir: &Path, args: &[String]) -> Result<Server, (bool, String)> {
        let mut last = (false, "no free port pair".to_string());
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        for _ in 0..5 {
            let n = STARTS.fetch_add(1, Ordering::Relaxed);
            let coap = free_udp_port_pair();
            if coap == 0 {
                continue;
            }
            let coaps = coap + 1;
            let (log, err) = (dir.join(format!("log-{n}")), dir.join(format!("err-{n}")));
            let (Ok(out), Ok(errf)) = (File::create(&log), File::create(&err)) else {
                return Err((false, format!("cannot write in {}", dir.display())));
            };
            let child = Command::new(bin)
                .args(["--bind", &format!("127.0.0.1:{coap}")])
                .args(["--dtls-bind", &format!("127.0.0.1:{coaps}")])
                .args(args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(errf)
                .spawn()
                .map_err(|e| (false, format!("cannot start {}: {e}", bin.display())))?;
            let mut guard = ChildGuard(child);
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(st)) = guard.0.try_wait() {
                    // A refused argument, or a port someone took meanwhile.
                    last = (
                        true,
                        format!("cssf-server exited ({st}): {}", read(&err).trim()),
                    );
                    break;
                }
                let bound = [coap, coaps]
                    .iter()
                    .all(|p| UdpSocket::bind(("127.0.0.1", *p)).is_err());
                if bound && read(&log).contains("listening on") {
                    return Ok(Server {
                        child: guard,
                        addr: SocketAddr::from(([127, 0, 0, 1], coaps)),
                        plain: SocketAddr::from(([127, 0, 0, 1], coap)),
                        without_rights: false,
                    });
                }
                if Instant::now() > end {
                    last = (false, "cssf-server did not start within 10 s".into());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if last.1.contains("address") {
                continue; // a port clash: other ports
            }
            return Err(last);
        }
        Err(last)
    }
}

/// One DTLS session over the lab's socket.
pub(crate) struct Session<'a, T> {
    pub(crate) sock: &'a UdpSocket,
    pub(crate) c: Client<SocketAddr, OsRng, T>,
    start: Instant,
    /// CoAP messages received that answered no request of ours (another
    /// token: notifications, empty acknowledgements).
    pub(crate) stray: Vec<Vec<u8>>,
    /// The last datagram sent.
    pub(crate) last_sent: Vec<u8>,
}

pub(crate) fn lab_config() -> Config {
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(500);
    cfg
}

pub(crate) fn psk_client(
    server: SocketAddr,
    id: &str,
    key: &[u8],
) -> Res<Client<SocketAddr, OsRng>> {
    Client::new(
        lab_config(),
        id.as_bytes(),
        key,
        server,
        OsRng,
        Duration::ZERO,
    )
    .map_err(|e| format!("client: {e}"))
}

impl<'a, T: TrustStore<SocketAddr>> Session<'a, T> {
    pub(crate) fn new(sock: &'a UdpSocket, c: Client<SocketAddr, OsRng, T>) -> Self {
        Session {
            sock,
            c,
            start: Instant::now(),
            stray: Vec::new(),
            last_sent: Vec::new(),
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub(crate) fn flush(&mut self) -> Res<()> {
        let mut buf = [0u8; 1500];
        while let Some(t) = self
            .c
            .poll_transmit(self.now(), &mut buf)
            .map_err(|e| format!("client: {e}"))?
        {
            let d = buf.get(..t.len).unwrap_or(&[]);
            self.sock
                .send_to(d, t.to)
                .map_err(|e| format!("send: {e}"))?;
            self.last_sent = d.to_vec();
        }
        Ok(())
    }

    /// Receives one datagram (up to 100 ms) into the client, or runs its
    /// timers.
    pub(crate) fn pump(&mut self) -> Res<()> {
        let mut buf = [0u8; 1500];
        let _ = self.sock.set_read_timeout(Some(Duration::from_millis(100)));
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Some(d) = buf.get_mut(..n) {
                    let _ = self.c.handle_datagram(self.now(), from, d);
                }
            }
            Err(_) => {
                self.c.handle_timeout(self.now());
            }
        }
        self.flush()
    }

    /// Runs until connected.
    pub(crate) fn handshake(&mut self) -> Res<()> {
        self.handshake_within(Duration::from_secs(10))
    }

    /// Runs until connected, for at most `limit`.
    pub(crate) fn handshake_within(&mut self, limit: Duration) -> Res<()> {
        let end = Instant::now() + limit;
        self.flush()?;
        while !self.c.is_connected() {
            if Instant::now() > end {
                return Err("handshake timed out".into());
            }
            self.pump()?;
            while let Some(e) = self.c.poll_event() {
                if let Event::Closed { reason, .. } = e {
                    return Err(format!("handshake failed: {reason}"));
                }
            }
        }
        Ok(())
    }

    /// Sends a CoAP request; the first response carrying its token (other
    /// messages go to [`stray`](Self::stray)).
    pub(crate) fn request(&mut self, msg: &[u8]) -> Res<Vec<u8>> {
        self.request_within(msg, Duration::from_secs(5))
    }

    /// [`request`](Self::request), waiting at most `limit`.
    pub(crate) fn request_within(&mut self, msg: &[u8], limit: Duration) -> Res<Vec<u8>> {
        self.c
            .send(self.now(), msg)
            .map_err(|e| format!("send: {e}"))?;
        self.flush()?;
        let want = token(msg).to_vec();
        let end = Instant::now() + limit;
        loop {
            if Instant::now() > end {
                return Err(format!("no response within {limit:?}"));
            }
            self.pump()?;
            for m in self.received()? {
                // A response (class 2 to 5) with our token.
                if token(&m) == want.as_slice() && m.get(1).is_some_and(|c| c >> 5 >= 2) {
                    return Ok(m);
                }
                self.stray.push(m);
            }
        }
    }

    /// The records the client has received, in order; `Err` when the
    /// session ended.
    fn received(&mut self) -> Res<Vec<Vec<u8>>> {
        let mut rec = [0u8; 1500];
        let mut out = Vec::new();
        while let Some(e) = self.c.poll_event() {
            match e {
                Event::ApplicationData { .. } => {
                    while let Ok(Some(n)) = self.c.recv(&mut rec) {
                        out.push(rec.get(..n).unwrap_or(&[]).to_vec());
                    }
                }
                Event::Closed { reason, .. } => return Err(format!("session closed: {reason}")),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Receives for `d`, every message into [`stray`](Self::stray).
    pub(crate) fn listen(&mut self, d: Duration) -> Res<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.pump()?;
            let got = self.received()?;
            self.stray.extend(got);
        }
        Ok(())
    }

    /// `(code, payload)` of the response to a request.
    pub(crate) fn ask(
        &mut self,
        code: u8,
        mid: u16,
        path: &[&str],
        payload: &[u8],
    ) -> Res<(String, Vec<u8>)> {
        response(&self.request(&coap(code, mid, path, payload))?)
    }

    /// Ends with close_notify.
    pub(crate) fn close(mut self) {
        self.c.close(self.now());
        let _ = self.flush();
    }
}

/// A CON request: `code` (0.0x), message ID, 1-byte token, Uri-Path
/// segments, payload.
pub(crate) fn coap(code: u8, mid: u16, path: &[&str], payload: &[u8]) -> Vec<u8> {
    let opts: Vec<(u16, &[u8])> = path.iter().map(|s| (11, s.as_bytes())).collect();
    coap_with(code, mid, &[0x7A], &opts, payload)
}

/// A CON request with `token` and `opts` (number, value), in ascending
/// order of number, each value shorter than 269 bytes.
pub(crate) fn coap_with(
    code: u8,
    mid: u16,
    token: &[u8],
    opts: &[(u16, &[u8])],
    payload: &[u8],
) -> Vec<u8> {
    let [hi, lo] = mid.to_be_bytes();
    let mut m = vec![0x40 | (token.len() as u8 & 0x0F), code, hi, lo];
    m.extend_from_slice(token);
    let mut last = 0u16;
    for (num, val) in opts {
        let delta = num - last;
        last = *num;
        let nib = |v: usize| {
            if v < 13 {
                (v as u8, None)
            } else {
                (13, Some((v - 13) as u8))
            }
        };
        let (d, dx) = nib(usize::from(delta));
        let (l, lx) = nib(val.len());
        m.push((d << 4) | l);
        m.extend(dx);
        m.extend(lx);
        m.extend_from_slice(val);
    }
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// The token of a CoAP message (empty if malformed).
pub(crate) fn token(m: &[u8]) -> &[u8] {
    let tkl = usize::from(m.first().map_or(0, |b| b & 0x0F));
    m.get(4..4 + tkl).unwrap_or(&[])
}

/// `("class.detail", payload)` of a CoAP response.
pub(crate) fn response(m: &[u8]) -> Res<(String, Vec<u8>)> {
    let (Some(b0), Some(code)) = (m.first(), m.get(1)) else {
        return Err("response shorter than a CoAP header".into());
    };
    let tkl = usize::from(b0 & 0x0F);
    let rest = m.get(4 + tkl..).unwrap_or(&[]);
    let payload = rest
        .iter()
        .position(|b| *b == 0xFF)
        .and_then(|i| rest.get(i + 1..))
        .unwrap_or(&[])
        .to_vec();
    Ok((format!("{}.{:02}", code >> 5, code & 0x1F), payload))
}

/// A fresh client address:port.
pub(crate) fn socket() -> Res<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))
}

/// Sends a PSK handshake naming `dev-1` with a guessed key up to and
/// including its ClientKeyExchange, and nothing after it (no
/// ChangeCipherSpec, no Finished).
fn plant(sock: &UdpSocket, server: SocketAddr, guess: &[u8]) -> Res<()> {
    let mut s = Session::new(sock, psk_client(server, DEV1_ID, guess)?);
    let mut buf = [0u8; 1500];
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let now = s.now();
        while let Some(t) =
            s.c.poll_transmit(now, &mut buf)
                .map_err(|e| format!("client: {e}"))?
        {
            // The records one by one, stopping after ClientKeyExchange.
            let mut rest = buf.get(..t.len).unwrap_or(&[]);
            while let (Some(&hi), Some(&lo)) = (rest.get(11), rest.get(12)) {
                let len = (13 + usize::from(u16::from_be_bytes([hi, lo]))).min(rest.len());
                let (rec, tail) = rest.split_at(len);
                sock.send_to(rec, server)
                    .map_err(|e| format!("send: {e}"))?;
                if rec.first() == Some(&22) && rec.get(13) == Some(&16) {
                    return Ok(());
                }
                rest = tail;
            }
        }
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if let Some(d) = buf.get_mut(..n) {
                let _ = s.c.handle_datagram(s.now(), from, d);
            }
        } else {
            s.c.handle_timeout(s.now());
        }
    }
    Err("the server never asked for the ClientKeyExchange".into())
}

/// What one attempt of a row saw.
#[derive(Default)]
struct Tally {
    /// Attempts that could not run, with the last reason.
    not_run: u32,
    why: String,
    /// Controls that showed the effect.
    control: u32,
    /// Accepted attempts per effect (row 2: secret crossed, PUT granted).
    effects: [u32; 2],
}

impl Tally {
    fn failed(&mut self, why: String) {
        self.not_run += 1;
        self.why = why;
    }

    /// Counts a control run; `true` when it ran (the server served a
    /// legitimate session).
    fn control(&mut self, r: Res<bool>) -> bool {
        match r {
            Ok(seen) => {
                self.control += u32::from(seen);
                true
            }
            Err(e) => {
                self.why = format!("control: {e}");
                false
            }
        }
    }

    /// `; N/M attempts could not run: why`, or nothing.
    fn not_run_note(&self, attempts: u32) -> String {
        if self.not_run == 0 {
            String::new()
        } else {
            format!(
                "; {}/{attempts} attempts could not run: {}",
                self.not_run, self.why
            )
        }
    }

    /// The lab failed this row: it is not a result about the server.
    fn failure(&self, attempts: u32) -> Option<String> {
        if self.not_run > 0 {
            Some(format!(
                "{}/{attempts} attempts could not run ({})",
                self.not_run, self.why
            ))
        } else if self.control < attempts {
            Some(format!(
                "the control showed the effect in {}/{attempts} ({})",
                self.control, self.why
            ))
        } else {
            None
        }
    }
}

/// Row 1, one attempt from a fresh address:port: dev-1 planted with the
/// key `guess` (none: nothing planted, the reference), then an anonymous
/// session's PUT. `Ok(2.04)`.
fn planted(
    server: SocketAddr,
    pins: &[p256::PublicKey],
    guess: Option<&[u8]>,
    mid: u16,
) -> Res<bool> {
    let sock = socket()?;
    if let Some(guess) = guess {
        plant(&sock, server, guess)?;
        // Let the server take the ClientKeyExchange before the new handshake.
        std::thread::sleep(Duration::from_millis(100));
    }
    let anon = Client::with_raw_public_key(
        lab_config(),
        None,
        TrustedKeys(pins.to_vec()),
        server,
        OsRng,
        Duration::ZERO,
    )
    .map_err(|e| format!("client: {e}"))?;
    let mut s = Session::new(&sock, anon);
    s.handshake()
        .map_err(|e| format!("anonymous session: {e}"))?;
    let (code, _) = s.ask(PUT, mid, &["actuators", "led"], b"on")?;
    s.close();
    Ok(code == CHANGED)
}

/// Who resumes in row 1's resumptions.
#[derive(Clone, Copy)]
enum Resumer {
    /// A server-only raw-public-key session (the client proves nothing).
    Anonymous,
    /// dev-2, which may only `GET /time`.
    Dev2,
    /// dev-1 with its real key (the control).
    Dev1,
}

/// Row 1, a resumption from a fresh address:port: a full handshake as
/// `who`, ended with close_notify; dev-1 planted with the key `guess`
/// (none: nothing planted, the reference); then from the same
/// address:port that session resumed and `PUT /actuators/led`.
/// `Ok((2.04, resumed))`.
fn planted_resume(
    server: SocketAddr,
    pins: &[p256::PublicKey],
    who: Resumer,
    guess: Option<&[u8]>,
    mid: u16,
) -> Res<(bool, bool)> {
    let sock = socket()?;
    let anon = || {
        Client::with_raw_public_key(
            lab_config(),
            None,
            TrustedKeys(pins.to_vec()),
            server,
            OsRng,
            Duration::ZERO,
        )
        .map_err(|e| format!("client: {e}"))
    };
    let (id, key) = match who {
        Resumer::Dev1 => (DEV1_ID, DEV1_KEY),
        _ => (DEV2_ID, DEV2_KEY),
    };
    let session = match who {
        Resumer::Anonymous => full_session(&sock, anon()?)?,
        _ => full_session(&sock, psk_client(server, id, &key)?)?,
    };
    if let Some(guess) = guess {
        plant(&sock, server, guess)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let resumed = match who {
        Resumer::Anonymous => put_resumed(
            &sock,
            Client::resume_with_raw_public_key(
                lab_config(),
                None,
                TrustedKeys(pins.to_vec()),
                &session,
                server,
                OsRng,
                Duration::ZERO,
            )
            .map_err(|e| format!("client: {e}"))?,
            mid,
        ),
        _ => put_resumed(
            &sock,
            Client::resume(
                lab_config(),
                id.as_bytes(),
                &key,
                &session,
                server,
                OsRng,
                Duration::ZERO,
            )
            .map_err(|e| format!("client: {e}"))?,
            mid,
        ),
    };
    resumed.map_err(|e| format!("resumption: {e}"))
}

/// A full handshake, ended with close_notify: its session, to resume.
fn full_session<T: TrustStore<SocketAddr>>(
    sock: &UdpSocket,
    c: Client<SocketAddr, OsRng, T>,
) -> Res<cssf_dtls::Session> {
    let mut s = Session::new(sock, c);
    s.handshake().map_err(|e| format!("full handshake: {e}"))?;
    let session = s.c.session().ok_or("no session to resume")?;
    s.close();
    Ok(session)
}

/// The handshake of `c`, then `PUT /actuators/led`. `Ok((2.04, resumed))`.
fn put_resumed<T: TrustStore<SocketAddr>>(
    sock: &UdpSocket,
    c: Client<SocketAddr, OsRng, T>,
    mid: u16,
) -> Res<(bool, bool)> {
    let mut s = Session::new(sock, c);
    s.handshake()?;
    let resumed = s.c.is_resumed();
    let (code, _) = s.ask(PUT, mid, &["actuators", "led"], b"on")?;
    s.close();
    Ok((code == CHANGED, resumed))
}

/// Row 1's control: dev-1 with its real key, the same PUT. `Ok(2.04)`.
fn planted_control(server: SocketAddr, mid: u16) -> Res<bool> {
    let sock = socket()?;
    let mut s = Session::<RejectAll>::new(&sock, psk_client(server, DEV1_ID, &DEV1_KEY)?);
    s.handshake()?;
    let (code, _) = s.ask(PUT, mid, &["actuators", "led"], b"on")?;
    s.close();
    Ok(code == CHANGED)
}

/// Block1 option (27) of block `num` of 16 bytes, `more` following.
fn block1(num: u8, more: bool) -> [u8; 1] {
    [(num << 4) | (u8::from(more) << 3)]
}

/// `POST /echo` carrying Block1 block `num` (16-byte blocks).
fn upload_block(mid: u16, num: u8, more: bool, payload: &[u8]) -> Vec<u8> {
    let b = block1(num, more);
    coap_with(
        POST,
        mid,
        &[0x7A],
        &[(11, b"echo".as_slice()), (27, b.as_slice())],
        payload,
    )
}

/// `GET /time` registering an observation (Observe 0) with `token`.
fn observe_time(mid: u16, token: &[u8]) -> Vec<u8> {
    coap_with(GET, mid, token, &[(6, &[]), (11, b"time")], b"")
}

/// True when CoAP message `m` carries an Observe option (6): the server
/// took the registration.
fn has_observe(m: &[u8]) -> bool {
    let tkl = usize::from(m.first().map_or(0, |b| b & 0x0F));
    let mut rest = m.get(4 + tkl..).unwrap_or(&[]);
    let mut num = 0usize;
    while let Some((&b, tail)) = rest.split_first() {
        if b == 0xFF {
            return false;
        }
        let mut tail = tail;
        let mut ext = |v: u8| -> Option<usize> {
            match v {
                13 => {
                    let (&x, t) = tail.split_first()?;
                    tail = t;
                    Some(usize::from(x) + 13)
                }
                14 => {
                    let (x, t) = (tail.get(..2)?, tail.get(2..)?);
                    tail = t;
                    Some(usize::from(u16::from_be_bytes([x[0], x[1]])) + 269)
                }
                15 => None,
                v => Some(usize::from(v)),
            }
        };
        let (Some(delta), Some(len)) = (ext(b >> 4), ext(b & 0x0F)) else {
            return false;
        };
        num += delta;
        if num == 6 {
            return true;
        }
        rest = tail.get(len..).unwrap_or(&[]);
    }
    false
}

/// Cancels the observation of `/time` with [`OBSERVE_TOKEN`] (RFC 7641
/// §3.6: GET with Observe 1), whatever the answer.
fn cancel<T: TrustStore<SocketAddr>>(s: &mut Session<'_, T>, mid: u16) {
    let m = coap_with(GET, mid, &OBSERVE_TOKEN, &[(6, &[1]), (11, b"time")], b"");
    let _ = s.request_within(&m, Duration::from_secs(2));
}

/// Registers the observation of `/time` with [`OBSERVE_TOKEN`] in `s`.
fn register<T: TrustStore<SocketAddr>>(s: &mut Session<'_, T>, mid: u16, who: &str) -> Res<()> {
    let m = s.request(&observe_time(mid, &OBSERVE_TOKEN))?;
    let (code, _) = response(&m)?;
    if code != CONTENT || !has_observe(&m) {
        return Err(format!(
            "{who}'s observation was not taken ({code}{})",
            if has_observe(&m) {
                ""
            } else {
                " without Observe"
            }
        ));
    }
    Ok(())
}

/// The token of session A's observation.
const OBSERVE_TOKEN: [u8; 2] = [0xA0, 0x0B];
/// How long a session listens for notifications of `/time` (one a second).
const NOTIFY_WAIT: Duration = Duration::from_millis(2500);
/// Session A's first Block1 block (16 bytes), and what B sends as the next.
const A_BLOCK: &[u8; 16] = b"A-upload-block-0";
const B_BLOCK: &[u8] = b"B-tail";

/// What one attempt of row 2 saw.
#[derive(Default)]
struct Restart {
    /// B's response carried A's secret.
    crossed: bool,
    /// Read-only B's PUT got 2.04.
    granted: bool,
    /// B's next block completed A's upload (2.04 with A's block).
    block_crossed: bool,
    /// B's code for that block.
    block_code: String,
    /// Notifications of A's observation B received.
    notified: usize,
    /// A's own PUT got 2.04 (control).
    a_put: bool,
    /// B was served afterwards.
    served: bool,
}

/// Row 2, one attempt.
fn restart(server: SocketAddr, mid: u16, secret: &[u8]) -> Res<Restart> {
    let mut r = Restart::default();
    let sock = socket()?;
    let mut a = Session::<RejectAll>::new(&sock, psk_client(server, DEV1_ID, &DEV1_KEY)?);
    a.handshake().map_err(|e| format!("session A: {e}"))?;
    let (code, _) = a.ask(PUT, mid.wrapping_add(0x100), &["actuators", "led"], b"on")?;
    r.a_put = code == CHANGED;
    let (code, body) = a.ask(POST, mid, &["echo"], secret)?;
    if body != secret {
        return Err(format!(
            "session A's POST /echo got {code} without its secret"
        ));
    }
    // A starts an upload and observes /time.
    let (code, _) =
        response(&a.request(&upload_block(mid.wrapping_add(0x101), 0, true, A_BLOCK))?)?;
    if code != "2.31" {
        return Err(format!("session A's first block got {code}, not 2.31"));
    }
    register(&mut a, mid.wrapping_add(0x102), "session A")?;
    // A vanishes: no close_notify.
    drop(a);
    let mut b = Session::<RejectAll>::new(&sock, psk_client(server, DEV2_ID, &DEV2_KEY)?);
    b.handshake().map_err(|e| format!("session B: {e}"))?;
    let (_, body) = b.ask(GET, mid, &["time"], b"")?;
    r.crossed = body == secret;
    let (code, _) = b.ask(PUT, mid.wrapping_add(1), &["actuators", "led"], b"off")?;
    r.granted = code == CHANGED;
    // B continues A's upload with the next block.
    let (code, body) =
        response(&b.request(&upload_block(mid.wrapping_add(3), 1, false, B_BLOCK))?)?;
    r.block_crossed = code == CHANGED && body.starts_with(A_BLOCK);
    r.block_code = code;
    b.listen(NOTIFY_WAIT)?;
    r.notified = b.stray.iter().filter(|m| token(m) == OBSERVE_TOKEN).count();
    // A server that let the observation cross frees its slot for the next
    // attempt (on one that did not, this cancels nothing).
    cancel(&mut b, mid.wrapping_add(4));
    let (code, _) = b.ask(GET, mid.wrapping_add(2), &["time"], b"")?;
    r.served = code == CONTENT;
    b.close();
    Ok(r)
}

/// Row 2's controls, in one session: a request re-using a message ID gets
/// the cached response; the session's own upload completes with its next
/// block; its observation is notified. `Ok((cache seen, upload completed,
/// notifications))`.
fn restart_control(server: SocketAddr, mid: u16, secret: &[u8]) -> Res<(bool, bool, usize)> {
    let sock = socket()?;
    let mut s = Session::<RejectAll>::new(&sock, psk_client(server, DEV1_ID, &DEV1_KEY)?);
    s.handshake()?;
    let (_, body) = s.ask(POST, mid, &["echo"], secret)?;
    if body != secret {
        return Err("POST /echo did not echo".into());
    }
    let (_, body) = s.ask(GET, mid, &["time"], b"")?;
    let cached = body == secret;
    let (code, _) = response(&s.request(&upload_block(mid.wrapping_add(1), 0, true, A_BLOCK))?)?;
    if code != "2.31" {
        return Err(format!("the first block got {code}, not 2.31"));
    }
    let (code, body) =
        response(&s.request(&upload_block(mid.wrapping_add(2), 1, false, B_BLOCK))?)?;
    let whole: Vec<u8> = A_BLOCK.iter().chain(B_BLOCK).copied().collect();
    let completed = code == CHANGED && body == whole;
    register(&mut s, mid.wrapping_add(3), "the control session")?;
    s.listen(NOTIFY_WAIT)?;
    cancel(&mut s, mid.wrapping_add(4));
    let notified = s.stray.iter().filter(|m| token(m) == OBSERVE_TOKEN).count();
    s.close();
    Ok((cached, completed, notified))
}

pub(crate) fn comparisons(r: &mut Row) {
    r.baseline = Cmp::Na("no sessions or identities");
    r.libcoap = Cmp::NotRun("the lab drives only cssf-server here");
}

/// The lifecycle rows.
pub fn run(o: &Opts) -> Vec<Row> {
    let mut rows = [
        Row::new(
            "lifecycle-planted",
            "Identity planted before Finished, then an anonymous session or a resumption from the same address",
        ),
        Row::new(
            "lifecycle-restart",
            "Session restart from the same address:port without close_notify",
        ),
        Row::new(
            "lifecycle-failures",
            "Record sequence number near 2^48 in the ClientHello, and other per-connection failures: other sessions keep being served",
        ),
    ];
    for r in &mut rows {
        comparisons(r);
    }
    let setup =
        || -> Res<(PathBuf, Scratch)> { Ok((server_binary(o)?, Scratch::new("lifecycle")?)) };
    let (bin, dir) = match setup() {
        Ok(x) => x,
        Err(e) => {
            for r in &mut rows {
                r.survived = None;
                r.failure = Some(e.clone());
                r.defence = format!("NOT RUN: {e}");
            }
            return rows.into();
        }
    };
    let [planted_row, restart_row, failures_row] = &mut rows;
    run_planted(o, &bin, &dir.0, planted_row);
    run_restart(o, &bin, &dir.0, restart_row);
    crate::lifecycle_failures::run(o, &bin, &dir.0, failures_row);
    rows.into()
}

pub(crate) fn not_started(r: &mut Row, e: String) {
    r.survived = None;
    r.defence = format!("NOT RUN: {e}");
    r.failure = Some(e);
}

pub(crate) fn rights_note(s: &Server) -> &'static str {
    if s.without_rights {
        "; this server took no RIGHTS: every --psk got full access"
    } else {
        ""
    }
}

fn run_planted(o: &Opts, bin: &Path, dir: &Path, row: &mut Row) {
    let keys = || -> Res<(String, String, p256::PublicKey)> {
        let (device, device_pub, as_key, as_pub) = (
            dir.join("device.pem"),
            dir.join("device.pub.pem"),
            dir.join("as.pem"),
            dir.join("as.pub.pem"),
        );
        let pk = cssf_examples::keys::generate_key_pair(&device, Some(&device_pub), false)
            .map_err(|e| e.to_string())?;
        cssf_examples::keys::generate_key_pair(&as_key, Some(&as_pub), false)
            .map_err(|e| e.to_string())?;
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        Ok((s(device), s(as_pub), pk))
    };
    let (device, as_pub, pin) = match keys() {
        Ok(k) => k,
        Err(e) => return not_started(row, format!("keys: {e}")),
    };
    let (psk, psk2) = (psk_spec(DEV1_ID, &DEV1_KEY), psk_spec(DEV2_ID, &DEV2_KEY));
    let tail = [
        "--key".to_string(),
        device,
        "--as-public-key".into(),
        as_pub,
    ];
    let args: Vec<String> = [
        "--psk".to_string(),
        format!("{psk}:*:ALL"),
        "--psk".to_string(),
        format!("{psk2}:/time:GET"),
    ]
    .into_iter()
    .chain(tail.iter().cloned())
    .collect();
    let plain: Vec<String> = ["--psk".to_string(), psk, "--psk".to_string(), psk2]
        .into_iter()
        .chain(tail.iter().cloned())
        .collect();
    let server = match Server::start(bin, dir, &args, &plain) {
        Ok(s) => s,
        Err(e) => return not_started(row, e),
    };
    let mut rng = SimRng::new(o.seed ^ 0x11FE);
    let mut t = Tally::default();
    let mut unplanted = 0;
    let (mut anon_session, mut control_resumed) = (0, 0);
    let (mut res_reference, mut res_resumed) = ([0u32; 2], [0u32; 2]);
    for _ in 0..o.server_attempts {
        let mid = rng.next_u64_raw() as u16;
        let mut guess = [0u8; 16];
        for b in &mut guess {
            *b = rng.next_u64_raw() as u8;
        }
        // The reference: the same anonymous PUT with nothing planted (its
        // 2.04 would mean the public rights, not the planted identity).
        let attack = planted(server.addr, &[pin], None, mid.wrapping_add(2))
            .map_err(|e| format!("reference: {e}"))
            .and_then(|reference| {
                unplanted += u32::from(reference);
                planted(server.addr, &[pin], Some(&guess), mid)
            });
        // The resumptions, anonymous and dev-2's, each with its reference
        // (the same resumption with nothing planted): accepted when the
        // planted one's PUT got 2.04 and the reference's did not.
        let mut resumptions = |attack: Res<bool>| -> Res<bool> {
            let mut acc = attack?;
            for (k, who) in [Resumer::Anonymous, Resumer::Dev2].into_iter().enumerate() {
                let m = mid.wrapping_add(3 + 2 * k as u16);
                let (reference, _) = planted_resume(server.addr, &[pin], who, None, m)
                    .map_err(|e| format!("reference {k}: {e}"))?;
                let (granted, was_resumed) =
                    planted_resume(server.addr, &[pin], who, Some(&guess), m.wrapping_add(1))?;
                let got = granted && !reference;
                if let (Some(r), Some(g), Some(e)) = (
                    res_reference.get_mut(k),
                    res_resumed.get_mut(k),
                    t.effects.get_mut(k),
                ) {
                    *r += u32::from(reference);
                    *g += u32::from(was_resumed);
                    *e += u32::from(got);
                }
                acc |= got;
            }
            Ok(acc)
        };
        let attack = attack.inspect(|acc| anon_session += u32::from(*acc));
        match resumptions(attack) {
            Ok(acc) => {
                let alive = t.control(planted_control(server.addr, mid.wrapping_add(1)));
                row.attempt(acc, alive);
            }
            Err(e) => {
                row.skipped();
                t.failed(e);
                let _ = t.control(planted_control(server.addr, mid.wrapping_add(1)));
            }
        }
        match planted_resume(
            server.addr,
            &[pin],
            Resumer::Dev1,
            None,
            mid.wrapping_add(9),
        ) {
            Ok((granted, was_resumed)) => {
                control_resumed += u32::from(granted && was_resumed);
            }
            Err(e) => t.why = format!("control resumption: {e}"),
        }
    }
    row.control(t.control, row.attempts, false);
    row.control(control_resumed, row.attempts, false);
    row.failure = t.failure(row.attempts).or_else(|| {
        (control_resumed < row.attempts).then(|| {
            format!(
                "the control, dev-1's real resumption, got 2.04 resumed in {control_resumed}/{}{}",
                row.attempts,
                if t.why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", t.why)
                }
            )
        })
    });
    let [anon_ref, dev2_ref] = res_reference;
    let [anon_res, dev2_res] = res_resumed;
    row.defence = format!(
        "identity bound only when the handshake finishes; a resumption carries the resumed \
         session's identity only; anonymous sessions get the public rights (anonymous \
         session's PUT 2.04 {anon_session}/{n}; planted, then resumed: anonymous session's PUT \
         2.04 {}/{n} (resumed {anon_res}/{n}), read-only dev-2's PUT 2.04 {}/{n} (resumed \
         {dev2_res}/{n}); control, dev-1's real key: PUT 2.04 in {}/{n}, dev-1's real \
         resumption: PUT 2.04 resumed in {control_resumed}/{n}; with nothing planted, PUT \
         2.04: anonymous {unplanted}/{n}, anonymous resumed {anon_ref}/{n}, dev-2 resumed \
         {dev2_ref}/{n}{}{})",
        t.effects[0],
        t.effects[1],
        t.control,
        rights_note(&server),
        t.not_run_note(row.attempts),
        n = row.attempts,
    );
}

fn run_restart(o: &Opts, bin: &Path, dir: &Path, row: &mut Row) {
    let (p1, p2) = (psk_spec(DEV1_ID, &DEV1_KEY), psk_spec(DEV2_ID, &DEV2_KEY));
    let args: Vec<String> = vec![
        "--psk".into(),
        format!("{p1}:*:ALL"),
        "--psk".into(),
        format!("{p2}:/time:GET"),
    ];
    let plain: Vec<String> = vec!["--psk".into(), p1, "--psk".into(), p2];
    let server = match Server::start(bin, dir, &args, &plain) {
        Ok(s) => s,
        Err(e) => return not_started(row, e),
    };
    let mut rng = SimRng::new(o.seed ^ 0x2E57);
    let mut t = Tally::default();
    let (mut a_put, mut blocks, mut notified, mut most) = (0, 0, 0, 0);
    let (mut completed, mut observed) = (0, 0);
    let mut codes: Vec<String> = Vec::new();
    for i in 0..o.server_attempts {
        let mid = rng.next_u64_raw() as u16;
        let secret = format!("secret-{i}-{:016x}", rng.next_u64_raw()).into_bytes();
        match restart(server.addr, mid, &secret) {
            Ok(r) => {
                row.attempt(
                    r.crossed || r.granted || r.block_crossed || r.notified > 0,
                    r.served,
                );
                t.effects[0] += u32::from(r.crossed);
                t.effects[1] += u32::from(r.granted);
                blocks += u32::from(r.block_crossed);
                notified += u32::from(r.notified > 0);
                most = most.max(r.notified);
                a_put += u32::from(r.a_put);
                if !codes.contains(&r.block_code) {
                    codes.push(r.block_code);
                }
            }
            Err(e) => {
                row.skipped();
                t.failed(e);
            }
        }
        let control_secret = format!("control-{i}").into_bytes();
        let control = restart_control(server.addr, mid.wrapping_add(0x200), &control_secret).map(
            |(cached, done, n)| {
                completed += u32::from(done);
                observed += u32::from(n > 0);
                cached
            },
        );
        let _ = t.control(control);
    }
    let ran = row.attempts - t.not_run;
    row.control(t.control, row.attempts, false);
    row.control(a_put, row.attempts, false);
    row.control(completed, row.attempts, false);
    row.control(observed, row.attempts, false);
    row.failure = t.failure(row.attempts).or_else(|| {
        if a_put < ran {
            Some(format!(
                "the control showed A's PUT granted in {a_put}/{ran}"
            ))
        } else if completed < row.attempts || observed < row.attempts {
            Some(format!(
                "the controls completed a session's own upload in {completed}/{n} and \
                 notified its own observation in {observed}/{n}",
                n = row.attempts
            ))
        } else {
            None
        }
    });
    codes.sort();
    row.defence = format!(
        "a new session from the address ends the old one and all tied to it; rights per \
         proven identity (B got A's secret {}/{n}, read-only B's PUT 2.04 {}/{n}, B's next \
         block completed A's upload {blocks}/{n} (B's block got {}), B got notifications \
         of A's observation {notified}/{n} (at most {most} in {:.1} s); control: a re-used \
         message ID in one session got the cached response {}/{n}, A's PUT 2.04 \
         {a_put}/{n}, a session's own upload completed {completed}/{n}, its own \
         observation notified {observed}/{n}{}{})",
        t.effects[0],
        t.effects[1],
        if codes.is_empty() {
            "-".to_string()
        } else {
            codes.join(", ")
        },
        NOTIFY_WAIT.as_secs_f32(),
        t.control,
        rights_note(&server),
        t.not_run_note(row.attempts),
        n = row.attempts,
    );
}
