//! Bounded resources under attack (property test): random mixes of plain
//! peers with spoofable addresses (many of them, each sending whatever it
//! likes: requests, observations, uploads, 4.04 bait, tokenless
//! "duplicates") and two verified peers (DTLS sessions, say) that stay
//! within their quotas. Checked after every step: no peer holds more of any
//! table than its quota; and every request of a verified peer that is
//! within its quota is served (never 5.03), reaches the application
//! exactly once, and a retransmission of it gets the same answer again.
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::time::Duration;

use cssf_coap::endpoint::{Config, Endpoint, Event, Methods, Resource, Response};
use cssf_coap::{Block, Code, Message, MessageBuilder, MessageType, OptionNumber};
use cssf_netsim::SimRng;
use proptest::prelude::*;

static RESOURCES: [Resource; 3] = [
    Resource::new("data", Methods::GET.union(Methods::POST)),
    Resource::new("obs", Methods::GET).observable(),
    Resource::new("up", Methods::PUT),
];

/// N = 8 (quota 4), D = 32 (quota 16): D is at least the two verified
/// peers times their quota, so they are always served.
type Ep = Endpoint<u8, SimRng, 8, 32, 256>;

const LEGIT: [u8; 2] = [1, 2];

#[derive(Debug, Clone)]
enum Op {
    Spoof {
        peer: u8,
        kind: u8,
        mid: u16,
        token: u8,
    },
    Legit {
        who: usize,
        kind: u8,
    },
    Advance {
        secs: u16,
    },
    Notify,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (16u8..=255, 0u8..6, any::<u16>(), any::<u8>())
            .prop_map(|(peer, kind, mid, token)| Op::Spoof { peer, kind, mid, token }),
        3 => (0usize..2, 0u8..4).prop_map(|(who, kind)| Op::Legit { who, kind }),
        1 => (0u16..100).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Notify),
    ]
}

/// A request: `kind` 0 GET /data, 1 GET /obs Observe 0, 2 PUT /up first
/// Block1 block, 3 GET /nope, 4 NON GET /data.
fn request(kind: u8, mid: u16, token: &[u8]) -> Vec<u8> {
    let ty = if kind == 4 {
        MessageType::Non
    } else {
        MessageType::Con
    };
    let code = if kind == 2 { Code::PUT } else { Code::GET };
    let mut b = MessageBuilder::<6>::new(ty, code, mid);
    b.token(token).unwrap();
    match kind {
        1 => {
            b.uri_path("obs").unwrap();
            b.observe(0).unwrap();
        }
        2 => {
            b.uri_path("up").unwrap();
            b.block1(Block::new(0, true, 0).unwrap()).unwrap();
            b.add_option(OptionNumber::REQUEST_TAG, token).unwrap();
            b.payload(&[0x42; 16]);
        }
        3 => {
            b.uri_path("nope").unwrap();
        }
        _ => {
            b.uri_path("data").unwrap();
        }
    }
    let mut out = [0u8; 96];
    let n = b.emit(&mut out).unwrap();
    out[..n].to_vec()
}

struct World {
    ep: Ep,
    now: Duration,
    /// Handler runs per (peer, message ID, token).
    runs: HashMap<(u8, u16, Vec<u8>), u32>,
    /// Per verified peer: next message ID and token, and its last request
    /// with the answer it got and when.
    next: [u16; 2],
    last: [Option<Sent>; 2],
}

/// A request, the answer it got, and when.
type Sent = (Vec<u8>, Vec<u8>, Duration);

impl World {
    fn new(seed: u64) -> Self {
        let mut ep = Ep::new(Config::default(), SimRng::new(seed), &RESOURCES);
        ep.set_verified_peers(|p| LEGIT.contains(p));
        World {
            ep,
            now: Duration::ZERO,
            runs: HashMap::new(),
            next: [0x100, 0x100],
            last: [None, None],
        }
    }

