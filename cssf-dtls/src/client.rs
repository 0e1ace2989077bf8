//! The DTLS client: one [`Connection`](crate::handshake) (the handshake)
//! to one server, compacted into an [`Established`] session once complete.

use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::config::Config;
use crate::established::{Established, Upcall};
use crate::event::{CloseReason, Event, SessionHandle, Transmit};
use crate::handshake::{Bound, Connection, Deps};
use crate::identity::Identity;
use crate::psk::{PeerContext, PskStore, MAX_PSK_LEN};
use crate::queue::{TaggedQueue, APP_QUEUE_CAPACITY, QUEUE_ENTRIES};
#[cfg(feature = "resumption")]
use crate::session::Session;
use crate::stats::Stats;
#[cfg(feature = "ecdhe")]
use crate::trust::SigningKey;
use crate::trust::{RejectAll, TrustStore};
use crate::Error;

/// A client resolves no PSK identities.
struct NoStore;
impl<A> PskStore<A> for NoStore {
    fn psk(
        &mut self,
        _: &PeerContext<'_, A>,
        _: &[u8],
        _: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        None
    }
}

/// Application data events a client queues for `poll_event`: as many as
/// records its receive queue holds.
const EVENTS: usize = crate::queue::QUEUE_ENTRIES;
/// Most application records packed into one datagram (the server's share
/// of its receive queue when it has several sessions).
const MAX_RECORDS_PER_DATAGRAM: usize = crate::queue::QUEUE_ENTRIES / 2;
/// `path_challenge`s (RFC 9853) a client keeps to answer; more in one
/// datagram are dropped (the server sends another).
#[cfg(feature = "cid")]
const RRC_ANSWERS: usize = 2;

/// A DTLS 1.2 client talking to one server address `A`, authenticating
/// with a PSK ([`new`](Self::new)), with raw public keys
/// ([`with_raw_public_key`](Self::with_raw_public_key)) or both
/// ([`ClientBuilder`], which builds every mode as one type), the server's
/// key accepted by the trust store `T`.
///
/// ```
/// use cssf_dtls::{Client, Config};
/// use core::time::Duration;
/// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
/// let mut client = Client::new(Config::default(), b"Client_identity", b"secretPSK", 5684u16, &mut rng, Duration::ZERO).unwrap();
/// let mut buf = [0u8; 1500];
/// let tx = client.poll_transmit(Duration::ZERO, &mut buf).unwrap().unwrap();
/// assert_eq!((tx.to, buf[0]), (5684, 22)); // a ClientHello record to the server
/// ```
///
/// A client has one session, [`SessionHandle::CLIENT`]: it reports
/// [`Event::Connected`] once with what the handshake proved about the
/// server ([`peer_identity`](Self::peer_identity)), and
/// [`Event::Closed`] exactly once, whatever ended it.
///
/// The handshake state stays with the client (it also answers
/// [`session`](Self::session)); records are protected by the compact
/// established state once connected. Sent records are sealed into a queue
/// of `Q` bytes, received ones wait in another: by default
/// [`APP_QUEUE_CAPACITY`] bytes each, chosen by
/// [`with_queue_capacity`](Client::with_queue_capacity).
pub struct Client<A, R, T = RejectAll, const Q: usize = APP_QUEUE_CAPACITY> {
    conn: Connection,
    est: Option<Established>,
    /// The handshake sent the last flight and resends it if the server
    /// repeats its own, until it heard from the server or `linger_until`.
    /// A client sends the last flight only in an abbreviated handshake:
    /// without feature `resumption` it never lingers, and none of this is
    /// compiled in.
    #[cfg(feature = "resumption")]
    lingering: bool,
    #[cfg(feature = "resumption")]
    linger_until: Duration,
    peer: A,
    rng: R,
    trust: T,
    txq: TaggedQueue<Q, QUEUE_ENTRIES, ()>,
    rxq: TaggedQueue<Q, QUEUE_ENTRIES, ()>,
    /// Lengths of received records not yet reported.
    data_events: heapless::Deque<usize, EVENTS>,
    /// The cookies of `path_challenge`s still to answer.
    #[cfg(feature = "cid")]
    rrc_answers: heapless::Deque<[u8; 8], RRC_ANSWERS>,
    /// What the handshake proved about the server, once connected.
    identity: Option<Identity>,
    connected_unreported: bool,
    /// Why the session ended, and whether `Closed` was reported.
    end: Option<CloseReason>,
    closed_reported: bool,
    stats: Stats,
}

