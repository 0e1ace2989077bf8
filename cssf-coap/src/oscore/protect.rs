//! Message protection and verification (RFC 8613 §8).
//!
//! The plain message is split (§4.1): Class E options and the payload are
//! encrypted with the real code as the COSE plaintext (§5.3); Class U
//! options stay outer; the outer code is POST or FETCH for requests and
//! 2.04 or 2.05 for responses (§4.2). On verification the result is the
//! outer header and Class U options with the decrypted code, options and
//! payload; outer copies of Class E-only options are discarded, those of
//! options that are both E and U (Max-Age, Block, Size, Observe,
//! No-Response) are kept only when no inner copy came.

use crate::wire::option::{next_option, write_option, Options};
use crate::wire::{Code, Message, MessageBuilder, OptionNumber, MAX_TOKEN_LEN, PAYLOAD_MARKER};

use super::context::{Id, IdContext, PartialIv, RequestBinding, SecurityContext};
use super::crypto::{aad, nonce, open, seal};
use super::{Error, OscoreOption, MAX_OPTIONS, TAG_LEN};

/// Longest OSCORE option value this crate sends: flags, Partial IV, kid
/// context with its length, kid.
const OPTION_MAX: usize = 1 + 5 + 1 + super::MAX_ID_CONTEXT_LEN + super::MAX_ID_LEN;

/// How an option is protected (RFC 8613 §4.1, Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Encrypted only.
    E,
    /// Outer only.
    U,
    /// Both inner and outer (Observe; §4.1.3.5).
    Both,
}

fn class(n: OptionNumber) -> Class {
    match n {
        OptionNumber::URI_HOST
        | OptionNumber::URI_PORT
        | OptionNumber::OSCORE
        | OptionNumber::PROXY_URI
        | OptionNumber::PROXY_SCHEME
        | OptionNumber::HOP_LIMIT => Class::U,
        OptionNumber::OBSERVE => Class::Both,
        // Everything else, unknown options included, is Class E (§4.1).
        // Max-Age, Block1/2, Size1/2 and No-Response are only protected
        // end to end here: the outer copies for proxies are not sent.
        _ => Class::E,
    }
}

/// The parts of a received protected message that outlive decryption in
/// place: offsets into the datagram and the decoded OSCORE option.
struct Received {
    token_end: usize,
    options_end: usize,
    payload_start: usize,
    partial_iv: Option<PartialIv>,
    kid: Option<Id>,
    /// `Err` for a kid context too long to match any context.
    kid_context: Result<Option<IdContext>, ()>,
}

/// Parses the outer message and its OSCORE option.
fn receive(msg: &[u8], want_request: bool) -> Result<Received, Error> {
    let m = Message::parse(msg)?;
    if want_request && !m.code().is_request() {
        return Err(Error::NotARequest);
    }
    if !want_request && !m.code().is_response() {
        return Err(Error::NotAResponse);
    }
    let value = m.option(OptionNumber::OSCORE).ok_or(Error::NotProtected)?;
    let opt = OscoreOption::parse(value)?;
    let partial_iv = match opt.partial_iv {
        Some(p) => Some(PartialIv::new(p).ok_or(Error::BadOption)?),
        None => None,
    };
    // A kid longer than any Recipient ID matches no context.
    let kid = match opt.kid {
        Some(k) => Some(Id::new(k).ok_or(Error::ContextNotFound)?),
        None => None,
    };
    let kid_context = match opt.kid_context {
        Some(k) => IdContext::new(k).map(Some).ok_or(()),
        None => Ok(None),
    };
    let payload_start = msg.len() - m.payload().len();
    let options_end = if m.payload().is_empty() {
        msg.len()
    } else {
        payload_start - 1
    };
    Ok(Received {
        token_end: m.options_offset(),
        options_end,
        payload_start,
        partial_iv,
        kid,
        kid_context,
    })
}

