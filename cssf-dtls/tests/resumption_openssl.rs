//! Session resumption against OpenSSL (DTLS 1.2, PSK suites): our client
//! resumes with `openssl s_server`, and `openssl s_client -sess_out` /
//! `-sess_in` resumes with our server. Both sides must see an abbreviated
//! handshake: s_server prints "Reused session-id", s_client "Reused,
//! TLSv1.2", and our side reports `is_resumed`.
#![cfg(all(
    feature = "server",
    feature = "resumption",
    feature = "ecdhe",
    feature = "chacha20"
))]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod at;
mod common;

use at::At;
use std::net::{SocketAddr, UdpSocket};
use std::string::String;
use std::time::{Duration, Instant};
use std::vec::Vec;

use common::{config, seed, unhex, Peer};
use cssf_dtls::{CipherSuite, Client, Endpoint, Event, RejectAll, Session, StaticPsk};
use cssf_netsim::peer::{free_udp_port, require_binary, version};
use cssf_netsim::SimRng;

const PSK_HEX: &str = "00112233445566778899aabbccddeeff";
const ID: &str = "Client_identity";
const INSTALL: &str = "apt-get install -y openssl";

const SUITES: [(CipherSuite, &str); 2] = [
    (CipherSuite::PskWithAes128Ccm8, "PSK-AES128-CCM8"),
    (
        CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
        "ECDHE-PSK-CHACHA20-POLY1305",
    ),
];

/// Drives `client` on `sock`: handshake, send `msg`, close. Returns
/// whether it resumed and its session. Bounded by `timeout`.
fn client_run(
    sock: &UdpSocket,
    mut client: Client<SocketAddr, SimRng>,
    msg: &[u8],
    timeout: Duration,
) -> Result<(bool, Option<Session>), String> {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    loop {
        let now = start.elapsed();
        if now > timeout {
            return Err(String::from("handshake timed out"));
        }
        while let Some(t) = client
            .poll_transmit(now, &mut buf)
            .map_err(|e| e.to_string())?
        {
            sock.send_to(&buf[..t.len], t.to)
                .map_err(|e| e.to_string())?;
        }
        while let Some(ev) = client.poll_event() {
            if let Event::Closed { reason, .. } = ev {
                return Err(format!("closed during the handshake: {reason:?}"));
            }
        }
        if client.is_connected() {
            let result = (client.is_resumed(), client.session());
            client.send(now, msg).map_err(|e| e.to_string())?;
            while let Some(t) = client
                .poll_transmit(now, &mut buf)
                .map_err(|e| e.to_string())?
            {
                sock.send_to(&buf[..t.len], t.to)
                    .map_err(|e| e.to_string())?;
            }
            // Let the peer read the data before close_notify follows.
            std::thread::sleep(Duration::from_millis(300));
            client.close(now);
            while let Some(t) = client
                .poll_transmit(now, &mut buf)
                .map_err(|e| e.to_string())?
            {
                sock.send_to(&buf[..t.len], t.to)
                    .map_err(|e| e.to_string())?;
            }
            return Ok(result);
        }
        let wait = client
            .poll_timeout()
            .map(|t| t.saturating_sub(now))
            .unwrap_or(Duration::from_millis(100))
            .clamp(Duration::from_millis(5), Duration::from_millis(100));
        sock.set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => client
                .handle_datagram(start.elapsed(), from, &mut buf[..n])
                .map_err(|e| format!("handshake failed: {e}"))?,
            Err(_) => client.handle_timeout(start.elapsed()),
        }
    }
}

