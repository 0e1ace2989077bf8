//! The initiator (RFC 9528 §5.2.1, §5.3.3, §5.4.1, §5.5.3).

use p256::SecretKey;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::Error;

use super::crypto::{self, Prk, BSTR32, ELEM_LEN, HASH_LEN, TAG_LEN};
use super::types::{discontinues, process_ead, resolve};
use super::wire::{self, Writer};
use super::{
    ConnId, Credential, EadItem, EadMessage, EdhocError, ErrorMessage, Identity, Method, Policy,
    Session, MAX_CRED_LEN, MAX_EAD_LEN, MAX_MESSAGE_LEN, MAX_PLAINTEXT_LEN, MAX_SUITES, SUITE_2,
};

// No heap: every state lives inline, the largest (a completed session
// with the peer's credential) sets the size.
#[allow(clippy::large_enum_variant)]
#[cfg_attr(fuzzing, derive(Clone))]
enum State {
    /// Nothing sent yet.
    Start,
    /// message_1 sent.
    WaitM2 {
        x: SecretKey,
        c_i: ConnId,
        h_m1: [u8; HASH_LEN],
    },
    /// message_2 verified; message_3 not made yet.
    VerifiedM2 {
        c_i: ConnId,
        c_r: ConnId,
        prk_3e2m: Prk,
        prk_4e3m: Prk,
        th_3: [u8; HASH_LEN],
        peer: Credential,
    },
    /// message_3 made: the handshake is complete on this side (message_4,
    /// if the application uses it, may still come).
    Done {
        session: Session,
        prk_4e3m: Prk,
        th_4: [u8; HASH_LEN],
        message_4_seen: bool,
        /// The responder proved it holds the session's keys: message_4
        /// verified, or the application vouched (`confirm_key`).
        key_confirmed: bool,
    },
    /// A message was refused (or the peer sent an error message): the
    /// handshake is over, its secrets dropped (RFC 9528 §5.3.3, §5.5.3).
    Aborted,
}

/// The EDHOC initiator: sends message_1 and message_3, receives message_2
/// (and message_4, if the application uses it). Not `Clone`: a copy
/// would let one ephemeral key, or one message key and nonce, be used twice.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Initiator {
    method: Method,
    suites: heapless::Vec<u8, MAX_SUITES>,
    identity: Identity,
    state: State,
}

fn edhoc(e: EdhocError) -> Error {
    Error::Edhoc(e)
}

fn copy_out(msg: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    out.get_mut(..msg.len())
        .ok_or(Error::BufferTooSmall { needed: msg.len() })?
        .copy_from_slice(msg);
    Ok(msg.len())
}

impl Initiator {
    /// An initiator using `method`, authenticated by `identity`.
    pub fn new(method: Method, identity: Identity) -> Self {
        let mut suites = heapless::Vec::new();
        // cannot fail: MAX_SUITES >= 1
        let _ = suites.push(SUITE_2);
        Self {
            method,
            suites,
            identity,
            state: State::Start,
        }
    }

    /// Announces SUITES_I (RFC 9528 §5.2.2): suites in order of
    /// preference, ending with the selected one, which must be supported
    /// (e.g. `[6, 2]` as in the RFC 9529 trace). Not part of the API
    /// (feature `edhoc-test-vectors`): only suite 2 is implemented, and
    /// announcing a preferred suite we cannot run serves only to reproduce
    /// a trace.
    #[cfg(feature = "edhoc-test-vectors")]
    #[doc(hidden)]
    pub fn with_suites(mut self, suites: &[u8]) -> Result<Self, Error> {
        match suites.last() {
            Some(s) if super::SUPPORTED_SUITES.contains(s) => {}
            _ => return Err(edhoc(EdhocError::WrongSelectedSuite)),
        }
        self.suites = heapless::Vec::from_slice(suites).map_err(|_| edhoc(EdhocError::TooLarge))?;
        Ok(self)
    }

