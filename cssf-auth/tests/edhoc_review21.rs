//! EDHOC refusals added after the attacker review of issue #21: duplicate
//! map labels in a credential, the session ending after a processing
//! failure, kid limits, the checks a refactoring could drop silently (the
//! suite downgrade rule, shortest byte-string heads, one-byte integers,
//! a by-value credential equal to the one the policy returns).
#![cfg(feature = "edhoc")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cssf_auth::edhoc::*;
use cssf_auth::Error;

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern present")
}

/// `ccs_for` makes `{2: subject, 8: {1: COSE_Key}}`; returns the bytes of
/// the subject claim and of the `cnf` claim.
fn split_ccs(c: &Credential) -> (Vec<u8>, Vec<u8>) {
    let b = c.as_bytes();
    assert_eq!(b[0], 0xa2);
    let cnf = find(b, &[0x08, 0xa1, 0x01]);
    (b[1..cnf].to_vec(), b[cnf..].to_vec())
}

#[test]
fn a_ccs_with_two_cnf_claims_is_refused() {
    let a = Credential::ccs_for(&[0x11; 32], &[0x2b], "s").unwrap();
    let b = Credential::ccs_for(&[0x22; 32], &[0x2b], "s").unwrap();
    let (subject, cnf_a) = split_ccs(&a);
    let (_, cnf_b) = split_ccs(&b);
    // each alone is a credential
    let mut one = vec![0xa2];
    one.extend_from_slice(&subject);
    one.extend_from_slice(&cnf_b);
    assert_eq!(Credential::from_ccs(&one).unwrap(), b);
    // both: which key is meant depends on the parser; refused
    let mut two = vec![0xa3];
    two.extend_from_slice(&subject);
    two.extend_from_slice(&cnf_a);
    two.extend_from_slice(&cnf_b);
    assert_eq!(
        Credential::from_ccs(&two),
        Err(Error::Edhoc(EdhocError::InvalidCredential))
    );
    // a repeated claim the parser otherwise skips is refused as well
    let mut subj2 = vec![0xa3];
    subj2.extend_from_slice(&subject);
    subj2.extend_from_slice(&subject);
    subj2.extend_from_slice(&cnf_a);
    assert_eq!(
        Credential::from_ccs(&subj2),
        Err(Error::Edhoc(EdhocError::InvalidCredential))
    );
}

#[test]
fn a_cose_key_with_two_kids_is_refused() {
    let a = Credential::ccs_for(&[0x11; 32], &[0x2b], "s").unwrap();
    let b = a.as_bytes();
    // the COSE_Key {1: 2, 2: h'2b', ...}: add a second kid
    let at = find(b, &[0xa5, 0x01, 0x02, 0x02, 0x41, 0x2b]);
    let mut dup = b[..at].to_vec();
    dup.extend_from_slice(&[0xa6, 0x01, 0x02, 0x02, 0x41, 0x2b, 0x02, 0x41, 0x2c]);
    dup.extend_from_slice(&b[at + 6..]);
    assert_eq!(
        Credential::from_ccs(&dup),
        Err(Error::Edhoc(EdhocError::InvalidCredential))
    );
}

struct Pair {
    i: Initiator,
    r: Responder,
    trust_i: Vec<Credential>,
    trust_r: Vec<Credential>,
}

fn pair() -> Pair {
    let (ki, kr) = ([0x41u8; 32], [0x52u8; 32]);
    let ci = Credential::ccs_for(&ki, &[0x2b], "initiator").unwrap();
    let cr = Credential::ccs_for(&kr, &[0x32], "responder").unwrap();
    let by_ref = CredentialTransfer::ByReference;
    Pair {
        i: Initiator::new(
            Method::StaticStatic,
            Identity::new(ci.clone(), &ki, by_ref).unwrap(),
        ),
        r: Responder::new(
            Identity::new(cr.clone(), &kr, by_ref).unwrap(),
            &[Method::StaticStatic],
        ),
        trust_i: vec![cr],
        trust_r: vec![ci],
    }
}

impl Pair {
    fn m1_m2(&mut self) -> Vec<u8> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let mut rng = rand_core::OsRng;
        let n = self
            .i
            .prepare_message_1(&mut rng, ConnId::new(&[0x37]).unwrap(), &[], &mut buf)
            .unwrap();
        self.r
            .process_message_1(&buf[..n], &mut self.trust_r[..])
            .unwrap();
        let n = self
            .r
            .prepare_message_2(&mut rng, ConnId::new(&[0x27]).unwrap(), &[], &mut buf)
            .unwrap();
        buf[..n].to_vec()
    }

    fn m3(&mut self, m2: &[u8]) -> Vec<u8> {
        self.i.process_message_2(m2, &mut self.trust_i[..]).unwrap();
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = self.i.prepare_message_3(&[], &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn complete(&mut self) -> (Vec<u8>, Vec<u8>) {
        let m2 = self.m1_m2();
        let m3 = self.m3(&m2);
        self.r
            .process_message_3(&m3, &mut self.trust_r[..])
            .unwrap();
        (m2, m3)
    }
}

fn flipped(m: &[u8]) -> Vec<u8> {
    let mut bad = m.to_vec();
    *bad.last_mut().unwrap() ^= 0x01;
    bad
}

#[test]
fn a_refused_message_2_ends_the_handshake() {
    let mut p = pair();
    let m2 = p.m1_m2();
    let e = p.i.process_message_2(&flipped(&m2), &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::AuthenticationFailed)));
    // RFC 9528 §5.3.3: discontinued; the genuine message_2 is no longer taken
    assert!(p.i.is_aborted());
    let e = p.i.process_message_2(&m2, &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Aborted)));
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let e = p.i.prepare_message_3(&[], &mut buf);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Aborted)));
    assert!(p.i.peer_credential().is_none() && p.i.session().is_none());
    // a fresh handshake works
    let mut p = pair();
    p.complete();
    assert!(p.i.session().is_some());
}

