//! Counters of what a client or endpoint received, dropped and sent.

/// Counters of what was received and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams handed in.
    pub datagrams_received: u64,
    /// Records that parsed.
    pub records_received: u64,
    /// Records dropped as malformed, from an unusable epoch or unexpected.
    pub records_dropped: u64,
    /// Records dropped because authentication failed.
    pub auth_failures: u64,
    /// Records dropped as replays (or older than the window).
    pub replays: u64,
    /// Flight retransmissions (timer or peer-triggered).
    pub retransmissions: u64,
    /// Application records dropped because the receive queue was full.
    pub rx_overflow: u64,
    /// Bytes of datagrams sent.
    pub bytes_sent: u64,
    /// Bytes of datagrams received.
    pub bytes_received: u64,
    /// Server: ClientHellos (with a valid cookie) dropped because no
    /// handshake slot, or no established-session slot for when the
    /// handshake completes, was free.
    pub handshakes_refused: u64,
    /// Server: records and path challenges not sent to an address that
    /// has not proven it receives, to stay within three times what came
    /// from it (RFC 9853 §5, Connection ID moves).
    pub amplification_limited: u64,
    /// Server: cookie-verified ClientHellos dropped as replays: the same
    /// client random from the same address as one taken within the cookie
    /// lifetime whose handshake is no longer in progress (the endpoint's
    /// ClientHello replay cache).
    pub client_hello_replays: u64,
}

impl Stats {
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn add(&mut self, o: &Stats) {
        self.datagrams_received += o.datagrams_received;
        self.records_received += o.records_received;
        self.records_dropped += o.records_dropped;
        self.auth_failures += o.auth_failures;
        self.replays += o.replays;
        self.retransmissions += o.retransmissions;
        self.rx_overflow += o.rx_overflow;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.handshakes_refused += o.handshakes_refused;
        self.amplification_limited += o.amplification_limited;
        self.client_hello_replays += o.client_hello_replays;
    }
}
