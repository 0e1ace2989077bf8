//! `cssf-slip-bridge` on loopback: a TCP "serial line" carrying SLIP frames
//! on one side, a UDP peer on the other, as QEMU's UART and a server see
//! it; datagrams both ways, escaping, chosen losses, malformed frames, and
//! `--help`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cssf_netsim::peer::ChildGuard;

const WAIT: Duration = Duration::from_secs(10);

/// Starts the bridge to `peer` with `extra` arguments; returns it, the
/// serial connection and the bridge's stdout lines after `listening on`.
fn start(
    peer: &UdpSocket,
    extra: &[&str],
) -> (ChildGuard, TcpStream, BufReader<std::process::ChildStdout>) {
    let peer = peer.local_addr().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cssf-slip-bridge"))
        .args(["--peer", &peer, "--idle-timeout", "30"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let guard = ChildGuard(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    let serial = TcpStream::connect(addr).unwrap();
    serial.set_read_timeout(Some(WAIT)).unwrap();
    (guard, serial, out)
}

fn frame(datagram: &[u8]) -> Vec<u8> {
    let mut f = vec![0xC0];
    for &b in datagram {
        match b {
            0xC0 => f.extend_from_slice(&[0xDB, 0xDC]),
            0xDB => f.extend_from_slice(&[0xDB, 0xDD]),
            b => f.push(b),
        }
    }
    f.push(0xC0);
    f
}

/// Reads from the serial line until `want` bytes arrived.
fn read_serial(serial: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = vec![0u8; want];
    serial.read_exact(&mut got).unwrap();
    got
}

fn recv_udp(peer: &UdpSocket) -> (Vec<u8>, std::net::SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    (buf[..n].to_vec(), from)
}

fn peer() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

#[test]
fn carries_datagrams_both_ways_with_escapes() {
    let peer = peer();
    let (mut child, mut serial, mut out) = start(&peer, &[]);
    let up = [0x16, 0xC0, 0x01, 0xDB, 0x02];
    // Line noise first, then the frame split over two writes.
    let f = frame(&up);
    serial.write_all(&[0xC0, 0xC0]).unwrap();
    serial.write_all(&f[..3]).unwrap();
    serial.write_all(&f[3..]).unwrap();
    let (got, from) = recv_udp(&peer);
    assert_eq!(got, up);
    // The answer goes back SLIP-encoded, from one socket.
    let down = [0x17, 0xDB, 0xC0, 0x03];
    peer.send_to(&down, from).unwrap();
    let want = frame(&down);
    assert_eq!(read_serial(&mut serial, want.len()), want);
    // Closing the serial line ends the bridge with status 0.
    drop(serial);
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the bridge did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("serial closed: 1 frames (5 bytes)"), "{rest}");
}

#[test]
fn loses_the_chosen_datagrams_and_says_so() {
    let peer = peer();
    let (_child, mut serial, mut out) =
        start(&peer, &["--drop-to-peer", "1", "--drop-to-device", "app1"]);
    // #1 to the peer is lost, #2 arrives.
    serial.write_all(&frame(b"\x16one")).unwrap();
    serial.write_all(&frame(b"\x16two")).unwrap();
    let (got, from) = recv_udp(&peer);
    assert_eq!(got, b"\x16two");
    // The first application-data datagram to the device is lost, not the
    // handshake datagram before it nor the second application data.
    peer.send_to(b"\x16hs", from).unwrap();
    peer.send_to(b"\x17app-1", from).unwrap();
    peer.send_to(b"\x17app-2", from).unwrap();
    let mut want = frame(b"\x16hs");
    want.extend(frame(b"\x17app-2"));
    assert_eq!(read_serial(&mut serial, want.len()), want);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l);
    }
    let all = lines.concat();
    assert!(
        all.contains("dropped datagram #1 to peer, 4 bytes"),
        "{all}"
    );
    assert!(
        all.contains("dropped datagram #2 (application data #1) to device, 6 bytes"),
        "{all}"
    );
}

#[test]
fn malformed_and_oversized_frames_are_dropped_not_fatal() {
    let peer = peer();
    let (_child, mut serial, _out) = start(&peer, &[]);
    // A bad escape, then a frame longer than any datagram, then a good one.
    serial.write_all(&[0xC0, 1, 0xDB, 7, 2, 0xC0]).unwrap();
    serial.write_all(&vec![0x55; 4000]).unwrap();
    serial.write_all(&frame(b"ok")).unwrap();
    let (got, _) = recv_udp(&peer);
    assert_eq!(got, b"ok");
}

