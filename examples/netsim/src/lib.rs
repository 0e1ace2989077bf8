//! `cssf-netsim`: the in-memory network harness every CSSF crate's tests share.
//!
//! A virtual clock, one seeded [`Network`] that delivers datagrams between
//! addresses with configurable loss, duplication, reordering, delay and MTU,
//! and a [`Sim`] that drives any number of sans-IO [`Node`]s by jumping to the
//! earliest deadline or arrival (the quinn-proto `Pair` and str0m `netem`
//! pattern). [`Sim::drive_bounded`] fails on livelock and every failure names
//! the seed, so a failing run can be replayed exactly.
//!
//! It also holds [`peer`], the helpers interop tests use to find (or, in CI,
//! insist on) the external implementations they talk to.
//!
//! This crate is test infrastructure (`publish = false`), std only.
//!
//! ```
//! use cssf_netsim::{LinkConfig, Network};
//! use core::time::Duration;
//!
//! let mut net = Network::<u8>::new(7, LinkConfig::perfect());
//! net.send(Duration::ZERO, 1, 2, b"hello");
//! let t = net.next_arrival().unwrap();
//! let d = net.pop_due(t).unwrap();
//! assert_eq!((d.from, d.to, &d.data[..]), (1, 2, &b"hello"[..]));
//! ```
#![forbid(unsafe_code)]

pub mod logs;
pub mod peer;

use core::fmt;
use core::time::Duration;
use std::vec::Vec;

/// Properties of the simulated links (the same for every direction unless
/// overridden with [`Network::set_link`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Probability in `0.0..=1.0` that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_delay`
    /// extra, so later datagrams overtake it.
    pub reorder: f64,
    /// The extra delay of a reordered datagram (upper bound).
    pub reorder_delay: Duration,
    /// Shortest one-way delay.
    pub min_delay: Duration,
    /// Longest one-way delay (uniform between min and max).
    pub max_delay: Duration,
    /// Largest datagram the link carries; larger ones are dropped and counted.
    pub mtu: usize,
}

impl LinkConfig {
    /// No loss, no duplication, no reordering, 10 ms delay, 1500-byte MTU.
    pub fn perfect() -> Self {
        LinkConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
            mtu: 1500,
        }
    }

    /// A hostile link: the given loss rate, 10% duplication, 10% reordering by
    /// up to 300 ms, 5..50 ms delay, 1280-byte MTU (IPv6 minimum).
    pub fn lossy(loss: f64) -> Self {
        LinkConfig {
            loss,
            duplicate: 0.1,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(300),
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            mtu: 1280,
        }
    }

    /// The same link with another MTU.
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }
}

/// A deterministic, seeded RNG for tests (SplitMix64). It implements the
/// `rand_core` 0.6 `RngCore` and `CryptoRng` traits so it can stand in for the
/// caller's RNG in tests. **Never use it for real keys.**
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SimRng {
            state: seed ^ 0x5DEE_CE66_D1CE_4E5B,
        }
    }

    /// Next 64 random bits.
    pub fn next_u64_raw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64_raw() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A duration uniform in `lo..=hi`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_nanos() as u64;
        lo + Duration::from_nanos(self.next_u64_raw() % (span + 1))
    }
}

impl rand_core::RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64_raw() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.next_u64_raw()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64_raw().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for SimRng {}

/// A datagram in flight or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram<A> {
    /// Sender.
    pub from: A,
    /// Receiver.
    pub to: A,
    /// Bytes.
    pub data: Vec<u8>,
    /// Arrival time.
    pub at: Duration,
}

/// What the network did, for assertions and failure messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams lost on purpose.
    pub lost: u64,
    /// Extra copies injected.
    pub duplicated: u64,
    /// Datagrams held back so later ones overtake them.
    pub reordered: u64,
    /// Datagrams dropped for exceeding the MTU.
    pub oversize: u64,
    /// Datagrams delivered (copies included).
    pub delivered: u64,
    /// Bytes delivered.
    pub bytes_delivered: u64,
}

/// A seeded in-memory datagram network between addresses of type `A`.
#[derive(Debug)]
pub struct Network<A> {
    seed: u64,
    rng: SimRng,
    default_link: LinkConfig,
    links: Vec<(A, A, LinkConfig)>,
    in_flight: Vec<(Duration, u64, Datagram<A>)>,
    order: u64,
    /// Counters.
    pub stats: NetStats,
}

