//! A DTLS 1.2 PSK client on a std UDP socket: connects, sends a message,
//! prints the echo and closes.
//!
//! `cargo run -p cssf-dtls --example udp_client -- [SERVER] [MESSAGE]`
//! (SERVER defaults to 127.0.0.1:5684). The server is `udp_server`.
// The workspace's lints are for library code; an example may index and use std.
#![allow(clippy::indexing_slicing, clippy::std_instead_of_core)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use cssf_dtls::{Client, Config, Event};
use rand_core::OsRng;

const IDENTITY: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:5684").parse()?;
    let message = args.next().unwrap_or_else(|| "hello".into());
    let sock = UdpSocket::bind((if server.is_ipv4() { "0.0.0.0" } else { "::" }, 0))?;

    // Time is what the caller says it is: here, time since `start`.
    let start = Instant::now();
    // The first ClientHello is queued at once; randomness from the OS.
    let config = Config::default();
    let mut client = Client::new(config, IDENTITY, KEY, server, OsRng, Duration::ZERO)?;
    let mut buf = [0u8; 1500];
    let mut closed = None;
    loop {
        let now = start.elapsed();
        while let Some(event) = client.poll_event() {
            match event {
                Event::Connected { suite, .. } => {
                    println!("connected ({suite:?}), sending {message:?}");
                    client.send(now, message.as_bytes())?;
                }
                Event::ApplicationData { .. } => {
                    let mut msg = [0u8; 1500];
                    if let Some(n) = client.recv(&mut msg)? {
                        println!("received {:?}", String::from_utf8_lossy(&msg[..n]));
                        client.close(now); // close_notify goes out below
                    }
                }
                // The one place the session ends, however it ended.
                Event::Closed { reason, .. } => closed = Some(reason),
                _ => {}
            }
        }
        while let Some(t) = client.poll_transmit(now, &mut buf)? {
            sock.send_to(&buf[..t.len], t.to)?;
        }
        if let Some(reason) = closed {
            println!("closed: {reason}");
            std::process::exit(if reason.is_clean() { 0 } else { 1 });
        }
        // Sleep until a datagram arrives or the next timer is due.
        let timer = client.poll_timeout().map(|t| t.saturating_sub(now));
        sock.set_read_timeout(timer.map(|t| t.max(Duration::from_millis(1))))?;
        match sock.recv_from(&mut buf) {
            // A failed handshake or session (a wrong key, a fatal alert)
            // is the `Closed` event with the reason, above.
            Ok((n, from)) => client.handle_datagram(start.elapsed(), from, &mut buf[..n])?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        let now = start.elapsed();
        if client.poll_timeout().is_some_and(|t| t <= now) {
            // Retransmits the flight, or gives up (`Closed`, HandshakeTimeout).
            client.handle_timeout(now);
        }
    }
}
