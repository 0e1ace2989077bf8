//! Half-open handshake slots and flight resends under attack: a flood of
//! cookie-verified ClientHellos, each from a new address, or replayed from
//! a few addresses, must not keep a new client out for more than one
//! retransmission timeout; a replayed ClientHello and tiny spoofed epoch-0
//! records must not make the server send a victim address more than three
//! times what came from it.
#![cfg(feature = "server")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod at;
mod slots;

use slots::*;

/// The address of the flood's `k`-th handshake: a new host each time.
fn flood_addr(k: u32) -> SocketAddr {
    SocketAddr::from(([10, 1, (k / 200) as u8, (k % 200 + 1) as u8], 4000))
}

/// A flood of cookie-verified ClientHellos, each from a new address (which
/// then goes silent), one every `gap`; 1.53 s in, a new client starts.
/// How long after it started it connected, if it did within 40 s.
fn new_address_flood(gap: Duration) -> Option<Duration> {
    let mut s = server();
    let start = Duration::from_millis(1530);
    let mut legit: Option<Legit> = None;
    let (mut k, mut next) = (0u32, Duration::ZERO);
    let mut now = Duration::ZERO;
    while now < start + Duration::from_secs(40) {
        if now >= next {
            let a = flood_addr(k);
            let ch = cookie_hello(&mut s, &mut legit, a, 100 + u64::from(k), now);
            feed_s(&mut s, now, a, &[ch]);
            k += 1;
            next += gap;
        }
        if legit.is_none() && now >= start {
            legit = Some(Legit {
                c: client(7, now),
                at: addr("10.0.0.7:5000"),
                began: now,
            });
        }
        if let Some(t) = Legit::pump(&mut s, &mut legit, now) {
            return Some(t);
        }
        now += TICK;
        s.handle_timeout(now);
        if let Some(l) = legit.as_mut() {
            l.c.handle_timeout(now);
        }
    }
    None
}

#[test]
fn a_new_address_every_500_ms_does_not_keep_a_new_client_out() {
    let t = new_address_flood(Duration::from_millis(500));
    let t = t.expect("the new client never connected during the flood");
    assert!(
        t <= config().retransmit_initial,
        "connected only after {t:?}"
    );
}

/// Beyond the bound (five admissions per minimum hold time, half the 1 s
/// initial retransmission timeout; a flood of new hosts at most once per
/// minimum hold time is within it, the 500 ms test above): a flood of new
/// addresses every 100 ms takes each slot as soon as its holder held it
/// for the minimum hold time, and keeps the new client out beyond one
/// retransmission timeout. This once passed (any half-open handshake
/// could be taken at once), which let honest clients arriving faster than
/// the slots clear evict each other's handshakes about to complete (see
/// review17.rs): no policy for `H` slots tells this flood from such a
/// crowd, and the minimum hold time sides with the crowd. The test shows
/// the documented bound is where it is, not better.
#[test]
fn beyond_the_bound_a_new_address_every_100_ms_keeps_a_new_client_out() {
    let t = new_address_flood(Duration::from_millis(100));
    assert!(
        t.map_or(true, |t| t > config().retransmit_initial),
        "connected after {t:?}: the bound is better than documented"
    );
}

/// A plaintext fatal alert (handshake_failure) with record sequence `seq`.
fn fatal_alert(seq: u64) -> Vec<u8> {
    let mut v = std::vec![21, 0xFE, 0xFD, 0, 0];
    v.extend_from_slice(&seq.to_be_bytes()[2..]);
    v.extend_from_slice(&2u16.to_be_bytes());
    v.extend_from_slice(&[2, 40]);
    v
}