impl Received {
    /// Whether the request's kid and kid context select `ctx`.
    fn selects(&self, ctx: &SecurityContext) -> bool {
        match (&self.kid, &self.kid_context) {
            (Some(kid), Ok(kc)) => ctx.matches(kid.as_bytes(), kc.as_ref().map(|c| c.as_bytes())),
            _ => false,
        }
    }
}

/// Decrypts the payload of `msg` in place; returns the plaintext range.
fn decrypt(
    key: &[u8; super::KEY_LEN],
    nonce: &[u8; super::NONCE_LEN],
    aad: &[u8],
    msg: &mut [u8],
    payload_start: usize,
) -> Result<(usize, usize), Error> {
    let payload = msg.get_mut(payload_start..).ok_or(Error::BadOption)?;
    // At least the code byte and the tag.
    if payload.len() < 1 + TAG_LEN {
        return Err(Error::BadOption);
    }
    let split = payload.len() - TAG_LEN;
    let (data, tag) = payload.split_at_mut(split);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::BadOption)?;
    open(key, nonce, aad, data, &tag)?;
    Ok((payload_start, payload_start + split))
}

/// Rebuilds the plain message from the verified datagram: outer header and
/// token, outer Class U options, inner code, options and payload.
fn rebuild(
    msg: &[u8],
    r: &Received,
    plain: (usize, usize),
    want_request: bool,
    out: &mut [u8],
) -> Result<usize, Error> {
    // The header and token alone always parse (the code is not 0.00).
    let header = Message::parse(msg.get(..r.token_end).ok_or(Error::BadInnerMessage)?)
        .map_err(|_| Error::BadInnerMessage)?;
    let plaintext = msg.get(plain.0..plain.1).ok_or(Error::BadInnerMessage)?;
    let (&code, mut rest) = plaintext.split_first().ok_or(Error::BadInnerMessage)?;
    let code = Code(code);
    if (want_request && !code.is_request()) || (!want_request && !code.is_response()) {
        return Err(Error::BadInnerMessage);
    }
    let mut b = MessageBuilder::<MAX_OPTIONS>::new(header.ty(), code, header.message_id());
    let token = header.token();
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::BadInnerMessage);
    }
    b.token(token)?;
    let mut number = 0;
    loop {
        match next_option(rest, number) {
            Ok(Some((n, value, after))) => {
                number = n;
                rest = after;
                b.add_option(OptionNumber(n), value)
                    .map_err(|_| Error::BadInnerMessage)?;
            }
            Ok(None) => break,
            Err(_) => return Err(Error::BadInnerMessage),
        }
    }
    // Outer options: only the Class U ones (§8.2 step 8, §8.4 step 8).
    // An outer copy of an option that is also (or only) Class E (Observe,
    // Max-Age, Block, Size, No-Response...) is for proxies and is not
    // protected: anyone on the path may add or change it, so it never
    // reaches the verified message. Outer Block options mean a proxy split
    // the OSCORE message, which is reassembled before verification
    // (§4.1.3.4.2): not supported, refused.
    let outer = Options::new(msg.get(r.token_end..r.options_end).unwrap_or(&[]));
    for o in outer {
        if matches!(o.number, OptionNumber::BLOCK1 | OptionNumber::BLOCK2) {
            return Err(Error::UnsupportedOption(o.number));
        }
        if class(o.number) == Class::U && o.number != OptionNumber::OSCORE {
            b.add_option(o.number, o.value)?;
        }
    }
    // `rest` is empty or the payload marker and a non-empty payload.
    if let Some((_, payload)) = rest.split_first() {
        if payload.is_empty() {
            return Err(Error::BadInnerMessage);
        }
        b.payload(payload);
    }
    Ok(b.emit(out)?)
}

/// What `protect` needs besides the plain message.
struct Seal<'k> {
    key: &'k [u8; super::KEY_LEN],
    nonce: [u8; super::NONCE_LEN],
    request_kid: &'k [u8],
    request_piv: &'k [u8],
    outer_code: Code,
}

