//! The sensor node as deployed: a DTLS server (PSK and raw public keys),
//! a CoAP server authorizing every request, ACE tokens at `/authz-info`,
//! its keys and tokens in the encrypted store, serving real clients over
//! UART0 (SLIP frames, one per datagram, each carrying the peer's address:
//! see `link.rs`) through `cssf-slip-bridge --serve-coap ... --serve-coaps
//! ...` on the host.
//!
//! - DTLS (cssf_dtls::Endpoint, every suite of the build): PSK identity
//!   `Client_identity` / `secretPSK` (provisioned), or the PoP key of an ACE
//!   token posted to `/authz-info` (RFC 9202, `psk_identity` = the kid);
//!   ECDHE-ECDSA with the node's own P-256 key, client raw public keys
//!   (RFC 7250) required and trusted when pinned (the demo client key in
//!   `keys/client-rpk.pem`) or when a live token's PoP key.
//! - CoAP: `/.well-known/core`, `/authz-info` (POST, plain CoAP or DTLS),
//!   `/sensors/temp` and `/sensors/hum` (GET), `/actuators/led` (GET, PUT
//!   `on`/`off`). Every request passes `cssf_auth::authorizer::Authorizer`:
//!   the provisioned PSK identity and the pinned key may do everything on
//!   the three resources; a token's session, what its scope says; anyone,
//!   `POST /authz-info`.
//! - ACE: tokens MACed with HMAC 256 (`AS_HMAC_KEY`) or signed with ES256
//!   (the public half of `keys/as-es256.pem`), audience `rs1`. The node has
//!   no wall clock: tokens need `exi` (`cssf-token mint --exi`).
//! - Store: cssf-store on a RAM flash (2 sectors of 2 KiB), provisioned at
//!   boot with the PSK, the node's private key and the pinned client key;
//!   what the node uses is read back from it. Accepted tokens are stored.
//! - Time: SysTick; the DTLS endpoint's, the CoAP endpoint's and the
//!   token store's timers are all driven.
//!
//! The run ends when the bridge sends the end-of-run frame: the node then
//! prints its counters and the peak stack and exits 0.
#![no_std]
#![no_main]

#[path = "../psk_client_link/board.rs"]
mod board;
mod link;

use core::cell::RefCell;
use core::time::Duration;

use cortex_m_rt::entry;
use cssf_auth::aif::NoTextScopes;
use cssf_auth::authorizer::{Authorizer, Proof, Requester, Rights, Verdict};
use cssf_auth::{Algorithm, AuthzInfo, CoseKey, KeyEntry, Method};
use cssf_coap::endpoint::{Config as CoapConfig, Event as CoapEvent, Methods, Resource, Response};
use cssf_coap::{Code, ContentFormat};
use cssf_dtls::{
    Config as DtlsConfig, Endpoint, Event as DtlsEvent, Identity, PeerContext, PskStore,
    SessionHandle, SigningKey, TrustStore, MAX_PSK_LEN,
};
use cssf_firmware::{fail, line, put, put_num, stack, DemoRng};
use cssf_store::flash::RamFlash;
use cssf_store::{Config as StoreConfig, RamCounter, RootKey, Store};
use link::{Kind, PeerAddr};

