//! Feature `log`: a handshake, a forged record, a fatal alert and the
//! session ends are logged with their reason, through the `log` crate.
#![cfg(all(feature = "log", feature = "server"))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;
use cssf_netsim::logs;

use cssf_dtls::{CipherSuite, Client, Config, Endpoint, Event, StaticPsk};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK";

fn config() -> Config {
    let mut c = Config::default();
    c.suites.clear();
    c.suites.push(CipherSuite::PskWithAes128Ccm8).unwrap();
    c
}

/// Moves every pending datagram between the two until both are quiet;
/// `tamper` may change a datagram from the client to the server.
fn pump(
    now: Duration,
    c: &mut Client<u8, SimRng>,
    s: &mut Endpoint<u8, StaticPsk<'_>, SimRng, 4>,
    tamper: &mut dyn FnMut(&mut Vec<u8>),
) {
    let mut buf = [0u8; 1500];
    loop {
        let mut moved = false;
        while let Some(t) = c.poll_transmit(now, &mut buf).unwrap() {
            let mut d = buf[..t.len].to_vec();
            tamper(&mut d);
            let _ = s.handle_datagram(now, 2, &mut d);
            moved = true;
        }
        while let Some(t) = s.poll_transmit(now, &mut buf).unwrap() {
            assert_eq!(t.to, 2);
            let mut d = buf[..t.len].to_vec();
            let _ = c.handle_datagram(now, 1, &mut d);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

/// Fails unless a `cssf_dtls::` message at `level` contains `needle`.
fn expect_logged(level: log::Level, needle: &str) {
    logs::expect(level, "cssf_dtls::", needle);
}

#[test]
fn handshake_steps_drops_and_ends_are_logged() {
    logs::capture();
    let keys = [(ID, KEY)];
    let mut s = Endpoint::new(
        config(),
        StaticPsk::new(&keys),
        SimRng::new(1),
        Duration::ZERO,
    )
    .unwrap();
    let mut c = Client::new(config(), ID, KEY, 1u8, SimRng::new(2), Duration::ZERO).unwrap();
    let now = Duration::from_secs(1);
    pump(now, &mut c, &mut s, &mut |_| {});
    assert!(c.is_connected());
    let handle = match s.poll_event() {
        Some(Event::Connected { handle, .. }) => handle,
        e => panic!("no Connected: {e:?}"),
    };
    while c.poll_event().is_some() {}
    // The cookie exchange and every handshake step.
    expect_logged(log::Level::Debug, "HelloVerifyRequest");
    expect_logged(
        log::Level::Debug,
        "cookie-verified ClientHello: handshake admitted",
    );
    for m in [
        "ServerHello",
        "ServerHelloDone",
        "ClientKeyExchange",
        "Finished",
    ] {
        expect_logged(log::Level::Debug, &format!("{m} (message_seq"));
    }
    expect_logged(log::Level::Debug, "handshake complete (Server");
    expect_logged(log::Level::Debug, "handshake complete (Client");
    expect_logged(
        log::Level::Info,
        &format!(
            "server session {} connected: PskWithAes128Ccm8",
            handle.raw()
        ),
    );
    expect_logged(log::Level::Info, "client connected: PskWithAes128Ccm8");
    // A record with a flipped bit is dropped, and says why.
    c.send(now, b"hello").unwrap();
    pump(now, &mut c, &mut s, &mut |d| {
        let last = d.len() - 1;
        d[last] ^= 1;
    });
    expect_logged(log::Level::Debug, "record dropped: authentication failed");
    // The application closes: both ends are logged with their reason.
    s.close(now, handle).unwrap();
    pump(now, &mut c, &mut s, &mut |_| {});
    while s.poll_event().is_some() {}
    while c.poll_event().is_some() {}
    expect_logged(
        log::Level::Info,
        &format!("server session {} closed: LocalClose", handle.raw()),
    );
    expect_logged(log::Level::Info, "client session 0 closed: PeerClosed");
    // A client with the wrong key: the server cannot open the client's
    // Finished, a fatal alert goes out, and both sides log the failure, at
    // debug: a peer can cause it at will, so it must not fill the log at
    // info or warn (warn is for this side's own faults).
    let mut bad = Client::new(
        config(),
        ID,
        b"wrongPSK",
        1u8,
        SimRng::new(3),
        Duration::ZERO,
    )
    .unwrap();
    pump(now, &mut bad, &mut s, &mut |_| {});
    while s.poll_event().is_some() {}
    while bad.poll_event().is_some() {}
    expect_logged(log::Level::Debug, "Server handshake failed: BadRecordMac");
    expect_logged(
        log::Level::Debug,
        "Client handshake failed: AlertReceived(BadRecordMac)",
    );
    expect_logged(
        log::Level::Debug,
        "server session 2 closed: Error(BadRecordMac)",
    );
    expect_logged(
        log::Level::Debug,
        "client session 0 closed: Error(AlertReceived(BadRecordMac))",
    );
    // A cookie-verified ClientHello the server cannot take (no suite in
    // common), sent again and again from the address its cookie names:
    // each copy is refused, none logs above debug.
    #[cfg(feature = "chacha20")]
    {
        let mut cc = config();
        cc.suites.clear();
        cc.suites
            .push(CipherSuite::PskWithChaCha20Poly1305Sha256)
            .unwrap();
        let mut odd = Client::new(cc, ID, KEY, 1u8, SimRng::new(4), Duration::ZERO).unwrap();
        let mut hellos = Vec::new();
        pump(now, &mut odd, &mut s, &mut |d| hellos.push(d.clone()));
        let loud = || {
            logs::lines()
                .iter()
                .filter(|(l, _, _)| *l <= log::Level::Info)
                .count()
        };
        let before = loud();
        let hello = hellos.last().unwrap().clone();
        let mut buf = [0u8; 1500];
        for _ in 0..50 {
            let _ = s.handle_datagram(now, 2, &mut hello.clone());
            while s.poll_transmit(now, &mut buf).unwrap().is_some() {}
            while s.poll_event().is_some() {}
        }
        assert_eq!(
            loud(),
            before,
            "a peer's refused ClientHellos logged above debug"
        );
        expect_logged(log::Level::Debug, "closed: Error(HandshakeFailure)");
    }
    let lines = logs::lines();
    assert!(
        !lines.iter().any(|(l, _, _)| *l <= log::Level::Warn),
        "nothing here is this side's fault: {lines:?}"
    );
    // Nothing secret: the PSK appears in no message, as text, bytes or hex.
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    for secret in ["secretPSK".to_string(), format!("{KEY:?}"), hex] {
        assert!(
            !lines.iter().any(|(_, _, m)| m.contains(&secret)),
            "{secret}"
        );
    }
}
