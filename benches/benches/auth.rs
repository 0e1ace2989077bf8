//! cssf-auth: CWT verification beside its floor, in the same run.
//!
//! - ES256 CWT (COSE_Sign1) verification vs a bare p256 ECDSA verify of the
//!   same Sig_structure bytes (target: at most 1.05x).
//! - HMAC 256/256 CWT (COSE_Mac0) verification vs a bare HMAC-SHA256 of the
//!   same MAC_structure bytes (target: at most 2x), and vs the equal-work
//!   floor: an HMAC state keyed once and cloned per call, as cssf-auth keeps
//!   the inner and outer key blocks compressed once per key (RFC 2104 §4).
//!
//! Prints the ratios after the criterion groups (interleaved timing: best of
//! each side and the median of paired per-round ratios).

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use cssf_auth::cose::mac0::mac_structure_hmac;
use cssf_auth::cose::{Limits, Message};
use cssf_auth::issuer::{self, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{cwt, Algorithm, Bytes, CoseKey, KeyEntry, PopKey};
use hmac::Mac;
use p256::ecdsa::signature::Verifier;

struct Fixture {
    keys: Vec<KeyEntry>,
    es_token: Vec<u8>,
    es_tbs: Vec<u8>,
    es_sig: p256::ecdsa::Signature,
    es_vk: p256::ecdsa::VerifyingKey,
    mac_token: Vec<u8>,
    mac_tbs: Vec<u8>,
    /// HMAC-SHA256 with the key blocks already compressed.
    mac_keyed: hmac::Hmac<sha2::Sha256>,
}

fn structure(ctx: &str, protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x84, 0x60 | ctx.len() as u8];
    v.extend_from_slice(ctx.as_bytes());
    v.push(0x40 | protected.len() as u8);
    v.extend_from_slice(protected);
    v.push(0x40);
    if payload.len() < 256 {
        v.extend_from_slice(&[0x58, payload.len() as u8]);
    } else {
        v.extend_from_slice(&[0x59, (payload.len() >> 8) as u8, payload.len() as u8]);
    }
    v.extend_from_slice(payload);
    v
}

fn fixture() -> Fixture {
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let hk = CoseKey::hmac(Algorithm::Hmac256, &[0x11; 32]).unwrap();
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(b"client-kid").unwrap()),
        k: Bytes::from_slice(&[0x55; 16]).unwrap(),
    };
    let mut aif = [0u8; 64];
    let n = cssf_auth::Aif::emit(&[("/sensors/temp", 1), ("/actuators/led", 5)], &mut aif).unwrap();
    let c = ClaimsSet {
        iss: Some("as.example"),
        aud: Some("coaps://rs1.example"),
        exp: Some(1_800_000_000),
        iat: Some(1_700_000_000),
        cti: Some(b"cti-0001"),
        cnf: Some(CnfOut::Key(&pop)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let plen = c.emit(&mut p).unwrap();
    let payload = &p[..plen];
    let mut t = [0u8; 512];
    let es_len = issuer::sign1(
        &CoseKey::Es256Signing(sk.clone()),
        Some(b"as-es256"),
        payload,
        &mut t,
    )
    .unwrap();
    let es_token = t[..es_len].to_vec();
    let mac_len = issuer::mac0(&hk, Some(b"as-hmac"), payload, &mut t).unwrap();
    let mac_token = t[..mac_len].to_vec();
    let Message::Sign1(m) = Message::parse(&es_token, &Limits::default()).unwrap() else {
        panic!()
    };
    let es_tbs = structure("Signature1", m.protected, m.payload);
    let es_sig = p256::ecdsa::Signature::from_slice(m.signature).unwrap();
    let Message::Mac0(mm) = Message::parse(&mac_token, &Limits::default()).unwrap() else {
        panic!()
    };
    let mac_tbs = structure("MAC0", mm.protected, mm.payload);
    // the floors compute what the real verifier computes
    let mut h = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[0x11; 32]).unwrap();
    h.update(&mac_tbs);
    assert_eq!(
        h.finalize().into_bytes().as_slice(),
        mac_structure_hmac(&[0x11; 32], mm.protected, &[], mm.payload).unwrap()
    );
    let es_vk = *sk.verifying_key();
    es_vk.verify(&es_tbs, &es_sig).unwrap();
    Fixture {
        keys: vec![
            KeyEntry::with_kid(b"as-es256", CoseKey::Es256(es_vk)).unwrap(),
            KeyEntry::with_kid(b"as-hmac", hk).unwrap(),
        ],
        es_token,
        es_tbs,
        es_sig,
        es_vk,
        mac_token,
        mac_tbs,
        mac_keyed: hmac::Hmac::<sha2::Sha256>::new_from_slice(&[0x11; 32]).unwrap(),
    }
}

