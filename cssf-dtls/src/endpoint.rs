//! The DTLS server endpoint: stateless cookie exchange (RFC 6347 §4.2.1),
//! then a handshake in one of `H` handshake slots; once complete it is
//! compacted into its session slot ([`Established`](crate::established)),
//! found by Connection ID first (RFC 9146 §4: tls12_cid records, whatever
//! their source address), then by address; plus the bounded session cache
//! for resumption and the shared application queues.
//!
//! Every handshake gets a [`SessionHandle`] and one of the `N` session
//! slots when it is admitted; the slot carries the session's address, its
//! proven identity and what is left to report. A session or handshake ends
//! in one place ([`Endpoint::end`]), which keeps the reason for the one
//! `Closed` event [`poll_event`](Endpoint::poll_event) reports; the slot
//! is freed once that event was taken and its last alert sent.

use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::config::{Config, MAX_CID_LEN};
use crate::cookie::{CookieSecrets, PeerAddress};
use crate::crypto::suite::CipherSuite;
use crate::established::{Established, Upcall};
use crate::event::{CloseReason, Event, SessionHandle, Transmit};
use crate::flight::MAX_MESSAGE_LEN;
use crate::handshake::{Bound, Connection, Deps, State};
use crate::identity::Identity;
use crate::psk::{PeerContext, PskStore};
use crate::queue::{TaggedQueue, APP_QUEUE_CAPACITY, QUEUE_ENTRIES};
use crate::session::{Session, SessionCache};
use crate::stats::Stats;
#[cfg(feature = "ecdhe")]
use crate::trust::SigningKey;
use crate::trust::{RejectAll, TrustStore};
use crate::wire::cid_record::{CID_OFFSET, TLS12_CID};
use crate::wire::client_hello::ClientHelloRepr;
use crate::wire::handshake::{msg_type, HandshakeHeader, HEADER_LEN as HS_HEADER};
use crate::wire::hello_verify_request::HelloVerifyRequestRepr;
use crate::wire::record::{ContentType, RecordHeader, HEADER_LEN as REC_HEADER};
#[cfg(feature = "cid")]
use crate::wire::rrc::{self, RrcRepr};
use crate::wire::DTLS_1_0;
use crate::Error;
#[cfg(feature = "cid")]
use subtle::ConstantTimeEq;

/// The highest record sequence number a ClientHello may carry: the
/// server's epoch-0 records continue from it, and about 2^16 of them
/// (every fragment of every retransmission) must still fit below 2^48.
const MAX_CLIENT_HELLO_SEQUENCE: u64 = (1 << 48) - (1 << 16);

const STATELESS_QUEUE: usize = 4;
const STATELESS_MAX: usize = 64;
/// Application data events waiting for `poll_event`.
const EVENTS: usize = 16;
/// Most application records of one session packed into one datagram.
pub(crate) const MAX_RECORDS_PER_DATAGRAM: usize = crate::queue::QUEUE_ENTRIES / 2;
/// Ended sessions whose slot was needed before their `Closed` event was
/// taken (see [`Endpoint::bury`]).
const GRAVEYARD: usize = 8;
/// Half-open handshakes that ended without completing (see
/// [`Endpoint::recent_ends`]) the endpoint remembers, the oldest forgotten
/// first.
const RECENT_ENDS: usize = 8;
/// One second: cookie stamps are whole seconds.
const SECOND: Duration = Duration::from_secs(1);
/// Cookie-verified ClientHellos (address and client random) an
/// [`Endpoint`] remembers by default to drop their replays (its last const
/// parameter `C`; see `Endpoint::replayed`). Every admitted ClientHello
/// stays for the cookie lifetime; when the cache is full of distinct
/// hosts, cookies of the current second are refused (a HelloVerifyRequest
/// again), so a server takes new handshakes from many hosts at about `C`
/// a second: a gateway raises `C`. Each entry counts its host's entries,
/// so taking or forgetting a ClientHello, and making room in a full
/// cache, is one pass over the cache (`C` host comparisons).
pub const CLIENT_HELLO_REPLAY_CACHE: usize = 32;

/// Where a session slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Handshaking or established.
    Live,
    /// Ended; its `Closed` event is not taken yet.
    Ended(CloseReason),
    /// Ended and reported; the slot only waits to send its last alert.
    Reported,
}

/// One handle: a handshake, then its session; what the application is
/// told about it, and what is left to tell.
struct Slot<A> {
    handle: SessionHandle,
    peer: A,
    /// The address the handshake came from (its cookie proved it): the
    /// session counts against this host's limits wherever it moves.
    origin: A,
    /// The compact record state, once the handshake completed.
    est: Option<Established>,
    /// What the handshake proved about the peer (set when it completes).
    identity: Option<Identity>,
    suite: Option<CipherSuite>,
    resumed: bool,
    life: Life,
    /// `Connected` is still to be reported.
    connected_unreported: bool,
    /// The address before an unreported move (RFC 9146 §6).
    moved_from: Option<A>,
    /// RFC 9853: a new address being checked before the session moves.
    #[cfg(feature = "cid")]
    check: Option<PathCheck<A>>,
    /// RFC 9853 §5.5: the path check timer (see
    /// [`Config::path_check_timer`]).
    #[cfg(feature = "cid")]
    path_timer: Duration,
    /// The session moved without a check (no RRC): what may be sent to
    /// its unvalidated address.
    #[cfg(feature = "cid")]
    unvalidated: Option<Budget>,
    /// Addresses besides `origin` known to receive: they answered a path
    /// check or the application validated them. A session without RRC
    /// moving back to one of them, or to `origin`, has no budget.
    #[cfg(feature = "cid")]
    validated: heapless::Deque<A, VALIDATED>,
    /// In the endpoint's list of slots `poll_transmit` looks at (see
    /// [`Slot::needs_attention`]).
    marked: bool,
    /// In the endpoint's idle list (see [`Endpoint::relist`]): the open
    /// sessions from the least recently active to the most.
    listed: bool,
    /// The slot before this one in the idle list ([`NONE`] for the first).
    older: usize,
    /// The slot after this one in the idle list ([`NONE`] for the last).
    newer: usize,
}

/// No slot (an end of the idle list).
const NONE: usize = usize::MAX;

/// A Return Routability Check in progress (RFC 9853 §5.1): the address the
/// peer's newest records came from, the challenges sent there, and what
/// may be sent there before it answers (three times what came from it, §5).
#[cfg(feature = "cid")]
struct PathCheck<A> {
    addr: A,
    /// The cookie of each challenge sent in this check, newest last: an
    /// answer to any of them proves the address (a path whose round trip
    /// is longer than the timer still validates, §5.3).
    cookies: heapless::Vec<[u8; 8], PATH_CHECK_TRIES>,
    /// The newest challenge is to be sent.
    due: bool,
    /// A path_response carried the cookie of one of the challenges.
    answered: bool,
    /// When to send the next challenge, or give up after the last.
    next_at: Duration,
    timer: Duration,
    received: u64,
    sent: u64,
}

#[cfg(feature = "cid")]
impl<A> PathCheck<A> {
    /// A check of `addr`, where `len` bytes came from, its first challenge
    /// carrying `cookie`; the next one follows `timer` later.
    fn new(addr: A, cookie: [u8; 8], now: Duration, timer: Duration, len: u64) -> Self {
        let mut cookies = heapless::Vec::new();
        let _ = cookies.push(cookie);
        PathCheck {
            addr,
            cookies,
            due: true,
            answered: false,
            next_at: now.saturating_add(timer),
            timer,
            received: len,
            sent: 0,
        }
    }

    /// Time passed: once the timer ran out, another challenge with the
    /// fresh `cookie` while tries are left. True when the check gave up
    /// (the timer ran out after its last challenge).
    fn on_timer(&mut self, now: Duration, cookie: impl FnOnce() -> [u8; 8]) -> bool {
        if now < self.next_at {
            return false;
        }
        if self.cookies.push(cookie()).is_err() {
            return true;
        }
        self.due = true;
        self.next_at = now.saturating_add(self.timer);
        false
    }

    /// True when `cookie` is one of this check's (compared in constant
    /// time, against each).
    fn answered_by(&self, cookie: &[u8; 8]) -> bool {
        let hit = self
            .cookies
            .iter()
            .fold(subtle::Choice::from(0), |acc, c| acc | c.ct_eq(cookie));
        bool::from(hit)
    }
}

/// Bytes from and to an address that did not prove it receives.
#[cfg(feature = "cid")]
struct Budget {
    received: u64,
    sent: u64,
}

#[cfg(feature = "cid")]
impl Budget {
    /// `n` more bytes stay within three times what was received.
    fn allows(&self, sent: u64, n: u64) -> bool {
        sent.saturating_add(n) <= self.received.saturating_mul(AMPLIFICATION)
    }
}

/// How many times what came from an unvalidated address may be sent there
/// (RFC 9853 §5, RFC 9175 §2.4).
#[cfg(feature = "cid")]
const AMPLIFICATION: u64 = 3;
/// Path challenges of its peers (RFC 9853) an endpoint keeps to answer.
#[cfg(feature = "cid")]
const RRC_ANSWERS: usize = 4;
/// Challenges sent before a check gives up (the binding stays).
#[cfg(feature = "cid")]
const PATH_CHECK_TRIES: usize = 3;
/// Validated addresses a session remembers besides its handshake's (the
/// oldest is forgotten first).
#[cfg(feature = "cid")]
const VALIDATED: usize = 2;

#[cfg(feature = "cid")]
impl<A: PartialEq> Slot<A> {
    /// `addr` is known to receive: the handshake came from it, or it was
    /// validated since.
    fn is_validated(&self, addr: &A) -> bool {
        self.origin == *addr || self.validated.iter().any(|a| a == addr)
    }

    /// Remembers that `addr` receives (forgetting the oldest such address
    /// if need be); the session's current address there has no budget.
    fn validate(&mut self, addr: A) {
        if addr == self.peer {
            self.unvalidated = None;
        }
        if self.is_validated(&addr) {
            return;
        }
        if self.validated.is_full() {
            self.validated.pop_front();
        }
        let _ = self.validated.push_back(addr);
    }
}

impl<A> Slot<A> {
    fn live(&self) -> bool {
        self.life == Life::Live
    }

    /// `poll_transmit` or `poll_event` has something to do with this slot
    /// besides its handshake and its queued records: an alert to send, a
    /// path challenge due, a `Connected` or a move to report, or, once it
    /// ended, its `Closed` to report, a handshake to drop and the slot to
    /// free. A slot is marked (listed in the endpoint's `pending`)
    /// whenever this holds, so that a `poll_transmit` or `poll_event` with
    /// nothing to give looks at the marked slots only, not at every slot.
    fn needs_attention(&self) -> bool {
        // A check not due has a timer (`poll_timeout` finds it here).
        #[cfg(feature = "cid")]
        if self.check.is_some() {
            return true;
        }
        !self.live() || self.has_alert() || self.connected_unreported || self.moved_from.is_some()
    }

    /// An alert is still to be sent.
    fn has_alert(&self) -> bool {
        self.est.as_ref().is_some_and(Established::has_alert)
    }

    fn established(&self) -> Option<&Established> {
        self.est.as_ref().filter(|_| self.life == Life::Live)
    }

    /// When an open session was last active (its place in the idle list).
    fn idle_since(&self) -> Option<Duration> {
        self.established()
            .filter(|e| e.is_open())
            .map(Established::last_activity)
    }
}

/// Marks slot `s` (at index `i`) and lists it in `pending` if it needs
/// `poll_transmit`'s attention and is not marked yet; an index that does
/// not fit sets `lost`.
fn mark<A, const N: usize>(
    pending: &mut heapless::Deque<usize, N>,
    lost: &mut bool,
    s: &mut Slot<A>,
    i: usize,
) {
    if !s.marked && s.needs_attention() {
        s.marked = true;
        if pending.push_back(i).is_err() {
            *lost = true;
        }
    }
}

/// A handshake in progress, or one that completed and lingers to resend
/// its last flight (`linger_until` set; its session is established).
struct Handshake {
    handle: SessionHandle,
    conn: Connection,
    linger_until: Option<Duration>,
    /// A half-open handshake's hard end: it never lives longer than a
    /// peer's whole retransmission budget, however active it looks.
    expires: Duration,
    /// When the handshake was admitted (a handshake replacing one of the
    /// same address keeps its predecessor's): the oldest half-open
    /// handshake is the first to give its slot up to a new one.
    admitted: Duration,
    /// When it took its slot (kept by a handshake replacing its client's
    /// previous one): under newest wins, only a handshake that held its
    /// slot for the minimum hold time gives it up (see
    /// [`Endpoint::min_hold`]).
    since: Duration,
}

impl Handshake {
    /// A server handshake not started yet, admitted now. Not inlined: the
    /// caller's variable is where it is built.
    #[cfg(feature = "server")]
    #[inline(never)]
    fn blank_server(handle: SessionHandle, config: Config, now: Duration) -> Self {
        Handshake {
            handle,
            conn: Connection::blank_server(config, now),
            linger_until: None,
            expires: now,
            admitted: now,
            since: now,
        }
    }
}

/// A cookie-verified ClientHello taken (see [`Endpoint::replayed`]).
struct SeenHello<A> {
    addr: A,
    random: [u8; 32],
    /// Its cookie's time stamp (whole seconds).
    stamp: u32,
    /// When it was taken.
    at: Duration,
    /// How many entries of the cache are of its host (itself included;
    /// see [`PeerAddress::same_host`]): kept as entries come and go, so
    /// that making room compares each entry with one address, not with
    /// every other entry.
    held: usize,
}

/// A half-open handshake that ended without completing: its host, when it
/// ended and when it was admitted.
struct RecentEnd<A> {
    host: A,
    ended: Duration,
    admitted: Duration,
    /// When the ended handshake took its slot: a handshake that keeps its
    /// place in the line keeps this too, so ending its own handshake and
    /// starting again does not restart the minimum hold.
    since: Duration,
    /// The host's next handshake keeps this one's place in the line: the
    /// host ended it itself (failed, closed, timed out), it was not
    /// evicted to make room for another.
    keeps_place: bool,
}

/// An ended session whose slot was taken for a new handshake before its
/// `Closed` event was reported.
struct Tomb<A> {
    handle: SessionHandle,
    peer: A,
    reason: CloseReason,
    /// It connected before it ended (for the log's level).
    connected: bool,
}

/// What admitting a new handshake takes (see [`Endpoint::admit`]).
#[derive(Default)]
struct Admission {
    /// A handshake that gives its slot up alone (its session ended, or it
    /// only lingered).
    drop: Option<SessionHandle>,
    /// Slots that end as evicted: a stalled handshake, a session.
    evict: heapless::Vec<SessionHandle, 2>,
}

/// How a lingering handshake is reached while its session processes a
/// datagram.
struct Linger<'a> {
    conn: &'a mut Connection,
    now: Duration,
    deps: Deps<'a>,
}

