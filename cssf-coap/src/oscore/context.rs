//! The security context (RFC 8613 §3): derivation, the Sender Sequence
//! Number with its persistence hook (Appendix B.1.1), and the Recipient
//! Context's replay window.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::crypto::derive;
use super::option::MAX_PIV_LEN;
use super::{Error, ReplayWindow, KEY_LEN, MAX_ID_CONTEXT_LEN, MAX_ID_LEN, NONCE_LEN};

/// Highest Sender Sequence Number: a Partial IV has at most 40 bits (§7.2.1).
pub const MAX_SEQUENCE_NUMBER: u64 = (1 << 40) - 1;

/// A byte string of at most `N` bytes kept inline (a Sender/Recipient ID or
/// an ID Context).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Bytes<N> {
    /// Copies `b`; `None` if it is longer than `N` (or 255) bytes.
    pub fn new(b: &[u8]) -> Option<Self> {
        let len = u8::try_from(b.len()).ok()?;
        let mut bytes = [0u8; N];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Bytes { len, bytes })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Compares with `other` in time independent of the contents.
    fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        self.as_bytes().ct_eq(other).into()
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x?}", self.as_bytes())
    }
}

/// A Sender ID, Recipient ID or kid (at most 7 bytes with
/// AES-CCM-16-64-128).
pub type Id = Bytes<MAX_ID_LEN>;
/// An ID Context (kid context).
pub type IdContext = Bytes<MAX_ID_CONTEXT_LEN>;

/// A Partial IV: a sequence number in network byte order without leading
/// zero bytes (one byte at least), at most 5 bytes.
pub type PartialIv = Bytes<MAX_PIV_LEN>;

impl PartialIv {
    /// The minimal encoding of `seq` (which must not exceed
    /// [`MAX_SEQUENCE_NUMBER`]; higher bits are dropped).
    pub fn from_sequence(seq: u64) -> Self {
        let b = (seq & MAX_SEQUENCE_NUMBER).to_be_bytes();
        let skip = b.iter().take(b.len() - 1).take_while(|&&x| x == 0).count();
        Bytes::new(b.get(skip..).unwrap_or(&[0])).unwrap_or(Bytes {
            len: 1,
            bytes: [0; MAX_PIV_LEN],
        })
    }

    /// The sequence number this Partial IV encodes.
    pub fn sequence(&self) -> u64 {
        self.as_bytes()
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b))
    }
}

/// What identifies the request a response answers: the request's kid (the
/// client's Sender ID) and Partial IV (RFC 8613 §5.4 `request_kid`,
/// `request_piv`).
///
/// The client keeps it from [`SecurityContext::protect_request`] to verify
/// the response; the server keeps it from
/// [`SecurityContext::unprotect_request`] to protect its response. Both
/// AAD and (for responses without their own Partial IV) the nonce depend
/// on it, so a response verifies only against its own request.
///
/// Neither `Clone` nor `Copy`: the request's nonce may protect one
/// response only (a second response to the same request, e.g. a
/// notification, takes a Partial IV of its own, RFC 8613 §8.3), which the
/// binding records ([`SecurityContext::protect_response`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RequestBinding {
    /// The request's kid.
    pub kid: Id,
    /// The request's Partial IV.
    pub partial_iv: PartialIv,
    /// A response was protected with the request's nonce (server), or
    /// one protected with it was taken (client).
    nonce_used: bool,
    /// Client: the highest Partial IV of a response to this request taken
    /// so far (notifications must increase, RFC 8613 §7.4.1).
    highest_response: Option<u64>,
}

impl RequestBinding {
    /// The binding of the request with `kid` and `partial_iv` (what
    /// [`SecurityContext::protect_request`] and
    /// [`SecurityContext::unprotect_request`] return). A server must
    /// protect responses with the binding it got, not a new one: a new
    /// binding does not know that the request's nonce was used already.
    pub fn new(kid: Id, partial_iv: PartialIv) -> Self {
        RequestBinding {
            kid,
            partial_iv,
            nonce_used: false,
            highest_response: None,
        }
    }