/// The client's side of its established session's input.
struct ClUp<'a, const Q: usize> {
    events: &'a mut heapless::Deque<usize, EVENTS>,
    rxq: &'a mut TaggedQueue<Q, QUEUE_ENTRIES, ()>,
    #[cfg(feature = "cid")]
    rrc_answers: &'a mut heapless::Deque<[u8; 8], RRC_ANSWERS>,
    #[cfg(feature = "resumption")]
    linger: Option<(&'a mut Connection, Duration, Deps<'a>)>,
}

impl<const Q: usize> Upcall for ClUp<'_, Q> {
    fn data(&mut self, plain: &[u8]) -> bool {
        if self.events.is_full() || !self.rxq.push((), plain) {
            return false;
        }
        let _ = self.events.push_back(plain.len());
        true
    }
    #[cfg(feature = "resumption")]
    fn old_handshake(&mut self, epoch: u16, plain: &[u8]) -> Result<bool, Error> {
        match self.linger.as_mut() {
            Some((conn, now, deps)) => conn.handle_old_handshake(*now, epoch, plain, deps),
            None => Ok(false),
        }
    }
    /// Never lingering, nothing takes them (they are dropped).
    #[cfg(not(feature = "resumption"))]
    fn old_handshake(&mut self, _: u16, _: &[u8]) -> Result<bool, Error> {
        Ok(false)
    }
    /// A client never challenges: only challenges matter (one beyond
    /// what is kept is dropped).
    #[cfg(feature = "cid")]
    fn rrc(&mut self, m: crate::wire::rrc::RrcRepr) {
        if m.msg_type == crate::wire::rrc::PATH_CHALLENGE {
            let _ = self.rrc_answers.push_back(m.cookie);
        }
    }
}

impl<A, R, T, const Q: usize> Client<A, R, T, Q> {
    fn from_parts(conn: Connection, peer: A, rng: R, trust: T) -> Self {
        Client {
            conn,
            est: None,
            #[cfg(feature = "resumption")]
            lingering: false,
            #[cfg(feature = "resumption")]
            linger_until: Duration::ZERO,
            peer,
            rng,
            trust,
            txq: TaggedQueue::new(),
            rxq: TaggedQueue::new(),
            data_events: heapless::Deque::new(),
            #[cfg(feature = "cid")]
            rrc_answers: heapless::Deque::new(),
            identity: None,
            connected_unreported: false,
            end: None,
            closed_reported: false,
            stats: Stats::default(),
        }
    }

    /// Ends the session (once: a later reason is ignored).
    fn end(&mut self, reason: CloseReason) {
        if self.end.is_none() {
            self.end = Some(match reason {
                CloseReason::Error(Error::Timeout) => CloseReason::HandshakeTimeout,
                r => r,
            });
            if !matches!(
                reason,
                CloseReason::LocalClose | CloseReason::SequenceExhausted
            ) {
                // After a local close (or the last sequence number), sealed
                // records still go out first.
                self.txq.purge(());
            }
            #[cfg(feature = "resumption")]
            {
                self.lingering = false;
            }
        }
    }
}

impl<A, R, T, const Q: usize> core::fmt::Debug for Client<A, R, T, Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<A, R: CryptoRngCore, T, const Q: usize> Client<A, R, T, Q> {
    /// A client offering what `psk` and `key` allow (see
    /// [`Connection::start_client`]), its handshake built in place in the
    /// client and started there (the client itself is still returned in a
    /// `Result`: [`unstarted`](Client::unstarted) avoids that too).
    #[allow(clippy::too_many_arguments)]
    fn started(
        config: Config,
        identity: &[u8],
        psk: &[u8],
        #[cfg(feature = "ecdhe")] key: Option<Option<SigningKey>>,
        session: Option<&crate::session::Session>,
        peer: A,
        rng: R,
        trust: T,
        now: Duration,
    ) -> Result<Self, Error> {
        let mut client =
            Client::from_parts(Connection::blank_client(config, now), peer, rng, trust);
        client.conn.start_client(
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            key,
            session,
            now,
            &mut client.rng,
        )?;
        Ok(client)
    }
}

