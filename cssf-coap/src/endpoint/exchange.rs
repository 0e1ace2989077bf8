//! What the application exchanges with the endpoint: requests and
//! responses it builds, events and received messages it reads, counters.

use heapless::Vec;

use crate::wire::{Block, Code, ContentFormat, Message};
use crate::Error;

#[allow(unused_imports)] // doc links
use super::{Config, Endpoint};

/// A datagram [`Endpoint::poll_transmit`] wrote: destination and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<A> {
    /// Where to send it.
    pub to: A,
    /// How many bytes of the caller's buffer it occupies.
    pub len: usize,
}

/// Identifies a request the server received and the application answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

/// Identifies a client exchange (a request and its responses or notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub u32);

/// A received message, owned (copied into a fixed buffer) so the
/// application can read it while commanding the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<const M: usize> {
    bytes: Vec<u8, M>,
    payload_at: usize,
    security: RequestSecurity,
}

/// How a request reached the application: what its handler may base an
/// authorization decision on ([`Received::security`]).
///
/// A DTLS session is not shown here: the endpoint sees a session as its
/// peer `A` (the application knows which identity the session proved).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestSecurity {
    /// Plain CoAP as far as the endpoint knows (no OSCORE option).
    #[default]
    Plain,
    /// The request was OSCORE-protected (RFC 8613) and verified: it was
    /// made by the holder of the security context at index `context`
    /// (what [`Endpoint::add_oscore_context`] returned), whose Recipient
    /// ID is `kid`, and it was not a replay. The response is protected
    /// with the same context.
    #[cfg(feature = "oscore")]
    Oscore {
        /// Index of the context in the endpoint's table.
        context: usize,
        /// The request's kid: the client's Sender ID.
        kid: crate::oscore::Id,
    },
}

impl RequestSecurity {
    /// Whether the request was OSCORE-protected.
    pub const fn is_oscore(&self) -> bool {
        !matches!(self, RequestSecurity::Plain)
    }
}

impl<const M: usize> Received<M> {
    pub(super) fn new(msg: &Message<'_>) -> Option<Self> {
        let raw = msg.as_bytes();
        let bytes = Vec::from_slice(raw).ok()?;
        Some(Received {
            bytes,
            payload_at: raw.len().saturating_sub(msg.payload().len()),
            security: RequestSecurity::Plain,
        })
    }

    #[cfg(feature = "oscore")]
    pub(super) fn with_security(mut self, security: RequestSecurity) -> Self {
        self.security = security;
        self
    }

    /// How the request was protected ([`RequestSecurity::Plain`] for a
    /// response and for a message made by [`Received::from_message`]).
    /// For an OSCORE request this message is the verified inner request.
    pub fn security(&self) -> RequestSecurity {
        self.security
    }

    /// The message as a checked view (parsing cannot fail: it was validated
    /// on arrival).
    pub fn message(&self) -> Result<Message<'_>, Error> {
        Message::parse(&self.bytes)
    }

    /// The code.
    pub fn code(&self) -> Code {
        Code(self.bytes.get(1).copied().unwrap_or(0))
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(self.payload_at..).unwrap_or(&[])
    }

    /// The raw message bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// RFC 7252 §5.10.8: whether the request's If-Match and If-None-Match
    /// options hold for the target resource, which `exists` with the
    /// current ETag `etag`. The endpoint passes these options to the
    /// application (it knows its representations): when this is `false`,
    /// answer 4.12 (Precondition Failed) without carrying out the method.
    ///
    /// ```
    /// use cssf_coap::endpoint::Received;
    /// # use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
    /// # let mut b = MessageBuilder::<4>::new(MessageType::Con, Code::PUT, 1);
    /// # b.add_empty(OptionNumber::IF_NONE_MATCH).unwrap();
    /// # let mut buf = [0u8; 16];
    /// # let n = b.emit(&mut buf).unwrap();
    /// # let request: Received<64> = Received::from_message(&Message::parse(&buf[..n]).unwrap()).unwrap();
    /// // PUT with If-None-Match: only creates.
    /// assert!(request.preconditions_hold(false, None));
    /// assert!(!request.preconditions_hold(true, Some(b"v1")));
    /// ```
    pub fn preconditions_hold(&self, exists: bool, etag: Option<&[u8]>) -> bool {
        self.message()
            .is_ok_and(|m| super::server::preconditions_hold(&m, exists, etag))
    }

    /// Copies a received message (`None` if it is longer than `M`).
    pub fn from_message(msg: &Message<'_>) -> Option<Self> {
        Self::new(msg)
    }
}

