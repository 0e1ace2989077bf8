//! Finding the external implementations interop tests talk to.
//!
//! On a developer's machine a missing peer skips the test with a message
//! naming what to install; in CI (`CI` set to anything but `false`/`0`) a
//! missing peer is a failure, never a silent skip.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::string::String;

/// Owns a peer's child process and kills (and reaps) it on every path,
/// panics included. Public field: use the [`Child`] as usual.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when running in CI, where every peer must be present.
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "false" || v == "0"),
        Err(_) => false,
    }
}

/// Full path of `binary` on `PATH`, if any.
pub fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
}

fn missing(what: &str, install: &str) -> bool {
    let msg = std::format!("interop peer `{what}` not found; install it with: {install}");
    if in_ci() {
        panic!("{msg} (CI requires every interop peer)");
    }
    std::eprintln!("SKIPPED: {msg}");
    false
}

/// `true` when `binary` is on `PATH`; otherwise skips (prints why) or, in CI,
/// panics.
pub fn require_binary(binary: &str, install: &str) -> bool {
    which(binary).is_some() || missing(binary, install)
}

/// `true` when `python3 -c "import MODULE"` works; otherwise skips or, in CI,
/// panics.
pub fn require_python_module(module: &str, install: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &std::format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok || missing(&std::format!("python3 module {module}"), install)
}

/// The first line of `binary --version` style output, for failure messages.
pub fn version(binary: &str, args: &[&str]) -> String {
    Command::new(binary)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            if s.trim().is_empty() {
                s = String::from_utf8_lossy(&o.stderr).into_owned();
            }
            s.lines().next().unwrap_or("").trim().into()
        })
        .unwrap_or_else(|| "unknown version".into())
}

/// A UDP port on 127.0.0.1 that was free a moment ago (bind to port 0 and
/// release it). Tests that start a peer on it should retry on a clash.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Two consecutive free UDP ports `p` and `p + 1` (libcoap serves CoAPs on
/// the CoAP port + 1).
pub fn free_udp_port_pair() -> u16 {
    for _ in 0..100 {
        let p = free_udp_port();
        if p != 0 && p < u16::MAX && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_shell_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("definitely-not-a-binary-cssf").is_none());
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_udp_port(), 0);
        assert_ne!(free_udp_port_pair(), 0);
    }
}