#[test]
fn our_client_resumes_with_openssl_s_server() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    let key = unhex(PSK_HEX);
    for (suite, name) in SUITES {
        let port = free_udp_port();
        let accept = format!("127.0.0.1:{port}");
        let server: SocketAddr = accept.parse().unwrap();
        let peer = Peer::spawn(
            "openssl",
            &[
                "s_server",
                "-dtls1_2",
                "-accept",
                &accept,
                "-listen",
                "-nocert",
                "-psk",
                PSK_HEX,
                "-cipher",
                name,
                "-no_ticket",
                "-naccept",
                "2",
            ],
            format!("{ver} s_server, suite {name}"),
        );
        let what = peer.what.clone();
        assert!(
            peer.wait_for("ACCEPT", Duration::from_secs(10)),
            "{what}: never ready: {}",
            peer.output()
        );
        let first = Client::new(
            config(&[suite]),
            ID.as_bytes(),
            &key,
            server,
            SimRng::new(seed()),
            Duration::ZERO,
        )
        .unwrap();
        // s_server serves one client address at a time (its socket is
        // connected to the first peer): the restarted client keeps its port.
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (resumed, session) =
            client_run(&sock, first, b"first connection\n", Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{what}: first connection: {e}\n{}", peer.output()));
        assert!(!resumed, "{what}: the first handshake cannot resume");
        let session = session.unwrap_or_else(|| panic!("{what}: no session ID from s_server"));
        assert!(
            peer.wait_for("first connection", Duration::from_secs(5)),
            "{what}: s_server never printed our data:\n{}",
            peer.output()
        );
        // s_server accepts again once the first connection is done (our
        // ClientHello is retransmitted if it comes too early); then resume
        // with a new client connection (a restarted client).
        assert!(
            peer.wait_for("DONE", Duration::from_secs(10)),
            "{what}: first connection never closed:\n{}",
            peer.output()
        );
        let second = Client::resume(
            config(&[suite]),
            ID.as_bytes(),
            &key,
            &session,
            server,
            SimRng::new(seed()),
            Duration::ZERO,
        )
        .unwrap();
        let (resumed, again) = client_run(
            &sock,
            second,
            b"second connection\n",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{what}: resumed connection: {e}\n{}", peer.output()));
        assert!(
            peer.wait_for("second connection", Duration::from_secs(5)),
            "{what}: s_server never printed our data:\n{}",
            peer.output()
        );
        let out = peer.output();
        assert!(resumed, "{what}: our client did not resume:\n{out}");
        assert_eq!(again.unwrap().id(), session.id(), "{what}");
        assert!(
            out.contains("Reused session-id"),
            "{what}: s_server did not report a reused session:\n{out}"
        );
    }
}

#[test]
fn openssl_s_client_resumes_with_our_server() {
    if !require_binary("openssl", INSTALL) {
        return;
    }
    let ver = version("openssl", &["version"]);
    let key = unhex(PSK_HEX);
    let keys: [(&[u8], &[u8]); 1] = [(ID.as_bytes(), &key)];
    for (suite, name) in SUITES {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap().to_string();
        let sess = std::env::temp_dir().join(format!(
            "cssf-dtls-sess-{}-{}.pem",
            std::process::id(),
            suite.id()
        ));
        let sess = sess.to_str().unwrap().to_owned();
        let start = Instant::now();
        let mut server: Endpoint<SocketAddr, _, _, 4, RejectAll, 4> = Endpoint::new(
            config(&[suite]),
            StaticPsk::new(&keys),
            SimRng::new(seed()),
            Duration::ZERO,
        )
        .unwrap();
        let mut buf = [0u8; 2048];
        let mut resumed: Vec<bool> = Vec::new();
        let mut pings = 0;
        let mut peers: Vec<Peer> = Vec::new();
        for (round, sess_flag) in [(0, "-sess_out"), (1, "-sess_in")] {
            let mut p = Peer::spawn(
                "openssl",
                &[
                    "s_client",
                    "-dtls1_2",
                    "-connect",
                    &addr,
                    "-psk",
                    PSK_HEX,
                    "-psk_identity",
                    ID,
                    "-cipher",
                    name,
                    sess_flag,
                    &sess,
                ],
                format!("{ver} s_client {sess_flag}, suite {name}"),
            );
            p.write_stdin(b"ping from openssl\n");
            peers.push(p);
            let what = peers[round].what.clone();
            // Serve until this client's ping arrives (bounded).
            while pings <= round {
                let now = start.elapsed();
                assert!(
                    now < Duration::from_secs(40),
                    "{what}: timed out; output:\n{}",
                    peers[round].output()
                );
                while let Some(t) = server.poll_transmit(now, &mut buf).unwrap() {
                    let _ = sock.send_to(&buf[..t.len], t.to);
                }
                while let Some(ev) = server.poll_event() {
                    match ev {
                        Event::Connected { peer, .. } => resumed.push(server.resumed_at(&peer)),
                        Event::ApplicationData { peer, .. } => {
                            let mut b = [0u8; 2048];
                            if let Ok(Some(n)) = server.recv_at(&peer, &mut b) {
                                if b[..n].starts_with(b"ping from openssl") {
                                    pings += 1;
                                    server.send_at(now, &peer, b"pong\n").unwrap();
                                }
                            }
                        }
                        _ => {}
                    }
                }
                sock.set_read_timeout(Some(Duration::from_millis(20)))
                    .unwrap();
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let _ = server.handle_datagram(start.elapsed(), from, &mut buf[..n]);
                    }
                    Err(_) => {
                        server.handle_timeout(start.elapsed());
                    }
                }
            }
            while let Some(t) = server.poll_transmit(start.elapsed(), &mut buf).unwrap() {
                let _ = sock.send_to(&buf[..t.len], t.to);
            }
            assert!(
                peers[round].wait_for("pong", Duration::from_secs(5)),
                "{what}: never printed our reply:\n{}",
                peers[round].output()
            );
            if round == 0 {
                // s_client writes the session file once connected.
                let deadline = Instant::now() + Duration::from_secs(5);
                while std::fs::metadata(&sess).map_or(true, |m| m.len() == 0)
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_file(&sess);
        let first = peers[0].output();
        let second = peers[1].output();
        assert!(
            first.contains("New, TLSv1.2"),
            "{}: first handshake not new:\n{first}",
            peers[0].what
        );
        assert!(
            second.contains("Reused, TLSv1.2"),
            "{}: not resumed:\n{second}",
            peers[1].what
        );
        assert_eq!(
            resumed,
            [false, true],
            "{}: our server's view",
            peers[1].what
        );
    }
}
