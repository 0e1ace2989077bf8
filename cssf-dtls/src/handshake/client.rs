//! The client's side of the handshake: its flights (ClientHello, then
//! ClientKeyExchange with its Certificate and CertificateVerify when asked,
//! ChangeCipherSpec, Finished) and the server's messages in order
//! (HelloVerifyRequest, ServerHello, Certificate, ServerKeyExchange,
//! CertificateRequest, ServerHelloDone, Finished); RFC 6347 §4.2, RFC 5246
//! §7.4, RFC 4279, RFC 8422, RFC 7250.

use super::*;

impl Connection {
    /// A PSK client connection with its first ClientHello queued (only the
    /// configured PSK suites are offered). The handshake's unit tests
    /// (which need `server` and `ecdhe`); a [`Client`](crate::Client)
    /// builds its connection in place.
    #[cfg(all(test, feature = "server", feature = "ecdhe"))]
    pub(crate) fn new_client(
        config: Config,
        identity: &[u8],
        psk: &[u8],
        now: Duration,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, Error> {
        Self::new_client_with(
            config,
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            None,
            None,
            now,
            rng,
        )
    }

    /// A client connection offering the PSK suites if `psk` is non-empty
    /// and the ECDHE_ECDSA suites (raw public keys) if `ecdsa` is set, with
    /// `own_key` as its key when the server asks for one; `session` is
    /// offered for resumption when its suite is among those offered.
    #[cfg(all(test, feature = "server", feature = "ecdhe"))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_client_with(
        config: Config,
        identity: &[u8],
        psk: &[u8],
        #[cfg(feature = "ecdhe")] ecdsa: Option<Option<SigningKey>>,
        session: Option<&Session>,
        now: Duration,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, Error> {
        let mut c = Self::blank_client(config, now);
        c.start_client(
            identity,
            psk,
            #[cfg(feature = "ecdhe")]
            ecdsa,
            session,
            now,
            rng,
        )?;
        Ok(c)
    }

    /// A client connection with `config` not started yet: the owner
    /// builds it where it keeps it, then
    /// [`start_client`](Self::start_client)s it there (no copy of the
    /// whole handshake state on the stack).
    pub(crate) fn blank_client(config: Config, now: Duration) -> Self {
        Self::blank(Role::Client, config, now)
    }

    /// Starts a blank client connection offering the PSK suites of its
    /// configuration if `psk` is non-empty (or no raw public keys are
    /// used) and its ECDHE_ECDSA suites if `ecdsa` is set (`own_key`
    /// inside, sent when the server asks for one): keys, random, the
    /// first ClientHello queued.
    pub(crate) fn start_client(
        &mut self,
        identity: &[u8],
        psk: &[u8],
        #[cfg(feature = "ecdhe")] ecdsa: Option<Option<SigningKey>>,
        session: Option<&Session>,
        now: Duration,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), Error> {
        if self.state != State::Failed || self.role != Role::Client {
            return Err(Error::Internal);
        }
        // Without `ecdhe` every suite is a PSK one: all are offered.
        #[cfg(feature = "ecdhe")]
        let (use_psk, use_ecdsa) = (!psk.is_empty() || ecdsa.is_none(), ecdsa.is_some());
        #[cfg(feature = "ecdhe")]
        self.config.suites.retain(|s| {
            let kx = s.key_exchange();
            (use_psk && kx.is_psk()) || (use_ecdsa && kx == KeyExchange::EcdheEcdsa)
        });
        self.config.validate()?;
        // An empty key is no key: refused (RFC 4279 keys are 1..2^16 bytes).
        if psk.is_empty() && self.config.suites.iter().any(|s| s.key_exchange().is_psk()) {
            return Err(Error::Config);
        }
        #[cfg(feature = "ecdhe")]
        {
            self.own_key = ecdsa.flatten().as_ref().map(key_pair).transpose()?;
        }
        #[cfg(feature = "resumption")]
        {
            self.offered = session
                .filter(|s| self.config.suites.contains(&s.suite))
                .cloned();
        }
        #[cfg(not(feature = "resumption"))]
        let _ = session;
        if let Some(n) = self.config.cid() {
            let mut cid = [0u8; MAX_CID_LEN];
            let cid = cid.get_mut(..usize::from(n)).ok_or(Error::Config)?;
            rng.fill_bytes(cid);
            self.cid_rx = heapless::Vec::from_slice(cid).map_err(|_| Error::Config)?;
        }
        self.identity = heapless::Vec::from_slice(identity).map_err(|_| Error::Config)?;
        self.psk
            .get_mut(..psk.len())
            .ok_or(Error::Config)?
            .copy_from_slice(psk);
        self.psk_len = psk.len();
        rng.fill_bytes(&mut self.client_random);
        self.state = State::ClientHelloSent;
        self.send_client_hello(now)
    }

    pub(super) fn offers_ecdhe(&self) -> bool {
        self.config
            .suites
            .iter()
            .any(|s| s.key_exchange().is_ecdhe())
    }

    pub(super) fn offers_ecdsa(&self) -> bool {
        #[cfg(feature = "ecdhe")]
        return self
            .config
            .suites
            .iter()
            .any(|s| s.key_exchange() == KeyExchange::EcdheEcdsa);
        #[cfg(not(feature = "ecdhe"))]
        false
    }

    pub(super) fn send_client_hello(&mut self, now: Duration) -> Result<(), Error> {
        let mut suites = [0u8; 16];
        let mut ns = 0;
        for (s, d) in self.config.suites.iter().zip(suites.chunks_exact_mut(2)) {
            d.copy_from_slice(&s.id().to_be_bytes());
            ns += 2;
        }
        let mut exts = [0u8; 96];
        let mut w = Writer::new(&mut exts);
        if self.offers_ecdhe() {
            ext::put(&mut w, ext::SUPPORTED_GROUPS, &[0, 2, 0, 23])?;
            ext::put(&mut w, ext::EC_POINT_FORMATS, &[1, 0])?;
        }
        #[cfg(feature = "ecdhe")]
        if self.offers_ecdsa() {
            ext::put(&mut w, ext::SIGNATURE_ALGORITHMS, &[0, 2, 4, 3])?;
            let rpk = [1, cert::CERT_TYPE_RAW_PUBLIC_KEY];
            if self.own_key.is_some() {
                ext::put(&mut w, ext::CLIENT_CERTIFICATE_TYPE, &rpk)?;
            }
            ext::put(&mut w, ext::SERVER_CERTIFICATE_TYPE, &rpk)?;
        }
        if self.config.offer_extended_master_secret {
            ext::put(&mut w, ext::EXTENDED_MASTER_SECRET, &[])?;
        }
        ext::put(&mut w, ext::RENEGOTIATION_INFO, &[0])?;
        if let Some(l) = self.config.record_size_limit {
            ext::put(&mut w, ext::RECORD_SIZE_LIMIT, &l.to_be_bytes())?;
        }
        if self.config.cid().is_some() {
            put_cid_extension(&mut w, &self.cid_rx)?;
            // RFC 9853 §3: offered beside connection_id, so the server can
            // check a new address of ours before it sends there.
            #[cfg(feature = "cid")]
            if self.config.rrc {
                ext::put(&mut w, crate::wire::rrc::EXTENSION_TYPE, &[])?;
            }
        }
        let elen = w.len();
        self.new_flight(now, true);
        self.hello_record_seq = self.write_seq[0];
        // Emitted from the connection's own fields (no copies of the
        // cookie or session ID on the stack).
        #[cfg(feature = "resumption")]
        let sid: &[u8] = self.offered.as_ref().map_or(&[], |s| s.id.as_slice());
        #[cfg(not(feature = "resumption"))]
        let sid: &[u8] = &[];
        let ch = ClientHelloRepr {
            version: DTLS_1_2,
            random: &self.client_random,
            session_id: sid,
            cookie: &self.cookie,
            cipher_suites: suites.get(..ns).unwrap_or(&[]),
            compression_methods: &[0],
            extensions: exts.get(..elen).unwrap_or(&[]),
        };
        push_message(
            &mut self.flight,
            &mut self.transcript,
            &mut self.send_msg_seq,
            (mt::CLIENT_HELLO, 0, ch.buffer_len()),
            |b| ch.emit(b),
        )?;
        self.start_sending();
        Ok(())
    }

    pub(super) fn process_hello_verify_request(
        &mut self,
        now: Duration,
        body: &[u8],
    ) -> Result<(), Error> {
        let hvr = HelloVerifyRequestRepr::parse(body)?;
        if hvr.version != DTLS_1_0 && hvr.version != DTLS_1_2 {
            return Err(Error::ProtocolVersion);
        }
        if self.cookies_taken >= MAX_COOKIES || hvr.cookie == self.cookie.as_slice() {
            // Enough cookies (a forged request could make us send at
            // will), or the one we have: nothing new to send.
            return Ok(());
        }
        // Replaced in place (no 255-byte temporary).
        self.cookie.clear();
        self.cookie
            .extend_from_slice(hvr.cookie)
            .map_err(|_| Error::Decode)?;
        self.cookies_taken = self.cookies_taken.saturating_add(1);
        // RFC 6347 §4.2.1: neither the first ClientHello nor the
        // HelloVerifyRequest enter the transcript.
        self.transcript = Sha256::new();
        self.send_client_hello(now)
    }

    pub(super) fn process_server_hello(&mut self, body: &[u8]) -> Result<(), Error> {
        let sh = ServerHelloRepr::parse(body)?;
        if sh.version != DTLS_1_2 {
            return Err(Error::ProtocolVersion);
        }
        let suite = CipherSuite::from_id(sh.cipher_suite)
            .filter(|s| self.config.suites.contains(s))
            .ok_or(Error::IllegalParameter)?;
        if sh.compression_method != 0 {
            return Err(Error::IllegalParameter);
        }
        self.ems = false;
        #[cfg(feature = "ecdhe")]
        let mut server_rpk = false;
        self.cid_tx = None;
        self.rrc = false;
        for e in ExtensionIter::new(sh.extensions) {
            let (t, d) = e?;
            match t {
                // RFC 7250 §4.2: the server's choice, one byte; we only
                // offer raw public keys.
                // RFC 5246 §7.4.1.4: an extension we did not offer aborts.
                ext::SERVER_CERTIFICATE_TYPE | ext::CLIENT_CERTIFICATE_TYPE
                    if !self.offers_ecdsa() =>
                {
                    return Err(Error::UnsupportedExtension);
                }
                #[cfg(feature = "ecdhe")]
                ext::SERVER_CERTIFICATE_TYPE => {
                    if d != [cert::CERT_TYPE_RAW_PUBLIC_KEY] {
                        return Err(Error::UnsupportedCertificate);
                    }
                    server_rpk = true;
                }
                #[cfg(feature = "ecdhe")]
                ext::CLIENT_CERTIFICATE_TYPE => {
                    if d != [cert::CERT_TYPE_RAW_PUBLIC_KEY] || self.own_key.is_none() {
                        return Err(Error::UnsupportedCertificate);
                    }
                    self.client_cert_rpk = true;
                }
                ext::EXTENDED_MASTER_SECRET => {
                    if !d.is_empty() {
                        return Err(Error::Decode);
                    }
                    if !self.config.offer_extended_master_secret {
                        return Err(Error::UnsupportedExtension);
                    }
                    self.ems = true;
                }
                cid_record::EXTENSION_TYPE => {
                    // RFC 9146 §3: the CID the server wants in our records.
                    if self.config.cid().is_none() {
                        return Err(Error::UnsupportedExtension);
                    }
                    let cid = cid_record::parse_extension(d)?;
                    // Longer than MAX_PEER_CID_LEN: we cannot send with it.
                    let cid =
                        heapless::Vec::from_slice(cid).map_err(|_| Error::IllegalParameter)?;
                    self.cid_tx = Some(cid);
                }
                #[cfg(feature = "cid")]
                crate::wire::rrc::EXTENSION_TYPE => {
                    // RFC 9853 §3: only an answer to our offer, empty.
                    if self.config.cid().is_none() || !self.config.rrc {
                        return Err(Error::UnsupportedExtension);
                    }
                    if !d.is_empty() {
                        return Err(Error::Decode);
                    }
                    self.rrc = true;
                }
                ext::RENEGOTIATION_INFO if d != [0] => {
                    return Err(Error::HandshakeFailure);
                }
                ext::RECORD_SIZE_LIMIT => {
                    self.peer_record_limit = Some(ext::parse_record_size_limit(d)?);
                }
                _ => {}
            }
        }
        if !self.ems && self.config.require_extended_master_secret {
            return Err(Error::InsufficientSecurity);
        }
        // Without server_certificate_type the server sends X.509.
        #[cfg(feature = "ecdhe")]
        if suite.key_exchange() == KeyExchange::EcdheEcdsa && !server_rpk {
            if !cfg!(feature = "x509") {
                return Err(Error::UnsupportedCertificate);
            }
            self.peer_x509 = true;
        }
        self.server_random = *sh.random;
        self.suite = Some(suite);
        self.session_id = heapless::Vec::from_slice(sh.session_id).map_err(|_| Error::Decode)?;
        // Borrowed field by field (the session is copied into others).
        #[cfg(feature = "resumption")]
        let offered = self.offered.as_ref();
        #[cfg(not(feature = "resumption"))]
        let offered: Option<&Session> = None;
        let resumed = offered.is_some_and(|s| s.id_is(sh.session_id));
        if let (true, Some(s)) = (resumed, offered) {
            // RFC 5246 §7.4.1.3: the same suite; RFC 7627 §5.3: the same
            // extended master secret state, or abort.
            if s.suite != suite {
                return Err(Error::IllegalParameter);
            }
            if s.ems != self.ems {
                return Err(Error::HandshakeFailure);
            }
            self.master = s.master.clone();
            self.identity = s.identity.clone();
            #[cfg(feature = "ecdhe")]
            {
                self.peer_key = s.peer_key;
                self.peer_x509 = s.peer_certificate;
            }
            self.resumed = true;
            self.install_keys()?;
        }
        Ok(())
    }

    /// Plain PSK: the ServerKeyExchange carries only a psk_identity_hint
    /// (not used: the client has one identity).
    #[cfg(not(feature = "ecdhe"))]
    pub(super) fn process_server_key_exchange(
        &mut self,
        _: &mut dyn CryptoRngCore,
        body: &[u8],
    ) -> Result<(), Error> {
        ServerKeyExchangeRepr::parse(body, false).map(|_| ())
    }

    #[cfg(feature = "ecdhe")]
    pub(super) fn process_server_key_exchange(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        body: &[u8],
    ) -> Result<(), Error> {
        let suite = self.suite.ok_or(Error::Internal)?;
        let ecdh = if suite.key_exchange() == KeyExchange::EcdheEcdsa {
            let (ske, params) = SignedServerKeyExchangeRepr::parse(body)?;
            self.verify_server_params(params, &ske.signed)?;
            Some((ske.group, ske.point))
        } else {
            let ecdhe = suite.key_exchange() == KeyExchange::EcdhePsk;
            ServerKeyExchangeRepr::parse(body, ecdhe)?.ecdh
        };
        if let Some((group, point)) = ecdh {
            if group != ext::SECP256R1 {
                return Err(Error::IllegalParameter);
            }
            let peer = parse_point(point)?;
            let p256 = self.p256();
            let (secret, ours) = p256.ephemeral(rng).map_err(|_| Error::Internal)?;
            self.ecdh_shared = Some(shared_secret(p256.agree_ephemeral(secret, &peer))?);
            self.ecdh = Ecdh::Sent(ours);
        }
        Ok(())
    }

    /// Checks the ServerKeyExchange signature (RFC 8422 §5.4) with the
    /// server's certified key.
    #[cfg(feature = "ecdhe")]
    pub(super) fn verify_server_params(
        &self,
        params: &[u8],
        signed: &DigitallySignedRepr<'_>,
    ) -> Result<(), Error> {
        let key = self.peer_key.as_ref().ok_or(Error::UnexpectedMessage)?;
        if signed.algorithm != ECDSA_SECP256R1_SHA256 {
            return Err(Error::IllegalParameter);
        }
        let sig = signature_from_der(signed.signature)?;
        let msg = signed_params(&self.client_random, &self.server_random, params)?;
        self.p256()
            .verify(&provider_key(key)?, msg.as_slice(), &sig)
            .map_err(|_| Error::DecryptError)
    }

    pub(super) fn send_client_key_exchange(
        &mut self,
        now: Duration,
        certificate: CertificateReply,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), Error> {
        #[cfg(not(feature = "ecdhe"))]
        let _ = rng;
        #[cfg(feature = "ecdhe")]
        let point = match &self.ecdh {
            Ecdh::Sent(p) => Some(*p),
            _ => None,
        };
        #[cfg(feature = "ecdhe")]
        let ecdsa = self.kx() == Some(KeyExchange::EcdheEcdsa);
        self.new_flight(now, true);
        #[cfg(feature = "ecdhe")]
        match certificate {
            CertificateReply::Own if ecdsa => self.push_own_certificate(false)?,
            CertificateReply::Empty if ecdsa => {
                self.push_handshake(mt::CERTIFICATE, 0, 3, |b| {
                    b.get_mut(..3).ok_or(Error::Internal)?.fill(0);
                    Ok(3)
                })?;
            }
            _ => {}
        }
        #[cfg(not(feature = "ecdhe"))]
        let _ = certificate;
        #[cfg(not(feature = "ecdhe"))]
        {
            // Emitted from the connection's identity (no copy of it).
            let cke = ClientKeyExchangeRepr {
                identity: &self.identity,
                point: None,
            };
            push_message(
                &mut self.flight,
                &mut self.transcript,
                &mut self.send_msg_seq,
                (mt::CLIENT_KEY_EXCHANGE, 0, cke.buffer_len()),
                |b| cke.emit(b),
            )?;
        }
        #[cfg(feature = "ecdhe")]
        if ecdsa {
            let cke = EcdhClientKeyExchangeRepr {
                point: point
                    .as_ref()
                    .map(|p| p.as_bytes())
                    .ok_or(Error::Internal)?,
            };
            self.push_handshake(mt::CLIENT_KEY_EXCHANGE, 0, cke.buffer_len(), |b| {
                cke.emit(b)
            })?;
        } else {
            let cke = ClientKeyExchangeRepr {
                identity: &self.identity,
                point: point.as_ref().map(|p| &p.as_bytes()[..]),
            };
            push_message(
                &mut self.flight,
                &mut self.transcript,
                &mut self.send_msg_seq,
                (mt::CLIENT_KEY_EXCHANGE, 0, cke.buffer_len()),
                |b| cke.emit(b),
            )?;
        }
        // The extended master secret's session hash ends at ClientKeyExchange
        // (RFC 7627 §3), so keys are derived before CertificateVerify.
        self.derive_keys()?;
        #[cfg(feature = "ecdhe")]
        if ecdsa && certificate == CertificateReply::Own {
            // RFC 5246 §7.4.8: a signature over every handshake message so far.
            let key = self.own_key.as_ref().ok_or(Error::Internal)?;
            let sig = self.p256().sign_digest(key, &self.transcript_hash(), rng);
            let sig = signature_to_der(sig)?;
            let cv = DigitallySignedRepr {
                algorithm: ECDSA_SECP256R1_SHA256,
                signature: &sig,
            };
            self.push_handshake(mt::CERTIFICATE_VERIFY, 0, cv.buffer_len(), |b| cv.emit(b))?;
        }
        self.push_ccs()?;
        let vd = prf::verify_data(&self.master, true, &self.transcript_hash());
        self.push_handshake(mt::FINISHED, 1, 12, |b| {
            b.get_mut(..12).ok_or(Error::Internal)?.copy_from_slice(&vd);
            Ok(12)
        })?;
        self.start_sending();
        Ok(())
    }

    /// A message of the client side's handshake, in sequence (RFC 6347
    /// §4.2.4 flights; the states are named after the last message).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn client_message(
        &mut self,
        now: Duration,
        epoch: u16,
        t: u8,
        seq: u16,
        body: &[u8],
        cx: &mut Deps<'_>,
    ) -> Result<(), Error> {
        #[cfg(not(feature = "ecdhe"))]
        let _ = &cx;
        match (self.state, t) {
            (State::ClientHelloSent, mt::HELLO_VERIFY_REQUEST) => {
                self.note_peer_flight_end(epoch, t, seq, body);
                self.process_hello_verify_request(now, body)
            }
            (State::ClientHelloSent, mt::SERVER_HELLO) => {
                // The timer keeps running until the server's whole flight
                // is in (RFC 6347 §4.2.4: a flight only partly received is
                // not received): the ClientHello repeated makes the server
                // resend what was lost without waiting for its timer.
                self.add_transcript(t, seq, body);
                self.process_server_hello(body)?;
                self.state = if self.resumed {
                    State::ResumeServerHelloReceived
                } else {
                    State::ServerHelloReceived
                };
                Ok(())
            }
            #[cfg(feature = "ecdhe")]
            (State::ServerHelloReceived, mt::CERTIFICATE)
                if self.kx() == Some(KeyExchange::EcdheEcdsa) =>
            {
                self.process_peer_certificate(&*cx.creds, body)?;
                self.add_transcript(t, seq, body);
                self.state = State::ServerCertificateReceived;
                Ok(())
            }
            (
                State::ServerHelloReceived | State::ServerCertificateReceived,
                mt::SERVER_KEY_EXCHANGE,
            ) => {
                // ECDHE_ECDSA needs the server's Certificate first.
                let ecdsa = self.kx().is_some_and(KeyExchange::is_ecdsa);
                if ecdsa != (self.state == State::ServerCertificateReceived) {
                    return Err(Error::UnexpectedMessage);
                }
                self.add_transcript(t, seq, body);
                self.process_server_key_exchange(&mut *cx.rng, body)?;
                self.state = State::ServerKeyExchangeReceived {
                    certificate: CertificateReply::NotAsked,
                };
                Ok(())
            }
            #[cfg(feature = "ecdhe")]
            (
                State::ServerKeyExchangeReceived {
                    certificate: CertificateReply::NotAsked,
                },
                mt::CERTIFICATE_REQUEST,
            ) if self.kx() == Some(KeyExchange::EcdheEcdsa) => {
                let cr = CertificateRequestRepr::parse(body)?;
                self.add_transcript(t, seq, body);
                // Servers may ask without requiring (GnuTLS does by default):
                // without a usable key (none, the server did not agree to a
                // raw public key, or it does not take ECDSA P-256) we answer
                // with an empty certificate_list and let it decide.
                let usable =
                    self.own_key.is_some() && self.client_cert_rpk && cr.allows_ecdsa_p256();
                self.state = State::ServerKeyExchangeReceived {
                    certificate: if usable {
                        CertificateReply::Own
                    } else {
                        CertificateReply::Empty
                    },
                };
                Ok(())
            }
            (
                st @ (State::ServerHelloReceived | State::ServerKeyExchangeReceived { .. }),
                mt::SERVER_HELLO_DONE,
            ) => {
                let certificate = match st {
                    State::ServerKeyExchangeReceived { certificate } => certificate,
                    _ => CertificateReply::NotAsked,
                };
                #[cfg(feature = "ecdhe")]
                let ecdhe = self.kx().is_some_and(KeyExchange::is_ecdhe);
                #[cfg(feature = "ecdhe")]
                if ecdhe && !matches!(self.ecdh, Ecdh::Sent(_)) {
                    return Err(Error::UnexpectedMessage);
                }
                if !body.is_empty() {
                    return Err(Error::Decode);
                }
                self.add_transcript(t, seq, body);
                self.note_peer_flight_end(epoch, t, seq, body);
                self.send_client_key_exchange(now, certificate, &mut *cx.rng)?;
                self.state = State::ClientFinishedSent;
                Ok(())
            }
            (State::ServerCcsReceived, mt::FINISHED) => {
                self.check_finished(body)?;
                self.add_transcript(t, seq, body);
                self.note_peer_flight_end(epoch, t, seq, body);
                if cfg!(feature = "resumption") && self.resumed {
                    // Abbreviated handshake: ours is the last flight.
                    self.new_flight(now, false);
                    self.push_ccs()?;
                    let vd = prf::verify_data(&self.master, true, &self.transcript_hash());
                    self.push_handshake(mt::FINISHED, 1, 12, |b| {
                        b.get_mut(..12).ok_or(Error::Internal)?.copy_from_slice(&vd);
                        Ok(12)
                    })?;
                    self.start_sending();
                }
                self.connected();
                Ok(())
            }
            _ => Err(Error::UnexpectedMessage),
        }
    }
}
