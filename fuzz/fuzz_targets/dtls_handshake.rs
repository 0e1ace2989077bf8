//! Handshake message parsing: every body parser on arbitrary bytes, and
//! `parse(emit(parse(x))) == parse(x)` where parsing succeeds.
#![no_main]

use cssf_dtls::wire::client_hello::ClientHelloRepr;
use cssf_dtls::wire::extensions::ExtensionIter;
use cssf_dtls::wire::hello_verify_request::HelloVerifyRequestRepr;
use cssf_dtls::wire::key_exchange::{ClientKeyExchangeRepr, ServerKeyExchangeRepr};
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
    let _ = ExtensionIter::validate(data);
});
