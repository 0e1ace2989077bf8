//! DTLS 1.2 (RFC 6347) under the RFC 7925 IoT profile, as a sans-IO state machine.
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`, with
//! no `std` or `alloc` feature: nothing in it needs either (the `x509`
//! feature's certificate parser allocates).
//!
//! Suites: TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256
//! and TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 ([`Client::new`],
//! [`Endpoint::new`]); TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 and
//! TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 on P-256 with raw public
//! keys (RFC 7250, the RFC 7925 §4.4 profile: SubjectPublicKeyInfo in the
//! Certificate message, ecdsa_secp256r1_sha256 signatures, secp256r1 with
//! uncompressed points), server-only or mutual ([`Client::with_raw_public_key`],
//! [`Endpoint::with_raw_public_key`], [`Config::require_client_auth`]); which
//! peer keys are accepted is up to a [`TrustStore`] such as [`PinnedKeys`].
//! With the `x509` feature, ECDHE_ECDSA also works with X.509 end-entity
//! certificates (for peers without raw public keys, e.g. OpenSSL): see the
//! `x509` module, `CaSigned` and `Config::certificate`.
//! All with extended master secret (RFC 7627, required by default), empty
//! renegotiation_info (RFC 5746, renegotiation refused) and record_size_limit
//! (RFC 8449); Connection ID (RFC 9146: tls12_cid records, the server
//! finding sessions by CID and following a client to a new address only
//! after an authenticated, newest record from it) and session resumption
//! with session IDs (abbreviated handshake, bounded server cache).
//!
//! The driver loop is the same for [`Client`] and [`Endpoint`]: after each
//! input drain `poll_transmit`, then `poll_event`, then read `poll_timeout`.
//! The crate's `examples/udp_client.rs` and `examples/udp_server.rs` run it
//! on a std UDP socket with real time (`poll_timeout` as the socket's read
//! timeout) and the operating system's randomness (`rand_core::OsRng`).
//!
//! Cargo features (the first five are default; without them a PSK client
//! with TLS_PSK_WITH_AES_128_CCM_8 links no P-256, ECDSA, ChaCha20,
//! Connection ID, server or resumption code):
//! - `ecdhe`: the ECDHE_PSK and ECDHE_ECDSA suites on P-256, raw public
//!   keys, [`TrustStore`], [`SigningKey`] (`p256`, `ecdsa`);
//! - `chacha20`: the ChaCha20-Poly1305 suites (`chacha20poly1305`);
//! - `cid`: Connection IDs (RFC 9146); without it [`Config::validate`]
//!   refuses `cid_len: Some(_)`;
//! - `server`: the server role, [`Endpoint`] (cookies, session cache) and
//!   the server side of the handshake;
//! - `resumption`: session resumption with session IDs ([`Session`],
//!   [`Client::resume`]); without it [`Config::validate`] refuses
//!   `resumption: true` (and the default is `false`);
//! - `x509` (implies `ecdhe`; `x509-cert` needs an allocator): X.509
//!   end-entity certificates;
//! - `log`: log messages through the `log` crate, targets `cssf_dtls::...`
//!   (debug: the cookie exchange, handshake messages, retransmissions,
//!   dropped records and refused or replayed ClientHellos, a handshake's
//!   failure; info: a session connected or, once connected, closed; warn:
//!   only this side's own faults, never something a peer can cause);
//! - `defmt`: the same through `defmt`, only on bare-metal targets
//!   (`target_os = "none"`; elsewhere it compiles nothing in). The
//!   firmware needs a defmt global logger, and defmt shows only errors
//!   unless told more: build with e.g. `DEFMT_LOG=cssf_dtls=debug`. With
//!   `log` too, each message goes to both;
//! - `smoltcp`: with `server`, `PeerAddress` for smoltcp 0.12's
//!   `IpEndpoint` (the endpoint type of embassy-net up to 0.8; a
//!   [`Client`] takes any address type already); it turns on no smoltcp
//!   protocol, the application's smoltcp has `proto-ipv4` or `proto-ipv6`;
//!
//! With neither `log` nor `defmt` a log call compiles to nothing (its
//! arguments are not even evaluated).
//!
//! A suite of a disabled feature does not exist ([`CipherSuite`] and the
//! enums it maps to are `non_exhaustive`), so it is neither offered nor
//! accepted.
//!
//! # Who is this session, and when does it end
//!
//! Every handshake gets a [`SessionHandle`], never reused; events and the
//! endpoint's `send`, `recv`, `close` and accessors take handles, and the
//! peer's address is only an attribute. [`Event::Connected`] carries the
//! [`Identity`] the handshake *proved* (a PSK identity, a raw public key or
//! a certificate's key; `None` for an anonymous client), never one the peer
//! only claimed; `peer_identity` answers the same afterwards. Every handle
//! ends with exactly one [`Event::Closed`] and its [`CloseReason`]. Stores
//! ([`PskStore`], `TrustStore`) see the peer's [`PeerContext`] and are asked
//! again before a session is resumed. The details are on [`Endpoint`]
//! (feature `server`).
//!
//! A whole PSK handshake and an exchange of application data, in memory,
//! is the example on [`Endpoint`] (feature `server`); the same with raw
//! public keys and mutual authentication is on
//! [`Endpoint::with_raw_public_key`] (features `server` and `ecdhe`).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

#[macro_use]
mod logging;
mod client;
mod config;
#[cfg(feature = "server")]
mod cookie;
pub mod crypto;
#[cfg(feature = "server")]
mod endpoint;
mod error;
mod established;
mod event;
mod flight;
mod handshake;
mod identity;
mod psk;
mod queue;
mod record;
mod replay;
// Without `resumption` sessions are still built internally, never exported.
#[cfg_attr(not(feature = "resumption"), allow(unreachable_pub, dead_code))]
mod session;
mod stats;
mod trust;
pub mod wire;
#[cfg(feature = "x509")]
#[cfg_attr(docsrs, doc(cfg(feature = "x509")))]
pub mod x509;

/// The crypto provider interface (the `cssf-provider` crate; feature
/// `ecdhe`): [`Config::crypto`] selects the backend of the P-256
/// operations.
#[cfg(feature = "ecdhe")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
pub use cssf_provider as provider;

pub use client::{Client, ClientBuilder};
#[cfg(feature = "x509")]
pub use config::MAX_CERTIFICATE_LEN;
pub use config::{Config, MAX_CID_LEN, MAX_PEER_CID_LEN};
#[cfg(feature = "server")]
pub use cookie::{CookieSecrets, PeerAddress, COOKIE_LEN};
pub use crypto::suite::{AeadKind, CipherSuite, KeyExchange};
#[cfg(feature = "server")]
pub use endpoint::{Endpoint, EndpointBuilder, CLIENT_HELLO_REPLAY_CACHE};
pub use error::{AlertDescription, Error};
pub use event::{CloseReason, Event, SessionHandle, Transmit};
pub use flight::MAX_MESSAGE_LEN;
pub use identity::{Identity, PskIdentity};
pub use psk::{PeerContext, PskStore, StaticPsk, MAX_IDENTITY_LEN, MAX_PSK_LEN};
pub use queue::APP_QUEUE_CAPACITY;
pub use replay::ReplayWindow;
#[cfg(all(feature = "server", feature = "resumption"))]
pub use session::SessionCache;
#[cfg(feature = "resumption")]
pub use session::{Session, MAX_SESSION_ENCODING_LEN, SESSION_ID_LEN};
pub use stats::Stats;
pub use trust::RejectAll;
#[cfg(feature = "ecdhe")]
pub use trust::{FnTrust, PinnedKeys, SigningKey, TrustStore};
#[cfg(feature = "x509")]
pub use x509::CaSigned;

/// Measured sizes of the per-peer state, for firmware footprint reports.
#[doc(hidden)]
pub mod footprint {
    /// Bytes of one established session's compact state (one of the `N`
    /// session slots of an [`Endpoint`](crate::Endpoint), without its peer
    /// address).
    pub const ESTABLISHED_SESSION: usize = core::mem::size_of::<crate::established::Established>();
    /// Bytes of one handshake in progress (one of the `H` handshake slots
    /// of an [`Endpoint`](crate::Endpoint), without its peer address).
    pub const HANDSHAKE: usize = core::mem::size_of::<crate::handshake::Connection>();
    /// Bytes an endpoint keeps beside each established session's record
    /// state: the identity its handshake proved (a PSK identity of up to
    /// [`MAX_IDENTITY_LEN`](crate::MAX_IDENTITY_LEN) bytes, or a public key).
    pub const SESSION_IDENTITY: usize = core::mem::size_of::<Option<crate::Identity>>();
    /// Bytes of each of the application queues an endpoint or client
    /// shares among its sessions (one for sealed records to send, one for
    /// received records).
    pub const APP_QUEUE: usize = core::mem::size_of::<crate::queue::AppQueue>();

    /// Bytes of a [`Client`](crate::Client) talking to addresses `A`
    /// with generator `R` and application queues of `Q` bytes each: the
    /// whole object, the same while connected and mid-handshake (it holds
    /// its handshake state, [`HANDSHAKE`] bytes, for its whole life).
    pub const fn client<A, R, const Q: usize>() -> usize {
        core::mem::size_of::<crate::Client<A, R, crate::RejectAll, Q>>()
    }
    /// Bytes of one of a client's two application queues of `Q` bytes
    /// (the bytes and the index of the records in them).
    pub const fn client_queue<const Q: usize>() -> usize {
        core::mem::size_of::<crate::queue::TaggedQueue<Q, { crate::queue::QUEUE_ENTRIES }, ()>>()
    }

    // The budget of an established session, on every target.
    const _: () = assert!(ESTABLISHED_SESSION <= 256);
}
