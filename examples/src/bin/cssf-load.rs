//! `cssf-load`: concurrent CoAPs (DTLS PSK) sessions against one server;
//! see `cssf_examples::load` and examples/README.md.

use std::time::Duration;

use clap::Parser;
use cssf_examples::fail;
use cssf_examples::keys::Psk;
use cssf_examples::load::{run, LoadConfig};
use cssf_examples::uri::Target;
use cssf_examples::util::{exit_with, Result};

/// Concurrent CoAP-over-DTLS (PSK) clients against one server, each from its
/// own UDP port: a handshake, then confirmable GETs back to back for
/// `--duration` seconds. Prints handshakes/s, requests/s, p50/p99 latency,
/// errors, and with `--server-pid` the server's CPU time and resident
/// memory per session.
#[derive(Debug, Parser)]
#[command(name = "cssf-load", version)]
struct Args {
    /// The resource, `coaps://HOST:PORT/PATH`.
    uri: String,
    /// A PSK: the identity and the key in hex (as cssf-client's `--psk`).
    #[arg(long, value_name = "IDENTITY:HEXKEY", conflicts_with_all = ["identity", "psk_text"])]
    psk: Option<String>,
    /// The PSK identity (text), with -k (libcoap's `-u`).
    #[arg(
        short = 'u',
        long = "psk-identity",
        value_name = "IDENTITY",
        default_value = "Client_identity"
    )]
    identity: String,
    /// The PSK as text (libcoap's `-k secretPSK`).
    #[arg(short = 'k', long = "psk-text", value_name = "KEY")]
    psk_text: Option<String>,
    /// Concurrent sessions.
    #[arg(short = 'c', long, default_value_t = 10)]
    sessions: usize,
    /// Handshakes run at once while the sessions are set up.
    #[arg(long, default_value_t = 4)]
    handshakes_at_once: usize,
    /// Seconds of requests once every session is up.
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Requests per second of each session (fractions allowed: 0.5 is one
    /// every two seconds); 0 sends them back to back.
    /// RFC 7252 §4.4 lets a client send a server at most 65536 messages
    /// per EXCHANGE_LIFETIME (247 s), about 265 a second: faster, Message
    /// IDs repeat and a server that deduplicates as the RFC says answers
    /// a new request as a duplicate.
    #[arg(short = 'r', long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds one handshake or one request may take.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Sessions come from this many loopback addresses in turn (127.0.0.1,
    /// 127.0.0.2, ...; at most 254); 0: the kernel picks the source. A
    /// DTLS server limits handshakes per host, so one address sets up
    /// sessions more slowly than many devices would.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=254))]
    source_hosts: u8,
    /// The server's process id: its CPU time and resident memory (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Fail (exit 1) unless at least this many sessions completed their
    /// handshake and every one got a 2.05 (the CI smoke check).
    #[arg(long)]
    require_sessions: Option<usize>,
}

fn main() -> std::process::ExitCode {
    exit_with(run_args(Args::parse()))
}

fn run_args(a: Args) -> Result<()> {
    let target = Target::parse(&a.uri)?;
    if !target.secure {
        return Err(fail!("cssf-load needs a coaps:// URI (DTLS with a PSK)"));
    }
    let (identity, key) = match (a.psk, a.psk_text) {
        (Some(spec), None) => {
            let p = Psk::parse(&spec)?;
            (p.identity.clone(), p.key.to_vec())
        }
        (None, Some(k)) => (a.identity.into_bytes(), k.into_bytes()),
        _ => {
            return Err(fail!(
                "give the PSK with --psk IDENTITY:HEXKEY or -u IDENTITY -k KEY"
            ))
        }
    };
    let cfg = LoadConfig {
        server: target.addr,
        path: target.path,
        identity,
        key,
        sessions: a.sessions,
        handshakes_at_once: a.handshakes_at_once,
        duration: Duration::from_secs(a.duration),
        rate: a.rate,
        timeout: Duration::from_secs(a.timeout),
        server_pid: a.server_pid,
        source_hosts: a.source_hosts,
    };
    let report = run(cfg.clone())?;
    print!("{}", report.render(&cfg));
    if let Some(need) = a.require_sessions {
        if report.handshakes_ok < need {
            return Err(fail!(
                "{} of {} sessions completed their handshake, {need} required",
                report.handshakes_ok,
                cfg.sessions
            ));
        }
        if report.requests_ok == 0 || report.requests_failed > 0 || report.requests_refused > 0 {
            return Err(fail!(
                "requests: {} ok, {} refused, {} failed",
                report.requests_ok,
                report.requests_refused,
                report.requests_failed
            ));
        }
    }
    Ok(())
}
