//! The smallest PSK CoAPs client (footprint build (a'), for comparison with
//! `psk-client`): cssf-dtls with TLS_PSK_WITH_AES_128_CCM_8 and only the
//! cssf-coap wire codec (`MessageBuilder` / `Message`), no CoAP endpoint.
//!
//! It sends one confirmable GET and checks the piggybacked response (type
//! ACK, same message ID and token, 2.05, payload). It has no CoAP
//! retransmission timer or deduplication: fine for this in-memory replay, a
//! real client on a lossy link needs them (the endpoint in `psk-client`
//! has them).
//!
//! As in `psk-client`, the server's datagrams are replayed from
//! [`cssf_firmware::transcript`]; the request reuses the message ID and
//! token the device's CoAP client chose, since the recorded response
//! echoes them.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cssf_coap::{Code, Message, MessageBuilder, MessageType};
use cssf_dtls::{CipherSuite, Client, Event as DtlsEvent};
use cssf_firmware::transcript::{REQUEST_MID, REQUEST_TOKEN, SERVER_DATAGRAMS};
use cssf_firmware::{
    client_config, fail, line, put, put_num, stack, DemoRng, CLIENT_DTLS_SEED, KID, NOW, POP_KEY,
    SERVER_ADDR,
};

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware psk-client-codec: Cortex-M4F, QEMU mps2-an386, semihosting"]);
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
    let mut buf = [0u8; 600];
    let (mut sent, mut received) = (0usize, 0usize);
    let mut connected = None;
    let mut requested = false;
    let mut answered = false;
    for d in SERVER_DATAGRAMS {
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
            let mut req = MessageBuilder::<2>::new(MessageType::Con, Code::GET, REQUEST_MID);
            let built = req
                .token(REQUEST_TOKEN)
                .and_then(|r| r.uri_path("sensors/temp"))
                .is_ok();
            let mut out = [0u8; 64];
            match (built, req.emit(&mut out)) {
                (true, Ok(n)) => {
                    if client.send(NOW, out.get(..n).unwrap_or(&[])).is_err() {
                        fail(b"dtls client send");
                    }
                }
                _ => fail(b"coap: building the request"),
            }
        }
        while let Ok(Some(n)) = client.recv(&mut buf) {
            let Ok(m) = Message::parse(buf.get(..n).unwrap_or(&[])) else {
                fail(b"coap: unparsable response")
            };
            if m.ty() == MessageType::Ack
                && m.message_id() == REQUEST_MID
                && m.token() == REQUEST_TOKEN
                && m.code() == Code::CONTENT
                && m.payload() == b"22.5"
            {
                answered = true;
            }
        }
    }
    if connected != Some(CipherSuite::PskWithAes128Ccm8) {
        fail(b"dtls psk: handshake did not complete with TLS_PSK_WITH_AES_128_CCM_8");
    }
    line(&[b"dtls psk: handshake complete, TLS_PSK_WITH_AES_128_CCM_8 (server side replayed)"]);
    if !answered {
        fail(b"coap: GET /sensors/temp was not answered 2.05 22.5");
    }
    line(&[b"coap: GET /sensors/temp -> 2.05 Content \"22.5\" (wire codec only)"]);
    put(b"bytes: sent ");
    put_num(sent);
    put(b", received ");
    put_num(received);
    line(&[]);
    put(b"size_of: dtls Client ");
    put_num(core::mem::size_of::<Client<u8, DemoRng>>());
    line(&[b" B"]);
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}
