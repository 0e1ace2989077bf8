//! ACE-OAuth (RFC 9200) resource-server side: CWT (RFC 8392) tokens in COSE
//! (RFC 9052 / 9053), AIF scopes (RFC 9237), proof-of-possession keys
//! (RFC 8747), a bounded token store, `/authz-info` and accounting events.
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`, no heap
//! on any path; the `alloc` and `std` features add conveniences, never
//! requirements. The `issuer` feature adds a token issuer (AS side) and the
//! `dtls` feature the ACE DTLS profile glue (RFC 9202).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod accounting;
pub mod aif;
pub mod authz_info;
pub mod bytes;
mod cbor;
pub mod cose;
pub mod cwt;
#[cfg(feature = "dtls")]
pub mod dtls;
mod error;
#[cfg(feature = "issuer")]
pub mod issuer;
pub mod pop;
pub mod store;

pub use accounting::AuthEvent;
pub use aif::{Aif, Method, ScopeMapper};
pub use authz_info::{AuthzInfo, Config, Response};
pub use bytes::Bytes;
pub use cbor::MAX_DEPTH;
pub use cose::{Algorithm, CoseKey, KeyEntry, KeyResolver, Limits};
pub use cwt::{Claims, Token, Validation};
pub use error::Error;
pub use pop::PopKey;
pub use store::{Decision, DenyReason, TokenStore};
