//! The CSSF device on a host: CoAP on one UDP socket, CoAPs (DTLS 1.2 PSK)
//! on another, both feeding one cssf-coap endpoint, with a cssf-auth
//! [`Authorizer`] deciding every request and notification from what each
//! DTLS session proved, and a cssf-store file keeping keys, tokens and
//! counters.
//!
//! How a datagram travels (DESIGN.md, "end-to-end flow"):
//!
//! ```text
//! UDP :5684 -> cssf-dtls Endpoint (PSK from --psk, or from a token's PoP key)
//!           -> Connected{handle, identity} -> Authorizer::on_connected
//!           -> application data -> cssf-coap Endpoint (peer = Secure(session))
//! UDP :5683 -> cssf-coap Endpoint (peer = Plain(addr))
//! cssf-coap Event::Request -> Authorizer::decide -> resource
//!           -> respond -> poll_transmit -> DTLS send / UDP send
//! DTLS Closed{handle} -> Authorizer::on_closed, CoAP close_peer
//! ```
//!
//! Who may do what (the README's "Authorization" section):
//!
//! - a session that proved a provisioned `--psk IDENTITY:HEXKEY[:RIGHTS]`
//!   or a `--trust FILE[:RIGHTS]` key gets those rights (default `*:GET`,
//!   read-only);
//! - a session keyed by an ACE token (its PoP key: the kid, RFC 9202's
//!   `cnf` identity, the token itself, or a raw public key) gets the
//!   token's scope, checked at every request;
//! - everyone, plain CoAP included, gets the public rights (`--public`;
//!   default `/authz-info:POST` with an AS key, and everything without one:
//!   a development device);
//! - an OSCORE request (RFC 8613) on the plain CoAP port, verified with a
//!   `--oscore-context FILE` context, gets the public rights and the
//!   file's `scope` (none: the public rights only); refused: 4.03,
//!   protected. oneM2M policies (`--acp`) do not apply to it.
//!
//! A grant lives exactly as long as its DTLS session.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cssf_auth::authorizer::{Authorizer, Granted, Proof, Requester, Rights, Verdict};
use cssf_auth::dtls::Clock;
use cssf_auth::{AuthEvent, AuthzInfo, KeyEntry, Method};
use cssf_coap::endpoint::{
    Event as CoapEvent, Methods, Received, RequestId, RequestSecurity, Resource, Response,
};
use cssf_coap::oscore::{SecurityContext, SenderSequence};
use cssf_coap::{Block, Code, ContentFormat, Message, OptionNumber};
use cssf_dtls::{
    CloseReason, Event as DtlsEvent, Identity, PeerContext, PskStore, SessionHandle, TrustStore,
    MAX_PSK_LEN,
};
use rand_core::OsRng;
use tokio::net::UdpSocket;

use crate::fail;
use crate::keys::Psk;
use crate::nodestore::NodeStore;
use crate::oscore_file::OscoreContextFile;
use crate::plugtest::{self, Answer, Handled, Plugtest};
use crate::token::kid_text;
use crate::util::{unix_now, Result};

/// Largest CoAP message (fits a DTLS record under the default 1152-byte MTU
/// with a 1024-byte block).
pub const MAX_MESSAGE: usize = 1152;

/// The CoAP endpoint of the device: 16 slots per table, no client uploads,
/// and 512 remembered message IDs with their responses (RFC 7252 §4.5
/// deduplication over EXCHANGE_LIFETIME, 247 s): a 4096-byte Block2
/// transfer in 64-byte blocks alone takes 64. Past about two requests a
/// second, sustained, requests get 5.03 with Max-Age.
pub type DeviceCoap = cssf_coap::Endpoint<Peer, OsRng, 16, 512, MAX_MESSAGE, 0>;
/// The DTLS endpoint of the device (`N` concurrent sessions, 8 by
/// default, `H` handshakes in progress at once): PSK only, or PSK and raw
/// public keys trusted through `T`.
pub type DeviceDtls<
    T = cssf_dtls::RejectAll,
    const N: usize = 8,
    const H: usize = 2,
    const C: usize = { cssf_dtls::CLIENT_HELLO_REPLAY_CACHE },
> = cssf_dtls::Endpoint<
    SocketAddr,
    NodePsk,
    OsRng,
    N,
    T,
    4,
    H,
    { cssf_dtls::APP_QUEUE_CAPACITY },
    C,
>;

/// The session capacities `--max-sessions` offers (each its own build of
/// the endpoint): a device's 8, then gateway sizes.
pub const SESSION_SIZES: [usize; 4] = [8, 64, 1024, MAX_SESSIONS];
/// The largest of [`SESSION_SIZES`].
pub const MAX_SESSIONS: usize = 16384;

/// Pinned peer public keys (RFC 7250 §6), owned.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(pub Vec<p256::PublicKey>);

impl<A> TrustStore<A> for TrustedKeys {
    fn is_trusted(&self, _: &PeerContext<'_, A>, key: &p256::PublicKey) -> bool {
        self.0.iter().any(|k| k == key)
    }
}

/// The device's trust store for client raw public keys: the `--trust`
/// keys, and the PoP keys of live ACE tokens (RFC 9202 §3.2).
#[derive(Clone)]
pub struct DeviceTrust {
    keys: Vec<p256::PublicKey>,
    auth: Rc<RefCell<Authz>>,
    clock: Rc<Cell<Clock>>,
}

impl TrustStore<SocketAddr> for DeviceTrust {
    fn is_trusted(&self, cx: &PeerContext<'_, SocketAddr>, key: &p256::PublicKey) -> bool {
        if self.keys.iter().any(|k| k == key) {
            return true;
        }
        let Some((x, y)) = cssf_auth::pop::coordinates(key) else {
            return false;
        };
        let wall = self.clock.get().wall;
        self.auth
            .try_borrow()
            .is_ok_and(|a| a.trusts_pop_key(&x, &y, cx.now, wall))
    }
}

/// The DTLS endpoint whatever its capacities (`--max-sessions` picks one of
/// four builds at run time): what the driver loop uses. PSK and raw public
/// keys are one type already (`EndpointBuilder`); only the const capacities
/// need this.
trait DtlsServer {
    fn handle_datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        d: &mut [u8],
    ) -> std::result::Result<(), cssf_dtls::Error>;
    fn handle_timeout(&mut self, now: Duration);
    fn poll_transmit(
        &mut self,
        now: Duration,
        buf: &mut [u8],
    ) -> std::result::Result<Option<cssf_dtls::Transmit<SocketAddr>>, cssf_dtls::Error>;
    fn poll_event(&mut self) -> Option<DtlsEvent<SocketAddr>>;
    fn poll_timeout(&self) -> Option<Duration>;
    fn send(
        &mut self,
        now: Duration,
        session: SessionHandle,
        data: &[u8],
    ) -> std::result::Result<(), cssf_dtls::Error>;
    fn recv(
        &mut self,
        session: SessionHandle,
        buf: &mut [u8],
    ) -> std::result::Result<Option<usize>, cssf_dtls::Error>;
}

impl<const N: usize, const H: usize, const C: usize> DtlsServer
    for DeviceDtls<DeviceTrust, N, H, C>
{
    fn handle_datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        d: &mut [u8],
    ) -> std::result::Result<(), cssf_dtls::Error> {
        cssf_dtls::Endpoint::handle_datagram(self, now, from, d)
    }
    fn handle_timeout(&mut self, now: Duration) {
        cssf_dtls::Endpoint::handle_timeout(self, now);
    }
    fn poll_transmit(
        &mut self,
        now: Duration,
        buf: &mut [u8],
    ) -> std::result::Result<Option<cssf_dtls::Transmit<SocketAddr>>, cssf_dtls::Error> {
        cssf_dtls::Endpoint::poll_transmit(self, now, buf)
    }
    fn poll_event(&mut self) -> Option<DtlsEvent<SocketAddr>> {
        cssf_dtls::Endpoint::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Duration> {
        cssf_dtls::Endpoint::poll_timeout(self)
    }
    fn send(
        &mut self,
        now: Duration,
        session: SessionHandle,
        data: &[u8],
    ) -> std::result::Result<(), cssf_dtls::Error> {
        cssf_dtls::Endpoint::send(self, now, session, data)
    }
    fn recv(
        &mut self,
        session: SessionHandle,
        buf: &mut [u8],
    ) -> std::result::Result<Option<usize>, cssf_dtls::Error> {
        cssf_dtls::Endpoint::recv(self, session, buf)
    }
}

/// The DTLS endpoint with `N` sessions and `H` handshakes, PSK, with our
/// raw public key if `key`, client keys judged by `trust`; boxed (its
/// tables are inline: the largest size is a few megabytes, built on the
/// stack of the thread that starts the server, then moved).
fn dtls_endpoint<const N: usize, const H: usize, const C: usize>(
    dcfg: cssf_dtls::Config,
    psk: NodePsk,
    key: Option<cssf_dtls::SigningKey>,
    trust: DeviceTrust,
) -> Result<Box<dyn DtlsServer>> {
    let per_session = core::mem::size_of::<DeviceDtls<DeviceTrust, 2, H, C>>()
        - core::mem::size_of::<DeviceDtls<DeviceTrust, 1, H, C>>();
    log::info!(
        "DTLS endpoint: {N} sessions, {H} handshakes in progress at once, {C} ClientHellos remembered, {} bytes ({per_session} bytes a session)",
        core::mem::size_of::<DeviceDtls<DeviceTrust, N, H, C>>(),
    );
    let mut builder = cssf_dtls::EndpointBuilder::new(dcfg, psk, OsRng).trust(trust);
    if let Some(key) = key {
        builder = builder.raw_public_key(key);
    }
    let endpoint: DeviceDtls<DeviceTrust, N, H, C> = builder
        .build(Duration::ZERO)
        .map_err(|e| fail!("DTLS configuration: {e}"))?;
    Ok(Box::new(endpoint))
}

