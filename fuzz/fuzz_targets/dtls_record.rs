//! Record-layer parsing: every record in a datagram, each fragment's
//! handshake header, and alert parsing. Must never panic.
#![no_main]

use cssf_dtls::wire::alert::AlertRepr;
use cssf_dtls::wire::handshake::HandshakeHeader;
use cssf_dtls::wire::record::{ContentType, RecordHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((hdr, frag, tail)) = RecordHeader::parse(rest) {
        let mut out = [0u8; 13];
        hdr.emit(&mut out).unwrap();
        assert_eq!(&out[..], &rest[..13]);
        match hdr.content_type {
            ContentType::Handshake => {
                let mut f = frag;
                while let Ok((h, body, t)) = HandshakeHeader::parse(f) {
                    assert!(body.len() == h.fragment_length as usize);
                    f = t;
                }
            }
            ContentType::Alert => {
                let _ = AlertRepr::parse(frag);
            }
            _ => {}
        }
        rest = tail;
    }
});
