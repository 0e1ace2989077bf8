//! CoAP-level attack on a non-idempotent request (PUT /actuators/led,
//! which needs a fresh Echo value, RFC 9175): on plain CoAP the request is
//! replayed so the server acts twice; behind DTLS, where a replayed record
//! is dropped, the record carrying the request is held back and delivered
//! after the client gave up, so the server would act long after the
//! client asked (RFC 9175 §2.3's delayed request).

use std::time::Duration;

use cssf_coap::{Code, Message, MessageBuilder, OptionNumber};
use cssf_netsim::SimRng;

use cssf_coap::endpoint::{Methods, Resource};

use crate::net::{Adversary, Net, Packet, CLIENT, SERVER};
use crate::stack::{connect, cssf_alive, is_app_record, CssfClient, LabServer};
use crate::transport::{plain_exchange, secret};
use crate::{Cmp, Opts, Row};

/// Holds the `nth` application record from the client (counting from 1;
/// the one that carries the request the server would act on), drops the
/// client's later records (its retransmissions) until it releases the
/// held one `delay` later, then lets everything through. The record is
/// new to the server: DTLS accepts it, only the request's freshness can
/// refuse it.
struct Delayer {
    nth: usize,
    delay: Duration,
    seen: usize,
    held: Option<(Duration, Packet)>,
    released: bool,
}

impl Adversary for Delayer {
    fn intercept(&mut self, now: Duration, p: Packet, out: &mut Vec<Packet>) {
        if p.to == SERVER && is_app_record(&p.data) && !self.released {
            self.seen += 1;
            if self.seen == self.nth {
                self.held = Some((
                    now + self.delay,
                    Packet::forged(p.from, p.to, p.data.clone()),
                ));
            }
            if self.seen >= self.nth {
                return;
            }
        }
        out.push(p);
    }
    fn tick(&mut self, now: Duration, out: &mut Vec<Packet>) {
        if self.held.as_ref().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, p)) = self.held.take() {
                self.released = true;
                out.push(p);
            }
        }
    }
    fn wakeup(&self) -> Option<Duration> {
        self.held.as_ref().map(|(t, _)| *t)
    }
}

/// /actuators/led without the Echo requirement (the control).
static NO_ECHO: [Resource; 2] = [
    Resource::new("sensors/temp", Methods::GET),
    Resource::new("actuators/led", Methods::GET.union(Methods::PUT)),
];

/// One delayed PUT behind DTLS: (the server acted on it, the session
/// still works, the record was released). `echo`: the resource needs a
/// fresh Echo (else the control).
fn delayed_put(seed: u64, delay: Duration, echo: bool) -> (bool, bool, bool) {
    let mut net = Net::default();
    let mut c = CssfClient::legit(seed);
    let mut s = LabServer::lab(seed);
    if !echo {
        s.coap = crate::stack::Coap::new(
            cssf_coap::endpoint::Config::default(),
            SimRng::new(seed ^ 0x5E5E),
            &NO_ECHO,
        );
    }
    let up = connect(&mut net, &mut c, &mut s);
    c.app.push(Code::PUT, "actuators/led", &secret(seed));
    // With Echo the first PUT is answered 4.01 with an Echo value and the
    // second carries it; without, the first is the one acted on.
    let mut adv = Delayer {
        nth: if echo { 2 } else { 1 },
        delay,
        seen: 0,
        held: None,
        released: false,
    };
    net.run_for(
        &mut [&mut c, &mut s],
        &mut adv,
        delay + Duration::from_secs(60),
    );
    let acted = !s.app.actions.is_empty();
    let alive = up && cssf_alive(&mut net, &mut c, &mut s);
    (acted, alive, adv.released)
}

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
        "CoAP request replay (plain CoAP) or delay behind DTLS (CSSF): PUT /actuators/led acted on later (Echo freshness)",
    );
    let lifetime = cssf_coap::endpoint::Config::default().echo_lifetime;
    let (mut base, mut control, mut released) = (0, 0, 0);
    for i in 0..o.attempts {
        let seed = o.seed.wrapping_add(u64::from(i)) ^ 0xEC40;
        // CSSF: the record with the PUT and its Echo held back beyond the
        // Echo lifetime (up to 300 s), the client's retransmissions dropped.
        let mut rng = SimRng::new(seed);
        let delay = rng.between(lifetime + Duration::from_secs(1), Duration::from_secs(300));
        let (acted, alive, rel) = delayed_put(seed, delay, true);
        released += u32::from(rel);
        row.attempt(acted, alive);
        // Control: the same delay against /actuators/led without Echo.
        control += u32::from(delayed_put(seed, delay, false).0);
        let mut adv = EchoReplayer {
            rng: SimRng::new(seed),
            captured: None,
            at: None,
            retried: false,
        };
        let b = plain_exchange(seed, &mut adv);
        base += u32::from(b.legit_actions > 1);
    }
    let n = row.attempts;
    row.defence = format!(
        "Echo freshness ({} s) behind the DTLS replay window (held record delivered {released}/{n}; control, the resource without Echo: the delayed PUT carried out {control}/{n})",
        lifetime.as_secs()
    );
    row.control(control, n, false);
    if control != n || released != n {
        row.failure = Some(format!(
            "control: delayed PUT carried out without Echo {control}/{n}, held record delivered {released}/{n}"
        ));
    }
    row.baseline = Cmp::Ran {
        accepted: base,
        attempts: o.attempts,
    };
    vec![row]
}
