//! Helpers for interop tests: a child-process guard and UDP drivers for our
//! client and server. Every read is bounded; every child is killed on drop.
#![allow(
    clippy::std_instead_of_core,
    dead_code,
    unreachable_pub,
    clippy::too_many_arguments,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{ChildStdin, Command, Stdio};
use std::string::String;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::vec::Vec;

use cssf_dtls::{
    CipherSuite, Client, CloseReason, Config, Endpoint, Event, PeerContext, PskStore, SigningKey,
    StaticPsk, TrustStore,
};
use cssf_netsim::peer::ChildGuard;
use cssf_netsim::SimRng;

/// A running peer process; killed and reaped on drop.
pub struct Peer {
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    pub what: String,
}

impl Peer {
    /// Starts `program args..` with piped stdio (stdin kept open).
    pub fn spawn(program: &str, args: &[&str], what: String) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {program}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        for mut r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let stdin = child.stdin.take();
        Peer {
            child: ChildGuard(child),
            stdin,
            out,
            what,
        }
    }

    /// Everything the peer printed so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until the output contains `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Writes to the peer's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(data);
            let _ = s.flush();
        }
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }
}

/// Hex string to bytes.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The interop tests' settings. With feature `ring-p256` (part of
/// `--all-features`) the P-256 operations run through the ring backend of
/// the crypto provider, so the interop tests run again with it.
pub fn config(suites: &[CipherSuite]) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(suites).unwrap();
    c.retransmit_initial = Duration::from_millis(500);
    c.retransmit_max = Duration::from_secs(2);
    c.max_retransmits = 10;
    #[cfg(feature = "ring-p256")]
    {
        c.crypto = &cssf_dtls::provider::ring::PROVIDER;
    }
    c
}

pub fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// What the client driver saw.
pub struct ClientRun {
    pub suite: CipherSuite,
    /// What the handshake proved about the server (`Connected`).
    pub identity: Option<cssf_dtls::Identity>,
    pub received: Vec<Vec<u8>>,
}

/// Runs our client against `server`: handshake, then `on_connected` (e.g.
/// make the peer send something), send `payload` (if any), and wait until
/// `done(received)`; bounded by `timeout`.
pub fn run_client(
    server: SocketAddr,
    cfg: Config,
    identity: &[u8],
    key: &[u8],
    payload: Option<&[u8]>,
    on_connected: impl FnMut(),
    done: impl FnMut(&[Vec<u8>]) -> bool,
    timeout: Duration,
) -> Result<ClientRun, String> {
    let client = Client::new(
        cfg,
        identity,
        key,
        server,
        SimRng::new(seed()),
        Duration::ZERO,
    )
    .map_err(|e| e.to_string())?;
    drive_client(client, payload, on_connected, done, timeout)
}

/// [`run_client`] for an already built client (e.g. with raw public keys).
pub fn drive_client<T: TrustStore<SocketAddr>>(
    mut client: Client<SocketAddr, SimRng, T>,
    payload: Option<&[u8]>,
    mut on_connected: impl FnMut(),
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
    timeout: Duration,
) -> Result<ClientRun, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let start = Instant::now();
    let now = || start.elapsed();
    let mut buf = [0u8; 2048];
    let mut suite = None;
    let mut identity = None;
    let mut received = Vec::new();
    let mut sent = false;
    loop {
        if now() > timeout {
            return Err(format!(
                "timed out (connected: {}, received {:?})",
                suite.is_some(),
                received
            ));
        }
        while let Some(t) = client
            .poll_transmit(now(), &mut buf)
            .map_err(|e| e.to_string())?
        {
            sock.send_to(&buf[..t.len], t.to)
                .map_err(|e| e.to_string())?;
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Connected {
                    suite: s,
                    identity: i,
                    ..
                } => {
                    suite = Some(s);
                    identity = i;
                    on_connected();
                }
                Event::ApplicationData { .. } => {
                    let mut b = [0u8; 2048];
                    if let Ok(Some(n)) = client.recv(&mut b) {
                        received.push(b[..n].to_vec());
                    }
                }
                // The reason, and the error's own words when it was one.
                Event::Closed { reason, .. } => {
                    return Err(match reason.error() {
                        Some(e) => format!("closed: {reason:?}: {e}"),
                        None => format!("closed: {reason:?}"),
                    })
                }
                _ => {}
            }
        }
        if let Some(s) = suite {
            if !sent {
                sent = true;
                if let Some(p) = payload {
                    client.send(now(), p).map_err(|e| e.to_string())?;
                    continue;
                }
            }
            if done(&received) {
                client.close(now());
                while let Ok(Some(t)) = client.poll_transmit(now(), &mut buf) {
                    let _ = sock.send_to(&buf[..t.len], t.to);
                }
                return Ok(ClientRun {
                    suite: s,
                    identity,
                    received,
                });
            }
        }
        let wait = client
            .poll_timeout()
            .map(|t| t.saturating_sub(now()))
            .unwrap_or(Duration::from_millis(100))
            .clamp(Duration::from_millis(5), Duration::from_millis(100));
        sock.set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => client
                .handle_datagram(now(), from, &mut buf[..n])
                .map_err(|e| format!("handshake failed: {e}"))?,
            Err(_) => client.handle_timeout(now()),
        }
    }
}

