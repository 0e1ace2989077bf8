//! Every EDHOC parser on arbitrary bytes: message_1, PLAINTEXT_2 and
//! PLAINTEXT_3 (which the handshake target cannot reach: they sit behind
//! MAC_2's keystream and message_3's AEAD), ID_CRED_x with a CCS by value,
//! EAD items, the single-bstr message form, the error message and the CCS
//! parser. Never a panic, and what a parser hands back lies inside its
//! input (checked in `cssf_auth::edhoc::fuzzing::parse_all`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cssf_auth::edhoc::fuzzing::parse_all(data);
});
