//! The responder (RFC 9528 §5.2.3, §5.3.2, §5.4.3, §5.5.2).

use p256::{PublicKey, SecretKey};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

use super::crypto::{self, Prk, BSTR32, HASH_LEN, TAG_LEN};
use super::initiator::mac_len;
use super::types::{check_suites, discontinues, process_ead, resolve};
use super::wire::{self, Writer};
use super::{
    ConnId, Credential, EadItem, EadMessage, EdhocError, Identity, Method, Policy, Session,
    MAX_CRED_LEN, MAX_EAD_LEN, MAX_MESSAGE_LEN, MAX_PLAINTEXT_LEN,
};

// No heap: every state lives inline, the largest (a completed session
// with the peer's credential) sets the size.
#[allow(clippy::large_enum_variant)]
#[cfg_attr(fuzzing, derive(Clone))]
enum State {
    /// Waiting for message_1.
    Start,
    /// message_1 accepted; message_2 not made yet.
    ProcessedM1 {
        method: Method,
        g_x: PublicKey,
        c_i: ConnId,
        h_m1: [u8; HASH_LEN],
    },
    /// message_2 sent.
    WaitM3 {
        method: Method,
        y: SecretKey,
        c_i: ConnId,
        c_r: ConnId,
        prk_3e2m: Prk,
        th_3: [u8; HASH_LEN],
    },
    /// message_3 verified: complete.
    Done {
        session: Session,
        prk_4e3m: Prk,
        th_4: [u8; HASH_LEN],
        message_4_sent: bool,
    },
    /// A message was refused (or the peer sent an error message): the
    /// handshake is over, its secrets dropped (RFC 9528 §5.4.3).
    Aborted,
}

/// The EDHOC responder: receives message_1 and message_3, sends message_2
/// (and message_4, if the application uses it). Not `Clone`: a copy
/// would let one ephemeral key, or one message key and nonce, be used twice.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Responder {
    methods: [bool; 4],
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

impl Responder {
    /// A responder authenticated by `identity`, accepting the `methods`
    /// listed (a message_1 with another is refused,
    /// [`EdhocError::UnsupportedMethod`]).
    ///
    /// There is no default: the methods say how the responder's key is
    /// used. Methods 0 and 2 ([`Method::SignatureSignature`],
    /// [`Method::StaticSignature`]) sign with it (ES256), methods 1 and 3
    /// ([`Method::SignatureStatic`], [`Method::StaticStatic`]) use it for
    /// static Diffie-Hellman. List the ones of one kind: accepting both
    /// uses one key for signatures and for key agreement, which key-usage
    /// rules (one key, one purpose) advise against.
    pub fn new(identity: Identity, methods: &[Method]) -> Self {
        let mut accepted = [false; 4];
        for m in methods {
            if let Some(slot) = accepted.get_mut(*m as usize) {
                *slot = true;
            }
        }
        Self {
            methods: accepted,
            identity,
            state: State::Start,
        }
    }

    /// Processes message_1: checks the method and the selected cipher suite
    /// ([`EdhocError::WrongSelectedSuite`]: answer with
    /// [`super::error_message`]), shows EAD_1 to the policy. Returns C_I.
    /// On error the state is unchanged: nothing was agreed yet, and the
    /// responder still takes another message_1 (e.g. the initiator's next
    /// one after an error message with our suites).
    pub fn process_message_1<P: Policy + ?Sized>(
        &mut self,
        message_1: &[u8],
        policy: &mut P,
    ) -> Result<ConnId, Error> {
        if !matches!(self.state, State::Start) {
            return Err(self.wrong_state());
        }
        if message_1.len() > MAX_MESSAGE_LEN {
            return Err(edhoc(EdhocError::TooLarge));
        }
        let m1 = wire::message_1(message_1)?;
        let method = Method::from_int(m1.method)
            .filter(|m| self.methods.get(*m as usize) == Some(&true))
            .ok_or(edhoc(EdhocError::UnsupportedMethod))?;
        check_suites(&m1.suites)?;
        let g_x = crypto::public_from_x(&m1.g_x)?;
        process_ead(policy, EadMessage::Message1, m1.ead)?;
        self.state = State::ProcessedM1 {
            method,
            g_x,
            c_i: m1.c_i,
            h_m1: crypto::hash(&[message_1]),
        };
        Ok(m1.c_i)
    }

