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