/// What the server driver saw.
pub struct ServerRun {
    pub suite: Option<CipherSuite>,
    /// What each handshake proved about its client (`Connected`).
    pub identities: Vec<Option<cssf_dtls::Identity>>,
    pub received: Vec<Vec<u8>>,
}

/// Runs our server on `sock` until `done(received)` or `timeout`; every
/// application record is answered with `reply(record)`.
pub fn run_server(
    sock: &UdpSocket,
    cfg: Config,
    keys: &[(&[u8], &[u8])],
    reply: impl FnMut(&[u8]) -> Option<Vec<u8>>,
    done: impl FnMut(&[Vec<u8>]) -> bool,
    timeout: Duration,
) -> Result<ServerRun, String> {
    let server: Endpoint<SocketAddr, _, _, 4> = Endpoint::new(
        cfg,
        StaticPsk::new(keys),
        SimRng::new(seed()),
        Duration::ZERO,
    )
    .map_err(|e| e.to_string())?;
    drive_server(sock, server, reply, done, timeout)
}

/// [`run_server`] for an already built endpoint (e.g. with raw public keys).
pub fn drive_server<P: PskStore<SocketAddr>, T: TrustStore<SocketAddr>>(
    sock: &UdpSocket,
    mut server: Endpoint<SocketAddr, P, SimRng, 4, T>,
    mut reply: impl FnMut(&[u8]) -> Option<Vec<u8>>,
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
    timeout: Duration,
) -> Result<ServerRun, String> {
    let start = Instant::now();
    let now = || start.elapsed();
    let mut buf = [0u8; 2048];
    let mut suite = None;
    let mut identities = Vec::new();
    let mut received = Vec::new();
    let mut errors = Vec::new();
    loop {
        if done(&received) {
            // Give a reply a moment to leave.
            while let Some(t) = server
                .poll_transmit(now(), &mut buf)
                .map_err(|e| e.to_string())?
            {
                let _ = sock.send_to(&buf[..t.len], t.to);
            }
            return Ok(ServerRun {
                suite,
                identities,
                received,
            });
        }
        if now() > timeout {
            return Err(format!(
                "timed out (connected: {suite:?}, received {received:?}, errors {errors:?})"
            ));
        }
        while let Some(t) = server
            .poll_transmit(now(), &mut buf)
            .map_err(|e| e.to_string())?
        {
            sock.send_to(&buf[..t.len], t.to)
                .map_err(|e| e.to_string())?;
        }
        while let Some(ev) = server.poll_event() {
            match ev {
                Event::Connected {
                    suite: s, identity, ..
                } => {
                    suite = Some(s);
                    identities.push(identity);
                }
                Event::ApplicationData { handle, .. } => {
                    let mut b = [0u8; 2048];
                    if let Ok(Some(n)) = server.recv(handle, &mut b) {
                        received.push(b[..n].to_vec());
                        if let Some(r) = reply(&b[..n]) {
                            server.send(now(), handle, &r).map_err(|e| e.to_string())?;
                        }
                    }
                }
                Event::Closed {
                    reason: CloseReason::Error(e),
                    ..
                } => errors.push(e),
                _ => {}
            }
        }
        let wait = server
            .poll_timeout()
            .map(|t| t.saturating_sub(now()))
            .unwrap_or(Duration::from_millis(100))
            .clamp(Duration::from_millis(5), Duration::from_millis(100));
        sock.set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => server
                .handle_datagram(now(), from, &mut buf[..n])
                .map_err(|e| e.to_string())?,
            Err(_) => server.handle_timeout(now()),
        }
    }
}

