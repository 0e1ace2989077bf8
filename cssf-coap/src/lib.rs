//! CoAP for constrained devices: RFC 7252 message codec (with Observe, Block-wise, No-Response, Hop-Limit, Echo/Request-Tag options) and a sans-IO endpoint.
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`; the
//! `alloc` and `std` features add conveniences, never requirements.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
