//! ACE-OAuth (RFC 9200) resource-server side: CWT (RFC 8392) tokens in COSE
//! (RFC 9052 / 9053), AIF scopes (RFC 9237), proof-of-possession keys
//! (RFC 8747), a bounded token store, `/authz-info` and accounting events.
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`, no heap
//! on any path, no `std` or `alloc` feature (nothing in it needs either). The `issuer` feature adds a token issuer (AS side) and the
//! `dtls` feature the ACE DTLS profile glue (RFC 9202), the `edhoc` feature
//! EDHOC (RFC 9528, module `edhoc`) with its OSCORE context export, the
//! `oscore-profile` feature the OSCORE profile of ACE (RFC 9203, module
//! `oscore_profile`, `AuthzInfo::post_oscore`). Features `log` and
//! `defmt` (bare-metal targets only; `DEFMT_LOG=cssf_auth=debug` to see
//! more than errors) log token decisions (accepted at info; rejected, with
//! the reason, at debug, since anyone can POST to `/authz-info`) and
//! request decisions (denied at debug, allowed at trace; paths escaped);
//! never a key, token or kid.
//!
//! ## Verifying a token
//!
//! RFC 8392 Appendix A.4, a CWT in a COSE_Mac0 with HMAC 256/64:
//!
//! ```
//! use core::time::Duration;
//! use cssf_auth::{cwt, Algorithm, CoseKey, KeyEntry, Limits, Validation};
//!
//! let key = hex("403697de87af64611c1d32a05dab0fe1fcb715a86ab435f1ec99192d79569388");
//! let keys = [KeyEntry::new(CoseKey::hmac(Algorithm::Hmac256_64, &key)?)];
//! let mut token = hex(
//!     "d18443a10104a05850a70175636f61703a2f2f61732e6578616d706c652e636f6d02656572\
//!      696b77037818636f61703a2f2f6c696768742e6578616d706c652e636f6d041a5612aeb005\
//!      1a5610d9f0061a5610d9f007420b7148093101ef6d789200",
//! );
//! let verified = cwt::Token::new(&mut token, Limits::default()).verify(&keys[..], &[])?;
//! let claims = verified.claims();
//! assert_eq!(claims.iss, Some("coap://as.example.com"));
//! // audience and lifetime, with a wall clock (seconds since the epoch)
//! let v = Validation { audience: "coap://light.example.com", leeway_secs: 60 };
//! let life = claims.validate(&v, Duration::ZERO, Some(1_444_000_000))?;
//! assert_eq!(life.exp, Some(1_444_064_944));
//! # fn hex(s: &str) -> Vec<u8> {
//! #     let s: String = s.split_whitespace().collect();
//! #     (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
//! # }
//! # Ok::<(), cssf_auth::Error>(())
//! ```
//!
//! A resource server uses [`AuthzInfo`] instead: `post` verifies, validates
//! and stores a token (answering 2.01 or an error code), `authorize` checks
//! each request against the stored scope, and `poll_event` drains the
//! accounting events.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

#[macro_use]
mod logging;
pub mod accounting;
pub mod acp;
pub mod aif;
pub mod authorizer;
pub mod authz_info;
pub mod bytes;
mod cbor;
pub mod cose;
pub mod cwt;
#[cfg(feature = "dtls")]
pub mod dtls;
#[cfg(feature = "edhoc")]
pub mod edhoc;
mod error;
pub mod exi;
#[cfg(feature = "issuer")]
pub mod issuer;
#[cfg(feature = "oscore-profile")]
pub mod oscore_profile;
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