    /// Writes message_1 (METHOD, SUITES_I, G_X, C_I, EAD_1) into `out` with
    /// a fresh ephemeral key from `rng`; returns its length.
    pub fn prepare_message_1(
        &mut self,
        rng: &mut impl CryptoRngCore,
        c_i: ConnId,
        ead_1: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let x = SecretKey::random(rng);
        self.message_1(x, c_i, ead_1, out)
    }

    /// [`Initiator::prepare_message_1`] with an explicit ephemeral private
    /// key X: for reproducing test vectors only; an X must never be used
    /// twice. Not part of the API (feature `edhoc-test-vectors`).
    #[cfg(feature = "edhoc-test-vectors")]
    #[doc(hidden)]
    pub fn prepare_message_1_with_ephemeral(
        &mut self,
        x: &[u8; 32],
        c_i: ConnId,
        ead_1: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let x = SecretKey::from_slice(x).map_err(|_| edhoc(EdhocError::InvalidPublicKey))?;
        self.message_1(x, c_i, ead_1, out)
    }

    fn message_1(
        &mut self,
        x: SecretKey,
        c_i: ConnId,
        ead_1: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if !matches!(self.state, State::Start) {
            return Err(self.wrong_state());
        }
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let mut w = Writer::new(&mut buf);
        w.int(self.method as i64)?;
        wire::write_suites(&mut w, &self.suites)?;
        w.bstr(&crypto::x_of(&x.public_key()))?;
        c_i.write(&mut w)?;
        wire::write_ead(&mut w, ead_1)?;
        let n = w.len();
        let msg = buf.get(..n).unwrap_or(&[]);
        let len = copy_out(msg, out)?;
        self.state = State::WaitM2 {
            x,
            c_i,
            h_m1: crypto::hash(&[msg]),
        };
        Ok(len)
    }

    /// Processes message_2 (or an error message, returned as
    /// [`EdhocError::PeerError`]): decrypts PLAINTEXT_2, resolves ID_CRED_R
    /// through `policy`, verifies MAC_2 or the signature, shows EAD_2 to the
    /// policy. Refuses a C_R equal to C_I ([`EdhocError::ConnIdReused`],
    /// RFC 9528 §3.3.3). Returns C_R.
    ///
    /// [`EdhocError::UnexpectedMessage`] (not the message this state takes,
    /// e.g. a replay) changes nothing; any other error discontinues the
    /// handshake (RFC 9528 §5.3.3): the state becomes aborted, its secrets
    /// are dropped and every later call returns [`EdhocError::Aborted`].
    pub fn process_message_2<P: Policy + ?Sized>(
        &mut self,
        message_2: &[u8],
        policy: &mut P,
    ) -> Result<ConnId, Error> {
        let r = self.process_message_2_inner(message_2, policy);
        self.abort_on(&r);
        r
    }

