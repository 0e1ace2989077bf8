//! The PSK CoAPs client with the small CoAP client (footprint build (a'')):
//! cssf-dtls with TLS_PSK_WITH_AES_128_CCM_8 and `cssf_coap::lite::Client`
//! (one outstanding request, CON retransmission, piggybacked and separate
//! responses, RST handling) instead of the full CoAP endpoint.
//!
//! As in `psk-client`, the server's datagrams are replayed from
//! [`cssf_firmware::transcript`]. The recorded response echoes the message
//! ID and token the device's CoAP client chose, so the lite client's RNG
//! here hands out exactly those first (then the demo generator): a replay
//! aid, never how a real device seeds its client.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cssf_coap::lite::{Client as CoapClient, Config as CoapConfig, Event as CoapEvent};
use cssf_coap::{Code, MessageBuilder, MessageType};
use cssf_dtls::{CipherSuite, Event as DtlsEvent};
use cssf_firmware::transcript::{REQUEST_MID, REQUEST_TOKEN, SERVER_DATAGRAMS};
use cssf_firmware::{
    client_config, fail, line, print_client_sizes, put, put_num, stack, DemoRng, SmallClient,
    CLIENT_COAP_SEED, CLIENT_DTLS_SEED, KID, NOW, POP_KEY, SERVER_ADDR,
};
use rand_core::{CryptoRng, RngCore};

/// The recorded message ID and token first, then the demo generator.
struct ReplayRng {
    mid: Option<u16>,
    token: Option<&'static [u8]>,
    rest: DemoRng,
}

impl RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        match self.mid.take() {
            Some(m) => u32::from(m),
            None => self.rest.next_u32(),
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.rest.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self.token.take() {
            Some(t) if t.len() == dest.len() => dest.copy_from_slice(t),
            _ => self.rest.fill_bytes(dest),
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for ReplayRng {}

type Coap = CoapClient<ReplayRng, 256>;

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware psk-client-lite: Cortex-M4F, QEMU mps2-an386, semihosting"]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);
    if SERVER_DATAGRAMS.is_empty() {
        fail(b"no server transcript: run scripts/embedded --regenerate-transcript");
    }
    // Built in place, then started (no copy of the client on the stack).
    let mut client = SmallClient::unstarted(
        client_config(),
        SERVER_ADDR,
        DemoRng::new(CLIENT_DTLS_SEED),
        NOW,
    );
    if client.start_psk(KID, &POP_KEY, NOW).is_err() {
        fail(b"dtls client config")
    }
    let rng = ReplayRng {
        mid: Some(REQUEST_MID),
        token: Some(REQUEST_TOKEN),
        rest: DemoRng::new(CLIENT_COAP_SEED),
    };
    let mut coap = Coap::new(CoapConfig::default(), rng);
    // The largest datagram either way: a 256-byte CoAP message in a
    // record (285 bytes), or the ClientHello (fragmented to the buffer if
    // a cookie makes it longer).
    let mut buf = [0u8; 320];
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
            let mut get = MessageBuilder::<2>::new(MessageType::Con, Code::GET, 0);
            if get.uri_path("sensors/temp").is_err() || coap.request(NOW, &get).is_err() {
                fail(b"coap: request");
            }
        }
        while let Ok(Some(n)) = client.recv(&mut buf) {
            // Malformed datagrams are dropped and counted by the client.
            let _ = coap.handle_datagram(NOW, (), buf.get_mut(..n).unwrap_or(&mut []));
        }
        if coap.poll_timeout().is_some_and(|t| t <= NOW) {
            coap.handle_timeout(NOW);
        }
        match coap.poll_event() {
            Some(CoapEvent::Response(r)) => {
                let p = heapless::Vec::from_slice(r.payload()).unwrap_or_default();
                response = Some((r.code().0, p));
            }
            Some(_) => fail(b"coap: request failed"),
            None => {}
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
    line(&[b"coap: GET /sensors/temp -> 2.05 Content \"22.5\" (lite client)"]);
    put(b"bytes: sent ");
    put_num(sent);
    put(b", received ");
    put_num(received);
    line(&[]);
    print_client_sizes::<DemoRng>();
    put(b"size_of: coap lite Client<256> ");
    put_num(core::mem::size_of::<Coap>());
    line(&[b" B"]);
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}
