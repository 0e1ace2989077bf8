//! Finding the external implementations interop tests talk to.
//!
//! On a developer's machine a missing peer skips the test with a message
//! naming what to install; in CI (`CI` set to anything but `false`/`0`) a
//! missing peer is a failure, never a silent skip.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::string::String;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

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

/// The built example `name` of the package at `manifest_dir` (pass
/// `env!("CARGO_MANIFEST_DIR")`), checked to be newer than its source
/// (`examples/NAME.rs`). `cargo test` builds a package's examples (into
/// `target/<profile>/examples/`, beside the directory of the test binary)
/// unless a target filter is given: a missing or stale example fails the
/// test, naming the command that builds it.
pub fn example(manifest_dir: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path"); // target/<profile>/deps/x-<hash>
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let src = Path::new(manifest_dir).join(format!("examples/{name}.rs"));
    let changed = std::fs::metadata(&src)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let package = Path::new(manifest_dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match built {
        Ok(t) if t >= changed => bin,
        Ok(_) => panic!(
            "{} is older than {}: run `cargo build -p {package} --examples`",
            bin.display(),
            src.display()
        ),
        Err(e) => panic!(
            "{}: {e}: run `cargo build -p {package} --examples` (plain `cargo test` builds it)",
            bin.display()
        ),
    }
}

/// How long [`Proc`] waits for one step before declaring the program hung.
pub const GUARD: Duration = Duration::from_secs(60);

/// A running program: its stdout and stderr as lines, killed on drop.
pub struct Proc {
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    rx: Receiver<String>,
    lines: Vec<String>,
    what: String,
}

impl Proc {
    /// Starts `program` with `args`; `what` names it in failures.
    pub fn spawn(program: &Path, args: &[&str], what: &str) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {}: {e}", program.display()));
        let (tx, rx) = channel();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for r in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let stdin = child.stdin.take();
        Proc {
            child: ChildGuard(child),
            stdin,
            rx,
            lines: Vec::new(),
            what: what.into(),
        }
    }

    /// Waits (bounded by [`GUARD`]) for a line containing `needle`, and
    /// returns it.
    pub fn wait_line(&mut self, needle: &str) -> String {
        let end = Instant::now() + GUARD;
        loop {
            if let Some(l) = self.lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.lines.push(line),
                Err(e) => panic!(
                    "{}: no line with {needle:?} ({e:?}); printed:\n{}",
                    self.what,
                    self.lines.join("\n")
                ),
            }
        }
    }

    /// Waits (bounded by [`GUARD`]) for the program to exit; its status
    /// and everything it printed.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let end = Instant::now() + GUARD;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.lines.push(line),
                // Both pipes closed: the program ended.
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: did not exit; printed:\n{}",
                    self.what,
                    self.lines.join("\n")
                ),
            }
        }
        let status = self.child.0.wait().expect("wait");
        (status, self.lines.join("\n"))
    }

    /// The lines read so far (by [`wait_line`](Self::wait_line)).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Writes `data` to the program's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(data).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }
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
