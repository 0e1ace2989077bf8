//! The crypto provider's Cortex-M4 backend (`cssf_provider::cm4`, P-256
//! key generation and ECDH through `p256-cm4`'s assembly, ECDSA through
//! RustCrypto) on the Cortex-M4:
//!
//! 1. the RFC 5903 §8.1 ECDH P-256 vectors through its key generation
//!    from a scalar, static and ephemeral ECDH; a point off the curve is
//!    refused; keys generated from the same generator match RustCrypto's;
//! 2. a full DTLS 1.2 ECDHE-ECDSA handshake (client and server in memory,
//!    raw public keys both ways, mutual authentication) with
//!    `Config::crypto = &cm4::PROVIDER` on both sides, then once more
//!    with the backend wrapped in a call counter to show that both sides'
//!    ECDHE went through it.
//!
//! With the `p256-cm4-ecdsa` feature (for a board: under QEMU it faults,
//! see the firmware's README), it then runs the RFC 6979 A.2.5 vectors
//! and the handshake through `cm4::PROVIDER_FULL`, whose ECDSA is
//! `p256-cm4`'s too.
//!
//! Each step prints one line; the exit status says whether all passed.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cssf_dtls::provider::counting::CountingP256;
use cssf_dtls::provider::{
    cm4, rustcrypto, CryptoProvider, EphemeralSecret, Error, PublicKey, SecretKey,
};
use cssf_dtls::{
    CipherSuite, Client, Config as DtlsConfig, Endpoint as DtlsEndpoint, Event as DtlsEvent,
    Identity, PinnedKeys, SigningKey,
};
use cssf_firmware::{fail, line, put, put_num, stack, DemoRng, CLIENT_ADDR, NOW, SERVER_ADDR};

const SERVER_SK: [u8; 32] = *b"server P-256 private key, demo!!";
const CLIENT_SK: [u8; 32] = *b"client P-256 private key, demo!!";

// RFC 5903 §8.1 (ECDH with P-256): the initiator's scalar i and point gi,
// the responder's r and gr, the shared x coordinate.
const I: [u8; 32] = hex32("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433");
const GIX: [u8; 32] = hex32("dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180");
const GIY: [u8; 32] = hex32("5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3");
const R: [u8; 32] = hex32("c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53");
const GRX: [u8; 32] = hex32("d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63");
const GRY: [u8; 32] = hex32("56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab");
const GIRX: [u8; 32] = hex32("d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de");

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nib(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

fn point(x: &[u8; 32], y: &[u8; 32]) -> Result<PublicKey, Error> {
    let mut p = [4u8; 65];
    p[1..33].copy_from_slice(x);
    p[33..].copy_from_slice(y);
    PublicKey::from_sec1(&p)
}

/// The backend wrapped in a call counter, for the second handshake.
static COUNTED: CountingP256 = CountingP256::new(&cm4::Cm4P256);
static COUNTED_PROVIDER: CryptoProvider = CryptoProvider {
    name: "p256-cm4, counted",
    p256: &COUNTED,
    ..cm4::PROVIDER
};

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware p256-cm4: the crypto provider's Cortex-M4 backend"]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);
    if let Err(e) = vectors() {
        fail(e);
    }
    line(&[b"p256-cm4: RFC 5903 8.1 ECDH vectors pass (key generation from the scalars, static and ephemeral ECDH)"]);
    if let Err(e) = refusals() {
        fail(e);
    }
    line(&[b"p256-cm4: a point off the curve is refused, a zero scalar is refused"]);
    if let Err(e) = same_keys() {
        fail(e);
    }
    line(&[b"p256-cm4: keys generated from the same generator match RustCrypto's"]);

    match ecdhe_ecdsa(&cm4::PROVIDER) {
        Ok(n) => {
            put(b"p256-cm4: dtls ecdhe-ecdsa handshake complete with Config::crypto = cm4::PROVIDER on both sides (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, raw public keys, mutual), ");
            put_num(n);
            line(&[b" datagrams"]);
        }
        Err(e) => fail(e),
    }
    COUNTED.reset();
    if let Err(e) = ecdhe_ecdsa(&COUNTED_PROVIDER) {
        fail(e);
    }
    let c = COUNTED.counts();
    // Each side: one ephemeral key, one ECDH with the other's; the server
    // signs its ServerKeyExchange, the client its CertificateVerify, each
    // verifies the other's.
    if c.ephemeral != 2 || c.agree_ephemeral != 2 {
        fail(b"p256-cm4: the handshake's ECDHE did not go through the backend");
    }
    put(b"p256-cm4: the backend did both sides' ECDHE: ");
    put_num(c.ephemeral as usize);
    put(b" ephemeral keys, ");
    put_num(c.agree_ephemeral as usize);
    put(b" ECDH; signatures (RustCrypto) ");
    put_num((c.sign + c.sign_digest) as usize);
    put(b" signed, ");
    put_num((c.verify + c.verify_digest) as usize);
    line(&[b" verified"]);

    #[cfg(feature = "p256-cm4-ecdsa")]
    full::run();

    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}

