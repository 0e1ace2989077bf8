//! CoAP over DTLS on a std UDP socket: a PSK handshake (cssf-dtls), then
//! one confirmable GET (the cssf-coap endpoint, which follows Block2 and
//! retransmits), the response printed, close_notify.
//!
//! `cargo run -p cssf-coap --example coaps_client -- [SERVER] [PATH]`
//! (SERVER defaults to 127.0.0.1:5684, PATH to `time`); PSK identity
//! `Client_identity`, key `secretPSK`, as libcoap's
//! `coap-server-openssl -k secretPSK` or `cssf-server --psk
//! Client_identity:73656372657450534b` take them. Exits 0 on a 2.xx answer.
// The workspace's lints are for library code; an example may index and use std.
#![allow(clippy::indexing_slicing, clippy::std_instead_of_core)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use cssf_coap::endpoint::{Config as CoapConfig, Endpoint, Event as CoapEvent, Request};
use cssf_dtls::{Client, Config, Event};
use rand_core::OsRng;

const IDENTITY: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:5684").parse()?;
    let path = args.next().unwrap_or_else(|| "time".into());
    let sock = UdpSocket::bind((if server.is_ipv4() { "0.0.0.0" } else { "::" }, 0))?;
    let start = Instant::now();
    let mut dtls = Client::new(
        Config::default(),
        IDENTITY,
        KEY,
        server,
        OsRng,
        Duration::ZERO,
    )?;
    let mut coap: Endpoint<SocketAddr, OsRng> = Endpoint::new(CoapConfig::default(), OsRng, &[]);
    let (mut buf, mut plain) = ([0u8; 1500], [0u8; 1500]);
    let mut success = false;
    loop {
        let now = start.elapsed();
        // DTLS events: connected (send the request), records (to CoAP), the end.
        while let Some(event) = dtls.poll_event() {
            match event {
                Event::Connected { suite, .. } => {
                    println!("connected ({suite:?}), GET /{path}");
                    coap.request(now, server, &Request::get(&path))?;
                }
                Event::ApplicationData { .. } => {
                    while let Some(n) = dtls.recv(&mut plain)? {
                        coap.handle_datagram(now, server, &mut plain[..n])?;
                    }
                }
                Event::Closed { reason, .. } => {
                    println!("closed: {reason}");
                    std::process::exit(if success { 0 } else { 1 });
                }
                _ => {}
            }
        }
        // CoAP events: the response (block by block), or no answer at all.
        while let Some(event) = coap.poll_event() {
            match event {
                CoapEvent::Response { response, last, .. } => {
                    let code = response.code();
                    println!("{code} {}", String::from_utf8_lossy(response.payload()));
                    if last {
                        success = code.class() == 2;
                        dtls.close(now);
                    }
                }
                CoapEvent::Timeout { .. } | CoapEvent::Reset { .. } => {
                    println!("no response");
                    dtls.close(now);
                }
                _ => {}
            }
        }
        // CoAP messages go out as DTLS records, records as datagrams.
        while let Some(t) = coap.poll_transmit(now, &mut plain)? {
            dtls.send(now, &plain[..t.len])?;
        }
        while let Some(t) = dtls.poll_transmit(now, &mut buf)? {
            sock.send_to(&buf[..t.len], t.to)?;
        }
        // Sleep until a datagram arrives or the first timer is due.
        let due = [dtls.poll_timeout(), coap.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let wait = due.map_or(Duration::from_secs(1), |t| t.saturating_sub(now));
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match sock.recv_from(&mut buf) {
            // A failed handshake or session is its `Closed` event.
            Ok((n, from)) => dtls.handle_datagram(start.elapsed(), from, &mut buf[..n])?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        let now = start.elapsed();
        dtls.handle_timeout(now);
        coap.handle_timeout(now);
    }
}
