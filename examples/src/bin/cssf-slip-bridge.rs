//! `cssf-slip-bridge`: carries SLIP-framed datagrams (RFC 1055) between a
//! serial byte stream and a UDP peer, like a serial radio modem's gateway.
//!
//! It listens on a TCP port for one serial connection (QEMU's
//! `-serial tcp:HOST:PORT` connects to it), decodes each SLIP frame from it
//! into one UDP datagram sent from one local socket to `--peer`, and
//! SLIP-encodes each datagram coming back from the peer onto the serial
//! stream. It exits when the serial side closes (the device finished).
//!
//! `--drop-to-peer LIST` and `--drop-to-device LIST` lose datagrams
//! deterministically, so the device's retransmission is exercised: LIST is
//! comma-separated 1-based indexes of the datagrams in that direction (`1`:
//! the first), or `appN`: the Nth datagram whose first DTLS record is
//! application data (content type 23), which does not depend on how many
//! handshake datagrams went before. Each drop is printed.
//!
//! Server mode (`--serve-coap ADDR --serve-coaps ADDR` instead of
//! `--peer`) puts a device that is a server behind the bridge: the bridge
//! listens on those UDP addresses for any number of remote peers and
//! prefixes every frame to the device with a 7-byte peer header, 1 byte
//! socket kind (0 = the CoAP socket, 1 = the CoAPs socket) + the remote's
//! IPv4 address (4 bytes) and port (2 bytes, big-endian). Frames from the
//! device carry the same header, which says from which socket and to
//! which address the datagram goes. The bridge keeps no peer table (the
//! header is the address), so there is nothing to bound; IPv6 peers are
//! not carried. Kind 0xFF (bridge to device only, address and datagram
//! empty) ends the device's run: with `--end-on-eof` the bridge sends it
//! when its standard input closes, and the device then reports and exits.
//! The loss rules work in this mode too, on the datagrams (header
//! excluded), counted over both sockets together.
//!
//! The SLIP codec is the firmware's own (examples/firmware/src/slip.rs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cssf_examples::fail;
use cssf_examples::util::{exit_with, Arg, Args, Result};

#[path = "../../firmware/src/slip.rs"]
mod slip;

const USAGE: &str = "usage: cssf-slip-bridge --peer HOST:PORT [--listen ADDR] \
[--drop-to-peer LIST] [--drop-to-device LIST] [--idle-timeout SECS]
       cssf-slip-bridge --serve-coap IPV4:PORT --serve-coaps IPV4:PORT [--listen ADDR] \
[--end-on-eof] [--drop-to-peer LIST] [--drop-to-device LIST] [--idle-timeout SECS]
  Listens on ADDR (TCP, default 127.0.0.1:0: a free port; the line
  `listening on ADDR` says which) for one serial connection carrying SLIP
  frames (e.g. qemu-system-arm -serial tcp:ADDR), sends each frame as a UDP
  datagram to the peer and SLIP-encodes the peer's datagrams back.
  LIST: comma-separated 1-based datagram indexes in that direction, or appN
  for the Nth datagram whose first DTLS record is application data.
  --serve-coap/--serve-coaps (either or both): server mode, the device
  serves remote peers on these UDP addresses; every frame carries a 7-byte
  peer header (kind 0 coap / 1 coaps, IPv4 address, port big-endian).
  --end-on-eof: in server mode, send the device the end-of-run frame
  (kind 0xFF) when standard input closes. In server mode the loss rules
  count datagrams over both sockets, header excluded.
  --idle-timeout: give up after SECS without traffic from the serial side
  (default 120).";

/// The largest datagram carried either way (an Ethernet-sized UDP payload
/// is more than the device's 1 KiB DTLS flights need).
const MAX_DATAGRAM: usize = 1500;

/// DTLS record content type of application data (RFC 6347 §4.1).
const APPLICATION_DATA: u8 = 23;

/// Prints one line on stdout; a closed stdout is ignored (nothing to tell).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints one line on stderr, ignoring a closed stderr.
fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "bridge: {line}");
}