impl<A: Clone + PartialEq> Network<A> {
    /// A network whose every link has the given properties.
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        Network {
            seed,
            rng: SimRng::new(seed),
            default_link: link,
            links: Vec::new(),
            in_flight: Vec::new(),
            order: 0,
            stats: NetStats::default(),
        }
    }

    /// The seed this network was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Overrides the link from `from` to `to` (one direction).
    pub fn set_link(&mut self, from: A, to: A, link: LinkConfig) {
        self.links.retain(|(f, t, _)| !(f == &from && t == &to));
        self.links.push((from, to, link));
    }

    fn link(&self, from: &A, to: &A) -> LinkConfig {
        self.links
            .iter()
            .find(|(f, t, _)| f == from && t == to)
            .map(|(_, _, l)| *l)
            .unwrap_or(self.default_link)
    }

    /// Hands a datagram to the network at time `now`.
    pub fn send(&mut self, now: Duration, from: A, to: A, data: &[u8]) {
        self.stats.sent += 1;
        let link = self.link(&from, &to);
        if data.len() > link.mtu {
            self.stats.oversize += 1;
            return;
        }
        if self.rng.chance(link.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(link.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.rng.between(link.min_delay, link.max_delay);
            if self.rng.chance(link.reorder) {
                self.stats.reordered += 1;
                delay += self.rng.between(Duration::ZERO, link.reorder_delay);
            }
            self.order += 1;
            let at = now + delay;
            self.in_flight.push((
                at,
                self.order,
                Datagram {
                    from: from.clone(),
                    to: to.clone(),
                    data: data.to_vec(),
                    at,
                },
            ));
        }
    }

    /// Injects a datagram exactly as given (no loss, no delay): for attacks.
    pub fn inject(&mut self, at: Duration, from: A, to: A, data: &[u8]) {
        self.order += 1;
        self.in_flight.push((
            at,
            self.order,
            Datagram {
                from,
                to,
                data: data.to_vec(),
                at,
            },
        ));
    }

    /// The earliest arrival time of a datagram in flight.
    pub fn next_arrival(&self) -> Option<Duration> {
        self.in_flight.iter().map(|(t, _, _)| *t).min()
    }

    /// The earliest datagram due at or before `now`, if any.
    pub fn pop_due(&mut self, now: Duration) -> Option<Datagram<A>> {
        let idx = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, (t, _, _))| *t <= now)
            .min_by_key(|(_, (t, o, _))| (*t, *o))
            .map(|(i, _)| i)?;
        let (_, _, d) = self.in_flight.swap_remove(idx);
        self.stats.delivered += 1;
        self.stats.bytes_delivered += d.data.len() as u64;
        Some(d)
    }

    /// Number of datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// A sans-IO endpoint the simulator can drive: the shared CSSF API shape.
pub trait Node<A> {
    /// This node's address on the network.
    fn addr(&self) -> A;
    /// A datagram arrived.
    fn handle_datagram(&mut self, now: Duration, from: A, data: &mut [u8]);
    /// Time passed.
    fn handle_timeout(&mut self, now: Duration);
    /// Next datagram to send into `buf`: destination and length.
    fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(A, usize)>;
    /// Next deadline.
    fn poll_timeout(&self) -> Option<Duration>;
}

/// The simulator failed: no progress within the step budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Livelock {
    /// The network seed, to replay the run.
    pub seed: u64,
    /// Steps taken.
    pub steps: usize,
    /// Virtual time reached.
    pub now: Duration,
}

impl fmt::Display for Livelock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation did not finish within {} steps (virtual time {:?}); replay with seed {}",
            self.steps, self.now, self.seed
        )
    }
}

impl std::error::Error for Livelock {}

/// A virtual clock plus a [`Network`]: drives [`Node`]s step by step.
#[derive(Debug)]
pub struct Sim<A> {
    /// Current virtual time.
    pub now: Duration,
    /// The network.
    pub net: Network<A>,
    buf: Vec<u8>,
}

