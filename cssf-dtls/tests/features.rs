//! What each feature set compiles in and what it refuses: these run in
//! every build (`--no-default-features` for the PSK-only
//! client, with `server` for client and server, and the default and full
//! builds), so the reduced builds are tested, not only compiled.
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;

use cssf_dtls::{AeadKind, CipherSuite, Client, Config, Error, KeyExchange};
use cssf_netsim::SimRng;

const ID: &[u8] = b"Client_identity";
const KEY: &[u8] = b"secretPSK";

fn client(cfg: Config) -> Result<Client<u8, SimRng>, Error> {
    Client::new(cfg, ID, KEY, 1u8, SimRng::new(1), Duration::ZERO)
}

#[test]
fn the_default_config_is_valid_and_usable() {
    let c = Config::default();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.resumption, cfg!(feature = "resumption"));
    assert_eq!(c.cid_len, None);
    // Every suite it offers is compiled in.
    assert!(!c.suites.is_empty());
    assert!(c.suites.iter().all(|s| CipherSuite::ALL.contains(s)));
    assert!(client(c).is_ok());
}

#[test]
fn cid_len_is_refused_exactly_when_cid_is_compiled_out() {
    let mut c = Config::default();
    c.cid_len = Some(4);
    let expected = if cfg!(feature = "cid") {
        Ok(())
    } else {
        Err(Error::Config)
    };
    assert_eq!(c.validate(), expected);
    assert_eq!(client(c.clone()).err(), expected.err());
    // A zero-length CID (willing to send CIDs, none wanted) is a CID too.
    c.cid_len = Some(0);
    assert_eq!(c.validate(), expected);
    c.cid_len = None;
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn resumption_is_refused_exactly_when_it_is_compiled_out() {
    let mut c = Config::default();
    c.resumption = true;
    let expected = if cfg!(feature = "resumption") {
        Ok(())
    } else {
        Err(Error::Config)
    };
    assert_eq!(c.validate(), expected);
    assert_eq!(client(c.clone()).err(), expected.err());
    c.resumption = false;
    assert_eq!(c.validate(), Ok(()));
    assert!(client(c).is_ok());
}

#[cfg(feature = "server")]
#[test]
fn the_server_refuses_the_same_configs() {
    use cssf_dtls::{Endpoint, StaticPsk};
    let keys = [(ID, KEY)];
    let server = |cfg: Config| {
        Endpoint::<u8, _, _, 2>::new(cfg, StaticPsk::new(&keys), SimRng::new(2), Duration::ZERO)
            .map(|_| ())
    };
    assert_eq!(server(Config::default()), Ok(()));
    let mut c = Config::default();
    c.cid_len = Some(4);
    let cid = if cfg!(feature = "cid") {
        Ok(())
    } else {
        Err(Error::Config)
    };
    assert_eq!(server(c), cid);
    let mut c = Config::default();
    c.resumption = true;
    let resumption = if cfg!(feature = "resumption") {
        Ok(())
    } else {
        Err(Error::Config)
    };
    assert_eq!(server(c), resumption);
}

#[test]
fn all_suites_lists_only_the_compiled_in_suites() {
    let chacha = cfg!(feature = "chacha20");
    let ecdhe = cfg!(feature = "ecdhe");
    // PSK_AES_128_CCM_8 always; PSK_CHACHA20 with chacha20;
    // ECDHE_ECDSA_AES_128_CCM_8 with ecdhe; both ECDHE ChaCha20 suites with both.
    let expected = 1 + usize::from(chacha) + usize::from(ecdhe) * (1 + 2 * usize::from(chacha));
    assert_eq!(CipherSuite::ALL.len(), expected);
    assert_eq!(CipherSuite::ALL[0], CipherSuite::PskWithAes128Ccm8);
    for (i, s) in CipherSuite::ALL.into_iter().enumerate() {
        assert_eq!(CipherSuite::from_id(s.id()), Some(s));
        assert!(!CipherSuite::ALL[..i].contains(&s), "{s:?} listed twice");
        if !ecdhe {
            assert_eq!(s.key_exchange(), KeyExchange::Psk, "{s:?}");
            assert!(!s.key_exchange().is_ecdhe());
        }
        if !chacha {
            assert_eq!(s.aead(), AeadKind::Aes128Ccm8, "{s:?}");
        }
    }
    // The IANA values of suites compiled out are unknown.
    assert_eq!(CipherSuite::from_id(0xCCAB).is_some(), chacha);
    assert_eq!(CipherSuite::from_id(0xC0AE).is_some(), ecdhe);
    assert_eq!(CipherSuite::from_id(0xCCAC).is_some(), ecdhe && chacha);
    assert_eq!(CipherSuite::from_id(0xCCA9).is_some(), ecdhe && chacha);
    assert_eq!(
        CipherSuite::from_id(0xC0A8),
        Some(CipherSuite::PskWithAes128Ccm8)
    );
}
