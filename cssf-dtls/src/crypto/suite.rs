//! Cipher suites: how each splits into a key exchange and a record AEAD, so
//! ECDHE_ECDSA suites (and raw public keys) slot in beside the PSK ones.

/// The key exchange half of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyExchange {
    /// Plain pre-shared key (RFC 4279).
    Psk,
    /// Ephemeral ECDH on secp256r1 authenticated by a PSK (RFC 5489).
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    EcdhePsk,
    /// Ephemeral ECDH on secp256r1 with ECDSA-P256-SHA256 signatures
    /// (RFC 8422), keys carried as raw public keys (RFC 7250).
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    EcdheEcdsa,
}

impl KeyExchange {
    /// True for the ECDHE key exchanges (secp256r1 offered and negotiated).
    pub const fn is_ecdhe(self) -> bool {
        !matches!(self, KeyExchange::Psk)
    }
    /// True for ECDHE_ECDSA (always false without feature `ecdhe`).
    pub(crate) const fn is_ecdsa(self) -> bool {
        #[cfg(feature = "ecdhe")]
        return matches!(self, KeyExchange::EcdheEcdsa);
        #[cfg(not(feature = "ecdhe"))]
        {
            let _ = self;
            false
        }
    }
    /// True for the PSK-authenticated key exchanges.
    pub const fn is_psk(self) -> bool {
        match self {
            KeyExchange::Psk => true,
            #[cfg(feature = "ecdhe")]
            KeyExchange::EcdhePsk => true,
            #[cfg(feature = "ecdhe")]
            KeyExchange::EcdheEcdsa => false,
        }
    }
}

/// The record-protection half of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AeadKind {
    /// AES-128-CCM with an 8-byte tag (RFC 6655).
    Aes128Ccm8,
    /// ChaCha20-Poly1305 (RFC 7905).
    #[cfg(feature = "chacha20")]
    #[cfg_attr(docsrs, doc(cfg(feature = "chacha20")))]
    ChaCha20Poly1305,
}

impl AeadKind {
    /// The crypto provider's name of the algorithm.
    #[cfg(feature = "ecdhe")]
    pub(crate) const fn algorithm(self) -> cssf_provider::AeadAlgorithm {
        match self {
            AeadKind::Aes128Ccm8 => cssf_provider::AeadAlgorithm::Aes128Ccm8,
            #[cfg(feature = "chacha20")]
            AeadKind::ChaCha20Poly1305 => cssf_provider::AeadAlgorithm::ChaCha20Poly1305,
        }
    }

    /// Encryption key length.
    pub const fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Ccm8 => 16,
            #[cfg(feature = "chacha20")]
            AeadKind::ChaCha20Poly1305 => 32,
        }
    }
    /// Implicit IV (salt) length taken from the key block.
    pub const fn fixed_iv_len(self) -> usize {
        match self {
            AeadKind::Aes128Ccm8 => 4,
            #[cfg(feature = "chacha20")]
            AeadKind::ChaCha20Poly1305 => 12,
        }
    }
    /// Explicit nonce bytes carried in each record.
    pub const fn explicit_nonce_len(self) -> usize {
        match self {
            AeadKind::Aes128Ccm8 => 8,
            #[cfg(feature = "chacha20")]
            AeadKind::ChaCha20Poly1305 => 0,
        }
    }
    /// Authentication tag length.
    pub const fn tag_len(self) -> usize {
        match self {
            AeadKind::Aes128Ccm8 => 8,
            #[cfg(feature = "chacha20")]
            AeadKind::ChaCha20Poly1305 => 16,
        }
    }
    /// Bytes a record grows by under protection.
    pub const fn overhead(self) -> usize {
        self.explicit_nonce_len() + self.tag_len()
    }
}

/// The cipher suites this crate implements: the suites of a feature
/// (`ecdhe`, `chacha20`) exist only when it is enabled, so a build without
/// them cannot offer, accept or resume them.
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// TLS_PSK_WITH_AES_128_CCM_8 (0xC0A8), mandatory for CoAP (RFC 7252 §9.1.3.1).
    PskWithAes128Ccm8,
    /// TLS_PSK_WITH_CHACHA20_POLY1305_SHA256 (0xCCAB, RFC 7905).
    #[cfg(feature = "chacha20")]
    #[cfg_attr(docsrs, doc(cfg(feature = "chacha20")))]
    PskWithChaCha20Poly1305Sha256,
    /// TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 (0xCCAC, RFC 7905).
    #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "ecdhe", feature = "chacha20"))))]
    EcdhePskWithChaCha20Poly1305Sha256,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (0xC0AE, RFC 7251), mandatory for
    /// CoAP with raw public keys (RFC 7252 §9.1.3.2).
    #[cfg(feature = "ecdhe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdhe")))]
    EcdheEcdsaWithAes128Ccm8,
    /// TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA9, RFC 7905).
    #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "ecdhe", feature = "chacha20"))))]
    EcdheEcdsaWithChaCha20Poly1305Sha256,
}

