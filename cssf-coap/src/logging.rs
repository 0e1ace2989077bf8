//! Logging behind features, off by default and free when off.
//!
//! With feature `log` the macros below forward to the [`log`] crate (the
//! target is the module path, `cssf_coap::endpoint::...`); with feature
//! `defmt` on a bare-metal target (`target_os = "none"`) to [`defmt`]. With
//! neither, a call expands to nothing but a borrow of its arguments, so no
//! formatting code, string or branch is compiled in. Messages format only
//! integers and strings (message IDs, lengths), never payloads, tokens or
//! peer addresses (the address type is the caller's).
//!
//! Everything the endpoint drops, refuses, repeats or gives up is logged
//! at `debug` with its reason, beside the counter it increments
//! (`Endpoint::stats`); what happens on every duplicate or ping at `trace`.
//! Nothing a peer sends is logged above `debug`.
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

/// Duplicates answered from the cache, pings answered with RST.
macro_rules! trace {
    ($($t:tt)*) => { log_at!(trace, $($t)*) };
}

/// Drops, refusals, retransmissions, give-ups, with their reason.
macro_rules! debug {
    ($($t:tt)*) => { log_at!(debug, $($t)*) };
}
