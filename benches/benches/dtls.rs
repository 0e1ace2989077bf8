//! cssf-dtls benchmarks: PSK handshakes (both sides in memory) per suite,
//! and record protection of 64 B and 1 KiB beside the raw AEAD of the same
//! crate (the floor), with the ratio printed.

use core::hint::black_box;
use std::time::Instant;

use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U12, U8};
use ccm::Ccm;
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cssf_benches::cssf::{full_path, psk_pair};
use cssf_dtls::crypto::aead::RecordCipher;
use cssf_dtls::{AeadKind, CipherSuite};

fn handshakes(c: &mut Criterion) {
    let mut g = c.benchmark_group("dtls_handshake");
    for suite in CipherSuite::ALL
        .into_iter()
        .filter(|s| s.key_exchange().is_psk())
    {
        let (_, _, bytes) = psk_pair(suite, 1);
        println!("{suite:?}: {bytes} bytes on the wire including the cookie exchange");
        let mut seed = 0;
        g.bench_function(BenchmarkId::from_parameter(format!("{suite:?}")), |b| {
            b.iter(|| {
                seed += 2;
                black_box(psk_pair(suite, seed))
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

fn raw_ring_chacha(k: &ring::aead::LessSafeKey, buf: &mut [u8], n: usize) {
    let nonce = || ring::aead::Nonce::assume_unique_for_key([7u8; 12]);
    let aad = [1u8; 13];
    let tag = k
        .seal_in_place_separate_tag(nonce(), ring::aead::Aad::from(&aad), &mut buf[..n])
        .unwrap();
    buf[n..n + 16].copy_from_slice(tag.as_ref());
    black_box(
        k.open_in_place(nonce(), ring::aead::Aad::from(&aad), &mut buf[..n + 16])
            .unwrap(),
    );
}

fn record(rc: &RecordCipher, buf: &mut [u8], n: usize, seq: &mut u64) {
    *seq += 1;
    let len = rc.seal(*seq, 23, buf, n).unwrap();
    black_box(rc.open(*seq, 23, &mut buf[..len]).unwrap());
}

fn records(c: &mut Criterion) {
    let key16 = [3u8; 16];
    let key32 = [3u8; 32];
    let ccm = Aes128Ccm8::new_from_slice(&key16).unwrap();
    let chacha = ChaCha20Poly1305::new_from_slice(&key32).unwrap();
    let rc_ccm = RecordCipher::new(AeadKind::Aes128Ccm8, &key16, &[1; 4]).unwrap();
    let rc_chacha = RecordCipher::new(AeadKind::ChaCha20Poly1305, &key32, &[1; 12]).unwrap();
    let ring_chacha = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &key32).unwrap(),
    );
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
        g.bench_function("raw ring ChaCha20-Poly1305 seal+open", |b| {
            b.iter(|| raw_ring_chacha(&ring_chacha, &mut buf, n))
        });
        // With `--features ring` this record goes through ring.
        g.bench_function("cssf record ChaCha20 seal+open", |b| {
            b.iter(|| record(&rc_chacha, &mut buf, n, &mut seq))
        });
        let data = vec![0x5Au8; n];
        let (mut cl, mut sv, _) = psk_pair(CipherSuite::PskWithAes128Ccm8, 9);
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
        let (mut cl, mut sv, _) = psk_pair(CipherSuite::PskWithAes128Ccm8, 11);
        let data = vec![0x5Au8; n];
        let full = time(&mut || full_path(&mut cl, &mut sv, &data, &mut buf, &mut out));
        let rawc = time(&mut || raw_chacha(&chacha, &mut buf, n));
        let recc = time(&mut || record(&rc_chacha, &mut buf, n, &mut seq));
        let rawr = time(&mut || raw_ring_chacha(&ring_chacha, &mut buf, n));
        println!(
            "{n} B: record/raw throughput CCM_8 {:.1}%, ChaCha20 {:.1}%; full send..recv path / raw CCM_8 {:.1}%; raw ChaCha20-Poly1305 ring / RustCrypto time {:.2}x",
            100.0 * raw / rec,
            100.0 * rawc / recc,
            100.0 * raw / full,
            rawr / rawc
        );
    }
}

criterion_group!(benches, handshakes, records);
criterion_main!(benches);