    /// Writes message_2 into `out` with a fresh ephemeral key from `rng`;
    /// `c_r` must differ from C_I.
    pub fn prepare_message_2(
        &mut self,
        rng: &mut impl CryptoRngCore,
        c_r: ConnId,
        ead_2: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let y = SecretKey::random(rng);
        self.message_2(y, c_r, ead_2, out)
    }

    /// [`Responder::prepare_message_2`] with an explicit ephemeral private
    /// key Y: for reproducing test vectors only; a Y must never be used
    /// twice. Not part of the API (feature `edhoc-test-vectors`).
    #[cfg(feature = "edhoc-test-vectors")]
    #[doc(hidden)]
    pub fn prepare_message_2_with_ephemeral(
        &mut self,
        y: &[u8; 32],
        c_r: ConnId,
        ead_2: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let y = SecretKey::from_slice(y).map_err(|_| edhoc(EdhocError::InvalidPublicKey))?;
        self.message_2(y, c_r, ead_2, out)
    }

    fn message_2(
        &mut self,
        y: SecretKey,
        c_r: ConnId,
        ead_2: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let State::ProcessedM1 {
            method,
            g_x,
            c_i,
            h_m1,
        } = &self.state
        else {
            return Err(self.wrong_state());
        };
        if c_r == *c_i {
            return Err(edhoc(EdhocError::ConnIdReused));
        }
        let g_y = crypto::x_of(&y.public_key());
        let th_2 = crypto::hash(&[&BSTR32, &g_y, &BSTR32, h_m1]);
        let th_2b = crypto::th_bstr(&th_2);
        let prk_2e = crypto::extract(&th_2, &crypto::ecdh(&y, g_x).0)?;
        let signs = method.responder_signs();
        let prk_3e2m = if signs {
            prk_2e.clone()
        } else {
            let salt = crypto::kdf_prk(&prk_2e, 1, &[&th_2])?;
            crypto::extract(&salt.0, &crypto::ecdh(&self.identity.secret, g_x).0)?
        };

        let mut ead = [0u8; MAX_EAD_LEN];
        let mut w = Writer::new(&mut ead);
        wire::write_ead(&mut w, ead_2).map_err(|_| edhoc(EdhocError::TooLarge))?;
        let ead_len = w.len();
        let ead = ead.get(..ead_len).unwrap_or(&[]);

        let id_cred = self.identity.id_cred();
        let cred = self.identity.cred.as_bytes();
        let mut idc = [0u8; MAX_CRED_LEN + 8];
        let idc_len = id_cred.encode_map(&mut idc)?;
        let idc = idc.get(..idc_len).unwrap_or(&[]);
        let (c_r_enc, c_r_len) = c_r.encoded();
        let c_r_enc = c_r_enc.get(..c_r_len).unwrap_or(&[]);
        let mut mac = [0u8; HASH_LEN];
        let mac = mac.get_mut(..mac_len(signs)).ok_or(Error::TooLarge)?;
        crypto::kdf(&prk_3e2m, 2, &[c_r_enc, idc, &th_2b, cred, ead], mac)?;
        let sig;
        let sig_or_mac: &[u8] = if signs {
            sig = crypto::sign(&self.identity.secret, idc, &[&th_2b, cred, ead], mac)?;
            &sig
        } else {
            mac
        };

        let mut pt = Zeroizing::new([0u8; MAX_PLAINTEXT_LEN]);
        let mut w = Writer::new(&mut pt[..]);
        w.raw(c_r_enc)?;
        id_cred.write_compact(&mut w)?;
        w.bstr(sig_or_mac)?;
        w.raw(ead)?;
        let pt_len = w.len();
        let pt = pt.get_mut(..pt_len).unwrap_or(&mut []);
        let th_3 = crypto::hash(&[&th_2b, pt, cred]);
        let mut ks = Zeroizing::new([0u8; MAX_PLAINTEXT_LEN]);
        let ks = ks.get_mut(..pt_len).unwrap_or(&mut []);
        crypto::kdf(&prk_2e, 0, &[&th_2], ks)?;
        for (p, k) in pt.iter_mut().zip(ks.iter()) {
            *p ^= k;
        }
        ks.zeroize();

        let mut msg = [0u8; MAX_MESSAGE_LEN];
        let mut w = Writer::new(&mut msg);
        w.head(2, (g_y.len() + pt_len) as u64)?;
        w.raw(&g_y)?;
        w.raw(pt)?;
        let n = w.len();
        let len = copy_out(msg.get(..n).unwrap_or(&[]), out)?;
        self.state = State::WaitM3 {
            method: *method,
            y,
            c_i: *c_i,
            c_r,
            prk_3e2m,
            th_3,
        };
        Ok(len)
    }

