//! The per-peer DTLS 1.2 handshake (RFC 6347 §4.2.4 flights, RFC 5246 §7.3),
//! shared by [`Client`](crate::Client) and the server
//! [`Endpoint`](crate::Endpoint): the state, record input and output and
//! what both roles share here; the client's flights and messages in
//! [`client`], the server's in [`server`]; once complete, a handshake is
//! compacted into an [`Established`](crate::established) session.
//!
//! Flights (PSK, RFC 6347 figure 1):
//! ```text
//! Client                                   Server
//! 1 ClientHello            -------->
//!                          <--------       HelloVerifyRequest 2
//! 3 ClientHello + cookie   -------->
//!                                          ServerHello        4
//!                                          ServerKeyExchange*
//!                          <--------       ServerHelloDone
//! 5 ClientKeyExchange
//!   ChangeCipherSpec
//!   Finished               -------->
//!                                          ChangeCipherSpec   6
//!                          <--------       Finished
//! ```
//!
//! ECDHE_ECDSA with raw public keys (RFC 8422, RFC 7250) adds the server's
//! Certificate before its signed ServerKeyExchange, and, with client
//! authentication, CertificateRequest in flight 4 and the client's
//! Certificate and CertificateVerify around its ClientKeyExchange in flight 5.

use core::time::Duration;

#[cfg(feature = "ecdhe")]
use crate::trust::{key_pair, SigningKey};
#[cfg(feature = "ecdhe")]
use cssf_provider::{EphemeralSecret, KeyPair, P256};
#[cfg(feature = "ecdhe")]
use p256::ecdsa::Signature;
#[cfg(feature = "ecdhe")]
use p256::elliptic_curve::sec1::ToEncodedPoint;
#[cfg(feature = "ecdhe")]
use p256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::{Config, MAX_CID_LEN, MAX_PEER_CID_LEN};
use crate::crypto::aead::{Backend, RecordCipher};
use crate::crypto::prf;
use crate::crypto::suite::{CipherSuite, KeyExchange};
use crate::established::{Established, Parts};
use crate::event::CloseReason;
use crate::flight::{
    whole_header, Ahead, Flight, Reassembly, AHEAD_CAPACITY, FLIGHT_CAPACITY, MAX_MESSAGE_LEN,
};
use crate::identity::{Identity, PskIdentity};
use crate::psk::{PeerContext, PskStore, MAX_IDENTITY_LEN, MAX_PSK_LEN};
use crate::record::{next_record, seal_record, InRecord, Reader, Unopened};
use crate::replay::ReplayWindow;
use crate::session::{Session, SESSION_ID_LEN};
use crate::stats::Stats;
use crate::trust::TrustStore;
use crate::wire::alert::{AlertRepr, LEVEL_FATAL, LEVEL_WARNING};
#[cfg(feature = "ecdhe")]
use crate::wire::certificate::{
    self as cert, CertificateRequestRepr, DigitallySignedRepr, RawPublicKeyCertificateRepr,
    ECDSA_SECP256R1_SHA256,
};
use crate::wire::cid_record;
use crate::wire::client_hello::ClientHelloRepr;
use crate::wire::extensions::{self as ext, ExtensionIter};
use crate::wire::handshake::{msg_type as mt, HandshakeHeader, HEADER_LEN as HS_HEADER};
use crate::wire::hello_verify_request::HelloVerifyRequestRepr;
use crate::wire::key_exchange::{ClientKeyExchangeRepr, ServerKeyExchangeRepr};
#[cfg(feature = "ecdhe")]
use crate::wire::key_exchange::{EcdhClientKeyExchangeRepr, SignedServerKeyExchangeRepr};
use crate::wire::record::{ContentType, RecordHeader, HEADER_LEN as REC_HEADER};
use crate::wire::server_hello::ServerHelloRepr;
use crate::wire::{Writer, DTLS_1_0, DTLS_1_2};
use crate::{AlertDescription, Error};

mod client;
#[cfg(feature = "server")]
mod server;

/// Client: HelloVerifyRequests (with a new cookie each) it answers.
const MAX_COOKIES: u8 = 4;

const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
#[cfg(feature = "server")]
const EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00FF;
const SEQ_LIMIT: u64 = 1 << 48;

/// What a handshake asks its owner: keys and trust decisions, the peer's
/// context ([`PeerContext`](crate::PeerContext)) already bound in.
pub(crate) trait Credentials {
    /// The PSK for a ClientKeyExchange's identity.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    fn psk(&mut self, identity: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize>;
    /// The error an identity without a key ends the handshake with.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    fn unknown_identity(&self) -> Error;
    /// Whether the peer's raw public key is accepted.
    #[cfg(feature = "ecdhe")]
    fn trusted(&self, key: &PublicKey) -> bool;
    /// Whether the peer's X.509 end-entity certificate is accepted.
    #[cfg(feature = "x509")]
    fn trusted_certificate(&self, certificate: &[u8], key: &PublicKey) -> bool;
}

/// The caller's stores bound to one peer's context: what a client or an
/// endpoint hands its handshake as [`Credentials`].
// A client never resolves PSKs and, without `ecdhe`, never checks keys:
// then nothing here is read.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) struct Bound<'a, A, P: ?Sized, T: ?Sized> {
    pub(crate) store: &'a mut P,
    #[cfg_attr(not(feature = "ecdhe"), allow(dead_code))]
    pub(crate) trust: &'a T,
    pub(crate) cx: PeerContext<'a, A>,
}

impl<A, P: PskStore<A> + ?Sized, T: TrustStore<A> + ?Sized> Credentials for Bound<'_, A, P, T> {
    fn psk(&mut self, identity: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize> {
        self.store.psk(&self.cx, identity, key)
    }
    fn unknown_identity(&self) -> Error {
        self.store.unknown_identity()
    }
    #[cfg(feature = "ecdhe")]
    fn trusted(&self, key: &PublicKey) -> bool {
        self.trust.is_trusted(&self.cx, key)
    }
    #[cfg(feature = "x509")]
    fn trusted_certificate(&self, certificate: &[u8], key: &PublicKey) -> bool {
        self.trust
            .is_trusted_certificate(&self.cx, certificate, key)
    }
}

/// The caller's dependencies a handshake uses, passed as one.
pub(crate) struct Deps<'a> {
    pub(crate) rng: &'a mut dyn CryptoRngCore,
    #[cfg_attr(not(any(feature = "server", feature = "ecdhe")), allow(dead_code))]
    pub(crate) creds: &'a mut dyn Credentials,
}

#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    Server,
}

/// Handshake states, named after what was last sent or received (the
/// server's are never entered without feature `server`).
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) enum State {
    /// Client: ClientHello sent, awaiting HelloVerifyRequest or ServerHello.
    ClientHelloSent,
    /// Client: ServerHello received, awaiting Certificate, ServerKeyExchange or ServerHelloDone.
    ServerHelloReceived,
    /// Client (ECDHE_ECDSA): the server's trusted key received, awaiting ServerKeyExchange.
    ServerCertificateReceived,
    /// Client: ServerKeyExchange received, awaiting ServerHelloDone (or a
    /// CertificateRequest before it); `certificate` is how we answer a
    /// CertificateRequest received so far.
    ServerKeyExchangeReceived {
        /// What flight 5 starts with.
        certificate: CertificateReply,
    },
    /// Client: flight 5 sent, awaiting the server's ChangeCipherSpec.
    ClientFinishedSent,
    /// Client: server ChangeCipherSpec received, awaiting its Finished.
    ServerCcsReceived,
    /// Client, abbreviated handshake: ServerHello resuming our session
    /// received, awaiting the server's ChangeCipherSpec.
    ResumeServerHelloReceived,
    /// Server, abbreviated handshake: ServerHello, ChangeCipherSpec and
    /// Finished sent, awaiting the client's ChangeCipherSpec.
    ResumeFinishedSent,
    /// Server: flight 4 sent, awaiting ClientKeyExchange, or first the
    /// client's Certificate when we sent a CertificateRequest (`client_auth`).
    ServerHelloDoneSent {
        /// We asked for (and require) the client's raw public key.
        client_auth: bool,
    },
    /// Server: the client's trusted key received, awaiting ClientKeyExchange.
    ClientCertificateReceived,
    /// Server: ClientKeyExchange received, awaiting CertificateVerify (if
    /// the client authenticates and it is still due) and ChangeCipherSpec.
    ClientKeyExchangeReceived {
        /// The client's CertificateVerify has not arrived yet.
        certificate_verify_due: bool,
    },
    /// Server: client ChangeCipherSpec received, awaiting its Finished.
    ClientCcsReceived,
    /// Handshake complete; application data flows.
    Connected,
    /// close_notify sent or received.
    Closed,
    /// A fatal error; only a pending alert may still go out.
    Failed,
}

