//! A small sans-IO CoAP client for one request at a time.
//!
//! [`Client`] is the client half of the RFC 7252 message and request/response
//! layers, cut down for constrained devices that ask one server one thing at
//! a time: one outstanding request (CON or NON), CON retransmission with
//! exponential back-off (§4.2), piggybacked and separate responses matched
//! by message ID and token (§5.2, §5.3.2), Empty ACKs for confirmable
//! responses and re-ACKs of their duplicates (§4.5), RST for what it does
//! not expect (§4.2, §4.3), and rejection of responses carrying an unknown
//! critical option (§5.4.1). It uses the [`crate::wire`] codec and holds one
//! `M`-byte buffer (the request while it is outstanding, then the response);
//! nothing is allocated and no input can make it panic.
//!
//! It talks to a single server, whose address (type `A`, `()` by default:
//! over DTLS the session already is the server) it answers to; datagrams
//! from elsewhere are dropped and counted. It has the driver shape of
//! every CSSF crate: `handle_datagram(now, from, &mut bytes)`,
//! `handle_timeout(now)`, `poll_transmit(now, buf) -> Option<Transmit>`,
//! `poll_event()`, `poll_timeout()`, and nothing a peer sends makes a call
//! fail (an `Err` is the caller's misuse). What it leaves out, compared with
//! [`crate::Endpoint`]: a server side, several requests or peers at once,
//! Observe, Block-wise transfers, Echo, NSTART queueing and a message-ID
//! cache beyond the last acknowledged confirmable response.
//!
//! ```
//! use core::time::Duration;
//! use cssf_coap::lite::{Client, Config, Event};
//! use cssf_coap::{Code, Message, MessageBuilder, MessageType};
//! # struct Rng(u64);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 11 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u64() as u8 } }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
//! # }
//! # impl rand_core::CryptoRng for Rng {}
//!
//! let mut client: Client<Rng, 256> = Client::new(Config::default(), Rng(1));
//! let now = Duration::ZERO;
//!
//! // CON GET /time (the client picks the message ID and the token).
//! let mut get = MessageBuilder::<2>::new(MessageType::Con, Code::GET, 0);
//! get.uri_path("time")?;
//! client.request(now, &get)?;
//! let mut buf = [0u8; 256];
//! let n = client.poll_transmit(now, &mut buf)?.expect("the request").len;
//! assert!(client.poll_timeout().is_some()); // retransmission timer
//!
//! // What a server answers: 2.05 piggybacked in the ACK.
//! let req = Message::parse(&buf[..n])?;
//! let mut rsp = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, req.message_id());
//! rsp.token(req.token())?.payload(b"12:00");
//! let mut reply = [0u8; 64];
//! let len = rsp.emit(&mut reply)?;
//!
//! client.handle_datagram(now, (), &mut reply[..len])?;
//! match client.poll_event() {
//!     Some(Event::Response(m)) => {
//!         assert_eq!(m.code(), Code::CONTENT);
//!         assert_eq!(m.payload(), b"12:00");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(client.poll_timeout(), None);
//! # Ok::<(), cssf_coap::Error>(())
//! ```

use core::time::Duration;

use rand_core::{CryptoRng, RngCore};

use crate::endpoint::Transmit;
use crate::wire::{Message, MessageBuilder, MessageType, MAX_TOKEN_LEN};
use crate::Error;

/// What a [`Client`] dropped, by reason (nothing a peer sends is an
/// error of a call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that were not CoAP messages (answered with RST when their
    /// header said CON, RFC 7252 §4.2).
    pub malformed: u32,
    /// Datagrams from another address than the server's.
    pub not_from_server: u32,
    /// Responses to a protected request that did not verify (feature
    /// `oscore`): forged, tampered, for another request, unprotected, or
    /// too long to verify; the request stays outstanding.
    pub unverified: u32,
}

/// How long the message ID of an acknowledged confirmable response is kept
/// to re-acknowledge its duplicates: EXCHANGE_LIFETIME with the RFC 7252
/// §4.8 defaults (the server's retransmissions follow its parameters, which
/// the client does not know).
const EXCHANGE_LIFETIME: Duration = Duration::from_secs(247);