/// What the endpoint reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A, const M: usize> {
    /// A request for one of the router's resources: answer it with
    /// [`Endpoint::respond`]. Requests carrying Block1 arrive one block at a
    /// time, in order (the endpoint answers 4.08 to gaps itself); for Block2
    /// requests answer with the whole representation, the endpoint slices it.
    /// Conditional requests (If-Match, If-None-Match) are the
    /// application's to evaluate: [`Received::preconditions_hold`].
    Request {
        /// Pass to [`Endpoint::respond`].
        id: RequestId,
        /// Who asked.
        peer: A,
        /// Index of the resource in the router table.
        resource: usize,
        /// The request.
        request: Received<M>,
    },
    /// A response to [`Endpoint::request`]. With Block2, one event per
    /// block (the endpoint fetches the next block itself); `last` is `true`
    /// on the final one, after which the exchange is over.
    Response {
        /// The exchange.
        id: ExchangeId,
        /// Who answered.
        peer: A,
        /// `false` while more Block2 blocks follow.
        last: bool,
        /// The response.
        response: Received<M>,
    },
    /// A fresh Observe notification (stale, reordered ones are dropped per
    /// RFC 7641 §3.4; over OSCORE, those whose Partial IV is not above
    /// every one taken for the registration, RFC 8613 §7.4.1).
    ///
    /// A notification carrying Block2 with more blocks (RFC 7959 §2.6)
    /// arrives as its first block with `last: false`; the endpoint then
    /// fetches the rest with GET + Block2 (no Observe, a fresh token) and
    /// delivers each block as a further `Notification` of the same `id`,
    /// `last: true` on the final one: feed them to a [`BlockAssembler`]. A
    /// newer notification (a block at offset 0) replaces a body still being
    /// fetched; a fetch that fails (no answer, an error, or a block with a
    /// different ETag, i.e. of a newer representation) is abandoned,
    /// counted in [`Stats::dropped`], and the next notification starts over.
    Notification {
        /// The observing exchange.
        id: ExchangeId,
        /// The server.
        peer: A,
        /// `false` while more Block2 blocks of this notification follow.
        last: bool,
        /// The notification.
        notification: Received<M>,
    },
    /// No response: the CON request was never acknowledged, or no response
    /// came within [`Config::response_timeout`].
    Timeout {
        /// The exchange.
        id: ExchangeId,
    },
    /// The peer rejected the request with RST.
    Reset {
        /// The exchange.
        id: ExchangeId,
    },
    /// The exchange was abandoned because the transport session to its
    /// peer ended ([`Endpoint::close_peer`](super::Endpoint::close_peer)):
    /// no response will come.
    Aborted {
        /// The exchange.
        id: ExchangeId,
    },
}