/// The endpoint's side of an established session's input.
struct EpUp<'a, A, const Q: usize> {
    events: &'a mut heapless::Deque<Event<A>, EVENTS>,
    rxq: &'a mut TaggedQueue<Q, QUEUE_ENTRIES>,
    peer: &'a A,
    handle: SessionHandle,
    /// Other sessions are established: this one gets its fair share of
    /// the receive queue only (see [`Endpoint::recv`]).
    share: bool,
    linger: Option<Linger<'a>>,
    #[cfg(feature = "cid")]
    rrc: PathInput<'a, A>,
}

/// Where a session's Return Routability Check messages go (RFC 9853).
#[cfg(feature = "cid")]
struct PathInput<'a, A> {
    /// The datagram's source: a path_response goes there (§5.4).
    from: &'a A,
    /// The session's own check, which a path_response may answer.
    check: &'a mut Option<PathCheck<A>>,
    answers: &'a mut heapless::Deque<(SessionHandle, A, [u8; 8]), RRC_ANSWERS>,
}

impl<A: Clone, const Q: usize> Upcall for EpUp<'_, A, Q> {
    fn data(&mut self, plain: &[u8]) -> bool {
        let tag = self.handle.raw();
        if self.events.is_full()
            || (self.share && !self.rxq.fair(tag, plain.len()))
            || !self.rxq.push(tag, plain)
        {
            return false;
        }
        let _ = self.events.push_back(Event::ApplicationData {
            handle: self.handle,
            peer: self.peer.clone(),
            len: plain.len(),
        });
        true
    }
    fn old_handshake(&mut self, epoch: u16, plain: &[u8]) -> Result<bool, Error> {
        match self.linger.as_mut() {
            Some(l) => l
                .conn
                .handle_old_handshake(l.now, epoch, plain, &mut l.deps),
            None => Ok(false),
        }
    }
    /// RFC 9853 §5.4: exactly one path_response per valid path_challenge,
    /// to where it came from (one beyond what the endpoint keeps is
    /// dropped: the peer sends another). A path_response with the cookie
    /// of one of our challenges answers our check. A path_drop (we only
    /// run basic checks, §5.1) and unknown types are ignored (§4).
    #[cfg(feature = "cid")]
    fn rrc(&mut self, m: RrcRepr) {
        let p = &mut self.rrc;
        match m.msg_type {
            rrc::PATH_CHALLENGE => {
                let _ = p.answers.push_back((self.handle, p.from.clone(), m.cookie));
            }
            rrc::PATH_RESPONSE => {
                if let Some(c) = p.check.as_mut().filter(|c| c.answered_by(&m.cookie)) {
                    c.answered = true;
                }
            }
            _ => {}
        }
    }
}

/// A DTLS 1.2 server for up to `N` sessions (handshakes included) and `H`
/// handshakes in progress: PSK clients resolved through `P`, and, when
/// built [`with_raw_public_key`](Self::with_raw_public_key) (or by an
/// [`EndpointBuilder`] given a key), ECDHE_ECDSA clients with raw public
/// keys accepted by `T`; up to `S` sessions are kept for resumption.
///
/// # Capacities
///
/// Every table is inline and bounded by a const parameter (stable Rust
/// cannot size an array by an associated const of a generic parameter,
/// so they are parameters, with defaults for a device):
///
/// | parameter | bounds | default |
/// | --- | --- | --- |
/// | `N` | sessions, handshakes included | none (say it) |
/// | `S` | sessions kept for resumption | 4 |
/// | `H` | handshakes in progress at once | 2 |
/// | `Q` | bytes of each of the two application queues | [`APP_QUEUE_CAPACITY`](crate::APP_QUEUE_CAPACITY) |
/// | `C` | cookie-verified ClientHellos remembered against replays | [`CLIENT_HELLO_REPLAY_CACHE`] |
///
/// [`EndpointBuilder`] builds any of them (the capacities come from the
/// annotated type), PSK or with raw public keys, as one type.
///
/// # Who is this session, and when does it end
///
/// Every handshake the endpoint admits gets a [`SessionHandle`], never
/// reused while the endpoint lives; events, [`send`](Self::send),
/// [`recv`](Self::recv), [`close`](Self::close) and the accessors speak in
/// handles. The peer's address is an attribute of the session: it can
/// change ([`Event::PeerAddressChanged`], Connection ID), and a new session
/// from the same address (a client restarting on the same port) has
/// another handle and shares nothing with the old one.
///
/// [`Event::Connected`] carries what the handshake *proved* about the
/// peer (its PSK identity, raw public key or certificate key; `None` for
/// a client of a server-only raw-public-key handshake), and so does
/// [`peer_identity`](Self::peer_identity) from then on. Nothing the peer
/// only claimed (a ClientKeyExchange's identity, a key in a Certificate
/// message) is ever reported before its Finished verified.
///
/// Every handle ends exactly once, with one [`Event::Closed`] and its
/// [`CloseReason`]: close_notify either way, a fatal alert or failed check,
/// the idle timeout, a handshake that gave up or outlived the retransmission
/// budget, eviction to admit a new handshake (an idle, closed or stalled
/// one, or one its host held beyond its share), or replacement by a new
/// ClientHello from the same address (RFC 6347 §4.2.8). A Connection ID
/// peer moving to an address never ends another session: it moves once it
/// answered a Return Routability Check there (RFC 9853), or, without RRC,
/// at once with at most three times what came from the new address sent
/// there. Records received before the end stay readable with `recv` until
/// `Closed` is taken; after it, the handle is unknown. A slot is freed once
/// its `Closed` event was taken: an application that stops calling
/// `poll_event` gets no new sessions (ClientHellos are then refused and
/// counted), never lost events.
///
/// # Tables
///
/// A handshake occupies a handshake slot (a large one: transcript, flight
/// buffer, reassembly, ECDHE keys); once complete it is compacted in its
/// session slot to a few hundred bytes ([`footprint`](crate::footprint)).
/// The side that sent the last flight keeps its handshake slot until the
/// peer shows it got that flight (an authenticated application data or
/// alert record) or the peer's whole retransmission budget has passed
/// (the sum of its backed-off timeouts under our [`Config`]), resending
/// the flight when the peer repeats its own (RFC 6347 §4.2.4; at most once
/// per initial retransmission timeout). A new handshake is admitted while
/// a handshake slot and a session slot are free: a half-open handshake
/// that made no progress for [`Config::retransmit_initial`] gives its slot
/// up (repeated ClientHellos are not progress), and so does a lingering
/// one once its last flight went out, or an idle or closed session; one
/// host ([`PeerAddress::same_host`]) holds at most half of the handshake
/// slots (its share). With every handshake slot busy and none of those to
/// give up, the newest handshake wins, after a minimum hold: a host below
/// its share takes the slot of the half-open handshake (of another host)
/// admitted first among those that held their slot for half of
/// [`Config::retransmit_initial`] (the minimum hold time); if none has,
/// the new one is refused (first come, first served).
///
/// # Half-open handshakes under a flood
///
/// Only a host that receives at its address (it returns the cookie of our
/// HelloVerifyRequest) gets a handshake slot, and each cookie-bearing
/// ClientHello opens at most one: the endpoint remembers the address and
/// client random of the last 32 cookie-verified ClientHellos it admitted
/// (not those refused for want of a slot, nor those that failed at once:
/// a copy of those fails the same way and gets the same alert), within
/// [`Config::cookie_lifetime`]. A copy of one whose handshake is in
/// progress is a retransmission; a copy after its handshake ended
/// (completed, closed, failed, timed out, or replaced by its client's
/// next ClientHello) is dropped and counted in
/// [`Stats::client_hello_replays`]. An evicted handshake's ClientHello is
/// forgotten: its client's retransmission is its retry. When all 32 are
/// younger than the cookie lifetime, the oldest entry of the host holding
/// the most (at least two) is forgotten, so a host filling the cache
/// forgets its own and never makes another host's older ClientHello
/// replayable; when all 32 are of different hosts, the oldest is forgotten
/// and from then on every cookie stamped in or before the second its
/// cookie was stamped is refused as if expired (the client gets a new
/// HelloVerifyRequest): a forgotten ClientHello of another host cannot be
/// replayed, and an honest client loses a cookie round trip only while
/// more than 32 distinct hosts were admitted within about a second (which
/// the slots and the minimum hold limit to `H` per minimum hold time
/// unless handshakes complete). So an attacker who captured a victim's
/// cookie-bearing ClientHello can open no handshake the victim did not
/// ask for once the victim's is over, and draw no flight toward it beyond
/// the victim's own handshake; a forged copy with other extensions that
/// fails at once charges the victim's host (an on-path attacker could
/// spoof an alert anyway) but does not make the victim's own ClientHello
/// a replay; and a host that ends its own handshakes needs a cookie
/// exchange for each new one. The bound a flood leaves:
///
/// - A new client is admitted as soon as its cookie-bearing ClientHello
///   arrives while some half-open handshake of another host has held its
///   slot for the minimum hold time (unless its host is at its share, or
///   session slots are full of sessions within their hosts' limits). A
///   flood of cookie-verified ClientHellos from distinct hosts, one at
///   most every minimum hold time, always leaves such a slot; a flood of
///   more than `H` per minimum hold time takes every slot as soon as it
///   may be taken and keeps new clients out while it lasts (between the
///   two, a new client gets in when it arrives in a gap). No policy for
///   `H` slots tells such a flood from honest clients arriving faster
///   than the slots clear (a fleet reconnecting).
/// - Once admitted, its handshake keeps its slot for the minimum hold time
///   (unless it stalls: no progress for a whole initial retransmission
///   timeout), and after it until it is the first admitted of those that
///   held theirs for as long: it completes if its round trip (the
///   server's flight, its answer) is shorter than the minimum hold time.
///   Clients arriving faster than the slots clear are served first come,
///   first served; none evicts a handshake about to complete.
/// - A host cannot churn its way to the front: a half-open handshake that
///   ended without completing (failed, closed, timed out, evicted), and a
///   cookie-verified ClientHello that failed at once (no suite in common,
///   a bad extension: it makes no room and ends nothing), count against
///   its host's share, when a new handshake of that host would take
///   another's slot, for one initial retransmission timeout (among the
///   last eight such ends the endpoint remembers, at most a share of them
///   per host). A new handshake of a host whose half-open handshake it
///   ended itself (failed, closed, timed out) keeps the ended one's place
///   in the line and its hold time (so ending and restarting its own
///   handshake does not restart the minimum hold), and so does a
///   handshake replacing its client's previous one (a new ClientHello,
///   RFC 6347 §4.2.8); a client whose handshake was evicted goes to the
///   back.
/// - Progress does not protect a half-open handshake: until its Finished
///   verifies, a PSK peer proves nothing a flood could not send, so
///   protecting handshakes past the first flight would let a flood pin
///   slots by sending one more message each.
///
/// Resends: a flight goes out when new input asks for it (the
/// cookie-verified ClientHello, messages that advanced the handshake), on
/// the retransmission timer (up to [`Config::max_retransmits`] times,
/// backing off, RFC 6347 §4.2.4), and when the peer repeats a complete
/// copy of the message that ended its last flight (same epoch, type,
/// sequence and bytes; no fragment, truncated or other record does), at
/// most once per initial retransmission timeout. With the replay cache,
/// timer resends go to an address that asked for the handshake itself
/// (or whose ClientHello an on-path attacker forwarded first: the same
/// request); a copy of its ClientHello replayed during the handshake gets
/// at most one flight per initial retransmission timeout (about the
/// copy's size with PSK, several times it with a certificate), and after
/// it nothing. A client whose flights get lost repeats its own (ours keeps
/// its timer until the server's whole flight is in), which the server
/// answers; one that waits for the server's timer gets it too.
///
/// Session slots beyond a host's [`Config::max_sessions_per_host`]
/// (counted where each session's handshake came from) are lent while
/// others need none: with the table full, a handshake of a host below its
/// limit takes the least recently active of them, and a host at its limit
/// is refused rather than evict its own. Otherwise the ClientHello is
/// dropped (counted in [`Stats::handshakes_refused`]). Nothing is evicted
/// for a handshake that is then refused.
///
/// Received application records wait for [`recv`](Self::recv) in one
/// queue shared by all sessions (`Q` bytes, by default
/// [`APP_QUEUE_CAPACITY`](crate::APP_QUEUE_CAPACITY), and 16 records);
/// sealed records wait for [`poll_transmit`](Self::poll_transmit) in
/// another of the same size. A node serving a few peers with small
/// messages picks a smaller `Q` (a record of an `M`-byte message with
/// AES_128_CCM_8 takes `M` + 29 bytes in the send queue, `M` in the
/// receive queue). While more than one session is established, a
/// session holds at most half of it (8 records and half the bytes; its
/// first record is always taken if it fits): a session whose records are
/// not read cannot crowd the others out. A record beyond the share, or
/// one that does not fit, is dropped and counted in [`Stats::rx_overflow`].
///
/// ```
/// use cssf_dtls::{Config, Endpoint, StaticPsk};
/// use core::time::Duration;
/// let rng = rand_core::OsRng; // any CryptoRng + RngCore
/// let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
/// let mut server: Endpoint<u16, _, _, 4> = Endpoint::new(Config::default(), StaticPsk::new(&keys), rng, Duration::ZERO).unwrap();
/// assert_eq!(server.poll_timeout(), None); // nothing to do until a ClientHello arrives
/// ```
///
/// A whole PSK handshake in memory, then a request from the client:
///
/// ```
/// use cssf_dtls::{Client, Config, Endpoint, Event, Identity, StaticPsk};
/// use core::time::Duration;
/// let (rng_c, rng_s) = (rand_core::OsRng, rand_core::OsRng);
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
/// // The server learns who connected, proven by the handshake.
/// let Some(Event::Connected { handle, identity: Some(Identity::Psk(id)), .. }) = server.poll_event() else {
///     panic!("not connected");
/// };
/// assert_eq!(id.as_bytes(), b"Client_identity");
/// client.send(now, b"GET /temp").unwrap();
/// let t = client.poll_transmit(now, &mut buf).unwrap().unwrap();
/// server.handle_datagram(now, 1u8, &mut buf[..t.len]).unwrap();
/// let mut got = [0u8; 64];
/// assert_eq!(server.recv(handle, &mut got).unwrap(), Some(9));
/// assert_eq!(&got[..9], b"GET /temp");
/// ```
pub struct Endpoint<
    A,
    P,
    R,
    const N: usize,
    T = RejectAll,
    const S: usize = 4,
    const H: usize = 2,
    const Q: usize = APP_QUEUE_CAPACITY,
    const C: usize = CLIENT_HELLO_REPLAY_CACHE,
