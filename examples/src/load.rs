//! `cssf-load`: N concurrent CoAP-over-DTLS (PSK) clients against one
//! server, each from its own UDP source port: a handshake, then
//! confirmable GETs one after another until the time is up. It reports
//! handshakes per second, requests per second, latency percentiles and
//! errors, and, given the server's process id, the server's CPU time and
//! resident memory, so the same load can be run against `cssf-server` and
//! libcoap's `coap-server-openssl` and the figures put side by side.
//!
//! The load generator runs on one thread (tokio's current-thread runtime),
//! so on a two-core machine the server has the other core.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cssf_coap::endpoint::Request;
use cssf_coap::Code;

use crate::client::Link;
use crate::fail;
use crate::util::Result;

/// What one run does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server's CoAPs address.
    pub server: SocketAddr,
    /// The resource every GET asks for.
    pub path: String,
    /// PSK identity and key (every session uses the same ones).
    pub identity: Vec<u8>,
    /// The PSK.
    pub key: Vec<u8>,
    /// Concurrent sessions.
    pub sessions: usize,
    /// How many handshakes run at once while the sessions are set up.
    pub handshakes_at_once: usize,
    /// How long requests are sent once every session is up (or failed).
    pub duration: Duration,
    /// Requests per second of each session (0: back to back). RFC 7252
    /// §4.4 forbids reusing a Message ID with one server within
    /// EXCHANGE_LIFETIME (247 s), so a client sends at most 65536
    /// messages in that time, about 265 a second: above that a server that
    /// deduplicates as the RFC says takes a new request for a duplicate.
    pub rate: f64,
    /// How long one handshake or request may take before it counts as
    /// failed.
    pub timeout: Duration,
    /// The server's process id, for its CPU time and resident memory
    /// (Linux `/proc`).
    pub server_pid: Option<u32>,
    /// Sessions come from this many loopback addresses (127.0.0.1,
    /// 127.0.0.2, ...), in turn; 0: the unspecified address (the kernel
    /// picks). A DTLS server limits handshakes per host, as against a
    /// flood from one address: many devices have many addresses.
    pub source_hosts: u8,
}

/// Latencies in microseconds, with their percentiles.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    fn push(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// How many were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0-100), nearest rank, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let mut v = self.0.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        let i = rank.clamp(1, v.len()) - 1;
        v.get(i).map(|us| *us as f64 / 1000.0)
    }
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Sessions whose handshake completed.
    pub handshakes_ok: usize,
    /// Sessions whose handshake failed or timed out.
    pub handshakes_failed: usize,
    /// Wall time from the first ClientHello to the last session up.
    pub setup: Duration,
    /// Handshake durations.
    pub handshake_latency: Latencies,
    /// Requests answered 2.05 within the measurement window.
    pub requests_ok: usize,
    /// Requests that timed out or failed on the link.
    pub requests_failed: usize,
    /// Requests answered with another code than 2.05.
    pub requests_refused: usize,
    /// Request round-trip times.
    pub request_latency: Latencies,
    /// The measurement window's length.
    pub window: Duration,
    /// The server's CPU time (user + system) during the window.
    pub server_cpu: Option<Duration>,
    /// The server's resident memory before the first session, in bytes.
    pub server_rss_idle: Option<u64>,
    /// The server's resident memory with every session up, in bytes.
    pub server_rss_loaded: Option<u64>,
}

impl LoadReport {
    /// Completed requests per second of the window.
    pub fn requests_per_second(&self) -> f64 {
        per_second(self.requests_ok, self.window)
    }

    /// Completed requests per second of server CPU time ("per core").
    pub fn requests_per_cpu_second(&self) -> Option<f64> {
        self.server_cpu
            .filter(|c| !c.is_zero())
            .map(|c| self.requests_ok as f64 / c.as_secs_f64())
    }

    /// Completed handshakes per second of the set-up phase.
    pub fn handshakes_per_second(&self) -> f64 {
        per_second(self.handshakes_ok, self.setup)
    }

    /// The server's resident memory per established session, in bytes.
    pub fn rss_per_session(&self) -> Option<f64> {
        let (idle, loaded) = (self.server_rss_idle?, self.server_rss_loaded?);
        (self.handshakes_ok > 0)
            .then(|| loaded.saturating_sub(idle) as f64 / self.handshakes_ok as f64)
    }