    /// Processes message_3: decrypts it, resolves ID_CRED_I through
    /// `policy`, verifies MAC_3 or the signature, shows EAD_3 to the policy,
    /// and completes the handshake.
    ///
    /// [`EdhocError::UnexpectedMessage`] (not the message this state takes,
    /// e.g. a replay) changes nothing; any other error discontinues the
    /// handshake (RFC 9528 §5.4.3): the state becomes aborted, its secrets
    /// are dropped and every later call returns [`EdhocError::Aborted`].
    pub fn process_message_3<P: Policy + ?Sized>(
        &mut self,
        message_3: &[u8],
        policy: &mut P,
    ) -> Result<(), Error> {
        let r = self.process_message_3_inner(message_3, policy);
        self.abort_on(&r);
        r
    }

    fn process_message_3_inner<P: Policy + ?Sized>(
        &mut self,
        message_3: &[u8],
        policy: &mut P,
    ) -> Result<(), Error> {
        let State::WaitM3 {
            method,
            y,
            c_i,
            c_r,
            prk_3e2m,
            th_3,
        } = &self.state
        else {
            return Err(self.wrong_state());
        };
        if message_3.len() > MAX_MESSAGE_LEN {
            return Err(edhoc(EdhocError::TooLarge));
        }
        super::initiator::peer_error(message_3)?;
        let ct = wire::single_bstr(message_3)?;
        let mut buf = Zeroizing::new([0u8; MAX_PLAINTEXT_LEN + TAG_LEN]);
        let buf = buf.get_mut(..ct.len()).ok_or(edhoc(EdhocError::TooLarge))?;
        buf.copy_from_slice(ct);
        let (k_3, iv_3) = crypto::key_iv(prk_3e2m, 3, th_3)?;
        let n = crypto::open(&k_3, &iv_3, th_3, buf)?;
        let pt: &[u8] = buf.get(..n).unwrap_or(&[]);
        let p3 = wire::plaintext_3(pt)?;
        let peer = resolve(policy, p3.id_cred_i)?;
        let th_3b = crypto::th_bstr(th_3);
        let signs = method.initiator_signs();
        let prk_4e3m = if signs {
            prk_3e2m.clone()
        } else {
            let salt = crypto::kdf_prk(prk_3e2m, 5, &[th_3])?;
            crypto::extract(&salt.0, &crypto::ecdh(y, peer.public_key()).0)?
        };
        let mut idc = [0u8; MAX_CRED_LEN + 8];
        let idc_len = p3.id_cred_i.encode_map(&mut idc)?;
        let idc = idc.get(..idc_len).unwrap_or(&[]);
        let mut mac = [0u8; HASH_LEN];
        let mac = mac.get_mut(..mac_len(signs)).ok_or(Error::TooLarge)?;
        crypto::kdf(&prk_4e3m, 6, &[idc, &th_3b, peer.as_bytes(), p3.ead], mac)?;
        if signs {
            crypto::verify(
                peer.public_key(),
                idc,
                &[&th_3b, peer.as_bytes(), p3.ead],
                mac,
                p3.sig_or_mac,
            )?;
        } else {
            crypto::check_mac(mac, p3.sig_or_mac)?;
        }
        process_ead(policy, EadMessage::Message3, p3.ead)?;
        let th_4 = crypto::hash(&[&th_3b, pt, peer.as_bytes()]);
        let (prk_out, prk_exporter) = crypto::outputs(&prk_4e3m, &th_4)?;
        self.state = State::Done {
            session: Session {
                prk_out,
                prk_exporter,
                peer_id: *c_i,
                own_id: *c_r,
                peer,
            },
            prk_4e3m,
            th_4,
            message_4_sent: false,
        };
        Ok(())
    }

