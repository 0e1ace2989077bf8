//! Criterion's medians of the current run, read back from the estimates it
//! writes (`<criterion dir>/<group>/<id>/new/estimates.json`), so that a
//! ratio printed beside two medians is computed from those very medians.

use std::path::PathBuf;
use std::time::SystemTime;

/// Where criterion writes its results: `CRITERION_HOME`, else the cargo
/// target directory's `criterion` (from `CARGO_TARGET_DIR`, else from this
/// bench executable's path, `<target>/<profile>/deps/<bench>`).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time (ns) of `group`/`id` measured since `since` (this run),
/// or `None` if it was not measured in this run (filtered out, or
/// criterion's `--test` mode).
pub fn median_ns(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(safe(group))
        .join(safe(id))
        .join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json = std::fs::read_to_string(&path).ok()?;
    let rest = &json[json.find("\"median\"")?..];
    let rest = &rest[rest.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// Criterion's directory name for a group or benchmark name.
fn safe(name: &str) -> String {
    name.replace(
        &['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'][..],
        "_",
    )
}

/// A duration in ns, in the unit criterion would print.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}
