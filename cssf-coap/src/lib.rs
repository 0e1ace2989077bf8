//! CoAP for constrained devices: the RFC 7252 message codec (with the
//! Observe, Block-wise, No-Response, Hop-Limit and Echo/Request-Tag options).
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]`, no
//! allocation: [`Message`] is a validated zero-copy view over a received
//! datagram and [`MessageBuilder`] writes a message into a caller buffer.
//!
//! ```
//! use cssf_coap::{Block, Code, ContentFormat, Message, MessageBuilder, MessageType, OptionNumber};
//!
//! // Build: CON GET /sensors/temp, Observe 0, Block2 0/0/64.
//! let mut req = MessageBuilder::<8>::new(MessageType::Con, Code::GET, 0x1234);
//! req.token(&[0xde, 0xad, 0xbe, 0xef])?;
//! req.uri_path("sensors/temp")?;
//! req.observe(0)?;
//! req.block2(Block::new(0, false, 2)?)?;
//! let mut buf = [0u8; 64];
//! let len = req.emit(&mut buf)?;
//!
//! // Parse it back.
//! let msg = Message::parse(&buf[..len])?;
//! assert_eq!(msg.code(), Code::GET);
//! assert_eq!(msg.token(), &[0xde, 0xad, 0xbe, 0xef]);
//! assert_eq!(msg.observe()?, Some(0));
//! assert_eq!(msg.block2()?.map(|b| b.size()), Some(64));
//! for opt in msg.options() {
//!     assert!(opt.number.is_known());
//! }
//! assert_eq!(msg.check_options(), Ok(()));
//!
//! // A response with a payload.
//! let mut rsp = MessageBuilder::<4>::new(MessageType::Ack, Code::CONTENT, 0x1234);
//! rsp.token(msg.token())?.content_format(ContentFormat::TEXT_PLAIN)?;
//! rsp.payload(b"22.5");
//! let mut out = [0u8; 64];
//! let len = rsp.emit(&mut out)?;
//! assert_eq!(Message::parse(&out[..len])?.payload(), b"22.5");
//! # Ok::<(), cssf_coap::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

#[macro_use]
mod logging;
pub mod endpoint;
mod error;
pub mod lite;
#[cfg(feature = "oscore")]
#[cfg_attr(docsrs, doc(cfg(feature = "oscore")))]
pub mod oscore;
pub mod wire;

pub use endpoint::{Endpoint, Event};
pub use error::Error;
/// The `rand_core` version the endpoint's RNG bound refers to.
pub use rand_core;
pub use wire::{
    Block, CoapOption, Code, ContentFormat, Message, MessageBuilder, MessageType, OptionFormat,
    OptionNumber, OptionValue,
};
