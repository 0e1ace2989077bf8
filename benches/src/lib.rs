//! Criterion benchmarks for CSSF live in `benches/`; run them with
//! `scripts/bench`. Each figure is measured beside its peer or its floor in
//! the same run and reported as a ratio.
//!
//! This library holds the setup several benches share: the CSSF DTLS
//! drivers ([`cssf`]), the OpenSSL DTLS 1.2 drivers over an in-memory
//! datagram pipe ([`ossl`]), and the reader of criterion's medians
//! ([`estimates`]).

pub mod cssf;
pub mod estimates;
pub mod ossl;
