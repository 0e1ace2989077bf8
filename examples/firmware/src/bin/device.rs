//! The full device, in memory on one Cortex-M4F: an Authorization Server
//! mints an ACE token, the resource server accepts it at `/authz-info`, a
//! client runs a DTLS PSK handshake (TLS_PSK_WITH_AES_128_CCM_8) with the
//! token's PoP key, sends CoAP GETs over it that the server authorizes
//! against the token's scope; then an ECDHE-ECDSA handshake with raw public
//! keys (RFC 7250) authenticates both sides by pinned P-256 keys; and the
//! device stores a key in its encrypted flash store (on a RAM flash). Every
//! step prints one line; the exit status says whether all of them passed.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::entry;
use cssf_auth::aif::NoTextScopes;
use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, CoseKey, Decision, KeyEntry, Method, PopKey};
use cssf_coap::endpoint::{
    Config as CoapConfig, Event as CoapEvent, Methods, Request, Resource, Response,
};
use cssf_coap::Code;
use cssf_dtls::{
    footprint, CipherSuite, Client, Config as DtlsConfig, Endpoint as DtlsEndpoint,
    Event as DtlsEvent, Identity, PeerContext, PskStore, RejectAll, MAX_PSK_LEN,
};
use cssf_firmware::{
    client_config, fail, line, put, put_num, stack, Coap, DemoRng, CLIENT_ADDR, CLIENT_COAP_SEED,
    CLIENT_DTLS_SEED, KID, NOW, POP_KEY, SERVER_ADDR,
};
use cssf_store::flash::RamFlash;
use cssf_store::{Config as StoreConfig, RamCounter, RootKey, Store};

/// The Authorization Server's HMAC key, shared with the resource server.
const AS_KEY: [u8; 32] = *b"AS-RS shared HMAC key, demo only";
/// The store's root key (a real device keeps it in a key slot or derives it
/// from a hardware unique key).
const ROOT_KEY: [u8; 32] = *b"store root key for the demo only";

type Rs<'k> = AuthzInfo<'k, [KeyEntry], NoTextScopes, 2, 4, 4>;
/// One established session, one handshake slot, four cached sessions.
type Server<'r, 'k> = DtlsEndpoint<u8, TokenPsk<'r, 'k>, DemoRng, 1, RejectAll, 4, 1>;

static RESOURCES: [Resource; 2] = [
    Resource::new("sensors/temp", Methods::GET),
    Resource::new("actuators/led", Methods::GET.union(Methods::PUT)),
];
/// Paths as the token scope names them, by resource index.
const SCOPE_PATHS: [&str; 2] = ["/sensors/temp", "/actuators/led"];

/// The DTLS server's PSK store: the resource server's tokens (RFC 9202
/// §3.3.1: the psk_identity is the PoP key's kid), shared with the CoAP
/// layer that authorizes requests.
struct TokenPsk<'r, 'k>(&'r RefCell<Rs<'k>>);

