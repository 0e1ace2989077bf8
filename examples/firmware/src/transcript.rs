//! The server's datagrams to the PSK client, recorded from the device run.
//! Regenerate with `scripts/embedded --regenerate-transcript`.

/// Each datagram the server sent the client, in order.
pub const SERVER_DATAGRAMS: &[&[u8]] = &[];