> {
    config: Config,
    store: P,
    #[cfg(feature = "ecdhe")]
    own_key: Option<SigningKey>,
    trust: T,
    rng: R,
    cookies: CookieSecrets,
    next_rotation: Duration,
    slots: heapless::Vec<Slot<A>, N>,
    /// The indices of the marked slots (see [`Slot::needs_attention`]),
    /// possibly with stale or repeated ones, which
    /// [`refresh_pending`](Self::refresh_pending) drops.
    pending: heapless::Deque<usize, N>,
    /// An index did not fit in `pending`: the next `poll_transmit` lists
    /// the slots again from all of them.
    pending_lost: bool,
    /// The least recently active open session's slot: the first of the
    /// idle list (see [`relist`](Self::relist)); [`NONE`] when empty.
    idle_oldest: usize,
    /// The most recently active open session's slot: the last of the
    /// idle list.
    idle_newest: usize,
    /// The slot of the session that last took input or sent: looked at
    /// first when a handle is looked for (its `recv`, `send` and sealed
    /// records usually follow its input), before every slot.
    last_used: usize,
    handshakes: heapless::Vec<Handshake, H>,
    graveyard: heapless::Deque<Tomb<A>, GRAVEYARD>,
    /// Where recent half-open handshakes that did not complete came from,
    /// and when they ended (see [`recent_ends`](Self::recent_ends)).
    recent: heapless::Deque<RecentEnd<A>, RECENT_ENDS>,
    /// Cookie-verified ClientHellos taken within the cookie lifetime
    /// (see [`replayed`](Self::replayed)), oldest first.
    seen: heapless::Deque<SeenHello<A>, C>,
    /// Cookies stamped at or before this second are not taken: a
    /// ClientHello this young was forgotten to make room in `seen`.
    stamp_floor: Option<u32>,
    /// The time of the latest input, timer or output call.
    clock: Duration,
    stateless: heapless::Deque<(A, [u8; STATELESS_MAX], usize), STATELESS_QUEUE>,
    events: heapless::Deque<Event<A>, EVENTS>,
    /// Path challenges of peers to answer: session, where the challenge
    /// came from, its cookie.
    #[cfg(feature = "cid")]
    rrc_answers: heapless::Deque<(SessionHandle, A, [u8; 8]), RRC_ANSWERS>,
    stats: Stats,
    rr: usize,
    cache: SessionCache<S>,
    txq: TaggedQueue<Q, QUEUE_ENTRIES>,
    rxq: TaggedQueue<Q, QUEUE_ENTRIES>,
    next_handle: u64,
}

impl<
        A,
        P,
        R,
        const N: usize,
        T,
        const S: usize,
        const H: usize,
        const Q: usize,
        const C: usize,
    > core::fmt::Debug for Endpoint<A, P, R, N, T, S, H, Q, C>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("sessions", &self.slots.len())
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Endpoint`] for every way of authenticating: one type for a
/// PSK server and one with raw public keys, so a program that picks the
/// mode at run time keeps one endpoint type. PSK identities always go
/// through the store; [`raw_public_key`](Self::raw_public_key) adds the
/// ECDHE_ECDSA suites; the trust store ([`trust`](Self::trust),
/// [`RejectAll`] until set) judges client keys and is part of the type
/// whether or not a key is given. The capacities are the type's const
/// parameters, taken from the annotation of the result.
///
/// ```
/// use cssf_dtls::{Config, Endpoint, EndpointBuilder, StaticPsk};
/// use core::time::Duration;
/// let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
/// let builder = EndpointBuilder::new(Config::default(), StaticPsk::new(&keys), rand_core::OsRng);
/// // 16 sessions, the other capacities by default.
/// let server: Endpoint<u16, _, _, 16> = builder.build(Duration::ZERO).unwrap();
/// assert_eq!(server.sessions(), 0);
/// ```
///
/// With feature `ecdhe`, the mode chosen at run time, one type: see
/// [`trust`](Self::trust).
pub struct EndpointBuilder<P, R, T = RejectAll> {
    config: Config,
    store: P,
    rng: R,
    trust: T,
    #[cfg(feature = "ecdhe")]
    own_key: Option<SigningKey>,
}

impl<P, R, T> core::fmt::Debug for EndpointBuilder<P, R, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EndpointBuilder").finish_non_exhaustive()
    }
}

impl<P, R> EndpointBuilder<P, R> {
    /// A server with `config`, resolving PSK identities through `store`
    /// (`StaticPsk::new(&[])` for none), with `rng`, without a key of its
    /// own, trusting no client key.
    pub fn new(config: Config, store: P, rng: R) -> Self {
        EndpointBuilder {
            config,
            store,
            rng,
            trust: RejectAll,
            #[cfg(feature = "ecdhe")]
            own_key: None,
        }
    }
}

impl<P, R, T> EndpointBuilder<P, R, T> {
    /// Offers the ECDHE_ECDSA suites with raw public keys (RFC 7250):
    /// `key` signs the ServerKeyExchange; with
    /// [`Config::require_client_auth`] clients must present a key the
    /// trust store accepts. With feature `x509` and a certificate for
    /// `key` in the configuration, clients that do not take raw public
    /// keys get the certificate.
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn raw_public_key(mut self, key: SigningKey) -> Self {
        self.own_key = Some(key);
        self
    }

    /// The trust store judging client keys.
    ///
    /// ```
    /// use cssf_dtls::{Config, Endpoint, EndpointBuilder, PinnedKeys, SigningKey, StaticPsk};
    /// use core::time::Duration;
    /// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
    /// let keys = [(&b"Client_identity"[..], &b"secretPSK"[..])];
    /// let pins = [p256::PublicKey::from(SigningKey::random(&mut rng).verifying_key())];
    /// let with_rpk = false; // e.g. from the command line
    /// let mut builder = EndpointBuilder::new(Config::default(), StaticPsk::new(&keys), rng)
    ///     .trust(PinnedKeys::new(&pins));
    /// if with_rpk {
    ///     builder = builder.raw_public_key(SigningKey::random(&mut rand_core::OsRng));
    /// }
    /// // 16 sessions; the same type either way.
    /// let server: Endpoint<u16, _, _, 16, PinnedKeys> = builder.build(Duration::ZERO).unwrap();
    /// assert_eq!(server.sessions(), 0);
    /// ```
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    pub fn trust<U>(self, trust: U) -> EndpointBuilder<P, R, U> {
        EndpointBuilder {
            config: self.config,
            store: self.store,
            rng: self.rng,
            trust,
            own_key: self.own_key,
        }
    }

    /// The endpoint, its capacities from the result's type. Errors:
    /// [`Error::Config`] for a configuration [`Config::validate`] refuses.
    pub fn build<
        A: PeerAddress,
        const N: usize,
        const S: usize,
        const H: usize,
        const Q: usize,
        const C: usize,
    >(
        self,
        now: Duration,
    ) -> Result<Endpoint<A, P, R, N, T, S, H, Q, C>, Error>
    where
        P: PskStore<A>,
        R: CryptoRngCore,
        T: TrustStore<A>,
    {
        Endpoint::build(
            self.config,
            self.store,
            #[cfg(feature = "ecdhe")]
            self.own_key,
            self.trust,
            self.rng,
            now,
        )
    }
}

