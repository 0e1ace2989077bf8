//! Per-connection failures against the real `cssf-server`: what one
//! peer's broken handshake or record does must stay with that peer.
//!
//! Each attempt holds a legitimate session (dev-1, from 127.0.0.1) that
//! does `GET /time` and `PUT /actuators/led` after every attack, while
//! attackers from other loopback addresses (127.0.0.20 and up, each its
//! own host for the server's per-host limits) send, one kind at a time:
//! a ClientHello whose record sequence number is 2^48-1, one at 2^48-2, a
//! handshake with a wrong Finished (a guessed key), a fatal alert in the
//! middle of a handshake, records claiming more than 2^14+2048 bytes,
//! handshake fragments reaching past their message, ClientHellos with a
//! zero-length, a 255-byte and an inconsistent cookie, and records of an
//! established session (the attacker's own, dev-2) rewritten to sequence
//! number 2^48-1. After a kind whose effect was seen the server is
//! restarted if it died and the legitimate session set up again, so every
//! kind runs in every attempt.
//!
//! Accepted: the legitimate session was not served after an attack (its
//! session ended or no answer within 2 s), a fresh legitimate session
//! was not served at the end of the attempt, or the server process died.
//! Control: the lab kills the server under a session it has just seen
//! served and must see that session go unserved and the process gone.
//!
//! Not driven: a session's own records reaching 2^48 (that takes 2^48
//! records). cssf-dtls never seals a record at 2^48: a session sends
//! close_notify with its last sequence number and ends
//! (`CloseReason::SequenceExhausted`, checked by its endpoint tests).

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use cssf_dtls::RejectAll;
use cssf_netsim::SimRng;

use crate::lifecycle::{
    coap, not_started, psk_client, psk_spec, response, rights_note, Res, Server, Session, CHANGED,
    CONTENT, DEV1_ID, DEV1_KEY, DEV2_ID, DEV2_KEY, GET, PUT,
};
use crate::{Opts, Row};

/// The attacks, in the order each attempt runs them.
const KINDS: [&str; 9] = [
    "ClientHello at sequence 2^48-1",
    "ClientHello at sequence 2^48-2",
    "wrong Finished",
    "fatal alert mid-handshake",
    "record longer than 2^14+2048",
    "fragment past its message",
    "zero-length cookie",
    "255-byte and inconsistent cookies",
    "established session's record at 2^48-1",
];

/// The largest record sequence number.
const SEQ_MAX: u64 = (1 << 48) - 1;
/// How long the legitimate session waits for each answer.
const ANSWER: Duration = Duration::from_secs(2);

/// A socket on attacker host `k` (127.0.0.20 + k).
fn attacker_socket(k: usize) -> Res<UdpSocket> {
    let host = 20u8.saturating_add(u8::try_from(k).unwrap_or(200));
    UdpSocket::bind(SocketAddr::from(([127, 0, 0, host], 0)))
        .map_err(|e| format!("bind 127.0.0.{host}: {e}"))
}

/// Sets the record sequence number of the record at the start of `rec`.
fn set_seq(rec: &mut [u8], seq: u64) {
    if let (Some(d), Some(s)) = (rec.get_mut(5..11), seq.to_be_bytes().get(2..)) {
        d.copy_from_slice(s);
    }
}

fn send(sock: &UdpSocket, server: SocketAddr, d: &[u8]) -> Res<()> {
    sock.send_to(d, server)
        .map(|_| ())
        .map_err(|e| format!("send: {e}"))
}

