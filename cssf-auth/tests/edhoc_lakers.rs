//! EDHOC interop with lakers (PyPI `lakers-python`), driven through
//! tests/peers/edhoc_peer.py over stdin / stdout: our initiator against the
//! lakers responder and the lakers initiator against our responder, method
//! 3, cipher suite 2, credentials (the RFC 9529 §3 CCSs) by reference and by
//! value. Each run checks that both sides export the same OSCORE Master
//! Secret and Master Salt, and that the connection identifiers agree.
//! Skips when lakers is missing (fails in CI).
#![cfg(feature = "edhoc")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use cssf_auth::edhoc::*;
use cssf_netsim::peer::{require_python_module, Proc};

const INSTALL: &str = "python3 -m pip install lakers-python==0.6.2";

const SK_I: &str = "fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b";
const SK_R: &str = "72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac";
const CRED_I: &str = "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611388a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8";
const CRED_R: &str = "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7afda64fcde0108c224c51eabf6072";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap()
}

fn peer_version() -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('lakers-python'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("lakers-python {out}, method 3, suite 2")
}

fn spawn(role: &str, transfer: CredentialTransfer, own: (&str, &str), peer: &str) -> Proc {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/edhoc_peer.py");
    let t = match transfer {
        CredentialTransfer::ByReference => "ref",
        CredentialTransfer::ByValue => "value",
    };
    let script = script.to_str().unwrap();
    Proc::spawn(
        Path::new("python3"),
        &[script, role, t, own.0, own.1, peer],
        &format!("lakers {role} ({})", peer_version()),
    )
}

/// The hex after `name ` in the peer's line.
fn field(line: &str, name: &str) -> Vec<u8> {
    let rest = line
        .split_once(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        .1;
    hex(rest.split_whitespace().next().unwrap())
}

fn oscore_line(p: &mut Proc) -> Vec<String> {
    let line = p.wait_line("oscore ");
    line.split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn our_initiator_against_lakers(transfer: CredentialTransfer) {
    let what = peer_version();
    let mut p = spawn("responder", transfer, (SK_R, CRED_R), CRED_I);
    let me = Identity::new(
        Credential::from_ccs(&hex(CRED_I)).unwrap(),
        &key(SK_I),
        transfer,
    )
    .unwrap();
    let mut i = Initiator::new(Method::StaticStatic, me);
    let mut trust = [Credential::from_ccs(&hex(CRED_R)).unwrap()];
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = i
        .prepare_message_1(
            &mut rand_core::OsRng,
            ConnId::new(&[0x0e]).unwrap(),
            &[],
            &mut buf,
        )
        .unwrap();
    p.write_stdin(format!("{}\n", hex_of(&buf[..n])).as_bytes());
    let m2 = field(&p.wait_line("message_2 "), "message_2");
    i.process_message_2(&m2, &mut trust[..])
        .unwrap_or_else(|e| panic!("{what}: message_2 refused: {e:?}"));
    let n = i.prepare_message_3(&[], &mut buf).unwrap();
    p.write_stdin(format!("{}\n", hex_of(&buf[..n])).as_bytes());
    let o = oscore_line(&mut p);
    let ours = i.session().unwrap().oscore().unwrap();
    assert_eq!(o[0], hex_of(ours.master_secret()), "{what}: master secret");
    assert_eq!(o[1], hex_of(ours.master_salt()), "{what}: master salt");
    // lakers saw our C_I, which is our Recipient ID
    assert_eq!(o[2], hex_of(ours.recipient_id()), "{what}: C_I");
    let (status, out) = p.finish();
    assert!(status.success(), "{what}: {out}");
}

fn lakers_initiator_against_our_responder(transfer: CredentialTransfer) {
    let what = peer_version();
    let mut p = spawn("initiator", transfer, (SK_I, CRED_I), CRED_R);
    let me = Identity::new(
        Credential::from_ccs(&hex(CRED_R)).unwrap(),
        &key(SK_R),
        transfer,
    )
    .unwrap();
    let mut r = Responder::new(me, &[Method::StaticStatic]);
    let mut trust = [Credential::from_ccs(&hex(CRED_I)).unwrap()];
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let m1 = field(&p.wait_line("message_1 "), "message_1");
    let c_i = r
        .process_message_1(&m1, &mut trust[..])
        .unwrap_or_else(|e| panic!("{what}: message_1 refused: {e:?}"));
    let c_r = ConnId::new(&[if c_i.as_bytes() == [0x05] { 0x06 } else { 0x05 }]).unwrap();
    let n = r
        .prepare_message_2(&mut rand_core::OsRng, c_r, &[], &mut buf)
        .unwrap();
    p.write_stdin(format!("{}\n", hex_of(&buf[..n])).as_bytes());
    let m3 = field(&p.wait_line("message_3 "), "message_3");
    r.process_message_3(&m3, &mut trust[..])
        .unwrap_or_else(|e| panic!("{what}: message_3 refused: {e:?}"));
    let o = oscore_line(&mut p);
    let ours = r.session().unwrap().oscore().unwrap();
    assert_eq!(o[0], hex_of(ours.master_secret()), "{what}: master secret");
    assert_eq!(o[1], hex_of(ours.master_salt()), "{what}: master salt");
    // lakers saw our C_R, which is our Recipient ID
    assert_eq!(o[3], hex_of(ours.recipient_id()), "{what}: C_R");
    assert_eq!(r.peer_credential().unwrap().as_bytes(), hex(CRED_I));
    let (status, out) = p.finish();
    assert!(status.success(), "{what}: {out}");
}

#[test]
fn our_initiator_with_the_lakers_responder() {
    if !require_python_module("lakers", INSTALL) {
        return;
    }
    our_initiator_against_lakers(CredentialTransfer::ByReference);
    our_initiator_against_lakers(CredentialTransfer::ByValue);
}

#[test]
fn the_lakers_initiator_with_our_responder() {
    if !require_python_module("lakers", INSTALL) {
        return;
    }
    lakers_initiator_against_our_responder(CredentialTransfer::ByReference);
    lakers_initiator_against_our_responder(CredentialTransfer::ByValue);
}