/// A client request, for [`Endpoint::request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Method code (0.01..=0.31).
    pub method: Code,
    /// Confirmable (default) or non-confirmable.
    pub confirmable: bool,
    /// Path, `/`-separated, without percent-encoding.
    pub path: &'a str,
    /// Query, `&`-separated arguments (one Uri-Query each).
    pub query: Option<&'a str>,
    /// Content-Format of the payload.
    pub content_format: Option<ContentFormat>,
    /// Accept.
    pub accept: Option<ContentFormat>,
    /// Observe (0 register, 1 deregister).
    pub observe: Option<u32>,
    /// Block1 (the payload is that block).
    pub block1: Option<Block>,
    /// Block2 (early size negotiation or a given block).
    pub block2: Option<Block>,
    /// Size1 (total upload size).
    pub size1: Option<u32>,
    /// Request-Tag (RFC 9175 §3) to keep concurrent Block1 uploads apart.
    pub request_tag: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> Request<'a> {
    /// A confirmable request with no options or payload.
    pub const fn new(method: Code, path: &'a str) -> Self {
        Request {
            method,
            confirmable: true,
            path,
            query: None,
            content_format: None,
            accept: None,
            observe: None,
            block1: None,
            block2: None,
            size1: None,
            request_tag: None,
            payload: &[],
        }
    }

    /// GET `path`.
    pub const fn get(path: &'a str) -> Self {
        Request::new(Code::GET, path)
    }

    /// PUT `path`.
    pub const fn put(path: &'a str) -> Self {
        Request::new(Code::PUT, path)
    }

    /// POST `path`.
    pub const fn post(path: &'a str) -> Self {
        Request::new(Code::POST, path)
    }

    /// DELETE `path`.
    pub const fn delete(path: &'a str) -> Self {
        Request::new(Code::DELETE, path)
    }

    /// Makes it non-confirmable.
    pub const fn non(mut self) -> Self {
        self.confirmable = false;
        self
    }

    /// Sets the payload.
    pub const fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the query (`a=b&c`).
    pub const fn query(mut self, query: &'a str) -> Self {
        self.query = Some(query);
        self
    }

    /// Sets Content-Format.
    pub const fn content_format(mut self, cf: ContentFormat) -> Self {
        self.content_format = Some(cf);
        self
    }

    /// Registers as an observer (Observe 0).
    pub const fn observe(mut self) -> Self {
        self.observe = Some(0);
        self
    }

    /// Sets Block1 and the payload of that block.
    pub const fn block1(mut self, block: Block, payload: &'a [u8]) -> Self {
        self.block1 = Some(block);
        self.payload = payload;
        self
    }

    /// Sets Block2.
    pub const fn block2(mut self, block: Block) -> Self {
        self.block2 = Some(block);
        self
    }

    /// Sets Size1.
    pub const fn size1(mut self, size: u32) -> Self {
        self.size1 = Some(size);
        self
    }

    /// Sets Request-Tag.
    pub const fn request_tag(mut self, tag: &'a [u8]) -> Self {
        self.request_tag = Some(tag);
        self
    }
}

/// A server response or notification, for [`Endpoint::respond`] and
/// [`Endpoint::notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// Response code.
    pub code: Code,
    /// Content-Format.
    pub content_format: Option<ContentFormat>,
    /// Max-Age (seconds).
    pub max_age: Option<u32>,
    /// ETag.
    pub etag: Option<&'a [u8]>,
    /// Location-Path (for 2.01), `/`-separated.
    pub location_path: Option<&'a str>,
    /// Location-Query (for 2.01), `&`-separated: `first=1&second=2` gives
    /// two options (RFC 7252 §5.10.7).
    pub location_query: Option<&'a str>,
    /// The whole representation; the endpoint slices it for Block2.
    pub payload: &'a [u8],
}

impl<'a> Response<'a> {
    /// A response with no options or payload.
    pub const fn new(code: Code) -> Self {
        Response {
            code,
            content_format: None,
            max_age: None,
            etag: None,
            location_path: None,
            location_query: None,
            payload: &[],
        }
    }

    /// Sets the payload.
    pub const fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// Sets Content-Format.
    pub const fn content_format(mut self, cf: ContentFormat) -> Self {
        self.content_format = Some(cf);
        self
    }

    /// Sets Max-Age.
    pub const fn max_age(mut self, secs: u32) -> Self {
        self.max_age = Some(secs);
        self
    }

    /// Sets ETag.
    pub const fn etag(mut self, etag: &'a [u8]) -> Self {
        self.etag = Some(etag);
        self
    }

    /// Sets Location-Path (`/`-separated, one option per segment).
    ///
    /// ```
    /// use cssf_coap::endpoint::Response;
    /// use cssf_coap::Code;
    /// let r = Response::new(Code::CREATED)
    ///     .location_path("location1/location2/location3")
    ///     .location_query("first=1&second=2");
    /// assert_eq!(r.location_query, Some("first=1&second=2"));
    /// ```
    pub const fn location_path(mut self, path: &'a str) -> Self {
        self.location_path = Some(path);
        self
    }

    /// Sets Location-Query (`&`-separated, one option per parameter).
    pub const fn location_query(mut self, query: &'a str) -> Self {
        self.location_query = Some(query);
        self
    }
}

