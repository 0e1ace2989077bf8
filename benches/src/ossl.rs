//! OpenSSL DTLS 1.2 drivers: client and server in one thread, joined by an
//! in-memory datagram pipe that keeps datagram boundaries (each write of
//! OpenSSL's BIO is one datagram, each read returns one).
//!
//! Like [`crate::cssf`], a measured handshake constructs both connection
//! objects (`Ssl` from a context built once, as CSSF's configuration and
//! keys are made once) and runs every flight. The server does the cookie
//! exchange (`SSL_OP_COOKIE_EXCHANGE`, a stateless HMAC-SHA256 cookie of
//! the client's address truncated to 16 bytes, as CSSF's) or not, by
//! choice. Both sides: DTLS 1.2 only, one suite, P-256 as the only group,
//! no session tickets, no session cache, MTU 1152 (CSSF's default).
//!
//! OpenSSL has no raw public keys (RFC 7250): its ECDHE-ECDSA handshakes
//! carry a self-signed P-256 certificate, and each side checks the peer's
//! public key against its pin after the handshake (no chain to verify), as
//! CSSF pins the raw key.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

use hmac::{Hmac, Mac};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ErrorCode, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode,
    SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509Name, X509};
use sha2::Sha256;

use crate::cssf::{PSK, PSK_ID};

/// The datagram size limit both sides use (CSSF's default `Config::mtu`).
pub const MTU: u32 = 1152;

const COOKIE_SECRET: [u8; 32] = [0x42; 32];
/// The client's address as the cookie binds it (in memory there is none).
const CLIENT_ADDR: [u8; 6] = [127, 0, 0, 1, 0x16, 0x34];

/// Both directions of the in-memory link.
#[derive(Default)]
struct Wire {
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
}

/// One end of the pipe: what OpenSSL's BIO reads from and writes to.
pub struct Port {
    wire: Rc<RefCell<Wire>>,
    client: bool,
}