/// Builds a [`Client`] for every way of authenticating: one type for PSK,
/// raw public keys, both at once, and resumption, so a program that picks
/// the mode at run time keeps one client type (`Client<A, R, T, Q>`
/// whatever it offers).
///
/// The PSK suites of the configuration are offered when [`psk`](Self::psk)
/// was given, the ECDHE_ECDSA ones when
/// [`raw_public_key`](Self::raw_public_key) was; both may be. The trust
/// store ([`trust`](Self::trust), [`RejectAll`] until set) judges the
/// server's key; it is part of the type whether or not raw public keys are
/// offered.
///
/// ```
/// use cssf_dtls::{Client, ClientBuilder, Config};
/// use core::time::Duration;
/// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
/// let mut client: Client<u16, _> = ClientBuilder::new(Config::default(), 5684u16, &mut rng)
///     .psk(b"Client_identity", b"secretPSK")
///     .start(Duration::ZERO)
///     .unwrap();
/// let mut buf = [0u8; 1500];
/// assert!(client.poll_transmit(Duration::ZERO, &mut buf).unwrap().is_some());
/// ```
///
/// With feature `ecdhe`, the mode chosen at run time, one type: see
/// [`trust`](Self::trust).
pub struct ClientBuilder<'a, A, R, T = RejectAll, const Q: usize = APP_QUEUE_CAPACITY> {
    config: Config,
    peer: A,
    rng: R,
    trust: T,
    identity: &'a [u8],
    psk: &'a [u8],
    #[cfg(feature = "ecdhe")]
    ecdsa: Option<Option<SigningKey>>,
    #[cfg(feature = "resumption")]
    session: Option<&'a Session>,
}

impl<A, R, T, const Q: usize> core::fmt::Debug for ClientBuilder<'_, A, R, T, Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientBuilder").finish_non_exhaustive()
    }
}

impl<'a, A, R> ClientBuilder<'a, A, R> {
    /// A client of the server at `peer`, with `config` and `rng`, offering
    /// nothing yet, trusting no key, with queues of
    /// [`APP_QUEUE_CAPACITY`] bytes.
    pub fn new(config: Config, peer: A, rng: R) -> Self {
        ClientBuilder {
            config,
            peer,
            rng,
            trust: RejectAll,
            identity: &[],
            psk: &[],
            #[cfg(feature = "ecdhe")]
            ecdsa: None,
            #[cfg(feature = "resumption")]
            session: None,
        }
    }
}

impl<'a, A, R, T, const Q: usize> ClientBuilder<'a, A, R, T, Q> {
    /// Offers the PSK suites with `identity` and `psk`.
    pub fn psk(mut self, identity: &'a [u8], psk: &'a [u8]) -> Self {
        self.identity = identity;
        self.psk = psk;
        self
    }

    /// Offers the ECDHE_ECDSA suites with raw public keys (RFC 7250): the
    /// server's key must satisfy the trust store; `own_key` is sent only
    /// if the server asks for client authentication (`None`: server-only
    /// authentication).
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn raw_public_key(mut self, own_key: Option<SigningKey>) -> Self {
        self.ecdsa = Some(own_key);
        self
    }

    /// Offers `session` for resumption (RFC 5246 §7.4.1.2): an abbreviated
    /// handshake if the server still holds it, else a full one with what
    /// else was given. A session whose server key the trust store no
    /// longer accepts is not offered.
    #[cfg(feature = "resumption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resumption")))]
    pub fn resume(mut self, session: &'a Session) -> Self {
        self.session = Some(session);
        self
    }