    fn process_message_2_inner<P: Policy + ?Sized>(
        &mut self,
        message_2: &[u8],
        policy: &mut P,
    ) -> Result<ConnId, Error> {
        let State::WaitM2 { x, c_i, h_m1 } = &self.state else {
            return Err(self.wrong_state());
        };
        if message_2.len() > MAX_MESSAGE_LEN {
            return Err(edhoc(EdhocError::TooLarge));
        }
        peer_error(message_2)?;
        let body = wire::single_bstr(message_2)?;
        let (g_y, ct_2) = (body.get(..ELEM_LEN), body.get(ELEM_LEN..));
        let (Some(g_y), Some(ct_2)) = (g_y, ct_2) else {
            return Err(edhoc(EdhocError::Malformed));
        };
        if ct_2.is_empty() || ct_2.len() > MAX_PLAINTEXT_LEN {
            return Err(edhoc(EdhocError::Malformed));
        }
        let g_y: [u8; ELEM_LEN] = g_y.try_into().map_err(|_| wire::malformed())?;
        let gy = crypto::public_from_x(&g_y)?;
        let th_2 = crypto::hash(&[&BSTR32, &g_y, &BSTR32, h_m1]);
        let th_2b = crypto::th_bstr(&th_2);
        let prk_2e = crypto::extract(&th_2, &crypto::ecdh(x, &gy).0)?;

        let mut pt = Zeroizing::new([0u8; MAX_PLAINTEXT_LEN]);
        let pt = pt
            .get_mut(..ct_2.len())
            .ok_or(edhoc(EdhocError::TooLarge))?;
        crypto::kdf(&prk_2e, 0, &[&th_2], pt)?;
        for (p, c) in pt.iter_mut().zip(ct_2) {
            *p ^= c;
        }
        let pt: &[u8] = pt;
        let p2 = wire::plaintext_2(pt)?;
        // RFC 9528 §3.3.3: C_R must differ from C_I, else the exported
        // OSCORE Sender ID equals the Recipient ID (one key both ways).
        if p2.c_r == *c_i {
            return Err(edhoc(EdhocError::ConnIdReused));
        }
        let peer = resolve(policy, p2.id_cred_r)?;
        let prk_3e2m = if self.method.responder_signs() {
            prk_2e.clone()
        } else {
            let salt = crypto::kdf_prk(&prk_2e, 1, &[&th_2])?;
            crypto::extract(&salt.0, &crypto::ecdh(x, peer.public_key()).0)?
        };
        let mut idc = [0u8; MAX_CRED_LEN + 8];
        let idc_len = p2.id_cred_r.encode_map(&mut idc)?;
        let idc = idc.get(..idc_len).unwrap_or(&[]);
        let (c_r_enc, c_r_len) = p2.c_r.encoded();
        let c_r_enc = c_r_enc.get(..c_r_len).unwrap_or(&[]);
        let mut mac = [0u8; HASH_LEN];
        let mac = mac
            .get_mut(..mac_len(self.method.responder_signs()))
            .ok_or(Error::TooLarge)?;
        crypto::kdf(
            &prk_3e2m,
            2,
            &[c_r_enc, idc, &th_2b, peer.as_bytes(), p2.ead],
            mac,
        )?;
        if self.method.responder_signs() {
            crypto::verify(
                peer.public_key(),
                idc,
                &[&th_2b, peer.as_bytes(), p2.ead],
                mac,
                p2.sig_or_mac,
            )?;
        } else {
            crypto::check_mac(mac, p2.sig_or_mac)?;
        }
        process_ead(policy, EadMessage::Message2, p2.ead)?;

        let th_3 = crypto::hash(&[&th_2b, pt, peer.as_bytes()]);
        let prk_4e3m = if self.method.initiator_signs() {
            prk_3e2m.clone()
        } else {
            let salt = crypto::kdf_prk(&prk_3e2m, 5, &[&th_3])?;
            crypto::extract(&salt.0, &crypto::ecdh(&self.identity.secret, &gy).0)?
        };
        let c_r = p2.c_r;
        self.state = State::VerifiedM2 {
            c_i: *c_i,
            c_r,
            prk_3e2m,
            prk_4e3m,
            th_3,
            peer,
        };
        Ok(c_r)
    }

    /// The responder's credential once message_2 verified.
    pub fn peer_credential(&self) -> Option<&Credential> {
        match &self.state {
            State::VerifiedM2 { peer, .. } => Some(peer),
            State::Done { session, .. } => Some(&session.peer),
            _ => None,
        }
    }