impl Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut w = self.wire.borrow_mut();
        let Wire {
            to_server,
            to_client,
            spare,
            ..
        } = &mut *w;
        let queue = if self.client { to_client } else { to_server };
        match queue.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                spare.push(d);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Port {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut w = self.wire.borrow_mut();
        let mut d = w.spare.pop().unwrap_or_default();
        d.clear();
        d.extend_from_slice(buf);
        w.bytes += buf.len();
        if self.client {
            w.to_server.push_back(d);
        } else {
            w.to_client.push_back(d);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How the peers authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A pre-shared key (PSK and ECDHE-PSK suites).
    Psk,
    /// ECDSA with P-256 certificates; `mutual` adds the client's.
    Ecdsa {
        /// The server asks for (and requires) the client's certificate.
        mutual: bool,
    },
}

/// A client and a server context for one suite, built once.
pub struct Peers {
    client: SslContext,
    server: SslContext,
    /// DER SubjectPublicKeyInfo of the server's and the client's key.
    pins: Option<(Vec<u8>, Vec<u8>)>,
}

/// A connected OpenSSL pair.
pub struct Pair {
    /// The client's stream.
    pub client: SslStream<Port>,
    /// The server's stream.
    pub server: SslStream<Port>,
    /// The bytes both sides sent during the handshake.
    pub bytes: usize,
}

fn p256_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn cookie(out: &mut [u8]) -> usize {
    let mut mac = Hmac::<Sha256>::new_from_slice(&COOKIE_SECRET).unwrap();
    mac.update(&CLIENT_ADDR);
    let tag = mac.finalize().into_bytes();
    out[..16].copy_from_slice(&tag[..16]);
    16
}

fn common(cipher: &str) -> SslContextBuilder {
    let mut b = SslContext::builder(SslMethod::dtls()).unwrap();
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_max_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_cipher_list(cipher).unwrap();
    b.set_groups_list("P-256").unwrap();
    b.set_options(SslOptions::NO_TICKET | SslOptions::NO_QUERY_MTU);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b
}

impl Peers {
    /// Contexts for `cipher` (an OpenSSL cipher name such as
    /// `PSK-AES128-CCM8`), with the server's cookie exchange on or off.
    pub fn new(cipher: &str, auth: Auth, cookie_exchange: bool) -> Self {
        let mut c = common(cipher);
        let mut s = common(cipher);
        if cookie_exchange {
            s.set_options(SslOptions::COOKIE_EXCHANGE);
            s.set_cookie_generate_cb(|_, out| Ok(cookie(out)));
            s.set_cookie_verify_cb(|_, got| {
                let mut want = [0u8; 16];
                cookie(&mut want);
                got == want
            });
        }
        let pins = match auth {
            Auth::Psk => {
                c.set_psk_client_callback(|_, _hint, id, key| {
                    id[..PSK_ID.len()].copy_from_slice(PSK_ID);
                    id[PSK_ID.len()] = 0;
                    key[..PSK.len()].copy_from_slice(PSK);
                    Ok(PSK.len())
                });
                s.set_psk_server_callback(|_, id, key| {
                    if id != Some(PSK_ID) {
                        return Ok(0);
                    }
                    key[..PSK.len()].copy_from_slice(PSK);
                    Ok(PSK.len())
                });
                None
            }
            Auth::Ecdsa { mutual } => {
                let skey = p256_key();
                let ckey = p256_key();
                s.set_private_key(&skey).unwrap();
                s.set_certificate(&self_signed(&skey, "server")).unwrap();
                // Chains are not verified: each side pins the peer's key.
                c.set_verify(SslVerifyMode::NONE);
                if mutual {
                    c.set_private_key(&ckey).unwrap();
                    c.set_certificate(&self_signed(&ckey, "client")).unwrap();
                    s.set_verify_callback(
                        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
                        |_, _| true,
                    );
                }
                Some((
                    skey.public_key_to_der().unwrap(),
                    ckey.public_key_to_der().unwrap(),
                ))
            }
        };
        Peers {
            client: c.build(),
            server: s.build(),
            pins,
        }
    }

    /// One complete handshake: constructs both `Ssl` objects and runs every
    /// flight; checks the pins of a certificate handshake.
    pub fn handshake(&self) -> Pair {
        let wire = Rc::new(RefCell::new(Wire::default()));
        let mut c = openssl::ssl::Ssl::new(&self.client).unwrap();
        c.set_connect_state();
        c.set_mtu(MTU).unwrap();
        let mut s = openssl::ssl::Ssl::new(&self.server).unwrap();
        s.set_accept_state();
        s.set_mtu(MTU).unwrap();
        let port = |client| Port {
            wire: wire.clone(),
            client,
        };
        let mut client = SslStream::new(c, port(true)).unwrap();
        let mut server = SslStream::new(s, port(false)).unwrap();
        let (mut cdone, mut sdone) = (false, false);
        for _ in 0..20 {
            if !cdone {
                cdone = progress(client.do_handshake(), "client");
            }
            if !sdone {
                sdone = progress(server.do_handshake(), "server");
            }
            if cdone && sdone {
                break;
            }
        }
        assert!(cdone && sdone, "OpenSSL DTLS handshake did not complete");
        if let Some((server_pin, client_pin)) = &self.pins {
            let key = |st: &SslStream<Port>| {
                st.ssl()
                    .peer_certificate()
                    .map(|c| c.public_key().unwrap().public_key_to_der().unwrap())
            };
            assert_eq!(key(&client).as_ref(), Some(server_pin));
            if self.server.verify_mode().contains(SslVerifyMode::PEER) {
                assert_eq!(key(&server).as_ref(), Some(client_pin));
            }
        }
        let bytes = wire.borrow().bytes;
        Pair {
            client,
            server,
            bytes,
        }
    }
}

fn progress(r: Result<(), openssl::ssl::Error>, side: &str) -> bool {
    match r {
        Ok(()) => true,
        Err(e) if e.code() == ErrorCode::WANT_READ => false,
        Err(e) => panic!("OpenSSL DTLS 1.2 {side} handshake failed: {e}"),
    }
}

impl Pair {
    /// One record of application data: `SSL_write` on the client,
    /// `SSL_read` on the server through the pipe.
    pub fn record(&mut self, data: &[u8], out: &mut [u8]) -> usize {
        let n = self.client.ssl_write(data).unwrap();
        assert_eq!(n, data.len());
        self.server.ssl_read(out).unwrap()
    }
}

/// The OpenSSL version string of the library linked in.
pub fn version() -> &'static str {
    openssl::version::version()
}
