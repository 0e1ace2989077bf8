//! The in-memory network: honest nodes exchange datagrams through an
//! adversary that sees every datagram and decides what is delivered (as
//! is, modified, duplicated, later, never) and what else is injected.

use std::time::Duration;

/// A node's address (`u16`, so floods can spoof thousands of sources).
pub type Addr = u16;
/// The legitimate client.
pub const CLIENT: Addr = 1;
/// The server under attack.
pub const SERVER: Addr = 2;
/// First address the adversary spoofs from.
pub const SPOOF_BASE: Addr = 1000;

/// A datagram on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Source address (as claimed: the adversary may spoof it).
    pub from: Addr,
    /// Destination.
    pub to: Addr,
    /// The bytes.
    pub data: Vec<u8>,
    /// Set by the adversary on anything it modified, replayed, duplicated
    /// or forged: a receiver that acts on a tainted datagram is the attack's
    /// effect.
    pub tainted: bool,
}

impl Packet {
    /// An honest datagram.
    pub fn new(from: Addr, to: Addr, data: &[u8]) -> Self {
        Packet {
            from,
            to,
            data: data.to_vec(),
            tainted: false,
        }
    }

    /// A forged or altered copy.
    pub fn forged(from: Addr, to: Addr, data: Vec<u8>) -> Self {
        Packet {
            from,
            to,
            data,
            tainted: true,
        }
    }
}

/// The adversary on the path.
pub trait Adversary {
    /// An honest node sent `p`: push what reaches its receiver into `out`.
    fn intercept(&mut self, now: Duration, p: Packet, out: &mut Vec<Packet>);
    /// Time passed: release held datagrams, inject new ones.
    fn tick(&mut self, _now: Duration, _out: &mut Vec<Packet>) {}
    /// When [`Adversary::tick`] wants to run next.
    fn wakeup(&self) -> Option<Duration> {
        None
    }
}

/// Delivers everything unchanged (and records nothing).
#[derive(Debug, Default)]
pub struct Honest;

impl Adversary for Honest {
    fn intercept(&mut self, _now: Duration, p: Packet, out: &mut Vec<Packet>) {
        out.push(p);
    }
}

/// An honest participant: a client or server stack.
pub trait Node {
    /// Its address.
    fn addr(&self) -> Addr;
    /// A datagram arrived.
    fn input(&mut self, now: Duration, p: &Packet);
    /// Datagrams it wants to send.
    fn output(&mut self, now: Duration, out: &mut Vec<Packet>);
    /// Time passed.
    fn timeout(&mut self, now: Duration);
    /// Its next deadline.
    fn next_timeout(&self) -> Option<Duration>;
}

/// The virtual clock and the wire log.
#[derive(Debug, Default)]
pub struct Net {
    /// Virtual time.
    pub now: Duration,
    /// Every datagram an honest node sent (what an eavesdropper sees).
    pub transcript: Vec<Packet>,
}

/// Steps without progress of time before [`Net::run`] gives up.
const MAX_STEPS: usize = 200_000;

impl Net {
    /// Runs the nodes and the adversary until nothing is due before `until`
    /// (virtual time), then sets the clock to `until`.
    pub fn run(&mut self, nodes: &mut [&mut dyn Node], adv: &mut dyn Adversary, until: Duration) {
        let mut sent = Vec::new();
        let mut deliver = Vec::new();
        for _ in 0..MAX_STEPS {
            for n in nodes.iter_mut() {
                n.output(self.now, &mut sent);
            }
            for p in sent.drain(..) {
                self.transcript.push(p.clone());
                adv.intercept(self.now, p, &mut deliver);
            }
            adv.tick(self.now, &mut deliver);
            if !deliver.is_empty() {
                for p in deliver.drain(..) {
                    if let Some(n) = nodes.iter_mut().find(|n| n.addr() == p.to) {
                        n.input(self.now, &p);
                    }
                }
                continue;
            }
            let next = nodes
                .iter()
                .filter_map(|n| n.next_timeout())
                .chain(adv.wakeup())
                .min();
            match next {
                Some(t) if t <= until => {
                    // Deadlines in the past still move the clock a little,
                    // so a node that keeps one cannot stall the loop.
                    self.now = t.max(self.now + Duration::from_micros(1));
                    for n in nodes.iter_mut() {
                        if n.next_timeout().is_some_and(|d| d <= self.now) {
                            n.timeout(self.now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, nodes: &mut [&mut dyn Node], adv: &mut dyn Adversary, d: Duration) {
        let until = self.now + d;
        self.run(nodes, adv, until);
    }
}

/// Finds `needle` anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