    /// Client: whether a verified response with Partial IV `piv` (`None`:
    /// it used the request's nonce) is new, and if so records it. A
    /// response using the request's nonce is taken once, and only before
    /// any response with a Partial IV of its own (the registration answer
    /// of an observation comes first: held back past a notification it is
    /// older, §7.4.1, §8.4); one with its own Partial IV only above the
    /// highest taken so far (a replayed or older notification is refused).
    pub(crate) fn take_response(&mut self, piv: Option<u64>) -> bool {
        match piv {
            None => {
                let first = self.take_nonce();
                first && self.highest_response.is_none()
            }
            Some(p) if self.highest_response.is_some_and(|h| p <= h) => false,
            Some(p) => {
                self.highest_response = Some(p);
                true
            }
        }
    }

    /// Marks the request's nonce used; false if it was already.
    pub(crate) fn take_nonce(&mut self) -> bool {
        !core::mem::replace(&mut self.nonce_used, true)
    }
}

/// The inputs of the security context derivation (RFC 8613 §3.2), with
/// the default algorithms: AES-CCM-16-64-128 and HKDF-SHA256.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    /// The Master Secret.
    pub master_secret: &'a [u8],
    /// The Master Salt (empty: the default, no salt).
    pub master_salt: &'a [u8],
    /// The ID Context, if the context has one (sent as kid context in
    /// requests).
    pub id_context: Option<&'a [u8]>,
    /// This endpoint's Sender ID (at most 7 bytes).
    pub sender_id: &'a [u8],
    /// The peer's Sender ID, this endpoint's Recipient ID (at most 7 bytes,
    /// different from `sender_id`).
    pub recipient_id: &'a [u8],
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("id_context", &self.id_context)
            .field("sender_id", &self.sender_id)
            .field("recipient_id", &self.recipient_id)
            .finish_non_exhaustive()
    }
}

/// Where the Sender Sequence Number starts and how it is kept across
/// reboots (RFC 8613 Appendix B.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenderSequence {
    /// The context lives in RAM only and is never restored after a reboot
    /// (e.g. keys derived anew by EDHOC every boot): numbers start at 0 and
    /// are never persisted.
    Volatile,
    /// The context is restored after a reboot from a value the caller keeps
    /// in nonvolatile memory.
    ///
    /// `stored` is the last value the caller persisted (0 for a context
    /// never used): every number used before the reboot is below it, so
    /// numbering resumes there. `step` is how far ahead each persisted value
    /// reaches: a flash write every `step` messages. The context refuses to
    /// use a number the caller has not persisted a bound above
    /// ([`Error::PersistRequired`]); see [`SecurityContext::persist_due`].
    Persisted {
        /// The value last persisted (0 for a new context).
        stored: u64,
        /// Numbers covered by one write (at least 1).
        step: u64,
    },
}

/// The key material, wiped when the context is dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Keys {
    pub(crate) sender_key: [u8; KEY_LEN],
    pub(crate) recipient_key: [u8; KEY_LEN],
    pub(crate) common_iv: [u8; NONCE_LEN],
}

/// An OSCORE security context (RFC 8613 §3.1): the Common Context, the
/// Sender Context with its sequence number and the Recipient Context with
/// its replay window.
///
/// Derived once from [`Params`] by [`SecurityContext::new`]; keys are
/// zeroized on drop and never printed. Message processing is in
/// [`SecurityContext::protect_request`],
/// [`SecurityContext::unprotect_request`],
/// [`SecurityContext::protect_response`] and
/// [`SecurityContext::unprotect_response`].
///
/// Not `Clone`: two copies would protect with the same sender sequence
/// numbers, so the same key and nonce twice.
pub struct SecurityContext {
    pub(crate) keys: Keys,
    pub(crate) sender_id: Id,
    pub(crate) recipient_id: Id,
    pub(crate) id_context: Option<IdContext>,
    /// The next Sender Sequence Number to use.
    ssn: u64,
    /// Numbers below this may be used; `None` for a volatile context.
    persisted: Option<u64>,
    step: u64,
    pub(crate) replay: ReplayWindow,
    /// The replay window is known to cover every request taken before
    /// (false for a context restored after a reboot until the caller says
    /// so, Appendix B.1.2).
    pub(crate) replay_synchronised: bool,
}

