//! The PSK CoAPs client on a live link: cssf-dtls
//! (TLS_PSK_WITH_AES_128_CCM_8) and `cssf_coap::lite::Client`, talking to a
//! real server through UART0, one SLIP frame (RFC 1055) per datagram, as a
//! serial radio modem would carry them. On the host, `cssf-slip-bridge`
//! turns the frames into UDP datagrams to the server (`cssf-server` or
//! libcoap's `coap-server-openssl`) and back.
//!
//! Time comes from SysTick (1 ms), and both layers' timers are driven:
//! the DTLS client's `poll_timeout`/`handle_timeout` retransmit its
//! handshake flights, the CoAP client's retransmit the confirmable request.
//! The image prints how many of each it made.
//!
//! PSK identity `Client_identity`, key `secretPSK` (both servers take them
//! on their command lines). The request is `GET /time` (a resource both
//! servers have), or the path in `CSSF_LINK_PATH` at build time.
#![no_std]
#![no_main]

mod board;

use core::time::Duration;

use cortex_m_rt::entry;
use cssf_coap::lite::{Client as CoapClient, Config as CoapConfig, Event as CoapEvent};
use cssf_coap::{Code, MessageBuilder, MessageType};
use cssf_dtls::{CipherSuite, Event as DtlsEvent};
use cssf_firmware::slip;
use cssf_firmware::{
    client_config, fail, line, print_client_sizes, put, put_num, stack, DemoRng, SmallClient,
    CLIENT_COAP_SEED, CLIENT_DTLS_SEED, SERVER_ADDR,
};

/// The PSK identity both peers are given.
const IDENTITY: &[u8] = b"Client_identity";
/// The PSK both peers are given (libcoap's `-k secretPSK`).
const PSK: &[u8] = b"secretPSK";
/// The resource to GET.
const PATH: &str = match option_env!("CSSF_LINK_PATH") {
    Some(p) => p,
    None => "time",
};
/// The whole exchange must end within this (device time).
const DEADLINE: Duration = Duration::from_secs(60);
/// The largest datagram either way: a 256-byte CoAP message in a record
/// (285 bytes), the server's flights with PSK (ServerHello and
/// ServerHelloDone: about 100 bytes; a HelloVerifyRequest with the
/// longest cookie: 283 bytes) and our ClientHello (a flight is fragmented
/// to the buffer when a long cookie makes it longer). A longer datagram is
/// dropped by the SLIP decoder and counted.
const MAX_DATAGRAM: usize = 320;

type Coap = CoapClient<DemoRng, 256>;
type Dtls = SmallClient<DemoRng>;

/// What the run has seen so far.
#[derive(Default)]
struct Progress {
    connected: Option<CipherSuite>,
    requested: bool,
    /// The CoAP request's header (type, code, message ID): a datagram
    /// from the CoAP client starting with it again is a retransmission.
    request_header: Option<[u8; 4]>,
    coap_retransmissions: usize,
    response: Option<(u8, heapless::Vec<u8, 64>)>,
    sent: usize,
    received: usize,
}

/// The DTLS client's configuration: the one suite, and a 1 s initial
/// retransmission timer (RFC 6347 §4.2.4.1's value) instead of the 9 s
/// default the project picks for slow radio links (RFC 7925 §11): over
/// this serial link the round trip is a few milliseconds, and a lost
/// flight then costs a second, not nine.
fn dtls_config() -> cssf_dtls::Config {
    let mut cfg = client_config();
    cfg.retransmit_initial = Duration::from_secs(1);
    cfg.retransmit_max = Duration::from_secs(8);
    cfg
}

/// Sends everything the CoAP client and then the DTLS client have queued,
/// each datagram as one SLIP frame on UART0.
fn flush(now: Duration, dtls: &mut Dtls, coap: &mut Coap, p: &mut Progress) {
    let mut buf = [0u8; MAX_DATAGRAM];
    while dtls.is_connected() {
        match coap.poll_transmit(now, &mut buf) {
            Ok(Some(t)) => {
                let n = t.len;
                let d = buf.get(..n).unwrap_or(&[]);
                let header = d.get(..4).and_then(|h| <[u8; 4]>::try_from(h).ok());
                match (p.request_header, header) {
                    (Some(r), Some(h)) if r == h => p.coap_retransmissions += 1,
                    (None, Some(h)) if n > 4 => p.request_header = Some(h),
                    _ => {}
                }
                if dtls.send(now, d).is_err() {
                    fail(b"dtls client send");
                }
            }
            Ok(None) => break,
            Err(_) => fail(b"coap: poll_transmit"),
        }
    }
    loop {
        match dtls.poll_transmit(now, &mut buf) {
            Ok(Some(t)) => {
                p.sent += t.len;
                slip::encode_to(buf.get(..t.len).unwrap_or(&[]), board::write_byte);
            }
            Ok(None) => break,
            Err(_) => fail(b"dtls client poll_transmit"),
        }
    }
}

