//! The DTLS server endpoint: stateless cookie exchange (RFC 6347 §4.2.1),
//! then a handshake in one of `H` handshake slots; once complete it is
//! compacted into one of `N` established-session slots
//! ([`Established`](crate::established)), found by Connection ID first
//! (RFC 9146 §4: tls12_cid records, whatever their source address), then by
//! address; plus the bounded session cache for resumption and the shared
//! application queues.

use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::config::{Config, MAX_CID_LEN};
use crate::connection::{ConnEvent, Connection, State, Stats};
use crate::cookie::{CookieSecrets, PeerAddress};
use crate::established::{Established, Upcall};
use crate::event::{Event, Transmit};
use crate::flight::MAX_MESSAGE_LEN;
use crate::psk::PskStore;
use crate::queue::AppQueue;
use crate::session::SessionCache;
#[cfg(feature = "ecdhe")]
use crate::trust::SigningKey;
use crate::trust::{RejectAll, TrustStore};
use crate::wire::cid_record::{CID_OFFSET, TLS12_CID};
use crate::wire::client_hello::ClientHelloRepr;
use crate::wire::handshake::{msg_type, HandshakeHeader, HEADER_LEN as HS_HEADER};
use crate::wire::hello_verify_request::HelloVerifyRequestRepr;
use crate::wire::record::{ContentType, RecordHeader, HEADER_LEN as REC_HEADER};
use crate::wire::DTLS_1_0;
use crate::Error;

/// The highest record sequence number a ClientHello may carry: the
/// server's epoch-0 records continue from it, and about 2^16 of them
/// (every fragment of every retransmission) must still fit below 2^48.
const MAX_CLIENT_HELLO_SEQUENCE: u64 = (1 << 48) - (1 << 16);

const STATELESS_QUEUE: usize = 4;
const STATELESS_MAX: usize = 64;
const EVENTS: usize = 16;

/// An established session: its peer, its number (tagging its queued
/// records) and its compact state.
struct Slot<A> {
    peer: A,
    id: u32,
    est: Established,
}

impl<A: Clone> Slot<A> {
    /// Sends close_notify (and reports its own `Closed` event), dropping
    /// what the session still had queued for sending.
    fn close(
        &mut self,
        events: &mut heapless::Deque<Event<A>, EVENTS>,
        rxq: &mut AppQueue,
        txq: &mut AppQueue,
    ) {
        let mut up = EpUp {
            events,
            rxq,
            peer: &self.peer,
            tag: self.id,
            share: false,
            linger: None,
        };
        self.est.close(&mut up);
        txq.purge(self.id);
    }
}

/// A handshake in progress, or one that completed and lingers to resend
/// its last flight (`linger_until` set; its session is in a [`Slot`] with
/// the same `id`).
struct Handshake<A> {
    peer: A,
    id: u32,
    conn: Connection,
    linger_until: Option<Duration>,
    /// A half-open handshake's hard end: it never lives longer than a
    /// peer's whole retransmission budget, however active it looks.
    expires: Duration,
}

/// How a lingering handshake is reached while its session processes a
/// datagram.
struct Linger<'a> {
    conn: &'a mut Connection,
    now: Duration,
    rng: &'a mut dyn CryptoRngCore,
    store: &'a mut dyn PskStore,
    trust: &'a dyn TrustStore,
}

/// The endpoint's side of an established session's input.
struct EpUp<'a, A> {
    events: &'a mut heapless::Deque<Event<A>, EVENTS>,
    rxq: &'a mut AppQueue,
    peer: &'a A,
    tag: u32,
    /// Other sessions are established: this one gets its fair share of
    /// the receive queue only (see [`Endpoint::recv`]).
    share: bool,
    linger: Option<Linger<'a>>,
}

impl<A: Clone> Upcall for EpUp<'_, A> {
    fn data(&mut self, plain: &[u8]) -> bool {
        if self.events.is_full()
            || (self.share && !self.rxq.fair(self.tag, plain.len()))
            || !self.rxq.push(self.tag, plain)
        {
            return false;
        }
        let _ = self.events.push_back(Event::ApplicationData {
            peer: self.peer.clone(),
            len: plain.len(),
        });
        true
    }
    fn event(&mut self, e: ConnEvent) {
        let peer = self.peer.clone();
        let _ = self.events.push_back(match e {
            ConnEvent::Connected(suite) => Event::Connected { peer, suite },
            ConnEvent::Data(len) => Event::ApplicationData { peer, len },
            ConnEvent::Closed(error) => Event::Closed { peer, error },
        });
    }
    fn old_handshake(&mut self, epoch: u16, plain: &[u8]) -> Result<bool, Error> {
        match self.linger.as_mut() {
            Some(l) => l
                .conn
                .handle_old_handshake(l.now, epoch, plain, l.rng, l.store, l.trust),
            None => Ok(false),
        }
    }
}

