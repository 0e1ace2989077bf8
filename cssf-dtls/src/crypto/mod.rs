//! Cryptographic glue: the TLS 1.2 PRF, AEAD record protection and suites.

pub mod aead;
pub mod prf;
pub mod suite;
