//! Stateless cookies for HelloVerifyRequest (RFC 6347 §4.2.1).
//!
//! cookie = t || HMAC-SHA256(secret, t || client address || client_version
//! || random || session_id || cipher_suites || compression_methods), the MAC
//! truncated so the cookie is [`COOKIE_LEN`] bytes, where `t` is the time
//! the cookie was made (4 bytes, whole seconds of the caller's clock). A
//! cookie is taken only while younger than the lifetime the caller gives
//! (`Config::cookie_lifetime`): a ClientHello captured with its cookie
//! cannot be replayed later to start a handshake (and end the session of
//! the address it names). Two secrets are accepted (current and previous)
//! so rotation does not break handshakes in progress. No per-peer state
//! exists before a valid cookie arrives.

use core::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::wire::client_hello::ClientHelloRepr;

/// Cookie length in bytes.
pub const COOKIE_LEN: usize = 16;

/// A peer address usable by the server: it must feed stable bytes into the
/// cookie MAC so a cookie is bound to the address it was sent to.
pub trait PeerAddress: Clone + PartialEq {
    /// Feeds the address's bytes (IP and port for a socket address) to `f`.
    fn feed(&self, f: &mut dyn FnMut(&[u8]));

    /// True when `other` is on the same host (for a socket address: the
    /// same IPv4 address or IPv6 /64, any port; an IPv4-mapped or NAT64
    /// IPv6 address is the IPv4 host it stands for). The endpoint limits
    /// the handshake and session slots one host may hold. By default,
    /// addresses are hosts.
    fn same_host(&self, other: &Self) -> bool {
        self == other
    }
}

macro_rules! int_addr {
    ($($t:ty),*) => {$(
        impl PeerAddress for $t {
            fn feed(&self, f: &mut dyn FnMut(&[u8])) {
                f(&self.to_be_bytes())
            }
        }
    )*};
}
int_addr!(u8, u16, u32, u64, u128);

impl<const N: usize> PeerAddress for [u8; N] {
    fn feed(&self, f: &mut dyn FnMut(&[u8])) {
        f(self)
    }
}

impl PeerAddress for core::net::SocketAddr {
    fn feed(&self, f: &mut dyn FnMut(&[u8])) {
        match self {
            core::net::SocketAddr::V4(a) => f(&a.ip().octets()),
            core::net::SocketAddr::V6(a) => f(&a.ip().octets()),
        }
        f(&self.port().to_be_bytes());
    }

    /// The same IPv4 address, or the same IPv6 /64 (the prefix one
    /// subscriber usually holds). IPv6 addresses that stand for an IPv4
    /// host (`::ffff:0:0/96`, how a dual-stack socket reports IPv4 peers,
    /// and the NAT64 prefix `64:ff9b::/96`, RFC 6052) compare as that IPv4
    /// address: they share one /64 whatever host they name.
    fn same_host(&self, other: &Self) -> bool {
        Host::of(self.ip()) == Host::of(other.ip())
    }
}

/// smoltcp's UDP endpoint (feature `smoltcp`; embassy-net's
/// `IpEndpoint` is the same type): the same bytes and the same host rule as
/// [`core::net::SocketAddr`].
#[cfg(feature = "smoltcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smoltcp")))]
impl PeerAddress for smoltcp::wire::IpEndpoint {
    fn feed(&self, f: &mut dyn FnMut(&[u8])) {
        core::net::SocketAddr::new(self.addr.into(), self.port).feed(f)
    }

    fn same_host(&self, other: &Self) -> bool {
        Host::of(self.addr.into()) == Host::of(other.addr.into())
    }
}

