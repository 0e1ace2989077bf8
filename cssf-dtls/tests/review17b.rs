//! Review: the ClientHello replay cache and newest wins after a minimum
//! hold, seen from an attacker: who can make the cache forget, raise the
//! cookie floor, or keep a slot past its hold; and a client whose
//! handshake was evicted.
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

/// A cookie-bearing ClientHello from `at` offering only a suite the server
/// does not have (it fails at once, after the cookie check); `seed` draws
/// its client random.
fn failing_hello_seeded(s: &mut Server, at: SocketAddr, seed: u64, now: Duration) -> Vec<u8> {
    let mut c = config();
    c.suites = heapless::Vec::from_slice(&[CipherSuite::PskWithChaCha20Poly1305Sha256]).unwrap();
    let mut m = Client::new(c, ID, KEY, server_addr(), SimRng::new(seed), now).unwrap();
    feed_s(s, now, at, &out_c(&mut m, now));
    let r = out_s(s, now);
    feed_c(&mut m, now, at, &r);
    let ch2 = out_c(&mut m, now);
    assert_eq!(ch2.len(), 1, "the cookie-bearing ClientHello");
    ch2.into_iter().next().unwrap()
}

fn alert() -> Vec<u8> {
    std::vec![21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0x03, 0xE8, 0, 2, 2, 40]
}

/// Is this datagram a HelloVerifyRequest?
fn is_hvr(d: &[u8]) -> bool {
    d.len() > 13 && d[0] == 22 && d[13] == 3
}

/// An honest client at `at` tries to connect while, every `step`, the
/// attacker sends one failing cookie-bearing ClientHello from the next of
/// `attackers` (each its own cookie exchange, a fresh random). The honest
/// client's datagrams take `owd` each way. Returns (connected, HVRs the
/// honest client got, stats).
fn floor_run(attackers: &[SocketAddr], step: Duration, owd: Duration) -> (bool, usize, String) {
    let mut s = server();
    let at = addr("192.0.2.7:5000");
    let mut now = Duration::from_millis(10);
    // The flood runs alone for half a second before the honest client starts.
    let warm = Duration::from_millis(500);
    let mut k = 0u64;
    while now < warm && !attackers.is_empty() {
        let a = attackers[(k as usize) % attackers.len()];
        let ch = failing_hello_seeded(&mut s, a, 1000 + k, now);
        feed_s(&mut s, now, a, &[ch]);
        let _ = out_s(&mut s, now);
        k += 1;
        now += step;
    }
    let _ = out_s(&mut s, now);
    while s.poll_event().is_some() {}
    now = now.max(warm);
    let mut c = client(7, now);
    let mut to_server: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut to_client: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut hvrs = 0;
    let end = now + Duration::from_secs(5);
    while now < end && !c.is_connected() {
        // Attacker.
        if !attackers.is_empty() {
            let a = attackers[(k as usize) % attackers.len()];
            let ch = failing_hello_seeded(&mut s, a, 1000 + k, now);
            feed_s(&mut s, now, a, &[ch]);
            k += 1;
        }
        // Honest client, with delays.
        c.handle_timeout(now);
        for d in out_c(&mut c, now) {
            to_server.push((now + owd, d));
        }
        let (due, later): (Vec<_>, Vec<_>) = to_server.drain(..).partition(|(t, _)| *t <= now);
        to_server = later;
        for (_, d) in due {
            let _ = s.handle_datagram(now, at, &mut d.clone());
        }
        s.handle_timeout(now);
        for (to, d) in out_s(&mut s, now) {
            if to == at {
                if is_hvr(&d) {
                    hvrs += 1;
                }
                to_client.push((now + owd, d));
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = to_client.drain(..).partition(|(t, _)| *t <= now);
        to_client = later;
        for (_, d) in due {
            let _ = c.handle_datagram(now, server_addr(), &mut d.clone());
        }
        while s.poll_event().is_some() {}
        now += step;
    }
    (
        c.is_connected() && s.connected_at(&at),
        hvrs,
        format!("{:?}", s.stats()),
    )
}

/// Finding: 33+ hosts are one IPv6 /56 (a single subscriber's usual
/// delegation: 256 /64s, each a "host"). Sending failing cookie-bearing
/// ClientHellos from 40 of its /64s, one every 2 ms (no handshake slot
/// needed: they fail at once), keeps the replay cache full of distinct
/// hosts, so every insertion raises the cookie floor to the stamp of a
/// ClientHello taken 64 ms earlier (one every 2 ms): an honest client's
/// cookie (its round trip 100 ms) is refused again and again (a new
/// HelloVerifyRequest each time), and it does not connect within 5 s.
/// The control (the same flood from one /64) lets it connect at once.
#[test]
fn one_ipv6_56_raising_the_cookie_floor_locks_out_honest_clients() {
    let many: Vec<SocketAddr> = (0..40u16)
        .map(|i| {
            SocketAddr::from((
                std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0x0100 + i, 0, 0, 0, 1),
                4000,
            ))
        })
        .collect();
    let one: Vec<SocketAddr> = (0..40u16)
        .map(|i| {
            SocketAddr::from((
                std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0x0100, 0, 0, 0, 1 + i),
                4000,
            ))
        })
        .collect();
    let step = Duration::from_millis(2);
    let owd = Duration::from_millis(50);
    let (ok_ctl, hvr_ctl, st_ctl) = floor_run(&one, step, owd);
    std::println!("control (one /64): connected {ok_ctl}, HVRs {hvr_ctl}, {st_ctl}");
    let (ok, hvr, st) = floor_run(&many, step, owd);
    std::println!("attack (40 /64s of one /56): connected {ok}, HVRs {hvr}, {st}");
    assert!(ok_ctl, "control: the honest client connects");
    assert!(
        ok,
        "the honest client did not connect within 5 s under the distinct-/64 flood ({hvr} HelloVerifyRequests)"
    );
}