impl<A> PskStore<A> for TokenPsk<'_, '_> {
    fn psk(
        &mut self,
        cx: &PeerContext<'_, A>,
        identity: &[u8],
        key: &mut [u8; MAX_PSK_LEN],
    ) -> Option<usize> {
        let mut rs = self.0.try_borrow_mut().ok()?;
        rs.psk_store(cx.now, None).psk_at(identity, key)
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware device: Cortex-M4F, QEMU mps2-an386, semihosting"]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);

    // 1. The Authorization Server mints a token for audience rs1 with the
    //    scope GET /sensors/temp and a symmetric PoP key.
    let Ok(as_key) = CoseKey::hmac(Algorithm::Hmac256_64, &AS_KEY) else {
        fail(b"as key")
    };
    let mut token = [0u8; 160];
    let token_len = match mint(&as_key, &mut token) {
        Some(n) => n,
        None => fail(b"token: mint"),
    };
    line(&[b"token: minted COSE_Mac0 (HMAC 256/64) CWT, scope GET /sensors/temp"]);

    // 2. The resource server verifies and stores it (POST /authz-info).
    let keys = [KeyEntry::new(as_key)];
    let rs = RefCell::new(Rs::new(cssf_auth::Config::new("rs1"), &keys[..]));
    let mut err = [0u8; 8];
    // A copy with one bit of the MAC flipped must be refused.
    let mut forged = token;
    if let Some(b) = forged.get_mut(token_len.saturating_sub(1)) {
        *b ^= 1;
    }
    let forged_code = {
        let mut rs = rs.borrow_mut();
        let t = forged.get_mut(..token_len).unwrap_or(&mut []);
        rs.post(NOW, None, t, &mut err).code
    };
    if forged_code == cssf_auth::authz_info::CREATED || forged_code >> 5 != 4 {
        fail(b"authz-info: a token with a forged MAC was not refused with 4.xx");
    }
    put(b"authz-info: token with a forged MAC refused, ");
    put_code(forged_code);
    line(&[]);
    let code = {
        let mut rs = rs.borrow_mut();
        let t = token.get_mut(..token_len).unwrap_or(&mut []);
        rs.post(NOW, None, t, &mut err).code
    };
    if code != cssf_auth::authz_info::CREATED {
        fail(b"authz-info: token refused");
    }
    line(&[b"authz-info: token accepted, 2.01 Created"]);

    // 3. DTLS PSK handshake, the PSK resolved from the token by its kid.
    let mut server_cfg = DtlsConfig::default(); // all suites
    server_cfg.retransmit_initial = core::time::Duration::from_secs(9);
    let Ok(server) = Server::new(
        server_cfg,
        TokenPsk(&rs),
        DemoRng::new(0x5e7e_7000_0000_0003),
        NOW,
    ) else {
        fail(b"dtls server config")
    };
    let Ok(client) = Client::new(
        client_config(),
        KID,
        &POP_KEY,
        SERVER_ADDR,
        DemoRng::new(CLIENT_DTLS_SEED),
        NOW,
    ) else {
        fail(b"dtls client config")
    };
    let mut net = Net {
        client,
        server,
        coap_client: Coap::new(CoapConfig::default(), DemoRng::new(CLIENT_COAP_SEED), &[]),
        coap_server: Coap::new(
            CoapConfig::default(),
            DemoRng::new(0x5e7e_c0a9_0000_0004),
            &RESOURCES,
        ),
        rs: &rs,
        bytes: 0,
        datagrams: 0,
        connected: None,
        response: None,
        record: true,
    };
    net.pump();
    match net.connected {
        Some(CipherSuite::PskWithAes128Ccm8) => {}
        _ => fail(b"dtls psk: handshake did not complete with TLS_PSK_WITH_AES_128_CCM_8"),
    }
    put(b"dtls psk: handshake complete, TLS_PSK_WITH_AES_128_CCM_8, ");
    put_num(net.bytes);
    put(b" bytes in ");
    put_num(net.datagrams);
    line(&[b" datagrams"]);

    // 4. CoAP GET inside the session, authorized by the token's scope.
    let got = net.get("sensors/temp");
    match &got {
        Some((c, p)) if *c == Code::CONTENT.0 && p.as_slice() == b"22.5" => {}
        _ => fail(b"coap: GET /sensors/temp was not answered 2.05 22.5"),
    }
    line(&[b"coap: GET /sensors/temp -> 2.05 Content \"22.5\" (allowed by the token scope)"]);
    net.record = false;
    match net.get("actuators/led") {
        Some((0x83, _)) => {}
        _ => fail(b"coap: GET /actuators/led was not refused with 4.03"),
    }
    line(&[b"coap: GET /actuators/led -> 4.03 Forbidden (outside the token scope)"]);

    // 5. The ECDHE-ECDSA handshake with raw public keys (RFC 7250), both
    //    sides authenticated by pinned P-256 keys.
    ecdhe_ecdsa_demo();

    // 6. The encrypted store on a RAM flash: set, get, remount, get.
    store_demo();

    // 7. Sizes and stack.
    sizes();
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}

/// Writes a CoAP code as `c.dd`.
fn put_code(code: u8) {
    put_num(usize::from(code >> 5));
    put(b".");
    let detail = code & 31;
    if detail < 10 {
        put(b"0");
    }
    put_num(usize::from(detail));
}

fn mint(as_key: &CoseKey, out: &mut [u8]) -> Option<usize> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(KID).ok()?),
        k: Bytes::from_slice(&POP_KEY).ok()?,
    };
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/sensors/temp", 1)], &mut aif).ok()?;
    let claims = ClaimsSet {
        aud: Some("rs1"),
        exi: Some(3600),
        cti: Some(&[0, 0, 0, 1]),
        scope: Some(ScopeOut::AifBytes(aif.get(..n)?)),
        cnf: Some(CnfOut::Key(&pop)),
        ..Default::default()
    };
    let mut payload = [0u8; 96];
    let plen = claims.emit(&mut payload).ok()?;
    mac0(as_key, None, payload.get(..plen)?, out).ok()
}

