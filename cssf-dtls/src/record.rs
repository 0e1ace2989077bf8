//! The record layer (RFC 6347 §4.1, RFC 9146 §4), once, for the handshake
//! and the established session: cutting records from a datagram (plain
//! DTLSCiphertext and tls12_cid records), opening them against the replay
//! window, and sealing.

use subtle::ConstantTimeEq;

use crate::crypto::aead::{Backend, RecordCipher};
use crate::replay::ReplayWindow;
use crate::stats::Stats;
use crate::wire::cid_record::{self, CidRecordHeader, TLS12_CID};
use crate::wire::record::{ContentType, RecordHeader, HEADER_LEN as REC_HEADER};
use crate::wire::DTLS_1_2;
use crate::Error;

/// One record cut from a datagram.
pub(crate) enum InRecord<'a> {
    /// A DTLSCiphertext (or DTLSPlaintext) record and its fragment.
    Plain(RecordHeader, &'a mut [u8]),
    /// A tls12_cid record (RFC 9146 §4): its fields and protected fragment;
    /// `cid_ok` tells whether its CID is ours.
    Cid {
        version: u16,
        epoch: u16,
        seq: u64,
        cid_ok: bool,
        payload: &'a mut [u8],
    },
}

/// Cuts the next record from `rest` (which then holds what follows it).
/// tls12_cid records are parsed with the length of `cid_rx`, our CID, when
/// the peer must send them; `None` (counted as dropped) when no record can
/// be parsed: the rest of the datagram is dropped.
pub(crate) fn next_record<'a>(
    rest: &mut &'a mut [u8],
    cid_rx: Option<&[u8]>,
    stats: &mut Stats,
) -> Option<InRecord<'a>> {
    // Without feature `cid` no CID is expected: the tls12_cid code drops out.
    let cid_rx = cid_rx.filter(|_| cfg!(feature = "cid"));
    let r = if rest.first() == Some(&TLS12_CID) {
        // RFC 9146 §4: parsed with the length of our own CID.
        let parsed = cid_rx
            .and_then(|cid| {
                let (h, f, _) = CidRecordHeader::parse(rest, cid.len()).ok()?;
                let cid_ok = bool::from(h.cid.ct_eq(cid));
                Some((
                    h.version,
                    h.epoch,
                    h.sequence,
                    cid_ok,
                    h.buffer_len() + f.len(),
                ))
            })
            .map(|(version, epoch, seq, cid_ok, total)| {
                let hl = cid_record::FIXED_HEADER_LEN + cid_rx.map_or(0, <[u8]>::len);
                (version, epoch, seq, cid_ok, total, hl)
            });
        parsed.map(|(version, epoch, seq, cid_ok, total, hl)| {
            let (rec, tail) = core::mem::take(rest).split_at_mut(total);
            *rest = tail;
            InRecord::Cid {
                version,
                epoch,
                seq,
                cid_ok,
                payload: rec.get_mut(hl..).unwrap_or_default(),
            }
        })
    } else {
        RecordHeader::parse(rest)
            .ok()
            .map(|(hdr, frag, _)| (hdr, frag.len()))
            .map(|(hdr, flen)| {
                let (rec, tail) = core::mem::take(rest).split_at_mut(REC_HEADER + flen);
                *rest = tail;
                InRecord::Plain(hdr, rec.get_mut(REC_HEADER..).unwrap_or_default())
            })
    };
    match r {
        Some(_) => stats.records_received += 1,
        None => stats.records_dropped += 1,
    }
    r
}

/// Why a protected record yielded no plaintext.
pub(crate) enum Unopened {
    /// Replayed, or not a record we take: counted, dropped.
    Dropped,
    /// Failed authentication: counted, dropped (the handshake may treat it
    /// as fatal).
    BadMac,
}

/// The read side of a protected epoch: its keys and replay window, and
/// where to note a record newer than all before (RFC 9146 §6).
pub(crate) struct Reader<'s> {
    pub(crate) read: &'s RecordCipher,
    /// The crypto provider's AEAD, if it opens these records.
    pub(crate) aead: Backend,
    pub(crate) replay: &'s mut ReplayWindow,
    pub(crate) newest: &'s mut bool,
    pub(crate) stats: &'s mut Stats,
}

