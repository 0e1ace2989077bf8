//! The RFC 7252 §4 message layer: message IDs, retransmission timing,
//! the outgoing queue, ACK/RST matching, ping and the message-ID cache.

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
    /// The next message ID towards `peer` (RFC 7252 §4.4).
    ///
    /// Each peer has its own sequence, started at a random value, so the
    /// 16-bit space is shared only by the messages sent to that one peer
    /// (it wraps only after 65,536 messages to it within EXCHANGE_LIFETIME,
    /// far beyond a constrained device's rate). The table holds `N`
    /// sequences; a new peer evicts the least recently used one. That is
    /// exactly safe when the evicted sequence was last used more than
    /// EXCHANGE_LIFETIME ago: the peer's deduplication state for those IDs
    /// has expired (§4.5), so any restart value is fresh. Evicting a more
    /// recently used sequence restarts it at a new random value; the peer can
    /// only mistake a new message for a duplicate if that value lands within
    /// the few IDs sent to it during the last EXCHANGE_LIFETIME
    /// (probability ≈ k / 65,536 for k such IDs), and never collides with a
    /// CON of ours still in flight to it, which is checked.
    pub(super) fn alloc_mid(&mut self, peer: &A) -> u16 {
        let now = self.last_now;
        if let Some(seq) = self.mids.iter_mut().find(|s| &s.peer == peer) {
            let mid = seq.next;
            seq.next = seq.next.wrapping_add(1);
            seq.last_used = now;
            return mid;
        }
        let mut start = (self.rng.next_u32() & 0xffff) as u16;
        for _ in 0..8 {
            // Keep clear of IDs of ours still awaiting an ACK from this peer.
            let clash = self.cons.iter().any(|c| {
                &c.peer == peer
                    && (c.mid.wrapping_sub(start) < 0x100 || start.wrapping_sub(c.mid) < 0x100)
            });
            if !clash {
                break;
            }
            start = (self.rng.next_u32() & 0xffff) as u16;
        }
        if self.mids.is_full() {
            if let Some(lru) = self
                .mids
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i)
            {
                self.mids.swap_remove(lru);
            }
        }
        // Cannot fail: a slot was freed above when the table was full.
        let _ = self.mids.push(MidSeq {
            peer: peer.clone(),
            next: start.wrapping_add(1),
            last_used: now,
        });
        start
    }

    /// Number of peers with a message-ID sequence (test aid).
    #[cfg(test)]
    pub(super) fn mid_sequences(&self) -> usize {
        self.mids.len()
    }

    pub(super) fn alloc_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    pub(super) fn fresh_token(&mut self, peer: &A) -> Token {
        let len = usize::from(self.config.token_len.clamp(1, 8));
        let mut t = Token::default();
        for _ in 0..8 {
            let mut bytes = [0u8; 8];
            self.rng.fill_bytes(bytes.get_mut(..len).unwrap_or(&mut []));
            t = Token::new(bytes.get(..len).unwrap_or(&[]));
            if !self
                .exchanges
                .iter()
                .any(|e| &e.peer == peer && e.token == t)
            {
                break;
            }
        }
        t
    }

    /// ACK_TIMEOUT × a random factor in [1, ACK_RANDOM_FACTOR] (§4.2).
    pub(super) fn initial_timeout(&mut self) -> Duration {
        let base = self.config.ack_timeout;
        let extra_milli = self.config.ack_random_factor_milli.saturating_sub(1000);
        let span = base.saturating_mul(extra_milli) / 1000;
        let span_us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
        let r = if span_us == 0 {
            0
        } else {
            self.rng.next_u64() % (span_us + 1)
        };
        base.saturating_add(Duration::from_micros(r))
    }

    pub(super) fn maintain(&mut self, now: Duration) {
        self.last_now = self.last_now.max(now);
        // An automatic upload ends with its exchange (answer, timeout, RST).
        if let Some(u) = &self.upload {
            if !self.exchanges.iter().any(|e| e.id == u.ex) {
                self.upload = None;
            }
        }
        self.dedup.retain(|d| d.expires > now);
        self.addr_ok.retain(|(_, until)| *until > now);
        self.uploads.retain(|u| u.expires > now);
        // A request the application never answered frees its slot.
        self.pending.retain(|p| p.expires > now);
    }

    pub(super) fn push_event(&mut self, ev: Event<A, M>) -> bool {
        if self.events.push(ev).is_err() {
            debug!("event queue full: event dropped");
            self.stats.dropped += 1;
            false
        } else {
            true
        }
    }

    pub(super) fn queue(&mut self, to: A, bytes: Vec<u8, M>) -> bool {
        if self.txq.push((to, bytes)).is_err() {
            debug!("transmit queue full: message dropped");
            self.stats.dropped += 1;
            false
        } else {
            true
        }
    }

    pub(super) fn queue_empty(&mut self, to: A, ty: MessageType, mid: u16) -> bool {
        let b = MessageBuilder::<'_, 1>::new(ty, Code::EMPTY, mid);
        match emit_vec::<M, 1>(&b) {
            Ok(bytes) => self.queue(to, bytes),
            Err(_) => false,
        }
    }

    pub(super) fn queue_empty_ack(&mut self, to: A, mid: u16) -> bool {
        self.queue_empty(to, MessageType::Ack, mid)
    }

    pub(super) fn queue_rst(&mut self, to: A, mid: u16) {
        if self.queue_empty(to, MessageType::Rst, mid) {
            trace!("RST sent (MID {})", mid);
            self.stats.resets_sent += 1;
        }
    }

    /// Queues a NON (or ACK) directly, or a CON under retransmission control.
    pub(super) fn send_message(
        &mut self,
        peer: A,
        mid: u16,
        bytes: Vec<u8, M>,
        con: bool,
        owner: Owner,
    ) -> Result<(), Error> {
        if con {
            let slot = ConSlot {
                peer,
                mid,
                bytes,
                owner,
                state: ConState::Waiting,
                tries: 0,
                timeout: self.config.ack_timeout,
                first_sent: None,
            };
            self.cons.push(slot).map_err(|_| Error::Busy)
        } else if self.queue(peer, bytes) {
            Ok(())
        } else {
            Err(Error::Busy)
        }
    }

    pub(super) fn give_up(&mut self, owner: Owner) {
        match owner {
            Owner::Exchange(x) => {
                if let Some(pos) = self.exchanges.iter().position(|e| e.id == x) {
                    let ex = self.exchanges.remove(pos);
                    if ex.fetch_for.is_some() {
                        debug!("Block2 fetch of a notification ended: dropped");
                        self.stats.dropped += 1;
                    } else {
                        self.push_event(Event::Timeout { id: ExchangeId(x) });
                    }
                }
            }
            // RFC 7641 §4.5: an observer that does not acknowledge is gone.
            Owner::Notify(k) => self.observers.retain(|o| o.key != k),
            Owner::Response => {}
        }
    }

    pub(super) fn on_empty(&mut self, now: Duration, peer: A, msg: &Message<'_>) {
        let mid = msg.message_id();
        match msg.ty() {
            // §4.3: CoAP ping.
            MessageType::Con => self.queue_rst(peer, mid),
            MessageType::Non => {
                debug!("empty NON message (MID {}): ignored", mid);
                self.stats.malformed += 1;
            }
            MessageType::Ack => {
                let Some(pos) = self
                    .cons
                    .iter()
                    .position(|c| c.peer == peer && c.mid == mid)
                else {
                    if !self.ack_to_earlier_notification(now, &peer, mid) {
                        debug!("ACK or RST matching nothing sent (MID {}): ignored", mid);
                        self.stats.unmatched += 1;
                    }
                    return;
                };
                let slot = self.cons.remove(pos);
                if let Owner::Exchange(x) = slot.owner {
                    // Separate response to follow (§5.2.2).
                    let deadline = now.saturating_add(self.config.response_timeout);
                    if let Some(ex) = self.exchanges.iter_mut().find(|e| e.id == x) {
                        if !ex.observing || ex.last_obs.is_none() {
                            ex.deadline = Some(deadline);
                        }
                    }
                }
            }
            MessageType::Rst => self.on_reset(&peer, mid),
        }
    }

    pub(super) fn on_reset(&mut self, peer: &A, mid: u16) {
        if let Some(pos) = self
            .cons
            .iter()
            .position(|c| &c.peer == peer && c.mid == mid)
        {
            let slot = self.cons.remove(pos);
            match slot.owner {
                Owner::Exchange(x) => {
                    let fetch = self
                        .exchanges
                        .iter()
                        .any(|e| e.id == x && e.fetch_for.is_some());
                    self.exchanges.retain(|e| e.id != x);
                    if fetch {
                        debug!("Block2 fetch of a notification reset by the peer: dropped");
                        self.stats.dropped += 1;
                    } else {
                        self.push_event(Event::Reset { id: ExchangeId(x) });
                    }
                }
                Owner::Notify(k) => self.observers.retain(|o| o.key != k),
                Owner::Response => {}
            }
            return;
        }
        // RFC 7641 §3.6: an RST to any of an observer's latest
        // notifications (a newer one may have replaced it in flight) ends
        // the observation, and the notification in flight with it.
        let Some(key) = self
            .observers
            .iter()
            .find(|o| &o.peer == peer && o.recent.contains(&mid))
            .map(|o| o.key)
        else {
            debug!("RST matching nothing sent (MID {}): ignored", mid);
            self.stats.unmatched += 1;
            return;
        };
        self.observers.retain(|o| o.key != key);
        self.cons.retain(|c| c.owner != Owner::Notify(key));
    }

    /// An ACK to an earlier notification of an observer whose newer one is
    /// in flight (its round trip is longer than the notification period):
    /// the observer is alive at `now`, so the newer one starts its
    /// retransmissions over from now, as if first sent now. Returns
    /// whether it matched.
    pub(super) fn ack_to_earlier_notification(
        &mut self,
        now: Duration,
        peer: &A,
        mid: u16,
    ) -> bool {
        let Some(key) = self
            .observers
            .iter()
            .find(|o| &o.peer == peer && o.recent.contains(&mid))
            .map(|o| o.key)
        else {
            return false;
        };
        let timeout = self.initial_timeout();
        if let Some(slot) = self.cons.iter_mut().find(|c| c.owner == Owner::Notify(key)) {
            if let ConState::Sent { .. } | ConState::Resend { .. } = slot.state {
                slot.tries = 0;
                slot.timeout = timeout;
                slot.first_sent = Some(now);
                let next_at = now.saturating_add(timeout);
                slot.state = match slot.state {
                    ConState::Resend { .. } => ConState::Resend { next_at },
                    _ => ConState::Sent { next_at },
                };
            }
        }
        true
    }

    pub(super) fn cache_answer(&mut self, peer: &A, mid: u16, token: &Token, bytes: &Vec<u8, M>) {
        if let Some(d) = self
            .dedup
            .iter_mut()
            .find(|d| &d.peer == peer && d.mid == mid && &d.token == token)
        {
            d.state = DedupState::Answered(bytes.clone());
        }
    }

    /// Remembers message `(mid, token, length)` of `peer`.
    pub(super) fn remember(
        &mut self,
        now: Duration,
        peer: A,
        (mid, token, req_len): (u16, Token, usize),
        con: bool,
        state: DedupState<M>,
    ) -> bool {
        let life = if con {
            self.config.exchange_lifetime()
        } else {
            self.config.non_lifetime()
        };
        self.dedup
            .push(Dedup {
                peer,
                mid,
                token,
                req_len,
                since: now,
                expires: now.saturating_add(life),
                state,
            })
            .is_ok()
    }

    /// Makes room in the message-ID cache for a request from `peer` that
    /// goes to the application (RFC 7252 §4.5; the endpoint's own answers
    /// take no entry). `false`: no room, answer 5.03.
    ///
    /// - A peer holds at most its quota ([`Config::peer_quota`] of `D`); at
    ///   the quota its own oldest entry goes, if the retransmissions of
    ///   that request are over (older than MAX_TRANSMIT_SPAN), else the
    ///   peer is sending too fast and gets 5.03.
    /// - In a full cache an entry whose request the application still has
    ///   goes never; first an unverified peer's (the oldest entry of the
    ///   unverified peer holding the most), then, for a verified requester
    ///   only, the oldest of the verified peer holding the most, if that
    ///   is more than the requester holds.
    ///
    /// So a verified peer within its quota is always served when `D` is at
    /// least the number of verified peers times the quota, whatever
    /// unverified (possibly spoofed) sources send.
    pub(super) fn admit_request(&mut self, now: Duration, peer: &A) -> bool {
        match self.admission(now, peer) {
            Some(room) => {
                self.make_room(room);
                true
            }
            None => false,
        }
    }

    /// What [`Endpoint::admit_request`] would do, without doing it: `None`
    /// no room (5.03); `Some(None)` room as it is; `Some(Some(i))` room once
    /// entry `i` goes ([`Endpoint::make_room`]). An OSCORE request is
    /// checked so before it is verified and given its room only once it
    /// verified: input nobody authenticated changes no entry.
    pub(super) fn admission(&self, now: Duration, peer: &A) -> Option<Option<usize>> {
        let held = self.dedup.iter().filter(|d| &d.peer == peer).count();
        if held >= self.config.peer_quota(D) {
            let settled = now.checked_sub(self.config.max_transmit_span());
            // Removing one entry leaves room in the cache too.
            return self
                .dedup
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    &d.peer == peer && settled.is_some_and(|t| d.since <= t) && !self.is_pending(d)
                })
                .min_by_key(|(_, d)| d.since)
                .map(|(i, _)| Some(i));
        }
        if !self.dedup.is_full() {
            return Some(None);
        }
        self.dedup_victim(peer).map(Some)
    }

    /// Carries out an [`Endpoint::admission`] decision.
    pub(super) fn make_room(&mut self, room: Option<usize>) {
        if let Some(i) = room {
            if i < self.dedup.len() {
                self.dedup.remove(i);
            }
        }
    }

    /// Drops the message-ID cache entry of a request after all (it got an
    /// answer of the endpoint's own).
    pub(super) fn forget_mid(&mut self, peer: &A, mid: u16, token: &Token) {
        self.dedup
            .retain(|d| !(&d.peer == peer && d.mid == mid && &d.token == token));
    }

    /// Whether the application has not answered the request of `d` yet.
    fn is_pending(&self, d: &Dedup<A, M>) -> bool {
        self.pending
            .iter()
            .any(|p| p.peer == d.peer && p.mid == d.mid && p.token == d.token)
    }

    /// The entry of a full message-ID cache that makes room for a request
    /// from `requester` (see [`Endpoint::admit_request`]).
    fn dedup_victim(&self, requester: &A) -> Option<usize> {
        let requester_verified = self.is_verified(requester);
        let held = self.dedup.iter().filter(|d| &d.peer == requester).count();
        // Ranked by: unverified first, then the peer holding the most,
        // then the oldest entry.
        type Rank = (bool, core::cmp::Reverse<usize>, Duration);
        let mut best: Option<(Rank, usize)> = None;
        for (i, d) in self.dedup.iter().enumerate() {
            if self.is_pending(d) {
                continue;
            }
            let verified = self.is_verified(&d.peer);
            let count = self.dedup.iter().filter(|e| e.peer == d.peer).count();
            if verified && (!requester_verified || &d.peer == requester || count <= held + 1) {
                continue;
            }
            let key = (verified, core::cmp::Reverse(count), d.since);
            if best.as_ref().map_or(true, |(k, _)| key < *k) {
                best = Some((key, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// The Echo value for `peer` at `now` (RFC 9175 §2.2), drawing the key
    /// on first use.
    pub(super) fn echo_value(&mut self, now: Duration, peer: &A) -> [u8; echo::ECHO_LEN] {
        let key = match self.echo {
            Some(k) => k,
            None => {
                let k = echo::EchoKey::new(self.rng.next_u64(), self.rng.next_u64());
                self.echo = Some(k);
                k
            }
        };
        key.value(now, peer)
    }

    /// Whether `value` is an Echo value this endpoint issued to `peer`
    /// less than `Config::echo_lifetime` before `now`.
    pub(super) fn echo_fresh(&self, now: Duration, peer: &A, value: &[u8]) -> bool {
        let life = self.config.echo_lifetime;
        self.echo
            .as_ref()
            .is_some_and(|k| k.is_fresh(now, life, peer, value))
    }

    /// `peer` answered an Echo challenge at `now` (RFC 9175 §2.4 item 3):
    /// it counts as verified for `Config::address_validity`.
    pub(super) fn address_verified(&mut self, now: Duration, peer: &A) {
        let until = now.saturating_add(self.config.address_validity);
        if let Some(e) = self.addr_ok.iter_mut().find(|(p, _)| p == peer) {
            e.1 = until;
            return;
        }
        if self.addr_ok.is_full() {
            if let Some(i) = self
                .addr_ok
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(i, _)| i)
            {
                self.addr_ok.swap_remove(i);
            }
        }
        // Cannot fail: room was made above.
        let _ = self.addr_ok.push((peer.clone(), until));
    }

    /// Answers a request at once (piggybacked for CON, NON otherwise),
    /// caching the answer for duplicates if `cache`. Toward an unverified
    /// peer an answer over the amplification limit becomes a 4.01 Echo
    /// challenge, or nothing if not even that fits (RFC 9175 §2.4).
    pub(super) fn reply_now(
        &mut self,
        peer: A,
        msg: &Message<'_>,
        code: Code,
        o: &Opts<'_>,
        cache: bool,
    ) {
        let con = msg.ty() == MessageType::Con;
        let ty = if con {
            MessageType::Ack
        } else {
            MessageType::Non
        };
        let echo;
        let challenge;
        let oscore = self.under_oscore();
        let (code, o) = match self.answer_cap(&peer, self.received_len(msg), oscore) {
            Some(cap) if encoded_len(ty, code, msg.token(), o) > cap => {
                debug!("answer over the amplification limit toward an unverified address: Echo challenge instead");
                self.stats.amplification_limited += 1;
                echo = self.echo_value(self.last_now, &peer);
                challenge = Opts {
                    echo: Some(&echo),
                    ..Opts::default()
                };
                if code == Code::UNAUTHORIZED
                    || encoded_len(ty, Code::UNAUTHORIZED, msg.token(), &challenge) > cap
                {
                    return;
                }
                (Code::UNAUTHORIZED, &challenge)
            }
            _ => (code, o),
        };
        let mid = if con {
            msg.message_id()
        } else {
            self.alloc_mid(&peer)
        };
        match build::<M>(ty, code, mid, msg.token(), o) {
            Ok(bytes) => {
                // The answer to an OSCORE request is protected, and always
                // cached: its duplicate is never verified again.
                #[cfg(feature = "oscore")]
                let Some(bytes) = self.seal_current(bytes) else {
                    return;
                };
                if cache || self.under_oscore() {
                    let token = Token::new(msg.token());
                    self.cache_answer(&peer, msg.message_id(), &token, &bytes);
                }
                self.queue(peer, bytes);
            }
            Err(_) => {
                debug!("answer could not be built: dropped");
                self.stats.dropped += 1;
            }
        }
    }

    /// Whether the request being routed came OSCORE-protected.
    pub(super) fn under_oscore(&self) -> bool {
        #[cfg(feature = "oscore")]
        return self.oscore_now.is_some();
        #[cfg(not(feature = "oscore"))]
        false
    }

    /// The OSCORE context the request being routed was verified with
    /// (`None`: it came plain).
    pub(super) fn context_now(&self) -> Option<usize> {
        #[cfg(feature = "oscore")]
        return self.oscore_now.as_ref().map(|o| o.context);
        #[cfg(not(feature = "oscore"))]
        None
    }

    /// The length of the datagram `msg` (the request being routed) came in:
    /// the OSCORE message for a protected request, not the decrypted inner
    /// one (the amplification limit counts what the peer sent, RFC 9175
    /// §2.4).
    pub(super) fn received_len(&self, msg: &Message<'_>) -> usize {
        #[cfg(feature = "oscore")]
        if let Some(o) = &self.oscore_now {
            return o.datagram_len;
        }
        msg.as_bytes().len()
    }

    pub(super) fn busy(&mut self, peer: A, msg: &Message<'_>) {
        debug!(
            "request (MID {}) refused with 5.03: a table is full",
            msg.message_id()
        );
        self.stats.busy += 1;
        let o = Opts {
            max_age: Some(self.config.busy_max_age),
            ..Opts::default()
        };
        self.reply_now(peer, msg, Code::SERVICE_UNAVAILABLE, &o, false);
    }
}