    /// The trust store judging the server's raw public key.
    ///
    /// ```
    /// use cssf_dtls::{Client, ClientBuilder, Config, PinnedKeys, SigningKey};
    /// use core::time::Duration;
    /// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
    /// let server_key = SigningKey::random(&mut rng);
    /// let pins = [p256::PublicKey::from(server_key.verifying_key())];
    /// let use_rpk = true; // e.g. from the command line
    /// let mut builder = ClientBuilder::new(Config::default(), 5684u16, &mut rng)
    ///     .trust(PinnedKeys::new(&pins));
    /// builder = if use_rpk {
    ///     builder.raw_public_key(Some(SigningKey::random(&mut rand_core::OsRng)))
    /// } else {
    ///     builder.psk(b"Client_identity", b"secretPSK")
    /// };
    /// // The same type either way.
    /// let mut client: Client<u16, _, PinnedKeys> = builder.start(Duration::ZERO).unwrap();
    /// let mut buf = [0u8; 1500];
    /// assert!(client.poll_transmit(Duration::ZERO, &mut buf).unwrap().is_some());
    /// ```
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn trust<U>(self, trust: U) -> ClientBuilder<'a, A, R, U, Q> {
        ClientBuilder {
            config: self.config,
            peer: self.peer,
            rng: self.rng,
            trust,
            identity: self.identity,
            psk: self.psk,
            ecdsa: self.ecdsa,
            #[cfg(feature = "resumption")]
            session: self.session,
        }
    }

    /// Application queues of `Q2` bytes each instead of `Q` (see
    /// [`Client::with_queue_capacity`]).
    pub fn queue_capacity<const Q2: usize>(self) -> ClientBuilder<'a, A, R, T, Q2> {
        ClientBuilder {
            config: self.config,
            peer: self.peer,
            rng: self.rng,
            trust: self.trust,
            identity: self.identity,
            psk: self.psk,
            #[cfg(feature = "ecdhe")]
            ecdsa: self.ecdsa,
            #[cfg(feature = "resumption")]
            session: self.session,
        }
    }
}

impl<A: Clone + PartialEq, R: CryptoRngCore, T: TrustStore<A>, const Q: usize>
    ClientBuilder<'_, A, R, T, Q>
{
    /// Starts the handshake: the first ClientHello is queued for
    /// [`Client::poll_transmit`]. Errors: [`Error::Config`] when nothing is
    /// offered or the configuration, identity or key is refused.
    pub fn start(self, now: Duration) -> Result<Client<A, R, T, Q>, Error> {
        #[cfg(feature = "ecdhe")]
        if self.psk.is_empty() && self.ecdsa.is_none() {
            return Err(Error::Config);
        }
        #[cfg(all(feature = "resumption", feature = "ecdhe"))]
        let session = {
            let cx = PeerContext::new(SessionHandle::CLIENT, &self.peer, now);
            self.session.filter(|s| {
                s.peer_identity()
                    .map_or(true, |id| self.trust.may_resume(&cx, &id))
            })
        };
        #[cfg(all(feature = "resumption", not(feature = "ecdhe")))]
        let session = self.session;
        #[cfg(not(feature = "resumption"))]
        let session = None;
        Client::started(
            self.config,
            self.identity,
            self.psk,
            #[cfg(feature = "ecdhe")]
            self.ecdsa,
            session,
            self.peer,
            self.rng,
            self.trust,
            now,
        )
    }
}

impl<A: Clone + PartialEq, R: CryptoRngCore> Client<A, R> {
    /// Starts a handshake with `peer` using PSK `identity`/`psk` (the first
    /// ClientHello is queued for [`poll_transmit`](Self::poll_transmit)).
    /// Only the PSK suites of `config` are offered.
    pub fn new(
        config: Config,
        identity: &[u8],
        psk: &[u8],
        peer: A,
        rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        Self::with_queue_capacity(config, identity, psk, peer, rng, now)
    }

    /// Starts a PSK handshake offering `session` for resumption (RFC 5246
    /// §7.4.1.2): an abbreviated handshake if the server still holds it,
    /// otherwise a full one with `identity`/`psk`. See
    /// [`is_resumed`](Client::is_resumed).
    #[cfg(feature = "resumption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resumption")))]
    pub fn resume(
        config: Config,
        identity: &[u8],
        psk: &[u8],
        session: &Session,
        peer: A,
        rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        Self::started(
            config,
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            None,
            Some(session),
            peer,
            rng,
            RejectAll,
            now,
        )
    }
}