impl<
        A: PeerAddress,
        P: PskStore<A>,
        R: CryptoRngCore,
        const N: usize,
        const S: usize,
        const H: usize,
        const Q: usize,
        const C: usize,
    > Endpoint<A, P, R, N, RejectAll, S, H, Q, C>
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
        P: PskStore<A>,
        R: CryptoRngCore,
        const N: usize,
        T: TrustStore<A>,
        const S: usize,
        const H: usize,
        const Q: usize,
        const C: usize,
    > Endpoint<A, P, R, N, T, S, H, Q, C>
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
    /// let mut rng = rand_core::OsRng; // any CryptoRng + RngCore
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
    /// use cssf_dtls::{Client, Config, Endpoint, Event, Identity, PinnedKeys, SigningKey, StaticPsk};
    /// use core::time::Duration;
    /// let (mut rng_c, mut rng_s) = (rand_core::OsRng, rand_core::OsRng);
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
    /// assert_eq!(client.peer_identity(), Some(&Identity::RawPublicKey(server_pin[0])));
    /// let handle = server.session_handle(&1).unwrap();
    /// assert_eq!(server.peer_identity(handle), Some(&Identity::RawPublicKey(client_pin[0])));
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
            slots: heapless::Vec::new(),
            pending: heapless::Deque::new(),
            pending_lost: false,
            idle_oldest: NONE,
            idle_newest: NONE,
            last_used: NONE,
            handshakes: heapless::Vec::new(),
            graveyard: heapless::Deque::new(),
            recent: heapless::Deque::new(),
            seen: heapless::Deque::new(),
            stamp_floor: None,
            clock: now,
            stateless: heapless::Deque::new(),
            events: heapless::Deque::new(),
            #[cfg(feature = "cid")]
            rrc_answers: heapless::Deque::new(),
            stats: Stats::default(),
            rr: 0,
            cache: SessionCache::new(),
            txq: TaggedQueue::new(),
            rxq: TaggedQueue::new(),
            next_handle: 1,
        })
    }

    fn rotate_if_due(&mut self, now: Duration) {
        if now >= self.next_rotation {
            self.cookies.rotate(&mut self.rng);
            self.next_rotation = now.saturating_add(self.config.cookie_rotation);
        }
    }

    // ---- finding slots ---------------------------------------------------

    fn slot_index(&self, handle: SessionHandle) -> Option<usize> {
        self.slots.iter().position(|s| s.handle == handle)
    }

    /// The slot of `handle` if it passes `also`: the last used slot
    /// first (see `last_used`), then every slot. Handles are unique, so
    /// this is the slot a search of every slot finds.
    fn slot_with(&self, handle: SessionHandle, also: impl Fn(&Slot<A>) -> bool) -> Option<usize> {
        let found = |s: &Slot<A>| s.handle == handle && also(s);
        if self.slots.get(self.last_used).is_some_and(found) {
            return Some(self.last_used);
        }
        self.slots.iter().position(found)
    }

    /// The slot of `handle` as the application sees it: unknown once its
    /// `Closed` was reported (the slot may still be sending its last
    /// alert).
    fn known(&self, handle: SessionHandle) -> Option<&Slot<A>> {
        self.slots
            .iter()
            .find(|s| s.handle == handle && s.life != Life::Reported)
    }

    fn handshake_index(&self, handle: SessionHandle) -> Option<usize> {
        self.handshakes.iter().position(|h| h.handle == handle)
    }

    /// The live slot at `addr`.
    /// A session without Connection IDs first: a CID session found at
    /// the address moved there, and is reached by its CID.
    fn live_at(&self, addr: &A) -> Option<usize> {
        let here = |s: &Slot<A>| s.live() && &s.peer == addr;
        self.slots
            .iter()
            .position(|s| here(s) && !self.uses_cid(s))
            .or_else(|| self.slots.iter().position(here))
    }

    /// The session (or its handshake) negotiated Connection IDs.
    fn uses_cid(&self, s: &Slot<A>) -> bool {
        match s.est.as_ref() {
            Some(e) => e.cid_negotiated(),
            None => self
                .handshake_index(s.handle)
                .and_then(|j| self.handshakes.get(j))
                .is_some_and(|h| h.conn.cid_negotiated()),
        }
    }

    // ---- slots with something to send -------------------------------------

    /// Marks slot `i` if it needs `poll_transmit`'s attention (see
    /// [`Slot::needs_attention`]): called after anything that may have
    /// given it an alert, a path challenge or an end.
    fn touch(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            mark(&mut self.pending, &mut self.pending_lost, s, i);
        }
    }

    /// Makes `pending` list each slot that needs attention exactly once,
    /// and only those: marks are taken off the slots listed, then put back
    /// on those that still need attention. After a lost index, every slot
    /// is looked at.
    fn refresh_pending(&mut self) {
        #[cfg(any(test, feature = "test-hooks"))]
        debug_assert!(
            self.slots.iter().all(|s| s.marked || !s.needs_attention()),
            "a slot has something to send but is not marked"
        );
        #[cfg(any(test, feature = "test-hooks"))]
        debug_assert!(
            self.handshakes
                .iter()
                .all(|h| self.slot_index(h.handle).is_some()),
            "a handshake without its slot"
        );
        #[cfg(any(test, feature = "test-hooks"))]
        debug_assert!(self.idle_list_holds(), "the idle list is out of order");
        let Endpoint {
            slots,
            pending,
            pending_lost,
            ..
        } = self;
        if core::mem::take(pending_lost) {
            pending.clear();
            for (i, s) in slots.iter_mut().enumerate() {
                s.marked = false;
                mark(pending, pending_lost, s, i);
            }
            return;
        }
        for &i in pending.iter() {
            if let Some(s) = slots.get_mut(i) {
                s.marked = false;
            }
        }
        for _ in 0..pending.len() {
            let Some(i) = pending.pop_front() else { break };
            if let Some(s) = slots.get_mut(i) {
                mark(pending, pending_lost, s, i);
            }
        }
    }

    /// The next marked slot, taken from the front of `pending` and put
    /// back at its end (call at most `pending.len()` times in a row to see
    /// each once).
    fn next_pending(&mut self) -> Option<usize> {
        let i = self.pending.pop_front()?;
        // Room: one was just taken.
        let _ = self.pending.push_back(i);
        Some(i)
    }

    /// Takes slot `i` out of the idle list, if it is in it.
    fn unlist(&mut self, i: usize) {
        let Some(s) = self.slots.get_mut(i).filter(|s| s.listed) else {
            return;
        };
        s.listed = false;
        let (older, newer) = (s.older, s.newer);
        s.older = NONE;
        s.newer = NONE;
        match self.slots.get_mut(older) {
            Some(o) => o.newer = newer,
            None => self.idle_oldest = newer,
        }
        match self.slots.get_mut(newer) {
            Some(n) => n.older = older,
            None => self.idle_newest = older,
        }
    }

    /// Puts slot `i` back in its place in the idle list after anything
    /// that may have changed when it was last active or whether it is an
    /// open session (its input, its end, its handshake completing): the
    /// list holds the open sessions ordered by last activity, so the next
    /// idle timeout is its first's, not a search of every slot. A session
    /// just active goes to the end at once (time only grows).
    fn relist(&mut self, i: usize) {
        self.unlist(i);
        let Some(since) = self.slots.get(i).and_then(Slot::idle_since) else {
            return;
        };
        let mut older = self.idle_newest;
        while let Some(o) = self.slots.get(older) {
            if o.idle_since().is_some_and(|t| t <= since) {
                break;
            }
            older = o.older;
        }
        let newer = match self.slots.get(older) {
            Some(o) => o.newer,
            None => self.idle_oldest,
        };
        if let Some(s) = self.slots.get_mut(i) {
            s.listed = true;
            s.older = older;
            s.newer = newer;
        }
        match self.slots.get_mut(older) {
            Some(o) => o.newer = i,
            None => self.idle_oldest = i,
        }
        match self.slots.get_mut(newer) {
            Some(n) => n.older = i,
            None => self.idle_newest = i,
        }
    }

    /// The idle list holds every open session, least recently active
    /// first (and maybe sessions that closed while sealing, not yet
    /// taken out), linked both ways (test builds).
    #[cfg(any(test, feature = "test-hooks"))]
    fn idle_list_holds(&self) -> bool {
        let mut n = 0;
        let mut open = 0;
        let mut at = self.idle_oldest;
        let mut prev = NONE;
        let mut last = Duration::ZERO;
        while let Some(s) = self.slots.get(at) {
            if !s.listed || s.older != prev || n > self.slots.len() {
                return false;
            }
            if let Some(t) = s.idle_since() {
                if t < last {
                    return false;
                }
                last = t;
                open += 1;
            }
            n += 1;
            prev = at;
            at = s.newer;
        }
        prev == self.idle_newest
            && n == self.slots.iter().filter(|s| s.listed).count()
            && open
                == self
                    .slots
                    .iter()
                    .filter(|s| s.idle_since().is_some())
                    .count()
    }

    // ---- the one way out ---------------------------------------------------

    /// Ends the session or handshake in slot `i` with `reason`: the one
    /// place a handle ends. Its reason waits in the slot for the `Closed`
    /// event (reported once, by [`poll_event`](Self::poll_event)); what it
    /// still had queued for sending goes, except the alert that says why
    /// (close_notify after a local close or the idle timeout, the fatal
    /// alert of a failure); a session ended by a fatal alert is not
    /// resumed (RFC 5246 §7.2.2). A slot that ends twice keeps its first
    /// reason.
    fn end(&mut self, i: usize, reason: CloseReason) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if !slot.live() {
            return;
        }
        slot.life = Life::Ended(reason);
        let handle = slot.handle;
        let half_open = slot.est.is_none();
        let origin = slot.origin.clone();
        if let Some(est) = slot.est.as_mut() {
            match reason {
                CloseReason::LocalClose | CloseReason::IdleTimeout => est.close(reason),
                // Nobody is there to read an alert (the address moved
                // on, or the peer lost its state).
                CloseReason::Evicted | CloseReason::Replaced => est.drop_alert(),
                _ => {}
            }
            if est.fatal && !est.session_id().is_empty() {
                self.cache.remove(est.session_id());
            }
        }
        if !matches!(
            reason,
            CloseReason::LocalClose | CloseReason::SequenceExhausted
        ) {
            // After a local close (or the last sequence number), records
            // already sealed still go out, before the close_notify.
            self.txq.purge(handle.raw());
        }
        if let Some(j) = self.handshake_index(handle) {
            // A half-open handshake that did not complete counts against
            // its host's share for a while (see `recent_ends`); one
            // replaced by its client's new ClientHello does not (the new
            // one keeps its place in the line).
            let admitted = self
                .handshakes
                .get(j)
                .filter(|h| h.linger_until.is_none())
                .map(|h| (h.admitted, h.since));
            if let Some((admitted, since)) =
                admitted.filter(|_| half_open && reason != CloseReason::Replaced)
            {
                // An evicted client did not end its handshake itself: its
                // retry goes to the back of the line, and its ClientHello
                // is forgotten by the replay cache, so its retransmission
                // (same random, cookie still valid) is taken again rather
                // than dropped as a replay.
                let evicted = reason == CloseReason::Evicted;
                if evicted {
                    self.forget_hellos_of(&origin);
                }
                self.remember_end(origin, admitted, since, !evicted);
            }
            let keep = self.handshakes.get(j).is_some_and(|h| {
                // A failed handshake still sends its fatal alert.
                h.linger_until.is_none()
                    && h.conn.has_output()
                    && matches!(reason, CloseReason::Error(_))
            });
            if let Some(h) = self.handshakes.get_mut(j) {
                if h.conn.fatal && h.conn.established {
                    self.cache.remove(&h.conn.session_id);
                }
                if !keep {
                    h.conn.stop_sending();
                }
            }
            if !keep {
                self.remove_handshake(j);
            }
        }
        self.touch(i);
        self.relist(i);
    }

    /// Drops handshake slot `j` (its counters go to the endpoint's).
    fn remove_handshake(&mut self, j: usize) {
        // Dropped where it lies (swapped to the end, then truncated): no
        // copy of the handshake state on the stack.
        let last = self.handshakes.len().wrapping_sub(1);
        if j <= last {
            if let Some(h) = self.handshakes.get(j) {
                self.stats.add(&h.conn.stats);
            }
            if let Some((a, b)) = self.handshakes.split_at_mut_checked(last) {
                if let (Some(x), Some(y)) = (a.get_mut(j), b.first_mut()) {
                    core::mem::swap(x, y);
                }
            }
            self.handshakes.truncate(last);
        }
    }

    /// Frees the slots of ended sessions that have nothing left to send or
    /// report but their `Closed`: reported ones go; unreported ones move to
    /// the graveyard (while it has room) to be reported from there.
    fn bury(&mut self) {
        let mut i = 0;
        while i < self.slots.len() {
            let Some(s) = self.slots.get(i) else { break };
            // A slot with an alert to send, a handshake still held, or a
            // `Connected` or move not reported yet stays where it is. A
            // live slot stays anyway: asked first, so that a table of
            // thousands of live sessions costs one look at each, not a
            // search of the handshakes and the send queue for each.
            let busy = || {
                s.has_alert()
                    || self.handshake_index(s.handle).is_some()
                    || self.txq.find(s.handle.raw()).is_some()
                    || s.connected_unreported
                    || s.moved_from.is_some()
            };
            let go = match s.life {
                Life::Live => false,
                Life::Reported => !busy(),
                Life::Ended(_) => !self.graveyard.is_full() && !busy(),
            };
            if !go {
                i += 1;
                continue;
            }
            self.unlist(i);
            let s = self.slots.swap_remove(i);
            // The last slot moved to `i`: its neighbours in the idle list
            // follow it.
            if let Some(m) = self.slots.get(i).filter(|m| m.listed) {
                let (older, newer) = (m.older, m.newer);
                match self.slots.get_mut(older) {
                    Some(o) => o.newer = i,
                    None => self.idle_oldest = i,
                }
                match self.slots.get_mut(newer) {
                    Some(n) => n.older = i,
                    None => self.idle_newest = i,
                }
            }
            if let Life::Ended(reason) = s.life {
                let _ = self.graveyard.push_back(Tomb {
                    handle: s.handle,
                    peer: s.peer,
                    reason,
                    connected: s.suite.is_some(),
                });
            } else {
                self.rxq.purge(s.handle.raw());
            }
        }
    }

    /// Brings slot `handle` up to date with its handshake after the
    /// handshake processed input, time or output: a completed handshake is
    /// compacted into the slot (`Connected`, with its proven identity; the
    /// handshake slot lingers if it sent the last flight); a failed or
    /// closed one ends the slot.
    fn sync_handshake(&mut self, now: Duration, handle: SessionHandle) {
        let (Some(i), Some(j)) = (self.slot_index(handle), self.handshake_index(handle)) else {
            return;
        };
        let linger = self.config.linger_time();
        let next = {
            let Endpoint {
                slots,
                handshakes,
                cache,
                config,
                ..
            } = self;
            let (Some(slot), Some(h)) = (slots.get_mut(i), handshakes.get_mut(j)) else {
                return;
            };
            #[cfg(not(feature = "cid"))]
            let _ = &config;
            if h.linger_until.is_some() || !slot.live() {
                return;
            }
            if h.conn.state == State::Connected && slot.est.is_none() {
                match h.conn.compact() {
                    Ok(est) => {
                        slot.identity = h.conn.proven_identity();
                        slot.suite = h.conn.suite;
                        slot.resumed = h.conn.resumed;
                        slot.connected_unreported = true;
                        slot.est = Some(est);
                        #[cfg(feature = "cid")]
                        {
                            slot.path_timer = config.path_check_timer(h.conn.round_trip);
                        }
                        if !h.conn.resumed {
                            if let Some(session) = h.conn.session() {
                                cache.insert(session, now);
                            }
                        }
                        if h.conn.sent_last_flight() {
                            h.linger_until = Some(now.saturating_add(linger));
                            None
                        } else {
                            Some(Err(()))
                        }
                    }
                    Err(e) => {
                        let _ = h.conn.fail(e);
                        Some(Ok(CloseReason::Error(e)))
                    }
                }
            } else {
                h.conn.outcome().map(|outcome| {
                    Ok(match outcome {
                        CloseReason::Error(Error::Timeout) => CloseReason::HandshakeTimeout,
                        r => r,
                    })
                })
            }
        };
        match next {
            // Completed, and the peer sent the last flight: nothing to keep.
            Some(Err(())) => self.remove_handshake(j),
            Some(Ok(reason)) => self.end(i, reason),
            None => {}
        }
        // A completed handshake's alert moved into the session.
        self.touch(i);
        self.relist(i);
    }

    /// Brings slot `i` up to date with its established session after the
    /// session processed input: a session that ended ends the slot; one
    /// that heard from its peer lets its lingering handshake go.
    fn sync_session(&mut self, i: usize) {
        let Some(s) = self.slots.get(i) else { return };
        let Some(est) = s.est.as_ref() else { return };
        let (handle, heard, end) = (s.handle, est.heard, est.end_reason());
        if heard {
            // The peer has our last flight: the handshake is done with.
            if let Some(j) = self.handshake_index(handle) {
                self.remove_handshake(j);
            }
        }
        if let Some(reason) = end {
            self.end(i, reason);
        }
    }

    // ---- admission ---------------------------------------------------------

    /// Makes room for a new handshake from `from` if it can be admitted,
    /// and only then: every condition is checked before anything ends.
    ///
    /// - A handshake slot: a free one, or one given up by the handshake of
    ///   an ended session (kept for its alert, which is dropped), by a
    ///   half-open handshake that made no progress for a whole initial
    ///   retransmission timeout (a peer that is there would have
    ///   retransmitted), by a lingering one whose last flight went out, or
    ///   else by the half-open handshake of another host admitted first
    ///   among those that held their slot for the minimum hold time
    ///   (newest wins; see "Half-open handshakes under a flood" at
    ///   [`Endpoint`]). One host (see [`PeerAddress::same_host`]) holds at
    ///   most half of the handshake slots (at least one): beyond that, only
    ///   its own stalled handshake makes room for its new one; its
    ///   half-open handshakes that ended within one initial retransmission
    ///   timeout count too before it takes another's slot.
    /// - A session slot: a free one, or one given up by an idle or closed
    ///   session or, for a host below its limit
    ///   ([`Config::max_sessions_per_host`]), by the least recently active
    ///   session of a host holding more than its limit: slots beyond a
    ///   host's limit are lent while others need none. No session within
    ///   its host's limit is evicted for a new handshake, and a host at
    ///   its limit never evicts its own sessions: with the table full, its
    ///   handshake is refused.
    fn admit(&mut self, now: Duration, from: &A) -> bool {
        self.bury();
        let Some(plan) = self.admission(now, from) else {
            return false;
        };
        if let Some(j) = plan.drop.and_then(|h| self.handshake_index(h)) {
            self.remove_handshake(j);
        }
        for v in plan.evict {
            if let Some(i) = self.slot_index(v) {
                self.end(i, CloseReason::Evicted);
            }
        }
        self.bury();
        !self.handshakes.is_full() && !self.slots.is_full()
    }

    /// What admitting a handshake from `from` takes (see
    /// [`admit`](Self::admit)); `None` when it cannot be admitted. Changes
    /// nothing.
    fn admission(&self, now: Duration, from: &A) -> Option<Admission> {
        let stalled = self.config.retransmit_initial;
        // Each handshake's slot, found in one pass over the slots (by
        // handle, in the handshakes' handles sorted), not searched for
        // among every slot each time a handshake is looked at.
        let mut at: heapless::Vec<(u64, usize), H> = self
            .handshakes
            .iter()
            .map(|h| (h.handle.raw(), usize::MAX))
            .collect();
        at.sort_unstable_by_key(|e| e.0);
        for (i, s) in self.slots.iter().enumerate() {
            if let Ok(k) = at.binary_search_by_key(&s.handle.raw(), |e| e.0) {
                if let Some(e) = at.get_mut(k).filter(|e| e.1 == usize::MAX) {
                    e.1 = i;
                }
            }
        }
        let slot_of = |handle: SessionHandle| {
            at.binary_search_by_key(&handle.raw(), |e| e.0)
                .ok()
                .and_then(|k| at.get(k))
                .and_then(|e| self.slots.get(e.1))
        };
        let live = |h: &Handshake| slot_of(h.handle).filter(|s| s.live());
        let in_progress = |h: &Handshake| h.linger_until.is_none() && live(h).is_some();
        let is_stalled =
            |h: &Handshake| in_progress(h) && now.saturating_sub(h.conn.last_activity) >= stalled;
        let of_host = |h: &Handshake| live(h).is_some_and(|s| s.origin.same_host(from));
        let oldest = |f: &dyn Fn(&Handshake) -> bool| {
            self.handshakes
                .iter()
                .filter(|h| f(h))
                .min_by_key(|h| h.conn.last_activity)
                .map(|h| h.handle)
        };
        let first_admitted = |f: &dyn Fn(&Handshake) -> bool| {
            self.handshakes
                .iter()
                .filter(|h| f(h))
                // Handles grow: the one admitted first of the same instant.
                .min_by_key(|h| (h.admitted, h.handle.raw()))
                .map(|h| h.handle)
        };
        // A handshake slot: the handshake that gives its slot up, if one
        // must, and whether its session ends (evicted) or lives on.
        let own = self
            .handshakes
            .iter()
            .filter(|h| in_progress(h) && of_host(h))
            .count();
        let share = (H / 2).max(1);
        let give = if own >= share {
            Some((oldest(&|h| is_stalled(h) && of_host(h))?, true))
        } else if self.handshakes.is_full() {
            let ended = self.handshakes.iter().find(|h| live(h).is_none());
            let done = |h: &Handshake| h.linger_until.is_some() && !h.conn.has_output();
            // Newest wins: the half-open handshake of another host admitted
            // first, for a host whose handshakes, with those that recently
            // ended without completing, stay below its share.
            // Only a handshake that held its slot for the minimum hold
            // time gives it up this way.
            let hold = self.min_hold();
            let held = |h: &Handshake| now.saturating_sub(h.since) >= hold;
            let newest_wins = || {
                (own.saturating_add(self.recent_ends(now, from)) < share)
                    .then(|| first_admitted(&|h| in_progress(h) && !of_host(h) && held(h)))
                    .flatten()
            };
            Some(
                ended
                    .map(|h| (h.handle, false))
                    .or_else(|| oldest(&is_stalled).map(|v| (v, true)))
                    .or_else(|| oldest(&done).map(|v| (v, false)))
                    .or_else(|| newest_wins().map(|v| (v, true)))?,
            )
        } else {
            None
        };
        let mut plan = Admission::default();
        let mut room = GRAVEYARD.saturating_sub(self.graveyard.len());
        let mut used = self.slots.len();
        if let Some((v, evicted)) = give {
            if let Some(r) = slot_of(v).and_then(|s| self.freed(s, evicted, room)) {
                room = r;
                used = used.saturating_sub(1);
            }
            if evicted {
                let _ = plan.evict.push(v);
            } else {
                plan.drop = Some(v);
            }
        }
        if used < N {
            return Some(plan);
        }
        // A session slot: an idle or closed session's, or one lent to a
        // host beyond its limit (only for a host below its own).
        let idle = self.config.idle_timeout;
        let limit = self
            .config
            .max_sessions_per_host
            .map_or((N / 2).max(1), usize::from);
        let count = |host: &A| {
            self.slots
                .iter()
                .filter(|s| s.live() && s.origin.same_host(host))
                .count()
        };
        // Lent: the host holds more established sessions than its limit.
        // Its handshakes in flight do not count here, or an unauthenticated
        // half-open handshake from a host's network would make that host's
        // own sessions, within its limit, evictable.
        let established = |host: &A| {
            self.slots
                .iter()
                .filter(|s| s.established().is_some() && s.origin.same_host(host))
                .count()
        };
        let victim = |lent: bool| {
            self.slots
                .iter()
                .filter_map(|s| {
                    let est = s.established()?;
                    let gives = if lent {
                        established(&s.origin) > limit
                    } else {
                        !est.is_open() || now.saturating_sub(est.last_activity()) >= idle
                    };
                    (gives && self.freed(s, true, room).is_some())
                        .then(|| (s.handle, est.last_activity()))
                })
                .min_by_key(|(_, t)| *t)
                .map(|(h, _)| h)
        };
        let v = victim(false).or_else(|| (count(from) < limit).then(|| victim(true)).flatten())?;
        let _ = plan.evict.push(v);
        Some(plan)
    }

    /// How many half-open handshakes of `from`'s host ended without
    /// completing (failed, timed out, closed or evicted; not replaced by
    /// its client's new ClientHello) less than one initial retransmission
    /// timeout before `now`, among the last [`RECENT_ENDS`] such ends: they
    /// still count against the host's share when its new handshake would
    /// take another host's slot, so a host cannot end its own handshake
    /// (or have it evicted) and at once take the slot of the next one in
    /// line with a fresh or replayed ClientHello.
    fn recent_ends(&self, now: Duration, from: &A) -> usize {
        self.recent_of(now, from).count()
    }

    /// Remembers a half-open handshake of `host`, admitted at `admitted`,
    /// that ended now without completing (see
    /// [`recent_ends`](Self::recent_ends)). A host holds at most its share
    /// of the remembered ends: its newest end replaces its oldest one, so
    /// one host failing over and over does not push the other hosts' ends
    /// out.
    fn remember_end(&mut self, host: A, admitted: Duration, since: Duration, keeps_place: bool) {
        let share = (H / 2).max(1);
        let now = self.clock;
        let window = self.config.retransmit_initial;
        let mine =
            |e: &RecentEnd<A>| e.host.same_host(&host) && now.saturating_sub(e.ended) < window;
        let end = RecentEnd {
            host: host.clone(),
            ended: now,
            admitted,
            since,
            keeps_place,
        };
        if self.recent.iter().filter(|e| mine(e)).count() >= share {
            if let Some(e) = self.recent.iter_mut().find(|e| mine(e)) {
                // Its place in the line stays the earliest it had.
                let first = e.admitted.min(admitted);
                let held = e.since.min(since);
                let kept = e.keeps_place && keeps_place;
                *e = end;
                e.admitted = first;
                e.since = held;
                e.keeps_place = kept;
            }
            return;
        }
        if self.recent.is_full() {
            self.recent.pop_front();
        }
        let _ = self.recent.push_back(end);
    }

    /// How long a half-open handshake holds its slot before a newer one
    /// may take it under newest wins: half of
    /// [`Config::retransmit_initial`]. A client whose round trip (the
    /// server's flight, its answer) is shorter completes before it can be
    /// evicted, so clients arriving faster than the slots clear (a fleet
    /// reconnecting) are served first come, first served rather than each
    /// evicting one about to finish.
    fn min_hold(&self) -> Duration {
        self.config.retransmit_initial / 2
    }

    /// True when the cookie-verified ClientHello from `from` with client
    /// `random` must be dropped as a replay: its (address, random) was
    /// taken before, within the cookie lifetime, and its handshake is no
    /// longer in progress (a copy for a handshake in progress never gets
    /// here: it is a retransmission).
    fn replayed(&self, now: Duration, from: &A, random: &[u8; 32]) -> bool {
        let life = self.config.cookie_lifetime;
        self.seen.iter().any(|e| {
            &e.addr == from
                && &e.random == random
                && now.saturating_sub(e.at) <= life.saturating_add(SECOND)
        })
    }

    /// Queues a plaintext fatal alert `code` to `to` (record sequence
    /// `seq`, the ClientHello's).
    fn queue_alert(&mut self, to: A, seq: u64, code: u8) {
        let mut out = [0u8; STATELESS_MAX];
        let ok = RecordHeader {
            content_type: ContentType::Alert,
            version: crate::wire::DTLS_1_2,
            epoch: 0,
            sequence: seq,
            length: 2,
        }
        .emit(&mut out);
        if let (Ok(()), Some(p)) = (ok, out.get_mut(REC_HEADER..REC_HEADER + 2)) {
            p.copy_from_slice(&[2, code]);
            self.queue_stateless(to, out, REC_HEADER + 2);
        }
    }

    /// Forgets the ClientHellos the replay cache holds from `addr` (its
    /// half-open handshake was evicted: the client's retransmission of the
    /// same ClientHello is its retry, not a replay).
    fn forget_hellos_of(&mut self, addr: &A) {
        // In place: no second cache on the stack.
        let before = self.seen.len();
        self.seen.retain(|e| &e.addr != addr);
        let gone = before - self.seen.len();
        if gone > 0 {
            for e in self.seen.iter_mut() {
                if addr.same_host(&e.addr) {
                    e.held = e.held.saturating_sub(gone);
                }
            }
        }
    }

    /// The replay cache's entry of `addr` left it: its host's other
    /// entries hold one fewer.
    fn forgot_hello_of(&mut self, addr: &A) {
        for e in self.seen.iter_mut() {
            if addr.same_host(&e.addr) {
                e.held = e.held.saturating_sub(1);
            }
        }
    }

    /// Remembers a cookie-verified ClientHello taken now (see
    /// [`replayed`](Self::replayed)). The cache holds
    /// `C` entries: entries older than the
    /// cookie lifetime (plus the stamp's second) leave first, as their
    /// cookies are no longer taken anyway; if the cache is still full, the
    /// oldest entry of the host holding the most entries (at least two,
    /// the new one counted) leaves; if every entry is of a different host,
    /// the oldest leaves and every cookie stamped in or before its
    /// cookie's second is refused from then on (such a ClientHello gets a
    /// new HelloVerifyRequest, as for an expired cookie): a forgotten
    /// ClientHello of another host cannot be replayed. Only ClientHellos
    /// that took a handshake slot are remembered, so filling the cache
    /// with distinct hosts takes admissions, which the slots and the
    /// minimum hold limit; an honest client then loses a cookie round
    /// trip only while more than the cache's worth of hosts were admitted
    /// within about a second.
    fn remember_hello(&mut self, now: Duration, from: &A, random: [u8; 32], stamp: u32) {
        let life = self.config.cookie_lifetime;
        while self
            .seen
            .front()
            .is_some_and(|e| now.saturating_sub(e.at) > life.saturating_add(SECOND))
        {
            if let Some(e) = self.seen.pop_front() {
                self.forgot_hello_of(&e.addr);
            }
        }
        if self.seen.is_full() {
            // The oldest entry of the host holding the most (at least
            // two; the inserting one counted with its new entry): a host
            // filling the cache forgets its own first, never a host with
            // fewer entries (whose older ClientHello would then be
            // replayable). Each entry knows how many its host holds, so
            // this is one pass.
            let held = |e: &SeenHello<A>| e.held + usize::from(e.addr.same_host(from));
            let mut most = 0;
            let mut first = 0;
            for (k, e) in self.seen.iter().enumerate() {
                let h = held(e);
                if h > most {
                    most = h;
                    first = k;
                }
            }
            let crowded = (most >= 2).then_some(first);
            // Removed in place (no second cache on the stack).
            let gone = crowded.unwrap_or(0);
            let mut k = 0;
            let mut forgotten = None;
            self.seen.retain(|e| {
                let keep = k != gone;
                if !keep {
                    forgotten = Some((e.stamp, e.addr.clone()));
                }
                k += 1;
                keep
            });
            if let Some((_, addr)) = forgotten.as_ref() {
                self.forgot_hello_of(addr);
            }
            // Every entry from a different host: the oldest goes, and no
            // cookie as old as its cookie is taken from then on.
            if let Some((stamp, _)) = forgotten.filter(|_| crowded.is_none()) {
                self.stamp_floor = Some(self.stamp_floor.map_or(stamp, |f| f.max(stamp)));
            }
        }
        let mut held = usize::from(from.same_host(from));
        for e in self.seen.iter_mut() {
            e.held += usize::from(from.same_host(&e.addr));
            held += usize::from(e.addr.same_host(from));
        }
        let _ = self.seen.push_back(SeenHello {
            addr: from.clone(),
            random,
            stamp,
            at: now,
            held,
        });
    }

    /// The recent ends of `from`'s host (see [`recent_ends`](Self::recent_ends)).
    fn recent_of<'a>(
        &'a self,
        now: Duration,
        from: &'a A,
    ) -> impl Iterator<Item = &'a RecentEnd<A>> + 'a {
        let window = self.config.retransmit_initial;
        self.recent
            .iter()
            .filter(move |e| e.host.same_host(from) && now.saturating_sub(e.ended) < window)
    }

    /// The graveyard places left once slot `s` is freed, if it is freed at
    /// once after its handshake went and, with `evicted`, after it ended
    /// as evicted (its alert and queued records dropped); `None` when it
    /// stays. A slot whose `Closed` is still to be reported takes one of
    /// the `room` places left.
    fn freed(&self, s: &Slot<A>, evicted: bool, room: usize) -> Option<usize> {
        let busy = s.connected_unreported
            || s.moved_from.is_some()
            || (!evicted && (s.live() || s.has_alert() || self.txq.find(s.handle.raw()).is_some()));
        match s.life {
            _ if busy => None,
            Life::Reported => Some(room),
            _ => room.checked_sub(1),
        }
    }

    // ---- input -------------------------------------------------------------

    /// Input: a datagram from `from`, decrypted in place.
    ///
    /// Never fails on what a peer sent: bad records are dropped and
    /// counted in [`stats`](Self::stats), and an error fatal to the
    /// session or handshake the datagram was for ends that one with an
    /// [`Event::Closed`] carrying the reason (its alert, if any, is still
    /// sent); the endpoint and its other sessions go on. As in every crate
    /// of the workspace, an `Err` would be the caller's misuse; there is
    /// none here today.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        // An `Err` from `input` ended the session or handshake it was for
        // already, with its `Closed` event (the one remove-and-notify path)
        // and its log line.
        let _ = self.input(now, from, data);
        Ok(())
    }

    fn input(&mut self, now: Duration, from: A, data: &mut [u8]) -> Result<(), Error> {
        self.clock = now;
        self.rotate_if_due(now);
        if data.first() == Some(&TLS12_CID) {
            return self.handle_cid_datagram(now, from, data);
        }
        // A ClientHello with a fresh random from a known address is a
        // client starting over (RFC 6347 §4.2.8); a delayed copy of the
        // old one is not. It still has to pass the cookie check before it
        // replaces anything.
        let random = client_hello_random(data);
        if let Some(i) = self.live_at(&from) {
            let Some(slot) = self.slots.get(i) else {
                return Ok(());
            };
            let handle = slot.handle;
            let restart = match (slot.est.as_ref(), random) {
                (Some(est), Some(r)) => r.get(..8) != Some(&est.random_prefix[..]),
                (None, Some(r)) => self
                    .handshake_index(handle)
                    .and_then(|j| self.handshakes.get(j))
                    .is_some_and(|h| r != h.conn.client_random),
                (_, None) => false,
            };
            if !restart {
                return match slot.est {
                    Some(_) => self.session_input(now, i, &from, data),
                    None => self.handshake_input(now, handle, &from, data),
                };
            }
        }
        self.stateless_client_hello(now, from, data)
    }

    /// A datagram from `from` for the handshake of `handle`; records after
    /// the one completing the handshake go to the new established session.
    fn handshake_input(
        &mut self,
        now: Duration,
        handle: SessionHandle,
        from: &A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        let (Some(i), Some(j)) = (self.slot_index(handle), self.handshake_index(handle)) else {
            return Ok(());
        };
        let Endpoint {
            slots,
            handshakes,
            rng,
            store,
            trust,
            ..
        } = self;
        let (Some(slot), Some(h)) = (slots.get(i), handshakes.get_mut(j)) else {
            return Ok(());
        };
        let mut creds = Bound {
            store,
            trust: &*trust,
            cx: PeerContext::new(handle, &slot.peer, now),
        };
        let mut deps = Deps {
            rng,
            creds: &mut creds,
        };
        let r = h.conn.handle_datagram(now, data, &mut deps);
        self.sync_handshake(now, handle);
        let consumed = r?;
        let Some(i) = self.slot_index(handle) else {
            return Ok(());
        };
        if self
            .slots
            .get(i)
            .is_some_and(|s| s.est.is_some() && s.live())
        {
            if let Some(rest) = data.get_mut(consumed..).filter(|r| !r.is_empty()) {
                return self.session_input_rest(now, i, from, rest);
            }
        }
        Ok(())
    }

    /// A datagram from `from` for the session in slot `i`.
    fn session_input(
        &mut self,
        now: Duration,
        i: usize,
        from: &A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        self.session_input_rest(now, i, from, data)
    }

    /// Records from `from` for the session in slot `i` (the counters for
    /// the datagram are already taken).
    fn session_input_rest(
        &mut self,
        now: Duration,
        i: usize,
        from: &A,
        data: &mut [u8],
    ) -> Result<(), Error> {
        // A second established session is enough to know (not a count of
        // every slot on every datagram).
        let share = self
            .slots
            .iter()
            .filter(|s| s.established().is_some())
            .nth(1)
            .is_some();
        let Endpoint {
            slots,
            handshakes,
            rng,
            store,
            trust,
            events,
            rxq,
            stats,
            #[cfg(feature = "cid")]
            rrc_answers,
            ..
        } = self;
        let Some(s) = slots.get_mut(i) else {
            return Ok(());
        };
        let Some(est) = s.est.as_mut() else {
            return Ok(());
        };
        #[cfg(not(feature = "cid"))]
        let _ = from;
        let mut creds = Bound {
            store,
            trust: &*trust,
            cx: PeerContext::new(s.handle, &s.peer, now),
        };
        let linger = handshakes
            .iter_mut()
            .find(|h| h.handle == s.handle && h.linger_until.is_some())
            .map(|h| Linger {
                conn: &mut h.conn,
                now,
                deps: Deps {
                    rng,
                    creds: &mut creds,
                },
            });
        let mut up = EpUp {
            events,
            rxq,
            peer: &s.peer,
            handle: s.handle,
            share,
            linger,
            #[cfg(feature = "cid")]
            rrc: PathInput {
                from,
                check: &mut s.check,
                answers: rrc_answers,
            },
        };
        let r = est.handle_datagram(now, data, stats, &mut up);
        self.sync_session(i);
        // An alert in answer (close_notify, no_renegotiation), a path
        // check done or started; its last activity.
        self.touch(i);
        self.relist(i);
        self.last_used = i;
        r
    }

    /// A datagram starting with a tls12_cid record: the session is found by
    /// CID whatever the source address (RFC 9146 §4). The session moves to
    /// `from` only when the datagram held an authenticated record newer
    /// than every earlier one (§6); a forged, replayed or older record
    /// changes nothing. Another session at `from` is not touched (a moving
    /// peer could name any address).
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
        let established = self.slots.iter().position(|s| {
            s.established()
                .is_some_and(|e| e.cid_negotiated() && e.cid_rx() == cid)
        });
        let handshaking = self
            .handshakes
            .iter()
            .find(|h| {
                h.linger_until.is_none()
                    && h.conn.cid_negotiated()
                    && h.conn.cid_rx.as_slice() == cid
            })
            .map(|h| h.handle);
        let handle = match (established, handshaking) {
            (Some(i), _) => self.slots.get(i).map(|s| s.handle),
            (None, Some(h)) => {
                // Mid-handshake, records come from the handshake's address;
                // a CID is public (it was in the ServerHello), so records
                // with it from elsewhere are not let near the handshake.
                let here = self
                    .slot_index(h)
                    .and_then(|i| self.slots.get(i))
                    .is_some_and(|s| s.peer == from);
                if !here {
                    return self.drop_datagram(data.len());
                }
                Some(h)
            }
            (None, None) => None,
        };
        let Some(handle) = handle else {
            return self.drop_datagram(data.len());
        };
        let events_before = self.events.len();
        #[cfg(feature = "cid")]
        let len = data.len() as u64;
        let r = match established {
            Some(i) => self.session_input(now, i, &from, data),
            None => self.handshake_input(now, handle, &from, data),
        };
        // Did the datagram move the session (RFC 9146 §6)?
        let Some(i) = self.slot_index(handle) else {
            return r;
        };
        let Some(s) = self.slots.get(i).filter(|s| s.live() && r.is_ok()) else {
            return r;
        };
        let newest = match s.est.as_ref() {
            Some(e) => e.took_newest(),
            None => self
                .handshake_index(handle)
                .and_then(|j| self.handshakes.get(j))
                .is_some_and(|h| h.conn.took_newest()),
        };
        let here = s.peer == from;
        #[cfg(feature = "cid")]
        {
            let rrc = s.est.as_ref().is_some_and(Established::rrc);
            // RFC 9853: a path_response to our check completes the move to
            // the address checked (its cookie proves the challenge was
            // received there, wherever the answer came from).
            if let Some(to) = self.path_answered(i) {
                self.move_session(i, handle, to, events_before);
                return r;
            }
            let Some(s) = self.slots.get_mut(i) else {
                return r;
            };
            if here {
                if let Some(b) = s.unvalidated.as_mut() {
                    b.received = b.received.saturating_add(len);
                }
                return r;
            }
            if !newest {
                return r;
            }
            if rrc {
                // The binding stays until the peer answers a challenge at
                // the new address (RFC 9853 §5.1); what arrives from there
                // is what may be sent there meanwhile (3x, §5).
                match s.check.as_mut() {
                    Some(c) if c.addr == from => c.received = c.received.saturating_add(len),
                    _ => {
                        let mut cookie = [0u8; 8];
                        self.rng.fill_bytes(&mut cookie);
                        if let Some(s) = self.slots.get_mut(i) {
                            s.check = Some(PathCheck::new(from, cookie, now, s.path_timer, len));
                        }
                        self.touch(i);
                    }
                }
                return r;
            }
            // A peer without RRC: it moves at once, but a new address gets
            // at most three times what came from it until the application
            // validates it (RFC 9146 §6, RFC 9175 §2.4); an address known
            // to receive (the handshake's, one validated since) gets all.
            s.unvalidated = (!s.is_validated(&from)).then_some(Budget {
                received: len,
                sent: 0,
            });
        }
        if here || !newest {
            return r;
        }
        self.move_session(i, handle, from, events_before);
        r
    }

    /// Moves the session in slot `i` to `to` (reported as
    /// `PeerAddressChanged`, with the events of the datagram that moved it
    /// naming the new address).
    fn move_session(&mut self, i: usize, handle: SessionHandle, to: A, events_before: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            let old = core::mem::replace(&mut s.peer, to.clone());
            // A `Connected` not reported yet names the new address itself;
            // a move back to where the application last saw the session is
            // no move.
            if !s.connected_unreported && s.moved_from.is_none() {
                s.moved_from = Some(old);
            } else if s.moved_from.as_ref() == Some(&to) {
                s.moved_from = None;
            }
        }
        self.touch(i);
        for e in self.events.iter_mut().skip(events_before) {
            if let Event::ApplicationData {
                handle: h, peer, ..
            } = e
            {
                if *h == handle {
                    *peer = to.clone();
                }
            }
        }
        // Another session at the new address is left alone: a CID session
        // is found by its CID, not its address, and plain records from the
        // address keep going to a session without CIDs there (live_at).
    }

    /// The address checked, once a path_response answered the check of
    /// slot `i` (RFC 9853 §5.1): the check is then done, and the address
    /// known to receive.
    #[cfg(feature = "cid")]
    fn path_answered(&mut self, i: usize) -> Option<A> {
        let s = self.slots.get_mut(i)?;
        if !s.check.as_ref().is_some_and(|c| c.answered) {
            return None;
        }
        let to = s.check.take()?.addr;
        s.validate(to.clone());
        s.unvalidated = None;
        Some(to)
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
            let taken = self
                .slots
                .iter()
                .any(|s| s.est.as_ref().is_some_and(|e| e.cid_rx() == &*cid))
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

    /// Queues a small stateless datagram (HelloVerifyRequest, alert),
    /// dropping the oldest one if the queue is full.
    fn queue_stateless(&mut self, to: A, out: [u8; STATELESS_MAX], len: usize) {
        if self.stateless.is_full() {
            self.stateless.pop_front();
        }
        let _ = self.stateless.push_back((to, out, len));
    }

    /// The session in the cache matching a ClientHello's session ID, if
    /// it may still be resumed: the stores are asked again whether its
    /// peer's identity is acceptable (a revoked identity cannot resume;
    /// the client then gets a full handshake).
    fn resumable(
        &mut self,
        now: Duration,
        handle: SessionHandle,
        from: &A,
        id: &[u8],
    ) -> Option<Session> {
        if !self.config.resumes() || id.is_empty() {
            return None;
        }
        let s = self.cache.get(id, now, self.config.session_lifetime)?;
        let cx = PeerContext::new(handle, from, now);
        let ok = match s.peer_identity() {
            Some(Identity::Psk(psk_id)) => self.store.may_resume(&cx, &psk_id),
            #[cfg(feature = "ecdhe")]
            Some(other) => self.trust.may_resume(&cx, &other),
            None => true,
        };
        if !ok {
            self.cache.remove(id);
            return None;
        }
        Some(s)
    }

    /// The stateless path: HelloVerifyRequest, or a new handshake once the
    /// cookie checks out.
    ///
    /// Not inlined: the new handshake's state lives in this frame, which
    /// is then on no other path.
    #[inline(never)]
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
            debug!("datagram dropped: not a ClientHello we take (no session for its address)");
            return Ok(());
        }
        let Ok(ch) = ClientHelloRepr::parse(body) else {
            self.stats.records_dropped += 1;
            debug!("datagram dropped: malformed ClientHello");
            return Ok(());
        };
        let stamp = ch
            .cookie
            .get(..4)
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .map_or(0, u32::from_be_bytes);
        // A cookie stamped no later than a ClientHello the replay cache had
        // to forget is not taken (see `remember_hello`).
        let forgotten = self.stamp_floor.is_some_and(|f| stamp <= f);
        if forgotten
            || !self
                .cookies
                .verify(&from, &ch, now, self.config.cookie_lifetime)
        {
            debug!(
                "ClientHello without a valid cookie (cookie length {}): HelloVerifyRequest",
                ch.cookie.len()
            );
            let cookie = self.cookies.cookie(&from, &ch, now);
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
                // The ClientHello's message_seq (RFC 6347 §4.2.2): a client
                // that already took a cookie sees a new request as the
                // next message, not a repeat.
                HandshakeHeader::whole(msg_type::HELLO_VERIFY_REQUEST, hh.message_seq, blen)
                    .emit(out.get_mut(REC_HEADER..).unwrap_or_default())
            })
            .and_then(|_| hvr.emit(out.get_mut(REC_HEADER + HS_HEADER..).unwrap_or_default()));
            if ok.is_ok() {
                self.queue_stateless(from, out, total);
            }
            return Ok(());
        }
        // A valid cookie. A copy of a ClientHello taken before whose
        // handshake is over (a copy for one in progress was its
        // retransmission) is a replay: dropped.
        let mut random = [0u8; 32];
        if let Some(r) = ch.random.get(..32) {
            random.copy_from_slice(r);
        }
        if self.replayed(now, &from, &random) {
            self.stats.client_hello_replays += 1;
            self.stats.records_dropped += 1;
            debug!("ClientHello dropped: a replay of one whose handshake is over");
            return Ok(());
        }
        // The handshake is built before any table changes: a ClientHello
        // the server cannot take (no suite in common, a bad extension)
        // makes no room and ends nothing; it counts against its host's
        // share like a failed handshake.
        let handle = SessionHandle::from_raw(self.next_handle);
        let cid = self.new_cid();
        let cached = self.resumable(now, handle, &from, ch.session_id);
        // Built where it stays until it moves into its slot: one copy of
        // the handshake state in this frame, none returned by value.
        let mut hs = Handshake::blank_server(handle, self.config.clone(), now);
        let started = hs.conn.start_server(
            #[cfg(feature = "ecdhe")]
            self.own_key.as_ref(),
            now,
            &mut self.rng,
            rh.sequence,
            hh.message_seq,
            body,
            &cid,
            cached,
        );
        #[cfg(feature = "cid")]
        let path_timer = self.config.path_check_timer(None);
        let slot = |life| Slot {
            handle,
            peer: from.clone(),
            origin: from.clone(),
            est: None,
            identity: None,
            suite: None,
            resumed: false,
            life,
            connected_unreported: false,
            moved_from: None,
            #[cfg(feature = "cid")]
            check: None,
            #[cfg(feature = "cid")]
            path_timer,
            #[cfg(feature = "cid")]
            unvalidated: None,
            #[cfg(feature = "cid")]
            validated: heapless::Deque::new(),
            marked: false,
            listed: false,
            older: NONE,
            newer: NONE,
        };
        match started {
            Ok(()) => {}
            Err(e) => {
                // Not remembered by the replay cache: a copy fails the
                // same way and gets the same alert, and a forged copy with
                // other extensions cannot turn the client's own
                // ClientHello into a "replay"; nor can ClientHellos that
                // take no slot fill the cache.
                let alert = e.code().map(|c| c.to_u8());
                self.remember_end(from.clone(), now, now, true);
                if let Some(code) = alert {
                    self.queue_alert(from.clone(), rh.sequence, code);
                }
                // Its `Closed` is reported if a session slot is free;
                // nothing is evicted for it: then it is only counted
                // (and logged), as a dropped record.
                self.bury();
                if self.slots.is_full() {
                    self.stats.records_dropped += 1;
                    debug!("ClientHello refused, session table full: not reported, counted");
                } else {
                    self.next_handle = self.next_handle.saturating_add(1);
                    let _ = self.slots.push(slot(Life::Ended(CloseReason::Error(e))));
                    self.touch(self.slots.len().wrapping_sub(1));
                }
                return Err(e);
            }
        }
        // A client starting over: its old session or handshake ends. A
        // handshake replacing one still in progress is no progress: it
        // inherits its predecessor's activity, hard end, place in the line
        // and hold time, so restarting cannot keep a slot from stalling.
        let mut inherited = None;
        if let Some(i) = self.live_at(&from) {
            if let Some(slot) = self.slots.get(i).filter(|s| s.est.is_none()) {
                inherited = self
                    .handshake_index(slot.handle)
                    .and_then(|j| self.handshakes.get(j))
                    .map(|h| (h.conn.last_activity, h.expires, h.admitted, h.since));
            }
            self.end(i, CloseReason::Replaced);
        }
        if !self.admit(now, &from) {
            self.stats.handshakes_refused += 1;
            self.stats.records_dropped += 1;
            debug!("handshake refused: no room (session table full, its host at its share)");
            return Ok(());
        }
        debug!(
            "cookie-verified ClientHello: handshake admitted (session {})",
            handle.raw()
        );
        // Taken: its copies from now on are retransmissions while the
        // handshake is in progress, replays once it is over. (A refused
        // one is not remembered: its client's retransmission is taken.)
        self.remember_hello(now, &from, random, stamp);
        self.next_handle = self.next_handle.saturating_add(1);
        let mut expires = now.saturating_add(self.config.linger_time());
        // A host whose half-open handshake just ended by its own doing
        // (failed, closed, timed out; not evicted) keeps that handshake's
        // place in the line: ending its own handshake and starting again
        // does not move it behind the others.
        let mut admitted = self
            .recent_of(now, &from)
            .filter(|e| e.keeps_place)
            .map(|e| e.admitted)
            .min()
            .unwrap_or(now);
        let mut since = self
            .recent_of(now, &from)
            .filter(|e| e.keeps_place)
            .map(|e| e.since)
            .min()
            .unwrap_or(now);
        if let Some((activity, end, first, held)) = inherited {
            hs.conn.last_activity = activity;
            expires = end;
            admitted = first;
            since = held;
        }
        hs.expires = expires;
        hs.admitted = admitted;
        hs.since = since;
        let _ = self.slots.push(slot(Life::Live));
        // Admission made room; checked here as well, so that no `Err(hs)`
        // copy of the handshake state needs room on the stack.
        if self.handshakes.len() < H {
            let _ = self.handshakes.push(hs);
        }
        Ok(())
    }

    /// Input: time passed: retransmissions, handshakes that give up,
    /// idle sessions, path checks. Every handshake or session that ends
    /// here gets its [`Event::Closed`] with the reason.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.clock = now;
        self.rotate_if_due(now);
        let idle = self.config.idle_timeout;
        let mut k = 0;
        while let Some(h) = self.handshakes.get_mut(k) {
            let handle = h.handle;
            match h.linger_until {
                Some(t) if now >= t => {
                    // Held long enough: the session no longer needs it.
                    self.remove_handshake(k);
                    continue;
                }
                Some(_) => {}
                None => {
                    let r = h.conn.handle_timeout(now);
                    let stale =
                        now >= h.expires || now.saturating_sub(h.conn.last_activity) >= idle;
                    self.sync_handshake(now, handle);
                    if let Err(e) = r {
                        // Normally ended by the sync above already (the
                        // handshake's outcome); first reason wins.
                        if let Some(i) = self.slot_index(handle) {
                            self.end(i, CloseReason::Error(e));
                        }
                    }
                    if stale {
                        // A half-open handshake just times out.
                        if let Some(i) = self.slot_index(handle) {
                            self.end(i, CloseReason::HandshakeTimeout);
                        }
                    }
                    if self.handshakes.get(k).map(|h| h.handle) != Some(handle) {
                        continue;
                    }
                }
            }
            k += 1;
        }
        // Path checks (RFC 9853 §5.3, §5.5): a new challenge with a fresh
        // cookie each timer, a few times; then the binding stays.
        #[cfg(feature = "cid")]
        for (i, s) in self.slots.iter_mut().enumerate() {
            let rng = &mut self.rng;
            let fresh = || {
                let mut cookie = [0u8; 8];
                rng.fill_bytes(&mut cookie);
                cookie
            };
            if s.check.as_mut().is_some_and(|c| c.on_timer(now, fresh)) {
                s.check = None;
            }
            mark(&mut self.pending, &mut self.pending_lost, s, i);
        }
        let due: heapless::Vec<usize, N> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.established()
                    .is_some_and(|e| e.is_open() && now.saturating_sub(e.last_activity()) >= idle)
            })
            .map(|(i, _)| i)
            .collect();
        for i in due {
            // A connected session says goodbye (close_notify).
            self.end(i, CloseReason::IdleTimeout);
        }
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
        self.clock = now;
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
        // Handshake flights (and their alerts) first, round robin.
        let n = self.handshakes.len();
        for k in 0..n {
            let j = (self.rr + k) % n;
            // One with nothing to send is passed over before its slot is
            // looked for.
            let Some(handle) = self
                .handshakes
                .get(j)
                .filter(|h| h.conn.has_output())
                .map(|h| h.handle)
            else {
                continue;
            };
            let Some(i) = self.slot_index(handle) else {
                continue;
            };
            let Endpoint {
                handshakes, slots, ..
            } = self;
            let (Some(h), Some(slot)) = (handshakes.get_mut(j), slots.get_mut(i)) else {
                continue;
            };
            let sent = match (h.linger_until, slot.est.as_mut()) {
                (None, _) => h.conn.poll_transmit(buf),
                (Some(_), Some(est)) if h.conn.has_output() => {
                    h.conn.poll_transmit_lingering(est, buf)
                }
                (Some(_), _) => Ok(None),
            };
            match sent {
                Ok(Some(len)) => {
                    self.rr = (j + 1) % n;
                    return Ok(Some(Transmit {
                        to: slot.peer.clone(),
                        len,
                    }));
                }
                Ok(None) => {}
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(e) if h.linger_until.is_none() => {
                    // This handshake cannot send: it fails on its own.
                    let _ = h.conn.fail(e);
                    h.conn.stop_sending();
                    self.sync_handshake(now, handle);
                }
                Err(_) => {
                    // A lingering last flight that cannot be resent: the
                    // session goes on without it.
                    h.conn.stop_sending();
                }
            }
        }
        // RFC 9853 §5.4: path_responses at once, each to where its
        // challenge came from.
        #[cfg(feature = "cid")]
        while let Some((handle, to, cookie)) = self.rrc_answers.front() {
            let sealed = match self
                .slots
                .iter_mut()
                .find(|s| s.handle == *handle && s.live())
                .and_then(|s| s.est.as_mut())
            {
                Some(est) => est.seal_path_response(&self.config, *cookie, buf),
                None => Err(Error::Closed),
            };
            match sealed {
                Ok(len) => {
                    let to = to.clone();
                    self.rrc_answers.pop_front();
                    self.stats.bytes_sent += len as u64;
                    return Ok(Some(Transmit { to, len }));
                }
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(_) => {
                    self.rrc_answers.pop_front();
                }
            }
        }
        // From here on only the marked slots have anything to send.
        self.refresh_pending();
        // Return Routability Check challenges to new addresses (RFC 9853).
        #[cfg(feature = "cid")]
        for _ in 0..self.pending.len() {
            let Some(s) = self.next_pending().and_then(|i| self.slots.get_mut(i)) else {
                continue;
            };
            let (Some(est), Some(c)) = (s.est.as_mut(), s.check.as_mut()) else {
                continue;
            };
            if !c.due || !s.life.eq(&Life::Live) {
                continue;
            }
            let Some(&cookie) = c.cookies.last() else {
                continue;
            };
            let m = RrcRepr {
                msg_type: rrc::PATH_CHALLENGE,
                cookie,
            };
            let n = match est.seal_rrc(&self.config, &m, buf) {
                Ok(n) => n,
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(_) => {
                    c.due = false;
                    continue;
                }
            };
            let budget = Budget {
                received: c.received,
                sent: 0,
            };
            c.due = false;
            if !budget.allows(c.sent, n as u64) {
                // Over the limit: sent once more arrives from there.
                self.stats.amplification_limited += 1;
                debug!("datagram held back: over 3x what the new address sent");
                continue;
            }
            c.sent = c.sent.saturating_add(n as u64);
            self.stats.bytes_sent += n as u64;
            return Ok(Some(Transmit {
                to: c.addr.clone(),
                len: n,
            }));
        }
        // Sealed application records, several of one session per datagram
        // (before alerts: a closing session's last records precede its
        // close_notify).
        while let Some((tag, first)) = self.txq.front() {
            let at = self.slot_with(SessionHandle::from_raw(tag), |s| s.est.is_some());
            let Some(to) = at.and_then(|i| self.slots.get(i)).map(|s| s.peer.clone()) else {
                self.txq.purge(tag);
                continue;
            };
            // An unvalidated address (a move without RRC) gets at most
            // three times what came from it: records beyond are dropped.
            #[cfg(feature = "cid")]
            if let Some(b) = self
                .slot_with(SessionHandle::from_raw(tag), |_| true)
                .and_then(|i| self.slots.get_mut(i))
                .and_then(|s| s.unvalidated.as_mut())
            {
                let n = first.len() as u64;
                if !b.allows(b.sent, n) {
                    self.stats.amplification_limited += 1;
                    debug!("datagram dropped: over 3x what the new address sent");
                    self.txq.remove(0);
                    continue;
                }
                b.sent = b.sent.saturating_add(n);
            }
            let need = first.len();
            let out = buf
                .get_mut(..need)
                .ok_or(Error::BufferTooSmall { needed: need })?;
            out.copy_from_slice(first);
            self.txq.remove(0);
            let limit = self.config.mtu.min(buf.len());
            let mut pos = need;
            let mut records = 1;
            while let Some((next, rec)) = self.txq.front() {
                let end = pos + rec.len();
                // At most half of a receive queue's records in one
                // datagram: the peer's share of it when it is shared.
                if next != tag || end > limit || records >= MAX_RECORDS_PER_DATAGRAM {
                    break;
                }
                records += 1;
                if let Some(dst) = buf.get_mut(pos..end) {
                    dst.copy_from_slice(rec);
                }
                pos = end;
                self.txq.remove(0);
            }
            self.stats.bytes_sent += pos as u64;
            return Ok(Some(Transmit { to, len: pos }));
        }
        // Session alerts (an alert that cannot be sealed is dropped).
        for _ in 0..self.pending.len() {
            let Some(i) = self.next_pending() else { break };
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            let Some(est) = s.est.as_mut() else { continue };
            match est.poll_alert(&self.config, buf) {
                Ok(Some(len)) => {
                    self.stats.bytes_sent += len as u64;
                    let to = s.peer.clone();
                    // Sealing may have taken its last sequence number.
                    self.relist(i);
                    return Ok(Some(Transmit { to, len }));
                }
                Ok(None) => {}
                Err(e @ Error::BufferTooSmall { .. }) => return Err(e),
                Err(_) => {}
            }
        }
        // Handshakes of ended sessions that sent their last alert go, and
        // reported sessions with nothing left to send (every ended slot is
        // marked; a handshake always has its slot).
        let mut ended = false;
        for _ in 0..self.pending.len() {
            let Some(s) = self.next_pending().and_then(|i| self.slots.get(i)) else {
                continue;
            };
            if s.live() {
                continue;
            }
            ended = true;
            if let Some(j) = self
                .handshake_index(s.handle)
                .filter(|&j| self.handshakes.get(j).is_some_and(|h| !h.conn.has_output()))
            {
                self.remove_handshake(j);
            }
        }
        if ended {
            self.bury();
        }
        Ok(None)
    }

    /// Output: the next event. For each handle, in order: `Connected`,
    /// `PeerAddressChanged`, its `ApplicationData`, then `Closed` (once).
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        // Only marked slots have a `Connected`, a move or a `Closed` to
        // report (see `Slot::needs_attention`).
        if self.pending_lost {
            self.refresh_pending();
        }
        let n = self.pending.len();
        for _ in 0..n {
            let Some(s) = self.next_pending().and_then(|i| self.slots.get_mut(i)) else {
                continue;
            };
            if s.connected_unreported {
                s.connected_unreported = false;
                if let Some(suite) = s.suite {
                    info!(
                        "server session {} connected: {:?}{}",
                        s.handle.raw(),
                        suite,
                        if s.resumed { ", resumed" } else { "" }
                    );
                    return Some(Event::Connected {
                        handle: s.handle,
                        peer: s.peer.clone(),
                        identity: s.identity.clone(),
                        suite,
                        resumed: s.resumed,
                    });
                }
            }
        }
        for _ in 0..n {
            let Some(s) = self.next_pending().and_then(|i| self.slots.get_mut(i)) else {
                continue;
            };
            if let Some(old) = s.moved_from.take() {
                return Some(Event::PeerAddressChanged {
                    handle: s.handle,
                    old,
                    new: s.peer.clone(),
                });
            }
        }
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        if let Some(t) = self.graveyard.pop_front() {
            self.rxq.purge(t.handle.raw());
            t.reason.log("server", t.handle, t.connected);
            return Some(Event::Closed {
                handle: t.handle,
                peer: t.peer,
                reason: t.reason,
            });
        }
        let mut ended = None;
        for _ in 0..n {
            let Some(i) = self.next_pending() else { break };
            if self
                .slots
                .get(i)
                .is_some_and(|s| matches!(s.life, Life::Ended(_)))
            {
                ended = Some(i);
                break;
            }
        }
        let s = self.slots.get_mut(ended?)?;
        let Life::Ended(reason) = s.life else {
            return None;
        };
        s.life = Life::Reported;
        reason.log("server", s.handle, s.suite.is_some());
        let e = Event::Closed {
            handle: s.handle,
            peer: s.peer.clone(),
            reason,
        };
        self.rxq.purge(s.handle.raw());
        self.bury();
        Some(e)
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
        // The least recently active open session is the first to idle out
        // (one whose last sequence number went while sealing an alert or
        // a path message is still listed until its end: passed over).
        let mut at = self.idle_oldest;
        let mut first = None;
        while let Some(s) = self.slots.get(at) {
            if let Some(t) = s.idle_since() {
                first = Some(t.saturating_add(idle));
                break;
            }
            at = s.newer;
        }
        let ss = core::iter::once(first);
        // A slot with a path check is marked (all are looked at when an
        // index was lost).
        #[cfg(feature = "cid")]
        let checks = {
            let all = self.pending_lost.then(|| self.slots.iter());
            let marked = (!self.pending_lost)
                .then(|| self.pending.iter().filter_map(|&i| self.slots.get(i)));
            all.into_iter()
                .flatten()
                .chain(marked.into_iter().flatten())
                .map(|s| s.check.as_ref().map(|c| c.next_at))
        };
        #[cfg(not(feature = "cid"))]
        let checks = core::iter::empty();
        hs.chain(ss).chain(checks).flatten().min()
    }

    // ---- commands ------------------------------------------------------------

    /// Seals application data for session `handle` at once and queues the
    /// record (in a queue shared by all sessions, `Q` bytes): `Error::Full` when it has no room, until `poll_transmit`
    /// drains it; `NotConnected` during the handshake; `Closed` once the
    /// session ended; `UnknownPeer` for a handle the endpoint does not hold.
    pub fn send(
        &mut self,
        _now: Duration,
        handle: SessionHandle,
        data: &[u8],
    ) -> Result<(), Error> {
        let Some(i) = self.slot_with(handle, |s| s.life != Life::Reported) else {
            return Err(Error::UnknownPeer);
        };
        self.last_used = i;
        let s = self.slots.get_mut(i).ok_or(Error::Internal)?;
        if !s.live() {
            return Err(Error::Closed);
        }
        let r = match s.est.as_mut() {
            Some(est) => est.send(&self.config, data, &mut self.txq, handle.raw()),
            None => Err(Error::NotConnected),
        };
        // Its sequence numbers may have run out.
        self.sync_session(i);
        r
    }

    /// Copies the next application record of session `handle` into `buf`
    /// (`Ok(None)` when none is waiting).
    ///
    /// Records not read yet wait in the queue shared by all sessions; with
    /// other sessions established, one session may hold at most half of it
    /// (see [`Endpoint`]): read promptly, or further records are dropped
    /// (counted in [`Stats::rx_overflow`]). Records of a session that ended
    /// stay readable until its `Closed` event is taken.
    pub fn recv(&mut self, handle: SessionHandle, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        let known = self
            .slot_with(handle, |s| s.life != Life::Reported)
            .is_some()
            || self.graveyard.iter().any(|t| t.handle == handle);
        if !known {
            return Err(Error::UnknownPeer);
        }
        self.rxq.take(handle.raw(), buf)
    }

    /// Ends session `handle`: close_notify to the peer if the handshake
    /// completed (its `Closed` event, [`CloseReason::LocalClose`], follows).
    pub fn close(&mut self, _now: Duration, handle: SessionHandle) -> Result<(), Error> {
        self.known(handle).ok_or(Error::UnknownPeer)?;
        let i = self.slot_index(handle).ok_or(Error::UnknownPeer)?;
        if let Some(j) = self.handshake_index(handle) {
            if let Some(h) = self
                .handshakes
                .get_mut(j)
                .filter(|h| h.linger_until.is_none())
            {
                h.conn.close();
            }
        }
        self.end(i, CloseReason::LocalClose);
        Ok(())
    }

    // ---- accessors -----------------------------------------------------------

    /// The live session (or handshake) at `peer`, if any.
    pub fn session_handle(&self, peer: &A) -> Option<SessionHandle> {
        self.live_at(peer)
            .and_then(|i| self.slots.get(i))
            .map(|s| s.handle)
    }

    /// The current address of session `handle`.
    pub fn peer_address(&self, handle: SessionHandle) -> Option<&A> {
        self.known(handle).map(|s| &s.peer)
    }

    /// The application validated the current address of session `handle`
    /// (for instance with a fresh CoAP Echo answered from it, RFC 9175
    /// §2.4): the limit on what is sent there after a Connection ID move
    /// without the Return Routability Check is lifted, and stays lifted
    /// when the session comes back to it later (as for the address its
    /// handshake came from and, with RRC, addresses that answered a path
    /// check; a session remembers a few). `UnknownPeer` for an unknown
    /// handle.
    pub fn address_validated(&mut self, handle: SessionHandle) -> Result<(), Error> {
        let s = self
            .slots
            .iter_mut()
            .find(|s| s.handle == handle && s.life != Life::Reported)
            .ok_or(Error::UnknownPeer)?;
        #[cfg(feature = "cid")]
        s.validate(s.peer.clone());
        #[cfg(not(feature = "cid"))]
        let _ = s;
        Ok(())
    }

    /// What the handshake of session `handle` proved about its peer (see
    /// [`Identity`]); `None` while the handshake has not verified the
    /// peer's Finished, for a client that did not authenticate (server-only
    /// raw public keys), and for an unknown handle.
    pub fn peer_identity(&self, handle: SessionHandle) -> Option<&Identity> {
        self.known(handle)
            .filter(|s| s.est.is_some())?
            .identity
            .as_ref()
    }

    /// The suite of session `handle`, once connected.
    pub fn suite(&self, handle: SessionHandle) -> Option<CipherSuite> {
        self.known(handle).filter(|s| s.est.is_some())?.suite
    }

    /// True when session `handle` is established and open.
    pub fn is_connected(&self, handle: SessionHandle) -> bool {
        self.slots
            .iter()
            .any(|s| s.handle == handle && s.established().is_some_and(Established::is_open))
    }

    /// True when session `handle` resumed an earlier session (abbreviated
    /// handshake).
    pub fn is_resumed(&self, handle: SessionHandle) -> bool {
        self.known(handle)
            .is_some_and(|s| s.est.is_some() && s.resumed)
    }

    /// Number of sessions held for resumption.
    pub fn cached_sessions(&self) -> usize {
        self.cache.len()
    }

    /// Number of live sessions: established ones and handshakes in
    /// progress (ended ones waiting for their `Closed` event not counted).
    pub fn sessions(&self) -> usize {
        self.slots.iter().filter(|s| s.live()).count()
    }

    /// Handshake slots in use (in progress, lingering to resend their
    /// last flight, or sending a failed handshake's alert).
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

