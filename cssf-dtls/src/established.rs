//! The compact state of an established session: only what application
//! data records need once the handshake is over (RFC 6347 §4.1 record
//! layer, RFC 9146 tls12_cid records). The handshake state
//! ([`Connection`](crate::handshake)) is dropped (or, while its last flight
//! may still have to be retransmitted, kept aside) when a session is
//! compacted into this.
//!
//! The record layer itself (framing, replay window, protection, the
//! tls12_cid format) is in [`record`](crate::record), shared with the
//! handshake.

use core::time::Duration;

use crate::config::{Config, MAX_CID_LEN, MAX_PEER_CID_LEN};
use crate::crypto::aead::{Backend, RecordCipher};
use crate::crypto::suite::CipherSuite;
use crate::event::CloseReason;
use crate::queue::{TaggedQueue, QUEUE_ENTRIES};
use crate::record::{next_record, seal_record, InRecord, Reader};
use crate::replay::ReplayWindow;
use crate::session::SESSION_ID_LEN;
use crate::stats::Stats;
use crate::wire::alert::{AlertRepr, LEVEL_FATAL, LEVEL_WARNING};
use crate::wire::handshake::{msg_type as mt, HandshakeHeader};
use crate::wire::record::{ContentType, RecordHeader, HEADER_LEN as REC_HEADER};
#[cfg(feature = "cid")]
use crate::wire::rrc::{RrcRepr, MESSAGE_LEN as RRC_LEN};
use crate::wire::DTLS_1_2;
use crate::{AlertDescription, Error};

const SEQ_LIMIT: u64 = 1 << 48;

/// `t` in whole milliseconds, saturating (as `as_millis` would, without
/// its 128-bit arithmetic).
fn millis(t: Duration) -> u64 {
    t.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(t.subsec_millis()))
}

/// Up to `N` bytes with a one-byte length.
#[derive(Clone, Copy)]
pub(crate) struct ShortBytes<const N: usize> {
    len: u8,
    buf: [u8; N],
}