/// Raw public keys for the device (RFC 7250).
#[derive(Clone)]
pub struct RpkConfig {
    /// Our private key.
    pub key: p256::SecretKey,
    /// Client keys we accept, with what a session proving each may do.
    pub trust: Vec<(p256::PublicKey, Rights)>,
    /// Ask every client for a key (also when `trust` is empty: clients
    /// holding an ACE token's raw public key, RFC 9202 §3.2). Without it,
    /// and without trusted keys, clients are not asked and their sessions
    /// prove nothing (they get the public rights only).
    pub require_client_key: bool,
}

impl fmt::Debug for RpkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpkConfig({} trusted keys)", self.trust.len())
    }
}

/// A short fingerprint of a public key: the first 8 bytes of SHA-256 over
/// its uncompressed SEC1 encoding, hex.
pub fn key_fingerprint(k: &p256::PublicKey) -> String {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use sha2::Digest;
    let d = sha2::Sha256::digest(k.to_encoded_point(false).as_bytes());
    crate::util::hex(d.get(..8).unwrap_or(&[]))
}
/// The ACE resource server: 8 tokens, 64 remembered `cti`s, 64 queued
/// accounting events.
pub type Authz = AuthzInfo<'static, [KeyEntry], cssf_auth::aif::NoTextScopes, 8, 64, 64>;

/// Who a CoAP message is from: the transport matters for authorization.
/// A DTLS peer is its session, never its address: a new session from the
/// same address shares no CoAP state (duplicates, Block, Observe) and no
/// rights with the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Plain CoAP over UDP.
    Plain(SocketAddr),
    /// CoAP over a DTLS session.
    Secure(SessionHandle),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Plain(a) => write!(f, "coap {a}"),
            Peer::Secure(h) => write!(f, "coaps session {h}"),
        }
    }
}

/// The device's PSK store for cssf-dtls: provisioned PSKs first, then the
/// ACE token store (RFC 9202: the PoP key of the token a `psk_identity`
/// names). Finding a key grants nothing: rights come from the
/// [`Authorizer`] once the session's Finished proved the key.
#[derive(Clone)]
pub struct NodePsk {
    ace: bool,
    auth: Rc<RefCell<Authz>>,
    clock: Rc<Cell<Clock>>,
    psks: Rc<RefCell<Vec<Psk>>>,
}

impl PskStore<SocketAddr> for NodePsk {
    fn psk(
        &mut self,
        cx: &PeerContext<'_, SocketAddr>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        if let Some(p) = self.psks.borrow().iter().find(|p| p.identity == identity) {
            key.get_mut(..p.key.len())?.copy_from_slice(&p.key);
            return Some(p.key.len());
        }
        let c = self.clock.get();
        let mut a = self.auth.try_borrow_mut().ok()?;
        a.psk_store(cx.now, c.wall)
            .psk_for(cx.handle.raw(), identity, key)
    }

    /// Provisioned identities may resume while provisioned; a token's
    /// never (the session would be bound to whatever key the token for the
    /// kid has now, not the one the old handshake proved).
    fn may_resume(&mut self, _: &PeerContext<'_, SocketAddr>, identity: &[u8]) -> bool {
        self.psks.borrow().iter().any(|p| p.identity == identity)
    }

    /// With ACE, `illegal_parameter` (RFC 9202 §3.3.2): the identity
    /// selects neither a provisioned key nor a valid access token.
    fn unknown_identity(&self) -> cssf_dtls::Error {
        if self.ace {
            cssf_dtls::Error::IllegalParameter
        } else {
            cssf_dtls::Error::UnknownPskIdentity
        }
    }
}

/// What a session proved, owned: the Authorizer's [`Proof`], and the
/// credential id a oneM2M access-control policy names (TS-0003 §8.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proven {
    Psk(Vec<u8>),
    Key([u8; 32], [u8; 32]),
    Nothing,
}

impl Proven {
    /// The credential id a oneM2M app rule names: the PSK identity, or
    /// SHA-256 of the public key's uncompressed SEC1 encoding.
    fn credential(&self) -> Option<Vec<u8>> {
        use sha2::Digest;
        match self {
            Proven::Psk(id) => Some(id.clone()),
            Proven::Key(x, y) => {
                let mut h = sha2::Sha256::new();
                h.update([4u8]);
                h.update(x);
                h.update(y);
                Some(h.finalize().to_vec())
            }
            Proven::Nothing => None,
        }
    }

    fn of(identity: Option<&Identity>) -> Option<Self> {
        match identity {
            None => Some(Proven::Nothing),
            Some(Identity::Psk(id)) => Some(Proven::Psk(id.as_bytes().to_vec())),
            Some(Identity::RawPublicKey(k) | Identity::Certificate(k)) => {
                let (x, y) = cssf_auth::pop::coordinates(k)?;
                Some(Proven::Key(x, y))
            }
            Some(_) => None,
        }
    }

    fn proof(&self) -> Proof<'_> {
        match self {
            Proven::Psk(id) => Proof::Psk(id),
            Proven::Key(x, y) => Proof::PublicKey(x, y),
            Proven::Nothing => Proof::Anonymous,
        }
    }
}

/// A log label for what a session proved.
fn describe(identity: Option<&Identity>) -> String {
    match identity {
        None => "no client key".into(),
        Some(Identity::Psk(id)) => format!("psk {}", kid_text(id.as_bytes())),
        Some(Identity::RawPublicKey(k)) => format!("raw public key {}", key_fingerprint(k)),
        Some(Identity::Certificate(k)) => format!("certificate key {}", key_fingerprint(k)),
        Some(_) => "unknown identity".into(),
    }
}

/// The rights of a provisioned PSK or trusted key given without any.
pub fn default_rights() -> Rights {
    Rights::read_only()
}

/// What the device is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Plain CoAP address.
    pub bind: SocketAddr,
    /// CoAPs (DTLS) address.
    pub dtls_bind: SocketAddr,
    /// Provisioned PSKs.
    pub psks: Vec<Psk>,
    /// Rights of provisioned PSK identities; an identity not listed here
    /// (e.g. one only in the store) gets [`default_rights`].
    pub psk_rights: Vec<(Vec<u8>, Rights)>,
    /// What everyone may do, plain CoAP included; `None`: `/authz-info:POST`
    /// with an AS key, everything without one (a development device).
    pub public: Option<Rights>,
    /// Keys of trusted Authorization Servers (empty: no ACE).
    pub as_keys: Vec<KeyEntry>,
    /// This device's audience name.
    pub audience: String,
    /// The AS URI announced in 4.01 answers (AS Request Creation Hints).
    pub as_uri: Option<String>,
    /// The store file, if any.
    pub store: Option<PathBuf>,
    /// oneM2M access-control policies (JSON, [`crate::acp_json`]), if any.
    pub acp: Option<PathBuf>,
    /// Raw public keys, if any.
    pub rpk: Option<RpkConfig>,
    /// Prefix of every log line.
    pub log_prefix: String,
    /// `-v` count: the crates' log messages on stderr (see
    /// [`init_logging`](crate::util::init_logging)).
    pub verbose: u8,
    /// Also serve the CoAP plugtest resources ([`crate::plugtest`]).
    pub plugtest: bool,
    /// Concurrent DTLS sessions, one of [`SESSION_SIZES`].
    pub max_sessions: usize,
    /// Relaxed CoAP deduplication (`cssf_coap::endpoint::Config::relaxed_dedup`).
    pub relaxed_dedup: bool,
    /// No line per request or session on standard output.
    pub quiet: bool,
    /// OSCORE security contexts the plain CoAP port accepts requests with
    /// (at most 16; needs `store`, which keeps their replay windows).
    pub oscore: Vec<OscoreContextFile>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 5683)),
            dtls_bind: SocketAddr::from(([127, 0, 0, 1], 5684)),
            psks: Vec::new(),
            psk_rights: Vec::new(),
            public: None,
            as_keys: Vec::new(),
            audience: "rs1".into(),
            as_uri: None,
            store: None,
            acp: None,
            rpk: None,
            log_prefix: String::new(),
            verbose: 0,
            plugtest: false,
            max_sessions: 8,
            relaxed_dedup: false,
            quiet: false,
            oscore: Vec::new(),
        }
    }
}

const OPEN: Methods = Methods::GET;

static RESOURCES_ACE: [Resource; 6] = [
    Resource::new("time", OPEN).rt("time").ct(0).observable(),
    Resource::new("sensors/temp", OPEN)
        .rt("temperature-c")
        .ct(0)
        .observable(),
    Resource::new("actuators/led", Methods::GET.union(Methods::PUT))
        .rt("light")
        .ct(0),
    Resource::new("large", OPEN).ct(0).sz(LARGE_LEN as u32),
    Resource::new("echo", Methods::POST).ct(0),
    Resource::new("authz-info", Methods::POST).ct(19),
];

