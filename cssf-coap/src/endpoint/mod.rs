//! The sans-IO CoAP endpoint: client and server at once.
//!
//! It implements the RFC 7252 §4 message layer (CON retransmission with the
//! §4.8 parameters, NSTART, message-ID deduplication that replays the cached
//! response, ACK/RST matching, CoAP ping), §5 request/response (random
//! tokens, piggybacked and separate responses, NON), a resource router with
//! `/.well-known/core` (RFC 6690), Observe (RFC 7641), Block-wise transfers
//! (RFC 7959) and the Echo / Request-Tag options (RFC 9175). Every table has
//! a fixed capacity; nothing is allocated.
//!
//! With feature `oscore` it also speaks OSCORE (RFC 8613): the server side
//! verifies protected requests with its security contexts
//! (`add_oscore_context`), routes the inner request (the handler reads
//! `Received::security`) and protects every answer, a retransmission
//! getting the cached protected answer; the client side sends a request
//! protected (`request_protected`, `upload_protected`) and takes only a
//! response that verifies. Observe and Block-wise work over it on both
//! sides (RFC 8613 §4.1.3.4, §4.1.3.5): observations are bound to their
//! context and registration request, each notification protected under
//! its own Partial IV, and every block is its own protected request. See
//! the crate README's OSCORE section.
//!
//! The endpoint follows the workspace's I/O shape: feed it datagrams
//! ([`Endpoint::handle_datagram`]) and time ([`Endpoint::handle_timeout`]),
//! issue commands ([`Endpoint::request`], [`Endpoint::respond`],
//! [`Endpoint::notify`]), then drain [`Endpoint::poll_transmit`],
//! [`Endpoint::poll_event`] and read [`Endpoint::poll_timeout`].
//!
//! ```
//! use core::time::Duration;
//! use cssf_coap::endpoint::{Endpoint, Config, Event, Methods, Request, Resource, Response};
//! use cssf_coap::Code;
//!
//! static RESOURCES: [Resource; 1] = [Resource::new("hello", Methods::GET)];
//! # struct Rng(u64);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 11 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u64() as u8 } }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
//! # }
//! # impl rand_core::CryptoRng for Rng {}
//! let mut client: Endpoint<u8, Rng> = Endpoint::new(Config::default(), Rng(1), &[]);
//! let mut server: Endpoint<u8, Rng> = Endpoint::new(Config::default(), Rng(2), &RESOURCES);
//! let now = Duration::ZERO;
//! let id = client.request(now, 2, &Request::get("hello"))?;
//! let mut buf = [0u8; 1280];
//!
//! // client -> server
//! let tx = client.poll_transmit(now, &mut buf)?.unwrap();
//! server.handle_datagram(now, 1, &mut buf[..tx.len])?;
//! let Some(Event::Request { id: rid, .. }) = server.poll_event() else { panic!() };
//! server.respond(now, rid, &Response::new(Code::CONTENT).payload(b"world"))?;
//!
//! // server -> client (piggybacked in the ACK)
//! let tx = server.poll_transmit(now, &mut buf)?.unwrap();
//! client.handle_datagram(now, 2, &mut buf[..tx.len])?;
//! match client.poll_event() {
//!     Some(Event::Response { id: got, response, .. }) => {
//!         assert_eq!(got, id);
//!         assert_eq!(response.code(), Code::CONTENT);
//!         assert_eq!(response.payload(), b"world");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), cssf_coap::Error>(())
//! ```

mod client;
mod config;
mod echo;
mod exchange;
mod link_format;
mod message_layer;
mod observe;
#[cfg(feature = "oscore")]
mod oscore;
mod router;
mod server;

pub use config::Config;
pub use exchange::{
    BlockAssembler, Event, ExchangeId, PeerUsage, Received, Request, RequestId, RequestSecurity,
    Response, Stats, Transmit,
};
pub use observe::{notification_is_fresh, OBSERVE_REORDER_WINDOW};
pub use router::{Methods, Resource};

use core::hash::Hash;
use core::time::Duration;

use heapless::Vec;
use rand_core::{CryptoRng, RngCore};

use crate::wire::{Block, Code, ContentFormat, Message, MessageBuilder, MessageType, OptionNumber};
use crate::Error;

/// Content-Format of `/.well-known/core` (application/link-format).
const LINK_FORMAT: ContentFormat = ContentFormat(40);
/// Options a message built by the endpoint may carry.
const OPTS: usize = 24;
/// How much longer OSCORE makes an answer the endpoint builds (RFC 8613
/// §8.3, with the request's nonce, no Observe): the empty OSCORE option
/// (1 byte), the outer payload marker (1), the inner code (1) and the
/// AEAD tag (8); every option of such an answer is Class E and keeps its
/// encoding inside. Answers to OSCORE requests are sized this much under
/// the amplification limit.
const OSCORE_ANSWER_OVERHEAD: usize = 11;
/// What OSCORE adds to a notification besides that: the flag byte and a
/// Partial IV of up to 5 bytes in the OSCORE option, and the outer copy of
/// the Observe option (up to 4 bytes, RFC 8613 §4.1.3.5).
const OSCORE_NOTIFICATION_EXTRA: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Token {
    len: u8,
    bytes: [u8; 8],
}

impl Token {
    fn new(t: &[u8]) -> Self {
        let mut bytes = [0u8; 8];
        let len = t.len().min(8);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), t.get(..len)) {
            dst.copy_from_slice(src);
        }
        Token {
            len: len as u8,
            bytes,
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Exchange(u32),
    Response,
    Notify(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConState {
    /// Held back by NSTART.
    Waiting,
    /// To be (re)transmitted by the next `poll_transmit`.
    Send,
    /// A notification to be transmitted by the next `poll_transmit` on the
    /// retransmission schedule it already has (RFC 7641 §4.5.2: a newer
    /// notification that replaces one in flight, or a retransmission
    /// anchored to the first transmission): sending it does not move
    /// `next_at`.
    Resend { next_at: Duration },
    /// On the wire; retransmit or give up at `next_at`.
    Sent { next_at: Duration },
}

/// A confirmable message awaiting its ACK (RFC 7252 §4.2).
#[derive(Debug)]
struct ConSlot<A, const M: usize> {
    peer: A,
    mid: u16,
    bytes: Vec<u8, M>,
    owner: Owner,
    state: ConState,
    tries: u8,
    timeout: Duration,
    /// When it was first transmitted.
    first_sent: Option<Duration>,
}

#[derive(Debug)]
enum DedupState<const M: usize> {
    /// A request handed to the application, not answered yet, and an Empty
    /// ACK was sent (separate response to follow).
    PendingAcked,
    /// Answered; replay these bytes (empty: not answered yet, nothing to
    /// replay).
    Answered(Vec<u8, M>),
    /// A CON/NON response we acknowledged (CON: replay an Empty ACK).
    Acked,
}

/// A message ID seen from a peer (RFC 7252 §4.5), with the token of the
/// message (a message with the same ID and another token is not a
/// duplicate of it).
#[derive(Debug)]
struct Dedup<A, const M: usize> {
    peer: A,
    mid: u16,
    token: Token,
    /// Its length (a shorter "duplicate" is not answered with more than
    /// the amplification limit allows).
    req_len: usize,
    /// When it was first seen.
    since: Duration,
    expires: Duration,
    state: DedupState<M>,
}

/// Which peers have a verified address (see
/// [`Endpoint::set_verified_peers`]); a function pointer so the endpoint
/// stays `Debug` and allocation-free.
#[derive(Clone, Copy)]
struct VerifiedPeers<A>(fn(&A) -> bool);

impl<A> core::fmt::Debug for VerifiedPeers<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("VerifiedPeers(fn)")
    }
}

fn none_verified<A>(_: &A) -> bool {
    false
}

