//! DTLS 1.2 (RFC 6347) under the RFC 7925 IoT profile, as a sans-IO state machine.
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`; the
//! `alloc` and `std` features add conveniences, never requirements.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

mod error;
mod psk;

pub use error::{AlertDescription, Error};
pub use psk::{PskStore, StaticPsk, MAX_IDENTITY_LEN, MAX_PSK_LEN};