/// A DTLS 1.2 server for up to `N` established sessions and `H` handshakes
/// in progress: PSK clients resolved through `P`, and, when built
/// [`with_raw_public_key`](Self::with_raw_public_key), ECDHE_ECDSA clients
/// with raw public keys accepted by `T`; up to `S` sessions are kept for
/// resumption.
///
/// A handshake occupies a handshake slot (a large one: transcript, flight
/// buffer, reassembly, ECDHE keys); once complete it is compacted into an
/// established-session slot of a few hundred bytes ([`footprint`](crate::footprint)).
/// The side that sent the last flight keeps its handshake slot until the
/// peer shows it got that flight (an authenticated application data or
/// alert record) or the peer's whole retransmission budget has passed
/// (the sum of its backed-off timeouts under our [`Config`]), resending
/// the flight whenever the peer repeats its own (RFC 6347 §4.2.4). A new
/// handshake is only admitted while a handshake slot is free (a half-open
/// handshake that heard nothing from its peer for
/// [`Config::retransmit_initial`] gives its slot up, and so does a
/// lingering one once its last flight went out) and an
/// established-session slot is left for it; otherwise the ClientHello is
/// dropped (counted in [`Stats::handshakes_refused`]).
///
/// Received application records wait for [`recv`](Self::recv) in one
/// queue shared by all sessions ([`APP_QUEUE_CAPACITY`](crate::APP_QUEUE_CAPACITY)
/// bytes, 16 records). While more than one session is established, a
/// session holds at most half of it (8 records and half the bytes; its
/// first record is always taken if it fits): a session whose records are
/// not read cannot crowd the others out. A record beyond the share, or
/// one that does not fit, is dropped and counted in [`Stats::rx_overflow`].
///
/// ```
/// use cssf_dtls::{Config, Endpoint, StaticPsk};
/// use core::time::Duration;
/// # let rng = cssf_netsim::SimRng::new(1);
/// let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
/// let mut server: Endpoint<u16, _, _, 4> = Endpoint::new(Config::default(), StaticPsk::new(&keys), rng, Duration::ZERO).unwrap();
/// assert_eq!(server.poll_timeout(), None); // nothing to do until a ClientHello arrives
/// ```
///
/// A whole PSK handshake in memory, then a request from the client:
///
/// ```
/// use cssf_dtls::{Client, Config, Endpoint, Event, StaticPsk};
/// use core::time::Duration;
/// # let (rng_c, rng_s) = (cssf_netsim::SimRng::new(1), cssf_netsim::SimRng::new(2));
/// let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
/// let mut server: Endpoint<u8, _, _, 2> =
///     Endpoint::new(Config::default(), StaticPsk::new(&keys), rng_s, Duration::ZERO).unwrap();
/// let mut client = Client::new(Config::default(), b"Client_identity", b"secretPSK", 2u8, rng_c, Duration::ZERO).unwrap();
/// let now = Duration::ZERO;
/// let mut buf = [0u8; 1500];
/// for _ in 0..8 {
///     while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
///         server.handle_datagram(now, 1u8, &mut buf[..t.len]).unwrap();
///     }
///     while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
///         client.handle_datagram(now, t.to + 1, &mut buf[..t.len]).unwrap();
///     }
/// }
/// assert!(client.is_connected());
/// client.send(now, b"GET /temp").unwrap();
/// let t = client.poll_transmit(now, &mut buf).unwrap().unwrap();
/// server.handle_datagram(now, 1u8, &mut buf[..t.len]).unwrap();
/// let mut got = [0u8; 64];
/// assert_eq!(server.recv(&1u8, &mut got).unwrap(), Some(9));
/// assert_eq!(&got[..9], b"GET /temp");
/// ```
pub struct Endpoint<A, P, R, const N: usize, T = RejectAll, const S: usize = 4, const H: usize = 2>
{
    config: Config,
    store: P,
    #[cfg(feature = "ecdhe")]
    own_key: Option<SigningKey>,
    trust: T,
    rng: R,
    cookies: CookieSecrets,
    next_rotation: Duration,
    sessions: heapless::Vec<Slot<A>, N>,
    handshakes: heapless::Vec<Handshake<A>, H>,
    stateless: heapless::Deque<(A, [u8; STATELESS_MAX], usize), STATELESS_QUEUE>,
    events: heapless::Deque<Event<A>, EVENTS>,
    stats: Stats,
    rr: usize,
    cache: SessionCache<S>,
    txq: AppQueue,
    rxq: AppQueue,
    next_id: u32,
}

impl<A, P, R, const N: usize, T, const S: usize, const H: usize> core::fmt::Debug
    for Endpoint<A, P, R, N, T, S, H>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("sessions", &self.sessions.len())
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl<
        A: PeerAddress,
        P: PskStore,
        R: CryptoRngCore,
        const N: usize,
        const S: usize,
        const H: usize,
    > Endpoint<A, P, R, N, RejectAll, S, H>
{
    /// A server resolving PSK identities through `store` (the ECDHE_ECDSA
    /// suites are not selected: it has no key).
    pub fn new(config: Config, store: P, rng: R, now: Duration) -> Result<Self, Error> {
        Self::build(
            config,
            store,
            #[cfg(feature = "ecdhe")]
            None,
            RejectAll,
            rng,
            now,
        )
    }
}