#[derive(Debug)]
struct PendingRequest<A> {
    id: u32,
    peer: A,
    mid: u16,
    token: Token,
    con: bool,
    acked: bool,
    ack_at: Duration,
    /// Dropped unanswered after EXCHANGE_LIFETIME (the client gave up).
    expires: Duration,
    resource: usize,
    observe: Option<u32>,
    block1: Option<Block>,
    /// Its Request-Tag (RFC 9175 §3; empty: none), which with the peer and
    /// resource names its Block1 upload.
    tag: Token,
    block2: Option<Block>,
    /// The request's method and the length of the datagram it came in
    /// (the OSCORE message, for a protected request): the answer to an
    /// unverified peer stays under `Config::amplification_factor` times it.
    method: Code,
    req_len: usize,
    /// The OSCORE request it came in (its answer is protected with it).
    #[cfg(feature = "oscore")]
    oscore: Option<oscore::OscoreRequest>,
}

#[derive(Debug)]
struct Exchange<A, const M: usize> {
    id: u32,
    peer: A,
    token: Token,
    con: bool,
    observing: bool,
    last_obs: Option<(u32, Duration)>,
    echo_retried: bool,
    template: Vec<u8, M>,
    deadline: Option<Duration>,
    /// Set on a fetch of the remaining Block2 blocks of a notification
    /// (RFC 7959 §2.6): the observing exchange and the ETag of the
    /// notification's first block (a later block with another ETag belongs
    /// to a newer representation and ends the fetch).
    fetch_for: Option<(u32, Option<Token>)>,
    /// Sent OSCORE-protected (`template` is the plain request): the
    /// response must verify against this binding.
    #[cfg(feature = "oscore")]
    oscore: Option<oscore::OscoreRequest>,
}

impl<A, const M: usize> Exchange<A, M> {
    /// Whether it was sent OSCORE-protected (`template` is then the plain
    /// request, protected anew, under a new Partial IV, for every edited
    /// repeat: an Echo retry, the next Block2 block, an Observe edit).
    fn is_oscore(&self) -> bool {
        #[cfg(feature = "oscore")]
        return self.oscore.is_some();
        #[cfg(not(feature = "oscore"))]
        false
    }
}

/// Message IDs of its latest notifications an observer is known by: an
/// RST (or ACK) to any of them is matched, so a client whose round trip is
/// longer than the notification period can still cancel by RST.
const OBSERVER_MIDS: usize = 4;

#[derive(Debug)]
struct Observer<A> {
    key: u32,
    peer: A,
    token: Token,
    resource: usize,
    since_con: u32,
    /// Message IDs of its latest notifications, oldest first.
    recent: Vec<u16, OBSERVER_MIDS>,
    /// Length of the registration request (notifications to an observer
    /// registered unverified stay under `Config::amplification_factor`
    /// times it).
    req_len: usize,
    /// The peer was verified when it registered: its notifications are not
    /// limited (it asked for them itself, and stays only while it
    /// acknowledges the confirmable ones).
    verified: bool,
    /// The OSCORE registration (RFC 8613 §4.1.3.5): the context it was
    /// verified with and its request's kid and Partial IV, which every
    /// notification's AAD names; each notification takes a Partial IV of
    /// its own. `None`: a plain observation.
    #[cfg(feature = "oscore")]
    oscore: Option<oscore::OscoreRequest>,
}

impl<A> PendingRequest<A> {
    /// Whether it came OSCORE-protected.
    fn is_oscore(&self) -> bool {
        #[cfg(feature = "oscore")]
        return self.oscore.is_some();
        #[cfg(not(feature = "oscore"))]
        false
    }

    /// The OSCORE context it was verified with (`None`: plain).
    fn oscore_context(&self) -> Option<usize> {
        #[cfg(feature = "oscore")]
        return self.oscore.as_ref().map(|o| o.context);
        #[cfg(not(feature = "oscore"))]
        None
    }

    /// What an observation it registers keeps of its OSCORE request: the
    /// context and the request's kid and Partial IV (the notifications'
    /// AAD), its nonce marked used (notifications never reuse it).
    #[cfg(feature = "oscore")]
    fn observer_binding(&self) -> Option<oscore::OscoreRequest> {
        self.oscore.as_ref().map(|o| {
            let mut binding =
                crate::oscore::RequestBinding::new(o.binding.kid, o.binding.partial_iv);
            binding.take_nonce();
            oscore::OscoreRequest {
                context: o.context,
                binding,
                datagram_len: o.datagram_len,
            }
        })
    }
}

impl<A> Observer<A> {
    /// The OSCORE context its registration was verified with (`None`:
    /// plain).
    fn context(&self) -> Option<usize> {
        #[cfg(feature = "oscore")]
        return self.oscore.as_ref().map(|o| o.context);
        #[cfg(not(feature = "oscore"))]
        None
    }

    fn note_mid(&mut self, mid: u16) {
        if self.recent.is_full() {
            self.recent.remove(0);
        }
        // Cannot fail: room was made above.
        let _ = self.recent.push(mid);
    }
}

/// The message-ID sequence towards one peer (RFC 7252 §4.4).
#[derive(Debug)]
struct MidSeq<A> {
    peer: A,
    next: u16,
    last_used: Duration,
}

/// A Block1 upload in progress (RFC 7959 §2.5), keyed by peer, resource and
/// Request-Tag (RFC 9175 §3).
#[derive(Debug)]
struct Upload<A> {
    peer: A,
    resource: usize,
    tag: Token,
    /// The OSCORE context its blocks were verified with (`None`: plain):
    /// a block protected otherwise belongs to another upload.
    context: Option<usize>,
    next_offset: usize,
    expires: Duration,
}

/// An automatic client Block1 upload (RFC 7959 §2.5): the body, copied,
/// and the block in flight.
#[derive(Debug)]
struct ClientUpload<const U: usize> {
    ex: u32,
    body: Vec<u8, U>,
    /// Offset of the block in flight.
    offset: usize,
    /// Its length.
    sent: usize,
    /// Block size exponent in use (only ever decreases).
    szx: u8,
}

/// How a client request is re-sent from its template.
#[derive(Debug, Clone, Copy)]
enum Edit {
    /// Fetch the next Block2 block (without Observe, RFC 7959 §3.4).
    NextBlock2(Block),
    /// Retry with the server's Echo value (RFC 9175 §2.4).
    Echo([u8; 40], usize),
    /// GET with Observe 0 (re-register) or 1 (cancel, RFC 7641 §3.6).
    Observe(u32),
}

impl Edit {
    /// Applies the edit to a copy of the request.
    fn apply<'p, const K: usize>(&'p self, b: &mut MessageBuilder<'p, K>) -> Result<(), Error> {
        match self {
            Edit::NextBlock2(next) => {
                // Later blocks are plain GETs of the representation (RFC
                // 7959 §2.4, §3.2): no Observe, no upload body.
                b.remove_option(OptionNumber::OBSERVE);
                b.remove_option(OptionNumber::BLOCK1);
                b.remove_option(OptionNumber::SIZE1);
                b.payload(&[]);
                b.block2(*next)?;
            }
            Edit::Echo(val, n) => {
                b.remove_option(OptionNumber::ECHO);
                b.add_option(OptionNumber::ECHO, val.get(..*n).unwrap_or(&[]))?;
            }
            Edit::Observe(v) => {
                b.remove_option(OptionNumber::BLOCK2);
                b.observe(*v)?;
            }
        }
        Ok(())
    }
}

/// Options of a message the endpoint builds.
#[derive(Debug, Default, Clone, Copy)]
struct Opts<'p> {
    observe: Option<u32>,
    etag: Option<&'p [u8]>,
    location_path: Option<&'p str>,
    location_query: Option<&'p str>,
    content_format: Option<ContentFormat>,
    max_age: Option<u32>,
    block2: Option<Block>,
    block1: Option<Block>,
    size2: Option<u32>,
    size1: Option<u32>,
    echo: Option<&'p [u8]>,
    payload: &'p [u8],
}

