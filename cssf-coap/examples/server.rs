//! A CoAP server on a std UDP socket with two resources: `/hello` (GET)
//! and `/counter` (GET reads it, POST adds one). `/.well-known/core`,
//! retransmissions, duplicates and 4.04/4.05 are the endpoint's.
//!
//! `cargo run -p cssf-coap --example server -- [ADDR] [--requests N]`
//! (ADDR defaults to 127.0.0.1:5683; port 0 picks a free one; with
//! `--requests N` it exits after answering N requests). Try it with
//! libcoap: `coap-client-notls coap://127.0.0.1/hello`.
// The workspace's lints are for library code; an example may index and use std.
#![allow(clippy::indexing_slicing, clippy::std_instead_of_core)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use cssf_coap::endpoint::{Config, Endpoint, Event, Methods, Resource, Response};
use cssf_coap::{Code, ContentFormat};
use rand_core::OsRng;

static RESOURCES: [Resource; 2] = [
    Resource::new("hello", Methods::GET).rt("greeting"),
    Resource::new("counter", Methods::GET.union(Methods::POST)),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = args.first().map_or("127.0.0.1:5683", |a| a).parse()?;
    let limit: Option<u64> = match args.iter().position(|a| a == "--requests") {
        Some(i) => Some(args.get(i + 1).ok_or("--requests needs N")?.parse()?),
        None => None,
    };
    let sock = UdpSocket::bind(addr)?;
    println!("listening on {}", sock.local_addr()?);
    let start = Instant::now();
    let mut coap: Endpoint<SocketAddr, OsRng> = Endpoint::new(Config::default(), OsRng, &RESOURCES);
    let (mut counter, mut answered) = (0u64, 0u64);
    let mut buf = [0u8; 1280];
    loop {
        let now = start.elapsed();
        while let Some(event) = coap.poll_event() {
            if let Event::Request {
                id,
                peer,
                resource,
                request,
            } = event
            {
                let code = request.code();
                let text = match resource {
                    0 => "hello, world".to_string(),
                    _ if code == Code::POST => {
                        counter += 1;
                        counter.to_string()
                    }
                    _ => counter.to_string(),
                };
                let reply = if code == Code::POST {
                    Code::CHANGED
                } else {
                    Code::CONTENT
                };
                println!(
                    "{peer} {code} {} -> {reply} {text}",
                    RESOURCES[resource].path
                );
                let r = Response::new(reply)
                    .content_format(ContentFormat::TEXT_PLAIN)
                    .payload(text.as_bytes());
                coap.respond(now, id, &r)?;
                answered += 1;
            }
        }
        while let Some(t) = coap.poll_transmit(now, &mut buf)? {
            sock.send_to(&buf[..t.len], t.to)?;
        }
        if limit.is_some_and(|n| answered >= n) {
            return Ok(());
        }
        // Sleep until a datagram arrives or the next timer is due.
        let timer = coap.poll_timeout().map(|t| t.saturating_sub(now));
        sock.set_read_timeout(Some(
            timer
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1)),
        ))?;
        match sock.recv_from(&mut buf) {
            // Malformed input is the endpoint's to drop or reject (RST).
            Ok((n, from)) => coap.handle_datagram(start.elapsed(), from, &mut buf[..n])?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        coap.handle_timeout(start.elapsed());
    }
}
