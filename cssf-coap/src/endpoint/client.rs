//! The client side: matching responses to exchanges (RFC 7252 §5.3.2),
//! the Echo retry (RFC 9175 §2.4), Observe freshness (RFC 7641 §3.4) and
//! following Block2 (RFC 7959 §2.4).

use core::hash::Hash;
use core::time::Duration;

use heapless::Vec;
use rand_core::{CryptoRng, RngCore};

use super::*;

impl<A, R, const N: usize, const D: usize, const M: usize, const U: usize>
    Endpoint<A, R, N, D, M, U>
where
    A: Clone + Eq + Hash,
    R: RngCore + CryptoRng,
{
    /// Whether a response from `peer` (a CON or NON one if `non_ack`) can
    /// be taken: room for its event, its Empty ACK, and its message-ID
    /// cache entry within the peer's quota. Responses need cache entries
    /// only to re-ACK duplicates (and notification duplicates also fail the
    /// §3.4 freshness check), so the oldest such entry makes room rather
    /// than losing the response: the peer's own at its quota, anyone's in a
    /// full cache. A protected response is checked so before it is
    /// verified, which spends its request's nonce: dropped for want of
    /// room, its repeat still verifies.
    pub(super) fn response_room(&mut self, peer: &A, non_ack: bool) -> bool {
        if non_ack {
            let held = self.dedup.iter().filter(|d| &d.peer == peer).count();
            if held >= self.config.peer_quota(D) {
                if let Some(pos) = self
                    .dedup
                    .iter()
                    .position(|d| &d.peer == peer && matches!(d.state, DedupState::Acked))
                {
                    self.dedup.remove(pos);
                }
            }
            if self.dedup.is_full() {
                if let Some(pos) = self
                    .dedup
                    .iter()
                    .position(|d| matches!(d.state, DedupState::Acked))
                {
                    self.dedup.remove(pos);
                }
            }
        }
        let at_quota = non_ack
            && self.dedup.iter().filter(|d| &d.peer == peer).count() >= self.config.peer_quota(D);
        !(self.events.is_full()
            || (non_ack && self.dedup.is_full())
            || at_quota
            || self.txq.is_full())
    }

    pub(super) fn on_response(&mut self, now: Duration, peer: A, msg: &Message<'_>) {
        let ty = msg.ty();
        let mid = msg.message_id();
        let non_ack = matches!(ty, MessageType::Con | MessageType::Non);
        let token = Token::new(msg.token());
        if non_ack {
            if let Some(d) = self
                .dedup
                .iter()
                .find(|d| d.peer == peer && d.mid == mid && d.token == token)
            {
                trace!("duplicate response (MID {}): acknowledged again", mid);
                self.stats.duplicates += 1;
                if ty == MessageType::Con && matches!(d.state, DedupState::Acked) {
                    self.queue_empty_ack(peer, mid);
                }
                return;
            }
        }
        let Some(pos) = self
            .exchanges
            .iter()
            .position(|e| e.peer == peer && e.token == token)
        else {
            debug!("response matching no request (MID {}): rejected", mid);
            self.stats.unmatched += 1;
            if non_ack {
                // RFC 7641 §3.6: reject what we no longer want.
                self.queue_rst(peer, mid);
            }
            return;
        };
        let Some(ex_id) = self.exchanges.get(pos).map(|e| e.id) else {
            return;
        };
        if ty == MessageType::Ack
            && !self
                .cons
                .iter()
                .any(|c| c.peer == peer && c.mid == mid && c.owner == Owner::Exchange(ex_id))
        {
            // A duplicate or late piggybacked response.
            trace!(
                "duplicate or late piggybacked response (MID {}): ignored",
                mid
            );
            self.stats.duplicates += 1;
            return;
        }
        if msg.check_options().is_err() {
            debug!(
                "response with an unrecognised critical option (MID {}): rejected",
                mid
            );
            self.stats.malformed += 1;
            if ty == MessageType::Con {
                self.queue_rst(peer, mid);
            }
            return;
        }
        // Room for what this produces, else drop it and let the peer repeat.
        if !self.response_room(&peer, non_ack) {
            debug!("response (MID {}) dropped: a table or queue is full", mid);
            self.stats.dropped += 1;
            return;
        }
        if non_ack {
            self.remember(
                now,
                peer.clone(),
                (mid, token, msg.as_bytes().len()),
                ty == MessageType::Con,
                DedupState::Acked,
            );
        }
        if ty == MessageType::Con {
            self.queue_empty_ack(peer.clone(), mid);
        }
        // Any response ends the request's retransmission.
        self.cons.retain(|c| c.owner != Owner::Exchange(ex_id));
        let code = msg.code();
        let Some(ex) = self.exchanges.get_mut(pos) else {
            return;
        };
        // RFC 9175 §2.3, §2.4: retry once with the server's Echo value (a
        // protected request is protected anew, under a new Partial IV; its
        // 4.01 got here only if it verified).
        if code == Code::UNAUTHORIZED && !ex.echo_retried {
            if let Some(echo) = msg.option(OptionNumber::ECHO) {
                ex.echo_retried = true;
                let mut val = [0u8; 40];
                let n = echo.len().min(40);
                if let (Some(d), Some(s)) = (val.get_mut(..n), echo.get(..n)) {
                    d.copy_from_slice(s);
                }
                let retried = self.resend_from_template(now, ex_id, Edit::Echo(val, n));
                if retried.is_err() {
                    // Could not retry (table full): end the exchange visibly.
                    debug!("Echo retry could not be sent (table full): exchange ended");
                    self.stats.dropped += 1;
                    self.forget(ExchangeId(ex_id));
                    self.push_event(Event::Timeout {
                        id: ExchangeId(ex_id),
                    });
                }
                return;
            }
        }
        if code.is_success() {
            // A later challenge (the server's verification of our address
            // ran out mid-transfer, say) is answered again.
            ex.echo_retried = false;
        }
        if self.upload.as_ref().is_some_and(|u| u.ex == ex_id) && self.upload_step(now, ex_id, msg)
        {
            return;
        }
        let Some(ex) = self.exchanges.get_mut(pos) else {
            return;
        };
        let observe = msg.observe().ok().flatten();
        let Some(received) = Received::new(msg) else {
            debug!(
                "response (MID {}) larger than the message buffer: dropped",
                mid
            );
            self.stats.dropped += 1;
            return;
        };
        #[cfg(feature = "oscore")]
        let received = match &ex.oscore {
            Some(o) => received.with_security(o.security()),
            None => received,
        };
        if ex.observing && code.is_success() {
            if let Some(v2) = observe {
                // A protected notification verified only if its Partial IV
                // is above every one taken for this registration (RFC 8613
                // §7.4.1, §4.1.3.5.2): that is its order, and the Observe
                // value (which the server need not number) is not used.
                let fresh = ex.is_oscore()
                    || ex
                        .last_obs
                        .map_or(true, |(v1, t1)| notification_is_fresh(v1, t1, v2, now));
                if !fresh {
                    debug!("stale or reordered notification (RFC 7641 §3.4): dropped");
                    self.stats.stale_notifications += 1;
                    return;
                }
                ex.last_obs = Some((v2, now));
                ex.deadline = None;
                // A newer representation replaces a body still being fetched.
                self.drop_fetch(ex_id);
                let block2 = msg.block2().ok().flatten().filter(|b| b.more());
                self.push_event(Event::Notification {
                    id: ExchangeId(ex_id),
                    peer,
                    last: block2.is_none(),
                    notification: received,
                });
                if let Some(b) = block2 {
                    let etag = msg.option(OptionNumber::ETAG).map(Token::new);
                    if self.start_fetch(now, ex_id, b, etag).is_err() {
                        debug!("Block2 fetch of a notification could not start: dropped");
                        self.stats.dropped += 1;
                    }
                }
                return;
            }
        }
        let fetch_for = ex.fetch_for;
        if let Some((parent, etag)) = fetch_for {
            // A block of a notification's body (RFC 7959 §2.6).
            let same_rep = msg.option(OptionNumber::ETAG).map(Token::new) == etag;
            let parent_alive = self.exchanges.iter().any(|e| e.id == parent);
            if !code.is_success() || !same_rep || !parent_alive {
                self.exchanges.remove(pos);
                debug!("Block2 fetch block of another representation or an error: fetch dropped");
                self.stats.dropped += 1;
                return;
            }
        }
        let ex_event = fetch_for.map_or(ex_id, |(parent, _)| parent);
        let block2 = msg.block2().ok().flatten();
        let Some(ex) = self.exchanges.get(pos) else {
            return;
        };
        if let Some(b) = block2.filter(|b| b.more() && code.is_success() && !ex.observing) {
            let next = Block::new(b.num() + 1, false, b.szx());
            if fetch_for.is_some() {
                self.push_event(Event::Notification {
                    id: ExchangeId(ex_event),
                    peer,
                    last: false,
                    notification: received,
                });
            } else {
                self.push_event(Event::Response {
                    id: ExchangeId(ex_id),
                    peer,
                    last: false,
                    response: received,
                });
            }
            let res =
                next.and_then(|next| self.resend_from_template(now, ex_id, Edit::NextBlock2(next)));
            if res.is_err() {
                self.exchanges.retain(|e| e.id != ex_id);
                self.cons.retain(|c| c.owner != Owner::Exchange(ex_id));
                if fetch_for.is_some() {
                    debug!("next Block2 block could not be requested: fetch dropped");
                    self.stats.dropped += 1;
                } else {
                    self.push_event(Event::Timeout {
                        id: ExchangeId(ex_id),
                    });
                }
            }
            return;
        }
        self.exchanges.remove(pos);
        if fetch_for.is_some() {
            self.push_event(Event::Notification {
                id: ExchangeId(ex_event),
                peer,
                last: true,
                notification: received,
            });
        } else {
            self.push_event(Event::Response {
                id: ExchangeId(ex_id),
                peer,
                last: true,
                response: received,
            });
        }
    }

    /// Drives the automatic upload on a response to its exchange: `true`
    /// when the next block went out (the response is consumed), `false` when
    /// the response is the final one (the upload is over).
    pub(super) fn upload_step(&mut self, now: Duration, ex_id: u32, msg: &Message<'_>) -> bool {
        let code = msg.code();
        let b1 = msg.block1().ok().flatten();
        let Some(up) = self.upload.as_mut() else {
            return false;
        };
        let proceed = match (code, b1) {
            (Code::CONTINUE, Some(b1)) => {
                let end = up.offset.saturating_add(up.sent);
                if end < up.body.len() {
                    // RFC 7959 §2.5: the server acknowledged the block and
                    // may ask for smaller ones from here on.
                    up.szx = up.szx.min(b1.szx());
                    up.offset = end;
                    true
                } else {
                    false
                }
            }
            // §2.9.3: 4.13 with Block1 names the block size the server
            // takes: start over with it (only ever smaller, so this ends).
            (Code::REQUEST_ENTITY_TOO_LARGE, Some(b1)) if b1.szx() < up.szx => {
                up.szx = b1.szx();
                up.offset = 0;
                true
            }
            _ => false,
        };
        if !proceed {
            self.upload = None;
            return false;
        }
        if self.send_upload_block(now, ex_id).is_err() {
            // Could not send (table full, message too large): end visibly.
            debug!("next Block1 block could not be sent: upload ended");
            self.stats.dropped += 1;
            self.upload = None;
            self.forget(ExchangeId(ex_id));
            self.push_event(Event::Timeout {
                id: ExchangeId(ex_id),
            });
        }
        true
    }

    /// Sends the upload's block at its current offset and size, from the
    /// exchange's template with a new message ID and a fresh token (a late
    /// response to an earlier block then matches nothing).
    pub(super) fn send_upload_block(&mut self, now: Duration, ex_id: u32) -> Result<(), Error> {
        let Some(ex) = self.exchanges.iter().find(|e| e.id == ex_id) else {
            return Err(Error::UnknownId);
        };
        let (peer, con) = (ex.peer.clone(), ex.con);
        #[cfg(feature = "oscore")]
        let context = ex.oscore.as_ref().map(|o| o.context);
        if (con && self.cons.is_full()) || (!con && self.txq.is_full()) {
            return Err(Error::Busy);
        }
        let template = ex.template.clone();
        let token = self.fresh_token(&peer);
        let mid = self.alloc_mid(&peer);
        let up = self.upload.as_mut().ok_or(Error::UnknownId)?;
        let size = 16usize << up.szx;
        let end = up.offset.saturating_add(size).min(up.body.len());
        up.sent = end.saturating_sub(up.offset);
        let block = Block::at_offset(up.offset, end < up.body.len(), up.szx)?;
        let total = u32::try_from(up.body.len()).ok();
        let first = up.offset == 0;
        let up = self.upload.as_ref().ok_or(Error::UnknownId)?;
        let payload = up.body.get(block.offset()..end).unwrap_or(&[]);
        let msg = Message::parse(&template)?;
        let mut b = MessageBuilder::<'_, OPTS>::from_message(&msg)?;
        b.set_message_id(mid);
        b.token(token.as_slice())?;
        b.remove_option(OptionNumber::BLOCK1);
        b.remove_option(OptionNumber::SIZE1);
        b.block1(block)?;
        if first {
            if let Some(t) = total {
                b.add_uint(OptionNumber::SIZE1, t)?;
            }
        }
        b.payload(payload);
        let bytes: Vec<u8, M> = emit_vec(&b)?;
        // A protected upload's blocks are protected requests of the same
        // context, each its own (RFC 8613 §4.1.3.4.1, inner Block1).
        #[cfg(feature = "oscore")]
        let (wire, oscore) = match context {
            Some(context) => {
                let (wire, req) = self.protect_plain(context, &bytes)?;
                (wire, Some(req))
            }
            None => (bytes.clone(), None),
        };
        #[cfg(not(feature = "oscore"))]
        let wire = bytes.clone();
        self.cons.retain(|c| c.owner != Owner::Exchange(ex_id));
        self.send_message(peer, mid, wire, con, Owner::Exchange(ex_id))?;
        let deadline = now.saturating_add(self.config.response_timeout);
        if let Some(ex) = self.exchanges.iter_mut().find(|e| e.id == ex_id) {
            ex.template = bytes;
            ex.token = token;
            ex.deadline = (!con).then_some(deadline);
            #[cfg(feature = "oscore")]
            {
                ex.oscore = oscore;
            }
        }
        Ok(())
    }

    /// Starts fetching the blocks after `first` of a notification of the
    /// observing exchange `parent`: GET + Block2 without Observe and with a
    /// fresh token (RFC 7959 §2.6; a request without Observe on the
    /// observation's own token could be taken as a deregistration).
    pub(super) fn start_fetch(
        &mut self,
        now: Duration,
        parent: u32,
        first: Block,
        etag: Option<Token>,
    ) -> Result<(), Error> {
        let Some(ex) = self.exchanges.iter().find(|e| e.id == parent) else {
            return Err(Error::UnknownId);
        };
        let (peer, con) = (ex.peer.clone(), ex.con);
        #[cfg(feature = "oscore")]
        let parent_context = ex.oscore.as_ref().map(|o| o.context);
        if self.exchanges.is_full() || (con && self.cons.is_full()) || (!con && self.txq.is_full())
        {
            return Err(Error::Busy);
        }
        let template = ex.template.clone();
        let token = self.fresh_token(&peer);
        let mid = self.alloc_mid(&peer);
        let msg = Message::parse(&template)?;
        let mut b = MessageBuilder::<'_, OPTS>::from_message(&msg)?;
        b.set_message_id(mid);
        b.token(token.as_slice())?;
        b.remove_option(OptionNumber::OBSERVE);
        b.remove_option(OptionNumber::BLOCK1);
        b.remove_option(OptionNumber::SIZE1);
        b.payload(&[]);
        b.block2(Block::new(first.num() + 1, false, first.szx())?)?;
        let bytes: Vec<u8, M> = emit_vec(&b)?;
        // The blocks of a protected notification are protected requests
        // of the same context (each its own, RFC 8613 §4.1.3.4.1).
        #[cfg(feature = "oscore")]
        let (wire, oscore) = match parent_context {
            Some(context) => {
                let (wire, req) = self.protect_plain(context, &bytes)?;
                (wire, Some(req))
            }
            None => (bytes.clone(), None),
        };
        #[cfg(not(feature = "oscore"))]
        let wire = bytes.clone();
        let id = self.alloc_id();
        self.send_message(peer.clone(), mid, wire, con, Owner::Exchange(id))?;
        let ex = Exchange {
            id,
            peer,
            token,
            con,
            observing: false,
            last_obs: None,
            echo_retried: false,
            template: bytes,
            deadline: (!con).then(|| now.saturating_add(self.config.response_timeout)),
            fetch_for: Some((parent, etag)),
            #[cfg(feature = "oscore")]
            oscore,
        };
        if self.exchanges.push(ex).is_err() {
            self.cons.retain(|c| c.owner != Owner::Exchange(id));
            return Err(Error::Busy);
        }
        Ok(())
    }

    /// Abandons the fetch of a notification body for the exchange `parent`.
    pub(super) fn drop_fetch(&mut self, parent: u32) {
        while let Some(pos) = self
            .exchanges
            .iter()
            .position(|e| e.fetch_for.is_some_and(|(p, _)| p == parent))
        {
            let ex = self.exchanges.remove(pos);
            self.cons.retain(|c| c.owner != Owner::Exchange(ex.id));
        }
    }

    /// Re-sends an exchange's request with a new message ID after `edit`
    /// (next Block2, Echo, Observe 1); the edited request becomes the template.
    pub(super) fn resend_from_template(
        &mut self,
        now: Duration,
        ex_id: u32,
        edit: Edit,
    ) -> Result<(), Error> {
        let Some(ex) = self.exchanges.iter().find(|e| e.id == ex_id) else {
            return Err(Error::UnknownId);
        };
        if ex.is_oscore() {
            // Protected anew: a new Partial IV, the same token.
            return self.resend_oscore(now, ex_id, edit);
        }
        let (peer, con) = (ex.peer.clone(), ex.con);
        if (con && self.cons.is_full()) || (!con && self.txq.is_full()) {
            return Err(Error::Busy);
        }
        let template = ex.template.clone();
        let mid = self.alloc_mid(&peer);
        let msg = Message::parse(&template)?;
        let mut b = MessageBuilder::<'_, OPTS>::from_message(&msg)?;
        b.set_message_id(mid);
        edit.apply(&mut b)?;
        let bytes: Vec<u8, M> = emit_vec(&b)?;
        self.cons.retain(|c| c.owner != Owner::Exchange(ex_id));
        self.send_message(peer, mid, bytes.clone(), con, Owner::Exchange(ex_id))?;
        let deadline = now.saturating_add(self.config.response_timeout);
        if let Some(ex) = self.exchanges.iter_mut().find(|e| e.id == ex_id) {
            ex.template = bytes;
            ex.deadline = (!con).then_some(deadline);
        }
        Ok(())
    }

    /// The edited repeat of a protected exchange's request
    /// ([`Error::UnknownId`] without the `oscore` feature, where there is
    /// none).
    fn resend_oscore(&mut self, now: Duration, ex_id: u32, edit: Edit) -> Result<(), Error> {
        #[cfg(feature = "oscore")]
        return self
            .resend_protected(now, ex_id, edit)
            .map_err(|e| match e {
                crate::oscore::Error::Coap(e) => e,
                _ => Error::Busy,
            });
        #[cfg(not(feature = "oscore"))]
        {
            let _ = (now, ex_id, edit);
            Err(Error::UnknownId)
        }
    }
}
