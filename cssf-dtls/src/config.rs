//! Configuration shared by clients and servers.

use core::time::Duration;

use crate::crypto::suite::CipherSuite;
use crate::psk::MAX_IDENTITY_LEN;
use crate::Error;

/// Largest X.509 certificate we send (feature `x509`): it must fit in one
/// handshake flight beside ServerHello and ServerKeyExchange.
#[cfg(feature = "x509")]
#[cfg_attr(docsrs, doc(cfg(feature = "x509")))]
pub const MAX_CERTIFICATE_LEN: usize = 640;

/// Handshake and record-layer settings.
///
/// ```
/// use cssf_dtls::{Config, CipherSuite};
/// use core::time::Duration;
/// let mut c = Config::default();
/// c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap();
/// c.retransmit_initial = Duration::from_millis(200);
/// assert_eq!(c.mtu, 1152);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Suites offered (client) or accepted (server), in preference order.
    pub suites: heapless::Vec<CipherSuite, 8>,
    /// Largest datagram we send (flights are fragmented to fit).
    pub mtu: usize,
    /// Initial retransmission timeout (RFC 6347 §4.2.4.1 suggests 1 s;
    /// RFC 7925 §11 recommends 9 s for constrained networks, the default).
    pub retransmit_initial: Duration,
    /// Upper bound of the exponential backoff (RFC 7925 §11: at least 60 s).
    pub retransmit_max: Duration,
    /// Retransmissions of one flight before the handshake fails.
    pub max_retransmits: u8,
    /// Insist on extended master secret (RFC 7627); on by default.
    pub require_extended_master_secret: bool,
    /// Offer record_size_limit (RFC 8449) with this value (>= 64), if set.
    pub record_size_limit: Option<u16>,
    /// Server: psk_identity_hint sent in ServerKeyExchange (empty = none).
    pub psk_identity_hint: heapless::Vec<u8, MAX_IDENTITY_LEN>,
    /// Server with a signing key: ask ECDHE_ECDSA clients for their raw
    /// public key (CertificateRequest) and refuse those without one.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub require_client_auth: bool,
    /// Server (feature `x509`): our DER X.509 certificate for the key given
    /// to [`Endpoint::with_raw_public_key`](crate::Endpoint::with_raw_public_key),
    /// sent to ECDHE_ECDSA clients that do not take raw public keys
    /// (empty: such clients are refused). The caller makes sure it matches
    /// the key.
    #[cfg(feature = "x509")]
    #[cfg_attr(docsrs, doc(cfg(feature = "x509")))]
    pub certificate: heapless::Vec<u8, MAX_CERTIFICATE_LEN>,
    /// Server: a session without traffic for this long is dropped.
    pub idle_timeout: Duration,
    /// Server: how often the cookie secret rotates.
    pub cookie_rotation: Duration,
    /// Server: how long a HelloVerifyRequest cookie is taken (a client
    /// sends its ClientHello with the cookie at once; one whose cookie
    /// expired gets a new one). Bounds how long a captured ClientHello can
    /// be replayed.
    pub cookie_lifetime: Duration,
    /// Server: the most sessions (established or in their handshake) one
    /// host ([`PeerAddress::same_host`](crate::PeerAddress::same_host))
    /// keeps when others need room; `None`: half of the endpoint's session
    /// slots (at least one). A session counts against the host its
    /// handshake came from, wherever it moves later (Connection ID).
    ///
    /// While session slots are free a host may hold more: those slots are
    /// lent. With the table full, a new handshake of a host below its
    /// limit takes the place of the least recently active session of a
    /// host beyond its limit (which ends with
    /// [`CloseReason::Evicted`](crate::CloseReason::Evicted); the new
    /// handshake needs the slot before it has authenticated, so only a
    /// lent slot is given back this way). A session within its host's
    /// limit is never evicted for another handshake, and a host at its
    /// limit never evicts its own sessions: with the table full its new
    /// handshake is refused
    /// ([`Stats::handshakes_refused`](crate::Stats::handshakes_refused)).
    pub max_sessions_per_host: Option<u16>,
    /// Connection ID (RFC 9146). `None`: not offered (client) or not
    /// accepted (server). `Some(n)`, `n <= MAX_CID_LEN`: negotiate CIDs and
    /// ask the peer to put an `n`-byte CID of ours in its records (`0`: we
    /// send with the peer's CID but want none ourselves). A server gives
    /// every session a distinct CID of exactly this length, which is how it
    /// finds the session of a tls12_cid record whatever its source address.
    /// Needs feature `cid` (default): without it [`validate`](Self::validate)
    /// refuses `Some`.
    pub cid_len: Option<u8>,
    /// With Connection IDs, negotiate the Return Routability Check (RFC
    /// 9853, the `rrc` extension; on by default): a server moves a session
    /// to a new address only once the peer answered a `path_challenge`
    /// there; both sides answer the peer's challenges (§5.4: once each, to
    /// the address it came from). Without it a server moves at once but
    /// sends to the new address at most three times what it received from
    /// there until [`Endpoint::address_validated`](crate::Endpoint::address_validated)
    /// (except to an address known to receive: the handshake's, or one
    /// validated since).
    pub rrc: bool,
    /// Server, with Connection IDs: grant CIDs only to clients that also
    /// negotiate the Return Routability Check. A client offering
    /// `connection_id` without `rrc` gets a session without CIDs (found by
    /// its address, never moved), so no session changes address without a
    /// check. Off by default: RFC 9853 §3 lets a client whose application
    /// validates addresses itself (CoAP Echo) leave `rrc` out, and such a
    /// session then moves at once under the limit described at
    /// [`rrc`](Self::rrc). [`validate`](Self::validate) refuses it with
    /// `rrc` off.
    pub require_rrc: bool,
    /// tls12_cid records: pad the inner plaintext (content and real type)
    /// with zeros to a multiple of this many bytes (0 or 1: no padding).
    pub cid_padding: u8,
    /// Server: assign session IDs, keep the sessions in the endpoint's
    /// bounded cache and accept abbreviated handshakes resuming them. On by
    /// default with feature `resumption` (default); without it
    /// [`validate`](Self::validate) refuses `true`.
    pub resumption: bool,
    /// Server: a cached session is not resumed once this long has passed
    /// since its full handshake (RFC 5246 §F.1.4 suggests at most 24 hours,
    /// the default).
    pub session_lifetime: Duration,
    /// Client: offer extended master secret (RFC 7627). Turning it off is
    /// only for peers that need it and requires
    /// `require_extended_master_secret = false`.
    pub offer_extended_master_secret: bool,
    /// The crypto provider (feature `ecdhe`): what computes the P-256
    /// operations of the ECDHE suites (ephemeral ECDH, ServerKeyExchange
    /// and CertificateVerify signatures and their verification). Default:
    /// [`provider::rustcrypto::PROVIDER`](crate::provider::rustcrypto::PROVIDER);
    /// with feature `ring-p256`, `provider::ring::PROVIDER` is the fast host
    /// backend; a hardware accelerator implements
    /// [`provider::P256`](crate::provider::P256) (see the `cssf-provider`
    /// crate). The records' AEAD and the PRF do not go through it yet.
    ///
    /// ```
    /// use cssf_dtls::provider::{counting::CountingP256, rustcrypto, CryptoProvider};
    /// use cssf_dtls::Config;
    ///
    /// // RustCrypto's P-256 with every call counted: a stand-in for an
    /// // accelerator's implementation of `provider::P256`.
    /// static COUNTED: CountingP256 = CountingP256::new(&rustcrypto::RustCryptoP256);
    /// static MINE: CryptoProvider = CryptoProvider {
    ///     name: "counted",
    ///     p256: &COUNTED,
    ///     ..rustcrypto::PROVIDER
    /// };
    /// let mut c = Config::default();
    /// assert_eq!(c.crypto.name, "rustcrypto");
    /// c.crypto = &MINE; // with feature `ring-p256`: &cssf_dtls::provider::ring::PROVIDER
    /// ```
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub crypto: &'static cssf_provider::CryptoProvider,
}

