//! CSSF DTLS drivers: both sides in memory, in one thread, with no loss.
//!
//! A measured handshake constructs both endpoints (the server [`Endpoint`]
//! and the [`Client`]) and runs every flight, the cookie exchange included
//! (CSSF's server always does it); the configuration and the keys are made
//! once, outside the measurement. The OpenSSL drivers in [`crate::ossl`]
//! follow the same definition.

use core::hint::black_box;
use core::time::Duration;

use cssf_dtls::{CipherSuite, Client, Config, Endpoint, PinnedKeys, SigningKey, StaticPsk};
use cssf_netsim::SimRng;
use p256::PublicKey;

/// The PSK identity both sides use.
pub const PSK_ID: &[u8] = b"Client_identity";
/// The pre-shared key both sides use.
pub const PSK: &[u8] = b"0123456789abcdef";
/// The server's key table.
pub static KEYS: [(&[u8], &[u8]); 1] = [(PSK_ID, PSK)];

/// The PSK server of these benches (two handshake slots).
pub type PskServer = Endpoint<u8, StaticPsk<'static>, SimRng, 2>;

/// The default configuration restricted to `suite`; with feature
/// `ring-p256`, the P-256 operations through the ring backend of the
/// crypto provider (RustCrypto's otherwise).
pub fn config(suite: CipherSuite) -> Config {
    let mut cfg = Config::default();
    cfg.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    #[cfg(feature = "ring-p256")]
    {
        cfg.crypto = &cssf_dtls::provider::ring::PROVIDER;
    }
    cfg
}

/// One PSK (or ECDHE-PSK) handshake: constructs both endpoints and runs
/// every flight, the cookie exchange included. Returns the connected pair
/// and the bytes both sides sent.
pub fn psk_pair(suite: CipherSuite, seed: u64) -> (Client<u8, SimRng>, PskServer, usize) {
    let cfg = config(suite);
    let now = Duration::ZERO;
    let mut server =
        Endpoint::new(cfg.clone(), StaticPsk::new(&KEYS), SimRng::new(seed), now).unwrap();
    let mut client = Client::new(cfg, PSK_ID, PSK, 2u8, SimRng::new(seed + 1), now).unwrap();
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

/// The full application-data path of one record: client `send` +
/// `poll_transmit`, server `handle_datagram` + `recv`.
pub fn full_path(
    client: &mut Client<u8, SimRng>,
    server: &mut PskServer,
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

/// The P-256 keys of the raw-public-key handshakes, and each side's pin.
pub struct RpkKeys {
    /// The server's signing key.
    pub server: SigningKey,
    /// The client's signing key (mutual authentication).
    pub client: SigningKey,
    /// The server's public key, pinned by the client.
    pub pins_server: [PublicKey; 1],
    /// The client's public key, pinned by the server.
    pub pins_client: [PublicKey; 1],
}

impl RpkKeys {
    /// Fixed keys from seeded randomness.
    pub fn new() -> Self {
        let server = SigningKey::random(&mut SimRng::new(1));
        let client = SigningKey::random(&mut SimRng::new(2));
        let pins_server = [PublicKey::from(server.verifying_key())];
        let pins_client = [PublicKey::from(client.verifying_key())];
        RpkKeys {
            server,
            client,
            pins_server,
            pins_client,
        }
    }
}

impl Default for RpkKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// One complete ECDHE-ECDSA handshake with raw public keys (RFC 7250),
/// server-only or mutual: constructs both endpoints and runs every flight,
/// the cookie exchange included. Returns the bytes both sides sent.
pub fn rpk_handshake(keys: &RpkKeys, suite: CipherSuite, mutual: bool, seed: u64) -> usize {
    let mut cfg = config(suite);
    cfg.require_client_auth = mutual;
    let now = Duration::ZERO;
    let mut server: Endpoint<u8, _, _, 2, _> = Endpoint::with_raw_public_key(
        cfg.clone(),
        StaticPsk::new(&[]),
        keys.server.clone(),
        PinnedKeys::new(&keys.pins_client),
        SimRng::new(seed),
        now,
    )
    .unwrap();
    let mut client = Client::with_raw_public_key(
        cfg,
        mutual.then(|| keys.client.clone()),
        PinnedKeys::new(&keys.pins_server),
        2u8,
        SimRng::new(seed + 1),
        now,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    let mut bytes = 0;
    let done = |client: &Client<_, _, _>, server: &Endpoint<u8, _, _, 2, _>| {
        client.is_connected()
            && server
                .session_handle(&1)
                .is_some_and(|h| server.is_connected(h))
    };
    for _ in 0..10 {
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            bytes += t.len;
            server.handle_datagram(now, 1, &mut buf[..t.len]).unwrap();
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            bytes += t.len;
            client.handle_datagram(now, 2, &mut buf[..t.len]).unwrap();
        }
        if done(&client, &server) {
            break;
        }
    }
    assert!(done(&client, &server));
    bytes
}