impl<const N: usize> ShortBytes<N> {
    pub(crate) const fn empty() -> Self {
        ShortBytes {
            len: 0,
            buf: [0; N],
        }
    }
    pub(crate) fn from_slice(b: &[u8]) -> Result<Self, Error> {
        let mut s = Self::empty();
        s.buf
            .get_mut(..b.len())
            .ok_or(Error::Internal)?
            .copy_from_slice(b);
        s.len = u8::try_from(b.len()).map_err(|_| Error::Internal)?;
        Ok(s)
    }
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// `b` as [`ShortBytes`] when `keep`, else empty.
fn short_if<const N: usize>(keep: bool, b: &[u8]) -> Result<ShortBytes<N>, Error> {
    if keep {
        ShortBytes::from_slice(b)
    } else {
        Ok(ShortBytes::empty())
    }
}

/// What an established session hands to its owner while it processes a
/// datagram.
pub(crate) trait Upcall {
    /// An application record arrived: queue it and its event; false when
    /// there is no room (the record is dropped and counted).
    fn data(&mut self, plain: &[u8]) -> bool;
    /// A handshake record (epoch 0 plaintext or epoch 1 authenticated) of
    /// the finished handshake, typically a retransmission: true when a
    /// handshake still held took it (and may resend its last flight). For
    /// epoch 1 an error (a message out of place) ends the session; an
    /// epoch-0 record never does (false or an error: it is dropped).
    fn old_handshake(&mut self, epoch: u16, plain: &[u8]) -> Result<bool, Error>;
    /// An authenticated `return_routability_check` message arrived (RFC
    /// 9853, only once negotiated): a challenge to answer, a response to
    /// match, or a type to ignore (§4).
    #[cfg(feature = "cid")]
    fn rrc(&mut self, m: RrcRepr);
}

/// One established DTLS session, compact.
pub(crate) struct Established {
    write: RecordCipher,
    /// The crypto provider's AEAD for both directions, if it has one
    /// ([`Config::crypto`](crate::Config::crypto)).
    aead: Backend,
    read: RecordCipher,
    /// The next epoch-1 sequence number we send.
    pub(crate) write_seq: u64,
    replay: ReplayWindow,
    /// When the last authenticated record arrived, in milliseconds.
    last_activity_ms: u64,
    /// RFC 9146: the CID the peer puts in records to us (ours).
    cid_rx: ShortBytes<MAX_CID_LEN>,
    /// RFC 9146: the CID we put in records to the peer (empty: none).
    cid_tx: ShortBytes<MAX_PEER_CID_LEN>,
    /// A CID was negotiated (either direction may be empty).
    cid_negotiated: bool,
    /// The session ID (server: where the cache holds the resumption
    /// material and the peer's key).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    session_id: ShortBytes<SESSION_ID_LEN>,
    /// The first bytes of the client random, to tell a delayed copy of the
    /// ClientHello from a client starting over (RFC 6347 §4.2.8).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) random_prefix: [u8; 8],
    peer_record_limit: Option<u16>,
    alert: Option<(u8, u8)>,
    pub(crate) suite: CipherSuite,
    /// Why the session ended, once it did (`None` while open).
    end: Option<CloseReason>,
    /// Ended with a fatal alert (sent or received): never resumed.
    pub(crate) fatal: bool,
    /// The last datagram held an authenticated record newer than every
    /// record before it (RFC 9146 §6).
    newest: bool,
    /// An authenticated application data or alert record of the new epoch
    /// arrived: the peer has our last flight (RFC 6347 §4.2.4).
    pub(crate) heard: bool,
    /// Return Routability Check (RFC 9853) was negotiated.
    #[cfg(feature = "cid")]
    rrc: bool,
}

impl core::fmt::Debug for Established {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Established")
            .field("suite", &self.suite)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// The pieces of a finished handshake an established session keeps.
pub(crate) struct Parts<'a> {
    pub(crate) write: RecordCipher,
    pub(crate) read: RecordCipher,
    pub(crate) aead: Backend,
    pub(crate) write_seq: u64,
    pub(crate) replay: ReplayWindow,
    pub(crate) last_activity: Duration,
    pub(crate) cid_rx: &'a [u8],
    pub(crate) cid_tx: Option<&'a [u8]>,
    pub(crate) session_id: &'a [u8],
    pub(crate) client_random: &'a [u8; 32],
    pub(crate) peer_record_limit: Option<u16>,
    pub(crate) alert: Option<(u8, u8)>,
    pub(crate) suite: CipherSuite,
    pub(crate) newest: bool,
    #[cfg_attr(not(feature = "cid"), allow(dead_code))]
    pub(crate) rrc: bool,
}

impl Established {
    pub(crate) fn new(p: Parts<'_>) -> Result<Self, Error> {
        let mut random_prefix = [0u8; 8];
        if cfg!(feature = "server") {
            random_prefix.copy_from_slice(p.client_random.get(..8).ok_or(Error::Internal)?);
        }
        Ok(Established {
            write: p.write,
            read: p.read,
            aead: p.aead,
            write_seq: p.write_seq,
            replay: p.replay,
            last_activity_ms: if cfg!(feature = "server") {
                millis(p.last_activity)
            } else {
                0
            },
            // Without features `cid` and `server` these are never read:
            // left empty, their copies are not compiled in.
            cid_rx: short_if(cfg!(feature = "cid"), p.cid_rx)?,
            cid_tx: short_if(cfg!(feature = "cid"), p.cid_tx.unwrap_or_default())?,
            cid_negotiated: p.cid_tx.is_some(),
            session_id: short_if(cfg!(feature = "server"), p.session_id)?,
            random_prefix,
            peer_record_limit: p.peer_record_limit,
            alert: p.alert,
            suite: p.suite,
            end: None,
            fatal: false,
            newest: p.newest,
            heard: false,
            #[cfg(feature = "cid")]
            rrc: p.rrc,
        })
    }

    /// When the last authenticated record arrived (millisecond resolution).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn last_activity(&self) -> Duration {
        Duration::from_millis(self.last_activity_ms)
    }

    /// True while application data flows.
    pub(crate) fn is_open(&self) -> bool {
        self.end.is_none()
    }

    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn session_id(&self) -> &[u8] {
        self.session_id.as_slice()
    }

    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn cid_rx(&self) -> &[u8] {
        self.cid_rx.as_slice()
    }