/// A fault fails the run instead of hanging it, with the faulting address
/// and the Configurable Fault Status Register (bit 16: undefined
/// instruction, what QEMU makes of `p256-cm4`'s ECDSA multiplier).
#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    const CFSR: usize = 0xE000_ED28;
    // SAFETY: a read of a System Control Block register.
    let cfsr = unsafe { core::ptr::read_volatile(CFSR as *const u32) };
    put(b"hard fault at pc 0x");
    cssf_firmware::put_hex(&frame.pc().to_be_bytes());
    put(b", CFSR 0x");
    cssf_firmware::put_hex(&cfsr.to_be_bytes());
    line(&[]);
    fail(b"hard fault")
}

/// `cm4::PROVIDER_FULL`: ECDSA through `p256-cm4` (for boards).
#[cfg(feature = "p256-cm4-ecdsa")]
mod full {
    use super::*;

    // RFC 6979 A.2.5: P-256 key x, public (ux, uy), SHA-256 signatures of
    // "sample" and "test".
    const X: [u8; 32] = hex32("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
    const UX: [u8; 32] = hex32("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6");
    const UY: [u8; 32] = hex32("7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
    const SAMPLE_R: [u8; 32] =
        hex32("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716");
    const SAMPLE_S: [u8; 32] =
        hex32("f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
    const TEST_R: [u8; 32] =
        hex32("f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367");
    const TEST_S: [u8; 32] =
        hex32("019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083");

    pub(super) fn run() {
        line(&[b"p256-cm4 ecdsa: running cm4::PROVIDER_FULL (p256-cm4 ECDSA; QEMU cannot execute it: a fault here under QEMU is expected)"]);
        if let Err(e) = rfc6979() {
            fail(e);
        }
        line(&[b"p256-cm4 ecdsa: RFC 6979 A.2.5 signatures equal byte for byte, verified; a changed message refused"]);
        match ecdhe_ecdsa(&cm4::PROVIDER_FULL) {
            Ok(_) => line(&[b"p256-cm4 ecdsa: dtls ecdhe-ecdsa handshake complete with cm4::PROVIDER_FULL on both sides"]),
            Err(e) => fail(e),
        }
    }

    fn sig(r: &[u8; 32], s: &[u8; 32]) -> cssf_dtls::provider::Signature {
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(r);
        rs[32..].copy_from_slice(s);
        cssf_dtls::provider::Signature::from_bytes(rs)
    }

    fn rfc6979() -> Result<(), &'static [u8]> {
        let p = cm4::PROVIDER_FULL.p256;
        let Ok(pair) = p.key_pair(SecretKey::from_bytes(X)) else {
            return Err(b"ecdsa: key_pair");
        };
        if Ok(pair.public) != point(&UX, &UY) {
            return Err(b"ecdsa: public key differs from RFC 6979");
        }
        let mut rng = DemoRng::new(1);
        for (m, r, s) in [
            (&b"sample"[..], &SAMPLE_R, &SAMPLE_S),
            (b"test", &TEST_R, &TEST_S),
        ] {
            let want = sig(r, s);
            match p.sign(&pair, m, &mut rng) {
                Ok(got) if got == want => {}
                _ => return Err(b"ecdsa: signature differs from RFC 6979"),
            }
            if p.verify(&pair.public, m, &want).is_err() {
                return Err(b"ecdsa: the RFC's signature was refused");
            }
            if p.verify(&pair.public, b"other", &want).is_ok() {
                return Err(b"ecdsa: a signature of another message was accepted");
            }
        }
        Ok(())
    }
}

/// RFC 5903 §8.1 through the cm4 backend.
fn vectors() -> Result<(), &'static [u8]> {
    let p = cm4::PROVIDER.p256;
    let (gi, gr) = match (point(&GIX, &GIY), point(&GRX, &GRY)) {
        (Ok(gi), Ok(gr)) => (gi, gr),
        _ => return Err(b"vectors: points"),
    };
    let (Ok(i), Ok(r)) = (
        p.key_pair(SecretKey::from_bytes(I)),
        p.key_pair(SecretKey::from_bytes(R)),
    ) else {
        return Err(b"vectors: key_pair refused a valid scalar");
    };
    if i.public != gi || r.public != gr {
        return Err(b"vectors: public keys differ from RFC 5903");
    }
    let z1 = p.agree_static(&i.secret, &r.public);
    let z2 = p.agree_static(&r.secret, &i.public);
    let z3 = p.agree_ephemeral(EphemeralSecret::from_scalar(SecretKey::from_bytes(I)), &gr);
    match (z1, z2, z3) {
        (Ok(a), Ok(b), Ok(c))
            if a.as_bytes() == &GIRX && b.as_bytes() == &GIRX && c.as_bytes() == &GIRX => {}
        _ => return Err(b"vectors: shared secret differs from RFC 5903"),
    }
    Ok(())
}

/// Invalid inputs are refused.
fn refusals() -> Result<(), &'static [u8]> {
    let p = cm4::PROVIDER.p256;
    let mut y = GRY;
    y[31] ^= 1;
    let Ok(off) = point(&GRX, &y) else {
        return Err(b"refusals: point");
    };
    if p.agree_static(&SecretKey::from_bytes(I), &off).err() != Some(Error::InvalidPublicKey) {
        return Err(b"refusals: a point off the curve was accepted");
    }
    let e = EphemeralSecret::from_scalar(SecretKey::from_bytes(I));
    if p.agree_ephemeral(e, &off).err() != Some(Error::InvalidPublicKey) {
        return Err(b"refusals: a point off the curve was accepted (ephemeral)");
    }
    if p.key_pair(SecretKey::from_bytes([0; 32])).err() != Some(Error::InvalidSecretKey) {
        return Err(b"refusals: a zero scalar was accepted");
    }
    Ok(())
}

