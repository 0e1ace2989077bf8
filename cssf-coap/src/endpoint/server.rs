//! The server side: routing (RFC 7252 §5.7-5.9), `/.well-known/core`
//! (RFC 6690), Echo freshness (RFC 9175 §2), Block1 bookkeeping (RFC 7959
//! §2.5) and Observe registration (RFC 7641 §4.1).

use core::hash::Hash;
use core::time::Duration;

use rand_core::{CryptoRng, RngCore};

use super::link_format::{self, Window};
use super::router::{self, Route};
use super::*;

impl<A, R, const N: usize, const D: usize, const M: usize, const U: usize>
    Endpoint<A, R, N, D, M, U>
where
    A: Clone + Eq + Hash,
    R: RngCore + CryptoRng,
{
    pub(super) fn on_request(&mut self, now: Duration, peer: A, msg: &Message<'_>) {
        let mid = msg.message_id();
        let con = match msg.ty() {
            MessageType::Con => true,
            MessageType::Non => false,
            _ => {
                debug!("request as ACK or RST (MID {}): dropped", mid);
                self.stats.malformed += 1;
                return;
            }
        };
        let token = Token::new(msg.token());
        self.note_echo(now, &peer, msg);
        let len = msg.as_bytes().len();
        if self.answer_duplicate(&peer, mid, &token, len, con) {
            return;
        }
        self.route_request(now, peer, msg);
    }

    /// RFC 9175 §2.4 item 3: a fresh Echo value shows the peer received our
    /// challenge at its address.
    pub(super) fn note_echo(&mut self, now: Duration, peer: &A, msg: &Message<'_>) {
        if msg
            .option(OptionNumber::ECHO)
            .is_some_and(|e| self.echo_fresh(now, peer, e))
        {
            self.address_verified(now, peer);
        }
    }

    /// RFC 7252 §4.5: whether message `mid` with `token` (`len` bytes) from
    /// `peer` is a duplicate, answered (CON) from the cache if so. A
    /// duplicate is the same message again; one with the same message ID
    /// and another token is a different message.
    pub(super) fn answer_duplicate(
        &mut self,
        peer: &A,
        mid: u16,
        token: &Token,
        len: usize,
        con: bool,
    ) -> bool {
        let cap = self.amplification_cap(peer, len);
        if let Some(d) = self
            .dedup
            .iter()
            .find(|d| &d.peer == peer && d.mid == mid && &d.token == token)
        {
            trace!("duplicate request (MID {}): answered from the cache", mid);
            self.stats.duplicates += 1;
            // A retransmission (as long as the request was) gets the answer
            // made for that request; a shorter "duplicate" from an
            // unverified peer only what stays under its limit.
            let cap = cap.filter(|_| len < d.req_len);
            if con {
                match &d.state {
                    DedupState::Answered(bytes) if cap.is_some_and(|c| bytes.len() > c) => {
                        debug!("duplicate request (MID {}) shorter than the cached answer allows toward an unverified address: not replayed", mid);
                        self.stats.amplification_limited += 1;
                    }
                    DedupState::Answered(bytes) if !bytes.is_empty() => {
                        let bytes = bytes.clone();
                        self.queue(peer.clone(), bytes);
                    }
                    DedupState::PendingAcked | DedupState::Acked => {
                        self.queue_empty_ack(peer.clone(), mid);
                    }
                    _ => {}
                }
            }
            return true;
        }
        false
    }

    /// Routes a request that is no duplicate (for an OSCORE request, the
    /// verified inner request).
    pub(super) fn route_request(&mut self, now: Duration, peer: A, msg: &Message<'_>) {
        let mid = msg.message_id();
        let con = msg.ty() == MessageType::Con;
        // The message ID is remembered only for requests that reach the
        // application (`dispatch`): what the endpoint answers itself
        // (4.02, 4.04, 4.05, 5.03, `/.well-known/core`, Echo challenges)
        // runs no handler, so a duplicate is simply answered again, and
        // no peer fills the cache with requests for nothing.
        if let Err(e) = msg.check_options() {
            if !con {
                // §5.4.1: a NON message with an unrecognized (or repeated,
                // §5.4.5) critical option is rejected (§4.3): silently
                // ignored, no response.
                debug!(
                    "NON request with an unrecognised critical option (MID {}): ignored",
                    mid
                );
                self.stats.malformed += 1;
                return;
            }
            let code = e.code().unwrap_or(Code::BAD_OPTION);
            self.reply_now(peer, msg, code, &Opts::default(), true);
            return;
        }
        // RFC 7959 §2.2: SZX 7 is reserved; a request carrying it is a
        // 4.00 (the accessors refuse the value, it must not read as "no
        // block").
        if msg.block1().is_err() || msg.block2().is_err() {
            self.reply_now(peer, msg, Code::BAD_REQUEST, &Opts::default(), true);
            return;
        }
        // §5.7.2: this endpoint is no forward proxy.
        if msg.has_option(OptionNumber::PROXY_URI) || msg.has_option(OptionNumber::PROXY_SCHEME) {
            let code = Code::PROXYING_NOT_SUPPORTED;
            self.reply_now(peer, msg, code, &Opts::default(), true);
            return;
        }
        match router::route(self.resources, msg.code(), msg.uri_path()) {
            Route::NotFound => self.reply_now(peer, msg, Code::NOT_FOUND, &Opts::default(), true),
            Route::MethodNotAllowed => {
                self.reply_now(peer, msg, Code::METHOD_NOT_ALLOWED, &Opts::default(), true)
            }
            // §5.10.8: `/.well-known/core` exists and has no ETag.
            Route::WellKnownCore if !preconditions_hold(msg, true, None) => {
                let code = Code::PRECONDITION_FAILED;
                self.reply_now(peer, msg, code, &Opts::default(), true)
            }
            Route::WellKnownCore => self.well_known_core(peer, msg),
            Route::Resource(i) => self.dispatch(now, peer, msg, i),
        }
    }

    pub(super) fn well_known_core(&mut self, peer: A, msg: &Message<'_>) {
        let req_b2 = msg.block2().ok().flatten();
        let top = req_b2
            .map_or(self.config.max_szx, |b| b.szx().min(self.config.max_szx))
            .min(6);
        // Toward an unverified peer, the largest block that stays under the
        // amplification limit (RFC 9175 §2.4; `reply_now` challenges if
        // none does).
        let cap = self.answer_cap(&peer, self.received_len(msg), self.under_oscore());
        let ty = if msg.ty() == MessageType::Con {
            MessageType::Ack
        } else {
            MessageType::Non
        };
        let offset = req_b2.map_or(0, |b| b.offset());
        let query = msg.uri_query().next();
        let mut buf = [0u8; 1024];
        let mut szx = top;
        loop {
            let size = 1usize << (szx + 4);
            let mut w = Window::new(buf.get_mut(..size).unwrap_or(&mut []), offset);
            link_format::write_links(self.resources, query, &mut w);
            let (total, n) = (w.total(), w.written());
            if offset > 0 && offset >= total {
                self.reply_now(peer, msg, Code::BAD_OPTION, &Opts::default(), true);
                return;
            }
            let more = offset + n < total;
            let mut o = Opts {
                content_format: Some(LINK_FORMAT),
                payload: buf.get(..n).unwrap_or(&[]),
                ..Opts::default()
            };
            if more || req_b2.is_some() {
                o.block2 = Block::at_offset(offset, more, szx).ok();
                if offset == 0 {
                    o.size2 = u32::try_from(total).ok();
                }
            }
            let fits = cap.map_or(true, |c| {
                encoded_len(ty, Code::CONTENT, msg.token(), &o) <= c
            });
            if fits || szx == 0 {
                self.reply_now(peer, msg, Code::CONTENT, &o, true);
                return;
            }
            szx -= 1;
        }
    }

    pub(super) fn dispatch(&mut self, now: Duration, peer: A, msg: &Message<'_>, i: usize) {
        let Some(res) = self.resources.get(i).copied() else {
            return;
        };
        let oscore = self.under_oscore();
        // RFC 7252 §4.5: deduplication MAY be relaxed for idempotent
        // requests. With `Config::relaxed_dedup`, a GET or FETCH without
        // Observe or Block1 (no state of ours hangs on it) takes no
        // message-ID cache entry; a duplicate of it reaches the application
        // again. Never an OSCORE request: its message ID was remembered
        // as soon as it verified, before routing, and a duplicate must meet
        // that entry's cached answer, not the replay window.
        let relaxed = self.config.relaxed_dedup
            && !oscore
            && matches!(msg.code(), Code::GET | Code::FETCH)
            && msg.option(OptionNumber::OBSERVE).is_none()
            && msg.option(OptionNumber::BLOCK1).is_none();
        if res.oscore && !oscore {
            debug!(
                "request (MID {}) to a resource that requires OSCORE, not protected: 4.01",
                msg.message_id()
            );
            self.reply_now(peer, msg, Code::UNAUTHORIZED, &Opts::default(), true);
            return;
        }
        if res.echo {
            // RFC 9175 §2.4: a value this endpoint issued to this peer less
            // than `echo_lifetime` ago (see `echo.rs`).
            let fresh = msg
                .option(OptionNumber::ECHO)
                .is_some_and(|e| self.echo_fresh(now, &peer, e));
            if !fresh {
                let echo = self.echo_value(now, &peer);
                let o = Opts {
                    echo: Some(&echo),
                    ..Opts::default()
                };
                self.reply_now(peer, msg, Code::UNAUTHORIZED, &o, true);
                return;
            }
        }
        let pending_held = self.pending.iter().filter(|p| p.peer == peer).count();
        if self.pending.is_full()
            || self.events.is_full()
            || pending_held >= self.config.peer_quota(N)
            // An OSCORE request was admitted when it verified (its room
            // checked before); a relaxed one takes no entry.
            || (!oscore && !relaxed && !self.admit_request(now, &peer))
        {
            self.busy(peer, msg);
            return;
        }
        let observe = msg.observe().ok().flatten();
        let token = Token::new(msg.token());
        let (mid, con) = (msg.message_id(), msg.ty() == MessageType::Con);
        if !oscore && !relaxed {
            // (An OSCORE request's was remembered once it verified.)
            self.remember(
                now,
                peer.clone(),
                (mid, token, msg.as_bytes().len()),
                con,
                DedupState::Answered(Vec::new()),
            );
        }
        if msg.code() == Code::GET && observe != Some(0) {
            // Deregistration (Observe 1) or a GET with the same token: only
            // under the protection the observation was made with (a plain
            // request cancels no protected observation, a protected one
            // only those of its own context).
            let context = self.context_now();
            self.observers
                .retain(|o| !(o.peer == peer && o.token == token && o.context() == context));
        }
        let block1 = msg.block1().ok().flatten();
        if let Some(b) = block1 {
            if let Err((code, size1)) = self.check_upload(now, &peer, msg, i, b) {
                if !oscore {
                    self.forget_mid(&peer, mid, &token);
                }
                let o = Opts {
                    size1,
                    ..Opts::default()
                };
                self.reply_now(peer, msg, code, &o, false);
                return;
            }
        }
        let Some(request) = Received::new(msg) else {
            if !oscore {
                self.forget_mid(&peer, mid, &token);
            }
            debug!(
                "request (MID {}) larger than the message buffer: dropped",
                mid
            );
            self.stats.dropped += 1;
            return;
        };
        let id = self.alloc_id();
        let p = PendingRequest {
            id,
            peer: peer.clone(),
            mid,
            token,
            con,
            acked: false,
            ack_at: now.saturating_add(self.config.separate_ack_delay),
            expires: now.saturating_add(self.config.exchange_lifetime()),
            resource: i,
            observe: if msg.code() == Code::GET {
                observe
            } else {
                None
            },
            block1,
            tag: Token::new(msg.option(OptionNumber::REQUEST_TAG).unwrap_or(&[])),
            block2: msg.block2().ok().flatten(),
            method: msg.code(),
            req_len: self.received_len(msg),
            #[cfg(feature = "oscore")]
            oscore: self.oscore_now.take(),
        };
        #[cfg(feature = "oscore")]
        let request = match &p.oscore {
            Some(o) => request.with_security(o.security()),
            None => request,
        };
        if self.pending.push(p).is_ok() {
            self.push_event(Event::Request {
                id: RequestId(id),
                peer,
                resource: i,
                request,
            });
        }
    }

    /// RFC 7959 §2.5 server-side Block1 bookkeeping: in order, bounded; an
    /// upload is named by peer, resource, Request-Tag and security (the
    /// OSCORE context, or plain).
    pub(super) fn check_upload(
        &mut self,
        now: Duration,
        peer: &A,
        msg: &Message<'_>,
        res: usize,
        b: Block,
    ) -> Result<(), (Code, Option<u32>)> {
        let max = self.config.max_body;
        let too_large = Err((Code::REQUEST_ENTITY_TOO_LARGE, Some(max)));
        let size1 = msg.uint_option(OptionNumber::SIZE1).ok().flatten();
        let end = b.offset().saturating_add(msg.payload().len());
        if size1.is_some_and(|s| s > max) || end > max as usize {
            return too_large;
        }
        if b.more() && msg.payload().len() != b.size() {
            return Err((Code::BAD_REQUEST, None));
        }
        let tag = Token::new(msg.option(OptionNumber::REQUEST_TAG).unwrap_or(&[]));
        let expires = now.saturating_add(self.config.exchange_lifetime());
        // Blocks protected otherwise (plain, or another context) belong to
        // another upload: a plain block never continues a protected one.
        let context = self.context_now();
        let pos = self.uploads.iter().position(|u| {
            &u.peer == peer && u.resource == res && u.tag == tag && u.context == context
        });
        if b.num() == 0 {
            if let Some(p) = pos {
                self.uploads.remove(p);
            }
            let held = self.uploads.iter().filter(|u| &u.peer == peer).count();
            if b.more() && held >= self.config.peer_quota(N) {
                debug!("Block1 upload beyond the peer's share of the upload table: 5.03");
                self.stats.busy += 1;
                return Err((Code::SERVICE_UNAVAILABLE, None));
            }
            if b.more() {
                if self.uploads.is_full() && self.is_verified(peer) {
                    // A verified peer's upload displaces one of an
                    // unverified (possibly spoofed) peer: the one whose peer
                    // holds the most, the oldest of those.
                    let victim = self.unverified_victim(self.uploads.iter().map(|u| &u.peer));
                    if let Some(i) = victim {
                        self.uploads.remove(i);
                    }
                }
                let up = Upload {
                    peer: peer.clone(),
                    resource: res,
                    tag,
                    context,
                    next_offset: end,
                    expires,
                };
                if self.uploads.push(up).is_err() {
                    debug!("Block1 upload table full: 5.03");
                    self.stats.busy += 1;
                    return Err((Code::SERVICE_UNAVAILABLE, None));
                }
            }
            return Ok(());
        }
        let Some(p) = pos else {
            return Err((Code::REQUEST_ENTITY_INCOMPLETE, None));
        };
        let Some(up) = self.uploads.get_mut(p) else {
            return Err((Code::REQUEST_ENTITY_INCOMPLETE, None));
        };
        if up.next_offset != b.offset() {
            return Err((Code::REQUEST_ENTITY_INCOMPLETE, None));
        }
        up.next_offset = end;
        up.expires = expires;
        if !b.more() {
            self.uploads.remove(p);
        }
        Ok(())
    }

    /// The index, in a table whose entries belong to `peers` (oldest
    /// first), of the entry to displace for a verified peer: the oldest of
    /// the unverified peer holding the most. `None`: every entry is a
    /// verified peer's.
    pub(super) fn unverified_victim<'p>(
        &self,
        peers: impl Iterator<Item = &'p A> + Clone,
    ) -> Option<usize>
    where
        A: 'p,
    {
        let mut best: Option<(usize, usize)> = None;
        for (i, p) in peers.clone().enumerate() {
            if self.is_verified(p) {
                continue;
            }
            let count = peers.clone().filter(|q| *q == p).count();
            if best.map_or(true, |(c, _)| count > c) {
                best = Some((count, i));
            }
        }
        best.map(|(_, i)| i)
    }

    pub(super) fn register_observer(&mut self, p: &PendingRequest<A>) -> Option<u32> {
        self.obs_seq = (self.obs_seq + 1) & 0x00ff_ffff;
        let verified = self.is_verified(&p.peer);
        let context = p.oscore_context();
        if let Some(i) = self
            .observers
            .iter()
            .position(|o| o.peer == p.peer && o.token == p.token)
        {
            let held = self.observers.get(i).and_then(|o| o.context());
            if held == context {
                // A re-registration (RFC 7641 §3.3.1), under the same
                // protection: a protected one binds the notifications to
                // its own request from now on.
                if let Some(o) = self.observers.get_mut(i) {
                    o.resource = p.resource;
                    o.req_len = p.req_len;
                    o.verified = verified;
                    #[cfg(feature = "oscore")]
                    {
                        o.oscore = p.observer_binding();
                    }
                }
                return Some(self.obs_seq);
            }
            if context.is_none() || held.is_some() {
                // A plain request never takes over a protected
                // observation, nor does a request of another context:
                // the token and the source address are in the clear, so
                // anyone holding some context could otherwise end a
                // client's observation and have its notifications sealed
                // under their own context.
                debug!("registration on the token of an observation of another protection: answered without Observe");
                return None;
            }
            // A protected registration replaces a plain observation on that
            // token (which anyone could have made, or cancelled).
            let gone = self.observers.remove(i);
            self.cons.retain(|c| c.owner != Owner::Notify(gone.key));
        }
        // A peer holds at most its share of the table; beyond it, or with
        // the table full, the answer goes without Observe (§4.1: not
        // registered, the client polls instead).
        let held = self.observers.iter().filter(|o| o.peer == p.peer).count();
        if held >= self.config.peer_quota(N) {
            debug!("observer table share of the peer used up: answered without Observe");
            self.stats.busy += 1;
            return None;
        }
        if self.observers.is_full() && verified {
            // A verified peer's registration displaces an unverified (maybe
            // spoofed) peer's observation, which ends without notice (its
            // client re-registers when Max-Age runs out, RFC 7641 §3.3.1).
            if let Some(i) = self.unverified_victim(self.observers.iter().map(|o| &o.peer)) {
                let gone = self.observers.remove(i);
                self.cons.retain(|c| c.owner != Owner::Notify(gone.key));
            }
        }
        let key = self.alloc_id();
        let ob = Observer {
            key,
            peer: p.peer.clone(),
            token: p.token,
            resource: p.resource,
            since_con: 0,
            recent: Vec::new(),
            req_len: p.req_len,
            verified,
            #[cfg(feature = "oscore")]
            oscore: p.observer_binding(),
        };
        self.observers.push(ob).ok().map(|()| self.obs_seq)
    }
}

/// RFC 7252 §5.10.8: whether the If-Match and If-None-Match options of
/// `msg` hold for a resource that `exists` with the current ETag `etag`.
/// If-Match holds when any of its values is empty (the resource exists) or
/// equals `etag`; If-None-Match when the resource does not exist.
pub(crate) fn preconditions_hold(msg: &Message<'_>, exists: bool, etag: Option<&[u8]>) -> bool {
    let mut if_match = msg.options_numbered(OptionNumber::IF_MATCH).peekable();
    let matched = if_match.peek().is_none()
        || (exists && if_match.any(|o| o.value.is_empty() || Some(o.value) == etag));
    let none_match = !msg.has_option(OptionNumber::IF_NONE_MATCH) || !exists;
    matched && none_match
}
