//! Review: a cookie-verified ClientHello the server cannot take (no suite
//! in common) still makes room under "newest wins" before it fails, and its
//! failure never counts against its host.
#![cfg(all(feature = "server", feature = "chacha20"))]
#![allow(
    dead_code,
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod at;
mod slots;

use slots::*;

/// A client offering only a suite the server does not have: its
/// cookie-bearing ClientHello passes the cookie check and then fails.
fn unshared_client(seed: u64, now: Duration) -> Dtls {
    let mut c = config();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithChaCha20Poly1305Sha256]).unwrap();
    Client::new(c, ID, KEY, server_addr(), SimRng::new(seed), now).unwrap()
}

/// The attacker's datagram: a cookie-bearing ClientHello from `at` that
/// the server cannot take.
fn failing_hello(s: &mut Server, at: SocketAddr, now: Duration) -> Vec<u8> {
    let mut m = unshared_client(99, now);
    feed_s(s, now, at, &out_c(&mut m, now));
    let r = out_s(s, now);
    feed_c(&mut m, now, at, &r);
    let ch2 = out_c(&mut m, now);
    assert_eq!(ch2.len(), 1, "the cookie-bearing ClientHello");
    ch2.into_iter().next().unwrap()
}

/// Starts an honest client at `at`: the cookie exchange and its
/// cookie-bearing ClientHello; the server's flight is delivered.
fn start(s: &mut Server, seed: u64, at: SocketAddr, now: Duration) -> Dtls {
    let mut c = client(seed, now);
    for _ in 0..2 {
        feed_s(s, now, at, &out_c(&mut c, now));
        let r = out_s(s, now);
        feed_c(&mut c, now, at, &r);
    }
    c
}

fn evicted(s: &mut Server) -> usize {
    let mut n = 0;
    while let Some(e) = s.poll_event() {
        if format!("{e:?}").contains("Evicted") {
            n += 1;
        }
    }
    n
}

/// One attacker address, one cookie: each copy of its failing
/// ClientHello evicts a half-open handshake in progress (not stalled) of
/// another host, again and again within one retransmission timeout.
/// A host whose own handshakes ended must not take another's slot within
/// one retransmission timeout (`recent_ends`); this one never gets a
/// handshake, so nothing is charged to it.
#[test]
fn one_address_with_failing_hellos_evicts_every_half_open_handshake() {
    let mut s = server();
    let attacker = addr("10.6.6.6:4000");
    let mut now = Duration::from_millis(10);
    let bad = failing_hello(&mut s, attacker, now);
    let mut total = 0;
    let mut victims = Vec::new();
    for k in 0..6u8 {
        // Two honest clients keep the handshake table full.
        while s.handshakes() < 2 {
            let at = SocketAddr::from(([10, 0, 1, victims.len() as u8 + 1], 5000));
            let c = start(&mut s, 10 + victims.len() as u64, at, now);
            victims.push((at, c));
        }
        while s.poll_event().is_some() {}
        now += Duration::from_millis(20);
        let _ = s.handle_datagram(now, attacker, &mut bad.clone());
        let n = evicted(&mut s);
        std::println!(
            "copy {k} at {now:?}: evicted {n}, handshakes now {}",
            s.handshakes()
        );
        total += n;
    }
    std::println!("{total} half-open handshakes evicted within {now:?} by one address");
    assert!(
        total <= 1,
        "one address evicted {total} handshakes in progress within {now:?} (< 1 s retransmission timeout)"
    );
}

/// Control, the same host sending ClientHellos the server takes (a new
/// port each time): its first takes a slot, the rest are refused (the
/// host holds its share), so it evicts one handshake.
#[test]
fn control_one_address_with_a_genuine_hello_evicts_at_most_one() {
    let mut s = server();
    let mut now = Duration::from_millis(10);
    let mut victims = Vec::new();
    while s.handshakes() < 2 {
        let at = SocketAddr::from(([10, 0, 1, victims.len() as u8 + 1], 5000));
        let c = start(&mut s, 10 + victims.len() as u64, at, now);
        victims.push((at, c));
    }
    while s.poll_event().is_some() {}
    let mut none = None;
    let mut total = 0;
    for k in 0..6u64 {
        now += Duration::from_millis(20);
        // The same host, a new port each time.
        let a = SocketAddr::from(([10, 6, 6, 6], 4000 + k as u16));
        let ch = cookie_hello(&mut s, &mut none, a, 200 + k, now);
        let _ = s.handle_datagram(now, a, &mut ch.clone());
        total += evicted(&mut s);
        while s.handshakes() < 2 {
            let at = SocketAddr::from(([10, 0, 1, victims.len() as u8 + 1], 5000));
            let c = start(&mut s, 10 + victims.len() as u64, at, now);
            victims.push((at, c));
        }
        while s.poll_event().is_some() {}
    }
    std::println!("control: {total} evicted");
    assert!(total <= 1, "{total}");
}