    /// Writes message_3 (ID_CRED_I, MAC_3 or signature, EAD_3, encrypted)
    /// into `out` and completes the handshake on this side.
    pub fn prepare_message_3(
        &mut self,
        ead_3: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let State::VerifiedM2 {
            c_i,
            c_r,
            prk_3e2m,
            prk_4e3m,
            th_3,
            peer,
        } = &self.state
        else {
            return Err(self.wrong_state());
        };
        let th_3b = crypto::th_bstr(th_3);
        let mut ead = [0u8; MAX_EAD_LEN];
        let mut w = Writer::new(&mut ead);
        wire::write_ead(&mut w, ead_3).map_err(|_| edhoc(EdhocError::TooLarge))?;
        let ead_len = w.len();
        let ead = ead.get(..ead_len).unwrap_or(&[]);

        let id_cred = self.identity.id_cred();
        let cred = self.identity.cred.as_bytes();
        let mut idc = [0u8; MAX_CRED_LEN + 8];
        let idc_len = id_cred.encode_map(&mut idc)?;
        let idc = idc.get(..idc_len).unwrap_or(&[]);
        let signs = self.method.initiator_signs();
        let mut mac = [0u8; HASH_LEN];
        let mac = mac.get_mut(..mac_len(signs)).ok_or(Error::TooLarge)?;
        crypto::kdf(prk_4e3m, 6, &[idc, &th_3b, cred, ead], mac)?;
        let sig;
        let sig_or_mac: &[u8] = if signs {
            sig = crypto::sign(&self.identity.secret, idc, &[&th_3b, cred, ead], mac)?;
            &sig
        } else {
            mac
        };

        let mut pt = Zeroizing::new([0u8; MAX_PLAINTEXT_LEN + TAG_LEN]);
        let mut w = Writer::new(&mut pt[..]);
        id_cred.write_compact(&mut w)?;
        w.bstr(sig_or_mac)?;
        w.raw(ead)?;
        let pt_len = w.len();
        let th_4 = crypto::hash(&[&th_3b, pt.get(..pt_len).unwrap_or(&[]), cred]);
        let (k_3, iv_3) = crypto::key_iv(prk_3e2m, 3, th_3)?;
        let ct_len = crypto::seal(&k_3, &iv_3, th_3, &mut pt[..], pt_len)?;

        let mut msg = [0u8; MAX_MESSAGE_LEN];
        let mut w = Writer::new(&mut msg);
        w.bstr(pt.get(..ct_len).unwrap_or(&[]))?;
        let n = w.len();
        let len = copy_out(msg.get(..n).unwrap_or(&[]), out)?;

        let (prk_out, prk_exporter) = crypto::outputs(prk_4e3m, &th_4)?;
        self.state = State::Done {
            session: Session {
                prk_out,
                prk_exporter,
                peer_id: *c_r,
                own_id: *c_i,
                peer: peer.clone(),
            },
            prk_4e3m: prk_4e3m.clone(),
            th_4,
            message_4_seen: false,
            key_confirmed: false,
        };
        Ok(len)
    }

    /// Processes the optional message_4 (RFC 9528 §5.5), or an error
    /// message, returned as [`EdhocError::PeerError`]: decrypts it and
    /// shows EAD_4 to the policy.
    ///
    /// [`EdhocError::UnexpectedMessage`] (not the message this state takes,
    /// e.g. a replay) changes nothing; any other error discontinues the
    /// handshake (RFC 9528 §5.5.3): the session is dropped with
    /// its secrets and every later call returns [`EdhocError::Aborted`].
    pub fn process_message_4<P: Policy + ?Sized>(
        &mut self,
        message_4: &[u8],
        policy: &mut P,
    ) -> Result<(), Error> {
        let r = self.process_message_4_inner(message_4, policy);
        self.abort_on(&r);
        r
    }