/// Which datagrams of one direction to lose.
#[derive(Debug, Default, Clone)]
struct DropRule {
    /// 1-based indexes among all datagrams of the direction.
    nth: Vec<u64>,
    /// 1-based indexes among the application-data datagrams.
    app: Vec<u64>,
}

impl DropRule {
    fn parse(list: &str) -> Result<Self> {
        let mut rule = DropRule::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (target, num) = match item.strip_prefix("app") {
                Some(n) => (&mut rule.app, n),
                None => (&mut rule.nth, item),
            };
            match num.parse::<u64>() {
                Ok(n) if n > 0 => target.push(n),
                _ => {
                    return Err(fail!(
                        "`{item}` is not a datagram index (1, 2, ... or app1, ...)"
                    ))
                }
            }
        }
        Ok(rule)
    }
}

/// Counts one direction's datagrams and decides which to lose.
#[derive(Debug)]
struct Direction {
    name: &'static str,
    rule: DropRule,
    seen: u64,
    app_seen: u64,
    dropped: Arc<AtomicU64>,
}

impl Direction {
    fn new(name: &'static str, rule: DropRule) -> Self {
        Direction {
            name,
            rule,
            seen: 0,
            app_seen: 0,
            dropped: Arc::default(),
        }
    }

    /// Whether to lose `datagram`; prints the drop.
    fn lose(&mut self, datagram: &[u8]) -> bool {
        self.seen += 1;
        let app = datagram.first() == Some(&APPLICATION_DATA);
        if app {
            self.app_seen += 1;
        }
        let drop =
            self.rule.nth.contains(&self.seen) || (app && self.rule.app.contains(&self.app_seen));
        if drop {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let which = if app {
                format!(" (application data #{})", self.app_seen)
            } else {
                String::new()
            };
            say(&format!(
                "bridge: dropped datagram #{}{which} {}, {} bytes",
                self.seen,
                self.name,
                datagram.len()
            ));
        }
        drop
    }
}

/// Where the datagrams go: one peer, or served remote peers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// The device is a client of `--peer`.
    Client(SocketAddr),
    /// The device serves peers on these UDP addresses (CoAP, CoAPs).
    Serve {
        coap: Option<SocketAddr>,
        coaps: Option<SocketAddr>,
        end_on_eof: bool,
    },
}

struct Config {
    listen: String,
    mode: Mode,
    to_peer: DropRule,
    to_device: DropRule,
    idle: Duration,
}

/// The peer header of server mode (see the module docs).
mod header {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    /// Bytes of the header.
    pub const LEN: usize = 7;
    /// The CoAP socket.
    pub const COAP: u8 = 0;
    /// The CoAPs socket.
    pub const COAPS: u8 = 1;
    /// End of run (bridge to device).
    pub const END: u8 = 0xFF;

    /// The header for a datagram from `from` on socket `kind`; `None` for
    /// an IPv6 peer.
    pub fn emit(kind: u8, from: SocketAddr) -> Option<[u8; LEN]> {
        let SocketAddr::V4(a) = from else {
            return None;
        };
        let [i0, i1, i2, i3] = a.ip().octets();
        let [p0, p1] = a.port().to_be_bytes();
        Some([kind, i0, i1, i2, i3, p0, p1])
    }

    /// The kind, destination and datagram of a frame from the device;
    /// `None` when it is shorter than the header.
    pub fn parse(frame: &[u8]) -> Option<(u8, SocketAddr, &[u8])> {
        let h = frame.get(..LEN)?;
        let (kind, ip, port) = (h.first()?, h.get(1..5)?, h.get(5..7)?);
        let ip = Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?);
        let port = u16::from_be_bytes(<[u8; 2]>::try_from(port).ok()?);
        Some((*kind, SocketAddrV4::new(ip, port).into(), frame.get(LEN..)?))
    }
}