/// Finding: one attacker with one IPv4 address makes the cache forget a
/// victim's older ClientHello (the victim's host holds two entries: it
/// restarted its handshake at the same address), then replays that
/// captured ClientHello within its cookie lifetime: the victim's current
/// session is ended (replaced). The control (no fill) drops the replay.
#[test]
fn one_address_fill_forgets_a_victims_older_hello_and_its_replay_ends_the_session() {
    for fill in [false, true] {
        let mut s = server();
        let victim = addr("10.0.0.9:7000");
        let mut now = Duration::from_millis(10);
        // First handshake; its cookie-bearing ClientHello is captured.
        let mut c1 = client(5, now);
        feed_s(&mut s, now, victim, &out_c(&mut c1, now));
        let hvr = out_s(&mut s, now);
        feed_c(&mut c1, now, victim, &hvr);
        let ch2 = out_c(&mut c1, now);
        let captured = ch2[0].clone();
        feed_s(&mut s, now, victim, &ch2);
        for _ in 0..6 {
            let r = out_s(&mut s, now);
            feed_c(&mut c1, now, victim, &r);
            feed_s(&mut s, now, victim, &out_c(&mut c1, now));
        }
        assert!(c1.is_connected() && s.connected_at(&victim));
        while s.poll_event().is_some() {}
        // The victim restarts (new random, same address) a second later.
        now += Duration::from_secs(1);
        let mut c2 = client(6, now);
        for _ in 0..6 {
            feed_s(&mut s, now, victim, &out_c(&mut c2, now));
            let r = out_s(&mut s, now);
            feed_c(&mut c2, now, victim, &r);
        }
        assert!(c2.is_connected() && s.connected_at(&victim));
        let h2 = s.session_handle(&victim).unwrap();
        while s.poll_event().is_some() {}
        // The attacker, one IPv4 address, 31 failing hellos (own cookies).
        if fill {
            for k in 0..31u16 {
                now += Duration::from_millis(5);
                let a = SocketAddr::from(([10, 6, 6, 6], 4000 + k));
                let ch = failing_hello_seeded(&mut s, a, 500 + u64::from(k), now);
                feed_s(&mut s, now, a, &[ch]);
                let _ = out_s(&mut s, now);
                while s.poll_event().is_some() {}
            }
        }
        // The captured first ClientHello, replayed from the victim's address.
        now += Duration::from_millis(5);
        let before = s.stats().client_hello_replays;
        feed_s(&mut s, now, victim, std::slice::from_ref(&captured));
        let to_victim: usize = out_s(&mut s, now)
            .iter()
            .filter(|(t, _)| *t == victim)
            .map(|(_, d)| d.len())
            .sum();
        let mut replaced = false;
        while let Some(e) = s.poll_event() {
            if format!("{e:?}").contains("Replaced") {
                replaced = true;
            }
        }
        let alive = s.session_handle(&victim) == Some(h2) && s.connected_at(&victim);
        std::println!(
            "fill {fill}: replay dropped {}, victim's session alive {alive}, replaced {replaced}, {to_victim} bytes to the victim, handshakes {}",
            s.stats().client_hello_replays - before,
            s.handshakes()
        );
        if fill {
            assert!(
                alive,
                "the replay of a forgotten ClientHello ended the victim's session"
            );
        } else {
            assert!(alive);
        }
    }
}