/// How a client answers a CertificateRequest (RFC 5246 §7.4.6).
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "ecdhe"), allow(dead_code))]
pub(crate) enum CertificateReply {
    /// No CertificateRequest: no Certificate.
    NotAsked,
    /// Our raw public key, then a CertificateVerify.
    Own,
    /// An empty certificate_list: asked for a certificate we cannot give
    /// (the server decides whether to go on).
    Empty,
}

/// One DTLS association with one peer.
pub(crate) struct Connection {
    role: Role,
    pub(crate) state: State,
    config: Config,
    identity: heapless::Vec<u8, MAX_IDENTITY_LEN>,
    psk: Zeroizing<[u8; MAX_PSK_LEN]>,
    psk_len: usize,
    pub(crate) client_random: [u8; 32],
    server_random: [u8; 32],
    pub(crate) suite: Option<CipherSuite>,
    ems: bool,
    #[cfg(feature = "ecdhe")]
    ecdh: Ecdh,
    #[cfg(feature = "ecdhe")]
    ecdh_shared: Option<Zeroizing<[u8; 32]>>,
    /// Our ECDSA key (client: sent when asked; server: signs ServerKeyExchange).
    #[cfg(feature = "ecdhe")]
    own_key: Option<KeyPair>,
    /// The peer's authenticated (trusted) raw public key.
    #[cfg(feature = "ecdhe")]
    pub(crate) peer_key: Option<PublicKey>,
    /// Client: the server agreed to a raw public key from us (RFC 7250).
    #[cfg(feature = "ecdhe")]
    client_cert_rpk: bool,
    /// The peer's Certificate is X.509 (client: the server did not agree to
    /// a raw public key; feature `x509`).
    #[cfg(feature = "ecdhe")]
    peer_x509: bool,
    cookie: heapless::Vec<u8, 255>,
    transcript: Sha256,
    master: Zeroizing<[u8; 48]>,
    pending_read: Option<RecordCipher>,
    read: Option<RecordCipher>,
    write: Option<RecordCipher>,
    read_epoch: u16,
    write_seq: [u64; 2],
    replay: ReplayWindow,
    send_msg_seq: u16,
    recv_msg_seq: u16,
    /// The message that ended the peer's last flight: its message_seq and
    /// (with the server role compiled in) a digest of its epoch, type,
    /// sequence and body. Only a complete copy of it makes us resend our
    /// flight (RFC 6347 §4.2.4).
    peer_flight_last_seq: Option<u16>,
    #[cfg(feature = "server")]
    peer_flight_last: [u8; 16],
    /// When our current flight was last (re)sent: peer-triggered resends
    /// come at most once per initial retransmission timeout.
    flight_sent_at: Duration,
    flight: Flight,
    sending: Option<(usize, usize)>,
    retransmit_at: Option<Duration>,
    rto: Duration,
    retransmits: u8,
    reasm: Reassembly,
    ahead: Ahead,
    peer_record_limit: Option<u16>,
    alert: Option<(u8, u8)>,
    /// How the handshake ended, once it did (failed or closed).
    outcome: Option<CloseReason>,
    pub(crate) stats: Stats,
    pub(crate) last_activity: Duration,
    /// RFC 9146: the CID the peer puts in records to us (ours).
    pub(crate) cid_rx: heapless::Vec<u8, MAX_CID_LEN>,
    /// RFC 9146: the CID we put in records to the peer; `Some` once
    /// negotiated (empty: the peer wants none).
    cid_tx: Option<heapless::Vec<u8, MAX_PEER_CID_LEN>>,
    /// The last datagram held an authenticated record newer than every
    /// record before it (RFC 9146 §6).
    newest: bool,
    /// Return Routability Check (RFC 9853) was negotiated (with CIDs).
    rrc: bool,
    /// Server: the round trip of our last flight before the client's
    /// Finished, if it went out once (what the path checks of the session
    /// start from, RFC 9853 §5.5).
    #[cfg(all(feature = "server", feature = "cid"))]
    pub(crate) round_trip: Option<Duration>,
    /// Client: HelloVerifyRequest cookies taken so far.
    cookies_taken: u8,
    /// Client: the record sequence number our latest ClientHello first
    /// went out with (a HelloVerifyRequest echoes the one it answers).
    hello_record_seq: u64,
    /// Our ChangeCipherSpec is in a flight: alerts go out protected.
    ccs_pushed: bool,
    /// Server: the ID assigned or resumed; client: the ID the server gave.
    pub(crate) session_id: heapless::Vec<u8, SESSION_ID_LEN>,
    /// Client: the session offered (kept across HelloVerifyRequest); only
    /// with `resumption` (see [`offered`](Self::offered)).
    #[cfg(feature = "resumption")]
    offered: Option<Session>,
    /// This connection resumed a session (abbreviated handshake).
    pub(crate) resumed: bool,
    /// The connection ended with a fatal alert (sent or received).
    pub(crate) fatal: bool,
    /// The handshake completed (both Finished verified).
    pub(crate) established: bool,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Writes the connection_id extension (RFC 9146 §3) carrying `cid`.
fn put_cid_extension(w: &mut Writer<'_>, cid: &[u8]) -> Result<(), Error> {
    let n = u8::try_from(cid.len()).map_err(|_| Error::Internal)?;
    w.u16(cid_record::EXTENSION_TYPE)?;
    w.u16(u16::from(n) + 1)?;
    w.vec8(cid)
}

/// Our side of an ECDHE exchange between the flights.
#[cfg(feature = "ecdhe")]
#[derive(Debug)]
enum Ecdh {
    /// None (yet, or no longer: the keys are installed).
    None,
    /// Server: our ephemeral key, sent in ServerKeyExchange, awaiting the
    /// client's point.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    Secret(EphemeralSecret),
    /// Client: the shared secret is computed; our point, for the
    /// ClientKeyExchange.
    Sent(cssf_provider::PublicKey),
}

/// Decodes a peer's ECDH point: uncompressed (the only format we offer);
/// on the curve and not the identity is checked by the provider's ECDH,
/// which refuses it otherwise (RFC 8422 §5.11).
#[cfg(feature = "ecdhe")]
fn parse_point(point: &[u8]) -> Result<cssf_provider::PublicKey, Error> {
    cssf_provider::PublicKey::from_sec1(point).map_err(|_| Error::IllegalParameter)
}

/// A provider's ECDH result as the premaster secret's `Z`; a point the
/// provider refused is the peer's illegal_parameter (RFC 8422 §5.11).
#[cfg(feature = "ecdhe")]
fn shared_secret(
    z: Result<cssf_provider::SharedSecret, cssf_provider::Error>,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    match z {
        Ok(z) => Ok(Zeroizing::new(*z.as_bytes())),
        Err(cssf_provider::Error::InvalidPublicKey) => Err(Error::IllegalParameter),
        Err(_) => Err(Error::Internal),
    }
}

/// A peer's key as the provider takes it.
#[cfg(feature = "ecdhe")]
fn provider_key(key: &PublicKey) -> Result<cssf_provider::PublicKey, Error> {
    cssf_provider::PublicKey::from_sec1(key.to_encoded_point(false).as_bytes())
        .map_err(|_| Error::Internal)
}

/// A DER ECDSA signature (as TLS carries it) as the provider takes it.
#[cfg(feature = "ecdhe")]
fn signature_from_der(der: &[u8]) -> Result<cssf_provider::Signature, Error> {
    let sig = Signature::from_der(der).map_err(|_| Error::DecryptError)?;
    cssf_provider::Signature::from_slice(&sig.to_bytes()).map_err(|_| Error::DecryptError)
}

/// A provider's signature, DER-encoded for the wire (RFC 8422 §5.4's
/// `Ecdsa-Sig-Value`, a SEQUENCE of the INTEGERs r and s: minimal,
/// non-negative). Encoded here rather than through `ecdsa`'s DER code,
/// which costs a firmware image about half a kilobyte more.
#[cfg(feature = "ecdhe")]
fn signature_to_der(
    sig: Result<cssf_provider::Signature, cssf_provider::Error>,
) -> Result<DerSignature, Error> {
    let sig = sig.map_err(|_| Error::Internal)?;
    let (r, s) = sig.as_bytes().split_at(32);
    let mut der = heapless::Vec::new();
    let integer = |x: &[u8], der: &mut heapless::Vec<u8, DER_SIGNATURE_CAPACITY>| {
        // Leading zeros dropped (one kept for a zero value), a zero byte
        // in front of a high bit (else the INTEGER would be negative).
        let start = x.iter().position(|&b| b != 0).unwrap_or(x.len() - 1);
        let x = x.get(start..).unwrap_or_default();
        let pad = x.first().is_some_and(|&b| b >= 0x80);
        let len = x.len() + usize::from(pad);
        der.push(0x02)
            .and_then(|_| der.push(len as u8))
            .map_err(|_| Error::Internal)?;
        if pad {
            der.push(0).map_err(|_| Error::Internal)?;
        }
        der.extend_from_slice(x).map_err(|_| Error::Internal)
    };
    der.extend_from_slice(&[0x30, 0])
        .map_err(|_| Error::Internal)?;
    integer(r, &mut der)?;
    integer(s, &mut der)?;
    let body = der.len() - 2;
    if let Some(l) = der.get_mut(1) {
        *l = body as u8; // at most 2 × 35 bytes: short form
    }
    Ok(der)
}

/// The longest DER ECDSA P-256 signature: SEQUENCE header and two
/// INTEGERs of 33 bytes (a zero byte before a high bit).
#[cfg(feature = "ecdhe")]
const DER_SIGNATURE_CAPACITY: usize = 2 + 2 * (2 + 33);

/// A DER-encoded signature, as TLS carries it.
#[cfg(feature = "ecdhe")]
type DerSignature = heapless::Vec<u8, DER_SIGNATURE_CAPACITY>;

/// `client_random + server_random + ServerECDHParams`, what the server signs.
#[cfg(feature = "ecdhe")]
fn signed_params(
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    params: &[u8],
) -> Result<heapless::Vec<u8, 160>, Error> {
    let mut m = heapless::Vec::new();
    m.extend_from_slice(client_random)
        .and_then(|_| m.extend_from_slice(server_random))
        .and_then(|_| m.extend_from_slice(params))
        .map_err(|_| Error::IllegalParameter)?;
    Ok(m)
}

/// What identifies the message that ended the peer's flight: SHA-256 over
/// its epoch, type, sequence and body, truncated to 16 bytes.
#[cfg(feature = "server")]
fn flight_end_digest(epoch: u16, t: u8, seq: u16, body: &[u8]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(epoch.to_be_bytes());
    h.update(whole_header(t, seq, body.len()));
    h.update(body);
    let d: [u8; 32] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
    out
}

/// Appends a handshake message (`(type, epoch, body length)`, the body
/// written by `emit`) to `flight` and `transcript`: the fields
/// [`Connection::push_handshake`] touches, apart, so a message can be
/// emitted from other fields of the connection (a ClientHello's cookie)
/// without a copy of them on the stack.
fn push_message(
    flight: &mut Flight,
    transcript: &mut Sha256,
    send_msg_seq: &mut u16,
    (t, epoch, body_len): (u8, u16, usize),
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<(), Error> {
    if HS_HEADER + body_len > FLIGHT_CAPACITY {
        return Err(Error::Internal);
    }
    let seq = *send_msg_seq;
    let buf = flight.push(CT_HANDSHAKE, epoch, HS_HEADER + body_len)?;
    let (hdr, body) = buf.split_at_mut(HS_HEADER);
    let res = HandshakeHeader::whole(t, seq, body_len)
        .emit(hdr)
        .and_then(|_| emit(body));
    match res {
        Ok(n) if n == body_len => {}
        _ => {
            flight.pop();
            return Err(Error::Internal);
        }
    }
    transcript.update(&*buf);
    *send_msg_seq = seq.wrapping_add(1);
    Ok(())
}

fn be16(b: &[u8]) -> u16 {
    b.iter().fold(0u16, |a, &x| (a << 8) | u16::from(x))
}

impl Connection {
    fn blank(role: Role, config: Config, now: Duration) -> Self {
        let rto = config.retransmit_initial;
        Connection {
            role,
            state: State::Failed,
            config,
            identity: heapless::Vec::new(),
            psk: Zeroizing::new([0; MAX_PSK_LEN]),
            psk_len: 0,
            client_random: [0; 32],
            server_random: [0; 32],
            suite: None,
            ems: false,
            #[cfg(feature = "ecdhe")]
            ecdh: Ecdh::None,
            #[cfg(feature = "ecdhe")]
            ecdh_shared: None,
            #[cfg(feature = "ecdhe")]
            own_key: None,
            #[cfg(feature = "ecdhe")]
            peer_key: None,
            #[cfg(feature = "ecdhe")]
            client_cert_rpk: false,
            #[cfg(feature = "ecdhe")]
            peer_x509: false,
            cookie: heapless::Vec::new(),
            transcript: Sha256::new(),
            master: Zeroizing::new([0; 48]),
            pending_read: None,
            read: None,
            write: None,
            read_epoch: 0,
            write_seq: [0; 2],
            replay: ReplayWindow::new(),
            send_msg_seq: 0,
            recv_msg_seq: 0,
            peer_flight_last_seq: None,
            #[cfg(feature = "server")]
            peer_flight_last: [0; 16],
            flight_sent_at: now,
            flight: Flight::new(),
            sending: None,
            retransmit_at: None,
            rto,
            retransmits: 0,
            reasm: Reassembly::new(),
            ahead: Ahead::new(),
            peer_record_limit: None,
            alert: None,
            outcome: None,
            stats: Stats::default(),
            last_activity: now,
            cid_rx: heapless::Vec::new(),
            cid_tx: None,
            newest: false,
            rrc: false,
            #[cfg(all(feature = "server", feature = "cid"))]
            round_trip: None,
            cookies_taken: 0,
            hello_record_seq: 0,
            ccs_pushed: false,
            session_id: heapless::Vec::new(),
            #[cfg(feature = "resumption")]
            offered: None,
            resumed: false,
            fatal: false,
            established: false,
        }
    }

    fn add_transcript(&mut self, t: u8, seq: u16, body: &[u8]) {
        self.transcript.update(whole_header(t, seq, body.len()));
        self.transcript.update(body);
    }

    fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    // ---- output helpers -------------------------------------------------

    fn new_flight(&mut self, now: Duration, expect_reply: bool) {
        self.flight.clear();
        self.sending = None;
        self.retransmits = 0;
        self.rto = self.config.retransmit_initial;
        self.retransmit_at = expect_reply.then(|| now.saturating_add(self.rto));
        self.flight_sent_at = now;
    }

    fn start_sending(&mut self) {
        if !self.flight.entries.is_empty() {
            self.sending = Some((0, 0));
        }
    }

    /// Appends a handshake message to the flight and the transcript.
    fn push_handshake(
        &mut self,
        t: u8,
        epoch: u16,
        body_len: usize,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    ) -> Result<(), Error> {
        push_message(
            &mut self.flight,
            &mut self.transcript,
            &mut self.send_msg_seq,
            (t, epoch, body_len),
            emit,
        )
    }

    fn push_ccs(&mut self) -> Result<(), Error> {
        let b = self.flight.push(CT_CCS, 0, 1)?;
        b.fill(1);
        self.ccs_pushed = true;
        Ok(())
    }

    pub(crate) fn fail(&mut self, e: Error) -> Error {
        if e.code().is_some() || matches!(e, Error::AlertReceived(_)) {
            // RFC 5246 §7.2.2: never resumed after a fatal alert.
            self.fatal = true;
        }
        if !matches!(self.state, State::Failed | State::Closed) {
            if e.is_local() {
                warn!("{:?} handshake failed: {:?}", self.role, e);
            } else {
                debug!("{:?} handshake failed: {:?}", self.role, e);
            }
            if let Some(code) = e.code() {
                self.alert = Some((LEVEL_FATAL, code.to_u8()));
            }
            self.outcome.get_or_insert(CloseReason::Error(e));
        }
        self.state = State::Failed;
        self.sending = None;
        self.retransmit_at = None;
        e
    }

    // ---- client flights --------------------------------------------------

    fn kx(&self) -> Option<KeyExchange> {
        self.suite.map(CipherSuite::key_exchange)
    }

    /// The P-256 implementation of the configured provider.
    #[cfg(feature = "ecdhe")]
    fn p256(&self) -> &'static dyn P256 {
        self.config.crypto.p256
    }

    /// Our public key as a SubjectPublicKeyInfo.
    #[cfg(feature = "ecdhe")]
    fn own_spki(&self) -> Result<[u8; cert::SPKI_P256_LEN], Error> {
        let key = self.own_key.as_ref().ok_or(Error::Internal)?;
        Ok(cert::spki_p256(key.public.as_bytes()))
    }

    /// Parses the peer's raw public key Certificate and asks `trust`.
    #[cfg(feature = "ecdhe")]
    fn process_peer_certificate(
        &mut self,
        creds: &dyn Credentials,
        body: &[u8],
    ) -> Result<(), Error> {
        #[cfg(feature = "x509")]
        if self.peer_x509 {
            let list =
                cert::X509CertificateListRepr::parse(body).map_err(|_| Error::BadCertificate)?;
            let end_entity = list.certs().next().ok_or(Error::BadCertificate)?;
            let key = crate::x509::certificate_key(end_entity)?;
            if !creds.trusted_certificate(end_entity, &key) {
                return Err(Error::UntrustedPeer);
            }
            self.peer_key = Some(key);
            return Ok(());
        }
        let c = RawPublicKeyCertificateRepr::parse(body).map_err(|_| Error::BadCertificate)?;
        let point = cert::parse_spki_p256(c.spki)?;
        let key = PublicKey::from_sec1_bytes(point).map_err(|_| Error::BadCertificate)?;
        if !creds.trusted(&key) {
            return Err(Error::UntrustedPeer);
        }
        self.peer_key = Some(key);
        Ok(())
    }

    /// Pushes our Certificate: a raw public key, or (`x509`, a server
    /// with feature `x509`) the configured X.509 certificate.
    #[cfg(feature = "ecdhe")]
    fn push_own_certificate(&mut self, x509: bool) -> Result<(), Error> {
        #[cfg(not(feature = "x509"))]
        let _ = x509;
        #[cfg(feature = "x509")]
        if x509 {
            let der = self.config.certificate.clone();
            let n = cert::X509CertificateListRepr::single_len(&der);
            return self.push_handshake(mt::CERTIFICATE, 0, n, |b| {
                cert::X509CertificateListRepr::emit_single(&der, b)
            });
        }
        let spki = self.own_spki()?;
        let c = RawPublicKeyCertificateRepr { spki: &spki };
        self.push_handshake(mt::CERTIFICATE, 0, c.buffer_len(), |b| c.emit(b))
    }

    fn derive_keys(&mut self) -> Result<(), Error> {
        let suite = self.suite.ok_or(Error::Internal)?;
        let mut pms = Zeroizing::new([0u8; 134]);
        #[cfg(feature = "ecdhe")]
        let other = self.ecdh_shared.as_ref().map(|z| &z[..]);
        #[cfg(not(feature = "ecdhe"))]
        let other: Option<&[u8]> = None;
        let n = if suite.key_exchange().is_ecdsa() {
            // RFC 8422 §5.10: the premaster secret is the x coordinate.
            let z = other.ok_or(Error::Internal)?;
            pms.get_mut(..z.len())
                .ok_or(Error::Internal)?
                .copy_from_slice(z);
            z.len()
        } else {
            let psk = self.psk.get(..self.psk_len).ok_or(Error::Internal)?;
            prf::psk_premaster(other, psk, &mut pms)
        };
        let pms = pms.get(..n).ok_or(Error::Internal)?;
        let hash = self.transcript_hash();
        self.master = prf::master_secret(
            pms,
            &self.client_random,
            &self.server_random,
            self.ems.then_some(&hash),
        );
        self.install_keys()
    }

    /// The key block from the master secret and both randoms (RFC 5246
    /// §6.3): the write cipher, and the read cipher pending the peer's CCS.
    fn install_keys(&mut self) -> Result<(), Error> {
        let suite = self.suite.ok_or(Error::Internal)?;
        let a = suite.aead();
        let (k, iv) = (a.key_len(), a.fixed_iv_len());
        let mut kb = Zeroizing::new([0u8; 2 * (32 + 12)]);
        let kb = kb.get_mut(..2 * (k + iv)).ok_or(Error::Internal)?;
        prf::prf(
            &self.master[..],
            b"key expansion",
            &[&self.server_random, &self.client_random],
            kb,
        );
        let (ck, rest) = kb.split_at(k);
        let (sk, rest) = rest.split_at(k);
        let (civ, siv) = rest.split_at(iv);
        let client = RecordCipher::new(a, ck, civ)?;
        let server = RecordCipher::new(a, sk, siv)?;
        let (w, r) = match self.role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        self.write = Some(w);
        self.pending_read = Some(r);
        #[cfg(feature = "ecdhe")]
        {
            self.ecdh = Ecdh::None;
            self.ecdh_shared = None;
        }
        Ok(())
    }

    // ---- server flights --------------------------------------------------

    fn check_finished(&self, body: &[u8]) -> Result<(), Error> {
        if body.len() != 12 {
            return Err(Error::Decode);
        }
        let peer_is_client = self.role == Role::Server;
        let expected = prf::verify_data(&self.master, peer_is_client, &self.transcript_hash());
        if bool::from(expected.ct_eq(body)) {
            Ok(())
        } else {
            Err(Error::DecryptError)
        }
    }

    fn connected(&mut self) {
        debug!(
            "handshake complete ({:?}, suite {:?})",
            self.role, self.suite
        );
        self.state = State::Connected;
        self.established = true;
        self.retransmit_at = None;
    }

    // ---- input -----------------------------------------------------------

    /// Processes one datagram. An `Err` means the connection is dead.
    /// Returns how many bytes were consumed: when a record completes the
    /// handshake, the records after it are left for the established
    /// session (see [`compact`](Self::compact)).
    pub(crate) fn handle_datagram(
        &mut self,
        now: Duration,
        data: &mut [u8],
        cx: &mut Deps<'_>,
    ) -> Result<usize, Error> {
        let total_len = data.len();
        if matches!(self.state, State::Failed | State::Closed) {
            return Ok(total_len);
        }
        let was_connected = self.state == State::Connected;
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        self.newest = false;
        let mut rest = data;
        while !rest.is_empty() {
            let cid_rx = self.expects_cid().then_some(&self.cid_rx[..]);
            let Some(rec) = next_record(&mut rest, cid_rx, &mut self.stats) else {
                break;
            };
            let r = match rec {
                InRecord::Plain(hdr, payload) => self.handle_record(now, &hdr, payload, cx),
                InRecord::Cid {
                    version,
                    epoch,
                    seq,
                    cid_ok,
                    payload,
                } => self.handle_cid_record(now, version, epoch, seq, cid_ok, payload, cx),
            };
            if let Err(e) = r {
                return Err(self.fail(e));
            }
            if matches!(self.state, State::Failed | State::Closed)
                || (!was_connected && self.state == State::Connected)
            {
                break;
            }
        }
        Ok(total_len - rest.len())
    }

    fn handle_record(
        &mut self,
        now: Duration,
        hdr: &RecordHeader,
        payload: &mut [u8],
        cx: &mut Deps<'_>,
    ) -> Result<(), Error> {
        if !self.record_version_ok(hdr, payload) {
            self.stats.records_dropped += 1;
            return Ok(());
        }
        let plain: &[u8] = match hdr.epoch {
            0 => {
                if hdr.content_type == ContentType::ApplicationData
                    || (hdr.content_type == ContentType::Alert && self.read_epoch != 0)
                    || self.stale_hello_verify_request(hdr, payload)
                {
                    self.stats.records_dropped += 1;
                    return Ok(());
                }
                payload
            }
            1 if self.read_epoch == 1 => {
                let Some(read) = self.read.as_ref().filter(|_| !self.expects_cid()) else {
                    // RFC 9146 §4: with a CID negotiated, plain protected
                    // records are invalid.
                    self.stats.records_dropped += 1;
                    return Ok(());
                };
                let mut rd = Reader {
                    read,
                    aead: aead_of(&self.config),
                    replay: &mut self.replay,
                    newest: &mut self.newest,
                    stats: &mut self.stats,
                };
                match rd.open(hdr, payload) {
                    Ok(plain) => plain,
                    // Awaiting the peer's Finished, a handshake record that
                    // fails authentication means the keys differ (wrong
                    // PSK): fail fast with bad_record_mac (RFC 6347
                    // §4.1.2.7).
                    Err(Unopened::BadMac)
                        if self.awaiting_finished()
                            && hdr.content_type == ContentType::Handshake =>
                    {
                        return Err(Error::BadRecordMac)
                    }
                    Err(_) => return Ok(()),
                }
            }
            _ => {
                self.stats.records_dropped += 1;
                return Ok(());
            }
        };
        self.dispatch(now, hdr.epoch, hdr.content_type, plain, cx)
    }

    /// RFC 6347 §4.1: records carry the negotiated version, DTLS 1.2. Only
    /// before it is settled may an epoch-0 record carry DTLS 1.0 (0xFEFF):
    /// a client's ClientHello (OpenSSL sends its ClientHellos so), and, to a
    /// client still waiting for the ServerHello, the server's
    /// HelloVerifyRequest (RFC 6347 §4.2.1) or an alert. Anything else, such
    /// as a ServerHello under 0xFEFC, is dropped.
    fn record_version_ok(&self, hdr: &RecordHeader, payload: &[u8]) -> bool {
        match hdr.version {
            DTLS_1_2 => true,
            DTLS_1_0 if hdr.epoch == 0 => match (self.role, hdr.content_type) {
                #[cfg(feature = "server")]
                (Role::Server, ContentType::Handshake) => {
                    payload.first() == Some(&mt::CLIENT_HELLO)
                }
                (Role::Client, ContentType::Handshake) => {
                    self.state == State::ClientHelloSent
                        && payload.first() == Some(&mt::HELLO_VERIFY_REQUEST)
                }
                (Role::Client, ContentType::Alert) => self.state == State::ClientHelloSent,
                _ => false,
            },
            _ => false,
        }
    }

    /// Client: a HelloVerifyRequest that answers an earlier ClientHello
    /// than our latest. When our first ClientHello is retransmitted before
    /// the request arrives, the server answers each copy, each with its
    /// own cookie (the cookie holds its time): the late answer to the
    /// first copy, taken as a new cookie, would start our handshake over
    /// under the server's feet. A request answers our latest ClientHello
    /// when it carries its message_seq (as our server's do) or, from a
    /// server that numbers every request 0, the record sequence number of
    /// one of its records (RFC 6347 §4.2.1: the server MUST echo it).
    fn stale_hello_verify_request(&self, hdr: &RecordHeader, payload: &[u8]) -> bool {
        if self.role != Role::Client
            || self.state != State::ClientHelloSent
            || hdr.content_type != ContentType::Handshake
        {
            return false;
        }
        HandshakeHeader::parse(payload).is_ok_and(|(h, _, _)| {
            h.msg_type == mt::HELLO_VERIFY_REQUEST
                && h.message_seq != self.send_msg_seq.wrapping_sub(1)
                && hdr.sequence < self.hello_record_seq
        })
    }

    /// True once a CID was negotiated (either direction may be empty).
    pub(crate) fn cid_negotiated(&self) -> bool {
        cfg!(feature = "cid") && self.cid_tx.is_some()
    }

    /// True when the peer must send us tls12_cid records (epoch >= 1).
    fn expects_cid(&self) -> bool {
        self.cid_negotiated() && !self.cid_rx.is_empty()
    }

    /// Awaiting the peer's Finished under its new keys.
    fn awaiting_finished(&self) -> bool {
        matches!(
            self.state,
            State::ServerCcsReceived | State::ClientCcsReceived
        )
    }

    /// True when the last datagram carried an authenticated record newer
    /// than every earlier one: the only kind that may move the peer's
    /// address (RFC 9146 §6).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn took_newest(&self) -> bool {
        self.newest
    }