fn parse(mut args: Args) -> Result<Option<Config>> {
    let (mut listen, mut peer) = ("127.0.0.1:0".to_string(), None);
    let (mut coap, mut coaps, mut end_on_eof) = (None, None, false);
    let (mut to_peer, mut to_device) = (DropRule::default(), DropRule::default());
    let mut idle = Duration::from_secs(120);
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(o) => match o.as_str() {
                "-h" | "--help" => return Ok(None),
                "--listen" => listen = args.value(&o)?,
                "--peer" => {
                    let v = args.value(&o)?;
                    let addr = v
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .ok_or_else(|| fail!("--peer: `{v}` is not HOST:PORT"))?;
                    peer = Some(addr);
                }
                "--serve-coap" | "--serve-coaps" => {
                    let v = args.value(&o)?;
                    let addr = v
                        .parse::<SocketAddr>()
                        .ok()
                        .filter(SocketAddr::is_ipv4)
                        .ok_or_else(|| fail!("{o}: `{v}` is not IPV4:PORT"))?;
                    if o == "--serve-coap" {
                        coap = Some(addr);
                    } else {
                        coaps = Some(addr);
                    }
                }
                "--end-on-eof" => end_on_eof = true,
                "--drop-to-peer" => to_peer = DropRule::parse(&args.value(&o)?)?,
                "--drop-to-device" => to_device = DropRule::parse(&args.value(&o)?)?,
                "--idle-timeout" => {
                    let v = args.value(&o)?;
                    let secs =
                        v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                            fail!("--idle-timeout: `{v}` is not a number of seconds")
                        })?;
                    idle = Duration::from_secs(secs);
                }
                _ => return Err(fail!("unknown option {o}\n{USAGE}")),
            },
            Arg::Pos(p) => return Err(fail!("unexpected argument `{p}`\n{USAGE}")),
        }
    }
    let serve = coap.is_some() || coaps.is_some();
    let mode = match (peer, serve) {
        (Some(p), false) if !end_on_eof => Mode::Client(p),
        (Some(_), false) => return Err(fail!("--end-on-eof is for the server mode\n{USAGE}")),
        (None, true) => Mode::Serve {
            coap,
            coaps,
            end_on_eof,
        },
        (Some(_), true) => {
            return Err(fail!(
                "--peer and --serve-coap/--serve-coaps exclude each other\n{USAGE}"
            ))
        }
        (None, false) => {
            return Err(fail!(
                "--peer or --serve-coap/--serve-coaps is required\n{USAGE}"
            ))
        }
    };
    Ok(Some(Config {
        listen,
        mode,
        to_peer,
        to_device,
        idle,
    }))
}

/// Peer to device: each datagram from the peer, SLIP-encoded onto the
/// serial stream. Ends when the stream or the socket fails.
fn downlink(udp: &UdpSocket, mut serial: TcpStream, mut dir: Direction) {
    // One byte more than the largest datagram carried: a longer one
    // (truncated by the receive) is recognised and dropped whole.
    let mut dgram = [0u8; MAX_DATAGRAM + 1];
    let mut frame = [0u8; slip::max_encoded_len(MAX_DATAGRAM)];
    loop {
        let n = match udp.recv(&mut dgram) {
            Ok(n) => n,
            // E.g. ICMP port unreachable for an earlier datagram (the peer
            // is not up yet): the device retransmits; keep going.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                warn(&format!("udp receive failed: {e}"));
                return;
            }
        };
        if n > MAX_DATAGRAM {
            warn(&format!(
                "a datagram from the peer is longer than {MAX_DATAGRAM} bytes: not carried"
            ));
            continue;
        }
        let Some(d) = dgram.get(..n) else { continue };
        if dir.lose(d) {
            continue;
        }
        // The frame buffer holds the worst case of MAX_DATAGRAM bytes.
        let Some(len) = slip::encode(d, &mut frame) else {
            continue;
        };
        if serial
            .write_all(frame.get(..len).unwrap_or_default())
            .is_err()
        {
            return;
        }
    }
}

