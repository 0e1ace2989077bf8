//! Logging behind features, off by default and free when off.
//!
//! With feature `log` the macros below forward to the [`log`] crate (the
//! target is the module path, `cssf_auth::...`); with feature `defmt` on a
//! bare-metal target
//! (`target_os = "none"`) to [`defmt`]. With neither, a call expands to
//! nothing but a borrow of its arguments, so no formatting code, string or
//! branch is compiled in. Messages only format integers, strings and this
//! crate's plain enums (`{:?}`, which both back ends take), never keys,
//! tokens or key identifiers.
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

/// Every request decision.
macro_rules! trace {
    ($($t:tt)*) => { log_at!(trace, $($t)*) };
}

/// Why a request or a token was refused.
macro_rules! debug {
    ($($t:tt)*) => { log_at!(debug, $($t)*) };
}

/// A token accepted.
macro_rules! info {
    ($($t:tt)*) => { log_at!(info, $($t)*) };
}
