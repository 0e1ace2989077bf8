//! A whole server endpoint fed arbitrary datagrams and time steps,
//! interleaved with a real client's (optionally corrupted) handshake so the
//! fuzzer reaches every state past the cookie exchange: PSK, and ECDHE_ECDSA
//! with raw public keys server-only and mutual (Certificate, signed
//! ServerKeyExchange, CertificateRequest, CertificateVerify). Half the runs
//! negotiate Connection IDs (tls12_cid records, sessions found by CID, the
//! client moving to other addresses); a restarted client offers its session
//! for resumption (abbreviated handshake, bounded cache).
//!
//! Beyond never panicking (memory is bounded by construction), it asserts
//! the endpoint's contract: the session lifecycle (one `Connected` and one
//! `Closed` per handle at most, nothing after `Closed`, handles never
//! reused); `poll_transmit` never fails with a large enough buffer (a
//! connection's trouble is its own); a `Connected` identity is what the
//! handshake can have proven in that mode (the PSK identity, no identity
//! for server-only raw public keys, the pinned client key; never a session
//! for an untrusted key); and injected datagrams never end an established
//! session.
#![no_main]

use core::time::Duration;

use arbitrary::Arbitrary;
use cssf_dtls::{
    CipherSuite, Client, Config, Endpoint, Event, Identity, PinnedKeys, Session, SigningKey,
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
    /// Raw bytes from one of a few addresses.
    Inject { from: u8, data: Vec<u8> },
    /// The client's next datagram, with one byte flipped at `flip` if set.
    ClientToServer { flip: Option<(u16, u8)> },
    /// The server's next datagram to the client.
    ServerToClient,
    /// Time passes.
    Wait { millis: u16 },
    /// Application data from the client.
    Send { data: Vec<u8> },
    /// The client's datagrams come from another address from now on.
    Move { to: u8 },
    /// The client restarts, offering its session if it has one.
    Restart,
}

static KEYS: [(&[u8], &[u8]); 1] = [(b"id", b"0123456789abcdef")];

fuzz_target!(|input: (u8, Vec<Op>)| {
    let (mode, ops) = input;
    let mut cfg = Config::default();
    cfg.retransmit_initial = Duration::from_millis(100);
    if mode & 4 != 0 {
        cfg.cid_len = Some(4);
    }
    let server_key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
    let client_key = SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let pins_server = [p256::PublicKey::from(server_key.verifying_key())];
    let pins_client = [p256::PublicKey::from(client_key.verifying_key())];
    // mode 0: PSK; 1: raw public keys, server-only; 2: mutual; 3: mutual
    // with a client key the server does not trust.
    let mode = mode % 4;
    if mode != 0 {
        let suites = [
            CipherSuite::EcdheEcdsaWithAes128Ccm8,
            CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
        ];
        cfg.suites = heapless::Vec::from_slice(&suites).unwrap();
        cfg.require_client_auth = mode >= 2;
    }
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
    if mode == 0 {
        let key = b"0123456789abcdef";
        let make = |session: Option<&Session>, seed: u64, now: Duration| match session {
            Some(s) => Client::resume(cfg.clone(), b"id", key, s, 1u8, FuzzRng(seed), now),
            None => Client::new(cfg.clone(), b"id", key, 1u8, FuzzRng(seed), now),
        };
        if let Ok(client) = make(None, 2, Duration::ZERO) {
            let psk = Identity::Psk(cssf_dtls::PskIdentity::new(b"id").unwrap());
            run(server, client, ops, &make, Some(Some(psk)));
        }
    } else {
        let own = match mode {
            2 => Some(client_key),
            3 => Some(SigningKey::from_bytes(&[11u8; 32].into()).unwrap()),
            _ => None,
        };
        let make = |session: Option<&Session>, seed: u64, now: Duration| {
            let (own, trust) = (own.clone(), PinnedKeys::new(&pins_server));
            match session {
                Some(s) => Client::resume_with_raw_public_key(
                    cfg.clone(),
                    own,
                    trust,
                    s,
                    1u8,
                    FuzzRng(seed),
                    now,
                ),
                None => {
                    Client::with_raw_public_key(cfg.clone(), own, trust, 1u8, FuzzRng(seed), now)
                }
            }
        };
        // What a session may have proven: nothing (server-only), the
        // pinned client key; an untrusted key never connects.
        let expect = match mode {
            1 => Some(None),
            2 => Some(Some(Identity::RawPublicKey(pins_client[0]))),
            _ => None,
        };
        if let Ok(client) = make(None, 2, Duration::ZERO) {
            run(server, client, ops, &make, expect);
        }
    }
});