fn run(cfg: Config) -> Result<()> {
    let listener =
        TcpListener::bind(&cfg.listen).map_err(|e| fail!("--listen {}: {e}", cfg.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| fail!("--listen {}: {e}", cfg.listen))?;
    match cfg.mode {
        Mode::Client(peer) => run_client(cfg, peer, listener, local),
        Mode::Serve {
            coap,
            coaps,
            end_on_eof,
        } => run_serve(cfg, [coap, coaps], end_on_eof, listener, local),
    }
}

/// Accepts the serial connection; returns it with the read timeout set.
fn accept(listener: &TcpListener, idle: Duration) -> Result<TcpStream> {
    let (serial, from) = listener.accept().map_err(|e| fail!("accept: {e}"))?;
    say(&format!("serial connected from {from}"));
    let _ = serial.set_nodelay(true);
    serial
        .set_read_timeout(Some(idle))
        .map_err(|e| fail!("serial: {e}"))?;
    Ok(serial)
}

/// Server mode: remote peers on the CoAP and CoAPs sockets, each frame
/// with the peer header; the loss rules apply to the datagrams (the
/// header is not counted), over both sockets together.
fn run_serve(
    cfg: Config,
    binds: [Option<SocketAddr>; 2],
    end_on_eof: bool,
    listener: TcpListener,
    local: SocketAddr,
) -> Result<()> {
    let mut sockets: [Option<UdpSocket>; 2] = [None, None];
    for (slot, bind) in sockets.iter_mut().zip(binds) {
        if let Some(a) = bind {
            *slot = Some(UdpSocket::bind(a).map_err(|e| fail!("udp bind {a}: {e}"))?);
        }
    }
    let show = |a: Option<SocketAddr>| a.map_or("-".to_string(), |a| a.to_string());
    say(&format!(
        "listening on {local} (serial, SLIP), serving coap {} coaps {}",
        show(binds[0]),
        show(binds[1])
    ));
    let serial = accept(&listener, cfg.idle)?;
    let writer = Arc::new(Mutex::new(
        serial.try_clone().map_err(|e| fail!("serial: {e}"))?,
    ));
    let to_device = Arc::new(AtomicU64::new(0));
    let down = Direction::new("to device", cfg.to_device);
    let down_dropped = Arc::clone(&down.dropped);
    let down = Arc::new(Mutex::new(down));
    for (kind, sock) in [header::COAP, header::COAPS].into_iter().zip(&sockets) {
        let Some(sock) = sock else { continue };
        let sock = sock.try_clone().map_err(|e| fail!("udp socket: {e}"))?;
        let (writer, count) = (Arc::clone(&writer), Arc::clone(&to_device));
        let down = Arc::clone(&down);
        // Detached: it sits in recv_from() and the process exits under it.
        std::thread::spawn(move || serve_downlink(kind, &sock, &writer, &count, &down));
    }
    let mut up = Direction::new("to peers", cfg.to_peer);
    if end_on_eof {
        let writer = Arc::clone(&writer);
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            say("bridge: standard input closed: end-of-run frame to the device");
            let end = [header::END, 0, 0, 0, 0, 0, 0];
            let _ = write_frame(&writer, &end);
        });
    }

    // Device to peers: each frame's header says from which socket to whom.
    let mut serial = serial;
    let mut decoder = slip::Decoder::<{ MAX_DATAGRAM + header::LEN }>::new();
    let mut chunk = [0u8; 512];
    let (mut frames, mut bad) = (0u64, 0u64);
    let ended = loop {
        let n = match serial.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(fail!("serial: {e} (idle timeout?)")),
        };
        for &b in chunk.get(..n).unwrap_or_default() {
            let Some(f) = decoder.push(b) else { continue };
            frames += 1;
            let sock = header::parse(f).and_then(|(kind, to, d)| {
                let s = match kind {
                    header::COAP => sockets.first(),
                    header::COAPS => sockets.get(1),
                    _ => None,
                };
                Some((s?.as_ref()?, to, d))
            });
            let Some((sock, to, d)) = sock else {
                bad += 1;
                warn("a frame from the device with a bad peer header: dropped");
                continue;
            };
            if up.lose(d) {
                continue;
            }
            if let Err(e) = sock.send_to(d, to) {
                warn(&format!("udp send to {to} failed: {e}"));
            }
        }
    };
    say(&format!(
        "serial closed: {frames} frames from the device ({bad} with a bad header), \
         {} datagrams to the device, {} dropped to peers, {} dropped to device, \
         {} malformed frames",
        to_device.load(Ordering::Relaxed),
        up.dropped.load(Ordering::Relaxed),
        down_dropped.load(Ordering::Relaxed),
        decoder.dropped()
    ));
    ended
}