/// Finding: a host that ends its own half-open handshake (a fatal alert)
/// and at once opens a new one (cookie fetched beforehand) keeps its old
/// place in the line but a fresh hold time; refreshing every 400 ms (the
/// minimum hold is 500 ms), two attacker addresses hold both handshake
/// slots for as long as they like: an honest client is refused for 10 s.
/// Control: the attacker holds without refreshing, and the honest client
/// gets in.
#[test]
fn refreshing_its_own_handshake_keeps_a_slot_from_ever_being_held_long_enough() {
    for refresh in [false, true] {
        let mut s = server();
        let attackers = [addr("10.6.6.1:4000"), addr("10.6.6.2:4000")];
        let mut now = Duration::from_millis(10);
        let mut seed = 100;
        for a in attackers {
            let ch = cookie_hello(&mut s, &mut None, a, seed, now);
            seed += 1;
            feed_s(&mut s, now, a, &[ch]);
            let _ = out_s(&mut s, now);
        }
        assert_eq!(s.handshakes(), 2);
        let at = addr("192.0.2.7:5000");
        let mut c = client(7, now);
        let mut next_refresh = now + Duration::from_millis(400);
        let end = now + Duration::from_secs(10);
        let mut to_honest = 0;
        while now < end && !c.is_connected() {
            if refresh && now >= next_refresh {
                for a in attackers {
                    // New random, same address: a cookie first (this
                    // ends nothing), then the alert and the new hello.
                    let ch = cookie_hello(&mut s, &mut None, a, seed, now);
                    seed += 1;
                    let _ = s.handle_datagram(now, a, &mut alert());
                    feed_s(&mut s, now, a, &[ch]);
                    let _ = out_s(&mut s, now);
                    while s.poll_event().is_some() {}
                }
                next_refresh += Duration::from_millis(400);
            }
            c.handle_timeout(now);
            feed_s(&mut s, now, at, &out_c(&mut c, now));
            s.handle_timeout(now);
            let r = out_s(&mut s, now);
            to_honest += r.iter().filter(|(t, _)| *t == at).count();
            feed_c(&mut c, now, at, &r);
            feed_s(&mut s, now, at, &out_c(&mut c, now));
            let r = out_s(&mut s, now);
            feed_c(&mut c, now, at, &r);
            while s.poll_event().is_some() {}
            now += TICK;
        }
        let ok = c.is_connected() && s.connected_at(&at);
        std::println!(
            "refresh {refresh}: honest connected {ok} at {now:?}, {to_honest} datagrams to it, {:?}",
            s.stats()
        );
        if refresh {
            assert!(
                ok,
                "refreshing attacker kept the honest client out for 10 s"
            );
        } else {
            assert!(ok);
        }
    }
}

