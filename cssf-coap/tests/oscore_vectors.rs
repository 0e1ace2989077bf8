//! RFC 8613 Appendix C test vectors, byte for byte: key derivation with and
//! without Master Salt and with an ID Context (C.1-C.3), protected requests
//! (C.4-C.6) and protected responses without and with their own Partial IV
//! (C.7, C.8). Each protected message is also verified by the peer's context.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use cssf_coap::oscore::{
    Error, Params, PartialIv, RequestBinding, SecurityContext, SenderSequence,
};
use cssf_coap::Message;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const MASTER_SECRET: &str = "0102030405060708090a0b0c0d0e0f10";
const MASTER_SALT: &str = "9e7ca92223786340";
const ID_CONTEXT: &str = "37cbf3210017a2d3";

struct Derivation {
    salt: &'static str,
    id_context: Option<&'static str>,
    sender_id: &'static str,
    recipient_id: &'static str,
    sender_key: &'static str,
    recipient_key: &'static str,
    common_iv: &'static str,
    sender_nonce: &'static str,
    recipient_nonce: &'static str,
}

// C.1.1 (client) and C.1.2 (server): with Master Salt.
const C1_CLIENT: Derivation = Derivation {
    salt: MASTER_SALT,
    id_context: None,
    sender_id: "",
    recipient_id: "01",
    sender_key: "f0910ed7295e6ad4b54fc793154302ff",
    recipient_key: "ffb14e093c94c9cac9471648b4f98710",
    common_iv: "4622d4dd6d944168eefb54987c",
    sender_nonce: "4622d4dd6d944168eefb54987c",
    recipient_nonce: "4722d4dd6d944169eefb54987c",
};
const C1_SERVER: Derivation = Derivation {
    salt: MASTER_SALT,
    id_context: None,
    sender_id: "01",
    recipient_id: "",
    sender_key: "ffb14e093c94c9cac9471648b4f98710",
    recipient_key: "f0910ed7295e6ad4b54fc793154302ff",
    common_iv: "4622d4dd6d944168eefb54987c",
    sender_nonce: "4722d4dd6d944169eefb54987c",
    recipient_nonce: "4622d4dd6d944168eefb54987c",
};
// C.2.1 and C.2.2: without Master Salt.
const C2_CLIENT: Derivation = Derivation {
    salt: "",
    id_context: None,
    sender_id: "00",
    recipient_id: "01",
    sender_key: "321b26943253c7ffb6003b0b64d74041",
    recipient_key: "e57b5635815177cd679ab4bcec9d7dda",
    common_iv: "be35ae297d2dace910c52e99f9",
    sender_nonce: "bf35ae297d2dace910c52e99f9",
    recipient_nonce: "bf35ae297d2dace810c52e99f9",
};
const C2_SERVER: Derivation = Derivation {
    salt: "",
    id_context: None,
    sender_id: "01",
    recipient_id: "00",
    sender_key: "e57b5635815177cd679ab4bcec9d7dda",
    recipient_key: "321b26943253c7ffb6003b0b64d74041",
    common_iv: "be35ae297d2dace910c52e99f9",
    sender_nonce: "bf35ae297d2dace810c52e99f9",
    recipient_nonce: "bf35ae297d2dace910c52e99f9",
};
// C.3.1 and C.3.2: with ID Context.
const C3_CLIENT: Derivation = Derivation {
    salt: MASTER_SALT,
    id_context: Some(ID_CONTEXT),
    sender_id: "",
    recipient_id: "01",
    sender_key: "af2a1300a5e95788b356336eeecd2b92",
    recipient_key: "e39a0c7c77b43f03b4b39ab9a268699f",
    common_iv: "2ca58fb85ff1b81c0b7181b85e",
    sender_nonce: "2ca58fb85ff1b81c0b7181b85e",
    recipient_nonce: "2da58fb85ff1b81d0b7181b85e",
};
const C3_SERVER: Derivation = Derivation {
    salt: MASTER_SALT,
    id_context: Some(ID_CONTEXT),
    sender_id: "01",
    recipient_id: "",
    sender_key: "e39a0c7c77b43f03b4b39ab9a268699f",
    recipient_key: "af2a1300a5e95788b356336eeecd2b92",
    common_iv: "2ca58fb85ff1b81c0b7181b85e",
    sender_nonce: "2da58fb85ff1b81d0b7181b85e",
    recipient_nonce: "2ca58fb85ff1b81c0b7181b85e",
};

fn context(d: &Derivation, sequence: SenderSequence) -> SecurityContext {
    let secret = hex(MASTER_SECRET);
    let salt = hex(d.salt);
    let ctx = d.id_context.map(hex);
    let sender = hex(d.sender_id);
    let recipient = hex(d.recipient_id);
    let p = Params {
        master_secret: &secret,
        master_salt: &salt,
        id_context: ctx.as_deref(),
        sender_id: &sender,
        recipient_id: &recipient,
    };
    SecurityContext::new(&p, sequence).unwrap()
}

/// A context whose next Sender Sequence Number is `seq` (the vectors use 20
/// for requests and 0 for the C.8 response): restored from a persisted
/// value, then confirmed far ahead.
fn context_at(d: &Derivation, seq: u64) -> SecurityContext {
    let mut c = context(
        d,
        SenderSequence::Persisted {
            stored: seq,
            step: 100,
        },
    );
    let v = c.persist_due().unwrap();
    c.persisted(v);
    assert_eq!(c.sender_sequence_number(), seq);
    c
}

