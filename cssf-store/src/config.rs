//! Store configuration and size limits.

use cssf_provider::{rustcrypto, CryptoProvider, Hash};

/// The longest key name, in bytes.
pub const MAX_KEY_LEN: usize = 64;
/// The longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
/// The largest [`Config::counter_block`] (larger values are clamped).
pub const MAX_COUNTER_BLOCK: u32 = 4096;
/// The most operations one transaction may hold.
pub const MAX_TX_OPS: usize = 16;

/// Store options.
///
/// Two configurations are equal when their fields are, the providers
/// compared by [`CryptoProvider::name`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Config {
    /// Flash offset of the first sector of the store (a multiple of the
    /// erase size). The store uses `SECTORS` sectors from there.
    pub base: u32,
    /// Store key names in clear and index them by an unkeyed hash (faster
    /// diagnostics, but names leak). Default `false`: names are indexed by a
    /// keyed hash and stored only inside the sealed value.
    pub plain_names: bool,
    /// Record counters reserved in the trusted [`crate::MonotonicCounter`]
    /// per counter write (at least 1; see [`crate::rollback`]). The store
    /// reserves counters *before* it writes their records, so no record
    /// counter is ever used twice, whatever power cuts and rollbacks happen.
    /// 1 (the default, eager) also confirms every operation: every rollback
    /// is detected except of an operation a power cut interrupted, at one
    /// counter write per record plus one per operation. A larger block
    /// (lazy) saves counter writes (OTP fuses, a secure element's limited
    /// cycles) and lets a rollback of up to that many records go unseen
    /// ([`crate::Error::Rollback`] past it).
    pub counter_block: u32,
    /// The crypto provider whose [`Hash`] entry derives the store's keys
    /// from the root key (HKDF-SHA-256, RFC 5869); a provider with no
    /// `Hash` entry gets [`rustcrypto::RustCryptoHash`]. Default
    /// [`rustcrypto::PROVIDER`]. Every implementation must give the same
    /// bytes, or existing images no longer open. Records are sealed with
    /// XChaCha20-Poly1305, which the provider's `Aead` does not offer: the
    /// store's own code seals them whatever the provider.
    pub crypto: &'static CryptoProvider,
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base
            && self.plain_names == other.plain_names
            && self.counter_block == other.counter_block
            && self.crypto.name == other.crypto.name
    }
}

impl Eq for Config {}

impl Config {
    /// The default configuration: store at offset 0, names hidden.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            base: 0,
            plain_names: false,
            counter_block: 1,
            crypto: &rustcrypto::PROVIDER,
        }
    }

    /// Sets [`Config::crypto`].
    ///
    /// ```
    /// use cssf_store::Config;
    /// let c = Config::new().with_crypto(&cssf_provider::rustcrypto::PROVIDER);
    /// assert_eq!(c, Config::new());
    /// ```
    #[must_use]
    pub const fn with_crypto(mut self, provider: &'static CryptoProvider) -> Self {
        self.crypto = provider;
        self
    }

    /// The `Hash` the keys are derived with.
    pub(crate) fn hash(&self) -> &'static dyn Hash {
        match self.crypto.hash {
            Some(h) => h,
            None => &rustcrypto::RustCryptoHash,
        }
    }

    /// Sets [`Config::base`].
    #[must_use]
    pub const fn with_base(mut self, base: u32) -> Self {
        self.base = base;
        self
    }

    /// Sets [`Config::counter_block`] (0 counts as 1).
    #[must_use]
    pub const fn with_counter_block(mut self, block: u32) -> Self {
        self.counter_block = if block == 0 {
            1
        } else if block > MAX_COUNTER_BLOCK {
            MAX_COUNTER_BLOCK
        } else {
            block
        };
        self
    }

    /// Sets [`Config::plain_names`].
    #[must_use]
    pub const fn with_plain_names(mut self, plain: bool) -> Self {
        self.plain_names = plain;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}
