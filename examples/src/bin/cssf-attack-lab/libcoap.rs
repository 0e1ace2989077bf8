//! The libcoap columns, one per TLS backend of libcoap (OpenSSL, GnuTLS),
//! DTLS PSK: the same transport attacks through a UDP man-in-the-middle
//! proxy on loopback.
//!
//! For each attempt a fresh `coap-server-<backend>` (debug log on) listens
//! on loopback; `coap-client-<backend>` PUTs a secret to `/example_data` through
//! the proxy, which applies the attack to the datagrams toward the server
//! (bit flips and truncation alternate with the datagrams toward the
//! client: the secret is then stored directly and read back with a GET
//! through the proxy).
//! The effect is read from the server's log, which prints every CoAP
//! request it receives after DTLS: a request the client did not send
//! (modified or forged) or the client's PUT received more often than the
//! client transmitted it (replayed) is an accepted attack, and so is a
//! client printing a representation the server never sent; for
//! eavesdropping, the secret or the path visible in the proxied bytes.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cssf_netsim::peer::{free_udp_port_pair, which, ChildGuard};
use cssf_netsim::SimRng;

use crate::net::contains;
use crate::{Cmp, Opts, Row};

/// One libcoap build: the TLS backend its binaries were built with.
#[derive(Debug, Clone, Copy)]
struct Backend {
    /// The server binary.
    server: &'static str,
    /// The client binary.
    client: &'static str,
    /// The row's column this build fills.
    column: fn(&mut Row) -> &mut Cmp,
}

/// The libcoap builds compared, in column order.
const BACKENDS: [Backend; 2] = [
    Backend {
        server: "coap-server-openssl",
        client: "coap-client-openssl",
        column: |r| &mut r.libcoap,
    },
    Backend {
        server: "coap-server-gnutls",
        client: "coap-client-gnutls",
        column: |r| &mut r.gnutls,
    },
];

const PSK: &str = "secretPSK";
const IDENTITY: &str = "Client_identity";

/// What the proxy does to datagrams toward the server.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Pass,
    Replay,
    BitFlip {
        index: usize,
        bit: u8,
    },
    Truncate {
        index: usize,
    },
    Inject,
    Shuffle,
    /// Bit flip in the server's datagrams toward the client.
    FlipToClient {
        index: usize,
        bit: u8,
    },
    /// Truncation of the server's datagrams toward the client.
    TruncToClient {
        index: usize,
    },
}

#[derive(Debug, Default)]
struct Report {
    /// Every byte that crossed the proxy.
    wire: Vec<u8>,
    /// Application-data datagrams the client sent.
    client_app: usize,
}

fn is_app(d: &[u8]) -> bool {
    d.first() == Some(&23)
}

