//! EDHOC (RFC 9528) on arbitrary bytes: arbitrary or mutated message_1,
//! message_2, message_3 and message_4 fed to a responder and an initiator
//! at each step of a fixed handshake (method 3, suite 2, fixed keys, the
//! states cloned from one genuine run). Only the genuine (authenticated)
//! message_2 / message_3 / message_4 is ever accepted; a refused one ends
//! the handshake (RFC 9528 §5.3.3, §5.4.3, §5.5.3: aborted, the genuine
//! message is refused after it, no session), so refused input never leads
//! to a completed handshake. Input a side is past the point of taking
//! never corrupts a finished session.
#![no_main]

use std::sync::OnceLock;

use cssf_auth::edhoc::*;
use libfuzzer_sys::fuzz_target;

const KI: [u8; 32] = [0x41; 32];
const KR: [u8; 32] = [0x52; 32];
const X: [u8; 32] = [0x13; 32];
const Y: [u8; 32] = [0x24; 32];

/// One genuine handshake: the messages and each side's state before each
/// message it receives.
struct Run {
    trust_i: Credential,
    trust_r: Credential,
    m: [Vec<u8>; 4],
    r_start: Responder,
    i_wait_m2: Initiator,
    r_wait_m3: Responder,
    i_done: Initiator,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let ci = Credential::ccs_for(&KI, &[0x2b], "i").unwrap();
        let cr = Credential::ccs_for(&KR, &[0x32], "r").unwrap();
        let mut i = Initiator::new(
            Method::StaticStatic,
            Identity::new(ci.clone(), &KI, CredentialTransfer::ByReference).unwrap(),
        );
        let mut r = Responder::new(
            Identity::new(cr.clone(), &KR, CredentialTransfer::ByReference).unwrap(),
            &[Method::StaticStatic],
        );
        let r_start = r.clone();
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = i
            .prepare_message_1_with_ephemeral(&X, ConnId::new(&[0x37]).unwrap(), &[], &mut buf)
            .unwrap();
        let m1 = buf[..n].to_vec();
        let i_wait_m2 = i.clone();
        r.process_message_1(&m1, &mut [ci.clone()][..]).unwrap();
        let n = r
            .prepare_message_2_with_ephemeral(&Y, ConnId::new(&[0x27]).unwrap(), &[], &mut buf)
            .unwrap();
        let m2 = buf[..n].to_vec();
        let r_wait_m3 = r.clone();
        i.process_message_2(&m2, &mut [cr.clone()][..]).unwrap();
        let n = i.prepare_message_3(&[], &mut buf).unwrap();
        let m3 = buf[..n].to_vec();
        let i_done = i.clone();
        r.process_message_3(&m3, &mut [ci.clone()][..]).unwrap();
        let n = r.prepare_message_4(&[], &mut buf).unwrap();
        let m4 = buf[..n].to_vec();
        Run {
            trust_i: cr,
            trust_r: ci,
            m: [m1, m2, m3, m4],
            r_start,
            i_wait_m2,
            r_wait_m3,
            i_done,
        }
    })
}

/// The input as a message: raw, or XORed onto the genuine one (and maybe
/// truncated) so the fuzzer reaches past the parsers.
fn message(mode: u8, data: &[u8], genuine: &[u8]) -> Vec<u8> {
    if mode & 1 == 0 {
        return data.to_vec();
    }
    let mut m = genuine.to_vec();
    for (i, d) in data.iter().enumerate() {
        if let Some(b) = m.get_mut(i % genuine.len().max(1)) {
            *b ^= d;
        }
    }
    if mode & 2 != 0 {
        m.truncate(data.len());
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let run = run();
    let (mut ti, mut tr) = ([run.trust_i.clone()], [run.trust_r.clone()]);
    let [m1, m2, m3, m4] = &run.m;
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    match mode >> 2 {
        0 => {
            let mut r = run.r_start.clone();
            let bad = message(mode, data, m1);
            if r.process_message_1(&bad, &mut tr[..]).is_ok() {
                // not authenticated by itself: may be taken, but only once
                assert!(r.process_message_1(m1, &mut tr[..]).is_err());
            } else {
                r.process_message_1(m1, &mut tr[..]).unwrap();
                let n = r
                    .prepare_message_2_with_ephemeral(
                        &Y,
                        ConnId::new(&[0x27]).unwrap(),
                        &[],
                        &mut buf,
                    )
                    .unwrap();
                assert_eq!(&buf[..n], &m2[..]);
            }
        }
        1 => {
            let mut i = run.i_wait_m2.clone();
            let bad = message(mode, data, m2);
            if i.process_message_2(&bad, &mut ti[..]).is_ok() {
                assert_eq!(&bad, m2, "a forged message_2 was accepted");
                let n = i.prepare_message_3(&[], &mut buf).unwrap();
                assert_eq!(&buf[..n], &m3[..]);
            } else {
                assert!(i.peer_credential().is_none() && i.is_aborted());
                assert!(i.process_message_2(m2, &mut ti[..]).is_err());
                assert!(i.prepare_message_3(&[], &mut buf).is_err());
                assert!(i.session().is_none());
            }
        }
        2 => {
            let mut r = run.r_wait_m3.clone();
            let bad = message(mode, data, m3);
            if r.process_message_3(&bad, &mut tr[..]).is_ok() {
                assert_eq!(&bad, m3, "a forged message_3 was accepted");
                assert_eq!(
                    r.session().unwrap().prk_out(),
                    run.i_done.session().unwrap().prk_out()
                );
            } else {
                assert!(!r.is_done() && r.is_aborted());
                assert!(r.process_message_3(m3, &mut tr[..]).is_err());
                assert!(r.session().is_none());
            }
        }
        3 => {
            let mut i = run.i_done.clone();
            let bad = message(mode, data, m4);
            if i.process_message_4(&bad, &mut ti[..]).is_ok() {
                assert_eq!(&bad, m4, "a forged message_4 was accepted");
            } else {
                assert!(i.is_aborted() && i.session().is_none());
                assert!(i.process_message_4(m4, &mut ti[..]).is_err());
            }
        }
        _ => {
            // anything to sides that are past the point of taking it
            let mut i = run.i_done.clone();
            let wrong_state = cssf_auth::Error::Edhoc(EdhocError::UnexpectedMessage);
            assert_eq!(
                i.process_message_2(data, &mut ti[..]).unwrap_err(),
                wrong_state
            );
            assert_eq!(
                i.session().unwrap().prk_out(),
                run.i_done.session().unwrap().prk_out()
            );
            i.process_message_4(m4, &mut ti[..]).unwrap();
            let mut r = run.r_wait_m3.clone();
            assert_eq!(
                r.process_message_1(data, &mut tr[..]).unwrap_err(),
                wrong_state
            );
            r.process_message_3(m3, &mut tr[..]).unwrap();
            let _ = ErrorMessage::parse(data);
            let _ = Credential::from_ccs(data);
        }
    }
});