/// Transmission parameters of a [`Client`] (RFC 7252 §4.8).
///
/// [`Config::default`] gives the RFC defaults.
///
/// ```
/// use core::time::Duration;
/// use cssf_coap::lite::Config;
/// let c = Config::default();
/// assert_eq!((c.ack_timeout, c.ack_random_factor_milli), (Duration::from_secs(2), 1500));
/// assert_eq!((c.max_retransmit, c.token_len), (4, 4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// ACK_TIMEOUT (2 s).
    pub ack_timeout: Duration,
    /// ACK_RANDOM_FACTOR in thousandths (1500 = 1.5): the first timeout is
    /// drawn uniformly from ACK_TIMEOUT to ACK_TIMEOUT × this factor.
    pub ack_random_factor_milli: u32,
    /// MAX_RETRANSMIT (4).
    pub max_retransmit: u8,
    /// How long to wait for the response once a confirmable request was
    /// acknowledged with an Empty ACK, or after sending a non-confirmable
    /// request (93 s, MAX_TRANSMIT_WAIT).
    pub response_timeout: Duration,
    /// Length of the random token (clamped to 1..=8; 4 by default).
    pub token_len: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ack_timeout: Duration::from_secs(2),
            ack_random_factor_milli: 1500,
            max_retransmit: 4,
            response_timeout: Duration::from_secs(93),
            token_len: 4,
        }
    }
}

/// How a request ended, reported once by [`Client::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The response (piggybacked, or separate CON/NON, already acknowledged
    /// when confirmable). Also available from [`Client::response`] until the
    /// next request.
    Response(Message<'a>),
    /// No ACK after MAX_RETRANSMIT retransmissions, or no response within
    /// [`Config::response_timeout`].
    Timeout,
    /// The server rejected the request with a Reset.
    Reset,
    /// A response matched the request but was rejected, which ends the
    /// request: an unknown critical option or a critical option of invalid
    /// length (RFC 7252 §5.4.1, answered with RST unless it came in an
    /// ACK), or a response longer than the client's buffer
    /// ([`Error::BufferTooSmall`], also answered with RST).
    Rejected(Error),
}

/// Where the request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Active {
        con: bool,
        /// An Empty ACK arrived: only the separate response is awaited.
        acked: bool,
        /// To be (re)transmitted by the next `poll_transmit`.
        send: bool,
        /// Retransmissions so far.
        tries: u8,
        /// The current retransmission timeout (doubles each time).
        timeout: Duration,
        /// When `handle_timeout` acts next (valid when `!send`).
        due: Duration,
    },
    Done {
        outcome: Outcome,
        reported: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The response is in `buf[..len]`.
    Response,
    Timeout,
    Reset,
    Rejected(Error),
}

