//! OSCORE in the endpoint (RFC 8613 §8; feature `oscore`): the server
//! side below, the client side (`request_protected`, `upload_protected`,
//! the protected repeats of an exchange's request) after it. Observations
//! and notifications over OSCORE are in the endpoint's Observe code
//! (`register_observer`, `seal_notification`).
//!
//! A request carrying the OSCORE option is looked up in the message-ID
//! cache first (RFC 7252 §4.5): a retransmission of a protected request
//! gets the protected answer cached for it and is never verified twice (the
//! replay window would refuse it, and a second answer would reuse the
//! request's nonce). Otherwise its kid and kid context select one of the
//! endpoint's security contexts, the replay window and the AEAD verify it,
//! and the inner request is routed like a plain one; every answer to it
//! (the application's through [`Endpoint::respond`], and the endpoint's
//! own: 4.04, 4.05, 5.03, `/.well-known/core`, Echo challenges) is
//! protected with the request's binding and cached.
//!
//! A context whose replay window is not synchronised (restored after a
//! reboot without a saved window, RFC 8613 Appendix B.1.2) takes no
//! request on trust: one that verifies is answered with a protected 4.01
//! carrying an Echo value (under a Partial IV of the server's own: the
//! request may be a replay whose nonce protected a response before the
//! reboot), is not routed, and leaves the window as it was; a request
//! that verifies and carries an Echo value this endpoint issued to that
//! peer within `Config::echo_lifetime` sets the window's lower limit at
//! its Partial IV and is processed. A request that fails
//! verification is answered unprotected with the code RFC 8613 §8.2 gives
//! (4.02, 4.01, 4.00: [`crate::oscore::Error::response`]), Max-Age 0, and
//! not remembered: a retransmission fails the same way.

use core::hash::Hash;
use core::time::Duration;

use heapless::Vec;
use rand_core::{CryptoRng, RngCore};

use super::{DedupState, Endpoint, Opts, RequestSecurity, Token};
use crate::oscore::{RequestBinding, SecurityContext};
use crate::wire::{Code, Message, MessageType, OptionNumber};
use crate::Error;

/// An OSCORE request being answered: the context it was verified with,
/// its binding (which protects the response, once with the request's
/// nonce) and the length of the datagram it came in (what the
/// amplification limit of its answers counts, RFC 9175 §2.4; on the client
/// side, the protected request sent).
#[derive(Debug)]
pub(super) struct OscoreRequest {
    pub(super) context: usize,
    pub(super) binding: RequestBinding,
    pub(super) datagram_len: usize,
}

impl OscoreRequest {
    pub(super) fn security(&self) -> RequestSecurity {
        RequestSecurity::Oscore {
            context: self.context,
            kid: self.binding.kid,
        }
    }
}

impl<A, R, const N: usize, const D: usize, const M: usize, const U: usize>
    Endpoint<A, R, N, D, M, U>