/// The AS's HMAC key (`cssf-token mint --as-hmac-key` takes its hex).
const AS_HMAC_KEY: [u8; 32] = *b"AS-RS shared HMAC key, demo only";
/// The AS's ES256 public key, SEC1 uncompressed: the public half of
/// `keys/as-es256.pem` (`cssf-token mint --as-key keys/as-es256.pem`).
#[rustfmt::skip]
const AS_ES256_PUBLIC: [u8; 65] = [
    0x04, 0x72, 0x8d, 0x46, 0xd1, 0xec, 0x2a, 0xce, 0x39, 0x92, 0x46, 0x56, 0x30, 0x8f, 0x8a, 0x34,
    0x8e, 0xa1, 0x57, 0x7a, 0x21, 0xd1, 0x16, 0x17, 0x57, 0x8e, 0x65, 0xda, 0x38, 0x63, 0xc0, 0x98,
    0x42, 0x83, 0x8d, 0xa0, 0x5b, 0x53, 0x3d, 0x07, 0x7b, 0xa4, 0xd6, 0xb4, 0x22, 0x32, 0xd0, 0xdb,
    0x31, 0xa2, 0x5b, 0x01, 0x3d, 0x35, 0x3c, 0xc2, 0x01, 0x4e, 0xd9, 0xb1, 0xa6, 0xc8, 0xe8, 0x56,
    0x86,
];
/// The pinned client raw public key: the public half of
/// `keys/client-rpk.pem` (`coap-client-gnutls -M keys/client-rpk.pem`).
#[rustfmt::skip]
const CLIENT_RPK: [u8; 65] = [
    0x04, 0x10, 0xdb, 0xfb, 0xfd, 0x67, 0x0f, 0xf3, 0xe1, 0xbf, 0x5d, 0x6e, 0x92, 0xd8, 0x4c, 0x4c,
    0x72, 0xba, 0x32, 0x84, 0xac, 0x0f, 0x2f, 0x96, 0x64, 0x68, 0x25, 0xd9, 0xff, 0x97, 0x5d, 0x29,
    0x75, 0xdc, 0x34, 0x35, 0x77, 0xb7, 0x0a, 0x8f, 0xc5, 0x36, 0x56, 0xcf, 0xd4, 0x40, 0xb8, 0x91,
    0xf4, 0x98, 0xf9, 0xb6, 0x6a, 0xf3, 0x1d, 0x3b, 0x78, 0xa4, 0xf5, 0x9a, 0x1b, 0x01, 0x94, 0x75,
    0x76,
];
/// The node's own P-256 private key, written to the store at first boot
/// (a real node generates it at provisioning from its TRNG).
const NODE_SK: [u8; 32] = *b"sensor node P-256 key, demo only";
/// The provisioned PSK identity and key (libcoap's `-u ... -k ...`).
const PSK_IDENTITY: &[u8] = b"Client_identity";
const PSK: &[u8] = b"secretPSK";
/// The store's root key (a real device keeps it in a key slot or derives
/// it from a hardware unique key).
const ROOT_KEY: [u8; 32] = *b"sensor node store root key, demo";
/// What the provisioned PSK identity and the pinned key may do.
const PROVISIONED_RIGHTS: &str = "/sensors/temp:GET /sensors/hum:GET /actuators/led:GET,PUT";
/// Everyone's: posting a token.
const PUBLIC_RIGHTS: &str = "/authz-info:POST";
/// The token audience this node is.
const AUDIENCE: &str = "rs1";
/// The largest datagram either way (DTLS flights of the server fit 1 KiB).
const MAX_DATAGRAM: usize = 1024;
/// The largest CoAP message (a token POST is the largest input: the
/// tokens here are 121 and 153 bytes; one with a P-256 PoP key, an
/// estimated 230).
const COAP_MAX: usize = 320;
/// The largest token accepted at `/authz-info` (bounded by [`COAP_MAX`]).
const MAX_TOKEN: usize = 288;

/// The ACE resource server: 2 tokens, 8 remembered `cti`s, 4 events.
type Rs<'k> = AuthzInfo<'k, [KeyEntry], NoTextScopes, 2, 8, 4>;
/// Bytes of each of the DTLS endpoint's two application queues (sealed
/// records to send, received records to read), shared by its sessions:
/// one record of the largest CoAP message fits ([`COAP_MAX`] + 29 bytes
/// with AES_128_CCM_8). The node drains both after every record, so one
/// record at a time is all they hold.
const DTLS_QUEUE: usize = 384;
/// 3 sessions, 1 handshake at a time, 1 cached session, application
/// queues of [`DTLS_QUEUE`] bytes.
type Dtls<'r, 'k> =
    Endpoint<PeerAddr, NodePsk<'r, 'k>, DemoRng, 3, NodeTrust<'r, 'k>, 1, 1, DTLS_QUEUE>;
/// 2 slots per table, 4 remembered message IDs.
type Coap = cssf_coap::endpoint::Endpoint<Peer, DemoRng, 2, 4, COAP_MAX, 0>;
type Flash = RamFlash<{ 2 * 2048 }, 2048, 4, 1>;
/// The store on the RAM flash, both `main`'s variables (borrowed).
type NodeStore<'c> = Store<&'c mut Flash, &'c mut RamCounter, 6, 2>;