/// Writes the protected form of `m` into `out` (§8.1 / §8.3).
fn protect(m: &Message<'_>, s: &Seal<'_>, option: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let mut outer = MessageBuilder::<MAX_OPTIONS>::new(m.ty(), s.outer_code, m.message_id());
    outer.token(m.token())?;
    // Plaintext: code, Class E options, payload (§5.3).
    let mut plain_len = 1;
    let mut prev = 0usize;
    for o in m.options() {
        match class(o.number) {
            Class::U => {
                if matches!(o.number, OptionNumber::OSCORE | OptionNumber::PROXY_URI) {
                    return Err(Error::UnsupportedOption(o.number));
                }
                outer.add_option(o.number, o.value)?;
            }
            c => {
                if c == Class::Both {
                    outer.add_option(o.number, o.value)?;
                }
                let n = usize::from(o.number.0);
                plain_len +=
                    crate::wire::option::header_len(n - prev, o.value.len()) + o.value.len();
                prev = n;
            }
        }
    }
    if !m.payload().is_empty() {
        plain_len += 1 + m.payload().len();
    }
    outer.add_option(OptionNumber::OSCORE, option)?;
    let head = outer.buffer_len();
    let needed = head + 1 + plain_len + TAG_LEN;
    let short = Error::Coap(crate::Error::BufferTooSmall { needed });
    let out = out.get_mut(..needed).ok_or(short)?;
    let (head_buf, body) = out.split_at_mut(head);
    let (marker, body) = body.split_first_mut().ok_or(short)?;
    *marker = PAYLOAD_MARKER;
    let (plain, tag_buf) = body.split_at_mut_checked(plain_len).ok_or(short)?;
    {
        let (code, mut rest) = plain.split_first_mut().ok_or(short)?;
        *code = m.code().0;
        let mut prev = 0usize;
        for o in m.options().filter(|o| class(o.number) != Class::U) {
            let n = usize::from(o.number.0);
            let w = write_option(rest, n - prev, o.value)?;
            rest = rest.get_mut(w..).ok_or(short)?;
            prev = n;
        }
        if !m.payload().is_empty() {
            let (mk, payload) = rest.split_first_mut().ok_or(short)?;
            *mk = PAYLOAD_MARKER;
            payload
                .get_mut(..m.payload().len())
                .ok_or(short)?
                .copy_from_slice(m.payload());
        }
    }
    let aad = aad(s.request_kid, s.request_piv)?;
    let tag = seal(s.key, &s.nonce, aad.as_bytes(), plain)?;
    tag_buf
        .get_mut(..TAG_LEN)
        .ok_or(short)?
        .copy_from_slice(&tag);
    outer.emit(head_buf)?;
    Ok(needed)
}