impl<A: Clone + PartialEq, R: CryptoRngCore, const Q: usize> Client<A, R, RejectAll, Q> {
    /// Like [`new`](Client::new), with application queues of `Q` bytes
    /// each instead of [`APP_QUEUE_CAPACITY`]:
    /// a constrained client sizes them to its largest record (its payload
    /// plus 29 bytes with AES-128-CCM-8 and no Connection ID), e.g. 512
    /// bytes for CoAP messages of up to 256 bytes.
    /// [`max_payload`](Client::max_payload) is bounded by `Q`, and a
    /// received record whose plaintext is larger than `Q` bytes is dropped
    /// (counted in [`Stats::rx_overflow`]).
    ///
    /// ```
    /// use cssf_dtls::{Client, Config, RejectAll};
    /// use core::time::Duration;
    /// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
    /// let client = Client::<u16, _, RejectAll, 512>::with_queue_capacity(
    ///     Config::default(), b"Client_identity", b"secretPSK", 5684, &mut rng, Duration::ZERO,
    /// ).unwrap();
    /// assert!(client.max_payload() <= 512);
    /// ```
    pub fn with_queue_capacity(
        config: Config,
        identity: &[u8],
        psk: &[u8],
        peer: A,
        rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        Self::started(
            config,
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            None,
            None,
            peer,
            rng,
            RejectAll,
            now,
        )
    }

    /// A PSK client with queues of `Q` bytes, not started yet: built
    /// where it is kept (e.g. a device's `main`), then
    /// [`start_psk`](Self::start_psk) queues its first ClientHello. The
    /// same as [`with_queue_capacity`](Self::with_queue_capacity) in two
    /// steps, for a device whose stack is short: a client returned inside
    /// a `Result` may be copied on the stack on its way.
    ///
    /// ```
    /// use cssf_dtls::{Client, Config, RejectAll};
    /// use core::time::Duration;
    /// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
    /// let mut client = Client::<u16, _, RejectAll, 512>::unstarted(Config::default(), 5684, &mut rng, Duration::ZERO);
    /// client.start_psk(b"Client_identity", b"secretPSK", Duration::ZERO).unwrap();
    /// let mut buf = [0u8; 512];
    /// assert!(client.poll_transmit(Duration::ZERO, &mut buf).unwrap().is_some());
    /// ```
    pub fn unstarted(config: Config, peer: A, rng: R, now: Duration) -> Self {
        Client::from_parts(Connection::blank_client(config, now), peer, rng, RejectAll)
    }

    /// Starts an [`unstarted`](Self::unstarted) client with PSK
    /// `identity`/`psk`: only the PSK suites of its configuration are
    /// offered, the first ClientHello is queued. `Err` (a configuration,
    /// identity or key refused as [`new`](Client::new) refuses them, or a
    /// client started before) closes it: its `Closed` event follows.
    pub fn start_psk(&mut self, identity: &[u8], psk: &[u8], now: Duration) -> Result<(), Error> {
        if self.end.is_some() {
            return Err(Error::Closed);
        }
        let r = self.conn.start_client(
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            None,
            None,
            now,
            &mut self.rng,
        );
        if let Err(e) = r {
            self.end(CloseReason::Error(e));
        }
        r
    }
}

impl<A: Clone + PartialEq, R: CryptoRngCore, T: TrustStore<A>> Client<A, R, T> {
    /// Starts an ECDHE_ECDSA handshake with raw public keys (RFC 7250):
    /// the server's key must satisfy `trust`; `key` is our own, sent only
    /// if the server asks for client authentication (`None`: server-only
    /// authentication, and a server requiring client keys refuses us).
    /// Only the ECDHE_ECDSA suites of `config` are offered.
    ///
    /// ```
    /// use cssf_dtls::{Client, Config, PinnedKeys, SigningKey};
    /// use core::time::Duration;
    /// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
    /// let server_key = SigningKey::random(&mut rng);
    /// let pins = [p256::PublicKey::from(server_key.verifying_key())];
    /// let my_key = SigningKey::random(&mut rng);
    /// let mut client = Client::with_raw_public_key(
    ///     Config::default(), Some(my_key), PinnedKeys::new(&pins), 5684u16, &mut rng, Duration::ZERO,
    /// ).unwrap();
    /// let mut buf = [0u8; 1500];
    /// assert!(client.poll_transmit(Duration::ZERO, &mut buf).unwrap().is_some());
    /// ```
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn with_raw_public_key(
        config: Config,
        key: Option<SigningKey>,
        trust: T,
        peer: A,
        rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        Self::started(config, &[], &[], Some(key), None, peer, rng, trust, now)
    }