/// Finding (liveness): a client whose server flight was lost and whose
/// handshake was then evicted (newest wins) retransmits its
/// cookie-bearing ClientHello: it was dropped as a replay, silently (no
/// HelloVerifyRequest), until the replay-cache entry and the cookie
/// expired (connected at 23 s). Its retransmission must be taken as its
/// retry.
#[test]
fn an_evicted_clients_retransmitted_hello_is_dropped_until_the_cookie_expires() {
    let mut s = server();
    let mut now = Duration::from_millis(10);
    let at = addr("192.0.2.7:5000");
    let mut c = client(7, now);
    // Cookie exchange; the server's flight to the client is lost.
    feed_s(&mut s, now, at, &out_c(&mut c, now));
    let r = out_s(&mut s, now);
    feed_c(&mut c, now, at, &r);
    feed_s(&mut s, now, at, &out_c(&mut c, now));
    let _lost = out_s(&mut s, now);
    assert_eq!(s.handshakes(), 1);
    // Another client takes the second slot a little later.
    now += Duration::from_millis(100);
    let x = addr("192.0.2.8:5000");
    let chx = cookie_hello(&mut s, &mut None, x, 40, now);
    feed_s(&mut s, now, x, &[chx]);
    let _ = out_s(&mut s, now);
    // After the minimum hold, a newcomer evicts the first admitted.
    now = Duration::from_millis(600);
    let y = addr("192.0.2.9:5000");
    let chy = cookie_hello(&mut s, &mut None, y, 41, now);
    feed_s(&mut s, now, y, &[chy]);
    let _ = out_s(&mut s, now);
    let ev = evicted(&mut s);
    assert_eq!(ev, 1, "the first admitted was evicted");
    // The evicted client runs on its own timer.
    let mut replies = Vec::new();
    while now < Duration::from_secs(60) && !c.is_connected() {
        now += TICK;
        c.handle_timeout(now);
        s.handle_timeout(now);
        let d = out_c(&mut c, now);
        if !d.is_empty() {
            let before = s.stats().client_hello_replays;
            feed_s(&mut s, now, at, &d);
            let r = out_s(&mut s, now);
            let to: Vec<_> = r.iter().filter(|(t, _)| *t == at).cloned().collect();
            replies.push((now, s.stats().client_hello_replays - before, to.len()));
            feed_c(&mut c, now, at, &r);
        } else {
            let r = out_s(&mut s, now);
            feed_c(&mut c, now, at, &r);
        }
        for _ in 0..4 {
            feed_s(&mut s, now, at, &out_c(&mut c, now));
            let r = out_s(&mut s, now);
            feed_c(&mut c, now, at, &r);
        }
        while s.poll_event().is_some() {}
    }
    std::println!("client sends (time, dropped as replays, datagrams back): {replies:?}");
    std::println!("connected {} at {now:?}", c.is_connected());
    // No retransmission is dropped as a replay. The first one (1 s) may
    // be refused: an evicted handshake still counts against its host's
    // share for one retransmission timeout, so it takes no other host's
    // slot at once; the next one (3 s) finds the others stalled.
    assert!(
        replies.iter().all(|(_, dropped, _)| *dropped == 0),
        "a retransmission of the evicted client was dropped as a replay: {replies:?}"
    );
    assert!(
        c.is_connected() && now < Duration::from_secs(4),
        "the evicted client's retry was not taken: connected {} at {now:?}",
        c.is_connected()
    );
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

/// Finding: a configuration that passes `Config::validate` with a cookie
/// lifetime of `Duration::MAX` ("cookies never expire") panics on the second
/// cookie-verified ClientHello: the replay cache adds one second to the
/// lifetime with `+` (an overflowing `Duration` addition panics in every
/// build profile). Any client that answers a HelloVerifyRequest brings the
/// endpoint down.
#[test]
fn a_huge_cookie_lifetime_does_not_panic_on_a_cookie_verified_hello() {
    let mut cfg = config();
    cfg.cookie_lifetime = Duration::MAX;
    cfg.validate().unwrap();
    let mut s: Server = Endpoint::new(
        cfg.clone(),
        StaticPsk::new(&KEYS),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let now = Duration::from_millis(10);
    // Two clients: the second cookie-verified ClientHello meets the first's
    // entry in the replay cache.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (k, at) in [addr("192.0.2.7:5000"), addr("192.0.2.8:5000")]
            .into_iter()
            .enumerate()
        {
            let mut c = Client::new(
                cfg.clone(),
                ID,
                KEY,
                server_addr(),
                SimRng::new(7 + k as u64),
                now,
            )
            .unwrap();
            for _ in 0..2 {
                feed_s(&mut s, now, at, &out_c(&mut c, now));
                let r = out_s(&mut s, now);
                feed_c(&mut c, now, at, &r);
            }
        }
    }));
    assert!(
        r.is_ok(),
        "the endpoint panicked on a cookie-verified ClientHello"
    );
}

/// Finding (on-path, low): the cookie does not cover the ClientHello's
/// extensions. An attacker who sees a victim's cookie-bearing ClientHello
/// and gets a copy to the server first, with its extended_master_secret
/// extension renamed (same length, cookie still valid), makes it fail at
/// once: the failure is charged to the victim's host and remembered under
/// the victim's (address, random), so the victim's own ClientHello, and
/// each of its retransmissions, is dropped as a replay and answered with a
/// fatal alert.
#[test]
fn a_raced_copy_with_changed_extensions_turns_the_victims_own_hello_into_a_replay() {
    let mut s = server();
    let victim = addr("10.0.0.9:7000");
    let now = Duration::from_millis(10);
    let mut c = client(5, now);
    feed_s(&mut s, now, victim, &out_c(&mut c, now));
    let hvr = out_s(&mut s, now);
    feed_c(&mut c, now, victim, &hvr);
    let ch2 = out_c(&mut c, now);
    let genuine = ch2[0].clone();
    let mut forged = genuine.clone();
    let pos = forged
        .windows(4)
        .rposition(|w| w == [0x00, 0x17, 0x00, 0x00])
        .expect("extended_master_secret extension");
    forged[pos] = 0xFF;
    let _ = s.handle_datagram(now, victim, &mut forged);
    let _ = out_s(&mut s, now);
    while s.poll_event().is_some() {}
    let before = s.stats().client_hello_replays;
    feed_s(&mut s, now, victim, &[genuine]);
    let r = out_s(&mut s, now);
    let alerts = r.iter().filter(|(t, d)| *t == victim && d[0] == 21).count();
    std::println!(
        "genuine dropped as replay: {}, alerts to the victim: {alerts}, handshakes {}",
        s.stats().client_hello_replays - before,
        s.handshakes()
    );
    assert_eq!(
        s.handshakes(),
        1,
        "the victim's own ClientHello opened no handshake"
    );
}
