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
//! The SLIP codec is the firmware's own (examples/firmware/src/slip.rs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cssf_examples::fail;
use cssf_examples::util::{exit_with, Arg, Args, Result};

#[path = "../../firmware/src/slip.rs"]
mod slip;

const USAGE: &str = "usage: cssf-slip-bridge --peer HOST:PORT [--listen ADDR] \
[--drop-to-peer LIST] [--drop-to-device LIST] [--idle-timeout SECS]
  Listens on ADDR (TCP, default 127.0.0.1:0: a free port; the line
  `listening on ADDR` says which) for one serial connection carrying SLIP
  frames (e.g. qemu-system-arm -serial tcp:ADDR), sends each frame as a UDP
  datagram to the peer and SLIP-encodes the peer's datagrams back.
  LIST: comma-separated 1-based datagram indexes in that direction, or appN
  for the Nth datagram whose first DTLS record is application data.
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

struct Config {
    listen: String,
    peer: SocketAddr,
    to_peer: DropRule,
    to_device: DropRule,
    idle: Duration,
}

fn parse(mut args: Args) -> Result<Option<Config>> {
    let (mut listen, mut peer) = ("127.0.0.1:0".to_string(), None);
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
    let peer = peer.ok_or_else(|| fail!("--peer is required\n{USAGE}"))?;
    Ok(Some(Config {
        listen,
        peer,
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
    let any: SocketAddr = if cfg.peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let udp = UdpSocket::bind(any).map_err(|e| fail!("udp socket: {e}"))?;
    udp.connect(cfg.peer)
        .map_err(|e| fail!("udp connect to {}: {e}", cfg.peer))?;
    say(&format!(
        "listening on {local} (serial, SLIP), peer {}",
        cfg.peer
    ));

    let (mut serial, from) = listener.accept().map_err(|e| fail!("accept: {e}"))?;
    say(&format!("serial connected from {from}"));
    let _ = serial.set_nodelay(true);
    serial
        .set_read_timeout(Some(cfg.idle))
        .map_err(|e| fail!("serial: {e}"))?;
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
    }
}
