//! EDHOC against the RFC 9529 §3 trace (method 3, cipher suite 2, CCS
//! credentials referenced by kid, C_I = -24 and C_R = -8 as one-byte
//! integers): both roles reproduce every message, PRK_out, PRK_exporter
//! (through the exporter) and the OSCORE Master Secret / Salt byte for
//! byte. Then the refusals: every flipped byte and every truncation of
//! each message fails with a typed error and ends that handshake (RFC
//! 9528 §5.3.3, §5.4.3); a wrong or unknown credential, a replayed
//! message_2, the wrong suite, an unknown critical EAD item.
#![cfg(feature = "edhoc")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cssf_auth::edhoc::*;
use cssf_auth::Error;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap()
}

// RFC 9529 §3 (copied from the RFC; the values the test checks).
const X: &str = "368ec1f69aeb659ba37d5a8d45b21bdc0299dceaa8ef235f3ca42ce3530f9525";
const Y: &str = "e2f4126777205e853b437d6eaca1e1f753cdcc3e2c69fa884b0a1a640977e418";
const SK_I: &str = "fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b";
const SK_R: &str = "72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac";
const C_I: u8 = 0x37; // -24
const C_R: u8 = 0x27; // -8
const SUITES_I: [u8; 2] = [6, 2];
const CRED_I: &str =
    "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820ac75
    e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611388a4b8a82
    11334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8";
const CRED_R: &str =
    "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a23
    4148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7afda64f
    cde0108c224c51eabf6072";
const MESSAGE_1: &str =
    "0382060258208af6f430ebe18d34184017a9a11bf511c8dff8f834730b96c1b7c8dbca2fc3b637";
const MESSAGE_2: &str =
    "582b419701d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d59862a1eef9e0e7e1
    886fcd";
const MESSAGE_3: &str = "52e562097bc417dd5919485ac7891ffd90a9fc";
const MESSAGE_4: &str = "4828c966b7ca304f83";
const PRK_OUT: &str = "2c71afc1a9338a940bb3529ca734b886f30d1aba0b4dc51beeaeabdfea9ecbf8";
const PRK_EXPORTER: &str = "e14d06699cee248c5a04bf9227bbcd4ce394de7dcb56db43555474171e6446db";
const OSCORE_MASTER_SECRET: &str = "f9868f6a3aca78a05d1485b35030b162";
const OSCORE_MASTER_SALT: &str = "ada24c7dbfc85eeb";

fn cred_i() -> Credential {
    Credential::from_ccs(&hex(CRED_I)).unwrap()
}
fn cred_r() -> Credential {
    Credential::from_ccs(&hex(CRED_R)).unwrap()
}

fn initiator() -> Initiator {
    let id = Identity::new(cred_i(), &key(SK_I), CredentialTransfer::ByReference).unwrap();
    Initiator::new(Method::StaticStatic, id)
        .with_suites(&SUITES_I)
        .unwrap()
}

fn responder() -> Responder {
    let id = Identity::new(cred_r(), &key(SK_R), CredentialTransfer::ByReference).unwrap();
    Responder::new(id, &[Method::StaticStatic])
}

fn cid(b: u8) -> ConnId {
    ConnId::new(&[b]).unwrap()
}

/// Runs the trace through both roles, checking each message as it goes.
fn run() -> (Initiator, Responder) {
    let mut i = initiator();
    let mut r = responder();
    let mut trust_i = [cred_r()];
    let mut trust_r = [cred_i()];
    let mut buf = [0u8; MAX_MESSAGE_LEN];

    let n = i
        .prepare_message_1_with_ephemeral(&key(X), cid(C_I), &[], &mut buf)
        .unwrap();
    assert_eq!(hex_of(&buf[..n]), MESSAGE_1, "message_1");
    let c_i = r
        .process_message_1(&hex(MESSAGE_1), &mut trust_r[..])
        .unwrap();
    assert_eq!(c_i.as_bytes(), [C_I]);

    let n = r
        .prepare_message_2_with_ephemeral(&key(Y), cid(C_R), &[], &mut buf)
        .unwrap();
    assert_eq!(hex_of(&buf[..n]), squash(MESSAGE_2), "message_2");
    let c_r = i
        .process_message_2(&hex(MESSAGE_2), &mut trust_i[..])
        .unwrap();
    assert_eq!(c_r.as_bytes(), [C_R]);
    assert_eq!(i.peer_credential().unwrap(), &cred_r());

    let n = i.prepare_message_3(&[], &mut buf).unwrap();
    assert_eq!(hex_of(&buf[..n]), MESSAGE_3, "message_3");
    r.process_message_3(&hex(MESSAGE_3), &mut trust_r[..])
        .unwrap();
    assert_eq!(r.peer_credential().unwrap(), &cred_i());
    (i, r)
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect()
}

