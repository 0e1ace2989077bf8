//! cssf-dtls session resumption: an abbreviated handshake beside the full
//! handshake it replaces, both sides in memory including the cookie
//! exchange, measured in the same run; prints the ratio and the bytes on
//! the wire. PSK (TLS_PSK_WITH_AES_128_CCM_8) and raw public keys
//! (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, server-only authentication), where
//! resumption skips every P-256 operation.

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use cssf_dtls::{
    CipherSuite, Client, Config, Endpoint, PinnedKeys, RejectAll, Session, SigningKey, StaticPsk,
    TrustStore,
};
use cssf_netsim::SimRng;
use p256::PublicKey;

static KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"0123456789abcdef")];
const ID: &[u8] = b"Client_identity";
const PSK: &[u8] = b"0123456789abcdef";

fn config(suite: CipherSuite) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    c
}

/// Drives one handshake between `client` (address 1) and `server`; returns
/// the bytes exchanged.
fn drive<T: TrustStore<u8>>(client: &mut Client<u8, SimRng, T>, server: &mut Server) -> usize {
    let now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut bytes = 0;
    for _ in 0..10 {
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            bytes += t.len;
            server.handle_datagram(now, 1, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            bytes += t.len;
            client.handle_datagram(now, 2, &mut buf[..t.len]).unwrap();
        }
        // The driver's order: drain the events too, or the server keeps
        // the slots of the sessions this client replaced (ended, not yet
        // reported) and refuses the next handshake.
        while server.poll_event().is_some() {}
        if client.is_connected()
            && server
                .session_handle(&1)
                .is_some_and(|h| server.is_connected(h))
        {
            return bytes;
        }
    }
    panic!("handshake did not complete");
}

type Server = Endpoint<u8, StaticPsk<'static>, SimRng, 2, RejectAll>;

fn psk_server() -> Server {
    let s = config(CipherSuite::PskWithAes128Ccm8);
    Endpoint::new(s, StaticPsk::new(&KEYS), SimRng::new(1), Duration::ZERO).unwrap()
}

fn psk_full(server: &mut Server, seed: u64) -> (usize, Option<Session>) {
    let cfg = config(CipherSuite::PskWithAes128Ccm8);
    let mut c = Client::new(cfg, ID, PSK, 2u8, SimRng::new(seed), Duration::ZERO).unwrap();
    let n = drive(&mut c, server);
    (n, c.session())
}

fn psk_resumed(server: &mut Server, session: &Session, seed: u64) -> usize {
    let cfg = config(CipherSuite::PskWithAes128Ccm8);
    let mut c = Client::resume(
        cfg,
        ID,
        PSK,
        session,
        2u8,
        SimRng::new(seed),
        Duration::ZERO,
    )
    .unwrap();
    let n = drive(&mut c, server);
    assert!(c.is_resumed());
    n
}

fn rpk_server(key: &SigningKey) -> Server {
    let cfg = config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
    Endpoint::with_raw_public_key(
        cfg,
        StaticPsk::new(&[]),
        key.clone(),
        RejectAll,
        SimRng::new(3),
        Duration::ZERO,
    )
    .unwrap()
}

fn rpk_client(
    pins: &'static [PublicKey],
    session: Option<&Session>,
    seed: u64,
) -> Client<u8, SimRng, PinnedKeys<'static>> {
    let cfg = config(CipherSuite::EcdheEcdsaWithAes128Ccm8);
    let (trust, rng) = (PinnedKeys::new(pins), SimRng::new(seed));
    match session {
        Some(s) => {
            Client::resume_with_raw_public_key(cfg, None, trust, s, 2u8, rng, Duration::ZERO)
        }
        None => Client::with_raw_public_key(cfg, None, trust, 2u8, rng, Duration::ZERO),
    }
    .unwrap()
}

/// Mean time per call of `f` over `n` calls.
fn mean(n: u32, mut f: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        f(u64::from(i) + 100);
    }
    start.elapsed() / n
}

fn resumption(c: &mut Criterion) {
    // PSK.
    let mut full_server = psk_server();
    let mut resume_server = psk_server();
    let (full_bytes, _) = psk_full(&mut full_server, 10);
    let session = psk_full(&mut resume_server, 11).1.unwrap();
    let resumed_bytes = psk_resumed(&mut resume_server, &session, 12);
    let t_full = mean(200, |s| {
        black_box(psk_full(&mut full_server, s));
    });
    let t_res = mean(200, |s| {
        black_box(psk_resumed(&mut resume_server, &session, s));
    });
    println!(
        "PSK AES-128-CCM-8: full {t_full:?} ({full_bytes} B), resumed {t_res:?} ({resumed_bytes} B), ratio resumed/full {:.2}",
        t_res.as_secs_f64() / t_full.as_secs_f64()
    );
    let mut g = c.benchmark_group("dtls_resumption_psk_ccm8");
    let mut seed = 1000;
    g.bench_function("full handshake", |b| {
        b.iter(|| {
            seed += 1;
            black_box(psk_full(&mut full_server, seed))
        })
    });
    g.bench_function("abbreviated handshake", |b| {
        b.iter(|| {
            seed += 1;
            black_box(psk_resumed(&mut resume_server, &session, seed))
        })
    });
    g.finish();

    // Raw public keys, server-only authentication.
    let key = SigningKey::random(&mut SimRng::new(7));
    let pins: &'static [PublicKey] = Box::leak(Box::new([PublicKey::from(key.verifying_key())]));
    let mut full_server = rpk_server(&key);
    let mut resume_server = rpk_server(&key);
    let mut first = rpk_client(pins, None, 20);
    let full_bytes = drive(&mut first, &mut full_server);
    let mut first = rpk_client(pins, None, 21);
    drive(&mut first, &mut resume_server);
    let session = first.session().unwrap();
    let mut again = rpk_client(pins, Some(&session), 22);
    let resumed_bytes = drive(&mut again, &mut resume_server);
    assert!(again.is_resumed());
    let t_full = mean(50, |s| {
        black_box(drive(&mut rpk_client(pins, None, s), &mut full_server));
    });
    let t_res = mean(50, |s| {
        black_box(drive(
            &mut rpk_client(pins, Some(&session), s),
            &mut resume_server,
        ));
    });
    println!(
        "ECDHE-ECDSA AES-128-CCM-8 (RPK): full {t_full:?} ({full_bytes} B), resumed {t_res:?} ({resumed_bytes} B), ratio resumed/full {:.3}",
        t_res.as_secs_f64() / t_full.as_secs_f64()
    );
    let mut g = c.benchmark_group("dtls_resumption_ecdsa_ccm8");
    g.bench_function("full handshake", |b| {
        b.iter(|| {
            seed += 1;
            black_box(drive(&mut rpk_client(pins, None, seed), &mut full_server))
        })
    });
    g.bench_function("abbreviated handshake", |b| {
        b.iter(|| {
            seed += 1;
            black_box(drive(
                &mut rpk_client(pins, Some(&session), seed),
                &mut resume_server,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, resumption);
criterion_main!(benches);