impl<'p> Opts<'p> {
    fn from_response(r: &Response<'p>) -> Self {
        Opts {
            etag: r.etag,
            location_path: r.location_path,
            location_query: r.location_query,
            content_format: r.content_format,
            max_age: r.max_age,
            payload: r.payload,
            ..Opts::default()
        }
    }
}

fn emit_vec<const M: usize, const K: usize>(
    b: &MessageBuilder<'_, K>,
) -> Result<Vec<u8, M>, Error> {
    let needed = b.buffer_len();
    let mut v: Vec<u8, M> = Vec::new();
    v.resize(needed, 0)
        .map_err(|_| Error::BufferTooSmall { needed })?;
    b.emit(&mut v)?;
    Ok(v)
}

fn build<const M: usize>(
    ty: MessageType,
    code: Code,
    mid: u16,
    token: &[u8],
    o: &Opts<'_>,
) -> Result<Vec<u8, M>, Error> {
    emit_vec(&builder(ty, code, mid, token, o)?)
}

/// The length of the message `build` would make (`usize::MAX` if it
/// cannot be built).
fn encoded_len(ty: MessageType, code: Code, token: &[u8], o: &Opts<'_>) -> usize {
    builder(ty, code, 0, token, o).map_or(usize::MAX, |b| b.buffer_len())
}

fn builder<'p>(
    ty: MessageType,
    code: Code,
    mid: u16,
    token: &'p [u8],
    o: &Opts<'p>,
) -> Result<MessageBuilder<'p, OPTS>, Error> {
    let mut b = MessageBuilder::<'p, OPTS>::new(ty, code, mid);
    b.token(token)?;
    if let Some(v) = o.observe {
        b.observe(v)?;
    }
    if let Some(e) = o.etag {
        b.add_option(OptionNumber::ETAG, e)?;
    }
    if let Some(p) = o.location_path {
        let p = p.strip_prefix('/').unwrap_or(p);
        if !p.is_empty() {
            for seg in p.split('/') {
                b.add_str(OptionNumber::LOCATION_PATH, seg)?;
            }
        }
    }
    if let Some(cf) = o.content_format {
        b.content_format(cf)?;
    }
    if let Some(q) = o.location_query {
        for param in q.split('&').filter(|p| !p.is_empty()) {
            b.add_str(OptionNumber::LOCATION_QUERY, param)?;
        }
    }
    if let Some(v) = o.max_age {
        b.add_uint(OptionNumber::MAX_AGE, v)?;
    }
    if let Some(v) = o.block2 {
        b.block2(v)?;
    }
    if let Some(v) = o.block1 {
        b.block1(v)?;
    }
    if let Some(v) = o.size2 {
        b.add_uint(OptionNumber::SIZE2, v)?;
    }
    if let Some(v) = o.size1 {
        b.add_uint(OptionNumber::SIZE1, v)?;
    }
    if let Some(e) = o.echo {
        b.add_option(OptionNumber::ECHO, e)?;
    }
    b.payload(o.payload);
    Ok(b)
}

/// Cuts the Block2 slice a request asks for out of a whole representation
/// (RFC 7959 §2.4). `None` block: no slicing needed. `Err`: the requested
/// block lies beyond the representation.
fn slice_block2(
    payload: &[u8],
    req: Option<Block>,
    max_szx: u8,
) -> Result<(&[u8], Option<Block>), ()> {
    let szx = req.map_or(max_szx, |b| b.szx().min(max_szx)).min(6);
    let size = 1usize << (szx + 4);
    if req.is_none() && payload.len() <= size {
        return Ok((payload, None));
    }
    let offset = req.map_or(0, |b| b.offset());
    if offset > payload.len() || (offset == payload.len() && offset != 0) {
        return Err(());
    }
    let end = offset.saturating_add(size).min(payload.len());
    let block = Block::at_offset(offset, end < payload.len(), szx).map_err(|_| ())?;
    Ok((payload.get(offset..end).unwrap_or(&[]), Some(block)))
}

/// A CoAP endpoint, client and server at once.
///
/// - `A`: peer address type (caller's choice: `Clone + Eq + Hash`, e.g.
///   `u8`, `SocketAddr` or a session handle; `Hash` because Echo values
///   are a MAC over the peer they are issued to, RFC 9175 §2.4, so they
///   need no table).
/// - `R`: the caller's RNG (tokens, initial message ID, retransmission
///   jitter, the Echo key).
/// - `N`: capacity of each of the small tables (CON messages in flight,
///   outgoing queue, pending server requests, client exchanges, observers,
///   Block1 uploads, events, per-peer message-ID sequences, and with
///   feature `oscore` the OSCORE security contexts).
/// - `D`: message IDs remembered for deduplication (RFC 7252 §4.5) with
///   their cached responses; size it for the request rate over
///   EXCHANGE_LIFETIME (247 s). When it is full, requests get 5.03.
/// - `M`: largest message (bytes) received or sent.
/// - `U`: largest body [`Endpoint::upload`] sends block-wise (bytes; the
///   endpoint copies it, one automatic upload at a time). `0` on a device
///   that never uploads more than one block.
#[derive(Debug)]
pub struct Endpoint<
    A,
    R,
    const N: usize = 8,
    const D: usize = 32,
    const M: usize = 1152,
    const U: usize = 4096,
> {
    config: Config,
    rng: R,
    resources: &'static [Resource],
    /// Per-peer message-ID sequences, least recently used evicted.
    mids: Vec<MidSeq<A>, N>,
    /// The latest `now` seen (ages the message-ID sequences).
    last_now: Duration,
    next_id: u32,
    obs_seq: u32,
    cons: Vec<ConSlot<A, M>, N>,
    txq: Vec<(A, Vec<u8, M>), N>,
    dedup: Vec<Dedup<A, M>, D>,
    pending: Vec<PendingRequest<A>, N>,
    exchanges: Vec<Exchange<A, M>, N>,
    observers: Vec<Observer<A>, N>,
    uploads: Vec<Upload<A>, N>,
    /// The automatic Block1 upload in progress (client side).
    upload: Option<ClientUpload<U>>,
    events: Vec<Event<A, M>, N>,
    /// Key of the Echo values (RFC 9175 §2, see `echo.rs`), drawn from the
    /// RNG when the first value is issued (a pure client never draws it).
    echo: Option<echo::EchoKey>,
    verified: VerifiedPeers<A>,
    /// Plain peers that answered an Echo challenge (RFC 9175 §2.4 item 3),
    /// verified until the given time; the entry that expires first goes
    /// when it is full.
    addr_ok: Vec<(A, Duration), N>,
    stats: Stats,
    /// OSCORE security contexts the server side verifies requests with.
    #[cfg(feature = "oscore")]
    oscore: crate::oscore::ContextTable<N>,
    /// The OSCORE request being routed (answers made meanwhile are
    /// protected with it).
    #[cfg(feature = "oscore")]
    oscore_now: Option<oscore::OscoreRequest>,
}

impl<A, R, const N: usize, const D: usize, const M: usize, const U: usize>
    Endpoint<A, R, N, D, M, U>