impl<
        A: PeerAddress,
        P: PskStore,
        R: CryptoRngCore,
        const N: usize,
        T: TrustStore,
        const S: usize,
        const H: usize,
    > Endpoint<A, P, R, N, T, S, H>
{
    /// A server that also offers the ECDHE_ECDSA suites with raw public keys
    /// (RFC 7250): `key` signs its ServerKeyExchange; with
    /// [`Config::require_client_auth`] clients must present a key that
    /// `trust` accepts. PSK clients keep working through `store` (pass
    /// `StaticPsk::new(&[])` for none).
    ///
    /// ```
    /// use cssf_dtls::{Config, Endpoint, PinnedKeys, SigningKey, StaticPsk};
    /// use core::time::Duration;
    /// # let mut rng = cssf_netsim::SimRng::new(1);
    /// let key = SigningKey::random(&mut rng);
    /// let client_pins = [p256::PublicKey::from(SigningKey::random(&mut rng).verifying_key())];
    /// let mut config = Config::default();
    /// config.require_client_auth = true;
    /// let server: Endpoint<u16, _, _, 4, _> = Endpoint::with_raw_public_key(
    ///     config, StaticPsk::new(&[]), key, PinnedKeys::new(&client_pins), rng, Duration::ZERO,
    /// ).unwrap();
    /// assert_eq!(server.sessions(), 0);
    /// ```
    ///
    /// A whole handshake with mutual authentication:
    ///
    /// ```
    /// use cssf_dtls::{Client, Config, Endpoint, PinnedKeys, SigningKey, StaticPsk};
    /// use core::time::Duration;
    /// # let (mut rng_c, mut rng_s) = (cssf_netsim::SimRng::new(1), cssf_netsim::SimRng::new(2));
    /// let (server_key, client_key) = (SigningKey::random(&mut rng_s), SigningKey::random(&mut rng_c));
    /// let server_pin = [p256::PublicKey::from(server_key.verifying_key())];
    /// let client_pin = [p256::PublicKey::from(client_key.verifying_key())];
    /// let mut config = Config::default();
    /// config.require_client_auth = true;
    /// let mut server: Endpoint<u8, _, _, 2, _> = Endpoint::with_raw_public_key(
    ///     config.clone(), StaticPsk::new(&[]), server_key, PinnedKeys::new(&client_pin), rng_s, Duration::ZERO,
    /// ).unwrap();
    /// let mut client = Client::with_raw_public_key(
    ///     config, Some(client_key), PinnedKeys::new(&server_pin), 2u8, rng_c, Duration::ZERO,
    /// ).unwrap();
    /// let now = Duration::ZERO;
    /// let mut buf = [0u8; 1500];
    /// for _ in 0..8 {
    ///     while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
    ///         server.handle_datagram(now, 1u8, &mut buf[..t.len]).unwrap();
    ///     }
    ///     while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
    ///         client.handle_datagram(now, t.to + 1, &mut buf[..t.len]).unwrap();
    ///     }
    /// }
    /// assert!(client.is_connected());
    /// assert_eq!(server.peer_public_key(&1), Some(&client_pin[0]));
    /// ```
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn with_raw_public_key(
        config: Config,
        store: P,
        key: SigningKey,
        trust: T,
        rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        Self::build(config, store, Some(key), trust, rng, now)
    }

    fn build(
        config: Config,
        store: P,
        #[cfg(feature = "ecdhe")] own_key: Option<SigningKey>,
        trust: T,
        mut rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        config.validate()?;
        let cookies = CookieSecrets::new(&mut rng);
        Ok(Endpoint {
            next_rotation: now.saturating_add(config.cookie_rotation),
            config,
            store,
            #[cfg(feature = "ecdhe")]
            own_key,
            trust,
            rng,
            cookies,
            sessions: heapless::Vec::new(),
            handshakes: heapless::Vec::new(),
            stateless: heapless::Deque::new(),
            events: heapless::Deque::new(),
            stats: Stats::default(),
            rr: 0,
            cache: SessionCache::new(),
            txq: AppQueue::new(),
            rxq: AppQueue::new(),
            next_id: 0,
        })
    }

    fn rotate_if_due(&mut self, now: Duration) {
        if now >= self.next_rotation {
            self.cookies.rotate(&mut self.rng);
            self.next_rotation = now.saturating_add(self.config.cookie_rotation);
        }
    }

    /// How long a handshake that sent the last flight lingers at most.
    fn linger_time(&self) -> Duration {
        self.config.linger_time()
    }

    fn drain_conn_events(
        events: &mut heapless::Deque<Event<A>, EVENTS>,
        cache: &mut SessionCache<S>,
        now: Duration,
        h: &mut Handshake<A>,
    ) {
        if h.conn.fatal && h.conn.established {
            // RFC 5246 §7.2.2: an established session that ended with a
            // fatal alert is not resumed. (Failed handshakes that never
            // proved the master secret cannot evict it.)
            cache.remove(&h.conn.session_id);
            h.conn.established = false;
        }
        while !events.is_full() {
            let Some(e) = h.conn.poll_event() else { break };
            let peer = h.peer.clone();
            let _ = events.push_back(match e {
                ConnEvent::Connected(suite) => {
                    if let (false, Some(session)) = (h.conn.resumed, h.conn.session()) {
                        cache.insert(session, now);
                    }
                    Event::Connected { peer, suite }
                }
                ConnEvent::Data(len) => Event::ApplicationData { peer, len },
                ConnEvent::Closed(error) => Event::Closed { peer, error },
            });
        }
    }

    /// Drops session slot `i`, its queued records and its lingering
    /// handshake.
    fn remove_session(&mut self, i: usize) {
        if i >= self.sessions.len() {
            return;
        }
        let s = self.sessions.swap_remove(i);
        self.txq.purge(s.id);
        self.rxq.purge(s.id);
        if let Some(j) = self.handshakes.iter().position(|h| h.id == s.id) {
            self.remove_handshake(j);
        }
    }

    /// Drops handshake slot `i` (its counters go to the endpoint's).
    fn remove_handshake(&mut self, i: usize) {
        if i < self.handshakes.len() {
            let h = self.handshakes.swap_remove(i);
            self.stats.add(&h.conn.stats);
        }
    }

    /// Handshakes still in progress (each will need a session slot).
    fn in_progress(&self) -> usize {
        self.handshakes
            .iter()
            .filter(|h| h.linger_until.is_none())
            .count()
    }

    /// Makes room for a new handshake if possible: a handshake slot (a
    /// half-open handshake that heard nothing from its peer for a whole
    /// initial retransmission timeout gives its slot up first: a peer that
    /// is there would have retransmitted; then a lingering one, but never
    /// before its last flight went out) and an established-session slot
    /// for when it completes (a closed or idle session gives its slot up).
    ///
    /// One host (see [`PeerAddress::same_host`]) holds at most half of the
    /// handshake slots (at least one): beyond that, only its own stalled
    /// handshake makes room for its new one. Repeating a ClientHello is not
    /// progress, so it does not keep a handshake from stalling.
    fn admit(&mut self, now: Duration, from: &A) -> bool {
        let idle = self.config.idle_timeout;
        let stalled = self.config.retransmit_initial;
        let share = (H / 2).max(1);
        let in_progress_from =
            |h: &Handshake<A>| h.linger_until.is_none() && h.peer.same_host(from);
        if self
            .handshakes
            .iter()
            .filter(|h| in_progress_from(h))
            .count()
            >= share
        {
            let victim = self
                .handshakes
                .iter()
                .enumerate()
                .filter(|(_, h)| {
                    in_progress_from(h) && now.saturating_sub(h.conn.last_activity) >= stalled
                })
                .min_by_key(|(_, h)| h.conn.last_activity)
                .map(|(i, _)| i);
            match victim {
                Some(i) => self.remove_handshake(i),
                None => return false,
            }
        }
        if self.handshakes.is_full() {
            let victim = self
                .handshakes
                .iter()
                .enumerate()
                .filter(|(_, h)| match h.linger_until {
                    Some(_) => !h.conn.has_output(),
                    None => now.saturating_sub(h.conn.last_activity) >= stalled,
                })
                .min_by_key(|(_, h)| (h.linger_until.is_some(), h.conn.last_activity))
                .map(|(i, _)| i);
            if let Some(i) = victim {
                self.remove_handshake(i);
            }
        }
        if self.sessions.len() + self.in_progress() >= N {
            let victim = self
                .sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    !s.est.is_open() || now.saturating_sub(s.est.last_activity()) >= idle
                })
                .min_by_key(|(_, s)| s.est.last_activity())
                .map(|(i, _)| i);
            if let Some(i) = victim {
                self.remove_session(i);
            }
        }
        !self.handshakes.is_full() && self.sessions.len() + self.in_progress() < N
    }

    /// Input: a datagram from `from`, decrypted in place. An `Err` means the
    /// connection with `from` died (its alert, if any, is still sent).
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        self.rotate_if_due(now);
        if data.first() == Some(&TLS12_CID) {
            return self.handle_cid_datagram(now, from, data);
        }
        // A ClientHello with a fresh random from a known address is a
        // client starting over (RFC 6347 §4.2.8); a delayed copy of the
        // old one is not. It still has to pass the cookie check before it
        // replaces anything.
        let random = client_hello_random(data);
        if let Some(i) = self
            .handshakes
            .iter()
            .position(|h| h.peer == from && h.linger_until.is_none())
        {
            let restart = self
                .handshakes
                .get(i)
                .is_some_and(|h| random.is_some_and(|r| r != h.conn.client_random));
            if !restart {
                return self.handshake_input(now, i, data);
            }
        } else if let Some(i) = self.sessions.iter().position(|s| s.peer == from) {
            let restart = self.sessions.get(i).is_some_and(|s| {
                random.is_some_and(|r| r.get(..8) != Some(&s.est.random_prefix[..]))
            });
            if !restart {
                return self.session_input(now, i, data);
            }
        }
        self.stateless_client_hello(now, from, data)
    }

    /// A datagram for handshake slot `i`; records after the one completing
    /// the handshake go to the new established session.
    fn handshake_input(&mut self, now: Duration, i: usize, data: &mut [u8]) -> Result<(), Error> {
        let Endpoint {
            handshakes,
            rng,
            store,
            trust,
            events,
            cache,
            ..
        } = self;
        let h = handshakes.get_mut(i).ok_or(Error::Internal)?;
        let r = h.conn.handle_datagram(now, data, rng, store, trust);
        Self::drain_conn_events(events, cache, now, h);
        let consumed = r?;
        if h.conn.state != State::Connected {
            return Ok(());
        }
        let si = self.complete(now, i)?;
        match data.get_mut(consumed..) {
            Some(rest) if !rest.is_empty() => self.session_input_rest(now, si, rest),
            _ => Ok(()),
        }
    }

    /// Compacts the connected handshake in slot `i` into a session slot
    /// (returned); the handshake slot is freed, unless it sent the last
    /// flight: then it lingers.
    fn complete(&mut self, now: Duration, i: usize) -> Result<usize, Error> {
        let linger = self.linger_time();
        let h = self.handshakes.get_mut(i).ok_or(Error::Internal)?;
        let est = h.conn.compact()?;
        let (peer, id) = (h.peer.clone(), h.id);
        let lingers = h.conn.sent_last_flight();
        if lingers {
            h.linger_until = Some(now.saturating_add(linger));
        }
        if self.sessions.is_full() {
            // Admission keeps a slot for every handshake in progress; if
            // that ever fails, the least recently active session goes.
            let victim = self
                .sessions
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.est.last_activity())
                .map(|(j, _)| j);
            if let Some(j) = victim {
                self.remove_session(j);
            }
        }
        self.sessions
            .push(Slot { peer, id, est })
            .map_err(|_| Error::Internal)?;
        if !lingers {
            if let Some(j) = self.handshakes.iter().position(|h| h.id == id) {
                self.remove_handshake(j);
            }
        }
        Ok(self.sessions.len() - 1)
    }

    /// A datagram for session slot `i`.
    fn session_input(&mut self, now: Duration, i: usize, data: &mut [u8]) -> Result<(), Error> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        self.session_input_rest(now, i, data)
    }

    /// Records for session slot `i` (the counters for the datagram are
    /// already taken).
    fn session_input_rest(
        &mut self,
        now: Duration,
        i: usize,
        data: &mut [u8],
    ) -> Result<(), Error> {
        let Endpoint {
            sessions,
            handshakes,
            rng,
            store,
            trust,
            events,
            cache,
            rxq,
            txq,
            stats,
            ..
        } = self;
        let share = sessions.len() > 1;
        let s = sessions.get_mut(i).ok_or(Error::Internal)?;
        let linger = handshakes
            .iter_mut()
            .find(|h| h.id == s.id)
            .map(|h| Linger {
                conn: &mut h.conn,
                now,
                rng,
                store,
                trust,
            });
        let mut up = EpUp {
            events,
            rxq,
            peer: &s.peer,
            tag: s.id,
            share,
            linger,
        };
        let r = s.est.handle_datagram(now, data, stats, &mut up);
        if s.est.fatal {
            cache.remove(s.est.session_id());
        }
        if !s.est.is_open() {
            txq.purge(s.id);
        }
        let (heard, id) = (s.est.heard, s.id);
        if heard {
            // The peer has our last flight: the handshake is done with.
            if let Some(j) = self.handshakes.iter().position(|h| h.id == id) {
                self.remove_handshake(j);
            }
        }
        r
    }

    /// A datagram starting with a tls12_cid record: the session is found by
    /// CID whatever the source address (RFC 9146 §4). The session moves to
    /// `from` only when the datagram held an authenticated record newer
    /// than every earlier one (§6); a forged, replayed or older record
    /// changes nothing.
    fn handle_cid_datagram(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        let n = self.config.cid().map_or(0, usize::from);
        let Some(cid) = data.get(CID_OFFSET..CID_OFFSET + n).filter(|_| n > 0) else {
            return self.drop_datagram(data.len());
        };
        let si = self
            .sessions
            .iter()
            .position(|s| s.est.cid_negotiated() && s.est.cid_rx() == cid);
        let hi = self.handshakes.iter().position(|h| {
            h.linger_until.is_none() && h.conn.cid_negotiated() && h.conn.cid_rx.as_slice() == cid
        });
        if si.is_none()
            && hi.is_some_and(|i| self.handshakes.get(i).is_some_and(|h| h.peer != from))
        {
            // Mid-handshake, records come from the handshake's address; a
            // CID is public (it was in the ServerHello), so records with it
            // from elsewhere are not let near the handshake.
            self.stats.datagrams_received += 1;
            self.stats.records_dropped += 1;
            return Ok(());
        }
        let events_before = self.events.len();
        let (r, moved_id) = match (si, hi) {
            (Some(i), _) => {
                let r = self.session_input(now, i, data);
                let moved = self.sessions.get_mut(i).and_then(|s| {
                    let m = r.is_ok() && s.peer != from && s.est.took_newest() && !s.est.is_dead();
                    m.then(|| (core::mem::replace(&mut s.peer, from.clone()), s.id))
                });
                (r, moved)
            }
            (None, Some(i)) => {
                let id = self.handshakes.get(i).map(|h| h.id);
                let r = self.handshake_input(now, i, data);
                // The handshake may have completed (and been compacted).
                let moved = if let Some(h) = self
                    .handshakes
                    .iter_mut()
                    .find(|h| Some(h.id) == id && h.linger_until.is_none())
                {
                    let m =
                        r.is_ok() && h.peer != from && h.conn.took_newest() && !h.conn.is_dead();
                    m.then(|| (core::mem::replace(&mut h.peer, from.clone()), h.id))
                } else if let Some(s) = self.sessions.iter_mut().find(|s| Some(s.id) == id) {
                    let m = r.is_ok() && s.peer != from && s.est.took_newest() && !s.est.is_dead();
                    m.then(|| (core::mem::replace(&mut s.peer, from.clone()), s.id))
                } else {
                    None
                };
                (r, moved)
            }
            (None, None) => return self.drop_datagram(data.len()),
        };
        if let Some((old, id)) = moved_id {
            // The events of this datagram name the new address, after the
            // move itself.
            let mut later: heapless::Vec<Event<A>, EVENTS> = heapless::Vec::new();
            while self.events.len() > events_before {
                if let Some(e) = self.events.pop_back() {
                    let _ = later.push(match e {
                        Event::ApplicationData { len, .. } => Event::ApplicationData {
                            peer: from.clone(),
                            len,
                        },
                        Event::Closed { error, .. } => Event::Closed {
                            peer: from.clone(),
                            error,
                        },
                        Event::Connected { suite, .. } => Event::Connected {
                            peer: from.clone(),
                            suite,
                        },
                        e => e,
                    });
                }
            }
            let _ = self.events.push_back(Event::PeerAddressChanged {
                old,
                new: from.clone(),
            });
            while let Some(e) = later.pop() {
                let _ = self.events.push_back(e);
            }
            for h in self.handshakes.iter_mut().filter(|h| h.id == id) {
                h.peer = from.clone();
            }
            for s in self.sessions.iter_mut().filter(|s| s.id == id) {
                s.peer = from.clone();
            }
            // Another session still bound to the new address is stale
            // (the address was reused): it goes.
            if let Some(j) = self
                .sessions
                .iter()
                .position(|s| s.id != id && s.peer == from)
            {
                self.remove_session(j);
            }
            if let Some(j) = self
                .handshakes
                .iter()
                .position(|h| h.id != id && h.peer == from)
            {
                self.remove_handshake(j);
            }
        }
        r
    }

    fn drop_datagram(&mut self, len: usize) -> Result<(), Error> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += len as u64;
        self.stats.records_dropped += 1;
        Ok(())
    }

    /// A fresh CID of the configured length, distinct from every session's;
    /// empty (the session asks for no CID) if eight draws all collide,
    /// which only a very short `cid_len` makes likely.
    fn new_cid(&mut self) -> heapless::Vec<u8, MAX_CID_LEN> {
        let n = self.config.cid().map_or(0, usize::from).min(MAX_CID_LEN);
        let mut cid = [0u8; MAX_CID_LEN];
        let cid = cid.get_mut(..n).unwrap_or_default();
        for _ in 0..8 {
            self.rng.fill_bytes(cid);
            let taken = self.sessions.iter().any(|s| s.est.cid_rx() == &*cid)
                || self
                    .handshakes
                    .iter()
                    .any(|h| h.conn.cid_rx.as_slice() == &*cid);
            if !taken {
                return heapless::Vec::from_slice(cid).unwrap_or_default();
            }
        }
        heapless::Vec::new()
    }

    /// The stateless path: HelloVerifyRequest, or a new session once the
    /// cookie checks out.
    fn stateless_client_hello(&mut self, now: Duration, from: A, data: &[u8]) -> Result<(), Error> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        let Ok((rh, frag, _)) = RecordHeader::parse(data) else {
            self.stats.records_dropped += 1;
            return Ok(());
        };
        let Ok((hh, body, _)) = HandshakeHeader::parse(frag) else {
            self.stats.records_dropped += 1;
            return Ok(());
        };
        // RFC 6347 §4.1: a ClientHello record carries DTLS 1.0 or 1.2.
        if rh.content_type != ContentType::Handshake
            || !matches!(rh.version, DTLS_1_0 | crate::wire::DTLS_1_2)
            || rh.epoch != 0
            || hh.msg_type != msg_type::CLIENT_HELLO
            || hh.fragment_offset != 0
            || hh.fragment_length != hh.length
            // Bounded work before the cookie: no ClientHello we take is
            // longer than a handshake message we reassemble.
            || body.len() > MAX_MESSAGE_LEN
            // Our flight continues the ClientHello's record sequence
            // (RFC 6347 §4.2.1): one that leaves no room for the flight
            // and its retransmissions is not taken.
            || rh.sequence > MAX_CLIENT_HELLO_SEQUENCE
        {
            self.stats.records_dropped += 1;
            return Ok(());
        }
        let Ok(ch) = ClientHelloRepr::parse(body) else {
            self.stats.records_dropped += 1;
            return Ok(());
        };
        if !self.cookies.verify(&from, &ch) {
            let cookie = self.cookies.cookie(&from, &ch);
            let hvr = HelloVerifyRequestRepr {
                version: DTLS_1_0,
                cookie: &cookie,
            };
            let mut out = [0u8; STATELESS_MAX];
            let blen = hvr.buffer_len();
            let total = REC_HEADER + HS_HEADER + blen;
            let ok = RecordHeader {
                content_type: ContentType::Handshake,
                version: DTLS_1_0,
                epoch: 0,
                sequence: rh.sequence,
                length: (HS_HEADER + blen) as u16,
            }
            .emit(&mut out)
            .and_then(|_| {
                HandshakeHeader::whole(msg_type::HELLO_VERIFY_REQUEST, 0, blen)
                    .emit(out.get_mut(REC_HEADER..).unwrap_or_default())
            })
            .and_then(|_| hvr.emit(out.get_mut(REC_HEADER + HS_HEADER..).unwrap_or_default()));
            if ok.is_ok() {
                if self.stateless.is_full() {
                    self.stateless.pop_front();
                }
                let _ = self.stateless.push_back((from, out, total));
            }
            return Ok(());
        }
        // A valid cookie: the client proved its address; create state.
        // (A client starting over: its old session or handshake goes.)
        if let Some(i) = self.sessions.iter().position(|s| s.peer == from) {
            self.remove_session(i);
        }
        if let Some(i) = self.handshakes.iter().position(|h| h.peer == from) {
            self.remove_handshake(i);
        }
        if !self.admit(now, &from) {
            self.stats.handshakes_refused += 1;
            self.stats.records_dropped += 1;
            return Ok(());
        }
        let cid = self.new_cid();
        let cached = if self.config.resumes() && !ch.session_id.is_empty() {
            self.cache
                .get(ch.session_id, now, self.config.session_lifetime)
        } else {
            None
        };
        match Connection::new_server(
            self.config.clone(),
            #[cfg(feature = "ecdhe")]
            self.own_key.as_ref(),
            now,
            &mut self.rng,
            rh.sequence,
            hh.message_seq,
            body,
            &cid,
            cached,
        ) {
            Ok(conn) => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                let _ = self.handshakes.push(Handshake {
                    peer: from,
                    id,
                    conn,
                    linger_until: None,
                    expires: now.saturating_add(self.config.linger_time()),
                });
                Ok(())
            }
            Err(e) => {
                if let Some(code) = e.code() {
                    let mut out = [0u8; STATELESS_MAX];
                    let ok = RecordHeader {
                        content_type: ContentType::Alert,
                        version: crate::wire::DTLS_1_2,
                        epoch: 0,
                        sequence: rh.sequence,
                        length: 2,
                    }
                    .emit(&mut out);
                    if let (Ok(()), Some(p)) = (ok, out.get_mut(REC_HEADER..REC_HEADER + 2)) {
                        p.copy_from_slice(&[2, code.to_u8()]);
                        if self.stateless.is_full() {
                            self.stateless.pop_front();
                        }
                        let _ = self
                            .stateless
                            .push_back((from.clone(), out, REC_HEADER + 2));
                    }
                }
                let _ = self.events.push_back(Event::Closed {
                    peer: from,
                    error: Some(e),
                });
                Err(e)
            }
        }
    }

    /// Input: time passed. Returns the first connection error, if any; all
    /// due timers are processed regardless.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), Error> {
        self.rotate_if_due(now);
        let mut first = Ok(());
        let idle = self.config.idle_timeout;
        let mut i = 0;
        while i < self.handshakes.len() {
            let Endpoint {
                handshakes,
                events,
                cache,
                ..
            } = self;
            let Some(h) = handshakes.get_mut(i) else {
                break;
            };
            if h.linger_until.is_some_and(|t| now >= t) {
                // Held long enough: the session no longer needs it.
                self.remove_handshake(i);
                continue;
            }
            if h.linger_until.is_none() {
                if let Err(e) = h.conn.handle_timeout(now) {
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
                if (now >= h.expires || now.saturating_sub(h.conn.last_activity) >= idle)
                    && !h.conn.is_dead()
                {
                    // A half-open handshake just times out.
                    h.conn.close();
                    let _ = events.push_back(Event::Closed {
                        peer: h.peer.clone(),
                        error: Some(Error::Timeout),
                    });
                }
                Self::drain_conn_events(events, cache, now, h);
                if h.conn.is_dead() {
                    self.remove_handshake(i);
                    continue;
                }
            }
            i += 1;
        }
        let mut i = 0;
        while i < self.sessions.len() {
            let Endpoint {
                sessions,
                events,
                rxq,
                txq,
                ..
            } = self;
            let Some(s) = sessions.get_mut(i) else { break };
            if now.saturating_sub(s.est.last_activity()) >= idle && s.est.is_open() {
                // A connected session says goodbye (close_notify, and its
                // own Closed event).
                s.close(events, rxq, txq);
            }
            if s.est.is_dead() {
                self.remove_session(i);
            } else {
                i += 1;
            }
        }
        first
    }

    /// Output: the next datagram into `buf`.
    ///
    /// Only a short buffer is an error (`BufferTooSmall`; the datagram stays
    /// queued): a connection that cannot send fails on its own, with its
    /// `Closed` event, and the others go on.
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        buf: &mut [u8],
    ) -> Result<Option<Transmit<A>>, Error> {
        if let Some((to, data, len)) = self.stateless.front() {
            let src = data.get(..*len).unwrap_or_default();
            buf.get_mut(..src.len())
                .ok_or(Error::BufferTooSmall { needed: src.len() })?
                .copy_from_slice(src);
            let t = Transmit {
                to: to.clone(),
                len: *len,
            };
            self.stats.bytes_sent += *len as u64;
            self.stateless.pop_front();
            return Ok(Some(t));
        }
        // Handshake flights (and their alerts) first, round robin. A
        // connection that cannot send fails on its own; only a short
        // buffer is the caller's error.
        let n = self.handshakes.len();
        for k in 0..n {
            let i = (self.rr + k) % n;
            let Endpoint {
                handshakes,
                sessions,
                events,
                cache,
                ..
            } = self;
            let Some(h) = handshakes.get_mut(i) else {
                continue;
            };
            let sent = match h.linger_until {
                None => h.conn.poll_transmit(buf),
                Some(_) if h.conn.has_output() => {
                    match sessions.iter_mut().find(|s| s.id == h.id) {
                        Some(s) => h.conn.poll_transmit_lingering(&mut s.est, buf),
                        None => Ok(None),
                    }
                }
                Some(_) => Ok(None),
            };
            let sent = match sent {
                Ok(sent) => sent,
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(e) if h.linger_until.is_none() => {
                    let _ = h.conn.fail(e);
                    Self::drain_conn_events(events, cache, now, h);
                    None
                }
                Err(_) => {
                    // A lingering last flight that cannot be resent: the
                    // session goes on without it.
                    h.linger_until = Some(now);
                    h.conn.stop_sending();
                    None
                }
            };
            if let Some(len) = sent {
                self.rr = (i + 1) % n;
                return Ok(Some(Transmit {
                    to: h.peer.clone(),
                    len,
                }));
            }
        }
        // Session alerts (an alert that cannot be sealed is dropped).
        for s in self.sessions.iter_mut() {
            match s.est.poll_alert(&self.config, buf) {
                Ok(Some(len)) => {
                    self.stats.bytes_sent += len as u64;
                    return Ok(Some(Transmit {
                        to: s.peer.clone(),
                        len,
                    }));
                }
                Ok(None) => {}
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(_) => {}
            }
        }
        // Sealed application records, several of one session per datagram.
        while let Some((id, first)) = self.txq.front() {
            let Some(to) = self
                .sessions
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.peer.clone())
            else {
                self.txq.purge(id);
                continue;
            };
            let need = first.len();
            let out = buf
                .get_mut(..need)
                .ok_or(Error::BufferTooSmall { needed: need })?;
            out.copy_from_slice(first);
            self.txq.remove(0);
            let limit = self.config.mtu.min(buf.len());
            let mut pos = need;
            while let Some((next, rec)) = self.txq.front() {
                let end = pos + rec.len();
                if next != id || end > limit {
                    break;
                }
                if let Some(dst) = buf.get_mut(pos..end) {
                    dst.copy_from_slice(rec);
                }
                pos = end;
                self.txq.remove(0);
            }
            self.stats.bytes_sent += pos as u64;
            return Ok(Some(Transmit { to, len: pos }));
        }
        // Handshakes and sessions that ended and have sent everything go.
        let mut i = 0;
        while i < self.handshakes.len() {
            let dead = self
                .handshakes
                .get(i)
                .is_some_and(|h| h.linger_until.is_none() && h.conn.is_dead());
            if dead {
                let Endpoint {
                    handshakes,
                    events,
                    cache,
                    ..
                } = self;
                if let Some(h) = handshakes.get_mut(i) {
                    Self::drain_conn_events(events, cache, now, h);
                }
                self.remove_handshake(i);
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.sessions.len() {
            if self.sessions.get(i).is_some_and(|s| s.est.is_dead()) {
                self.remove_session(i);
            } else {
                i += 1;
            }
        }
        Ok(None)
    }

    /// Output: the next event.
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let idle = self.config.idle_timeout;
        let hs = self.handshakes.iter().flat_map(|h| match h.linger_until {
            Some(t) => [Some(t), None],
            None => [
                h.conn.poll_timeout(),
                Some(h.conn.last_activity.saturating_add(idle).min(h.expires)),
            ],
        });
        let ss = self
            .sessions
            .iter()
            .map(|s| Some(s.est.last_activity().saturating_add(idle)));
        hs.chain(ss).flatten().min()
    }

    /// Seals application data for a connected peer at once and queues the
    /// record (in a queue shared by all sessions, [`APP_QUEUE_CAPACITY`](crate::APP_QUEUE_CAPACITY)
    /// bytes): `Error::Full` when it has no room, until `poll_transmit`
    /// drains it.
    pub fn send(&mut self, _now: Duration, peer: &A, data: &[u8]) -> Result<(), Error> {
        let Some(s) = self.sessions.iter_mut().find(|s| &s.peer == peer) else {
            return Err(if self.handshakes.iter().any(|h| &h.peer == peer) {
                Error::NotConnected
            } else {
                Error::UnknownPeer
            });
        };
        s.est.send(&self.config, data, &mut self.txq, s.id)
    }

    /// Copies the next application record from `peer` into `buf`.
    ///
    /// Records not read yet wait in the queue shared by all sessions; with
    /// other sessions established, `peer` may hold at most half of it (see
    /// [`Endpoint`]): read promptly, or further records from `peer` are
    /// dropped (counted in [`Stats::rx_overflow`]).
    pub fn recv(&mut self, peer: &A, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        match self.sessions.iter().find(|s| &s.peer == peer) {
            Some(s) => self.rxq.take(s.id, buf),
            None if self.handshakes.iter().any(|h| &h.peer == peer) => Ok(None),
            None => Err(Error::UnknownPeer),
        }
    }

    /// Sends close_notify to `peer` and forgets it once sent.
    pub fn close(&mut self, _now: Duration, peer: &A) -> Result<(), Error> {
        let Endpoint {
            sessions,
            handshakes,
            events,
            rxq,
            txq,
            ..
        } = self;
        if let Some(s) = sessions.iter_mut().find(|s| &s.peer == peer) {
            s.close(events, rxq, txq);
            return Ok(());
        }
        match handshakes
            .iter_mut()
            .find(|h| &h.peer == peer && h.linger_until.is_none())
        {
            Some(h) => {
                h.conn.close();
                Ok(())
            }
            None => Err(Error::UnknownPeer),
        }
    }

    /// True when `peer` has an established session.
    pub fn is_connected(&self, peer: &A) -> bool {
        self.sessions
            .iter()
            .any(|s| &s.peer == peer && s.est.is_open())
    }

    /// The authenticated raw public key of `peer`, if it presented one.
    /// Once the handshake is compacted the key is the one of the session
    /// in the resumption cache: `None` after it left the cache (or with
    /// resumption off).
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn peer_public_key(&self, peer: &A) -> Option<&p256::PublicKey> {
        if let Some(h) = self.handshakes.iter().find(|h| &h.peer == peer) {
            return h.conn.peer_key.as_ref();
        }
        let s = self.sessions.iter().find(|s| &s.peer == peer)?;
        if s.est.session_id().is_empty() {
            return None;
        }
        self.cache.peek(s.est.session_id())?.peer_public_key()
    }

    /// True when `peer`'s connection resumed a session (abbreviated handshake).
    pub fn is_resumed(&self, peer: &A) -> bool {
        self.sessions
            .iter()
            .any(|s| &s.peer == peer && s.est.resumed)
            || self
                .handshakes
                .iter()
                .any(|h| &h.peer == peer && h.conn.resumed)
    }

    /// Number of sessions held for resumption.
    pub fn cached_sessions(&self) -> usize {
        self.cache.len()
    }

    /// Number of sessions held (any state): established ones and
    /// handshakes in progress.
    pub fn sessions(&self) -> usize {
        self.sessions.len() + self.in_progress()
    }

    /// Handshake slots in use (in progress or lingering to resend their
    /// last flight).
    pub fn handshakes(&self) -> usize {
        self.handshakes.len()
    }

    /// Counters summed over the endpoint and all its sessions.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        for h in &self.handshakes {
            s.add(&h.conn.stats);
        }
        s
    }
}

/// The client random when the datagram starts with an epoch-0 ClientHello.
fn client_hello_random(data: &[u8]) -> Option<[u8; 32]> {
    let (rh, frag, _) = RecordHeader::parse(data).ok()?;
    let (hh, body, _) = HandshakeHeader::parse(frag).ok()?;
    if rh.content_type != ContentType::Handshake
        || rh.epoch != 0
        || hh.msg_type != msg_type::CLIENT_HELLO
    {
        return None;
    }
    body.get(2..34)?.try_into().ok()
}