/// A client that waits for the server's timer once the ServerHello is in
/// (as this crate's client did before, and as a client may: RFC 6347
/// §4.2.4 has the server retransmit too): the server's flight spans two
/// datagrams (a small MTU) and its second is lost twice (the first sending's
/// and the first resend's). The server's timer
/// resends are held back (three times the ClientHello's bytes), so the
/// client never gets the ServerHelloDone. Emulated by never running the
/// client's timer.
#[test]
fn a_client_waiting_on_the_servers_timer_gets_the_rest_of_a_split_flight() {
    let mut cfg = config();
    cfg.mtu = 128;
    let mut s: Server = Endpoint::new(
        cfg.clone(),
        StaticPsk::new(&KEYS),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let at = addr("10.0.0.7:5000");
    let mut c = Client::new(cfg, ID, KEY, server_addr(), SimRng::new(7), Duration::ZERO).unwrap();
    let mut now = Duration::from_millis(10);
    // Cookie exchange.
    feed_s(&mut s, now, at, &out_c(&mut c, now));
    let hvr = out_s(&mut s, now);
    feed_c(&mut c, now, at, &hvr);
    feed_s(&mut s, now, at, &out_c(&mut c, now));
    let f = out_s(&mut s, now);
    std::println!(
        "flight: {} datagrams {:?}",
        f.len(),
        f.iter().map(|d| d.1.len()).collect::<Vec<_>>()
    );
    assert!(f.len() >= 2, "the flight spans datagrams");
    // Only the first datagram arrives.
    feed_c(&mut c, now, at, &f[..1]);
    let mut sent_after = 0;
    // The flight's second datagram is lost once more (the first resend's).
    let mut lose = 1;
    while now < Duration::from_secs(40) {
        now += TICK;
        s.handle_timeout(now);
        let r = out_s(&mut s, now);
        sent_after += r.len();
        if lose > 0 && r.len() >= 2 {
            lose -= 1;
            feed_c(&mut c, now, at, &r[..1]);
        } else {
            feed_c(&mut c, now, at, &r);
        }
        feed_s(&mut s, now, at, &out_c(&mut c, now));
        let r = out_s(&mut s, now);
        feed_c(&mut c, now, at, &r);
        while s.poll_event().is_some() {}
        if c.is_connected() {
            break;
        }
    }
    std::println!(
        "connected {} after {now:?}; server datagrams after the first flight: {sent_after}; stats {:?}",
        c.is_connected(),
        s.stats()
    );
    assert!(c.is_connected(), "never connected");
}

/// Honest clients (a new host every `gap`, 100 ms each way) complete their
/// handshakes against a server with two handshake slots; with `attack`, one
/// attacker address sends its failing cookie-bearing ClientHello (one
/// cookie, the same bytes) every 10 ms. How many of the honest clients
/// connected within 20 s.
fn honest_completions(attack: bool, gap: Duration) -> (usize, usize) {
    struct Honest {
        c: Dtls,
        at: SocketAddr,
        done: bool,
    }
    // Session slots for all of them; two handshake slots.
    let mut s: Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 256> = Endpoint::new(
        config(),
        StaticPsk::new(&KEYS),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let attacker = addr("10.6.6.6:4000");
    let big_out = |s: &mut Endpoint<SocketAddr, StaticPsk<'static>, SimRng, 256>, now: Duration| {
        let mut v = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
            v.push((t.to, buf[..t.len].to_vec()));
        }
        v
    };
    let bad = {
        let mut m = unshared_client(99, Duration::ZERO);
        for d in out_c(&mut m, Duration::ZERO) {
            let _ = s.handle_datagram(Duration::ZERO, attacker, &mut d.clone());
        }
        let r = big_out(&mut s, Duration::ZERO);
        feed_c(&mut m, Duration::ZERO, attacker, &r);
        out_c(&mut m, Duration::ZERO).into_iter().next().unwrap()
    };
    let delay = Duration::from_millis(100);
    // (deliver at, to the server?, peer address, bytes)
    let mut wire: Vec<(Duration, bool, SocketAddr, Vec<u8>)> = Vec::new();
    let mut clients: Vec<Honest> = Vec::new();
    let tick = Duration::from_millis(5);
    let mut now = Duration::ZERO;
    let mut next_client = Duration::ZERO;
    let mut next_attack = Duration::ZERO;
    let end = Duration::from_secs(20);
    while now < end {
        if now >= next_client && now + Duration::from_secs(5) < end {
            let k = clients.len() as u32;
            let at = SocketAddr::from(([10, 2, (k / 200) as u8, (k % 200 + 1) as u8], 5000));
            clients.push(Honest {
                c: client(1000 + u64::from(k), now),
                at,
                done: false,
            });
            next_client += gap;
        }
        if attack && now >= next_attack {
            let _ = s.handle_datagram(now, attacker, &mut bad.clone());
            next_attack += Duration::from_millis(10);
        }
        // Deliver what is due.
        let (due, rest): (Vec<_>, Vec<_>) = wire.drain(..).partition(|w| w.0 <= now);
        wire = rest;
        for (_, to_server, peer, d) in due {
            if to_server {
                let _ = s.handle_datagram(now, peer, &mut d.clone());
            } else if let Some(h) = clients.iter_mut().find(|h| h.at == peer) {
                let _ = h.c.handle_datagram(now, server_addr(), &mut d.clone());
            }
        }
        for h in clients.iter_mut() {
            h.c.handle_timeout(now);
            for d in out_c(&mut h.c, now) {
                wire.push((now + delay, true, h.at, d));
            }
            if h.c.is_connected() {
                h.done = true;
            }
        }
        s.handle_timeout(now);
        for (to, d) in big_out(&mut s, now) {
            if to != attacker {
                wire.push((now + delay, false, to, d));
            }
        }
        while s.poll_event().is_some() {}
        now += tick;
    }
    (clients.iter().filter(|h| h.done).count(), clients.len())
}