fn check_derivation(d: &Derivation) {
    let c = context(d, SenderSequence::Volatile);
    assert_eq!(c.sender_key().as_slice(), hex(d.sender_key));
    assert_eq!(c.recipient_key().as_slice(), hex(d.recipient_key));
    assert_eq!(c.common_iv().as_slice(), hex(d.common_iv));
    let piv0 = PartialIv::from_sequence(0);
    assert_eq!(c.sender_nonce(&piv0).as_slice(), hex(d.sender_nonce));
    assert_eq!(c.recipient_nonce(&piv0).as_slice(), hex(d.recipient_nonce));
}

#[test]
fn c1_key_derivation_with_master_salt() {
    check_derivation(&C1_CLIENT);
    check_derivation(&C1_SERVER);
}

#[test]
fn c2_key_derivation_without_master_salt() {
    check_derivation(&C2_CLIENT);
    check_derivation(&C2_SERVER);
}

#[test]
fn c3_key_derivation_with_id_context() {
    check_derivation(&C3_CLIENT);
    check_derivation(&C3_SERVER);
}

/// Protects `unprotected` on the client, compares with `protected`, then
/// verifies it on the server and compares the result with `unprotected`.
fn check_request(
    client: &Derivation,
    server: &Derivation,
    unprotected: &str,
    protected: &str,
) -> (SecurityContext, RequestBinding) {
    let mut c = context_at(client, 20);
    let plain = hex(unprotected);
    let mut out = [0u8; 128];
    let (n, binding) = c.protect_request(&plain, &mut out).unwrap();
    assert_eq!(hex_str(&out[..n]), protected);
    assert_eq!(binding.partial_iv.as_bytes(), [0x14]);
    assert_eq!(binding.kid.as_bytes(), hex(client.sender_id));

    let mut s = context(server, SenderSequence::Volatile);
    let mut wire = out[..n].to_vec();
    let mut inner = [0u8; 128];
    let (m, b) = s.unprotect_request(&mut wire, &mut inner).unwrap();
    assert_eq!(hex_str(&inner[..m]), unprotected);
    assert_eq!(b, binding);
    // The same request again is a replay.
    let mut again = hex(protected);
    assert_eq!(
        s.unprotect_request(&mut again, &mut inner),
        Err(Error::Replay)
    );
    (s, binding)
}

fn hex_str(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// C.4: request, key derivation with Master Salt (C.1), Sender ID empty.
const C4_UNPROTECTED: &str = "44015d1f00003974396c6f63616c686f737483747631";
const C4_PROTECTED: &str = "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e";

#[test]
fn c4_request_with_master_salt() {
    check_request(&C1_CLIENT, &C1_SERVER, C4_UNPROTECTED, C4_PROTECTED);
}

#[test]
fn c5_request_without_master_salt() {
    check_request(
        &C2_CLIENT,
        &C2_SERVER,
        "440171c30000b932396c6f63616c686f737483747631",
        "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0",
    );
}

#[test]
fn c6_request_with_id_context() {
    check_request(
        &C3_CLIENT,
        &C3_SERVER,
        "44012f8eef9bbf7a396c6f63616c686f737483747631",
        "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3",
    );
}

const C7_UNPROTECTED: &str = "64455d1f00003974ff48656c6c6f20576f726c6421";

/// Protects the C.7/C.8 response to the C.4 request on the server, compares
/// with `protected`, verifies it on the client.
fn check_response(own_piv: bool, protected: &str) {
    let (mut server, mut binding) =
        check_request(&C1_CLIENT, &C1_SERVER, C4_UNPROTECTED, C4_PROTECTED);
    // The client keeps its own binding of the same request (the server's
    // records that it used the request's nonce).
    let mut client_binding = RequestBinding::new(binding.kid, binding.partial_iv);
    // The server's context in the vectors has Sender Sequence Number 0.
    assert_eq!(server.sender_sequence_number(), 0);
    let plain = hex(C7_UNPROTECTED);
    let mut out = [0u8; 128];
    let n = server
        .protect_response(&mut binding, &plain, own_piv, &mut out)
        .unwrap();
    assert_eq!(hex_str(&out[..n]), protected);

    let mut client = context(&C1_CLIENT, SenderSequence::Volatile);
    let mut wire = out[..n].to_vec();
    let mut inner = [0u8; 128];
    let m = client
        .unprotect_response(&mut client_binding, &mut wire, &mut inner)
        .unwrap();
    assert_eq!(hex_str(&inner[..m]), C7_UNPROTECTED);
    assert_eq!(
        Message::parse(&inner[..m]).unwrap().payload(),
        b"Hello World!"
    );

    // Bound to its request: the same bytes fail against another request.
    let mut other = RequestBinding::new(binding.kid, PartialIv::from_sequence(21));
    let mut wire = hex(protected);
    assert_eq!(
        client.unprotect_response(&mut other, &mut wire, &mut inner),
        Err(Error::DecryptionFailed)
    );
}

#[test]
fn c7_response_without_partial_iv() {
    check_response(
        false,
        "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106",
    );
}

#[test]
fn c8_response_with_partial_iv() {
    check_response(
        true,
        "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e",
    );
}