/// The resources of a device without ACE (no `/authz-info`).
fn resources(ace: bool) -> &'static [Resource] {
    if ace {
        &RESOURCES_ACE
    } else {
        RESOURCES_ACE.get(..5).unwrap_or(&[])
    }
}

/// Length of `/large`.
pub const LARGE_LEN: usize = 4096;

/// The deterministic 4096-byte text of `/large`: 128 lines of 32 bytes,
/// `0000 abcdefghijklmnopqrstuvwxyz\n` to `0127 ...`.
pub fn large_body() -> Vec<u8> {
    (0..LARGE_LEN / 32)
        .flat_map(|i| format!("{i:04} abcdefghijklmnopqrstuvwxyz\n").into_bytes())
        .collect()
}

/// `YYYY-MM-DDThh:mm:ssZ` for seconds since the epoch.
pub fn iso_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The simulated temperature at `t` seconds of uptime, in °C.
pub fn temperature(t: u64) -> f64 {
    let x = t as f64 / 60.0 * std::f64::consts::TAU;
    ((21.0 + 1.5 * x.sin()) * 10.0).round() / 10.0
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    boots: u64,
    exchanges: u64,
    allowed: u64,
    denied: u64,
    tokens: u64,
}

enum Input {
    Plain(std::io::Result<(usize, SocketAddr)>),
    Secure(std::io::Result<(usize, SocketAddr)>),
    Timer,
    Stop,
}

/// How many `/separate` answers may wait at once (more are answered at
/// once).
const MAX_DEFERRED: usize = 16;

/// A `/separate` answer waiting for its time.
#[derive(Debug)]
struct Deferred {
    at: Duration,
    id: RequestId,
    answer: Answer,
}

impl From<(Code, Vec<u8>, Option<ContentFormat>)> for Answer {
    fn from((code, payload, content_format): (Code, Vec<u8>, Option<ContentFormat>)) -> Self {
        Answer {
            code: Some(code),
            payload,
            content_format,
            ..Answer::default()
        }
    }
}

impl Answer {
    /// The endpoint's response for this answer.
    fn response(&self) -> Response<'_> {
        let mut r = Response::new(self.code.unwrap_or(Code::CONTENT)).payload(&self.payload);
        r.content_format = self.content_format;
        r.etag = self.etag.as_deref();
        r.location_path = self.location_path.as_deref();
        r.location_query = self.location_query.as_deref();
        r
    }
}

/// A running device.
pub struct Server {
    cfg: ServerConfig,
    plain: UdpSocket,
    secure: UdpSocket,
    coap: Box<DeviceCoap>,
    dtls: Box<dyn DtlsServer>,
    /// ACE on: an AS key is configured (`/authz-info` exists).
    ace: bool,
    auth: Rc<RefCell<Authz>>,
    clock: Rc<Cell<Clock>>,
    /// The grants of live DTLS sessions.
    policy: Policy,
    provisioned: usize,
    store: Option<NodeStore>,
    origin: Instant,
    led: bool,
    large: Vec<u8>,
    /// `/echo` bodies being uploaded and the last ones answered (and the
    /// plugtest's uploads).
    bodies: EchoBodies,
    /// The resource table (the device's, with `--plugtest` also the
    /// plugtest's).
    resources: &'static [Resource],
    /// The plugtest resources' state (`--plugtest`).
    plug: Option<Plugtest>,
    /// `/separate` answers waiting for their time (at most
    /// [`MAX_DEFERRED`]).
    deferred: Vec<Deferred>,
    /// When `/obs` and `/obs-non` change next.
    next_obs: Duration,
    /// Requests the endpoint answers itself, by peer and message ID.
    internal: HashMap<(Peer, u16), String>,
    counters: Counters,
    dirty: bool,
    next_tick: Duration,
    next_save: Duration,
    ticks: u64,
    /// The replay-window high marks of the OSCORE contexts last saved.
    oscore_saved: Vec<Option<u64>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("bind", &self.cfg.bind)
            .field("dtls_bind", &self.cfg.dtls_bind)
            .finish_non_exhaustive()
    }
}

/// Derives the `--oscore-context` contexts into the endpoint and returns
/// their scopes, by index.
///
/// Each context's replay window is restored from the store (RFC 8613
/// Appendix B.1.2: a request taken before a restart stays refused after
/// it, so the answer to a replayed request never reuses its nonce with
/// another plaintext); hence the store is required. A context with no
/// saved window (new, or the store was lost) is left unsynchronised: the
/// endpoint answers every request on it with a protected 4.01 Echo
/// challenge until one comes back with a fresh Echo value, whose Partial
/// IV becomes the window's lower limit (B.1.2). That challenge is the one
/// answer protected under a Sender Sequence Number of the server's own,
/// kept in the store as well (B.1.1: persisted ahead before it is used,
/// so no number is used twice across restarts).
fn add_oscore_contexts(
    cfg: &ServerConfig,
    coap: &mut DeviceCoap,
    store: Option<&mut NodeStore>,
) -> Result<Vec<Option<Rights>>> {
    if cfg.oscore.is_empty() {
        return Ok(Vec::new());
    }
    let Some(st) = store else {
        return Err(fail!(
            "--oscore-context needs --store (the replay windows must survive a restart, RFC 8613 Appendix B.1.2)"
        ));
    };
    let mut scopes = Vec::new();
    for (i, f) in cfg.oscore.iter().enumerate() {
        if cfg
            .oscore
            .iter()
            .take(i)
            .any(|g| g.store_name() == f.store_name())
        {
            return Err(fail!(
                "{}: another --oscore-context has the same Recipient ID and ID Context",
                f.path.display()
            ));
        }
        let stored = st.counter(&f.sequence_store_name())?;
        let mut ctx = SecurityContext::new(
            &f.params(),
            SenderSequence::Persisted {
                stored,
                step: OSCORE_SEQUENCE_STEP,
            },
        )
        .map_err(|e| fail!("{}: {e}", f.path.display()))?;
        persist_sequence(st, f, &mut ctx)?;
        let saved = st.counter(&f.store_name())?;
        if let Some(v) = saved.checked_sub(1) {
            ctx.restore_replay_window(v);
        }
        coap.add_oscore_context(ctx)
            .map_err(|_| fail!("--oscore-context: at most 16 contexts"))?;
        println!(
            "{}OSCORE context {}: kid {} ({}), scope {}{}",
            cfg.log_prefix,
            i,
            crate::util::hex(&f.recipient_id),
            f.path.display(),
            f.scope
                .as_ref()
                .map_or("none (public rights only)".into(), |r| r.to_string()),
            if saved > 0 {
                format!(
                    ", replay window restored (Partial IVs up to {} refused)",
                    saved - 1
                )
            } else {
                ", no replay window saved: synchronised by an Echo exchange (RFC 8613 Appendix B.1.2)"
                    .into()
            }
        );
        scopes.push(f.scope.clone());
    }
    Ok(scopes)
}

/// Sender Sequence Numbers covered by one store write.
const OSCORE_SEQUENCE_STEP: u64 = 16;

/// Writes the context's next Sender Sequence Number bound to the store
/// when it runs low, then lets the context use the numbers below it
/// (RFC 8613 Appendix B.1.1).
fn persist_sequence(
    st: &mut NodeStore,
    f: &OscoreContextFile,
    ctx: &mut SecurityContext,
) -> Result<()> {
    if let Some(v) = ctx.persist_due() {
        st.set_counter(&f.sequence_store_name(), v).map_err(|e| {
            fail!(
                "OSCORE sequence number of {} not saved: {e}",
                f.path.display()
            )
        })?;
        ctx.persisted(v);
    }
    Ok(())
}

async fn bind(addr: SocketAddr, what: &str) -> Result<UdpSocket> {
    UdpSocket::bind(addr)
        .await
        .map_err(|e| fail!("cannot bind {what} to {addr}: {e}"))
}