/// Writes one SLIP frame of `data` to the shared serial stream.
fn write_frame(serial: &Mutex<TcpStream>, data: &[u8]) -> std::io::Result<()> {
    let mut frame = [0u8; slip::max_encoded_len(MAX_DATAGRAM + header::LEN)];
    let len = slip::encode(data, &mut frame).ok_or(std::io::ErrorKind::InvalidInput)?;
    let mut s = serial
        .lock()
        .map_err(|_| std::io::Error::other("serial writer poisoned"))?;
    s.write_all(frame.get(..len).unwrap_or_default())
}

/// Server mode, peers to device: each datagram on socket `kind` with the
/// header naming its sender. Ends when the stream or the socket fails.
fn serve_downlink(
    kind: u8,
    udp: &UdpSocket,
    serial: &Mutex<TcpStream>,
    count: &AtomicU64,
    dir: &Mutex<Direction>,
) {
    let mut buf = [0u8; header::LEN + MAX_DATAGRAM + 1];
    loop {
        let (n, from) = match udp.recv_from(buf.get_mut(header::LEN..).unwrap_or_default()) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                warn(&format!("udp receive failed: {e}"));
                return;
            }
        };
        if n > MAX_DATAGRAM {
            warn(&format!(
                "a datagram from {from} is longer than {MAX_DATAGRAM} bytes: not carried"
            ));
            continue;
        }
        let Some(h) = header::emit(kind, from) else {
            warn(&format!("{from}: IPv6 peers are not carried"));
            continue;
        };
        let d = buf.get(header::LEN..header::LEN + n).unwrap_or_default();
        // A poisoned lock (another thread panicked): carry everything.
        if dir.lock().is_ok_and(|mut dir| dir.lose(d)) {
            continue;
        }
        if let Some(slot) = buf.get_mut(..header::LEN) {
            slot.copy_from_slice(&h);
        }
        count.fetch_add(1, Ordering::Relaxed);
        if write_frame(serial, buf.get(..header::LEN + n).unwrap_or_default()).is_err() {
            return;
        }
    }
}

/// Client mode: one peer, frames are bare datagrams.
fn run_client(
    cfg: Config,
    peer: SocketAddr,
    listener: TcpListener,
    local: SocketAddr,
) -> Result<()> {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let udp = UdpSocket::bind(any).map_err(|e| fail!("udp socket: {e}"))?;
    udp.connect(peer)
        .map_err(|e| fail!("udp connect to {peer}: {e}"))?;
    say(&format!("listening on {local} (serial, SLIP), peer {peer}"));

    let mut serial = accept(&listener, cfg.idle)?;
    let writer = serial.try_clone().map_err(|e| fail!("serial: {e}"))?;
    let udp_rx = udp.try_clone().map_err(|e| fail!("udp socket: {e}"))?;
    let down = Direction::new("to device", cfg.to_device);
    let (down_dropped, mut up) = (
        Arc::clone(&down.dropped),
        Direction::new("to peer", cfg.to_peer),
    );
    // Detached: it sits in recv() and the process exits under it.
    std::thread::spawn(move || downlink(&udp_rx, writer, down));

    // Device to peer: each SLIP frame from the serial stream, one datagram.
    let mut decoder = slip::Decoder::<MAX_DATAGRAM>::new();
    let mut chunk = [0u8; 512];
    let (mut frames, mut bytes) = (0u64, 0u64);
    let ended = loop {
        let n = match serial.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(fail!("serial: {e} (idle timeout?)")),
        };
        for &b in chunk.get(..n).unwrap_or_default() {
            let Some(d) = decoder.push(b) else { continue };
            frames += 1;
            bytes += d.len() as u64;
            if up.lose(d) {
                continue;
            }
            if let Err(e) = udp.send(d) {
                warn(&format!("udp send failed: {e}"));
            }
        }
    };
    say(&format!(
        "serial closed: {frames} frames ({bytes} bytes) from the device, {} dropped to peer, \
         {} dropped to device, {} malformed frames",
        up.dropped.load(Ordering::Relaxed),
        down_dropped.load(Ordering::Relaxed),
        decoder.dropped()
    ));
    ended
}