/// A sans-IO CoAP client with one outstanding request; see the
/// [module documentation](self).
///
/// `R` is the caller's RNG (initial message ID, tokens, retransmission
/// jitter); `M` the largest request or response in bytes; `A` the server's
/// address ([`with_server`](Self::with_server); `()` with
/// [`new`](Self::new), for a client whose transport has one peer, e.g. a
/// DTLS session).
///
/// A separate response (RFC 7252 §5.2.2): the server acknowledges the
/// request with an Empty ACK and sends the response later as CON, which the
/// client acknowledges.
///
/// ```
/// use core::time::Duration;
/// use cssf_coap::lite::{Client, Config, Event};
/// use cssf_coap::{Code, Message, MessageBuilder, MessageType};
/// # struct Rng(u64);
/// # impl rand_core::RngCore for Rng {
/// #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
/// #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 11 }
/// #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u64() as u8 } }
/// #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
/// # }
/// # impl rand_core::CryptoRng for Rng {}
/// let mut client: Client<Rng> = Client::new(Config::default(), Rng(7));
/// let mut buf = [0u8; 256];
/// let mut post = MessageBuilder::<2>::new(MessageType::Con, Code::POST, 0);
/// post.uri_path("actuators/valve")?.payload(b"open");
/// client.request(Duration::ZERO, &post)?;
/// let n = client.poll_transmit(Duration::ZERO, &mut buf)?.unwrap().len;
/// let req = Message::parse(&buf[..n])?;
/// let (mid, token) = (req.message_id(), req.token().to_vec());
///
/// // Empty ACK: no more retransmissions, the response timeout runs.
/// let t = Duration::from_millis(40);
/// let mut ack = [0u8; 4];
/// MessageBuilder::<0>::empty_ack(mid).emit(&mut ack)?;
/// client.handle_datagram(t, (), &mut ack)?;
/// assert_eq!(client.poll_timeout(), Some(t + Config::default().response_timeout));
///
/// // The response, CON with the server's own message ID.
/// let mut rsp = MessageBuilder::<0>::new(MessageType::Con, Code::CHANGED, 0x2001);
/// rsp.token(&token)?;
/// let mut datagram = [0u8; 16];
/// let len = rsp.emit(&mut datagram)?;
/// client.handle_datagram(Duration::from_secs(3), (), &mut datagram[..len])?;
/// assert!(matches!(client.poll_event(), Some(Event::Response(m)) if m.code() == Code::CHANGED));
///
/// // The client acknowledges it (and would again for a duplicate).
/// let n = client.poll_transmit(Duration::from_secs(3), &mut buf)?.unwrap().len;
/// assert_eq!(&buf[..n], &[0x60, 0x00, 0x20, 0x01]); // ACK 0.00, MID 0x2001
/// # Ok::<(), cssf_coap::Error>(())
/// ```
#[derive(Debug)]
pub struct Client<R, const M: usize = 256, A = ()> {
    config: Config,
    server: A,
    stats: Stats,
    rng: R,
    next_mid: u16,
    mid: u16,
    token: [u8; MAX_TOKEN_LEN],
    token_len: usize,
    state: State,
    /// The request while it is outstanding, then the response.
    buf: [u8; M],
    len: usize,
    /// An Empty ACK or RST to send: (type, message ID).
    ctl: Option<(MessageType, u16)>,
    /// The last confirmable response acknowledged, and until when its
    /// duplicates are acknowledged again instead of rejected.
    acked: Option<(u16, Duration)>,
    /// What binds the response to an OSCORE-protected request.
    #[cfg(feature = "oscore")]
    binding: Option<crate::oscore::RequestBinding>,
}

impl<R: RngCore + CryptoRng, const M: usize> Client<R, M> {
    /// A client with no request, for a transport with one peer (its
    /// address is `()`: no source check, so over plain UDP use
    /// [`with_server`](Client::with_server), which drops what comes from
    /// elsewhere); the first message ID is drawn from `rng` (RFC 7252
    /// §4.4).
    pub fn new(config: Config, rng: R) -> Self {
        Client::with_server(config, rng, ())
    }
}

