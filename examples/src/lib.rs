//! CSSF host programs: the glue the binaries share.
//!
//! - [`server`]: the CoAP/CoAPs device (`cssf-server`, and the device half of
//!   `cssf-demo`): UDP sockets on tokio, a cssf-dtls [`cssf_dtls::Endpoint`]
//!   feeding a cssf-coap [`cssf_coap::Endpoint`], ACE tokens from cssf-auth
//!   checked on every request, state in a cssf-store.
//! - [`client`]: the CoAP/CoAPs client (`cssf-client`, the client half of
//!   `cssf-demo`).
//! - [`token`]: minting and inspecting ACE access tokens (`cssf-token`, the
//!   Authorization Server of `cssf-demo`).
//! - [`keys`], [`uri`], [`nodestore`], [`util`]: key files, URIs, the
//!   device's persistent store, errors and argument parsing;
//!   [`oscore_file`]: the OSCORE security context files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acp_json;
pub mod cli;
pub mod client;
pub mod demo;
pub mod keys;
pub mod load;
pub mod nodestore;
pub mod oscore_file;
pub mod plugtest;
pub mod server;
pub mod token;
pub mod uri;
pub mod util;
