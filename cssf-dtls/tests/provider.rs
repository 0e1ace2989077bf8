//! The crypto provider of `Config::crypto` computes every P-256
//! operation of a handshake: a provider that counts its calls (standing
//! in for a hardware accelerator, plugged in without forking the crate)
//! sees exactly the ECDH, signing and verification calls each side's
//! messages need, a provider whose verification refuses everything fails
//! the handshake, and (feature `ring-p256`) the ring backend interoperates
//! with RustCrypto's on either side.
#![cfg(all(feature = "server", feature = "ecdhe"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use core::time::Duration;

use common::{key, public, Pins};
use cssf_dtls::provider::counting::{CountingP256, Counts};
use cssf_dtls::provider::{self, rustcrypto, CryptoProvider, P256};
use cssf_dtls::{
    CipherSuite, Client, Config, Endpoint, Error, Event, Identity, SigningKey, StaticPsk,
};
use cssf_netsim::SimRng;
use rand_core::CryptoRngCore;

const CLIENT: u8 = 1;
const SERVER: u8 = 2;

fn config(suite: CipherSuite, crypto: &'static CryptoProvider, mutual: bool) -> Config {
    let mut c = Config::default();
    c.suites = heapless::Vec::from_slice(&[suite]).unwrap();
    c.require_client_auth = mutual;
    c.crypto = crypto;
    c
}

type Server = Endpoint<u8, StaticPsk<'static>, SimRng, 2, Pins>;

/// Runs both sides in memory until neither sends; the first error of
/// each (a macro: the two sides' trust store types differ by test).
macro_rules! drive {
    ($client:expr, $server:expr) => {{
        let (client, server) = (&mut $client, &mut $server);
        let now = Duration::ZERO;
        let mut buf = [0u8; 1500];
        let (mut ce, mut se): (Option<Error>, Option<Error>) = (None, None);
        for _ in 0..16 {
            let mut moved = false;
            while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
                moved = true;
                server
                    .handle_datagram(now, CLIENT, &mut buf[..t.len])
                    .unwrap();
            }
            while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
                moved = true;
                assert_eq!(t.to, CLIENT);
                client
                    .handle_datagram(now, SERVER, &mut buf[..t.len])
                    .unwrap();
            }
            // A peer's bad input ends the session with `Closed`.
            while let Some(e) = client.poll_event() {
                if let Event::Closed { reason, .. } = e {
                    ce = ce.or(reason.error());
                }
            }
            while let Some(e) = server.poll_event() {
                if let Event::Closed { reason, .. } = e {
                    se = se.or(reason.error());
                }
            }
            if !moved {
                break;
            }
        }
        (ce, se)
    }};
}

/// A raw-public-key handshake (ECDHE_ECDSA): the client with
/// `client_crypto`, the server with `server_crypto`, the client
/// authenticating too if `mutual`. Returns whether both ended connected
/// with the other's key proven, and each side's first error.
fn ecdsa_handshake(
    suite: CipherSuite,
    client_crypto: &'static CryptoProvider,
    server_crypto: &'static CryptoProvider,
    mutual: bool,
    seed: u64,
) -> (bool, Option<Error>, Option<Error>) {
    let (sk, ck): (SigningKey, SigningKey) = (key(seed), key(seed + 1));
    let mut server: Server = Endpoint::with_raw_public_key(
        config(suite, server_crypto, mutual),
        StaticPsk::new(&[]),
        sk.clone(),
        Pins(vec![public(&ck)]),
        SimRng::new(seed + 2),
        Duration::ZERO,
    )
    .unwrap();
    let mut client = Client::with_raw_public_key(
        config(suite, client_crypto, mutual),
        mutual.then(|| ck.clone()),
        Pins(vec![public(&sk)]),
        SERVER,
        SimRng::new(seed + 3),
        Duration::ZERO,
    )
    .unwrap();
    let (ce, se) = drive!(client, server);
    let ok = client.is_connected()
        && client.peer_identity() == Some(&Identity::RawPublicKey(public(&sk)))
        && server.session_handle(&CLIENT).is_some_and(|h| {
            let expected = mutual.then(|| Identity::RawPublicKey(public(&ck)));
            server.peer_identity(h).cloned() == expected
        });
    (ok, ce, se)
}

const fn counted(name: &'static str, p: &'static CountingP256) -> CryptoProvider {
    CryptoProvider {
        name,
        p256: p,
        ..rustcrypto::PROVIDER
    }
}

