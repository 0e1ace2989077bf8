//! CSSF beside OpenSSL's DTLS 1.2, in the same criterion run: full
//! handshakes per suite (both sides in memory, in one thread; endpoint
//! construction included on both sides, see `cssf_benches::cssf` and
//! `cssf_benches::ossl`) with the bytes on the wire, and one record of
//! application data (64 B and 1 KiB) from the client's send to the
//! server's receive. After the run it prints one line per figure: both
//! medians as criterion wrote them, their ratio (CSSF / OpenSSL time) and
//! the bytes on the wire.
//!
//! Suites: PSK-AES128-CCM8, PSK-CHACHA20-POLY1305,
//! ECDHE-PSK-CHACHA20-POLY1305 and ECDHE-ECDSA-AES128-CCM8. OpenSSL has no
//! ECDHE-PSK suite with CCM_8, so that one is not compared; it has no raw
//! public keys either, so its ECDHE-ECDSA handshakes carry a P-256
//! certificate where CSSF's carry the raw key. CSSF's server always does
//! the cookie exchange; OpenSSL's is measured with and without it.

use core::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_main, BenchmarkGroup, Criterion, Throughput};
use cssf_benches::cssf::{full_path, psk_pair, rpk_handshake, RpkKeys};
use cssf_benches::estimates::{fmt_ns, median_ns};
use cssf_benches::ossl::{self, Auth, Peers};
use cssf_dtls::CipherSuite;

const HS: &str = "openssl_dtls_handshake";
const HS_ECDSA: &str = "openssl_dtls_ecdsa_handshake";

const PSK_SUITES: [(CipherSuite, &str); 3] = [
    (CipherSuite::PskWithAes128Ccm8, "PSK-AES128-CCM8"),
    (
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        "PSK-CHACHA20-POLY1305",
    ),
    (
        CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
        "ECDHE-PSK-CHACHA20-POLY1305",
    ),
];

const ECDSA: &str = "ECDHE-ECDSA-AES128-CCM8";

const RECORD_SUITES: [(CipherSuite, &str, &str); 2] = [
    (CipherSuite::PskWithAes128Ccm8, "CCM_8", "PSK-AES128-CCM8"),
    (
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        "ChaCha20-Poly1305",
        "PSK-CHACHA20-POLY1305",
    ),
];

const SIZES: [usize; 2] = [64, 1024];

fn cookie_name(cookie: bool) -> &'static str {
    if cookie {
        "cookie"
    } else {
        "no-cookie"
    }
}

fn mutual_name(mutual: bool) -> &'static str {
    if mutual {
        "mutual"
    } else {
        "server-only"
    }
}

fn bench_openssl<M: criterion::measurement::Measurement>(
    g: &mut BenchmarkGroup<'_, M>,
    id: String,
    peers: &Peers,
) {
    g.bench_function(id, |b| b.iter(|| black_box(peers.handshake().bytes)));
}

fn handshakes(c: &mut Criterion) {
    let mut g = c.benchmark_group(HS);
    for (suite, name) in PSK_SUITES {
        let mut seed = 0;
        g.bench_function(format!("cssf {name}"), |b| {
            b.iter(|| {
                seed += 2;
                black_box(psk_pair(suite, seed))
            })
        });
        for cookie in [true, false] {
            let peers = Peers::new(name, Auth::Psk, cookie);
            let id = format!("openssl {name} {}", cookie_name(cookie));
            bench_openssl(&mut g, id, &peers);
        }
    }
    g.finish();

    let keys = RpkKeys::new();
    let mut g = c.benchmark_group(HS_ECDSA);
    g.sample_size(30);
    for mutual in [false, true] {
        let m = mutual_name(mutual);
        let mut seed = 0;
        g.bench_function(format!("cssf {ECDSA} RPK {m}"), |b| {
            b.iter(|| {
                seed += 2;
                black_box(rpk_handshake(
                    &keys,
                    CipherSuite::EcdheEcdsaWithAes128Ccm8,
                    mutual,
                    seed,
                ))
            })
        });
        for cookie in [true, false] {
            let peers = Peers::new(ECDSA, Auth::Ecdsa { mutual }, cookie);
            let id = format!("openssl {ECDSA} cert {m} {}", cookie_name(cookie));
            bench_openssl(&mut g, id, &peers);
        }
    }
    g.finish();
}

fn record_group(n: usize) -> String {
    format!("openssl_dtls_record_{n}B")
}