/// Key files for peers that take PEM: an `EC PRIVATE KEY` (RFC 5915, with
/// its public key) and the `PUBLIC KEY` (SubjectPublicKeyInfo), written to
/// temp files removed on drop.
pub struct KeyFiles {
    pub key: std::path::PathBuf,
    pub public: std::path::PathBuf,
    /// The public key written.
    pub public_key: p256::PublicKey,
}

impl KeyFiles {
    pub fn write(k: &SigningKey, tag: &str) -> KeyFiles {
        let point = k.verifying_key().to_encoded_point(false);
        let mut sec1 = std::vec![0x30, 0x77, 2, 1, 1, 4, 0x20];
        sec1.extend_from_slice(&k.to_bytes());
        sec1.extend_from_slice(&[0xa0, 0x0a, 6, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 3, 1, 7]);
        sec1.extend_from_slice(&[0xa1, 0x44, 3, 0x42, 0]);
        sec1.extend_from_slice(point.as_bytes());
        let spki = cssf_dtls::wire::certificate::spki_p256(point.as_bytes().try_into().unwrap());
        let dir = std::env::temp_dir();
        let id = format!("{}-{tag}-{}", std::process::id(), seed() % 1_000_000);
        let files = KeyFiles {
            key: dir.join(format!("cssf-dtls-{id}-key.pem")),
            public: dir.join(format!("cssf-dtls-{id}-pub.pem")),
            public_key: k.verifying_key().into(),
        };
        std::fs::write(&files.key, pem("EC PRIVATE KEY", &sec1)).unwrap();
        std::fs::write(&files.public, pem("PUBLIC KEY", &spki)).unwrap();
        files
    }
    pub fn key(&self) -> &str {
        self.key.to_str().unwrap()
    }
    pub fn public(&self) -> &str {
        self.public.to_str().unwrap()
    }
}

impl Drop for KeyFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key);
        let _ = std::fs::remove_file(&self.public);
    }
}

/// PEM armour (RFC 7468) around `der`.
pub fn pem(label: &str, der: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for c in der.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &x)| a | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                b64.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads the key of a `PUBLIC KEY` PEM written by a peer tool.
pub fn read_public_pem(pem: &str) -> p256::PublicKey {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b64: Vec<u8> = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.bytes())
        .filter(|&c| c != b'=')
        .map(|c| A.iter().position(|&a| a == c).unwrap() as u8)
        .collect();
    let mut der = Vec::new();
    for c in b64.chunks(4) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &x)| a | u32::from(x) << (18 - 6 * i));
        for i in 0..c.len() - 1 {
            der.push((n >> (16 - 8 * i)) as u8);
        }
    }
    let point = cssf_dtls::wire::certificate::parse_spki_p256(&der).unwrap();
    p256::PublicKey::from_sec1_bytes(point).unwrap()
}

/// A confirmable CoAP GET /time with a 2-byte token (RFC 7252 §3).
pub fn coap_get_time(mid: u16) -> Vec<u8> {
    let mut v = std::vec![0x42, 0x01, (mid >> 8) as u8, mid as u8, 0xAB, 0xCD, 0xB4];
    v.extend_from_slice(b"time");
    v
}

/// The response code byte of a CoAP message, if it is one.
pub fn coap_code(msg: &[u8]) -> Option<u8> {
    (msg.len() >= 4 && msg[0] >> 6 == 1).then(|| msg[1])
}

/// A piggybacked ACK 2.05 Content carrying `payload` for a CoAP request.
pub fn coap_ack_205(req: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    if req.len() < 4 || req[0] >> 6 != 1 {
        return None;
    }
    let tkl = usize::from(req[0] & 0x0F);
    let token = req.get(4..4 + tkl)?;
    let mut v = std::vec![0x60 | req[0] & 0x0F, 0x45, req[2], req[3]];
    v.extend_from_slice(token);
    v.push(0xFF);
    v.extend_from_slice(payload);
    Some(v)
}

/// A deterministic P-256 signing key from `seed`.
pub fn key(seed: u64) -> SigningKey {
    SigningKey::random(&mut SimRng::new(seed))
}

/// The public key of `k`.
pub fn public(k: &SigningKey) -> p256::PublicKey {
    k.verifying_key().into()
}

/// Pinned keys owned by the test.
#[derive(Clone)]
pub struct Pins(pub Vec<p256::PublicKey>);

impl<A> TrustStore<A> for Pins {
    fn is_trusted(&self, _: &PeerContext<'_, A>, key: &p256::PublicKey) -> bool {
        self.0.contains(key)
    }
}
