//! EDHOC on the Cortex-M4 (footprint build): an initiator and a responder
//! (cssf-auth, feature `edhoc`) run the RFC 9529 §3 handshake (method 3,
//! cipher suite 2, credentials by kid) in one image with the trace's
//! ephemeral keys, check that both export the trace's OSCORE Master Secret,
//! and print the message sizes, the state sizes and the peak stack. Both
//! roles are linked: a device that is only one of them carries less.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cssf_auth::edhoc::{
    ConnId, Credential, CredentialTransfer, Identity, Initiator, Method, Responder, MAX_MESSAGE_LEN,
};
use cssf_firmware::{fail, line, put, put_hex, put_num, stack};

// RFC 9529 §3 inputs.
const X: [u8; 32] = hex32("368ec1f69aeb659ba37d5a8d45b21bdc0299dceaa8ef235f3ca42ce3530f9525");
const Y: [u8; 32] = hex32("e2f4126777205e853b437d6eaca1e1f753cdcc3e2c69fa884b0a1a640977e418");
const SK_I: [u8; 32] = hex32("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b");
const SK_R: [u8; 32] = hex32("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac");
const MASTER_SECRET: [u8; 16] = [
    0xf9, 0x86, 0x8f, 0x6a, 0x3a, 0xca, 0x78, 0xa0, 0x5d, 0x14, 0x85, 0xb3, 0x50, 0x30, 0xb1, 0x62,
];

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nib(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware edhoc: Cortex-M4F, QEMU mps2-an386, semihosting"]);
    let Ok(cred_i) = Credential::ccs_for(&SK_I, &[0x2b], "42-50-31-FF-EF-37-32-39") else {
        fail(b"CRED_I")
    };
    let Ok(cred_r) = Credential::ccs_for(&SK_R, &[0x32], "example.edu") else {
        fail(b"CRED_R")
    };
    let (Ok(id_i), Ok(id_r)) = (
        Identity::new(cred_i.clone(), &SK_I, CredentialTransfer::ByReference),
        Identity::new(cred_r.clone(), &SK_R, CredentialTransfer::ByReference),
    ) else {
        fail(b"identities")
    };
    let mut trust_i = [cred_r];
    let mut trust_r = [cred_i];
    let Ok(mut i) = Initiator::new(Method::StaticStatic, id_i).with_suites(&[6, 2]) else {
        fail(b"suites")
    };
    let mut r = Responder::new(id_r, &[Method::StaticStatic]);
    let (Ok(c_i), Ok(c_r)) = (ConnId::new(&[0x37]), ConnId::new(&[0x27])) else {
        fail(b"ids")
    };
    let mut m = [0u8; MAX_MESSAGE_LEN];
    let Ok(n1) = i.prepare_message_1_with_ephemeral(&X, c_i, &[], &mut m) else {
        fail(b"message_1")
    };
    if r.process_message_1(&m[..n1], &mut trust_r[..]).is_err() {
        fail(b"responder: message_1");
    }
    let Ok(n2) = r.prepare_message_2_with_ephemeral(&Y, c_r, &[], &mut m) else {
        fail(b"message_2")
    };
    if i.process_message_2(&m[..n2], &mut trust_i[..]).is_err() {
        fail(b"initiator: message_2");
    }
    let Ok(n3) = i.prepare_message_3(&[], &mut m) else {
        fail(b"message_3")
    };
    if r.process_message_3(&m[..n3], &mut trust_r[..]).is_err() {
        fail(b"responder: message_3");
    }
    let (Some(si), Some(sr)) = (i.session(), r.session()) else {
        fail(b"sessions")
    };
    let (Ok(oi), Ok(or)) = (si.oscore(), sr.oscore()) else {
        fail(b"oscore")
    };
    if oi.master_secret() != &MASTER_SECRET || or.master_secret() != &MASTER_SECRET {
        fail(b"OSCORE Master Secret differs from RFC 9529");
    }
    put(b"edhoc: message_1/2/3 bytes ");
    put_num(n1);
    put(b"/");
    put_num(n2);
    put(b"/");
    put_num(n3);
    put(b", OSCORE master secret ");
    put_hex(oi.master_secret());
    line(&[]);
    put(b"size_of: Initiator ");
    put_num(core::mem::size_of::<Initiator>());
    put(b", Responder ");
    put_num(core::mem::size_of::<Responder>());
    line(&[]);
    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"edhoc OK"]);
    cssf_firmware::exit(true)
}