/// Longest Connection ID this crate asks a peer to use (RFC 9146 allows 255).
pub const MAX_CID_LEN: usize = 16;

/// Longest Connection ID a peer may ask us to send (Mbed TLS bounds it the
/// same way): a server ignores a longer offer (no CIDs on that
/// connection), a client refuses a longer one with illegal_parameter.
pub const MAX_PEER_CID_LEN: usize = 32;

impl Default for Config {
    fn default() -> Self {
        Config {
            suites: heapless::Vec::from_slice(&CipherSuite::ALL).unwrap_or_default(),
            mtu: 1152,
            retransmit_initial: Duration::from_secs(9),
            retransmit_max: Duration::from_secs(60),
            max_retransmits: 7,
            require_extended_master_secret: true,
            record_size_limit: None,
            psk_identity_hint: heapless::Vec::new(),
            #[cfg(feature = "ecdhe")]
            require_client_auth: false,
            #[cfg(feature = "x509")]
            certificate: heapless::Vec::new(),
            idle_timeout: Duration::from_secs(600),
            cookie_rotation: Duration::from_secs(300),
            cookie_lifetime: Duration::from_secs(20),
            max_sessions_per_host: None,
            cid_len: None,
            rrc: true,
            require_rrc: false,
            cid_padding: 0,
            resumption: cfg!(feature = "resumption"),
            session_lifetime: Duration::from_secs(24 * 3600),
            offer_extended_master_secret: true,
            #[cfg(feature = "ecdhe")]
            crypto: &cssf_provider::rustcrypto::PROVIDER,
        }
    }
}

