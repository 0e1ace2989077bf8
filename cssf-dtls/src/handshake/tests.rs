use super::*;
use crate::psk::StaticPsk;
use cssf_netsim::SimRng;

const NOW: Duration = Duration::ZERO;
static KEYS: [(&[u8], &[u8]); 1] = [(b"id", b"key-key-key-key!")];

/// Runs `f` with the test's stores bound as a handshake's dependencies.
fn with_deps<R>(rng: &mut SimRng, f: impl FnOnce(&mut Deps<'_>) -> R) -> R {
    let mut store = StaticPsk::new(&KEYS);
    let mut creds = Bound {
        store: &mut store,
        trust: &crate::RejectAll,
        cx: PeerContext::new(crate::SessionHandle::from_raw(1), &0u8, NOW),
    };
    let mut deps = Deps {
        rng,
        creds: &mut creds,
    };
    f(&mut deps)
}

fn pump(c: &mut Connection, s: &mut Connection, rng: &mut SimRng) {
    let mut buf = [0u8; 1500];
    for _ in 0..20 {
        let mut moved = false;
        while let Some(n) = c.poll_transmit(&mut buf).unwrap() {
            with_deps(rng, |d| s.handle_datagram(NOW, &mut buf[..n], d)).unwrap();
            moved = true;
        }
        while let Some(n) = s.poll_transmit(&mut buf).unwrap() {
            with_deps(rng, |d| c.handle_datagram(NOW, &mut buf[..n], d)).unwrap();
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

/// A connected pair without the cookie exchange (the server is built
/// straight from the first ClientHello).
fn connected_pair(rng: &mut SimRng) -> (Connection, Connection) {
    let mut c =
        Connection::new_client(Config::default(), b"id", b"key-key-key-key!", NOW, rng).unwrap();
    let mut buf = [0u8; 1500];
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    let (rh, frag, _) = RecordHeader::parse(&buf[..n]).unwrap();
    let (hh, body, _) = HandshakeHeader::parse(frag).unwrap();
    let mut s = Connection::new_server(
        Config::default(),
        None,
        NOW,
        rng,
        rh.sequence,
        hh.message_seq,
        body,
        &[],
        None,
    )
    .unwrap();
    pump(&mut c, &mut s, rng);
    assert_eq!((c.state, s.state), (State::Connected, State::Connected));
    (c, s)
}

#[test]
fn peer_points_are_validated() {
    let k = p256::SecretKey::random(&mut SimRng::new(1)).public_key();
    let encoded = k.to_encoded_point(false);
    assert_eq!(
        parse_point(encoded.as_bytes()).map(|p| *p.as_bytes()),
        Ok(*encoded.as_bytes().first_chunk::<65>().unwrap())
    );
    // compressed (not offered), the identity, truncated: refused on parsing
    assert!(parse_point(k.to_encoded_point(true).as_bytes()).is_err());
    assert_eq!(parse_point(&[0]).unwrap_err(), Error::IllegalParameter);
    assert!(parse_point(&encoded.as_bytes()[..64]).is_err());
    // off the curve: refused by the provider's ECDH, as illegal_parameter
    let mut off = [0u8; 65];
    off[0] = 4;
    off[32] = 1;
    off[64] = 1;
    let off = parse_point(&off).unwrap();
    let p256 = Config::default().crypto.p256;
    let (e, _) = p256.ephemeral(&mut SimRng::new(2)).unwrap();
    assert_eq!(
        shared_secret(p256.agree_ephemeral(e, &off)).unwrap_err(),
        Error::IllegalParameter
    );
    let (e, _) = p256.ephemeral(&mut SimRng::new(3)).unwrap();
    assert!(
        shared_secret(p256.agree_ephemeral(e, &parse_point(encoded.as_bytes()).unwrap())).is_ok()
    );
}

#[test]
fn handshake_without_cookie_exchange() {
    let mut rng = SimRng::new(3);
    let (c, s) = connected_pair(&mut rng);
    assert_eq!(c.suite, Some(CipherSuite::PskWithAes128Ccm8));
    assert_eq!(s.suite, Some(CipherSuite::PskWithAes128Ccm8));
    // Both proved the PSK of the client's identity.
    let id = Identity::Psk(PskIdentity::new(b"id").unwrap());
    assert_eq!(c.proven_identity(), Some(id.clone()));
    assert_eq!(s.proven_identity(), Some(id));
}

#[test]
fn renegotiation_is_refused_with_a_warning() {
    let mut rng = SimRng::new(4);
    let (mut c, mut s) = connected_pair(&mut rng);
    // The server asks for renegotiation (HelloRequest, epoch 1).
    s.new_flight(NOW, false);
    s.push_handshake(mt::HELLO_REQUEST, 1, 0, |_| Ok(0))
        .unwrap();
    s.start_sending();
    let mut buf = [0u8; 1500];
    let n = s.poll_transmit(&mut buf).unwrap().unwrap();
    with_deps(&mut rng, |d| c.handle_datagram(NOW, &mut buf[..n], d)).unwrap();
    assert_eq!(
        c.alert,
        Some((LEVEL_WARNING, AlertDescription::NoRenegotiation.to_u8()))
    );
    assert_eq!(c.state, State::Connected);
    // The warning goes out protected; the server stays connected.
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    assert_eq!(buf[0], CT_ALERT);
    assert_eq!(&buf[3..5], &[0, 1], "epoch 1");
    with_deps(&mut rng, |d| s.handle_datagram(NOW, &mut buf[..n], d)).unwrap();
    assert_eq!(s.state, State::Connected);
    assert_eq!(s.outcome(), None);
}

#[test]
fn short_output_buffer_reports_needed_and_keeps_the_datagram() {
    let mut rng = SimRng::new(5);
    let mut c =
        Connection::new_client(Config::default(), b"id", b"key-key-key-key!", NOW, &mut rng)
            .unwrap();
    let mut small = [0u8; 20];
    let err = c.poll_transmit(&mut small).unwrap_err();
    assert!(matches!(err, Error::BufferTooSmall { needed } if needed > 20));
    let mut buf = [0u8; 1500];
    assert!(c.poll_transmit(&mut buf).unwrap().is_some());
}

#[test]
fn peer_cids_longer_than_we_carry() {
    let mut rng = SimRng::new(8);
    let cfg = Config {
        cid_len: Some(4),
        ..Config::default()
    };
    // Server: a 40-byte CID offer is ignored (no CIDs), not fatal.
    let mut exts = [0u8; 64];
    let mut w = Writer::new(&mut exts);
    ext::put(&mut w, ext::EXTENDED_MASTER_SECRET, &[]).unwrap();
    put_cid_extension(&mut w, &[5; 40]).unwrap();
    let n = w.len();
    let ch = ClientHelloRepr {
        version: DTLS_1_2,
        random: &[3; 32],
        session_id: &[],
        cookie: &[],
        cipher_suites: &[0xC0, 0xA8],
        compression_methods: &[0],
        extensions: &exts[..n],
    };
    let mut body = [0u8; 256];
    let len = ch.buffer_len();
    ch.emit(&mut body).unwrap();
    let s = Connection::new_server(
        cfg.clone(),
        None,
        NOW,
        &mut rng,
        0,
        0,
        &body[..len],
        &[1, 2, 3, 4],
        None,
    )
    .unwrap();
    assert!(!s.cid_negotiated());
    assert_eq!(s.state, State::ServerHelloDoneSent { client_auth: false });
    // Client: a 40-byte CID from the server cannot be used.
    let mut c = Connection::new_client(cfg, b"id", b"k", NOW, &mut rng).unwrap();
    let mut exts = [0u8; 64];
    let mut w = Writer::new(&mut exts);
    ext::put(&mut w, ext::EXTENDED_MASTER_SECRET, &[]).unwrap();
    put_cid_extension(&mut w, &[5; 40]).unwrap();
    let n = w.len();
    let sh = ServerHelloRepr {
        version: DTLS_1_2,
        random: &[9; 32],
        session_id: &[],
        cipher_suite: CipherSuite::PskWithAes128Ccm8.id(),
        compression_method: 0,
        extensions: &exts[..n],
    };
    let len = sh.buffer_len();
    sh.emit(&mut body).unwrap();
    assert_eq!(
        c.process_server_hello(&body[..len]),
        Err(Error::IllegalParameter)
    );
}

#[test]
fn client_refuses_resumption_with_a_different_ems_state() {
    // RFC 7627 §5.3, client side: the ServerHello resuming a session
    // must match the session's extended master secret state.
    let mut rng = SimRng::new(7);
    let cfg = Config {
        require_extended_master_secret: false,
        ..Config::default()
    };
    for (session_ems, hello_ems) in [(true, false), (false, true)] {
        let session = Session {
            id: heapless::Vec::from_slice(&[7; 32]).unwrap(),
            master: Zeroizing::new([1; 48]),
            suite: CipherSuite::PskWithAes128Ccm8,
            ems: session_ems,
            identity: heapless::Vec::new(),
            peer_key: None,
            peer_certificate: false,
        };
        let mut c = Connection::new_client_with(
            cfg.clone(),
            b"id",
            b"k",
            None,
            Some(&session),
            NOW,
            &mut rng,
        )
        .unwrap();
        let exts: &[u8] = if hello_ems { &[0, 23, 0, 0] } else { &[] };
        let sh = ServerHelloRepr {
            version: DTLS_1_2,
            random: &[9; 32],
            session_id: &[7; 32],
            cipher_suite: CipherSuite::PskWithAes128Ccm8.id(),
            compression_method: 0,
            extensions: exts,
        };
        let mut body = [0u8; 128];
        let n = sh.buffer_len();
        sh.emit(&mut body).unwrap();
        assert_eq!(
            c.process_server_hello(&body[..n]),
            Err(Error::HandshakeFailure),
            "session EMS {session_ems}, ServerHello EMS {hello_ems}"
        );
        assert!(!c.resumed);
    }
}

#[test]
fn handshake_times_out_after_the_retransmission_budget() {
    let mut rng = SimRng::new(6);
    let cfg = Config {
        retransmit_initial: Duration::from_secs(1),
        max_retransmits: 2,
        ..Config::default()
    };
    let mut c = Connection::new_client(cfg, b"id", b"k", NOW, &mut rng).unwrap();
    let mut buf = [0u8; 1500];
    let mut sent = 0;
    let mut t = NOW;
    loop {
        while c.poll_transmit(&mut buf).unwrap().is_some() {
            sent += 1;
        }
        let Some(next) = c.poll_timeout() else { break };
        assert!(next > t);
        t = next;
        if c.handle_timeout(t).is_err() {
            break;
        }
    }
    assert_eq!(sent, 3, "first transmission plus two retransmissions");
    assert_eq!(c.outcome(), Some(CloseReason::Error(Error::Timeout)));
    // exponential backoff: 1 s, then 2 s, then the give-up at +4 s
    assert_eq!(t, Duration::from_secs(7));
}
/// The ClientHello body of an ECDHE_ECDSA client without a key, with
/// its server_certificate_type list (offered as `[2]`) replaced by `types`.
#[cfg(feature = "x509")]
fn ecdsa_hello_offering(types: u8, rng: &mut SimRng) -> std::vec::Vec<u8> {
    let cfg = Config {
        suites: heapless::Vec::from_slice(&[CipherSuite::EcdheEcdsaWithAes128Ccm8]).unwrap(),
        ..Config::default()
    };
    let mut c = Connection::new_client_with(cfg, b"", b"", Some(None), None, NOW, rng).unwrap();
    let mut buf = [0u8; 1500];
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    let (_, frag, _) = RecordHeader::parse(&buf[..n]).unwrap();
    let (_, body, _) = HandshakeHeader::parse(frag).unwrap();
    let mut body = body.to_vec();
    let at = body
        .windows(6)
        .position(|w| w == [0, 20, 0, 2, 1, cert::CERT_TYPE_RAW_PUBLIC_KEY])
        .expect("server_certificate_type offered");
    body[at + 5] = types;
    body
}

#[test]
fn unoffered_certificate_type_extensions_abort_a_psk_client() {
    // RFC 5246 §7.4.1.4: a PSK-only client offered no certificate types.
    let mut rng = SimRng::new(5);
    let mut c = Connection::new_client(Config::default(), b"id", b"k", NOW, &mut rng).unwrap();
    let random = [7u8; 32];
    for exts in [&[0u8, 20, 0, 1, 2][..], &[0, 19, 0, 1, 2]] {
        let sh = ServerHelloRepr {
            version: DTLS_1_2,
            random: &random,
            session_id: &[],
            cipher_suite: CipherSuite::PskWithAes128Ccm8.id(),
            compression_method: 0,
            extensions: exts,
        };
        let mut b = [0u8; 128];
        let n = sh.emit(&mut b).unwrap();
        assert_eq!(
            c.process_server_hello(&b[..n]),
            Err(Error::UnsupportedExtension)
        );
    }
}

#[cfg(feature = "x509")]
#[test]
fn x509_only_to_clients_that_take_it() {
    let mut rng = SimRng::new(6);
    let key = SigningKey::random(&mut rng);
    let cfg = Config {
        suites: heapless::Vec::from_slice(&[CipherSuite::EcdheEcdsaWithAes128Ccm8]).unwrap(),
        certificate: heapless::Vec::from_slice(b"DER certificate").unwrap(),
        ..Config::default()
    };
    let server = |body: &[u8], rng: &mut SimRng| {
        Connection::new_server(cfg.clone(), Some(&key), NOW, rng, 0, 0, body, &[], None)
    };
    // RFC 7250 §4.2: offered OpenPGP only, neither a raw key nor X.509.
    let body = ecdsa_hello_offering(1, &mut rng);
    assert_eq!(server(&body, &mut rng).err(), Some(Error::HandshakeFailure));
    // Offered X.509 explicitly: sent, and the choice is in the ServerHello.
    let body = ecdsa_hello_offering(cert::CERT_TYPE_X509, &mut rng);
    let mut s = server(&body, &mut rng).unwrap();
    let mut buf = [0u8; 1500];
    let n = s.poll_transmit(&mut buf).unwrap().unwrap();
    // The flight carries the certificate itself.
    assert!(buf[..n].windows(15).any(|w| w == b"DER certificate"));
    let (_, frag, _) = RecordHeader::parse(&buf[..n]).unwrap();
    let (hh, body, _) = HandshakeHeader::parse(frag).unwrap();
    assert_eq!(hh.msg_type, mt::SERVER_HELLO);
    let sh = ServerHelloRepr::parse(body).unwrap();
    assert_eq!(
        ExtensionIter::find(sh.extensions, ext::SERVER_CERTIFICATE_TYPE),
        Some(&[cert::CERT_TYPE_X509][..])
    );
}
#[test]
fn overlong_psk_identity_is_refused_not_emptied() {
    struct AnyIdentity;
    impl Credentials for AnyIdentity {
        fn psk(&mut self, _: &[u8], key: &mut [u8; MAX_PSK_LEN]) -> Option<usize> {
            key[..4].copy_from_slice(b"psk!");
            Some(4)
        }
        fn unknown_identity(&self) -> Error {
            Error::UnknownPskIdentity
        }
        fn trusted(&self, _: &PublicKey) -> bool {
            false
        }
        #[cfg(feature = "x509")]
        fn trusted_certificate(&self, _: &[u8], _: &PublicKey) -> bool {
            false
        }
    }
    let mut rng = SimRng::new(8);
    let mut c =
        Connection::new_client(Config::default(), b"id", b"key-key-key-key!", NOW, &mut rng)
            .unwrap();
    let mut buf = [0u8; 1500];
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    let (_, frag, _) = RecordHeader::parse(&buf[..n]).unwrap();
    let (_, body, _) = HandshakeHeader::parse(frag).unwrap();
    let mut s = Connection::new_server(
        Config::default(),
        None,
        NOW,
        &mut rng,
        0,
        0,
        body,
        &[],
        None,
    )
    .unwrap();
    for (len, ok) in [(MAX_IDENTITY_LEN, true), (MAX_IDENTITY_LEN + 1, false)] {
        let id = std::vec![b'x'; len];
        let ecdhe = s.kx() == Some(KeyExchange::EcdhePsk);
        let mut ecdh_point = None;
        if ecdhe {
            let k = p256::SecretKey::random(&mut rng).public_key();
            ecdh_point = Some(k.to_encoded_point(false));
        }
        let cke = ClientKeyExchangeRepr {
            identity: &id,
            point: ecdh_point.as_ref().map(|p| p.as_bytes()),
        };
        let mut b = [0u8; 512];
        let m = cke.emit(&mut b).unwrap();
        let r = s.process_client_key_exchange(&mut AnyIdentity, &b[..m]);
        if ok {
            assert_eq!(r, Ok(()));
            assert_eq!(s.identity.as_slice(), &id[..]);
        } else {
            assert_eq!(r, Err(Error::UnknownPskIdentity));
        }
    }
}

#[test]
fn signatures_are_der_encoded_as_the_ecdsa_crate_encodes_them() {
    let mut cases: std::vec::Vec<[u8; 64]> = std::vec::Vec::new();
    let mut b = [0u8; 64];
    b[..32].fill(0x7f);
    b[32..].fill(0x80);
    cases.push(b); // high bit of s: a zero byte in front
    let mut b = [0x11u8; 64];
    b[..3].fill(0);
    b[32] = 0;
    b[33] = 0x80;
    cases.push(b); // leading zeros dropped, then a zero byte for the high bit
    let mut b = [0u8; 64];
    b[31] = 1;
    b[63] = 0xff;
    cases.push(b); // one-byte integers
    let p256 = Config::default().crypto.p256;
    let mut rng = SimRng::new(7);
    let key = p256.generate(&mut rng).unwrap();
    for i in 0u8..64 {
        let s = p256.sign_digest(&key, &[i; 32], &mut rng).unwrap();
        cases.push(*s.as_bytes());
    }
    for c in cases {
        let ours = signature_to_der(Ok(cssf_provider::Signature::from_bytes(c))).unwrap();
        let theirs = p256::ecdsa::Signature::from_slice(&c).unwrap().to_der();
        assert_eq!(&ours[..], theirs.as_bytes(), "{c:02x?}");
        // And it decodes back to the same r || s.
        assert_eq!(signature_from_der(&ours).unwrap().as_bytes(), &c);
    }
}
