//! The DTLS server endpoint: stateless cookie exchange (RFC 6347 §4.2.1),
//! then one connection per peer in a bounded table, found by Connection ID
//! first (RFC 9146 §4: tls12_cid records, whatever their source address),
//! then by address; plus the bounded session cache for resumption.

use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::config::{Config, MAX_CID_LEN};
use crate::connection::{ConnEvent, Connection, State, Stats};
use crate::cookie::{CookieSecrets, PeerAddress};
use crate::event::{Event, Transmit};
use crate::psk::PskStore;
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

const STATELESS_QUEUE: usize = 4;
const STATELESS_MAX: usize = 64;

struct Session<A> {
    peer: A,
    conn: Connection,
}

/// A DTLS 1.2 server for up to `N` concurrent peers: PSK clients resolved
/// through `P`, and, when built [`with_raw_public_key`](Self::with_raw_public_key),
/// ECDHE_ECDSA clients with raw public keys accepted by `T`; up to `S`
/// sessions are kept for resumption.
///
/// ```
/// use cssf_dtls::{Config, Endpoint, StaticPsk};
/// use core::time::Duration;
/// # let rng = cssf_netsim::SimRng::new(1);
/// let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
/// let mut server: Endpoint<u16, _, _, 4> = Endpoint::new(Config::default(), StaticPsk::new(&keys), rng, Duration::ZERO).unwrap();
/// assert_eq!(server.poll_timeout(), None); // nothing to do until a ClientHello arrives
/// ```
pub struct Endpoint<A, P, R, const N: usize, T = RejectAll, const S: usize = 4> {
    config: Config,
    store: P,
    #[cfg(feature = "ecdhe")]
    own_key: Option<SigningKey>,
    trust: T,
    rng: R,
    cookies: CookieSecrets,
    next_rotation: Duration,
    sessions: heapless::Vec<Session<A>, N>,
    stateless: heapless::Deque<(A, [u8; STATELESS_MAX], usize), STATELESS_QUEUE>,
    events: heapless::Deque<Event<A>, 16>,
    stats: Stats,
    rr: usize,
    cache: SessionCache<S>,
}