/// Who a CoAP message is from: a plain UDP address or a DTLS session (a
/// session is its handle, never its address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    Plain(PeerAddr),
    Secure(SessionHandle),
}

static RESOURCES: [Resource; 4] = [
    Resource::new("sensors/temp", Methods::GET).ct(0),
    Resource::new("sensors/hum", Methods::GET).ct(0),
    Resource::new("actuators/led", Methods::GET.union(Methods::PUT)).ct(0),
    Resource::new("authz-info", Methods::POST).ct(19),
];
/// Paths as rights and token scopes name them, by resource index.
const PATHS: [&str; 4] = [
    "/sensors/temp",
    "/sensors/hum",
    "/actuators/led",
    "/authz-info",
];
const AUTHZ_INFO: usize = 3;

/// The DTLS PSK store: the provisioned identity, then the ACE tokens
/// (RFC 9202 §3.3.1: the psk_identity is the PoP key's kid).
struct NodePsk<'r, 'k> {
    identity: heapless::Vec<u8, 32>,
    key: heapless::Vec<u8, 32>,
    rs: &'r RefCell<Rs<'k>>,
}

impl<A> PskStore<A> for NodePsk<'_, '_> {
    fn psk(
        &mut self,
        cx: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        if identity == self.identity.as_slice() {
            key.get_mut(..self.key.len())?.copy_from_slice(&self.key);
            return Some(self.key.len());
        }
        let mut rs = self.rs.try_borrow_mut().ok()?;
        rs.psk_store(cx.now, None)
            .psk_for(cx.handle.raw(), identity, key)
    }

    /// With ACE, an identity that selects neither the provisioned key nor
    /// a token is `illegal_parameter` (RFC 9202 §3.3.2).
    fn unknown_identity(&self) -> cssf_dtls::Error {
        cssf_dtls::Error::IllegalParameter
    }
}

/// Client raw public keys trusted: the pinned one, and the PoP keys of
/// live tokens (RFC 9202 §3.2).
struct NodeTrust<'r, 'k> {
    pinned: p256::PublicKey,
    rs: &'r RefCell<Rs<'k>>,
}

impl<A> TrustStore<A> for NodeTrust<'_, '_> {
    fn is_trusted(&self, cx: &PeerContext<'_, A>, key: &p256::PublicKey) -> bool {
        if *key == self.pinned {
            return true;
        }
        let Some((x, y)) = cssf_auth::pop::coordinates(key) else {
            return false;
        };
        self.rs
            .try_borrow()
            .is_ok_and(|rs| rs.trusts_pop_key(&x, &y, cx.now, None))
    }
}

/// Counters printed at the end of the run.
#[derive(Default)]
struct Counters {
    sessions: usize,
    requests: usize,
    allowed: usize,
    refused: usize,
    tokens: usize,
    frames_in: usize,
    frames_out: usize,
    bad_frames: usize,
}

/// The node's authorizer: 3 sessions, 2 provisioned identities.
type Authz = Authorizer<SessionHandle, 3, 2>;