    /// Feeds `d` from `peer`, answers every request, returns what went to
    /// `peer`.
    fn feed(&mut self, peer: u8, d: &[u8]) -> Vec<Vec<u8>> {
        let mut d = d.to_vec();
        self.ep.handle_datagram(self.now, peer, &mut d).unwrap();
        while let Some(ev) = self.ep.poll_event() {
            if let Event::Request {
                id, peer, request, ..
            } = ev
            {
                let m = request.message().unwrap();
                let key = (peer, m.message_id(), m.token().to_vec());
                *self.runs.entry(key).or_default() += 1;
                let body = format!("{peer}:{}", m.message_id());
                let code = if m.code() == Code::PUT {
                    Code::CHANGED
                } else {
                    Code::CONTENT
                };
                self.ep
                    .respond(self.now, id, &Response::new(code).payload(body.as_bytes()))
                    .unwrap();
            }
        }
        self.drain(peer)
    }

    fn drain(&mut self, to: u8) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Some(t) = self.ep.poll_transmit(self.now, &mut buf).unwrap() {
            if t.to == to {
                out.push(buf[..t.len].to_vec());
            }
        }
        out
    }

    fn check_quotas(&self) {
        let q = self.ep.peer_quota();
        for p in 0..=255u8 {
            let u = self.ep.peer_usage(&p);
            assert!(u.within(&q), "peer {p} holds {u:?}, quota {q:?}");
        }
    }

    fn legit(&mut self, who: usize, kind: u8) {
        let peer = LEGIT[who];
        let q = self.ep.peer_quota();
        let before = self.ep.peer_usage(&peer);
        if kind == 3 {
            // A retransmission of its last request, while retransmissions
            // can come (MAX_TRANSMIT_SPAN): the same answer, no new run.
            let Some((req, answer, at)) = self.last[who].clone() else {
                return;
            };
            if self.now >= at + Config::default().max_transmit_span() {
                return;
            }
            let runs: u32 = self.runs.values().sum();
            let out = self.feed(peer, &req);
            assert_eq!(out, vec![answer], "retransmission not answered alike");
            assert_eq!(self.runs.values().sum::<u32>(), runs, "handler ran twice");
            return;
        }
        let within = before.message_ids < q.message_ids
            && before.pending < q.pending
            && (kind != 1 || before.observers < q.observers)
            && (kind != 2 || before.uploads < q.uploads);
        let mid = self.next[who];
        self.next[who] = mid.wrapping_add(1);
        let token = mid.to_be_bytes();
        let req = request(kind, mid, &token);
        let out = self.feed(peer, &req);
        if !within {
            return;
        }
        assert_eq!(out.len(), 1, "verified peer {peer} not answered ({kind})");
        let m = Message::parse(&out[0]).unwrap();
        let want = match kind {
            0 => Code::CONTENT,
            1 => Code::CONTENT,
            2 => Code::CONTINUE,
            _ => unreachable!(),
        };
        assert_eq!(m.code(), want, "verified peer {peer}, request kind {kind}");
        if kind == 1 {
            assert!(m.observe().unwrap().is_some(), "observation refused");
        }
        let key = (peer, mid, token.to_vec());
        assert_eq!(self.runs.get(&key), Some(&1));
        self.last[who] = Some((req, out[0].clone(), self.now));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn verified_peers_within_quota_are_served_whatever_spoofed_peers_send(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let mut w = World::new(seed);
        for op in ops {
            match op {
                Op::Spoof { peer, kind, mid, token } => {
                    let tok = [token];
                    let d = if kind == 5 {
                        let m = mid.to_be_bytes();
                        vec![0x40, 1, m[0], m[1]]
                    } else {
                        request(kind, mid, &tok)
                    };
                    let sent = d.len();
                    let out = w.feed(peer, &d);
                    // Never more than three times what a spoofed source sent.
                    let back: usize = out.iter().map(Vec::len).sum();
                    prop_assert!(back <= 3 * sent, "{back} bytes to {peer} for {sent}");
                }
                Op::Legit { who, kind } => w.legit(who, kind),
                Op::Advance { secs } => {
                    w.now += Duration::from_secs(u64::from(secs));
                    w.ep.handle_timeout(w.now);
                    w.drain(0);
                }
                Op::Notify => {
                    let body = [7u8; 150];
                    w.ep.notify(w.now, "obs", &Response::new(Code::CONTENT).payload(&body)).unwrap();
                    w.drain(0);
                }
            }
            w.check_quotas();
        }
    }
}
