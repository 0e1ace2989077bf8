//! `Endpoint::poll_transmit` looks only at the slots marked as having
//! something to send (an alert, a path challenge, an end), not at every
//! slot: many sessions, output queued on random ones by each path that
//! queues it (application records, a local close's close_notify, the
//! answer to a peer's close_notify, the idle timeout's close_notify), and
//! every queued datagram must come out exactly once, to its own peer, and
//! nothing once the endpoint is drained. A path that forgot to mark its
//! slot would leave its alert unsent (and trips the endpoint's own check
//! in test builds).
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;
use std::collections::HashMap;

use cssf_dtls::{
    Client, CloseReason, Config, Endpoint, Error, Event, RejectAll, SessionHandle, StaticPsk,
};
use cssf_netsim::SimRng;
use proptest::prelude::*;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK-secretPSK";
static KEYS: [(&[u8], &[u8]); 1] = [(ID, KEY)];
/// The server's address; client `k` is at `k + 1`.
const SERVER: u16 = 0;
const SESSIONS: usize = 24;

type Server = Endpoint<u16, StaticPsk<'static>, SimRng, 32, RejectAll, 4, 4>;

fn config() -> Config {
    Config::default()
}

/// What a test does to one session.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The server sends a record.
    Send,
    /// The server closes the session (close_notify).
    ServerClose,
    /// The client closes it (the server answers with close_notify).
    ClientClose,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => Just(Op::Send), 1 => Just(Op::ServerClose), 1 => Just(Op::ClientClose)]
}

struct World {
    server: Server,
    clients: Vec<Client<u16, SimRng>>,
    handles: Vec<SessionHandle>,
    now: Duration,
}

impl World {
    fn new(seed: u64) -> World {
        let now = Duration::from_secs(1);
        let server =
            Endpoint::new(config(), StaticPsk::new(&KEYS), SimRng::new(seed), now).unwrap();
        let mut w = World {
            server,
            clients: Vec::new(),
            handles: Vec::new(),
            now,
        };
        for k in 0..SESSIONS {
            let c = Client::new(
                config(),
                ID,
                KEY,
                SERVER,
                SimRng::new(seed ^ (k as u64 + 1)),
                now,
            )
            .unwrap();
            w.clients.push(c);
            let mut buf = [0u8; 1500];
            for _ in 0..8 {
                while let Some(t) = w.clients[k].poll_transmit(now, &mut buf).unwrap() {
                    w.server
                        .handle_datagram(now, k as u16 + 1, &mut buf[..t.len])
                        .unwrap();
                }
                while let Some(t) = w.server.poll_transmit(now, &mut buf).unwrap() {
                    let to = usize::from(t.to) - 1;
                    w.clients[to]
                        .handle_datagram(now, SERVER, &mut buf[..t.len])
                        .unwrap();
                }
            }
            assert!(w.clients[k].is_connected(), "client {k} did not connect");
            let handle = loop {
                match w.server.poll_event() {
                    Some(Event::Connected { handle, peer, .. }) => {
                        assert_eq!(usize::from(peer), k + 1);
                        break handle;
                    }
                    Some(_) => continue,
                    None => panic!("the server did not report session {k}"),
                }
            };
            w.handles.push(handle);
            while w.clients[k].poll_event().is_some() {}
        }
        w
    }

