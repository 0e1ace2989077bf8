//! A DTLS 1.2 PSK echo server on a std UDP socket.
//!
//! `cargo run -p cssf-dtls --example udp_server -- [ADDR] [--once]`
//! (ADDR defaults to 127.0.0.1:5684; `--once` exits after the first
//! session ends). The client is `udp_client`.
// The workspace's lints are for library code; an example may index and use std.
#![allow(clippy::indexing_slicing, clippy::std_instead_of_core)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use cssf_dtls::{Config, Endpoint, Event, StaticPsk};
use rand_core::OsRng;

/// The pre-shared keys this server accepts: (identity, key).
const KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"secretPSK")];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let addr = args.iter().find(|a| !a.starts_with("--"));
    let sock = UdpSocket::bind(addr.map_or("127.0.0.1:5684", String::as_str))?;
    println!("listening on {}", sock.local_addr()?);

    // Time is what the caller says it is: here, time since `start`.
    let start = Instant::now();
    // Up to 8 sessions, keys from a fixed table, randomness from the OS.
    let (config, keys) = (Config::default(), StaticPsk::new(&KEYS));
    let mut server: Endpoint<SocketAddr, _, _, 8> =
        Endpoint::new(config, keys, OsRng, Duration::ZERO)?;
    let (mut buf, mut msg) = ([0u8; 1500], [0u8; 1500]);
    let mut done = false;
    loop {
        let now = start.elapsed();
        // Events first: they may queue records (the echo) to send.
        while let Some(event) = server.poll_event() {
            match event {
                Event::ApplicationData { handle, .. } => {
                    if let Some(n) = server.recv(handle, &mut msg)? {
                        println!("{handle}: {:?}", String::from_utf8_lossy(&msg[..n]));
                        if let Err(e) = server.send(now, handle, &msg[..n]) {
                            println!("{handle}: echo dropped: {e}"); // e.g. queue full
                        }
                    }
                }
                // The one place a session ends, however it ended.
                Event::Closed { handle, reason, .. } => {
                    println!("{handle}: closed: {reason}");
                    done |= once;
                }
                other => println!("{other:?}"),
            }
        }
        while let Some(t) = server.poll_transmit(now, &mut buf)? {
            let _ = sock.send_to(&buf[..t.len], t.to); // lost like any datagram if it fails
        }
        if done {
            return Ok(());
        }
        // Sleep until a datagram arrives or the next timer is due.
        let timer = server.poll_timeout().map(|t| t.saturating_sub(now));
        sock.set_read_timeout(timer.map(|t| t.max(Duration::from_millis(1))))?;
        match sock.recv_from(&mut buf) {
            // A peer's bad input never fails the call: a session or
            // handshake it ends gets its `Closed` event (printed above).
            Ok((n, from)) => server.handle_datagram(start.elapsed(), from, &mut buf[..n])?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        let now = start.elapsed();
        if server.poll_timeout().is_some_and(|t| t <= now) {
            // Retransmissions, give-ups and idle timeouts (each with its `Closed`).
            server.handle_timeout(now);
        }
    }
}