#[test]
fn a_refused_message_3_ends_the_handshake() {
    let mut p = pair();
    let m2 = p.m1_m2();
    let m3 = p.m3(&m2);
    let e = p.r.process_message_3(&flipped(&m3), &mut p.trust_r[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::DecryptFailed)));
    assert!(p.r.is_aborted());
    let e = p.r.process_message_3(&m3, &mut p.trust_r[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Aborted)));
    assert!(!p.r.is_done() && p.r.session().is_none());
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let e = p.r.prepare_message_4(&[], &mut buf);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Aborted)));
    // an unknown credential ends it as well
    let mut p = pair();
    let m2 = p.m1_m2();
    let m3 = p.m3(&m2);
    let e = p.r.process_message_3(&m3, &mut [][..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::UnknownCredential)));
    let e = p.r.process_message_3(&m3, &mut p.trust_r[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Aborted)));
}

#[test]
fn a_refused_message_4_ends_the_session() {
    let mut p = pair();
    p.complete();
    let mut buf = [0u8; 32];
    let n = p.r.prepare_message_4(&[], &mut buf).unwrap();
    let m4 = buf[..n].to_vec();
    let e = p.i.process_message_4(&flipped(&m4), &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::DecryptFailed)));
    // RFC 9528 §5.5.3: discontinued, the keys are not to be used
    assert!(p.i.is_aborted());
    assert!(p.i.session().is_none() && !p.i.is_done());
    let e = p.i.process_message_4(&m4, &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Aborted)));
}

#[test]
fn a_message_in_the_wrong_state_leaves_a_finished_session_intact() {
    let mut p = pair();
    let (m2, m3) = p.complete();
    let prk = *p.i.session().unwrap().prk_out();
    let e = p.i.process_message_2(&m2, &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::UnexpectedMessage)));
    let e = p.r.process_message_3(&m3, &mut p.trust_r[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::UnexpectedMessage)));
    assert!(!p.i.is_aborted() && !p.r.is_aborted());
    assert_eq!(p.i.session().unwrap().prk_out(), &prk);
    assert_eq!(p.r.session().unwrap().prk_out(), &prk);
    // message_4 still goes through, once
    let mut buf = [0u8; 32];
    let n = p.r.prepare_message_4(&[], &mut buf).unwrap();
    p.i.process_message_4(&buf[..n], &mut p.trust_i[..])
        .unwrap();
    let e = p.i.process_message_4(&buf[..n], &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::UnexpectedMessage)));
    assert_eq!(p.i.session().unwrap().prk_out(), &prk);
}

#[test]
fn an_error_message_where_message_4_is_expected_is_a_peer_error() {
    let mut p = pair();
    p.complete();
    // the responder refused message_3 with ERR_CODE 3 (unknown credential)
    let mut out = [0u8; 8];
    let n = error_message(&Error::Edhoc(EdhocError::UnknownCredential), &mut out).unwrap();
    let e = p.i.process_message_4(&out[..n], &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::PeerError(3))));
    // as where message_2 is expected
    let mut q = pair();
    q.m1_m2();
    let e = q.i.process_message_2(&out[..n], &mut q.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::PeerError(3))));
}

#[test]
fn a_supported_suite_before_the_selected_one_is_a_downgrade() {
    // SUITES_I = [2, 2]: 2 is supported and preferred, so it must be the
    // selected one; listing it before is refused (RFC 9528 §6.3.2)
    let p = pair();
    let mut i = p.i.with_suites(&[2, 2]).unwrap();
    let mut r = p.r;
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = i
        .prepare_message_1(
            &mut rand_core::OsRng,
            ConnId::new(&[0x37]).unwrap(),
            &[],
            &mut buf,
        )
        .unwrap();
    let mut trust_r = p.trust_r;
    let e = r.process_message_1(&buf[..n], &mut trust_r[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::WrongSelectedSuite)));
}