/// `d` in whole milliseconds, saturating at `u32::MAX`.
#[cfg_attr(not(any(feature = "server", feature = "resumption")), allow(dead_code))]
fn millis32(d: Duration) -> u32 {
    u32::try_from(d.as_secs())
        .map_or(u32::MAX, |s| s.saturating_mul(1000))
        .saturating_add(d.subsec_millis())
}

impl Config {
    /// `cid_len`, or `None` when Connection IDs are compiled out (feature
    /// `cid`): the CID code is then dead and not linked.
    pub(crate) fn cid(&self) -> Option<u8> {
        self.cid_len.filter(|_| cfg!(feature = "cid"))
    }

    /// `resumption`, false when it is compiled out (feature `resumption`).
    #[cfg(feature = "server")]
    pub(crate) fn resumes(&self) -> bool {
        cfg!(feature = "resumption") && self.resumption
    }

    /// How long the side that sent a handshake's last flight keeps it to
    /// resend (RFC 6347 §4.2.4): as long as a peer with these settings
    /// keeps retransmitting its own last flight before giving up.
    /// Counted in whole milliseconds with 32-bit arithmetic (saturating
    /// at about 49 days): `Duration`'s 64-bit seconds and nanosecond
    /// carries cost a small image a few hundred bytes here. (Only a server,
    /// or a client that resumes, ever sends a last flight.)
    #[cfg_attr(not(any(feature = "server", feature = "resumption")), allow(dead_code))]
    pub(crate) fn linger_time(&self) -> Duration {
        let max = millis32(self.retransmit_max);
        let mut rto = millis32(self.retransmit_initial);
        let mut total = 0u32;
        for _ in 0..=self.max_retransmits {
            total = total.saturating_add(rto);
            rto = rto.saturating_mul(2).min(max);
        }
        Duration::new(u64::from(total / 1000), (total % 1000) * 1_000_000)
    }

    /// RFC 9853 §5.5: the timer of a server's path check, after which it
    /// sends another challenge or gives up: three times the handshake's
    /// round trip when it measured one, never less than
    /// `retransmit_initial`, this deployment's timer for a round trip not
    /// known (RFC 6347's 1 s, RFC 7925's 9 s for constrained networks): a
    /// new path may be slower than the old one.
    #[cfg(all(feature = "server", feature = "cid"))]
    pub(crate) fn path_check_timer(&self, round_trip: Option<Duration>) -> Duration {
        let t = self.retransmit_initial;
        round_trip.map_or(t, |r| t.max(r.saturating_mul(3)))
    }

    /// Checks the settings are usable (`Error::Config` otherwise, also for
    /// Connection IDs without feature `cid`, resumption without feature
    /// `resumption` and `require_rrc` without `rrc`).
    pub fn validate(&self) -> Result<(), Error> {
        if self.suites.is_empty()
            || self.mtu < 128
            || self.record_size_limit.is_some_and(|l| l < 64)
            || self.retransmit_initial.is_zero()
            || self.cookie_lifetime.is_zero()
            || self.max_sessions_per_host == Some(0)
            || self.cid_len.is_some_and(|l| usize::from(l) > MAX_CID_LEN)
            || (self.cid_len.is_some() && !cfg!(feature = "cid"))
            || (self.resumption && !cfg!(feature = "resumption"))
            || (self.require_extended_master_secret && !self.offer_extended_master_secret)
            || (self.require_rrc && !self.rrc)
        {
            return Err(Error::Config);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linger_time_sums_the_backed_off_timeouts() {
        let mut c = Config::default();
        // 9 + 18 + 36 + 5 × 60 s (capped), eight transmissions.
        assert_eq!(c.linger_time(), Duration::from_secs(363));
        c.retransmit_initial = Duration::from_millis(250);
        c.retransmit_max = Duration::from_millis(1500);
        c.max_retransmits = 3;
        assert_eq!(
            c.linger_time(),
            Duration::from_millis(250 + 500 + 1000 + 1500)
        );
        c.retransmit_initial = Duration::from_secs(u64::MAX);
        c.retransmit_max = Duration::from_secs(u64::MAX);
        assert_eq!(c.linger_time(), Duration::from_millis(u64::from(u32::MAX)));
    }
}
