//! An encrypted, authenticated, power-fail-safe key-value store on NOR flash
//! (`embedded-storage` traits).
//!
//! Part of CSSF, the Common Service Security Framework. `#![no_std]` and no
//! heap: the index, buffers and tables are fixed-capacity. The `std` feature
//! adds a file-backed flash for hosts.
//!
//! - [`Store`]: mount, [`Store::get`], [`Store::set`], [`Store::remove`],
//!   [`Store::for_each_key`], atomic [`Transaction`]s, garbage collection.
//! - Every record is sealed with XChaCha20-Poly1305 under a key derived with
//!   HKDF-SHA256 from the caller's [`RootKey`], with a nonce made of a random
//!   per-mount salt and the record counter, so no flash rollback, power cut
//!   or missing counter can make a nonce repeat; key names are indexed by a
//!   keyed hash and stored only inside the sealed value.
//! - `AsyncStore` (feature `async`): the same store over an
//!   `embedded-storage-async` flash, sharing one core with [`Store`].
//! - Rollback protection through a caller [`MonotonicCounter`].
//! - [`typed`] helpers for PSKs, P-256 private keys, trusted public keys and
//!   tokens.
//!
//! See the [`store`] module for the design and the threat model, and
//! [`layout`] for the bytes on flash.
//!
//! ```
//! use cssf_store::{flash::RamFlash, Config, RamCounter, RootKey, Store, Transaction};
//! use rand_core::OsRng; // or the MCU's TRNG: it salts the nonces of this mount
//! let flash = RamFlash::<{ 2 * 4096 }, 4096, 4, 1>::new();
//! let mut counter = RamCounter::default();
//! let root = RootKey([42; 32]);
//! let mut store: Store<_, _, 8, 2> =
//!     Store::mount(flash, &root, &mut counter, Config::new(), &mut OsRng).unwrap();
//! let mut tx = Transaction::<4>::new();
//! tx.set(b"a", b"1").unwrap();
//! tx.set(b"b", b"2").unwrap();
//! store.commit(&tx).unwrap();
//! let (flash, _) = store.into_parts();
//! // Remount (e.g. after a reboot): everything committed is there.
//! let mut store: Store<_, _, 8, 2> =
//!     Store::mount(flash, &root, &mut counter, Config::new(), &mut OsRng).unwrap();
//! let mut buf = [0; 8];
//! assert_eq!(store.get(b"b", &mut buf), Ok(1));
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
#[macro_use]
extern crate std;

pub mod config;
pub mod crypto;
pub mod error;
pub mod flash;
pub mod layout;
pub mod rollback;
pub mod store;
pub mod typed;

pub use config::{Config, MAX_KEY_LEN, MAX_TX_OPS, MAX_VALUE_LEN};
pub use crypto::RootKey;
pub use error::Error;
#[cfg(feature = "std")]
pub use rollback::{FileCounter, FileCounterError};
pub use rollback::{MonotonicCounter, NoRollbackProtection, RamCounter};
#[cfg(feature = "async")]
pub use store::AsyncStore;
pub use store::{Stats, Store, Transaction, GC_CUTS};