/// What [`PeerAddress::same_host`] compares for an IP address.
#[derive(PartialEq, Eq)]
enum Host {
    V4(core::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Host {
    /// The NAT64 well-known prefix `64:ff9b::/96` (RFC 6052 §2.1).
    const NAT64: u128 = 0x0064_ff9b << 96;

    fn of(ip: core::net::IpAddr) -> Self {
        match ip {
            core::net::IpAddr::V4(a) => Host::V4(a),
            core::net::IpAddr::V6(a) => {
                let bits = u128::from(a);
                match a.to_ipv4_mapped() {
                    Some(v4) => Host::V4(v4),
                    None if bits >> 32 == Self::NAT64 >> 32 => {
                        Host::V4(core::net::Ipv4Addr::from(bits as u32))
                    }
                    None => Host::V6Prefix((bits >> 64) as u64),
                }
            }
        }
    }
}

/// The server's cookie secrets.
pub struct CookieSecrets {
    current: Zeroizing<[u8; 32]>,
    previous: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CookieSecrets(..)")
    }
}

impl CookieSecrets {
    /// Fresh secrets from the caller's RNG.
    pub fn new(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        let mut s = CookieSecrets {
            current: Zeroizing::new([0; 32]),
            previous: Zeroizing::new([0; 32]),
        };
        rng.fill_bytes(&mut s.current[..]);
        rng.fill_bytes(&mut s.previous[..]);
        s
    }

    /// Makes the current secret the previous one and draws a new one.
    pub fn rotate(&mut self, rng: &mut dyn rand_core::CryptoRngCore) {
        *self.previous = *self.current;
        rng.fill_bytes(&mut self.current[..]);
    }

    fn compute<A: PeerAddress>(
        secret: &[u8; 32],
        t: [u8; 4],
        addr: &A,
        ch: &ClientHelloRepr<'_>,
    ) -> [u8; COOKIE_LEN] {
        let mut out = [0u8; COOKIE_LEN];
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
            return out;
        };
        m.update(&t);
        addr.feed(&mut |b| m.update(b));
        m.update(&ch.version.to_be_bytes());
        m.update(ch.random);
        m.update(&[ch.session_id.len() as u8]);
        m.update(ch.session_id);
        m.update(&(ch.cipher_suites.len() as u16).to_be_bytes());
        m.update(ch.cipher_suites);
        m.update(&[ch.compression_methods.len() as u8]);
        m.update(ch.compression_methods);
        let full = m.finalize().into_bytes();
        let (head, mac) = out.split_at_mut(4);
        head.copy_from_slice(&t);
        for (o, i) in mac.iter_mut().zip(full.iter()) {
            *o = *i;
        }
        out
    }

    /// The cookie for this peer and ClientHello, made at `now`, under the
    /// current secret.
    pub fn cookie<A: PeerAddress>(
        &self,
        addr: &A,
        ch: &ClientHelloRepr<'_>,
        now: Duration,
    ) -> [u8; COOKIE_LEN] {
        Self::compute(&self.current, stamp(now), addr, ch)
    }

    /// True when `ch.cookie` is valid under the current or previous secret
    /// (compared in constant time) and was made at most `lifetime` before
    /// `now`.
    pub fn verify<A: PeerAddress>(
        &self,
        addr: &A,
        ch: &ClientHelloRepr<'_>,
        now: Duration,
        lifetime: Duration,
    ) -> bool {
        let Some(t) = ch
            .cookie
            .get(..4)
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .filter(|_| ch.cookie.len() == COOKIE_LEN)
        else {
            return false;
        };
        let age = u32::from_be_bytes(stamp(now)).wrapping_sub(u32::from_be_bytes(t));
        if u64::from(age) > lifetime.as_secs() {
            return false;
        }
        let a = Self::compute(&self.current, t, addr, ch);
        let b = Self::compute(&self.previous, t, addr, ch);
        bool::from(a.ct_eq(ch.cookie) | b.ct_eq(ch.cookie))
    }
}