    /// Like [`with_raw_public_key`](Self::with_raw_public_key), offering
    /// `session` for resumption: an abbreviated handshake if the server
    /// still holds it (the server's key is the session's, see
    /// [`Session::peer_public_key`]), otherwise a full one checked by
    /// `trust`.
    #[cfg(all(feature = "ecdhe", feature = "resumption"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "ecdhe", feature = "resumption"))))]
    pub fn resume_with_raw_public_key(
        config: Config,
        key: Option<SigningKey>,
        trust: T,
        session: &Session,
        peer: A,
        rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        // Offered only while the trust store still accepts the server's
        // key (otherwise a full handshake checks it again): the builder's
        // rule.
        ClientBuilder::new(config, peer, rng)
            .trust(trust)
            .raw_public_key(key)
            .resume(session)
            .start(now)
    }
}

impl<A: Clone + PartialEq, R: CryptoRngCore, T: TrustStore<A>, const Q: usize> Client<A, R, T, Q> {
    /// The handle of the client's one session ([`SessionHandle::CLIENT`]).
    pub fn handle(&self) -> SessionHandle {
        SessionHandle::CLIENT
    }

    /// What the handshake proved about the server, once connected (its
    /// Finished verified): for PSK suites, the identity whose key it proved
    /// it knows; with raw public keys or a certificate, its key. `None`
    /// before that.
    pub fn peer_identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The negotiated suite, once connected.
    pub fn suite(&self) -> Option<crate::CipherSuite> {
        self.est.as_ref().map(|e| e.suite)
    }

    /// The session to resume later, once connected to a server that
    /// assigned a session ID; `None` before that and after a fatal alert.
    #[cfg(feature = "resumption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resumption")))]
    pub fn session(&self) -> Option<Session> {
        if self.est.as_ref().is_some_and(|e| e.fatal) {
            return None;
        }
        self.conn.session()
    }

    /// True when the handshake resumed a session (abbreviated handshake).
    pub fn is_resumed(&self) -> bool {
        self.conn.resumed
    }

    /// True when a Connection ID was negotiated (RFC 9146), in either
    /// direction.
    pub fn cid_negotiated(&self) -> bool {
        self.conn.cid_negotiated()
    }