    /// The report as text, one line per kind of figure, and a last
    /// `RESULT key=value ...` line for scripts.
    pub fn render(&self, cfg: &LoadConfig) -> String {
        let ms = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}"));
        let mut out = format!(
            "cssf-load: {} sessions to coaps://{}/{} ({} handshakes at once), requests for {:.1} s, {} per session\n",
            cfg.sessions,
            cfg.server,
            cfg.path.trim_start_matches('/'),
            cfg.handshakes_at_once,
            self.window.as_secs_f64(),
            if cfg.rate > 0.0 {
                format!("{}/s", cfg.rate)
            } else {
                "back to back".to_string()
            }
        );
        out += &format!(
            "handshakes: {} ok, {} failed, {:.1}/s over {:.2} s, p50 {} ms, p99 {} ms\n",
            self.handshakes_ok,
            self.handshakes_failed,
            self.handshakes_per_second(),
            self.setup.as_secs_f64(),
            ms(self.handshake_latency.percentile_ms(50.0)),
            ms(self.handshake_latency.percentile_ms(99.0)),
        );
        out += &format!(
            "requests: {} ok (2.05), {} refused (other codes), {} failed (timeouts, link errors), {:.1}/s, p50 {} ms, p99 {} ms\n",
            self.requests_ok,
            self.requests_refused,
            self.requests_failed,
            self.requests_per_second(),
            ms(self.request_latency.percentile_ms(50.0)),
            ms(self.request_latency.percentile_ms(99.0)),
        );
        if let Some(cpu) = self.server_cpu {
            out += &format!(
                "server: CPU {:.2} s in the {:.1} s window ({:.2} cores), {} requests per CPU second\n",
                cpu.as_secs_f64(),
                self.window.as_secs_f64(),
                cpu.as_secs_f64() / self.window.as_secs_f64().max(1e-9),
                self.requests_per_cpu_second()
                    .map_or("-".into(), |r| format!("{r:.0}")),
            );
        }
        if let (Some(idle), Some(loaded)) = (self.server_rss_idle, self.server_rss_loaded) {
            out += &format!(
                "server: resident memory {} KiB idle, {} KiB with the sessions up, {} B per session\n",
                idle / 1024,
                loaded / 1024,
                self.rss_per_session()
                    .map_or("-".into(), |b| format!("{b:.0}")),
            );
        }
        out += &format!(
            "RESULT sessions={} handshakes_ok={} handshakes_failed={} handshakes_per_s={:.1} requests_ok={} requests_refused={} requests_failed={} requests_per_s={:.1} p50_ms={} p99_ms={} requests_per_cpu_s={} rss_per_session_b={}\n",
            cfg.sessions,
            self.handshakes_ok,
            self.handshakes_failed,
            self.handshakes_per_second(),
            self.requests_ok,
            self.requests_refused,
            self.requests_failed,
            self.requests_per_second(),
            ms(self.request_latency.percentile_ms(50.0)),
            ms(self.request_latency.percentile_ms(99.0)),
            self.requests_per_cpu_second()
                .map_or("-".into(), |r| format!("{r:.0}")),
            self.rss_per_session()
                .map_or("-".into(), |b| format!("{b:.0}")),
        );
        out
    }
}

