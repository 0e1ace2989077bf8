//! A logger for tests: every record of the `log` crate kept in memory, so a
//! test can check what a crate logged (level, target, message).

use std::string::{String, ToString};
use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;

/// One record: level, target, message.
pub type Line = (log::Level, String, String);

static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        lines().push((r.level(), r.target().to_string(), r.args().to_string()));
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

/// Installs the capturing logger at trace level (once per test binary;
/// later calls do nothing).
pub fn capture() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// Every record so far.
pub fn lines() -> MutexGuard<'static, Vec<Line>> {
    LINES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails unless a record at `level` whose target starts with `target`
/// contains `needle`; the failure lists every record.
pub fn expect(level: log::Level, target: &str, needle: &str) {
    let lines = lines();
    assert!(
        lines
            .iter()
            .any(|(l, t, m)| *l == level && t.starts_with(target) && m.contains(needle)),
        "nothing at {level} from {target} contains {needle:?}; logged:\n{}",
        lines
            .iter()
            .map(|(l, t, m)| format!("{l} {t}: {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