    /// Input: a datagram from `from` (others than the server are ignored);
    /// decrypted in place.
    ///
    /// Never fails on what the server (or anyone) sent: bad records are
    /// dropped and counted in [`stats`](Self::stats), and an error fatal
    /// to the session ends it with an [`Event::Closed`] carrying the
    /// reason (as in every crate of the workspace, an `Err` would be the
    /// caller's misuse; there is none here today).
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        if let Err(e) = self.input(now, from, data) {
            // Already ended by the handshake or session (first reason wins).
            self.end(CloseReason::Error(e));
        }
        Ok(())
    }

    fn input(&mut self, now: Duration, from: A, data: &mut [u8]) -> Result<(), Error> {
        if from != self.peer || self.end.is_some() {
            return Ok(());
        }
        let rest = match self.est.as_ref() {
            Some(_) => {
                self.stats.datagrams_received += 1;
                self.stats.bytes_received += data.len() as u64;
                data
            }
            None => {
                let mut creds = Bound {
                    store: &mut NoStore,
                    trust: &self.trust,
                    cx: PeerContext::new(SessionHandle::CLIENT, &self.peer, now),
                };
                let mut deps = Deps {
                    rng: &mut self.rng,
                    creds: &mut creds,
                };
                let r = self.conn.handle_datagram(now, data, &mut deps);
                if let Some(reason) = self.conn.outcome() {
                    self.end(reason);
                }
                let consumed = r?;
                if self.conn.state != crate::handshake::State::Connected {
                    return Ok(());
                }
                // Compacted at once; the handshake stays to resend its
                // last flight if it sent it (an abbreviated handshake).
                self.est = Some(self.conn.compact()?);
                self.identity = self.conn.proven_identity();
                self.connected_unreported = true;
                #[cfg(feature = "resumption")]
                {
                    self.lingering = self.conn.sent_last_flight();
                    self.linger_until = now.saturating_add(self.conn.config().linger_time());
                }
                data.get_mut(consumed..).unwrap_or_default()
            }
        };
        let Some(est) = self.est.as_mut() else {
            return Ok(());
        };
        if rest.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "resumption")]
        let mut creds = Bound {
            store: &mut NoStore,
            trust: &self.trust,
            cx: PeerContext::new(SessionHandle::CLIENT, &self.peer, now),
        };
        let mut up = ClUp {
            events: &mut self.data_events,
            rxq: &mut self.rxq,
            #[cfg(feature = "cid")]
            rrc_answers: &mut self.rrc_answers,
            // Only a lingering handshake (one that sent the last flight,
            // to resend it) sees handshake records of the finished
            // handshake; otherwise they are dropped.
            #[cfg(feature = "resumption")]
            linger: self.lingering.then_some((
                &mut self.conn,
                now,
                Deps {
                    rng: &mut self.rng,
                    creds: &mut creds,
                },
            )),
        };
        let r = est.handle_datagram(now, rest, &mut self.stats, &mut up);
        #[cfg(feature = "resumption")]
        if est.heard {
            self.lingering = false;
        }
        if let Some(reason) = est.end_reason() {
            self.end(reason);
        }
        r
    }

    /// Input: time passed. A handshake that gives up ends with an
    /// [`Event::Closed`] ([`CloseReason::HandshakeTimeout`]).
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.est.is_none() {
            let r = self.conn.handle_timeout(now);
            if let Some(reason) = self.conn.outcome() {
                self.end(reason);
            }
            if let Err(e) = r {
                self.end(CloseReason::Error(e));
            }
        }
        #[cfg(feature = "resumption")]
        if self.est.is_some() && self.lingering && now >= self.linger_until {
            self.lingering = false;
        }
    }

    /// Output: the next datagram into `buf`. Only a short buffer is an
    /// error (`BufferTooSmall`; the datagram stays queued).
    pub fn poll_transmit(
        &mut self,
        _now: Duration,
        buf: &mut [u8],
    ) -> Result<Option<Transmit<A>>, Error> {
        let to = self.peer.clone();
        let Some(est) = self.est.as_mut() else {
            return match self.conn.poll_transmit(buf) {
                Ok(sent) => Ok(sent.map(|len| Transmit { to, len })),
                Err(e @ Error::BufferTooSmall { .. }) => Err(e),
                Err(e) => {
                    let _ = self.conn.fail(e);
                    self.end(CloseReason::Error(e));
                    Ok(None)
                }
            };
        };
        #[cfg(feature = "resumption")]
        if self.conn.has_output() {
            match self.conn.poll_transmit_lingering(est, buf) {
                Ok(Some(len)) => return Ok(Some(Transmit { to, len })),
                Ok(None) => {}
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(_) => self.lingering = false,
            }
        }
        // RFC 9853 §5.4: each path_challenge is answered at once, with its
        // cookie (to the server: where it came from).
        #[cfg(feature = "cid")]
        while let Some(&cookie) = self.rrc_answers.front() {
            match est.seal_path_response(self.conn.config(), cookie, buf) {
                Ok(len) => {
                    self.rrc_answers.pop_front();
                    self.stats.bytes_sent += len as u64;
                    return Ok(Some(Transmit { to, len }));
                }
                // Kept for a larger buffer.
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(_) => {
                    self.rrc_answers.pop_front();
                }
            }
        }
        // Sealed records first: after a local close they precede the
        // close_notify.
        let cfg = self.conn.config();
        let limit = cfg.mtu.min(buf.len());
        let mut pos = 0;
        let mut records = 0;
        while let Some((_, rec)) = self.txq.front() {
            let end = pos + rec.len();
            if end > limit || records >= MAX_RECORDS_PER_DATAGRAM {
                if pos == 0 {
                    return Err(Error::BufferTooSmall { needed: rec.len() });
                }
                break;
            }
            if let Some(dst) = buf.get_mut(pos..end) {
                dst.copy_from_slice(rec);
            }
            pos = end;
            records += 1;
            self.txq.remove(0);
        }
        if pos > 0 {
            self.stats.bytes_sent += pos as u64;
            return Ok(Some(Transmit { to, len: pos }));
        }
        match est.poll_alert(cfg, buf) {
            Ok(Some(len)) => {
                self.stats.bytes_sent += len as u64;
                return Ok(Some(Transmit { to, len }));
            }
            Ok(None) => {}
            Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
            Err(_) => {}
        }
        Ok(None)
    }

    /// Output: the next event: `Connected` (once), the `ApplicationData`
    /// events, then `Closed` (once).
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        let handle = SessionHandle::CLIENT;
        let peer = self.peer.clone();
        if self.connected_unreported {
            self.connected_unreported = false;
            if let Some(est) = self.est.as_ref() {
                info!(
                    "client connected: {:?}{}",
                    est.suite,
                    if self.conn.resumed { ", resumed" } else { "" }
                );
                return Some(Event::Connected {
                    handle,
                    peer,
                    identity: self.identity.clone(),
                    suite: est.suite,
                    resumed: self.conn.resumed,
                });
            }
        }
        if let Some(len) = self.data_events.pop_front() {
            return Some(Event::ApplicationData { handle, peer, len });
        }
        match self.end {
            Some(reason) if !self.closed_reported => {
                self.closed_reported = true;
                reason.log("client", handle, self.est.is_some());
                Some(Event::Closed {
                    handle,
                    peer,
                    reason,
                })
            }
            _ => None,
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.est {
            None if self.end.is_none() => self.conn.poll_timeout(),
            None => None,
            #[cfg(feature = "resumption")]
            Some(_) => self.lingering.then_some(self.linger_until),
            #[cfg(not(feature = "resumption"))]
            Some(_) => None,
        }
    }

    /// Seals application data (one record) at once, once connected, into
    /// the send queue (`Error::Full` until `poll_transmit` drains it).
    pub fn send(&mut self, _now: Duration, data: &[u8]) -> Result<(), Error> {
        let max = self.max_payload();
        let (r, end) = match self.est.as_mut() {
            _ if self.end.is_some() => (Err(Error::Closed), None),
            Some(_) if data.len() > max => (Err(Error::RecordOverflow), None),
            Some(est) => {
                let r = est.send(self.conn.config(), data, &mut self.txq, ());
                // Its sequence numbers may have run out.
                (r, est.end_reason())
            }
            None => (Err(Error::NotConnected), None),
        };
        if let Some(reason) = end {
            self.end(reason);
        }
        r
    }

    /// Copies the next received application record into `buf`.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        self.rxq.take((), buf)
    }

    /// Sends close_notify (once connected) and closes; `Closed`
    /// ([`CloseReason::LocalClose`]) follows.
    pub fn close(&mut self, _now: Duration) {
        match self.est.as_mut() {
            Some(est) => est.close(CloseReason::LocalClose),
            None => self.conn.close(),
        }
        self.end(CloseReason::LocalClose);
    }

    /// Test hook (feature `test-hooks`), not part of the API: ends an established session as an
    /// internal error would, with a fatal internal_error alert to the
    /// server. Tests of RFC 5246 §7.2.2 (a session ended by a fatal alert
    /// is not resumed) need a fatal alert, and no authenticated record a
    /// well-behaved peer sends is fatal. Only with `resumption`, the
    /// feature whose rule it tests.
    #[cfg(all(feature = "resumption", feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn fail_for_tests(&mut self) {
        if let Some(est) = self.est.as_mut() {
            let e = est.fail(Error::Internal);
            self.end(CloseReason::Error(e));
        }
    }

    /// True once the handshake has completed (and until closed).
    pub fn is_connected(&self) -> bool {
        self.end.is_none() && self.est.as_ref().is_some_and(Established::is_open)
    }

    /// The largest payload [`send`](Self::send) accepts.
    pub fn max_payload(&self) -> usize {
        // A record must fit in the send queue.
        match self.est.as_ref() {
            Some(est) => {
                let cfg = self.conn.config();
                est.max_payload(cfg)
                    .min(Q.saturating_sub(est.record_overhead(cfg)))
            }
            None => self.conn.max_payload().min(Q),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.add(&self.conn.stats);
        s
    }

    /// The established session (the endpoint's unit tests).
    #[cfg(all(test, feature = "server", feature = "cid"))]
    pub(crate) fn established(&mut self) -> Option<&mut Established> {
        self.est.as_mut()
    }

    /// True while the finished handshake is kept to resend its last
    /// flight (tests; feature `test-hooks`, not part of the API).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn is_lingering(&self) -> bool {
        #[cfg(feature = "resumption")]
        return self.est.is_some() && self.lingering;
        #[cfg(not(feature = "resumption"))]
        false
    }
}