/// Both ends of the in-memory link, DTLS below CoAP.
struct Net<'r, 'k> {
    client: Client<u8, DemoRng>,
    server: Server<'r, 'k>,
    coap_client: Coap,
    coap_server: Coap,
    rs: &'r RefCell<Rs<'k>>,
    bytes: usize,
    datagrams: usize,
    connected: Option<CipherSuite>,
    response: Option<(u8, heapless::Vec<u8, 16>)>,
    /// Record the server's datagrams (feature `dump-transcript`).
    #[cfg_attr(not(feature = "dump-transcript"), allow(dead_code))]
    record: bool,
}

impl Net<'_, '_> {
    fn get(&mut self, path: &str) -> Option<(u8, heapless::Vec<u8, 16>)> {
        self.response = None;
        if self
            .coap_client
            .request(NOW, SERVER_ADDR, &Request::get(path))
            .is_err()
        {
            fail(b"coap: request");
        }
        self.pump();
        self.response.take()
    }

    /// Moves datagrams and application data until nothing moves.
    fn pump(&mut self) {
        let mut buf = [0u8; 600];
        for _ in 0..64 {
            let mut moved = false;
            // CoAP client -> DTLS client.
            while let Ok(Some(t)) = self.coap_client.poll_transmit(NOW, &mut buf) {
                #[cfg(feature = "dump-transcript")]
                if self.record {
                    // The request's message ID and token, for the codec-only
                    // client to send the same request.
                    if let Ok(m) = cssf_coap::Message::parse(buf.get(..t.len).unwrap_or(&[])) {
                        put(b"transcript-mid: ");
                        put_num(usize::from(m.message_id()));
                        put(b"\ntranscript-token: ");
                        cssf_firmware::put_hex(m.token());
                        put(b"\n");
                    }
                }
                if self
                    .client
                    .send(NOW, buf.get(..t.len).unwrap_or(&[]))
                    .is_err()
                {
                    fail(b"dtls client send");
                }
                moved = true;
            }
            // DTLS client -> server.
            loop {
                match self.client.poll_transmit(NOW, &mut buf) {
                    Ok(Some(t)) => {
                        self.count(t.len);
                        let d = buf.get_mut(..t.len).unwrap_or(&mut []);
                        if self.server.handle_datagram(NOW, CLIENT_ADDR, d).is_err() {
                            fail(b"dtls server: connection failed");
                        }
                        moved = true;
                    }
                    Ok(None) => break,
                    Err(_) => fail(b"dtls client poll_transmit"),
                }
            }
            // DTLS server -> application (CoAP server).
            while let Some(ev) = self.server.poll_event() {
                match ev {
                    DtlsEvent::ApplicationData { .. } => {}
                    DtlsEvent::Closed { .. } => fail(b"dtls server: closed"),
                    _ => {}
                }
            }
            let session = self.server.session_handle(&CLIENT_ADDR);
            while let Some(Ok(Some(n))) = session.map(|h| self.server.recv(h, &mut buf)) {
                let d = buf.get_mut(..n).unwrap_or(&mut []);
                if self
                    .coap_server
                    .handle_datagram(NOW, CLIENT_ADDR, d)
                    .is_err()
                {
                    fail(b"coap server: handle_datagram");
                }
                moved = true;
            }
            while let Some(ev) = self.coap_server.poll_event() {
                if let CoapEvent::Request {
                    id,
                    resource,
                    request,
                    ..
                } = ev
                {
                    let code = request.code().0;
                    let path = SCOPE_PATHS.get(resource).copied().unwrap_or("");
                    let method = Method::from_code(code).unwrap_or(Method::Get);
                    let decision =
                        self.rs
                            .borrow_mut()
                            .authorize(NOW, None, Some(KID), method, path);
                    let r = match decision {
                        Decision::Allow => Response::new(Code::CONTENT).payload(b"22.5"),
                        Decision::Deny(reason) => Response::new(Code(reason.code())),
                    };
                    if self.coap_server.respond(NOW, id, &r).is_err() {
                        fail(b"coap server: respond");
                    }
                }
            }
            while let Ok(Some(t)) = self.coap_server.poll_transmit(NOW, &mut buf) {
                let d = buf.get(..t.len).unwrap_or(&[]);
                let Some(session) = self.server.session_handle(&CLIENT_ADDR) else {
                    fail(b"dtls server: no session")
                };
                if self.server.send(NOW, session, d).is_err() {
                    fail(b"dtls server send");
                }
                moved = true;
            }
            // DTLS server -> client.
            loop {
                match self.server.poll_transmit(NOW, &mut buf) {
                    Ok(Some(t)) => {
                        self.count(t.len);
                        #[cfg(feature = "dump-transcript")]
                        if self.record {
                            put(b"transcript: ");
                            cssf_firmware::put_hex(buf.get(..t.len).unwrap_or(&[]));
                            put(b"\n");
                        }
                        let d = buf.get_mut(..t.len).unwrap_or(&mut []);
                        if self.client.handle_datagram(NOW, SERVER_ADDR, d).is_err() {
                            fail(b"dtls client: connection failed");
                        }
                        moved = true;
                    }
                    Ok(None) => break,
                    Err(_) => fail(b"dtls server poll_transmit"),
                }
            }
            while let Some(ev) = self.client.poll_event() {
                match ev {
                    DtlsEvent::Connected { suite, .. } => self.connected = Some(suite),
                    DtlsEvent::Closed { .. } => fail(b"dtls client: closed"),
                    _ => {}
                }
            }
            // DTLS client -> CoAP client.
            while let Ok(Some(n)) = self.client.recv(&mut buf) {
                let d = buf.get_mut(..n).unwrap_or(&mut []);
                if self
                    .coap_client
                    .handle_datagram(NOW, SERVER_ADDR, d)
                    .is_err()
                {
                    fail(b"coap client: handle_datagram");
                }
                moved = true;
            }
            while let Some(ev) = self.coap_client.poll_event() {
                if let CoapEvent::Response { response, .. } = ev {
                    let p = heapless::Vec::from_slice(response.payload()).unwrap_or_default();
                    self.response = Some((response.code().0, p));
                }
            }
            if !moved {
                return;
            }
        }
        fail(b"link: still busy after 64 rounds");
    }

