//! Record-layer parsing: every record in a datagram, each fragment's
//! handshake header, and alert parsing; tls12_cid records (RFC 9146) with
//! a CID length taken from the input, their inner plaintext and the
//! connection_id extension. Must never panic.
#![no_main]

use cssf_dtls::wire::alert::AlertRepr;
use cssf_dtls::wire::cid_record::{self, CidRecordHeader};
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
    // tls12_cid records: the receiver knows its CID length (here the
    // first byte, bounded); the rest is a datagram of such records.
    if let Some((&n, records)) = data.split_first() {
        let cid_len = usize::from(n % 21);
        let mut rest = records;
        while let Ok((h, frag, tail)) = CidRecordHeader::parse(rest, cid_len) {
            assert_eq!(h.cid.len(), cid_len);
            let mut out = [0u8; 13 + 20];
            h.emit(&mut out).unwrap();
            assert_eq!(&out[..h.buffer_len()], &rest[..h.buffer_len()]);
            if let Some((t, len)) = cid_record::split_inner_plaintext(frag) {
                assert!(len < frag.len() && frag[len] == t && t != 0);
            }
            let mut aad = [0u8; 23 + 20];
            let _ =
                cid_record::additional_data(&mut aad, h.version, h.epoch_seq(), h.cid, frag.len());
            rest = tail;
        }
        let _ = cid_record::parse_extension(records);
    }
});