    /// Takes every datagram the server has for its clients: how many went
    /// to each. The endpoint then stays dry.
    fn drain(&mut self, got: &mut [Vec<u32>], closed: &mut [usize]) -> Vec<usize> {
        let mut sent = vec![0; SESSIONS];
        let mut buf = [0u8; 1500];
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf).unwrap() {
            let k = usize::from(t.to) - 1;
            sent[k] += 1;
            let c = &mut self.clients[k];
            let _ = c.handle_datagram(self.now, SERVER, &mut buf[..t.len]);
            let mut rec = [0u8; 64];
            while let Ok(Some(n)) = c.recv(&mut rec) {
                assert_eq!(n, 4);
                got[k].push(u32::from_be_bytes(rec[..4].try_into().unwrap()));
            }
            while let Some(ev) = c.poll_event() {
                if let Event::Closed { reason, .. } = ev {
                    assert_eq!(reason, CloseReason::PeerClosed, "client {k}");
                    closed[k] += 1;
                }
            }
            assert!(sent[k] <= 64, "client {k}: the server keeps sending");
        }
        assert!(self
            .server
            .poll_transmit(self.now, &mut buf)
            .unwrap()
            .is_none());
        assert!(self
            .server
            .poll_transmit(self.now, &mut buf)
            .unwrap()
            .is_none());
        sent
    }

    /// The server's `Closed` events, by client.
    fn closed_events(&mut self) -> HashMap<usize, CloseReason> {
        let mut out = HashMap::new();
        while let Some(ev) = self.server.poll_event() {
            if let Event::Closed { handle, reason, .. } = ev {
                let k = self.handles.iter().position(|h| *h == handle).unwrap();
                assert!(out.insert(k, reason).is_none(), "session {k} closed twice");
            }
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn every_queued_datagram_comes_out_once_and_nothing_when_dry(
        seed in any::<u64>(),
        ops in prop::collection::vec((0..SESSIONS, op()), 1..80),
    ) {
        let mut w = World::new(seed);
        let now = w.now;
        let mut buf = [0u8; 1500];
        let mut got = vec![Vec::new(); SESSIONS];
        let mut closed = vec![0; SESSIONS];
        // Nothing is queued once the sessions are up.
        prop_assert!(w.server.poll_transmit(now, &mut buf).unwrap().is_none());

        let mut expect: Vec<Vec<u32>> = vec![Vec::new(); SESSIONS];
        let mut server_closed = [false; SESSIONS];
        let mut client_closed = [false; SESSIONS];
        let mut next = 0u32;
        let mut sent = [0; SESSIONS];
        let mut before_close = [0; SESSIONS];
        for (k, o) in ops {
            let open = !server_closed[k] && !client_closed[k];
            match o {
                Op::Send => {
                    let mut r = w.server.send(now, w.handles[k], &next.to_be_bytes());
                    if r == Err(Error::Full) {
                        // The shared send queue is full: out with it first.
                        for (a, b) in sent.iter_mut().zip(w.drain(&mut got, &mut closed)) {
                            *a += b;
                        }
                        r = w.server.send(now, w.handles[k], &next.to_be_bytes());
                    }
                    if open {
                        prop_assert!(r.is_ok(), "send on open session {}: {:?}", k, r);
                        expect[k].push(next);
                    } else {
                        prop_assert!(r.is_err());
                    }
                    next += 1;
                }
                Op::ServerClose => {
                    if open {
                        w.server.close(now, w.handles[k]).unwrap();
                        server_closed[k] = true;
                    }
                }
                Op::ClientClose => {
                    if open {
                        let c = &mut w.clients[k];
                        c.close(now);
                        while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
                            let _ = w.server.handle_datagram(now, k as u16 + 1, &mut buf[..t.len]);
                        }
                        while c.poll_event().is_some() {}
                        client_closed[k] = true;
                        before_close[k] = sent[k];
                        // Records queued before the peer closed are not sent.
                        expect[k].clear();
                    }
                }
            }
        }
        for (a, b) in sent.iter_mut().zip(w.drain(&mut got, &mut closed)) {
            *a += b;
        }
        let ends = w.closed_events();
        for k in 0..SESSIONS {
            if client_closed[k] {
                // The answer to its close_notify, once.
                prop_assert_eq!(sent[k], before_close[k] + 1, "client {} closed", k);
                prop_assert_eq!(ends.get(&k), Some(&CloseReason::PeerClosed));
                continue;
            }
            prop_assert_eq!(&got[k], &expect[k], "client {}: its records, once each, in order", k);
            if server_closed[k] {
                prop_assert_eq!(closed[k], 1, "client {}: one close_notify", k);
                prop_assert_eq!(ends.get(&k), Some(&CloseReason::LocalClose));
            } else {
                prop_assert_eq!(closed[k], 0);
                prop_assert!(w.clients[k].is_connected());
                prop_assert!(!ends.contains_key(&k));
                prop_assert!(sent[k] <= expect[k].len());
                prop_assert!(expect[k].is_empty() || sent[k] >= 1);
            }
        }

        // The idle timeout closes every session still open, each with one
        // close_notify.
        w.now = now + config().idle_timeout;
        w.server.handle_timeout(w.now);
        let sent = w.drain(&mut got, &mut closed);
        let ends = w.closed_events();
        for k in 0..SESSIONS {
            let open = !server_closed[k] && !client_closed[k];
            prop_assert_eq!(sent[k], usize::from(open), "client {} after the idle timeout", k);
            if open {
                prop_assert_eq!(closed[k], 1);
                prop_assert_eq!(ends.get(&k), Some(&CloseReason::IdleTimeout));
            }
        }
        prop_assert_eq!(w.server.sessions(), 0);
    }
}