#[cfg(test)]
#[cfg(feature = "cid")]
mod tests {
    use super::*;
    use crate::psk::StaticPsk;
    use crate::wire::rrc::{PATH_CHALLENGE, PATH_RESPONSE};
    use crate::Client;
    use cssf_netsim::SimRng;

    static KEYS: [(&[u8], &[u8]); 1] = [(b"id", b"key-key-key-key!")];
    const NOW: Duration = Duration::ZERO;

    /// Catches the RRC messages of a datagram opened by a session.
    #[derive(Default)]
    struct Catch(heapless::Vec<RrcRepr, 8>);

    impl Upcall for Catch {
        fn data(&mut self, _: &[u8]) -> bool {
            false
        }
        fn old_handshake(&mut self, _: u16, _: &[u8]) -> Result<bool, Error> {
            Ok(false)
        }
        fn rrc(&mut self, m: RrcRepr) {
            self.0.push(m).unwrap();
        }
    }

    fn opened(est: &mut Established, d: &mut [u8]) -> heapless::Vec<RrcRepr, 8> {
        let mut up = Catch::default();
        est.handle_datagram(NOW, d, &mut Stats::default(), &mut up)
            .unwrap();
        up.0
    }

    /// A server endpoint (address 0) and a client (address 1) of `cfg`,
    /// their handshake run to the end over a lossless exchange.
    fn pair(
        cfg: &Config,
        server_seed: u64,
        client_seed: u64,
    ) -> (
        Endpoint<u8, StaticPsk<'static>, SimRng, 2>,
        Client<u8, SimRng>,
    ) {
        let mut s = Endpoint::new(
            cfg.clone(),
            StaticPsk::new(&KEYS),
            SimRng::new(server_seed),
            NOW,
        )
        .unwrap();
        let mut c = Client::new(
            cfg.clone(),
            b"id",
            b"key-key-key-key!",
            0u8,
            SimRng::new(client_seed),
            NOW,
        )
        .unwrap();
        let mut buf = [0u8; 1500];
        for _ in 0..8 {
            while let Some(t) = c.poll_transmit(NOW, &mut buf).unwrap() {
                s.handle_datagram(NOW, 1, &mut buf[..t.len]).unwrap();
            }
            while let Some(t) = s.poll_transmit(NOW, &mut buf).unwrap() {
                c.handle_datagram(NOW, 0, &mut buf[..t.len]).unwrap();
            }
        }
        (s, c)
    }

