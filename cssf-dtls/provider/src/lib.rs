//! The crypto provider interface shared by `cssf-dtls`, `cssf-auth` and
//! `cssf-store`: one [`CryptoProvider`], a struct of `&'static dyn`
//! tables in the manner of rustls's `CryptoProvider`, that a crate is
//! given in its configuration and calls for its cryptography.
//!
//! Entries:
//! - [`P256`]: key generation, ECDH with an ephemeral and with a static
//!   key, ECDSA P-256/SHA-256 sign and verify (over a message or a
//!   SHA-256 digest);
//! - [`Hash`] (SHA-256, HMAC-SHA-256, HKDF-SHA-256): filled in the
//!   RustCrypto backend ([`rustcrypto::RustCryptoHash`]); cssf-store
//!   derives its keys through it;
//! - [`Aead`] (AES-128-CCM-8, AES-CCM-16-64-128, ChaCha20-Poly1305) and
//!   [`SecureRandom`]: declared; no backend fills them yet and no crate
//!   routes them through the provider yet (`None`: the crate's own
//!   RustCrypto code, what it ships today). What is routed is listed in
//!   the README.
//!
//! Backends:
//! - [`rustcrypto::PROVIDER`] (the default; `no_std`, no heap): the
//!   RustCrypto `p256` and `ecdsa` crates, and `sha2`, `hmac`, `hkdf`;
//! - `ring::PROVIDER` (feature `ring`, host targets): ring 0.17's P-256
//!   assembly for ephemeral ECDH, signing and verifying messages; the
//!   entries ring does not offer fall back to RustCrypto (the table in
//!   the `ring` module), and ring draws its own randomness;
//! - `cm4::PROVIDER` (feature `p256-cm4`, `thumbv7em` targets only):
//!   key generation and ECDH through `p256-cm4`'s Cortex-M4 assembly,
//!   ECDSA through RustCrypto (the `cm4` module says why); and
//!   `cm4::PROVIDER_FULL`, ECDSA through `p256-cm4` too, for boards
//!   (untested: QEMU cannot run `p256-cm4`'s ECDSA);
//! - your own: implement [`P256`] (a hardware accelerator, an assembly
//!   library) and put it in a `CryptoProvider`; [`counting::CountingP256`]
//!   wraps any other implementation and counts calls, which shows the
//!   plumbing without forking a crate.
//!
//! ```
//! use cssf_provider::{rustcrypto, CryptoProvider};
//! use rand_core::OsRng;
//!
//! let provider: &'static CryptoProvider = &rustcrypto::PROVIDER;
//! let p256 = provider.p256;
//! // ECDHE: both sides generate an ephemeral key and agree on one secret.
//! let (a, a_pub) = p256.ephemeral(&mut OsRng)?;
//! let (b, b_pub) = p256.ephemeral(&mut OsRng)?;
//! let za = p256.agree_ephemeral(a, &b_pub)?;
//! let zb = p256.agree_ephemeral(b, &a_pub)?;
//! assert_eq!(za.as_bytes(), zb.as_bytes());
//! // ECDSA P-256/SHA-256.
//! let key = p256.generate(&mut OsRng)?;
//! let sig = p256.sign(&key, b"message", &mut OsRng)?;
//! p256.verify(&key.public, b"message", &sig)?;
//! assert!(p256.verify(&key.public, b"massage", &sig).is_err());
//! # Ok::<(), cssf_provider::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod keys;
mod provider;

#[cfg(all(feature = "p256-cm4", target_arch = "arm"))]
#[cfg_attr(docsrs, doc(cfg(feature = "p256-cm4")))]
pub mod cm4;
pub mod counting;
#[cfg(feature = "ring")]
#[cfg_attr(docsrs, doc(cfg(feature = "ring")))]
pub mod ring;
pub mod rustcrypto;

pub use error::Error;
pub use keys::{
    EphemeralSecret, KeyPair, PublicKey, SecretKey, SharedSecret, Signature, DIGEST_LEN, POINT_LEN,
    SCALAR_LEN, SIGNATURE_LEN,
};
pub use provider::{Aead, AeadAlgorithm, CryptoProvider, Hash, SecureRandom, P256};
