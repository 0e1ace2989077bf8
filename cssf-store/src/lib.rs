//! An encrypted, authenticated, power-fail-safe key-value store on NOR flash (embedded-storage traits).
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`; the
//! `alloc` and `std` features add conveniences, never requirements.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
