//! The DTLS client: one [`Connection`](crate::connection) to one server.

use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::config::Config;
use crate::connection::{ConnEvent, Connection, Stats};
use crate::event::{Event, Transmit};
use crate::psk::{PskStore, MAX_PSK_LEN};
#[cfg(feature = "resumption")]
use crate::session::Session;
#[cfg(feature = "ecdhe")]
use crate::trust::SigningKey;
use crate::trust::{RejectAll, TrustStore};
use crate::Error;

struct NoStore;
impl PskStore for NoStore {
    fn psk(&mut self, _: &[u8], _: &mut [u8; MAX_PSK_LEN]) -> Option<usize> {
        None
    }
}

/// A DTLS 1.2 client talking to one server address `A`, authenticating
/// with a PSK ([`new`](Self::new)) or with raw public keys
/// ([`with_raw_public_key`](Self::with_raw_public_key)), the server's key
/// accepted by the trust store `T`.
///
/// ```
/// use cssf_dtls::{Client, Config};
/// use core::time::Duration;
/// # let mut rng = cssf_netsim::SimRng::new(1);
/// let mut client = Client::new(Config::default(), b"Client_identity", b"secretPSK", 5684u16, &mut rng, Duration::ZERO).unwrap();
/// let mut buf = [0u8; 1500];
/// let tx = client.poll_transmit(Duration::ZERO, &mut buf).unwrap().unwrap();
/// assert_eq!((tx.to, buf[0]), (5684, 22)); // a ClientHello record to the server
/// ```
pub struct Client<A, R, T = RejectAll> {
    conn: Connection,
    peer: A,
    rng: R,
    trust: T,
}

impl<A, R, T> core::fmt::Debug for Client<A, R, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
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
        mut rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        let conn = Connection::new_client(config, identity, psk, now, &mut rng)?;
        Ok(Client {
            conn,
            peer,
            rng,
            trust: RejectAll,
        })
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
        mut rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        let conn = Connection::new_client_with(
            config,
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            None,
            Some(session),
            now,
            &mut rng,
        )?;
        Ok(Client {
            conn,
            peer,
            rng,
            trust: RejectAll,
        })
    }
}

impl<A: Clone + PartialEq, R: CryptoRngCore, T: TrustStore> Client<A, R, T> {
    /// Starts an ECDHE_ECDSA handshake with raw public keys (RFC 7250):
    /// the server's key must satisfy `trust`; `key` is our own, sent only
    /// if the server asks for client authentication (`None`: server-only
    /// authentication, and a server requiring client keys refuses us).
    /// Only the ECDHE_ECDSA suites of `config` are offered.
    ///
    /// ```
    /// use cssf_dtls::{Client, Config, PinnedKeys, SigningKey};
    /// use core::time::Duration;
    /// # let mut rng = cssf_netsim::SimRng::new(1);
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
        mut rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        let conn = Connection::new_client_with(config, &[], &[], Some(key), None, now, &mut rng)?;
        Ok(Client {
            conn,
            peer,
            rng,
            trust,
        })
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
        mut rng: R,
        now: Duration,
    ) -> Result<Self, Error> {
        let conn =
            Connection::new_client_with(config, &[], &[], Some(key), Some(session), now, &mut rng)?;
        Ok(Client {
            conn,
            peer,
            rng,
            trust,
        })
    }

    /// The server's public key, once authenticated with raw public keys.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn peer_public_key(&self) -> Option<&p256::PublicKey> {
        self.conn.peer_key.as_ref()
    }

    /// The session to resume later, once connected to a server that
    /// assigned a session ID; `None` before that and after a fatal alert.
    #[cfg(feature = "resumption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resumption")))]
    pub fn session(&self) -> Option<Session> {
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
    /// decrypted in place. `Err` means the connection is dead.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        if from != self.peer {
            return Ok(());
        }
        self.conn
            .handle_datagram(now, data, &mut self.rng, &mut NoStore, &self.trust)
    }

    /// Input: time passed. `Err` means the handshake gave up.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), Error> {
        self.conn.handle_timeout(now)
    }

    /// Output: the next datagram into `buf`.
    pub fn poll_transmit(
        &mut self,
        _now: Duration,
        buf: &mut [u8],
    ) -> Result<Option<Transmit<A>>, Error> {
        Ok(self.conn.poll_transmit(buf)?.map(|len| Transmit {
            to: self.peer.clone(),
            len,
        }))
    }

    /// Output: the next event.
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        let peer = self.peer.clone();
        Some(match self.conn.poll_event()? {
            ConnEvent::Connected(suite) => Event::Connected { peer, suite },
            ConnEvent::Data(len) => Event::ApplicationData { peer, len },
            ConnEvent::Closed(error) => Event::Closed { peer, error },
        })
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.conn.poll_timeout()
    }

    /// Queues application data (one record) once connected.
    pub fn send(&mut self, _now: Duration, data: &[u8]) -> Result<(), Error> {
        self.conn.send(data)
    }

    /// Copies the next received application record into `buf`.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        self.conn.recv(buf)
    }

    /// Sends close_notify and closes.
    pub fn close(&mut self, _now: Duration) {
        self.conn.close();
    }

    /// True once the handshake has completed (and until closed).
    pub fn is_connected(&self) -> bool {
        self.conn.state == crate::connection::State::Connected
    }

    /// The largest payload [`send`](Self::send) accepts.
    pub fn max_payload(&self) -> usize {
        self.conn.max_payload()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.conn.stats
    }
}