#[test]
fn cookie_hellos_replayed_from_two_addresses_do_not_keep_a_new_client_out() {
    // Two hosts take both handshake slots with a cookie exchange each,
    // then every 100 ms end their own handshake (a fatal alert) and
    // replay their cookie-bearing ClientHello. Each replay once opened a
    // new handshake, without another cookie exchange; the server now
    // remembers the ClientHellos it took and drops their replays.
    let mut s = server();
    let mut legit: Option<Legit> = None;
    let attackers = [addr("10.0.0.66:1000"), addr("10.0.0.67:1000")];
    let hellos: Vec<Vec<u8>> = attackers
        .iter()
        .enumerate()
        .map(|(i, a)| cookie_hello(&mut s, &mut legit, *a, 30 + i as u64, Duration::ZERO))
        .collect();
    for (a, h) in attackers.iter().zip(&hellos) {
        feed_s(&mut s, Duration::ZERO, *a, std::slice::from_ref(h));
    }
    let _ = out_s(&mut s, Duration::ZERO);
    assert_eq!(s.handshakes(), 2);
    let start = Duration::from_millis(2030);
    let mut now = Duration::ZERO;
    let mut seq = 1000;
    let mut connected = None;
    let mut tick = 0u32;
    // The cookies are taken for 20 s: the attack ends before.
    while now < Duration::from_secs(15) {
        if tick % 10 == 0 {
            for (a, h) in attackers.iter().zip(&hellos) {
                seq += 1;
                feed_s(&mut s, now, *a, &[fatal_alert(seq), h.clone()]);
            }
        }
        if legit.is_none() && now >= start {
            legit = Some(Legit {
                c: client(40, now),
                at: addr("10.0.0.7:5000"),
                began: now,
            });
        }
        if let Some(t) = Legit::pump(&mut s, &mut legit, now) {
            connected = Some(t);
            break;
        }
        // The replays open no new handshake: each is a copy of a
        // ClientHello taken before whose handshake ended (dropped).
        if legit.is_none() && now > Duration::ZERO {
            assert_eq!(s.handshakes(), 0, "a replay opened a handshake");
        }
        now += TICK;
        tick += 1;
        s.handle_timeout(now);
        if let Some(l) = legit.as_mut() {
            l.c.handle_timeout(now);
        }
    }
    assert!(s.stats().client_hello_replays > 10, "{:?}", s.stats());
    let t = connected.expect("the new client never connected during the replays");
    assert!(
        t <= config().retransmit_initial,
        "connected only after {t:?}"
    );
}

#[test]
fn a_replayed_cookie_hello_of_a_handshake_in_progress_is_a_retransmission() {
    let mut s = server();
    let mut none = None;
    let a = addr("10.0.0.66:1000");
    let ch = cookie_hello(&mut s, &mut none, a, 3, Duration::ZERO);
    feed_s(&mut s, Duration::ZERO, a, std::slice::from_ref(&ch));
    let first = out_s(&mut s, Duration::ZERO);
    assert!(!first.is_empty());
    let h = s.session_handle(&a).unwrap();
    for i in 1..=30u32 {
        let now = Duration::from_millis(100) * i;
        feed_s(&mut s, now, a, std::slice::from_ref(&ch));
        let _ = out_s(&mut s, now);
        assert_eq!((s.handshakes(), s.sessions()), (1, 1));
        assert_eq!(s.session_handle(&a), Some(h), "the same handshake");
    }
    // At most one resend per initial retransmission timeout (3 s here).
    assert!(s.stats().retransmissions <= 3, "{:?}", s.stats());
}

/// A tiny epoch-0 handshake record: `msg_type` with `message_seq`, an
/// empty fragment of a message claiming `length` bytes.
fn tiny_handshake(msg_type: u8, message_seq: u16, length: u32, seq: u64) -> Vec<u8> {
    let mut v = std::vec![22, 0xFE, 0xFD, 0, 0];
    v.extend_from_slice(&seq.to_be_bytes()[2..]);
    v.extend_from_slice(&12u16.to_be_bytes());
    v.push(msg_type);
    v.extend_from_slice(&length.to_be_bytes()[1..]);
    v.extend_from_slice(&message_seq.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0]);
    v
}