impl Reader<'_> {
    /// Authenticates an epoch-1 DTLSCiphertext record in place and returns
    /// its plaintext.
    pub(crate) fn open<'p>(
        &mut self,
        hdr: &RecordHeader,
        payload: &'p mut [u8],
    ) -> Result<&'p [u8], Unopened> {
        if !self.replay.check(hdr.sequence) {
            self.stats.replays += 1;
            trace!("record dropped: replayed or too old (seq {})", hdr.sequence);
            return Err(Unopened::Dropped);
        }
        let Ok(r) = self.read.open_via(
            self.aead,
            hdr.epoch_seq(),
            hdr.content_type.to_u8(),
            payload,
        ) else {
            self.stats.auth_failures += 1;
            debug!(
                "record dropped: authentication failed (seq {})",
                hdr.sequence
            );
            return Err(Unopened::BadMac);
        };
        self.accept(hdr.sequence);
        Ok(payload.get(r).unwrap_or_default())
    }

    /// Authenticates a tls12_cid record (epoch 1, DTLS 1.2, our CID
    /// `cid_rx`) in place: the real content type and the content.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open_cid<'p>(
        &mut self,
        version: u16,
        epoch: u16,
        seq: u64,
        cid_ok: bool,
        cid_rx: &[u8],
        payload: &'p mut [u8],
    ) -> Result<(ContentType, &'p [u8]), Unopened> {
        // Epoch 1 and later: the negotiated version only (RFC 6347 §4.1).
        if !(cfg!(feature = "cid") && cid_ok && version == DTLS_1_2 && epoch == 1) {
            self.stats.records_dropped += 1;
            trace!(
                "record dropped: tls12_cid record not expected (epoch {})",
                epoch
            );
            return Err(Unopened::Dropped);
        }
        if !self.replay.check(seq) {
            self.stats.replays += 1;
            trace!("record dropped: replayed or too old (seq {})", seq);
            return Err(Unopened::Dropped);
        }
        let es = (u64::from(epoch) << 48) | seq;
        let Ok(r) = self
            .read
            .open_cid_via(self.aead, es, version, cid_rx, payload)
        else {
            self.stats.auth_failures += 1;
            debug!("record dropped: authentication failed (seq {})", seq);
            return Err(Unopened::BadMac);
        };
        let inner = payload.get(r).unwrap_or_default();
        let Some((ct, len)) = cid_record::split_inner_plaintext(inner)
            .and_then(|(t, n)| Some((ContentType::from_u8(t)?, n)))
        else {
            self.stats.records_dropped += 1;
            debug!("record dropped: no content type in a tls12_cid record");
            return Err(Unopened::Dropped);
        };
        self.accept(seq);
        Ok((ct, inner.get(..len).unwrap_or_default()))
    }

    fn accept(&mut self, seq: u64) {
        if self.replay.highest().map_or(true, |h| seq > h) {
            *self.newest = true;
        }
        self.replay.accept(seq);
    }
}

/// Seals a record of `epoch` with sequence number `seq` whose plaintext
/// sits at `out[13 + explicit..]` (epoch 0: unprotected, `write` unused);
/// a non-empty `cid` makes it a tls12_cid record (RFC 9146 §4: inner
/// plaintext = content || real type || zeros up to a multiple of
/// `cid_padding`). Returns the record length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_record(
    write: Option<&RecordCipher>,
    aead: Backend,
    cid: Option<&[u8]>,
    cid_padding: u8,
    out: &mut [u8],
    ct: ContentType,
    epoch: u16,
    seq: u64,
    pt_len: usize,
) -> Result<usize, Error> {
    let es = (u64::from(epoch) << 48) | seq;
    let cid = cid.filter(|c| cfg!(feature = "cid") && !c.is_empty());
    if let (1.., Some(cid), Some(c)) = (epoch, cid, write) {
        let hl = cid_record::FIXED_HEADER_LEN + cid.len();
        let (hdr, body) = out.split_at_mut_checked(hl).ok_or(Error::Internal)?;
        let ex = c.kind().explicit_nonce_len();
        let block = usize::from(cid_padding.max(1));
        let pad = (block - (pt_len + 1) % block) % block;
        let inner_len = pt_len + 1 + pad;
        let tail = body
            .get_mut(ex + pt_len..ex + inner_len)
            .ok_or(Error::BufferTooSmall {
                needed: hl + ex + inner_len,
            })?;
        tail.fill(0);
        if let Some(t) = tail.first_mut() {
            *t = ct.to_u8();
        }
        let flen = c.seal_cid_via(aead, es, cid, body, inner_len)?;
        CidRecordHeader {
            version: DTLS_1_2,
            epoch,
            sequence: seq,
            cid,
            length: flen as u16,
        }
        .emit(hdr)?;
        return Ok(hl + flen);
    }
    let (hdr, body) = out
        .split_at_mut_checked(REC_HEADER)
        .ok_or(Error::Internal)?;
    let flen = match (epoch, write) {
        (0, _) => pt_len,
        (_, Some(c)) => c.seal_via(aead, es, ct.to_u8(), body, pt_len)?,
        _ => return Err(Error::Internal),
    };
    RecordHeader {
        content_type: ct,
        version: DTLS_1_2,
        epoch,
        sequence: seq,
        length: flen as u16,
    }
    .emit(hdr)?;
    Ok(REC_HEADER + flen)
}