#[test]
fn both_roles_reproduce_the_trace() {
    let (mut i, mut r) = run();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = r.prepare_message_4(&[], &mut buf).unwrap();
    assert_eq!(hex_of(&buf[..n]), MESSAGE_4, "message_4");
    i.process_message_4(&hex(MESSAGE_4), &mut [cred_r()][..])
        .unwrap();

    for (role, s) in [
        ("initiator", i.session().unwrap()),
        ("responder", r.session().unwrap()),
    ] {
        assert_eq!(hex_of(s.prk_out()), PRK_OUT, "{role} PRK_out");
        // PRK_exporter is internal; EDHOC_Exporter is EDHOC_KDF over it, so
        // recompute one export from the trace's PRK_exporter with HKDF.
        let mut got = [0u8; 16];
        s.exporter(0, &[], &mut got).unwrap();
        assert_eq!(got, expand(&hex(PRK_EXPORTER), &[0x00, 0x40, 0x10], 16)[..]);
        let o = s.oscore().unwrap();
        assert_eq!(hex_of(o.master_secret()), OSCORE_MASTER_SECRET, "{role}");
        assert_eq!(hex_of(o.master_salt()), OSCORE_MASTER_SALT, "{role}");
    }
    let (oi, or) = (
        i.session().unwrap().oscore().unwrap(),
        r.session().unwrap().oscore().unwrap(),
    );
    // Appendix A.1: the initiator's Sender ID is C_R, the responder's C_I.
    assert_eq!(oi.sender_id(), [C_R]);
    assert_eq!(oi.recipient_id(), [C_I]);
    assert_eq!(or.sender_id(), [C_I]);
    assert_eq!(or.recipient_id(), [C_R]);
}