    /// A CID was negotiated (never without feature `cid`: the CID code
    /// drops out).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn cid_negotiated(&self) -> bool {
        cfg!(feature = "cid") && self.cid_negotiated
    }

    /// True when the peer must send us tls12_cid records.
    fn expects_cid(&self) -> bool {
        self.cid_negotiated() && self.cid_rx.len > 0
    }

    /// The non-empty CID our records carry, if negotiated.
    fn send_cid(&self) -> Option<&[u8]> {
        Some(self.cid_tx.as_slice()).filter(|c| cfg!(feature = "cid") && !c.is_empty())
    }

    /// True when the last datagram carried an authenticated record newer
    /// than every earlier one (RFC 9146 §6).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn took_newest(&self) -> bool {
        self.newest
    }

    /// `(offset of the plaintext after the 13-byte header, bytes added
    /// beyond header and plaintext)`.
    fn overhead(&self, cfg: &Config) -> (usize, usize) {
        let k = self.write.kind();
        let (ex, ov) = (k.explicit_nonce_len(), k.overhead());
        match self.send_cid() {
            Some(cid) => {
                let pad = usize::from(cfg.cid_padding.saturating_sub(1));
                (cid.len() + ex, cid.len() + ov + 1 + pad)
            }
            None => (ex, ov),
        }
    }

    /// Bytes a sealed record adds to its payload (header, CID, explicit
    /// nonce, tag, padding).
    pub(crate) fn record_overhead(&self, cfg: &Config) -> usize {
        REC_HEADER + self.overhead(cfg).1
    }

    /// Largest application payload one record can carry.
    pub(crate) fn max_payload(&self, cfg: &Config) -> usize {
        let (_, ov) = self.overhead(cfg);
        let by_mtu = cfg.mtu.saturating_sub(REC_HEADER + ov);
        let inner_extra = match self.send_cid() {
            Some(_) => 1 + usize::from(cfg.cid_padding.saturating_sub(1)),
            None => 0,
        };
        let by_peer = self
            .peer_record_limit
            .map_or(usize::MAX, |l| usize::from(l).saturating_sub(inner_extra));
        by_mtu.min(by_peer)
    }

    // ---- input -----------------------------------------------------------

    /// Processes one datagram (or the rest of one whose first records
    /// completed the handshake). An `Err` means the session died.
    pub(crate) fn handle_datagram(
        &mut self,
        now: Duration,
        data: &mut [u8],
        stats: &mut Stats,
        up: &mut dyn Upcall,
    ) -> Result<(), Error> {
        self.newest = false;
        if self.end.is_some() {
            return Ok(());
        }
        let mut rest = data;
        while !rest.is_empty() {
            let cid_rx = self.expects_cid().then_some(self.cid_rx.as_slice());
            let Some(rec) = next_record(&mut rest, cid_rx, stats) else {
                break;
            };
            let r = match rec {
                InRecord::Plain(hdr, payload) => self.handle_record(now, &hdr, payload, stats, up),
                InRecord::Cid {
                    version,
                    epoch,
                    seq,
                    cid_ok,
                    payload,
                } => self.handle_cid_record(now, version, epoch, seq, cid_ok, payload, stats, up),
            };
            if let Err(e) = r {
                return Err(self.fail(e));
            }
            if self.end.is_some() {
                break;
            }
        }
        Ok(())
    }

    fn handle_record(
        &mut self,
        now: Duration,
        hdr: &RecordHeader,
        payload: &mut [u8],
        stats: &mut Stats,
        up: &mut dyn Upcall,
    ) -> Result<(), Error> {
        match (hdr.version, hdr.epoch, hdr.content_type) {
            (DTLS_1_2, 0, ContentType::Handshake) => {
                // The peer repeats a flight of the finished handshake, or
                // anyone sends anything: unauthenticated, it can at most
                // make a lingering handshake resend its last flight and
                // never ends the session.
                if !matches!(up.old_handshake(0, payload), Ok(true)) {
                    stats.records_dropped += 1;
                }
                Ok(())
            }
            (DTLS_1_2, 1, _) if !self.expects_cid() => {
                match self.reader(stats).open(hdr, payload) {
                    Ok(plain) => self.dispatch(now, hdr.content_type, plain, stats, up),
                    Err(_) => Ok(()),
                }
            }
            _ => {
                // Epoch 0 alerts, CCS and data, other epochs and versions,
                // and plain protected records once a CID was negotiated
                // (RFC 9146 §4).
                stats.records_dropped += 1;
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_cid_record(
        &mut self,
        now: Duration,
        version: u16,
        epoch: u16,
        seq: u64,
        cid_ok: bool,
        payload: &mut [u8],
        stats: &mut Stats,
        up: &mut dyn Upcall,
    ) -> Result<(), Error> {
        let cid_rx = self.cid_rx;
        let mut rd = self.reader(stats);
        match rd.open_cid(version, epoch, seq, cid_ok, cid_rx.as_slice(), payload) {
            Ok((ct, plain)) => self.dispatch(now, ct, plain, stats, up),
            Err(_) => Ok(()),
        }
    }

    fn reader<'s>(&'s mut self, stats: &'s mut Stats) -> Reader<'s> {
        Reader {
            read: &self.read,
            aead: self.aead,
            replay: &mut self.replay,
            newest: &mut self.newest,
            stats,
        }
    }

    /// An authenticated epoch-1 record's plaintext.
    fn dispatch(
        &mut self,
        now: Duration,
        content_type: ContentType,
        plain: &[u8],
        stats: &mut Stats,
        up: &mut dyn Upcall,
    ) -> Result<(), Error> {
        if cfg!(feature = "server") {
            // Only an endpoint reads it (idle sessions).
            self.last_activity_ms = millis(now);
        }
        match content_type {
            ContentType::ApplicationData => {
                self.heard = true;
                if !up.data(plain) {
                    stats.rx_overflow += 1;
                }
                Ok(())
            }
            ContentType::Alert => {
                self.heard = true;
                let a = AlertRepr::parse(plain)?;
                if a.description == AlertDescription::CloseNotify {
                    self.alert = Some((LEVEL_WARNING, 0));
                    self.end = Some(CloseReason::PeerClosed);
                    Ok(())
                } else if a.level == LEVEL_FATAL {
                    Err(Error::AlertReceived(a.description))
                } else {
                    Ok(()) // warnings (e.g. no_renegotiation) are ignored
                }
            }
            ContentType::Handshake => {
                if up.old_handshake(1, plain)? {
                    return Ok(());
                }
                // RFC 5746 §4.5: we never renegotiate. Anything else is a
                // copy of the finished handshake's last flight.
                let t = HandshakeHeader::parse(plain)
                    .ok()
                    .map(|(h, _, _)| h.msg_type);
                if matches!(t, Some(mt::HELLO_REQUEST | mt::CLIENT_HELLO)) {
                    self.alert = Some((LEVEL_WARNING, AlertDescription::NoRenegotiation.to_u8()));
                } else {
                    stats.records_dropped += 1;
                }
                Ok(())
            }
            ContentType::ChangeCipherSpec => {
                stats.records_dropped += 1;
                Ok(())
            }
            #[cfg(feature = "cid")]
            ContentType::ReturnRoutabilityCheck => {
                // RFC 9853 §4: only once negotiated; for the owner (a
                // challenge to answer, a response to match).
                match RrcRepr::parse(plain) {
                    Ok(m) if self.rrc => {
                        self.heard = true;
                        up.rrc(m);
                    }
                    _ => stats.records_dropped += 1,
                }
                Ok(())
            }
        }
    }

    /// Return Routability Check (RFC 9853) was negotiated.
    #[cfg(feature = "cid")]
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn rrc(&self) -> bool {
        self.rrc
    }

    /// Seals a `return_routability_check` message as one record into `out`.
    #[cfg(feature = "cid")]
    pub(crate) fn seal_rrc(
        &mut self,
        cfg: &Config,
        m: &RrcRepr,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        // An ended session sends only its alert: a path message sealed
        // after the end would take the sequence number kept for
        // close_notify once the numbers run out.
        if self.end.is_some() {
            return Err(Error::Closed);
        }
        let (ex, ov) = self.overhead(cfg);
        let need = REC_HEADER + ov + RRC_LEN;
        let rec = out
            .get_mut(..need)
            .ok_or(Error::BufferTooSmall { needed: need })?;
        m.emit(
            rec.get_mut(REC_HEADER + ex..REC_HEADER + ex + RRC_LEN)
                .ok_or(Error::Internal)?,
        )?;
        self.seal(cfg, rec, ContentType::ReturnRoutabilityCheck, RRC_LEN)
    }

    /// Seals the `path_response` answering a `path_challenge` with
    /// `cookie` (RFC 9853 §5.4) as one record into `out`.
    #[cfg(feature = "cid")]
    pub(crate) fn seal_path_response(
        &mut self,
        cfg: &Config,
        cookie: [u8; 8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let m = RrcRepr {
            msg_type: crate::wire::rrc::PATH_RESPONSE,
            cookie,
        };
        self.seal_rrc(cfg, &m, out)
    }

    /// Ends the session after a fatal error: the alert (if the error has
    /// one) is still sent.
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        if e.code().is_some() || matches!(e, Error::AlertReceived(_)) {
            // RFC 5246 §7.2.2: never resumed after a fatal alert.
            self.fatal = true;
        }
        if self.end.is_none() {
            if let Some(code) = e.code() {
                self.alert = Some((LEVEL_FATAL, code.to_u8()));
            }
            self.end = Some(CloseReason::Error(e));
        }
        e
    }

    /// Sends close_notify if still open; `reason` is why it ended.
    pub(crate) fn close(&mut self, reason: CloseReason) {
        if self.end.is_none() {
            self.alert = Some((LEVEL_WARNING, 0));
            self.end = Some(reason);
        }
    }

    /// Why the session ended, once it did.
    pub(crate) fn end_reason(&self) -> Option<CloseReason> {
        self.end
    }

    /// An alert waits to be sent.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn has_alert(&self) -> bool {
        self.alert.is_some()
    }

    /// Forgets the alert waiting to be sent (nobody would read it).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn drop_alert(&mut self) {
        self.alert = None;
    }

    // ---- output ----------------------------------------------------------

    /// Seals one application record into `q`, tagged `tag`.
    pub(crate) fn send<const CAP: usize, G: Copy + PartialEq>(
        &mut self,
        cfg: &Config,
        data: &[u8],
        q: &mut TaggedQueue<CAP, QUEUE_ENTRIES, G>,
        tag: G,
    ) -> Result<(), Error> {
        if self.end.is_some() {
            return Err(Error::Closed);
        }
        if data.len() > self.max_payload(cfg) {
            return Err(Error::RecordOverflow);
        }
        if self.write_seq >= SEQ_LIMIT {
            return Err(Error::Closed);
        }
        let (ex, ov) = self.overhead(cfg);
        let need = REC_HEADER + ov + data.len();
        let out = q.reserve(need).ok_or(Error::Full)?;
        out.get_mut(REC_HEADER + ex..REC_HEADER + ex + data.len())
            .ok_or(Error::Internal)?
            .copy_from_slice(data);
        let n = self.seal(cfg, out, ContentType::ApplicationData, data.len())?;
        if q.commit(tag, n) {
            Ok(())
        } else {
            Err(Error::Internal)
        }
    }

    /// Writes the pending alert, if any, as one datagram into `out`.
    pub(crate) fn poll_alert(
        &mut self,
        cfg: &Config,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        let Some((level, desc)) = self.alert else {
            return Ok(None);
        };
        let (ex, ov) = self.overhead(cfg);
        let need = REC_HEADER + ov + 2;
        let rec = out
            .get_mut(..need)
            .ok_or(Error::BufferTooSmall { needed: need })?;
        if let Some(p) = rec.get_mut(REC_HEADER + ex..REC_HEADER + ex + 2) {
            p.copy_from_slice(&[level, desc]);
        }
        self.alert = None;
        if self.write_seq >= SEQ_LIMIT {
            return Ok(None);
        }
        Ok(Some(self.seal(cfg, rec, ContentType::Alert, 2)?))
    }

    /// Seals an epoch-1 record whose plaintext sits at `out[13 + explicit..]`.
    fn seal(
        &mut self,
        cfg: &Config,
        out: &mut [u8],
        ct: ContentType,
        pt_len: usize,
    ) -> Result<usize, Error> {
        let seq = self.write_seq;
        if seq >= SEQ_LIMIT {
            return Err(Error::Closed);
        }
        self.write_seq += 1;
        if self.write_seq >= SEQ_LIMIT - 1 {
            // The last number is close_notify's (RFC 6347 §4.1: never wrap).
            self.close(CloseReason::SequenceExhausted);
        }
        let cid = self.send_cid();
        seal_record(
            Some(&self.write),
            self.aead,
            cid,
            cfg.cid_padding,
            out,
            ct,
            1,
            seq,
            pt_len,
        )
    }
}