impl<R: RngCore + CryptoRng, const M: usize, A: Clone + PartialEq> Client<R, M, A> {
    /// A client of the server at `server` (datagrams from elsewhere are
    /// dropped, every datagram goes there), with no request; the first
    /// message ID is drawn from `rng` (RFC 7252 §4.4).
    pub fn with_server(config: Config, mut rng: R, server: A) -> Self {
        let next_mid = rng.next_u32() as u16;
        Client {
            config,
            server,
            stats: Stats::default(),
            rng,
            next_mid,
            mid: 0,
            token: [0; MAX_TOKEN_LEN],
            token_len: 0,
            state: State::Idle,
            buf: [0; M],
            len: 0,
            ctl: None,
            acked: None,
            #[cfg(feature = "oscore")]
            binding: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What was dropped, by reason.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The server's address.
    pub fn server(&self) -> &A {
        &self.server
    }

    /// `true` while a request is outstanding.
    pub fn is_busy(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Sends `req`: its code, options and payload, as NON if its type is
    /// [`MessageType::Non`] and CON otherwise. The client sets the message
    /// ID and a fresh random token (those of `req` are ignored). The
    /// previous response, if any, is discarded.
    ///
    /// Errors: [`Error::Busy`] while a request is outstanding (wait for its
    /// event or [`Client::cancel`] it); [`Error::BufferTooSmall`] when the
    /// request does not fit `M` bytes.
    pub fn request<const K: usize>(
        &mut self,
        now: Duration,
        req: &MessageBuilder<'_, K>,
    ) -> Result<(), Error> {
        self.expire(now);
        if self.is_busy() {
            return Err(Error::Busy);
        }
        self.state = State::Idle;
        #[cfg(feature = "oscore")]
        {
            self.binding = None;
        }
        let con = req.ty() != MessageType::Non;
        let len = usize::from(self.config.token_len.clamp(1, MAX_TOKEN_LEN as u8));
        let mut token = [0u8; MAX_TOKEN_LEN];
        let token = token.get_mut(..len).unwrap_or_default();
        self.rng.fill_bytes(token);
        let mid = self.next_mid;
        let mut b = *req;
        b.set_type(if con {
            MessageType::Con
        } else {
            MessageType::Non
        })
        .set_message_id(mid)
        .token(token)?;
        self.len = b.emit(&mut self.buf)?;
        self.next_mid = mid.wrapping_add(1);
        self.mid = mid;
        self.token_len = token.len();
        if let Some(t) = self.token.get_mut(..token.len()) {
            t.copy_from_slice(token);
        }
        let timeout = self.initial_timeout();
        self.state = State::Active {
            con,
            acked: false,
            send: true,
            tries: 0,
            timeout,
            due: now,
        };
        Ok(())
    }

    /// Forgets the outstanding request, if any (a late response to it is
    /// then rejected with RST when confirmable, ignored otherwise), and
    /// discards the last response.
    pub fn cancel(&mut self) {
        self.state = State::Idle;
    }

    /// A datagram from `from` arrived.
    ///
    /// Never fails on what a peer sent: a datagram from another address
    /// than the server's is dropped, a malformed one too (rejected with RST
    /// when its header says CON), and (feature `oscore`) a response to a
    /// request sent with `request_protected`, which only
    /// `handle_datagram_protected` can verify; each counted in
    /// [`stats`](Self::stats);
    /// what ends the request is an event. `Ok` today in every case (an
    /// `Err` would be the caller's misuse).
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        if from != self.server {
            self.stats.not_from_server = self.stats.not_from_server.saturating_add(1);
            return Ok(());
        }
        // A response to a protected request is taken only verified
        // (`handle_datagram_protected`): here it cannot be, so it is
        // dropped and the request stays outstanding.
        #[cfg(feature = "oscore")]
        if self.binding.is_some() && Message::parse(data).is_ok_and(|m| self.awaits(&m)) {
            self.stats.unverified = self.stats.unverified.saturating_add(1);
            return Ok(());
        }
        self.input(now, data);
        Ok(())
    }

    /// A datagram from the server (checked by the caller).
    fn input(&mut self, now: Duration, data: &[u8]) {
        self.expire(now);
        let Ok(msg) = Message::parse(data) else {
            self.stats.malformed = self.stats.malformed.saturating_add(1);
            // RFC 7252 §4.2: a CON with a format error is rejected.
            if let Some(&[b0, _, m0, m1]) = data.get(..4) {
                if b0 >> 6 == 1 && MessageType::from_bits(b0 >> 4) == MessageType::Con {
                    self.queue(MessageType::Rst, u16::from_be_bytes([m0, m1]));
                }
            }
            return;
        };
        let (ty, mid, code) = (msg.ty(), msg.message_id(), msg.code());
        let con = ty == MessageType::Con;
        let ours = mid == self.mid;
        if code.is_empty() {
            match (ty, &mut self.state) {
                // §4.3: CoAP ping.
                (MessageType::Con, _) => self.queue(MessageType::Rst, mid),
                // §5.2.2: the separate response follows.
                (
                    MessageType::Ack,
                    State::Active {
                        con: true,
                        acked: acked @ false,
                        send,
                        due,
                        ..
                    },
                ) if ours => {
                    *acked = true;
                    *send = false;
                    *due = now.saturating_add(self.config.response_timeout);
                }
                (MessageType::Rst, State::Active { .. }) if ours => self.finish(Outcome::Reset),
                _ => {}
            }
            return;
        }
        if !code.is_response() {
            // A request (this client serves nothing) or a reserved class.
            if con {
                self.queue(MessageType::Rst, mid);
            }
            return;
        }
        // §4.5: a duplicate of the confirmable response we acknowledged.
        if con && self.acked.is_some_and(|(m, _)| m == mid) {
            self.queue(MessageType::Ack, mid);
            return;
        }
        let matched = matches!(self.state, State::Active { .. })
            && msg.token() == self.token.get(..self.token_len).unwrap_or_default()
            && (ty != MessageType::Ack || ours);
        if !matched {
            // §4.2 / §4.3: reject an unexpected CON, ignore NON and ACK.
            if con {
                self.queue(MessageType::Rst, mid);
            }
            return;
        }
        let stored = msg.check_options().and_then(|()| {
            let dst = self
                .buf
                .get_mut(..data.len())
                .ok_or(Error::BufferTooSmall { needed: data.len() })?;
            dst.copy_from_slice(data);
            Ok(data.len())
        });
        match stored {
            Ok(len) => {
                self.len = len;
                if con {
                    self.queue(MessageType::Ack, mid);
                    self.acked = Some((mid, now.saturating_add(EXCHANGE_LIFETIME)));
                }
                self.finish(Outcome::Response);
            }
            Err(e) => {
                if ty != MessageType::Ack {
                    self.queue(MessageType::Rst, mid);
                }
                self.finish(Outcome::Rejected(e));
            }
        }
    }

    /// Time passed: retransmits the confirmable request, or gives up and
    /// reports [`Event::Timeout`]. Call it at [`Client::poll_timeout`].
    ///
    /// ```
    /// use core::time::Duration;
    /// use cssf_coap::lite::{Client, Config, Event};
    /// use cssf_coap::{Code, MessageBuilder, MessageType};
    /// # struct Rng(u64);
    /// # impl rand_core::RngCore for Rng {
    /// #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
    /// #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 11 }
    /// #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u64() as u8 } }
    /// #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
    /// # }
    /// # impl rand_core::CryptoRng for Rng {}
    /// // A factor of 1 removes the jitter: 1 s, 2 s, 4 s, then give up.
    /// let config = Config {
    ///     ack_timeout: Duration::from_secs(1),
    ///     ack_random_factor_milli: 1000,
    ///     max_retransmit: 2,
    ///     ..Config::default()
    /// };
    /// let mut client: Client<Rng> = Client::new(config, Rng(3));
    /// client.request(Duration::ZERO, &MessageBuilder::<0>::new(MessageType::Con, Code::GET, 0))?;
    /// let mut buf = [0u8; 64];
    /// let mut now = Duration::ZERO;
    /// let mut sent = Vec::new();
    /// loop {
    ///     while client.poll_transmit(now, &mut buf)?.is_some() {
    ///         sent.push(now.as_secs());
    ///     }
    ///     let Some(at) = client.poll_timeout() else { break };
    ///     now = at;
    ///     client.handle_timeout(now);
    /// }
    /// assert_eq!(sent, [0, 1, 3]);
    /// assert_eq!((now.as_secs(), client.poll_event()), (7, Some(Event::Timeout)));
    /// # Ok::<(), cssf_coap::Error>(())
    /// ```
    pub fn handle_timeout(&mut self, now: Duration) {
        self.expire(now);
        let max = self.config.max_retransmit;
        if let State::Active {
            con,
            acked,
            send: send @ false,
            tries,
            timeout,
            due,
        } = &mut self.state
        {
            if *due > now {
                return;
            }
            if *con && !*acked && *tries < max {
                *tries += 1;
                *timeout = timeout.saturating_add(*timeout);
                *send = true;
            } else {
                self.finish(Outcome::Timeout);
            }
        }
    }

    /// The next datagram to send, written into `buf`: its length and the
    /// server's address. Empty ACKs and RSTs go first, then the request
    /// when it is due.
    ///
    /// Errors: [`Error::BufferTooSmall`] (the datagram stays queued).
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        buf: &mut [u8],
    ) -> Result<Option<Transmit<A>>, Error> {
        let to = self.server.clone();
        Ok(self.transmit(now, buf)?.map(|len| Transmit { to, len }))
    }

    fn transmit(&mut self, now: Duration, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        if let Some((ty, mid)) = self.ctl {
            let [m0, m1] = mid.to_be_bytes();
            let out = buf
                .get_mut(..4)
                .ok_or(Error::BufferTooSmall { needed: 4 })?;
            out.copy_from_slice(&[0x40 | (ty.bits() << 4), 0, m0, m1]);
            self.ctl = None;
            return Ok(Some(4));
        }
        let response_timeout = self.config.response_timeout;
        if let State::Active {
            con,
            acked,
            send: send @ true,
            timeout,
            due,
            ..
        } = &mut self.state
        {
            let len = self.len;
            let out = buf
                .get_mut(..len)
                .ok_or(Error::BufferTooSmall { needed: len })?;
            out.copy_from_slice(self.buf.get(..len).unwrap_or_default());
            *send = false;
            let wait = if *con && !*acked {
                *timeout
            } else {
                response_timeout
            };
            *due = now.saturating_add(wait);
            return Ok(Some(len));
        }
        Ok(None)
    }

    /// How the last request ended, once; `None` while it is outstanding (or
    /// when there is none, or it was reported already).
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let State::Done {
            outcome,
            reported: reported @ false,
        } = &mut self.state
        else {
            return None;
        };
        *reported = true;
        let outcome = *outcome;
        Some(match outcome {
            Outcome::Response => match self.response() {
                Some(m) => Event::Response(m),
                None => Event::Rejected(Error::Truncated),
            },
            Outcome::Timeout => Event::Timeout,
            Outcome::Reset => Event::Reset,
            Outcome::Rejected(e) => Event::Rejected(e),
        })
    }

