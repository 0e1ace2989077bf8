//! What the libcoap interop tests share: the peer's name for messages and
//! starting `coap-server-notls` on a free port.
#![allow(dead_code)] // each test file uses part of it

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cssf_netsim::peer::{free_udp_port, version, ChildGuard};

/// How to get the libcoap binaries.
pub(crate) const INSTALL: &str = "apt-get install libcoap3-bin";

/// `libcoap BIN [version line]`, for failure messages.
pub(crate) fn peer_name(bin: &str) -> String {
    // `-h` without an argument prints the usage, whose second line names the version.
    let out = Command::new(bin).arg("-h").output().map(|o| {
        let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&o.stderr));
        s
    });
    let v = out
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.contains(" v"))
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| version(bin, &["-h"]));
    format!("libcoap {bin} [{v}]")
}

/// Starts `coap-server-notls -A 127.0.0.1 -p PORT EXTRA...` on a free port
/// and waits until it holds the port (a server that exits, e.g. on a port
/// clash with a parallel test, is retried on another port).
pub(crate) fn start_server_notls(name: &str, extra: &[&str]) -> (ChildGuard, u16) {
    for _ in 0..5 {
        let port = free_udp_port();
        let mut guard = ChildGuard(
            Command::new("coap-server-notls")
                .args(["-A", "127.0.0.1", "-p", &port.to_string()])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{name}: cannot start: {e}")),
        );
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if guard.0.try_wait().ok().flatten().is_some() {
                break; // exited: try another port
            }
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                return (guard, port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{name} did not start on a free port");
}