type MakeClient<'a, U> = dyn Fn(Option<&Session>, u64, Duration) -> Result<Client<u8, FuzzRng, U>, cssf_dtls::Error>
    + 'a;

/// `expect`: the identity every `Connected` must carry (`None`: no
/// session may connect).
fn run<T: TrustStore<u8>, U: TrustStore<u8>>(
    mut server: Endpoint<u8, StaticPsk<'static>, FuzzRng, 2, T>,
    mut client: Client<u8, FuzzRng, U>,
    ops: Vec<Op>,
    make: &MakeClient<'_, U>,
    expect: Option<Option<Identity>>,
) {
    let mut life = Lifecycle::default();
    let mut client_life = Lifecycle::default();
    let mut now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut client_addr = 0u8;
    let mut session = None;
    let mut restarts = 0u64;
    for op in ops.into_iter().take(64) {
        let injected = matches!(op, Op::Inject { .. });
        match op {
            Op::Inject { from, mut data } => {
                let _ = server.handle_datagram(now, from % 4, &mut data);
            }
            Op::ClientToServer { flip } => {
                if let Ok(Some(t)) = client.poll_transmit(now, &mut buf) {
                    let d = &mut buf[..t.len];
                    if let Some((i, x)) = flip {
                        if let Some(b) = d.get_mut(usize::from(i) % t.len.max(1)) {
                            *b ^= x;
                        }
                    }
                    let _ = server.handle_datagram(now, client_addr, d);
                }
            }
            Op::ServerToClient => match server.poll_transmit(now, &mut buf) {
                Ok(Some(t)) if t.to == client_addr => {
                    let _ = client.handle_datagram(now, 1, &mut buf[..t.len]);
                }
                Ok(_) => {}
                Err(e) => panic!("poll_transmit failed: {e:?}"),
            },
            Op::Wait { millis } => {
                now += Duration::from_millis(u64::from(millis));
                server.handle_timeout(now);
                client.handle_timeout(now);
            }
            Op::Send { data } => {
                let _ = client.send(now, &data);
            }
            Op::Move { to } => client_addr = to % 4,
            Op::Restart => {
                session = client.session().or(session);
                restarts += 1;
                if let Ok(c) = make(session.as_ref(), 2 + restarts, now) {
                    client = c;
                    client_life = Lifecycle::default();
                }
            }
        }
        while let Some(e) = server.poll_event() {
            life.observe(&e);
            match &e {
                Event::Connected { identity, .. } => match &expect {
                    Some(want) => assert_eq!(identity, want, "proven identity"),
                    None => panic!("a session connected with an untrusted key: {e:?}"),
                },
                Event::Closed { handle, reason, .. } => assert!(
                    !(injected && life.connected.contains(&handle.raw())),
                    "an injected datagram ended an established session: {reason:?}"
                ),
                _ => {}
            }
        }
        while let Some(e) = client.poll_event() {
            client_life.observe(&e);
        }
        let _ = server.poll_timeout();
    }
    // Drain everything still queued: must terminate.
    for _ in 0..1000 {
        match server.poll_transmit(now, &mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("poll_transmit failed: {e:?}"),
        }
    }
}