impl<A: Clone + PartialEq + fmt::Debug> Sim<A> {
    /// A simulator at time zero.
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        Sim {
            now: Duration::ZERO,
            net: Network::new(seed, link),
            buf: std::vec![0; 65536],
        }
    }

    /// The seed, for failure messages.
    pub fn seed(&self) -> u64 {
        self.net.seed()
    }

    /// Drains every node's outgoing datagrams into the network.
    pub fn flush(&mut self, nodes: &mut [&mut dyn Node<A>]) {
        for node in nodes.iter_mut() {
            let from = node.addr();
            // A node that queues without end is itself a bug; bound it.
            for _ in 0..100_000 {
                match node.poll_transmit(self.now, &mut self.buf) {
                    Some((to, len)) => {
                        let len = len.min(self.buf.len());
                        self.net.send(self.now, from.clone(), to, &self.buf[..len]);
                    }
                    None => break,
                }
            }
        }
    }

    /// One step: send what is queued, jump to the earliest arrival or
    /// deadline, deliver and fire what is due. Returns `false` when nothing
    /// is left to happen (no datagram in flight, no deadline).
    pub fn step(&mut self, nodes: &mut [&mut dyn Node<A>]) -> bool {
        self.flush(nodes);
        let next_timer = nodes.iter().filter_map(|n| n.poll_timeout()).min();
        let next = match (self.net.next_arrival(), next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return false,
        };
        if next > self.now {
            self.now = next;
        }
        while let Some(mut d) = self.net.pop_due(self.now) {
            if let Some(node) = nodes.iter_mut().find(|n| n.addr() == d.to) {
                node.handle_datagram(self.now, d.from.clone(), &mut d.data);
            }
        }
        for node in nodes.iter_mut() {
            if node.poll_timeout().is_some_and(|t| t <= self.now) {
                node.handle_timeout(self.now);
            }
        }
        self.flush(nodes);
        true
    }

    /// Steps until `done` says so; fails with the seed after `max_steps`
    /// steps, or when nothing is left to happen before `done`.
    pub fn drive_bounded(
        &mut self,
        nodes: &mut [&mut dyn Node<A>],
        max_steps: usize,
        mut done: impl FnMut(&mut [&mut dyn Node<A>]) -> bool,
    ) -> Result<usize, Livelock> {
        for steps in 0..max_steps {
            if done(nodes) {
                return Ok(steps);
            }
            if !self.step(nodes) {
                return if done(nodes) {
                    Ok(steps)
                } else {
                    Err(Livelock {
                        seed: self.seed(),
                        steps,
                        now: self.now,
                    })
                };
            }
        }
        Err(Livelock {
            seed: self.seed(),
            steps: max_steps,
            now: self.now,
        })
    }

    /// Steps until virtual time `until` (or until nothing is left to happen).
    pub fn run_until(&mut self, nodes: &mut [&mut dyn Node<A>], until: Duration) {
        loop {
            self.flush(nodes);
            let next_timer = nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let next = [self.net.next_arrival(), next_timer]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.step(nodes);
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes every datagram back; a client sends `n` numbered pings and
    /// retransmits unanswered ones every 100 ms.
    struct Echo(u8, Vec<(u8, Vec<u8>)>);
    impl Node<u8> for Echo {
        fn addr(&self) -> u8 {
            self.0
        }
        fn handle_datagram(&mut self, _: Duration, from: u8, data: &mut [u8]) {
            self.1.push((from, data.to_vec()));
        }
        fn handle_timeout(&mut self, _: Duration) {}
        fn poll_transmit(&mut self, _: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
            let (to, d) = self.1.pop()?;
            buf[..d.len()].copy_from_slice(&d);
            Some((to, d.len()))
        }
        fn poll_timeout(&self) -> Option<Duration> {
            None
        }
    }

    struct Pinger {
        pending: Vec<u8>,
        got: Vec<u8>,
        next_tx: Duration,
        due: bool,
    }
    impl Node<u8> for Pinger {
        fn addr(&self) -> u8 {
            1
        }
        fn handle_datagram(&mut self, _: Duration, _: u8, data: &mut [u8]) {
            let v = data[0];
            if let Some(i) = self.pending.iter().position(|p| *p == v) {
                self.pending.remove(i);
                self.got.push(v);
            }
        }
        fn handle_timeout(&mut self, now: Duration) {
            self.due = true;
            self.next_tx = now + Duration::from_millis(100);
        }
        fn poll_transmit(&mut self, _: Duration, buf: &mut [u8]) -> Option<(u8, usize)> {
            if self.due {
                self.due = false;
                let v = *self.pending.first()?;
                buf[0] = v;
                return Some((2, 1));
            }
            None
        }
        fn poll_timeout(&self) -> Option<Duration> {
            if self.pending.is_empty() {
                None
            } else {
                Some(self.next_tx)
            }
        }
    }

    #[test]
    fn lossy_link_delivers_with_retransmission() {
        for seed in 0..20 {
            let mut sim = Sim::new(seed, LinkConfig::lossy(0.3));
            let mut a = Pinger {
                pending: (0..10).collect(),
                got: Vec::new(),
                next_tx: Duration::ZERO,
                due: false,
            };
            let mut b = Echo(2, Vec::new());
            sim.drive_bounded(&mut [&mut a, &mut b], 10_000, |_| false)
                .ok();
            assert!(a.pending.is_empty(), "seed {seed}: {:?}", a.pending);
            assert_eq!(a.got.len(), 10);
        }
    }

    #[test]
    fn stats_count_loss_and_mtu() {
        let mut net = Network::new(1, LinkConfig::perfect().with_mtu(4));
        net.send(Duration::ZERO, 1u8, 2, b"12345");
        assert_eq!(net.stats.oversize, 1);
        assert_eq!(net.next_arrival(), None);
        let mut lossy = Network::new(
            1,
            LinkConfig {
                loss: 1.0,
                ..LinkConfig::perfect()
            },
        );
        lossy.send(Duration::ZERO, 1u8, 2, b"x");
        assert_eq!(lossy.stats.lost, 1);
    }

    #[test]
    fn delivery_is_in_arrival_order() {
        let mut net = Network::new(3, LinkConfig::lossy(0.0));
        for i in 0..50u8 {
            net.send(Duration::from_millis(u64::from(i)), 1u8, 2, &[i]);
        }
        let mut last = Duration::ZERO;
        let mut n = 0;
        while let Some(d) = net.pop_due(Duration::from_secs(10)) {
            assert!(d.at >= last);
            last = d.at;
            n += 1;
        }
        assert!(n >= 50);
    }

    #[test]
    fn sim_rng_is_deterministic() {
        let mut a = SimRng::new(9);
        let mut b = SimRng::new(9);
        assert_eq!(a.next_u64_raw(), b.next_u64_raw());
        assert_ne!(SimRng::new(1).next_u64_raw(), SimRng::new(2).next_u64_raw());
    }
}