    /// Writes the optional message_4 (RFC 9528 §5.5), carrying EAD_4, once.
    pub fn prepare_message_4(
        &mut self,
        ead_4: &[EadItem<'_>],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let State::Done {
            prk_4e3m,
            th_4,
            message_4_sent: false,
            ..
        } = &self.state
        else {
            return Err(self.wrong_state());
        };
        let mut pt = Zeroizing::new([0u8; MAX_EAD_LEN + TAG_LEN]);
        let mut w = Writer::new(&mut pt[..]);
        wire::write_ead(&mut w, ead_4).map_err(|_| edhoc(EdhocError::TooLarge))?;
        let pt_len = w.len();
        let (k_4, iv_4) = crypto::key_iv(prk_4e3m, 8, th_4)?;
        let ct_len = crypto::seal(&k_4, &iv_4, th_4, &mut pt[..], pt_len)?;
        let mut msg = [0u8; MAX_EAD_LEN + TAG_LEN + 2];
        let mut w = Writer::new(&mut msg);
        w.bstr(pt.get(..ct_len).unwrap_or(&[]))?;
        let n = w.len();
        let len = copy_out(msg.get(..n).unwrap_or(&[]), out)?;
        if let State::Done { message_4_sent, .. } = &mut self.state {
            *message_4_sent = true;
        }
        Ok(len)
    }

    /// The initiator's credential once message_3 verified.
    pub fn peer_credential(&self) -> Option<&Credential> {
        self.session().map(|s| &s.peer)
    }

    /// The completed session, once message_3 verified.
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

    /// Whether the initiator has proven that it holds this session's keys:
    /// on the responder's side that is message_3 verified (its MAC is
    /// keyed from PRK_4e3m, RFC 9528 §5.4.3), so the same as
    /// [`Self::is_done`]. The initiator's side waits for message_4 or an
    /// application message (`Initiator::key_confirmed`).
    pub fn key_confirmed(&self) -> bool {
        self.is_done()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::edhoc::{CredentialTransfer, Initiator, MAX_MESSAGE_LEN};

    /// A responder that ignores the C_R != C_I rule (its own check is
    /// bypassed by rewriting the C_I it keeps): the initiator must refuse
    /// the message_2, whose MAC is otherwise valid (RFC 9528 §3.3.3).
    #[test]
    fn the_initiator_refuses_c_r_equal_to_c_i() {
        let (ki, kr) = ([0x41u8; 32], [0x52u8; 32]);
        let ci = Credential::ccs_for(&ki, &[0x2b], "i").unwrap();
        let cr = Credential::ccs_for(&kr, &[0x32], "r").unwrap();
        let mut trust_i = [cr.clone()];
        let mut trust_r = [ci.clone()];
        let mut i = Initiator::new(
            Method::StaticStatic,
            Identity::new(ci, &ki, CredentialTransfer::ByReference).unwrap(),
        );
        let mut r = Responder::new(
            Identity::new(cr, &kr, CredentialTransfer::ByReference).unwrap(),
            &[Method::StaticStatic],
        );
        let mut rng = rand_core::OsRng;
        let (mut m1, mut m2) = ([0u8; MAX_MESSAGE_LEN], [0u8; MAX_MESSAGE_LEN]);
        let c_i = ConnId::new(&[0x37]).unwrap();
        let n1 = i.prepare_message_1(&mut rng, c_i, &[], &mut m1).unwrap();
        r.process_message_1(&m1[..n1], &mut trust_r[..]).unwrap();
        let State::ProcessedM1 { c_i: kept, .. } = &mut r.state else {
            panic!("message_1 not processed");
        };
        *kept = ConnId::new(&[0x38]).unwrap();
        let n2 = r.prepare_message_2(&mut rng, c_i, &[], &mut m2).unwrap();
        assert_eq!(
            i.process_message_2(&m2[..n2], &mut trust_i[..]),
            Err(Error::Edhoc(EdhocError::ConnIdReused))
        );
        assert!(i.peer_credential().is_none());
    }
}
