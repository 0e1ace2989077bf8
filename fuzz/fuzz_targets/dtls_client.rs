//! A client connection fed arbitrary datagrams (from its server's address
//! and from others) and time steps, interleaved with a real server's
//! (optionally corrupted) flights so the fuzzer reaches every client state:
//! HelloVerifyRequest, the server flight, Finished, application data and
//! alerts; with an ECDHE_ECDSA suite the server uses raw public keys (its
//! Certificate, signed ServerKeyExchange and, when the selector is odd, a
//! CertificateRequest). Must never panic (memory stays bounded by
//! construction); asserts the lifecycle contract (one `Connected`, one
//! `Closed`, nothing after it), that a `Connected` names what the handshake
//! proved (the PSK identity, or the pinned server key), and that datagrams
//! from other addresses change nothing.
#![no_main]

use core::time::Duration;

use arbitrary::Arbitrary;
use cssf_dtls::{
    Client, Config, Endpoint, Event, Identity, KeyExchange, PinnedKeys, PskIdentity, SigningKey,
    StaticPsk, TrustStore,
};
use libfuzzer_sys::fuzz_target;

#[path = "common/fuzz_rng.rs"]
mod fuzz_rng;
use fuzz_rng::FuzzRng;
#[path = "common/lifecycle.rs"]
mod lifecycle;
use lifecycle::Lifecycle;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes as if from the server's address (or another one).
    Inject { from_server: bool, data: Vec<u8> },
    /// The server's next datagram, with one byte flipped at `flip` if set.
    ServerToClient { flip: Option<(u16, u8)> },
    /// The client's next datagram to the server.
    ClientToServer,
    /// Time passes.
    Wait { millis: u16 },
    /// Application data from the client.
    Send { data: Vec<u8> },
    /// The client closes.
    Close,
}

static KEYS: [(&[u8], &[u8]); 1] = [(b"id", b"0123456789abcdef")];

fuzz_target!(|input: (u8, Vec<Op>)| {
    let (suite, ops) = input;
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(100);
    let all = cfg.suites.clone();
    // Sometimes offer a single suite, so each key exchange is reached.
    if let Some(s) = all.get(usize::from(suite) % (all.len() + 1)) {
        cfg.suites = heapless::Vec::from_slice(&[*s]).unwrap_or(all.clone());
    }
    let server_key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
    let client_key = SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let pins_server = [p256::PublicKey::from(server_key.verifying_key())];
    let pins_client = [p256::PublicKey::from(client_key.verifying_key())];
    let ecdsa = cfg.suites.len() == 1
        && cfg.suites.first().map(|s| s.key_exchange()) == Some(KeyExchange::EcdheEcdsa);
    cfg.require_client_auth = ecdsa && suite % 2 == 1;
    let Ok(server) = Endpoint::<u8, _, _, 2, _>::with_raw_public_key(
        cfg.clone(),
        StaticPsk::new(&KEYS),
        server_key,
        PinnedKeys::new(&pins_client),
        FuzzRng(1),
        Duration::ZERO,
    ) else {
        return;
    };
    if ecdsa {
        if let Ok(client) = Client::with_raw_public_key(
            cfg,
            Some(client_key),
            PinnedKeys::new(&pins_server),
            1u8,
            FuzzRng(2),
            Duration::ZERO,
        ) {
            run(server, client, ops, Identity::RawPublicKey(pins_server[0]));
        }
    } else if let Ok(client) = Client::new(
        cfg,
        b"id",
        b"0123456789abcdef",
        1u8,
        FuzzRng(2),
        Duration::ZERO,
    ) {
        let id = Identity::Psk(PskIdentity::new(b"id").unwrap());
        run(server, client, ops, id);
    }
});

fn run<T: TrustStore<u8>, U: TrustStore<u8>>(
    mut server: Endpoint<u8, StaticPsk<'static>, FuzzRng, 2, T>,
    mut client: Client<u8, FuzzRng, U>,
    ops: Vec<Op>,
    expect: Identity,
) {
    let mut life = Lifecycle::default();
    let mut now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    for op in ops.into_iter().take(64) {
        match op {
            Op::Inject {
                from_server,
                mut data,
            } => {
                let from = if from_server { 1 } else { 3 };
                let before = (client.is_connected(), client.stats());
                let _ = client.handle_datagram(now, from, &mut data);
                if !from_server {
                    assert_eq!(before, (client.is_connected(), client.stats()));
                    assert!(client.poll_event().is_none(), "a stranger's datagram");
                }
            }
            Op::ServerToClient { flip } => {
                if let Ok(Some(t)) = server.poll_transmit(now, &mut buf) {
                    let d = &mut buf[..t.len];
                    if let Some((i, x)) = flip {
                        if let Some(b) = d.get_mut(usize::from(i) % t.len.max(1)) {
                            *b ^= x;
                        }
                    }
                    let _ = client.handle_datagram(now, 1, d);
                }
            }
            Op::ClientToServer => {
                if let Ok(Some(t)) = client.poll_transmit(now, &mut buf) {
                    let _ = server.handle_datagram(now, 0, &mut buf[..t.len]);
                }
            }
            Op::Wait { millis } => {
                now += Duration::from_millis(u64::from(millis));
                server.handle_timeout(now);
                client.handle_timeout(now);
            }
            Op::Send { data } => {
                let _ = client.send(now, &data);
            }
            Op::Close => {
                let _ = client.close(now);
            }
        }
        while server.poll_event().is_some() {}
        while let Some(e) = client.poll_event() {
            life.observe(&e);
            if let Event::Connected { identity, .. } = &e {
                assert_eq!(identity.as_ref(), Some(&expect), "proven identity");
                assert_eq!(client.peer_identity(), Some(&expect));
            }
        }
        if !client.is_connected() && life.connected.is_empty() {
            assert_eq!(client.peer_identity(), None, "an identity before Finished");
        }
        let _ = client.poll_timeout();
        let mut got = [0u8; 256];
        while let Ok(Some(_)) = client.recv(&mut got) {}
    }
    // Drain everything still queued: must terminate.
    for _ in 0..1000 {
        match client.poll_transmit(now, &mut buf) {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
}