    /// `challenges` of `cookies`, sealed one record each into one datagram.
    fn challenges(est: &mut Established, cfg: &Config, cookies: &[[u8; 8]]) -> ([u8; 512], usize) {
        let mut d = [0u8; 512];
        let mut n = 0;
        for c in cookies {
            let m = RrcRepr {
                msg_type: PATH_CHALLENGE,
                cookie: *c,
            };
            n += est.seal_rrc(cfg, &m, &mut d[n..]).unwrap();
        }
        (d, n)
    }

    #[test]
    fn each_path_challenge_is_answered_once_to_where_it_came_from() {
        let cfg = Config {
            suites: heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap(),
            cid_len: Some(4),
            ..Config::default()
        };
        let (mut s, mut c) = pair(&cfg, 1, 2);
        let mut buf = [0u8; 1500];
        assert!(c.is_connected());
        while s.poll_event().is_some() {}

        // The server answers two challenges of one datagram from address
        // 2, each once, there (and checks address 2 itself).
        let (mut d, n) = challenges(c.established().unwrap(), &cfg, &[[1; 8], [2; 8]]);
        let mut replay = d;
        s.handle_datagram(NOW, 2, &mut d[..n]).unwrap();
        let mut got: std::vec::Vec<RrcRepr> = std::vec::Vec::new();
        while let Some(t) = s.poll_transmit(NOW, &mut buf).unwrap() {
            assert_eq!(t.to, 2);
            got.extend(opened(c.established().unwrap(), &mut buf[..t.len]));
        }
        let answers: std::vec::Vec<_> = got
            .iter()
            .filter(|m| m.msg_type == PATH_RESPONSE)
            .map(|m| m.cookie)
            .collect();
        assert_eq!(answers, [[1; 8], [2; 8]]);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].msg_type, PATH_RESPONSE);
        assert!(got.iter().any(|m| m.msg_type == PATH_CHALLENGE));
        // A replayed copy is answered by nobody.
        s.handle_datagram(NOW, 3, &mut replay[..n]).unwrap();
        assert_eq!(s.poll_transmit(NOW, &mut buf).unwrap(), None);

        // The client answers two challenges of one datagram, each once.
        let h = s.session_handle(&1).unwrap();
        let i = s.slot_index(h).unwrap();
        let est = s.slots[i].est.as_mut().unwrap();
        let (mut d, n) = challenges(est, &cfg, &[[3; 8], [4; 8]]);
        c.handle_datagram(NOW, 0, &mut d[..n]).unwrap();
        let mut answers = std::vec::Vec::new();
        while let Some(t) = c.poll_transmit(NOW, &mut buf).unwrap() {
            let est = s.slots[i].est.as_mut().unwrap();
            answers.extend(opened(est, &mut buf[..t.len]));
        }
        let want = [[3; 8], [4; 8]].map(|cookie| RrcRepr {
            msg_type: PATH_RESPONSE,
            cookie,
        });
        assert_eq!(answers, want);
    }

    /// The sequence numbers of the records of one datagram.
    fn record_seqs(d: &[u8]) -> std::vec::Vec<u64> {
        let mut out = std::vec::Vec::new();
        let mut rest = d;
        while rest.len() >= 13 {
            let mut seq = [0u8; 8];
            seq[2..].copy_from_slice(&rest[5..11]);
            out.push(u64::from_be_bytes(seq));
            let len = 13 + usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            rest = rest.get(len..).unwrap_or(&[]);
        }
        out
    }

    #[test]
    fn a_session_ends_before_its_sequence_numbers_wrap() {
        // RFC 6347 §4.1: a sequence number must not wrap; the association
        // is abandoned. The session's last number carries its
        // close_notify, and the end is reported like every other.
        let cfg = Config {
            suites: heapless::Vec::from_slice(&[CipherSuite::PskWithAes128Ccm8]).unwrap(),
            ..Config::default()
        };
        let (mut s, mut c) = pair(&cfg, 1, 2);
        let mut buf = [0u8; 1500];
        assert!(c.is_connected());
        while c.poll_event().is_some() {}
        while s.poll_event().is_some() {}
        let h = s.session_handle(&1).unwrap();
        let i = s.slot_index(h).unwrap();
        let last = (1u64 << 48) - 1;

        // The server: two numbers left. One record goes, then the session
        // ends with close_notify at the last number.
        s.slots[i].est.as_mut().unwrap().write_seq = last - 1;
        s.send(NOW, h, b"last").unwrap();
        assert!(s.send(NOW, h, b"wrapped").is_err());
        let mut seqs = std::vec::Vec::new();
        while let Some(t) = s.poll_transmit(NOW, &mut buf).unwrap() {
            seqs.extend(record_seqs(&buf[..t.len]));
            let _ = c.handle_datagram(NOW, 0, &mut buf[..t.len]);
        }
        assert_eq!(seqs, [last - 1, last]);
        let ended = core::iter::from_fn(|| s.poll_event()).any(|e| {
            matches!(e, Event::Closed { handle, reason: CloseReason::SequenceExhausted, .. } if handle == h)
        });
        assert!(ended, "the server reported the end");
        let mut r = [0u8; 16];
        assert_eq!(c.recv(&mut r).unwrap(), Some(4));
        assert!(!c.is_connected(), "the client got close_notify");

        // A path message after the end (RFC 9853) takes no number: the
        // last one stays close_notify's.
        #[cfg(feature = "cid")]
        {
            let (mut s, _c) = pair(&cfg, 5, 6);
            let h = s.session_handle(&1).unwrap();
            let i = s.slot_index(h).unwrap();
            let est = s.slots[i].est.as_mut().unwrap();
            est.write_seq = last - 1;
            s.send(NOW, h, b"last").unwrap();
            let m = RrcRepr {
                msg_type: crate::wire::rrc::PATH_RESPONSE,
                cookie: [7; 8],
            };
            let mut d = [0u8; 128];
            let est = s.slots[i].est.as_mut().unwrap();
            assert!(est.seal_rrc(&s.config, &m, &mut d).is_err());
            let mut seqs = std::vec::Vec::new();
            while let Some(t) = s.poll_transmit(NOW, &mut buf).unwrap() {
                seqs.extend(record_seqs(&buf[..t.len]));
            }
            assert_eq!(seqs, [last - 1, last], "close_notify kept the last number");
        }

        // The client alike.
        let (_s, mut c) = pair(&cfg, 3, 4);
        while c.poll_event().is_some() {}
        c.established().unwrap().write_seq = last - 1;
        c.send(NOW, b"last").unwrap();
        assert!(c.send(NOW, b"wrapped").is_err());
        let mut seqs = std::vec::Vec::new();
        while let Some(t) = c.poll_transmit(NOW, &mut buf).unwrap() {
            seqs.extend(record_seqs(&buf[..t.len]));
        }
        assert_eq!(seqs, [last - 1, last]);
        let ended = core::iter::from_fn(|| c.poll_event()).any(|e| {
            matches!(
                e,
                Event::Closed {
                    reason: CloseReason::SequenceExhausted,
                    ..
                }
            )
        });
        assert!(ended, "the client reported the end");
    }
}

