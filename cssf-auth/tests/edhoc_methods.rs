//! EDHOC methods 0 to 3 (signatures with ES256 and static DH keys in every
//! combination, RFC 9528 §3.2), credentials by kid and by value: each
//! handshake completes with the same PRK_out and OSCORE context on both
//! sides, and a flipped byte in message_2 or message_3 is refused. There
//! is no RFC 9529 trace for suite 2 with signatures (trace 1 is method 0 on
//! suite 0, which is not implemented) and lakers implements method 3 only,
//! so these are self-consistency tests.
#![cfg(feature = "edhoc")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cssf_auth::edhoc::*;
use cssf_auth::Error;

const METHODS: [Method; 4] = [
    Method::SignatureSignature,
    Method::SignatureStatic,
    Method::StaticSignature,
    Method::StaticStatic,
];

struct Pair {
    i: Initiator,
    r: Responder,
    trust_i: Vec<Credential>,
    trust_r: Vec<Credential>,
}

fn pair(method: Method, transfer: CredentialTransfer) -> Pair {
    let (ki, kr) = ([0x41u8; 32], [0x52u8; 32]);
    let ci = Credential::ccs_for(&ki, &[0x2b], "initiator").unwrap();
    let cr = Credential::ccs_for(&kr, b"responder-key", "responder").unwrap();
    Pair {
        i: Initiator::new(method, Identity::new(ci.clone(), &ki, transfer).unwrap()),
        // the responder's key is used the way the method says
        r: Responder::new(Identity::new(cr.clone(), &kr, transfer).unwrap(), &[method]),
        trust_i: vec![cr],
        trust_r: vec![ci],
    }
}

/// Runs message_1 and message_2; returns them.
fn first_half(p: &mut Pair) -> (Vec<u8>, Vec<u8>) {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let mut rng = rand_core::OsRng;
    let n =
        p.i.prepare_message_1(&mut rng, ConnId::new(&[]).unwrap(), &[], &mut buf)
            .unwrap();
    let m1 = buf[..n].to_vec();
    p.r.process_message_1(&m1, &mut p.trust_r[..]).unwrap();
    let n =
        p.r.prepare_message_2(&mut rng, ConnId::new(&[1, 2, 3]).unwrap(), &[], &mut buf)
            .unwrap();
    (m1, buf[..n].to_vec())
}

#[test]
fn every_method_and_transfer_completes_with_equal_keys() {
    for method in METHODS {
        for transfer in [CredentialTransfer::ByReference, CredentialTransfer::ByValue] {
            let mut p = pair(method, transfer);
            let (m1, m2) = first_half(&mut p);
            p.i.process_message_2(&m2, &mut p.trust_i[..]).unwrap();
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let n = p.i.prepare_message_3(&[], &mut buf).unwrap();
            let m3 = buf[..n].to_vec();
            p.r.process_message_3(&m3, &mut p.trust_r[..]).unwrap();
            let (si, sr) = (p.i.session().unwrap(), p.r.session().unwrap());
            assert_eq!(si.prk_out(), sr.prk_out(), "{method:?} {transfer:?}");
            let (oi, or) = (si.oscore().unwrap(), sr.oscore().unwrap());
            assert_eq!(oi.master_secret(), or.master_secret());
            assert_eq!(oi.master_salt(), or.master_salt());
            assert_eq!(oi.sender_id(), [1, 2, 3]);
            assert_eq!(oi.recipient_id(), [] as [u8; 0]);
            assert_eq!(or.sender_id(), oi.recipient_id());
            assert_eq!(sr.peer_credential(), &p.trust_r[0]);
            assert_eq!(si.peer_credential(), &p.trust_i[0]);
            // signatures make the messages longer, never past the limit
            let sig2 = matches!(method, Method::SignatureSignature | Method::StaticSignature);
            if transfer == CredentialTransfer::ByReference {
                assert_eq!(m2.len() > 64 + 34, sig2, "{method:?}: {}", m2.len());
            }
            assert!(m1.len() <= MAX_MESSAGE_LEN && m3.len() <= MAX_MESSAGE_LEN);
            // exporters with other labels differ from the OSCORE ones
            let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
            si.exporter(40, b"ctx", &mut a).unwrap();
            sr.exporter(40, b"ctx", &mut b).unwrap();
            assert_eq!(a, b);
            assert_ne!(&a, oi.master_secret());
        }
    }
}

