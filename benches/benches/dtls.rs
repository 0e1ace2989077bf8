//! cssf-dtls benchmarks: PSK handshakes (both sides in memory) per suite,
//! and record protection of 64 B and 1 KiB beside the raw AEAD of the same
//! crate (the floor), with the ratio printed.

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U12, U8};
use ccm::Ccm;
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cssf_dtls::crypto::aead::RecordCipher;
use cssf_dtls::{AeadKind, CipherSuite, Client, Config, Endpoint, StaticPsk};
use cssf_netsim::SimRng;

static KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"0123456789abcdef")];

fn connected_pair(
    suite: CipherSuite,
    seed: u64,
) -> (
    Client<u8, SimRng>,
    Endpoint<u8, StaticPsk<'static>, SimRng, 2>,
    usize,
) {
    let mut cfg = Config::default();
    cfg.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    let now = Duration::ZERO;
    let mut server =
        Endpoint::new(cfg.clone(), StaticPsk::new(&KEYS), SimRng::new(seed), now).unwrap();
    let mut client = Client::new(
        cfg,
        b"Client_identity",
        b"0123456789abcdef",
        2u8,
        SimRng::new(seed + 1),
        now,
    )
    .unwrap();
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
        if client.is_connected() {
            break;
        }
    }
    assert!(client.is_connected());
    (client, server, bytes)
}

fn handshakes(c: &mut Criterion) {
    let mut g = c.benchmark_group("dtls_handshake");
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        let (_, _, bytes) = connected_pair(suite, 1);
        println!("{suite:?}: {bytes} bytes on the wire including the cookie exchange");
        let mut seed = 0;
        g.bench_function(BenchmarkId::from_parameter(format!("{suite:?}")), |b| {
            b.iter(|| {
                seed += 2;
                black_box(connected_pair(suite, seed))
            })
        });
    }
    g.finish();
}

type Aes128Ccm8 = Ccm<Aes128, U8, U12>;

fn raw_ccm8(c: &Aes128Ccm8, buf: &mut [u8], n: usize) {
    let nonce = [7u8; 12];
    let aad = [1u8; 13];
    let tag = c
        .encrypt_in_place_detached(&nonce.into(), &aad, &mut buf[..n])
        .unwrap();
    c.decrypt_in_place_detached(&nonce.into(), &aad, &mut buf[..n], &tag)
        .unwrap();
}

fn raw_chacha(c: &ChaCha20Poly1305, buf: &mut [u8], n: usize) {
    let nonce = [7u8; 12];
    let aad = [1u8; 13];
    let tag = c
        .encrypt_in_place_detached(&nonce.into(), &aad, &mut buf[..n])
        .unwrap();
    c.decrypt_in_place_detached(&nonce.into(), &aad, &mut buf[..n], &tag)
        .unwrap();
}

fn record(rc: &RecordCipher, buf: &mut [u8], n: usize, seq: &mut u64) {
    *seq += 1;
    let len = rc.seal(*seq, 23, buf, n).unwrap();
    black_box(rc.open(*seq, 23, &mut buf[..len]).unwrap());
}

/// The full record path: client `send` + `poll_transmit`, server
/// `handle_datagram` + `recv`.
fn full_path(
    client: &mut Client<u8, SimRng>,
    server: &mut Endpoint<u8, StaticPsk<'static>, SimRng, 2>,
    data: &[u8],
    buf: &mut [u8],
    out: &mut [u8],
) {
    let now = Duration::ZERO;
    client.send(now, data).unwrap();
    let t = client.poll_transmit(now, buf).unwrap().unwrap();
    server.handle_datagram(now, 1, &mut buf[..t.len]).unwrap();
    let mut session = None;
    while let Some(e) = server.poll_event() {
        session = Some(e.handle());
    }
    black_box(server.recv(session.unwrap(), out).unwrap());
}

fn records(c: &mut Criterion) {
    let key16 = [3u8; 16];
    let key32 = [3u8; 32];
    let ccm = Aes128Ccm8::new_from_slice(&key16).unwrap();
    let chacha = ChaCha20Poly1305::new_from_slice(&key32).unwrap();
    let rc_ccm = RecordCipher::new(AeadKind::Aes128Ccm8, &key16, &[1; 4]).unwrap();
    let rc_chacha = RecordCipher::new(AeadKind::ChaCha20Poly1305, &key32, &[1; 12]).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    for n in [64usize, 1024] {
        let mut g = c.benchmark_group(format!("dtls_record_{n}B"));
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function("raw AES-128-CCM-8 seal+open", |b| {
            b.iter(|| raw_ccm8(&ccm, &mut buf, n))
        });
        let mut seq = 0;
        g.bench_function("cssf record CCM_8 seal+open", |b| {
            b.iter(|| record(&rc_ccm, &mut buf, n, &mut seq))
        });
        g.bench_function("raw ChaCha20-Poly1305 seal+open", |b| {
            b.iter(|| raw_chacha(&chacha, &mut buf, n))
        });
        g.bench_function("cssf record ChaCha20 seal+open", |b| {
            b.iter(|| record(&rc_chacha, &mut buf, n, &mut seq))
        });
        let data = vec![0x5Au8; n];
        let (mut cl, mut sv, _) = connected_pair(CipherSuite::PskWithAes128Ccm8, 9);
        g.bench_function("cssf CCM_8 send..recv (full path)", |b| {
            b.iter(|| full_path(&mut cl, &mut sv, &data, &mut buf, &mut out))
        });
        g.finish();
    }
    // Ratios from a direct measurement in the same run.
    for n in [64usize, 1024] {
        let time = |f: &mut dyn FnMut()| {
            for _ in 0..2000 {
                f();
            }
            let start = Instant::now();
            for _ in 0..20000 {
                f();
            }
            start.elapsed().as_secs_f64()
        };
        let mut seq = 0;
        let raw = time(&mut || raw_ccm8(&ccm, &mut buf, n));
        let rec = time(&mut || record(&rc_ccm, &mut buf, n, &mut seq));
        let (mut cl, mut sv, _) = connected_pair(CipherSuite::PskWithAes128Ccm8, 11);
        let data = vec![0x5Au8; n];
        let full = time(&mut || full_path(&mut cl, &mut sv, &data, &mut buf, &mut out));
        let rawc = time(&mut || raw_chacha(&chacha, &mut buf, n));
        let recc = time(&mut || record(&rc_chacha, &mut buf, n, &mut seq));
        println!(
            "{n} B: record/raw throughput CCM_8 {:.1}%, ChaCha20 {:.1}%; full send..recv path / raw CCM_8 {:.1}%",
            100.0 * raw / rec,
            100.0 * rawc / recc,
            100.0 * raw / full
        );
    }
}

criterion_group!(benches, handshakes, records);
criterion_main!(benches);
