//! cssf-dtls ECDHE_ECDSA handshakes with raw public keys (RFC 7250), both
//! sides in memory including the cookie exchange, server-only and mutual,
//! beside the sum of the P-256 operations they perform (their floor),
//! measured in the same run; prints the ratios and the bytes on the wire.
//!
//! Operations per handshake: two ephemeral key generations, two ECDH, one
//! ECDSA sign and one verify (ServerKeyExchange), plus one more sign and
//! verify (CertificateVerify) with mutual authentication.

use core::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use cssf_benches::cssf::{rpk_handshake, RpkKeys};
use cssf_dtls::CipherSuite;
use cssf_netsim::SimRng;
use p256::ecdh::EphemeralSecret;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::PublicKey;

/// The P-256 work of one handshake done directly with the p256 crate.
fn floor(keys: &RpkKeys, mutual: bool, rng: &mut SimRng) {
    let vk_server = VerifyingKey::from(&keys.pins_server[0]);
    let vk_client = VerifyingKey::from(&keys.pins_client[0]);
    let msg = [7u8; 133]; // client_random + server_random + ECDHE params
                          // two ephemeral keys (scalar and public point each)
    let a = EphemeralSecret::random(rng);
    let pa = a.public_key().to_encoded_point(false);
    let b = EphemeralSecret::random(rng);
    let pb = b.public_key().to_encoded_point(false);
    // ServerKeyExchange signed and verified
    let sig: DerSignature = keys.server.sign(&msg);
    let sig = Signature::from_der(sig.as_bytes()).unwrap();
    vk_server.verify(&msg, &sig).unwrap();
    // both ECDH (with the received point decoded and checked)
    let za = a.diffie_hellman(&PublicKey::from_sec1_bytes(pb.as_bytes()).unwrap());
    let zb = b.diffie_hellman(&PublicKey::from_sec1_bytes(pa.as_bytes()).unwrap());
    black_box((za.raw_secret_bytes()[0], zb.raw_secret_bytes()[0]));
    if mutual {
        // CertificateVerify signed and verified
        let sig: DerSignature = keys.client.sign(&msg[..32]);
        let sig = Signature::from_der(sig.as_bytes()).unwrap();
        vk_client.verify(&msg[..32], &sig).unwrap();
    }
}

fn handshakes(c: &mut Criterion) {
    let keys = RpkKeys::new();
    let suite = CipherSuite::EcdheEcdsaWithAes128Ccm8;
    let mut g = c.benchmark_group("dtls_ecdsa_handshake");
    g.sample_size(20);
    for mutual in [false, true] {
        let name = if mutual { "mutual" } else { "server-only" };
        let mut seed = 0;
        g.bench_function(format!("RPK {name} handshake"), |b| {
            b.iter(|| {
                seed += 2;
                black_box(rpk_handshake(&keys, suite, mutual, seed))
            })
        });
        let mut rng = SimRng::new(5);
        g.bench_function(format!("P-256 floor {name}"), |b| {
            b.iter(|| floor(&keys, mutual, &mut rng))
        });
    }
    g.finish();

    // Ratios from interleaved direct measurements in this run (median of
    // per-round ratios, robust to load from other processes).
    for mutual in [false, true] {
        let name = if mutual { "mutual" } else { "server-only" };
        let mut ratios = Vec::new();
        let mut seed = 1000;
        let mut rng = SimRng::new(9);
        for _ in 0..9 {
            let start = Instant::now();
            for _ in 0..20 {
                seed += 2;
                black_box(rpk_handshake(&keys, suite, mutual, seed));
            }
            let hs = start.elapsed().as_secs_f64();
            let start = Instant::now();
            for _ in 0..20 {
                floor(&keys, mutual, &mut rng);
            }
            let fl = start.elapsed().as_secs_f64();
            ratios.push(hs / fl);
        }
        ratios.sort_by(f64::total_cmp);
        for suite in [
            CipherSuite::EcdheEcdsaWithAes128Ccm8,
            CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
        ] {
            println!(
                "{suite:?} RPK {name}: {} bytes on the wire (both directions, with the cookie exchange)",
                rpk_handshake(&keys, suite, mutual, 3)
            );
        }
        println!(
            "RPK {name} handshake / P-256 floor: median {:.3}x (range {:.3}..{:.3}, target <= 1.15x)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