fn cwt_verify(f: &Fixture, token: &[u8]) {
    let mut buf = [0u8; 256];
    let b = &mut buf[..token.len()];
    b.copy_from_slice(token);
    let c = cwt::verify(b, &f.keys[..], Limits::default()).unwrap();
    black_box(c.cti);
}

fn bare_ecdsa(f: &Fixture) {
    f.es_vk.verify(black_box(&f.es_tbs), &f.es_sig).unwrap();
}

fn bare_hmac(f: &Fixture) {
    let mut h = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[0x11; 32]).unwrap();
    h.update(black_box(&f.mac_tbs));
    black_box(h.finalize().into_bytes());
}

/// The equal-work floor: the key blocks were compressed once (as
/// cssf-auth's per-key midstate), each MAC clones that state.
fn prekeyed_hmac(f: &Fixture) {
    let mut h = f.mac_keyed.clone();
    h.update(black_box(&f.mac_tbs));
    black_box(h.finalize().into_bytes());
}

fn ratio(name: &str, target: f64, iters: u32, mut ours: impl FnMut(), mut floor: impl FnMut()) {
    // Interleaved rounds: best time of each side, and the median of the
    // per-round ratios (each round times ours and the floor back to back, so
    // a burst of load from other processes hits both sides of one ratio).
    const ROUNDS: usize = 15;
    let (mut best_o, mut best_f) = (f64::MAX, f64::MAX);
    let mut paired = [0f64; ROUNDS];
    for r in paired.iter_mut() {
        let t = Instant::now();
        for _ in 0..iters {
            ours();
        }
        let o = t.elapsed().as_secs_f64() / f64::from(iters);
        let t = Instant::now();
        for _ in 0..iters {
            floor();
        }
        let f = t.elapsed().as_secs_f64() / f64::from(iters);
        best_o = best_o.min(o);
        best_f = best_f.min(f);
        *r = o / f;
    }
    paired.sort_by(|a, b| a.total_cmp(b));
    let median = paired[ROUNDS / 2];
    let target = if target > 0.0 {
        format!(" (target <= {target}x)")
    } else {
        String::new()
    };
    println!(
        "RATIO {name}: ours {:.2} us, floor {:.2} us, ratio {:.3}x (best/best), median paired {:.3}x{target}",
        best_o * 1e6,
        best_f * 1e6,
        best_o / best_f,
        median
    );
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("auth/es256");
    g.bench_function("cwt_verify_sign1", |b| {
        b.iter(|| cwt_verify(&f, &f.es_token))
    });
    g.bench_function("bare_p256_verify", |b| b.iter(|| bare_ecdsa(&f)));
    g.finish();
    let mut g = c.benchmark_group("auth/hmac256");
    g.bench_function("cwt_verify_mac0", |b| {
        b.iter(|| cwt_verify(&f, &f.mac_token))
    });
    g.bench_function("bare_hmac_sha256", |b| b.iter(|| bare_hmac(&f)));
    g.bench_function("prekeyed_hmac_sha256", |b| b.iter(|| prekeyed_hmac(&f)));
    g.finish();
    ratio(
        "ES256 CWT / bare ECDSA",
        1.05,
        200,
        || cwt_verify(&f, &f.es_token),
        || bare_ecdsa(&f),
    );
    breakdown();
    ratio(
        "HMAC CWT / bare HMAC",
        2.0,
        20_000,
        || cwt_verify(&f, &f.mac_token),
        || bare_hmac(&f),
    );
    ratio(
        "HMAC CWT / pre-keyed HMAC (equal work)",
        0.0,
        20_000,
        || cwt_verify(&f, &f.mac_token),
        || prekeyed_hmac(&f),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// Where the HMAC CWT time goes: each step of `cwt::verify` beside the same
/// bare HMAC floor.
fn breakdown() {
    let f = fixture();
    let lim = Limits::default();
    let Message::Mac0(m) = Message::parse(&f.mac_token, &lim).unwrap() else {
        panic!()
    };
    let payload = m.payload.to_vec();
    ratio(
        "  part: COSE_Mac0 parse + headers / bare HMAC",
        0.0,
        20000,
        || {
            black_box(Message::parse(black_box(&f.mac_token), &lim).unwrap());
        },
        || bare_hmac(&f),
    );
    ratio(
        "  part: claims parse (cnf, AIF) / bare HMAC",
        0.0,
        20000,
        || {
            black_box(cssf_auth::Claims::parse(black_box(&payload), &lim).unwrap());
        },
        || bare_hmac(&f),
    );
    ratio(
        "  part: MAC_structure HMAC + tag check / bare HMAC",
        0.0,
        20000,
        || {
            m.verify(&f.keys[1].key, &[]).unwrap();
        },
        || bare_hmac(&f),
    );
}