#[test]
fn help_exits_zero_and_bad_arguments_fail() {
    let bin = env!("CARGO_BIN_EXE_cssf-slip-bridge");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--drop-to-peer"));
    for args in [&[][..], &["--peer", "127.0.0.1:1", "--drop-to-peer", "x"]] {
        let r = Command::new(bin).args(args).output().unwrap();
        assert_eq!(r.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&r.stderr).starts_with("error: "));
    }
}

/// Reads one SLIP frame (between two END bytes, the leading END of the
/// bridge's encoding skipped) from the serial line, unescaped.
fn read_frame(serial: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut esc = false;
    loop {
        let mut b = [0u8; 1];
        serial.read_exact(&mut b).unwrap();
        match (b[0], esc) {
            (0xC0, _) if out.is_empty() => {}
            (0xC0, _) => return out,
            (0xDB, false) => esc = true,
            (0xDC, true) => (out.push(0xC0), esc = false).1,
            (0xDD, true) => (out.push(0xDB), esc = false).1,
            (b, _) => (out.push(b), esc = false).1,
        }
    }
}

/// The 7-byte peer header of server mode for `a` on socket `kind`.
fn peer_header(kind: u8, a: std::net::SocketAddr) -> Vec<u8> {
    let std::net::SocketAddr::V4(a) = a else {
        panic!("IPv4 only")
    };
    let mut h = vec![kind];
    h.extend_from_slice(&a.ip().octets());
    h.extend_from_slice(&a.port().to_be_bytes());
    h
}

#[test]
fn serves_several_peers_with_the_peer_header_and_ends_the_run() {
    let port = cssf_netsim::peer::free_udp_port_pair();
    let (coap, coaps) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{}", port + 1),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_cssf-slip-bridge"))
        .args(["--serve-coap", &coap, "--serve-coaps", &coaps])
        .args(["--end-on-eof", "--idle-timeout", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _guard = ChildGuard(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!("serving coap {coap} coaps {coaps}")),
        "{line}"
    );
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    let mut serial = TcpStream::connect(addr).unwrap();
    serial.set_read_timeout(Some(WAIT)).unwrap();
    // Two remote peers, one on each socket (the UART may connect after
    // the first datagrams: they wait in the socket).
    let (a, b) = (peer(), peer());
    let deadline = Instant::now() + WAIT;
    a.send_to(&[0xC0, 1, 2], &coaps).unwrap();
    let f = read_frame(&mut serial);
    let mut want = peer_header(1, a.local_addr().unwrap());
    want.extend_from_slice(&[0xC0, 1, 2]);
    assert_eq!(f, want);
    b.send_to(b"get", &coap).unwrap();
    let f = read_frame(&mut serial);
    let mut want = peer_header(0, b.local_addr().unwrap());
    want.extend_from_slice(b"get");
    assert_eq!(f, want);
    // Answers go from the socket the header names to the address in it.
    let mut to_b = peer_header(0, b.local_addr().unwrap());
    to_b.extend_from_slice(b"2.05");
    let mut to_a = peer_header(1, a.local_addr().unwrap());
    to_a.extend_from_slice(&[0xDB, 9]);
    // A short header and an unknown kind are dropped.
    serial.write_all(&frame(&[1, 127, 0])).unwrap();
    serial
        .write_all(&frame(&peer_header(7, b.local_addr().unwrap())))
        .unwrap();
    serial.write_all(&frame(&to_b)).unwrap();
    serial.write_all(&frame(&to_a)).unwrap();
    let (got, from) = recv_udp(&b);
    assert_eq!(
        (got.as_slice(), from.to_string()),
        (&b"2.05"[..], coap.clone())
    );
    let (got, from) = recv_udp(&a);
    assert_eq!(
        (got.as_slice(), from.to_string()),
        (&[0xDB, 9][..], coaps.clone())
    );
    assert!(Instant::now() < deadline);
    // Closing standard input sends the end-of-run frame.
    drop(stdin);
    assert_eq!(read_frame(&mut serial), [0xFF, 0, 0, 0, 0, 0, 0]);
    drop(serial);
    let rest: Vec<String> = out.lines().map_while(std::result::Result::ok).collect();
    let last = rest.last().cloned().unwrap_or_default();
    assert!(
        last.contains("4 frames from the device (2 with a bad header), 2 datagrams"),
        "{rest:?}"
    );
}