impl Server {
    /// Binds both sockets, opens the store and restores what it holds.
    pub async fn start(mut cfg: ServerConfig) -> Result<Server> {
        let plain = bind(cfg.bind, "CoAP").await?;
        let secure = bind(cfg.dtls_bind, "CoAPs").await?;
        // Report the real ports (port 0 picks a free one).
        cfg.bind = plain.local_addr().map_err(|e| fail!("{e}"))?;
        cfg.dtls_bind = secure.local_addr().map_err(|e| fail!("{e}"))?;
        let mut store = match &cfg.store {
            Some(p) => Some(NodeStore::open(p)?),
            None => None,
        };
        let mut psks = Vec::new();
        if let Some(s) = store.as_mut() {
            for p in &cfg.psks {
                s.set_psk(p)?;
            }
            psks = s.psks()?;
        } else {
            psks.clone_from(&cfg.psks);
        }
        let ace = !cfg.as_keys.is_empty();
        // The keys and audience live as long as the program. Without an AS
        // key the token store accepts nothing (there is no /authz-info).
        let keys: &'static [KeyEntry] = Box::leak(cfg.as_keys.clone().into_boxed_slice());
        let aud: &'static str = Box::leak(cfg.audience.clone().into_boxed_str());
        let mut c = cssf_auth::Config::new(aud);
        c.leeway_secs = 5;
        c.as_uri = cfg
            .as_uri
            .clone()
            .map(|u| -> &'static str { Box::leak(u.into_boxed_str()) });
        let auth = Rc::new(RefCell::new(Authz::new(c, keys)));
        let clock = Rc::new(Cell::new(Clock::default()));
        let mut authz = Box::new(Authorizer::new());
        // Anything that says who may do what: then the public rights are
        // not everything.
        let credentials = !psks.is_empty()
            || cfg.acp.is_some()
            || !cfg.oscore.is_empty()
            || cfg
                .rpk
                .as_ref()
                .is_some_and(|r| !r.trust.is_empty() || r.require_client_key);
        authz.set_public(match &cfg.public {
            Some(r) => r.clone(),
            None if ace => Rights::parse("/authz-info:POST").map_err(|e| fail!("{e}"))?,
            // A device with credentials but no AS: only they grant.
            None if credentials => Rights::none(),
            // Nothing configured at all: a development device.
            None => Rights::all(),
        });
        for p in &psks {
            let rights = cfg
                .psk_rights
                .iter()
                .find(|(id, _)| *id == p.identity)
                .map_or_else(default_rights, |(_, r)| r.clone());
            authz
                .provision_psk(&p.identity, rights)
                .map_err(|e| fail!("--psk {}: {e}", kid_text(&p.identity)))?;
        }
        if let Some(r) = &cfg.rpk {
            for (k, rights) in &r.trust {
                let (x, y) =
                    cssf_auth::pop::coordinates(k).ok_or_else(|| fail!("--trust: bad key"))?;
                authz
                    .provision_key(&x, &y, rights.clone())
                    .map_err(|e| fail!("--trust: {e}"))?;
            }
        }
        let origin = Instant::now();
        let provisioned = psks.len();
        let psk = NodePsk {
            ace,
            auth: auth.clone(),
            clock: clock.clone(),
            psks: Rc::new(RefCell::new(psks)),
        };
        let mut dcfg = cssf_dtls::Config::default();
        dcfg.retransmit_initial = Duration::from_secs(1);
        let key = cfg.rpk.as_ref().map(|r| {
            dcfg.require_client_auth = !r.trust.is_empty() || r.require_client_key;
            cssf_dtls::SigningKey::from(&r.key)
        });
        // Without our key the trust store is never asked (no ECDHE_ECDSA).
        let trust = DeviceTrust {
            keys: cfg
                .rpk
                .iter()
                .flat_map(|r| r.trust.iter().map(|(k, _)| *k))
                .collect(),
            auth: auth.clone(),
            clock: clock.clone(),
        };
        let dtls = match cfg.max_sessions {
            64 => dtls_endpoint::<64, 16, 64>(dcfg, psk, key, trust),
            1024 => dtls_endpoint::<1024, 64, 256>(dcfg, psk, key, trust),
            16384 => dtls_endpoint::<16384, 256, 1024>(dcfg, psk, key, trust),
            _ => dtls_endpoint::<8, 2, { cssf_dtls::CLIENT_HELLO_REPLAY_CACHE }>(
                dcfg, psk, key, trust,
            ),
        }?;
        let table: &'static [Resource] = if cfg.plugtest {
            let all: Vec<Resource> = resources(ace)
                .iter()
                .chain(plugtest::RESOURCES.iter())
                .copied()
                .collect();
            Box::leak(all.into_boxed_slice())
        } else {
            resources(ace)
        };
        let mut coap = Box::new(DeviceCoap::new(
            cssf_coap::endpoint::Config {
                relaxed_dedup: cfg.relaxed_dedup,
                ..Default::default()
            },
            OsRng,
            table,
        ));
        // A DTLS session proved its address in the handshake; plain CoAP
        // sources may be spoofed until they answer an Echo challenge, so
        // answers to them stay under three times the request (RFC 9175
        // §2.4).
        coap.set_verified_peers(|p| matches!(p, Peer::Secure(_)));
        let oscore_scopes = add_oscore_contexts(&cfg, &mut coap, store.as_mut())?;
        let acp = match &cfg.acp {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| fail!("--acp: cannot read {}: {e}", path.display()))?;
                let p = crate::acp_json::load(&text)
                    .map_err(|e| fail!("--acp {}: {e}", path.display()))?;
                Some(Box::new(p))
            }
            None => None,
        };
        let s_auth = auth.clone();
        let plug = cfg.plugtest.then(Plugtest::default);
        let mut s = Server {
            cfg,
            plain,
            secure,
            coap,
            dtls,
            ace,
            auth,
            clock,
            policy: Policy {
                authz,
                auth: s_auth,
                acp,
                sessions: HashMap::new(),
                oscore_scopes,
            },
            provisioned,
            store,
            origin,
            led: false,
            large: large_body(),
            bodies: EchoBodies::default(),
            resources: table,
            plug,
            deferred: Vec::new(),
            next_obs: plugtest::OBS_PERIOD,
            internal: HashMap::new(),
            counters: Counters::default(),
            dirty: false,
            next_tick: Duration::from_secs(1),
            next_save: Duration::from_secs(10),
            ticks: 0,
            oscore_saved: Vec::new(),
        };
        s.restore()?;
        Ok(s)
    }

    /// The plain CoAP address.
    pub fn coap_addr(&self) -> SocketAddr {
        self.cfg.bind
    }

    /// The CoAPs address.
    pub fn coaps_addr(&self) -> SocketAddr {
        self.cfg.dtls_bind
    }

    fn log(&self, line: &str) {
        if !self.cfg.quiet {
            println!("{}{line}", self.cfg.log_prefix);
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Startup: counters, stored tokens, a summary line.
    fn restore(&mut self) -> Result<()> {
        let mut restored = 0;
        if let Some(st) = self.store.as_mut() {
            self.counters = Counters {
                boots: st.counter("boots")? + 1,
                exchanges: st.counter("exchanges")?,
                allowed: st.counter("allowed")?,
                denied: st.counter("denied")?,
                tokens: st.counter("tokens")?,
            };
            st.set_counter("boots", self.counters.boots)?;
            let tokens = st.tokens()?;
            if self.ace {
                let mut a = self.auth.borrow_mut();
                // RFC 9200 §5.10.3: the `exi` state first, so an `exi`
                // token accepted before the restart cannot live again.
                for (issuer, expired_up_to) in st.exi_watermarks()? {
                    let w = cssf_auth::exi::ExiWatermark {
                        issuer,
                        expired_up_to,
                    };
                    if let Err(e) = a.restore_exi_watermark(w) {
                        println!(
                            "{}store: exi watermark not restored: {e}",
                            self.cfg.log_prefix
                        );
                    }
                }
                for (kid, mut tok) in tokens {
                    let r = a.post(Duration::ZERO, Some(unix_now()), &mut tok, &mut []);
                    if r.code == cssf_auth::authz_info::CREATED {
                        restored += 1;
                    } else {
                        st.remove_token(&kid)?;
                    }
                }
                // Then the ctis of the tokens accepted before (those
                // replaced included: posting one again is a replay).
                for e in st.replay_entries()? {
                    if let Err(e) = a.restore_replay_entry(Duration::ZERO, Some(unix_now()), e) {
                        println!(
                            "{}store: replay cache not restored: {e}",
                            self.cfg.log_prefix
                        );
                    }
                }
                // Restoring is not an accounting event of this run.
                while a.poll_event().is_some() {}
            }
        }
        let rpk = match &self.cfg.rpk {
            Some(r) => format!(
                "; raw public key {} ({} trusted client keys)",
                key_fingerprint(&r.key.public_key()),
                r.trust.len()
            ),
            None => String::new(),
        };
        let ace = if self.ace {
            format!("ACE on (audience {})", self.cfg.audience)
        } else {
            "ACE off (no AS key)".into()
        };
        let store = match &self.store {
            Some(s) => format!(
                "store {} ({} keys, boot {}, {restored} tokens restored)",
                s.path().display(),
                s.len(),
                self.counters.boots
            ),
            None => "no store".into(),
        };
        // Printed also with --quiet: scripts wait for it.
        println!(
            "{}listening on coap://{} and coaps://{}; {} PSK identities{rpk}; {ace}; public rights {}; {store}; {} DTLS sessions{}",
            self.cfg.log_prefix,
            self.cfg.bind,
            self.cfg.dtls_bind,
            self.provisioned,
            self.policy.authz.public(),
            self.cfg.max_sessions,
            if self.cfg.relaxed_dedup {
                "; relaxed deduplication"
            } else {
                ""
            }
        );
        Ok(())
    }

    /// Runs until `stop` completes (or forever); saves the counters at the end.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) -> Result<()> {
        let mut stop = std::pin::pin!(stop);
        let mut pbuf = vec![0u8; 2048];
        let mut sbuf = vec![0u8; 2048];
        loop {
            self.pump().await?;
            let now = self.now();
            let wake = [
                self.coap.poll_timeout(),
                self.dtls.poll_timeout(),
                self.auth.borrow().poll_timeout(),
                self.deferred.iter().map(|d| d.at).min(),
                self.plug.as_ref().map(|_| self.next_obs),
                Some(self.next_tick),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_tick);
            let deadline = tokio::time::Instant::from_std(self.origin + wake.max(now));
            let input = tokio::select! {
                r = self.plain.recv_from(&mut pbuf) => Input::Plain(r),
                r = self.secure.recv_from(&mut sbuf) => Input::Secure(r),
                () = tokio::time::sleep_until(deadline) => Input::Timer,
                () = &mut stop => Input::Stop,
            };
            let now = self.now();
            self.clock.set(Clock {
                now,
                wall: Some(unix_now()),
            });
            match input {
                Input::Plain(Ok((n, from))) => {
                    if let Some(d) = pbuf.get_mut(..n) {
                        // A replay window that could not be saved stops the
                        // server before the answer goes out.
                        self.coap_input(now, Peer::Plain(from), d)?;
                    }
                }
                Input::Secure(Ok((n, from))) => {
                    if let Some(d) = sbuf.get_mut(..n) {
                        // A peer's input never fails the call: a session
                        // it ends gets its Closed event (logged by `pump`).
                        let _ = self.dtls.handle_datagram(now, from, d);
                    }
                }
                // A UDP error (e.g. an ICMP report for an earlier datagram)
                // concerns one peer, not the device.
                Input::Plain(Err(_)) | Input::Secure(Err(_)) => {}
                Input::Timer => self.on_timer(now),
                Input::Stop => break,
            }
        }
        self.save_counters();
        self.log("stopped");
        Ok(())
    }

    fn on_timer(&mut self, now: Duration) {
        self.coap.handle_timeout(now);
        self.bodies.expire(now);
        // Handshakes that give up are logged with their Closed event.
        self.dtls.handle_timeout(now);
        self.auth.borrow_mut().handle_timeout(now, Some(unix_now()));
        if now >= self.next_tick {
            self.ticks += 1;
            self.next_tick += Duration::from_secs(1);
            let t = iso_time(unix_now());
            let r = Response::new(Code::CONTENT)
                .content_format(ContentFormat::TEXT_PLAIN)
                .payload(t.as_bytes());
            self.notify(now, "time", &r);
            if self.ticks % 5 == 0 {
                let t = format!("{:.1}", temperature(now.as_secs()));
                let r = Response::new(Code::CONTENT)
                    .content_format(ContentFormat::TEXT_PLAIN)
                    .payload(t.as_bytes());
                self.notify(now, "sensors/temp", &r);
            }
        }
        if self.plug.is_some() && now >= self.next_obs {
            self.next_obs = now + plugtest::OBS_PERIOD;
            if let Some(v) = self.plug.as_mut().map(Plugtest::tick) {
                let r = Response::new(Code::CONTENT)
                    .content_format(ContentFormat::TEXT_PLAIN)
                    .payload(v.as_bytes());
                self.notify(now, "obs", &r);
                self.notify(now, "obs-non", &r);
            }
        }
        let due: Vec<Deferred> = {
            let (due, wait) = std::mem::take(&mut self.deferred)
                .into_iter()
                .partition(|d| d.at <= now);
            self.deferred = wait;
            due
        };
        for d in due {
            // The request may be gone (its DTLS session ended): nothing to do.
            let r = self.coap.respond(now, d.id, &d.answer.response());
            if let Err(e) = r {
                self.log(&format!("separate response not sent: {e}"));
            }
        }
        if now >= self.next_save {
            self.next_save = now + Duration::from_secs(10);
            if self.dirty {
                self.save_counters();
            }
        }
    }

    /// Notifies the observers of `path`, each decided again as a GET now:
    /// an observer whose token expired gets a final 4.01 (4.03 if the scope
    /// no longer covers it) that ends its observation (RFC 7641 §3.2),
    /// instead of the data.
    fn notify(&mut self, now: Duration, path: &str, r: &Response<'_>) {
        let policy = &mut self.policy;
        let mut refused = Vec::new();
        // Each observer decided as it registered: plain, or under its
        // OSCORE context (whose scope may cover what plain CoAP's does not).
        let _ = self
            .coap
            .notify_with_security(now, path, r, |peer, security| {
                let code = policy
                    .decide(now, peer, Code::GET, path, None, security)
                    .err()?
                    .0;
                refused.push((*peer, code));
                Some(code)
            });
        for (peer, code) in refused {
            self.log(&format!(
                "observe {peer} /{path}: ended with {code}, no longer authorized"
            ));
        }
    }

    fn save_counters(&mut self) {
        let c = self.counters;
        let Some(st) = self.store.as_mut() else {
            return;
        };
        let r = st
            .set_counter("exchanges", c.exchanges)
            .and_then(|()| st.set_counter("allowed", c.allowed))
            .and_then(|()| st.set_counter("denied", c.denied))
            .and_then(|()| st.set_counter("tokens", c.tokens));
        self.dirty = false;
        if let Err(e) = r {
            self.log(&format!("store: {e}"));
        }
    }

    /// Moves everything that is ready: DTLS records to CoAP, CoAP events to
    /// the application, CoAP messages to DTLS or UDP, DTLS records to UDP.
    async fn pump(&mut self) -> Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = self.now();
            let mut progress = false;
            while let Some(ev) = self.dtls.poll_event() {
                progress = true;
                match ev {
                    DtlsEvent::ApplicationData { handle, .. } => {
                        while let Ok(Some(n)) = self.dtls.recv(handle, &mut buf) {
                            if let Some(d) = buf.get_mut(..n) {
                                self.coap_input(now, Peer::Secure(handle), d)?;
                            }
                        }
                    }
                    DtlsEvent::Connected {
                        handle,
                        peer,
                        identity,
                        suite,
                        resumed,
                    } => {
                        // The session's rights come from what its handshake
                        // proved, nothing else.
                        let how = describe(identity.as_ref());
                        let proven = Proven::of(identity.as_ref());
                        let granted = match &proven {
                            None => Err(cssf_auth::Error::InvalidPopKey),
                            Some(p) => self.policy.authz.on_connected(
                                handle,
                                p.proof(),
                                &mut self.auth.borrow_mut(),
                            ),
                        };
                        // oneM2M app rules name provisioned credentials
                        // only: a token's kid is the AS's choice and must
                        // not alias a listed identity.
                        let credential = match granted {
                            Ok(Granted::Provisioned) => {
                                proven.as_ref().and_then(Proven::credential)
                            }
                            _ => None,
                        };
                        let granted = match granted {
                            Ok(Granted::Provisioned) => "provisioned rights".into(),
                            Ok(Granted::Token) => format!(
                                "token kid {}",
                                kid_text(self.policy.authz.token_kid(&handle).unwrap_or(&[]))
                            ),
                            Ok(Granted::Anonymous) => "public rights only".into(),
                            Err(e) => format!("no rights ({e})"),
                        };
                        self.policy.sessions.insert(
                            handle,
                            SessionInfo {
                                label: format!("{how}: {granted}"),
                                credential,
                                addr: peer,
                            },
                        );
                        let resumed = if resumed { ", resumed" } else { "" };
                        self.log(&format!(
                            "dtls {peer}: connected, {suite:?}, {how}{resumed}, {granted} (session {handle})"
                        ));
                    }
                    DtlsEvent::Closed {
                        handle,
                        peer,
                        reason,
                    } => {
                        // Nothing of the session outlives it: its rights,
                        // its CoAP state (duplicates, Block1, observations)
                        // and its /echo buffers.
                        self.policy
                            .authz
                            .on_closed(&handle, &mut self.auth.borrow_mut());
                        self.policy.sessions.remove(&handle);
                        self.coap.close_peer(&Peer::Secure(handle));
                        self.bodies.forget_peer(&Peer::Secure(handle));
                        match reason {
                            CloseReason::PeerClosed | CloseReason::LocalClose => {
                                self.log(&format!("dtls {peer}: closed (session {handle})"))
                            }
                            r => self.log(&format!("dtls {peer}: closed: {r} (session {handle})")),
                        }
                    }
                    DtlsEvent::PeerAddressChanged { handle, new, .. } => {
                        if let Some(s) = self.policy.sessions.get_mut(&handle) {
                            s.addr = new;
                        }
                    }
                    _ => {}
                }
            }
            while let Some(ev) = self.coap.poll_event() {
                progress = true;
                if let CoapEvent::Request {
                    id,
                    peer,
                    resource,
                    request,
                } = ev
                {
                    self.on_request(now, id, peer, resource, &request);
                }
            }
            while let Some(t) = self
                .coap
                .poll_transmit(now, &mut buf)
                .map_err(|e| fail!("CoAP: {e}"))?
            {
                progress = true;
                let data = buf.get(..t.len).unwrap_or(&[]);
                self.log_endpoint_answer(&t.to, data);
                match t.to {
                    Peer::Plain(a) => {
                        let _ = self.plain.send_to(data, a).await;
                    }
                    Peer::Secure(h) => {
                        // The session may have ended (an observer that left).
                        let _ = self.dtls.send(now, h, data);
                    }
                }
            }
            while let Some(t) = self
                .dtls
                .poll_transmit(now, &mut buf)
                .map_err(|e| fail!("DTLS: {e}"))?
            {
                progress = true;
                let _ = self
                    .secure
                    .send_to(buf.get(..t.len).unwrap_or(&[]), t.to)
                    .await;
            }
            self.drain_accounting();
            if !progress {
                return Ok(());
            }
        }
    }

    /// Feeds a CoAP message to the endpoint, noting requests the endpoint
    /// answers itself (`/.well-known/core`, 4.04, 4.05) so their exchange
    /// is logged when the answer goes out.
    fn coap_input(&mut self, now: Duration, peer: Peer, d: &mut [u8]) -> Result<()> {
        let mut oscore = false;
        if let Ok(m) = Message::parse(d) {
            if m.code().is_request() && m.has_option(OptionNumber::OSCORE) {
                oscore = true;
                if self.internal.len() >= 64 {
                    self.internal.clear();
                }
                // Logged with the endpoint's answer if it refuses it.
                self.internal
                    .insert((peer, m.message_id()), "OSCORE request".into());
            } else if m.code().is_request() {
                let segs: Vec<&[u8]> = m.uri_path().collect();
                let path: Vec<String> = segs
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                let routed = self
                    .resources
                    .iter()
                    .any(|r| r.matches(segs.iter().copied()) && r.methods.allows(m.code()));
                if !routed {
                    if self.internal.len() >= 64 {
                        // Unanswered leftovers (dropped messages): forget them.
                        self.internal.clear();
                    }
                    self.internal.insert(
                        (peer, m.message_id()),
                        format!(
                            "{} /{}{}",
                            m.code().name().unwrap_or("?"),
                            path.join("/"),
                            describe_blocks(&m)
                        ),
                    );
                }
            }
        }
        let unsynchronised: Vec<usize> = (0..self.cfg.oscore.len())
            .filter(|&i| {
                self.coap
                    .oscore_context(i)
                    .is_some_and(|c| !c.is_replay_synchronised())
            })
            .collect();
        let _ = self.coap.handle_datagram(now, peer, d);
        for i in unsynchronised {
            if let Some(c) = self.coap.oscore_context(i) {
                if c.is_replay_synchronised() {
                    self.log(&format!(
                        "OSCORE context {i}: replay window synchronised by an Echo exchange at Partial IV {}",
                        c.replay_window().highest().unwrap_or(0)
                    ));
                }
            }
        }
        if oscore {
            // Before any answer goes out: a restart must not take this
            // request again (RFC 8613 Appendix B.1.2). If that fails, the
            // answer already queued must never leave: after a restart the
            // request would be taken again and answered under the same
            // nonce. The server stops with the error (fail closed).
            self.save_oscore()?;
        }
        Ok(())
    }

    /// Saves the replay window of each OSCORE context that moved (its
    /// highest Partial IV taken, plus one; 0: none yet), and its Sender
    /// Sequence Number bound when it runs low.
    fn save_oscore(&mut self) -> Result<()> {
        for (i, f) in self.cfg.oscore.iter().enumerate() {
            let Some(st) = self.store.as_mut() else {
                return Err(fail!("OSCORE contexts need a store"));
            };
            if let Some(ctx) = self.coap.oscore_context_mut(i) {
                persist_sequence(st, f, ctx)?;
            }
            let highest = self
                .coap
                .oscore_context(i)
                .and_then(|c| c.replay_window().highest());
            if self.oscore_saved.len() <= i {
                self.oscore_saved.resize(i + 1, None);
            }
            if highest.is_none() || self.oscore_saved.get(i) == Some(&highest) {
                continue;
            }
            let v = highest.map_or(0, |h| h + 1);
            st.set_counter(&f.store_name(), v).map_err(|e| {
                fail!(
                    "OSCORE replay window of {} not saved ({e}): stopping before the answer is sent",
                    f.path.display()
                )
            })?;
            if let Some(s) = self.oscore_saved.get_mut(i) {
                *s = highest;
            }
        }
        Ok(())
    }

    /// Logs the endpoint's own answer to a request noted by `coap_input`.
    fn log_endpoint_answer(&mut self, to: &Peer, data: &[u8]) {
        if self.internal.is_empty() {
            return;
        }
        let Ok(m) = Message::parse(data) else { return };
        if let Some(req) = self.internal.remove(&(*to, m.message_id())) {
            if m.has_option(OptionNumber::OSCORE) {
                // A protected answer: the application's, logged in
                // `on_request`, or the endpoint's own (inside, unseen here).
                return;
            }
            let c = m.code();
            self.log(&format!(
                "{to} {req} -> {c} {} ({} bytes, answered by the endpoint)",
                c.name().unwrap_or(""),
                m.payload().len()
            ));
        }
    }

    fn drain_accounting(&mut self) {
        let auth = self.auth.clone();
        loop {
            let ev = auth.borrow_mut().poll_event();
            let Some(ev) = ev else { break };
            let line = match &ev {
                AuthEvent::TokenAccepted { kid, replaced } => {
                    self.counters.tokens += 1;
                    if let Some(st) = self.store.as_mut() {
                        let marks: Vec<_> = auth.borrow().exi_watermarks().collect();
                        for w in marks {
                            if let Err(e) = st.set_exi_watermark(&w.issuer, w.expired_up_to) {
                                println!("{}{e}", self.cfg.log_prefix);
                            }
                        }
                        // The ctis too: a token replaced before a restart
                        // stays a replay after it.
                        let ctis: Vec<_> = auth.borrow().replay_entries().collect();
                        if let Err(e) = st.set_replay_entries(&ctis) {
                            println!("{}{e}", self.cfg.log_prefix);
                        }
                    }
                    format!(
                        "token accepted, kid {}{}",
                        kid_text(kid.as_slice()),
                        if *replaced {
                            " (replaced the previous one)"
                        } else {
                            ""
                        }
                    )
                }
                AuthEvent::TokenRejected { reason } => format!("token rejected: {reason}"),
                AuthEvent::TokenExpired { kid } => {
                    if let Some(st) = self.store.as_mut() {
                        let _ = st.remove_token(kid.as_slice());
                    }
                    format!("token expired, kid {}", kid_text(kid.as_slice()))
                }
                AuthEvent::TokenDisplaced { kid } => {
                    if let Some(st) = self.store.as_mut() {
                        let _ = st.remove_token(kid.as_slice());
                    }
                    format!(
                        "token displaced (never used, store full), kid {}",
                        kid_text(kid.as_slice())
                    )
                }
                AuthEvent::RequestAllowed { kid, method, path } => {
                    self.counters.allowed += 1;
                    format!(
                        "allowed {} {} for kid {}",
                        method_name(*method),
                        String::from_utf8_lossy(path.as_slice()),
                        kid_text(kid.as_slice())
                    )
                }
                AuthEvent::RequestDenied {
                    kid,
                    method,
                    path,
                    reason,
                } => {
                    self.counters.denied += 1;
                    format!(
                        "denied {} {} for kid {}: {reason:?}",
                        method_name(*method),
                        String::from_utf8_lossy(path.as_slice()),
                        kid.as_ref()
                            .map_or("none".into(), |k| kid_text(k.as_slice()))
                    )
                }
                other => format!("{other:?}"),
            };
            self.dirty = true;
            self.log(&format!("accounting: {line}"));
        }
    }

    fn on_request(
        &mut self,
        now: Duration,
        id: RequestId,
        peer: Peer,
        resource: usize,
        request: &Received<MAX_MESSAGE>,
    ) {
        let path = self.resources.get(resource).map_or("", |r| r.path);
        let code = request.code();
        let answer = match request.message() {
            Err(_) => Answer::from((Code::BAD_REQUEST, Vec::new(), None)),
            Ok(msg) => {
                match self
                    .policy
                    .decide(now, &peer, code, path, Some(&msg), request.security())
                {
                    Err(refused) => Answer::from(refused),
                    Ok(()) if self.plug.is_some() && plugtest::serves(path) => {
                        match self.plugtest(now, &peer, path, request, &msg) {
                            Handled::Now(a) => a,
                            Handled::Later(a) if self.deferred.len() < MAX_DEFERRED => {
                                self.log(&format!(
                                    "{peer} {} /{path} -> answered in {} s (separate response)",
                                    code.name().unwrap_or("?"),
                                    plugtest::SEPARATE_DELAY.as_secs()
                                ));
                                self.deferred.push(Deferred {
                                    at: now + plugtest::SEPARATE_DELAY,
                                    id,
                                    answer: a,
                                });
                                return;
                            }
                            // Too many waiting: this one is answered at once.
                            Handled::Later(a) => a,
                        }
                    }
                    Ok(()) => Answer::from(self.handle(now, &peer, path, &msg)),
                }
            }
        };
        let (rcode, payload) = (answer.code.unwrap_or(Code::CONTENT), &answer.payload);
        let sent = self.coap.respond(now, id, &answer.response());
        self.counters.exchanges += 1;
        self.dirty = true;
        let who = match (peer, request.security()) {
            (_, RequestSecurity::Oscore { kid, .. }) => {
                format!(" [OSCORE kid {}]", crate::util::hex(kid.as_bytes()))
            }
            (Peer::Secure(h), _) => self
                .policy
                .sessions
                .get(&h)
                .map_or(String::new(), |b| format!(" [{}]", b.label)),
            (Peer::Plain(_), _) => String::new(),
        };
        let block = request
            .message()
            .map_or(String::new(), |m| describe_blocks(&m));
        let status = match sent {
            Ok(()) => format!(
                "{rcode} {} ({} bytes)",
                rcode.name().unwrap_or(""),
                payload.len()
            ),
            Err(e) => format!("not answered: {e}"),
        };
        self.log(&format!(
            "{peer}{who} {} /{path}{block} ({} bytes) -> {status}",
            code.name().unwrap_or("?"),
            request.payload().len()
        ));
        if self.cfg.verbose > 0 {
            // `-v`: the request as it came (type, token, every option).
            self.log(&format!(
                "  request: {}",
                crate::client::describe_message(request.as_bytes())
            ));
        }
    }

    /// A plugtest resource's answer; bodies of `PUT`/`POST` to the upload
    /// resources are assembled from their Block1 blocks first (kept per
    /// peer, resource and Request-Tag, bounded like `/echo`'s), and the
    /// later Block2 blocks of `/large-post`'s answer come from the kept
    /// answer.
    fn plugtest(
        &mut self,
        now: Duration,
        peer: &Peer,
        path: &str,
        request: &Received<MAX_MESSAGE>,
        msg: &Message<'_>,
    ) -> Handled {
        let Some(plug) = self.plug.as_mut() else {
            return Handled::Now(Answer::from((Code::NOT_FOUND, Vec::new(), None)));
        };
        let upload = matches!(msg.code(), Code::PUT | Code::POST) && plugtest::takes_uploads(path);
        if !upload {
            return plug.handle(path, request, msg.payload());
        }
        let mut tag = path.as_bytes().to_vec();
        tag.push(0);
        tag.extend_from_slice(msg.option(OptionNumber::REQUEST_TAG).unwrap_or(&[]));
        let key = (*peer, tag);
        self.bodies.expire(now);
        let body = match msg.block1().ok().flatten() {
            Some(b) => match self.bodies.block(now, key.clone(), b, msg.payload()) {
                Upload::Incomplete => {
                    return Handled::Now(Answer::from((
                        Code::REQUEST_ENTITY_INCOMPLETE,
                        Vec::new(),
                        None,
                    )))
                }
                // 2.31 Continue (the endpoint turns a success into it).
                Upload::More => {
                    return Handled::Now(Answer::from((Code::CHANGED, Vec::new(), None)))
                }
                Upload::Done(body) => body,
            },
            None => {
                let later_block = msg.block2().ok().flatten().is_some_and(|b| b.num() > 0);
                if later_block && msg.payload().is_empty() {
                    if let Some(body) = self.bodies.last_answer(&key) {
                        return Handled::Now(Answer::from((
                            Code::CHANGED,
                            body,
                            Some(ContentFormat::TEXT_PLAIN),
                        )));
                    }
                }
                msg.payload().to_vec()
            }
        };
        let handled = plug.handle(path, request, &body);
        if let Handled::Now(a) = &handled {
            if path == "large-post" {
                self.bodies.answered(now, key, a.payload.clone());
            }
        }
        handled
    }

    fn handle(
        &mut self,
        now: Duration,
        peer: &Peer,
        path: &str,
        msg: &Message<'_>,
    ) -> (Code, Vec<u8>, Option<ContentFormat>) {
        let text = Some(ContentFormat::TEXT_PLAIN);
        let code = msg.code();
        match (path, code) {
            ("time", Code::GET) => (Code::CONTENT, iso_time(unix_now()).into_bytes(), text),
            ("sensors/temp", Code::GET) => (
                Code::CONTENT,
                format!("{:.1}", temperature(now.as_secs())).into_bytes(),
                text,
            ),
            ("actuators/led", Code::GET) => (
                Code::CONTENT,
                if self.led {
                    b"on".to_vec()
                } else {
                    b"off".to_vec()
                },
                text,
            ),
            ("actuators/led", Code::PUT) => match msg.payload() {
                b"on" | b"1" => {
                    self.led = true;
                    (Code::CHANGED, b"on".to_vec(), text)
                }
                b"off" | b"0" => {
                    self.led = false;
                    (Code::CHANGED, b"off".to_vec(), text)
                }
                _ => (Code::BAD_REQUEST, b"expected on or off".to_vec(), text),
            },
            ("large", Code::GET) => (Code::CONTENT, self.large.clone(), text),
            ("echo", Code::POST) => self.echo(now, peer, msg),
            ("authz-info", Code::POST) => self.authz_info(now, msg.payload()),
            _ => (Code::METHOD_NOT_ALLOWED, Vec::new(), None),
        }
    }

    /// `/echo`: answers the request body; Block1 uploads are assembled
    /// (the endpoint answers 2.31 Continue to intermediate blocks), and the
    /// later Block2 blocks of a long answer are served from the last body.
    /// Both are kept per peer and Request-Tag, as the endpoint keeps
    /// uploads apart (RFC 9175 §3; `/echo` is the only resource).
    fn echo(
        &mut self,
        now: Duration,
        peer: &Peer,
        msg: &Message<'_>,
    ) -> (Code, Vec<u8>, Option<ContentFormat>) {
        let cf = msg.content_format().ok().flatten();
        let tag = msg.option(OptionNumber::REQUEST_TAG).unwrap_or(&[]);
        let key = (*peer, tag.to_vec());
        self.bodies.expire(now);
        match msg.block1().ok().flatten() {
            Some(b) => match self.bodies.block(now, key.clone(), b, msg.payload()) {
                Upload::Incomplete => (Code::REQUEST_ENTITY_INCOMPLETE, Vec::new(), None),
                Upload::More => (Code::CHANGED, Vec::new(), None),
                Upload::Done(body) => {
                    self.bodies.answered(now, key, body.clone());
                    (Code::CHANGED, body, cf)
                }
            },
            None => {
                let later_block = msg.block2().ok().flatten().is_some_and(|b| b.num() > 0);
                if later_block && msg.payload().is_empty() {
                    if let Some(body) = self.bodies.last_answer(&key) {
                        return (Code::CHANGED, body, cf);
                    }
                }
                let body = msg.payload().to_vec();
                self.bodies.answered(now, key, body.clone());
                (Code::CHANGED, body, cf)
            }
        }
    }

    /// `POST /authz-info` (RFC 9200 §5.10.1): verify and store the token;
    /// keep it in the store so it survives a restart.
    fn authz_info(
        &mut self,
        now: Duration,
        token: &[u8],
    ) -> (Code, Vec<u8>, Option<ContentFormat>) {
        if !self.ace {
            return (Code::NOT_FOUND, Vec::new(), None);
        }
        let auth = self.auth.clone();
        let mut tok = token.to_vec();
        let mut out = [0u8; 64];
        let r = auth
            .borrow_mut()
            .post(now, Some(unix_now()), &mut tok, &mut out);
        if r.code == cssf_auth::authz_info::CREATED {
            let kid = auth.borrow().last_accepted_kid();
            if let (Some(st), Some(kid)) = (self.store.as_mut(), kid) {
                if let Err(e) = st.set_token(kid.as_slice(), token) {
                    println!("{}{e}", self.cfg.log_prefix);
                }
            }
        }
        let payload = out.get(..r.payload_len).unwrap_or(&[]).to_vec();
        let cf = (!payload.is_empty()).then_some(ContentFormat::ACE_CBOR);
        (Code(r.code), payload, cf)
    }
}

