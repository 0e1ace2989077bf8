//! CoAP-level attack: replaying a non-idempotent request (PUT
//! /actuators/led, which needs a fresh Echo value, RFC 9175) so the
//! server acts twice.

use std::time::Duration;

use cssf_coap::{Code, Message, MessageBuilder, OptionNumber};
use cssf_netsim::SimRng;

use crate::net::{Adversary, Packet, CLIENT, SERVER};
use crate::transport::{cssf_exchange, plain_exchange, Replayer};
use crate::{Cmp, Opts, Row};

/// The best replay attacker against plain CoAP: it re-sends the captured
/// PUT (which carries a valid Echo) under a fresh message ID, so
/// deduplication does not catch it, and if the server asks for a newer
/// Echo it copies the value from the 4.01 into the replay and sends again.
struct EchoReplayer {
    rng: SimRng,
    captured: Option<Vec<u8>>,
    at: Option<Duration>,
    retried: bool,
}

impl EchoReplayer {
    fn replay(&mut self, echo: Option<&[u8]>) -> Option<Vec<u8>> {
        let bytes = self.captured.clone()?;
        let msg = Message::parse(&bytes).ok()?;
        let mut b = MessageBuilder::<16>::from_message(&msg).ok()?;
        b.set_message_id(self.rng.next_u64_raw() as u16);
        if let Some(e) = echo {
            b.remove_option(OptionNumber::ECHO);
            b.add_option(OptionNumber::ECHO, e).ok()?;
        }
        let mut buf = vec![0u8; 1200];
        let n = b.emit(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

impl Adversary for EchoReplayer {
    fn intercept(&mut self, now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if let Ok(m) = Message::parse(&p.data) {
            if p.to == SERVER
                && self.captured.is_none()
                && m.code() == Code::PUT
                && m.option(OptionNumber::ECHO).is_some()
            {
                self.captured = Some(p.data.clone());
                self.at = Some(
                    now + self
                        .rng
                        .between(Duration::from_secs(1), Duration::from_secs(300)),
                );
            }
            // The server's answer to our replay: a 4.01 with a new Echo.
            let ours = self
                .captured
                .as_ref()
                .and_then(|c| Message::parse(c).ok().map(|c| c.token().to_vec()));
            if p.from == SERVER
                && self.at.is_none()
                && !self.retried
                && m.code() == Code::UNAUTHORIZED
                && ours.as_deref() == Some(m.token())
            {
                if let Some(echo) = m.option(OptionNumber::ECHO).map(<[u8]>::to_vec) {
                    self.retried = true;
                    if let Some(d) = self.replay(Some(&echo)) {
                        out.push(Packet::forged(CLIENT, SERVER, d));
                    }
                }
            }
        }
        out.push(p);
    }
    fn tick(&mut self, now: Duration, out: &mut Vec<Packet>) {
        if self.at.is_some_and(|t| t <= now) {
            self.at = None;
            if let Some(d) = self.replay(None) {
                out.push(Packet::forged(CLIENT, SERVER, d));
            }
        }
    }
    fn wakeup(&self) -> Option<Duration> {
        self.at
    }
}

/// The CoAP rows.
pub fn run(o: &Opts) -> Vec<Row> {
    let mut row = Row::new(
        "coap-replay",
        "CoAP request replay: PUT /actuators/led re-sent later (Echo freshness)",
    );
    let mut base = 0;
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0xEC40;
        // CSSF: the adversary cannot build a new record, so it replays the
        // records carrying the request, immediately and after the CoAP
        // deduplication and Echo lifetimes have passed.
        let mut adv = Replayer {
            rng: SimRng::new(seed),
            plain: false,
            to_server_only: true,
            lo: Duration::from_millis(1),
            hi: Duration::from_secs(330),
            copies: 3,
            held: Vec::new(),
        };
        let r = cssf_exchange(seed, &mut adv);
        row.attempt(r.accepted(), r.alive);
        let mut adv = EchoReplayer {
            rng: SimRng::new(seed),
            captured: None,
            at: None,
            retried: false,
        };
        let b = plain_exchange(seed, &mut adv);
        base += u32::from(b.legit_actions > 1);
    }
    row.defence = "DTLS replay window; Echo freshness and deduplication behind it".into();
    row.baseline = Cmp::Ran {
        accepted: base,
        attempts: o.attempts,
    };
    vec![row]
}