    /// The response to the last request, until the next request or
    /// [`Client::cancel`].
    pub fn response(&self) -> Option<Message<'_>> {
        match self.state {
            State::Done {
                outcome: Outcome::Response,
                ..
            } => Message::parse(self.buf.get(..self.len)?).ok(),
            _ => None,
        }
    }

    /// When [`Client::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            State::Active {
                send: false, due, ..
            } => Some(due),
            _ => None,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.state = State::Done {
            outcome,
            reported: false,
        };
    }

    /// Queues an Empty ACK or RST. There is one slot: an ACK replaces
    /// whatever waits there, an RST only fills an empty slot (a lost RST or
    /// ACK is repaired by the peer's retransmission).
    fn queue(&mut self, ty: MessageType, mid: u16) {
        if ty == MessageType::Ack || self.ctl.is_none() {
            self.ctl = Some((ty, mid));
        }
    }

    fn expire(&mut self, now: Duration) {
        if self.acked.is_some_and(|(_, until)| until <= now) {
            self.acked = None;
        }
    }

    /// ACK_TIMEOUT × a random factor in [1, ACK_RANDOM_FACTOR] (§4.2),
    /// with millisecond resolution. 32-bit arithmetic only: a 64-bit
    /// division would pull about 1 KB of runtime code into a Cortex-M image.
    fn initial_timeout(&mut self) -> Duration {
        let base = self.config.ack_timeout;
        let ms = u32::try_from(base.as_secs())
            .map_or(u32::MAX, |s| s.saturating_mul(1000))
            .saturating_add(base.subsec_millis());
        let extra = self.config.ack_random_factor_milli.saturating_sub(1000);
        // ms × extra / 1000, without overflow.
        let span = (ms / 1000)
            .saturating_mul(extra)
            .saturating_add((ms % 1000).saturating_mul(extra) / 1000);
        // A uniform draw from 0..=span (multiply-shift, no division).
        let r = (u64::from(self.rng.next_u32()) * (u64::from(span) + 1)) >> 32;
        let r = u32::try_from(r).unwrap_or(span);
        base.saturating_add(Duration::new(u64::from(r / 1000), (r % 1000) * 1_000_000))
    }
}

#[cfg(feature = "oscore")]
mod oscore;
#[cfg(test)]
mod tests;