/// How many suites the enabled features implement: TLS_PSK_WITH_AES_128_CCM_8,
/// one more with `chacha20`, and with `ecdhe` ECDHE_ECDSA_WITH_AES_128_CCM_8
/// plus the two ECDHE ChaCha20 suites if `chacha20` is enabled too.
const SUITE_COUNT: usize = 1
    + cfg!(feature = "chacha20") as usize
    + cfg!(feature = "ecdhe") as usize * (1 + 2 * cfg!(feature = "chacha20") as usize);

impl CipherSuite {
    /// Every implemented suite (of the enabled features), in default
    /// preference order.
    pub const ALL: [CipherSuite; SUITE_COUNT] = [
        CipherSuite::PskWithAes128Ccm8,
        #[cfg(feature = "chacha20")]
        CipherSuite::PskWithChaCha20Poly1305Sha256,
        #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
        CipherSuite::EcdhePskWithChaCha20Poly1305Sha256,
        #[cfg(feature = "ecdhe")]
        CipherSuite::EcdheEcdsaWithAes128Ccm8,
        #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
        CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256,
    ];

    /// The IANA value.
    pub const fn id(self) -> u16 {
        match self {
            CipherSuite::PskWithAes128Ccm8 => 0xC0A8,
            #[cfg(feature = "chacha20")]
            CipherSuite::PskWithChaCha20Poly1305Sha256 => 0xCCAB,
            #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
            CipherSuite::EcdhePskWithChaCha20Poly1305Sha256 => 0xCCAC,
            #[cfg(feature = "ecdhe")]
            CipherSuite::EcdheEcdsaWithAes128Ccm8 => 0xC0AE,
            #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
            CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256 => 0xCCA9,
        }
    }

    /// The suite for an IANA value, if implemented.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Its key exchange.
    pub const fn key_exchange(self) -> KeyExchange {
        match self {
            CipherSuite::PskWithAes128Ccm8 => KeyExchange::Psk,
            #[cfg(feature = "chacha20")]
            CipherSuite::PskWithChaCha20Poly1305Sha256 => KeyExchange::Psk,
            #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
            CipherSuite::EcdhePskWithChaCha20Poly1305Sha256 => KeyExchange::EcdhePsk,
            #[cfg(feature = "ecdhe")]
            CipherSuite::EcdheEcdsaWithAes128Ccm8 => KeyExchange::EcdheEcdsa,
            #[cfg(all(feature = "ecdhe", feature = "chacha20"))]
            CipherSuite::EcdheEcdsaWithChaCha20Poly1305Sha256 => KeyExchange::EcdheEcdsa,
        }
    }

    /// Its record AEAD.
    pub const fn aead(self) -> AeadKind {
        match self {
            CipherSuite::PskWithAes128Ccm8 => AeadKind::Aes128Ccm8,
            #[cfg(feature = "ecdhe")]
            CipherSuite::EcdheEcdsaWithAes128Ccm8 => AeadKind::Aes128Ccm8,
            #[cfg(feature = "chacha20")]
            _ => AeadKind::ChaCha20Poly1305,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for s in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_id(s.id()), Some(s));
        }
        #[cfg(feature = "ecdhe")]
        assert_eq!(
            CipherSuite::from_id(0xC0AE),
            Some(CipherSuite::EcdheEcdsaWithAes128Ccm8)
        );
        assert_eq!(CipherSuite::from_id(0xC0AC), None);
        #[cfg(feature = "ecdhe")]
        assert_eq!(
            CipherSuite::EcdheEcdsaWithAes128Ccm8.aead(),
            AeadKind::Aes128Ccm8
        );
        assert_eq!(CipherSuite::PskWithAes128Ccm8.aead().overhead(), 16);
        #[cfg(feature = "chacha20")]
        assert_eq!(
            CipherSuite::PskWithChaCha20Poly1305Sha256.aead().overhead(),
            16
        );
    }
}