    fn process_message_4_inner<P: Policy + ?Sized>(
        &mut self,
        message_4: &[u8],
        policy: &mut P,
    ) -> Result<(), Error> {
        let State::Done {
            prk_4e3m,
            th_4,
            message_4_seen: false,
            ..
        } = &self.state
        else {
            return Err(self.wrong_state());
        };
        if message_4.len() > MAX_MESSAGE_LEN {
            return Err(edhoc(EdhocError::TooLarge));
        }
        peer_error(message_4)?;
        let ct = wire::single_bstr(message_4)?;
        let mut buf = Zeroizing::new([0u8; MAX_EAD_LEN + TAG_LEN]);
        let buf = buf.get_mut(..ct.len()).ok_or(edhoc(EdhocError::TooLarge))?;
        buf.copy_from_slice(ct);
        let (k_4, iv_4) = crypto::key_iv(prk_4e3m, 8, th_4)?;
        let n = crypto::open(&k_4, &iv_4, th_4, buf)?;
        let ead = buf.get(..n).unwrap_or(&[]);
        wire::check_ead(ead)?;
        process_ead(policy, EadMessage::Message4, ead)?;
        if let State::Done {
            message_4_seen,
            key_confirmed,
            ..
        } = &mut self.state
        {
            *message_4_seen = true;
            *key_confirmed = true;
        }
        Ok(())
    }

    /// Whether the responder has proven that it holds this session's keys
    /// (RFC 9528 §5.4.2): message_4 verified ([`Self::process_message_4`]),
    /// or the application reported with [`Self::confirm_key`] that a
    /// message from the responder protected with a key derived from this
    /// session (an OSCORE response, say) verified.
    ///
    /// Until then the initiator SHOULD NOT persistently store PRK_out or
    /// application keys (RFC 9528 §5.4.2): a message_2 alone does not show
    /// that the responder completed the handshake. `false` before the
    /// handshake is complete on this side and after it was discontinued.
    pub fn key_confirmed(&self) -> bool {
        matches!(
            self.state,
            State::Done {
                key_confirmed: true,
                ..
            }
        )
    }

    /// Records that a message from the responder protected with a key
    /// derived from this session verified (RFC 9528 §5.4.2: "a message
    /// protected with a derived application key, such as an OSCORE
    /// message"), so that [`Self::key_confirmed`] is `true`.
    ///
    /// Call it only after that verification succeeded: it is the
    /// application's statement, not checked here. Before the handshake is
    /// complete on this side it changes nothing and returns
    /// [`EdhocError::UnexpectedMessage`] ([`EdhocError::Aborted`] once
    /// discontinued).
    pub fn confirm_key(&mut self) -> Result<(), Error> {
        match &mut self.state {
            State::Done { key_confirmed, .. } => {
                *key_confirmed = true;
                Ok(())
            }
            _ => Err(self.wrong_state()),
        }
    }

    /// The completed session, once message_3 is made.
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            State::Done { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The error for a call the current state does not take.
    fn wrong_state(&self) -> Error {
        match self.state {
            State::Aborted => edhoc(EdhocError::Aborted),
            _ => edhoc(EdhocError::UnexpectedMessage),
        }
    }

    /// RFC 9528: after a processing failure the session is discontinued.
    /// A message the current state does not take at all (a replay to a
    /// finished side) changes nothing.
    fn abort_on<T>(&mut self, r: &Result<T, Error>) {
        if r.as_ref().err().is_some_and(discontinues) {
            self.state = State::Aborted;
        }
    }

    /// Whether the handshake was discontinued after a processing failure
    /// (every later call returns [`EdhocError::Aborted`]).
    pub fn is_aborted(&self) -> bool {
        matches!(self.state, State::Aborted)
    }

    /// Whether the handshake is complete on this side.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }
}

/// An error message (RFC 9528 §6: it starts with ERR_CODE, an integer)
/// where message_2, message_3 or message_4 is expected (those are one byte
/// string) is [`EdhocError::PeerError`].
pub(crate) fn peer_error(m: &[u8]) -> Result<(), Error> {
    if matches!(m.first().map(|b| b >> 5), Some(0 | 1)) {
        let e = ErrorMessage::parse(m)?;
        return Err(edhoc(EdhocError::PeerError(e.code())));
    }
    Ok(())
}

/// MAC length: hash length when the side signs, else the suite's 8 bytes.
pub(crate) fn mac_len(signs: bool) -> usize {
    if signs {
        HASH_LEN
    } else {
        8
    }
}