fn per_second(n: usize, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// The CPU time (user + system) of process `pid` so far, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks of 1/100 s: the
/// value of `sysconf(_SC_CLK_TCK)` on Linux).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 is at index 0, so fields 14 and 15 at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The resident memory of process `pid` in bytes (`VmRSS` of
/// `/proc/PID/status`).
pub fn process_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[derive(Default)]
struct Shared {
    report: LoadReport,
}

/// Runs the load described by `cfg` and reports what it measured. Needs a
/// tokio current-thread runtime with a `LocalSet` (the links are not
/// `Send`); [`run`] sets one up.
pub async fn run_local(cfg: LoadConfig) -> Result<LoadReport> {
    if cfg.sessions == 0 || cfg.handshakes_at_once == 0 {
        return Err(fail!(
            "--sessions and --handshakes-at-once must be at least 1"
        ));
    }
    let shared = Rc::new(RefCell::new(Shared::default()));
    let rss_idle = cfg.server_pid.and_then(process_rss);
    let gate = Rc::new(tokio::sync::Semaphore::new(cfg.handshakes_at_once));
    // Every session waits here, once up, for the window to open.
    let (open_tx, open_rx) = tokio::sync::watch::channel(None::<Instant>);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.sessions);
    for i in 0..cfg.sessions {
        let (cfg, shared, gate, mut open_rx) =
            (cfg.clone(), shared.clone(), gate.clone(), open_rx.clone());
        let local = (cfg.source_hosts > 0).then(|| {
            let host = u8::try_from(i % usize::from(cfg.source_hosts)).unwrap_or(0);
            std::net::IpAddr::from([127, 0, 0, host.saturating_add(1)])
        });
        tasks.push(tokio::task::spawn_local(async move {
            let link = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                let t = Instant::now();
                let link =
                    Link::dtls_psk_from(local, cfg.server, &cfg.identity, &cfg.key, cfg.timeout);
                match link.await {
                    Ok(l) => {
                        let mut s = shared.borrow_mut();
                        s.report.handshakes_ok += 1;
                        s.report.handshake_latency.push(t.elapsed());
                        l
                    }
                    Err(_) => {
                        shared.borrow_mut().report.handshakes_failed += 1;
                        return;
                    }
                }
            };
            let mut link = link;
            // Wait for the window.
            let end = loop {
                if let Some(end) = *open_rx.borrow_and_update() {
                    break end;
                }
                if open_rx.changed().await.is_err() {
                    return;
                }
            };
            let req = Request::get(&cfg.path);
            let gap = (cfg.rate > 0.0)
                .then(|| Duration::try_from_secs_f64(1.0 / cfg.rate).ok())
                .flatten()
                // A session sends at most one request beyond the window.
                .map(|g| g.min(cfg.duration + Duration::from_secs(1)));
            // Sessions start spread over one gap, not all at once.
            let spread = gap.map_or(Duration::ZERO, |g| {
                g.mul_f64((i as f64 / cfg.sessions as f64).fract())
            });
            let mut next = Instant::now() + spread;
            while Instant::now() < end {
                if let Some(gap) = gap {
                    tokio::time::sleep_until(next.into()).await;
                    next += gap;
                    if Instant::now() >= end {
                        break;
                    }
                }
                let t = Instant::now();
                let r = tokio::time::timeout(cfg.timeout, link.request(&req)).await;
                let took = t.elapsed();
                if Instant::now() > end {
                    break; // finished after the window: not counted
                }
                let mut s = shared.borrow_mut();
                match r {
                    Ok(Ok(reply)) if reply.code == Code::CONTENT => {
                        s.report.requests_ok += 1;
                        s.report.request_latency.push(took);
                    }
                    Ok(Ok(_)) => s.report.requests_refused += 1,
                    Ok(Err(_)) | Err(_) => {
                        s.report.requests_failed += 1;
                        drop(s);
                        // A link that failed once is likely gone (the
                        // server dropped the session): stop this session.
                        break;
                    }
                }
            }
            link.close().await;
        }));
    }
    // Wait until every session is up or failed.
    loop {
        let done = {
            let s = shared.borrow();
            s.report.handshakes_ok + s.report.handshakes_failed >= cfg.sessions
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let setup = started.elapsed();
    let rss_loaded = cfg.server_pid.and_then(process_rss);
    let cpu_before = cfg.server_pid.and_then(process_cpu);
    let window_start = Instant::now();
    let end = window_start + cfg.duration;
    let _ = open_tx.send(Some(end));
    for t in tasks {
        let _ = t.await;
    }
    let window = end.saturating_duration_since(window_start);
    let cpu_after = cfg.server_pid.and_then(process_cpu);
    let mut report = std::mem::take(&mut shared.borrow_mut().report);
    report.setup = setup;
    report.window = window;
    report.server_rss_idle = rss_idle;
    report.server_rss_loaded = rss_loaded;
    report.server_cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(report)
}

/// Runs the load on a new current-thread runtime (one thread for the whole
/// load generator).
pub fn run(cfg: LoadConfig) -> Result<LoadReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run_local(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile_ms(50.0), None);
        for us in [4000, 1000, 3000, 2000] {
            l.push(Duration::from_micros(us));
        }
        assert_eq!(l.percentile_ms(50.0), Some(2.0));
        assert_eq!(l.percentile_ms(99.0), Some(4.0));
        assert_eq!(l.percentile_ms(0.0), Some(1.0));
    }

    #[test]
    fn own_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        let rss = process_rss(pid).unwrap_or(0);
        assert!(rss > 0, "VmRSS of this process");
        // Burn a little CPU so the counter can move.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert!(x != 1);
        assert!(process_cpu(pid).is_some());
        assert_eq!(process_cpu(u32::MAX), None);
    }
}