/// Who may do what: the Authorizer's grants, the oneM2M policies and the
/// live sessions they are decided for.
struct Policy {
    /// As many session grants as the largest `--max-sessions` (boxed: about
    /// 100 bytes a session, inline).
    authz: Box<Authorizer<SessionHandle, MAX_SESSIONS, 32>>,
    auth: Rc<RefCell<Authz>>,
    /// oneM2M access-control policies (`--acp`).
    acp: Option<Box<crate::acp_json::Policies>>,
    /// What each live session proved, and where it is.
    sessions: HashMap<SessionHandle, SessionInfo>,
    /// The scope of each OSCORE context, by its index in the endpoint.
    oscore_scopes: Vec<Option<Rights>>,
}

impl Policy {
    /// Whether `peer` may `code` `path` now (the request `msg`, if any,
    /// gives its oneM2M originator and query): `Err((code, payload,
    /// content-format))` when refused (RFC 9200 §5.10.2: 4.01 with AS
    /// Request Creation Hints, 4.03, 4.05). The Authorizer's grants and the
    /// oneM2M policies both permit (permit-overrides); an originator the
    /// session's credential may not claim is refused (4.03) whatever else
    /// would allow it (TS-0003 §7.2).
    fn decide(
        &mut self,
        now: Duration,
        peer: &Peer,
        code: Code,
        path: &str,
        msg: Option<&Message<'_>>,
        security: RequestSecurity,
    ) -> std::result::Result<(), (Code, Vec<u8>, Option<ContentFormat>)> {
        let Some(method) = Method::from_code(code.0) else {
            return Err((Code::METHOD_NOT_ALLOWED, Vec::new(), None));
        };
        let full = format!("/{path}");
        if let RequestSecurity::Oscore { context, .. } = security {
            // The context is the identity: its file's scope, and the
            // public rights.
            let scoped = self
                .oscore_scopes
                .get(context)
                .and_then(Option::as_ref)
                .is_some_and(|r| r.allows(method, &full));
            return if scoped || self.authz.public().allows(method, &full) {
                Ok(())
            } else {
                Err((Code::FORBIDDEN, Vec::new(), None))
            };
        }
        let wall = Some(unix_now());
        let (who, session) = match peer {
            Peer::Plain(_) => (Requester::Plain, None),
            Peer::Secure(h) => (Requester::Session(*h), self.sessions.get(h)),
        };
        let acp = self.acp.as_deref().and_then(|acp| {
            use cssf_auth::acp::{Operation, Request, ONEM2M_FR};
            let originator = msg
                .and_then(|m| m.option(cssf_coap::OptionNumber(ONEM2M_FR)))
                .and_then(|o| std::str::from_utf8(o).ok());
            // The device has no oneM2M discovery: a GET with `fu=1` is
            // served as a plain GET, so it is decided as Retrieve.
            let mut r = Request::new(Operation::from_coap(code.0, false)?, &full);
            r.credential = session.and_then(|s| s.credential.as_deref());
            r.originator = originator;
            // A plain request's source address is anyone's to forge: an
            // address range only counts for a session (whose address
            // answered the handshake).
            r.ip = session.map(|s| s.addr.ip());
            r.wall = wall;
            Some(acp.check(&r))
        });
        if acp == Some(cssf_auth::acp::AcpVerdict::Impersonation) {
            return Err((Code::FORBIDDEN, Vec::new(), None));
        }
        let mut a = self.auth.borrow_mut();
        match self.authz.decide(&mut a, who, method, &full, now, wall) {
            Verdict::Allow => Ok(()),
            _ if acp.is_some_and(|v| v.is_granted()) => Ok(()),
            Verdict::Unauthorized => {
                let mut out = [0u8; 128];
                let n = a.creation_hints(None, None, &mut out).unwrap_or(0);
                Err((
                    Code::UNAUTHORIZED,
                    out.get(..n).unwrap_or(&[]).to_vec(),
                    Some(ContentFormat::ACE_CBOR),
                ))
            }
            Verdict::Forbidden => Err((Code::FORBIDDEN, Vec::new(), None)),
            Verdict::MethodNotAllowed => Err((Code::METHOD_NOT_ALLOWED, Vec::new(), None)),
        }
    }
}