impl fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityContext")
            .field("sender_id", &self.sender_id)
            .field("recipient_id", &self.recipient_id)
            .field("id_context", &self.id_context)
            .field("sender_sequence_number", &self.ssn)
            .field("persisted", &self.persisted)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl SecurityContext {
    /// Derives the context (RFC 8613 §3.2.1).
    ///
    /// [`Error::BadIdLength`] for a Sender or Recipient ID longer than 7
    /// bytes, [`Error::BadIdContextLength`] for an ID Context longer than
    /// [`MAX_ID_CONTEXT_LEN`].
    pub fn new(params: &Params<'_>, sequence: SenderSequence) -> Result<Self, Error> {
        let sender_id = Id::new(params.sender_id).ok_or(Error::BadIdLength)?;
        let recipient_id = Id::new(params.recipient_id).ok_or(Error::BadIdLength)?;
        let id_context = match params.id_context {
            Some(c) => Some(IdContext::new(c).ok_or(Error::BadIdContextLength)?),
            None => None,
        };
        let keys = derive(
            params.master_secret,
            params.master_salt,
            params.id_context,
            params.sender_id,
            params.recipient_id,
        )?;
        let (ssn, persisted, step) = match sequence {
            SenderSequence::Volatile => (0, None, 0),
            SenderSequence::Persisted { stored, step } => {
                (stored, Some(stored), step.clamp(1, MAX_SEQUENCE_NUMBER))
            }
        };
        Ok(SecurityContext {
            keys,
            sender_id,
            recipient_id,
            id_context,
            ssn,
            persisted,
            step,
            replay: ReplayWindow::new(),
            // A context with fixed keys restored after a reboot starts
            // with an empty window, which would take any request recorded
            // before the reboot once (Appendix B.1.2): not until the
            // caller restores the window or vouches for freshness.
            replay_synchronised: persisted.is_none(),
        })
    }

    /// Appendix B.1.2, for a context built with
    /// [`SenderSequence::Persisted`]: sets the replay window after a reboot
    /// to refuse every request numbered `highest` or below (the
    /// [`ReplayWindow::highest`] the caller saved in nonvolatile memory
    /// before the reboot, or a bound above it), and starts taking requests.
    /// Until this (or [`SecurityContext::replay_synchronised`]) is called,
    /// such a context refuses every request with
    /// [`Error::ReplayWindowNotSynchronised`].
    pub fn restore_replay_window(&mut self, highest: u64) {
        self.replay = ReplayWindow::restored(highest);
        self.replay_synchronised = true;
    }

    /// Appendix B.1.2: the caller established that requests are fresh by
    /// other means (e.g. an Echo exchange, RFC 9175, or keys it knows to be
    /// new): a restored context takes requests with an empty window.
    pub fn replay_synchronised(&mut self) {
        self.replay_synchronised = true;
    }

    /// Whether the replay window is synchronised: false for a context built
    /// with [`SenderSequence::Persisted`] until
    /// [`SecurityContext::restore_replay_window`] or
    /// [`SecurityContext::replay_synchronised`] is called, or (in the
    /// endpoint) until a request proved fresh by an Echo value synchronised
    /// it (Appendix B.1.2).
    pub fn is_replay_synchronised(&self) -> bool {
        self.replay_synchronised
    }

    /// This endpoint's Sender ID.
    pub fn sender_id(&self) -> &[u8] {
        self.sender_id.as_bytes()
    }

    /// This endpoint's Recipient ID (the peer's Sender ID).
    pub fn recipient_id(&self) -> &[u8] {
        self.recipient_id.as_bytes()
    }

    /// The ID Context, if any.
    pub fn id_context(&self) -> Option<&[u8]> {
        self.id_context.as_ref().map(Bytes::as_bytes)
    }

    /// The Sender Key (for tests against published vectors; never log it). Only with the
    /// `test-vectors` feature, which is not part of the API: key material
    /// stays inside the context in every other build.
    #[cfg(any(test, feature = "test-vectors"))]
    #[doc(hidden)]
    pub fn sender_key(&self) -> &[u8; KEY_LEN] {
        &self.keys.sender_key
    }

    /// The Recipient Key (for tests against published vectors). Only with the
    /// `test-vectors` feature, which is not part of the API: key material
    /// stays inside the context in every other build.
    #[cfg(any(test, feature = "test-vectors"))]
    #[doc(hidden)]
    pub fn recipient_key(&self) -> &[u8; KEY_LEN] {
        &self.keys.recipient_key
    }

    /// The Common IV (for tests against published vectors). Only with the
    /// `test-vectors` feature, which is not part of the API: key material
    /// stays inside the context in every other build.
    #[cfg(any(test, feature = "test-vectors"))]
    #[doc(hidden)]
    pub fn common_iv(&self) -> &[u8; NONCE_LEN] {
        &self.keys.common_iv
    }

    /// The AEAD nonce this context's sender uses for Partial IV `piv`
    /// (RFC 8613 §5.2).
    pub fn sender_nonce(&self, piv: &PartialIv) -> [u8; NONCE_LEN] {
        super::crypto::nonce(&self.keys.common_iv, self.sender_id(), piv.as_bytes())
    }

    /// The AEAD nonce the peer uses for Partial IV `piv`.
    pub fn recipient_nonce(&self, piv: &PartialIv) -> [u8; NONCE_LEN] {
        super::crypto::nonce(&self.keys.common_iv, self.recipient_id(), piv.as_bytes())
    }

    /// The next Sender Sequence Number to be used.
    pub fn sender_sequence_number(&self) -> u64 {
        self.ssn
    }

    /// The Recipient Context's replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }

    /// The value to write to nonvolatile memory now, if the numbers already
    /// persisted run low (Appendix B.1.1); `None` for a volatile context or
    /// while at least half a `step` remains.
    ///
    /// Write the value durably, then confirm it with
    /// [`SecurityContext::persisted`]; after a reboot pass the last
    /// confirmed value as `stored` in [`SenderSequence::Persisted`]. Since
    /// numbers at or above a confirmed value are used only after a higher
    /// value was confirmed, no Partial IV is ever used twice.
    pub fn persist_due(&self) -> Option<u64> {
        let bound = self.persisted?;
        if bound.saturating_sub(self.ssn) > self.step / 2 {
            return None;
        }
        Some(
            self.ssn
                .saturating_add(self.step)
                .min(MAX_SEQUENCE_NUMBER + 1),
        )
    }

    /// Confirms that `value` (from [`SecurityContext::persist_due`]) is in
    /// nonvolatile memory: numbers below it may now be used. A value lower
    /// than one already confirmed changes nothing.
    pub fn persisted(&mut self, value: u64) {
        if let Some(bound) = self.persisted.as_mut() {
            *bound = (*bound).max(value);
        }
    }

    /// Takes the next Sender Sequence Number.
    pub(crate) fn take_sequence(&mut self) -> Result<u64, Error> {
        let seq = self.ssn;
        if seq > MAX_SEQUENCE_NUMBER {
            return Err(Error::SequenceExhausted);
        }
        if let Some(bound) = self.persisted {
            if seq >= bound {
                return Err(Error::PersistRequired);
            }
        }
        self.ssn = seq + 1;
        Ok(seq)
    }

    /// Whether a request with this kid and kid context is for this context:
    /// the kid is the Recipient ID, and a kid context, if sent, is the ID
    /// Context.
    pub fn matches(&self, kid: &[u8], kid_context: Option<&[u8]>) -> bool {
        let kid_ok = self.recipient_id.ct_eq_bytes(kid);
        let ctx_ok = match (kid_context, &self.id_context) {
            (None, _) => true,
            (Some(k), Some(c)) => c.ct_eq_bytes(k),
            (Some(_), None) => false,
        };
        kid_ok & ctx_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(sender: &'a [u8], recipient: &'a [u8]) -> Params<'a> {
        Params {
            master_secret: &[1; 16],
            master_salt: &[],
            id_context: None,
            sender_id: sender,
            recipient_id: recipient,
        }
    }

    #[test]
    fn id_length_limits() {
        assert!(SecurityContext::new(&params(&[0; 7], &[1; 7]), SenderSequence::Volatile).is_ok());
        assert_eq!(
            SecurityContext::new(&params(&[0; 8], &[1]), SenderSequence::Volatile).err(),
            Some(Error::BadIdLength)
        );
        assert_eq!(
            SecurityContext::new(&params(&[0], &[1; 8]), SenderSequence::Volatile).err(),
            Some(Error::BadIdLength)
        );
        let mut p = params(&[0], &[1]);
        let long = [0u8; MAX_ID_CONTEXT_LEN + 1];
        p.id_context = Some(&long);
        assert_eq!(
            SecurityContext::new(&p, SenderSequence::Volatile).err(),
            Some(Error::BadIdContextLength)
        );
        p.id_context = Some(&long[1..]);
        assert!(SecurityContext::new(&p, SenderSequence::Volatile).is_ok());
    }

    #[test]
    fn partial_iv_encoding() {
        assert_eq!(PartialIv::from_sequence(0).as_bytes(), [0]);
        assert_eq!(PartialIv::from_sequence(20).as_bytes(), [0x14]);
        assert_eq!(PartialIv::from_sequence(0x100).as_bytes(), [1, 0]);
        assert_eq!(
            PartialIv::from_sequence(MAX_SEQUENCE_NUMBER).as_bytes(),
            [0xff; 5]
        );
        for s in [0, 1, 255, 256, 65535, 1 << 32, MAX_SEQUENCE_NUMBER] {
            assert_eq!(PartialIv::from_sequence(s).sequence(), s);
        }
    }

    #[test]
    fn volatile_sequence_runs_to_the_limit() {
        let mut c = SecurityContext::new(&params(&[0], &[1]), SenderSequence::Volatile).unwrap();
        assert_eq!(c.take_sequence(), Ok(0));
        assert_eq!(c.take_sequence(), Ok(1));
        assert_eq!(c.persist_due(), None);
        c.ssn = MAX_SEQUENCE_NUMBER;
        assert_eq!(c.take_sequence(), Ok(MAX_SEQUENCE_NUMBER));
        assert_eq!(c.take_sequence(), Err(Error::SequenceExhausted));
    }

    #[test]
    fn persisted_sequence_needs_confirmation() {
        let seq = SenderSequence::Persisted {
            stored: 0,
            step: 10,
        };
        let mut c = SecurityContext::new(&params(&[0], &[1]), seq).unwrap();
        assert_eq!(c.take_sequence(), Err(Error::PersistRequired));
        assert_eq!(c.persist_due(), Some(10));
        c.persisted(10);
        assert_eq!(c.persist_due(), None);
        for s in 0..5 {
            assert_eq!(c.take_sequence(), Ok(s));
        }
        // Half the step left: time to write the next bound.
        assert_eq!(c.persist_due(), Some(15));
        for s in 5..10 {
            assert_eq!(c.take_sequence(), Ok(s));
        }
        assert_eq!(c.take_sequence(), Err(Error::PersistRequired));
        c.persisted(3); // lower than confirmed: ignored
        assert_eq!(c.take_sequence(), Err(Error::PersistRequired));
        c.persisted(20);
        assert_eq!(c.take_sequence(), Ok(10));
    }

    #[test]
    fn debug_hides_keys() {
        let c = SecurityContext::new(&params(&[0], &[1]), SenderSequence::Volatile).unwrap();
        let s = std::format!("{c:?}");
        assert!(!s.contains("key"), "{s}");
    }
}