/// Everything the node runs. The large parts are `main`'s variables,
/// each built where it stays (see `main`), and borrowed here.
struct Node<'a, 'r, 'k, 'c> {
    dtls: &'a mut Dtls<'r, 'k>,
    coap: &'a mut Coap,
    rs: &'r RefCell<Rs<'k>>,
    authz: &'a mut Authz,
    store: &'a mut NodeStore<'c>,
    led: bool,
    n: Counters,
    /// Set by the bridge's end-of-run frame.
    ended: bool,
}

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware sensor-node: Cortex-M4F, QEMU mps2-an386, UART0 + SLIP, SysTick 1 ms"]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);
    if !board::init() {
        fail(b"board init");
    }
    // ACE: the AS keys, compiled in.
    let (Ok(hmac), Ok(es256)) = (
        CoseKey::hmac(Algorithm::Hmac256, &AS_HMAC_KEY),
        p256::PublicKey::from_sec1_bytes(&AS_ES256_PUBLIC),
    ) else {
        fail(b"as keys")
    };
    let keys = [
        KeyEntry::new(hmac),
        KeyEntry::new(CoseKey::Es256(es256.into())),
    ];
    let rs = RefCell::new(Rs::new(cssf_auth::Config::new(AUDIENCE), &keys[..]));
    let mut counter = RamCounter::default();
    let mut flash = Flash::new();
    let start = board::now();
    // Each part is built by a function that is not inlined and returns it
    // (or the `Result` holding it) into the variable that keeps it for
    // the whole run: no copy of a part, and no construction temporaries,
    // stay in this frame. The `Result`s are kept as they are and borrowed.
    let mut store = mount(&mut flash, &mut counter);
    let Ok(store) = store.as_mut() else {
        fail(b"store: mount")
    };
    let (node_sk, psk_key, pinned) = provision(store);
    line(&[
        b"store: mounted on a RAM flash (2 x 2 KiB), node key, PSK and pinned client key read back",
    ]);
    let mut authz = authorizer(&pinned);
    let mut dtls = dtls_endpoint(&rs, node_sk, psk_key, pinned, start);
    let Ok(dtls) = dtls.as_mut() else {
        fail(b"dtls endpoint config")
    };
    let mut coap = coap_endpoint();
    let mut node = Node {
        dtls,
        coap: &mut coap,
        rs: &rs,
        authz: &mut authz,
        store,
        led: false,
        n: Counters::default(),
        ended: false,
    };
    line(&[b"link: UART0 up, SLIP frames with a peer header; serving coap and coaps"]);
    sizes();
    node.serve(start);
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}

/// Mounts the store on the RAM flash (empty at every boot).
#[inline(never)]
fn mount<'c>(
    flash: &'c mut Flash,
    counter: &'c mut RamCounter,
) -> Result<NodeStore<'c>, cssf_store::Error> {
    let mut salt_rng = DemoRng::new(0x5e45_0000_0000_0001);
    NodeStore::mount(
        flash,
        &RootKey(ROOT_KEY),
        counter,
        StoreConfig::new(),
        &mut salt_rng,
    )
}

/// The authorizer: public rights, and the provisioned PSK identity's and
/// pinned key's rights.
#[inline(never)]
fn authorizer(pinned: &p256::PublicKey) -> Authz {
    let mut authz = Authz::new();
    let (Ok(provisioned), Ok(public)) = (
        Rights::parse(PROVISIONED_RIGHTS),
        Rights::parse(PUBLIC_RIGHTS),
    ) else {
        fail(b"rights")
    };
    authz.set_public(public);
    let Some((px, py)) = cssf_auth::pop::coordinates(pinned) else {
        fail(b"pinned key")
    };
    if authz
        .provision_psk(PSK_IDENTITY, provisioned.clone())
        .and_then(|()| authz.provision_key(&px, &py, provisioned))
        .is_err()
    {
        fail(b"authorizer: provisioning");
    }
    authz
}

/// The DTLS server with the node's key, the PSK it read back and the
/// pinned key.
#[inline(never)]
fn dtls_endpoint<'r, 'k>(
    rs: &'r RefCell<Rs<'k>>,
    node_sk: SigningKey,
    psk_key: heapless::Vec<u8, 32>,
    pinned: p256::PublicKey,
    start: Duration,
) -> Result<Dtls<'r, 'k>, cssf_dtls::Error> {
    let mut cfg = DtlsConfig::default(); // every suite of the build
    cfg.require_client_auth = true;
    // Over this link the round trip is milliseconds (see psk-client-link).
    cfg.retransmit_initial = Duration::from_secs(1);
    cfg.retransmit_max = Duration::from_secs(8);
    let psk = NodePsk {
        identity: heapless::Vec::from_slice(PSK_IDENTITY).unwrap_or_default(),
        key: psk_key,
        rs,
    };
    let trust = NodeTrust { pinned, rs };
    Dtls::with_raw_public_key(
        cfg,
        psk,
        node_sk,
        trust,
        DemoRng::new(0x5e45_d715_0000_0002),
        start,
    )
}

/// The CoAP server: DTLS sessions are verified peers.
#[inline(never)]
fn coap_endpoint() -> Coap {
    let mut coap = Coap::new(
        CoapConfig::default(),
        DemoRng::new(0x5e45_c0a9_0000_0003),
        &RESOURCES,
    );
    coap.set_verified_peers(|p| matches!(p, Peer::Secure(_)));
    coap
}

