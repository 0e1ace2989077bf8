//! Transmission parameters (RFC 7252 §4.8) and endpoint limits.

use core::time::Duration;

/// Endpoint configuration: the RFC 7252 §4.8 transmission parameters plus
/// the knobs of the Observe, Block-wise and Echo machinery.
///
/// [`Config::default`] gives the RFC defaults.
///
/// ```
/// use cssf_coap::endpoint::Config;
/// use core::time::Duration;
/// let c = Config::default();
/// assert_eq!(c.ack_timeout, Duration::from_secs(2));
/// assert_eq!(c.max_retransmit, 4);
/// assert_eq!(c.exchange_lifetime(), Duration::from_secs(247));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// ACK_TIMEOUT (2 s).
    pub ack_timeout: Duration,
    /// ACK_RANDOM_FACTOR in thousandths (1500 = 1.5).
    pub ack_random_factor_milli: u32,
    /// MAX_RETRANSMIT (4).
    pub max_retransmit: u8,
    /// NSTART: confirmable messages outstanding per peer (1).
    pub nstart: u8,
    /// MAX_LATENCY (100 s), used to derive the lifetimes.
    pub max_latency: Duration,
    /// PROCESSING_DELAY (= ACK_TIMEOUT by default).
    pub processing_delay: Duration,
    /// How long the application may take before a confirmable request is
    /// acknowledged with an Empty ACK and answered separately (§5.2.2).
    pub separate_ack_delay: Duration,
    /// How long a client waits for a response (after the request was
    /// acknowledged, or for a NON request) before reporting a timeout.
    pub response_timeout: Duration,
    /// Every `notify_con_every`-th notification to an observer is sent
    /// confirmable to check it is still there (RFC 7641 §4.5).
    pub notify_con_every: u32,
    /// Max-Age put on 5.03 answers when a table is full.
    pub busy_max_age: u32,
    /// Largest block size exponent the endpoint sends or accepts
    /// (block size `2^(szx+4)`, 6 = 1024 bytes).
    pub max_szx: u8,
    /// Largest Block1 upload accepted (bytes); larger ones get 4.13.
    pub max_body: u32,
    /// How long after it was issued an Echo value is accepted (RFC 9175
    /// §2.4; whole seconds: a value is never accepted longer). Values carry
    /// their issue time and are bound to the peer they were issued to, so
    /// there is no rotation to schedule.
    pub echo_lifetime: Duration,
    /// Token length used for requests (1..=8).
    pub token_len: u8,
    /// The share, in percent, of each table the server side keeps for its
    /// peers (observers, Block1 uploads, requests the application has not
    /// answered, the message-ID cache) that one peer may hold (default 50;
    /// at least one entry). See [`Config::peer_quota`].
    pub peer_share_percent: u8,
    /// Toward a peer whose address is not verified (see
    /// `Endpoint::set_verified_peers`), an answer is at most this many
    /// times the size of the request (RFC 9175 §2.4 item 3: default 3; 0
    /// turns the limit off). A larger answer to GET or FETCH becomes a 4.01
    /// Echo challenge; one to another method goes in smaller Block2 blocks
    /// (the challenge if not even 16-byte blocks fit); notifications go in
    /// smaller blocks or not at all; a cached answer is not replayed to a
    /// shorter duplicate.
    pub amplification_factor: u8,
    /// How long a plain peer that answered an Echo challenge counts as
    /// verified (default 300 s).
    pub address_validity: Duration,
    /// Relaxed deduplication (RFC 7252 §4.5: "This rule MAY be relaxed in
    /// case the Confirmable message transports a request that is
    /// idempotent"): a GET or FETCH without Observe and Block1 takes no
    /// entry in the message-ID cache, so it never meets the cache's limits
    /// (a peer's quota of entries lasts MAX_TRANSMIT_SPAN, 45 s, after
    /// which 5.03 answers a faster peer), and a retransmission of it is
    /// handed to the application again instead of being answered from the
    /// cache. Other methods, registrations and uploads are deduplicated as
    /// always; OSCORE requests too. Default `false` (the RFC's SHOULD).
    pub relaxed_dedup: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ack_timeout: Duration::from_secs(2),
            ack_random_factor_milli: 1500,
            max_retransmit: 4,
            nstart: 1,
            max_latency: Duration::from_secs(100),
            processing_delay: Duration::from_secs(2),
            separate_ack_delay: Duration::from_secs(1),
            response_timeout: Duration::from_secs(93),
            notify_con_every: 8,
            busy_max_age: 5,
            max_szx: 6,
            max_body: 64 * 1024,
            echo_lifetime: Duration::from_secs(30),
            token_len: 4,
            peer_share_percent: 50,
            amplification_factor: 3,
            address_validity: Duration::from_secs(300),
            relaxed_dedup: false,
        }
    }
}

impl Config {
    /// MAX_TRANSMIT_SPAN = ACK_TIMEOUT × (2^MAX_RETRANSMIT − 1) × ACK_RANDOM_FACTOR.
    pub fn max_transmit_span(&self) -> Duration {
        let factor = (1u32 << self.max_retransmit.min(16)).saturating_sub(1);
        self.ack_timeout
            .saturating_mul(factor)
            .saturating_mul(self.ack_random_factor_milli)
            / 1000
    }

    /// EXCHANGE_LIFETIME = MAX_TRANSMIT_SPAN + 2 × MAX_LATENCY + PROCESSING_DELAY
    /// (247 s with the defaults): how long a message ID is remembered.
    pub fn exchange_lifetime(&self) -> Duration {
        self.max_transmit_span()
            .saturating_add(self.max_latency.saturating_mul(2))
            .saturating_add(self.processing_delay)
    }

    /// NON_LIFETIME = MAX_TRANSMIT_SPAN + MAX_LATENCY (145 s with the defaults).
    pub fn non_lifetime(&self) -> Duration {
        self.max_transmit_span().saturating_add(self.max_latency)
    }

    /// MAX_TRANSMIT_WAIT = ACK_TIMEOUT × (2^(MAX_RETRANSMIT + 1) − 1) ×
    /// ACK_RANDOM_FACTOR (93 s with the defaults): the longest a confirmable
    /// message is retransmitted before the endpoint gives up.
    pub fn max_transmit_wait(&self) -> Duration {
        let factor = (1u32 << (self.max_retransmit.min(15) + 1)).saturating_sub(1);
        self.ack_timeout
            .saturating_mul(factor)
            .saturating_mul(self.ack_random_factor_milli)
            / 1000
    }

    /// How many entries of a table with `capacity` slots one peer may hold:
    /// [`Config::peer_share_percent`] of it, at least 1.
    ///
    /// ```
    /// use cssf_coap::endpoint::Config;
    /// let c = Config::default();
    /// assert_eq!(c.peer_quota(8), 4);
    /// assert_eq!(c.peer_quota(1), 1);
    /// ```
    pub fn peer_quota(&self, capacity: usize) -> usize {
        let pct = usize::from(self.peer_share_percent.clamp(1, 100));
        (capacity.saturating_mul(pct) / 100).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7252_derived_parameters() {
        let c = Config::default();
        assert_eq!(c.max_transmit_span(), Duration::from_secs(45));
        assert_eq!(c.exchange_lifetime(), Duration::from_secs(247));
        assert_eq!(c.non_lifetime(), Duration::from_secs(145));
        assert_eq!(c.max_transmit_wait(), Duration::from_secs(93));
    }
}