    fn count(&mut self, len: usize) {
        self.bytes += len;
        self.datagrams += 1;
    }
}

/// The server's and the client's P-256 private keys (demo constants; a
/// device would generate its key at provisioning and keep it in the store),
/// and a key the server does not know.
const SERVER_SK: [u8; 32] = *b"server P-256 private key, demo!!";
const CLIENT_SK: [u8; 32] = *b"client P-256 private key, demo!!";
const STRANGER_SK: [u8; 32] = *b"an unpinned P-256 key, demo only";

fn ecdhe_ecdsa_demo() {
    match ecdhe_ecdsa(&CLIENT_SK) {
        Ok((bytes, datagrams)) => {
            put(b"dtls ecdhe-ecdsa: handshake complete, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, raw public keys both ways (RFC 7250), ");
            put_num(bytes);
            put(b" bytes in ");
            put_num(datagrams);
            line(&[b" datagrams, data record delivered"]);
        }
        Err(e) => fail(e),
    }
    match ecdhe_ecdsa(&STRANGER_SK) {
        Err(b"server refused the handshake") => {
            line(&[b"dtls ecdhe-ecdsa: a client key the server has not pinned is refused"])
        }
        Err(e) => fail(e),
        Ok(_) => fail(b"ecdhe-ecdsa: a client with an unpinned key was accepted"),
    }
}