/// First boot writes the demo credentials to the store; every boot reads
/// them back from it. Returns the node key, the PSK and the pinned key.
#[inline(never)]
fn provision(store: &mut NodeStore<'_>) -> (SigningKey, heapless::Vec<u8, 32>, p256::PublicKey) {
    if store.get_p256_private_key(b"node").is_err()
        && (store.set_p256_private_key(b"node", &NODE_SK).is_err()
            || store.set_psk(PSK_IDENTITY, PSK).is_err()
            || store.set_trusted_key(b"client", &CLIENT_RPK).is_err())
    {
        fail(b"store: provisioning");
    }
    let Ok(sk) = store.get_p256_private_key(b"node") else {
        fail(b"store: node key")
    };
    let Ok(sk) = SigningKey::from_slice(sk.as_slice()) else {
        fail(b"store: node key is not a P-256 scalar")
    };
    let mut psk = [0u8; 32];
    let psk = match store.get_psk(PSK_IDENTITY, &mut psk) {
        Ok(n) => heapless::Vec::from_slice(psk.get(..n).unwrap_or(&[])).unwrap_or_default(),
        Err(_) => fail(b"store: psk"),
    };
    let pinned = store
        .get_trusted_key(b"client")
        .ok()
        .and_then(|k| p256::PublicKey::from_sec1_bytes(&k).ok());
    let Some(pinned) = pinned else {
        fail(b"store: pinned key")
    };
    (sk, psk, pinned)
}

impl Node<'_, '_, '_, '_> {
    /// The main loop, until the bridge's end-of-run frame: bytes from
    /// UART0, timers, output. Not inlined, so its temporaries do not add
    /// to `main`'s frame, which holds the node's parts.
    #[inline(never)]
    fn serve(&mut self, start: Duration) {
        let mut decoder = cssf_firmware::slip::Decoder::<{ MAX_DATAGRAM + link::HEADER }>::new();
        while !self.ended {
            let now = board::now();
            let mut busy = false;
            while let Some(byte) = board::try_read() {
                busy = true;
                if let Some(frame) = decoder.push(byte) {
                    self.frame(now, frame);
                }
            }
            self.timers(now);
            self.pump(now);
            if !busy && !self.ended {
                board::wait();
            }
        }
        let now = board::now();
        self.report(now.saturating_sub(start), decoder.dropped());
    }

    /// One frame from the bridge. Not inlined: the DTLS input path's
    /// temporaries then do not stay live under `pump`.
    #[inline(never)]
    fn frame(&mut self, now: Duration, frame: &mut [u8]) {
        self.n.frames_in += 1;
        let Some((kind, peer, datagram)) = link::parse(frame) else {
            self.n.bad_frames += 1;
            return;
        };
        match kind {
            // Malformed or unwanted CoAP is dropped or answered (RST, 4.xx)
            // by the endpoint; the counts are in its stats.
            Kind::Coap => {
                let _ = self.coap.handle_datagram(now, Peer::Plain(peer), datagram);
            }
            // An error ends that one connection, reported as `Closed`.
            Kind::Coaps => {
                let _ = self.dtls.handle_datagram(now, peer, datagram);
            }
            Kind::End => self.ended = true,
        }
    }

    /// The timers of the DTLS endpoint, the CoAP endpoint and the tokens.
    /// Not inlined: what a retransmission takes is not in `serve`'s frame
    /// under every frame and the datagram input.
    #[inline(never)]
    fn timers(&mut self, now: Duration) {
        if self.dtls.poll_timeout().is_some_and(|t| t <= now) {
            // An error is one handshake's end, reported as `Closed`.
            self.dtls.handle_timeout(now);
        }
        if self.coap.poll_timeout().is_some_and(|t| t <= now) {
            self.coap.handle_timeout(now);
        }
        if let Ok(mut rs) = self.rs.try_borrow_mut() {
            if rs.poll_timeout().is_some_and(|t| t <= now) {
                rs.handle_timeout(now, None);
            }
        }
    }