/// HKDF-Expand with SHA-256, written out, to check the exporter against
/// the trace's PRK_exporter independently of the crate.
fn expand(prk: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut out = Vec::new();
    let mut t = Vec::new();
    let mut n = 1u8;
    while out.len() < len {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(prk).unwrap();
        m.update(&t);
        m.update(info);
        m.update(&[n]);
        t = m.finalize().into_bytes().to_vec();
        out.extend_from_slice(&t);
        n += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn message_sizes_of_the_trace() {
    assert_eq!(hex(MESSAGE_1).len(), 39);
    assert_eq!(hex(MESSAGE_2).len(), 45);
    assert_eq!(hex(MESSAGE_3).len(), 19);
    assert_eq!(hex(MESSAGE_4).len(), 9);
}

fn edhoc_err(e: Error) -> EdhocError {
    match e {
        Error::Edhoc(e) => e,
        other => panic!("not an EDHOC error: {other:?}"),
    }
}

/// A responder that has processed message_1 and sent message_2.
fn responder_waiting_m3() -> Responder {
    let mut r = responder();
    r.process_message_1(&hex(MESSAGE_1), &mut [cred_i()][..])
        .unwrap();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    r.prepare_message_2_with_ephemeral(&key(Y), cid(C_R), &[], &mut buf)
        .unwrap();
    r
}

/// An initiator that has sent message_1.
fn initiator_waiting_m2() -> Initiator {
    let mut i = initiator();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    i.prepare_message_1_with_ephemeral(&key(X), cid(C_I), &[], &mut buf)
        .unwrap();
    i
}

#[test]
fn every_flipped_bit_of_message_2_is_refused_and_ends_the_handshake() {
    let m2 = hex(MESSAGE_2);
    for pos in 0..m2.len() {
        for bit in [0x01u8, 0x80] {
            let mut i = initiator_waiting_m2();
            let mut bad = m2.clone();
            bad[pos] ^= bit;
            let e = i.process_message_2(&bad, &mut [cred_r()][..]).unwrap_err();
            let e = edhoc_err(e);
            assert!(
                matches!(
                    e,
                    EdhocError::Malformed
                        | EdhocError::AuthenticationFailed
                        | EdhocError::InvalidPublicKey
                        | EdhocError::UnknownCredential
                        | EdhocError::UnsupportedCredential
                        | EdhocError::PeerError(_)
                ),
                "byte {pos}: {e:?}"
            );
            assert!(i.peer_credential().is_none(), "byte {pos}: state advanced");
            // RFC 9528 §5.3.3: discontinued, the genuine message is too late
            assert!(i.is_aborted(), "byte {pos}");
            let e = i.process_message_2(&m2, &mut [cred_r()][..]).unwrap_err();
            assert_eq!(edhoc_err(e), EdhocError::Aborted, "byte {pos}");
        }
    }
    // a new handshake completes
    let mut i = initiator_waiting_m2();
    i.process_message_2(&m2, &mut [cred_r()][..]).unwrap();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = i.prepare_message_3(&[], &mut buf).unwrap();
    assert_eq!(hex_of(&buf[..n]), MESSAGE_3);
}

#[test]
fn every_flipped_bit_of_message_3_is_refused_and_ends_the_handshake() {
    let m3 = hex(MESSAGE_3);
    for pos in 0..m3.len() {
        for bit in [0x01u8, 0x80] {
            let mut r = responder_waiting_m3();
            let mut bad = m3.clone();
            bad[pos] ^= bit;
            let e = edhoc_err(r.process_message_3(&bad, &mut [cred_i()][..]).unwrap_err());
            assert!(
                matches!(
                    e,
                    EdhocError::Malformed | EdhocError::DecryptFailed | EdhocError::TooLarge
                ),
                "byte {pos}: {e:?}"
            );
            assert!(!r.is_done() && r.is_aborted());
            let e = r.process_message_3(&m3, &mut [cred_i()][..]).unwrap_err();
            assert_eq!(edhoc_err(e), EdhocError::Aborted, "byte {pos}");
        }
    }
    let mut r = responder_waiting_m3();
    r.process_message_3(&m3, &mut [cred_i()][..]).unwrap();
    assert_eq!(hex_of(r.session().unwrap().prk_out()), PRK_OUT);
}

#[test]
fn a_flipped_bit_of_message_1_never_completes_a_handshake() {
    // message_1 is not authenticated by itself: a changed one may be
    // accepted, but then the initiator refuses the message_2 that answers it.
    let m1 = hex(MESSAGE_1);
    for pos in 0..m1.len() {
        let mut bad = m1.clone();
        bad[pos] ^= 0x01;
        let mut r = responder();
        match r.process_message_1(&bad, &mut [cred_i()][..]) {
            Err(e) => {
                edhoc_err(e);
                // refused: the responder still takes the genuine one
                r.process_message_1(&m1, &mut [cred_i()][..]).unwrap();
            }
            Ok(c_i) => {
                let mut buf = [0u8; MAX_MESSAGE_LEN];
                let c_r = if c_i == cid(C_R) { cid(0x01) } else { cid(C_R) };
                let n = r
                    .prepare_message_2_with_ephemeral(&key(Y), c_r, &[], &mut buf)
                    .unwrap();
                let mut i = initiator_waiting_m2();
                let e = i
                    .process_message_2(&buf[..n], &mut [cred_r()][..])
                    .unwrap_err();
                // a changed G_X or suite list changes TH_2; a changed
                // method changes what PLAINTEXT_2 holds
                let e = edhoc_err(e);
                assert!(
                    matches!(e, EdhocError::AuthenticationFailed | EdhocError::Malformed),
                    "byte {pos}: {e:?}"
                );
                assert!(i.peer_credential().is_none());
            }
        }
    }
}

#[test]
fn truncated_messages_are_refused() {
    let (m1, m2, m3) = (hex(MESSAGE_1), hex(MESSAGE_2), hex(MESSAGE_3));
    for n in 0..m1.len() {
        let mut r = responder();
        edhoc_err(
            r.process_message_1(&m1[..n], &mut [cred_i()][..])
                .unwrap_err(),
        );
    }
    for n in 0..m2.len() {
        let mut i = initiator_waiting_m2();
        edhoc_err(
            i.process_message_2(&m2[..n], &mut [cred_r()][..])
                .unwrap_err(),
        );
    }
    for n in 0..m3.len() {
        let mut r = responder_waiting_m3();
        edhoc_err(
            r.process_message_3(&m3[..n], &mut [cred_i()][..])
                .unwrap_err(),
        );
    }
    // and trailing bytes
    let mut long = m3.clone();
    long.push(0);
    let mut r = responder_waiting_m3();
    assert_eq!(
        edhoc_err(r.process_message_3(&long, &mut [cred_i()][..]).unwrap_err()),
        EdhocError::Malformed
    );
}

#[test]
fn unknown_or_wrong_credential_is_refused() {
    // no trusted credential for kid 0x32
    let mut i = initiator_waiting_m2();
    let e = i
        .process_message_2(&hex(MESSAGE_2), &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnknownCredential);
    let mut out = [0u8; 8];
    let n = error_message(&e, &mut out).unwrap();
    assert_eq!(&out[..n], [0x03, 0xf5]);
    assert_eq!(
        ErrorMessage::parse(&out[..n]).unwrap(),
        ErrorMessage::UnknownCredential
    );
    // the responder waiting for message_3 gets that error message instead
    let mut waiting = responder_waiting_m3();
    let e = waiting
        .process_message_3(&out[..n], &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::PeerError(3));
    // the peer ended the handshake: so does the responder
    assert!(waiting.is_aborted());
    let e = waiting
        .process_message_3(&hex(MESSAGE_3), &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::Aborted);

    // a different key under the responder's kid: MAC_2 does not verify
    let impostor = Credential::ccs_for(&[7; 32], &[0x32], "example.edu").unwrap();
    let mut i = initiator_waiting_m2();
    let e = i
        .process_message_2(&hex(MESSAGE_2), &mut [impostor][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::AuthenticationFailed);

    // the responder, trusting someone else under the initiator's kid
    let mut r = responder_waiting_m3();
    let impostor = Credential::ccs_for(&[9; 32], &[0x2b], "x").unwrap();
    let e = r
        .process_message_3(&hex(MESSAGE_3), &mut [impostor][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::AuthenticationFailed);
    let mut r = responder_waiting_m3();
    let e = r
        .process_message_3(&hex(MESSAGE_3), &mut [][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnknownCredential);
    assert!(!r.is_done());
}

#[test]
fn replayed_messages_to_a_finished_side_are_refused() {
    let (mut i, mut r) = run();
    let e = i
        .process_message_2(&hex(MESSAGE_2), &mut [cred_r()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnexpectedMessage);
    let e = r
        .process_message_3(&hex(MESSAGE_3), &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnexpectedMessage);
    let e = r
        .process_message_1(&hex(MESSAGE_1), &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnexpectedMessage);
    assert_eq!(hex_of(i.session().unwrap().prk_out()), PRK_OUT);
    // message_4 is taken once
    let mut buf = [0u8; 16];
    let n = r.prepare_message_4(&[], &mut buf).unwrap();
    i.process_message_4(&buf[..n], &mut [cred_r()][..]).unwrap();
    let e = i
        .process_message_4(&buf[..n], &mut [cred_r()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnexpectedMessage);
}

#[test]
fn wrong_selected_suite_is_answered_with_our_suites() {
    // RFC 9529 §3 first message_1: SUITES_I = 6 alone, which we do not support
    let first = hex("03065820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e");
    let mut r = responder();
    let e = r
        .process_message_1(&first, &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::WrongSelectedSuite);
    let mut out = [0u8; 8];
    let n = error_message(&e, &mut out).unwrap();
    assert_eq!(&out[..n], [0x02, 0x02]); // ERR_CODE 2, SUITES_R 2
    let ErrorMessage::WrongSelectedSuite { suites, count } =
        ErrorMessage::parse(&out[..n]).unwrap()
    else {
        panic!()
    };
    assert_eq!(&suites[..count], [2]);
    // the initiator sees the error message as such
    let mut i = initiator_waiting_m2();
    let e = i
        .process_message_2(&out[..n], &mut [cred_r()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::PeerError(2));
    // [2, 6]: 2 was preferred and is supported, so 6 may not be selected;
    // [2] alone is fine (the genuine trace selects 2 after 6).
    let mut m = hex(MESSAGE_1);
    m[2] = 0x02;
    m[3] = 0x06;
    let e = responder()
        .process_message_1(&m, &mut [cred_i()][..])
        .unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::WrongSelectedSuite);
    // and the responder still takes the genuine message_1 afterwards
    r.process_message_1(&hex(MESSAGE_1), &mut [cred_i()][..])
        .unwrap();
}

struct EadPolicy {
    trusted: Credential,
    understood: i32,
    seen: Vec<(EadMessage, i32, Option<Vec<u8>>)>,
}

impl Policy for EadPolicy {
    fn credential(&mut self, id: IdCred<'_>) -> Option<Credential> {
        (id == IdCred::Kid(self.trusted.kid())).then(|| self.trusted.clone())
    }
    fn ead(&mut self, message: EadMessage, item: EadItem<'_>) -> bool {
        self.seen
            .push((message, item.label, item.value.map(|v| v.to_vec())));
        item.label.abs() == self.understood
    }
}

#[test]
fn ead_items_reach_the_policy_and_unknown_critical_ones_refuse() {
    let mut i = initiator();
    let mut r = responder();
    let mut pi = EadPolicy {
        trusted: cred_r(),
        understood: 5,
        seen: vec![],
    };
    let mut pr = EadPolicy {
        trusted: cred_i(),
        understood: 5,
        seen: vec![],
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let ead_1 = [
        EadItem {
            label: -5,
            value: Some(&[1, 2][..]),
        },
        EadItem {
            label: 7,
            value: None,
        },
    ];
    let n = i
        .prepare_message_1_with_ephemeral(&key(X), cid(C_I), &ead_1, &mut buf)
        .unwrap();
    r.process_message_1(&buf[..n], &mut pr).unwrap();
    assert_eq!(
        pr.seen,
        vec![
            (EadMessage::Message1, -5, Some(vec![1, 2])),
            (EadMessage::Message1, 7, None)
        ]
    );
    // an unknown critical item in EAD_2: the initiator refuses message_2
    let n = r
        .prepare_message_2_with_ephemeral(
            &key(Y),
            cid(C_R),
            &[EadItem {
                label: -9,
                value: None,
            }],
            &mut buf,
        )
        .unwrap();
    let e = i.process_message_2(&buf[..n], &mut pi).unwrap_err();
    assert_eq!(edhoc_err(e), EdhocError::UnknownCriticalEad);
    assert!(i.peer_credential().is_none() && i.is_aborted());

    // a fresh pair with an understood critical item in EAD_3
    let mut i = initiator();
    let mut r = responder();
    let n = i
        .prepare_message_1_with_ephemeral(&key(X), cid(C_I), &[], &mut buf)
        .unwrap();
    r.process_message_1(&buf[..n], &mut pr).unwrap();
    let n = r
        .prepare_message_2_with_ephemeral(
            &key(Y),
            cid(C_R),
            &[EadItem {
                label: 5,
                value: Some(b"x"),
            }],
            &mut buf,
        )
        .unwrap();
    i.process_message_2(&buf[..n], &mut pi).unwrap();
    assert_eq!(
        pi.seen.last().unwrap(),
        &(EadMessage::Message2, 5, Some(b"x".to_vec()))
    );
    let n = i
        .prepare_message_3(
            &[EadItem {
                label: -5,
                value: Some(b"ok"),
            }],
            &mut buf,
        )
        .unwrap();
    r.process_message_3(&buf[..n], &mut pr).unwrap();
    assert_eq!(
        pr.seen.last().unwrap(),
        &(EadMessage::Message3, -5, Some(b"ok".to_vec()))
    );
    assert_eq!(
        i.session().unwrap().prk_out(),
        r.session().unwrap().prk_out()
    );
}

#[test]
fn short_output_buffers_say_how_much_is_needed_and_change_nothing() {
    let mut i = initiator();
    let mut small = [0u8; 10];
    assert_eq!(
        i.prepare_message_1_with_ephemeral(&key(X), cid(C_I), &[], &mut small),
        Err(Error::BufferTooSmall { needed: 39 })
    );
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = i
        .prepare_message_1_with_ephemeral(&key(X), cid(C_I), &[], &mut buf)
        .unwrap();
    assert_eq!(hex_of(&buf[..n]), MESSAGE_1);
}
