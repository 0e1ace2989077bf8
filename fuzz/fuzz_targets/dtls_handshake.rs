//! Handshake message parsing: every body parser on arbitrary bytes, and
//! `parse(emit(parse(x))) == parse(x)` where parsing succeeds.
#![no_main]

use cssf_dtls::wire::certificate::{
    parse_spki_p256, spki_p256, CertificateRequestRepr, DigitallySignedRepr,
    RawPublicKeyCertificateRepr, X509CertificateListRepr,
};
use cssf_dtls::wire::client_hello::ClientHelloRepr;
use cssf_dtls::wire::extensions::ExtensionIter;
use cssf_dtls::wire::hello_verify_request::HelloVerifyRequestRepr;
use cssf_dtls::wire::key_exchange::{
    ClientKeyExchangeRepr, EcdhClientKeyExchangeRepr, ServerKeyExchangeRepr,
    SignedServerKeyExchangeRepr,
};
use cssf_dtls::wire::server_hello::ServerHelloRepr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; data.len() + 16];
    if let Ok(ch) = ClientHelloRepr::parse(data) {
        let n = ch.emit(&mut buf).unwrap();
        assert_eq!(n, ch.buffer_len());
        assert_eq!(ClientHelloRepr::parse(&buf[..n]).unwrap(), ch);
        for e in ExtensionIter::new(ch.extensions) {
            let _ = e;
        }
    }
    if let Ok(sh) = ServerHelloRepr::parse(data) {
        let n = sh.emit(&mut buf).unwrap();
        assert_eq!(ServerHelloRepr::parse(&buf[..n]).unwrap(), sh);
    }
    if let Ok(h) = HelloVerifyRequestRepr::parse(data) {
        let n = h.emit(&mut buf).unwrap();
        assert_eq!(HelloVerifyRequestRepr::parse(&buf[..n]).unwrap(), h);
    }
    for ecdhe in [false, true] {
        if let Ok(s) = ServerKeyExchangeRepr::parse(data, ecdhe) {
            let n = s.emit(&mut buf).unwrap();
            assert_eq!(ServerKeyExchangeRepr::parse(&buf[..n], ecdhe).unwrap(), s);
        }
        if let Ok(c) = ClientKeyExchangeRepr::parse(data, ecdhe) {
            let n = c.emit(&mut buf).unwrap();
            assert_eq!(ClientKeyExchangeRepr::parse(&buf[..n], ecdhe).unwrap(), c);
        }
    }
    // Certificate-based messages (ECDHE_ECDSA, raw public keys).
    if let Ok(c) = RawPublicKeyCertificateRepr::parse(data) {
        let n = c.emit(&mut buf).unwrap();
        assert_eq!(RawPublicKeyCertificateRepr::parse(&buf[..n]).unwrap(), c);
        if let Ok(p) = parse_spki_p256(c.spki) {
            assert_eq!(spki_p256(p)[..], c.spki[..]);
        }
    }
    if let Ok(l) = X509CertificateListRepr::parse(data) {
        for cert in l.certs() {
            assert!(!cert.is_empty());
        }
    }
    if let Ok(r) = CertificateRequestRepr::parse(data) {
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(CertificateRequestRepr::parse(&buf[..n]).unwrap(), r);
        let _ = r.allows_ecdsa_p256();
    }
    if let Ok(d) = DigitallySignedRepr::parse(data) {
        let n = d.emit(&mut buf).unwrap();
        assert_eq!(DigitallySignedRepr::parse(&buf[..n]).unwrap(), d);
    }
    if let Ok((s, params)) = SignedServerKeyExchangeRepr::parse(data) {
        assert_eq!(params.len(), s.params_len());
        let n = s.emit(&mut buf).unwrap();
        assert_eq!(SignedServerKeyExchangeRepr::parse(&buf[..n]).unwrap().0, s);
    }
    if let Ok(c) = EcdhClientKeyExchangeRepr::parse(data) {
        let n = c.emit(&mut buf).unwrap();
        assert_eq!(EcdhClientKeyExchangeRepr::parse(&buf[..n]).unwrap(), c);
    }
    let _ = ExtensionIter::validate(data);
});