/// One ECDHE-ECDSA handshake with mutual raw-public-key authentication (the
/// server pins [`CLIENT_SK`]'s public key, the client pins the server's),
/// then one record client to server. Returns the bytes and datagrams of the
/// handshake, or what went wrong.
fn ecdhe_ecdsa(client_key: &[u8; 32]) -> Result<(usize, usize), &'static [u8]> {
    use cssf_dtls::{PinnedKeys, SigningKey};
    let keys = (
        SigningKey::from_slice(&SERVER_SK),
        SigningKey::from_slice(&CLIENT_SK),
        SigningKey::from_slice(client_key),
    );
    let (Ok(server_sk), Ok(pinned_sk), Ok(client_sk)) = keys else {
        return Err(b"ecdhe-ecdsa: keys");
    };
    let server_pub = [p256::PublicKey::from(server_sk.verifying_key())];
    let pinned_pub = [p256::PublicKey::from(pinned_sk.verifying_key())];
    let client_pub = p256::PublicKey::from(client_sk.verifying_key());
    let mut server_cfg = DtlsConfig::default(); // all suites
    server_cfg.require_client_auth = true;
    let Ok(mut server) = DtlsEndpoint::<u8, _, _, 1, _, 4, 1>::with_raw_public_key(
        server_cfg,
        cssf_dtls::StaticPsk::new(&[]),
        server_sk,
        PinnedKeys::new(&pinned_pub),
        DemoRng::new(0x5e7e_ecd5_0000_0005),
        NOW,
    ) else {
        return Err(b"ecdhe-ecdsa: server config");
    };
    let mut client_cfg = DtlsConfig::default();
    client_cfg.suites.clear();
    let _ = client_cfg
        .suites
        .push(CipherSuite::EcdheEcdsaWithAes128Ccm8);
    let Ok(mut client) = Client::with_raw_public_key(
        client_cfg,
        Some(client_sk),
        PinnedKeys::new(&server_pub),
        SERVER_ADDR,
        DemoRng::new(0x0c11_ecd5_0000_0006),
        NOW,
    ) else {
        return Err(b"ecdhe-ecdsa: client config");
    };
    let mut buf = [0u8; 1200];
    let (mut bytes, mut datagrams) = (0usize, 0usize);
    let mut suite = None;
    let mut sent_ping = false;
    let mut got_ping = false;
    for _ in 0..16 {
        let mut moved = false;
        while let Ok(Some(t)) = client.poll_transmit(NOW, &mut buf) {
            bytes += t.len;
            datagrams += 1;
            let d = buf.get_mut(..t.len).unwrap_or(&mut []);
            if server.handle_datagram(NOW, CLIENT_ADDR, d).is_err() {
                return Err(b"server refused the handshake");
            }
            moved = true;
        }
        while let Some(ev) = server.poll_event() {
            if let DtlsEvent::Closed { .. } = ev {
                return Err(b"server refused the handshake");
            }
        }
        let session = server.session_handle(&CLIENT_ADDR);
        while let Some(Ok(Some(n))) = session.map(|h| server.recv(h, &mut buf)) {
            got_ping = buf.get(..n) == Some(&b"ping"[..]);
        }
        while let Ok(Some(t)) = server.poll_transmit(NOW, &mut buf) {
            bytes += t.len;
            datagrams += 1;
            let d = buf.get_mut(..t.len).unwrap_or(&mut []);
            if client.handle_datagram(NOW, SERVER_ADDR, d).is_err() {
                return Err(b"ecdhe-ecdsa: client refused the handshake");
            }
            moved = true;
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                DtlsEvent::Connected { suite: s, .. } => suite = Some(s),
                DtlsEvent::Closed { .. } => return Err(b"ecdhe-ecdsa: client closed"),
                _ => {}
            }
        }
        if suite.is_some() && !sent_ping {
            sent_ping = true;
            if client.send(NOW, b"ping").is_err() {
                return Err(b"ecdhe-ecdsa: send");
            }
            moved = true;
        }
        if !moved {
            break;
        }
    }
    if suite != Some(CipherSuite::EcdheEcdsaWithAes128Ccm8) {
        return Err(b"ecdhe-ecdsa: no handshake with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8");
    }
    // What each handshake proved about the other side: the pinned keys.
    let proven_server = client.peer_identity().and_then(Identity::public_key);
    let proven_client = server
        .session_handle(&CLIENT_ADDR)
        .and_then(|h| server.peer_identity(h))
        .and_then(Identity::public_key);
    let keys_ok = proven_server == server_pub.first() && proven_client == Some(&client_pub);
    if !keys_ok {
        return Err(b"ecdhe-ecdsa: authenticated keys are not the pinned ones");
    }
    if !got_ping {
        return Err(b"ecdhe-ecdsa: application data did not arrive");
    }
    Ok((bytes, datagrams))
}

