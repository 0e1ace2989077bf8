//! The server's side of the handshake (feature `server`): a Connection is
//! built from a ClientHello whose cookie checked out; its flight
//! (ServerHello, Certificate, ServerKeyExchange, CertificateRequest,
//! ServerHelloDone, or the abbreviated ServerHello, ChangeCipherSpec,
//! Finished) and the client's messages in order (Certificate,
//! ClientKeyExchange, CertificateVerify, Finished); RFC 6347 §4.2, RFC 5246
//! §7.4, RFC 4279, RFC 8422, RFC 7250, RFC 5246 §7.4.1.2 (resumption).

use super::*;

impl Connection {
    /// A server connection for a ClientHello whose cookie was verified
    /// (the handshake's unit tests; the endpoint builds its connection in
    /// place with [`blank_server`](Self::blank_server) and
    /// [`start_server`](Self::start_server)).
    #[cfg(all(test, feature = "server", feature = "ecdhe"))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_server(
        config: Config,
        #[cfg(feature = "ecdhe")] own_key: Option<&SigningKey>,
        now: Duration,
        rng: &mut dyn CryptoRngCore,
        record_seq: u64,
        message_seq: u16,
        ch_body: &[u8],
        cid: &[u8],
        cached: Option<Session>,
    ) -> Result<Self, Error> {
        let mut c = Self::blank_server(config, now);
        c.start_server(
            #[cfg(feature = "ecdhe")]
            own_key,
            now,
            rng,
            record_seq,
            message_seq,
            ch_body,
            cid,
            cached,
        )?;
        Ok(c)
    }

    /// A server connection with `config` not started yet: the owner
    /// builds it where it keeps it, then
    /// [`start_server`](Self::start_server)s it there (no copy of the
    /// whole handshake state on the stack).
    #[cfg(feature = "server")]
    #[inline(never)]
    pub(crate) fn blank_server(config: Config, now: Duration) -> Self {
        Self::blank(Role::Server, config, now)
    }

    /// Starts a blank server connection for a ClientHello whose cookie was
    /// verified. `cid` is the CID this session receives with (when the
    /// client offers CIDs and `config.cid_len` is set); `cached` is the
    /// session matching the ClientHello's session ID, if the server still
    /// holds it.
    #[cfg(feature = "server")]
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(crate) fn start_server(
        &mut self,
        #[cfg(feature = "ecdhe")] own_key: Option<&SigningKey>,
        now: Duration,
        rng: &mut dyn CryptoRngCore,
        record_seq: u64,
        message_seq: u16,
        ch_body: &[u8],
        cid: &[u8],
        cached: Option<Session>,
    ) -> Result<(), Error> {
        let c = self;
        #[cfg(feature = "ecdhe")]
        {
            c.own_key = own_key.map(key_pair).transpose()?;
        }
        c.cid_rx = heapless::Vec::from_slice(cid).map_err(|_| Error::Config)?;
        c.write_seq[0] = record_seq;
        c.recv_msg_seq = message_seq.wrapping_add(1);
        c.send_msg_seq = message_seq;
        c.note_peer_flight_end(0, mt::CLIENT_HELLO, message_seq, ch_body);
        c.add_transcript(mt::CLIENT_HELLO, message_seq, ch_body);
        c.process_client_hello(now, rng, ch_body, cached)
    }

    /// Server: an X.509 certificate is configured (feature `x509`).
    #[cfg(all(feature = "ecdhe", feature = "server"))]
    pub(super) fn has_certificate(&self) -> bool {
        #[cfg(feature = "x509")]
        return !self.config.certificate.is_empty();
        #[cfg(not(feature = "x509"))]
        false
    }

    #[cfg(feature = "server")]
    pub(super) fn process_client_hello(
        &mut self,
        now: Duration,
        rng: &mut dyn CryptoRngCore,
        body: &[u8],
        cached: Option<Session>,
    ) -> Result<(), Error> {
        let ch = ClientHelloRepr::parse(body)?;
        // DTLS versions count down: 0xFEFD (1.2) < 0xFEFF (1.0).
        if ch.version > DTLS_1_2 || (ch.version >> 8) != 0xFE {
            return Err(Error::ProtocolVersion);
        }
        if !ch.compression_methods.contains(&0) {
            return Err(Error::IllegalParameter);
        }
        let mut client_ems = false;
        let mut reneg = ch.suites().any(|s| s == EMPTY_RENEGOTIATION_INFO_SCSV);
        #[cfg(feature = "ecdhe")]
        let mut p256_ok = true;
        #[cfg(feature = "ecdhe")]
        let mut point_formats = false;
        let mut client_limit = false;
        #[cfg(feature = "ecdhe")]
        let mut sig_ok = true;
        #[cfg(feature = "ecdhe")]
        let mut server_rpk = false;
        // RFC 7250 §4.2: the server certificate types the client offered
        // (absent: X.509 only).
        #[cfg(feature = "ecdhe")]
        let mut server_types: Option<&[u8]> = None;
        #[cfg(feature = "ecdhe")]
        let mut client_rpk = false;
        let mut client_cid = None;
        #[cfg_attr(not(feature = "cid"), allow(unused_mut))]
        let mut client_rrc = false;
        for e in ExtensionIter::new(ch.extensions) {
            let (t, d) = e?;
            match t {
                #[cfg(feature = "ecdhe")]
                ext::SIGNATURE_ALGORITHMS => {
                    sig_ok = ext::sig_algs_contain(d, ECDSA_SECP256R1_SHA256);
                }
                #[cfg(feature = "ecdhe")]
                ext::SERVER_CERTIFICATE_TYPE => {
                    server_rpk = ext::cert_types_contain(d, cert::CERT_TYPE_RAW_PUBLIC_KEY);
                    server_types = Some(d);
                }
                #[cfg(feature = "ecdhe")]
                ext::CLIENT_CERTIFICATE_TYPE => {
                    client_rpk = ext::cert_types_contain(d, cert::CERT_TYPE_RAW_PUBLIC_KEY);
                }
                ext::EXTENDED_MASTER_SECRET => client_ems = true,
                ext::RENEGOTIATION_INFO => {
                    if d != [0] {
                        return Err(Error::HandshakeFailure);
                    }
                    reneg = true;
                }
                #[cfg(feature = "ecdhe")]
                ext::SUPPORTED_GROUPS => p256_ok = ext::groups_contain_p256(d),
                #[cfg(feature = "ecdhe")]
                ext::EC_POINT_FORMATS => point_formats = true,
                ext::RECORD_SIZE_LIMIT => {
                    self.peer_record_limit = Some(ext::parse_record_size_limit(d)?);
                    client_limit = true;
                }
                cid_record::EXTENSION_TYPE => client_cid = Some(cid_record::parse_extension(d)?),
                #[cfg(feature = "cid")]
                crate::wire::rrc::EXTENSION_TYPE => client_rrc = d.is_empty(),
                _ => {}
            }
        }
        // A certificate only to a client that takes X.509 (RFC 7250 §4.2:
        // one that offered other types only gets none).
        #[cfg(feature = "ecdhe")]
        let x509_ok = self.has_certificate()
            && server_types.map_or(true, |d| ext::cert_types_contain(d, cert::CERT_TYPE_X509));
        let suite = self
            .config
            .suites
            .iter()
            .copied()
            .filter(|s| match s.key_exchange() {
                KeyExchange::Psk => true,
                #[cfg(feature = "ecdhe")]
                KeyExchange::EcdhePsk => p256_ok,
                // Raw public keys only: the client must accept one from us,
                // and offer its own when we require client authentication.
                #[cfg(feature = "ecdhe")]
                KeyExchange::EcdheEcdsa => {
                    p256_ok
                        && sig_ok
                        && (server_rpk || x509_ok)
                        && self.own_key.is_some()
                        && (client_rpk || !self.config.require_client_auth)
                }
            })
            .find(|s| ch.suites().any(|c| c == s.id()))
            .ok_or(Error::HandshakeFailure)?;
        if !client_ems && self.config.require_extended_master_secret {
            return Err(Error::InsufficientSecurity);
        }
        // Resumption (RFC 5246 §7.4.1.2): the cached session, if its suite
        // is still on both lists. RFC 7627 §5.3: a session with extended
        // master secret is not resumed without it (abort); one without it is
        // not resumed when the client now offers it (full handshake).
        let resume = match cached {
            Some(s)
                if s.id_is(ch.session_id)
                    && self.config.suites.contains(&s.suite)
                    && ch.suites().any(|c| c == s.suite.id()) =>
            {
                if s.ems && !client_ems {
                    return Err(Error::HandshakeFailure);
                }
                (s.ems == client_ems).then_some(s)
            }
            _ => None,
        };
        self.client_random = *ch.random;
        rng.fill_bytes(&mut self.server_random);
        if let Some(s) = resume {
            self.resumed = true;
            self.suite = Some(s.suite);
            self.ems = s.ems;
            self.master = s.master.clone();
            self.identity = s.identity.clone();
            #[cfg(feature = "ecdhe")]
            {
                self.peer_key = s.peer_key;
                self.peer_x509 = s.peer_certificate;
            }
            self.session_id = s.id.clone();
        } else {
            self.ems = client_ems;
            self.suite = Some(suite);
            self.session_id.clear();
            if self.config.resumes() {
                let mut id = [0u8; SESSION_ID_LEN];
                rng.fill_bytes(&mut id);
                self.session_id = heapless::Vec::from_slice(&id).map_err(|_| Error::Internal)?;
            }
        }
        // RFC 9146 §3: use the client's CID when sending; ask for ours.
        // A CID longer than we can carry, or one without the RRC we
        // require: no CIDs on this connection.
        let rrc = client_rrc && self.config.rrc;
        let client_cid = client_cid
            .filter(|c| c.len() <= MAX_PEER_CID_LEN)
            .filter(|_| rrc || !self.config.require_rrc);
        if let (Some(cid), Some(_)) = (client_cid, self.config.cid()) {
            self.cid_tx = Some(heapless::Vec::from_slice(cid).map_err(|_| Error::Internal)?);
            // RFC 9853 §3: RRC only beside connection_id.
            self.rrc = rrc;
        } else {
            self.cid_rx.clear();
        }
        let suite = self.suite.ok_or(Error::Internal)?;

        let ecdsa = suite.key_exchange().is_ecdsa();
        // We ask for (and require) the client's raw public key; we send an
        // X.509 certificate to a client that takes no raw public key.
        #[cfg(feature = "ecdhe")]
        let client_auth = ecdsa && self.config.require_client_auth && !self.resumed;
        #[cfg(not(feature = "ecdhe"))]
        let client_auth = false;
        #[cfg(feature = "ecdhe")]
        let send_x509 = ecdsa && !server_rpk;
        let mut exts = [0u8; 80];
        let mut w = Writer::new(&mut exts);
        if reneg {
            ext::put(&mut w, ext::RENEGOTIATION_INFO, &[0])?;
        }
        if client_ems {
            ext::put(&mut w, ext::EXTENDED_MASTER_SECRET, &[])?;
        }
        if let (true, Some(l)) = (client_limit, self.config.record_size_limit) {
            ext::put(&mut w, ext::RECORD_SIZE_LIMIT, &l.to_be_bytes())?;
        }
        let ecdhe = suite.key_exchange().is_ecdhe() && !self.resumed;
        #[cfg(feature = "ecdhe")]
        if ecdhe && point_formats {
            ext::put(&mut w, ext::EC_POINT_FORMATS, &[1, 0])?;
        }
        #[cfg(feature = "ecdhe")]
        if ecdsa {
            // Also when resuming: the client checks the type it agreed to.
            let rpk = [cert::CERT_TYPE_RAW_PUBLIC_KEY];
            if !send_x509 {
                ext::put(&mut w, ext::SERVER_CERTIFICATE_TYPE, &rpk)?;
            } else if server_types.is_some() {
                // RFC 7250 §4.2: a client that offered the extension is
                // told the selected type, X.509 included.
                ext::put(
                    &mut w,
                    ext::SERVER_CERTIFICATE_TYPE,
                    &[cert::CERT_TYPE_X509],
                )?;
            }
            if client_auth {
                ext::put(&mut w, ext::CLIENT_CERTIFICATE_TYPE, &rpk)?;
            }
        }
        if self.cid_tx.is_some() {
            put_cid_extension(&mut w, &self.cid_rx)?;
            #[cfg(feature = "cid")]
            if self.rrc {
                ext::put(&mut w, crate::wire::rrc::EXTENSION_TYPE, &[])?;
            }
        }
        let elen = w.len();
        let random = self.server_random;
        let sid = self.session_id.clone();
        let sh = ServerHelloRepr {
            version: DTLS_1_2,
            random: &random,
            session_id: &sid,
            cipher_suite: suite.id(),
            compression_method: 0,
            extensions: exts.get(..elen).unwrap_or(&[]),
        };
        self.new_flight(now, true);
        self.push_handshake(mt::SERVER_HELLO, 0, sh.buffer_len(), |b| sh.emit(b))?;
        if self.resumed {
            // Abbreviated handshake: ChangeCipherSpec and Finished follow
            // the ServerHello in the same flight.
            self.install_keys()?;
            self.push_ccs()?;
            let vd = prf::verify_data(&self.master, false, &self.transcript_hash());
            self.push_handshake(mt::FINISHED, 1, 12, |b| {
                b.get_mut(..12).ok_or(Error::Internal)?.copy_from_slice(&vd);
                Ok(12)
            })?;
            self.start_sending();
            self.state = State::ResumeFinishedSent;
            return Ok(());
        }
        let hint = self.config.psk_identity_hint.clone();
        #[cfg(feature = "ecdhe")]
        if ecdsa {
            self.push_own_certificate(send_x509)?;
            let p256 = self.p256();
            let (secret, point) = p256.ephemeral(&mut *rng).map_err(|_| Error::Internal)?;
            self.ecdh = Ecdh::Secret(secret);
            let mut params = [0u8; 4 + cert::P256_POINT_LEN];
            let plen = SignedServerKeyExchangeRepr::emit_params(
                ext::SECP256R1,
                point.as_bytes(),
                &mut params,
            )?;
            let params = params.get(..plen).ok_or(Error::Internal)?;
            let msg = signed_params(&self.client_random, &self.server_random, params)?;
            let key = self.own_key.as_ref().ok_or(Error::Internal)?;
            let sig = signature_to_der(p256.sign(key, msg.as_slice(), rng))?;
            let ske = SignedServerKeyExchangeRepr {
                group: ext::SECP256R1,
                point: point.as_bytes(),
                signed: DigitallySignedRepr {
                    algorithm: ECDSA_SECP256R1_SHA256,
                    signature: &sig,
                },
            };
            self.push_handshake(mt::SERVER_KEY_EXCHANGE, 0, ske.buffer_len(), |b| {
                ske.emit(b)
            })?;
            if client_auth {
                let cr = CertificateRequestRepr::ECDSA_P256;
                self.push_handshake(mt::CERTIFICATE_REQUEST, 0, cr.buffer_len(), |b| cr.emit(b))?;
            }
        } else if ecdhe {
            let (secret, point) = self.p256().ephemeral(rng).map_err(|_| Error::Internal)?;
            self.ecdh = Ecdh::Secret(secret);
            let ske = ServerKeyExchangeRepr {
                hint: &hint,
                ecdh: Some((ext::SECP256R1, point.as_bytes())),
            };
            self.push_handshake(mt::SERVER_KEY_EXCHANGE, 0, ske.buffer_len(), |b| {
                ske.emit(b)
            })?;
        }
        if !ecdsa && !ecdhe && !hint.is_empty() {
            let ske = ServerKeyExchangeRepr {
                hint: &hint,
                ecdh: None,
            };
            self.push_handshake(mt::SERVER_KEY_EXCHANGE, 0, ske.buffer_len(), |b| {
                ske.emit(b)
            })?;
        }
        self.push_handshake(mt::SERVER_HELLO_DONE, 0, 0, |_| Ok(0))?;
        self.start_sending();
        self.state = State::ServerHelloDoneSent { client_auth };
        Ok(())
    }

    #[cfg(feature = "server")]
    pub(super) fn process_client_key_exchange(
        &mut self,
        creds: &mut dyn Credentials,
        body: &[u8],
    ) -> Result<(), Error> {
        let suite = self.suite.ok_or(Error::Internal)?;
        #[cfg(feature = "ecdhe")]
        if suite.key_exchange() == KeyExchange::EcdheEcdsa {
            let cke = EcdhClientKeyExchangeRepr::parse(body)?;
            let peer = parse_point(cke.point)?;
            self.agree(&peer)?;
            return Ok(());
        }
        // ECDHE_ECDSA returned above: ECDHE here is ECDHE_PSK.
        let ecdhe = suite.key_exchange().is_ecdhe();
        let cke = ClientKeyExchangeRepr::parse(body, ecdhe)?;
        // An identity longer than we can keep is refused rather than kept
        // empty: the session (and its resumptions) report who authenticated.
        let identity =
            heapless::Vec::from_slice(cke.identity).map_err(|_| creds.unknown_identity())?;
        let n = creds
            .psk(cke.identity, &mut self.psk)
            .filter(|n| (1..=MAX_PSK_LEN).contains(n))
            .ok_or_else(|| creds.unknown_identity())?;
        self.psk_len = n;
        self.identity = identity;
        #[cfg(feature = "ecdhe")]
        if let Some(point) = cke.point {
            let peer = parse_point(point)?;
            self.agree(&peer)?;
        }
        Ok(())
    }

    /// ECDH of our ephemeral key (used up) with the client's point.
    #[cfg(feature = "ecdhe")]
    fn agree(&mut self, peer: &cssf_provider::PublicKey) -> Result<(), Error> {
        let Ecdh::Secret(secret) = core::mem::replace(&mut self.ecdh, Ecdh::None) else {
            return Err(Error::Internal);
        };
        self.ecdh_shared = Some(shared_secret(self.p256().agree_ephemeral(secret, peer))?);
        Ok(())
    }

    /// Keeps the round trip of our current flight, answered by the
    /// client's Finished at `now`, if it went out only once (Karn's rule:
    /// the answer to a resent flight could be to either copy). The client's
    /// work on its flight is counted in: an estimate on the long side.
    fn measure_round_trip(&mut self, now: Duration) {
        #[cfg(feature = "cid")]
        {
            self.round_trip =
                (self.retransmits == 0).then(|| now.saturating_sub(self.flight_sent_at));
        }
        #[cfg(not(feature = "cid"))]
        let _ = now;
    }

    /// A message of the server side's handshake, in sequence (RFC 6347
    /// §4.2.4 flights; the states are named after the last message).
    #[allow(clippy::too_many_arguments)]
    #[cfg(feature = "server")]
    pub(super) fn server_message(
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
            #[cfg(all(feature = "ecdhe", feature = "server"))]
            (State::ServerHelloDoneSent { client_auth: true }, mt::CERTIFICATE) => {
                self.retransmit_at = None;
                self.process_peer_certificate(&*cx.creds, body)?;
                self.add_transcript(t, seq, body);
                self.state = State::ClientCertificateReceived;
                Ok(())
            }
            #[cfg(feature = "server")]
            (
                st @ (State::ServerHelloDoneSent { client_auth: false }
                | State::ClientCertificateReceived),
                mt::CLIENT_KEY_EXCHANGE,
            ) => {
                // (With client authentication the Certificate comes first:
                // ServerHelloDoneSent { client_auth: true } does not match.)
                self.retransmit_at = None;
                self.process_client_key_exchange(&mut *cx.creds, body)?;
                self.add_transcript(t, seq, body);
                self.derive_keys()?;
                self.state = State::ClientKeyExchangeReceived {
                    certificate_verify_due: st == State::ClientCertificateReceived,
                };
                Ok(())
            }
            #[cfg(feature = "server")]
            (State::ClientCcsReceived, mt::FINISHED) if self.resumed => {
                self.check_finished(body)?;
                self.measure_round_trip(now);
                self.add_transcript(t, seq, body);
                self.note_peer_flight_end(epoch, t, seq, body);
                self.connected();
                Ok(())
            }
            #[cfg(all(feature = "ecdhe", feature = "server"))]
            (
                State::ClientKeyExchangeReceived {
                    certificate_verify_due: true,
                },
                mt::CERTIFICATE_VERIFY,
            ) => {
                let cv = DigitallySignedRepr::parse(body)?;
                if cv.algorithm != ECDSA_SECP256R1_SHA256 {
                    return Err(Error::IllegalParameter);
                }
                let key = self.peer_key.as_ref().ok_or(Error::Internal)?;
                let sig = signature_from_der(cv.signature)?;
                self.p256()
                    .verify_digest(&provider_key(key)?, &self.transcript_hash(), &sig)
                    .map_err(|_| Error::DecryptError)?;
                self.add_transcript(t, seq, body);
                self.state = State::ClientKeyExchangeReceived {
                    certificate_verify_due: false,
                };
                Ok(())
            }
            #[cfg(feature = "server")]
            (State::ClientCcsReceived, mt::FINISHED) => {
                self.check_finished(body)?;
                self.measure_round_trip(now);
                self.add_transcript(t, seq, body);
                self.note_peer_flight_end(epoch, t, seq, body);
                self.new_flight(now, false);
                self.push_ccs()?;
                let vd = prf::verify_data(&self.master, false, &self.transcript_hash());
                self.push_handshake(mt::FINISHED, 1, 12, |b| {
                    b.get_mut(..12).ok_or(Error::Internal)?.copy_from_slice(&vd);
                    Ok(12)
                })?;
                self.start_sending();
                self.connected();
                Ok(())
            }
            _ => Err(Error::UnexpectedMessage),
        }
    }
}