#[cfg(test)]
mod replay_cache_tests {
    use super::*;
    use crate::psk::StaticPsk;
    use cssf_netsim::SimRng;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// An address whose host is its first byte (ports: the second).
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct HostPort(u8, u8);

    impl PeerAddress for HostPort {
        fn feed(&self, f: &mut dyn FnMut(&[u8])) {
            f(&[self.0, self.1])
        }
        fn same_host(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }

    const C: usize = 8;
    type Server = Endpoint<HostPort, StaticPsk<'static>, SimRng, 2, RejectAll, 4, 2, 2048, C>;

    /// The cache as it was kept before entries counted their host's
    /// entries: every entry compared with every other to make room.
    #[derive(Default)]
    struct Model {
        seen: Vec<(HostPort, u32, Duration)>,
        floor: Option<u32>,
    }

    impl Model {
        fn remember(&mut self, life: Duration, now: Duration, from: HostPort, stamp: u32) {
            while self
                .seen
                .first()
                .is_some_and(|e| now.saturating_sub(e.2) > life.saturating_add(SECOND))
            {
                self.seen.remove(0);
            }
            if self.seen.len() == C {
                let held = |a: &HostPort| {
                    self.seen.iter().filter(|o| o.0.same_host(a)).count()
                        + usize::from(a.same_host(&from))
                };
                let most = self.seen.iter().map(|e| held(&e.0)).max().unwrap_or(0);
                let crowded = (most >= 2)
                    .then(|| self.seen.iter().position(|e| held(&e.0) == most))
                    .flatten();
                let gone = self.seen.remove(crowded.unwrap_or(0));
                if crowded.is_none() {
                    self.floor = Some(self.floor.map_or(gone.1, |f| f.max(gone.1)));
                }
            }
            self.seen.push((from, stamp, now));
        }