#[test]
fn ecdhe_ecdsa_mutual_calls_each_operation_exactly_as_often_as_the_messages_need() {
    static C: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    static S: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    static CP: CryptoProvider = counted("client", &C);
    static SP: CryptoProvider = counted("server", &S);
    let (cp, sp) = (&CP, &SP);
    let (ok, ce, se) = ecdsa_handshake(CipherSuite::EcdheEcdsaWithAes128Ccm8, cp, sp, true, 10);
    assert!(ok, "client {ce:?}, server {se:?}");
    // Client: verifies the ServerKeyExchange (a message), makes its
    // ephemeral key and agrees, signs the transcript hash (CertificateVerify).
    assert_eq!(
        C.counts(),
        Counts {
            verify: 1,
            ephemeral: 1,
            agree_ephemeral: 1,
            sign_digest: 1,
            ..Counts::default()
        }
    );
    // Server: makes its ephemeral key, signs the ServerKeyExchange, agrees
    // with the client's point, verifies the CertificateVerify.
    assert_eq!(
        S.counts(),
        Counts {
            ephemeral: 1,
            sign: 1,
            agree_ephemeral: 1,
            verify_digest: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn ecdhe_ecdsa_server_only_and_ecdhe_psk_calls() {
    static C: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    static S: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    static CP: CryptoProvider = counted("client", &C);
    static SP: CryptoProvider = counted("server", &S);
    let (cp, sp) = (&CP, &SP);
    let (ok, ce, se) = ecdsa_handshake(CipherSuite::EcdheEcdsaWithAes128Ccm8, cp, sp, false, 20);
    assert!(ok, "client {ce:?}, server {se:?}");
    assert_eq!(
        C.counts(),
        Counts {
            verify: 1,
            ephemeral: 1,
            agree_ephemeral: 1,
            ..Counts::default()
        }
    );
    assert_eq!(
        S.counts(),
        Counts {
            ephemeral: 1,
            sign: 1,
            agree_ephemeral: 1,
            ..Counts::default()
        }
    );

    #[cfg(feature = "chacha20")]
    {
        C.reset();
        S.reset();
        static KEYS: [(&[u8], &[u8]); 1] = [(b"id", b"key-key-key-key!")];
        let suite = CipherSuite::EcdhePskWithChaCha20Poly1305Sha256;
        let mut server: Endpoint<u8, _, SimRng, 2> = Endpoint::new(
            config(suite, sp, false),
            StaticPsk::new(&KEYS),
            SimRng::new(21),
            Duration::ZERO,
        )
        .unwrap();
        let mut client: Client<u8, SimRng> = Client::new(
            config(suite, cp, false),
            b"id",
            b"key-key-key-key!",
            SERVER,
            SimRng::new(22),
            Duration::ZERO,
        )
        .unwrap();
        let (ce, se) = drive!(client, server);
        assert!(client.is_connected(), "client {ce:?}, server {se:?}");
        let one_ecdhe = Counts {
            ephemeral: 1,
            agree_ephemeral: 1,
            ..Counts::default()
        };
        assert_eq!(C.counts(), one_ecdhe);
        assert_eq!(S.counts(), one_ecdhe);
    }
}

/// Everything RustCrypto does, but no signature ever verifies.
struct RefusesSignatures;

impl P256 for RefusesSignatures {
    fn generate(&self, rng: &mut dyn CryptoRngCore) -> Result<provider::KeyPair, provider::Error> {
        rustcrypto::RustCryptoP256.generate(rng)
    }
    fn key_pair(&self, s: provider::SecretKey) -> Result<provider::KeyPair, provider::Error> {
        rustcrypto::RustCryptoP256.key_pair(s)
    }
    fn ephemeral(
        &self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(provider::EphemeralSecret, provider::PublicKey), provider::Error> {
        rustcrypto::RustCryptoP256.ephemeral(rng)
    }
    fn agree_ephemeral(
        &self,
        s: provider::EphemeralSecret,
        p: &provider::PublicKey,
    ) -> Result<provider::SharedSecret, provider::Error> {
        rustcrypto::RustCryptoP256.agree_ephemeral(s, p)
    }
    fn agree_static(
        &self,
        s: &provider::SecretKey,
        p: &provider::PublicKey,
    ) -> Result<provider::SharedSecret, provider::Error> {
        rustcrypto::RustCryptoP256.agree_static(s, p)
    }
    fn sign(
        &self,
        k: &provider::KeyPair,
        m: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<provider::Signature, provider::Error> {
        rustcrypto::RustCryptoP256.sign(k, m, rng)
    }
    fn sign_digest(
        &self,
        k: &provider::KeyPair,
        d: &[u8; 32],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<provider::Signature, provider::Error> {
        rustcrypto::RustCryptoP256.sign_digest(k, d, rng)
    }
    fn verify(
        &self,
        _: &provider::PublicKey,
        _: &[u8],
        _: &provider::Signature,
    ) -> Result<(), provider::Error> {
        Err(provider::Error::BadSignature)
    }
    fn verify_digest(
        &self,
        _: &provider::PublicKey,
        _: &[u8; 32],
        _: &provider::Signature,
    ) -> Result<(), provider::Error> {
        Err(provider::Error::BadSignature)
    }
}

#[test]
fn the_providers_verdict_decides() {
    static REFUSING: CryptoProvider = CryptoProvider {
        name: "refuses signatures",
        p256: &RefusesSignatures,
        ..rustcrypto::PROVIDER
    };
    let suite = CipherSuite::EcdheEcdsaWithAes128Ccm8;
    // The client's provider refuses the ServerKeyExchange signature.
    let (ok, ce, _) = ecdsa_handshake(suite, &REFUSING, &rustcrypto::PROVIDER, false, 30);
    assert!(!ok);
    assert_eq!(ce, Some(Error::DecryptError));
    // The server's provider refuses the client's CertificateVerify.
    let (ok, _, se) = ecdsa_handshake(suite, &rustcrypto::PROVIDER, &REFUSING, true, 40);
    assert!(!ok);
    assert_eq!(se, Some(Error::DecryptError));
}

#[cfg(feature = "ring-p256")]
#[test]
fn ring_backend_interoperates_with_rustcrypto_on_either_side() {
    let ring = &provider::ring::PROVIDER;
    let rc = &rustcrypto::PROVIDER;
    let mut seed = 50;
    for suite in [
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
        #[cfg(feature = "chacha20")]
        CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
    ] {
        for (c, s) in [(ring, ring), (ring, rc), (rc, ring)] {
            for mutual in [false, true] {
                seed += 10;
                let (ok, ce, se) = ecdsa_handshake(suite, c, s, mutual, seed);
                assert!(
                    ok,
                    "{suite:?} client {} server {} mutual {mutual}: {ce:?} {se:?}",
                    c.name, s.name
                );
            }
        }
    }
}

// ---- the provider's AEAD: records go through it ------------------------

/// An AES-128-CCM-8 "accelerator" written outside the crate (here with
/// the RustCrypto crates, as a driver for an AES engine would be): what a
/// user plugs into `CryptoProvider::aead` without forking cssf-dtls.
/// `CORRUPT` flips a bit of every tag it makes.
struct Ccm8Engine<const CORRUPT: bool>;

impl<const CORRUPT: bool> provider::Aead for Ccm8Engine<CORRUPT> {
    fn supports(&self, alg: provider::AeadAlgorithm) -> bool {
        alg == provider::AeadAlgorithm::Aes128Ccm8
    }
    fn seal_in_place(
        &self,
        _: provider::AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), provider::Error> {
        use ccm::aead::{AeadInPlace, KeyInit};
        let c = ccm::Ccm::<aes::Aes128, ccm::consts::U8, ccm::consts::U12>::new_from_slice(key)
            .map_err(|_| provider::Error::InvalidLength)?;
        let t = c
            .encrypt_in_place_detached(nonce.into(), aad, buffer)
            .map_err(|_| provider::Error::InvalidLength)?;
        tag.copy_from_slice(&t);
        if CORRUPT {
            tag[0] ^= 1;
        }
        Ok(())
    }
    fn open_in_place(
        &self,
        _: provider::AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Result<(), provider::Error> {
        use ccm::aead::{AeadInPlace, KeyInit};
        let c = ccm::Ccm::<aes::Aes128, ccm::consts::U8, ccm::consts::U12>::new_from_slice(key)
            .map_err(|_| provider::Error::InvalidLength)?;
        c.decrypt_in_place_detached(nonce.into(), aad, buffer, tag.into())
            .map_err(|_| provider::Error::BadTag)
    }
}

const PSK_KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"secretPSK")];

/// A PSK handshake, the client on `client_crypto` and the server on the
/// default provider, then `records` application records each way.
/// Returns whether everything arrived.
fn psk_exchange(
    suite: CipherSuite,
    client_crypto: &'static CryptoProvider,
    records: usize,
) -> bool {
    let mut server: Endpoint<u8, StaticPsk<'static>, SimRng, 2> = Endpoint::new(
        config(suite, &rustcrypto::PROVIDER, false),
        StaticPsk::new(&PSK_KEYS),
        SimRng::new(40),
        Duration::ZERO,
    )
    .unwrap();
    let mut client = Client::new(
        config(suite, client_crypto, false),
        PSK_KEYS[0].0,
        PSK_KEYS[0].1,
        SERVER,
        SimRng::new(41),
        Duration::ZERO,
    )
    .unwrap();
    let (ce, se) = drive!(client, server);
    if !client.is_connected() || ce.is_some() || se.is_some() {
        return false;
    }
    let now = Duration::ZERO;
    let handle = server.session_handle(&CLIENT).unwrap();
    let mut buf = [0u8; 1500];
    let mut got = 0;
    for i in 0..records {
        let msg = [i as u8; 40];
        client.send(now, &msg).unwrap();
        server.send(now, handle, &msg).unwrap();
        while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
            server
                .handle_datagram(now, CLIENT, &mut buf[..t.len])
                .unwrap();
        }
        while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
            client
                .handle_datagram(now, SERVER, &mut buf[..t.len])
                .unwrap();
        }
        let mut m = [0u8; 64];
        if client.recv(&mut m).unwrap() == Some(40) && m[..40] == msg {
            got += 1;
        }
        if server.recv(handle, &mut m).unwrap() == Some(40) && m[..40] == msg {
            got += 1;
        }
    }
    got == 2 * records
}

#[test]
fn records_go_through_the_providers_aead_and_interoperate_with_the_crates_own() {
    use provider::counting::CountingAead;
    static ENGINE: Ccm8Engine<false> = Ccm8Engine;
    static COUNTED: CountingAead = CountingAead::new(&ENGINE);
    static P: CryptoProvider = CryptoProvider {
        name: "ccm8 engine",
        aead: Some(&COUNTED),
        ..rustcrypto::PROVIDER
    };
    assert!(psk_exchange(CipherSuite::PskWithAes128Ccm8, &P, 5));
    // The client sealed its Finished and 5 records, and opened the
    // server's Finished and 5 records, all through the engine.
    assert_eq!((COUNTED.seals(), COUNTED.opens()), (6, 6));
}

#[test]
fn an_aead_that_does_not_support_the_suite_is_not_used() {
    use provider::counting::CountingAead;
    static ENGINE: Ccm8Engine<true> = Ccm8Engine;
    static COUNTED: CountingAead = CountingAead::new(&ENGINE);
    static P: CryptoProvider = CryptoProvider {
        name: "ccm8 engine",
        aead: Some(&COUNTED),
        ..rustcrypto::PROVIDER
    };
    // ChaCha20-Poly1305 records: the engine (a corrupting one) is never
    // asked, the crate's own code runs.
    assert!(psk_exchange(
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        &P,
        3
    ));
    assert_eq!((COUNTED.seals(), COUNTED.opens()), (0, 0));
}

#[test]
fn a_corrupting_aead_fails_the_handshake_so_records_really_go_through_it() {
    static ENGINE: Ccm8Engine<true> = Ccm8Engine;
    static P: CryptoProvider = CryptoProvider {
        name: "corrupting engine",
        aead: Some(&ENGINE),
        ..rustcrypto::PROVIDER
    };
    assert!(!psk_exchange(CipherSuite::PskWithAes128Ccm8, &P, 1));
}

#[cfg(feature = "ring-p256")]
#[test]
fn rings_aead_interoperates_with_the_crates_own() {
    // ring::PROVIDER fills `aead` (ChaCha20-Poly1305); the server runs the
    // crate's own code.
    assert!(provider::ring::PROVIDER.aead.is_some());
    assert!(psk_exchange(
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        &provider::ring::PROVIDER,
        5
    ));
    // CCM_8 is not ring's: the crate's own code on both sides.
    assert!(psk_exchange(
        CipherSuite::PskWithAes128Ccm8,
        &provider::ring::PROVIDER,
        2
    ));
}