/// Runs the proxy until `stop`: client side on `front`, server at `server`.
fn proxy(
    front: UdpSocket,
    back: UdpSocket,
    server: SocketAddr,
    mode: Mode,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Report {
    let mut rep = Report::default();
    let mut rng = SimRng::new(seed);
    let mut client: Option<SocketAddr> = None;
    let mut held: Vec<(Instant, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = front.set_nonblocking(true);
    let _ = back.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        if let Ok((n, from)) = front.recv_from(&mut buf) {
            idle = false;
            client = Some(from);
            let d = buf.get(..n).unwrap_or(&[]).to_vec();
            rep.wire.extend_from_slice(&d);
            if !is_app(&d) {
                let _ = back.send_to(&d, server);
            } else {
                rep.client_app += 1;
                match mode {
                    Mode::Pass | Mode::FlipToClient { .. } | Mode::TruncToClient { .. } => {
                        let _ = back.send_to(&d, server);
                    }
                    Mode::Replay => {
                        let _ = back.send_to(&d, server);
                        let _ = back.send_to(&d, server);
                        held.push((Instant::now() + Duration::from_millis(200), d));
                    }
                    Mode::BitFlip { index, bit } => {
                        let mut m = d.clone();
                        let pos = index % m.len();
                        if let Some(b) = m.get_mut(pos) {
                            *b ^= 1 << (bit % 8);
                        }
                        let _ = back.send_to(&m, server);
                    }
                    Mode::Truncate { index } => {
                        let pos = index % d.len();
                        let _ = back.send_to(d.get(..pos).unwrap_or(&[]), server);
                    }
                    Mode::Inject => {
                        for k in 0..3u64 {
                            let mut f = d.get(..11).unwrap_or(&[]).to_vec();
                            if let Some(last) = f.get_mut(10) {
                                *last = last.wrapping_add(1 + k as u8);
                            }
                            let len = 16 + (rng.next_u64_raw() % 48) as usize;
                            f.extend_from_slice(&(len as u16).to_be_bytes());
                            f.extend((0..len).map(|_| rng.next_u64_raw() as u8));
                            let _ = back.send_to(&f, server);
                        }
                        let _ = back.send_to(&d, server);
                    }
                    Mode::Shuffle => {
                        let delay = Duration::from_millis(rng.next_u64_raw() % 300);
                        held.push((Instant::now() + delay, d.clone()));
                        if rng.chance(0.5) {
                            let delay = Duration::from_millis(rng.next_u64_raw() % 600);
                            held.push((Instant::now() + delay, d));
                        }
                    }
                }
            }
        }
        if let Ok((n, _)) = back.recv_from(&mut buf) {
            idle = false;
            let mut d = buf.get(..n).unwrap_or(&[]).to_vec();
            rep.wire.extend_from_slice(&d);
            if is_app(&d) {
                match mode {
                    Mode::FlipToClient { index, bit } => {
                        let pos = index % d.len();
                        if let Some(b) = d.get_mut(pos) {
                            *b ^= 1 << (bit % 8);
                        }
                    }
                    Mode::TruncToClient { index } => {
                        let pos = index % d.len();
                        d.truncate(pos);
                    }
                    _ => {}
                }
            }
            if let Some(c) = client {
                let _ = front.send_to(&d, c);
            }
        }
        let now = Instant::now();
        let (due, keep): (Vec<_>, Vec<_>) = held.drain(..).partition(|(t, _)| *t <= now);
        held = keep;
        for (_, d) in due {
            let _ = back.send_to(&d, server);
        }
        if idle {
            thread::sleep(Duration::from_micros(300));
        }
    }
    rep
}

fn read_log(path: &PathBuf) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Requests the server logged (its `coap_show_pdu` lines).
fn requests(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.starts_with("v:1 ")
                && (l.contains(" t:CON ") || l.contains(" t:NON "))
                && [
                    " c:GET ",
                    " c:PUT ",
                    " c:POST ",
                    " c:DELETE ",
                    " c:FETCH ",
                    " c:PATCH ",
                    " c:iPATCH ",
                ]
                .iter()
                .any(|m| l.contains(m))
        })
        .collect()
}