        fn forget(&mut self, addr: HostPort) {
            self.seen.retain(|e| e.0 != addr);
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Remember { host: u8, port: u8, later_ms: u64 },
        Forget { host: u8, port: u8 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..5u8, 0..3u8, 0..4000u64)
                .prop_map(|(host, port, later_ms)| Step::Remember { host, port, later_ms }),
            1 => (0..5u8, 0..3u8).prop_map(|(host, port)| Step::Forget { host, port }),
        ]
    }

    proptest! {
        /// Making room in a full cache takes one pass, and forgets the
        /// same entry as comparing every entry with every other did (the
        /// oldest of the host holding the most, or the oldest of all and
        /// a stamp floor when every host holds one); each entry's count of
        /// its host's entries stays exact through every way entries leave.
        #[test]
        fn the_replay_cache_forgets_as_the_pairwise_count_did(
            steps in prop::collection::vec(step(), 1..200),
        ) {
            let cfg = Config {
                cookie_lifetime: Duration::from_secs(5),
                ..Config::default()
            };
            let life = cfg.cookie_lifetime;
            let mut ep: Server =
                Endpoint::new(cfg, StaticPsk::new(&[]), SimRng::new(1), Duration::ZERO).unwrap();
            let mut model = Model::default();
            let mut now = Duration::ZERO;
            for (n, s) in steps.into_iter().enumerate() {
                match s {
                    Step::Remember { host, port, later_ms } => {
                        now += Duration::from_millis(later_ms);
                        let stamp = now.as_secs() as u32;
                        let from = HostPort(host, port);
                        let mut random = [0u8; 32];
                        random[..8].copy_from_slice(&(n as u64).to_be_bytes());
                        ep.remember_hello(now, &from, random, stamp);
                        model.remember(life, now, from, stamp);
                    }
                    Step::Forget { host, port } => {
                        ep.forget_hellos_of(&HostPort(host, port));
                        model.forget(HostPort(host, port));
                    }
                }
                let got: Vec<_> = ep.seen.iter().map(|e| (e.addr, e.stamp, e.at)).collect();
                prop_assert_eq!(&got, &model.seen);
                prop_assert_eq!(ep.stamp_floor, model.floor);
                for e in ep.seen.iter() {
                    let count = ep.seen.iter().filter(|o| o.addr.same_host(&e.addr)).count();
                    prop_assert_eq!(e.held, count);
                }
            }
        }
    }
}