/// Sends the client's first ClientHello, feeds it the server's
/// HelloVerifyRequest and returns its second ClientHello (the one with the
/// cookie), not sent.
fn hello_exchange(s: &mut Session<'_, RejectAll>, server: SocketAddr) -> Res<Vec<u8>> {
    let mut buf = [0u8; 1500];
    let now = s.now();
    while let Some(t) =
        s.c.poll_transmit(now, &mut buf)
            .map_err(|e| format!("client: {e}"))?
    {
        send(s.sock, server, buf.get(..t.len).unwrap_or(&[]))?;
    }
    let _ = s.sock.set_read_timeout(Some(ANSWER));
    let (n, from) = s
        .sock
        .recv_from(&mut buf)
        .map_err(|e| format!("no HelloVerifyRequest: {e}"))?;
    let d = buf.get_mut(..n).unwrap_or(&mut []);
    if d.get(13) != Some(&3) {
        return Err("the server's answer was not a HelloVerifyRequest".into());
    }
    let _ = s.c.handle_datagram(s.now(), from, d);
    let t =
        s.c.poll_transmit(s.now(), &mut buf)
            .map_err(|e| format!("client: {e}"))?
            .ok_or("no second ClientHello")?;
    Ok(buf.get(..t.len).unwrap_or(&[]).to_vec())
}

/// The single-record ClientHello `ch` with its cookie replaced by `cookie`
/// and its cookie length byte by `claimed` (lengths of the handshake
/// message and record fixed to the new body).
fn with_cookie(ch: &[u8], cookie: &[u8], claimed: u8) -> Res<Vec<u8>> {
    let body = ch.get(25..).ok_or("short ClientHello")?;
    let sid = usize::from(*body.get(34).ok_or("short ClientHello")?);
    let at = 35 + sid;
    let old = usize::from(*body.get(at).ok_or("short ClientHello")?);
    let (head, rest) = (
        body.get(..at).ok_or("short ClientHello")?,
        body.get(at + 1 + old..).ok_or("short ClientHello")?,
    );
    let mut nb = head.to_vec();
    nb.push(claimed);
    nb.extend_from_slice(cookie);
    nb.extend_from_slice(rest);
    let len = u32::try_from(nb.len()).map_err(|_| "long")?.to_be_bytes();
    let mut out = ch.get(..25).ok_or("short ClientHello")?.to_vec();
    let rec_len = u16::try_from(nb.len() + 12)
        .map_err(|_| "long")?
        .to_be_bytes();
    for (i, b) in [(11, rec_len[0]), (12, rec_len[1])] {
        if let Some(x) = out.get_mut(i) {
            *x = b;
        }
    }
    // length (14..17) and fragment_length (22..25); fragment_offset 0.
    for r in [14..17, 22..25] {
        if let (Some(d), Some(s)) = (out.get_mut(r), len.get(1..)) {
            d.copy_from_slice(s);
        }
    }
    out.extend_from_slice(&nb);
    Ok(out)
}