where
    A: Clone + Eq + Hash,
    R: RngCore + CryptoRng,
{
    /// A new endpoint serving `resources` (empty for a pure client).
    pub fn new(config: Config, rng: R, resources: &'static [Resource]) -> Self {
        Endpoint {
            config,
            rng,
            resources,
            mids: Vec::new(),
            last_now: Duration::ZERO,
            next_id: 1,
            obs_seq: 2,
            cons: Vec::new(),
            txq: Vec::new(),
            dedup: Vec::new(),
            pending: Vec::new(),
            exchanges: Vec::new(),
            observers: Vec::new(),
            uploads: Vec::new(),
            upload: None,
            events: Vec::new(),
            echo: None,
            verified: VerifiedPeers(none_verified::<A>),
            addr_ok: Vec::new(),
            stats: Stats::default(),
            #[cfg(feature = "oscore")]
            oscore: crate::oscore::ContextTable::new(),
            #[cfg(feature = "oscore")]
            oscore_now: None,
        }
    }

    /// Tells the endpoint which peers have a verified address, e.g. those
    /// that are DTLS sessions (the handshake proved the address, and the
    /// session authenticates every message): `verified(peer)` returning
    /// `true`. Every other peer is a plain one whose source address may be
    /// spoofed until it answers an Echo challenge (it then counts as
    /// verified for [`Config::address_validity`]). Answers to unverified
    /// peers stay under [`Config::amplification_factor`] times the request
    /// (RFC 9175 §2.4); when the message-ID cache is full, entries of
    /// unverified peers make room first, and an unverified peer never
    /// evicts a verified one's. By default no peer is verified.
    ///
    /// ```
    /// use cssf_coap::endpoint::{Config, Endpoint};
    /// # let rng = cssf_netsim::SimRng::new(1);
    /// // Peers 0..=9 are DTLS sessions in this application.
    /// let mut ep: Endpoint<u16, _> = Endpoint::new(Config::default(), rng, &[]);
    /// ep.set_verified_peers(|p| *p < 10);
    /// assert!(ep.is_verified(&3));
    /// assert!(!ep.is_verified(&42));
    /// ```
    pub fn set_verified_peers(&mut self, verified: fn(&A) -> bool) {
        self.verified = VerifiedPeers(verified);
    }

    /// Whether `peer` has a verified address: [`Endpoint::set_verified_peers`]
    /// says so, or it answered an Echo challenge less than
    /// [`Config::address_validity`] ago.
    pub fn is_verified(&self, peer: &A) -> bool {
        (self.verified.0)(peer)
            || self
                .addr_ok
                .iter()
                .any(|(p, until)| p == peer && *until > self.last_now)
    }

    /// How many entries of each table the server side keeps for its peers
    /// `peer` holds. No peer ever holds more than [`Endpoint::peer_quota`].
    pub fn peer_usage(&self, peer: &A) -> PeerUsage {
        PeerUsage {
            message_ids: self.dedup.iter().filter(|d| &d.peer == peer).count(),
            observers: self.observers.iter().filter(|o| &o.peer == peer).count(),
            uploads: self.uploads.iter().filter(|u| &u.peer == peer).count(),
            pending: self.pending.iter().filter(|p| &p.peer == peer).count(),
        }
    }

    /// The most of each table one peer may hold
    /// ([`Config::peer_share_percent`] of its capacity, at least 1).
    pub fn peer_quota(&self) -> PeerUsage {
        PeerUsage {
            message_ids: self.config.peer_quota(D),
            observers: self.config.peer_quota(N),
            uploads: self.config.peer_quota(N),
            pending: self.config.peer_quota(N),
        }
    }

    // ----- getters -----

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of registered observers (server side).
    pub fn observer_count(&self) -> usize {
        self.observers.len()
    }

    /// When the oldest confirmable notification still awaiting its ACK
    /// was first sent (`None`: none is). Its observer is removed once its
    /// retransmissions run out, at most [`Config::max_transmit_wait`] (93 s
    /// with the defaults) after that time, however often newer
    /// notifications replace it in flight (RFC 7641 §4.5): after
    /// [`Endpoint::handle_timeout`]`(now)` no notification first sent
    /// MAX_TRANSMIT_WAIT before `now` is left. An ACK to one of the
    /// observer's earlier notifications shows it alive and counts as a
    /// first transmission at that time.
    pub fn oldest_unacknowledged_notification(&self) -> Option<Duration> {
        self.cons
            .iter()
            .filter(|c| matches!(c.owner, Owner::Notify(_)))
            .filter_map(|c| c.first_sent)
            .min()
    }

    /// Number of open client exchanges.
    pub fn exchange_count(&self) -> usize {
        self.exchanges.len()
    }

    /// Number of requests the application has not answered yet.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    // ----- inputs -----

    /// A datagram from `peer` arrived. Malformed or unexpected messages are
    /// dropped (or rejected with RST) and counted in [`Endpoint::stats`];
    /// this never fails today but keeps the workspace's signature.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        peer: A,
        datagram: &mut [u8],
    ) -> Result<(), Error> {
        self.maintain(now);
        if datagram.len() > M {
            debug!(
                "datagram of {} bytes larger than the message buffer: dropped",
                datagram.len()
            );
            self.stats.dropped += 1;
            return Ok(());
        }
        let msg = match Message::parse(datagram) {
            Ok(m) => m,
            Err(_) => {
                debug!("malformed message: dropped");
                self.stats.malformed += 1;
                // §4.2: a CON with a message format error is rejected.
                if let Some(&[b0, _, m0, m1]) = datagram.get(..4) {
                    if b0 >> 6 == 1 && MessageType::from_bits(b0 >> 4) == MessageType::Con {
                        self.queue_rst(peer, u16::from_be_bytes([m0, m1]));
                    }
                }
                return Ok(());
            }
        };
        let code = msg.code();
        if code.is_empty() {
            self.on_empty(now, peer, &msg);
        } else if code.is_request() {
            #[cfg(feature = "oscore")]
            if msg.has_option(OptionNumber::OSCORE) {
                self.on_oscore_request(now, peer, datagram);
                return Ok(());
            }
            self.on_request(now, peer, &msg);
        } else if code.is_response() {
            #[cfg(feature = "oscore")]
            if self.protected_exchange(&peer, &msg) {
                self.on_oscore_response(now, peer, datagram);
                return Ok(());
            }
            self.on_response(now, peer, &msg);
        } else {
            debug!("message with a reserved code class: dropped");
            self.stats.malformed += 1;
            if msg.ty() == MessageType::Con {
                self.queue_rst(peer, msg.message_id());
            }
        }
        Ok(())
    }

    /// Time passed: retransmits, gives up, sends Empty ACKs for requests
    /// the application has not answered yet, expires exchanges. A call
    /// later than [`poll_timeout`](Self::poll_timeout) asked for catches
    /// up on a confirmable notification's schedule (one retransmission
    /// now, or its observer removed when the budget ran out meanwhile).
    pub fn handle_timeout(&mut self, now: Duration) {
        self.maintain(now);
        let mut i = 0;
        while i < self.cons.len() {
            let Some(slot) = self.cons.get_mut(i) else {
                break;
            };
            if let ConState::Sent { next_at } | ConState::Resend { next_at } = slot.state {
                if next_at <= now {
                    let anchored = matches!(slot.owner, Owner::Notify(_));
                    let mut next_at = next_at;
                    let mut expired = false;
                    // A notification's schedule is anchored to its first
                    // transmission: a late `handle_timeout` uses up every
                    // retransmission whose time passed (sending one now)
                    // and gives up once the last timeout ran out, so it
                    // does not stretch the observer's MAX_TRANSMIT_WAIT
                    // (RFC 7641 §4.5). Bounded by `max_retransmit` + 1
                    // rounds.
                    while next_at <= now {
                        if slot.tries >= self.config.max_retransmit {
                            expired = true;
                            break;
                        }
                        slot.tries += 1;
                        slot.timeout = slot.timeout.saturating_mul(2);
                        next_at = next_at.saturating_add(slot.timeout);
                        if !anchored {
                            break;
                        }
                    }
                    if expired {
                        let slot = self.cons.remove(i);
                        debug!("confirmable message (MID {}) unacknowledged after MAX_RETRANSMIT: given up", slot.mid);
                        self.stats.give_ups += 1;
                        self.give_up(slot.owner);
                        continue;
                    }
                    // One retransmission goes out, however many were due.
                    debug!("retransmission (MID {})", slot.mid);
                    self.stats.retransmissions += 1;
                    slot.state = if anchored {
                        ConState::Resend { next_at }
                    } else {
                        ConState::Send
                    };
                }
            }
            i += 1;
        }
        // §5.2.2: acknowledge requests the application is slow to answer.
        for k in 0..self.pending.len() {
            let Some(p) = self.pending.get(k) else { break };
            if p.con && !p.acked && p.ack_at <= now {
                let (peer, mid) = (p.peer.clone(), p.mid);
                if self.queue_empty_ack(peer.clone(), mid) {
                    if let Some(p) = self.pending.get_mut(k) {
                        p.acked = true;
                    }
                    let token = self.pending.get(k).map(|p| p.token);
                    if let Some(d) = self
                        .dedup
                        .iter_mut()
                        .find(|d| d.peer == peer && d.mid == mid && Some(d.token) == token)
                    {
                        d.state = DedupState::PendingAcked;
                    }
                }
            }
        }
        let mut i = 0;
        while i < self.exchanges.len() {
            let due = self
                .exchanges
                .get(i)
                .is_some_and(|e| e.deadline.is_some_and(|d| d <= now));
            if due && !self.events.is_full() {
                let ex = self.exchanges.remove(i);
                self.cons.retain(|c| c.owner != Owner::Exchange(ex.id));
                if ex.fetch_for.is_some() {
                    // An abandoned notification body, not an exchange of
                    // the application's: the observation goes on.
                    debug!("Block2 fetch of a notification expired: dropped");
                    self.stats.dropped += 1;
                } else {
                    self.push_event(Event::Timeout {
                        id: ExchangeId(ex.id),
                    });
                }
                continue;
            }
            i += 1;
        }
    }

    // ----- commands -----

    /// Sends a request to `peer`. Responses arrive as [`Event::Response`]
    /// (or [`Event::Notification`] when observing).
    ///
    /// Errors: [`Error::Busy`] when the exchange or CON table is full,
    /// codec errors when the request does not fit `M` bytes.
    pub fn request(
        &mut self,
        now: Duration,
        peer: A,
        req: &Request<'_>,
    ) -> Result<ExchangeId, Error> {
        self.maintain(now);
        if self.exchanges.is_full()
            || (req.confirmable && self.cons.is_full())
            || (!req.confirmable && self.txq.is_full())
        {
            debug!("request refused: exchange or message table full");
            self.stats.busy += 1;
            return Err(Error::Busy);
        }
        let token = self.fresh_token(&peer);
        let mid = self.alloc_mid(&peer);
        let bytes = self.request_bytes(mid, &token, req)?;
        self.open_exchange(
            now,
            peer,
            token,
            mid,
            bytes,
            req,
            #[cfg(feature = "oscore")]
            None,
        )
    }

    /// The request `req` as sent with `mid` and `token` (before OSCORE).
    fn request_bytes(
        &self,
        mid: u16,
        token: &Token,
        req: &Request<'_>,
    ) -> Result<Vec<u8, M>, Error> {
        let ty = if req.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        let mut b = MessageBuilder::<'_, OPTS>::new(ty, req.method, mid);
        b.token(token.as_slice())?;
        b.uri_path(req.path)?;
        if let Some(q) = req.query {
            for arg in q.split('&').filter(|a| !a.is_empty()) {
                b.add_str(OptionNumber::URI_QUERY, arg)?;
            }
        }
        if let Some(cf) = req.content_format {
            b.content_format(cf)?;
        }
        if let Some(cf) = req.accept {
            b.accept(cf)?;
        }
        if let Some(o) = req.observe {
            b.observe(o)?;
        }
        if let Some(v) = req.block1 {
            b.block1(v)?;
        }
        if let Some(v) = req.block2 {
            b.block2(v)?;
        }
        if let Some(v) = req.size1 {
            b.add_uint(OptionNumber::SIZE1, v)?;
        }
        if let Some(t) = req.request_tag {
            b.add_option(OptionNumber::REQUEST_TAG, t)?;
        }
        b.payload(req.payload);
        emit_vec(&b)
    }

    /// Sends `bytes`, the request `req` with `token` and `mid`, and opens
    /// its exchange.
    #[allow(clippy::too_many_arguments)]
    fn open_exchange(
        &mut self,
        now: Duration,
        peer: A,
        token: Token,
        mid: u16,
        bytes: Vec<u8, M>,
        req: &Request<'_>,
        #[cfg(feature = "oscore")] oscore: Option<oscore::OscoreRequest>,
    ) -> Result<ExchangeId, Error> {
        let id = self.alloc_id();
        self.send_message(
            peer.clone(),
            mid,
            bytes.clone(),
            req.confirmable,
            Owner::Exchange(id),
        )?;
        let ex = Exchange {
            id,
            peer,
            token,
            con: req.confirmable,
            observing: req.observe == Some(0),
            last_obs: None,
            echo_retried: false,
            template: bytes,
            deadline: (!req.confirmable).then(|| now.saturating_add(self.config.response_timeout)),
            fetch_for: None,
            #[cfg(feature = "oscore")]
            oscore,
        };
        self.exchanges.push(ex).map_err(|_| Error::Busy)?;
        Ok(ExchangeId(id))
    }

    /// Sends a request whose payload (`req.payload`, the whole body) may
    /// exceed one block: the endpoint copies it (at most `U` bytes, else
    /// [`Error::BufferTooSmall`]) and sends it as Block1 blocks of
    /// [`Config::max_szx`] (RFC 7959 §2.5), Size1 on the first block, a fresh
    /// token per block, and `req.request_tag` on each when set (RFC 9175
    /// §3). It follows 2.31 Continue, switches to the smaller block size a
    /// server asks for, restarts with the smaller size a 4.13 response
    /// carries in its Block1 option, and reports only the final response as
    /// one [`Event::Response`] (or [`Event::Timeout`] / [`Event::Reset`]).
    /// A body that fits one block is sent as a plain request.
    ///
    /// Errors: [`Error::Busy`] while another automatic upload is in progress
    /// or a table is full; `req.block1` must not be set
    /// ([`Error::BadBlock`]).
    pub fn upload(
        &mut self,
        now: Duration,
        peer: A,
        req: &Request<'_>,
    ) -> Result<ExchangeId, Error> {
        self.upload_with(now, peer, req, |ep, now, peer, r| ep.request(now, peer, r))
    }

    /// [`Endpoint::upload`], with `send` sending the (first) request.
    fn upload_with<E: From<Error>>(
        &mut self,
        now: Duration,
        peer: A,
        req: &Request<'_>,
        send: impl FnOnce(&mut Self, Duration, A, &Request<'_>) -> Result<ExchangeId, E>,
    ) -> Result<ExchangeId, E> {
        self.maintain(now);
        if req.block1.is_some() {
            return Err(Error::BadBlock.into());
        }
        let szx = self.config.max_szx.min(6);
        let size = 16usize << szx;
        if req.payload.len() <= size {
            return send(self, now, peer, req);
        }
        if self.upload.is_some() {
            debug!("Block1 upload refused: one is already running");
            self.stats.busy += 1;
            return Err(Error::Busy.into());
        }
        let needed = req.payload.len();
        let body: Vec<u8, U> =
            Vec::from_slice(req.payload).map_err(|_| Error::BufferTooSmall { needed })?;
        let first = req.payload.get(..size).unwrap_or(req.payload);
        let mut r = req.block1(Block::at_offset(0, true, szx)?, first);
        r.size1 = Some(u32::try_from(needed).map_err(|_| Error::BufferTooSmall { needed })?);
        let id = send(self, now, peer, &r)?;
        self.upload = Some(ClientUpload {
            ex: id.0,
            body,
            offset: 0,
            sent: size,
            szx,
        });
        Ok(id)
    }

    /// Cancels an Observe registration explicitly (GET with Observe 1, RFC
    /// 7641 §3.6); the server's answer arrives as the final
    /// [`Event::Response`]. An exchange sent OSCORE-protected
    /// ([`Endpoint::request_protected`]) cancels with a request protected
    /// anew (a new Partial IV, the same token and context).
    /// [`Error::UnknownId`] for no such exchange.
    pub fn cancel_observe(&mut self, now: Duration, id: ExchangeId) -> Result<(), Error> {
        self.maintain(now);
        let ex = self
            .exchanges
            .iter_mut()
            .find(|e| e.id == id.0)
            .ok_or(Error::UnknownId)?;
        ex.observing = false;
        ex.deadline = None;
        self.drop_fetch(id.0);
        self.resend_from_template(now, id.0, Edit::Observe(1))
    }

    /// Re-registers an observation (RFC 7641 §3.3.1: GET with Observe 0 and
    /// the same token), e.g. when Max-Age of the last notification ran out.
    /// A protected exchange re-registers with a request protected anew:
    /// its notifications are bound to that request from then on.
    /// [`Error::UnknownId`] for no such exchange.
    pub fn reregister(&mut self, now: Duration, id: ExchangeId) -> Result<(), Error> {
        self.maintain(now);
        let ex = self
            .exchanges
            .iter_mut()
            .find(|e| e.id == id.0)
            .ok_or(Error::UnknownId)?;
        ex.observing = true;
        self.resend_from_template(now, id.0, Edit::Observe(0))
    }

    /// Forgets an exchange locally (a later notification is answered with
    /// RST, which cancels the observation on the server, RFC 7641 §3.6).
    pub fn forget(&mut self, id: ExchangeId) {
        self.drop_fetch(id.0);
        self.exchanges.retain(|e| e.id != id.0);
        self.cons.retain(|c| c.owner != Owner::Exchange(id.0));
    }

    /// The transport session of `peer` ended (e.g. a DTLS session's
    /// `Closed` event, the peer being that session): everything tied to it
    /// goes at once, so nothing outlives the session or reaches a later
    /// session that happens to get the same peer value. Its remembered
    /// message IDs and cached responses (RFC 7252 §4.5: deduplication is per
    /// security association), the requests it made that were not answered
    /// (and their undelivered events), its Block1 uploads, its observations
    /// (RFC 7641: the registration ends with the session), the messages
    /// queued or awaiting an ACK toward it, and its message-ID sequence.
    /// Client exchanges with it end with [`Event::Aborted`].
    ///
    /// ```
    /// use core::time::Duration;
    /// use cssf_coap::endpoint::{Endpoint, Config, Event, Request};
    /// # struct Rng(u64);
    /// # impl rand_core::RngCore for Rng {
    /// #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
    /// #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 11 }
    /// #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u64() as u8 } }
    /// #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
    /// # }
    /// # impl rand_core::CryptoRng for Rng {}
    /// let mut client: Endpoint<u8, Rng> = Endpoint::new(Config::default(), Rng(1), &[]);
    /// let id = client.request(Duration::ZERO, 2, &Request::get("temp"))?;
    /// client.close_peer(&2);
    /// assert_eq!(client.poll_event(), Some(Event::Aborted { id }));
    /// assert_eq!(client.exchange_count(), 0);
    /// # Ok::<(), cssf_coap::Error>(())
    /// ```
    pub fn close_peer(&mut self, peer: &A) {
        let ended: Vec<u32, N> = self
            .exchanges
            .iter()
            .filter(|e| &e.peer == peer && e.fetch_for.is_none())
            .map(|e| e.id)
            .collect();
        self.events.retain(|e| match e {
            Event::Request { peer: p, .. }
            | Event::Response { peer: p, .. }
            | Event::Notification { peer: p, .. } => p != peer,
            _ => true,
        });
        for id in ended {
            if self.upload.as_ref().is_some_and(|u| u.ex == id) {
                self.upload = None;
            }
            self.forget(ExchangeId(id));
            self.push_event(Event::Aborted { id: ExchangeId(id) });
        }
        self.exchanges.retain(|e| &e.peer != peer);
        self.cons.retain(|c| &c.peer != peer);
        self.txq.retain(|(p, _)| p != peer);
        self.dedup.retain(|d| &d.peer != peer);
        self.pending.retain(|p| &p.peer != peer);
        self.observers.retain(|o| &o.peer != peer);
        self.uploads.retain(|u| &u.peer != peer);
        self.mids.retain(|m| &m.peer != peer);
        self.addr_ok.retain(|(p, _)| p != peer);
    }

    /// Answers a request from [`Event::Request`]: piggybacked in the ACK if
    /// the request is still unacknowledged, else as a separate (CON)
    /// response; NON for a NON request. Large payloads are sliced to the
    /// Block2 the client asked for; a GET with Observe 0 on an observable
    /// resource answered with 2.xx registers the client.
    pub fn respond(&mut self, now: Duration, id: RequestId, r: &Response<'_>) -> Result<(), Error> {
        self.maintain(now);
        let pos = self
            .pending
            .iter()
            .position(|p| p.id == id.0)
            .ok_or(Error::UnknownId)?;
        let separate = self.pending.get(pos).is_some_and(|p| p.con && p.acked);
        if separate && self.cons.is_full() {
            return Err(Error::Busy);
        }
        #[allow(unused_mut)]
        let mut p = self.pending.remove(pos);
        let observable = self.resources.get(p.resource).is_some_and(|res| res.obs);
        // Over OSCORE too (RFC 8613 §4.1.3.5): the observation is bound to
        // the registration's context and request, and every notification
        // after this answer takes a Partial IV of its own.
        let wants_obs = p.observe == Some(0) && observable && r.code.is_success();
        // RFC 9175 §2.4: toward an unverified peer the answer stays under
        // `cap`. A safe method (GET, FETCH) gets an Echo challenge instead
        // (the client repeats it with the value, proving its address, and
        // is answered in full); another method was carried out already, so
        // its answer goes in Block2 blocks small enough, with the challenge
        // as the last resort.
        let cap = self.answer_cap(&p.peer, p.req_len, p.is_oscore());
        // A protected registration answer carries an outer copy of Observe.
        let cap = match cap {
            Some(c) if wants_obs && p.is_oscore() => Some(c.saturating_sub(4)),
            c => c,
        };
        let safe = matches!(p.method, Code::GET | Code::FETCH);
        let ty = if p.con && !p.acked {
            MessageType::Ack
        } else if p.con {
            MessageType::Con
        } else {
            MessageType::Non
        };
        // The sequence number `register_observer` will take (for the size).
        let seq = wants_obs.then_some((self.obs_seq + 1) & 0x00ff_ffff);
        let top = self.config.max_szx.min(6);
        let lowest = if cap.is_some() && !safe { 0 } else { top };
        let mut plan = None;
        for szx in (lowest..=top).rev() {
            let (code, o) = self.shape_answer(r, &p, szx, seq);
            if cap.map_or(true, |c| encoded_len(ty, code, p.token.as_slice(), &o) <= c) {
                plan = Some((code, o));
                break;
            }
        }
        let echo;
        let (code, mut o) = match plan {
            Some(plan) => plan,
            None => {
                echo = self.echo_value(now, &p.peer);
                debug!("answer over the amplification limit toward an unverified address: Echo challenge instead");
                self.stats.amplification_limited += 1;
                let o = Opts {
                    echo: Some(&echo),
                    ..Opts::default()
                };
                (Code::UNAUTHORIZED, o)
            }
        };
        if code == Code::UNAUTHORIZED
            && o.echo.is_some()
            && cap.is_some_and(|c| encoded_len(ty, code, p.token.as_slice(), &o) > c)
        {
            // Not even the challenge fits (a tiny request with a long
            // answer): no answer at all.
            return Ok(());
        }
        if wants_obs {
            o.observe = None;
            if code.is_success() {
                o.observe = self.register_observer(&p);
            }
        }
        if p.block1.is_some() && !code.is_success() {
            // An error answer ends the upload (RFC 7959 §2.5): its slot is
            // free at once, not after EXCHANGE_LIFETIME (a refused peer
            // cannot hold upload slots).
            self.uploads
                .retain(|u| !(u.peer == p.peer && u.resource == p.resource && u.tag == p.tag));
        }
        let token = p.token;
        if p.con && !p.acked {
            let bytes = build::<M>(MessageType::Ack, code, p.mid, token.as_slice(), &o)?;
            #[cfg(feature = "oscore")]
            let bytes = match p.oscore.as_mut() {
                Some(req) => self
                    .seal(req, &bytes)
                    .ok_or(Error::BufferTooSmall { needed: M })?,
                None => bytes,
            };
            self.cache_answer(&p.peer, p.mid, &token, &bytes);
            self.queue(p.peer, bytes);
            Ok(())
        } else {
            let mid = self.alloc_mid(&p.peer);
            let ty = if p.con {
                MessageType::Con
            } else {
                MessageType::Non
            };
            let bytes = build::<M>(ty, code, mid, token.as_slice(), &o)?;
            #[cfg(feature = "oscore")]
            let bytes = match p.oscore.as_mut() {
                Some(req) => self
                    .seal(req, &bytes)
                    .ok_or(Error::BufferTooSmall { needed: M })?,
                None => bytes,
            };
            if o.observe.is_some() {
                // A separate or NON registration answer: an RST to it
                // cancels the observation like one to a notification.
                if let Some(ob) = self
                    .observers
                    .iter_mut()
                    .find(|ob| ob.peer == p.peer && ob.token == token)
                {
                    ob.note_mid(mid);
                }
            }
            self.send_message(p.peer, mid, bytes, p.con, Owner::Response)
        }
    }

    /// The code and options of the answer `r` to `p` with Block2 blocks of
    /// at most `2^(max_szx+4)` bytes (RFC 7959 §2.4: a server may answer
    /// with a smaller block than asked for), Observe `seq`.
    fn shape_answer<'p>(
        &self,
        r: &Response<'p>,
        p: &PendingRequest<A>,
        max_szx: u8,
        seq: Option<u32>,
    ) -> (Code, Opts<'p>) {
        let mut code = r.code;
        let mut o = Opts::from_response(r);
        o.observe = seq;
        match slice_block2(r.payload, p.block2, max_szx) {
            Ok((body, b2)) => {
                o.payload = body;
                o.block2 = b2;
                if b2.is_some_and(|b| b.num() == 0) {
                    o.size2 = u32::try_from(r.payload.len()).ok();
                }
            }
            Err(()) => {
                code = Code::BAD_OPTION;
                o = Opts::default();
            }
        }
        if let Some(b) = p.block1 {
            if code.is_success() {
                if b.more() {
                    code = Code::CONTINUE;
                }
                o.block1 = Block::new(b.num(), b.more(), b.szx().min(self.config.max_szx)).ok();
            }
        }
        (code, o)
    }

    /// The most bytes an answer built by the endpoint (before OSCORE
    /// protects it, when `oscore`) may have toward `peer`.
    fn answer_cap(&self, peer: &A, req_len: usize, oscore: bool) -> Option<usize> {
        let overhead = if oscore { OSCORE_ANSWER_OVERHEAD } else { 0 };
        self.amplification_cap(peer, req_len)
            .map(|c| c.saturating_sub(overhead))
    }

    /// The most bytes an answer to a `req_len`-byte request from `peer`
    /// may have (`None`: no limit, the peer is verified or the limit off).
    fn amplification_cap(&self, peer: &A, req_len: usize) -> Option<usize> {
        let f = usize::from(self.config.amplification_factor);
        (f != 0 && !self.is_verified(peer)).then(|| req_len.saturating_mul(f))
    }

    /// Sends a notification of the resource at `path` to each of its
    /// observers (NON, CON every [`Config::notify_con_every`]-th time or
    /// replacing a CON notification still in flight, RFC 7641 §4.5).
    /// Returns how many observers were notified.
    pub fn notify(&mut self, now: Duration, path: &str, r: &Response<'_>) -> Result<usize, Error> {
        self.notify_with(now, path, r, |_| None)
    }

    /// Like [`notify`](Self::notify), asking `refuse` about each observer
    /// first: when it returns `Some(code)` (an error code, e.g. 4.01 once
    /// the observer's access token expired), that observer gets a
    /// notification with `code` and no payload instead of `r`, which ends
    /// its observation (RFC 7641 §3.2, §4.2). Returns how many observers
    /// were sent a notification (either kind).
    ///
    /// ```
    /// use core::time::Duration;
    /// use cssf_coap::endpoint::{Config, Endpoint, Methods, Resource, Response};
    /// use cssf_coap::Code;
    /// static RESOURCES: [Resource; 1] = [Resource::new("time", Methods::GET).observable()];
    /// # let rng = cssf_netsim::SimRng::new(1);
    /// let mut ep: Endpoint<u16, _> = Endpoint::new(Config::default(), rng, &RESOURCES);
    /// let r = Response::new(Code::CONTENT).payload(b"12:00");
    /// // No observers yet: nobody is notified.
    /// assert_eq!(ep.notify_with(Duration::ZERO, "time", &r, |_peer| Some(Code::UNAUTHORIZED)).unwrap(), 0);
    /// ```
    pub fn notify_with(
        &mut self,
        now: Duration,
        path: &str,
        r: &Response<'_>,
        mut refuse: impl FnMut(&A) -> Option<Code>,
    ) -> Result<usize, Error> {
        self.notify_with_security(now, path, r, |peer, _| refuse(peer))
    }

    /// [`notify_with`](Self::notify_with), `refuse` also told how the
    /// observer registered ([`RequestSecurity`]: plain, or under which
    /// OSCORE context), so a policy decides each notification as it
    /// decided the registration.
    pub fn notify_with_security(
        &mut self,
        now: Duration,
        path: &str,
        r: &Response<'_>,
        mut refuse: impl FnMut(&A, RequestSecurity) -> Option<Code>,
    ) -> Result<usize, Error> {
        self.maintain(now);
        let path = path.strip_prefix('/').unwrap_or(path);
        let idx = self
            .resources
            .iter()
            .position(|res| res.trimmed_path() == path)
            .ok_or(Error::UnknownId)?;
        self.obs_seq = (self.obs_seq + 1) & 0x00ff_ffff;
        let seq = self.obs_seq;
        let mut o = Opts::from_response(r);
        o.observe = r.code.is_success().then_some(seq);
        if let Ok((body, b2)) = slice_block2(r.payload, None, self.config.max_szx) {
            o.payload = body;
            o.block2 = b2;
        }
        let keys: Vec<u32, N> = self
            .observers
            .iter()
            .filter(|ob| ob.resource == idx)
            .map(|ob| ob.key)
            .collect();
        let con_resource = self.resources.get(idx).is_some_and(|res| res.con_notify);
        let mut sent = 0;
        for key in keys {
            let every = self.config.notify_con_every.max(1);
            let Some(ob) = self.observers.iter_mut().find(|ob| ob.key == key) else {
                continue;
            };
            #[cfg(feature = "oscore")]
            let security = ob
                .oscore
                .as_ref()
                .map_or(RequestSecurity::Plain, |o| o.security());
            #[cfg(not(feature = "oscore"))]
            let security = RequestSecurity::Plain;
            let refused = refuse(&ob.peer, security).filter(|c| !c.is_success());
            let (code, mut o) = match refused {
                Some(c) => (c, Opts::default()),
                None => (r.code, o),
            };
            // RFC 9175 §2.4: toward an observer that registered unverified
            // a notification stays under the limit for its registration
            // request (in smaller Block2 blocks; the client fetches the
            // rest), or is not sent.
            let (peer, token, req_len) = (ob.peer.clone(), ob.token, ob.req_len);
            let overhead = if ob.context().is_some() {
                OSCORE_ANSWER_OVERHEAD + OSCORE_NOTIFICATION_EXTRA
            } else {
                0
            };
            let cap = if ob.verified {
                None
            } else {
                self.amplification_cap(&peer, req_len)
                    .map(|c| c.saturating_sub(overhead))
            };
            if let Some(cap) = cap {
                let mut fits = encoded_len(MessageType::Con, code, token.as_slice(), &o) <= cap;
                let mut szx = self.config.max_szx.min(6);
                while !fits && code.is_success() && szx > 0 {
                    szx -= 1;
                    if let Ok((body, b2)) = slice_block2(r.payload, None, szx) {
                        o.payload = body;
                        o.block2 = b2;
                    }
                    fits = encoded_len(MessageType::Con, code, token.as_slice(), &o) <= cap;
                }
                if !fits {
                    debug!("notification over the amplification limit toward an unverified observer: not sent");
                    self.stats.amplification_limited += 1;
                    continue;
                }
            }
            let Some(ob) = self.observers.iter_mut().find(|ob| ob.key == key) else {
                continue;
            };
            ob.since_con += 1;
            let con = ob.since_con >= every || !code.is_success() || con_resource;
            if con {
                ob.since_con = 0;
            }
            if let Some(pos) = self.cons.iter().position(|c| c.owner == Owner::Notify(key)) {
                // §4.5.2: a newer notification replaces the one in flight and
                // goes out now, keeping its retransmission counter, timeout
                // and schedule: however fast notifications come, an observer
                // that never acknowledges is removed once the retransmissions
                // of the first unacknowledged one run out (MAX_TRANSMIT_WAIT).
                let mid = self.alloc_mid(&peer);
                let bytes = build::<M>(MessageType::Con, code, mid, token.as_slice(), &o)?;
                let Some(bytes) = self.seal_notification(key, bytes) else {
                    continue;
                };
                if let Some(slot) = self.cons.get_mut(pos) {
                    slot.bytes = bytes;
                    slot.mid = mid;
                    slot.state = match slot.state {
                        ConState::Sent { next_at } | ConState::Resend { next_at } => {
                            ConState::Resend { next_at }
                        }
                        other => other,
                    };
                    sent += 1;
                }
                if let Some(ob) = self.observers.iter_mut().find(|ob| ob.key == key) {
                    ob.note_mid(mid);
                }
                if !code.is_success() {
                    // The replacing notification ends the observation too.
                    self.observers.retain(|ob| ob.key != key);
                }
                continue;
            }
            let mid = self.alloc_mid(&peer);
            let ty = if con {
                MessageType::Con
            } else {
                MessageType::Non
            };
            let bytes = build::<M>(ty, code, mid, token.as_slice(), &o)?;
            let Some(bytes) = self.seal_notification(key, bytes) else {
                continue;
            };
            if let Some(ob) = self.observers.iter_mut().find(|ob| ob.key == key) {
                ob.note_mid(mid);
            }
            if self
                .send_message(peer, mid, bytes, con, Owner::Notify(key))
                .is_ok()
            {
                sent += 1;
            } else {
                debug!("notification could not be queued: dropped");
                self.stats.dropped += 1;
            }
            if !code.is_success() {
                // A non-2.xx notification ends the observation (§3.2).
                self.observers.retain(|ob| ob.key != key);
            }
        }
        Ok(sent)
    }

    /// Protects the notification `plain` to the observer `key` when its
    /// observation is an OSCORE one (RFC 8613 §8.3: a Partial IV of its
    /// own, the AAD naming the registration request); plain bytes for a
    /// plain observation. `None`: it could not be protected, and was
    /// counted in `Stats::dropped`: for want of a persisted Sender Sequence
    /// Number the observation stays (persist, and the next notification
    /// goes); with its context gone or its sequence numbers run out the
    /// observation ends.
    fn seal_notification(&mut self, key: u32, plain: Vec<u8, M>) -> Option<Vec<u8, M>> {
        #[cfg(feature = "oscore")]
        {
            let ob = self.observers.iter_mut().find(|o| o.key == key)?;
            let Some(req) = ob.oscore.as_mut() else {
                return Some(plain);
            };
            let mut out: Vec<u8, M> = Vec::new();
            let sealed = match (self.oscore.get_mut(req.context), out.resize(M, 0)) {
                (Some(ctx), Ok(())) => {
                    ctx.protect_response(&mut req.binding, &plain, true, &mut out)
                }
                _ => Err(crate::oscore::Error::ContextNotFound),
            };
            match sealed {
                Ok(n) => {
                    out.truncate(n);
                    Some(out)
                }
                Err(crate::oscore::Error::PersistRequired) => {
                    debug!("notification not protected: the Sender Sequence Number must be persisted first");
                    self.stats.dropped += 1;
                    None
                }
                Err(_) => {
                    debug!("notification could not be protected: observation ended");
                    self.stats.dropped += 1;
                    self.observers.retain(|o| o.key != key);
                    self.cons.retain(|c| c.owner != Owner::Notify(key));
                    None
                }
            }
        }
        #[cfg(not(feature = "oscore"))]
        {
            let _ = key;
            Some(plain)
        }
    }

    // ----- outputs -----

    /// The next datagram to send, written into `buf`. A short `buf` gives
    /// `BufferTooSmall { needed }` and the datagram stays queued.
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        buf: &mut [u8],
    ) -> Result<Option<Transmit<A>>, Error> {
        if let Some((_, bytes)) = self.txq.first() {
            let len = bytes.len();
            let out = buf
                .get_mut(..len)
                .ok_or(Error::BufferTooSmall { needed: len })?;
            out.copy_from_slice(bytes);
            let (to, _) = self.txq.remove(0);
            return Ok(Some(Transmit { to, len }));
        }
        let nstart = usize::from(self.config.nstart.max(1));
        for i in 0..self.cons.len() {
            let Some(slot) = self.cons.get(i) else { break };
            let eligible = match slot.state {
                ConState::Send | ConState::Resend { .. } => true,
                // NSTART (§4.7) limits the requests outstanding to a peer;
                // separate responses and notifications are not held behind
                // them (nor behind each other's exponential back-off).
                ConState::Waiting if !matches!(slot.owner, Owner::Exchange(_)) => true,
                ConState::Waiting => {
                    self.cons
                        .iter()
                        .filter(|c| {
                            c.peer == slot.peer
                                && matches!(c.owner, Owner::Exchange(_))
                                && !matches!(c.state, ConState::Waiting)
                        })
                        .count()
                        < nstart
                }
                ConState::Sent { .. } => false,
            };
            if !eligible {
                continue;
            }
            let len = slot.bytes.len();
            let first = slot.state == ConState::Waiting;
            let out = buf
                .get_mut(..len)
                .ok_or(Error::BufferTooSmall { needed: len })?;
            out.copy_from_slice(&slot.bytes);
            let initial = if first {
                Some(self.initial_timeout())
            } else {
                None
            };
            let Some(slot) = self.cons.get_mut(i) else {
                break;
            };
            if let Some(t) = initial {
                slot.timeout = t;
            }
            slot.first_sent.get_or_insert(now);
            slot.state = match slot.state {
                ConState::Resend { next_at } => ConState::Sent { next_at },
                _ => ConState::Sent {
                    next_at: now.saturating_add(slot.timeout),
                },
            };
            return Ok(Some(Transmit {
                to: slot.peer.clone(),
                len,
            }));
        }
        Ok(None)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event<A, M>> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    /// When [`Endpoint::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let cons = self.cons.iter().filter_map(|c| match c.state {
            ConState::Sent { next_at } | ConState::Resend { next_at } => Some(next_at),
            _ => None,
        });
        let acks = self
            .pending
            .iter()
            .filter(|p| p.con && !p.acked)
            .map(|p| p.ack_at);
        let deadlines = self.exchanges.iter().filter_map(|e| e.deadline);
        cons.chain(acks).chain(deadlines).min()
    }
}

#[cfg(test)]
mod tests;