fn store_demo() {
    let mut counter = RamCounter::default();
    let root = RootKey(ROOT_KEY);
    let flash = RamFlash::<{ 2 * 4096 }, 4096, 4, 1>::new();
    // The nonce salt of each mount: a real device draws it from its TRNG.
    let mut salt_rng = DemoRng::new(0x5a17_0000_0000_0007);
    let Ok(mut store) =
        Store::<_, _, 4, 2>::mount(flash, &root, &mut counter, StoreConfig::new(), &mut salt_rng)
    else {
        fail(b"store: mount")
    };
    if store.set(b"psk/fw-client", &POP_KEY).is_err() {
        fail(b"store: set");
    }
    let (flash, _) = store.into_parts();
    // Remount, as after a reboot, and read the key back.
    let Ok(mut store) =
        Store::<_, _, 4, 2>::mount(flash, &root, &mut counter, StoreConfig::new(), &mut salt_rng)
    else {
        fail(b"store: remount")
    };
    let mut buf = [0u8; 32];
    match store.get(b"psk/fw-client", &mut buf) {
        Ok(16) if buf.get(..16) == Some(&POP_KEY[..]) => {}
        _ => fail(b"store: get after remount"),
    }
    line(&[b"store: set psk/fw-client (16 bytes), remounted, get -> same 16 bytes"]);
}

fn sizes() {
    use core::mem::size_of;
    type E1 = Server<'static, 'static>;
    type E2 = DtlsEndpoint<u8, TokenPsk<'static, 'static>, DemoRng, 2, RejectAll, 4, 1>;
    // A handshake occupies one of the endpoint's H handshake slots; once
    // complete it is compacted into one of its N session slots.
    put(b"size_of: dtls session established ");
    put_num(footprint::ESTABLISHED_SESSION);
    put(b" B, mid-handshake ");
    put_num(footprint::HANDSHAKE);
    put(b" B (compact session state; handshake slot; one more session slot adds ");
    put_num(size_of::<E2>() - size_of::<E1>());
    put(b" B, of which the proven identity ");
    put_num(footprint::SESSION_IDENTITY);
    put(b" B; the shared application queues ");
    put_num(2 * footprint::APP_QUEUE);
    line(&[b" B)"]);
    put(b"size_of: dtls Client ");
    put_num(size_of::<Client<u8, DemoRng>>());
    put(b" B, dtls Endpoint<_,_,_,1,_,4,1> ");
    put_num(size_of::<E1>());
    put(b" B, coap Endpoint<2,4,256,0> ");
    put_num(size_of::<Coap>());
    put(b" B, AuthzInfo<2,4,4> ");
    put_num(size_of::<Rs<'static>>());
    put(b" B, Store<4,2> + RamFlash 8 KiB ");
    put_num(size_of::<
        Store<RamFlash<{ 2 * 4096 }, 4096, 4, 1>, &mut RamCounter, 4, 2>,
    >());
    line(&[b" B"]);
}