/// Takes the DTLS and CoAP events: connected (then the request goes out),
/// data (into the CoAP client), the response, failures.
fn events(now: Duration, dtls: &mut Dtls, coap: &mut Coap, p: &mut Progress) {
    while let Some(ev) = dtls.poll_event() {
        match ev {
            DtlsEvent::Connected { suite, .. } => {
                p.connected = Some(suite);
                put(b"dtls psk: handshake complete after ");
                put_num(now.as_millis() as usize);
                line(&[b" ms"]);
            }
            DtlsEvent::Closed { .. } => fail(b"dtls: the session closed before the response"),
            _ => {}
        }
    }
    if p.connected.is_some() && !p.requested {
        p.requested = true;
        let mut get = MessageBuilder::<4>::new(MessageType::Con, Code::GET, 0);
        if get.uri_path(PATH).is_err() || coap.request(now, &get).is_err() {
            fail(b"coap: request");
        }
        line(&[b"coap: GET /", PATH.as_bytes(), b" sent (CON)"]);
    }
    let mut buf = [0u8; 256];
    while let Ok(Some(n)) = dtls.recv(&mut buf) {
        // A malformed CoAP message is dropped (or answered with RST) and
        // counted by the client itself; the session is its one peer.
        let _ = coap.handle_datagram(now, (), buf.get_mut(..n).unwrap_or(&mut []));
    }
    match coap.poll_event() {
        Some(CoapEvent::Response(r)) => {
            let mut payload = heapless::Vec::new();
            for &b in r.payload().iter().take(64) {
                let _ = payload.push(b);
            }
            p.response = Some((r.code().0, payload));
        }
        Some(CoapEvent::Timeout) => fail(b"coap: no response (timed out)"),
        Some(CoapEvent::Reset) => fail(b"coap: the server answered with RST"),
        Some(CoapEvent::Rejected(_)) => fail(b"coap: response rejected"),
        None => {}
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[
        b"cssf-firmware psk-client-link: Cortex-M4F, QEMU mps2-an386, UART0 + SLIP, SysTick 1 ms",
    ]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);
    if !board::init() {
        fail(b"board init");
    }
    let start = board::now();
    // Built in place, then started (no copy of the client on the stack).
    let mut dtls = Dtls::unstarted(
        dtls_config(),
        SERVER_ADDR,
        DemoRng::new(CLIENT_DTLS_SEED),
        start,
    );
    if dtls.start_psk(IDENTITY, PSK, start).is_err() {
        fail(b"dtls client config")
    }
    line(&[b"link: UART0 up, SLIP framing; dtls psk: ClientHello for identity Client_identity"]);
    let mut coap = Coap::new(CoapConfig::default(), DemoRng::new(CLIENT_COAP_SEED));
    let mut decoder = slip::Decoder::<MAX_DATAGRAM>::new();
    let mut p = Progress::default();
    loop {
        let now = board::now();
        if now.saturating_sub(start) > DEADLINE {
            fail(b"no response within 60 s");
        }
        let mut busy = false;
        // Input: every byte waiting on the line, each complete frame one
        // datagram for the DTLS client.
        while let Some(byte) = board::try_read() {
            busy = true;
            if let Some(d) = decoder.push(byte) {
                p.received += d.len();
                // A failed handshake or session is its `Closed` event.
                if dtls.handle_datagram(now, SERVER_ADDR, d).is_err() {
                    fail(b"dtls: handle_datagram misused");
                }
                events(now, &mut dtls, &mut coap, &mut p);
            }
        }
        // Input: time. Both layers' timers, when due.
        // A handshake that gives up ends with `Closed` (HandshakeTimeout).
        if dtls.poll_timeout().is_some_and(|t| t <= now) {
            dtls.handle_timeout(now);
        }
        if coap.poll_timeout().is_some_and(|t| t <= now) {
            coap.handle_timeout(now);
        }
        events(now, &mut dtls, &mut coap, &mut p);
        flush(now, &mut dtls, &mut coap, &mut p);
        if p.response.is_some() {
            break;
        }
        if !busy {
            board::wait();
        }
    }
    // The response is in: acknowledge what needs it, say goodbye.
    let now = board::now();
    flush(now, &mut dtls, &mut coap, &mut p);
    dtls.close(now);
    flush(now, &mut dtls, &mut coap, &mut p);
    if p.connected != Some(CipherSuite::PskWithAes128Ccm8) {
        fail(b"dtls psk: not TLS_PSK_WITH_AES_128_CCM_8");
    }
    line(&[b"dtls psk: TLS_PSK_WITH_AES_128_CCM_8, close_notify sent"]);
    match &p.response {
        Some((c, payload)) if *c == Code::CONTENT.0 => line(&[
            b"coap: GET /",
            PATH.as_bytes(),
            b" -> 2.05 Content \"",
            printable(payload),
            b"\"",
        ]),
        Some((c, _)) => {
            put(b"coap: response code ");
            put_num(usize::from(c >> 5));
            put(b".");
            put_num(usize::from(c & 31));
            line(&[]);
            fail(b"coap: the response is not 2.05 Content")
        }
        None => fail(b"coap: no response"),
    }
    put(b"retransmissions: dtls ");
    put_num(dtls.stats().retransmissions as usize);
    put(b", coap ");
    put_num(p.coap_retransmissions);
    line(&[]);
    put(b"bytes: sent ");
    put_num(p.sent);
    put(b", received ");
    put_num(p.received);
    put(b" (datagrams), ");
    put_num(decoder.dropped() as usize);
    line(&[b" malformed frames"]);
    put(b"time: ");
    put_num(now.saturating_sub(start).as_millis() as usize);
    line(&[b" ms (SysTick)"]);
    print_client_sizes::<DemoRng>();
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}

/// `payload` if it is printable ASCII, else a placeholder.
fn printable(payload: &[u8]) -> &[u8] {
    if payload.iter().all(|b| (0x20..0x7f).contains(b)) {
        payload
    } else {
        b"<binary>"
    }
}