/// A live DTLS session, as the application sees it.
#[derive(Debug, Clone)]
struct SessionInfo {
    /// What it proved and was granted, for the log.
    label: String,
    /// Its credential id for oneM2M policies, if it proved one.
    credential: Option<Vec<u8>>,
    /// Its current address.
    addr: SocketAddr,
}

/// ` Block1 n/m/size Block2 n/m/size Observe v` for a log line.
fn describe_blocks(m: &Message<'_>) -> String {
    let mut s = String::new();
    for (name, b) in [("Block1", m.block1()), ("Block2", m.block2())] {
        if let Ok(Some(b)) = b {
            s.push_str(&format!(
                " {name} {}/{}/{}",
                b.num(),
                u8::from(b.more()),
                b.size()
            ));
        }
    }
    if let Ok(Some(o)) = m.observe() {
        s.push_str(&format!(" Observe {o}"));
    }
    s
}

/// Uploads in progress and last answers of `/echo` kept at most (each).
const ECHO_BODIES: usize = 16;

/// How long an `/echo` body is kept after its last block or answer: the
/// endpoint's EXCHANGE_LIFETIME (RFC 7252 §4.8.2), after which it has
/// forgotten the upload too.
const ECHO_BODY_LIFETIME: Duration = Duration::from_secs(247);