#[test]
fn honest_clients_complete_under_one_address_sending_failing_hellos() {
    let mut worst = (usize::MAX, 0);
    for ms in [300u64, 150, 100] {
        let gap = Duration::from_millis(ms);
        let (calm, n) = honest_completions(false, gap);
        let (attacked, _) = honest_completions(true, gap);
        std::println!(
            "a new client every {ms} ms: {calm}/{n} connected without the attacker, {attacked}/{n} with it"
        );
        if attacked * 2 < calm {
            worst = worst.min((attacked, calm));
        }
    }
    assert!(
        worst.0 == usize::MAX,
        "one address let only {} of {} honest clients connect",
        worst.0,
        worst.1
    );
}

/// No attacker: honest clients arrive faster than two handshake slots
/// clear (a new host every 100 ms or less, 200 ms round trips), as after a
/// server restart. Giving up slots in arrival order (refusing the newest
/// until one is free or stalled) connected 130 of the 150 within the run,
/// (161 of 188 every 80 ms, 162 of 250 every 60 ms); newest wins must not
/// connect far fewer.
#[test]
fn honest_overload_without_an_attacker_connects_as_many_as_first_come() {
    let mut at_100 = 0;
    for ms in [100u64, 80, 60] {
        let (calm, n) = honest_completions(false, Duration::from_millis(ms));
        std::println!("a new client every {ms} ms: {calm}/{n} connected");
        if ms == 100 {
            at_100 = calm;
        }
    }
    assert!(
        at_100 >= 120,
        "{at_100}/150 connected (130 giving up slots in arrival order)"
    );
}

