//! Small shared helpers: the one-line error type, hex, and the tiny
//! command line parser of `cssf-demo` and `cssf-slip-bridge` (the other
//! binaries use clap, see [`crate::cli`]).

use std::fmt;

/// A one-line, human-readable error: what failed and why. The binaries
/// print it as `error: <message>` and exit with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Result with a [`Failure`].
pub type Result<T> = std::result::Result<T, Failure>;

/// Builds a [`Failure`] from a format string.
#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => { $crate::util::Failure(format!($($t)*)) };
}

/// Runs a binary's `main`: prints a failure as one line on stderr and maps
/// it to exit status 1.
pub fn exit_with(r: Result<()>) -> std::process::ExitCode {
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the message contains.
            let line = e.0.replace('\n', " ");
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (spaces and `:` allowed between bytes).
pub fn unhex(s: &str) -> Result<Vec<u8>> {
    let clean: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if clean.is_empty() || clean.len() % 2 != 0 {
        return Err(fail!("`{s}` is not an even number of hex digits"));
    }
    clean
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|t| u8::from_str_radix(t, 16).ok())
                .ok_or_else(|| fail!("`{s}` is not hex"))
        })
        .collect()
}

/// Printable text of `bytes` when it is UTF-8 without control characters
/// (other than newlines and tabs), else `None`.
pub fn printable(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\t' || c == '\r')
        .then_some(s)
}

/// Command-line arguments: `--name value`, `--name=value`, `-m value`,
/// flags, and positional arguments.
#[derive(Debug)]
pub struct Args {
    items: std::iter::Peekable<std::vec::IntoIter<String>>,
    /// The program name (for messages).
    pub program: String,
}

/// One parsed command-line item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// An option (`--name` or `-n`) without its value yet.
    Opt(String),
    /// A positional argument.
    Pos(String),
}

impl Args {
    /// The process's arguments.
    pub fn from_env() -> Self {
        Self::new(std::env::args().collect())
    }

    /// Arguments from a list (the first item is the program name).
    pub fn new(all: Vec<String>) -> Self {
        let mut it = all.into_iter();
        let program = it.next().unwrap_or_default();
        let rest: Vec<String> = it.collect();
        // Split `--name=value` into two items up front.
        let mut split = Vec::with_capacity(rest.len());
        let mut positional_only = false;
        for a in rest {
            if positional_only {
                split.push(a);
                continue;
            }
            if a == "--" {
                positional_only = true;
                split.push(a);
                continue;
            }
            match a.strip_prefix("--").and_then(|r| r.split_once('=')) {
                Some((n, v)) => {
                    split.push(format!("--{n}"));
                    split.push(v.to_string());
                }
                None => split.push(a),
            }
        }
        Args {
            items: split.into_iter().peekable(),
            program,
        }
    }

    /// The next item, or `None` at the end.
    pub fn next_arg(&mut self) -> Option<Arg> {
        let a = self.items.next()?;
        if a == "--" {
            return self.items.next().map(Arg::Pos);
        }
        if a.len() > 1 && a.starts_with('-') {
            Some(Arg::Opt(a))
        } else {
            Some(Arg::Pos(a))
        }
    }

    /// The value of option `opt` (the next item, whatever it looks like).
    pub fn value(&mut self, opt: &str) -> Result<String> {
        self.items
            .next()
            .ok_or_else(|| fail!("option {opt} needs a value"))
    }
}

/// Parses a duration such as `3600`, `3600s`, `60m`, `2h` or `1d`.
pub fn parse_duration_secs(s: &str) -> Result<u64> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (s.get(..i).unwrap_or(""), 1),
        Some((i, 'm')) => (s.get(..i).unwrap_or(""), 60),
        Some((i, 'h')) => (s.get(..i).unwrap_or(""), 3600),
        Some((i, 'd')) => (s.get(..i).unwrap_or(""), 86_400),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| fail!("`{s}` is not a duration (e.g. 3600s, 60m, 2h)"))
}

/// Seconds since the Unix epoch (the wall clock tokens are checked against).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Prints the CSSF crates' log messages (feature `log` of cssf-dtls,
/// cssf-coap and cssf-auth) on stderr: `verbose` 1 (`-v`) info, 2 (`-vv`) debug, 3 or
/// more (`-vvv`) trace; 0 installs nothing.
pub fn init_logging(verbose: u8) {
    static LOGGER: StderrLogger = StderrLogger;
    let level = match verbose {
        0 => return,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// One line per message: level, target (`cssf_dtls::endpoint`, ...), text.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("cssf")
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{:<5} {}: {}", r.level(), r.target(), r.args());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(unhex("00:ff").unwrap(), vec![0, 255]);
        assert_eq!(hex(&[1, 171]), "01ab");
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
        assert!(unhex("").is_err());
    }

    #[test]
    fn args_split_and_classify() {
        let mut a = Args::new(
            ["p", "-m", "put", "--psk=id:00", "coap://x/", "--", "-weird"]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(a.next_arg(), Some(Arg::Opt("-m".into())));
        assert_eq!(a.value("-m").unwrap(), "put");
        assert_eq!(a.next_arg(), Some(Arg::Opt("--psk".into())));
        assert_eq!(a.value("--psk").unwrap(), "id:00");
        assert_eq!(a.next_arg(), Some(Arg::Pos("coap://x/".into())));
        assert_eq!(a.next_arg(), Some(Arg::Pos("-weird".into())));
        assert_eq!(a.next_arg(), None);
        assert!(a.value("--x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("3600s").unwrap(), 3600);
        assert_eq!(parse_duration_secs("90").unwrap(), 90);
        assert_eq!(parse_duration_secs("2h").unwrap(), 7200);
        assert!(parse_duration_secs("soon").is_err());
        assert!(parse_duration_secs("s").is_err());
    }
}