/// Counters of what the endpoint dropped, repeated or refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Malformed datagrams (format errors) and misused message types.
    pub malformed: u64,
    /// Duplicate CON/NON messages (answered from the cache, never re-run).
    pub duplicates: u64,
    /// RST messages sent.
    pub resets_sent: u64,
    /// Requests refused with 5.03 because a table was full.
    pub busy: u64,
    /// CON retransmissions.
    pub retransmissions: u64,
    /// CON messages given up after MAX_RETRANSMIT.
    pub give_ups: u64,
    /// Notifications dropped by the §3.4 freshness rule.
    pub stale_notifications: u64,
    /// Messages dropped because a queue was full or a message did not fit.
    pub dropped: u64,
    /// Responses and ACKs that matched no exchange.
    pub unmatched: u64,
    /// Answers and notifications toward unverified peers that would have
    /// exceeded [`Config::amplification_factor`] times the request:
    /// replaced by an Echo challenge, or not sent (RFC 9175 §2.4).
    pub amplification_limited: u64,
    /// OSCORE requests that failed verification (feature `oscore`):
    /// answered unprotected with 4.00, 4.01 or 4.02 (RFC 8613 §8.2), or
    /// dropped when the failure has no answer.
    pub oscore_refused: u64,
}

/// How many entries of the tables the server side keeps for its peers one
/// peer holds ([`Endpoint::peer_usage`]), or may hold at most
/// ([`Endpoint::peer_quota`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeerUsage {
    /// Remembered message IDs with their cached responses (RFC 7252 §4.5).
    pub message_ids: usize,
    /// Observe registrations (RFC 7641).
    pub observers: usize,
    /// Block1 uploads in progress (RFC 7959).
    pub uploads: usize,
    /// Requests handed to the application and not answered yet.
    pub pending: usize,
}

impl PeerUsage {
    /// Whether every count is at most the one in `quota`.
    pub fn within(&self, quota: &PeerUsage) -> bool {
        self.message_ids <= quota.message_ids
            && self.observers <= quota.observers
            && self.uploads <= quota.uploads
            && self.pending <= quota.pending
    }
}

/// Reassembles a Block2 response, delivered as one [`Event::Response`] per
/// block, into a caller buffer (RFC 7959 §2.4). It only tracks the length,
/// so it can live beside the buffer in the application's state.
///
/// ```
/// use cssf_coap::endpoint::BlockAssembler;
/// let mut buf = [0u8; 4096];
/// let mut body = BlockAssembler::new();
/// // for each Event::Response { response, .. } of the exchange:
/// //     if let Some(len) = body.push(&mut buf, &response)? { /* buf[..len] is the body */ }
/// assert!(body.is_empty());
/// # Ok::<(), cssf_coap::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockAssembler {
    len: usize,
}

impl BlockAssembler {
    /// Nothing assembled yet.
    pub const fn new() -> Self {
        BlockAssembler { len: 0 }
    }

    /// Bytes assembled so far.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was assembled yet.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds one response's block at its offset in `buf`: `Ok(Some(len))`
    /// once the last block is in, `Ok(None)` while more follow. A block at
    /// offset 0 starts a new body (e.g. a newer Observe notification); any
    /// other block that does not continue the body gives
    /// [`Error::BadBlock`] (nothing is written); a short `buf` gives
    /// [`Error::BufferTooSmall`].
    pub fn push<const M: usize>(
        &mut self,
        buf: &mut [u8],
        response: &Received<M>,
    ) -> Result<Option<usize>, Error> {
        let msg = response.message()?;
        let payload = msg.payload();
        let (offset, more) = match msg.block2()? {
            Some(b) => (b.offset(), b.more()),
            None => (0, false),
        };
        if offset == 0 {
            self.len = 0;
        }
        if offset != self.len {
            return Err(Error::BadBlock);
        }
        let end = offset.saturating_add(payload.len());
        let dst = buf
            .get_mut(offset..end)
            .ok_or(Error::BufferTooSmall { needed: end })?;
        dst.copy_from_slice(payload);
        self.len = end;
        Ok((!more).then_some(end))
    }
}