/// An epoch-0 handshake record of one fragment: `msg_type`, message
/// `length`, `message_seq`, `offset`, and `frag` as its body.
fn fragment(
    seq: u64,
    msg_type: u8,
    length: u32,
    message_seq: u16,
    offset: u32,
    frag: &[u8],
) -> Vec<u8> {
    let mut v = vec![22, 0xFE, 0xFD, 0, 0];
    v.extend_from_slice(seq.to_be_bytes().get(2..).unwrap_or(&[]));
    v.extend_from_slice(
        &u16::try_from(12 + frag.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    v.push(msg_type);
    v.extend_from_slice(length.to_be_bytes().get(1..).unwrap_or(&[]));
    v.extend_from_slice(&message_seq.to_be_bytes());
    v.extend_from_slice(offset.to_be_bytes().get(1..).unwrap_or(&[]));
    let fl = u32::try_from(frag.len()).unwrap_or(0);
    v.extend_from_slice(fl.to_be_bytes().get(1..).unwrap_or(&[]));
    v.extend_from_slice(frag);
    v
}

/// Ends the attacker's session if it connected (it holds no slot then).
fn done(mut s: Session<'_, RejectAll>) {
    if s.c.is_connected() {
        s.close();
    } else {
        let _ = s.flush();
    }
}

/// Carries out attack `k` from its own host; `Err` when the lab could
/// not (the server never answered a ClientHello, ...). `Ok(Some(..))`
/// notes what the attacker's own session saw (kind 8).
fn attack(k: usize, server: SocketAddr, guess: &[u8; 16], mid: u16) -> Res<Option<bool>> {
    let sock = attacker_socket(k)?;
    let dev2 = || psk_client(server, DEV2_ID, &DEV2_KEY);
    match k {
        0 | 1 => {
            let mut a = Session::new(&sock, dev2()?);
            let mut ch = hello_exchange(&mut a, server)?;
            set_seq(&mut ch, SEQ_MAX - k as u64);
            send(&sock, server, &ch)?;
            // The client answers whatever comes back, as a peer would.
            let _ = a.handshake_within(Duration::from_millis(700));
            done(a);
        }
        2 => {
            let mut a = Session::new(&sock, psk_client(server, DEV1_ID, guess)?);
            if a.handshake_within(Duration::from_secs(3)).is_ok() {
                return Err("a guessed key completed a handshake".into());
            }
            done(a);
        }
        3 => {
            let mut a = Session::new(&sock, dev2()?);
            let ch = hello_exchange(&mut a, server)?;
            send(&sock, server, &ch)?;
            let mut buf = [0u8; 1500];
            let _ = sock.set_read_timeout(Some(ANSWER));
            sock.recv_from(&mut buf)
                .map_err(|e| format!("no ServerHello: {e}"))?;
            // handshake_failure, fatal, epoch 0, after the two ClientHellos.
            send(
                &sock,
                server,
                &[21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 2, 40],
            )?;
        }
        4 => {
            let long = 16384 + 2048 + 1;
            for (ct, epoch) in [(23u8, 1u8), (22, 0), (21, 0)] {
                let mut d = vec![ct, 0xFE, 0xFD, 0, epoch, 0, 0, 0, 0, 0, 9];
                d.extend_from_slice(&u16::try_from(long).unwrap_or(u16::MAX).to_be_bytes());
                d.resize(13 + long, 0xAB);
                send(&sock, server, &d)?;
                // The same claim with a short body.
                d.truncate(113);
                send(&sock, server, &d)?;
            }
            // The largest length a header can claim.
            let mut d = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 10, 0xFF, 0xFF];
            d.resize(1400, 0xCD);
            send(&sock, server, &d)?;
        }
        5 => {
            // Without a handshake: a ClientHello fragment past its length,
            // one at an offset past it, one claiming 2^24-1 bytes.
            send(&sock, server, &fragment(0, 1, 16, 0, 8, &[0x5A; 32]))?;
            send(&sock, server, &fragment(1, 1, 16, 0, 40, &[0x5A; 8]))?;
            send(
                &sock,
                server,
                &fragment(2, 1, 0xFF_FFFF, 0, 0xFF_FFF0, &[0x5A; 64]),
            )?;
            // Within a handshake: the cookie ClientHello's message_seq,
            // a fragment past its message, then the real one.
            let mut a = Session::new(&sock, dev2()?);
            let ch = hello_exchange(&mut a, server)?;
            let body_len = u32::try_from(ch.len().saturating_sub(25)).unwrap_or(0);
            let past = vec![0x5A; ch.len().saturating_sub(25) + 100];
            send(&sock, server, &fragment(1, 1, body_len, 1, 0, &past))?;
            send(
                &sock,
                server,
                &fragment(1, 1, body_len, 1, body_len, &[1; 20]),
            )?;
            send(&sock, server, &ch)?;
            let _ = a.handshake_within(Duration::from_millis(700));
            done(a);
        }
        6 => {
            let mut a = Session::new(&sock, dev2()?);
            let ch = hello_exchange(&mut a, server)?;
            send(&sock, server, &with_cookie(&ch, &[], 0)?)?;
        }
        7 => {
            let mut a = Session::new(&sock, dev2()?);
            let ch = hello_exchange(&mut a, server)?;
            send(&sock, server, &with_cookie(&ch, &[0xC0; 255], 255)?)?;
            // A length byte claiming more than the message holds.
            send(&sock, server, &with_cookie(&ch, &[0xC1; 16], 255)?)?;
            // And one claiming less than the cookie.
            send(&sock, server, &with_cookie(&ch, &[0xC2; 32], 1)?)?;
        }
        _ => {
            let mut a = Session::new(&sock, dev2()?);
            a.handshake()
                .map_err(|e| format!("attacker's session: {e}"))?;
            let (code, _) = a.ask(GET, mid, &["time"], b"")?;
            if code != CONTENT {
                return Err(format!("attacker's session got {code}"));
            }
            let rec = a.last_sent.clone();
            if rec.first() != Some(&23) {
                return Err("the attacker's last record was not application data".into());
            }
            // Its own record at 2^48-1, and 2^48-2 with a flipped byte.
            let mut high = rec.clone();
            set_seq(&mut high, SEQ_MAX);
            send(&sock, server, &high)?;
            set_seq(&mut high, SEQ_MAX - 1);
            if let Some(b) = high.last_mut() {
                *b ^= 1;
            }
            send(&sock, server, &high)?;
            // Does its own session still work?
            let own = a
                .request_within(&coap(GET, mid.wrapping_add(1), &["time"], b""), ANSWER)
                .and_then(|m| response(&m))
                .is_ok_and(|(c, _)| c == CONTENT);
            done(a);
            return Ok(Some(own));
        }
    }
    Ok(None)
}

/// The session answers `GET /time` with 2.05 and `PUT /actuators/led`
/// with 2.04, each within [`ANSWER`].
fn served(s: &mut Session<'_, RejectAll>, mid: u16) -> bool {
    let mut ask = |code, mid, path: &[&str], body: &[u8], want: &str| {
        s.request_within(&coap(code, mid, path, body), ANSWER)
            .and_then(|m| response(&m))
            .is_ok_and(|(c, _)| c == want)
    };
    ask(GET, mid, &["time"], b"", CONTENT)
        && ask(
            PUT,
            mid.wrapping_add(1),
            &["actuators", "led"],
            b"on",
            CHANGED,
        )
}

/// A new legitimate session from 127.0.0.1 is served.
fn fresh_served(server: SocketAddr, mid: u16) -> bool {
    let Ok(sock) = crate::lifecycle::socket() else {
        return false;
    };
    let Ok(c) = psk_client(server, DEV1_ID, &DEV1_KEY) else {
        return false;
    };
    let mut s = Session::new(&sock, c);
    let ok = s.handshake_within(Duration::from_secs(3)).is_ok() && served(&mut s, mid);
    if s.c.is_connected() {
        s.close();
    }
    ok
}

/// Per kind, what the attempts saw.
#[derive(Default, Clone, Copy)]
struct Seen {
    /// The legitimate session was not served afterwards.
    unserved: u32,
    /// The server process had died.
    died: u32,
}

/// The row.
pub(crate) fn run(o: &Opts, bin: &Path, dir: &Path, row: &mut Row) {
    let (p1, p2) = (psk_spec(DEV1_ID, &DEV1_KEY), psk_spec(DEV2_ID, &DEV2_KEY));
    let args: Vec<String> = vec![
        "--psk".into(),
        format!("{p1}:*:ALL"),
        "--psk".into(),
        format!("{p2}:/time:GET"),
    ];
    let plain: Vec<String> = vec!["--psk".into(), p1, "--psk".into(), p2];
    let start = || Server::start(bin, dir, &args, &plain);
    let mut server = match start() {
        Ok(s) => s,
        Err(e) => return not_started(row, e),
    };
    let note = rights_note(&server);
    let mut rng = SimRng::new(o.seed ^ 0xF417);
    let mut seen = [Seen::default(); KINDS.len()];
    let (mut fresh_refused, mut control, mut own_served, mut own_ran) = (0u32, 0u32, 0u32, 0u32);
    let (mut not_run, mut why) = (0u32, String::new());
    let began = Instant::now();
    for _ in 0..o.server_attempts {
        let mid = rng.next_u64_raw() as u16;
        let mut guess = [0u8; 16];
        for b in &mut guess {
            *b = rng.next_u64_raw() as u8;
        }
        let mut attempt = || -> Res<(bool, bool)> {
            let (mut accepted, mut died) = (false, false);
            let sock = crate::lifecycle::socket()?;
            let mut legit = Session::new(&sock, psk_client(server.addr, DEV1_ID, &DEV1_KEY)?);
            legit
                .handshake()
                .map_err(|e| format!("legitimate session: {e}"))?;
            if !served(&mut legit, mid) {
                return Err("the legitimate session was not served before any attack".into());
            }
            for (k, s) in seen.iter_mut().enumerate() {
                let m = mid.wrapping_add(0x10 * (k as u16 + 1));
                let r = attack(k, server.addr, &guess, m);
                std::thread::sleep(Duration::from_millis(50));
                let ok = served(&mut legit, m.wrapping_add(4));
                let alive = server.alive();
                match r {
                    Ok(Some(own)) => {
                        own_ran += 1;
                        own_served += u32::from(own);
                    }
                    Ok(None) => {}
                    Err(e) if ok && alive => return Err(format!("{}: {e}", KINDS[k])),
                    Err(_) => {}
                }
                if !ok || !alive {
                    accepted = true;
                    s.unserved += u32::from(!ok);
                    s.died += u32::from(!alive);
                    died |= !alive;
                    // Carry on with the next kind on a live server and a
                    // new legitimate session.
                    if !alive {
                        server = start().map_err(|e| format!("restart: {e}"))?;
                    }
                    legit = Session::new(&sock, psk_client(server.addr, DEV1_ID, &DEV1_KEY)?);
                    legit
                        .handshake()
                        .map_err(|e| format!("legitimate session again: {e}"))?;
                }
            }
            let fresh = fresh_served(server.addr, mid.wrapping_add(0x200));
            fresh_refused += u32::from(!fresh);
            legit.close();
            // Survived: the server never died (the lab restarts it) and a
            // fresh session was served at the end.
            Ok((accepted || !fresh, fresh && !died))
        };
        match attempt() {
            Ok((acc, survived)) => row.attempt(acc, survived),
            Err(e) => {
                row.skipped();
                not_run += 1;
                why = e;
            }
        }
        // The control: a session seen served, then the server killed.
        let mut ctl = || -> Res<bool> {
            let sock = crate::lifecycle::socket()?;
            let mut s = Session::new(&sock, psk_client(server.addr, DEV1_ID, &DEV1_KEY)?);
            s.handshake()?;
            if !served(&mut s, mid.wrapping_add(0x300)) {
                return Err("not served before the kill".into());
            }
            server.kill();
            Ok(!served(&mut s, mid.wrapping_add(0x302)) && !server.alive())
        };
        match ctl() {
            Ok(seen) => control += u32::from(seen),
            Err(e) => why = format!("control: {e}"),
        }
        server = match start() {
            Ok(s) => s,
            Err(e) => {
                not_run += o.server_attempts - row.attempts;
                why = format!("restart: {e}");
                break;
            }
        };
    }
    let n = row.attempts;
    row.control(control, n, false);
    row.failure = if not_run > 0 {
        Some(format!("{not_run}/{n} attempts could not run ({why})"))
    } else if control < n {
        Some(format!(
            "the control showed the effect in {control}/{n} ({why})"
        ))
    } else {
        None
    };
    let per_kind: Vec<String> = KINDS
        .iter()
        .zip(seen)
        .map(|(k, s)| {
            if s.died > 0 {
                format!("{k} {}/{n} (server died {})", s.unserved, s.died)
            } else {
                format!("{k} {}/{n}", s.unserved)
            }
        })
        .collect();
    row.defence = format!(
        "a failure ends that connection only; ClientHellos at the end of the sequence space \
         dropped; record and fragment lengths checked; a session ends with close_notify at its \
         last sequence number, never wrapping (not driven here: 2^48 records) (legitimate session unserved after: {}; a \
         fresh session refused {fresh_refused}/{n}; the attacker's own session served after \
         its rewritten records {own_served}/{own_ran}; control, the server killed under a \
         served session: seen {control}/{n}; {:.0} s{note}{})",
        per_kind.join(", "),
        began.elapsed().as_secs_f32(),
        if not_run > 0 {
            format!("; {not_run}/{n} attempts could not run: {why}")
        } else {
            String::new()
        },
    );
}
