//! Logging behind features, off by default and free when off.
//!
//! With feature `log` the macros below forward to the [`log`] crate (the
//! target is the module path, `cssf_dtls::...`); with feature `defmt` on a
//! bare-metal target
//! (`target_os = "none"`) to [`defmt`]. With neither, a call expands to
//! nothing but a borrow of its arguments, so no formatting code, string or
//! branch is compiled in. Messages only format integers, strings and this
//! crate's plain enums (`{:?}`, which both back ends take), never secrets
//! or peer addresses (the address type is the caller's).
//!
//! [`log`]: https://docs.rs/log
//! [`defmt`]: https://docs.rs/defmt

/// Logs at one level; `log_at!(debug, "fmt", args...)`.
macro_rules! log_at {
    ($level:ident, $fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "log")]
        ::log::$level!($fmt $(, $arg)*);
        #[cfg(all(feature = "defmt", target_os = "none"))]
        ::defmt::$level!($fmt $(, $arg)*);
        #[cfg(not(any(feature = "log", all(feature = "defmt", target_os = "none"))))]
        if false {
            $( let _ = &$arg; )*
        }
    }};
}

/// Steps that happen on every record or datagram (drops of single records).
macro_rules! trace {
    ($($t:tt)*) => { log_at!(trace, $($t)*) };
}

/// Handshake steps, retransmissions, refused or dropped handshakes.
macro_rules! debug {
    ($($t:tt)*) => { log_at!(debug, $($t)*) };
}

/// A session connected or closed.
macro_rules! info {
    ($($t:tt)*) => { log_at!(info, $($t)*) };
}

/// Failures: a handshake or session ended by an error or a fatal alert.
macro_rules! warn {
    ($($t:tt)*) => { log_at!(warn, $($t)*) };
}
