//! ACE-OAuth (RFC 9200) resource-server side: CWT (RFC 8392) tokens in COSE (RFC 9052), AIF scopes (RFC 9237), proof-of-possession keys (RFC 8747).
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`; the
//! `alloc` and `std` features add conveniences, never requirements.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
