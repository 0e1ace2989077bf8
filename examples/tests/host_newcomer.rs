//! The README's newcomer path, run as written: the shell lines between its
//! `<!-- newcomer -->` markers make a new cargo project that depends on
//! cssf-dtls and cssf-coap by path and runs the `coaps_client` example as
//! its `main`, against a `cssf-server` on a free port. Needs the package
//! registry for `cargo add rand_core` (CI has it); the new project builds
//! its dependencies in its own target directory (about a minute).

mod host_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use host_common::{ServerProc, TempDir};

/// The README's lines between the newcomer markers.
fn newcomer_lines() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("<!-- newcomer:")
        .expect("newcomer marker in README.md");
    let end = readme
        .find("<!-- /newcomer -->")
        .expect("end marker in README.md");
    let block = &readme[start..end];
    let body = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh code block between the markers");
    body.lines().map(str::to_string).collect()
}

#[test]
fn readme_newcomer_path_reaches_a_secure_coap_exchange() {
    let lines = newcomer_lines();
    assert!(lines.len() >= 4, "{lines:?}");
    let s = ServerProc::start(&["--psk", "Client_identity:73656372657450534b"]);
    // The README's server listens on 5684; ours on a free port.
    let last = lines.last().unwrap().clone();
    assert!(last.contains("127.0.0.1:5684"), "{last}");
    let mut script = lines[..lines.len() - 1].join("\n");
    script.push('\n');
    script.push_str(&last.replace("127.0.0.1:5684", &format!("127.0.0.1:{}", s.coaps)));
    let dir = TempDir::new("newcomer");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let out = Command::new("bash")
        .args(["-eu", "-c", &script])
        .current_dir(&dir.0)
        .env("CSSF", &root)
        // The scratch project is its own workspace, outside ours.
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README's lines failed ({}):\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("connected (PskWithAes128Ccm8), GET /time"),
        "{stdout}"
    );
    assert!(stdout.contains("2.05 "), "{stdout}");
    assert!(stdout.contains("closed: closed"), "{stdout}");
    // The server saw the session (its log names the identity).
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while !s.log().contains("Client_identity") && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.log().contains("Client_identity"), "{}", s.log());
}