fn records(c: &mut Criterion) {
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    for n in SIZES {
        let data = vec![0x5Au8; n];
        let mut g = c.benchmark_group(record_group(n));
        g.throughput(Throughput::Bytes(n as u64));
        for (suite, aead, name) in RECORD_SUITES {
            let (mut cl, mut sv, _) = psk_pair(suite, 9);
            g.bench_function(format!("cssf {aead} send..recv"), |b| {
                b.iter(|| full_path(&mut cl, &mut sv, &data, &mut buf, &mut out))
            });
            let mut pair = Peers::new(name, Auth::Psk, false).handshake();
            assert_eq!(pair.record(&data, &mut out), n);
            assert_eq!(&out[..n], &data[..]);
            g.bench_function(format!("openssl {aead} write..read"), |b| {
                b.iter(|| black_box(pair.record(&data, &mut out)))
            });
        }
        g.finish();
    }
}

/// One side-by-side line: CSSF's median, OpenSSL's, their ratio, bytes.
fn line(what: &str, cssf: Option<f64>, openssl: Option<f64>, bytes: Option<(usize, usize)>) {
    let (Some(a), Some(b)) = (cssf, openssl) else {
        println!("vs OpenSSL: {what}: not measured in this run");
        return;
    };
    let bytes = bytes
        .map(|(x, y)| {
            format!(
                "; bytes on the wire CSSF {x} B, OpenSSL {y} B ({:.2}x)",
                x as f64 / y as f64
            )
        })
        .unwrap_or_default();
    println!(
        "vs OpenSSL: {what}: CSSF {} | OpenSSL {} | CSSF/OpenSSL time {:.2}x{bytes}",
        fmt_ns(a),
        fmt_ns(b),
        a / b
    );
}

fn report(start: SystemTime) {
    println!();
    println!(
        "CSSF vs {} (criterion medians of this run; ratio = CSSF / OpenSSL time, below 1 = CSSF faster):",
        ossl::version()
    );
    println!(
        "CSSF's P-256 (ECDHE, ECDSA) through the {} crypto provider",
        cssf_benches::cssf::config(CipherSuite::PskWithAes128Ccm8)
            .crypto
            .name
    );
    for (suite, name) in PSK_SUITES {
        let (_, _, cssf_bytes) = psk_pair(suite, 1);
        let cssf = median_ns(HS, &format!("cssf {name}"), start);
        for cookie in [true, false] {
            let c = cookie_name(cookie);
            let ob = Peers::new(name, Auth::Psk, cookie).handshake().bytes;
            let o = median_ns(HS, &format!("openssl {name} {c}"), start);
            let what = if cookie {
                format!("{name} handshake, cookie exchange on both")
            } else {
                format!("{name} handshake, CSSF with its cookie exchange, OpenSSL without")
            };
            line(&what, cssf, o, Some((cssf_bytes, ob)));
        }
    }
    let keys = RpkKeys::new();
    for mutual in [false, true] {
        let m = mutual_name(mutual);
        let cssf_bytes = rpk_handshake(&keys, CipherSuite::EcdheEcdsaWithAes128Ccm8, mutual, 1);
        let cssf = median_ns(HS_ECDSA, &format!("cssf {ECDSA} RPK {m}"), start);
        for cookie in [true, false] {
            let c = cookie_name(cookie);
            let ob = Peers::new(ECDSA, Auth::Ecdsa { mutual }, cookie)
                .handshake()
                .bytes;
            let o = median_ns(HS_ECDSA, &format!("openssl {ECDSA} cert {m} {c}"), start);
            let what = if cookie {
                format!("{ECDSA} {m} handshake (CSSF raw public key, OpenSSL certificate), cookie exchange on both")
            } else {
                format!("{ECDSA} {m} handshake (CSSF raw public key, OpenSSL certificate), CSSF with its cookie exchange, OpenSSL without")
            };
            line(&what, cssf, o, Some((cssf_bytes, ob)));
        }
    }
    println!("vs OpenSSL: ECDHE-PSK-AES128-CCM8: not compared (OpenSSL has no ECDHE-PSK suite with CCM_8)");
    for n in SIZES {
        let g = record_group(n);
        for (_, aead, _) in RECORD_SUITES {
            line(
                &format!("{aead} record {n} B, send to receive"),
                median_ns(&g, &format!("cssf {aead} send..recv"), start),
                median_ns(&g, &format!("openssl {aead} write..read"), start),
                None,
            );
        }
    }
}

fn benches() {
    let start = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    handshakes(&mut c);
    records(&mut c);
    c.final_summary();
    report(start);
}

criterion_main!(benches);