/// The tiny epoch-0 records of the amplification attack, sent with the
/// ClientHello `ch` (record sequence numbers from `seq`): an empty
/// ClientHello fragment, the ClientHello's first 40 body bytes as a
/// fragment, and the ClientHello's record cut short.
fn tiny_records(ch: &[u8], seq: u64) -> Vec<Vec<u8>> {
    let msg_seq = u16::from_be_bytes([ch[17], ch[18]]);
    let len = u32::from_be_bytes([0, ch[14], ch[15], ch[16]]);
    let mut frag = ch[..13 + 12 + 40].to_vec();
    frag[5..11].copy_from_slice(&(seq + 1).to_be_bytes()[2..]);
    frag[11..13].copy_from_slice(&52u16.to_be_bytes());
    frag[22..25].copy_from_slice(&40u32.to_be_bytes()[1..]);
    let mut cut = ch[..40].to_vec();
    cut[5..11].copy_from_slice(&(seq + 2).to_be_bytes()[2..]);
    std::vec![tiny_handshake(1, msg_seq, len, seq), frag, cut]
}

/// Bytes the server sent to `victim` and bytes that came from there when
/// an attacker replays `victim`'s captured cookie-bearing ClientHello
/// (spoofed), adds the tiny records, and `copies` more copies of the
/// ClientHello spread over the cookie's lifetime (each a while after the
/// last); the run lasts until long after. The victim's own handshake came
/// first: its ClientHello was taken and the victim then gave the handshake
/// up (a fatal alert). Only what the attacker drew is counted.
fn amplification(copies: u32) -> (u64, u64) {
    let mut s = server();
    let mut none = None;
    let victim = addr("10.0.0.9:7000");
    let ch = cookie_hello(&mut s, &mut none, victim, 5, Duration::ZERO);
    // The victim's own handshake, given up.
    feed_s(&mut s, Duration::ZERO, victim, std::slice::from_ref(&ch));
    assert!(
        !out_s(&mut s, Duration::ZERO).is_empty(),
        "the victim's flight"
    );
    feed_s(&mut s, Duration::ZERO, victim, &[fatal_alert(900)]);
    let _ = out_s(&mut s, Duration::ZERO);
    while s.poll_event().is_some() {}
    assert_eq!(s.handshakes(), 0, "the victim gave its handshake up");
    let (mut sent, mut received) = (0u64, 0u64);
    let mut send = |s: &mut Server, now: Duration, d: Vec<Vec<u8>>| {
        for mut d in d {
            received += d.len() as u64;
            let _ = s.handle_datagram(now, victim, &mut d);
        }
    };
    send(&mut s, Duration::ZERO, std::vec![ch.clone()]);
    send(&mut s, Duration::ZERO, tiny_records(&ch, 5000));
    let mut now = Duration::ZERO;
    let mut copy_at = Duration::from_millis(1100);
    let mut left = copies;
    while now < Duration::from_secs(60) {
        if left > 0 && now >= copy_at {
            send(&mut s, now, std::vec![ch.clone()]);
            send(&mut s, now, tiny_records(&ch, 6000 + u64::from(left) * 4));
            left -= 1;
            copy_at += Duration::from_millis(1700);
        }
        for (to, d) in out_s(&mut s, now) {
            if to == victim {
                sent += d.len() as u64;
            }
        }
        while s.poll_event().is_some() {}
        now += Duration::from_millis(50);
        s.handle_timeout(now);
    }
    assert_eq!(s.handshakes(), 0, "the handshake ended");
    (sent, received)
}

/// The replays of a ClientHello whose handshake is over open nothing and
/// draw nothing (the replay cache). This test once replayed a ClientHello
/// the server had never seen (the victim's own never arrived) and held the
/// server's timer resends within three times the bytes from the address:
/// to the server that is one cookie-verified ClientHello and then silence,
/// exactly what a client relying on the server's timer for the rest of a
/// split flight sends (review17.rs), which that limit stranded. The first
/// copy of a ClientHello to arrive opens the handshake its sender asked
/// for, whoever forwarded it; every later copy is a retransmission while
/// the handshake is in progress (at most one resend per retransmission
/// timeout, the test above) and dropped after.
#[test]
fn a_replayed_hello_and_tiny_records_after_the_victims_handshake_draw_nothing() {
    for copies in [0, 1, 3, 10] {
        let (sent, received) = amplification(copies);
        assert!(received > 0);
        assert!(
            sent <= 3 * received && sent == 0,
            "{copies} copies: {sent} bytes sent to the victim for {received} received"
        );
    }
}