    /// Moves everything that is ready until nothing moves.
    fn pump(&mut self, now: Duration) {
        let mut buf = [0u8; MAX_DATAGRAM + link::HEADER];
        for _ in 0..32 {
            let mut moved = false;
            while let Some(ev) = self.dtls.poll_event() {
                moved = true;
                self.dtls_event(now, ev, &mut buf);
            }
            while let Some(ev) = self.coap.poll_event() {
                moved = true;
                if let CoapEvent::Request {
                    id,
                    peer,
                    resource,
                    request,
                } = ev
                {
                    self.request(now, id, peer, resource, request.code(), request.payload());
                }
            }
            // Drain the token store's accounting events (not reported here).
            if let Ok(mut rs) = self.rs.try_borrow_mut() {
                while rs.poll_event().is_some() {}
            }
            loop {
                let out = buf.get_mut(link::HEADER..).unwrap_or(&mut []);
                match self.coap.poll_transmit(now, out) {
                    Ok(Some(t)) => {
                        moved = true;
                        match t.to {
                            Peer::Plain(to) => self.send(Kind::Coap, to, &mut buf, t.len),
                            Peer::Secure(h) => {
                                let d = buf.get(link::HEADER..link::HEADER + t.len);
                                // A session that ended meanwhile: dropped.
                                let _ = self.dtls.send(now, h, d.unwrap_or(&[]));
                                // Out at once: the send queue holds one
                                // record (see DTLS_QUEUE).
                                self.flush_dtls(now, &mut buf);
                            }
                        }
                    }
                    Ok(None) => break,
                    // Cannot happen with a buffer of COAP_MAX; drop it.
                    Err(_) => break,
                }
            }
            moved |= self.flush_dtls(now, &mut buf);
            if !moved {
                return;
            }
        }
    }

    /// Sends every datagram the DTLS endpoint has ready; true if any.
    fn flush_dtls(&mut self, now: Duration, buf: &mut [u8]) -> bool {
        let mut moved = false;
        loop {
            let out = buf.get_mut(link::HEADER..).unwrap_or(&mut []);
            match self.dtls.poll_transmit(now, out) {
                Ok(Some(t)) => {
                    moved = true;
                    self.send(Kind::Coaps, t.to, buf, t.len);
                }
                Ok(None) | Err(_) => return moved,
            }
        }
    }

    /// Writes the header before the `len` datagram bytes at
    /// `buf[HEADER..]` and sends the frame on UART0.
    fn send(&mut self, kind: Kind, to: PeerAddr, buf: &mut [u8], len: usize) {
        if let Some(h) = buf.get_mut(..link::HEADER) {
            link::emit_header(kind, to, h);
        }
        self.n.frames_out += 1;
        let frame = buf.get(..link::HEADER + len).unwrap_or(&[]);
        cssf_firmware::slip::encode_to(frame, board::write_byte);
    }

    fn dtls_event(&mut self, now: Duration, ev: DtlsEvent<PeerAddr>, buf: &mut [u8]) {
        match ev {
            DtlsEvent::ApplicationData { handle, .. } => {
                while let Ok(Some(n)) = self.dtls.recv(handle, buf) {
                    let d = buf.get_mut(..n).unwrap_or(&mut []);
                    let _ = self.coap.handle_datagram(now, Peer::Secure(handle), d);
                }
            }
            DtlsEvent::Connected {
                handle,
                peer,
                identity,
                suite,
                ..
            } => {
                self.n.sessions += 1;
                let key = match &identity {
                    Some(Identity::RawPublicKey(k)) => cssf_auth::pop::coordinates(k),
                    _ => None,
                };
                let (proof, what): (Proof<'_>, &[u8]) = match (&identity, &key) {
                    (Some(Identity::Psk(id)), _) => (Proof::Psk(id.as_bytes()), b"psk"),
                    (_, Some((x, y))) => (Proof::PublicKey(x, y), b"raw public key"),
                    _ => (Proof::Anonymous, b"nothing"),
                };
                let granted = match self.rs.try_borrow_mut() {
                    Ok(mut rs) => self.authz.on_connected(handle, proof, &mut rs).ok(),
                    Err(_) => None,
                };
                let granted: &[u8] = match granted {
                    Some(cssf_auth::authorizer::Granted::Provisioned) => b"provisioned rights",
                    Some(cssf_auth::authorizer::Granted::Token) => b"token scope",
                    Some(cssf_auth::authorizer::Granted::Anonymous) => b"public rights only",
                    None => b"no rights",
                };
                put(b"dtls: session from ");
                peer.put();
                put(b" connected, ");
                put(suite_name(suite));
                line(&[b", proved ", what, b", ", granted]);
            }
            DtlsEvent::Closed { handle, peer, .. } => {
                if let Ok(mut rs) = self.rs.try_borrow_mut() {
                    self.authz.on_closed(&handle, &mut rs);
                }
                self.coap.close_peer(&Peer::Secure(handle));
                put(b"dtls: session from ");
                peer.put();
                line(&[b" ended"]);
            }
            _ => {}
        }
    }