impl SecurityContext {
    /// Protects a request (RFC 8613 §8.1): `plain` is the whole CoAP request
    /// as it would be sent without OSCORE; the protected request is written
    /// to `out` and its length returned with the [`RequestBinding`] needed
    /// to verify the response.
    ///
    /// Takes a Sender Sequence Number as Partial IV; the kid is the Sender
    /// ID and the kid context the ID Context, if any. The outer code is
    /// FETCH if the request has an Observe option, else POST. Errors:
    /// [`Error::NotARequest`], [`Error::PersistRequired`],
    /// [`Error::SequenceExhausted`], [`Error::UnsupportedOption`] (Proxy-Uri
    /// or an OSCORE option), [`Error::Coap`] for a malformed `plain`, more
    /// than [`MAX_OPTIONS`] options or a short `out`. A failure after the
    /// sequence number was taken (an unsupported option, a short `out`)
    /// skips that number: numbers are skipped, never reused.
    pub fn protect_request(
        &mut self,
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, RequestBinding), Error> {
        let m = Message::parse(plain)?;
        if !m.code().is_request() {
            return Err(Error::NotARequest);
        }
        let seq = self.take_sequence()?;
        let piv = PartialIv::from_sequence(seq);
        let binding = RequestBinding::new(self.sender_id, piv);
        let opt = OscoreOption {
            partial_iv: Some(piv.as_bytes()),
            kid_context: self.id_context(),
            kid: Some(self.sender_id()),
        };
        let mut opt_buf = [0u8; OPTION_MAX];
        let opt_len = opt.emit(&mut opt_buf)?;
        let outer_code = if m.has_option(OptionNumber::OBSERVE) {
            Code::FETCH
        } else {
            Code::POST
        };
        let s = Seal {
            key: &self.keys.sender_key,
            nonce: self.sender_nonce(&piv),
            request_kid: binding.kid.as_bytes(),
            request_piv: piv.as_bytes(),
            outer_code,
        };
        let len = protect(&m, &s, opt_buf.get(..opt_len).unwrap_or(&[]), out)?;
        Ok((len, binding))
    }

    /// Verifies and decrypts a request (RFC 8613 §8.2) in place in `msg`
    /// (left unspecified afterwards) and writes the plain request to `out`.
    /// Returns its length and the [`RequestBinding`] to protect the
    /// response with.
    ///
    /// The kid must be this context's Recipient ID and a kid context, if
    /// present, its ID Context ([`Error::ContextNotFound`]); the Partial IV
    /// must pass the replay window ([`Error::Replay`]), which is updated
    /// only once the request verified. See [`Error::response`] for the
    /// error response to send.
    pub fn unprotect_request(
        &mut self,
        msg: &mut [u8],
        out: &mut [u8],
    ) -> Result<(usize, RequestBinding), Error> {
        let r = receive(msg, true)?;
        self.unprotect_received_request(r, msg, out, false)
            .map(|(len, binding, _)| (len, binding))
    }

    /// With `resync` false, a context whose replay window is not
    /// synchronised refuses the request; with `resync` true it verifies it
    /// without checking or moving the window and says so (the third value
    /// false): the caller decides, from an Echo value in the request,
    /// whether it synchronises the window (Appendix B.1.2).
    fn unprotect_received_request(
        &mut self,
        r: Received,
        msg: &mut [u8],
        out: &mut [u8],
        resync: bool,
    ) -> Result<(usize, RequestBinding, bool), Error> {
        let (Some(piv), Some(kid)) = (r.partial_iv, r.kid) else {
            return Err(Error::BadOption);
        };
        if !r.selects(self) {
            return Err(Error::ContextNotFound);
        }
        let seq = piv.sequence();
        let synchronised = self.replay_synchronised;
        if !synchronised && !resync {
            return Err(Error::ReplayWindowNotSynchronised);
        }
        if synchronised {
            self.replay.check(seq)?;
        }
        let nonce = nonce(&self.keys.common_iv, kid.as_bytes(), piv.as_bytes());
        let aad = aad(kid.as_bytes(), piv.as_bytes())?;
        let plain = decrypt(
            &self.keys.recipient_key,
            &nonce,
            aad.as_bytes(),
            msg,
            r.payload_start,
        )?;
        if synchronised {
            self.replay.accept(seq);
        }
        let len = rebuild(msg, &r, plain, true, out)?;
        Ok((len, RequestBinding::new(kid, piv), synchronised))
    }

