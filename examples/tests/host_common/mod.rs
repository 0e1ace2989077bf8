//! Helpers for the host-tool tests: run the real binaries with bounded
//! waits, start `cssf-server` on free loopback ports, temp directories.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cssf_netsim::peer::{free_udp_port_pair, ChildGuard};

/// Path of one of our binaries (`CSSF_TEST_SERVER` names another
/// `cssf-server` to test, e.g. an older build).
pub fn bin(name: &str) -> PathBuf {
    if let (Some(p), "cssf-server") = (std::env::var_os("CSSF_TEST_SERVER"), name) {
        return p.into();
    }
    match name {
        "cssf-server" => env!("CARGO_BIN_EXE_cssf-server").into(),
        "cssf-client" => env!("CARGO_BIN_EXE_cssf-client").into(),
        "cssf-token" => env!("CARGO_BIN_EXE_cssf-token").into(),
        "cssf-demo" => env!("CARGO_BIN_EXE_cssf-demo").into(),
        "cssf-dissect" => env!("CARGO_BIN_EXE_cssf-dissect").into(),
        "cssf-load" => env!("CARGO_BIN_EXE_cssf-load").into(),
        other => other.into(),
    }
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the exit code is 0.
    pub fn ok(self, what: &str) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after `tag`.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "cssf-host-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A path inside.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `program args` to completion within `limit` (killed otherwise, and
/// the test fails), stdin closed.
pub fn run(program: &str, args: &[&str], limit: Duration) -> Run {
    let dir = TempDir::new("run");
    let (out, err) = (dir.path("stdout"), dir.path("stderr"));
    let child = Command::new(bin(program))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut guard = ChildGuard(child);
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = guard.0.kill();
            let _ = guard.0.wait();
            panic!(
                "{program} {args:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                read(&out),
                read(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: read(&out),
        stderr: read(&err),
    }
}

fn read(p: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A running `cssf-server` (killed on drop) and its log.
pub struct ServerProc {
    guard: ChildGuard,
    /// Plain CoAP port.
    pub coap: u16,
    /// CoAPs port.
    pub coaps: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl ServerProc {
    /// Starts `program` (our server, or a libcoap server when `libcoap`)
    /// on free ports; waits until both are bound.
    pub fn start(extra: &[&str]) -> ServerProc {
        for _ in 0..5 {
            // CoAPs on the CoAP port + 1, as the client assumes for
            // /authz-info by default.
            let coap = free_udp_port_pair();
            let coaps = coap + 1;
            let dir = TempDir::new("server");
            let log = dir.path("log");
            let bind = format!("127.0.0.1:{coap}");
            let dbind = format!("127.0.0.1:{coaps}");
            let child = Command::new(bin("cssf-server"))
                .args(["--bind", &bind, "--dtls-bind", &dbind])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(File::create(&log).unwrap())
                .stderr(Stdio::from(File::create(dir.path("err")).unwrap()))
                .spawn()
                .unwrap();
            let mut s = ServerProc {
                guard: ChildGuard(child),
                coap,
                coaps,
                log,
                _dir: dir,
            };
            if s.wait_bound(&[coap, coaps]) {
                return s;
            }
        }
        panic!("cssf-server did not start on free ports");
    }

    fn wait_bound(&mut self, ports: &[u16]) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.guard.0.try_wait().unwrap().is_some() {
                return false; // e.g. a port clash: try others
            }
            let bound = ports
                .iter()
                .all(|p| UdpSocket::bind(("127.0.0.1", *p)).is_err());
            if bound && self.log().contains("listening on") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The server's process id.
    #[allow(dead_code)] // not every test binary reads it
    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// What the server wrote to stderr so far (its `-v` log messages).
    #[allow(dead_code)] // not every test binary reads it
    pub fn stderr(&self) -> String {
        read(&self._dir.path("err"))
    }

    /// `coap://127.0.0.1:PORT/path`.
    pub fn coap_uri(&self, path: &str) -> String {
        format!("coap://127.0.0.1:{}/{path}", self.coap)
    }

    /// `coaps://127.0.0.1:PORT/path`.
    pub fn coaps_uri(&self, path: &str) -> String {
        format!("coaps://127.0.0.1:{}/{path}", self.coaps)
    }
}

/// The deterministic `/large` body.
pub fn large_body() -> String {
    (0..128)
        .map(|i| format!("{i:04} abcdefghijklmnopqrstuvwxyz\n"))
        .collect()
}

/// A printable test body of `n` bytes.
pub fn text_body(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

/// Asserts that stderr is exactly one `error: ...` line containing `want`,
/// and that the exit code is 1.
pub fn assert_one_line_error(r: &Run, want: &str, what: &str) {
    assert_eq!(r.code, Some(1), "{what}: exit code\n{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {:?}", r.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(want),
        "{what}: expected an error containing {want:?}, got {:?}",
        lines[0]
    );
}

/// Asserts a usage error from clap: exit code 2, stderr starting with
/// `error: ` and containing `want`, and no output on stdout.
pub fn assert_usage_error(r: &Run, want: &str, what: &str) {
    assert_eq!(r.code, Some(2), "{what}: exit code\n{r:?}");
    assert!(
        r.stderr.starts_with("error: ") && r.stderr.contains(want),
        "{what}: expected a usage error containing {want:?}, got {:?}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{what}: stdout {:?}", r.stdout);
}

/// A libcoap server (`coap-server-openssl`, ...) with PSK `key` on a free
/// loopback port pair (CoAP on `port`, CoAPs on `port + 1`), stopped on
/// drop; returns once both ports are bound.
pub fn start_libcoap_server(bin: &str, key: &str) -> (ChildGuard, u16) {
    let port = free_udp_port_pair();
    let child = Command::new(bin)
        .args(["-A", "127.0.0.1", "-p", &port.to_string(), "-k", key])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let guard = ChildGuard(child);
    let end = Instant::now() + Duration::from_secs(10);
    while [port, port + 1]
        .iter()
        .any(|p| UdpSocket::bind(("127.0.0.1", *p)).is_ok())
    {
        assert!(Instant::now() < end, "{bin} did not bind");
        std::thread::sleep(Duration::from_millis(20));
    }
    (guard, port)
}