    /// One CoAP request for one of the resources: decided, then served.
    fn request(
        &mut self,
        now: Duration,
        id: cssf_coap::endpoint::RequestId,
        peer: Peer,
        resource: usize,
        code: Code,
        payload: &[u8],
    ) {
        self.n.requests += 1;
        let path = PATHS.get(resource).copied().unwrap_or("");
        let who = match peer {
            Peer::Plain(_) => Requester::Plain,
            Peer::Secure(h) => Requester::Session(h),
        };
        let verdict = match (Method::from_code(code.0), self.rs.try_borrow_mut()) {
            (Some(m), Ok(mut rs)) => self.authz.decide(&mut rs, who, m, path, now, None),
            _ => Verdict::MethodNotAllowed,
        };
        let mut out = [0u8; 64];
        let (rcode, body, cf): (Code, &[u8], Option<ContentFormat>) = match verdict {
            Verdict::Allow => {
                self.n.allowed += 1;
                match (resource, code) {
                    (0, Code::GET) => (Code::CONTENT, b"22.5", Some(ContentFormat::TEXT_PLAIN)),
                    (1, Code::GET) => (Code::CONTENT, b"41", Some(ContentFormat::TEXT_PLAIN)),
                    (2, Code::GET) => (
                        Code::CONTENT,
                        self.led_text(),
                        Some(ContentFormat::TEXT_PLAIN),
                    ),
                    (2, Code::PUT) => match payload {
                        b"on" | b"1" => {
                            self.led = true;
                            (Code::CHANGED, b"on", Some(ContentFormat::TEXT_PLAIN))
                        }
                        b"off" | b"0" => {
                            self.led = false;
                            (Code::CHANGED, b"off", Some(ContentFormat::TEXT_PLAIN))
                        }
                        _ => (Code::BAD_REQUEST, b"expected on or off", None),
                    },
                    (AUTHZ_INFO, Code::POST) => {
                        let (c, n) = self.authz_info(now, payload, &mut out);
                        let cf = (n > 0).then_some(ContentFormat::ACE_CBOR);
                        (c, out.get(..n).unwrap_or(&[]), cf)
                    }
                    _ => (Code::METHOD_NOT_ALLOWED, b"", None),
                }
            }
            Verdict::Unauthorized => {
                self.n.refused += 1;
                let n = match self.rs.try_borrow() {
                    Ok(rs) => rs.creation_hints(None, None, &mut out).unwrap_or(0),
                    Err(_) => 0,
                };
                (
                    Code::UNAUTHORIZED,
                    out.get(..n).unwrap_or(&[]),
                    Some(ContentFormat::ACE_CBOR),
                )
            }
            v => {
                self.n.refused += 1;
                (Code(v.code().unwrap_or(Code::FORBIDDEN.0)), b"", None)
            }
        };
        let mut r = Response::new(rcode).payload(body);
        if let Some(cf) = cf.filter(|_| !body.is_empty()) {
            r = r.content_format(cf);
        }
        // The request's state is gone (the peer's session ended): dropped.
        let _ = self.coap.respond(now, id, &r);
        put(b"coap: ");
        match peer {
            Peer::Plain(a) => {
                put(b"coap ");
                a.put();
            }
            Peer::Secure(_) => put(b"coaps session"),
        }
        put(b" ");
        put(method_name(code));
        put(b" ");
        put(path.as_bytes());
        put(b" -> ");
        put_code(rcode.0);
        line(&[]);
    }