/// Generation from the same generator state gives the same keys as
/// RustCrypto (both draw 32 bytes and take them if in range).
fn same_keys() -> Result<(), &'static [u8]> {
    for seed in 0..4u64 {
        let a = cm4::PROVIDER
            .p256
            .generate(&mut DemoRng::new(0xc4_0000 + seed));
        let b = rustcrypto::PROVIDER
            .p256
            .generate(&mut DemoRng::new(0xc4_0000 + seed));
        match (a, b) {
            (Ok(a), Ok(b))
                if a.public == b.public && a.secret.as_bytes() == b.secret.as_bytes() => {}
            _ => return Err(b"same keys: p256-cm4 and RustCrypto keys differ"),
        }
    }
    Ok(())
}

/// One ECDHE-ECDSA handshake with mutual raw-public-key authentication,
/// both sides with `crypto`, then one record client to server. Returns
/// the datagrams of the handshake.
fn ecdhe_ecdsa(crypto: &'static CryptoProvider) -> Result<usize, &'static [u8]> {
    let keys = (
        SigningKey::from_slice(&SERVER_SK),
        SigningKey::from_slice(&CLIENT_SK),
    );
    let (Ok(server_sk), Ok(client_sk)) = keys else {
        return Err(b"ecdhe-ecdsa: keys");
    };
    let server_pub = [p256::PublicKey::from(server_sk.verifying_key())];
    let client_pub = [p256::PublicKey::from(client_sk.verifying_key())];
    let mut server_cfg = DtlsConfig::default();
    server_cfg.require_client_auth = true;
    server_cfg.crypto = crypto;
    let Ok(mut server) = DtlsEndpoint::<u8, _, _, 1, _, 4, 1>::with_raw_public_key(
        server_cfg,
        cssf_dtls::StaticPsk::new(&[]),
        server_sk,
        PinnedKeys::new(&client_pub),
        DemoRng::new(0x5e7e_ecd5_0000_0005),
        NOW,
    ) else {
        return Err(b"ecdhe-ecdsa: server config");
    };
    let mut client_cfg = DtlsConfig::default();
    client_cfg.suites.clear();
    let _ = client_cfg
        .suites
        .push(CipherSuite::EcdheEcdsaWithAes128Ccm8);
    client_cfg.crypto = crypto;
    let Ok(mut client) = Client::with_raw_public_key(
        client_cfg,
        Some(client_sk),
        PinnedKeys::new(&server_pub),
        SERVER_ADDR,
        DemoRng::new(0x0c11_ecd5_0000_0006),
        NOW,
    ) else {
        return Err(b"ecdhe-ecdsa: client config");
    };
    let mut buf = [0u8; 1200];
    let mut datagrams = 0usize;
    let mut suite = None;
    let mut sent_ping = false;
    let mut got_ping = false;
    for _ in 0..16 {
        let mut moved = false;
        while let Ok(Some(t)) = client.poll_transmit(NOW, &mut buf) {
            datagrams += 1;
            let d = buf.get_mut(..t.len).unwrap_or(&mut []);
            if server.handle_datagram(NOW, CLIENT_ADDR, d).is_err() {
                return Err(b"ecdhe-ecdsa: server refused the handshake");
            }
            moved = true;
        }
        while let Some(ev) = server.poll_event() {
            if let DtlsEvent::Closed { .. } = ev {
                return Err(b"ecdhe-ecdsa: server closed");
            }
        }
        let session = server.session_handle(&CLIENT_ADDR);
        while let Some(Ok(Some(n))) = session.map(|h| server.recv(h, &mut buf)) {
            got_ping = buf.get(..n) == Some(&b"ping"[..]);
        }
        while let Ok(Some(t)) = server.poll_transmit(NOW, &mut buf) {
            datagrams += 1;
            let d = buf.get_mut(..t.len).unwrap_or(&mut []);
            if client.handle_datagram(NOW, SERVER_ADDR, d).is_err() {
                return Err(b"ecdhe-ecdsa: client refused the handshake");
            }
            moved = true;
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                DtlsEvent::Connected { suite: s, .. } => suite = Some(s),
                DtlsEvent::Closed { .. } => return Err(b"ecdhe-ecdsa: client closed"),
                _ => {}
            }
        }
        if suite.is_some() && !sent_ping {
            sent_ping = true;
            if client.send(NOW, b"ping").is_err() {
                return Err(b"ecdhe-ecdsa: send");
            }
            moved = true;
        }
        if !moved {
            break;
        }
    }
    if suite != Some(CipherSuite::EcdheEcdsaWithAes128Ccm8) {
        return Err(b"ecdhe-ecdsa: no handshake with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8");
    }
    let proven_server = client.peer_identity().and_then(Identity::public_key);
    let proven_client = server
        .session_handle(&CLIENT_ADDR)
        .and_then(|h| server.peer_identity(h))
        .and_then(Identity::public_key);
    if proven_server != server_pub.first() || proven_client != client_pub.first() {
        return Err(b"ecdhe-ecdsa: authenticated keys are not the pinned ones");
    }
    if !got_ping {
        return Err(b"ecdhe-ecdsa: application data did not arrive");
    }
    Ok(datagrams)
}
