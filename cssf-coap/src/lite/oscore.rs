//! OSCORE-protected requests for the lite client (feature `oscore`).
//!
//! [`Client::request_protected`] protects the request once (its
//! retransmissions are the same protected bytes) and keeps its
//! [`RequestBinding`]; [`Client::handle_datagram_protected`] verifies a
//! response that matches the request before the client takes it, so
//! [`Event::Response`](super::Event::Response) and [`Client::response`]
//! give the decrypted inner response. A response that fails verification,
//! or comes unprotected, is dropped (RFC 8613 §8.4) and the request stays
//! outstanding, so a forged response cannot end it.
//!
//! The lite client makes no Echo retry (it keeps only the protected
//! request): a verified 4.01 with an Echo option (a server resynchronising
//! its replay window, RFC 8613 Appendix B.1.2) is delivered as the
//! response, and the application sends the request again with that Echo
//! value (a new request, so a new Partial IV).

use core::time::Duration;

use rand_core::{CryptoRng, RngCore};

use super::{Client, State};
use crate::oscore::{Error, RequestBinding, SecurityContext};
use crate::wire::{Message, MessageBuilder};

impl<R: RngCore + CryptoRng, const M: usize, A: Clone + PartialEq> Client<R, M, A> {
    /// Like [`Client::request`], with the request protected by `ctx`
    /// (RFC 8613 §8.1): the method, Uri-Path, Uri-Query, other Class E
    /// options and the payload travel encrypted.
    ///
    /// Errors are those of [`Client::request`] (wrapped in
    /// [`Error::Coap`]) and of [`SecurityContext::protect_request`]; on an
    /// error no request is outstanding.
    ///
    /// ```
    /// use core::time::Duration;
    /// use cssf_coap::lite::{Client, Config, Event};
    /// use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};
    /// use cssf_coap::{Code, Message, MessageBuilder, MessageType};
    /// # struct Rng(u64);
    /// # impl rand_core::RngCore for Rng {
    /// #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
    /// #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 11 }
    /// #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u64() as u8 } }
    /// #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
    /// # }
    /// # impl rand_core::CryptoRng for Rng {}
    /// // Volatile sequence numbers: only for keys new on every boot (see
    /// // the `oscore` module on Persisted).
    /// let p = Params { master_secret: &[9; 16], master_salt: &[], id_context: None, sender_id: b"c", recipient_id: b"s" };
    /// let mut ctx = SecurityContext::new(&p, SenderSequence::Volatile)?;
    /// let mut server = SecurityContext::new(&Params { sender_id: b"s", recipient_id: b"c", ..p }, SenderSequence::Volatile)?;
    /// let mut client: Client<Rng, 256> = Client::new(Config::default(), Rng(1));
    /// let now = Duration::ZERO;
    ///
    /// let mut get = MessageBuilder::<2>::new(MessageType::Con, Code::GET, 0);
    /// get.uri_path("time")?;
    /// client.request_protected(now, &get, &mut ctx)?;
    /// let mut buf = [0u8; 256];
    /// let n = client.poll_transmit(now, &mut buf)?.expect("the request").len;
    ///
    /// // The server verifies it and answers 2.05 "12:00", protected.
    /// let mut inner = [0u8; 256];
    /// let (m, mut binding) = server.unprotect_request(&mut buf[..n], &mut inner)?;
    /// let req = Message::parse(&inner[..m])?;
    /// let mut rsp = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, req.message_id());
    /// rsp.token(req.token())?.payload(b"12:00");
    /// let mut plain = [0u8; 64];
    /// let len = rsp.emit(&mut plain)?;
    /// let mut reply = [0u8; 64];
    /// let len = server.protect_response(&mut binding, &plain[..len], false, &mut reply)?;
    ///
    /// client.handle_datagram_protected(now, (), &mut reply[..len], &mut ctx)?;
    /// match client.poll_event() {
    ///     Some(Event::Response(m)) => assert_eq!((m.code(), m.payload()), (Code::CONTENT, &b"12:00"[..])),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), cssf_coap::oscore::Error>(())
    /// ```
    pub fn request_protected<const K: usize>(
        &mut self,
        now: Duration,
        req: &MessageBuilder<'_, K>,
        ctx: &mut SecurityContext,
    ) -> Result<(), Error> {
        self.request(now, req)?;
        let mut plain = [0u8; M];
        let len = self.len;
        let protected = match (plain.get_mut(..len), self.buf.get(..len)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                ctx.protect_request(dst, &mut self.buf)
            }
            _ => Err(Error::Coap(crate::Error::BufferTooSmall { needed: len })),
        };
        match protected {
            Ok((n, binding)) => {
                self.len = n;
                self.binding = Some(binding);
                Ok(())
            }
            Err(e) => {
                self.state = State::Idle;
                self.binding = None;
                Err(e)
            }
        }
    }

    /// Like [`Client::handle_datagram`], verifying with `ctx` a response
    /// that matches a request sent with [`Client::request_protected`].
    ///
    /// Such a response that does not verify (forged, tampered, for another
    /// request, unprotected, or too long to verify) is dropped and counted
    /// in [`Stats::unverified`](super::Stats::unverified); the request
    /// stays outstanding. Everything else (Empty ACKs and RSTs, responses
    /// to nothing, duplicates, and every datagram when the request was
    /// sent unprotected) is taken as [`Client::handle_datagram`] takes it.
    /// Nothing a peer sends makes it fail (`Ok` today in every case).
    pub fn handle_datagram_protected(
        &mut self,
        now: Duration,
        from: A,
        data: &mut [u8],
        ctx: &mut SecurityContext,
    ) -> Result<(), Error> {
        if from != self.server {
            self.stats.not_from_server = self.stats.not_from_server.saturating_add(1);
            return Ok(());
        }
        let awaited = Message::parse(data).is_ok_and(|m| self.awaits(&m));
        let binding = match self.binding.take() {
            Some(b) if awaited => b,
            other => {
                self.binding = other;
                self.input(now, data);
                return Ok(());
            }
        };
        let mut binding = binding;
        if self
            .verify_and_handle(now, data, &mut binding, ctx)
            .is_err()
        {
            self.stats.unverified = self.stats.unverified.saturating_add(1);
        }
        self.binding = Some(binding);
        Ok(())
    }

    /// Whether `m` is a response the outstanding request is waiting for.
    pub(super) fn awaits(&self, m: &Message<'_>) -> bool {
        matches!(self.state, State::Active { .. })
            && m.code().is_response()
            && Some(m.token()) == self.token.get(..self.token_len)
    }

    fn verify_and_handle(
        &mut self,
        now: Duration,
        data: &[u8],
        binding: &mut RequestBinding,
        ctx: &mut SecurityContext,
    ) -> Result<(), Error> {
        let mut copy = [0u8; M];
        let Some(msg) = copy.get_mut(..data.len()) else {
            // Longer than the buffer: it cannot be verified, so it cannot
            // end the request either (anyone who saw the token could send
            // it): dropped, the request stays outstanding.
            return Err(Error::Coap(crate::Error::BufferTooSmall {
                needed: data.len(),
            }));
        };
        msg.copy_from_slice(data);
        let mut plain = [0u8; M];
        let n = ctx.unprotect_response(binding, msg, &mut plain)?;
        self.input(now, plain.get(..n).unwrap_or_default());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::{Config, Event};
    use crate::oscore::{Params, SenderSequence};
    use crate::wire::{Code, MessageType};
    use std::vec::Vec;

    struct Rng(u64);
    impl RngCore for Rng {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            self.0
        }
        fn fill_bytes(&mut self, d: &mut [u8]) {
            for b in d {
                *b = (self.next_u64() >> 40) as u8;
            }
        }
        fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(d);
            Ok(())
        }
    }
    impl CryptoRng for Rng {}

    fn contexts() -> (SecurityContext, SecurityContext) {
        let p = Params {
            master_secret: &[3; 16],
            master_salt: &[],
            id_context: None,
            sender_id: b"c",
            recipient_id: b"s",
        };
        let s = Params {
            sender_id: b"s",
            recipient_id: b"c",
            ..p
        };
        (
            SecurityContext::new(&p, SenderSequence::Volatile).unwrap(),
            SecurityContext::new(&s, SenderSequence::Volatile).unwrap(),
        )
    }

    /// The server side: verify the request, answer `code` + `payload`
    /// piggybacked, protected; also returns the plain request.
    fn serve(
        server: &mut SecurityContext,
        wire: &[u8],
        payload: &'static [u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let mut msg = wire.to_vec();
        let mut inner = [0u8; 256];
        let (n, mut binding) = server.unprotect_request(&mut msg, &mut inner).unwrap();
        let req = Message::parse(&inner[..n]).unwrap();
        let token = req.token().to_vec();
        let mut rsp = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, req.message_id());
        rsp.token(&token).unwrap().payload(payload);
        let mut plain = [0u8; 128];
        let len = rsp.emit(&mut plain).unwrap();
        let mut out = [0u8; 256];
        let len = server
            .protect_response(&mut binding, &plain[..len], false, &mut out)
            .unwrap();
        (inner[..n].to_vec(), out[..len].to_vec())
    }

    #[test]
    fn protected_exchange_and_forgeries() {
        let (mut ctx, mut server) = contexts();
        let mut client: Client<Rng, 256> = Client::new(Config::default(), Rng(5));
        let now = Duration::ZERO;
        let mut get = MessageBuilder::<2>::new(MessageType::Con, Code::GET, 0);
        get.uri_path("secret/path").unwrap();
        client.request_protected(now, &get, &mut ctx).unwrap();
        let mut buf = [0u8; 256];
        let n = client.poll_transmit(now, &mut buf).unwrap().unwrap().len;
        let wire = buf[..n].to_vec();
        assert_eq!(Message::parse(&wire).unwrap().code(), Code::POST);
        assert!(!wire.windows(6).any(|w| w == b"secret"));
        let (plain_req, reply) = serve(&mut server, &wire, b"42");
        assert_eq!(Message::parse(&plain_req).unwrap().code(), Code::GET);

        // A tampered copy of the response is dropped; the request stays.
        let mut forged = reply.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        client
            .handle_datagram_protected(now, (), &mut forged, &mut ctx)
            .unwrap();
        assert_eq!(client.stats().unverified, 1);
        assert!(client.is_busy());
        // So is an unprotected response with the right token and ID.
        let m = Message::parse(&reply).unwrap();
        let token = m.token().to_vec();
        let mut plain = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, m.message_id());
        plain.token(&token).unwrap().payload(b"fake");
        let mut pb = [0u8; 64];
        let pl = plain.emit(&mut pb).unwrap();
        client
            .handle_datagram_protected(now, (), &mut pb[..pl], &mut ctx)
            .unwrap();
        assert_eq!(client.stats().unverified, 2);
        assert!(client.is_busy());
        assert_eq!(client.poll_event(), None);
        // And an unprotected one longer than the client's buffer: it cannot
        // be verified, so it cannot end the request either.
        let mut long = MessageBuilder::<1>::new(MessageType::Ack, Code::CONTENT, m.message_id());
        long.token(&token).unwrap().payload(&[b'x'; 300]);
        let mut lb = [0u8; 400];
        let ll = long.emit(&mut lb).unwrap();
        client
            .handle_datagram_protected(now, (), &mut lb[..ll], &mut ctx)
            .unwrap();
        assert_eq!(client.stats().unverified, 3);
        assert!(client.is_busy());
        assert_eq!(client.poll_event(), None);

        // The genuine response.
        client
            .handle_datagram_protected(now, (), &mut reply.clone(), &mut ctx)
            .unwrap();
        assert_eq!(client.stats().unverified, 3);
        match client.poll_event() {
            Some(Event::Response(m)) => {
                assert_eq!(m.code(), Code::CONTENT);
                assert_eq!(m.payload(), b"42");
            }
            other => panic!("{other:?}"),
        }
        assert!(!client.is_busy());

        // A second request: a new Partial IV, the old response does not fit.
        client.request_protected(now, &get, &mut ctx).unwrap();
        let n = client.poll_transmit(now, &mut buf).unwrap().unwrap().len;
        let wire2 = buf[..n].to_vec();
        let (_, reply2) = serve(&mut server, &wire2, b"43");
        let mut old = reply.clone();
        // Give the old response the new message ID and token.
        let m2 = Message::parse(&reply2).unwrap();
        old[2..4].copy_from_slice(&m2.message_id().to_be_bytes());
        old[4..4 + m2.token().len()].copy_from_slice(m2.token());
        client
            .handle_datagram_protected(now, (), &mut old, &mut ctx)
            .unwrap();
        assert_eq!(client.stats().unverified, 4);
        assert!(client.is_busy());
        client
            .handle_datagram_protected(now, (), &mut reply2.clone(), &mut ctx)
            .unwrap();
        assert!(matches!(client.poll_event(), Some(Event::Response(m)) if m.payload() == b"43"));
    }

    #[test]
    fn retransmissions_repeat_the_protected_bytes() {
        let (mut ctx, mut server) = contexts();
        let mut client: Client<Rng, 256> = Client::new(Config::default(), Rng(9));
        let get = MessageBuilder::<0>::new(MessageType::Con, Code::GET, 0);
        client
            .request_protected(Duration::ZERO, &get, &mut ctx)
            .unwrap();
        let mut a = [0u8; 256];
        let n = client
            .poll_transmit(Duration::ZERO, &mut a)
            .unwrap()
            .unwrap()
            .len;
        let at = client.poll_timeout().unwrap();
        client.handle_timeout(at);
        let mut b = [0u8; 256];
        let m = client.poll_transmit(at, &mut b).unwrap().unwrap().len;
        assert_eq!(a[..n], b[..m]);
        // The server takes the first and calls the retransmission a replay
        // (its CoAP layer answers duplicates from its cache instead).
        serve(&mut server, &a[..n], b"x");
        let mut dup = b[..m].to_vec();
        let mut out = [0u8; 256];
        assert_eq!(
            server.unprotect_request(&mut dup, &mut out),
            Err(Error::Replay)
        );
        assert_eq!(ctx.sender_sequence_number(), 1);
    }

    #[test]
    fn a_failing_protection_leaves_no_request() {
        let (_, _) = contexts();
        let p = Params {
            master_secret: &[3; 16],
            master_salt: &[],
            id_context: None,
            sender_id: b"c",
            recipient_id: b"s",
        };
        let mut ctx =
            SecurityContext::new(&p, SenderSequence::Persisted { stored: 0, step: 4 }).unwrap();
        let mut client: Client<Rng, 256> = Client::new(Config::default(), Rng(2));
        let get = MessageBuilder::<0>::new(MessageType::Con, Code::GET, 0);
        assert_eq!(
            client.request_protected(Duration::ZERO, &get, &mut ctx),
            Err(Error::PersistRequired)
        );
        assert!(!client.is_busy());
        let mut buf = [0u8; 64];
        assert_eq!(client.poll_transmit(Duration::ZERO, &mut buf), Ok(None));
    }
}