    /// Protects a response (RFC 8613 §8.3) to the request `request` (from
    /// [`SecurityContext::unprotect_request`]): `plain` is the whole CoAP
    /// response, the protected one is written to `out`.
    ///
    /// With `own_partial_iv` false the response reuses the request's nonce
    /// and carries an empty OSCORE option; with true it takes a Sender
    /// Sequence Number of its own (required for every response after the
    /// first to one request, e.g. Observe notifications). The outer code is
    /// 2.05 if the response has an Observe option, else 2.04.
    pub fn protect_response(
        &mut self,
        request: &mut RequestBinding,
        plain: &[u8],
        own_partial_iv: bool,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let m = Message::parse(plain)?;
        if !m.code().is_response() {
            return Err(Error::NotAResponse);
        }
        let mut opt_buf = [0u8; OPTION_MAX];
        // The request's nonce protects one response at most: any later
        // response to it takes its own Partial IV (§8.3), whatever the
        // caller asked.
        let (nonce, opt_len) = if own_partial_iv || !request.take_nonce() {
            let piv = PartialIv::from_sequence(self.take_sequence()?);
            let opt = OscoreOption {
                partial_iv: Some(piv.as_bytes()),
                ..OscoreOption::default()
            };
            (self.sender_nonce(&piv), opt.emit(&mut opt_buf)?)
        } else {
            let n = nonce(
                &self.keys.common_iv,
                request.kid.as_bytes(),
                request.partial_iv.as_bytes(),
            );
            (n, 0)
        };
        let outer_code = if m.has_option(OptionNumber::OBSERVE) {
            Code::CONTENT
        } else {
            Code::CHANGED
        };
        let s = Seal {
            key: &self.keys.sender_key,
            nonce,
            request_kid: request.kid.as_bytes(),
            request_piv: request.partial_iv.as_bytes(),
            outer_code,
        };
        protect(&m, &s, opt_buf.get(..opt_len).unwrap_or(&[]), out)
    }

    /// Verifies and decrypts a response (RFC 8613 §8.4) to the request
    /// `request` (from [`SecurityContext::protect_request`]) in place in
    /// `msg` and writes the plain response to `out`, returning its length.
    ///
    /// A response to another request fails with [`Error::DecryptionFailed`]
    /// (its AAD names its own request). An unprotected response (e.g. a
    /// server's 4.01 error) gives [`Error::NotProtected`]. `request`
    /// records what it took: a second response using the request's nonce,
    /// and a response whose own Partial IV is not above every one taken
    /// before (a replayed or older notification, §7.4.1), give
    /// [`Error::Replay`]. A client drops responses that fail; it does not
    /// answer them.
    pub fn unprotect_response(
        &mut self,
        request: &mut RequestBinding,
        msg: &mut [u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let r = receive(msg, false)?;
        if let Some(kid) = r.kid {
            if !self.matches(kid.as_bytes(), None) {
                return Err(Error::ContextNotFound);
            }
        }
        let nonce = match r.partial_iv {
            Some(piv) => self.recipient_nonce(&piv),
            None => nonce(
                &self.keys.common_iv,
                request.kid.as_bytes(),
                request.partial_iv.as_bytes(),
            ),
        };
        let aad = aad(request.kid.as_bytes(), request.partial_iv.as_bytes())?;
        let plain = decrypt(
            &self.keys.recipient_key,
            &nonce,
            aad.as_bytes(),
            msg,
            r.payload_start,
        )?;
        // Authentic: now whether it is new (after decryption, so forgeries
        // cannot move what the binding recorded).
        if !request.take_response(r.partial_iv.map(|p| p.sequence())) {
            return Err(Error::Replay);
        }
        rebuild(msg, &r, plain, false, out)
    }
}

/// A fixed-capacity set of security contexts a server picks from by the
/// request's kid and kid context (RFC 8613 §8.2 step 2).
///
/// ```
/// use cssf_coap::oscore::{ContextTable, Params, SecurityContext, SenderSequence};
/// let mut table = ContextTable::<4>::new();
/// let p = Params {
///     master_secret: &[7; 16],
///     master_salt: &[],
///     id_context: None,
///     sender_id: b"S",
///     recipient_id: b"C1",
/// };
/// let i = table.insert(SecurityContext::new(&p, SenderSequence::Volatile)?)?;
/// assert_eq!(table.get(i).map(|c| c.recipient_id()), Some(&b"C1"[..]));
/// # Ok::<(), cssf_coap::oscore::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ContextTable<const N: usize> {
    /// `None`: a removed context's slot (indices of the others stay).
    contexts: heapless::Vec<Option<SecurityContext>, N>,
}