/// One attempt: returns `Some(accepted)`, or `None` when the run itself
/// failed (server did not start, or the client's request never arrived
/// although the attack leaves it intact).
fn attempt(b: Backend, id: &str, mode: Mode, seed: u64, dir: &std::path::Path) -> Option<bool> {
    let port = free_udp_port_pair();
    if port == 0 {
        return None;
    }
    let log = dir.join(format!("{}-{id}-{seed:x}.log", b.server));
    let out = std::fs::File::create(&log).ok()?;
    let _server = ChildGuard(
        Command::new(b.server)
            .args([
                "-A",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-k",
                PSK,
                "-v",
                "7",
            ])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .ok()?,
    );
    let t0 = Instant::now();
    while !read_log(&log).contains("created DTLS endpoint") {
        if t0.elapsed() > Duration::from_secs(5) {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let server: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port + 1));
    let front = UdpSocket::bind("127.0.0.1:0").ok()?;
    let back = UdpSocket::bind("127.0.0.1:0").ok()?;
    let pport = front.local_addr().ok()?.port();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let h = thread::spawn(move || proxy(front, back, server, mode, seed, st));

    let secret = format!("led=on;owner-secret={seed:016x}");
    let payload = dir.join(format!("put-{}-{seed:x}.txt", b.server));
    std::fs::write(&payload, &secret).ok()?;
    let to_client = matches!(mode, Mode::FlipToClient { .. } | Mode::TruncToClient { .. });
    // Toward the client: the secret is stored directly (no proxy), then
    // read back through the attacking proxy; the client's output is the
    // effect.
    let direct = format!("coaps://127.0.0.1:{}/example_data", port + 1);
    let via_proxy = format!("coaps://127.0.0.1:{pport}/example_data");
    if to_client {
        run_client(b, &["-m", "put", "-f"], Some(&payload), &direct)?;
    }
    let got = if to_client {
        let got = run_client(b, &["-m", "get"], None, &via_proxy)?;
        // Control: read directly, the client does print the secret.
        let direct_read = run_client(b, &["-m", "get"], None, &direct)?;
        if direct_read.trim_ascii() != secret.as_bytes() {
            return None;
        }
        got
    } else {
        run_client(b, &["-m", "put", "-f"], Some(&payload), &via_proxy)?
    };
    // Let delayed and replayed datagrams arrive.
    thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let rep = h.join().ok()?;
    let text = read_log(&log);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&payload);
    let reqs = requests(&text);
    let quoted = format!("'{secret}'");
    let legit = reqs
        .iter()
        .filter(|l| l.contains(" c:PUT ") && l.contains("example_data") && l.ends_with(&quoted))
        .count();
    let forged = reqs.len() - legit;
    let replayed = legit > rep.client_app;
    // A run where the client's own request never arrived although the
    // attack leaves it intact proves nothing: void it.
    let intact = matches!(
        mode,
        Mode::Pass | Mode::Replay | Mode::Inject | Mode::Shuffle
    );
    if intact && legit == 0 {
        return None;
    }
    Some(match mode {
        Mode::Pass => {
            contains(&rep.wire, secret.as_bytes()) || contains(&rep.wire, b"example_data")
        }
        // The client printed a representation the server never sent.
        Mode::FlipToClient { .. } | Mode::TruncToClient { .. } => {
            !got.trim_ascii().is_empty() && got.trim_ascii() != secret.as_bytes()
        }
        _ => forged > 0 || replayed,
    })
}

/// The proxy mode for attempt `i` with seed `s`.
type ModeFor = fn(u32, u64) -> Mode;

/// Runs the backend's `coap-client` with `args` (and the payload file, if
/// any) on `uri`, at most 8 s; returns its standard output.
fn run_client(
    b: Backend,
    args: &[&str],
    file: Option<&std::path::Path>,
    uri: &str,
) -> Option<Vec<u8>> {
    let mut cmd = Command::new(b.client);
    cmd.args(["-u", IDENTITY, "-k", PSK, "-B", "3"]).args(args);
    if let Some(f) = file {
        cmd.arg(f);
    }
    let mut child = ChildGuard(
        cmd.arg(uri)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?,
    );
    let mut stdout = child.0.stdout.take()?;
    let reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        if let Ok(Some(_)) = child.0.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    drop(child);
    reader.join().ok().map(|out| without_log(&out))
}

/// The client's output without libcoap's log lines (`Dec 07 12:22:23.323
/// WARN ...`), which it prints to standard output beside the payload: the
/// GnuTLS build warns there about records it drops ("Received record packet
/// of unknown type"), which is no representation.
fn without_log(out: &[u8]) -> Vec<u8> {
    const LEVELS: [&[u8]; 9] = [
        b"EMRG", b"ALRT", b"CRIT", b"ERR ", b"WARN", b"NOTE", b"INFO", b"DEBG", b"OSC ",
    ];
    let is_log = |l: &[u8]| {
        let at = |i: usize| l.get(i).copied();
        at(3) == Some(b' ')
            && at(6) == Some(b' ')
            && at(9) == Some(b':')
            && at(12) == Some(b':')
            && at(15) == Some(b'.')
            && at(19) == Some(b' ')
            && l.get(20..24).is_some_and(|lv| LEVELS.contains(&lv))
    };
    let mut kept = Vec::new();
    for line in out.split_inclusive(|b| *b == b'\n') {
        if !is_log(line) {
            kept.extend_from_slice(line);
        }
    }
    kept
}