where
    A: Clone + Eq + Hash,
    R: RngCore + CryptoRng,
{
    /// Adds an OSCORE security context (feature `oscore`) the server side
    /// verifies requests with, selected by the request's kid (the
    /// context's Recipient ID) and kid context (its ID Context). Returns its
    /// index, which [`RequestSecurity::Oscore`] names for requests verified
    /// with it. The table holds `N` contexts (the endpoint's small-table
    /// capacity); [`Error::Busy`] when it is full.
    ///
    /// A plain answer is protected with its request's nonce, but
    /// notifications (Observe), the protected 4.01 Echo of the replay
    /// window's resynchronisation and any second answer to one request
    /// take Sender Sequence Numbers of the server's own: a server context
    /// used for them must be [`SenderSequence::Persisted`](crate::oscore::SenderSequence::Persisted)
    /// across reboots (a `Volatile` one restored after a reboot would
    /// reuse nonces), and its replay window is the other state to keep
    /// (see [`SecurityContext::restore_replay_window`]).
    pub fn add_oscore_context(&mut self, ctx: SecurityContext) -> Result<usize, Error> {
        self.oscore.insert(ctx).map_err(|_| Error::Busy)
    }

    /// The OSCORE context at `index` (feature `oscore`).
    pub fn oscore_context(&self, index: usize) -> Option<&SecurityContext> {
        self.oscore.get(index)
    }

    /// The OSCORE context at `index`, mutably (feature `oscore`): e.g. to
    /// persist its state ([`SecurityContext::persist_due`],
    /// [`SecurityContext::replay_window`]).
    pub fn oscore_context_mut(&mut self, index: usize) -> Option<&mut SecurityContext> {
        self.oscore.get_mut(index)
    }

    /// Removes the OSCORE context at `index` (feature `oscore`), e.g. when
    /// its keys are revoked or replaced, and returns it; the other
    /// contexts keep their indices, and a later
    /// [`Endpoint::add_oscore_context`] may take this one. Everything
    /// made under it ends with it: its observations (no notification is
    /// sent under it again), the requests verified with it that are not
    /// answered yet (a later [`Endpoint::respond`] gets
    /// [`Error::UnknownId`]), their undelivered events, its Block1
    /// uploads, and the client exchanges protected with it, each with
    /// [`Event::Aborted`](super::Event::Aborted).
    pub fn remove_oscore_context(&mut self, index: usize) -> Option<SecurityContext> {
        let ctx = self.oscore.remove(index)?;
        let gone: Vec<u32, N> = self
            .observers
            .iter()
            .filter(|o| o.context() == Some(index))
            .map(|o| o.key)
            .collect();
        for key in gone {
            self.observers.retain(|o| o.key != key);
            self.cons.retain(|c| c.owner != super::Owner::Notify(key));
        }
        let requests: Vec<u32, N> = self
            .pending
            .iter()
            .filter(|p| p.oscore_context() == Some(index))
            .map(|p| p.id)
            .collect();
        self.pending.retain(|p| p.oscore_context() != Some(index));
        self.events.retain(|e| match e {
            super::Event::Request { id, .. } => !requests.contains(&id.0),
            _ => true,
        });
        self.uploads.retain(|u| u.context != Some(index));
        let ended: Vec<u32, N> = self
            .exchanges
            .iter()
            .filter(|e| e.oscore.as_ref().is_some_and(|o| o.context == index))
            .map(|e| (e.id, e.fetch_for))
            .filter(|(_, fetch)| fetch.is_none())
            .map(|(id, _)| id)
            .collect();
        self.exchanges.retain(|e| {
            let gone = e.oscore.as_ref().is_some_and(|o| o.context == index);
            if gone {
                self.cons
                    .retain(|c| c.owner != super::Owner::Exchange(e.id));
            }
            !gone
        });
        for id in ended {
            if self.upload.as_ref().is_some_and(|u| u.ex == id) {
                self.upload = None;
            }
            self.events.retain(|e| match e {
                super::Event::Response { id: x, .. } | super::Event::Notification { id: x, .. } => {
                    x.0 != id
                }
                _ => true,
            });
            self.push_event(super::Event::Aborted {
                id: super::ExchangeId(id),
            });
        }
        Some(ctx)
    }

    /// Sends `req` to `peer` OSCORE-protected with the context at `context`
    /// (feature `oscore`), like [`Endpoint::request`]: the response
    /// arrives as [`Event::Response`](super::Event::Response) once it
    /// verified against this request (its
    /// [`Received::security`](super::Received::security) is
    /// [`RequestSecurity::Oscore`], `kid` being this request's, i.e. our
    /// Sender ID). A response that does not verify (forged, tampered, a
    /// replay, or the server's unprotected error answer) is dropped and
    /// counted in `Stats::oscore_refused`; the request stays outstanding
    /// until it times out. CON retransmissions repeat the same protected
    /// bytes.
    ///
    /// A protected 4.01 carrying an Echo option (a server whose replay
    /// window is not synchronised, RFC 8613 Appendix B.1.2, or that wants
    /// a fresh request, RFC 9175 §2.3) is not delivered: the request is
    /// repeated once with that Echo value, protected anew (a new Partial
    /// IV and message ID, the same token), and the response to the repeat
    /// is the exchange's response; a second 4.01 is delivered.
    ///
    /// With `req.observe` (RFC 8613 §4.1.3.5) the notifications arrive as
    /// [`Event::Notification`](super::Event::Notification)s, each verified
    /// against the registration request and taken only if its Partial IV
    /// is above every one taken before for it (§7.4.1: a replayed, older or
    /// duplicated notification is dropped and counted in
    /// `Stats::oscore_refused`, a confirmable one acknowledged). A
    /// response in Block2 blocks (RFC 7959 §2.4, inner Block2,
    /// §4.1.3.4.1) is fetched block by block like a plain one, each block
    /// request protected on its own (a new Partial IV), each block
    /// delivered as it verifies; so is the rest of a notification's body.
    /// [`Endpoint::cancel_observe`] and [`Endpoint::reregister`] protect
    /// their request anew too. Each such repeat takes a Sender Sequence
    /// Number: with a persisted sequence
    /// ([`SecurityContext::persist_due`]), persist far enough ahead for a
    /// whole transfer; a next block that cannot be protected ends the
    /// exchange with [`Event::Timeout`](super::Event::Timeout). Errors:
    /// those of
    /// [`SecurityContext::protect_request`], and
    /// [`crate::oscore::Error::Coap`] with [`Error::UnknownId`] for no such
    /// context or [`Error::Busy`] when a table is full.
    pub fn request_protected(
        &mut self,
        now: Duration,
        peer: A,
        req: &super::Request<'_>,
        context: usize,
    ) -> Result<super::ExchangeId, crate::oscore::Error> {
        self.maintain(now);
        if self.oscore.get(context).is_none() {
            return Err(Error::UnknownId.into());
        }
        if self.exchanges.is_full()
            || (req.confirmable && self.cons.is_full())
            || (!req.confirmable && self.txq.is_full())
        {
            debug!("protected request refused: exchange or message table full");
            self.stats.busy += 1;
            return Err(Error::Busy.into());
        }
        let token = self.fresh_token(&peer);
        let mid = self.alloc_mid(&peer);
        let plain: Vec<u8, M> = self.request_bytes(mid, &token, req)?;
        let ctx = self
            .oscore
            .get_mut(context)
            .ok_or(crate::oscore::Error::Coap(Error::UnknownId))?;
        let mut wire: Vec<u8, M> = Vec::new();
        wire.resize(M, 0)
            .map_err(|_| Error::BufferTooSmall { needed: M })?;
        let (n, binding) = ctx.protect_request(&plain, &mut wire)?;
        wire.truncate(n);
        let req_oscore = OscoreRequest {
            context,
            binding,
            datagram_len: n,
        };
        let id = self.open_exchange(now, peer, token, mid, wire, req, Some(req_oscore))?;
        // The exchange keeps the plain request (retransmissions repeat the
        // protected bytes held with the message): an Echo retry protects
        // it again under a new Partial IV.
        if let Some(ex) = self.exchanges.iter_mut().find(|e| e.id == id.0) {
            ex.template = plain;
        }
        Ok(id)
    }

    /// [`Endpoint::upload`] OSCORE-protected with the context at
    /// `context` (feature `oscore`): a body larger than one block goes in
    /// inner Block1 blocks (RFC 8613 §4.1.3.4.1, RFC 7959 §2.5), each
    /// block its own protected request (a new Partial IV, a fresh token),
    /// each answer verified against its block's request; the final
    /// response arrives as one [`Event::Response`](super::Event::Response).
    /// A body that fits one block is sent like
    /// [`Endpoint::request_protected`]. Errors: those of both.
    pub fn upload_protected(
        &mut self,
        now: Duration,
        peer: A,
        req: &super::Request<'_>,
        context: usize,
    ) -> Result<super::ExchangeId, crate::oscore::Error> {
        self.upload_with(now, peer, req, |ep, now, peer, r| {
            ep.request_protected(now, peer, r, context)
        })
    }

    /// Protects the plain request `plain` with the context at `context`
    /// (a new Partial IV): the datagram to send and what verifies its
    /// responses.
    pub(super) fn protect_plain(
        &mut self,
        context: usize,
        plain: &[u8],
    ) -> Result<(Vec<u8, M>, OscoreRequest), Error> {
        let ctx = self.oscore.get_mut(context).ok_or(Error::UnknownId)?;
        let mut wire: Vec<u8, M> = Vec::new();
        wire.resize(M, 0)
            .map_err(|_| Error::BufferTooSmall { needed: M })?;
        let (n, binding) = ctx.protect_request(plain, &mut wire).map_err(|e| match e {
            crate::oscore::Error::Coap(e) => e,
            _ => Error::Busy,
        })?;
        wire.truncate(n);
        Ok((
            wire,
            OscoreRequest {
                context,
                binding,
                datagram_len: n,
            },
        ))
    }

    /// Repeats a protected exchange's request (the plain template) after
    /// `edit` (RFC 9175 §2.3 Echo retry, the next Block2 block, an Observe
    /// edit), protected anew (a new Partial IV, a new message ID, the same
    /// token); the exchange now expects the responses to this request.
    pub(super) fn resend_protected(
        &mut self,
        now: Duration,
        ex_id: u32,
        edit: super::Edit,
    ) -> Result<(), crate::oscore::Error> {
        let Some(ex) = self.exchanges.iter().find(|e| e.id == ex_id) else {
            return Err(Error::UnknownId.into());
        };
        let Some(context) = ex.oscore.as_ref().map(|o| o.context) else {
            return Err(Error::UnknownId.into());
        };
        let (peer, con) = (ex.peer.clone(), ex.con);
        if (con && self.cons.is_full()) || (!con && self.txq.is_full()) {
            return Err(Error::Busy.into());
        }
        let template = ex.template.clone();
        let mid = self.alloc_mid(&peer);
        let msg = Message::parse(&template)?;
        let mut b = crate::wire::MessageBuilder::<'_, { super::OPTS }>::from_message(&msg)?;
        b.set_message_id(mid);
        edit.apply(&mut b)?;
        let plain: Vec<u8, M> = super::emit_vec(&b)?;
        let ctx = self
            .oscore
            .get_mut(context)
            .ok_or(crate::oscore::Error::Coap(Error::UnknownId))?;
        let mut wire: Vec<u8, M> = Vec::new();
        wire.resize(M, 0)
            .map_err(|_| Error::BufferTooSmall { needed: M })?;
        let (n, binding) = ctx.protect_request(&plain, &mut wire)?;
        wire.truncate(n);
        self.cons
            .retain(|c| c.owner != super::Owner::Exchange(ex_id));
        self.send_message(peer, mid, wire, con, super::Owner::Exchange(ex_id))?;
        let deadline = now.saturating_add(self.config.response_timeout);
        if let Some(ex) = self.exchanges.iter_mut().find(|e| e.id == ex_id) {
            ex.template = plain;
            ex.deadline = (!con).then_some(deadline);
            ex.oscore = Some(OscoreRequest {
                context,
                binding,
                datagram_len: n,
            });
        }
        Ok(())
    }

    /// Whether `msg` (a response) matches an exchange sent protected.
    pub(super) fn protected_exchange(&self, peer: &A, msg: &Message<'_>) -> bool {
        let token = Token::new(msg.token());
        self.exchanges
            .iter()
            .any(|e| &e.peer == peer && e.token == token && e.oscore.is_some())
    }

    /// A response to a protected request arrived: duplicates and late
    /// ACKs are handled as for any response (without verification, which
    /// the request's binding would refuse); anything else is verified and
    /// its inner response processed, or dropped.
    pub(super) fn on_oscore_response(&mut self, now: Duration, peer: A, datagram: &mut [u8]) {
        let Ok(outer) = Message::parse(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        let (ty, mid) = (outer.ty(), outer.message_id());
        let token = Token::new(outer.token());
        let non_ack = matches!(ty, MessageType::Con | MessageType::Non);
        let duplicate = non_ack
            && self
                .dedup
                .iter()
                .any(|d| d.peer == peer && d.mid == mid && d.token == token);
        let Some(pos) = self
            .exchanges
            .iter()
            .position(|e| e.peer == peer && e.token == token)
        else {
            return;
        };
        let ex_id = self.exchanges.get(pos).map_or(0, |e| e.id);
        let late_ack = ty == MessageType::Ack
            && !self.cons.iter().any(|c| {
                c.peer == peer && c.mid == mid && c.owner == super::Owner::Exchange(ex_id)
            });
        if duplicate || late_ack {
            self.on_response(now, peer, &outer);
            return;
        }
        // Room for the response before verifying it spends the request's
        // nonce: dropped now, its repeat (the server's cached answer) still
        // verifies; dropped after, the repeat would be a replay.
        if !self.response_room(&peer, non_ack) {
            debug!(
                "response (MID {}) to a protected request dropped: a table or queue is full",
                mid
            );
            self.stats.dropped += 1;
            return;
        }
        let mut inner = [0u8; M];
        let verified = {
            let Some(ex) = self.exchanges.get_mut(pos) else {
                return;
            };
            let Some(req) = ex.oscore.as_mut() else {
                return;
            };
            match self.oscore.get_mut(req.context) {
                Some(ctx) => ctx.unprotect_response(&mut req.binding, datagram, &mut inner),
                None => Err(crate::oscore::Error::ContextNotFound),
            }
        };
        let n = match verified {
            Ok(n) => n,
            Err(crate::oscore::Error::Replay) => {
                // Authentic but not new: a notification older than one
                // taken (or a replay). Not delivered; a confirmable one is
                // acknowledged so the server stops repeating it (RFC 8613
                // §7.4.1).
                debug!(
                    "response (MID {}) to a protected request is a replay or older than one taken: dropped",
                    mid
                );
                self.stats.oscore_refused += 1;
                if ty == MessageType::Con {
                    self.queue_empty_ack(peer, mid);
                }
                return;
            }
            Err(_) => {
                debug!(
                    "response (MID {}) to a protected request does not verify: dropped",
                    mid
                );
                self.stats.oscore_refused += 1;
                return;
            }
        };
        let Some(Ok(msg)) = inner.get(..n).map(Message::parse) else {
            self.stats.malformed += 1;
            return;
        };
        self.on_response(now, peer, &msg);
    }

    /// A request with the OSCORE option arrived (already parsed once).
    pub(super) fn on_oscore_request(&mut self, now: Duration, peer: A, datagram: &mut [u8]) {
        let Ok(outer) = Message::parse(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        let mid = outer.message_id();
        let con = match outer.ty() {
            MessageType::Con => true,
            MessageType::Non => false,
            _ => {
                debug!("request as ACK or RST (MID {}): dropped", mid);
                self.stats.malformed += 1;
                return;
            }
        };
        let token = Token::new(outer.token());
        let len = outer.as_bytes().len();
        // A retransmission: the cached (protected) answer, no second
        // verification.
        if self.answer_duplicate(&peer, mid, &token, len, con) {
            return;
        }
        // Room for its message ID before its Partial IV is spent: once the
        // replay window took it, only the cache can answer a duplicate.
        // Only checked here; the entry that makes room goes once the
        // request verified (nothing in between touches the cache), so a
        // sender without a key evicts nobody's cached answer.
        let Some(room) = self.admission(now, &peer) else {
            self.busy(peer, &outer);
            return;
        };
        let mut inner = [0u8; M];
        match self.oscore.unprotect_request_resync(datagram, &mut inner) {
            Err(e) => {
                debug!(
                    "OSCORE request (MID {}) failed verification: answered {} unprotected (0: dropped)",
                    mid,
                    e.code().map_or(0, |c| c.0)
                );
                self.stats.oscore_refused += 1;
                let nmid = if con { 0 } else { self.alloc_mid(&peer) };
                let mut out = [0u8; 64];
                let n = match e.emit_response(datagram, nmid, &mut out) {
                    Ok(Some(n)) => n,
                    _ => return,
                };
                if self.amplification_cap(&peer, len).is_some_and(|c| n > c) {
                    self.stats.amplification_limited += 1;
                    return;
                }
                if let Some(bytes) = out.get(..n).and_then(|b| Vec::from_slice(b).ok()) {
                    self.queue(peer, bytes);
                }
            }
            Ok((n, context, mut binding, synchronised)) => {
                self.make_room(room);
                self.remember(
                    now,
                    peer.clone(),
                    (mid, token, len),
                    con,
                    DedupState::Answered(Vec::new()),
                );
                let Some(Ok(msg)) = inner.get(..n).map(Message::parse) else {
                    self.stats.malformed += 1;
                    return;
                };
                if !synchronised {
                    // RFC 8613 Appendix B.1.2: the window does not know
                    // what was taken before the reboot, so this request
                    // may be a replay. Only an Echo value issued to this
                    // peer and still fresh proves it is not; its Partial
                    // IV then becomes the window's lower limit.
                    let fresh = msg
                        .option(OptionNumber::ECHO)
                        .is_some_and(|e| self.echo_fresh(now, &peer, e));
                    if fresh {
                        if let Some(ctx) = self.oscore.get_mut(context) {
                            ctx.restore_replay_window(binding.partial_iv.sequence());
                        }
                        debug!(
                            "OSCORE request (MID {}) with a fresh Echo value: replay window synchronised",
                            mid
                        );
                    } else {
                        debug!(
                            "OSCORE request (MID {}) on a context whose replay window is not synchronised: 4.01 Echo",
                            mid
                        );
                        self.stats.oscore_refused += 1;
                        // The request's nonce may have protected a response
                        // before the reboot: the challenge takes a Partial
                        // IV of the server's own.
                        binding.take_nonce();
                        self.oscore_now = Some(OscoreRequest {
                            context,
                            binding,
                            datagram_len: len,
                        });
                        let echo = self.echo_value(now, &peer);
                        let o = Opts {
                            echo: Some(&echo),
                            ..Opts::default()
                        };
                        self.reply_now(peer, &msg, Code::UNAUTHORIZED, &o, true);
                        self.oscore_now = None;
                        return;
                    }
                }
                self.oscore_now = Some(OscoreRequest {
                    context,
                    binding,
                    datagram_len: len,
                });
                self.note_echo(now, &peer, &msg);
                self.route_request(now, peer, &msg);
                self.oscore_now = None;
            }
        }
    }

    /// Protects `plain`, an answer to the OSCORE request `req` (the
    /// request's nonce the first time, a Partial IV of its own after).
    /// `None`: it could not be (a failure of our own), and was counted.
    pub(super) fn seal(&mut self, req: &mut OscoreRequest, plain: &[u8]) -> Option<Vec<u8, M>> {
        let Some(ctx) = self.oscore.get_mut(req.context) else {
            self.stats.dropped += 1;
            return None;
        };
        let mut out: Vec<u8, M> = Vec::new();
        if out.resize(M, 0).is_err() {
            self.stats.dropped += 1;
            return None;
        }
        match ctx.protect_response(&mut req.binding, plain, false, &mut out) {
            Ok(n) => {
                out.truncate(n);
                Some(out)
            }
            Err(_) => {
                debug!("answer to an OSCORE request could not be protected: dropped");
                self.stats.dropped += 1;
                None
            }
        }
    }

    /// Protects an answer built while the OSCORE request being routed is
    /// current (`reply_now`); plain bytes when none is.
    pub(super) fn seal_current(&mut self, bytes: Vec<u8, M>) -> Option<Vec<u8, M>> {
        match self.oscore_now.take() {
            Some(mut req) => {
                let sealed = self.seal(&mut req, &bytes);
                self.oscore_now = Some(req);
                sealed
            }
            None => Some(bytes),
        }
    }
}
