//! The PSK-only CoAPs client (footprint build (a)): cssf-dtls with
//! TLS_PSK_WITH_AES_128_CCM_8 and cssf-coap, nothing else.
//!
//! There is no server in this image (that is the point of measuring it):
//! the server's datagrams are replayed from [`cssf_firmware::transcript`],
//! recorded from the `device` run. The handshake is real: the client checks
//! the server's Finished and decrypts the CoAP response, so a stale
//! transcript fails the run instead of passing silently (the client's RNG is
//! the deterministic demo generator with the same seed as in `device`).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cssf_coap::endpoint::{Config as CoapConfig, Event as CoapEvent, Request};
use cssf_coap::Code;
use cssf_dtls::{CipherSuite, Client, Event as DtlsEvent};
use cssf_firmware::transcript::SERVER_DATAGRAMS;
use cssf_firmware::{
    client_config, fail, line, put, put_num, stack, Coap, DemoRng, CLIENT_COAP_SEED,
    CLIENT_DTLS_SEED, KID, NOW, POP_KEY, SERVER_ADDR,
};

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware psk-client: Cortex-M4F, QEMU mps2-an386, semihosting"]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);
    if SERVER_DATAGRAMS.is_empty() {
        fail(b"no server transcript: run scripts/embedded --regenerate-transcript");
    }
    let Ok(mut client) = Client::new(
        client_config(),
        KID,
        &POP_KEY,
        SERVER_ADDR,
        DemoRng::new(CLIENT_DTLS_SEED),
        NOW,
    ) else {
        fail(b"dtls client config")
    };
    let mut coap = Coap::new(CoapConfig::default(), DemoRng::new(CLIENT_COAP_SEED), &[]);
    let mut buf = [0u8; 600];
    let (mut sent, mut received) = (0usize, 0usize);
    let mut connected = None;
    let mut requested = false;
    let mut response: Option<(u8, heapless::Vec<u8, 16>)> = None;
    for d in SERVER_DATAGRAMS {
        // Our datagrams go to the (absent) server: count and drop them.
        while let Ok(Some(t)) = coap.poll_transmit(NOW, &mut buf) {
            if client.send(NOW, buf.get(..t.len).unwrap_or(&[])).is_err() {
                fail(b"dtls client send");
            }
        }
        loop {
            match client.poll_transmit(NOW, &mut buf) {
                Ok(Some(t)) => sent += t.len,
                Ok(None) => break,
                Err(_) => fail(b"dtls client poll_transmit"),
            }
        }
        let Some(dst) = buf.get_mut(..d.len()) else {
            fail(b"transcript datagram too long")
        };
        dst.copy_from_slice(d);
        received += d.len();
        if client.handle_datagram(NOW, SERVER_ADDR, dst).is_err() {
            fail(b"dtls client: connection failed (stale transcript?)");
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                DtlsEvent::Connected { suite, .. } => connected = Some(suite),
                DtlsEvent::Closed { .. } => fail(b"dtls client: closed"),
                _ => {}
            }
        }
        if connected.is_some() && !requested {
            requested = true;
            if coap
                .request(NOW, SERVER_ADDR, &Request::get("sensors/temp"))
                .is_err()
            {
                fail(b"coap: request");
            }
        }
        while let Ok(Some(n)) = client.recv(&mut buf) {
            let d = buf.get_mut(..n).unwrap_or(&mut []);
            if coap.handle_datagram(NOW, SERVER_ADDR, d).is_err() {
                fail(b"coap client: handle_datagram");
            }
        }
        while let Some(ev) = coap.poll_event() {
            if let CoapEvent::Response { response: r, .. } = ev {
                let p = heapless::Vec::from_slice(r.payload()).unwrap_or_default();
                response = Some((r.code().0, p));
            }
        }
    }
    if connected != Some(CipherSuite::PskWithAes128Ccm8) {
        fail(b"dtls psk: handshake did not complete with TLS_PSK_WITH_AES_128_CCM_8");
    }
    line(&[b"dtls psk: handshake complete, TLS_PSK_WITH_AES_128_CCM_8 (server side replayed)"]);
    match &response {
        Some((c, p)) if *c == Code::CONTENT.0 && p.as_slice() == b"22.5" => {}
        _ => fail(b"coap: GET /sensors/temp was not answered 2.05 22.5"),
    }
    line(&[b"coap: GET /sensors/temp -> 2.05 Content \"22.5\""]);
    put(b"bytes: sent ");
    put_num(sent);
    put(b", received ");
    put_num(received);
    line(&[]);
    put(b"size_of: dtls Client ");
    put_num(core::mem::size_of::<Client<u8, DemoRng>>());
    put(b" B, coap Endpoint<2,4,256,0> ");
    put_num(core::mem::size_of::<Coap>());
    line(&[b" B"]);
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}