/// A victim's cookie-bearing ClientHello, captured on the path, replayed
/// from the victim's address (within the cookie lifetime) after the
/// victim's handshake ended: once after its session closed, once after
/// the victim gave its half-open handshake up (a fatal alert). Each replay used to open a new
/// handshake and send its flight (and timer resends) to the victim, and
/// charge the new handshake's failure to the victim's host. Now: no new
/// handshake, nothing sent to the victim, the replays counted.
#[test]
fn a_captured_client_hello_replayed_after_its_handshake_ended_opens_nothing() {
    for half_open in [false, true] {
        let mut s = server();
        let victim = addr("10.0.0.9:7000");
        let mut now = Duration::from_millis(10);
        let mut c = client(5, now);
        // The cookie exchange; the ClientHello with the cookie is captured.
        feed_s(&mut s, now, victim, &out_c(&mut c, now));
        let hvr = out_s(&mut s, now);
        feed_c(&mut c, now, victim, &hvr);
        let ch2 = out_c(&mut c, now);
        assert_eq!(ch2.len(), 1);
        let captured = ch2[0].clone();
        feed_s(&mut s, now, victim, &ch2);
        if half_open {
            // The victim gives up its handshake (a fatal alert).
            let _ = out_s(&mut s, now);
            let mut alert = std::vec![21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0x03, 0xE8, 0, 2, 2, 40];
            let _ = s.handle_datagram(now, victim, &mut alert);
            let _ = out_s(&mut s, now);
            assert_eq!(s.handshakes(), 0, "the victim's handshake ended");
        } else {
            for _ in 0..6 {
                let r = out_s(&mut s, now);
                feed_c(&mut c, now, victim, &r);
                feed_s(&mut s, now, victim, &out_c(&mut c, now));
            }
            assert!(c.is_connected() && s.connected_at(&victim));
            let h = s.session_handle(&victim).unwrap();
            s.close(now, h).unwrap();
            let _ = out_s(&mut s, now);
        }
        while s.poll_event().is_some() {}
        let _ = out_s(&mut s, now);
        assert_eq!(s.sessions(), 0, "the victim's session ended");
        // The attacker replays the captured ClientHello, four times, 2 s
        // apart (all within the 20 s cookie lifetime).
        let mut to_victim = 0;
        let end = now + Duration::from_secs(12);
        let mut next = now;
        let mut copies = 0;
        while now < end {
            if now >= next && copies < 4 {
                feed_s(&mut s, now, victim, std::slice::from_ref(&captured));
                copies += 1;
                next += Duration::from_secs(2);
            }
            for (to, d) in out_s(&mut s, now) {
                if to == victim {
                    to_victim += d.len();
                }
            }
            while s.poll_event().is_some() {}
            now += Duration::from_millis(50);
            s.handle_timeout(now);
            assert_eq!(
                s.handshakes(),
                0,
                "half_open {half_open}: a replay opened a handshake at {now:?}"
            );
        }
        std::println!(
            "half_open {half_open}: {to_victim} bytes to the victim, {:?}",
            s.stats()
        );
        assert_eq!(
            to_victim, 0,
            "half_open {half_open}: the replays drew {to_victim} bytes to the victim"
        );
        assert_eq!(s.stats().client_hello_replays, 4);
    }
}

/// One host opening and ending handshakes fast (a new port and cookie
/// exchange each, then a fatal alert), 60 within half a second, fills the
/// ClientHello replay cache with its own entries: it forgets its own, and
/// an honest client of another host is not refused a cookie for it.
#[test]
fn one_host_filling_the_replay_cache_does_not_refuse_others_cookies() {
    let mut s = server();
    let mut none = None;
    let mut now = Duration::from_millis(10);
    for k in 0..60u16 {
        let a = SocketAddr::from(([10, 6, 6, 6], 4000 + k));
        let ch = cookie_hello(&mut s, &mut none, a, 300 + u64::from(k), now);
        feed_s(&mut s, now, a, &[ch]);
        let mut alert = std::vec![21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0x03, 0xE8, 0, 2, 2, 40];
        let _ = s.handle_datagram(now, a, &mut alert);
        let _ = out_s(&mut s, now);
        while s.poll_event().is_some() {}
        now += Duration::from_millis(8);
    }
    let at = addr("10.0.0.7:5000");
    let mut c = client(7, now);
    for _ in 0..6 {
        feed_s(&mut s, now, at, &out_c(&mut c, now));
        let r = out_s(&mut s, now);
        feed_c(&mut c, now, at, &r);
        while s.poll_event().is_some() {}
    }
    assert!(c.is_connected() && s.connected_at(&at), "{:?}", s.stats());
}
