//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn b64url(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => panic!("bad base64 {s}"),
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A deterministic test RNG (NOT cryptographically secure; tests only).
pub struct TestRng(pub u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for TestRng {}

/// One DTLS PSK handshake (cssf-dtls client and endpoint, in memory) at
/// `now`/`wall` against a server whose PSKs come from `rs` (RFC 9202); the
/// PSK identity the server proved and the session handle's raw value (what
/// an `Authorizer` is keyed by), if the handshake completed.
#[cfg(feature = "dtls")]
pub fn psk_handshake<K, M, const N: usize, const R: usize, const E: usize>(
    rs: &core::cell::RefCell<cssf_auth::AuthzInfo<'_, K, M, N, R, E>>,
    identity: &[u8],
    psk: &[u8],
    seed: u64,
    now: core::time::Duration,
    wall: Option<u64>,
) -> Option<(Vec<u8>, u64)>
where
    K: cssf_auth::KeyResolver + ?Sized,
    M: cssf_auth::ScopeMapper,
{
    use cssf_auth::dtls::{Clock, SharedTokenPsk};
    use cssf_netsim::SimRng;
    let clock = core::cell::Cell::new(Clock { now, wall });
    let mut server: cssf_dtls::Endpoint<u8, _, _, 2> = cssf_dtls::Endpoint::new(
        cssf_dtls::Config::default(),
        SharedTokenPsk::new(rs, &clock),
        SimRng::new(seed),
        now,
    )
    .unwrap();
    let mut client = cssf_dtls::Client::new(
        cssf_dtls::Config::default(),
        identity,
        psk,
        2u8,
        SimRng::new(seed + 1),
        now,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..8 {
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            let _ = server.handle_datagram(now, 1u8, &mut buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            let _ = client.handle_datagram(now, 2u8, &mut buf[..t.len]);
        }
    }
    if !client.is_connected() {
        return None;
    }
    let h = server.session_handle(&1u8)?;
    match server.peer_identity(h)? {
        cssf_dtls::Identity::Psk(id) => Some((id.as_bytes().to_vec(), h.raw())),
        _ => None,
    }
}

/// The crypto provider the token tests verify ES256 through: the ring
/// backend when the crate is built with `ring-p256`, else RustCrypto (the
/// default). scripts/test runs the ES256 tests both ways.
pub fn provider() -> &'static cssf_provider::CryptoProvider {
    #[cfg(feature = "ring-p256")]
    {
        &cssf_provider::ring::PROVIDER
    }
    #[cfg(not(feature = "ring-p256"))]
    {
        &cssf_provider::rustcrypto::PROVIDER
    }
}
