//! The `file_store` example as a user runs it: a value set by one run is
//! read by the next, and a copy of an older image is refused (the rollback
//! counter beside it). `cargo test` builds the example first (with a
//! target filter: `cargo build -p cssf-store --features std --examples`).
#![cfg(feature = "std")]
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use cssf_netsim::peer::{example, Proc};

#[test]
fn file_store_example_persists_and_refuses_a_rollback() {
    let bin = example(env!("CARGO_MANIFEST_DIR"), "file_store");
    let dir = std::env::temp_dir().join(format!("cssf-file-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("store.img");
    let path = img.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut a = vec![path];
        a.extend_from_slice(args);
        Proc::spawn(&bin, &a, "file_store").finish()
    };
    let (st, out) = run(&["set", "psk/dev-1", "first"]);
    assert!(st.success(), "{out}");
    let (st, out) = run(&["get", "psk/dev-1"]);
    assert!(st.success() && out.contains("psk/dev-1 = first"), "{out}");
    // Keep the old image, write a newer value, put the old image back.
    let old = std::fs::read(&img).unwrap();
    let (st, out) = run(&["set", "psk/dev-1", "second"]);
    assert!(st.success(), "{out}");
    let (st, out) = run(&["list"]);
    assert!(st.success() && out.contains("psk/dev-1"), "{out}");
    std::fs::write(&img, old).unwrap();
    let (st, out) = run(&["get", "psk/dev-1"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!st.success(), "the old image was mounted:\n{out}");
    assert!(out.contains("Rollback"), "{out}");
}
