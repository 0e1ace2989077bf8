//! The EDHOC OSCORE export (RFC 9528 Appendix A.1) keys cssf-coap's OSCORE:
//! after a handshake each side builds its security context from
//! `Session::oscore()`, and a request protected by the initiator is
//! unprotected by the responder, and the response back. A context from a
//! different handshake does not open it.
#![cfg(feature = "edhoc")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cssf_auth::edhoc::*;
use cssf_coap::oscore::{Params, SecurityContext, SenderSequence};

fn handshake(c_i: &[u8], c_r: &[u8]) -> (OscoreContext, OscoreContext) {
    let (i, r) = parties(c_i, c_r, true);
    (
        i.session().unwrap().oscore().unwrap(),
        r.session().unwrap().oscore().unwrap(),
    )
}

/// Both sides after message_1 and message_2, and message_3 too if `finish`.
fn parties(c_i: &[u8], c_r: &[u8], finish: bool) -> (Initiator, Responder) {
    let (ki, kr) = ([0x61u8; 32], [0x72u8; 32]);
    let ci = Credential::ccs_for(&ki, &[1], "i").unwrap();
    let cr = Credential::ccs_for(&kr, &[2], "r").unwrap();
    let t = CredentialTransfer::ByReference;
    let mut i = Initiator::new(
        Method::StaticStatic,
        Identity::new(ci.clone(), &ki, t).unwrap(),
    );
    let mut r = Responder::new(
        Identity::new(cr.clone(), &kr, t).unwrap(),
        &[Method::StaticStatic],
    );
    let (mut ti, mut tr) = ([cr], [ci]);
    let mut rng = rand_core::OsRng;
    let mut b = [0u8; MAX_MESSAGE_LEN];
    let n = i
        .prepare_message_1(&mut rng, ConnId::new(c_i).unwrap(), &[], &mut b)
        .unwrap();
    r.process_message_1(&b[..n], &mut tr[..]).unwrap();
    let n = r
        .prepare_message_2(&mut rng, ConnId::new(c_r).unwrap(), &[], &mut b)
        .unwrap();
    i.process_message_2(&b[..n], &mut ti[..]).unwrap();
    if finish {
        let n = i.prepare_message_3(&[], &mut b).unwrap();
        r.process_message_3(&b[..n], &mut tr[..]).unwrap();
    }
    (i, r)
}

fn context(o: &OscoreContext) -> SecurityContext {
    let p = Params {
        master_secret: o.master_secret(),
        master_salt: o.master_salt(),
        id_context: None,
        sender_id: o.sender_id(),
        recipient_id: o.recipient_id(),
    };
    SecurityContext::new(&p, SenderSequence::Volatile).unwrap()
}

#[test]
fn exported_contexts_protect_a_request_and_its_response() {
    for (c_i, c_r) in [
        (&[0x37][..], &[0x27][..]),
        (&[][..], &[1, 2, 3, 4, 5, 6, 7][..]),
    ] {
        let (oi, or) = handshake(c_i, c_r);
        let (mut client, mut server) = (context(&oi), context(&or));
        // CON GET, message ID 1, no token, Uri-Path "temp"
        let get = [0x40, 0x01, 0x00, 0x01, 0xb4, b't', b'e', b'm', b'p'];
        let mut wire = [0u8; 128];
        let (n, mut binding) = client.protect_request(&get, &mut wire).unwrap();
        let mut plain = [0u8; 128];
        let (m, mut server_binding) = server
            .unprotect_request(&mut wire[..n], &mut plain)
            .unwrap();
        assert_eq!(&plain[..m], &get[..], "{c_i:02x?} {c_r:02x?}");
        // ACK 2.05 with payload "21"
        let content = [0x60, 0x45, 0x00, 0x01, 0xff, b'2', b'1'];
        let n = server
            .protect_response(&mut server_binding, &content, false, &mut wire)
            .unwrap();
        let m = client
            .unprotect_response(&mut binding, &mut wire[..n], &mut plain)
            .unwrap();
        assert_eq!(&plain[..m], &content[..]);
    }
    // a context from another handshake with the same identifiers fails
    let (oi, _) = handshake(&[0x37], &[0x27]);
    let (_, other) = handshake(&[0x37], &[0x27]);
    let (mut client, mut server) = (context(&oi), context(&other));
    let get = [0x40, 0x01, 0x00, 0x01];
    let mut wire = [0u8; 64];
    let mut plain = [0u8; 64];
    let (n, _) = client.protect_request(&get, &mut wire).unwrap();
    assert!(server
        .unprotect_request(&mut wire[..n], &mut plain)
        .is_err());
}

#[test]
fn connection_identifiers_fit_oscore_ids() {
    assert!(ConnId::new(&[0; MAX_CONN_ID_LEN]).is_ok());
    assert!(ConnId::new(&[0; MAX_CONN_ID_LEN + 1]).is_err());
}

/// RFC 9528 §5.4.2: the initiator has key confirmation only after message_4
/// or an application message from the responder verified; the responder
/// has it once message_3 verified.
#[test]
fn key_confirmation_follows_the_responders_first_protected_message() {
    // before message_3: neither side, and the initiator cannot be told so
    let (mut i, r) = parties(&[0x37], &[0x27], false);
    assert!(!i.key_confirmed() && !r.key_confirmed());
    assert!(matches!(
        i.confirm_key(),
        Err(cssf_auth::Error::Edhoc(EdhocError::UnexpectedMessage))
    ));
    assert!(!i.key_confirmed());

    // after message_3: the responder has it, the initiator not yet
    let (mut i, r) = parties(&[0x37], &[0x27], true);
    assert!(r.key_confirmed());
    assert!(i.is_done() && !i.key_confirmed());
    // the responder's OSCORE response verifies: the application says so
    let (mut client, mut server) = (
        context(&i.session().unwrap().oscore().unwrap()),
        context(&r.session().unwrap().oscore().unwrap()),
    );
    let get = [0x40, 0x01, 0x00, 0x01];
    let (mut wire, mut plain) = ([0u8; 64], [0u8; 64]);
    let (n, mut binding) = client.protect_request(&get, &mut wire).unwrap();
    let (_, mut sb) = server
        .unprotect_request(&mut wire[..n], &mut plain)
        .unwrap();
    let n = server
        .protect_response(&mut sb, &[0x60, 0x45, 0x00, 0x01], false, &mut wire)
        .unwrap();
    client
        .unprotect_response(&mut binding, &mut wire[..n], &mut plain)
        .unwrap();
    i.confirm_key().unwrap();
    assert!(i.key_confirmed());

    // or message_4 does it
    let (mut i, mut r) = parties(&[0x37], &[0x27], true);
    let mut b = [0u8; MAX_MESSAGE_LEN];
    let n = r.prepare_message_4(&[], &mut b).unwrap();
    let mut trust = [Credential::ccs_for(&[0x72; 32], &[2], "r").unwrap()];
    // a forged message_4 (one bit flipped) confirms nothing, and ends it
    let mut forged = b;
    forged[n - 1] ^= 1;
    assert!(i.process_message_4(&forged[..n], &mut trust[..]).is_err());
    assert!(!i.key_confirmed() && i.is_aborted());
    let (mut i, mut r) = parties(&[0x37], &[0x27], true);
    let n = r.prepare_message_4(&[], &mut b).unwrap();
    i.process_message_4(&b[..n], &mut trust[..]).unwrap();
    assert!(i.key_confirmed());
}