impl<A, P, R, const N: usize, T, const S: usize> core::fmt::Debug for Endpoint<A, P, R, N, T, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl<A: PeerAddress, P: PskStore, R: CryptoRngCore, const N: usize, const S: usize>
    Endpoint<A, P, R, N, RejectAll, S>
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
    > Endpoint<A, P, R, N, T, S>
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
            next_rotation: now + config.cookie_rotation,
            config,
            store,
            #[cfg(feature = "ecdhe")]
            own_key,
            trust,
            rng,
            cookies,
            sessions: heapless::Vec::new(),
            stateless: heapless::Deque::new(),
            events: heapless::Deque::new(),
            stats: Stats::default(),
            rr: 0,
            cache: SessionCache::new(),
        })
    }

    fn rotate_if_due(&mut self, now: Duration) {
        if now >= self.next_rotation {
            self.cookies.rotate(&mut self.rng);
            self.next_rotation = now + self.config.cookie_rotation;
        }
    }

    fn drain_conn_events(
        events: &mut heapless::Deque<Event<A>, 16>,
        cache: &mut SessionCache<S>,
        now: Duration,
        s: &mut Session<A>,
    ) {
        if s.conn.fatal && s.conn.established {
            // RFC 5246 §7.2.2: an established session that ended with a
            // fatal alert is not resumed. (Failed handshakes that never
            // proved the master secret cannot evict it.)
            cache.remove(&s.conn.session_id);
            s.conn.established = false;
        }
        while !events.is_full() {
            let Some(e) = s.conn.poll_event() else { break };
            let peer = s.peer.clone();
            let _ = events.push_back(match e {
                ConnEvent::Connected(suite) => {
                    if let (false, Some(session)) = (s.conn.resumed, s.conn.session()) {
                        cache.insert(session, now);
                    }
                    Event::Connected { peer, suite }
                }
                ConnEvent::Data(len) => Event::ApplicationData { peer, len },
                ConnEvent::Closed(error) => Event::Closed { peer, error },
            });
        }
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
        let idx = self.sessions.iter().position(|s| s.peer == from);
        if let Some(i) = idx {
            // A ClientHello with a fresh random from a known address is a
            // client starting over (RFC 6347 §4.2.8); a delayed copy of the
            // old one is not.
            // It still has to pass the cookie check before it replaces anything.
            let restart = self.sessions.get(i).is_some_and(|s| {
                client_hello_random(data).is_some_and(|r| r != s.conn.client_random)
            });
            if !restart {
                let Endpoint {
                    sessions,
                    rng,
                    store,
                    trust,
                    events,
                    cache,
                    ..
                } = self;
                let s = sessions.get_mut(i).ok_or(Error::Internal)?;
                let r = s.conn.handle_datagram(now, data, rng, store, trust);
                Self::drain_conn_events(events, cache, now, s);
                return r;
            }
        }
        self.stateless_client_hello(now, from, data)
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
        let cid = data.get(CID_OFFSET..CID_OFFSET + n).filter(|_| n > 0);
        let idx = cid.and_then(|cid| {
            self.sessions
                .iter()
                .position(|s| s.conn.cid_negotiated() && s.conn.cid_rx.as_slice() == cid)
        });
        let Some(i) = idx else {
            self.stats.datagrams_received += 1;
            self.stats.bytes_received += data.len() as u64;
            self.stats.records_dropped += 1;
            return Ok(());
        };
        let Endpoint {
            sessions,
            rng,
            store,
            events,
            cache,
            trust,
            stats,
            ..
        } = self;
        let s = sessions.get_mut(i).ok_or(Error::Internal)?;
        if s.peer != from && s.conn.state != State::Connected {
            // Mid-handshake, records come from the handshake's address; a
            // CID is public (it was in the ServerHello), so records with it
            // from elsewhere are not let near the handshake.
            stats.datagrams_received += 1;
            stats.records_dropped += 1;
            return Ok(());
        }
        let r = s.conn.handle_datagram(now, data, rng, store, trust);
        let moved = r.is_ok() && s.peer != from && s.conn.took_newest() && !s.conn.is_dead();
        if moved {
            let old = core::mem::replace(&mut s.peer, from.clone());
            let _ = events.push_back(Event::PeerAddressChanged {
                old,
                new: from.clone(),
            });
        }
        Self::drain_conn_events(events, cache, now, s);
        if moved {
            // Another session still bound to the new address is stale
            // (the address was reused): it goes.
            if let Some(j) = self
                .sessions
                .iter()
                .enumerate()
                .position(|(j, s)| j != i && s.peer == from)
            {
                let old = self.sessions.swap_remove(j);
                self.stats.add(&old.conn.stats);
            }
        }
        r
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
            if !self
                .sessions
                .iter()
                .any(|s| s.conn.cid_rx.as_slice() == &*cid)
            {
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
        if let Some(i) = self.sessions.iter().position(|s| s.peer == from) {
            self.sessions.swap_remove(i);
        }
        if self.sessions.is_full() {
            self.evict(now);
        }
        if self.sessions.is_full() {
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
                let _ = self.sessions.push(Session { peer: from, conn });
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

    /// Frees the least recently active slot that is not connected, or the
    /// idlest one if all are.
    fn evict(&mut self, now: Duration) {
        let victim = self
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.state != State::Connected)
            .min_by_key(|(_, s)| s.conn.last_activity)
            .or_else(|| {
                self.sessions
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        now.saturating_sub(s.conn.last_activity) >= self.config.idle_timeout
                    })
                    .min_by_key(|(_, s)| s.conn.last_activity)
            })
            .map(|(i, _)| i);
        if let Some(i) = victim {
            let s = self.sessions.swap_remove(i);
            self.stats.add(&s.conn.stats);
        }
    }

    /// Input: time passed. Returns the first connection error, if any; all
    /// due timers are processed regardless.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), Error> {
        self.rotate_if_due(now);
        let mut first = Ok(());
        let idle = self.config.idle_timeout;
        let Endpoint {
            sessions,
            events,
            stats,
            cache,
            ..
        } = self;
        let mut i = 0;
        while i < sessions.len() {
            let Some(s) = sessions.get_mut(i) else { break };
            if let Err(e) = s.conn.handle_timeout(now) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
            if now.saturating_sub(s.conn.last_activity) >= idle && !s.conn.is_dead() {
                // A connected session says goodbye (close_notify, and its
                // own Closed event); a half-open one just times out.
                let was_connected = s.conn.state == State::Connected;
                s.conn.close();
                if !was_connected {
                    let _ = events.push_back(Event::Closed {
                        peer: s.peer.clone(),
                        error: Some(Error::Timeout),
                    });
                }
            }
            Self::drain_conn_events(events, cache, now, s);
            if s.conn.is_dead() {
                let s = sessions.swap_remove(i);
                stats.add(&s.conn.stats);
            } else {
                i += 1;
            }
        }
        first
    }

    /// Output: the next datagram into `buf`.
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
        let n = self.sessions.len();
        for k in 0..n {
            let i = (self.rr + k) % n;
            let Some(s) = self.sessions.get_mut(i) else {
                continue;
            };
            if let Some(len) = s.conn.poll_transmit(buf)? {
                self.rr = (i + 1) % n;
                return Ok(Some(Transmit {
                    to: s.peer.clone(),
                    len,
                }));
            }
        }
        // Sessions that ended and have sent everything are dropped.
        let mut i = 0;
        while i < self.sessions.len() {
            if self.sessions.get(i).is_some_and(|s| s.conn.is_dead()) {
                let s = self.sessions.swap_remove(i);
                Self::drain_events_of(&mut self.events, &mut self.cache, now, s);
            } else {
                i += 1;
            }
        }
        Ok(None)
    }

    fn drain_events_of(
        events: &mut heapless::Deque<Event<A>, 16>,
        cache: &mut SessionCache<S>,
        now: Duration,
        mut s: Session<A>,
    ) {
        Self::drain_conn_events(events, cache, now, &mut s);
    }

    /// Output: the next event.
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.sessions
            .iter()
            .flat_map(|s| {
                [
                    s.conn.poll_timeout(),
                    Some(s.conn.last_activity + self.config.idle_timeout),
                ]
            })
            .flatten()
            .min()
    }

    /// Queues application data to a connected peer.
    pub fn send(&mut self, _now: Duration, peer: &A, data: &[u8]) -> Result<(), Error> {
        self.session_mut(peer)?.send(data)
    }

    /// Copies the next application record from `peer` into `buf`.
    pub fn recv(&mut self, peer: &A, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        self.session_mut(peer)?.recv(buf)
    }

    /// Sends close_notify to `peer` and forgets it once sent.
    pub fn close(&mut self, _now: Duration, peer: &A) -> Result<(), Error> {
        self.session_mut(peer)?.close();
        Ok(())
    }

    fn session_mut(&mut self, peer: &A) -> Result<&mut Connection, Error> {
        self.sessions
            .iter_mut()
            .find(|s| &s.peer == peer)
            .map(|s| &mut s.conn)
            .ok_or(Error::UnknownPeer)
    }

    /// True when `peer` has an established session.
    pub fn is_connected(&self, peer: &A) -> bool {
        self.sessions
            .iter()
            .any(|s| &s.peer == peer && s.conn.state == State::Connected)
    }

    /// The authenticated raw public key of `peer`, if it presented one.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn peer_public_key(&self, peer: &A) -> Option<&p256::PublicKey> {
        self.sessions
            .iter()
            .find(|s| &s.peer == peer)
            .and_then(|s| s.conn.peer_key.as_ref())
    }

    /// True when `peer`'s connection resumed a session (abbreviated handshake).
    pub fn is_resumed(&self, peer: &A) -> bool {
        self.sessions
            .iter()
            .any(|s| &s.peer == peer && s.conn.resumed)
    }

    /// Number of sessions held for resumption.
    pub fn cached_sessions(&self) -> usize {
        self.cache.len()
    }

    /// Number of sessions held (any state).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Counters summed over the endpoint and all its sessions.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        for x in &self.sessions {
            s.add(&x.conn.stats);
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