/// Fills the libcoap columns (one per backend) of the transport rows.
pub fn run(o: &Opts, rows: &mut [Row]) {
    let dir = std::env::temp_dir().join(format!("cssf-attack-lab-{}", std::process::id()));
    if !o.no_peer {
        let _ = std::fs::create_dir_all(&dir);
    }
    for b in BACKENDS {
        column(o, b, rows, &dir);
    }
    if !o.no_peer {
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Rows the libcoap runner does not attack: the same reason in both
    // columns.
    for r in rows.iter_mut() {
        if !PLAN.iter().any(|(id, _)| *id == r.id) {
            r.gnutls = r.libcoap;
        }
    }
}

/// The transport rows the libcoap runner attacks, with the proxy's mode
/// for each attempt.
const PLAN: [(&str, ModeFor); 6] = [
    ("eavesdrop", |_, _| Mode::Pass),
    ("replay", |_, _| Mode::Replay),
    ("bitflip", |i, s| {
        let (index, bit) = ((i / 2) as usize, (s % 8) as u8);
        if i % 2 == 0 {
            Mode::BitFlip { index, bit }
        } else {
            Mode::FlipToClient { index, bit }
        }
    }),
    ("truncate", |i, _| {
        let index = (i / 2) as usize;
        if i % 2 == 0 {
            Mode::Truncate { index }
        } else {
            Mode::TruncToClient { index }
        }
    }),
    ("inject", |_, _| Mode::Inject),
    ("reorder", |_, _| Mode::Shuffle),
];

/// Fills backend `b`'s column of the transport rows.
fn column(o: &Opts, b: Backend, rows: &mut [Row], dir: &std::path::Path) {
    let transport_only = [
        "alert",
        "downgrade-suite",
        "downgrade-ems",
        "ch-flood",
        "hs-flood",
        "amplification",
    ];
    let present = which(b.server).is_some() && which(b.client).is_some();
    for r in rows.iter_mut() {
        if transport_only.contains(&r.id) {
            // Forged alerts and the pre-cookie amplification could run
            // through the proxy; they are not wired to it.
            *(b.column)(r) = if r.id == "alert" || r.id == "amplification" {
                Cmp::NotRun("not wired to the proxy")
            } else {
                Cmp::NotRun("in-memory only")
            };
        }
    }
    if o.no_peer {
        for r in rows.iter_mut() {
            if PLAN.iter().any(|(id, _)| *id == r.id) {
                *(b.column)(r) = Cmp::NotRun("--no-peer");
            }
        }
        return;
    }
    for (id, mode) in PLAN {
        let Some(row) = rows.iter_mut().find(|r| r.id == id) else {
            continue;
        };
        if !present {
            *(b.column)(row) = Cmp::PeerMissing;
            continue;
        }
        let (mut accepted, mut attempts, mut voided) = (0, 0, 0);
        for i in 0..o.peer_attempts {
            let seed = o.seed.wrapping_add(u64::from(i)) ^ 0x11B;
            match attempt(b, id, mode(i, seed), seed, dir) {
                Some(a) => {
                    attempts += 1;
                    accepted += u32::from(a);
                }
                None => voided += 1,
            }
        }
        // The proxy replays within the client's run (a libcoap attempt
        // lasts seconds), not up to 300 s later as in memory.
        let note = if id == "replay" {
            "each datagram replayed twice: at once and 200 ms later, not up to 300 s"
        } else {
            ""
        };
        *(b.column)(row) = if attempts == 0 {
            Cmp::NotRun("every attempt voided: no run reached the server")
        } else {
            Cmp::Peer {
                accepted,
                attempts,
                voided,
                note,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::without_log;

    #[test]
    fn client_log_lines_are_no_representation() {
        // What coap-client-gnutls printed when a bit flip toward it turned
        // a record's type into 19: no payload, two warnings.
        let out = b"Dec 07 12:22:23.323 WARN ** 127.0.0.1:49291 <-> 127.0.0.1:46036 DTLS: \
Received record packet of unknown type 19\n\
Dec 07 12:22:23.323 WARN coap_dtls_receive: gnutls_record_recv returned -28\n";
        assert!(without_log(out).trim_ascii().is_empty());
        // The payload stays, log lines around it go.
        let out = b"Dec 07 12:15:02.825 ERR  cannot send CoAP pdu\nled=on;owner-secret=01\n";
        assert_eq!(without_log(out), b"led=on;owner-secret=01\n");
        assert_eq!(without_log(b"led=on"), b"led=on");
    }
}