/// `now` in whole seconds, as 4 bytes (wrapping every 136 years).
fn stamp(now: Duration) -> [u8; 4] {
    (now.as_secs() as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cssf_netsim::SimRng;

    #[test]
    fn cookie_binds_address_and_survives_one_rotation() {
        let mut rng = SimRng::new(1);
        let mut s = CookieSecrets::new(&mut rng);
        let random = [1u8; 32];
        let mut ch = ClientHelloRepr {
            version: 0xFEFD,
            random: &random,
            session_id: &[],
            cookie: &[],
            cipher_suites: &[0xC0, 0xA8],
            compression_methods: &[0],
            extensions: &[],
        };
        let t0 = Duration::from_secs(1000);
        let life = Duration::from_secs(20);
        let c = s.cookie(&7u8, &ch, t0);
        ch.cookie = &c;
        assert!(s.verify(&7u8, &ch, t0, life));
        assert!(!s.verify(&8u8, &ch, t0, life));
        s.rotate(&mut rng);
        assert!(s.verify(&7u8, &ch, t0, life));
        // Too old: refused, whatever the secret.
        assert!(s.verify(&7u8, &ch, t0 + life, life));
        assert!(!s.verify(&7u8, &ch, t0 + life + Duration::from_secs(1), life));
        // A cookie whose time was edited fails its MAC.
        let mut edited = c;
        edited[3] ^= 1;
        ch.cookie = &edited;
        assert!(!s.verify(&7u8, &ch, t0, life));
        ch.cookie = &c;
        s.rotate(&mut rng);
        assert!(!s.verify(&7u8, &ch, t0, life));
        let addr: core::net::SocketAddr = "127.0.0.1:5684".parse().unwrap();
        let c2 = s.cookie(&addr, &ch, t0);
        ch.cookie = &c2;
        assert!(s.verify(&addr, &ch, t0, life));
    }

    #[test]
    fn hosts_of_socket_addresses() {
        let same = |a: &str, b: &str| {
            let (a, b): (core::net::SocketAddr, core::net::SocketAddr) =
                (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(a.same_host(&b), b.same_host(&a));
            a.same_host(&b)
        };
        assert!(same("10.0.0.7:1", "10.0.0.7:2"));
        assert!(!same("10.0.0.7:1", "10.0.0.8:1"));
        assert!(same("[2001:db8:0:1::1]:1", "[2001:db8:0:1:ffff::2]:2"));
        assert!(!same("[2001:db8:0:1::1]:1", "[2001:db8:0:2::1]:1"));
        // A dual-stack socket's IPv4 peers, and NAT64: IPv4 hosts.
        assert!(!same("[::ffff:10.0.0.7]:1", "[::ffff:10.0.0.8]:1"));
        assert!(same("[::ffff:10.0.0.7]:1", "[::ffff:10.0.0.7]:2"));
        assert!(same("[::ffff:10.0.0.7]:1", "10.0.0.7:2"));
        assert!(!same("[64:ff9b::10.0.0.7]:1", "[64:ff9b::10.0.0.8]:1"));
        assert!(same("[64:ff9b::10.0.0.7]:1", "10.0.0.7:1"));
        assert!(same("[64:ff9b::10.0.0.7]:1", "[::ffff:10.0.0.7]:1"));
        // Outside the /96 prefixes, the /64 rule.
        assert!(same("[64:ff9b::1:a00:7]:1", "[64:ff9b::1:a00:8]:1"));
        assert!(!same("[::ffff:10.0.0.7]:1", "[::1]:1"));
    }

    /// smoltcp's endpoints feed the bytes and follow the host rule of the
    /// `SocketAddr` they stand for, so a cookie is bound the same way.
    #[cfg(feature = "smoltcp")]
    #[test]
    fn smoltcp_endpoints_are_socket_addresses() {
        use smoltcp::wire::IpEndpoint;
        let pairs = [
            ("10.0.0.7:1", "10.0.0.7:2"),
            ("10.0.0.7:1", "10.0.0.8:1"),
            ("[2001:db8:0:1::1]:1", "[2001:db8:0:1:ffff::2]:2"),
            ("[2001:db8:0:1::1]:1", "[2001:db8:0:2::1]:1"),
            ("[::ffff:10.0.0.7]:1", "10.0.0.7:2"),
            ("[64:ff9b::10.0.0.7]:1", "[64:ff9b::10.0.0.8]:1"),
        ];
        let ep = |s: &core::net::SocketAddr| IpEndpoint::new(s.ip().into(), s.port());
        for (a, b) in pairs {
            let (a, b): (core::net::SocketAddr, core::net::SocketAddr) =
                (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(ep(&a).same_host(&ep(&b)), a.same_host(&b), "{a} {b}");
            let mut fed = (std::vec::Vec::new(), std::vec::Vec::new());
            a.feed(&mut |x| fed.0.extend_from_slice(x));
            ep(&a).feed(&mut |x| fed.1.extend_from_slice(x));
            assert_eq!(fed.0, fed.1);
        }
    }
}