/// Whose `/echo` body: the peer and the request's Request-Tag.
type BodyKey = (Peer, Vec<u8>);

/// What a Block1 block of an `/echo` upload gives.
#[derive(Debug, PartialEq, Eq)]
enum Upload {
    /// More blocks follow.
    More,
    /// The last block: the whole body.
    Done(Vec<u8>),
    /// It does not continue an upload this device holds (4.08).
    Incomplete,
}

/// A kept body and when it goes.
#[derive(Debug)]
struct Kept {
    body: Vec<u8>,
    until: Duration,
}

/// `/echo` bodies by peer and Request-Tag: Block1 uploads being assembled
/// and the last answer (for the later Block2 blocks of a long one).
/// Bounded ([`ECHO_BODIES`] each, the oldest goes: many peers or spoofed
/// plain-CoAP sources cannot make them grow) and expiring
/// ([`ECHO_BODY_LIFETIME`]).
#[derive(Debug, Default)]
struct EchoBodies {
    uploads: HashMap<BodyKey, Kept>,
    answers: HashMap<BodyKey, Kept>,
}

impl EchoBodies {
    /// Drops what expired by `now`.
    fn expire(&mut self, now: Duration) {
        self.uploads.retain(|_, k| k.until > now);
        self.answers.retain(|_, k| k.until > now);
    }