    /// A tls12_cid record (RFC 9146 §4, §5): authenticated with the CID in
    /// the additional data, then the real type recovered from the inner
    /// plaintext.
    #[allow(clippy::too_many_arguments)]
    fn handle_cid_record(
        &mut self,
        now: Duration,
        version: u16,
        epoch: u16,
        seq: u64,
        cid_ok: bool,
        payload: &mut [u8],
        cx: &mut Deps<'_>,
    ) -> Result<(), Error> {
        let Some(read) = self.read.as_ref().filter(|_| self.read_epoch == 1) else {
            self.stats.records_dropped += 1;
            return Ok(());
        };
        let mut rd = Reader {
            read,
            aead: aead_of(&self.config),
            replay: &mut self.replay,
            newest: &mut self.newest,
            stats: &mut self.stats,
        };
        match rd.open_cid(version, epoch, seq, cid_ok, &self.cid_rx, payload) {
            Ok((ct, plain)) => self.dispatch(now, epoch, ct, plain, cx),
            // As for plain records: awaiting Finished, a failure means
            // different keys.
            Err(Unopened::BadMac) if self.awaiting_finished() => Err(Error::BadRecordMac),
            Err(_) => Ok(()),
        }
    }

    /// An authenticated (or epoch-0) record's plaintext, by content type.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        now: Duration,
        epoch: u16,
        content_type: ContentType,
        plain: &[u8],
        cx: &mut Deps<'_>,
    ) -> Result<(), Error> {
        match content_type {
            ContentType::Handshake => {
                let mut rest = plain;
                while !rest.is_empty() {
                    let Ok((h, frag, tail)) = HandshakeHeader::parse(rest) else {
                        self.stats.records_dropped += 1;
                        return Ok(());
                    };
                    rest = tail;
                    self.handle_fragment(now, epoch, &h, frag, cx)?;
                    if matches!(self.state, State::Failed | State::Closed) {
                        break;
                    }
                }
                Ok(())
            }
            ContentType::ChangeCipherSpec => {
                if plain != [1] {
                    return Err(Error::Decode);
                }
                let next = match (self.role, self.state) {
                    (
                        Role::Client,
                        State::ClientFinishedSent | State::ResumeServerHelloReceived,
                    ) => State::ServerCcsReceived,
                    #[cfg(feature = "server")]
                    (
                        Role::Server,
                        State::ClientKeyExchangeReceived {
                            certificate_verify_due: false,
                        },
                    ) => State::ClientCcsReceived,
                    #[cfg(feature = "server")]
                    (Role::Server, State::ResumeFinishedSent) => State::ClientCcsReceived,
                    _ => return Ok(()), // retransmitted or early: ignore
                };
                self.read = self.pending_read.take();
                self.read_epoch = 1;
                self.replay = ReplayWindow::new();
                self.state = next;
                Ok(())
            }
            ContentType::Alert => {
                let a = AlertRepr::parse(plain)?;
                if a.description == AlertDescription::CloseNotify {
                    if self.state == State::Connected {
                        self.alert = Some((LEVEL_WARNING, 0));
                    }
                    self.state = State::Closed;
                    self.sending = None;
                    self.retransmit_at = None;
                    self.outcome.get_or_insert(CloseReason::PeerClosed);
                    Ok(())
                } else if a.level == LEVEL_FATAL {
                    Err(Error::AlertReceived(a.description))
                } else {
                    Ok(()) // warnings (e.g. no_renegotiation) are ignored
                }
            }
            ContentType::ApplicationData => {
                // Application data is the established session's
                // (`Established`): the handshake stops at its last record.
                self.stats.records_dropped += 1;
                Ok(())
            }
            #[cfg(feature = "cid")]
            ContentType::ReturnRoutabilityCheck => {
                // Only an established session checks paths (RFC 9853).
                self.stats.records_dropped += 1;
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_fragment(
        &mut self,
        now: Duration,
        epoch: u16,
        h: &HandshakeHeader,
        frag: &[u8],
        cx: &mut Deps<'_>,
    ) -> Result<(), Error> {
        // The server's first message_seq is its choice (0, or 1 after a
        // cookie exchange): adopt it.
        if self.state == State::ClientHelloSent
            && matches!(h.msg_type, mt::SERVER_HELLO | mt::HELLO_VERIFY_REQUEST)
            && h.message_seq > self.recv_msg_seq
            && !self.reasm.active
        {
            self.recv_msg_seq = h.message_seq;
        }
        // RFC 6347 §4.2.1: a server may answer our ClientHello with another
        // HelloVerifyRequest (its cookie expired, its secret rotated); one
        // with a new cookie gets a new ClientHello, a few times at most (a
        // forged one could otherwise make us send at will). A request
        // answering an older ClientHello never gets here (see
        // `stale_hello_verify_request`).
        if self.state == State::ClientHelloSent
            && h.msg_type == mt::HELLO_VERIFY_REQUEST
            && h.message_seq < self.recv_msg_seq
            && epoch == 0
            && h.fragment_offset == 0
            && h.fragment_length == h.length
        {
            let fresh = HelloVerifyRequestRepr::parse(frag)
                .is_ok_and(|v| v.cookie != self.cookie.as_slice());
            if fresh && self.cookies_taken < MAX_COOKIES {
                self.last_activity = now;
                return self.process_hello_verify_request(now, frag);
            }
            return Ok(());
        }
        if h.message_seq < self.recv_msg_seq {
            // The peer repeats its previous flight: ours was lost (§4.2.4).
            // Connected, only the side that sent the last flight resends it:
            // the server after a full handshake, the client after an
            // abbreviated one.
            let may_resend =
                self.state != State::Connected || (self.role == Role::Server) != self.resumed;
            if may_resend {
                self.peer_repeated(now, epoch, h, frag);
            }
            return Ok(());
        }
        if h.message_seq > self.recv_msg_seq {
            // A later message overtook this one: keep it (bounded) if whole.
            if h.fragment_offset == 0
                && h.fragment_length == h.length
                && h.message_seq - self.recv_msg_seq <= 4
            {
                self.ahead.store(epoch, h.msg_type, h.message_seq, frag);
            }
            return Ok(());
        }
        if h.fragment_offset == 0 && h.fragment_length == h.length {
            // A whole message needs no reassembly; a partial one of the
            // same message (perhaps a forged fragment) is dropped.
            self.reasm.reset();
            self.process_message(now, epoch, h.msg_type, h.message_seq, frag, cx)?;
            return self.process_ahead(now, cx);
        }
        match self.reasm.add(epoch, h, frag) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(Error::Decode) => {
                self.stats.records_dropped += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let mut body = [0u8; MAX_MESSAGE_LEN];
        let msg = self.reasm.message();
        let n = msg.len();
        body.get_mut(..n)
            .ok_or(Error::Internal)?
            .copy_from_slice(msg);
        let (t, seq) = (self.reasm.msg_type, self.reasm.seq);
        self.reasm.reset();
        self.process_message(now, epoch, t, seq, body.get(..n).unwrap_or_default(), cx)?;
        self.process_ahead(now, cx)
    }

    /// Processes kept messages whose turn has come.
    fn process_ahead(&mut self, now: Duration, cx: &mut Deps<'_>) -> Result<(), Error> {
        loop {
            self.ahead.purge_below(self.recv_msg_seq);
            if matches!(self.state, State::Failed | State::Closed) || self.reasm.active {
                return Ok(());
            }
            let mut body = [0u8; AHEAD_CAPACITY];
            let seq = self.recv_msg_seq;
            let Some((t, epoch, n)) = self.ahead.take(seq, &mut body) else {
                return Ok(());
            };
            let body = body.get(..n).unwrap_or_default();
            self.process_message(now, epoch, t, seq, body, cx)?;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn process_message(
        &mut self,
        now: Duration,
        epoch: u16,
        t: u8,
        seq: u16,
        body: &[u8],
        cx: &mut Deps<'_>,
    ) -> Result<(), Error> {
        let want_epoch = match (self.state, t) {
            (State::Connected, _) | (_, mt::FINISHED) => 1,
            _ => 0,
        };
        if epoch != want_epoch {
            return Err(Error::UnexpectedMessage);
        }
        // Only a message that advances the handshake is activity: repeats
        // and stray records (anyone can send those) are not.
        self.last_activity = now;
        self.recv_msg_seq = seq.wrapping_add(1);
        debug!(
            "{} (message_seq {}) received in {:?} ({:?})",
            mt::name(t),
            seq,
            self.state,
            self.role
        );
        match (self.role, self.state, t) {
            (_, State::Connected, mt::HELLO_REQUEST | mt::CLIENT_HELLO) => {
                // RFC 5746 §4.5: we never renegotiate.
                self.alert = Some((LEVEL_WARNING, AlertDescription::NoRenegotiation.to_u8()));
                Ok(())
            }
            (Role::Client, ..) => self.client_message(now, epoch, t, seq, body, cx),
            #[cfg(feature = "server")]
            (Role::Server, ..) => self.server_message(now, epoch, t, seq, body, cx),
            #[cfg(not(feature = "server"))]
            (Role::Server, ..) => Err(Error::UnexpectedMessage),
        }
    }

    /// Timer input. An `Err` means the handshake gave up.
    pub(crate) fn handle_timeout(&mut self, now: Duration) -> Result<(), Error> {
        let Some(at) = self.retransmit_at else {
            return Ok(());
        };
        if now < at {
            return Ok(());
        }
        if self.retransmits >= self.config.max_retransmits {
            return Err(self.fail(Error::Timeout));
        }
        self.retransmits += 1;
        debug!(
            "retransmitting our flight ({} of {})",
            self.retransmits, self.config.max_retransmits
        );
        self.rto = self.rto.saturating_mul(2).min(self.config.retransmit_max);
        self.retransmit_at = Some(now.saturating_add(self.rto));
        self.stats.retransmissions += 1;
        self.flight_sent_at = now;
        self.start_sending();
        Ok(())
    }

    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        self.retransmit_at
    }

    /// How the handshake ended, once it did.
    pub(crate) fn outcome(&self) -> Option<CloseReason> {
        self.outcome
    }

    // ---- application interface -------------------------------------------

    /// `(offset of the plaintext after the 13-byte header, bytes added
    /// beyond header and plaintext)` for a record of `epoch`; a tls12_cid
    /// record adds its CID, the real type and at most the padding.
    fn overhead(&self, epoch: u16) -> (usize, usize) {
        match (epoch, self.write.as_ref()) {
            (1, Some(c)) => {
                let (ex, ov) = (c.kind().explicit_nonce_len(), c.kind().overhead());
                match self.send_cid() {
                    Some(cid) => {
                        let pad = usize::from(self.config.cid_padding.saturating_sub(1));
                        (cid.len() + ex, cid.len() + ov + 1 + pad)
                    }
                    None => (ex, ov),
                }
            }
            _ => (0, 0),
        }
    }

    /// The non-empty CID our protected records carry, if negotiated.
    fn send_cid(&self) -> Option<&[u8]> {
        self.cid_tx
            .as_deref()
            .filter(|c| cfg!(feature = "cid") && !c.is_empty())
    }

    /// The resumable session, once established and unless it ended with a
    /// fatal alert.
    #[cfg(any(feature = "resumption", feature = "server"))]
    pub(crate) fn session(&self) -> Option<Session> {
        if !self.established || self.fatal || self.session_id.is_empty() {
            return None;
        }
        Some(Session {
            id: self.session_id.clone(),
            master: self.master.clone(),
            suite: self.suite?,
            ems: self.ems,
            identity: self.identity.clone(),
            #[cfg(feature = "ecdhe")]
            peer_key: self.peer_key,
            #[cfg(feature = "ecdhe")]
            peer_certificate: self.peer_x509,
        })
    }

    /// What the handshake proved about the peer, once both Finished
    /// messages verified; `None` before that (a PSK identity or a key
    /// received earlier is only a claim) and for a client that did not
    /// authenticate.
    pub(crate) fn proven_identity(&self) -> Option<Identity> {
        if !self.established {
            return None;
        }
        if self.kx()?.is_psk() {
            return PskIdentity::new(&self.identity).ok().map(Identity::Psk);
        }
        #[cfg(feature = "ecdhe")]
        if let Some(k) = self.peer_key {
            return Some(if self.peer_x509 {
                Identity::Certificate(k)
            } else {
                Identity::RawPublicKey(k)
            });
        }
        None
    }

    /// Largest application payload one record can carry.
    pub(crate) fn max_payload(&self) -> usize {
        let (_, ov) = self.overhead(1);
        let by_mtu = self.config.mtu.saturating_sub(REC_HEADER + ov);
        // With a CID the peer's record_size_limit also covers the real
        // type and the padding of the inner plaintext.
        let inner_extra = match self.send_cid() {
            Some(_) => 1 + usize::from(self.config.cid_padding.saturating_sub(1)),
            None => 0,
        };
        let by_peer = self
            .peer_record_limit
            .map_or(usize::MAX, |l| usize::from(l).saturating_sub(inner_extra));
        by_mtu.min(by_peer)
    }

    pub(crate) fn close(&mut self) {
        if self.state == State::Connected {
            self.alert = Some((LEVEL_WARNING, 0));
        }
        if !matches!(self.state, State::Failed | State::Closed) {
            self.outcome = Some(CloseReason::LocalClose);
        }
        if !matches!(self.state, State::Failed) {
            self.state = State::Closed;
        }
        self.sending = None;
        self.retransmit_at = None;
    }

    // ---- output ----------------------------------------------------------

    /// Seals a record whose plaintext sits at `out[13 + explicit..]`.
    fn seal(&mut self, out: &mut [u8], ct: u8, epoch: u16, pt_len: usize) -> Result<usize, Error> {
        let idx = usize::from(epoch.min(1));
        let seq = *self.write_seq.get(idx).ok_or(Error::Internal)?;
        if seq >= SEQ_LIMIT {
            return Err(Error::Closed);
        }
        if let Some(s) = self.write_seq.get_mut(idx) {
            *s += 1;
        }
        let ct = ContentType::from_u8(ct).ok_or(Error::Internal)?;
        let cid = self.send_cid();
        let pad = self.config.cid_padding;
        seal_record(
            self.write.as_ref(),
            aead_of(&self.config),
            cid,
            pad,
            out,
            ct,
            epoch,
            seq,
            pt_len,
        )
    }

    /// Writes the next datagram into `out`; `Ok(None)` when nothing is due.
    pub(crate) fn poll_transmit(&mut self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        let limit = self.config.mtu.min(out.len());
        let mut pos = 0;
        if let Some((level, desc)) = self.alert {
            let epoch = if self.write.is_some() && self.write_epoch_active() {
                1
            } else {
                0
            };
            let (ex, ov) = self.overhead(epoch);
            let need = REC_HEADER + ov + 2;
            let rec = out
                .get_mut(..need)
                .ok_or(Error::BufferTooSmall { needed: need })?;
            if let Some(p) = rec.get_mut(REC_HEADER + ex..REC_HEADER + ex + 2) {
                p.copy_from_slice(&[level, desc]);
            }
            // Taken first: an alert that cannot be sealed is not retried.
            self.alert = None;
            pos += self.seal(rec, CT_ALERT, epoch, 2)?;
            self.stats.bytes_sent += pos as u64;
            return Ok(Some(pos));
        }
        while let Some((idx, off)) = self.sending {
            let Some(e) = self.flight.entries.get(idx).copied() else {
                self.sending = None;
                break;
            };
            let (ex, ov) = self.overhead(e.epoch);
            let room = limit.saturating_sub(pos);
            let rec_out = out.get_mut(pos..).unwrap_or_default();
            let (written, done) = if e.content_type == CT_CCS {
                let need = REC_HEADER + ov + 1;
                if need > room {
                    if pos == 0 {
                        return Err(Error::BufferTooSmall { needed: need });
                    }
                    break;
                }
                if let Some(b) = rec_out.get_mut(REC_HEADER + ex) {
                    *b = 1;
                }
                (self.seal(rec_out, CT_CCS, e.epoch, 1)?, true)
            } else {
                let msg = self.flight.bytes(&e);
                let (hdr_bytes, body) = msg.split_at_checked(HS_HEADER).ok_or(Error::Internal)?;
                let remaining = body.len().saturating_sub(off);
                let fixed = REC_HEADER + ov + HS_HEADER;
                let min_frag = remaining.min(32);
                if fixed + min_frag > room {
                    if pos == 0 {
                        return Err(Error::BufferTooSmall {
                            needed: fixed + min_frag,
                        });
                    }
                    break;
                }
                let by_limit = self
                    .peer_record_limit
                    .map_or(usize::MAX, |l| usize::from(l).saturating_sub(HS_HEADER));
                let flen = remaining.min(room - fixed).min(by_limit.max(1));
                let h = HandshakeHeader {
                    msg_type: hdr_bytes.first().copied().unwrap_or(0),
                    length: body.len() as u32,
                    message_seq: be16(hdr_bytes.get(4..6).unwrap_or_default()),
                    fragment_offset: off as u32,
                    fragment_length: flen as u32,
                };
                let start = REC_HEADER + ex;
                let p = rec_out
                    .get_mut(start..start + HS_HEADER + flen)
                    .ok_or(Error::Internal)?;
                let (ph, pb) = p.split_at_mut(HS_HEADER);
                h.emit(ph)?;
                pb.copy_from_slice(body.get(off..off + flen).ok_or(Error::Internal)?);
                let body_len = body.len();
                let n = self.seal(rec_out, CT_HANDSHAKE, e.epoch, HS_HEADER + flen)?;
                if off + flen < body_len {
                    self.sending = Some((idx, off + flen));
                    pos += n;
                    continue;
                }
                (n, true)
            };
            pos += written;
            if done {
                self.sending = (idx + 1 < self.flight.entries.len()).then_some((idx + 1, 0));
            }
        }
        if pos == 0 {
            return Ok(None);
        }
        self.stats.bytes_sent += pos as u64;
        Ok(Some(pos))
    }

    /// True once our ChangeCipherSpec has gone out in the current flight
    /// (alerts after that point are protected).
    fn write_epoch_active(&self) -> bool {
        match self.state {
            State::Failed => self.write_seq[1] > 0,
            _ => self.ccs_pushed,
        }
    }
}

/// Handing a finished handshake over to the compact established state.
impl Connection {
    /// The established session's state, taken from a connected handshake:
    /// the read keys move, the write keys are copied (a handshake that
    /// lingers to resend its last flight still seals with them, see
    /// [`poll_transmit_lingering`](Self::poll_transmit_lingering)).
    pub(crate) fn compact(&mut self) -> Result<Established, Error> {
        if self.state != State::Connected {
            return Err(Error::Internal);
        }
        let (Some(read), Some(write), Some(suite)) =
            (self.read.take(), self.write.as_ref(), self.suite)
        else {
            return Err(Error::Internal);
        };
        Established::new(Parts {
            write: write.duplicate(),
            read,
            aead: aead_of(&self.config),
            write_seq: self.write_seq[1],
            replay: core::mem::take(&mut self.replay),
            last_activity: self.last_activity,
            cid_rx: &self.cid_rx,
            cid_tx: self.cid_tx.as_deref(),
            session_id: &self.session_id,
            client_random: &self.client_random,
            peer_record_limit: self.peer_record_limit,
            alert: self.alert.take(),
            suite,
            newest: self.newest,
            rrc: self.rrc && self.cid_negotiated(),
        })
    }

    /// True when we sent the handshake's last flight (the server after a
    /// full handshake, the client after an abbreviated one): it must be
    /// resent if the peer repeats its own last flight (RFC 6347 §4.2.4).
    #[cfg(any(feature = "server", feature = "resumption"))]
    pub(crate) fn sent_last_flight(&self) -> bool {
        (self.role == Role::Server) != self.resumed
    }

    /// A handshake record of the finished handshake, handed over by the
    /// established session: a repeated peer flight makes us resend ours.
    /// An authenticated (epoch 1) message out of place is an error, as
    /// before the handover. A plaintext (epoch 0) record is anyone's: it
    /// can at most make us resend our last flight, never reaches the
    /// handshake's state machine and never fails; `Ok(false)` when it did
    /// nothing (the caller counts it dropped). Only a handshake that may
    /// have sent the last flight lingers: a server, or a client that
    /// resumes.
    #[cfg(any(feature = "server", feature = "resumption"))]
    pub(crate) fn handle_old_handshake(
        &mut self,
        now: Duration,
        epoch: u16,
        plain: &[u8],
        cx: &mut Deps<'_>,
    ) -> Result<bool, Error> {
        if self.state != State::Connected {
            return Ok(false);
        }
        if epoch == 0 {
            return Ok(self.old_plaintext_handshake(now, plain));
        }
        self.dispatch(now, epoch, ContentType::Handshake, plain, cx)?;
        Ok(true)
    }

    /// An epoch-0 handshake record after the handshake: if it repeats the
    /// peer's last flight (a message_seq already received, the one that
    /// ended that flight) and we sent the last flight, resend ours; true
    /// when it did. Nothing else changes.
    #[cfg(any(feature = "server", feature = "resumption"))]
    fn old_plaintext_handshake(&mut self, now: Duration, plain: &[u8]) -> bool {
        let mut rest = plain;
        while !rest.is_empty() {
            let Ok((h, frag, tail)) = HandshakeHeader::parse(rest) else {
                return false;
            };
            rest = tail;
            if h.message_seq < self.recv_msg_seq
                && self.sent_last_flight()
                && self.peer_repeated(now, 0, &h, frag)
            {
                return true;
            }
        }
        false
    }

    /// Records the message that ended the peer's flight: a complete copy of
    /// it later means the peer did not get our answer.
    fn note_peer_flight_end(&mut self, epoch: u16, t: u8, seq: u16, body: &[u8]) {
        self.peer_flight_last_seq = Some(seq);
        #[cfg(feature = "server")]
        {
            self.peer_flight_last = flight_end_digest(epoch, t, seq, body);
        }
        #[cfg(not(feature = "server"))]
        let _ = (epoch, t, body);
    }

    /// A handshake message the peer already sent: if it is a complete copy
    /// of the message that ended its last flight (same epoch, type,
    /// sequence and bytes), our flight was lost and is resent (RFC 6347
    /// §4.2.4); true when it was such a copy. A resend happens at most once
    /// per initial retransmission timeout and counts against the
    /// retransmission budget, so neither a forged record (which cannot copy
    /// the message) nor a replayed one can make us amplify. A build without
    /// the server role (a client, which only ever sends to its server,
    /// never toward a spoofed third party) checks the copy by its sequence
    /// and completeness only, not its bytes: the rate limit and the budget
    /// bound what a forged copy can make it send.
    fn peer_repeated(
        &mut self,
        now: Duration,
        epoch: u16,
        h: &HandshakeHeader,
        frag: &[u8],
    ) -> bool {
        let complete = h.fragment_offset == 0 && h.fragment_length == h.length;
        if !complete || Some(h.message_seq) != self.peer_flight_last_seq {
            return false;
        }
        #[cfg(feature = "server")]
        if flight_end_digest(epoch, h.msg_type, h.message_seq, frag) != self.peer_flight_last {
            return false;
        }
        #[cfg(not(feature = "server"))]
        let _ = (epoch, frag);
        let due = now
            >= self
                .flight_sent_at
                .saturating_add(self.config.retransmit_initial);
        if self.sending.is_none() && due && self.retransmits < self.config.max_retransmits {
            self.retransmits += 1;
            self.stats.retransmissions += 1;
            self.flight_sent_at = now;
            self.start_sending();
        }
        true
    }

    /// [`poll_transmit`](Self::poll_transmit) for a lingering handshake:
    /// epoch-1 records take their sequence numbers from the established
    /// session, which shares the write keys.
    #[cfg(any(feature = "server", feature = "resumption"))]
    pub(crate) fn poll_transmit_lingering(
        &mut self,
        est: &mut Established,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        self.write_seq[1] = est.write_seq;
        let r = self.poll_transmit(out);
        est.write_seq = self.write_seq[1];
        r
    }

    /// The settings this connection was made with.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Stops sending what is left of the flight (and any alert).
    #[cfg(feature = "server")]
    pub(crate) fn stop_sending(&mut self) {
        self.sending = None;
        self.alert = None;
    }

    /// True while part of a flight (or an alert) waits to be sent.
    #[cfg(any(feature = "server", feature = "resumption"))]
    pub(crate) fn has_output(&self) -> bool {
        self.sending.is_some() || self.alert.is_some()
    }
}

// The handshake tests build servers with a signing-key slot (feature `ecdhe`).
#[cfg(test)]
#[cfg(all(feature = "server", feature = "ecdhe"))]
mod tests;

/// The crypto provider's AEAD of `config`, if any (records go through it
/// when it supports their algorithm).
fn aead_of(config: &Config) -> Backend {
    #[cfg(feature = "ecdhe")]
    return Some(config.crypto);
    #[cfg(not(feature = "ecdhe"))]
    {
        let _ = config;
        None
    }
}