    fn led_text(&self) -> &'static [u8] {
        if self.led {
            b"on"
        } else {
            b"off"
        }
    }

    /// `POST /authz-info` (RFC 9200 §5.10.1): verify and keep the token
    /// (in RAM, bounded, and in the store). Returns the code and the
    /// length of the payload written to `out`.
    fn authz_info(&mut self, now: Duration, token: &[u8], out: &mut [u8]) -> (Code, usize) {
        let mut tok = [0u8; MAX_TOKEN];
        let Some(t) = tok.get_mut(..token.len()) else {
            return (Code::REQUEST_ENTITY_TOO_LARGE, 0);
        };
        t.copy_from_slice(token);
        let Ok(mut rs) = self.rs.try_borrow_mut() else {
            return (Code::INTERNAL_SERVER_ERROR, 0);
        };
        let r = rs.post(now, None, t, out);
        if r.code == cssf_auth::authz_info::CREATED {
            self.n.tokens += 1;
            if let Some(kid) = rs.last_accepted_kid() {
                // A token the store cannot keep still works until reboot.
                let stored = self.store.set_token(kid.as_slice(), token).is_ok();
                put(b"authz-info: token accepted, 2.01, kid ");
                cssf_firmware::put_hex(kid.as_slice());
                line(&[if stored {
                    b", kept in the store"
                } else {
                    b", NOT kept in the store"
                }]);
            }
        }
        (Code(r.code), r.payload_len)
    }

    #[inline(never)]
    fn report(&mut self, ran: Duration, malformed: u32) {
        let n = &self.n;
        put(b"served: ");
        put_num(n.sessions);
        put(b" dtls sessions, ");
        put_num(n.requests);
        put(b" requests (");
        put_num(n.allowed);
        put(b" allowed, ");
        put_num(n.refused);
        put(b" refused), ");
        put_num(n.tokens);
        line(&[b" tokens accepted"]);
        put(b"link: ");
        put_num(n.frames_in);
        put(b" frames in, ");
        put_num(n.frames_out);
        put(b" out, ");
        put_num(n.bad_frames + malformed as usize);
        line(&[b" malformed"]);
        put(b"retransmissions: dtls ");
        put_num(self.dtls.stats().retransmissions as usize);
        line(&[]);
        let mut tokens = 0usize;
        let _ = self.store.for_each_key(|k| {
            if k.is_ok_and(|k| k.starts_with(b"tok/")) {
                tokens += 1;
            }
        });
        put(b"store: ");
        put_num(tokens);
        line(&[b" tokens kept"]);
        put(b"time: ");
        put_num(ran.as_millis() as usize);
        line(&[b" ms (SysTick)"]);
    }
}

fn suite_name(s: cssf_dtls::CipherSuite) -> &'static [u8] {
    use cssf_dtls::CipherSuite as S;
    match s {
        S::PskWithAes128Ccm8 => b"TLS_PSK_WITH_AES_128_CCM_8",
        S::EcdheEcdsaWithAes128Ccm8 => b"TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
        // The ChaCha20 suites, in a build with them (feature `full`).
        #[allow(unreachable_patterns)]
        _ => b"a TLS_*_CHACHA20_POLY1305_SHA256 suite",
    }
}

fn method_name(c: Code) -> &'static [u8] {
    match c {
        Code::GET => b"GET",
        Code::POST => b"POST",
        Code::PUT => b"PUT",
        Code::DELETE => b"DELETE",
        _ => b"?",
    }
}

/// Writes a CoAP code as `c.dd`.
fn put_code(code: u8) {
    put_num(usize::from(code >> 5));
    put(b".");
    let detail = code & 31;
    if detail < 10 {
        put(b"0");
    }
    put_num(usize::from(detail));
}

fn sizes() {
    use core::mem::size_of;
    put(b"size_of: dtls Endpoint<_,_,_,3,_,1,1,");
    put_num(DTLS_QUEUE);
    put(b"> ");
    put_num(size_of::<Dtls<'static, 'static>>());
    put(b" B, coap Endpoint<2,4,");
    put_num(COAP_MAX);
    put(b",0> ");
    put_num(size_of::<Coap>());
    put(b" B, AuthzInfo<2,8,4> ");
    put_num(size_of::<Rs<'static>>());
    put(b" B, Authorizer<3,2> ");
    put_num(size_of::<Authz>());
    put(b" B, Store<6,2> ");
    put_num(size_of::<NodeStore<'static>>());
    put(b" B, RamFlash ");
    put_num(size_of::<Flash>());
    line(&[b" B"]);
}
