//! cssf-coap beside coap-lite 0.13 on the same messages, in the same run.
//!
//! Cases: (a) CON GET with a 4-byte token, three Uri-Path options and one
//! Uri-Query; (b) ACK 2.05 with Content-Format, Max-Age, ETag and a 64-byte
//! payload. "parse" decodes the datagram and visits every option value
//! (cssf: `Message::parse` + option iterator; coap-lite: `Packet::from_bytes`,
//! which decodes all options into its own collections). "emit" serialises an
//! already-built message (cssf: `MessageBuilder::emit` into a stack buffer;
//! coap-lite: `Packet::to_bytes`). Both produce identical bytes (checked).
//!
//! After the criterion groups a fixed-size run prints, per case,
//! `cssf X ns, coap-lite Y ns, ratio Y/X`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use coap_lite::Packet;
use criterion::{criterion_group, criterion_main, Criterion};
use cssf_coap::{Code, ContentFormat, Message, MessageBuilder, MessageType, OptionNumber};

const PAYLOAD: [u8; 64] = [0x5a; 64];

fn get_builder() -> MessageBuilder<'static, 8> {
    let mut b = MessageBuilder::new(MessageType::Con, Code::GET, 0x1234);
    b.token(&[0xde, 0xad, 0xbe, 0xef]).unwrap();
    b.uri_path("api/sensors/temp").unwrap();
    b.add_str(OptionNumber::URI_QUERY, "unit=C").unwrap();
    b
}

fn rsp_builder() -> MessageBuilder<'static, 8> {
    let mut b = MessageBuilder::new(MessageType::Ack, Code::CONTENT, 0x1234);
    b.token(&[0xde, 0xad, 0xbe, 0xef]).unwrap();
    b.content_format(ContentFormat::SENML_CBOR).unwrap();
    b.add_uint(OptionNumber::MAX_AGE, 60).unwrap();
    b.add_option(OptionNumber::ETAG, &[1, 2, 3, 4]).unwrap();
    b.payload(&PAYLOAD);
    b
}

struct Case {
    name: &'static str,
    builder: MessageBuilder<'static, 8>,
    bytes: Vec<u8>,
    lite: Packet,
}

fn cases() -> Vec<Case> {
    [("GET", get_builder()), ("2.05", rsp_builder())]
        .into_iter()
        .map(|(name, builder)| {
            let mut bytes = vec![0u8; builder.buffer_len()];
            builder.emit(&mut bytes).unwrap();
            let lite = Packet::from_bytes(&bytes).unwrap();
            assert_eq!(
                lite.to_bytes().unwrap(),
                bytes,
                "coap-lite re-emits {name} differently"
            );
            Case {
                name,
                builder,
                bytes,
                lite,
            }
        })
        .collect()
}

#[inline(always)]
fn cssf_parse(bytes: &[u8]) -> usize {
    let m = Message::parse(bytes).unwrap();
    let mut acc = m.token().len() + m.payload().len();
    for o in m.options() {
        acc += usize::from(o.number.0) + o.value.len();
    }
    acc
}

#[inline(always)]
fn lite_parse(bytes: &[u8]) -> usize {
    let p = Packet::from_bytes(bytes).unwrap();
    let mut acc = p.get_token().len() + p.payload.len();
    for (n, vals) in p.options() {
        for v in vals {
            acc += *n as usize + v.len();
        }
    }
    acc
}

#[inline(always)]
fn cssf_emit(b: &MessageBuilder<'static, 8>) -> usize {
    let mut out = [0u8; 128];
    let n = b.emit(&mut out).unwrap();
    black_box(&out);
    n
}

#[inline(always)]
fn lite_emit(p: &Packet) -> usize {
    p.to_bytes().unwrap().len()
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        let mut g = c.benchmark_group(format!("coap {}", case.name));
        g.bench_function("parse/cssf", |b| {
            b.iter(|| cssf_parse(black_box(&case.bytes)))
        });
        g.bench_function("parse/coap-lite", |b| {
            b.iter(|| lite_parse(black_box(&case.bytes)))
        });
        g.bench_function("emit/cssf", |b| {
            b.iter(|| cssf_emit(black_box(&case.builder)))
        });
        g.bench_function("emit/coap-lite", |b| {
            b.iter(|| lite_emit(black_box(&case.lite)))
        });
        g.finish();
    }
    summary();
}

/// Best-of-7 mean ns per call over `n` calls.
fn time(n: u32, mut f: impl FnMut() -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        let mut acc = 0usize;
        for _ in 0..n {
            acc = acc.wrapping_add(f());
        }
        black_box(acc);
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    best
}

fn summary() {
    const N: u32 = 200_000;
    println!("\ncssf-coap vs coap-lite 0.13 (same run, best of 7 x {N} calls):");
    for case in cases() {
        let bytes = &case.bytes;
        let rows = [
            (
                "parse",
                time(N, || cssf_parse(black_box(bytes))),
                time(N, || lite_parse(black_box(bytes))),
            ),
            (
                "emit",
                time(N, || cssf_emit(black_box(&case.builder))),
                time(N, || lite_emit(black_box(&case.lite))),
            ),
        ];
        for (what, ours, lite) in rows {
            println!(
                "coap {what} {} ({} bytes): cssf {ours:.1} ns, coap-lite {lite:.1} ns, ratio {:.1}x",
                case.name,
                bytes.len(),
                lite / ours
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
