//! The CoAP wire format (RFC 7252 §3) and its extensions' option values.
//!
//! Checked views for reading ([`Message`]) and a fixed-capacity builder for
//! writing ([`MessageBuilder`]), smoltcp style: parsing validates once, so
//! accessors cannot fail; emitting never allocates.

mod block;
mod code;
mod content_format;
mod message;
pub(crate) mod option;
pub mod uri;

pub use block::{Block, MAX_BLOCK_NUM};
pub use code::{Code, MessageType};
pub use content_format::ContentFormat;
pub use message::{field, Message, MessageBuilder, OptionValue, MAX_TOKEN_LEN, VERSION};
pub use option::{
    decode_uint, CoapOption, OptionFormat, OptionInfo, OptionNumber, Options, RawOption,
    RawOptions, UintBytes, MAX_OPTION_VALUE_LEN, PAYLOAD_MARKER,
};