/// The same bstr with a head one size too long.
fn long_head(m: &[u8]) -> Vec<u8> {
    let (len, body) = match m[0] {
        b @ 0x40..=0x57 => (usize::from(b - 0x40), &m[1..]),
        0x58 => (usize::from(m[1]), &m[2..]),
        other => panic!("head {other:#x}"),
    };
    assert_eq!(len, body.len());
    let mut out = if len < 24 {
        vec![0x58, len as u8]
    } else {
        vec![0x59, 0x00, len as u8]
    };
    out.extend_from_slice(body);
    out
}

#[test]
fn messages_with_a_longer_head_than_needed_are_refused() {
    let mut p = pair();
    let m2 = p.m1_m2();
    assert_eq!(m2[0], 0x58); // 32 + ciphertext: a one-byte length
    let e = p.i.process_message_2(&long_head(&m2), &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Malformed)));

    let mut p = pair();
    let m2 = p.m1_m2();
    let m3 = p.m3(&m2);
    assert!(m3[0] < 0x58); // shorter than 24 bytes
    let e = p.r.process_message_3(&long_head(&m3), &mut p.trust_r[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Malformed)));

    let mut p = pair();
    p.complete();
    let mut buf = [0u8; 32];
    let n = p.r.prepare_message_4(&[], &mut buf).unwrap();
    let e =
        p.i.process_message_4(&long_head(&buf[..n]), &mut p.trust_i[..]);
    assert_eq!(e, Err(Error::Edhoc(EdhocError::Malformed)));
}

/// Trusts the credential sent by value only under another encoding:
/// returns `other` for any ID_CRED.
struct Substitute {
    other: Credential,
    asked: usize,
}

impl Policy for Substitute {
    fn credential(&mut self, _: IdCred<'_>) -> Option<Credential> {
        self.asked += 1;
        Some(self.other.clone())
    }
}

#[test]
fn a_policy_credential_must_equal_the_one_sent_by_value() {
    let (ki, kr) = ([0x41u8; 32], [0x52u8; 32]);
    let ci = Credential::ccs_for(&ki, &[0x2b], "initiator").unwrap();
    let cr = Credential::ccs_for(&kr, &[0x32], "responder").unwrap();
    // the same key, another CCS (another subject)
    let cr_other = Credential::ccs_for(&kr, &[0x32], "someone else").unwrap();
    assert_eq!(cr.public_key(), cr_other.public_key());
    assert_ne!(cr.as_bytes(), cr_other.as_bytes());
    let by_value = CredentialTransfer::ByValue;
    let mut i = Initiator::new(
        Method::StaticStatic,
        Identity::new(ci.clone(), &ki, by_value).unwrap(),
    );
    let mut r = Responder::new(
        Identity::new(cr, &kr, by_value).unwrap(),
        &[Method::StaticStatic],
    );
    let mut rng = rand_core::OsRng;
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = i
        .prepare_message_1(&mut rng, ConnId::new(&[0x37]).unwrap(), &[], &mut buf)
        .unwrap();
    r.process_message_1(&buf[..n], &mut [ci][..]).unwrap();
    let n = r
        .prepare_message_2(&mut rng, ConnId::new(&[0x27]).unwrap(), &[], &mut buf)
        .unwrap();
    let mut policy = Substitute {
        other: cr_other,
        asked: 0,
    };
    let e = i.process_message_2(&buf[..n], &mut policy);
    assert_eq!(policy.asked, 1);
    // refused for the credential, before MAC_2 is computed over it
    assert_eq!(e, Err(Error::Edhoc(EdhocError::UnknownCredential)));
}

#[test]
fn the_responder_accepts_only_the_methods_it_was_given() {
    let all = [
        Method::SignatureSignature,
        Method::SignatureStatic,
        Method::StaticSignature,
        Method::StaticStatic,
    ];
    let kr = [0x52u8; 32];
    let cr = Credential::ccs_for(&kr, &[0x32], "responder").unwrap();
    let ki = [0x41u8; 32];
    let ci = Credential::ccs_for(&ki, &[0x2b], "initiator").unwrap();
    let by_ref = CredentialTransfer::ByReference;
    // a signing key: methods 0 and 2; none at all: nothing is accepted
    let signing = [Method::SignatureSignature, Method::StaticSignature];
    for (accepted, list) in [(&signing[..], &signing[..]), (&[][..], &[][..])] {
        for method in all {
            let mut i = Initiator::new(method, Identity::new(ci.clone(), &ki, by_ref).unwrap());
            let mut r = Responder::new(Identity::new(cr.clone(), &kr, by_ref).unwrap(), list);
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let n = i
                .prepare_message_1(
                    &mut rand_core::OsRng,
                    ConnId::new(&[0x37]).unwrap(),
                    &[],
                    &mut buf,
                )
                .unwrap();
            let got = r.process_message_1(&buf[..n], &mut [ci.clone()][..]);
            if accepted.contains(&method) {
                assert!(got.is_ok(), "{method:?}");
            } else {
                assert_eq!(
                    got,
                    Err(Error::Edhoc(EdhocError::UnsupportedMethod)),
                    "{method:?}"
                );
            }
        }
    }
}