impl<const N: usize> ContextTable<N> {
    /// An empty table.
    pub const fn new() -> Self {
        ContextTable {
            contexts: heapless::Vec::new(),
        }
    }

    /// Adds a context, returning its index (the slot of a removed one, if
    /// any, is taken again); [`Error::Coap`] with [`crate::Error::Busy`]
    /// when the table is full.
    pub fn insert(&mut self, ctx: SecurityContext) -> Result<usize, Error> {
        if let Some(i) = self.contexts.iter().position(Option::is_none) {
            if let Some(slot) = self.contexts.get_mut(i) {
                *slot = Some(ctx);
                return Ok(i);
            }
        }
        self.contexts
            .push(Some(ctx))
            .map_err(|_| Error::Coap(crate::Error::Busy))?;
        Ok(self.contexts.len() - 1)
    }

    /// Removes the context at `index` and returns it; the other contexts
    /// keep their indices.
    pub fn remove(&mut self, index: usize) -> Option<SecurityContext> {
        self.contexts.get_mut(index).and_then(Option::take)
    }

    /// The context at `index`.
    pub fn get(&self, index: usize) -> Option<&SecurityContext> {
        self.contexts.get(index).and_then(Option::as_ref)
    }

    /// The context at `index`, mutably (to protect the response).
    pub fn get_mut(&mut self, index: usize) -> Option<&mut SecurityContext> {
        self.contexts.get_mut(index).and_then(Option::as_mut)
    }

    /// Finds the context for a request and verifies it like
    /// [`SecurityContext::unprotect_request`]; also returns the index of the
    /// context, whose [`SecurityContext::protect_response`] protects the
    /// response.
    pub fn unprotect_request(
        &mut self,
        msg: &mut [u8],
        out: &mut [u8],
    ) -> Result<(usize, usize, RequestBinding), Error> {
        let (len, index, binding, _) = self.find_and_unprotect(msg, out, false)?;
        Ok((len, index, binding))
    }

    /// Like [`Contexts::unprotect_request`], except that a context whose
    /// replay window is not synchronised verifies the request without
    /// checking or moving its window, and the last value says whether the
    /// window was synchronised (true: checked and updated as usual). A
    /// request verified unsynchronised may be a replay: it must not be
    /// processed, only answered with an Echo challenge under a Partial IV
    /// of the server's own, unless it carries proof of freshness, after
    /// which the caller synchronises the window at its Partial IV
    /// (Appendix B.1.2, [`SecurityContext::restore_replay_window`]).
    pub(crate) fn unprotect_request_resync(
        &mut self,
        msg: &mut [u8],
        out: &mut [u8],
    ) -> Result<(usize, usize, RequestBinding, bool), Error> {
        self.find_and_unprotect(msg, out, true)
    }

    /// The context a request's kid and kid context select, and the request
    /// verified with it (`resync`: see [`Self::unprotect_request_resync`]).
    fn find_and_unprotect(
        &mut self,
        msg: &mut [u8],
        out: &mut [u8],
        resync: bool,
    ) -> Result<(usize, usize, RequestBinding, bool), Error> {
        let r = receive(msg, true)?;
        if r.kid.is_none() || r.partial_iv.is_none() {
            return Err(Error::BadOption);
        }
        let index = self
            .contexts
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| r.selects(c)))
            .ok_or(Error::ContextNotFound)?;
        let ctx = self.get_mut(index).ok_or(Error::ContextNotFound)?;
        let (len, binding, synchronised) = ctx.unprotect_received_request(r, msg, out, resync)?;
        Ok((len, index, binding, synchronised))
    }
}