fn main() -> ExitCode {
    match parse(Args::from_env()) {
        Ok(None) => {
            say(USAGE);
            ExitCode::SUCCESS
        }
        Ok(Some(cfg)) => exit_with(run(cfg)),
        Err(e) => exit_with(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_lists_parse() {
        let r = DropRule::parse("1, 3,app2").unwrap();
        assert_eq!((r.nth, r.app), (vec![1, 3], vec![2]));
        assert!(DropRule::parse("0").is_err());
        assert!(DropRule::parse("app").is_err());
        assert!(DropRule::parse("x").is_err());
        assert!(DropRule::parse("").unwrap().nth.is_empty());
    }

    #[test]
    fn drops_by_index_and_by_application_data() {
        let rule = DropRule::parse("2,app2").unwrap();
        let mut d = Direction::new("to peer", rule);
        let hs = [22u8, 0xfe, 0xfd];
        let app = [23u8, 0xfe, 0xfd];
        let got: Vec<bool> = [&hs[..], &hs, &app, &hs, &app, &app, &[]]
            .iter()
            .map(|g| d.lose(g))
            .collect();
        assert_eq!(got, [false, true, false, false, true, false, false]);
        assert_eq!(d.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn help_and_bad_arguments() {
        let args = |v: &[&str]| Args::new(v.iter().map(|s| s.to_string()).collect());
        assert!(matches!(parse(args(&["b", "--help"])), Ok(None)));
        assert!(parse(args(&["b"])).is_err());
        assert!(parse(args(&["b", "--peer", "nonsense"])).is_err());
        let cfg = parse(args(&[
            "b",
            "--peer",
            "127.0.0.1:5684",
            "--drop-to-device",
            "app1",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(cfg.to_device.app, vec![1]);
        assert_eq!(cfg.mode, Mode::Client("127.0.0.1:5684".parse().unwrap()));
        // Server mode: either socket or both, IPv4 only, no loss rules.
        let cfg = parse(args(&[
            "b",
            "--serve-coaps",
            "127.0.0.1:5684",
            "--end-on-eof",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            cfg.mode,
            Mode::Serve {
                coap: None,
                coaps: Some("127.0.0.1:5684".parse().unwrap()),
                end_on_eof: true
            }
        );
        assert!(parse(args(&["b", "--serve-coap", "[::1]:5683"])).is_err());
        assert!(parse(args(&["b", "--serve-coap", "localhost"])).is_err());
        let both = ["b", "--peer", "127.0.0.1:1", "--serve-coap", "127.0.0.1:2"];
        assert!(parse(args(&both)).is_err());
        let lossy = [
            "b",
            "--serve-coap",
            "127.0.0.1:2",
            "--drop-to-device",
            "app1",
        ];
        assert_eq!(parse(args(&lossy)).unwrap().unwrap().to_device.app, vec![1]);
        assert!(parse(args(&["b", "--peer", "127.0.0.1:1", "--end-on-eof"])).is_err());
    }

    #[test]
    fn peer_header_round_trip_and_short_frames() {
        let from: SocketAddr = "10.1.2.3:61616".parse().unwrap();
        let h = header::emit(header::COAPS, from).unwrap();
        assert_eq!(h, [1, 10, 1, 2, 3, 0xF0, 0xB0]);
        let mut frame = h.to_vec();
        frame.extend_from_slice(b"dgram");
        assert_eq!(
            header::parse(&frame),
            Some((header::COAPS, from, &b"dgram"[..]))
        );
        assert_eq!(header::parse(&h), Some((header::COAPS, from, &[][..])));
        assert_eq!(header::parse(&h[..6]), None);
        assert_eq!(header::parse(&[]), None);
        assert!(header::emit(header::COAP, "[::1]:5683".parse().unwrap()).is_none());
    }
}