    /// Drops everything of `peer` (its DTLS session ended).
    fn forget_peer(&mut self, peer: &Peer) {
        self.uploads.retain(|(p, _), _| p != peer);
        self.answers.retain(|(p, _), _| p != peer);
    }

    /// Adds a Block1 block.
    fn block(&mut self, now: Duration, key: BodyKey, b: Block, payload: &[u8]) -> Upload {
        if b.num() == 0 {
            make_room(&mut self.uploads, &key);
            self.uploads.insert(
                key.clone(),
                Kept {
                    body: Vec::new(),
                    until: now,
                },
            );
        }
        let Some(kept) = self.uploads.get_mut(&key) else {
            return Upload::Incomplete;
        };
        if kept.body.len() != b.offset() {
            self.uploads.remove(&key);
            return Upload::Incomplete;
        }
        kept.body.extend_from_slice(payload);
        kept.until = now + ECHO_BODY_LIFETIME;
        if b.more() {
            return Upload::More;
        }
        self.uploads
            .remove(&key)
            .map_or(Upload::Incomplete, |k| Upload::Done(k.body))
    }

    /// Keeps `body` as the last answer to `key`.
    fn answered(&mut self, now: Duration, key: BodyKey, body: Vec<u8>) {
        make_room(&mut self.answers, &key);
        self.answers.insert(
            key,
            Kept {
                body,
                until: now + ECHO_BODY_LIFETIME,
            },
        );
    }

    /// The last answer to `key`, if still kept.
    fn last_answer(&self, key: &BodyKey) -> Option<Vec<u8>> {
        self.answers.get(key).map(|k| k.body.clone())
    }
}

/// Keeps `map` under [`ECHO_BODIES`] entries before `key` is added (the
/// one that expires first goes).
fn make_room(map: &mut HashMap<BodyKey, Kept>, key: &BodyKey) {
    if map.len() >= ECHO_BODIES && !map.contains_key(key) {
        if let Some(k) = map
            .iter()
            .min_by_key(|(_, v)| v.until)
            .map(|(k, _)| k.clone())
        {
            map.remove(&k);
        }
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Fetch => "FETCH",
        Method::Patch => "PATCH",
        Method::IPatch => "iPATCH",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_is_deterministic() {
        let b = large_body();
        assert_eq!(b.len(), LARGE_LEN);
        assert!(b.starts_with(b"0000 abcdefghijklmnopqrstuvwxyz\n0001 "));
        assert!(b.ends_with(b"0127 abcdefghijklmnopqrstuvwxyz\n"));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_time(1_764_400_000), "2025-11-29T07:06:40Z");
    }

    #[test]
    fn echo_bodies_per_tag_bounded_and_expiring() {
        let peer = Peer::Plain("127.0.0.1:9".parse().unwrap());
        let key = |t: &[u8]| (peer, t.to_vec());
        let b = |n, m| Block::new(n, m, 0).unwrap();
        let t0 = Duration::ZERO;
        let mut e = EchoBodies::default();
        assert_eq!(e.block(t0, key(b"a"), b(0, true), &[1; 16]), Upload::More);
        assert_eq!(e.block(t0, key(b"b"), b(0, true), &[2; 16]), Upload::More);
        assert_eq!(
            e.block(t0, key(b"a"), b(1, false), &[3; 4]),
            Upload::Done([[1u8; 16].as_slice(), &[3; 4]].concat())
        );
        // A block that does not continue what is held: 4.08, and dropped.
        assert_eq!(
            e.block(t0, key(b"b"), b(2, true), &[2; 16]),
            Upload::Incomplete
        );
        assert_eq!(
            e.block(t0, key(b"b"), b(1, false), &[2; 1]),
            Upload::Incomplete
        );
        // Expiry.
        assert_eq!(e.block(t0, key(b"c"), b(0, true), &[4; 16]), Upload::More);
        e.answered(t0, key(b"c"), vec![9]);
        e.expire(ECHO_BODY_LIFETIME);
        assert_eq!(
            e.block(t0, key(b"c"), b(1, false), &[4; 1]),
            Upload::Incomplete
        );
        assert_eq!(e.last_answer(&key(b"c")), None);
        // Bounded.
        for i in 0..100u8 {
            e.answered(Duration::from_secs(u64::from(i)), key(&[i]), vec![i]);
            let _ = e.block(t0, key(&[i]), b(0, true), &[i; 16]);
        }
        assert!(e.answers.len() <= ECHO_BODIES && e.uploads.len() <= ECHO_BODIES);
        assert_eq!(e.last_answer(&key(&[99])), Some(vec![99]));
    }

    #[test]
    fn temperature_is_plausible() {
        for t in 0..120 {
            let v = temperature(t);
            assert!((19.4..=22.6).contains(&v), "{v}");
        }
    }
}
