//! The `token_check` example as a user runs it: it mints a token, a forged
//! copy is refused (4.01), the token is taken (2.01), and the requests are
//! decided by its scope; and it checks a token file given on its command
//! line. `cargo test` builds the example first (with a target filter:
//! `cargo build -p cssf-auth --features issuer --examples`).
#![cfg(feature = "issuer")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use cssf_netsim::peer::{example, Proc};

#[test]
fn token_check_example_mints_checks_and_decides() {
    let bin = example(env!("CARGO_MANIFEST_DIR"), "token_check");
    let (status, out) = Proc::spawn(&bin, &[], "token_check").finish();
    assert!(status.success(), "token_check failed ({status}):\n{out}");
    for want in [
        "forged token: 4.01 (Some(VerificationFailed))",
        "token: 2.01 (None)",
        "PoP key id (the DTLS psk_identity): \"client-1\"",
        "Get /sensors/temp: Allow",
        "Put /actuators/led: Deny(PathNotInScope)",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    // A token file from elsewhere with the wrong AS key: refused, exit 1.
    let dir = std::env::temp_dir().join(format!("cssf-token-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("junk.cwt");
    std::fs::write(&file, [0xd1, 0x84, 0x43, 0xa1, 0x01, 0x05]).unwrap();
    let (status, out) = Proc::spawn(
        &bin,
        &[file.to_str().unwrap(), "00112233"],
        "token_check FILE",
    )
    .finish();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!status.success(), "{out}");
    assert!(out.contains("token: 4.0"), "{out}");
    assert!(out.contains("the token was refused"), "{out}");
}