#[test]
fn signatures_and_macs_refuse_every_flipped_byte() {
    // a refused message discontinues the handshake (RFC 9528 §5.3.3,
    // §5.4.3), so each flip gets a handshake of its own
    for method in METHODS {
        let m2_len = first_half(&mut pair(method, CredentialTransfer::ByReference))
            .1
            .len();
        for pos in 0..m2_len {
            let mut p = pair(method, CredentialTransfer::ByReference);
            let (_, m2) = first_half(&mut p);
            let mut bad = m2.clone();
            bad[pos] ^= 0x04;
            let e = p.i.process_message_2(&bad, &mut p.trust_i[..]).unwrap_err();
            assert!(matches!(e, Error::Edhoc(_)), "{method:?} byte {pos}: {e:?}");
            assert!(p.i.peer_credential().is_none() && p.i.is_aborted());
            let e = p.i.process_message_2(&m2, &mut p.trust_i[..]).unwrap_err();
            assert_eq!(e, Error::Edhoc(EdhocError::Aborted));
        }
        let mut p = pair(method, CredentialTransfer::ByReference);
        let (_, m2) = first_half(&mut p);
        p.i.process_message_2(&m2, &mut p.trust_i[..]).unwrap();
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let m3_len = p.i.prepare_message_3(&[], &mut buf).unwrap();
        for pos in 0..m3_len {
            let mut p = pair(method, CredentialTransfer::ByReference);
            let (_, m2) = first_half(&mut p);
            p.i.process_message_2(&m2, &mut p.trust_i[..]).unwrap();
            let n = p.i.prepare_message_3(&[], &mut buf).unwrap();
            let m3 = buf[..n].to_vec();
            let mut bad = m3.clone();
            bad[pos] ^= 0x04;
            let e = p.r.process_message_3(&bad, &mut p.trust_r[..]).unwrap_err();
            assert!(matches!(e, Error::Edhoc(_)), "{method:?} byte {pos}: {e:?}");
            assert!(!p.r.is_done() && p.r.is_aborted());
            let e = p.r.process_message_3(&m3, &mut p.trust_r[..]).unwrap_err();
            assert_eq!(e, Error::Edhoc(EdhocError::Aborted));
        }
    }
}

#[test]
fn a_responder_limited_to_method_3_refuses_the_others() {
    for method in METHODS {
        let mut p = pair(method, CredentialTransfer::ByReference);
        p.r = {
            let kr = [0x52u8; 32];
            let cr = Credential::ccs_for(&kr, b"responder-key", "responder").unwrap();
            Responder::new(
                Identity::new(cr, &kr, CredentialTransfer::ByReference).unwrap(),
                &[Method::StaticStatic],
            )
        };
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n =
            p.i.prepare_message_1(
                &mut rand_core::OsRng,
                ConnId::new(&[9]).unwrap(),
                &[],
                &mut buf,
            )
            .unwrap();
        let r = p.r.process_message_1(&buf[..n], &mut p.trust_r[..]);
        if method == Method::StaticStatic {
            assert!(r.is_ok());
        } else {
            assert_eq!(r, Err(Error::Edhoc(EdhocError::UnsupportedMethod)));
        }
    }
}

#[test]
fn a_credential_sent_by_value_must_be_trusted() {
    let mut p = pair(Method::StaticStatic, CredentialTransfer::ByValue);
    let (_, m2) = first_half(&mut p);
    // the initiator trusts nobody: the credential in message_2 is not enough
    let e = p.i.process_message_2(&m2, &mut [][..]).unwrap_err();
    assert_eq!(e, Error::Edhoc(EdhocError::UnknownCredential));
    // that ended the handshake; a new one with the credential trusted works
    assert!(p.i.is_aborted());
    let mut p = pair(Method::StaticStatic, CredentialTransfer::ByValue);
    let (_, m2) = first_half(&mut p);
    p.i.process_message_2(&m2, &mut p.trust_i[..]).unwrap();
}

#[test]
fn identity_must_match_its_credential() {
    let c = Credential::ccs_for(&[3; 32], &[1], "x").unwrap();
    assert!(Identity::new(c.clone(), &[4; 32], CredentialTransfer::ByReference).is_err());
    assert!(Identity::new(c, &[3; 32], CredentialTransfer::ByReference).is_ok());
    // a credential without kid cannot be sent by reference
    let c = Credential::ccs_for(&[3; 32], &[], "x").unwrap();
    assert!(Identity::new(c.clone(), &[3; 32], CredentialTransfer::ByReference).is_err());
    assert!(Identity::new(c, &[3; 32], CredentialTransfer::ByValue).is_ok());
    assert!(Credential::from_ccs(&[0xa0]).is_err());
    assert!(Credential::from_ccs(&[0xff; 300]).is_err());
}
